// SPDX-License-Identifier: GPL-2.0
/*
 * AWS credentials: the environment wins over the shared file unless a
 * profile is named explicitly; profiles are selected by argument,
 * AWS_PROFILE or "default"; the file's whitespace and comments are
 * accepted; malformed lines, missing files and profiles, unreadable files
 * and half-given keys fail with the documented errno and a message naming
 * the place; reload replaces the keys only when the new ones are good.
 *
 * Each TEST runs in its own child process (kselftest harness), so the
 * environment changes here do not leak between tests.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "kselftest_harness.h"
#include "awscred.h"

static void clear_aws_env(void)
{
	static const char *const vars[] = {
		"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY",
		"AWS_SESSION_TOKEN", "AWS_SHARED_CREDENTIALS_FILE",
		"AWS_PROFILE", "AWS_REGION", "AWS_DEFAULT_REGION",
	};
	size_t i;

	for (i = 0; i < sizeof(vars) / sizeof(*vars); i++)
		unsetenv(vars[i]);
}

static int write_file(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");

	if (!f)
		return -errno;
	fputs(text, f);
	return fclose(f) ? -errno : 0;
}

FIXTURE(cred)
{
	char dir[64];		/* private temp directory */
	char path[128];		/* dir/credentials, in AWS_SHARED_CREDENTIALS_FILE */
	char msg[256];		/* message buffer passed to the library */
	struct sb_aws_cred c;	/* loaded credentials, freed in teardown */
};

FIXTURE_SETUP(cred)
{
	clear_aws_env();
	snprintf(self->dir, sizeof(self->dir), "/tmp/sb-awscred-XXXXXX");
	ASSERT_NE(NULL, mkdtemp(self->dir));
	snprintf(self->path, sizeof(self->path), "%s/credentials", self->dir);
	ASSERT_EQ(0, setenv("AWS_SHARED_CREDENTIALS_FILE", self->path, 1));
	/* a HOME without credentials, so the real one is never read */
	ASSERT_EQ(0, setenv("HOME", self->dir, 1));
	memset(&self->c, 0, sizeof(self->c));
	self->msg[0] = 'x';
}

FIXTURE_TEARDOWN(cred)
{
	char p[160];

	sb_aws_cred_free(&self->c);
	unlink(self->path);
	snprintf(p, sizeof(p), "%s/.aws/credentials", self->dir);
	unlink(p);
	snprintf(p, sizeof(p), "%s/.aws", self->dir);
	rmdir(p);
	rmdir(self->dir);
}

static const char two_profiles[] =
	"# shared credentials\n"
	"[default]\n"
	"aws_access_key_id = AKIDDEFAULT\n"
	"aws_secret_access_key = secretdefault\n"
	"\n"
	"; another profile\n"
	"[ceph]\n"
	"aws_access_key_id=AKIDCEPH\n"
	"aws_secret_access_key=secret/ceph+key\n"
	"region = default\n";

TEST_F(cred, env_wins_over_file_and_carries_session_token)
{
	ASSERT_EQ(0, write_file(self->path, two_profiles));
	setenv("AWS_ACCESS_KEY_ID", "AKIDENV", 1);
	setenv("AWS_SECRET_ACCESS_KEY", "secretenv", 1);
	setenv("AWS_SESSION_TOKEN", "tokenenv", 1);
	setenv("AWS_PROFILE", "ceph", 1);	/* does not beat the env */

	ASSERT_EQ(0, sb_aws_cred_load(&self->c, NULL, self->msg,
				      sizeof(self->msg)));
	EXPECT_STREQ("", self->msg);
	EXPECT_EQ(SB_AWS_CRED_ENV, self->c.source);
	EXPECT_STREQ("AKIDENV", self->c.access_key_id);
	EXPECT_STREQ("secretenv", self->c.secret_access_key);
	EXPECT_STREQ("tokenenv", self->c.session_token);
	EXPECT_EQ(NULL, self->c.file);
}

TEST_F(cred, explicit_profile_skips_env)
{
	ASSERT_EQ(0, write_file(self->path, two_profiles));
	setenv("AWS_ACCESS_KEY_ID", "AKIDENV", 1);
	setenv("AWS_SECRET_ACCESS_KEY", "secretenv", 1);

	ASSERT_EQ(0, sb_aws_cred_load(&self->c, "ceph", self->msg,
				      sizeof(self->msg)));
	EXPECT_EQ(SB_AWS_CRED_FILE, self->c.source);
	EXPECT_STREQ("AKIDCEPH", self->c.access_key_id);
	EXPECT_STREQ("secret/ceph+key", self->c.secret_access_key);
	EXPECT_EQ(NULL, self->c.session_token);
	EXPECT_STREQ("ceph", self->c.profile);
	EXPECT_STREQ(self->path, self->c.file);
}

TEST_F(cred, profile_from_aws_profile_then_default)
{
	ASSERT_EQ(0, write_file(self->path, two_profiles));

	ASSERT_EQ(0, sb_aws_cred_load(&self->c, NULL, NULL, 0));
	EXPECT_STREQ("default", self->c.profile);
	EXPECT_STREQ("AKIDDEFAULT", self->c.access_key_id);
	EXPECT_STREQ("secretdefault", self->c.secret_access_key);
	sb_aws_cred_free(&self->c);

	setenv("AWS_PROFILE", "ceph", 1);
	ASSERT_EQ(0, sb_aws_cred_load(&self->c, NULL, NULL, 0));
	EXPECT_STREQ("ceph", self->c.profile);
	EXPECT_STREQ("AKIDCEPH", self->c.access_key_id);
	sb_aws_cred_free(&self->c);

	/* the argument beats AWS_PROFILE */
	ASSERT_EQ(0, sb_aws_cred_load(&self->c, "default", NULL, 0));
	EXPECT_STREQ("AKIDDEFAULT", self->c.access_key_id);
}

TEST_F(cred, file_syntax_whitespace_comments_crlf_case_and_session_token)
{
	ASSERT_EQ(0, write_file(self->path,
		"\t; leading comment\r\n"
		"[other]\r\n"
		"aws_access_key_id = WRONG\r\n"
		"aws_secret_access_key = WRONG\r\n"
		"[ sts ]  \r\n"
		"AWS_ACCESS_KEY_ID\t=\tAKIDSTS   \r\n"
		"# aws_secret_access_key = commented-out\r\n"
		"aws_secret_access_key: secret#not-a-comment\r\n"
		"aws_session_token =  FwoGZXIvYXdzE//token==  \r\n"
		"s3 =\r\n"
		"    max_concurrent_requests = 10\r\n"
		"output = json\r\n"));

	ASSERT_EQ(0, sb_aws_cred_load(&self->c, "sts", self->msg,
				      sizeof(self->msg)));
	EXPECT_STREQ("AKIDSTS", self->c.access_key_id);
	EXPECT_STREQ("secret#not-a-comment", self->c.secret_access_key);
	EXPECT_STREQ("FwoGZXIvYXdzE//token==", self->c.session_token);
}

TEST_F(cred, default_file_is_home_aws_credentials)
{
	char p[160];

	unsetenv("AWS_SHARED_CREDENTIALS_FILE");
	snprintf(p, sizeof(p), "%s/.aws", self->dir);
	ASSERT_EQ(0, mkdir(p, 0700));
	snprintf(p, sizeof(p), "%s/.aws/credentials", self->dir);
	ASSERT_EQ(0, write_file(p, two_profiles));

	ASSERT_EQ(0, sb_aws_cred_load(&self->c, NULL, NULL, 0));
	EXPECT_STREQ("AKIDDEFAULT", self->c.access_key_id);
	EXPECT_STREQ(p, self->c.file);
}

/* Load a file of one profile [p] with text, expecting err and "path:line". */
static void expect_malformed(struct __test_metadata *_metadata,
			     FIXTURE_DATA(cred) *self, const char *text,
			     int err, unsigned int line)
{
	char where[160];

	sb_aws_cred_free(&self->c);
	ASSERT_EQ(0, write_file(self->path, text));
	EXPECT_EQ(err, sb_aws_cred_load(&self->c, "p", self->msg,
					sizeof(self->msg))) {
		TH_LOG("file:\n%s", text);
	}
	EXPECT_EQ(NULL, self->c.access_key_id);
	snprintf(where, sizeof(where), "%s:%u:", self->path, line);
	EXPECT_EQ(0, strncmp(self->msg, where, strlen(where))) {
		TH_LOG("message \"%s\" does not start with \"%s\"",
		       self->msg, where);
	}
}

TEST_F(cred, malformed_lines_name_the_line)
{
	expect_malformed(_metadata, self,
			 "[p]\naws_access_key_id = A\njust some words\n",
			 -EINVAL, 3);
	expect_malformed(_metadata, self,
			 "aws_access_key_id = A\n[p]\n", -EINVAL, 1);
	expect_malformed(_metadata, self, "[p\naws_access_key_id = A\n",
			 -EINVAL, 1);
	expect_malformed(_metadata, self, "[p]\n[ ]\n", -EINVAL, 2);
	expect_malformed(_metadata, self, "[p]\n = value\n", -EINVAL, 2);
	/* an error in another profile still makes the file malformed */
	expect_malformed(_metadata, self,
			 "[p]\naws_access_key_id = A\naws_secret_access_key = S\n"
			 "[q]\nbroken\n", -EINVAL, 5);
	/* a key given twice, a value with a space, a continued secret */
	expect_malformed(_metadata, self,
			 "[p]\naws_access_key_id = A\naws_access_key_id = B\n",
			 -EINVAL, 3);
	expect_malformed(_metadata, self,
			 "[p]\naws_access_key_id = A B\n", -EINVAL, 2);
	expect_malformed(_metadata, self,
			 "[p]\naws_access_key_id = A\naws_secret_access_key = S\n"
			 "  more\n", -EINVAL, 4);
	/* one key of the pair without the other */
	expect_malformed(_metadata, self,
			 "[p]\n\naws_secret_access_key = S\n", -EINVAL, 3);
}

TEST_F(cred, missing_file_profile_or_keys_is_enoent)
{
	ASSERT_EQ(-ENOENT, sb_aws_cred_load(&self->c, NULL, self->msg,
					    sizeof(self->msg)));
	EXPECT_NE(NULL, strstr(self->msg, self->path)) {
		TH_LOG("message: %s", self->msg);
	}
	EXPECT_EQ(NULL, self->c.access_key_id);

	ASSERT_EQ(0, write_file(self->path, two_profiles));
	ASSERT_EQ(-ENOENT, sb_aws_cred_load(&self->c, "nope", self->msg,
					    sizeof(self->msg)));
	EXPECT_NE(NULL, strstr(self->msg, "[nope]"));

	ASSERT_EQ(0, write_file(self->path, "[sso]\nsso_start_url = x\n"));
	ASSERT_EQ(-ENOENT, sb_aws_cred_load(&self->c, "sso", self->msg,
					    sizeof(self->msg)));

	/* the environment alone, without the secret, is not credentials */
	setenv("AWS_ACCESS_KEY_ID", "AKIDENV", 1);
	ASSERT_EQ(-EINVAL, sb_aws_cred_load(&self->c, NULL, self->msg,
					    sizeof(self->msg)));
	EXPECT_NE(NULL, strstr(self->msg, "AWS_SECRET_ACCESS_KEY"));
}

/* Run as nobody in a child, so that root's DAC override does not apply. */
TEST_F(cred, unreadable_file_is_eacces)
{
	pid_t pid;
	int status;

	ASSERT_EQ(0, write_file(self->path, two_profiles));
	ASSERT_EQ(0, chmod(self->path, 0));
	ASSERT_EQ(0, chmod(self->dir, 0755));
	pid = fork();
	ASSERT_LE(0, pid);
	if (!pid) {
		struct sb_aws_cred c;
		char msg[256];
		int ret;

		if (!geteuid() && (setgid(65534) || setuid(65534)))
			_exit(100);
		ret = sb_aws_cred_load(&c, NULL, msg, sizeof(msg));
		_exit(ret == -EACCES && strstr(msg, self->path) ? 0 :
		      ret < 0 ? -ret : 101);
	}
	ASSERT_EQ(pid, waitpid(pid, &status, 0));
	ASSERT_TRUE(WIFEXITED(status));
	EXPECT_EQ(0, WEXITSTATUS(status)) {
		TH_LOG("child: %d (an errno, 100: setuid, 101: success)",
		       WEXITSTATUS(status));
	}
}

TEST_F(cred, bad_env_values_are_refused)
{
	setenv("AWS_ACCESS_KEY_ID", "AKID", 1);
	setenv("AWS_SECRET_ACCESS_KEY", "secret", 1);
	setenv("AWS_SESSION_TOKEN", "tok\r\nx-evil: 1", 1);
	EXPECT_EQ(-EINVAL, sb_aws_cred_load(&self->c, NULL, self->msg,
					    sizeof(self->msg)));
	EXPECT_NE(NULL, strstr(self->msg, "AWS_SESSION_TOKEN"));
	EXPECT_EQ(NULL, self->c.access_key_id);

	/* empty means unset, as for the AWS CLI */
	setenv("AWS_SESSION_TOKEN", "", 1);
	ASSERT_EQ(0, sb_aws_cred_load(&self->c, NULL, NULL, 0));
	EXPECT_EQ(NULL, self->c.session_token);
}

TEST_F(cred, region_from_env_else_us_east_1)
{
	setenv("AWS_ACCESS_KEY_ID", "AKID", 1);
	setenv("AWS_SECRET_ACCESS_KEY", "secret", 1);

	ASSERT_EQ(0, sb_aws_cred_load(&self->c, NULL, NULL, 0));
	EXPECT_STREQ("us-east-1", self->c.region);
	sb_aws_cred_free(&self->c);

	setenv("AWS_DEFAULT_REGION", "eu-west-1", 1);
	ASSERT_EQ(0, sb_aws_cred_load(&self->c, NULL, NULL, 0));
	EXPECT_STREQ("eu-west-1", self->c.region);
	sb_aws_cred_free(&self->c);

	setenv("AWS_REGION", "zg1", 1);
	ASSERT_EQ(0, sb_aws_cred_load(&self->c, NULL, NULL, 0));
	EXPECT_STREQ("zg1", self->c.region);
	sb_aws_cred_free(&self->c);

	setenv("AWS_REGION", "a/b", 1);
	EXPECT_EQ(-EINVAL, sb_aws_cred_load(&self->c, NULL, self->msg,
					    sizeof(self->msg)));
	EXPECT_NE(NULL, strstr(self->msg, "AWS_REGION"));
}

TEST_F(cred, reload_replaces_only_with_good_credentials)
{
	ASSERT_EQ(0, write_file(self->path,
		"[p]\naws_access_key_id = OLD\naws_secret_access_key = old\n"
		"aws_session_token = oldtoken\n"));
	/*
	 * explicit profile, then AWS_PROFILE pointing elsewhere: reload must
	 * keep using the profile that was asked for
	 */
	ASSERT_EQ(0, sb_aws_cred_load(&self->c, "p", NULL, 0));
	setenv("AWS_PROFILE", "elsewhere", 1);

	ASSERT_EQ(0, write_file(self->path,
		"[p]\naws_access_key_id = NEW\naws_secret_access_key = new\n"
		"aws_session_token = newtoken\n"));
	ASSERT_EQ(0, sb_aws_cred_reload(&self->c, self->msg,
					sizeof(self->msg)));
	EXPECT_STREQ("NEW", self->c.access_key_id);
	EXPECT_STREQ("new", self->c.secret_access_key);
	EXPECT_STREQ("newtoken", self->c.session_token);
	EXPECT_STREQ("p", self->c.profile);

	/* a broken file mid-rotation: keep what we have */
	ASSERT_EQ(0, write_file(self->path, "[p]\naws_access_key_id\n"));
	EXPECT_EQ(-EINVAL, sb_aws_cred_reload(&self->c, self->msg,
					      sizeof(self->msg)));
	EXPECT_STREQ("NEW", self->c.access_key_id);
	EXPECT_STREQ("newtoken", self->c.session_token);
	unlink(self->path);
	EXPECT_EQ(-ENOENT, sb_aws_cred_reload(&self->c, NULL, 0));
	EXPECT_STREQ("new", self->c.secret_access_key);
}

TEST(free_wipes_and_zeroes)
{
	struct sb_aws_cred c = { 0 };

	sb_aws_cred_free(NULL);
	sb_aws_cred_free(&c);	/* zeroed is fine */
	c.access_key_id = strdup("AKID");
	c.secret_access_key = strdup("secret");
	c.session_token = strdup("token");
	c.region = strdup("r");
	ASSERT_NE(NULL, c.session_token);
	sb_aws_cred_free(&c);
	EXPECT_EQ(NULL, c.access_key_id);
	EXPECT_EQ(NULL, c.secret_access_key);
	EXPECT_EQ(NULL, c.session_token);
	EXPECT_EQ(NULL, c.region);
	EXPECT_EQ(SB_AWS_CRED_NONE, c.source);
}

TEST_HARNESS_MAIN
