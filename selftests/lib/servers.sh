# SPDX-License-Identifier: GPL-2.0
#
# servers.sh: nginx servers and a shaped loopback link for the store tests,
# sourced by the selftests that run as root in the test VM
# (Documentation/test-servers.md).  Every server lives in a directory of
# its own (its nginx.conf, PID file, logs, temporary files, cache and
# certificate), binds 127.0.0.1 only, runs as a daemon and is stopped by
# the PID in its PID file.  Nothing under /etc or /var is read or written.
#
#   srv_free_port [VAR]
#	a TCP and UDP port of 127.0.0.1 that nothing uses, in 20000..31999
#	(below the ephemeral range); with VAR, set VAR to it and remember it
#	so that this shell is not given it twice; without, print it
#   srv_nginx_store DIR STOREDIR PORT [--tls] [--h2c-port PORT2]
#	serve the chunk store STOREDIR (DIR/ab/<64 hex>; any file really)
#	read-only on PORT: HTTP/1.1 with keep-alive and byte ranges; with
#	--tls HTTPS instead, HTTP/1.1 and HTTP/2 by ALPN, with a self-signed
#	certificate for 127.0.0.1 and localhost whose trust anchor is
#	DIR/ca.pem; with --h2c-port, HTTP/2 over plain TCP on PORT2 as well
#	(prior knowledge only: nginx 1.22 cannot serve both on one port)
#   srv_nginx_proxy DIR UPSTREAM_URL PORT
#	a caching proxy of UPSTREAM_URL (http:// or https://, not verified)
#	on PORT: 200 and 206 answers cached in DIR/cache for a day, ranges
#	served from the cached whole file, concurrent misses of one URL sent
#	upstream once (proxy_cache_lock), X-Cache-Status: MISS, HIT, ...
#   srv_nginx_faulty DIR STOREDIR PORT [--fail-percent P]
#		[--reset-percent R] [--slow-percent S --slow-ms MS]
#		[--fail-path REGEX [--fail-status CODE]]
#	serve STOREDIR as srv_nginx_store does, but answer P% of requests
#	with 500, close R% of connections without an answer (nginx's 444),
#	answer S% only after MS milliseconds (then normally), chosen at
#	random for each request; and answer every request whose path
#	matches the PCRE REGEX with CODE (default 500; 444 closes), always
#   srv_stop DIR...	stop those servers: SIGTERM, after 5 s SIGKILL to
#			each master and its workers; returns once all are
#			gone (a PID that is no nginx any more is left alone)
#   srv_stop_all [TOP]	stop every server started from this shell, and
#			every one whose directory is under TOP
#   srv_pids DIR...	print the PIDs of the servers' masters and workers
#   srv_nginx_pids	print the PIDs of all nginx processes running here
#   srv_alive PID	PID runs (and is not a zombie)
#   srv_url DIR		print the server's base URL (also in DIR/url)
#   srv_requests DIR URI [STATUS]
#			print how many requests for URI (as sent, with any
#			query) DIR/access.log shows, only with STATUS if given
#   srv_shape PORT RATE DELAY_MS
#	shape the loopback traffic of 127.0.0.1:PORT (TCP, both directions,
#	client or server end) with netem: DELAY_MS added to every round trip
#	(half on the way to PORT, half on the way back) and each direction
#	limited to RATE (tc's syntax: 40mbit, 5mbps = 5 MB/s; 0 for none);
#	other loopback traffic is not touched.  Again for the same PORT: new
#	figures.  Up to 7 ports.
#   srv_unshape		remove all shaping from lo
#
# Each returns 0 or 1; on 1, SRV_ERR says why (these functions print
# nothing else), with the end of the server's error log where it has one.
#
# Access log (DIR/access.log), one line per request, space-separated:
#   msec connection request-on-connection status bytes-sent request-time
#   method uri protocol cache-status fault "range"
# msec is the Unix time in ms resolution, connection nginx's serial number
# of the connection, request-time seconds with ms resolution, uri the
# request target as sent, cache-status the proxy's (- elsewhere), fault
# the faulty server's random pick (ok, fail, reset, slow) or path for a
# --fail-path request (- elsewhere), range the Range header ("-" if none).

SRV_NGINX=${SRV_NGINX:-nginx}	# the nginx binary
SRV_ERR=''			# why the last function that failed failed
SRV_DIRS=()			# servers started from this shell
SRV_PORTS=()			# ports srv_free_port VAR handed out
declare -gA SRV_BAND		# shaped port -> its first prio band
SRV_NEXT_BAND=2			# the next free pair of prio bands on lo
SRV_NAP_FD=''			# a pipe srv__nap reads from

# srv__fail MSG [DIR]: SRV_ERR=MSG (and DIR's error log's end); return 1
srv__fail() {
	SRV_ERR=$1
	if [ -n "${2:-}" ] && [ -s "$2/error.log" ]; then
		SRV_ERR+=" ($(tail -n 3 "$2/error.log" | tr '\n' ' '))"
	fi
	return 1
}

srv_alive() {
	local l
	[[ $1 =~ ^[0-9]+$ ]] || return 1
	read -r l 2>/dev/null <"/proc/$1/stat" || return 1
	l=${l##*) }
	[ "${l%% *}" != Z ]
}

# srv__nap SECONDS: sleep without starting a program (slow in the guest):
# a read that times out on a pipe nobody writes to, opened once
srv__nap() {
	[ -n "${SRV_NAP_FD:-}" ] || exec {SRV_NAP_FD}<> <(:)
	read -r -t "$1" -u "$SRV_NAP_FD"
	return 0
}

# srv__put: copy stdin (a here-document) to stdout without starting cat
srv__put() {
	local v
	IFS= read -r -d '' v
	printf '%s' "$v"
}

# srv__path WHAT PATH: PATH is absolute and safe to write into nginx.conf
srv__path() {
	case $2 in
	/*) ;;
	*) srv__fail "$1 $2: not an absolute path"; return 1 ;;
	esac
	if [[ $2 =~ [[:space:]\"\'\;\$\{\}\\] ]]; then
		srv__fail "$1 $2: spaces, quotes, ';', '\$', braces or '\\' in it"
		return 1
	fi
}

# srv__port PORT: a port number nginx can listen on
srv__port() {
	[[ $1 =~ ^[1-9][0-9]{0,4}$ ]] && [ "$1" -le 65535 ] ||
		srv__fail "bad port '$1'"
}

# srv__used PORT: some TCP or UDP socket here has the local port PORT
# (from /proc/net: ss would be one more program to start)
srv__used() {
	local hex f l
	printf -v hex '%04X' "$1"
	for f in /proc/net/tcp /proc/net/tcp6 /proc/net/udp /proc/net/udp6; do
		[ -r "$f" ] || continue
		while read -r _ l _; do
			[[ $l == *":$hex" ]] && return 0
		done <"$f"
	done
	return 1
}

srv_free_port() {
	# Names of their own: VAR may be any name but these.
	local _srv_p _srv_i
	for ((_srv_i = 0; _srv_i < 500; _srv_i++)); do
		_srv_p=$((20000 + RANDOM % 12000))
		[[ " ${SRV_PORTS[*]} " == *" $_srv_p "* ]] && continue
		srv__used "$_srv_p" && continue
		if [ -n "${1:-}" ]; then
			SRV_PORTS+=("$_srv_p")
			printf -v "$1" %s "$_srv_p"
		else
			echo "$_srv_p"
		fi
		return 0
	done
	srv__fail "no free port found in 20000..31999"
}

# srv__head DIR: the start of every nginx.conf, up to inside http { }
srv__head() {
	local d=$1
	echo "# written by selftests/lib/servers.sh"
	echo "daemon on;"
	echo "master_process on;"
	echo "worker_processes 1;"
	# As root, workers would run as nobody, who cannot read mktemp -d
	# directories.
	[ "$EUID" = 0 ] && echo "user root;"
	srv__put <<EOF
pid "$d/nginx.pid";
lock_file "$d/nginx.lock";
error_log "$d/error.log" notice;
events {
	worker_connections 1024;
}
http {
	default_type application/octet-stream;
	types {
	}
	log_format sb '\$msec \$connection \$connection_requests \$status '
		'\$bytes_sent \$request_time \$request_method \$request_uri '
		'\$server_protocol \$upstream_cache_status \$sb_fault_log '
		'"\$http_range"';
	access_log "$d/access.log" sb;
	client_body_temp_path "$d/tmp/body";
	proxy_temp_path "$d/tmp/proxy";
	fastcgi_temp_path "$d/tmp/fastcgi";
	uwsgi_temp_path "$d/tmp/uwsgi";
	scgi_temp_path "$d/tmp/scgi";
	sendfile on;
	tcp_nopush on;
	tcp_nodelay on;
	keepalive_timeout 75s;
	keepalive_requests 100000;
	server_tokens off;
EOF
}

# srv__start DIR: start the nginx of DIR/nginx.conf, wait for its PID file
srv__start() {
	local d=$1 i
	[ -e "$d/nginx.pid" ] && rm -f "$d/nginx.pid"
	command -v "$SRV_NGINX" >/dev/null ||
		{ srv__fail "no $SRV_NGINX installed"; return 1; }
	# -e: the error log before nginx.conf is read (not /var/log/nginx).
	if ! "$SRV_NGINX" -p "$d/" -c "$d/nginx.conf" -e "$d/error.log" \
		>"$d/start.log" 2>&1; then
		SRV_ERR="nginx in $d did not start: $(tr '\n' ' ' <"$d/start.log")"
		return 1
	fi
	SRV_DIRS+=("$d")
	# The master forks into the background before it writes its PID.
	for ((i = 0; i < 200; i++)); do
		[ -s "$d/nginx.pid" ] && return 0
		srv__nap 0.05
	done
	srv__fail "nginx in $d wrote no PID file" "$d"
}

# srv__cert DIR: a self-signed certificate for 127.0.0.1 and localhost
srv__cert() {
	local d=$1
	[ -s "$d/cert.pem" ] && [ -s "$d/key.pem" ] && return 0
	openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 \
		-nodes -days 30 -subj /CN=127.0.0.1 \
		-addext subjectAltName=IP:127.0.0.1,DNS:localhost \
		-keyout "$d/key.pem" -out "$d/cert.pem" >"$d/openssl.log" 2>&1 ||
		{ srv__fail "openssl: $(tail -n 2 "$d/openssl.log" | tr '\n' ' ')"; return 1; }
	cp "$d/cert.pem" "$d/ca.pem"
}

# srv__prepare DIR: make DIR and its temporary directory, unless a server
# runs there
srv__prepare() {
	local pid=''
	srv__path "server directory" "$1" || return 1
	[ -s "$1/nginx.pid" ] && read -r pid <"$1/nginx.pid"
	if [ -n "$pid" ] && srv__nginx "$pid"; then
		srv__fail "a server already runs in $1"
		return 1
	fi
	[ -d "$1/tmp" ] || mkdir -p "$1/tmp" ||
		{ srv__fail "cannot make $1/tmp"; return 1; }
}

# srv__static INDENT STOREDIR: the directives that serve the store
srv__static() {
	printf '%sroot "%s";\n%sautoindex off;\n' "$1" "$2" "$1"
}

srv_nginx_store() {
	local d=$1 store=$2 port=$3 tls='' h2c='' proto=http
	shift 3 || {
		srv__fail "usage: srv_nginx_store DIR STOREDIR PORT [--tls] [--h2c-port PORT2]"
		return 1
	}
	while [ $# -gt 0 ]; do
		case $1 in
		--tls) tls=1 ;;
		--h2c-port)
			h2c=${2:-}
			[ -n "$h2c" ] || { srv__fail "--h2c-port needs a port"; return 1; }
			shift
			;;
		*) srv__fail "srv_nginx_store: unknown option $1"; return 1 ;;
		esac
		shift
	done
	srv__prepare "$d" && srv__path "store" "$store" && srv__port "$port" ||
		return 1
	[ -z "$h2c" ] || srv__port "$h2c" || return 1
	[ -d "$store" ] || { srv__fail "no store directory $store"; return 1; }
	if [ -n "$tls" ]; then
		srv__cert "$d" || return 1
		proto=https
	fi
	{
		srv__head "$d"
		echo '	map $status $sb_fault_log { default "-"; }'
		echo '	server {'
		if [ -n "$tls" ]; then
			echo "		listen 127.0.0.1:$port ssl http2;"
			echo "		ssl_certificate \"$d/cert.pem\";"
			echo "		ssl_certificate_key \"$d/key.pem\";"
			echo "		ssl_protocols TLSv1.2 TLSv1.3;"
		else
			echo "		listen 127.0.0.1:$port;"
		fi
		[ -n "$h2c" ] && echo "		listen 127.0.0.1:$h2c http2;"
		echo '		location / {'
		srv__static '			' "$store"
		echo '		}'
		echo '	}'
		echo '}'
	} >"$d/nginx.conf"
	echo "$proto://127.0.0.1:$port" >"$d/url"
	[ -e "$d/h2c-url" ] && rm -f "$d/h2c-url"
	[ -n "$h2c" ] && echo "http://127.0.0.1:$h2c" >"$d/h2c-url"
	srv__start "$d"
}

srv_nginx_proxy() {
	local d=$1 up=$2 port=$3 scheme hostport path re
	[ $# = 3 ] || { srv__fail "usage: srv_nginx_proxy DIR UPSTREAM_URL PORT"; return 1; }
	srv__prepare "$d" && srv__port "$port" || return 1
	# scheme://host:port or [v6]:port, and a path nginx.conf can hold
	re='^(https?)://([A-Za-z0-9.:-]+|\[[0-9A-Fa-f:]+\](:[0-9]+)?)'
	re+=$'(/[^[:space:]"\';${}\\\\]*)?$'
	if [[ $up =~ $re ]]; then
		scheme=${BASH_REMATCH[1]}
		hostport=${BASH_REMATCH[2]}
		path=${BASH_REMATCH[4]}
	else
		srv__fail "srv_nginx_proxy: bad upstream URL '$up'"
		return 1
	fi
	[ -d "$d/cache" ] || mkdir "$d/cache" ||
		{ srv__fail "cannot make $d/cache"; return 1; }
	{
		srv__head "$d"
		echo '	map $status $sb_fault_log { default "-"; }'
		srv__put <<EOF
	proxy_cache_path "$d/cache" levels=1:2 keys_zone=sb_cache:4m
		max_size=4g inactive=1d use_temp_path=off;
	upstream sb_upstream {
		server $hostport;
		keepalive 16;
	}
	server {
		listen 127.0.0.1:$port;
		location / {
			proxy_pass $scheme://sb_upstream$path;
			proxy_http_version 1.1;
			proxy_set_header Connection "";
			proxy_set_header Host "$hostport";
			proxy_ssl_server_name off;
			proxy_cache sb_cache;
			proxy_cache_valid 200 206 1d;
			proxy_cache_lock on;
			proxy_cache_lock_timeout 30s;
			add_header X-Cache-Status \$upstream_cache_status always;
		}
	}
}
EOF
	} >"$d/nginx.conf"
	echo "http://127.0.0.1:$port" >"$d/url"
	srv__start "$d"
}

# srv__percent VAR WHAT VALUE: VALUE is a percentage split_clients takes
# (0 to 100, 2 decimals at most); VAR=VALUE in hundredths of a per cent
srv__percent() {
	local f
	if [[ $3 =~ ^([0-9]{1,3})(\.([0-9]{1,2}))?$ ]]; then
		f=${BASH_REMATCH[3]}00
		printf -v "$1" %d $((10#${BASH_REMATCH[1]} * 100 + 10#${f:0:2}))
		[ "${!1}" -le 10000 ] && return 0
	fi
	srv__fail "$2 '$3': not a percentage (0 to 100, 2 decimals at most)"
}

srv_nginx_faulty() {
	local d=$1 store=$2 port=$3 fail=0 reset=0 slow=0 ms='' re='' code=500
	local sum hf hr hs
	shift 3 || {
		srv__fail "usage: srv_nginx_faulty DIR STOREDIR PORT [OPTIONS]"
		return 1
	}
	while [ $# -gt 0 ]; do
		case $1 in
		--fail-percent) fail=${2:-} ;;
		--reset-percent) reset=${2:-} ;;
		--slow-percent) slow=${2:-} ;;
		--slow-ms) ms=${2:-} ;;
		--fail-path) re=${2:-} ;;
		--fail-status) code=${2:-} ;;
		*) srv__fail "srv_nginx_faulty: unknown option $1"; return 1 ;;
		esac
		shift 2 || { srv__fail "srv_nginx_faulty: $1 needs a value"; return 1; }
	done
	srv__prepare "$d" && srv__path "store" "$store" && srv__port "$port" &&
		srv__percent hf --fail-percent "$fail" &&
		srv__percent hr --reset-percent "$reset" &&
		srv__percent hs --slow-percent "$slow" || return 1
	[ -d "$store" ] || { srv__fail "no store directory $store"; return 1; }
	sum=$((hf + hr + hs))
	[ $sum -le 10000 ] ||
		{ srv__fail "the percentages add up to over 100"; return 1; }
	if [ $hs -gt 0 ] && ! [[ $ms =~ ^[1-9][0-9]{0,6}$ ]]; then
		srv__fail "--slow-percent needs --slow-ms MS (1 or more)"
		return 1
	fi
	[[ $code =~ ^[1-5][0-9][0-9]$ ]] ||
		{ srv__fail "--fail-status '$code': not an HTTP status"; return 1; }
	if [[ $re == *\"* ]] || [[ $re == *\\ ]]; then
		srv__fail "--fail-path '$re': no '\"' or trailing '\\' please"
		return 1
	fi
	{
		srv__head "$d"
		# A pick per request: split_clients hashes the request's
		# random ID (MurmurHash2 of 32 random hex digits).
		echo '	split_clients "${request_id}" $sb_fault {'
		[ $hf = 0 ] || echo "		$fail% fail;"
		[ $hr = 0 ] || echo "		$reset% reset;"
		[ $hs = 0 ] || echo "		$slow% slow;"
		[ $sum = 10000 ] || echo '		* ok;'
		echo '	}'
		srv__put <<EOF
	server {
		listen 127.0.0.1:$port;
		set \$sb_fault_log \$sb_fault;
EOF
		[ -n "$ms" ] && srv__put <<EOF
		recursive_error_pages on;
		error_page 418 = @slow;
EOF
		if [ -n "$re" ]; then
			srv__put <<EOF
		location ~ "$re" {
			set \$sb_fault_log path;
			return $code;
		}
EOF
		fi
		srv__put <<EOF
		location / {
			if (\$sb_fault = fail) {
				return 500;
			}
			if (\$sb_fault = reset) {
				return 444;
			}
			if (\$sb_fault = slow) {
				return 418;
			}
$(srv__static '			' "$store")
		}
EOF
		# The delay: a proxy_pass whose upstream name has to be
		# resolved, by a "DNS server" on a UDP port nobody listens
		# on.  The lookup times out after resolver_timeout, the
		# proxy answers 502, and error_page serves the file after all.
		[ -n "$ms" ] && srv__put <<EOF
		location @slow {
			resolver 127.0.0.1:$port ipv6=off;
			resolver_timeout ${ms}ms;
			set \$sb_nowhere slow.invalid;
			proxy_pass http://\$sb_nowhere;
			error_log "$d/slow.log" error;
			error_page 502 504 = @store;
		}
		location @store {
$(srv__static '			' "$store")
		}
EOF
		echo '	}'
		echo '}'
	} >"$d/nginx.conf"
	echo "http://127.0.0.1:$port" >"$d/url"
	srv__start "$d"
}

# srv__scan: SRV_PPID[pid]=its parent and SRV_NGX[pid]=1 for every live
# nginx, from one pass over /proc
declare -gA SRV_PPID SRV_NGX
srv__scan() {
	local f l pid comm
	SRV_PPID=()
	SRV_NGX=()
	for f in /proc/[0-9]*/stat; do
		read -r l 2>/dev/null <"$f" || continue
		pid=${l%% *}
		comm=${l#*(}
		comm=${comm%)*}
		l=${l##*) }
		[ "${l%% *}" = Z ] && continue
		l=${l#* }
		SRV_PPID[$pid]=${l%% *}
		[ "$comm" = nginx ] && SRV_NGX[$pid]=1
	done
	return 0
}

# srv__family PID: FAMILY=PID and its children (after srv__scan)
srv__family() {
	local p
	FAMILY=$1
	for p in "${!SRV_PPID[@]}"; do
		[ "${SRV_PPID[$p]}" = "$1" ] && FAMILY+=" $p"
	done
	return 0
}

srv_pids() {
	local d pid FAMILY l=''
	srv__scan
	for d in "$@"; do
		read -r pid 2>/dev/null <"$d/nginx.pid" || continue
		[ -n "${SRV_NGX[$pid]:-}" ] || continue
		srv__family "$pid"
		l+=" $FAMILY"
	done
	echo $l
}

# srv__nginx PID: PID is a live nginx process (not a reused PID)
srv__nginx() {
	local c
	srv_alive "$1" && read -r c 2>/dev/null <"/proc/$1/comm" &&
		[ "$c" = nginx ]
}

srv_nginx_pids() {
	srv__scan
	echo "${!SRV_NGX[@]}"
}

# srv__left PIDS...: LEFT=those of PIDS still alive
srv__left() {
	local p
	LEFT=''
	for p in "$@"; do srv_alive "$p" && LEFT+=" $p"; done
}

srv_stop() {
	local d pid pids='' i rc=0 LEFT FAMILY
	srv__scan
	# Signal them all first, then wait: they stop in parallel.
	for d in "$@"; do
		[ -s "$d/nginx.pid" ] || continue
		read -r pid <"$d/nginx.pid"
		if ! [[ $pid =~ ^[0-9]+$ ]]; then
			srv__fail "bad PID file $d/nginx.pid"
			rc=1
			continue
		fi
		rm -f "$d/nginx.pid"
		[ -n "${SRV_NGX[$pid]:-}" ] || continue
		# The workers too: after a SIGKILL of the master they
		# would live on.
		srv__family "$pid"
		pids+=" $FAMILY"
		kill -TERM "$pid" 2>/dev/null
	done
	[ -n "$pids" ] || return $rc
	for ((i = 0; i < 100; i++)); do
		srv__left $pids
		[ -z "$LEFT" ] && return $rc
		srv__nap 0.05
	done
	kill -KILL $LEFT 2>/dev/null
	for ((i = 0; i < 100; i++)); do
		srv__left $pids
		[ -z "$LEFT" ] && return $rc
		srv__nap 0.05
	done
	srv__fail "nginx processes$LEFT survive SIGKILL"
}

srv_stop_all() {
	local f dirs=("${SRV_DIRS[@]}")
	if [ -n "${1:-}" ] && [ -d "$1" ]; then
		while IFS= read -r f; do
			dirs+=("${f%/nginx.pid}")
		done < <(find "$1" -maxdepth 4 -name nginx.pid 2>/dev/null)
	fi
	SRV_DIRS=()
	[ ${#dirs[@]} = 0 ] || srv_stop "${dirs[@]}"
}

srv_url() {
	local u
	read -r u <"$1/url" && echo "$u"
}

srv_requests() {
	awk -v u="$2" -v s="${3:-}" \
		'$8 == u && (s == "" || $4 == s) { n++ } END { print n + 0 }' \
		"$1/access.log" 2>/dev/null || echo 0
}

# srv__rate RATE: RATE is one tc understands (or 0)
srv__rate() {
	[[ $1 =~ ^(0|[0-9]+(\.[0-9]+)?([kmgt]?(bit|bps)|[KMGT]i?(bit|bps)))$ ]] ||
		srv__fail "rate '$1': not a tc rate (like 40mbit, 5mbps or 0)"
}

srv_shape() {
	local port=$1 rate=$2 ms=$3 band new='' us args out cmds to from h u32
	[ $# = 3 ] || { srv__fail "usage: srv_shape PORT RATE DELAY_MS"; return 1; }
	srv__port "$port" && srv__rate "$rate" || return 1
	[[ $ms =~ ^[0-9]{1,6}$ ]] ||
		{ srv__fail "delay '$ms': not milliseconds"; return 1; }
	# The guest kernel cannot load modules on demand.
	modprobe -q -a sch_prio sch_netem cls_u32 2>/dev/null
	out=$(tc qdisc show dev lo 2>/dev/null)
	# One tc for all the changes (each program start is slow in the VM).
	cmds=''
	if [[ $out != *"qdisc prio 1: root"* ]]; then
		# Band 1:1 for all other traffic, whatever its priority.
		cmds+="qdisc replace dev lo root handle 1: prio bands 16"
		cmds+=" priomap 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0"$'\n'
		SRV_BAND=()
		SRV_NEXT_BAND=2
	fi
	band=${SRV_BAND[$port]:-}
	if [ -z "$band" ]; then
		[ "$SRV_NEXT_BAND" -le 15 ] ||
			{ srv__fail "srv_shape: 7 ports shaped already"; return 1; }
		band=$SRV_NEXT_BAND
		new=1
	fi
	# Half the delay each way, in microseconds.
	us=$((ms * 500))
	args="delay ${us}us"
	[ "$rate" != 0 ] && args+=" rate $rate"
	# Class 1:N (hexadecimal N) is band N; its netem gets handle N0:.
	printf -v to %x "$band"
	printf -v from %x $((band + 1))
	for h in "$to" "$from"; do
		cmds+="qdisc replace dev lo parent 1:$h handle ${h}0:"
		cmds+=" netem $args limit 100000"$'\n'
	done
	if [ -n "$new" ]; then
		# TCP (protocol 6) to PORT, then from PORT.
		u32="filter add dev lo parent 1: protocol ip prio 1 u32"
		u32+=" match ip protocol 6 0xff"
		cmds+="$u32 match ip dport $port 0xffff flowid 1:$to"$'\n'
		cmds+="$u32 match ip sport $port 0xffff flowid 1:$from"$'\n'
	fi
	out=$(tc -batch - <<<"$cmds" 2>&1) ||
		{ srv__fail "tc on lo for port $port: $out"; return 1; }
	if [ -n "$new" ]; then
		SRV_BAND[$port]=$band
		SRV_NEXT_BAND=$((band + 2))
	fi
}

srv_unshape() {
	local out
	out=$(tc qdisc show dev lo 2>/dev/null)
	if [[ $out == *"qdisc prio 1: root"* ]]; then
		tc qdisc del dev lo root 2>/dev/null ||
			{ srv__fail "tc qdisc del dev lo root failed"; return 1; }
	fi
	SRV_BAND=()
	SRV_NEXT_BAND=2
}
