#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Self-check of selftests/lib/servers.sh, the nginx servers and the shaped
# loopback link the store tests use, in the test VM as root.  With curl:
# the store server answers a chunk GET with the file's bytes, a Range GET
# with those bytes, two requests on one connection, HTTP/2 over plain TCP
# (prior knowledge) and over TLS (ALPN, verified against its ca.pem); the
# caching proxy answers MISS, then HIT without asking upstream again; the
# faulty server's 500, 444 and delayed answers over 200 requests come at
# about the rates asked, and a --fail-path chunk always fails; srv_shape
# adds the round-trip time and caps the rate asked for one port and
# leaves the others alone; every server stopped leaves no nginx process.
#
# Starting a program in the emulated guest is slow (its libraries come
# over 9p), so each part makes its requests with one curl (--next).
source "${KTAP_HELPERS:?run through selftests/run_tests}"

top=$(cd "$(dirname "$0")/.." && pwd)
source "$top/selftests/lib/servers.sh"
W=$(mktemp -d /tmp/servers-selfcheck.XXXXXX)
NREQ=200			# requests to the faulty server
FAIL=20 RESET=10 SLOW=10	# its percentages
SLOW_MS=200			# its delay
DELAY_MS=200			# srv_shape's added round trip
RATE=40mbit RATE_BPS=5000000	# srv_shape's rate, in bytes/s too
CS=65536			# chunk size

cleanup() {
	srv_unshape
	srv_stop_all "$W"
	rm -rf "$W"
}
trap cleanup EXIT

ktap_print_header
for tool in curl openssl tc sha256sum; do
	if ! command -v "$tool" >/dev/null; then
		ktap_skip_all "no $tool in the test VM"
		exit "$KSFT_SKIP"
	fi
done
if ! command -v "$SRV_NGINX" >/dev/null; then
	ktap_skip_all "nginx is not installed (apt-get install nginx)"
	exit "$KSFT_SKIP"
fi
ktap_set_plan 20

# t DESC EXPR: one result, passed when the shell expression EXPR is true.
t() { if eval "$2"; then ktap_test_pass "$1"; else ktap_test_fail "$1"; fi; }
# finish: the servers' error logs as comments if something failed, the end
finish() {
	local f
	if [ "$KTAP_CNT_FAIL" != 0 ]; then
		for f in "$W"/*/error.log; do
			[ -e "$f" ] && grep -v '\[notice\]' "$f" | tail -n 5 |
				sed "s|^|# ${f#"$W"/}: |"
		done
	fi
	ktap_finished
}
# need CMD...: run CMD, a server start; bail out with SRV_ERR if it fails
need() { "$@" || ktap_exit_fail_msg "$1: $SRV_ERR"; }
# section NAME: a comment with the time so far
section() { ktap_print_msg "$SECONDS s: $1"; }
# near N P: N of NREQ is within 4 standard deviations (and 1) of P%
near() {
	local m=$((NREQ * $2)) v r=1 i
	# r = 100 * 4 sd = sqrt(16 NREQ P (100 - P)), by Newton's method
	v=$((16 * NREQ * $2 * (100 - $2)))
	for ((i = 0; i < 30; i++)); do
		r=$(( (r + v / r) / 2 ))
	done
	[ $(($1 * 100)) -ge $((m - r - 100)) ] &&
		[ $(($1 * 100)) -le $((m + r + 100)) ]
}
# ms SECONDS: curl's SECONDS (with a fraction of 6 digits) in whole ms
ms() {
	local f=${1#*.}000
	echo $(( 10#${1%.*} * 1000 + 10#${f:0:3} ))
}
# fetch OUT CURL-ARGS...: one curl; its -w lines "KEY VALUE..." go into
# the array R (R[KEY]="VALUE...")
declare -A R
fetch() {
	local out=$1 k v
	shift
	curl "$@" >"$W/out.$out" 2>"$W/out.$out.err"
	R=()
	while read -r k v; do R[$k]=$v; done <"$W/out.$out"
}
# same FILE STOREFILE: byte-equal
same() { cmp -s "$1" "$2"; }
# part FILE STOREFILE SKIP LEN: FILE's first LEN bytes are STOREFILE's from
# byte SKIP on (curl's size_download says FILE has LEN bytes)
part() { cmp -s -i "0:$3" -n "$4" "$1" "$2"; }

# The store: four 64 KiB chunks under their SHA-256 (as a chunk store
# holds them), a 2-byte file and a 16 MiB one.
mkdir -p "$W/store"
head -c $((4 * CS)) /dev/urandom | split -b $CS - "$W/c"
i=0 dirs=()
while read -r a f; do
	i=$((i + 1))
	A[i]=$a P[i]=/${a:0:2}/$a F[i]=$W/store/${a:0:2}/$a C[i]=$f
	dirs+=("$W/store/${a:0:2}")
done < <(sha256sum "$W"/c??)
mkdir -p "${dirs[@]}"
for i in 1 2 3 4; do mv "${C[i]}" "${F[i]}"; done
echo x >"$W/store/tiny"
head -c 16M /dev/urandom >"$W/store/big"

# ------------------------------------------------- the store server
section "the store server"
for v in sport h2port tport pport fport f2port; do
	need srv_free_port "$v"
done
need srv_nginx_store "$W/s" "$W/store" "$sport" --h2c-port "$h2port"
need srv_nginx_store "$W/ts" "$W/store" "$tport" --tls
S=$(srv_url "$W/s") TS=$(srv_url "$W/ts") H2=$(<"$W/s/h2c-url")
CA=$W/ts/ca.pem
fetch store -s -o "$W/g1" -w 'get %{http_code} %{http_version} %{num_connects}\n' \
		"$S${P[1]}" \
	--next -s -r 1000-5095 -D "$W/h2" -o "$W/g2" \
		-w 'range %{http_code} %{size_download}\n' \
		"$S${P[2]}" \
	--next -s -o /dev/null -w 'ka1 %{http_code} %{num_connects}\n' "$S${P[3]}" \
	--next -s -o /dev/null -w 'ka2 %{http_code} %{num_connects}\n' "$S${P[4]}" \
	--next -s --http2-prior-knowledge -o "$W/g3" \
		-w 'h2c %{http_code} %{http_version}\n' "$H2${P[1]}" \
	--next -s --cacert "$CA" -o "$W/g4" \
		-w 'tls %{http_code} %{http_version}\n' "$TS${P[1]}" \
	--next -s --cacert "$CA" --http1.1 -r 0-99 -o "$W/g5" \
		-w 'tls1 %{http_code} %{http_version} %{size_download}\n' \
		"https://localhost:$tport${P[1]}" \
	--next -s -o /dev/null -w 'none %{http_code}\n' "$S/00/$(printf %064d 0)" \
	--next -s -o /dev/null -w 'noca %{http_code} %{ssl_verify_result}\n' \
		"$TS${P[1]}"

t "store: a chunk GET over HTTP/1.1 is 200 and byte-equal to the file (${R[get]})" \
	'[ "${R[get]}" = "200 1.1 1" ] && same "$W/g1" "${F[1]}"'
t "store: a Range GET is 206 with the 4096 bytes asked (${R[range]})" \
	'[ "${R[range]}" = "206 4096" ] && part "$W/g2" "${F[2]}" 1000 4096 &&
	 grep -qi "^content-range: bytes 1000-5095/$CS" "$W/h2"'
# Both on the first GET's connection, one after the other, by the log.
read -r c1 r1 c2 r2 < <(awk -v a="${P[3]}" -v b="${P[4]}" \
	'$8 == a { x = $2 " " $3 } $8 == b { y = $2 " " $3 } END { print x, y }' \
	"$W/s/access.log")
t "store: keep-alive: GETs share a connection (${R[ka1]}, ${R[ka2]}; connection $c1 requests $r1, $r2)" \
	'[ "${R[ka1]}" = "200 0" ] && [ "${R[ka2]}" = "200 0" ] &&
	 [ -n "$c2" ] && [ "$c1" = "$c2" ] && [ "$r2" = $((r1 + 1)) ]'
t "store: HTTP/2 over plain TCP with prior knowledge on --h2c-port (${R[h2c]})" \
	'[ "${R[h2c]}" = "200 2" ] && same "$W/g3" "${F[1]}" &&
	 grep -q " HTTP/2.0 " "$W/s/access.log"'
t "store --tls: HTTP/2 by ALPN, and HTTP/1.1 for localhost, verified with ca.pem (${R[tls]}; ${R[tls1]})" \
	'[ "${R[tls]}" = "200 2" ] && same "$W/g4" "${F[1]}" &&
	 [ "${R[tls1]}" = "206 1.1 100" ] && part "$W/g5" "${F[1]}" 0 100'
t "store --tls: a client without ca.pem refuses the certificate (${R[noca]})" \
	'[ "${R[noca]%% *}" = 000 ] && [ "${R[noca]#* }" != 0 ]'
t "store: a chunk not in the store is 404 (${R[none]})" '[ "${R[none]}" = 404 ]'

# ------------------------------------------------- the caching proxy
section "the caching proxy"
need srv_nginx_proxy "$W/p" "$S" "$pport"
PX=$(srv_url "$W/p")
fetch proxy -s -o "$W/g6" -w 'p1 %{http_code} %header{x-cache-status}\n' \
		"$PX${P[2]}" \
	--next -s -o "$W/g7" -w 'p2 %{http_code} %header{x-cache-status}\n' \
		"$PX${P[2]}" \
	--next -s -r 512-1023 -o "$W/g8" \
		-w 'p3 %{http_code} %header{x-cache-status} %{size_download}\n' \
		"$PX${P[2]}"
up=$(srv_requests "$W/s" "${P[2]}" 200)
t "proxy: the first GET is a MISS, the second a HIT; upstream asked once (${R[p1]}; ${R[p2]}; $up)" \
	'[ "${R[p1]}" = "200 MISS" ] && [ "${R[p2]}" = "200 HIT" ] &&
	 [ "$up" = 1 ] && same "$W/g6" "${F[2]}" && same "$W/g7" "${F[2]}"'
t "proxy: a Range GET of a cached chunk is a 206 HIT with those bytes (${R[p3]})" \
	'[ "${R[p3]}" = "206 HIT 512" ] && part "$W/g8" "${F[2]}" 512 512 &&
	 [ "$(srv_requests "$W/s" "${P[2]}" 200)" = 1 ]'

# ------------------------------------------------- the faulty server
section "the faulty server"
need srv_nginx_faulty "$W/f" "$W/store" "$fport" --fail-percent $FAIL \
	--reset-percent $RESET --slow-percent $SLOW --slow-ms $SLOW_MS \
	--fail-path "/${A[4]}\$" --fail-status 404
need srv_nginx_faulty "$W/f2" "$W/store" "$f2port" --slow-percent 100 \
	--slow-ms 300
FU=$(srv_url "$W/f")
# A new connection for each request: curl sends a request again by
# itself when a reused connection closes without an answer.
for ((i = 0; i < NREQ; i++)); do
	echo "url = \"$FU${P[1]}\""
	echo 'output = "/dev/null"'
done >"$W/f.cfg"
curl -s --no-progress-meter -Z --parallel-max 8 -K "$W/f.cfg" \
	-H 'Connection: close' -w '%{http_code} %{size_download}\n' \
	>"$W/f.out" 2>"$W/f.err"
n500=0 n444=0 n200=0
while read -r code size; do
	case "$code $size" in
	"500 "*) n500=$((n500 + 1)) ;;
	"000 "*) n444=$((n444 + 1)) ;;
	"200 $CS") n200=$((n200 + 1)) ;;
	esac
done <"$W/f.out"
ktap_print_msg "faulty server: $NREQ requests: $n200 whole chunks, $n500 500s, $n444 closed without an answer"
t "faulty: 500 for about $FAIL% of $NREQ requests ($n500)" \
	'near "$n500" $FAIL'
t "faulty: closed without an answer (444) for about $RESET% ($n444)" \
	'near "$n444" $RESET &&
	 [ "$(srv_requests "$W/f" "${P[1]}" 444)" = "$n444" ]'
t "faulty: every other answer is the whole chunk ($n200 + $n500 + $n444 = $NREQ)" \
	'[ $((n200 + n500 + n444)) = $NREQ ]'
# The delayed answers, by the server's log: its pick and request time.
read -r nslow nslow200 minms maxms < <(awk -v u="${P[1]}" '
	$8 == u && $11 == "slow" { n++; ok += $4 == 200; t = $6 * 1000
		if (n == 1 || t < lo) lo = t; if (t > hi) hi = t }
	END { printf "%d %d %d %d\n", n, ok, lo, hi }' "$W/f/access.log")
t "faulty: about $SLOW% answered after $SLOW_MS ms ($nslow, $minms..$maxms ms), all 200" \
	'near "$nslow" $SLOW && [ "$nslow200" = "$nslow" ] &&
	 [ "$minms" -ge $((SLOW_MS - 2)) ] && [ "$maxms" -le $((SLOW_MS + 1000)) ]'

args=(-s -r 0-1023 -o "$W/g9" -w 'slow %{http_code} %{time_total} %{size_download}\n'
      "$(srv_url "$W/f2")${P[3]}")
for i in 1 2 3 4 5 6 7 8; do
	args+=(--next -s -H 'Connection: close' -o /dev/null
	       -w "fp$i %{http_code}\n" "$FU${P[4]}")
done
fetch faulty "${args[@]}"
codes="${R[fp1]} ${R[fp2]} ${R[fp3]} ${R[fp4]} ${R[fp5]} ${R[fp6]} ${R[fp7]} ${R[fp8]}"
read -r code tt size <<<"${R[slow]}"
slow_ms=$(ms "$tt")
t "faulty: a delayed answer comes after the delay, with the bytes asked ($code in $slow_ms ms)" \
	'[ "$code $size" = "206 1024" ] && [ "$slow_ms" -ge 300 ] &&
	 part "$W/g9" "${F[3]}" 0 1024'
t "faulty: the --fail-path chunk is 404 every time ($codes)" \
	'[ "$codes" = "404 404 404 404 404 404 404 404" ]'

# ------------------------------------------------- the shaped link
section "the shaped link"
# measure URL [OTHER|-]: the shortest of 5 TCP connects (one round trip)
# to URL in RTT, and of 5 to OTHER in ORTT, ms; unless OTHER is -, the
# speed of URL/big from its first byte to its last in BPS, bytes/s
measure() {
	local i a=() o=${2:-}
	[ "$o" = - ] && o=''
	for i in 1 2 3 4 5; do
		a+=(--next -s -H 'Connection: close' -o /dev/null
		    -w "c$i %{time_connect}\n" "$1/tiny")
		[ -n "$o" ] && a+=(--next -s -H 'Connection: close'
					-o /dev/null -w "o$i %{time_connect}\n" "$o/tiny")
	done
	[ "${2:-}" != - ] && a+=(--next -s -o /dev/null
		-w 'big %{size_download} %{time_starttransfer} %{time_total}\n'
		"$1/big")
	fetch shape "${a[@]:1}"
	RTT='' ORTT='' BPS=0
	for i in 1 2 3 4 5; do
		v=$(ms "${R[c$i]}")
		[ -z "$RTT" ] || [ "$v" -lt "$RTT" ] && RTT=$v
		[ -n "$o" ] || continue
		v=$(ms "${R[o$i]}")
		[ -z "$ORTT" ] || [ "$v" -lt "$ORTT" ] && ORTT=$v
	done
	if [ -n "${R[big]:-}" ]; then
		read -r size t1 t2 <<<"${R[big]}"
		t1=$(ms "$t1") t2=$(ms "$t2")
		[ "$t2" -gt "$t1" ] && BPS=$(( size * 1000 / (t2 - t1) ))
	fi
}
measure "$S"
rtt0=$RTT bps0=$BPS
ktap_print_msg "unshaped: connect $rtt0 ms, $((bps0 / 1000)) kB/s"
srv_shape "$sport" $RATE $DELAY_MS || ktap_print_msg "srv_shape: $SRV_ERR"
measure "$S" "$PX"
rtt1=$RTT bps1=$BPS rttp=$ORTT
ktap_print_msg "shaped to $RATE and +$DELAY_MS ms: connect $rtt1 ms, $((bps1 / 1000)) kB/s; another port: connect $rttp ms"
t "shape: the round trip grows by about $DELAY_MS ms ($rtt0 -> $rtt1 ms)" \
	'[ $((rtt1 - rtt0)) -ge $((DELAY_MS * 9 / 10)) ] &&
	 [ $((rtt1 - rtt0)) -le $((DELAY_MS * 3 / 2)) ]'
if [ "$bps0" -ge $((RATE_BPS * 2)) ]; then
	t "shape: 16 MiB come at about $RATE ($((bps1 * 8 / 1000)) kbit/s; unshaped $((bps0 * 8 / 1000)))" \
		'[ "$bps1" -le $((RATE_BPS * 11 / 10)) ] &&
		 [ "$bps1" -ge $((RATE_BPS * 6 / 10)) ]'
else
	ktap_test_skip "shape: the unshaped link ($((bps0 * 8 / 1000)) kbit/s) is not twice $RATE"
fi
t "shape: another port on lo is not delayed ($rttp ms)" \
	'[ "$rttp" -le $((rtt0 + DELAY_MS / 2)) ]'
srv_unshape
measure "$S" -
rtt2=$RTT
t "unshape: the round trip is back ($rtt2 ms), no qdisc left on lo" \
	'[ "$rtt2" -le $((rtt0 + DELAY_MS / 2)) ] &&
	 ! tc qdisc show dev lo | grep -Eq "prio|netem"'

# ------------------------------------------------- stopping
section "stopping"
read -ra pids <<<"$(srv_pids "$W/s" "$W/ts" "$W/p" "$W/f" "$W/f2")"
ok=1
srv_stop "$W/s" "$W/ts" "$W/p" "$W/f" "$W/f2" || ok=0
left=''
for p in "${pids[@]}"; do srv_alive "$p" && left+=" $p"; done
others=$(srv_nginx_pids)
t "stop: the ${#pids[@]} nginx processes of 5 servers are gone (left:${left:- none}; others: ${others:-none})" \
	'[ $ok = 1 ] && [ ${#pids[@]} -ge 10 ] && [ -z "$left" ] &&
	 [ -z "$others" ] && ! curl -s -o /dev/null "$S/tiny"'
section "done"
finish
