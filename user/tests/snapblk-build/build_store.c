// SPDX-License-Identifier: GPL-2.0
/*
 * The directory chunk store: layout, atomic and batched-durable puts,
 * reads of missing and wrong-sized chunks, and the file helpers.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "kselftest_harness.h"

#include "file.h"
#include "store.h"

#define CS 65536

static int rm_one(const char *p, const struct stat *s, int t, struct FTW *f)
{
	(void)s;
	(void)f;
	return t == FTW_DP ? rmdir(p) : unlink(p);
}

/* Files under dir whose name starts with prefix, at any depth. */
static int count_files(const char *dir, const char *prefix)
{
	char path[512];
	struct dirent *d;
	struct stat st;
	int n = 0;
	DIR *dh;

	dh = opendir(dir);
	if (!dh)
		return 0;
	while ((d = readdir(dh))) {
		if (!strcmp(d->d_name, ".") || !strcmp(d->d_name, ".."))
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, d->d_name);
		if (lstat(path, &st))
			continue;
		if (S_ISDIR(st.st_mode))
			n += count_files(path, prefix);
		else if (!strncmp(d->d_name, prefix, strlen(prefix)))
			n++;
	}
	closedir(dh);
	return n;
}

FIXTURE(store) {
	char dir[64];
	struct sb_store *st;
	uint8_t addr[32];
	uint8_t data[CS];
};

FIXTURE_SETUP(store)
{
	int i;

	snprintf(self->dir, sizeof(self->dir), "/tmp/sb-store-test.XXXXXX");
	ASSERT_NE(NULL, mkdtemp(self->dir));
	ASSERT_EQ(0, sb_store_open(self->dir, CS, true, &self->st));
	for (i = 0; i < 32; i++)
		self->addr[i] = 0xa0 + i;
	memset(self->data, 0x5a, sizeof(self->data));
}

FIXTURE_TEARDOWN(store)
{
	if (self->st)
		sb_store_close(self->st);
	nftw(self->dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

TEST_F(store, layout)
{
	char name[SB_STORE_NAME_LEN], path[256];
	struct stat st;

	sb_store_name(self->addr, name);
	EXPECT_STREQ("a0/a0a1a2a3a4a5a6a7a8a9aaabacadaeaf"
		     "b0b1b2b3b4b5b6b7b8b9babbbcbdbebf", name);
	ASSERT_EQ(0, sb_store_put(self->st, self->addr, self->data, CS));
	ASSERT_EQ(0, sb_store_sync(self->st));
	snprintf(path, sizeof(path), "%s/%s", self->dir, name);
	ASSERT_EQ(0, stat(path, &st));
	EXPECT_EQ(CS, st.st_size);
}

TEST_F(store, visible_only_when_durable)
{
	uint8_t back[CS];
	uint64_t size;

	EXPECT_EQ(0, sb_store_has(self->st, self->addr));
	ASSERT_EQ(0, sb_store_put(self->st, self->addr, self->data, CS));
	/* Written to a temporary file; not under its address yet. */
	EXPECT_EQ(0, sb_store_has(self->st, self->addr));
	EXPECT_EQ(1, count_files(self->dir, ".tmp-"));
	ASSERT_EQ(0, sb_store_sync(self->st));
	EXPECT_EQ(1, sb_store_has(self->st, self->addr));
	EXPECT_EQ(0, count_files(self->dir, ".tmp-"));
	ASSERT_EQ(0, sb_store_read(self->st, self->addr, back, CS, &size));
	EXPECT_EQ(0, memcmp(back, self->data, CS));
}

TEST_F(store, abandoned_batch_leaves_nothing)
{
	ASSERT_EQ(0, sb_store_put(self->st, self->addr, self->data, CS));
	sb_store_close(self->st);
	self->st = NULL;
	EXPECT_EQ(0, count_files(self->dir, ""));
}

TEST_F(store, batches_commit_on_their_own)
{
	uint64_t i, n = SB_STORE_BATCH / CS;

	for (i = 0; i < n; i++) {
		memcpy(self->addr, &i, sizeof(i));
		ASSERT_EQ(0, sb_store_put(self->st, self->addr, self->data,
					  CS));
	}
	/* The batch filled up: renamed without an explicit sync. */
	EXPECT_EQ(1, sb_store_has(self->st, self->addr));
	EXPECT_EQ(0, count_files(self->dir, ".tmp-"));
	EXPECT_EQ((int)n, count_files(self->dir, ""));
}

TEST_F(store, wrong_size_is_absent_and_replaced)
{
	char name[SB_STORE_NAME_LEN], path[256];
	uint8_t back[CS];
	uint64_t size = 0;
	int fd;

	sb_store_name(self->addr, name);
	snprintf(path, sizeof(path), "%s/%.2s", self->dir, name);
	ASSERT_EQ(0, mkdir(path, 0755));
	snprintf(path, sizeof(path), "%s/%s", self->dir, name);
	fd = open(path, O_WRONLY | O_CREAT, 0644);
	ASSERT_LE(0, fd);
	ASSERT_EQ(100, write(fd, self->data, 100));
	close(fd);
	EXPECT_EQ(0, sb_store_has(self->st, self->addr));
	EXPECT_EQ(-EMSGSIZE, sb_store_read(self->st, self->addr, back, CS,
					   &size));
	EXPECT_EQ(100, size);
	ASSERT_EQ(0, sb_store_put(self->st, self->addr, self->data, CS));
	ASSERT_EQ(0, sb_store_sync(self->st));
	EXPECT_EQ(1, sb_store_has(self->st, self->addr));
}

TEST_F(store, missing_chunk)
{
	uint8_t back[CS];
	uint64_t size;

	EXPECT_EQ(-ENOENT, sb_store_read(self->st, self->addr, back, CS,
					 &size));
}

TEST(missing_store)
{
	struct sb_store *st;

	EXPECT_EQ(-ENOENT, sb_store_open("/nonexistent/store", CS, true, &st));
	EXPECT_EQ(-ENOTDIR, sb_store_open("/etc/hostname", CS, false, &st));
}

TEST(tenant_key_files)
{
	char path[] = "/tmp/sb-key-test.XXXXXX";
	uint8_t key[32], back[32];
	char text[66];
	bool loose;
	struct stat st;
	int fd, i;

	for (i = 0; i < 32; i++)
		key[i] = i * 7;
	fd = mkstemp(path);
	ASSERT_LE(0, fd);
	close(fd);
	unlink(path);
	sb_format_tenant_key(key, text);
	EXPECT_EQ(65, strlen(text));
	ASSERT_EQ(0, sb_write_file_atomic(path, text, 65, 0600, true));
	EXPECT_EQ(-EEXIST, sb_write_file_atomic(path, text, 65, 0600, true));
	ASSERT_EQ(0, stat(path, &st));
	EXPECT_EQ(0600, st.st_mode & 0777);
	ASSERT_EQ(0, sb_read_tenant_key(path, back, &loose));
	EXPECT_FALSE(loose);
	EXPECT_EQ(0, memcmp(key, back, 32));
	/* Raw 32 bytes only with SB_KEY_RAW (--raw-key); nothing else. */
	ASSERT_EQ(0, sb_write_file_atomic(path, key, 32, 0644, false));
	EXPECT_EQ(-EBADMSG, sb_read_tenant_key(path, back, &loose));
	ASSERT_EQ(0, sb_read_tenant_key_opt(path, SB_KEY_RAW, back, &loose));
	EXPECT_TRUE(loose);
	EXPECT_EQ(0, memcmp(key, back, 32));
	ASSERT_EQ(0, sb_write_file_atomic(path, text, 40, 0600, false));
	EXPECT_EQ(-EINVAL, sb_read_tenant_key(path, back, &loose));
	text[3] = 'x';
	ASSERT_EQ(0, sb_write_file_atomic(path, text, 65, 0600, false));
	EXPECT_EQ(-EINVAL, sb_read_tenant_key(path, back, &loose));
	unlink(path);
	EXPECT_EQ(-ENOENT, sb_read_tenant_key(path, back, &loose));
}

TEST_HARNESS_MAIN
