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
 * What a socket cannot emulate (the kernel refusing an answer with
 * ENOENT or EINVAL) is covered in the VM selftests.
 */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <unistd.h>

#include "kselftest_harness.h"

#include "store.h"

#define CS		SNAPBLK_CHUNK_SIZE_MIN
#define TIMEOUT_MS	10000

enum { CH_A, CH_B, CH_SHORT, CH_MISSING, NR_CH };

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

/* Write a chunk file of len bytes by hand into the fan-out layout. */
static int put_file(const char *dir, int which, size_t len)
{
	char name[SB_STORE_NAME_LEN], path[512];
	uint8_t addr[SNAPBLK_ADDR_LEN];
	static uint8_t buf[CS];
	int fd, ok;

	make_addr(which, addr);
	sb_store_name(addr, name);
	snprintf(path, sizeof(path), "%s/%.2s", dir, name);
	if (mkdir(path, 0755) && errno != EEXIST)
		return -1;
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	if (fd < 0)
		return -1;
	fill(which, buf, len);
	ok = write(fd, buf, len) == (ssize_t)len;
	return close(fd) || !ok ? -1 : 0;
}

FIXTURE(daemon) {
	char dir[64];
	char log[96];
	int fd;			/* our end: the "kernel" */
	pid_t pid;
};

/* Start snapblkd on a new socketpair, stderr to self->log. */
static int start(FIXTURE_DATA(daemon) *self, const char *extra)
{
	const char *bin = getenv("SNAPBLK_BIN");
	char path[512];
	int sv[2], logfd;

	if (!bin)
		bin = "build/bin";
	snprintf(path, sizeof(path), "%s/snapblkd", bin);
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv))
		return -1;
	self->pid = fork();
	if (self->pid < 0)
		return -1;
	if (!self->pid) {
		logfd = open(self->log, O_WRONLY | O_CREAT | O_APPEND, 0644);
		if (logfd < 0 || dup2(logfd, 2) < 0 || dup2(sv[1], 3) < 0)
			_exit(127);
		execl(path, path, "--store", self->dir, "--device-fd", "3",
		      "--jobs", "4", extra, (char *)NULL);
		_exit(127);
	}
	close(sv[1]);
	self->fd = sv[0];
	return 0;
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

/* One answer: its length, or -1 on timeout or error. */
static ssize_t recv_resp(int fd, struct snapblk_fetch_resp *resp,
			 uint8_t *data)
{
	struct pollfd p = { .fd = fd, .events = POLLIN };
	struct iovec iov[2] = {
		{ .iov_base = resp, .iov_len = sizeof(*resp) },
		{ .iov_base = data, .iov_len = CS + 1 },
	};
	struct msghdr msg = { .msg_iov = iov, .msg_iovlen = 2 };
	ssize_t n;

	if (poll(&p, 1, TIMEOUT_MS) != 1)
		return -1;
	n = recvmsg(fd, &msg, MSG_DONTWAIT);
	return msg.msg_flags & MSG_TRUNC ? -1 : n;
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

FIXTURE_SETUP(daemon)
{
	self->fd = -1;
	self->pid = 0;
	snprintf(self->dir, sizeof(self->dir), "/tmp/snapblkd-test.XXXXXX");
	ASSERT_NE(NULL, mkdtemp(self->dir));
	snprintf(self->log, sizeof(self->log), "%s.log", self->dir);
	ASSERT_EQ(0, put_file(self->dir, CH_A, CS));
	ASSERT_EQ(0, put_file(self->dir, CH_B, CS));
	ASSERT_EQ(0, put_file(self->dir, CH_SHORT, CS / 2));
	ASSERT_EQ(0, start(self, "-v"));
}

FIXTURE_TEARDOWN(daemon)
{
	if (self->pid > 0)
		stop(self, SIGKILL);
	nftw(self->dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
	unlink(self->log);
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
	EXPECT_TRUE(log_has(self, "record length 12, expected 64"));
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

TEST_HARNESS_MAIN
