// SPDX-License-Identifier: GPL-2.0
/*
 * snapblkd: the snapblk fetch daemon.  Answers the kernel's chunk
 * requests on /dev/snapblk-fetch (include/uapi/linux/snapblk.h, "Fetch
 * protocol") from a directory chunk store.  See snapblkd(8).
 *
 * Threading: N workers, no dispatcher.  The workers take turns at the
 * device (leader/followers): the one holding read_lock poll()s the device
 * and the stop eventfd, read()s exactly one request, lets go of the lock
 * and serves the request; the next idle worker is already waiting at the
 * device meanwhile.  So a request leaves the kernel's queue only when a
 * worker is free to serve it: nothing queues in the daemon behind a slow
 * read, a second daemon on the same device can take what this one has no
 * room for, and a stopped or killed daemon holds at most N requests,
 * which the kernel re-queues when the file is closed.  Only one thread
 * sleeps in poll() at a time (no thundering herd).
 *
 * The main thread waits for SIGTERM/SIGINT (signalfd) or for a worker's
 * fatal error, then writes the stop eventfd; the workers finish the
 * request in hand and exit; the device file is closed, and the counters
 * are logged.  A worker that does not finish within --stop-timeout (a
 * store read that never returns) is left behind: the device is let go
 * of (dup2() of /dev/null over it, so the kernel re-queues what this
 * daemon had claimed while the thread may still hold the descriptor
 * number), the counters are logged and the process _exit()s, which ends
 * every thread that sleeps interruptibly or killably.
 *
 * The daemon is untrusted by design: the kernel hashes every chunk
 * against the manifest, so the daemon never hashes or decrypts.  It
 * trusts the store no more (sb_store_read_chunk()): a chunk path that
 * holds anything but a regular file in the store is answered EIO.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#include "chunk.h"
#include "store.h"
#include "util.h"

#define DEFAULT_DEVICE	"/dev/snapblk-fetch"
#define DEFAULT_JOBS	4
#define MAX_JOBS	256
#define DEFAULT_STOP_TIMEOUT	5	/* seconds */
#define MAX_STOP_TIMEOUT	3600

static const char usage_text[] =
"usage: snapblkd --store DIR [--jobs N] [--device PATH | --device-fd FD]\n"
"                [--stop-timeout SECONDS] [--syslog] [--foreground] [-v]\n"
"\n"
"Fetch daemon of the snapblk lazy block device: read the kernel's chunk\n"
"requests from /dev/snapblk-fetch and answer each with the chunk's\n"
"ciphertext from the chunk store DIR (DIR/ab/abcdef..., as written by\n"
"snapblk-build).  The kernel verifies every chunk against its manifest,\n"
"so the store need not be trusted: only regular files inside DIR are\n"
"read, no symbolic link is followed.  Runs in the foreground until\n"
"SIGTERM or SIGINT; requests not yet answered then go back to the\n"
"kernel's queue for the next daemon.\n"
"\n"
"  -s, --store DIR      chunk store directory (required)\n"
"  -j, --jobs N         worker threads, 1 to 256 (default 4): how many\n"
"                       chunks are read from the store at once\n"
"  -d, --device PATH    fetch device (default " DEFAULT_DEVICE ")\n"
"      --device-fd FD   use the already open descriptor FD instead of\n"
"                       opening a device (for tests and socket\n"
"                       activation); it is made non-blocking\n"
"      --stop-timeout SECONDS\n"
"                       on SIGTERM or SIGINT, wait at most this long\n"
"                       (0 to 3600, default 5) for the chunks being read,\n"
"                       then exit anyway: the kernel re-queues them\n"
"      --syslog         log to syslog (facility daemon) instead of\n"
"                       standard error\n"
"  -f, --foreground     accepted for service files: snapblkd always runs\n"
"                       in the foreground and never forks\n"
"  -v, --verbose        also log one line per chunk served\n"
"  -h, --help           this text\n"
"  -V, --version        print the version\n"
"\n"
"Each chunk missing from the store is answered 'not found' (ENOENT); an\n"
"unreadable or wrong-sized one, or anything but a regular file (a FIFO,\n"
"device, socket, directory or symbolic link), 'I/O error' (EIO); either\n"
"fails the reads that need it with EIO and is logged.  On exit the\n"
"counters are logged: chunks fetched, missing, errors and bytes\n"
"delivered.\n"
"\n"
"Exit status: 0 stopped by SIGTERM or SIGINT, 1 failure (device or store\n"
"cannot be opened, device error), 2 usage error.  See snapblkd(8).\n";

/* Atomic: the counters of a worker left behind are read while it runs. */
struct counters {
	_Atomic uint64_t fetched;	/* chunks delivered */
	_Atomic uint64_t missing;	/* answered ENOENT */
	_Atomic uint64_t errors;	/* answered EIO/EPROTO, or refused */
	_Atomic uint64_t bytes;		/* ciphertext bytes delivered */
};

struct worker {
	pthread_t thread;
	uint8_t *buf;
	size_t buf_len;
	struct counters c;
};

static struct {
	const char *store_dir;
	const char *device;
	int device_fd;
	unsigned int jobs;
	unsigned int stop_timeout;	/* seconds */
	bool syslog;
	bool verbose;
} opt = {
	.device = DEFAULT_DEVICE,
	.device_fd = -1,
	.jobs = DEFAULT_JOBS,
	.stop_timeout = DEFAULT_STOP_TIMEOUT,
};

static struct sb_store *store;
static int dev_fd = -1;
static int stop_fd = -1;		/* eventfd: readable once stopping */
static int done_fd = -1;		/* eventfd: +1 for each worker done */
static pthread_mutex_t read_lock = PTHREAD_MUTEX_INITIALIZER;
static atomic_int exit_status = EXIT_OK;
static atomic_uint serving;		/* workers with a request in hand */
static atomic_bool left_behind;		/* exiting without some workers */

/* ------------------------------------------------------------- logging */

/*
 * One message, to standard error in err_report()'s format or to syslog.
 * Whole messages only: stderr is locked around err_report() (which is
 * several stdio calls) so that workers' lines never interleave.
 */
static void log_v(int prio, int err, const char *hint, const char *fmt,
		  va_list ap)
{
	char msg[512];

	vsnprintf(msg, sizeof(msg), fmt, ap);
	if (opt.syslog) {
		if (err)
			syslog(prio, "%s: %s", msg, strerror(err));
		else
			syslog(prio, "%s", msg);
		if (hint)
			syslog(prio, "%s", hint);
		return;
	}
	flockfile(stderr);
	if (prio <= LOG_WARNING)
		err_report(err, hint, "%s", msg);
	else
		fprintf(stderr, "%s: %s\n", prog_name, msg);
	funlockfile(stderr);
}

static void log_err(int err, const char *hint, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static void log_err(int err, const char *hint, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_v(LOG_ERR, err, hint, fmt, ap);
	va_end(ap);
}

static void log_info(const char *fmt, ...)
	__attribute__((format(printf, 1, 2)));
static void log_info(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_v(LOG_INFO, 0, NULL, fmt, ap);
	va_end(ap);
}

/* ------------------------------------------------------------ stopping */

static void request_stop(void)
{
	uint64_t one = 1;

	if (write(stop_fd, &one, sizeof(one)) < 0 && errno != EAGAIN)
		abort();	/* cannot happen with a valid eventfd */
}

/* A worker cannot go on: stop the daemon with exit status 1. */
static void fatal(int err, const char *hint, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static void fatal(int err, const char *hint, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_v(LOG_ERR, err, hint, fmt, ap);
	va_end(ap);
	atomic_store(&exit_status, EXIT_FAIL);
	request_stop();
}

/* ----------------------------------------------------------- requests */

/*
 * Wait for a request and read it (one at a time: see the top of the
 * file).  1 with a request in *req, 0 when stopping.
 */
static int next_request(struct snapblk_fetch_req *req)
{
	struct pollfd p[2] = {
		{ .fd = stop_fd, .events = POLLIN },
		{ .fd = dev_fd, .events = POLLIN },
	};
	ssize_t n;

	for (;;) {
		if (poll(p, 2, -1) < 0) {
			if (errno == EINTR)
				continue;
			fatal(errno, NULL, "waiting for requests");
			return 0;
		}
		if (p[0].revents)
			return 0;
		if (!p[1].revents)
			continue;
		n = read(dev_fd, req, sizeof(*req));
		if (n == (ssize_t)sizeof(*req))
			return 1;
		if (n < 0 && (errno == EAGAIN || errno == EINTR))
			continue;
		if (n < 0 && errno == EINVAL)
			fatal(errno, "snapblkd and the snapblk module speak "
			      "different fetch protocols: install matching "
			      "versions", "reading a %zu-byte request from %s",
			      sizeof(*req), opt.device);
		else if (n < 0)
			fatal(errno, NULL, "reading requests from %s",
			      opt.device);
		else if (n == 0)
			fatal(0, "was the snapblk module unloaded?",
			      "%s was closed by the other side", opt.device);
		else
			fatal(0, "snapblkd and the snapblk module speak "
			      "different fetch protocols: install matching "
			      "versions", "short request from %s: %zd of %zu "
			      "bytes", opt.device, n, sizeof(*req));
		return 0;
	}
}

/* Wait until the device takes an answer; false when stopping. */
static bool wait_writable(void)
{
	struct pollfd p[2] = {
		{ .fd = stop_fd, .events = POLLIN },
		{ .fd = dev_fd, .events = POLLOUT },
	};

	while (poll(p, 2, -1) < 0)
		if (errno != EINTR)
			return false;
	return !p[0].revents;
}

/*
 * Send one answer with one writev().  0 when the kernel took it;
 * otherwise the failure is logged (and fatal ones stop the daemon).
 */
static int send_answer(const struct snapblk_fetch_req *req, uint32_t error,
		       const void *data)
{
	struct snapblk_fetch_resp resp = {
		.len = sizeof(resp),
		.error = error,
		.id = req->id,
	};
	struct iovec iov[2] = {
		{ .iov_base = &resp, .iov_len = sizeof(resp) },
		{ .iov_base = (void *)data, .iov_len = req->chunk_size },
	};
	size_t total = sizeof(resp) + (error ? 0 : req->chunk_size);
	ssize_t n;
	int err;

	if (atomic_load(&left_behind))
		return -EAGAIN;	/* the kernel re-queued it already */
	for (;;) {
		n = writev(dev_fd, iov, error ? 1 : 2);
		if (n == (ssize_t)total)
			return 0;
		if (n >= 0) {
			log_err(0, NULL, "answer to request %llu: short write "
				"(%zd of %zu bytes)",
				(unsigned long long)req->id, n, total);
			return -EIO;
		}
		if (errno == EINTR)
			continue;
		if (errno == EAGAIN && wait_writable())
			continue;
		if (errno == EAGAIN)
			return -EAGAIN;	/* stopping: re-queued */
		break;
	}
	err = errno;
	if (err == ENOENT)
		log_err(err, NULL, "answer to request %llu (snapblk%u chunk "
			"%llu) refused: already answered or timed out",
			(unsigned long long)req->id, req->dev_index,
			(unsigned long long)req->chunk);
	else if (err == EINVAL)
		log_err(err, "please report this snapblkd bug",
			"answer to request %llu refused as malformed",
			(unsigned long long)req->id);
	else
		fatal(err, NULL, "writing an answer to %s", opt.device);
	return -err;
}

static bool ensure_buf(struct worker *w, size_t len)
{
	uint8_t *p;

	if (w->buf_len >= len)
		return true;
	p = realloc(w->buf, len);
	if (!p)
		return false;
	w->buf = p;
	w->buf_len = len;
	return true;
}

/*
 * Read the chunk; the errno to answer with: 0 (data in w->buf), ENOENT
 * when it is not in the store, EIO when it cannot be delivered whole or
 * what the store holds at its path is not a chunk file (logged with what
 * it is: the store is not trusted).
 */
static uint32_t read_chunk(struct worker *w,
			   const struct snapblk_fetch_req *req,
			   const char *name)
{
	struct sb_store_found found;
	unsigned int dev = req->dev_index;
	unsigned long long chunk = req->chunk;
	int ret;

	if (!ensure_buf(w, req->chunk_size)) {
		log_err(ENOMEM, NULL, "snapblk%u chunk %llu: %s", dev, chunk,
			name);
		return EIO;
	}
	ret = sb_store_read_chunk(store, req->addr, w->buf, req->chunk_size,
				  &found);
	if (!ret)
		return 0;
	if (ret == -ENOENT || ret == -ENOTDIR) {
		log_err(ENOENT, NULL, "snapblk%u chunk %llu: %s/%s", dev,
			chunk, opt.store_dir, name);
		return ENOENT;
	}
	if (ret == -ELOOP)
		log_err(0, NULL, "snapblk%u chunk %llu: %s/%s: a symbolic "
			"link in the path (not followed)", dev, chunk,
			opt.store_dir, name);
	else if (ret == -EMSGSIZE && !S_ISREG(found.type))
		log_err(0, NULL, "snapblk%u chunk %llu: %s/%s: not a regular "
			"file (%s)", dev, chunk, opt.store_dir, name,
			sb_store_type_name(found.type));
	else if (ret == -EMSGSIZE)
		log_err(0, NULL, "snapblk%u chunk %llu: %s/%s: %llu bytes, "
			"expected %u", dev, chunk, opt.store_dir, name,
			(unsigned long long)found.size, req->chunk_size);
	else
		log_err(-ret, NULL, "snapblk%u chunk %llu: reading %s/%s",
			dev, chunk, opt.store_dir, name);
	return EIO;
}

/* A request we cannot make sense of: EPROTO, instead of guessing. */
static bool request_valid(const struct snapblk_fetch_req *req)
{
	if (req->len != sizeof(*req)) {
		log_err(0, NULL, "request %llu: record length %u, expected %zu",
			(unsigned long long)req->id, req->len, sizeof(*req));
		return false;
	}
	if (!sb_chunk_size_valid(req->chunk_size)) {
		log_err(0, NULL, "request %llu: invalid chunk size %u",
			(unsigned long long)req->id, req->chunk_size);
		return false;
	}
	return true;
}

static void serve(struct worker *w, const struct snapblk_fetch_req *req)
{
	char name[SB_STORE_NAME_LEN];
	uint32_t error;
	int ret;

	sb_store_name(req->addr, name);
	error = request_valid(req) ? read_chunk(w, req, name) : EPROTO;
	ret = send_answer(req, error, w->buf);
	if (ret == -EAGAIN)
		return;		/* stopping: the kernel re-queues it */
	if (ret) {
		w->c.errors++;
		return;
	}
	switch (error) {
	case 0:
		w->c.fetched++;
		w->c.bytes += req->chunk_size;
		if (opt.verbose)
			log_info("snapblk%u chunk %llu: %s: %u bytes",
				 req->dev_index,
				 (unsigned long long)req->chunk, name,
				 req->chunk_size);
		break;
	case ENOENT:
		w->c.missing++;
		break;
	default:
		w->c.errors++;
	}
}

static void *worker_main(void *arg)
{
	struct snapblk_fetch_req req;
	struct worker *w = arg;
	uint64_t one = 1;
	int got;

	for (;;) {
		pthread_mutex_lock(&read_lock);
		got = next_request(&req);
		if (got)
			atomic_fetch_add(&serving, 1);
		pthread_mutex_unlock(&read_lock);
		if (!got)
			break;
		serve(w, &req);
		atomic_fetch_sub(&serving, 1);
	}
	if (write(done_fd, &one, sizeof(one)) < 0)
		abort();	/* cannot happen with a valid eventfd */
	return NULL;
}

/* ----------------------------------------------------------- start-up */

static unsigned int parse_uint(const char *what, const char *s,
			       unsigned long min, unsigned long max)
{
	unsigned long v;

	if (parse_ulong(s, min, max, &v))
		usage_die("invalid %s '%s': expected %lu to %lu", what, s,
			  min, max);
	return v;
}

static void parse_args(int argc, char **argv)
{
	enum { OPT_DEVICE_FD = 256, OPT_SYSLOG, OPT_STOP_TIMEOUT };
	static const struct option opts[] = {
		{ "store", required_argument, NULL, 's' },
		{ "jobs", required_argument, NULL, 'j' },
		{ "device", required_argument, NULL, 'd' },
		{ "device-fd", required_argument, NULL, OPT_DEVICE_FD },
		{ "stop-timeout", required_argument, NULL, OPT_STOP_TIMEOUT },
		{ "syslog", no_argument, NULL, OPT_SYSLOG },
		{ "foreground", no_argument, NULL, 'f' },
		{ "verbose", no_argument, NULL, 'v' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ NULL, 0, NULL, 0 },
	};
	bool have_device = false;
	int o;

	opterr = 0;
	while ((o = getopt_long(argc, argv, ":s:j:d:fvhV", opts, NULL)) != -1) {
		switch (o) {
		case 's':
			opt.store_dir = optarg;
			break;
		case 'j':
			opt.jobs = parse_uint("job count", optarg, 1, MAX_JOBS);
			break;
		case 'd':
			opt.device = optarg;
			have_device = true;
			break;
		case OPT_DEVICE_FD:
			opt.device_fd = parse_uint("descriptor", optarg, 0,
						   INT_MAX);
			break;
		case OPT_STOP_TIMEOUT:
			opt.stop_timeout = parse_uint("stop timeout", optarg,
						      0, MAX_STOP_TIMEOUT);
			break;
		case OPT_SYSLOG:
			opt.syslog = true;
			break;
		case 'f':
			break;	/* always in the foreground */
		case 'v':
			opt.verbose = true;
			break;
		case 'h':
			fputs(usage_text, stdout);
			exit(EXIT_OK);
		case 'V':
			printf("snapblkd %s (snapblk API %u)\n",
			       SNAPBLK_TOOLS_VERSION, SNAPBLK_API_VERSION);
			exit(EXIT_OK);
		case ':':
			usage_die("option '%s' needs an argument",
				  argv[optind - 1]);
		default:
			if (optopt)
				usage_die("unknown option '-%c'", optopt);
			usage_die("unknown option '%s'", argv[optind - 1]);
		}
	}
	if (optind < argc)
		usage_die("unexpected argument '%s'", argv[optind]);
	if (!opt.store_dir)
		usage_die("--store DIR is required");
	if (have_device && opt.device_fd >= 0)
		usage_die("--device and --device-fd exclude each other");
}

static void open_store(void)
{
	int ret;

	/* Chunk sizes come with each request: 0 here. */
	ret = sb_store_open(opt.store_dir, 0, false, &store);
	if (ret == -ENOENT || ret == -ENOTDIR)
		die(EXIT_FAIL, -ret, "give the directory that snapblk-build "
		    "create --store wrote", "opening chunk store %s",
		    opt.store_dir);
	if (ret)
		die(EXIT_FAIL, -ret, NULL, "opening chunk store %s",
		    opt.store_dir);
}

static void open_device(void)
{
	static char fd_name[32];
	const char *hint;
	int flags;

	if (opt.device_fd >= 0) {
		snprintf(fd_name, sizeof(fd_name), "descriptor %d",
			 opt.device_fd);
		opt.device = fd_name;
		dev_fd = opt.device_fd;
		flags = fcntl(dev_fd, F_GETFL);
		if (flags < 0 || fcntl(dev_fd, F_SETFL, flags | O_NONBLOCK))
			die(EXIT_FAIL, errno, "pass a descriptor that is open "
			    "in snapblkd", "using --device-fd %d", dev_fd);
		fcntl(dev_fd, F_SETFD, FD_CLOEXEC);
		return;
	}
	dev_fd = open(opt.device, O_RDWR | O_NONBLOCK | O_CLOEXEC);
	if (dev_fd >= 0)
		return;
	if (errno == EACCES || errno == EPERM)
		hint = "the fetch device is root only: are you root?";
	else if (errno == ENOENT || errno == ENODEV || errno == ENXIO)
		hint = "is the snapblk module loaded (modprobe snapblk)?";
	else
		hint = "is the snapblk module loaded? are you root?";
	die(EXIT_FAIL, errno, hint, "opening %s", opt.device);
}

/* SIGTERM and SIGINT, blocked in every thread, read from a signalfd. */
static int setup_signals(void)
{
	sigset_t set;
	int fd;

	signal(SIGPIPE, SIG_IGN);
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	if (pthread_sigmask(SIG_BLOCK, &set, NULL))
		die(EXIT_FAIL, errno, NULL, "blocking signals");
	fd = signalfd(-1, &set, SFD_CLOEXEC);
	if (fd < 0)
		die(EXIT_FAIL, errno, NULL, "creating a signalfd");
	return fd;
}

/* Until a signal or a worker's fatal error. */
static void wait_for_stop(int sig_fd)
{
	struct pollfd p[2] = {
		{ .fd = sig_fd, .events = POLLIN },
		{ .fd = stop_fd, .events = POLLIN },
	};
	struct signalfd_siginfo si;

	for (;;) {
		if (poll(p, 2, -1) < 0) {
			if (errno == EINTR)
				continue;
			fatal(errno, NULL, "waiting for signals");
			return;
		}
		if (p[1].revents)
			return;
		if (p[0].revents &&
		    read(sig_fd, &si, sizeof(si)) == sizeof(si)) {
			log_info("%s: stopping", strsignal(si.ssi_signo));
			request_stop();
			return;
		}
	}
}

static void report(struct worker *w, unsigned int n)
{
	unsigned long long fetched = 0, missing = 0, errors = 0, bytes = 0;
	unsigned int i;

	for (i = 0; i < n; i++) {
		fetched += w[i].c.fetched;
		missing += w[i].c.missing;
		errors += w[i].c.errors;
		bytes += w[i].c.bytes;
	}
	log_info("stopped: %llu fetched, %llu missing, %llu errors, "
		 "%llu bytes", fetched, missing, errors, bytes);
}

static long long now_ms(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return t.tv_sec * 1000LL + t.tv_nsec / 1000000;
}

/*
 * After the stop: wait up to --stop-timeout for the n workers to finish
 * the requests in hand (a second SIGTERM or SIGINT ends the wait).  The
 * number of workers still running.
 */
static unsigned int wait_workers(int sig_fd, unsigned int n)
{
	struct pollfd p[2] = {
		{ .fd = done_fd, .events = POLLIN },
		{ .fd = sig_fd, .events = POLLIN },
	};
	long long deadline = now_ms() + opt.stop_timeout * 1000LL;
	struct signalfd_siginfo si;
	unsigned int done = 0;
	uint64_t count;
	long long left;
	int ret;

	while (done < n) {
		left = deadline - now_ms();
		ret = poll(p, 2, left > 0 ? (int)left : 0);
		if (ret < 0 && errno == EINTR)
			continue;
		if (ret <= 0)
			break;
		if (p[0].revents &&
		    read(done_fd, &count, sizeof(count)) == sizeof(count))
			done += count;
		if (p[1].revents &&
		    read(sig_fd, &si, sizeof(si)) == sizeof(si)) {
			log_info("%s again: not waiting for the workers",
				 strsignal(si.ssi_signo));
			break;
		}
	}
	return n - done;
}

/*
 * Let go of the device while a worker left behind may still use dev_fd:
 * the kernel re-queues what this daemon had claimed now, and a late
 * answer goes nowhere instead of to a reused descriptor.
 */
static void release_device(void)
{
	int null = open("/dev/null", O_WRONLY | O_CLOEXEC);

	if (null >= 0 && dup2(null, dev_fd) == dev_fd) {
		close(null);
		return;
	}
	close(dev_fd);
	if (null >= 0)
		close(null);
}

/* Exit without the busy workers left running, stuck in the store. */
static noreturn void exit_without(struct worker *w, unsigned int n,
				  unsigned int busy)
{
	unsigned int stuck = atomic_load(&serving);

	atomic_store(&left_behind, true);
	release_device();
	if (stuck)
		log_err(0, "the kernel re-queues their requests for the next "
			"daemon; see STOPPING in snapblkd(8)",
			"%u %s still reading from the store %u s after the "
			"stop: exiting without %s", stuck,
			stuck == 1 ? "worker" : "workers", opt.stop_timeout,
			stuck == 1 ? "it" : "them");
	else
		log_info("%u idle %s not yet stopped: exiting without %s",
			 busy, busy == 1 ? "worker" : "workers",
			 busy == 1 ? "it" : "them");
	report(w, n);
	if (opt.syslog)
		closelog();
	/* exit_group(): ends every thread but one in uninterruptible sleep. */
	_exit(atomic_load(&exit_status));
}

int main(int argc, char **argv)
{
	struct worker *workers;
	unsigned int i, started, busy;
	int sig_fd, ret;

	prog_name = "snapblkd";
	usage_hint = "run 'snapblkd --help' for usage";
	parse_args(argc, argv);
	if (opt.syslog)
		openlog("snapblkd", LOG_PID, LOG_DAEMON);
	/* First, so that an early SIGTERM is a clean stop too. */
	sig_fd = setup_signals();
	open_store();
	open_device();
	stop_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	done_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	workers = calloc(opt.jobs, sizeof(*workers));
	if (stop_fd < 0 || done_fd < 0 || !workers)
		die(EXIT_FAIL, stop_fd < 0 || done_fd < 0 ? errno : ENOMEM,
		    NULL, "setting up");

	for (started = 0; started < opt.jobs; started++) {
		ret = pthread_create(&workers[started].thread, NULL,
				     worker_main, &workers[started]);
		if (ret) {
			fatal(ret, NULL, "starting worker threads");
			break;
		}
	}
	if (started == opt.jobs) {
		log_info("serving %s from %s with %u workers", opt.device,
			 opt.store_dir, opt.jobs);
		wait_for_stop(sig_fd);
	}
	busy = wait_workers(sig_fd, started);
	if (busy)
		exit_without(workers, started, busy);
	for (i = 0; i < started; i++) {
		pthread_join(workers[i].thread, NULL);
		free(workers[i].buf);
	}
	/* The kernel re-queues every request read but not answered. */
	close(dev_fd);
	report(workers, started);
	free(workers);
	sb_store_close(store);
	return atomic_load(&exit_status);
}
