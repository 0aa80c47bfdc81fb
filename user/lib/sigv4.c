// SPDX-License-Identifier: GPL-2.0
/*
 * AWS Signature Version 4, header-based, single-chunk payload; see sigv4.h.
 * Written from AWS's description of the algorithm ("Create a signed AWS API
 * request", IAM user guide; "Signature Calculations for the Authorization
 * Header: Transferring Payload in a Single Chunk", S3 API reference):
 *
 *   CanonicalRequest = join("\n", Method, CanonicalURI, CanonicalQuery,
 *                      "lowercase-name:folded-value" for each signed
 *                      header in order, "", SignedHeaders, PayloadHash)
 *   StringToSign     = join("\n", "AWS4-HMAC-SHA256", x-amz-date,
 *                      "date/region/service/aws4_request",
 *                      hex(SHA256(CanonicalRequest)))
 *   kSigning         = HMAC(HMAC(HMAC(HMAC("AWS4" secret, date), region),
 *                      service), "aws4_request")
 *   Signature        = hex(HMAC(kSigning, StringToSign))
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "hex.h"
#include "sigv4.h"

#define ALGORITHM	"AWS4-HMAC-SHA256"
#define SCOPE_END	"aws4_request"

/*
 * A growing string. err latches the first failure so that appends can be
 * chained and checked once. Growth copies and wipes rather than realloc()s,
 * since what is built may hold a session token.
 */
struct sbuf {
	char *p;	/* NUL-terminated once anything is added; owned */
	size_t len;	/* bytes used, NUL excluded */
	size_t cap;	/* bytes allocated */
	int err;	/* 0 or -ENOMEM */
};

static void sbuf_wipe(struct sbuf *b)
{
	if (b->p) {
		explicit_bzero(b->p, b->cap);
		free(b->p);
	}
	memset(b, 0, sizeof(*b));
}

static void sbuf_add(struct sbuf *b, const char *s, size_t n)
{
	size_t cap;
	char *p;

	if (b->err)
		return;
	if (b->len + n + 1 > b->cap) {
		cap = b->cap ? b->cap : 256;
		while (cap < b->len + n + 1)
			cap *= 2;
		p = malloc(cap);
		if (!p) {
			b->err = -ENOMEM;
			return;
		}
		if (b->p) {
			memcpy(p, b->p, b->len);
			explicit_bzero(b->p, b->cap);
			free(b->p);
		}
		b->p = p;
		b->cap = cap;
	}
	memcpy(b->p + b->len, s, n);
	b->len += n;
	b->p[b->len] = '\0';
}

static void sbuf_adds(struct sbuf *b, const char *s)
{
	sbuf_add(b, s, strlen(s));
}

/* Add a NUL as content (to separate lines kept in one block). */
static void sbuf_add_nul(struct sbuf *b)
{
	sbuf_add(b, "", 1);
}

int sb_sigv4_sha256_hex(const void *data, size_t len, char hex[65])
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;

	if (!EVP_Digest(data, len, md, &mdlen, EVP_sha256(), NULL) ||
	    mdlen != 32) {
		/* leave no stale error behind for curl's TLS to misread */
		ERR_clear_error();
		return -EIO;
	}
	sb_hex(md, 32, hex);
	return 0;
}

static int hmac(const void *key, size_t keylen, const char *msg,
		size_t msglen, unsigned char out[32])
{
	unsigned int outlen = 0;

	if (!HMAC(EVP_sha256(), key, (int)keylen,
		  (const unsigned char *)msg, msglen, out, &outlen) ||
	    outlen != 32) {
		ERR_clear_error();
		return -EIO;
	}
	return 0;
}

int sb_sigv4_signing_key(const char *secret, const char *date,
			 const char *region, const char *service,
			 unsigned char key[32])
{
	unsigned char k[32];
	size_t slen;
	char *ksecret;
	int ret;

	if (!secret || !*secret || !date || !*date || !region || !*region ||
	    !service || !*service)
		return -EINVAL;
	slen = strlen(secret);
	ksecret = malloc(slen + 5);
	if (!ksecret)
		return -ENOMEM;
	memcpy(ksecret, "AWS4", 4);
	memcpy(ksecret + 4, secret, slen + 1);

	ret = hmac(ksecret, slen + 4, date, strlen(date), k);
	if (!ret)
		ret = hmac(k, 32, region, strlen(region), k);
	if (!ret)
		ret = hmac(k, 32, service, strlen(service), k);
	if (!ret)
		ret = hmac(k, 32, SCOPE_END, strlen(SCOPE_END), key);

	explicit_bzero(k, sizeof(k));
	explicit_bzero(ksecret, slen + 4);
	free(ksecret);
	return ret;
}

static bool is_unreserved(unsigned char c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
	       (c >= '0' && c <= '9') || c == '-' || c == '.' || c == '_' ||
	       c == '~';
}

int sb_sigv4_uri_encode(char *dst, size_t dstlen, const char *src,
			size_t len, bool keep_slash)
{
	static const char digits[] = "0123456789ABCDEF";
	size_t i, o = 0;

	if (!dstlen)
		return -ENOSPC;
	for (i = 0; i < len; i++) {
		unsigned char c = src[i];

		if (is_unreserved(c) || (keep_slash && c == '/')) {
			if (o + 1 >= dstlen)
				goto nospc;
			dst[o++] = c;
		} else {
			if (o + 3 >= dstlen)
				goto nospc;
			dst[o++] = '%';
			dst[o++] = digits[c >> 4];
			dst[o++] = digits[c & 15];
		}
	}
	dst[o] = '\0';
	return 0;

nospc:
	dst[0] = '\0';
	return -ENOSPC;
}

static bool is_upper_hex(char c)
{
	return (c >= '0' && c <= '9') || (c >= 'A' && c <= 'F');
}

/*
 * Whether n bytes of s are exactly what sb_sigv4_uri_encode() produces
 * for some input: unreserved characters, '/' when allowed, "%XX" with
 * uppercase hex.
 */
static bool is_aws_encoded(const char *s, size_t n, bool allow_slash)
{
	size_t i;

	for (i = 0; i < n; i++) {
		unsigned char c = s[i];

		if (is_unreserved(c) || (allow_slash && c == '/'))
			continue;
		if (c != '%' || i + 2 >= n ||
		    !is_upper_hex(s[i + 1]) || !is_upper_hex(s[i + 2]))
			return false;
		i += 2;
	}
	return true;
}

/* Printable ASCII without spaces (host, scope parts, key id, token). */
static bool is_token_text(const char *s)
{
	if (!s || !*s)
		return false;
	for (; *s; s++)
		if ((unsigned char)*s < 0x21 || (unsigned char)*s > 0x7e)
			return false;
	return true;
}

/* RFC 9110 tchar. */
static bool is_tchar(unsigned char c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
	       (c >= '0' && c <= '9') || (c && strchr("!#$%&'*+-.^_`|~", c));
}

/* A header value: no control characters but tab (no CR/LF injection). */
static bool is_field_value(const char *s)
{
	for (; *s; s++) {
		unsigned char c = *s;

		if ((c < 0x20 && c != '\t') || c == 0x7f)
			return false;
	}
	return true;
}

/* One query parameter, pointing into the caller's string. */
struct qparam {
	const char *name;
	size_t nlen;
	const char *value;	/* may be NULL (no '=') */
	size_t vlen;
};

static int cmp_bytes(const char *a, size_t alen, const char *b, size_t blen)
{
	int c = memcmp(a, b, alen < blen ? alen : blen);

	if (c)
		return c;
	return alen < blen ? -1 : alen > blen;
}

static int qparam_cmp(const void *pa, const void *pb)
{
	const struct qparam *a = pa, *b = pb;
	int c = cmp_bytes(a->name, a->nlen, b->name, b->nlen);

	return c ? c : cmp_bytes(a->value ? a->value : "", a->vlen,
				 b->value ? b->value : "", b->vlen);
}

/* Append the canonical query string for q (NULL or "" for none). */
static int add_canonical_query(struct sbuf *b, const char *q)
{
	struct qparam *params;
	size_t n = 1, i = 0;
	const char *s;

	if (!q || !*q)
		return 0;
	for (s = q; *s; s++)
		n += *s == '&';
	params = calloc(n, sizeof(*params));
	if (!params)
		return -ENOMEM;

	for (s = q; i < n; i++) {
		const char *amp = strchr(s, '&');
		const char *end = amp ? amp : s + strlen(s);
		const char *eq = memchr(s, '=', end - s);
		struct qparam *p = &params[i];

		p->name = s;
		p->nlen = (eq ? eq : end) - s;
		if (eq) {
			p->value = eq + 1;
			p->vlen = end - p->value;
		}
		if (!p->nlen || !is_aws_encoded(p->name, p->nlen, false) ||
		    (eq && !is_aws_encoded(p->value, p->vlen, false))) {
			free(params);
			return -EINVAL;
		}
		s = end + 1;
	}
	qsort(params, n, sizeof(*params), qparam_cmp);
	for (i = 0; i < n; i++) {
		if (i)
			sbuf_add(b, "&", 1);
		sbuf_add(b, params[i].name, params[i].nlen);
		sbuf_add(b, "=", 1);
		if (params[i].value)
			sbuf_add(b, params[i].value, params[i].vlen);
	}
	free(params);
	return b->err;
}

/* A header to sign. */
struct shdr {
	const char *name;	/* lowercase; lname or a literal */
	char *lname;		/* owned lowercased copy of an extra's name */
	const char *value;
};

static int shdr_cmp(const void *pa, const void *pb)
{
	const struct shdr *a = pa, *b = pb;

	return strcmp(a->name, b->name);
}

/* Value with leading/trailing blanks cut and inner runs folded to one. */
static void add_folded(struct sbuf *b, const char *v)
{
	const char *end;
	bool blank = false;

	while (*v == ' ' || *v == '\t')
		v++;
	end = v + strlen(v);
	while (end > v && (end[-1] == ' ' || end[-1] == '\t'))
		end--;
	for (; v < end; v++) {
		if (*v == ' ' || *v == '\t') {
			blank = true;
			continue;
		}
		if (blank)
			sbuf_add(b, " ", 1);
		blank = false;
		sbuf_add(b, v, 1);
	}
}

static const char *const produced_here[] = {
	"authorization", "host", "x-amz-content-sha256", "x-amz-date",
	"x-amz-security-token",
};

/* Everything signing needs besides the key, built from one request. */
struct signing {
	char amz_date[17];	/* x-amz-date value */
	char date[9];		/* its first 8 characters, the scope date */
	const char *region;	/* scope region (defaults applied) */
	const char *service;	/* scope service (defaults applied) */
	const char *payload;	/* payload hash line (defaults applied) */
	const char *token;	/* session token, or NULL */
	struct sbuf creq;	/* canonical request */
	struct sbuf signed_hdrs; /* "host;x-amz-date;..." */
};

static int check_scope_part(const char *s)
{
	return is_token_text(s) && !strchr(s, '/') ? 0 : -EINVAL;
}

static int check_request(const struct sb_sigv4_req *r,
			 const struct sb_aws_cred *cred, struct signing *sg)
{
	const char *p;
	struct tm tm;
	size_t i;

	if (!r || !cred || !r->method || !*r->method || !r->host || !r->path)
		return -EINVAL;
	for (p = r->method; *p; p++)
		if (*p < 'A' || *p > 'Z')
			return -EINVAL;
	if (!is_token_text(r->host))
		return -EINVAL;
	if (r->path[0] != '/' ||
	    !is_aws_encoded(r->path, strlen(r->path), true))
		return -EINVAL;

	sg->payload = r->payload_sha256_hex ? r->payload_sha256_hex :
					      SB_SIGV4_EMPTY_SHA256;
	if (strcmp(sg->payload, SB_SIGV4_UNSIGNED_PAYLOAD)) {
		if (strlen(sg->payload) != 64)
			return -EINVAL;
		for (p = sg->payload; *p; p++)
			if (!((*p >= '0' && *p <= '9') ||
			      (*p >= 'a' && *p <= 'f')))
				return -EINVAL;
	}

	sg->region = r->region ? r->region : cred->region;
	if (!sg->region)
		sg->region = SB_AWS_DEFAULT_REGION;
	sg->service = r->service ? r->service : "s3";
	if (check_scope_part(sg->region) || check_scope_part(sg->service))
		return -EINVAL;
	if (check_scope_part(cred->access_key_id) ||
	    strchr(cred->access_key_id, ','))
		return -EINVAL;
	if (!cred->secret_access_key || !*cred->secret_access_key)
		return -EINVAL;
	sg->token = cred->session_token && *cred->session_token ?
		    cred->session_token : NULL;
	if (sg->token && !is_token_text(sg->token))
		return -EINVAL;

	if (r->n_extra > SB_SIGV4_MAX_EXTRA)
		return -E2BIG;
	if (r->n_extra && !r->extra)
		return -EINVAL;
	for (i = 0; i < r->n_extra; i++)
		if (!r->extra[i].name || !r->extra[i].value ||
		    !is_field_value(r->extra[i].value))
			return -EINVAL;

	if (!gmtime_r(&r->now, &tm) || tm.tm_year < -1900 ||
	    tm.tm_year > 9999 - 1900)
		return -EINVAL;
	if (strftime(sg->amz_date, sizeof(sg->amz_date), "%Y%m%dT%H%M%SZ",
		     &tm) != 16)
		return -EINVAL;
	memcpy(sg->date, sg->amz_date, 8);
	sg->date[8] = '\0';
	return 0;
}

/* Collect, check and sort the signed headers into h; returns the count. */
static int collect_headers(const struct sb_sigv4_req *r,
			   const struct signing *sg, struct shdr *h)
{
	size_t n = 0, i, j;

	h[n].name = "host";
	h[n++].value = r->host;
	if (!(r->flags & SB_SIGV4_NO_CONTENT_SHA256)) {
		h[n].name = "x-amz-content-sha256";
		h[n++].value = sg->payload;
	}
	h[n].name = "x-amz-date";
	h[n++].value = sg->amz_date;
	if (sg->token) {
		h[n].name = "x-amz-security-token";
		h[n++].value = sg->token;
	}

	for (i = 0; i < r->n_extra; i++, n++) {
		const char *name = r->extra[i].name;
		size_t len = strlen(name);

		if (!len)
			return -EINVAL;
		h[n].lname = malloc(len + 1);
		if (!h[n].lname)
			return -ENOMEM;
		for (j = 0; j <= len; j++) {
			unsigned char c = name[j];

			if (c && !is_tchar(c))
				return -EINVAL;
			h[n].lname[j] = c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c;
		}
		h[n].name = h[n].lname;
		h[n].value = r->extra[i].value;
		for (j = 0; j < sizeof(produced_here) / sizeof(*produced_here);
		     j++)
			if (!strcmp(h[n].name, produced_here[j]))
				return -EINVAL;
	}

	qsort(h, n, sizeof(*h), shdr_cmp);
	for (i = 1; i < n; i++)
		if (!strcmp(h[i - 1].name, h[i].name))
			return -EINVAL;
	return (int)n;
}

static void signing_free(struct signing *sg)
{
	sbuf_wipe(&sg->creq);
	sbuf_wipe(&sg->signed_hdrs);
}

/* Build the canonical request and signed-header list into *sg. */
static int build(const struct sb_sigv4_req *r,
		 const struct sb_aws_cred *cred, struct signing *sg)
{
	struct shdr h[SB_SIGV4_MAX_EXTRA + 4];
	int n, i, ret;

	memset(sg, 0, sizeof(*sg));
	memset(h, 0, sizeof(h));
	ret = check_request(r, cred, sg);
	if (ret)
		return ret;
	n = collect_headers(r, sg, h);
	if (n < 0) {
		ret = n;
		goto out;
	}

	sbuf_adds(&sg->creq, r->method);
	sbuf_add(&sg->creq, "\n", 1);
	sbuf_adds(&sg->creq, r->path);
	sbuf_add(&sg->creq, "\n", 1);
	ret = add_canonical_query(&sg->creq, r->query);
	if (ret)
		goto out;
	sbuf_add(&sg->creq, "\n", 1);
	for (i = 0; i < n; i++) {
		sbuf_adds(&sg->creq, h[i].name);
		sbuf_add(&sg->creq, ":", 1);
		add_folded(&sg->creq, h[i].value);
		sbuf_add(&sg->creq, "\n", 1);
		if (i)
			sbuf_add(&sg->signed_hdrs, ";", 1);
		sbuf_adds(&sg->signed_hdrs, h[i].name);
	}
	sbuf_add(&sg->creq, "\n", 1);
	sbuf_add(&sg->creq, sg->signed_hdrs.p, sg->signed_hdrs.len);
	sbuf_add(&sg->creq, "\n", 1);
	sbuf_adds(&sg->creq, sg->payload);
	ret = sg->creq.err ? sg->creq.err : sg->signed_hdrs.err;

out:
	for (i = 0; i < SB_SIGV4_MAX_EXTRA + 4; i++)
		free(h[i].lname);
	if (ret)
		signing_free(sg);
	return ret;
}

int sb_sigv4_canonical_request(const struct sb_sigv4_req *r,
			       const struct sb_aws_cred *cred, char **creq)
{
	struct signing sg;
	int ret;

	*creq = NULL;
	ret = build(r, cred, &sg);
	if (ret)
		return ret;
	*creq = sg.creq.p;	/* hand over */
	sg.creq.p = NULL;
	signing_free(&sg);
	return 0;
}

void sb_sigv4_out_free(struct sb_sigv4_out *out)
{
	if (!out)
		return;
	if (out->buf) {
		explicit_bzero(out->buf, out->buf_len);
		free(out->buf);
	}
	memset(out, 0, sizeof(*out));
}

/* hex(HMAC(kSigning, StringToSign)) into sig. */
static int compute_signature(const struct signing *sg,
			     const struct sb_aws_cred *cred, char sig[65])
{
	unsigned char key[32], mac[32];
	char creq_hash[65];
	struct sbuf sts = { 0 };
	int ret;

	ret = sb_sigv4_sha256_hex(sg->creq.p, sg->creq.len, creq_hash);
	if (ret)
		return ret;
	sbuf_adds(&sts, ALGORITHM "\n");
	sbuf_adds(&sts, sg->amz_date);
	sbuf_add(&sts, "\n", 1);
	sbuf_adds(&sts, sg->date);
	sbuf_add(&sts, "/", 1);
	sbuf_adds(&sts, sg->region);
	sbuf_add(&sts, "/", 1);
	sbuf_adds(&sts, sg->service);
	sbuf_adds(&sts, "/" SCOPE_END "\n");
	sbuf_adds(&sts, creq_hash);
	ret = sts.err;
	if (ret)
		goto out;

	ret = sb_sigv4_signing_key(cred->secret_access_key, sg->date,
				   sg->region, sg->service, key);
	if (!ret)
		ret = hmac(key, sizeof(key), sts.p, sts.len, mac);
	if (!ret)
		sb_hex(mac, sizeof(mac), sig);
out:
	explicit_bzero(key, sizeof(key));
	explicit_bzero(mac, sizeof(mac));
	sbuf_wipe(&sts);
	return ret;
}

int sb_sigv4_sign(const struct sb_sigv4_req *r,
		  const struct sb_aws_cred *cred, struct sb_sigv4_out *out)
{
	size_t offs[SB_SIGV4_MAX_LINES];
	struct sbuf b = { 0 };
	struct signing sg;
	size_t n = 0, i;
	int ret;

	memset(out, 0, sizeof(*out));
	ret = build(r, cred, &sg);
	if (ret)
		return ret;
	ret = compute_signature(&sg, cred, out->signature);
	if (ret)
		goto out;
	memcpy(out->amz_date, sg.amz_date, sizeof(out->amz_date));

	offs[n++] = b.len;
	sbuf_adds(&b, "Authorization: " ALGORITHM " Credential=");
	sbuf_adds(&b, cred->access_key_id);
	sbuf_add(&b, "/", 1);
	sbuf_adds(&b, sg.date);
	sbuf_add(&b, "/", 1);
	sbuf_adds(&b, sg.region);
	sbuf_add(&b, "/", 1);
	sbuf_adds(&b, sg.service);
	sbuf_adds(&b, "/" SCOPE_END ", SignedHeaders=");
	sbuf_add(&b, sg.signed_hdrs.p, sg.signed_hdrs.len);
	sbuf_adds(&b, ", Signature=");
	sbuf_adds(&b, out->signature);
	sbuf_add_nul(&b);

	offs[n++] = b.len;
	sbuf_adds(&b, "x-amz-date: ");
	sbuf_adds(&b, sg.amz_date);
	sbuf_add_nul(&b);

	if (!(r->flags & SB_SIGV4_NO_CONTENT_SHA256)) {
		offs[n++] = b.len;
		sbuf_adds(&b, "x-amz-content-sha256: ");
		sbuf_adds(&b, sg.payload);
		sbuf_add_nul(&b);
	}
	if (sg.token) {
		offs[n++] = b.len;
		sbuf_adds(&b, "x-amz-security-token: ");
		sbuf_adds(&b, sg.token);
		sbuf_add_nul(&b);
	}
	ret = b.err;
	if (ret)
		goto out;

	out->buf = b.p;
	out->buf_len = b.cap;
	b.p = NULL;
	for (i = 0; i < n; i++)
		out->lines[i] = out->buf + offs[i];
	out->lines[n] = NULL;
	out->n_lines = n;

out:
	sbuf_wipe(&b);
	signing_free(&sg);
	if (ret)
		sb_sigv4_out_free(out);
	return ret;
}
