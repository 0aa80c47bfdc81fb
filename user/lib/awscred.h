/* SPDX-License-Identifier: GPL-2.0 */
/*
 * AWS credentials and region for the S3 store, resolved the way the AWS
 * CLI and SDKs resolve them (static keys only: no SSO, no role
 * assumption, no instance metadata):
 *
 *  1. the environment: AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (both
 *     non-empty), AWS_SESSION_TOKEN optional; skipped when the caller
 *     names a profile explicitly (as botocore does for an explicit
 *     profile; AWS_PROFILE alone does not skip it);
 *  2. the shared credentials file: AWS_SHARED_CREDENTIALS_FILE, else
 *     ~/.aws/credentials; profile from the explicit argument, else
 *     AWS_PROFILE, else "default".
 *
 * The file is INI: "[name]" sections, "key = value" (or "key: value")
 * lines, whitespace around the delimiter ignored, full-line comments
 * starting with '#' or ';' (there are no inline comments: as in the AWS
 * CLI, "key = v # x" has the value "v # x"). Key names are matched
 * without regard to case. Indented lines after a key continue that key's
 * value (as in Python's configparser) and are ignored unless they
 * continue one of the three keys read here, which is an error. Any line
 * that is none of these makes the whole file malformed, as it does for
 * the AWS CLI.
 *
 * The region comes from AWS_REGION, else AWS_DEFAULT_REGION, else
 * "us-east-1".
 *
 * Library code: nothing is printed; errors are a negative errno and, where
 * the caller passes one, a one-line message naming the file and line.
 */
#ifndef SB_AWSCRED_H
#define SB_AWSCRED_H

#include <stddef.h>

#define SB_AWS_DEFAULT_REGION	"us-east-1"
#define SB_AWS_DEFAULT_PROFILE	"default"

/* Largest credentials file read; a larger one is -EFBIG. */
#define SB_AWS_CRED_FILE_MAX	(1 << 20)

enum sb_aws_cred_source {
	SB_AWS_CRED_NONE = 0,	/* not loaded (zeroed struct) */
	SB_AWS_CRED_ENV,	/* AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY */
	SB_AWS_CRED_FILE,	/* a profile of a shared credentials file */
};

/**
 * struct sb_aws_cred - one set of credentials
 * @access_key_id: never NULL once loaded
 * @secret_access_key: never NULL once loaded; secret
 * @session_token: NULL when there is none; secret
 * @region: never NULL once loaded
 * @source: where the keys came from
 * @file: for SB_AWS_CRED_FILE, the path read; else NULL
 * @profile: for SB_AWS_CRED_FILE, the profile used; else NULL
 * @req_profile: the explicit profile passed to sb_aws_cred_load(), or
 *	NULL; kept so that sb_aws_cred_reload() resolves the same way
 *
 * Every string is owned by the struct (heap), NUL-terminated, and holds
 * only printable ASCII without spaces (0x21 to 0x7e), so it can go into an
 * HTTP header as it is. The three secrets are wiped with explicit_bzero()
 * before they are freed.
 *
 * Not locked: the owner must not reload while another thread signs with
 * the same struct.
 */
struct sb_aws_cred {
	char *access_key_id;
	char *secret_access_key;
	char *session_token;
	char *region;
	enum sb_aws_cred_source source;
	char *file;
	char *profile;
	char *req_profile;
};

/*
 * Resolve credentials into *cred (which need not be initialised; it is
 * overwritten). profile: an explicit profile name, or NULL for AWS_PROFILE
 * / "default". msg (may be NULL) receives a one-line reason on failure and
 * "" on success.
 *
 * Returns 0, or:
 *  -ENOENT  no credentials anywhere (no environment keys, no file, no such
 *           profile, or a profile without keys);
 *  -EINVAL  malformed file (the message names file:line), one of the pair
 *           of keys without the other, or a value with spaces or control
 *           characters;
 *  -EACCES  the credentials file exists but may not be read;
 *  -EFBIG   the file is larger than SB_AWS_CRED_FILE_MAX;
 *  -ENOMEM, or another negative errno from reading the file.
 * On failure *cred is zeroed (safe to free).
 */
int sb_aws_cred_load(struct sb_aws_cred *cred, const char *profile,
		     char *msg, size_t msglen);

/*
 * Resolve again, the way the last load did (same explicit profile), e.g.
 * after a request fails with 403 ExpiredToken. On success the old
 * credentials are wiped and replaced; on failure *cred is left as it was,
 * still usable, and the error is as for sb_aws_cred_load().
 */
int sb_aws_cred_reload(struct sb_aws_cred *cred, char *msg, size_t msglen);

/* Wipe and free everything in *cred and zero it. NULL and zeroed are fine. */
void sb_aws_cred_free(struct sb_aws_cred *cred);

#endif /* SB_AWSCRED_H */
