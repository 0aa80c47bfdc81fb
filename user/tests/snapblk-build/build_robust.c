// SPDX-License-Identifier: GPL-2.0
/*
 * The library parts of the builder's robustness: the signal handler that
 * removes registered temporary files and re-raises, the stale temporary
 * file rules, tenant key parsing (hex, white space, --raw-key), mkdir -p
 * and JSON strings for names that are not UTF-8.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "kselftest_harness.h"

#include "file.h"
#include "json.h"
#include "util.h"

/* A private directory, made current for the test; removed with rm -rf. */
FIXTURE(dir) {
	char path[64];
	char old[4096];
};

FIXTURE_SETUP(dir)
{
	snprintf(self->path, sizeof(self->path), "/tmp/build_robust.XXXXXX");
	ASSERT_NE(NULL, mkdtemp(self->path));
	ASSERT_NE(NULL, getcwd(self->old, sizeof(self->old)));
	ASSERT_EQ(0, chdir(self->path));
}

FIXTURE_TEARDOWN(dir)
{
	char cmd[128];

	if (chdir(self->old))
		return;
	snprintf(cmd, sizeof(cmd), "rm -rf %s", self->path);
	if (system(cmd))
		return;
}

static void touch(const char *name)
{
	int fd = open(name, O_WRONLY | O_CREAT | O_TRUNC, 0644);

	if (fd >= 0)
		close(fd);
}

/*
 * In a child: register two files (one relative to a directory fd), make
 * a third that is not registered, then raise sig.  The child must die of
 * sig (not exit), with the registered files gone and the other kept.
 */
static void signal_removes(struct __test_metadata *_metadata, int sig)
{
	int status, dfd, a, b;
	pid_t pid;

	ASSERT_EQ(0, mkdir("sub", 0755));
	pid = fork();
	ASSERT_LE(0, pid);
	if (!pid) {
		if (sb_tmp_install_signals(NULL))
			_exit(10);
		a = sb_tmp_begin(AT_FDCWD, "x.tmp-1");
		touch("x.tmp-1");
		sb_tmp_created(a);
		dfd = open("sub", O_RDONLY | O_DIRECTORY);
		b = sb_tmp_begin(dfd, ".tmp-y");
		touch("sub/.tmp-y");
		sb_tmp_created(b);
		touch("kept");
		if (a < 0 || b < 0)
			_exit(11);
		raise(sig);
		_exit(12);	/* not reached */
	}
	ASSERT_EQ(pid, waitpid(pid, &status, 0));
	ASSERT_TRUE(WIFSIGNALED(status));
	EXPECT_EQ(sig, WTERMSIG(status));
	EXPECT_NE(0, access("x.tmp-1", F_OK));
	EXPECT_NE(0, access("sub/.tmp-y", F_OK));
	EXPECT_EQ(0, access("kept", F_OK));
}

TEST_F(dir, sigterm_removes_registered_files_and_reraises)
{
	signal_removes(_metadata, SIGTERM);
}

TEST_F(dir, sigint_removes_registered_files_and_reraises)
{
	signal_removes(_metadata, SIGINT);
}

/* A file forgotten (renamed into place) is no longer removed. */
TEST_F(dir, forgotten_file_survives_the_signal)
{
	int status, id;
	pid_t pid;

	pid = fork();
	ASSERT_LE(0, pid);
	if (!pid) {
		sb_tmp_install_signals(NULL);
		id = sb_tmp_begin(AT_FDCWD, "done");
		touch("done");
		sb_tmp_created(id);
		sb_tmp_forget(id);
		raise(SIGTERM);
		_exit(12);
	}
	ASSERT_EQ(pid, waitpid(pid, &status, 0));
	ASSERT_TRUE(WIFSIGNALED(status));
	EXPECT_EQ(0, access("done", F_OK));
}

/* A pid that has just exited (and was reaped): not running; or -1. */
static pid_t dead_pid(void)
{
	int status;
	pid_t pid;

	pid = fork();
	if (!pid)
		_exit(0);
	if (pid < 0 || waitpid(pid, &status, 0) != pid)
		return -1;
	return pid;
}

/* sb_write_file_atomic()'s temporary name carries the pid it parses. */
TEST(tmp_name_pid)
{
	char name[200];

	EXPECT_EQ(1234, sb_tmp_name_pid("img.m.tmp-1234"));
	EXPECT_EQ(77, sb_tmp_name_pid("a.tmp-9.m.tmp-77"));
	snprintf(name, sizeof(name), ".tmp-%064d-4321-17", 0);
	EXPECT_EQ(4321, sb_tmp_name_pid(name));
	EXPECT_EQ(0, sb_tmp_name_pid("img.m"));
	EXPECT_EQ(0, sb_tmp_name_pid("x.tmp-"));
	EXPECT_EQ(0, sb_tmp_name_pid("x.tmp-12ab"));
	EXPECT_EQ(0, sb_tmp_name_pid("x.tmp-0"));
}

TEST(tmp_stale_rules)
{
	char live[64], dead[64];
	pid_t pid = dead_pid();

	ASSERT_LT(0, pid);
	snprintf(dead, sizeof(dead), "m.tmp-%d", (int)pid);
	snprintf(live, sizeof(live), "m.tmp-%d", (int)getppid());
	EXPECT_EQ(1, sb_tmp_is_stale(dead, 1000, 1000));
	EXPECT_EQ(0, sb_tmp_is_stale(live, 1000, 1000));
	/* Over an hour old: stale even with a running pid (reused). */
	EXPECT_EQ(1, sb_tmp_is_stale(live, 1000, 1000 + SB_TMP_STALE_SECS + 1));
	EXPECT_EQ(0, sb_tmp_is_stale("m", 0, 1000000));
}

TEST(key_hex_and_white_space)
{
	static const char hex[] =
		"000102030405060708090a0b0c0d0e0f"
		"101112131415161718191A1B1C1D1E1F";
	uint8_t key[32], raw[32];
	char buf[80];
	int i;

	for (i = 0; i < 32; i++)
		raw[i] = i;
	EXPECT_EQ(0, sb_parse_tenant_key((const uint8_t *)hex, 64, 0, key));
	EXPECT_EQ(0, memcmp(key, raw, 32));
	snprintf(buf, sizeof(buf), "%s\r\n", hex);
	EXPECT_EQ(0, sb_parse_tenant_key((uint8_t *)buf, strlen(buf), 0, key));
	EXPECT_EQ(0, memcmp(key, raw, 32));
	snprintf(buf, sizeof(buf), "%s \t\n\n", hex);
	EXPECT_EQ(0, sb_parse_tenant_key((uint8_t *)buf, strlen(buf), 0, key));
	/* Leading white space, short, long, a non-hex digit: refused. */
	snprintf(buf, sizeof(buf), " %s", hex);
	EXPECT_EQ(-EINVAL, sb_parse_tenant_key((uint8_t *)buf, strlen(buf), 0,
					       key));
	EXPECT_EQ(-EINVAL, sb_parse_tenant_key((const uint8_t *)hex, 63, 0,
					       key));
	snprintf(buf, sizeof(buf), "%s0", hex);
	EXPECT_EQ(-EINVAL, sb_parse_tenant_key((uint8_t *)buf, 65, 0, key));
	snprintf(buf, sizeof(buf), "%s", hex);
	buf[10] = 'g';
	EXPECT_EQ(-EINVAL, sb_parse_tenant_key((uint8_t *)buf, 64, 0, key));
}

TEST(key_raw_only_with_the_flag)
{
	uint8_t raw[32], key[32];
	int i;

	for (i = 0; i < 32; i++)
		raw[i] = 0xc0 + i;
	EXPECT_EQ(-EBADMSG, sb_parse_tenant_key(raw, 32, 0, key));
	EXPECT_EQ(0, sb_parse_tenant_key(raw, 32, SB_KEY_RAW, key));
	EXPECT_EQ(0, memcmp(raw, key, 32));
	EXPECT_EQ(-EINVAL, sb_parse_tenant_key(raw, 31, SB_KEY_RAW, key));
}

TEST_F(dir, key_file_mode_is_reported)
{
	uint8_t key[32];
	char text[66];
	bool loose;

	memset(key, 7, sizeof(key));
	sb_format_tenant_key(key, text);
	ASSERT_EQ(0, sb_write_file_atomic("k", text, 65, 0600, false));
	ASSERT_EQ(0, sb_read_tenant_key("k", key, &loose));
	EXPECT_FALSE(loose);
	ASSERT_EQ(0, chmod("k", 0640));
	ASSERT_EQ(0, sb_read_tenant_key("k", key, &loose));
	EXPECT_TRUE(loose);
}

TEST_F(dir, mkdir_p)
{
	struct stat st;

	umask(022);
	EXPECT_EQ(0, sb_mkdir_p("a/b//c/", 0755));
	ASSERT_EQ(0, stat("a/b/c", &st));
	EXPECT_TRUE(S_ISDIR(st.st_mode));
	EXPECT_EQ(0755, st.st_mode & 0777);
	EXPECT_EQ(0, sb_mkdir_p("a/b/c", 0755));	/* exists: fine */
	touch("f");
	EXPECT_EQ(-ENOTDIR, sb_mkdir_p("f/x", 0755));
	EXPECT_EQ(-ENOTDIR, sb_mkdir_p("f", 0755));
}

TEST_F(dir, sweep_removes_only_stale)
{
	char dead[64], live[64];
	pid_t pid = dead_pid();
	uint64_t n = 0;

	ASSERT_LT(0, pid);
	snprintf(dead, sizeof(dead), "m.tmp-%d", (int)pid);
	snprintf(live, sizeof(live), "m.tmp-%d", (int)getpid());
	touch(dead);
	touch(live);
	touch("other.tmp-1");	/* another prefix */
	EXPECT_EQ(0, sb_sweep_tmp(AT_FDCWD, "m.", false, &n));
	EXPECT_EQ(1, n);
	EXPECT_EQ(0, access(dead, F_OK));	/* counted, not removed */
	EXPECT_EQ(0, sb_sweep_tmp(AT_FDCWD, "m.", true, &n));
	EXPECT_EQ(2, n);
	EXPECT_NE(0, access(dead, F_OK));
	EXPECT_EQ(0, access(live, F_OK));
}

/* What sb_json_fprint_string() writes for s. */
static char *json(const char *s)
{
	static char out[256];
	FILE *f = fmemopen(out, sizeof(out), "w");

	if (!f)
		return NULL;
	sb_json_fprint_string(f, s);
	fclose(f);
	return out;
}

TEST(json_strings)
{
	EXPECT_STREQ("\"plain\"", json("plain"));
	EXPECT_STREQ("\"a\\\"b\\\\c\"", json("a\"b\\c"));
	EXPECT_STREQ("\"\\u000a\\u0009\\u000d\\u0001\\u001f\\u007f\"",
		     json("\n\t\r\x01\x1f\x7f"));
	/* Valid UTF-8 (2, 3 and 4 bytes) stays as it is. */
	EXPECT_STREQ("\"caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80\"",
		     json("caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80"));
	/* Latin-1, a cut sequence, overlong, surrogate, past U+10FFFF. */
	EXPECT_STREQ("\"caf\\u00e9\"", json("caf\xe9"));
	EXPECT_STREQ("\"\\u00e2\\u0082x\"", json("\xe2\x82x"));
	EXPECT_STREQ("\"\\u00c0\\u00af\"", json("\xc0\xaf"));
	EXPECT_STREQ("\"\\u00ed\\u00a0\\u0080\"", json("\xed\xa0\x80"));
	EXPECT_STREQ("\"\\u00f4\\u0090\\u0080\\u0080\"",
		     json("\xf4\x90\x80\x80"));
	EXPECT_STREQ("\"\\u00ff\"", json("\xff"));
}

TEST_HARNESS_MAIN
