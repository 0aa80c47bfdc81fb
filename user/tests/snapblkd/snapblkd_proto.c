// SPDX-License-Identifier: GPL-2.0
/*
 * snapblkd against an emulated kernel: the test plays /dev/snapblk-fetch
 * over a SOCK_SEQPACKET socketpair (which keeps record boundaries like
 * the character device) handed to the daemon with --device-fd.  Checks
 * the answers byte for byte against a hand-made store, the errors for
 * missing, short and malformed requests, concurrency, the counters on a
 * clean stop, and that a killed daemon's successor serves the requests
 * the kernel would re-queue.
 *
 * The hostile fixture puts what a hostile store may hold at one chunk
 * path (a FIFO, symbolic links out of the store, a directory, a device
 * node, a socket, a file under a lease): each is answered EIO at once,
 * logged once with what was found, never opened, and the daemon goes on
 * serving; also without openat2() (a seccomp filter) and without /proc
 * (a mount namespace of its own), the daemon's fallbacks.
 *
 * The stuck fixture makes a store read that does not return (a FUSE
 * store served by the test): SIGTERM lets go of the device within
 * --stop-timeout all the same.
 *
 * The sched fixture checks the API 4 scheduling and answers: demand
 * requests before background ones (SNAPBLK_FETCH_F_BACKGROUND), a
 * quarter of --max-inflight kept for demand, a demand request joining
 * a queued background job, the tier and retries in every answer (disk
 * cache, directory stores, HTTP stores and a replica group served by
 * the test on 127.0.0.1, one of them failing the first requests),
 * --delay-ms, and the fall back to 16-byte answers when the "kernel"
 * (a seccomp listener on the daemon's writev() calls) refuses the
 * 24-byte header with EINVAL, as a module of API 3 does.
 *
 * What a socket cannot emulate (the kernel refusing an answer with
 * ENOENT, re-queueing on close) is covered in the VM selftests
 * (blockdev.sh, snapblkd_hostile.sh).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <linux/filter.h>
#include <linux/fuse.h>
#include <linux/seccomp.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <stdnoreturn.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "kselftest_harness.h"

#include "store.h"

#define CS		SNAPBLK_CHUNK_SIZE_MIN
#define TIMEOUT_MS	10000

/* Answers to a hostile store's chunks must come at once. */
#define PROMPT_MS	2000

enum { CH_A, CH_B, CH_SHORT, CH_MISSING, CH_EVIL, NR_CH };

static int rm_one(const char *p, const struct stat *s, int t, struct FTW *f)
{
	(void)s;
	(void)f;
	return t == FTW_DP ? rmdir(p) : unlink(p);
}

static void make_addr(int which, uint8_t addr[SNAPBLK_ADDR_LEN])
{
	int i;

	for (i = 0; i < SNAPBLK_ADDR_LEN; i++)
		addr[i] = (uint8_t)(which * 37 + i * 11 + 0x1b);
}

static void fill(int which, uint8_t *buf, size_t len)
{
	size_t i;

	for (i = 0; i < len; i++)
		buf[i] = (uint8_t)(i * 7 + which * 101 + (i >> 9));
}

/* Write chunk which's first len bytes to path. */
static int write_chunk(const char *path, int which, size_t len)
{
	static uint8_t buf[CS];
	int fd, ok;

	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	if (fd < 0)
		return -1;
	fill(which, buf, len);
	ok = write(fd, buf, len) == (ssize_t)len;
	return close(fd) || !ok ? -1 : 0;
}

/* The chunk's path in the store dir, and that of its fan-out directory. */
static void chunk_path(const char *dir, int which, char *path, size_t size,
		       char *fanout, size_t fsize)
{
	char name[SB_STORE_NAME_LEN];
	uint8_t addr[SNAPBLK_ADDR_LEN];

	make_addr(which, addr);
	sb_store_name(addr, name);
	snprintf(path, size, "%s/%s", dir, name);
	snprintf(fanout, fsize, "%s/%.2s", dir, name);
}

/* Write a chunk file of len bytes by hand into the fan-out layout. */
static int put_file(const char *dir, int which, size_t len)
{
	char path[512], fanout[512];

	chunk_path(dir, which, path, sizeof(path), fanout, sizeof(fanout));
	if (mkdir(fanout, 0755) && errno != EEXIST)
		return -1;
	return write_chunk(path, which, len);
}

/* What the daemon's system lacks (see limit_daemon()). */
enum {
	NO_OPENAT2 = 1,		/* openat2() says ENOSYS (seccomp) */
	NO_PROC = 2,		/* no /proc (a mount namespace of its own) */
};

FIXTURE(daemon) {
	char dir[64];
	char log[96];
	int fd;			/* our end: the "kernel" */
	pid_t pid;
	int limits;		/* NO_OPENAT2 | NO_PROC */
	bool no_store;		/* startv(): without --store dir first */
	int *listener_out;	/* startv(): answers wait for the test */
	const char *writers;	/* startv(): --writers this, or NULL */
};

/* The daemon fixture's tests run with the default writers and none. */
FIXTURE_VARIANT(daemon) {
	const char *writers;	/* --writers, or NULL: the default */
};

FIXTURE_VARIANT_ADD(daemon, default_writers) {
	.writers = NULL,
};

FIXTURE_VARIANT_ADD(daemon, writers_0) {
	.writers = "0",
};

/*
 * In the daemon's child before exec: take away what limits says, to
 * test snapblkd's fallbacks.  0 or -1.
 */
static int limit_daemon(int limits)
{
	struct sock_filter filter[] = {
		BPF_STMT(BPF_LD | BPF_W | BPF_ABS,
			 offsetof(struct seccomp_data, nr)),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_openat2, 0, 1),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | ENOSYS),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
	};
	struct sock_fprog prog = {
		.len = sizeof(filter) / sizeof(filter[0]),
		.filter = filter,
	};

	/* Private mounts first: the unmount must not reach the host. */
	if ((limits & NO_PROC) &&
	    (unshare(CLONE_NEWNS) ||
	     mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) ||
	     umount2("/proc", MNT_DETACH)))
		return -1;
	if ((limits & NO_OPENAT2) &&
	    (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) ||
	     prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog)))
		return -1;
	return 0;
}

/* Whether limit_daemon(limits) works here; an error message if not. */
static const char *limits_unavailable(int limits)
{
	int status;
	pid_t pid;

	pid = fork();
	if (!pid)
		_exit(limit_daemon(limits) ? 1 : access("/proc/self", F_OK) ?
		      0 : limits & NO_PROC ? 2 : 0);
	if (pid < 0 || waitpid(pid, &status, 0) != pid || !WIFEXITED(status))
		return "cannot fork a probe";
	switch (WEXITSTATUS(status)) {
	case 0:
		return NULL;
	case 2:
		return "/proc is still there after unmounting it";
	default:
		return limits & NO_PROC ? "cannot unmount /proc in a mount "
		       "namespace of its own (needs CAP_SYS_ADMIN)" :
		       "cannot install a seccomp filter";
	}
}

/*
 * In the daemon's child before exec: its writev() calls on the device
 * (descriptor 3: every answer) wait for the test's verdict, through a
 * seccomp listener sent to the test on sock.  0 or -1.
 */
static int notify_answers(int sock)
{
	struct sock_filter filter[] = {
		BPF_STMT(BPF_LD | BPF_W | BPF_ABS,
			 offsetof(struct seccomp_data, nr)),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_writev, 0, 3),
		BPF_STMT(BPF_LD | BPF_W | BPF_ABS,
			 offsetof(struct seccomp_data, args[0])),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, 3, 0, 1),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_USER_NOTIF),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
	};
	struct sock_fprog prog = {
		.len = sizeof(filter) / sizeof(filter[0]),
		.filter = filter,
	};
	char cbuf[CMSG_SPACE(sizeof(int))] = { 0 };
	struct iovec iov = { .iov_base = "L", .iov_len = 1 };
	struct msghdr msg = {
		.msg_iov = &iov, .msg_iovlen = 1,
		.msg_control = cbuf, .msg_controllen = sizeof(cbuf),
	};
	struct cmsghdr *c = CMSG_FIRSTHDR(&msg);
	int listener;

	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0))
		return -1;
	listener = syscall(__NR_seccomp, SECCOMP_SET_MODE_FILTER,
			   SECCOMP_FILTER_FLAG_NEW_LISTENER, &prog);
	if (listener < 0)
		return -1;
	c->cmsg_level = SOL_SOCKET;
	c->cmsg_type = SCM_RIGHTS;
	c->cmsg_len = CMSG_LEN(sizeof(int));
	memcpy(CMSG_DATA(c), &listener, sizeof(int));
	if (sendmsg(sock, &msg, 0) != 1)
		return -1;
	close(listener);
	return 0;
}

/* The listener notify_answers() sent, or -1. */
static int recv_listener(int sock)
{
	char cbuf[CMSG_SPACE(sizeof(int))] = { 0 }, b;
	struct iovec iov = { .iov_base = &b, .iov_len = 1 };
	struct msghdr msg = {
		.msg_iov = &iov, .msg_iovlen = 1,
		.msg_control = cbuf, .msg_controllen = sizeof(cbuf),
	};
	struct cmsghdr *c;
	int fd;

	if (recvmsg(sock, &msg, MSG_CMSG_CLOEXEC) != 1)
		return -1;
	c = CMSG_FIRSTHDR(&msg);
	if (!c || c->cmsg_type != SCM_RIGHTS)
		return -1;
	memcpy(&fd, CMSG_DATA(c), sizeof(int));
	return fd;
}

/*
 * Start snapblkd on a new socketpair, stderr to self->log: --store
 * self->dir first (unless self->no_store), --writers self->writers
 * (if set), then the NULL-terminated args.  With self->listener_out,
 * the daemon's answers wait for the test's verdict (notify_answers())
 * and *self->listener_out is the listener.
 */
static int startv(FIXTURE_DATA(daemon) *self, const char *const *args)
{
	const char *bin = getenv("SNAPBLK_BIN");
	const char *argv[32];
	char path[512];
	int sv[2], nv[2] = { -1, -1 }, logfd, n = 0;

	if (!bin)
		bin = "build/bin";
	snprintf(path, sizeof(path), "%s/snapblkd", bin);
	argv[n++] = path;
	if (!self->no_store) {
		argv[n++] = "--store";
		argv[n++] = self->dir;
	}
	argv[n++] = "--device-fd";
	argv[n++] = "3";
	argv[n++] = "--jobs";
	argv[n++] = "4";
	if (self->writers) {
		argv[n++] = "--writers";
		argv[n++] = self->writers;
	}
	while (args && *args && n < 31)
		argv[n++] = *args++;
	argv[n] = NULL;
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv))
		return -1;
	if (self->listener_out &&
	    socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, nv))
		return -1;
	self->pid = fork();
	if (self->pid < 0)
		return -1;
	if (!self->pid) {
		/* Dies with the test, even one that ends on an ASSERT. */
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		logfd = open(self->log, O_WRONLY | O_CREAT | O_APPEND, 0644);
		if (logfd < 0 || dup2(logfd, 2) < 0 || dup2(sv[1], 3) < 0 ||
		    limit_daemon(self->limits) ||
		    (self->listener_out && notify_answers(nv[1])))
			_exit(127);
		execv(path, (char **)argv);
		_exit(127);
	}
	close(sv[1]);
	self->fd = sv[0];
	if (self->listener_out) {
		close(nv[1]);
		*self->listener_out = recv_listener(nv[0]);
		close(nv[0]);
		if (*self->listener_out < 0)
			return -1;
	}
	return 0;
}

/*
 * Start snapblkd on a new socketpair, stderr to self->log, with up to
 * two more arguments (NULL for none).
 */
static int start2(FIXTURE_DATA(daemon) *self, const char *extra,
		  const char *extra2)
{
	const char *args[] = { extra, extra2, NULL };

	return startv(self, args);
}

static int start(FIXTURE_DATA(daemon) *self, const char *extra)
{
	return start2(self, extra, NULL);
}

static long ms_since(const struct timespec *t0)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (t.tv_sec - t0->tv_sec) * 1000 +
	       (t.tv_nsec - t0->tv_nsec) / 1000000;
}

/* Signal the daemon and return its exit status (-1 if it did not exit). */
static int stop(FIXTURE_DATA(daemon) *self, int sig)
{
	int status;

	if (self->pid <= 0)
		return -1;
	if (sig)
		kill(self->pid, sig);
	if (waitpid(self->pid, &status, 0) != self->pid)
		return -1;
	self->pid = 0;
	close(self->fd);
	self->fd = -1;
	return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

/*
 * Like stop(), but give up after ms: then SIGKILL, and -1.  The time it
 * took in *took_ms.
 */
static int stop_within(FIXTURE_DATA(daemon) *self, int sig, int ms,
		       long *took_ms)
{
	struct timespec t0;
	int status;
	pid_t r;

	if (self->pid <= 0)
		return -1;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	kill(self->pid, sig);
	while ((r = waitpid(self->pid, &status, WNOHANG)) == 0 &&
	       ms_since(&t0) < ms)
		usleep(5000);
	if (took_ms)
		*took_ms = ms_since(&t0);
	if (r != self->pid)
		return -1;	/* the teardown kills it */
	self->pid = 0;
	close(self->fd);
	self->fd = -1;
	return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

static bool log_has(FIXTURE_DATA(daemon) *self, const char *s)
{
	static char buf[65536];
	ssize_t n;
	int fd;

	fd = open(self->log, O_RDONLY);
	if (fd < 0)
		return false;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n < 0)
		return false;
	buf[n] = '\0';
	return strstr(buf, s) != NULL;
}

static int log_count(FIXTURE_DATA(daemon) *self, const char *s)
{
	static char buf[65536];
	char *p;
	ssize_t n;
	int fd, count = 0;

	fd = open(self->log, O_RDONLY);
	if (fd < 0)
		return -1;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n < 0)
		return -1;
	buf[n] = '\0';
	for (p = buf; (p = strstr(p, s)); p++)
		count++;
	return count;
}

static int send_req(int fd, uint64_t id, int which, uint32_t len,
		    uint32_t chunk_size)
{
	struct snapblk_fetch_req req = {
		.len = len,
		.chunk_size = chunk_size,
		.id = id,
		.dev_index = 7,
		.chunk = id * 3,
	};

	make_addr(which, req.addr);
	return send(fd, &req, sizeof(req), 0) == sizeof(req) ? 0 : -1;
}

/* One answer within ms: its length, or -1 on timeout or error. */
static ssize_t recv_resp_within(int fd, struct snapblk_fetch_resp *resp,
				uint8_t *data, int ms)
{
	struct pollfd p = { .fd = fd, .events = POLLIN };
	struct iovec iov[2] = {
		{ .iov_base = resp, .iov_len = sizeof(*resp) },
		{ .iov_base = data, .iov_len = CS + 1 },
	};
	struct msghdr msg = { .msg_iov = iov, .msg_iovlen = 2 };
	ssize_t n;

	if (poll(&p, 1, ms) != 1)
		return -1;
	n = recvmsg(fd, &msg, MSG_DONTWAIT);
	return msg.msg_flags & MSG_TRUNC ? -1 : n;
}

static ssize_t recv_resp(int fd, struct snapblk_fetch_resp *resp,
			 uint8_t *data)
{
	return recv_resp_within(fd, resp, data, TIMEOUT_MS);
}

static bool data_ok(int which, const uint8_t *data)
{
	static uint8_t want[CS];

	fill(which, want, CS);
	return !memcmp(want, data, CS);
}

/* Which chunk request id asks for, in the tests with many requests. */
static int which_of(uint64_t id)
{
	return id % 3 == 0 ? CH_MISSING : id % 3 == 1 ? CH_A : CH_B;
}

/* A store with chunks A, B and a short one; 0 or -1. */
static int make_store(FIXTURE_DATA(daemon) *self)
{
	self->fd = -1;
	self->pid = 0;
	snprintf(self->dir, sizeof(self->dir), "/tmp/snapblkd-test.XXXXXX");
	if (!mkdtemp(self->dir))
		return -1;
	snprintf(self->log, sizeof(self->log), "%s.log", self->dir);
	return put_file(self->dir, CH_A, CS) || put_file(self->dir, CH_B, CS) ||
	       put_file(self->dir, CH_SHORT, CS / 2) ? -1 : 0;
}

static void remove_store(FIXTURE_DATA(daemon) *self)
{
	if (self->pid > 0)
		stop(self, SIGKILL);
	nftw(self->dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
	unlink(self->log);
}

FIXTURE_SETUP(daemon)
{
	ASSERT_EQ(0, make_store(self));
	self->writers = variant->writers;
	ASSERT_EQ(0, start(self, "-v"));
}

FIXTURE_TEARDOWN(daemon)
{
	remove_store(self);
}

TEST_F(daemon, serves_chunk_bytes)
{
	static uint8_t data[CS + 1];
	struct snapblk_fetch_resp resp;

	ASSERT_EQ(0, send_req(self->fd, 42, CH_A, sizeof(struct
		  snapblk_fetch_req), CS));
	ASSERT_EQ(sizeof(resp) + CS, recv_resp(self->fd, &resp, data));
	EXPECT_EQ(sizeof(resp), resp.len);
	EXPECT_EQ(0, resp.error);
	EXPECT_EQ(42, resp.id);
	/* From the first (only) store, at the first request. */
	EXPECT_EQ(SNAPBLK_TIER_STORE, resp.tier);
	EXPECT_EQ(0, resp.retries);
	EXPECT_TRUE(data_ok(CH_A, data));
	EXPECT_EQ(0, stop(self, SIGTERM));
	/* -v: one line per fetch, naming device, chunk and file. */
	EXPECT_TRUE(log_has(self, "snapblk7 chunk 126: "));
	EXPECT_TRUE(log_has(self, ": 65536 bytes"));
}

TEST_F(daemon, missing_chunk_is_enoent)
{
	static uint8_t data[CS + 1];
	struct snapblk_fetch_resp resp;

	ASSERT_EQ(0, send_req(self->fd, 5, CH_MISSING, sizeof(struct
		  snapblk_fetch_req), CS));
	ASSERT_EQ(sizeof(resp), recv_resp(self->fd, &resp, data));
	EXPECT_EQ(ENOENT, resp.error);
	EXPECT_EQ(5, resp.id);
	EXPECT_EQ(0, stop(self, SIGTERM));
	EXPECT_TRUE(log_has(self, "snapblk7 chunk 15: "));
	EXPECT_TRUE(log_has(self, ": No such file or directory"));
}

TEST_F(daemon, short_chunk_is_eio)
{
	static uint8_t data[CS + 1];
	struct snapblk_fetch_resp resp;

	ASSERT_EQ(0, send_req(self->fd, 6, CH_SHORT, sizeof(struct
		  snapblk_fetch_req), CS));
	ASSERT_EQ(sizeof(resp), recv_resp(self->fd, &resp, data));
	EXPECT_EQ(EIO, resp.error);
	EXPECT_EQ(6, resp.id);
	EXPECT_EQ(0, stop(self, SIGTERM));
	EXPECT_TRUE(log_has(self, "32768 bytes, expected 65536"));
}

TEST_F(daemon, wrong_chunk_size_is_eio)
{
	static uint8_t data[CS + 1];
	struct snapblk_fetch_resp resp;

	/* A valid size, but not the file's. */
	ASSERT_EQ(0, send_req(self->fd, 8, CH_A, sizeof(struct
		  snapblk_fetch_req), 2 * CS));
	ASSERT_EQ(sizeof(resp), recv_resp(self->fd, &resp, data));
	EXPECT_EQ(EIO, resp.error);
	EXPECT_EQ(8, resp.id);
	EXPECT_EQ(0, stop(self, SIGTERM));
}

TEST_F(daemon, malformed_request_is_eproto_and_daemon_goes_on)
{
	static uint8_t data[CS + 1];
	struct snapblk_fetch_resp resp;
	char want[128];

	ASSERT_EQ(0, send_req(self->fd, 1, CH_A, 12, CS));
	ASSERT_EQ(sizeof(resp), recv_resp(self->fd, &resp, data));
	EXPECT_EQ(EPROTO, resp.error);
	EXPECT_EQ(1, resp.id);
	ASSERT_EQ(0, send_req(self->fd, 2, CH_A, sizeof(struct
		  snapblk_fetch_req), 1000));
	ASSERT_EQ(sizeof(resp), recv_resp(self->fd, &resp, data));
	EXPECT_EQ(EPROTO, resp.error);
	EXPECT_EQ(2, resp.id);
	ASSERT_EQ(0, send_req(self->fd, 3, CH_A, sizeof(struct
		  snapblk_fetch_req), CS));
	ASSERT_EQ(sizeof(resp) + CS, recv_resp(self->fd, &resp, data));
	EXPECT_EQ(0, resp.error);
	EXPECT_TRUE(data_ok(CH_A, data));
	EXPECT_EQ(0, stop(self, SIGTERM));
	snprintf(want, sizeof(want), "record length 12, expected %zu",
		 sizeof(struct snapblk_fetch_req));
	EXPECT_TRUE(log_has(self, want));
	EXPECT_TRUE(log_has(self, "invalid chunk size 1000"));
}

/*
 * Many requests at once, more answer bytes than the socket buffers:
 * every id answered exactly once, with the right data, then the
 * counters on SIGTERM.
 */
TEST_F(daemon, many_requests_and_counters)
{
	static uint8_t data[CS + 1];
	struct snapblk_fetch_resp resp;
	const int n = 90;
	char seen[91] = { 0 };
	char want[128];
	int i, which;

	for (i = 1; i <= n; i++)
		ASSERT_EQ(0, send_req(self->fd, i, which_of(i), sizeof(struct
			  snapblk_fetch_req), CS));
	for (i = 0; i < n; i++) {
		ssize_t len = recv_resp(self->fd, &resp, data);

		ASSERT_LE(sizeof(resp), len);
		ASSERT_LE(1, resp.id);
		ASSERT_GE(n, resp.id);
		ASSERT_EQ(0, seen[resp.id]);
		seen[resp.id] = 1;
		which = which_of(resp.id);
		if (which == CH_MISSING) {
			EXPECT_EQ(ENOENT, resp.error);
			EXPECT_EQ(sizeof(resp), len);
		} else {
			EXPECT_EQ(0, resp.error);
			ASSERT_EQ(sizeof(resp) + CS, len);
			EXPECT_TRUE(data_ok(which, data));
		}
	}
	EXPECT_EQ(0, stop(self, SIGTERM));
	snprintf(want, sizeof(want), "stopped: %d fetched, %d missing, "
		 "0 errors, %d bytes", 2 * n / 3, n / 3, 2 * n / 3 * CS);
	EXPECT_TRUE(log_has(self, want));
	EXPECT_EQ(n / 3, log_count(self, ": No such file or directory"));
}

/*
 * The daemon is killed with requests in flight; the "kernel" re-queues
 * the unanswered ones to the next daemon, which serves them all.
 */
TEST_F(daemon, killed_and_restarted)
{
	static uint8_t data[CS + 1];
	struct snapblk_fetch_resp resp;
	const int n = 30;
	char answered[31] = { 0 };
	int i, got = 0;
	ssize_t len;

	for (i = 1; i <= n; i++)
		ASSERT_EQ(0, send_req(self->fd, i, which_of(i), sizeof(struct
			  snapblk_fetch_req), CS));
	for (i = 0; i < 5; i++) {
		ASSERT_LE(sizeof(resp), recv_resp(self->fd, &resp, data));
		answered[resp.id] = 1;
		got++;
	}
	kill(self->pid, SIGKILL);
	ASSERT_EQ(self->pid, waitpid(self->pid, NULL, 0));
	self->pid = 0;
	/* What it sent before dying counts; the rest is re-queued. */
	while ((len = recv(self->fd, &resp, sizeof(resp), MSG_DONTWAIT |
			   MSG_TRUNC)) > 0) {
		answered[resp.id] = 1;
		got++;
	}
	close(self->fd);

	ASSERT_EQ(0, start(self, "-v"));
	for (i = 1; i <= n; i++)
		if (!answered[i])
			ASSERT_EQ(0, send_req(self->fd, i, which_of(i),
				  sizeof(struct snapblk_fetch_req), CS));
	for (; got < n; got++) {
		len = recv_resp(self->fd, &resp, data);
		ASSERT_LE(sizeof(resp), len);
		ASSERT_EQ(0, answered[resp.id]);
		answered[resp.id] = 1;
		if (which_of(resp.id) != CH_MISSING)
			EXPECT_TRUE(data_ok(which_of(resp.id), data));
	}
	EXPECT_EQ(0, stop(self, SIGINT));
}

TEST_F(daemon, sigterm_while_idle_exits_0)
{
	usleep(100000);
	EXPECT_EQ(0, stop(self, SIGTERM));
	EXPECT_TRUE(log_has(self, "serving descriptor 3 from "));
	EXPECT_TRUE(log_has(self, "stopped: 0 fetched, 0 missing, 0 errors, "
			    "0 bytes"));
}

/* SIGTERM while the answers cannot be written (nobody reads them). */
TEST_F(daemon, sigterm_while_blocked_on_answers)
{
	int i;

	for (i = 1; i <= 40; i++)
		ASSERT_EQ(0, send_req(self->fd, i, CH_A, sizeof(struct
			  snapblk_fetch_req), CS));
	usleep(300000);
	EXPECT_EQ(0, stop(self, SIGTERM));
}

TEST_F(daemon, device_closed_exits_1)
{
	int status;

	close(self->fd);
	self->fd = -1;
	ASSERT_EQ(self->pid, waitpid(self->pid, &status, 0));
	self->pid = 0;
	ASSERT_TRUE(WIFEXITED(status));
	EXPECT_EQ(1, WEXITSTATUS(status));
	EXPECT_TRUE(log_has(self, "descriptor 3 was closed by the other "
			    "side"));
}

/* --stop-timeout takes 0 to 3600 seconds; anything else is exit 2. */
TEST(stop_timeout_out_of_range_is_a_usage_error)
{
	const char *bin = getenv("SNAPBLK_BIN");
	const char *bad[] = { "3601", "-1", "5s", "" };
	char path[512], err[512];
	int fds[2], status;
	unsigned int i;
	size_t len;
	ssize_t n;
	pid_t pid;

	snprintf(path, sizeof(path), "%s/snapblkd", bin ? bin : "build/bin");
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		ASSERT_EQ(0, pipe2(fds, O_CLOEXEC));
		pid = fork();
		ASSERT_LE(0, pid);
		if (!pid) {
			dup2(fds[1], 2);
			execl(path, path, "--store", "/", "--stop-timeout",
			      bad[i], (char *)NULL);
			_exit(127);
		}
		close(fds[1]);
		len = 0;
		while (len < sizeof(err) - 1 &&
		       (n = read(fds[0], err + len, sizeof(err) - 1 - len)) > 0)
			len += n;
		close(fds[0]);
		err[len] = '\0';
		ASSERT_EQ(pid, waitpid(pid, &status, 0));
		EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 2)
			TH_LOG("--stop-timeout '%s': status %d", bad[i], status);
		EXPECT_NE(NULL, strstr(err, "invalid stop timeout"))
			TH_LOG("--stop-timeout '%s': %s", bad[i], err);
	}
}

/* ------------------------------------- demand, background, tiers, delay */

/*
 * The API 4 answer: demand requests before background ones (with the
 * reserve), a demand request joining a queued background job, the tier
 * and the retries in each answer, --delay-ms, and the 16-byte answers
 * of a module older than API 4.  Stores with many distinct chunks, a
 * second store, a disk cache, and HTTP stores served by the test on
 * 127.0.0.1 (one that fails the first requests for each chunk, one that
 * has nothing).
 */
#define CH_MANY		10	/* chunks CH_MANY.. in the first store */
#define NR_MANY		40
#define CH_ONLY2	60	/* a chunk in the second store only */
#define MAX_ID		256

/*
 * The "kernel" refuses the first answer (EINVAL), takes the others; or,
 * with all_24, refuses every answer with a 24-byte header, as a module
 * of API 3 does.
 */
struct refuser {
	int listener;		/* seccomp notifications, or -1 */
	pid_t pid;		/* the daemon */
	pthread_t thread;
	bool running;
	bool all_24;		/* refuse every 24-byte header */
	int delay_ms;		/* before each refusal */
	atomic_bool stop;
	atomic_int calls;	/* answers written, the refused ones too */
	atomic_int refused;
	atomic_long hdr[2];	/* header bytes of the first two answers */
};

#define HOLD_MAX	16

/*
 * A slow "kernel": each answer's writev() is held hold_ms before it goes
 * through (as the kernel's hashing and decryption inside write() take
 * time), any number at once, noting which threads wrote and how many
 * writes were held at the same time.
 */
struct holder {
	int listener;		/* seccomp notifications, or -1 */
	int hold_ms;
	pthread_t thread;
	bool running;
	atomic_bool stop;
	/* Written by the holder's thread, read once it is joined. */
	int calls;		/* answers written */
	int max_held;		/* most writes held at the same time */
	pid_t tids[HOLD_MAX];	/* the threads that wrote, each once */
	int ntids;
};

FIXTURE(sched) {
	FIXTURE_DATA(daemon) d;
	char dir2[96];		/* the second store */
	char cache[96];		/* a disk cache directory */
	int chunk_of[MAX_ID];	/* what each request id asks for */
	pid_t http[2];		/* HTTP store servers, or 0 */
	int port[2];
	struct refuser ref;
	struct holder hold;
	pid_t daemon_pid;	/* the daemon's main thread (start_held()) */
};

/* One answer as it came: when, and what. */
struct got {
	uint64_t id;
	long ms;		/* after the test's t0 */
	ssize_t n;		/* bytes of the message */
	struct snapblk_fetch_resp resp;
	bool data_ok;		/* the bytes of chunk_of[id] */
};

/* Chunk which's bytes at its path in dir; 0 or -1. */
static int put_many(const char *dir, int from, int count)
{
	int i;

	for (i = from; i < from + count; i++)
		if (put_file(dir, i, CS))
			return -1;
	return 0;
}

FIXTURE_SETUP(sched)
{
	self->ref.listener = -1;
	self->hold.listener = -1;
	ASSERT_EQ(0, make_store(&self->d));
	ASSERT_EQ(0, put_many(self->d.dir, CH_MANY, NR_MANY));
	snprintf(self->dir2, sizeof(self->dir2), "%s.2", self->d.dir);
	ASSERT_EQ(0, mkdir(self->dir2, 0755));
	ASSERT_EQ(0, put_many(self->dir2, CH_ONLY2, 1));
	snprintf(self->cache, sizeof(self->cache), "%s.cache", self->d.dir);
}

FIXTURE_TEARDOWN(sched)
{
	char top[128];
	int i;

	if (self->d.pid > 0)
		stop(&self->d, SIGKILL);
	if (self->ref.running) {
		atomic_store(&self->ref.stop, true);
		pthread_join(self->ref.thread, NULL);
	}
	if (self->ref.listener >= 0)
		close(self->ref.listener);
	if (self->hold.running) {
		atomic_store(&self->hold.stop, true);
		pthread_join(self->hold.thread, NULL);
	}
	if (self->hold.listener >= 0)
		close(self->hold.listener);
	for (i = 0; i < 2; i++) {
		if (self->http[i] > 0) {
			kill(self->http[i], SIGKILL);
			waitpid(self->http[i], NULL, 0);
		}
	}
	remove_store(&self->d);
	snprintf(top, sizeof(top), "%s", self->dir2);
	nftw(top, rm_one, 16, FTW_DEPTH | FTW_PHYS);
	snprintf(top, sizeof(top), "%s", self->cache);
	nftw(top, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

/* Ask for chunk which as request id, background or not. */
static int ask(FIXTURE_DATA(sched) *self, uint64_t id, int which,
	       uint32_t flags)
{
	struct snapblk_fetch_req req = {
		.len = sizeof(req),
		.chunk_size = CS,
		.id = id,
		.dev_index = 7,
		.flags = flags,
		.chunk = which,
	};

	if (id >= MAX_ID)
		return -1;
	self->chunk_of[id] = which;
	make_addr(which, req.addr);
	return send(self->d.fd, &req, sizeof(req), 0) == sizeof(req) ? 0 : -1;
}

static bool chunk_ok(int which, const uint8_t *data)
{
	static uint8_t want[CS];

	fill(which, want, CS);
	return !memcmp(want, data, CS);
}

/*
 * The next answer, with a header of hdr bytes, within TIMEOUT_MS:
 * 0, or -1 on a timeout or a message of the wrong shape.
 */
static int next_answer(FIXTURE_DATA(sched) *self, size_t hdr,
		       const struct timespec *t0, struct got *g)
{
	static uint8_t data[CS + 1];
	struct pollfd p = { .fd = self->d.fd, .events = POLLIN };
	struct iovec iov[2] = {
		{ .iov_base = &g->resp, .iov_len = hdr },
		{ .iov_base = data, .iov_len = CS + 1 },
	};
	struct msghdr msg = { .msg_iov = iov, .msg_iovlen = 2 };

	memset(g, 0, sizeof(*g));
	if (poll(&p, 1, TIMEOUT_MS) != 1)
		return -1;
	g->n = recvmsg(self->d.fd, &msg, MSG_DONTWAIT);
	g->ms = ms_since(t0);
	if (g->n < (ssize_t)hdr || (msg.msg_flags & MSG_TRUNC))
		return -1;
	g->id = g->resp.id;
	if (g->id >= MAX_ID)
		return -1;
	g->data_ok = g->n == (ssize_t)(hdr + CS) &&
		     chunk_ok(self->chunk_of[g->id], data);
	return 0;
}

/* n answers in the order they came, each good data with a 24-byte header. */
static int answers(FIXTURE_DATA(sched) *self, const struct timespec *t0,
		   struct got *g, int n)
{
	int i;

	for (i = 0; i < n; i++)
		if (next_answer(self, sizeof(g->resp), t0, &g[i]) ||
		    g[i].resp.len != sizeof(g->resp) || g[i].resp.error ||
		    !g[i].data_ok)
			return -1;
	return 0;
}

/* Where request id is in g[0..n), or -1. */
static int place_of(const struct got *g, int n, uint64_t id)
{
	int i;

	for (i = 0; i < n; i++)
		if (g[i].id == id)
			return i;
	return -1;
}

#define BG	(SNAPBLK_FETCH_F_BACKGROUND)

/*
 * Start the daemon with args, then ask for n chunks in the background
 * (request ids 1 to n) from *t0 on.  0 or -1.
 */
static int backlog(FIXTURE_DATA(sched) *self, const char *const *args,
		   int n, struct timespec *t0)
{
	int i;

	if (startv(&self->d, args))
		return -1;
	clock_gettime(CLOCK_MONOTONIC, t0);
	for (i = 1; i <= n; i++)
		if (ask(self, i, CH_MANY + i, BG))
			return -1;
	return 0;
}

/*
 * --max-inflight 4: three slots for background work, one kept for
 * demand.  16 background requests (3 running, 13 in the daemon's queue),
 * then one demand: the demand one starts at once, in the reserved slot,
 * and is answered with the first three, before the other 13 background
 * ones.
 */
TEST_F(sched, demand_answered_before_background_backlog)
{
	const char *args[] = { "--max-inflight", "4", "--delay-ms", "400",
			       NULL };
	struct timespec t0;
	struct got g[17];
	int i, at;

	ASSERT_EQ(0, backlog(self, args, 16, &t0));
	ASSERT_EQ(0, ask(self, 100, CH_MANY, 0));
	ASSERT_EQ(0, answers(self, &t0, g, 17));
	at = place_of(g, 17, 100);
	TH_LOG("the demand request's answer was answer %d of 17, after %ld "
	       "ms", at + 1, g[at].ms);
	EXPECT_LE(0, at);
	EXPECT_GT(4, at) TH_LOG("answered behind the background backlog");
	EXPECT_LE(400, g[at].ms);
	/*
	 * Background in arrival order, three at a time: the p-th background
	 * answer is one of the three started p / 3 rounds in.
	 */
	for (i = 0, at = 0; i < 17; i++) {
		if (g[i].id == 100)
			continue;
		EXPECT_LE((uint64_t)at / 3 * 3 + 1, g[i].id);
		EXPECT_GE((uint64_t)at / 3 * 3 + 3, g[i].id);
		at++;
	}
	EXPECT_LE(5 * 400, g[16].ms) TH_LOG("more than 3 background at once");
	EXPECT_EQ(0, stop(&self->d, SIGTERM));
	EXPECT_TRUE(log_has(&self->d, "fetches: demand 1 started, 1 "
			    "completed; background 16 started, 16 completed"));
	EXPECT_TRUE(log_has(&self->d, "4 fetches at once (3 for background "
			    "work)"));
}

/*
 * The reserve holds: with a backlog of background work, never more
 * than three of it runs at once (answers come three per --delay-ms),
 * while four demand requests all run at once.
 */
TEST_F(sched, background_leaves_the_reserve_free)
{
	const char *args[] = { "--max-inflight", "4", "--delay-ms", "500",
			       NULL };
	struct timespec t0;
	struct got g[9];
	int i, early;

	ASSERT_EQ(0, backlog(self, args, 9, &t0));
	ASSERT_EQ(0, answers(self, &t0, g, 9));
	for (i = 0, early = 0; i < 9; i++) {
		TH_LOG("background %llu answered after %ld ms",
		       (unsigned long long)g[i].id, g[i].ms);
		early += g[i].ms < 750;
	}
	EXPECT_EQ(3, early);
	EXPECT_LE(3 * 500, g[8].ms);

	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (i = 11; i <= 14; i++)
		ASSERT_EQ(0, ask(self, i, CH_MANY + i, 0));
	ASSERT_EQ(0, answers(self, &t0, g, 4));
	TH_LOG("four demand answers after %ld ms", g[3].ms);
	EXPECT_GT(750, g[3].ms);
	EXPECT_EQ(0, stop(&self->d, SIGTERM));
}

/*
 * A demand request for the chunk of a queued background job joins it:
 * the job runs next, as demand, and answers both requests with the
 * chunk; one fetch of it, not two.
 */
TEST_F(sched, demand_promotes_queued_background_job)
{
	const char *args[] = { "--max-inflight", "4", "--delay-ms", "400",
			       "-v", NULL };
	struct timespec t0;
	struct got g[13];
	int p12, p100;

	ASSERT_EQ(0, backlog(self, args, 12, &t0));
	/* Request 12 is the last queued: ask for its chunk on demand. */
	ASSERT_EQ(0, ask(self, 100, CH_MANY + 12, 0));
	ASSERT_EQ(0, answers(self, &t0, g, 13));
	p12 = place_of(g, 13, 12);
	p100 = place_of(g, 13, 100);
	TH_LOG("of 13 answers, background 12 came as number %d, demand 100 "
	       "as %d", p12 + 1, p100 + 1);
	EXPECT_GT(5, p12);
	EXPECT_GT(5, p100);
	EXPECT_GT(450 + 400, g[p100].ms);
	EXPECT_EQ(0, stop(&self->d, SIGTERM));
	EXPECT_TRUE(log_has(&self->d, "fetches: demand 1 started, 1 "
			    "completed; background 11 started, 11 completed; "
			    "1 background joined by a demand request"));
	EXPECT_TRUE(log_has(&self->d, "stopped: 13 fetched, 0 missing, "
			    "0 errors"));
	EXPECT_TRUE(log_has(&self->d, "stores: 12 chunks fetched"));
	EXPECT_EQ(1, log_count(&self->d, "joins the queued background fetch"));
}

/* Disk cache tier 1 (SNAPBLK_TIER_DISK), first store tier 2, second 3. */
TEST_F(sched, tier_of_each_answer)
{
	const char *args[] = { "--store", self->dir2, "--cache-dir",
			       self->cache, "--cache-size", "16M", NULL };
	struct timespec t0;
	struct got g;

	ASSERT_EQ(0, startv(&self->d, args));
	clock_gettime(CLOCK_MONOTONIC, &t0);
	ASSERT_EQ(0, ask(self, 1, CH_MANY, 0));
	ASSERT_EQ(0, answers(self, &t0, &g, 1));
	EXPECT_EQ(SNAPBLK_TIER_STORE, g.resp.tier);
	EXPECT_EQ(0, g.resp.retries);

	ASSERT_EQ(0, ask(self, 2, CH_MANY, 0));
	ASSERT_EQ(0, answers(self, &t0, &g, 1));
	EXPECT_EQ(SNAPBLK_TIER_DISK, g.resp.tier);
	EXPECT_EQ(0, g.resp.retries);

	/* Not in the first store: asked there, then in the second. */
	ASSERT_EQ(0, ask(self, 3, CH_ONLY2, BG));
	ASSERT_EQ(0, answers(self, &t0, &g, 1));
	EXPECT_EQ(SNAPBLK_TIER_STORE + 1, g.resp.tier);
	EXPECT_EQ(1, g.resp.retries);
	ASSERT_EQ(0, ask(self, 4, CH_ONLY2, 0));
	ASSERT_EQ(0, answers(self, &t0, &g, 1));
	EXPECT_EQ(SNAPBLK_TIER_DISK, g.resp.tier);

	/* Errors say no tier. */
	ASSERT_EQ(0, ask(self, 5, CH_MISSING, 0));
	ASSERT_EQ(0, next_answer(self, sizeof(g.resp), &t0, &g));
	EXPECT_EQ(ENOENT, g.resp.error);
	EXPECT_EQ(SNAPBLK_TIER_UNSPEC, g.resp.tier);
	EXPECT_EQ(sizeof(g.resp), g.n);
	EXPECT_EQ(0, stop(&self->d, SIGTERM));
	EXPECT_TRUE(log_has(&self->d, "tiers: disk 2, store 0 1, store 1 1"));
}

/* ------------------------------------------- HTTP stores of the test */

enum http_mode {
	HTTP_FLAKY,	/* 503 for the first fails GETs of each chunk */
	HTTP_EMPTY,	/* 404 for everything */
};

static void send_all(int fd, const void *p, size_t len)
{
	ssize_t n;

	while (len) {
		n = send(fd, p, len, MSG_NOSIGNAL);
		if (n <= 0)
			return;
		p = (const char *)p + n;
		len -= n;
	}
}

/* One request on connection c: GET /s/ab/abcd... HTTP/1.1. */
static void http_answer(int c, const char *dir, enum http_mode mode,
			int fails, char (*seen)[80], int *count, int *nseen)
{
	static uint8_t body[CS];
	char req[4096] = "", path[600], head[256];
	const char *status = "404 Not Found";
	size_t have = 0, len = 0;
	ssize_t n;
	int i, fd;

	while (have < sizeof(req) - 1 && !strstr(req, "\r\n\r\n")) {
		n = recv(c, req + have, sizeof(req) - 1 - have, 0);
		if (n <= 0)
			return;
		have += n;
		req[have] = '\0';
	}
	if (strncmp(req, "GET /s/", 7) || !strchr(req + 7, ' '))
		goto out;
	*strchr(req + 7, ' ') = '\0';
	if (strlen(req + 7) >= sizeof(seen[0]))
		goto out;
	for (i = 0; i < *nseen && strcmp(seen[i], req + 7); i++)
		;
	if (i == *nseen && i < 64)
		snprintf(seen[(*nseen)++], sizeof(seen[0]), "%.79s", req + 7);
	if (i < 64)
		count[i]++;
	if (mode == HTTP_EMPTY)
		goto out;
	if (i < 64 && count[i] <= fails) {
		status = "503 Service Unavailable";
		goto out;
	}
	snprintf(path, sizeof(path), "%.500s/%.79s", dir, req + 7);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		goto out;
	n = read(fd, body, sizeof(body));
	close(fd);
	if (n < 0)
		goto out;
	len = n;
	status = "200 OK";
out:
	n = snprintf(head, sizeof(head), "HTTP/1.1 %s\r\nContent-Length: %zu"
		     "\r\nConnection: close\r\n\r\n", status, len);
	send_all(c, head, n);
	if (len)
		send_all(c, body, len);
}

/*
 * An HTTP server of dir on 127.0.0.1 (a port of the kernel's choosing,
 * in *port), one connection at a time, in a child; its pid or -1.
 */
static pid_t http_server(const char *dir, enum http_mode mode, int fails,
			 int *port)
{
	struct sockaddr_in a = {
		.sin_family = AF_INET,
		.sin_addr.s_addr = htonl(INADDR_LOOPBACK),
	};
	socklen_t alen = sizeof(a);
	static char seen[64][80];
	static int count[64];
	int l, c, nseen = 0;
	pid_t pid;

	l = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (l < 0 || bind(l, (struct sockaddr *)&a, sizeof(a)) ||
	    listen(l, 64) || getsockname(l, (struct sockaddr *)&a, &alen))
		return -1;
	*port = ntohs(a.sin_port);
	pid = fork();
	if (pid) {
		close(l);
		return pid;
	}
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	for (;;) {
		c = accept(l, NULL, NULL);
		if (c < 0)
			continue;
		http_answer(c, dir, mode, fails, seen, count, &nseen);
		close(c);
	}
}

/*
 * A store that fails (503) the first two requests for each chunk: each
 * answer says retries 2, tier 2 (the only store).
 */
TEST_F(sched, flaky_store_retries_in_answer)
{
	char url[64];
	const char *args[] = { "--store", url, NULL };
	struct timespec t0;
	struct got g;

	self->http[0] = http_server(self->d.dir, HTTP_FLAKY, 2,
				    &self->port[0]);
	ASSERT_LT(0, self->http[0]);
	snprintf(url, sizeof(url), "http://127.0.0.1:%d/s", self->port[0]);
	self->d.no_store = true;
	ASSERT_EQ(0, startv(&self->d, args));
	clock_gettime(CLOCK_MONOTONIC, &t0);
	ASSERT_EQ(0, ask(self, 1, CH_MANY, 0));
	ASSERT_EQ(0, answers(self, &t0, &g, 1));
	EXPECT_EQ(SNAPBLK_TIER_STORE, g.resp.tier);
	EXPECT_EQ(2, g.resp.retries);
	ASSERT_EQ(0, ask(self, 2, CH_MANY + 1, BG));
	ASSERT_EQ(0, answers(self, &t0, &g, 1));
	EXPECT_EQ(SNAPBLK_TIER_STORE, g.resp.tier);
	EXPECT_EQ(2, g.resp.retries);
	EXPECT_EQ(0, stop(&self->d, SIGTERM));
	EXPECT_TRUE(log_has(&self->d, "stores: 2 chunks fetched, 4 retries"));
}

/*
 * --store-group EMPTY,GOOD --store DIR2: the group's replicas are tiers
 * 2 and 3, the store after it 4.  The first fetch asks the empty replica
 * first (two requests), the next one the good one (one).
 */
TEST_F(sched, group_member_tiers)
{
	char group[160];
	const char *args[] = { "--store-group", group, "--store", self->dir2,
			       NULL };
	struct timespec t0;
	struct got g;

	self->http[0] = http_server(self->d.dir, HTTP_EMPTY, 0,
				    &self->port[0]);
	ASSERT_LT(0, self->http[0]);
	self->http[1] = http_server(self->d.dir, HTTP_FLAKY, 0,
				    &self->port[1]);
	ASSERT_LT(0, self->http[1]);
	snprintf(group, sizeof(group), "http://127.0.0.1:%d/s,"
		 "http://127.0.0.1:%d/s", self->port[0], self->port[1]);
	self->d.no_store = true;
	ASSERT_EQ(0, startv(&self->d, args));
	clock_gettime(CLOCK_MONOTONIC, &t0);
	ASSERT_EQ(0, ask(self, 1, CH_MANY, 0));
	ASSERT_EQ(0, answers(self, &t0, &g, 1));
	EXPECT_EQ(SNAPBLK_TIER_STORE + 1, g.resp.tier);
	EXPECT_EQ(1, g.resp.retries);
	ASSERT_EQ(0, ask(self, 2, CH_MANY + 1, 0));
	ASSERT_EQ(0, answers(self, &t0, &g, 1));
	EXPECT_EQ(SNAPBLK_TIER_STORE + 1, g.resp.tier);
	EXPECT_EQ(0, g.resp.retries);
	/* In neither replica: both asked, then the directory store. */
	ASSERT_EQ(0, ask(self, 3, CH_ONLY2, 0));
	ASSERT_EQ(0, answers(self, &t0, &g, 1));
	EXPECT_EQ(SNAPBLK_TIER_STORE + 2, g.resp.tier);
	EXPECT_EQ(2, g.resp.retries);
	EXPECT_EQ(0, stop(&self->d, SIGTERM));
	EXPECT_TRUE(log_has(&self->d, "tiers: disk 0, store 0 0, store 1 2, "
			    "store 2 1"));
}

/*
 * --delay-ms 300: every store answer comes 300 ms or more after the
 * request, several at once (a timer, not a sleep), and a disk cache
 * hit at once.
 */
TEST_F(sched, delay_ms_delays_store_answers)
{
	const char *args[] = { "--delay-ms", "300", "--cache-dir",
			       self->cache, "--cache-size", "16M", NULL };
	struct timespec t0;
	struct got g[8];
	int i;

	ASSERT_EQ(0, startv(&self->d, args));
	clock_gettime(CLOCK_MONOTONIC, &t0);
	ASSERT_EQ(0, ask(self, 1, CH_MANY, 0));
	ASSERT_EQ(0, answers(self, &t0, g, 1));
	TH_LOG("one answer after %ld ms", g[0].ms);
	EXPECT_LE(300, g[0].ms);

	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (i = 0; i < 8; i++)
		ASSERT_EQ(0, ask(self, 10 + i, CH_MANY + 1 + i, 0));
	ASSERT_EQ(0, answers(self, &t0, g, 8));
	TH_LOG("eight at once: the first after %ld ms, the last after %ld",
	       g[0].ms, g[7].ms);
	EXPECT_LE(300, g[0].ms);
	EXPECT_GT(2 * 300, g[7].ms);

	clock_gettime(CLOCK_MONOTONIC, &t0);
	ASSERT_EQ(0, ask(self, 2, CH_MANY, 0));
	ASSERT_EQ(0, answers(self, &t0, g, 1));
	TH_LOG("from the disk cache after %ld ms", g[0].ms);
	EXPECT_EQ(SNAPBLK_TIER_DISK, g[0].resp.tier);
	EXPECT_GT(300, g[0].ms);
	EXPECT_EQ(0, stop(&self->d, SIGTERM));
	EXPECT_TRUE(log_has(&self->d, "every store request takes at least "
			    "300 ms (--delay-ms)"));
}

/* The verdicts of a "kernel" of API 3 on the daemon's answers. */
static void *refuse_first(void *arg)
{
	struct refuser *r = arg;
	struct pollfd p = { .fd = r->listener, .events = POLLIN };
	struct seccomp_notif req;
	struct seccomp_notif_resp resp;
	struct iovec hdr, remote;
	struct iovec local = { &hdr, sizeof(hdr) };
	bool refuse;
	int n;

	while (!atomic_load(&r->stop)) {
		if (poll(&p, 1, 100) != 1)
			continue;
		if (p.revents & (POLLHUP | POLLERR))
			break;
		memset(&req, 0, sizeof(req));
		if (ioctl(r->listener, SECCOMP_IOCTL_NOTIF_RECV, &req))
			continue;
		n = atomic_fetch_add(&r->calls, 1);
		/* The header's length, from the daemon's iovec. */
		remote.iov_base = (void *)(uintptr_t)req.data.args[1];
		remote.iov_len = sizeof(hdr);
		if (process_vm_readv(req.pid, &local, 1, &remote, 1, 0) !=
		    sizeof(hdr))
			hdr.iov_len = 0;
		if (n < 2)
			atomic_store(&r->hdr[n], (long)hdr.iov_len);
		refuse = r->all_24 ?
			 hdr.iov_len == sizeof(struct snapblk_fetch_resp) :
			 n == 0;
		memset(&resp, 0, sizeof(resp));
		resp.id = req.id;
		if (refuse) {
			usleep(r->delay_ms * 1000);
			resp.error = -EINVAL;
			atomic_fetch_add(&r->refused, 1);
		} else {
			resp.flags = SECCOMP_USER_NOTIF_FLAG_CONTINUE;
		}
		ioctl(r->listener, SECCOMP_IOCTL_NOTIF_SEND, &resp);
	}
	return NULL;
}

/* Start the daemon with args, its answers judged by refuse_first(). */
static int start_refused(FIXTURE_DATA(sched) *self, const char *const *args)
{
	self->d.listener_out = &self->ref.listener;
	if (startv(&self->d, args))
		return -1;
	self->ref.pid = self->d.pid;
	if (pthread_create(&self->ref.thread, NULL, refuse_first, &self->ref))
		return -1;
	self->ref.running = true;
	return 0;
}

/*
 * A module older than API 4 refuses the 24-byte answer header with
 * EINVAL: the daemon answers that request again with 16 bytes, and
 * every later one with 16 bytes at once; no answer is lost or counted
 * as an error.
 */
TEST_F(sched, answers_16_bytes_to_an_api_3_module)
{
	struct snapblk_fetch_resp *resp;
	struct timespec t0;
	struct got g;

	ASSERT_EQ(0, start_refused(self, NULL))
		TH_LOG("cannot watch the daemon's answers with a seccomp "
		       "listener");
	clock_gettime(CLOCK_MONOTONIC, &t0);
	ASSERT_EQ(0, ask(self, 1, CH_MANY, 0));
	ASSERT_EQ(0, next_answer(self, SNAPBLK_FETCH_RESP_LEN_V3, &t0, &g));
	resp = &g.resp;
	EXPECT_EQ(SNAPBLK_FETCH_RESP_LEN_V3, resp->len);
	EXPECT_EQ(1, resp->id);
	EXPECT_EQ(0, resp->error);
	EXPECT_TRUE(g.data_ok);
	ASSERT_EQ(0, ask(self, 2, CH_MISSING, 0));
	ASSERT_EQ(0, next_answer(self, SNAPBLK_FETCH_RESP_LEN_V3, &t0, &g));
	EXPECT_EQ(SNAPBLK_FETCH_RESP_LEN_V3, g.n);
	EXPECT_EQ(SNAPBLK_FETCH_RESP_LEN_V3, resp->len);
	EXPECT_EQ(ENOENT, resp->error);
	ASSERT_EQ(0, ask(self, 3, CH_MANY + 1, BG));
	ASSERT_EQ(0, next_answer(self, SNAPBLK_FETCH_RESP_LEN_V3, &t0, &g));
	EXPECT_EQ(SNAPBLK_FETCH_RESP_LEN_V3, resp->len);
	EXPECT_EQ(3, resp->id);
	EXPECT_TRUE(g.data_ok);
	EXPECT_EQ(0, stop(&self->d, SIGTERM));
	/* One refused write of 24 bytes, then three answers of 16. */
	EXPECT_EQ(4, atomic_load(&self->ref.calls));
	EXPECT_EQ(sizeof(struct snapblk_fetch_resp),
		  atomic_load(&self->ref.hdr[0]));
	EXPECT_EQ(SNAPBLK_FETCH_RESP_LEN_V3, atomic_load(&self->ref.hdr[1]));
	EXPECT_TRUE(log_has(&self->d, "takes 16-byte answers only"));
	EXPECT_EQ(1, log_count(&self->d, "takes 16-byte answers only"));
	EXPECT_TRUE(log_has(&self->d, "stopped: 2 fetched, 1 missing, "
			    "0 errors"));
}

/*
 * The same with four writers answering eight requests at once: the
 * writes that began with 24 bytes before the first refusal came back
 * (held 50 ms each, so that several do) are each sent again with 16; the
 * fall back is logged once, every answer has 16 bytes and the data, and
 * none is lost or counted as an error.
 */
TEST_F(sched, api_3_fallback_with_concurrent_writers)
{
	const char *args[] = { "--writers", "4", NULL };
	struct timespec t0;
	struct got g;
	bool seen[8] = { false };
	int i, refused;

	self->ref.all_24 = true;
	self->ref.delay_ms = 50;
	ASSERT_EQ(0, start_refused(self, args))
		TH_LOG("cannot watch the daemon's answers with a seccomp "
		       "listener");
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (i = 0; i < 8; i++)
		ASSERT_EQ(0, ask(self, 1 + i, CH_MANY + i, 0));
	for (i = 0; i < 8; i++) {
		ASSERT_EQ(0, next_answer(self, SNAPBLK_FETCH_RESP_LEN_V3, &t0,
					 &g));
		EXPECT_EQ(SNAPBLK_FETCH_RESP_LEN_V3, g.resp.len);
		EXPECT_EQ(0, g.resp.error);
		EXPECT_TRUE(g.data_ok);
		ASSERT_LE(1, g.id);
		ASSERT_GE(8, g.id);
		EXPECT_FALSE(seen[g.id - 1]);
		seen[g.id - 1] = true;
	}
	EXPECT_EQ(0, stop(&self->d, SIGTERM));
	refused = atomic_load(&self->ref.refused);
	TH_LOG("%d answers refused with 24 bytes, then sent with 16",
	       refused);
	EXPECT_LE(1, refused);
	EXPECT_GE(4, refused);
	/* And a write that found the socket full (EAGAIN) was made again. */
	EXPECT_LE(8 + refused, atomic_load(&self->ref.calls));
	EXPECT_EQ(1, log_count(&self->d, "takes 16-byte answers only"));
	EXPECT_TRUE(log_has(&self->d, "stopped: 8 fetched, 0 missing, "
			    "0 errors"));
}

static long mono_ms(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return t.tv_sec * 1000L + t.tv_nsec / 1000000;
}

/* The holder's thread: every answer's write held h->hold_ms. */
static void *hold_writes(void *arg)
{
	struct holder *h = arg;
	struct pollfd p = { .fd = h->listener, .events = POLLIN };
	struct { uint64_t id; long due; } held[HOLD_MAX];
	struct seccomp_notif req;
	struct seccomp_notif_resp resp;
	int nheld = 0, i, timeout;
	bool stop;
	long now;

	for (;;) {
		/* Let through the writes held long enough (all, stopping). */
		stop = atomic_load(&h->stop);
		now = mono_ms();
		for (i = 0; i < nheld;) {
			if (held[i].due > now && !stop) {
				i++;
				continue;
			}
			memset(&resp, 0, sizeof(resp));
			resp.id = held[i].id;
			resp.flags = SECCOMP_USER_NOTIF_FLAG_CONTINUE;
			ioctl(h->listener, SECCOMP_IOCTL_NOTIF_SEND, &resp);
			held[i] = held[--nheld];
		}
		if (stop)
			return NULL;
		timeout = 50;
		for (i = 0; i < nheld; i++)
			if (held[i].due - now < timeout)
				timeout = held[i].due - now;
		if (poll(&p, 1, timeout) != 1)
			continue;
		if (p.revents & (POLLHUP | POLLERR))
			return NULL;	/* the daemon is gone */
		memset(&req, 0, sizeof(req));
		if (ioctl(h->listener, SECCOMP_IOCTL_NOTIF_RECV, &req))
			continue;
		h->calls++;
		for (i = 0; i < h->ntids && h->tids[i] != (pid_t)req.pid; i++)
			;
		if (i == h->ntids && i < HOLD_MAX)
			h->tids[h->ntids++] = req.pid;
		if (nheld == HOLD_MAX)
			nheld--;	/* cannot happen: HOLD_MAX > writers */
		held[nheld].id = req.id;
		held[nheld].due = mono_ms() + h->hold_ms;
		nheld++;
		if (nheld > h->max_held)
			h->max_held = nheld;
	}
}

/*
 * Start the daemon with --writers writers and every answer's write held
 * hold_ms; then one request answered (the daemon is up).  0 or -1.
 */
static int start_held(FIXTURE_DATA(sched) *self, const char *writers,
		      int hold_ms)
{
	const char *args[] = { "--writers", writers, NULL };
	struct timespec t0;
	struct got g;

	self->d.listener_out = &self->hold.listener;
	if (startv(&self->d, args))
		return -1;
	self->daemon_pid = self->d.pid;
	self->hold.hold_ms = hold_ms;
	if (pthread_create(&self->hold.thread, NULL, hold_writes, &self->hold))
		return -1;
	self->hold.running = true;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	if (ask(self, 1, CH_MANY, 0))
		return -1;
	return answers(self, &t0, &g, 1);
}

/* SIGTERM the daemon, then stop the holder: the daemon's exit status. */
static int stop_held(FIXTURE_DATA(sched) *self)
{
	int status = stop(&self->d, SIGTERM);

	atomic_store(&self->hold.stop, true);
	pthread_join(self->hold.thread, NULL);
	self->hold.running = false;
	return status;
}

#define HOLD_MS		200

/*
 * With --writers writers and each answer's write held HOLD_MS: one
 * answer (the daemon is up), then four requests at once, their answers
 * in g (ms from when they were asked, and logged), then SIGTERM: 0, or
 * -1 if any of it failed (an exit status but 0 too).
 */
static int four_held(FIXTURE_DATA(sched) *self, const char *writers,
		     struct got *g)
{
	struct timespec t0;
	int i;

	if (start_held(self, writers, HOLD_MS))
		return -1;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (i = 0; i < 4; i++)
		if (ask(self, 10 + i, CH_MANY + 1 + i, 0))
			return -1;
	if (answers(self, &t0, g, 4))
		return -1;
	ksft_print_msg("--writers %s, each write %d ms: four answers, the "
		       "first after %ld ms, the last after %ld ms\n", writers,
		       HOLD_MS, g[0].ms, g[3].ms);
	return stop_held(self) ? -1 : 0;
}

/*
 * A kernel that takes 200 ms in each answer's write() (verifying and
 * decrypting): with --writers 4, four answers are written at once, by
 * four threads other than the event loop, and all four come in about
 * 200 ms, not 800.
 */
TEST_F(sched, writers_write_answers_concurrently)
{
	struct got g[4];
	int i;

	ASSERT_EQ(0, four_held(self, "4", g))
		TH_LOG("cannot hold the daemon's answers with a seccomp "
		       "listener, or they did not come");
	EXPECT_LE(HOLD_MS, g[0].ms);
	EXPECT_GT(2 * HOLD_MS, g[3].ms);
	EXPECT_EQ(5, self->hold.calls);
	EXPECT_EQ(4, self->hold.max_held);
	EXPECT_EQ(4, self->hold.ntids);
	for (i = 0; i < self->hold.ntids; i++)
		EXPECT_NE(self->daemon_pid, self->hold.tids[i]);
	EXPECT_TRUE(log_has(&self->d, "answers written by 4 threads"));
	EXPECT_TRUE(log_has(&self->d, "stopped: 5 fetched, 0 missing, "
			    "0 errors"));
}

/*
 * --writers 0: the event loop writes every answer itself, one after the
 * other (four take 4 x 200 ms), and they are all right.
 */
TEST_F(sched, writers_0_writes_answers_from_the_loop)
{
	struct got g[4];

	ASSERT_EQ(0, four_held(self, "0", g))
		TH_LOG("cannot hold the daemon's answers with a seccomp "
		       "listener, or they did not come");
	/* Each hold is timed in whole ms: a few ms short at most. */
	EXPECT_LE(4 * HOLD_MS - 10, g[3].ms);
	EXPECT_EQ(5, self->hold.calls);
	EXPECT_EQ(1, self->hold.max_held);
	EXPECT_EQ(1, self->hold.ntids);
	EXPECT_EQ(self->daemon_pid, self->hold.tids[0]);
	EXPECT_TRUE(log_has(&self->d, "answers written by the event loop "
			    "(--writers 0)"));
	EXPECT_TRUE(log_has(&self->d, "stopped: 5 fetched, 0 missing, "
			    "0 errors"));
}

/*
 * SIGTERM with answers queued for the writers, behind writes the kernel
 * is slow to take: the daemon stops in about one write's time, not the
 * queue's, dropping the answers not begun (the kernel re-queues their
 * requests), and exits 0.
 */
TEST_F(sched, writers_stop_drops_queued_answers)
{
	const char *args[] = { "--writers", "1", NULL };
	struct holder *h = &self->hold;
	long took;
	int i;

	self->d.listener_out = &h->listener;
	ASSERT_EQ(0, startv(&self->d, args));
	h->hold_ms = 500;
	ASSERT_EQ(0, pthread_create(&h->thread, NULL, hold_writes, h));
	h->running = true;
	for (i = 0; i < 8; i++)
		ASSERT_EQ(0, ask(self, 1 + i, CH_MANY + i, 0));
	/* The first answer is being written, the other 7 queued. */
	usleep(250000);
	EXPECT_EQ(0, stop_within(&self->d, SIGTERM, 3000, &took));
	TH_LOG("stopped %ld ms after SIGTERM", took);
	EXPECT_GT(1000, took);
	atomic_store(&h->stop, true);
	pthread_join(h->thread, NULL);
	h->running = false;
	/* The answer being written was finished, and the only one. */
	EXPECT_EQ(1, h->calls);
	EXPECT_TRUE(log_has(&self->d, "stopped: 1 fetched, 0 missing, "
			    "0 errors"));
}

/* ------------------------------------------------------- hostile store */

enum hostile_kind {
	H_FIFO,		/* open(O_RDONLY) would wait for a writer */
	H_SYMLINK,	/* to a good copy of the chunk outside the store */
	H_FANOUT_SYMLINK, /* ab/ -> a directory outside with the chunk */
	H_DIR,
	H_CHARDEV,	/* like /dev/null: opening a device may do things */
	H_SOCKET,
	H_LEASE,	/* a good chunk under a write lease: open would wait */
};

FIXTURE(hostile) {
	FIXTURE_DATA(daemon) d;
	char out[96];		/* a directory outside the store */
	char path[512];		/* the hostile chunk's path */
	char watched[512];	/* must never be opened by the daemon */
	int keep_fd;		/* the socket, or the leased file */
	int inotify_fd;
	char skip[160];		/* why the test cannot run here */
};

FIXTURE_VARIANT(hostile) {
	enum hostile_kind kind;
	const char *found;	/* what the log line says after the path */
	bool reading;		/* "reading PATH: why" instead */
	int limits;		/* run the daemon without openat2 or /proc */
};

FIXTURE_VARIANT_ADD(hostile, fifo) {
	.kind = H_FIFO, .found = "not a regular file (fifo)",
};

FIXTURE_VARIANT_ADD(hostile, symlink_out_of_store) {
	.kind = H_SYMLINK, .found = "not a regular file (symbolic link)",
};

FIXTURE_VARIANT_ADD(hostile, symlinked_fanout_dir) {
	.kind = H_FANOUT_SYMLINK,
	.found = "a symbolic link in the path (not followed)",
};

FIXTURE_VARIANT_ADD(hostile, directory) {
	.kind = H_DIR, .found = "not a regular file (directory)",
};

FIXTURE_VARIANT_ADD(hostile, char_device) {
	.kind = H_CHARDEV, .found = "not a regular file (character device)",
};

FIXTURE_VARIANT_ADD(hostile, socket) {
	.kind = H_SOCKET, .found = "not a regular file (socket)",
};

FIXTURE_VARIANT_ADD(hostile, leased_file) {
	.kind = H_LEASE, .found = "Resource temporarily unavailable",
	.reading = true,
};

/* The same without openat2() (before Linux 5.6, or a seccomp filter). */
FIXTURE_VARIANT_ADD(hostile, fifo_no_openat2) {
	.kind = H_FIFO, .found = "not a regular file (fifo)",
	.limits = NO_OPENAT2,
};

FIXTURE_VARIANT_ADD(hostile, symlink_out_of_store_no_openat2) {
	.kind = H_SYMLINK, .found = "not a regular file (symbolic link)",
	.limits = NO_OPENAT2,
};

FIXTURE_VARIANT_ADD(hostile, symlinked_fanout_dir_no_openat2) {
	.kind = H_FANOUT_SYMLINK,
	.found = "a symbolic link in the path (not followed)",
	.limits = NO_OPENAT2,
};

FIXTURE_VARIANT_ADD(hostile, char_device_no_openat2) {
	.kind = H_CHARDEV, .found = "not a regular file (character device)",
	.limits = NO_OPENAT2,
};

/* Without /proc (chunk files opened a second way), then without both. */
FIXTURE_VARIANT_ADD(hostile, symlink_out_of_store_no_proc) {
	.kind = H_SYMLINK, .found = "not a regular file (symbolic link)",
	.limits = NO_PROC,
};

FIXTURE_VARIANT_ADD(hostile, leased_file_no_proc_no_openat2) {
	.kind = H_LEASE, .found = "Resource temporarily unavailable",
	.reading = true, .limits = NO_PROC | NO_OPENAT2,
};

/* Put the hostile thing at the chunk path of CH_EVIL; 0 or -errno. */
static int make_hostile(FIXTURE_DATA(hostile) *self, enum hostile_kind kind)
{
	char fanout[512], out_path[512], out_fanout[512];
	struct sockaddr_un sun = { .sun_family = AF_UNIX };

	chunk_path(self->d.dir, CH_EVIL, self->path, sizeof(self->path),
		   fanout, sizeof(fanout));
	chunk_path(self->out, CH_EVIL, out_path, sizeof(out_path),
		   out_fanout, sizeof(out_fanout));
	if (kind != H_FANOUT_SYMLINK && mkdir(fanout, 0755))
		return -errno;
	switch (kind) {
	case H_FIFO:
		snprintf(self->watched, sizeof(self->watched), "%s",
			 self->path);
		return mkfifo(self->path, 0644) ? -errno : 0;
	case H_SYMLINK:
		/* The right bytes: only where they are gives it away. */
		if (put_file(self->out, CH_EVIL, CS))
			return -EIO;
		snprintf(self->watched, sizeof(self->watched), "%s",
			 out_path);
		return symlink(out_path, self->path) ? -errno : 0;
	case H_FANOUT_SYMLINK:
		if (put_file(self->out, CH_EVIL, CS))
			return -EIO;
		snprintf(self->watched, sizeof(self->watched), "%s",
			 out_path);
		return symlink(out_fanout, fanout) ? -errno : 0;
	case H_DIR:
		return mkdir(self->path, 0755) ? -errno : 0;
	case H_CHARDEV:
		snprintf(self->watched, sizeof(self->watched), "%s",
			 self->path);
		return mknod(self->path, S_IFCHR | 0666, makedev(1, 3)) ?
		       -errno : 0;
	case H_SOCKET:
		if (strlen(self->path) >= sizeof(sun.sun_path))
			return -ENAMETOOLONG;
		strcpy(sun.sun_path, self->path);
		self->keep_fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (self->keep_fd < 0 ||
		    bind(self->keep_fd, (struct sockaddr *)&sun, sizeof(sun)))
			return -errno;
		return 0;
	case H_LEASE:
		if (write_chunk(self->path, CH_EVIL, CS))
			return -EIO;
		/* The lease break is signalled to us: nothing to do. */
		signal(SIGIO, SIG_IGN);
		self->keep_fd = open(self->path, O_RDONLY | O_CLOEXEC);
		if (self->keep_fd < 0 ||
		    fcntl(self->keep_fd, F_SETLEASE, F_WRLCK))
			return -errno;
		return 0;
	}
	return -EINVAL;
}

FIXTURE_SETUP(hostile)
{
	int ret;

	self->keep_fd = -1;
	self->inotify_fd = -1;
	ASSERT_EQ(0, make_store(&self->d));
	snprintf(self->out, sizeof(self->out), "%s.out", self->d.dir);
	ASSERT_EQ(0, mkdir(self->out, 0755));
	ret = make_hostile(self, variant->kind);
	if (ret == -EPERM && variant->kind == H_CHARDEV)
		snprintf(self->skip, sizeof(self->skip), "mknod of a "
			 "character device: %s (needs CAP_MKNOD)",
			 strerror(-ret));
	else if (ret && variant->kind == H_LEASE)
		snprintf(self->skip, sizeof(self->skip), "cannot take a "
			 "write lease on %s: %s", self->d.dir, strerror(-ret));
	else
		ASSERT_EQ(0, ret) TH_LOG("making %s: %s", self->path,
					 strerror(-ret));
	if (!self->skip[0] && limits_unavailable(variant->limits))
		snprintf(self->skip, sizeof(self->skip), "%s",
			 limits_unavailable(variant->limits));
	self->d.limits = variant->limits;
	/* Whether the daemon opens it (O_PATH does not count). */
	if (self->watched[0]) {
		self->inotify_fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
		ASSERT_LE(0, self->inotify_fd);
		ASSERT_LE(0, inotify_add_watch(self->inotify_fd,
					       self->watched, IN_OPEN));
	}
	ASSERT_EQ(0, start(&self->d, "-v"));
}

FIXTURE_TEARDOWN(hostile)
{
	char top[128];

	if (self->keep_fd >= 0)
		close(self->keep_fd);
	if (self->inotify_fd >= 0)
		close(self->inotify_fd);
	remove_store(&self->d);
	snprintf(top, sizeof(top), "%s", self->out);
	nftw(top, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

/*
 * The hostile chunk is answered EIO at once, logged once with the path
 * and what is there, never opened for reading; the daemon serves the
 * other chunks and stops cleanly.
 */
TEST_F(hostile, answered_eio_at_once_others_served)
{
	static uint8_t data[CS + 1];
	struct snapblk_fetch_resp resp;
	struct inotify_event ev;
	struct timespec t0;
	char want[768];
	long took;
	ssize_t n;
	int i;

	if (self->skip[0])
		SKIP(return, "%s", self->skip);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	ASSERT_EQ(0, send_req(self->d.fd, 1, CH_EVIL, sizeof(struct
		  snapblk_fetch_req), CS));
	n = recv_resp_within(self->d.fd, &resp, data, PROMPT_MS);
	ASSERT_LE(0, n) TH_LOG("no answer within %d ms", PROMPT_MS);
	TH_LOG("answered in %ld ms", ms_since(&t0));
	EXPECT_EQ(sizeof(resp), n)
		TH_LOG("served %zd bytes from what the store holds there",
		       n - (ssize_t)sizeof(resp));
	EXPECT_EQ(EIO, resp.error);
	EXPECT_EQ(1, resp.id);

	/* More than the workers: none of them is stuck. */
	for (i = 2; i <= 9; i++)
		ASSERT_EQ(0, send_req(self->d.fd, i, i % 2 ? CH_A : CH_B,
			  sizeof(struct snapblk_fetch_req), CS));
	for (i = 2; i <= 9; i++) {
		ASSERT_EQ(sizeof(resp) + CS, recv_resp(self->d.fd, &resp,
						       data));
		EXPECT_EQ(0, resp.error);
		EXPECT_TRUE(data_ok(resp.id % 2 ? CH_A : CH_B, data));
	}
	EXPECT_EQ(0, stop_within(&self->d, SIGTERM, PROMPT_MS, &took))
		TH_LOG("SIGTERM: no exit within %d ms", PROMPT_MS);
	snprintf(want, sizeof(want), "snapblk7 chunk 3: %s%s: %s",
		 variant->reading ? "reading " : "", self->path, variant->found);
	EXPECT_EQ(1, log_count(&self->d, want))
		TH_LOG("log has no single line with '%s'", want);
	EXPECT_TRUE(log_has(&self->d, "stopped: 8 fetched, 0 missing, "
			    "1 errors, 524288 bytes"));
	if (self->inotify_fd >= 0)
		EXPECT_GT(0, read(self->inotify_fd, &ev, sizeof(ev)))
			TH_LOG("the daemon opened %s", self->watched);
}

/* ----------------------------------------- a worker stuck in the store */

/*
 * The store is a FUSE file system served by a child of the test whose
 * READ answers come only when the test says so: a store read that does
 * not return.  Served through the page cache, the reader waits killably
 * (the thread dies with the process); with FOPEN_DIRECT_IO it waits in
 * the FUSE request itself, uninterruptibly once the request was sent,
 * like a hard NFS mount: the process then lingers until the answer.
 */
#define FUSE_BUF	(1 << 20)

FIXTURE(stuck) {
	FIXTURE_DATA(daemon) d;
	pid_t server;
	int reads;		/* server -> test: a byte per READ held */
	int answer;		/* test -> server: a byte: answer them now */
	bool mounted;
	char skip[160];
};

FIXTURE_VARIANT(stuck) {
	bool direct_io;
};

FIXTURE_VARIANT_ADD(stuck, page_cache_read) {
	.direct_io = false,
};

FIXTURE_VARIANT_ADD(stuck, direct_read) {
	.direct_io = true,
};

static void fuse_reply(int fd, const struct fuse_in_header *in, int error,
		       const void *arg, size_t len)
{
	struct fuse_out_header out = {
		.len = sizeof(out) + (error ? 0 : len),
		.error = error,
		.unique = in->unique,
	};
	struct iovec iov[2] = {
		{ .iov_base = &out, .iov_len = sizeof(out) },
		{ .iov_base = (void *)arg, .iov_len = len },
	};

	if (writev(fd, iov, error ? 1 : 2) < 0 && errno != ENOENT)
		_exit(3);	/* ENOENT: the request was interrupted */
}

/* Node 1: the root, 2: any fan-out directory, 3: any chunk file. */
static void fuse_attr_of(uint64_t node, struct fuse_attr *a)
{
	memset(a, 0, sizeof(*a));
	a->ino = node;
	a->mode = node == 3 ? S_IFREG | 0444 : S_IFDIR | 0755;
	a->nlink = node == 3 ? 1 : 2;
	a->size = node == 3 ? CS : 0;
	a->blksize = 4096;
}

/*
 * The FUSE server: answers everything at once but READ, which it holds
 * (telling the test through reads_fd) until a byte on answer_fd; then
 * it answers the held ones with the chunk's bytes.
 */
static noreturn void fuse_server(int fd, int reads_fd, int answer_fd,
				 bool direct_io)
{
	static uint8_t buf[FUSE_BUF], data[CS];
	struct fuse_in_header held[16];
	struct pollfd p[2] = {
		{ .fd = fd, .events = POLLIN },
		{ .fd = answer_fd, .events = POLLIN },
	};
	int nheld = 0, i;
	bool answering = false;

	fill(CH_EVIL, data, CS);
	for (;;) {
		struct fuse_in_header *in = (void *)buf;
		void *arg = buf + sizeof(*in);
		ssize_t n;

		if (poll(p, 2, -1) < 0)
			continue;
		if (p[1].revents) {
			answering = true;
			for (i = 0; i < nheld; i++)
				fuse_reply(fd, &held[i], 0, data, CS);
			nheld = 0;
			p[1].fd = -1;
		}
		if (!p[0].revents)
			continue;
		n = read(fd, buf, sizeof(buf));
		if (n < 0 && (errno == EINTR || errno == ENOENT))
			continue;
		if (n < (ssize_t)sizeof(*in))
			_exit(0);	/* unmounted */
		switch (in->opcode) {
		case FUSE_INIT: {
			struct fuse_init_in *ii = arg;
			struct fuse_init_out io = {
				.major = FUSE_KERNEL_VERSION,
				.minor = ii->minor < FUSE_KERNEL_MINOR_VERSION ?
					 ii->minor : FUSE_KERNEL_MINOR_VERSION,
				.max_readahead = ii->max_readahead,
				/* Page cache reads in the background. */
				.flags = ii->flags & FUSE_ASYNC_READ,
				.max_background = 16,
				.congestion_threshold = 12,
				.max_write = 65536,
				.time_gran = 1,
			};

			fuse_reply(fd, in, 0, &io, sizeof(io));
			break;
		}
		case FUSE_LOOKUP: {
			struct fuse_entry_out e = {
				.nodeid = in->nodeid == FUSE_ROOT_ID ? 2 : 3,
				.entry_valid = 60,
				.attr_valid = 60,
			};

			fuse_attr_of(e.nodeid, &e.attr);
			fuse_reply(fd, in, 0, &e, sizeof(e));
			break;
		}
		case FUSE_GETATTR: {
			struct fuse_attr_out a = { .attr_valid = 60 };

			fuse_attr_of(in->nodeid, &a.attr);
			fuse_reply(fd, in, 0, &a, sizeof(a));
			break;
		}
		case FUSE_OPEN:
		case FUSE_OPENDIR: {
			struct fuse_open_out o = {
				.fh = 1,
				.open_flags = direct_io &&
					      in->opcode == FUSE_OPEN ?
					      FOPEN_DIRECT_IO : 0,
			};

			fuse_reply(fd, in, 0, &o, sizeof(o));
			break;
		}
		case FUSE_READ:
			if (answering || nheld == 16) {
				fuse_reply(fd, in, 0, data, CS);
				break;
			}
			held[nheld++] = *in;
			if (write(reads_fd, "r", 1) != 1)
				_exit(3);
			break;
		case FUSE_FLUSH:
		case FUSE_RELEASE:
		case FUSE_RELEASEDIR:
			fuse_reply(fd, in, 0, NULL, 0);
			break;
		case FUSE_FORGET:
		case FUSE_BATCH_FORGET:
		case FUSE_INTERRUPT:
			break;		/* no answer to these */
		default:
			fuse_reply(fd, in, -ENOSYS, NULL, 0);
		}
	}
}

/* Mount the FUSE store over self->d.dir and start its server. */
static int mount_stuck_store(FIXTURE_DATA(stuck) *self, bool direct_io)
{
	int fd, reads[2], answer[2];
	char opts[128];

	/* A mount namespace of the test's own: gone when it ends. */
	if (unshare(CLONE_NEWNS) ||
	    mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL))
		return snprintf(self->skip, sizeof(self->skip), "no mount "
				"namespace of our own: %s", strerror(errno));
	fd = open("/dev/fuse", O_RDWR | O_CLOEXEC);
	if (fd < 0)
		return snprintf(self->skip, sizeof(self->skip), "opening "
				"/dev/fuse: %s", strerror(errno));
	snprintf(opts, sizeof(opts), "fd=%d,rootmode=40000,user_id=0,"
		 "group_id=0", fd);
	if (mount("snapblkd-test", self->d.dir, "fuse", MS_NOSUID | MS_NODEV,
		  opts))
		return snprintf(self->skip, sizeof(self->skip), "mounting "
				"a FUSE file system: %s", strerror(errno));
	self->mounted = true;
	if (pipe2(reads, O_CLOEXEC) || pipe2(answer, O_CLOEXEC))
		return -1;
	self->server = fork();
	if (self->server < 0)
		return -1;
	if (!self->server) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		fuse_server(fd, reads[1], answer[0], direct_io);
	}
	close(fd);
	close(reads[1]);
	close(answer[0]);
	self->reads = reads[0];
	self->answer = answer[1];
	return 0;
}

FIXTURE_SETUP(stuck)
{
	self->server = 0;
	self->reads = self->answer = -1;
	ASSERT_EQ(0, make_store(&self->d));
	ASSERT_LE(0, mount_stuck_store(self, variant->direct_io));
}

FIXTURE_TEARDOWN(stuck)
{
	if (self->answer >= 0 && write(self->answer, "a", 1) != 1)
		TH_LOG("cannot release the held reads");
	if (self->d.pid > 0)
		stop(&self->d, SIGKILL);
	if (self->server > 0) {
		kill(self->server, SIGKILL);
		waitpid(self->server, NULL, 0);
	}
	if (self->mounted)
		umount2(self->d.dir, MNT_DETACH);
	remove_store(&self->d);
}

/* Wait up to ms for a byte (the server holding a READ); true if one. */
static bool got_byte(int fd, int ms)
{
	struct pollfd p = { .fd = fd, .events = POLLIN };
	char c;

	return poll(&p, 1, ms) == 1 && read(fd, &c, 1) == 1;
}

/*
 * The daemon's end of the device is closed: the kernel would re-queue
 * what it had claimed.  The time it took, or -1 past ms.
 */
static long device_released_within(int fd, int ms,
				   const struct timespec *t0)
{
	struct snapblk_fetch_resp resp;
	struct pollfd p = { .fd = fd, .events = POLLIN };
	long left;

	for (;;) {
		left = ms - ms_since(t0);
		if (left <= 0 || poll(&p, 1, left) != 1)
			return -1;
		/* 0: end of file.  An answer here would be a bug. */
		if (recv(fd, &resp, sizeof(resp), MSG_DONTWAIT | MSG_TRUNC) == 0)
			return ms_since(t0);
		return -1;
	}
}

/*
 * SIGTERM with a worker stuck in a store read: within --stop-timeout
 * (1 s here) and a margin the daemon lets go of the device (the kernel
 * re-queues the stuck request), logs why and its counters, and exits 0.
 * A worker stuck where only the answer can wake it (direct_read) keeps
 * the process from being reaped until then, not the device from being
 * closed.
 */
TEST_F_TIMEOUT(stuck, sigterm_exits_within_stop_timeout, 60)
{
	struct timespec t0;
	long released, reaped = -1;
	int status, waited;

	if (self->skip[0])
		SKIP(return, "%s", self->skip);
	ASSERT_EQ(0, start2(&self->d, "--stop-timeout", "1"));
	ASSERT_EQ(0, send_req(self->d.fd, 1, CH_EVIL, sizeof(struct
		  snapblk_fetch_req), CS));
	ASSERT_TRUE(got_byte(self->reads, TIMEOUT_MS))
		TH_LOG("the daemon's read never reached the store");

	clock_gettime(CLOCK_MONOTONIC, &t0);
	kill(self->d.pid, SIGTERM);
	released = device_released_within(self->d.fd, 1000 + PROMPT_MS, &t0);
	ASSERT_LE(0, released)
		TH_LOG("the device was not let go of within %d ms",
		       1000 + PROMPT_MS);
	TH_LOG("device let go of %ld ms after SIGTERM", released);
	ASSERT_LE(950, released)
		TH_LOG("did not wait --stop-timeout for the worker");

	/* Reaped now, or (direct_read) once the read is answered. */
	for (waited = 0; waited < 1000 + PROMPT_MS; waited += 10) {
		if (waitpid(self->d.pid, &status, WNOHANG) == self->d.pid) {
			reaped = ms_since(&t0);
			break;
		}
		usleep(10000);
	}
	if (reaped < 0) {
		TH_LOG("not reaped %ld ms after SIGTERM: its stuck thread "
		       "sleeps uninterruptibly; answering the read",
		       ms_since(&t0));
		ASSERT_TRUE(variant->direct_io);
		ASSERT_EQ(1, write(self->answer, "a", 1));
		ASSERT_EQ(self->d.pid, waitpid(self->d.pid, &status, 0));
		reaped = ms_since(&t0);
	}
	TH_LOG("reaped %ld ms after SIGTERM", reaped);
	self->d.pid = 0;
	ASSERT_TRUE(WIFEXITED(status));
	EXPECT_EQ(0, WEXITSTATUS(status));
	EXPECT_TRUE(log_has(&self->d, "1 worker still reading from the store "
			    "1 s after the stop: exiting without it"));
	EXPECT_TRUE(log_has(&self->d, "stopped: 0 fetched, 0 missing, "
			    "0 errors, 0 bytes"));
}

/* A second SIGTERM ends the wait for a stuck worker at once. */
TEST_F_TIMEOUT(stuck, second_sigterm_ends_the_wait, 60)
{
	struct timespec t0;
	long released;

	if (self->skip[0])
		SKIP(return, "%s", self->skip);
	ASSERT_EQ(0, start2(&self->d, "--stop-timeout", "3600"));
	ASSERT_EQ(0, send_req(self->d.fd, 1, CH_EVIL, sizeof(struct
		  snapblk_fetch_req), CS));
	ASSERT_TRUE(got_byte(self->reads, TIMEOUT_MS));
	kill(self->d.pid, SIGTERM);
	usleep(200000);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	kill(self->d.pid, SIGTERM);
	released = device_released_within(self->d.fd, PROMPT_MS, &t0);
	TH_LOG("device let go of %ld ms after the second SIGTERM", released);
	EXPECT_LE(0, released);
	EXPECT_TRUE(log_has(&self->d, "Terminated again: not waiting for "
			    "the workers"));
	/* The teardown answers the read, so the daemon can be reaped. */
}

TEST_HARNESS_MAIN
