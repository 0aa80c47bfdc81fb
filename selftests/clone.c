// SPDX-License-Identifier: GPL-2.0
/*
 * The clone-notification hook without a hypervisor, through the netlink
 * test trigger (SNAPBLK_CMD_CLONE_TRIGGER): one clone bumps the
 * generation once and forces an RNG reseed, then every userspace channel
 * hears of it (the mmapped page, read/poll on /dev/snapblk-gen, poll on
 * the sysfs attribute, the KOBJ_CHANGE uevent, the netlink event); the
 * same ID twice is one clone; only CAP_SYS_ADMIN may trigger; unloading
 * with waiters is clean.  The hypervisor sources have their own tests
 * (clone_genpage.sh in this VM, host/clone-qemu.sh for QEMU restores).
 */
#include <poll.h>
#include <time.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <linux/capability.h>
#include <linux/netlink.h>
#include <netlink/genl/genl.h>

#include "kselftest_harness.h"
#include "lib.h"
#include "genl.h"
#include "snapblk_gen.h"

#define SYSFS "/sys/class/misc/snapblk-gen/"

static uint64_t sysfs_u64(const char *attr)
{
	char path[128], buf[64];

	snprintf(path, sizeof(path), SYSFS "%s", attr);
	if (sb_read_file(path, buf, sizeof(buf)))
		return UINT64_MAX;
	return strtoull(buf, NULL, 10);
}

static void sysfs_str(const char *attr, char *buf, size_t len)
{
	char path[128];

	snprintf(path, sizeof(path), SYSFS "%s", attr);
	if (sb_read_file(path, buf, len))
		snprintf(buf, len, "(unreadable)");
}

/* Trigger a clone from a fresh socket; the new generation or -errno. */
static int64_t trigger(const uint8_t *id)
{
	struct sb_nl nl;
	uint64_t gen;
	int ret;

	ret = sb_nl_open(&nl);
	if (ret)
		return ret;
	ret = sb_nl_clone_trigger(&nl, id, &gen);
	sb_nl_close(&nl);
	return ret ? ret : (int64_t)gen;
}

/* A child that triggers a clone after @ms milliseconds. */
static pid_t trigger_later(int ms)
{
	pid_t pid = fork();

	if (pid == 0) {
		usleep(ms * 1000);
		_exit(trigger(NULL) > 0 ? 0 : 1);
	}
	return pid;
}

static int wait_child(pid_t pid)
{
	int status;

	if (waitpid(pid, &status, 0) != pid)
		return -1;
	return WIFEXITED(status) ? WEXITSTATUS(status) : 128;
}

FIXTURE(clone) {
	int unused;
};

FIXTURE_SETUP(clone)
{
	if (sb_module_loaded("snapblk"))
		sb_unload("snapblk");
	ASSERT_EQ(0, sb_load(sb_ko_path(), NULL));
}

FIXTURE_TEARDOWN(clone)
{
	sb_unload("snapblk");
}

TEST_F(clone, trigger_bumps_and_reseeds)
{
	uint8_t id[SNAPBLK_GENERATION_ID_LEN];
	char buf[64];

	EXPECT_EQ(0, sysfs_u64("generation"));
	sysfs_str("source", buf, sizeof(buf));
	EXPECT_STREQ("none", buf);
	sysfs_str("sources", buf, sizeof(buf));
	EXPECT_NE(NULL, strstr(buf, "trigger"));

	memset(id, 0x11, sizeof(id));
	ASSERT_EQ(1, trigger(id));
	EXPECT_EQ(1, sysfs_u64("generation"));
	EXPECT_EQ(1, sysfs_u64("events"));
	/* RNDRESEEDCRNG returned 0: the crng was reseeded. */
	EXPECT_EQ(1, sysfs_u64("reseeds"));
	EXPECT_EQ(0, sysfs_u64("reseed_failures"));
	sysfs_str("source", buf, sizeof(buf));
	EXPECT_STREQ("trigger", buf);
	sysfs_str("reseed", buf, sizeof(buf));
	EXPECT_STREQ("forced", buf);
	sysfs_str("generation_id", buf, sizeof(buf));
	EXPECT_STREQ("11111111-1111-1111-1111-111111111111", buf);

	/* A random ID each time: each is a new clone. */
	ASSERT_EQ(2, trigger(NULL));
	ASSERT_EQ(3, trigger(NULL));
	EXPECT_EQ(3, sysfs_u64("reseeds"));
}

TEST_F(clone, same_id_is_one_clone)
{
	uint8_t a[SNAPBLK_GENERATION_ID_LEN], b[SNAPBLK_GENERATION_ID_LEN];

	memset(a, 0xa1, sizeof(a));
	memset(b, 0xb2, sizeof(b));
	ASSERT_EQ(1, trigger(a));
	/* Two sources reporting one clone: the second report is dropped. */
	ASSERT_EQ(1, trigger(a));
	EXPECT_EQ(1, sysfs_u64("duplicates"));
	EXPECT_EQ(1, sysfs_u64("reseeds"));
	ASSERT_EQ(2, trigger(b));
	ASSERT_EQ(3, trigger(a));
	EXPECT_EQ(4, sysfs_u64("events"));
}

TEST_F(clone, privileges)
{
	struct __user_cap_header_struct h = {
		.version = _LINUX_CAPABILITY_VERSION_3,
	};
	struct __user_cap_data_struct d[2];
	pid_t pid;

	/* Root without CAP_SYS_ADMIN (CAP_NET_ADMIN kept): EPERM. */
	pid = fork();
	ASSERT_GE(pid, 0);
	if (pid == 0) {
		if (syscall(SYS_capget, &h, d))
			_exit(10);
		d[CAP_SYS_ADMIN / 32].effective &= ~(1U << (CAP_SYS_ADMIN % 32));
		if (syscall(SYS_capset, &h, d))
			_exit(11);
		_exit(trigger(NULL) == -EPERM ? 0 : 1);
	}
	EXPECT_EQ(0, wait_child(pid));
	/* Nobody: EPERM. */
	pid = fork();
	ASSERT_GE(pid, 0);
	if (pid == 0) {
		if (setgid(65534) || setuid(65534))
			_exit(10);
		_exit(trigger(NULL) == -EPERM ? 0 : 1);
	}
	EXPECT_EQ(0, wait_child(pid));
	EXPECT_EQ(0, sysfs_u64("generation"));
	/* The generation is public, the ID is not. */
	pid = fork();
	ASSERT_GE(pid, 0);
	if (pid == 0) {
		char buf[64];

		if (setgid(65534) || setuid(65534))
			_exit(10);
		_exit(sb_read_file(SYSFS "generation", buf, sizeof(buf)) == 0 &&
		      sb_read_file(SYSFS "generation_id", buf, sizeof(buf)) ==
		      -EACCES ? 0 : 1);
	}
	EXPECT_EQ(0, wait_child(pid));
}

TEST_F(clone, chardev_read_poll_mmap)
{
	struct snapblk_gen_info gi;
	struct pollfd pfd;
	void *p;
	int fd;

	EXPECT_EQ(-1, open("/dev/snapblk-gen", O_RDWR));
	EXPECT_EQ(EPERM, errno);
	fd = open("/dev/snapblk-gen", O_RDONLY | O_NONBLOCK);
	ASSERT_GE(fd, 0);

	/* Read-only shared mappings only. */
	EXPECT_EQ(MAP_FAILED, mmap(NULL, 4096, PROT_READ, MAP_PRIVATE, fd, 0));
	EXPECT_EQ(MAP_FAILED, mmap(NULL, 4096, PROT_READ | PROT_WRITE,
				   MAP_SHARED, fd, 0));
	EXPECT_EQ(EACCES, errno);
	p = mmap(NULL, 4096, PROT_READ, MAP_SHARED, fd, 0);
	ASSERT_NE(MAP_FAILED, p);
	EXPECT_EQ(-1, mprotect(p, 4096, PROT_READ | PROT_WRITE));

	/* Nothing to read until a clone; a short buffer is refused. */
	EXPECT_EQ(-1, read(fd, &gi, sizeof(gi)));
	EXPECT_EQ(EAGAIN, errno);
	pfd = (struct pollfd){ .fd = fd, .events = POLLIN | POLLPRI };
	EXPECT_EQ(0, poll(&pfd, 1, 0));

	ASSERT_EQ(1, trigger(NULL));
	/* One load of the page sees it. */
	EXPECT_EQ(1, ((volatile struct snapblk_gen_info *)p)->generation);
	EXPECT_EQ(1, poll(&pfd, 1, 0));
	EXPECT_TRUE(pfd.revents & POLLIN);
	EXPECT_EQ(-1, read(fd, &gi, sizeof(gi) - 1));
	EXPECT_EQ(EINVAL, errno);
	ASSERT_EQ((ssize_t)sizeof(gi), read(fd, &gi, sizeof(gi)));
	EXPECT_EQ(1, gi.generation);
	EXPECT_EQ(SNAPBLK_CLONE_SOURCE_TRIGGER, gi.source);
	EXPECT_EQ(SNAPBLK_RESEED_FORCED, gi.reseed);
	EXPECT_EQ(0, gi.seq & 1);
	EXPECT_NE(0, gi.clone_time_ns);
	/* Read once per clone. */
	EXPECT_EQ(-1, read(fd, &gi, sizeof(gi)));
	EXPECT_EQ(EAGAIN, errno);
	munmap(p, 4096);
	close(fd);
}

TEST_F(clone, blocking_read_wakes)
{
	struct snapblk_gen_info gi;
	pid_t pid;
	int fd;

	fd = open("/dev/snapblk-gen", O_RDONLY);
	ASSERT_GE(fd, 0);
	pid = trigger_later(300);
	alarm(10);
	ASSERT_EQ((ssize_t)sizeof(gi), read(fd, &gi, sizeof(gi)));
	alarm(0);
	EXPECT_EQ(1, gi.generation);
	EXPECT_EQ(0, wait_child(pid));
	close(fd);
}

TEST_F(clone, sysfs_poll_wakes)
{
	struct pollfd pfd;
	char buf[32];
	pid_t pid;

	pfd.fd = open(SYSFS "generation", O_RDONLY);
	ASSERT_GE(pfd.fd, 0);
	ASSERT_GT(read(pfd.fd, buf, sizeof(buf)), 0);
	pfd.events = POLLPRI | POLLERR;
	pid = trigger_later(300);
	ASSERT_EQ(1, poll(&pfd, 1, 10000));
	EXPECT_TRUE(pfd.revents & POLLPRI);
	ASSERT_EQ(0, lseek(pfd.fd, 0, SEEK_SET));
	memset(buf, 0, sizeof(buf));
	ASSERT_GT(read(pfd.fd, buf, sizeof(buf) - 1), 0);
	EXPECT_STREQ("1\n", buf);
	EXPECT_EQ(0, wait_child(pid));
	close(pfd.fd);
}

TEST_F(clone, uevent)
{
	struct sockaddr_nl sa = {
		.nl_family = AF_NETLINK,
		.nl_groups = 1,		/* kernel uevents */
	};
	char buf[4096];
	bool found = false;
	struct timeval tv = { .tv_sec = 10 };
	ssize_t n;
	int sk;

	sk = socket(AF_NETLINK, SOCK_DGRAM | SOCK_CLOEXEC,
		    NETLINK_KOBJECT_UEVENT);
	ASSERT_GE(sk, 0);
	ASSERT_EQ(0, bind(sk, (struct sockaddr *)&sa, sizeof(sa)));
	ASSERT_EQ(0, setsockopt(sk, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)));
	ASSERT_EQ(1, trigger(NULL));
	while (!found && (n = recv(sk, buf, sizeof(buf) - 1, 0)) > 0) {
		bool change = false, gen = false, src = false;
		char *p;

		buf[n] = '\0';
		/* NUL-separated: "change@/devices/...", then KEY=VALUE. */
		for (p = buf; p < buf + n; p += strlen(p) + 1) {
			if (!strcmp(p, "change@/devices/virtual/misc/snapblk-gen"))
				change = true;
			if (!strcmp(p, "SNAPBLK_GENERATION=1"))
				gen = true;
			if (!strcmp(p, "SNAPBLK_CLONE_SOURCE=trigger"))
				src = true;
		}
		found = change && gen && src;
	}
	EXPECT_TRUE(found);
	close(sk);
}

struct ev_wait {
	uint64_t generation;
	uint32_t source, reseed;
};

static int on_clone_event(const struct sb_event *ev, void *arg)
{
	struct ev_wait *w = arg;

	if (ev->cmd != SNAPBLK_EVENT_CLONE)
		return 0;
	w->generation = ev->generation;
	w->source = ev->clone_source;
	w->reseed = ev->reseed;
	return 1;
}

TEST_F(clone, netlink_event)
{
	struct ev_wait w = { 0 };
	struct sb_nl nl;
	pid_t pid;

	ASSERT_EQ(0, sb_nl_open(&nl));
	pid = trigger_later(500);
	alarm(10);
	ASSERT_EQ(1, sb_nl_listen(&nl, SNAPBLK_GENL_MCGRP_EVENTS,
				  on_clone_event, NULL, &w));
	alarm(0);
	EXPECT_EQ(1, w.generation);
	EXPECT_EQ(SNAPBLK_CLONE_SOURCE_TRIGGER, w.source);
	EXPECT_EQ(SNAPBLK_RESEED_FORCED, w.reseed);
	EXPECT_EQ(0, wait_child(pid));
	sb_nl_close(&nl);
}

TEST_F(clone, clone_status_command)
{
	struct sb_clone_status st;
	struct sb_nl nl;

	ASSERT_EQ(2, (trigger(NULL), trigger(NULL)));
	ASSERT_EQ(0, sb_nl_open(&nl));
	ASSERT_EQ(0, sb_nl_clone_status(&nl, &st));
	sb_nl_close(&nl);
	EXPECT_EQ(2, st.generation);
	EXPECT_EQ(SNAPBLK_CLONE_SOURCE_TRIGGER, st.last_source);
	EXPECT_TRUE(st.sources & (1U << SNAPBLK_CLONE_SOURCE_TRIGGER));
	EXPECT_EQ(2, st.stats[SNAPBLK_CLONE_STAT_EVENTS]);
	EXPECT_EQ(2, st.stats[SNAPBLK_CLONE_STAT_RESEEDS]);
}

/* include/snapblk_gen.h, as an application would use it. */
TEST_F(clone, header_helper)
{
	struct snapblk_gen_info gi;
	struct snapblk_gen g = { 0 };
	uint64_t seen;

	ASSERT_EQ(0, snapblk_gen_open(&g));
	seen = snapblk_gen_current(&g);
	EXPECT_EQ(0, seen);
	EXPECT_FALSE(snapblk_gen_changed(&g, &seen));
	ASSERT_EQ(1, trigger(NULL));
	EXPECT_TRUE(snapblk_gen_changed(&g, &seen));
	EXPECT_EQ(1, seen);
	EXPECT_FALSE(snapblk_gen_changed(&g, &seen));
	snapblk_gen_read(&g, &gi);
	EXPECT_EQ(SNAPBLK_CLONE_SOURCE_TRIGGER, gi.source);
	/* The mapping holds the module; unmapped, it can go. */
	EXPECT_EQ(-EAGAIN, sb_unload("snapblk"));
	snapblk_gen_close(&g);
	EXPECT_EQ(0, sb_unload("snapblk"));
}

/*
 * Unloading with waiters: a reader blocked in read() (what wait-clone
 * does) holds the module, so rmmod is refused until it goes; a poller of
 * the sysfs attribute does not, and is woken when the module goes
 * instead of sleeping on a removed file.
 */
TEST_F(clone, unload_with_waiters)
{
	struct snapblk_gen_info gi;
	pid_t reader, poller;
	int fd, status;
	time_t t0;

	reader = fork();
	ASSERT_GE(reader, 0);
	if (reader == 0) {
		fd = open("/dev/snapblk-gen", O_RDONLY);
		_exit(read(fd, &gi, sizeof(gi)) < 0 ? 1 : 0);
	}
	poller = fork();
	ASSERT_GE(poller, 0);
	if (poller == 0) {
		struct pollfd pfd = { .events = POLLPRI | POLLERR };
		char buf[32];

		pfd.fd = open(SYSFS "generation", O_RDONLY);
		if (pfd.fd < 0 || read(pfd.fd, buf, sizeof(buf)) <= 0)
			_exit(10);
		if (poll(&pfd, 1, 60000) != 1)
			_exit(11);	/* slept through the unload */
		lseek(pfd.fd, 0, SEEK_SET);
		_exit(read(pfd.fd, buf, sizeof(buf)) < 0 &&
		      errno == ENODEV ? 0 : 12);
	}
	usleep(500 * 1000);
	/* The blocked reader holds the module. */
	EXPECT_EQ(-EAGAIN, sb_unload("snapblk"));
	kill(reader, SIGKILL);
	ASSERT_EQ(reader, waitpid(reader, &status, 0));
	EXPECT_TRUE(WIFSIGNALED(status));
	t0 = time(NULL);
	EXPECT_EQ(0, sb_unload("snapblk"));
	EXPECT_EQ(0, wait_child(poller));
	EXPECT_LT(time(NULL) - t0, 10);
}

TEST_HARNESS_MAIN
