// SPDX-License-Identifier: GPL-2.0
/*
 * AWS credentials from the environment or a shared credentials file; see
 * awscred.h for the resolution order and the file syntax accepted.
 */
#include <errno.h>
#include <fcntl.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "awscred.h"

#define KEY_ID		"aws_access_key_id"
#define KEY_SECRET	"aws_secret_access_key"
#define KEY_TOKEN	"aws_session_token"

static void set_msg(char *msg, size_t msglen, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void set_msg(char *msg, size_t msglen, const char *fmt, ...)
{
	va_list ap;

	if (!msg || !msglen)
		return;
	va_start(ap, fmt);
	vsnprintf(msg, msglen, fmt, ap);
	va_end(ap);
}

static void free_secret(char **p)
{
	if (*p) {
		explicit_bzero(*p, strlen(*p));
		free(*p);
		*p = NULL;
	}
}

void sb_aws_cred_free(struct sb_aws_cred *cred)
{
	if (!cred)
		return;
	free_secret(&cred->access_key_id);
	free_secret(&cred->secret_access_key);
	free_secret(&cred->session_token);
	free(cred->region);
	free(cred->file);
	free(cred->profile);
	free(cred->req_profile);
	explicit_bzero(cred, sizeof(*cred));
}

/* Printable ASCII without spaces: safe in a header and a credential scope. */
static bool token_ok(const char *s, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		if ((unsigned char)s[i] < 0x21 || (unsigned char)s[i] > 0x7e)
			return false;
	return true;
}

static int dup_checked(char **dst, const char *src, size_t n)
{
	if (!token_ok(src, n))
		return -EINVAL;
	*dst = strndup(src, n);
	return *dst ? 0 : -ENOMEM;
}

static const char *env_nonempty(const char *name)
{
	const char *v = getenv(name);

	return v && *v ? v : NULL;
}

static int load_region(struct sb_aws_cred *c, char *msg, size_t msglen)
{
	const char *name = "AWS_REGION";
	const char *v = env_nonempty(name);
	int ret;

	if (!v) {
		name = "AWS_DEFAULT_REGION";
		v = env_nonempty(name);
	}
	if (!v) {
		c->region = strdup(SB_AWS_DEFAULT_REGION);
		return c->region ? 0 : -ENOMEM;
	}
	ret = dup_checked(&c->region, v, strlen(v));
	if (ret == -EINVAL || (!ret && strchr(c->region, '/'))) {
		set_msg(msg, msglen,
			"%s has a space, '/' or control character", name);
		return -EINVAL;
	}
	return ret;
}

/*
 * From the environment. Returns 0 with the keys set, 1 when the
 * environment holds no keys, or a negative errno.
 */
static int load_env(struct sb_aws_cred *c, char *msg, size_t msglen)
{
	const char *id = env_nonempty("AWS_ACCESS_KEY_ID");
	const char *secret = env_nonempty("AWS_SECRET_ACCESS_KEY");
	const char *token = env_nonempty("AWS_SESSION_TOKEN");
	const char *bad;
	int ret;

	if (!id && !secret)
		return 1;
	if (!id || !secret) {
		set_msg(msg, msglen, "%s is set but %s is not",
			id ? "AWS_ACCESS_KEY_ID" : "AWS_SECRET_ACCESS_KEY",
			id ? "AWS_SECRET_ACCESS_KEY" : "AWS_ACCESS_KEY_ID");
		return -EINVAL;
	}
	bad = "AWS_ACCESS_KEY_ID";
	ret = dup_checked(&c->access_key_id, id, strlen(id));
	if (!ret) {
		bad = "AWS_SECRET_ACCESS_KEY";
		ret = dup_checked(&c->secret_access_key, secret,
				  strlen(secret));
	}
	if (!ret && token) {
		bad = "AWS_SESSION_TOKEN";
		ret = dup_checked(&c->session_token, token, strlen(token));
	}
	if (ret == -EINVAL)
		set_msg(msg, msglen, "%s has a space or control character",
			bad);
	if (!ret)
		c->source = SB_AWS_CRED_ENV;
	return ret;
}

/* The credentials file path, malloc'ed, or NULL with *err set. */
static char *cred_path(int *err)
{
	const char *file = env_nonempty("AWS_SHARED_CREDENTIALS_FILE");
	const char *home = env_nonempty("HOME");
	struct passwd pw, *pwp = NULL;
	char buf[4096];
	char *path;

	if (file) {
		path = strdup(file);
	} else {
		if (!home && !getpwuid_r(getuid(), &pw, buf, sizeof(buf),
					 &pwp) && pwp && pwp->pw_dir)
			home = pwp->pw_dir;
		if (!home) {
			*err = -ENOENT;
			return NULL;
		}
		if (asprintf(&path, "%s/.aws/credentials", home) < 0)
			path = NULL;
	}
	*err = path ? 0 : -ENOMEM;
	return path;
}

/*
 * Read the whole file into a NUL-terminated heap buffer. The caller wipes
 * and frees it (it holds every profile's secrets). One buffer of the
 * largest size allowed, never grown, so that no copy of a secret is left
 * in freed memory (a realloc()ing reader would leave them behind).
 */
static int read_file(const char *path, char **bufp, size_t *lenp)
{
	struct stat st;
	size_t len = 0;
	char *buf;
	ssize_t n;
	int fd, ret;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	if (fstat(fd, &st) < 0) {
		ret = -errno;
		goto out_close;
	}
	if (S_ISDIR(st.st_mode)) {
		ret = -EISDIR;
		goto out_close;
	}
	if (st.st_size > SB_AWS_CRED_FILE_MAX) {
		ret = -EFBIG;
		goto out_close;
	}
	buf = malloc(SB_AWS_CRED_FILE_MAX + 1);
	if (!buf) {
		ret = -ENOMEM;
		goto out_close;
	}
	for (;;) {
		n = read(fd, buf + len, SB_AWS_CRED_FILE_MAX + 1 - len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			ret = -errno;
			goto out_free;
		}
		if (n == 0)
			break;
		len += n;
		if (len > SB_AWS_CRED_FILE_MAX) {
			ret = -EFBIG;
			goto out_free;
		}
	}
	buf[len] = '\0';
	close(fd);
	*bufp = buf;
	*lenp = len;
	return 0;

out_free:
	explicit_bzero(buf, len);
	free(buf);
out_close:
	close(fd);
	return ret;
}

static bool is_blank(char ch)
{
	return ch == ' ' || ch == '\t' || ch == '\r' || ch == '\f' ||
	       ch == '\v';
}

/* What the parser found for the wanted profile: pointers into the buffer. */
struct profile_keys {
	const char *val[3];	/* id, secret, token; NULL when absent */
	size_t len[3];
	unsigned int line[3];	/* line each was set on */
	unsigned int section_line; /* first "[profile]" line; 0: not seen */
};

static const char *const key_names[3] = { KEY_ID, KEY_SECRET, KEY_TOKEN };

/*
 * Parse buf (len bytes, NUL-terminated) for profile. Returns 0 or -EINVAL
 * with the message naming path:line.
 */
static int parse_file(char *buf, size_t len, const char *path,
		      const char *profile, struct profile_keys *pk,
		      char *msg, size_t msglen)
{
	bool in_section = false, in_profile = false;
	int last_key = -2;	/* -2 none, -1 another key, 0..2 ours */
	unsigned int lineno = 0;
	char *line = buf, *end = buf + len;

	memset(pk, 0, sizeof(*pk));
	while (line < end) {
		char *nl = memchr(line, '\n', end - line);
		char *eol = nl ? nl : end;
		char *s = line, *e = eol, *delim, *k_end, *v;
		bool indented;
		size_t n;
		int i;

		line = nl ? nl + 1 : end;
		lineno++;
		if (memchr(s, '\0', e - s)) {
			set_msg(msg, msglen, "%s:%u: NUL byte", path, lineno);
			return -EINVAL;
		}
		indented = s < e && is_blank(*s) && *s != '\r';
		while (s < e && is_blank(*s))
			s++;
		while (e > s && is_blank(e[-1]))
			e--;
		if (s == e || *s == '#' || *s == ';')
			continue;

		if (indented && last_key != -2) {
			/* continuation of the previous key's value */
			if (last_key >= 0) {
				set_msg(msg, msglen,
					"%s:%u: continuation lines are not supported for %s",
					path, lineno, key_names[last_key]);
				return -EINVAL;
			}
			continue;
		}

		if (*s == '[') {
			if (e[-1] != ']') {
				set_msg(msg, msglen,
					"%s:%u: section header without ']'",
					path, lineno);
				return -EINVAL;
			}
			s++;
			e--;
			while (s < e && is_blank(*s))
				s++;
			while (e > s && is_blank(e[-1]))
				e--;
			if (s == e) {
				set_msg(msg, msglen,
					"%s:%u: empty section name",
					path, lineno);
				return -EINVAL;
			}
			n = e - s;
			in_section = true;
			in_profile = strlen(profile) == n &&
				     !memcmp(s, profile, n);
			if (in_profile && !pk->section_line)
				pk->section_line = lineno;
			last_key = -2;
			continue;
		}

		delim = s;
		while (delim < e && *delim != '=' && *delim != ':')
			delim++;
		if (delim == e) {
			set_msg(msg, msglen,
				"%s:%u: expected \"[profile]\", \"key = value\" or a comment",
				path, lineno);
			return -EINVAL;
		}
		k_end = delim;
		while (k_end > s && is_blank(k_end[-1]))
			k_end--;
		if (k_end == s) {
			set_msg(msg, msglen, "%s:%u: key name missing",
				path, lineno);
			return -EINVAL;
		}
		if (!in_section) {
			set_msg(msg, msglen,
				"%s:%u: key before the first [profile] header",
				path, lineno);
			return -EINVAL;
		}
		v = delim + 1;
		while (v < e && is_blank(*v))
			v++;

		last_key = -1;
		if (!in_profile)
			continue;
		n = k_end - s;
		for (i = 0; i < 3; i++) {
			if (strlen(key_names[i]) != n ||
			    strncasecmp(s, key_names[i], n))
				continue;
			if (pk->line[i]) {
				set_msg(msg, msglen,
					"%s:%u: %s already set on line %u",
					path, lineno, key_names[i],
					pk->line[i]);
				return -EINVAL;
			}
			if (!token_ok(v, e - v)) {
				set_msg(msg, msglen,
					"%s:%u: %s has a space or control character",
					path, lineno, key_names[i]);
				return -EINVAL;
			}
			pk->val[i] = v;
			pk->len[i] = e - v;
			pk->line[i] = lineno;
			last_key = i;
		}
	}
	return 0;
}

/* Fill c from the profile found; -ENOENT / -EINVAL when it is unusable. */
static int take_keys(struct sb_aws_cred *c, const struct profile_keys *pk,
		     const char *path, const char *profile,
		     char *msg, size_t msglen)
{
	bool has_id = pk->val[0] && pk->len[0];
	bool has_secret = pk->val[1] && pk->len[1];
	int ret;

	if (!pk->section_line) {
		set_msg(msg, msglen, "%s: no profile [%s]", path, profile);
		return -ENOENT;
	}
	if (!has_id && !has_secret) {
		set_msg(msg, msglen,
			"%s:%u: profile [%s] has no %s and %s",
			path, pk->section_line, profile, KEY_ID, KEY_SECRET);
		return -ENOENT;
	}
	if (!has_id || !has_secret) {
		set_msg(msg, msglen, "%s:%u: profile [%s] has %s but no %s",
			path, pk->line[has_id ? 0 : 1], profile,
			has_id ? KEY_ID : KEY_SECRET,
			has_id ? KEY_SECRET : KEY_ID);
		return -EINVAL;
	}
	ret = dup_checked(&c->access_key_id, pk->val[0], pk->len[0]);
	if (!ret)
		ret = dup_checked(&c->secret_access_key, pk->val[1],
				  pk->len[1]);
	if (!ret && pk->val[2] && pk->len[2])
		ret = dup_checked(&c->session_token, pk->val[2], pk->len[2]);
	return ret;
}

static int load_file(struct sb_aws_cred *c, const char *profile,
		     char *msg, size_t msglen)
{
	struct profile_keys pk;
	char *path, *buf = NULL;
	size_t len = 0;
	int ret;

	path = cred_path(&ret);
	if (!path) {
		if (ret == -ENOENT)
			set_msg(msg, msglen,
				"no AWS credentials: AWS_ACCESS_KEY_ID is not set and there is no home directory for ~/.aws/credentials");
		return ret;
	}
	ret = read_file(path, &buf, &len);
	if (ret) {
		if (ret == -ENOENT)
			set_msg(msg, msglen,
				"no AWS credentials: AWS_ACCESS_KEY_ID is not set and %s does not exist",
				path);
		else
			set_msg(msg, msglen, "cannot read %s: %s", path,
				strerror(-ret));
		goto out_path;
	}
	ret = parse_file(buf, len, path, profile, &pk, msg, msglen);
	if (!ret)
		ret = take_keys(c, &pk, path, profile, msg, msglen);
	explicit_bzero(&pk, sizeof(pk));
	explicit_bzero(buf, len);
	free(buf);
	if (ret)
		goto out_path;
	c->profile = strdup(profile);
	if (!c->profile) {
		ret = -ENOMEM;
		goto out_path;
	}
	c->file = path;
	c->source = SB_AWS_CRED_FILE;
	return 0;

out_path:
	free(path);
	return ret;
}

int sb_aws_cred_load(struct sb_aws_cred *cred, const char *profile,
		     char *msg, size_t msglen)
{
	struct sb_aws_cred c = { 0 };
	int ret;

	set_msg(msg, msglen, "%s", "");
	if (profile && !*profile)
		profile = NULL;
	if (profile) {
		c.req_profile = strdup(profile);
		if (!c.req_profile) {
			ret = -ENOMEM;
			goto err;
		}
	}

	ret = load_region(&c, msg, msglen);
	if (ret)
		goto err;

	/* An explicit profile means the file, as in botocore. */
	ret = profile ? 1 : load_env(&c, msg, msglen);
	if (ret < 0)
		goto err;
	if (ret > 0) {
		if (!profile)
			profile = env_nonempty("AWS_PROFILE");
		if (!profile)
			profile = SB_AWS_DEFAULT_PROFILE;
		ret = load_file(&c, profile, msg, msglen);
		if (ret)
			goto err;
	}
	*cred = c;
	return 0;

err:
	if (ret == -ENOMEM)
		set_msg(msg, msglen, "out of memory loading AWS credentials");
	sb_aws_cred_free(&c);
	memset(cred, 0, sizeof(*cred));
	return ret;
}

int sb_aws_cred_reload(struct sb_aws_cred *cred, char *msg, size_t msglen)
{
	struct sb_aws_cred fresh;
	int ret;

	ret = sb_aws_cred_load(&fresh, cred->req_profile, msg, msglen);
	if (ret)
		return ret;
	sb_aws_cred_free(cred);
	*cred = fresh;
	return 0;
}
