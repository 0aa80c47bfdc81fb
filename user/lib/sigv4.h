/* SPDX-License-Identifier: GPL-2.0 */
/*
 * AWS Signature Version 4 for requests to S3-compatible stores (AWS S3,
 * Ceph radosgw), signed in the Authorization header with a single-chunk
 * payload, using OpenSSL's SHA-256 and HMAC (link with -lcrypto).
 *
 * The caller builds the request, gives its method, Host, path, query and
 * any extra headers it wants signed (Range, Content-Type, ...), and gets
 * back the header lines to add: Authorization, x-amz-date,
 * x-amz-content-sha256 and, with a session token, x-amz-security-token.
 * All of those are also signed: radosgw insists on x-amz-content-sha256
 * being sent and signed.
 *
 * Paths and queries are taken as sent, already percent-encoded the AWS way
 * (sb_sigv4_uri_encode()): the canonical URI is the path unchanged (S3
 * neither normalises nor double-encodes it) and the canonical query is the
 * query's parameters sorted. Anything not encoded that way is refused with
 * -EINVAL rather than signed into a request the server would reject with
 * 403 SignatureDoesNotMatch.
 *
 * Library code: nothing is printed; functions return 0 or a negative errno.
 * Thread-safe: no state outside the arguments.
 */
#ifndef SB_SIGV4_H
#define SB_SIGV4_H

#include <stdbool.h>
#include <stddef.h>
#include <time.h>

#include "awscred.h"

/* Hex SHA-256 of the empty string: the payload hash of a GET or HEAD. */
#define SB_SIGV4_EMPTY_SHA256 \
	"e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
#define SB_SIGV4_UNSIGNED_PAYLOAD	"UNSIGNED-PAYLOAD"

/* Most extra headers one request may sign (more: -E2BIG). */
#define SB_SIGV4_MAX_EXTRA	16
/* Header lines sb_sigv4_sign() returns at the most. */
#define SB_SIGV4_MAX_LINES	4

/* Room sb_sigv4_uri_encode() needs for n input bytes, NUL included. */
#define SB_SIGV4_URI_ENCODED_MAX(n)	(3 * (n) + 1)

/**
 * struct sb_sigv4_hdr - an extra header to sign; the caller sends it itself
 * @name: field name, an RFC 9110 token, any case (signed lowercased)
 * @value: value as sent; signed with leading and trailing blanks cut and
 *	inner runs of blanks folded to one space. No CR, LF or other control
 *	character but tab.
 */
struct sb_sigv4_hdr {
	const char *name;
	const char *value;
};

/* sb_sigv4_req.flags */
enum {
	/*
	 * Do not send or sign x-amz-content-sha256 (the payload hash still
	 * ends the canonical request). For services other than S3, and for
	 * AWS's generic SigV4 test suite; S3 and radosgw need the header.
	 */
	SB_SIGV4_NO_CONTENT_SHA256 = 1 << 0,
};

/**
 * struct sb_sigv4_req - one request to sign
 * @method: "GET", "HEAD", "PUT": uppercase letters
 * @host: Host header value as sent, with the port when one is sent
 *	("127.0.0.1:7480")
 * @path: URI path as sent, percent-encoded by AWS's rules
 *	("/bucket/ab/abcd..."); must start with '/'
 * @query: query as sent, without '?'; "" or NULL for none. "name=value"
 *	pairs joined by '&', each part encoded as for the path ('=' may be
 *	left out for an empty value); signed sorted
 * @payload_sha256_hex: lowercase hex SHA-256 of the body,
 *	SB_SIGV4_UNSIGNED_PAYLOAD, or NULL for an empty body
 *	(SB_SIGV4_EMPTY_SHA256)
 * @region: scope region, or NULL for the credentials' region (radosgw
 *	takes what its zonegroup is configured with)
 * @service: scope service, or NULL for "s3"
 * @now: request time, seconds since the epoch; sent as x-amz-date in UTC
 * @extra: extra headers to sign; none may be host, authorization,
 *	x-amz-date, x-amz-content-sha256 or x-amz-security-token (those are
 *	produced here), and no name may come twice
 * @n_extra: entries in @extra, at most SB_SIGV4_MAX_EXTRA
 * @flags: SB_SIGV4_* above; 0 for S3
 *
 * Only the pointers' targets are read, and nothing is kept after
 * sb_sigv4_sign() returns.
 */
struct sb_sigv4_req {
	const char *method;
	const char *host;
	const char *path;
	const char *query;
	const char *payload_sha256_hex;
	const char *region;
	const char *service;
	time_t now;
	const struct sb_sigv4_hdr *extra;
	size_t n_extra;
	unsigned int flags;
};

/**
 * struct sb_sigv4_out - what to send
 * @lines: complete header lines without CRLF, NULL-terminated, in this
 *	order: "Authorization: AWS4-HMAC-SHA256 Credential=...,
 *	SignedHeaders=..., Signature=...", "x-amz-date: ...",
 *	"x-amz-content-sha256: ..." (unless SB_SIGV4_NO_CONTENT_SHA256),
 *	"x-amz-security-token: ..." (with a session token); each ready for
 *	curl_slist_append()
 * @n_lines: entries of @lines used
 * @amz_date: the x-amz-date value, "YYYYMMDDTHHMMSSZ"
 * @signature: the lowercase hex signature
 * @buf: the heap block @lines point into, owned by the struct
 * @buf_len: its size, for wiping
 *
 * Release with sb_sigv4_out_free(), which wipes @buf (it holds the
 * session token).
 */
struct sb_sigv4_out {
	const char *lines[SB_SIGV4_MAX_LINES + 1];
	size_t n_lines;
	char amz_date[17];
	char signature[65];
	char *buf;
	size_t buf_len;
};

/*
 * Sign r with cred (access key id, secret, session token; the region when
 * r->region is NULL). Fills *out, which need not be initialised.
 * Returns 0; -EINVAL for a malformed field (path or query not encoded the
 * AWS way, a header name that is not a token or is one produced here, a
 * value with CR/LF, a date that cannot be expressed, ...); -E2BIG for
 * more than SB_SIGV4_MAX_EXTRA extra headers; -ENOMEM; -EIO when OpenSSL
 * fails. On failure *out is zeroed (safe to free).
 */
int sb_sigv4_sign(const struct sb_sigv4_req *r,
		  const struct sb_aws_cred *cred, struct sb_sigv4_out *out);

/* Wipe and free *out and zero it. NULL and zeroed are fine. */
void sb_sigv4_out_free(struct sb_sigv4_out *out);

/*
 * The canonical request sb_sigv4_sign() would hash for r, as a malloc'ed
 * string in *creq (free it): for tests, and to compare with the
 * CanonicalRequest an S3 server returns with SignatureDoesNotMatch. cred
 * is needed only for whether a session token is signed. Errors as for
 * sb_sigv4_sign().
 */
int sb_sigv4_canonical_request(const struct sb_sigv4_req *r,
			       const struct sb_aws_cred *cred, char **creq);

/*
 * The SigV4 signing key, HMAC chain over "AWS4" + secret, date
 * ("YYYYMMDD"), region, service and "aws4_request". key must be wiped by
 * the caller. 0, -EINVAL (empty argument) or -EIO.
 */
int sb_sigv4_signing_key(const char *secret, const char *date,
			 const char *region, const char *service,
			 unsigned char key[32]);

/* Lowercase hex SHA-256 of len bytes at data into hex (65 bytes). 0/-EIO. */
int sb_sigv4_sha256_hex(const void *data, size_t len, char hex[65]);

/*
 * Percent-encode len bytes of src by AWS's rules: A-Z a-z 0-9 - . _ ~ are
 * kept, every other byte becomes %XX with uppercase hex (a space is %20,
 * never '+'). '/' is kept when keep_slash (an S3 object key used as a path),
 * else encoded (a path segment, a query name or value). dst gets the
 * NUL-terminated result; dstlen of SB_SIGV4_URI_ENCODED_MAX(len) always
 * suffices. 0, or -ENOSPC when dst is too small (dst is then "").
 */
int sb_sigv4_uri_encode(char *dst, size_t dstlen, const char *src,
			size_t len, bool keep_slash);

#endif /* SB_SIGV4_H */
