// SPDX-License-Identifier: GPL-2.0
/*
 * HTTP(S) and S3 store backends over libcurl's multi interface: every
 * transfer is one easy handle on the loop's multi handle (loop_multi),
 * which keeps the connections alive between chunks, multiplexes HTTP/2
 * streams where the server offers HTTP/2, and lets one thread drive any
 * number of fetches.
 *
 * http(s)://host[:port]/prefix: the chunk ab/abcd... is GET
 * http(s)://host[:port]/prefix/ab/abcd... (any static server or caching
 * proxy serving a directory store).
 *
 * s3://bucket/prefix: the chunk is the object prefix/ab/abcd... of the
 * bucket, GET with an AWS Signature Version 4 (user/lib/sigv4.h) from
 * --s3-endpoint (default https://s3.REGION.amazonaws.com), path-style
 * (endpoint/bucket/key: the default with --s3-endpoint) or virtual-host
 * style (bucket.endpoint/key: the default for AWS).  Credentials come from
 * the environment or the shared credentials file (user/lib/awscred.h) and
 * are read again when a request is refused with ExpiredToken.
 *
 * Lifetime: a struct http_store lives from store_http_open() to the
 * backend's close(); a fetch's easy handle and header list from start()
 * to its completion or cancel().  All of it runs on the loop thread.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "awscred.h"
#include "sigv4.h"
#include "snapblkd.h"
#include "util.h"

struct http_store {
	char base[1200];	/* scheme://host[:port][/path prefix], no '/' at end */
	bool s3;
	/* S3 only */
	char host[600];		/* Host header value */
	char path_prefix[2400];	/* "/bucket/prefix/" or "/prefix/", encoded */
	struct sb_aws_cred cred;
	char region[64];
	unsigned int reloads;	/* credential reloads after ExpiredToken */
};

/* Body bytes into the fetch's buffer; more than a chunk is an error. */
static size_t on_data(char *p, size_t size, size_t n, void *arg)
{
	struct fetch *f = arg;
	size_t len = size * n;

	if (f->got + len > f->req.chunk_size) {
		f->got = f->req.chunk_size + 1;	/* marks "too long" */
		return 0;
	}
	memcpy(f->buf + f->got, p, len);
	f->got += len;
	return len;
}

static void fail_now(struct fetch *f, enum fetch_result r, long status,
		     const char *what)
{
	f->result = r;
	f->status = status;
	snprintf(f->detail, sizeof(f->detail), "%s", what);
	fetch_done(f);
}

static int s3_headers(struct http_store *hs, struct fetch *f,
		      const char *path)
{
	struct sb_sigv4_req r = {
		.method = "GET",
		.host = hs->host,
		.path = path,
		.query = "",
		.payload_sha256_hex = SB_SIGV4_EMPTY_SHA256,
		.region = hs->region,
		.service = "s3",
		.now = time(NULL),
	};
	struct sb_sigv4_out out;
	struct curl_slist *l = NULL, *n;
	size_t i;
	int ret;

	ret = sb_sigv4_sign(&r, &hs->cred, &out);
	if (ret)
		return ret;
	for (i = 0; i < out.n_lines; i++) {
		n = curl_slist_append(l, out.lines[i]);
		if (!n) {
			curl_slist_free_all(l);
			sb_sigv4_out_free(&out);
			return -ENOMEM;
		}
		l = n;
	}
	sb_sigv4_out_free(&out);
	f->headers = l;
	return 0;
}

static void http_start(struct backend *be, struct fetch *f)
{
	struct http_store *hs = be->priv;
	char url[4096], path[2800];
	int64_t left = f->deadline_ms - now_ms();
	CURL *e;

	if (left < 1)
		left = 1;
	f->got = 0;
	f->headers = NULL;
	if (hs->s3) {
		snprintf(path, sizeof(path), "%s%s", hs->path_prefix, f->name);
		snprintf(url, sizeof(url), "%s%s", hs->base, path);
	} else {
		snprintf(url, sizeof(url), "%s/%s", hs->base, f->name);
	}
	e = curl_easy_init();
	if (!e) {
		fail_now(f, FR_LOCAL, -ENOMEM, "out of memory");
		return;
	}
	if (hs->s3) {
		int ret = s3_headers(hs, f, path);

		if (ret) {
			curl_easy_cleanup(e);
			fail_now(f, FR_LOCAL, ret, "signing the request");
			return;
		}
		curl_easy_setopt(e, CURLOPT_HTTPHEADER, f->headers);
	}
	curl_easy_setopt(e, CURLOPT_URL, url);
	curl_easy_setopt(e, CURLOPT_PRIVATE, f);
	curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_data);
	curl_easy_setopt(e, CURLOPT_WRITEDATA, f);
	curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, (long)left);
	curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS,
			 (long)bopts.connect_timeout_ms);
	curl_easy_setopt(e, CURLOPT_HTTP_VERSION, CURL_HTTP_VERSION_2TLS);
	/* Wait for a connection that can multiplex rather than open more. */
	curl_easy_setopt(e, CURLOPT_PIPEWAIT, 1L);
	curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 0L);
	curl_easy_setopt(e, CURLOPT_USERAGENT,
			 "snapblkd/" SNAPBLK_TOOLS_VERSION);
	if (bopts.ca_file)
		curl_easy_setopt(e, CURLOPT_CAINFO, bopts.ca_file);
	f->easy = e;
	f->busy = true;
	if (curl_multi_add_handle(loop_multi, e) != CURLM_OK) {
		f->easy = NULL;
		f->busy = false;
		curl_easy_cleanup(e);
		curl_slist_free_all(f->headers);
		f->headers = NULL;
		fail_now(f, FR_LOCAL, -ENOMEM, "adding the transfer");
	}
}

static void release(struct fetch *f)
{
	curl_multi_remove_handle(loop_multi, f->easy);
	curl_easy_cleanup(f->easy);
	curl_slist_free_all(f->headers);
	f->easy = NULL;
	f->headers = NULL;
	f->busy = false;
}

static void http_cancel(struct backend *be, struct fetch *f)
{
	(void)be;
	if (f->easy)
		release(f);
}

/* The <Code> of an S3 error body in the fetch's buffer, or "". */
static void s3_code(const struct fetch *f, char *code, size_t len)
{
	const char *b = (const char *)f->buf, *s, *e;
	size_t n = f->got <= f->req.chunk_size ? f->got : 0;

	code[0] = '\0';
	s = memmem(b, n, "<Code>", 6);
	if (!s)
		return;
	s += 6;
	e = memmem(s, n - (s - b), "</Code>", 7);
	if (!e || (size_t)(e - s) >= len)
		return;
	memcpy(code, s, e - s);
	code[e - s] = '\0';
}

static void classify(struct backend *be, struct fetch *f, CURLcode rc)
{
	struct http_store *hs = be->priv;
	char code[64] = "", msg[256];
	long status = 0;

	curl_easy_getinfo(f->easy, CURLINFO_RESPONSE_CODE, &status);
	f->status = status;
	if (rc == CURLE_WRITE_ERROR && f->got > f->req.chunk_size) {
		f->result = FR_BAD;
		snprintf(f->detail, sizeof(f->detail),
			 "HTTP %ld: more than the %u bytes of a chunk", status,
			 f->req.chunk_size);
		return;
	}
	if (rc != CURLE_OK) {
		f->status = -(long)rc;
		if (rc == CURLE_PEER_FAILED_VERIFICATION ||
		    rc == CURLE_SSL_CACERT_BADFILE) {
			f->result = FR_DENIED;
			snprintf(f->detail, sizeof(f->detail),
				 "%s (is the server's certificate signed by "
				 "a CA in --ca-file?)", curl_easy_strerror(rc));
		} else if (rc == CURLE_UNSUPPORTED_PROTOCOL ||
			   rc == CURLE_URL_MALFORMAT) {
			f->result = FR_DENIED;
			snprintf(f->detail, sizeof(f->detail), "%s",
				 curl_easy_strerror(rc));
		} else {
			f->result = FR_TRANSIENT;
			snprintf(f->detail, sizeof(f->detail), "%s",
				 curl_easy_strerror(rc));
		}
		return;
	}
	if (hs->s3 && status >= 300)
		s3_code(f, code, sizeof(code));
	if (status == 200 || status == 206) {
		if (f->got == f->req.chunk_size) {
			f->result = FR_OK;
			return;
		}
		f->result = FR_BAD;
		snprintf(f->detail, sizeof(f->detail),
			 "HTTP %ld: %zu bytes, expected %u", status, f->got,
			 f->req.chunk_size);
		return;
	}
	if (status == 403 && !strcmp(code, "ExpiredToken") &&
	    hs->reloads < 3) {
		/* New credentials may be there: read them and try again. */
		hs->reloads++;
		f->result = FR_TRANSIENT;
		if (sb_aws_cred_reload(&hs->cred, msg, sizeof(msg)))
			snprintf(f->detail, sizeof(f->detail),
				 "HTTP 403 ExpiredToken; reloading the "
				 "credentials failed: %.90s", msg);
		else
			snprintf(f->detail, sizeof(f->detail),
				 "HTTP 403 ExpiredToken: credentials "
				 "reloaded");
		return;
	}
	if (status == 404 && (!hs->s3 || !code[0] ||
			      !strcmp(code, "NoSuchKey"))) {
		f->result = FR_MISSING;
		snprintf(f->detail, sizeof(f->detail), "HTTP 404%s%s",
			 code[0] ? " " : "", code);
		return;
	}
	if (status == 429 || status >= 500) {
		f->result = FR_TRANSIENT;
		snprintf(f->detail, sizeof(f->detail), "HTTP %ld%s%s", status,
			 code[0] ? " " : "", code);
		return;
	}
	f->result = FR_DENIED;
	if (!strcmp(code, "NoSuchBucket"))
		snprintf(f->detail, sizeof(f->detail),
			 "HTTP %ld NoSuchBucket (check the bucket in the "
			 "store URL)", status);
	else if (!strcmp(code, "InvalidAccessKeyId") ||
		 !strcmp(code, "SignatureDoesNotMatch") ||
		 !strcmp(code, "ExpiredToken"))
		snprintf(f->detail, sizeof(f->detail),
			 "HTTP %ld %s (check AWS_ACCESS_KEY_ID and "
			 "AWS_SECRET_ACCESS_KEY or the credentials file, "
			 "profile %s)", status, code,
			 hs->cred.profile ? hs->cred.profile : "-");
	else if (status == 401 || status == 403)
		snprintf(f->detail, sizeof(f->detail),
			 "HTTP %ld%s%s (access refused: check credentials "
			 "and the server's permissions)", status,
			 code[0] ? " " : "", code);
	else
		snprintf(f->detail, sizeof(f->detail), "HTTP %ld%s%s", status,
			 code[0] ? " " : "", code);
}

/* "URL: why", as logged. */
static void prefix_url(struct fetch *f, const char *base)
{
	char why[sizeof(f->detail)];

	snprintf(why, sizeof(why), "%s", f->detail);
	snprintf(f->detail, sizeof(f->detail), "%.1200s/%.70s: %.600s", base,
		 f->name, why);
}

void store_http_complete(void)
{
	struct fetch *f;
	struct backend *be;
	CURLMsg *m;
	int left;

	while ((m = curl_multi_info_read(loop_multi, &left))) {
		if (m->msg != CURLMSG_DONE)
			continue;
		curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE,
				  (char **)&f);
		be = f->be;
		classify(be, f, m->data.result);
		prefix_url(f, ((struct http_store *)be->priv)->base);
		release(f);
		fetch_done(f);
	}
}

static void http_close(struct backend *be)
{
	struct http_store *hs = be->priv;

	if (hs->s3)
		sb_aws_cred_free(&hs->cred);
	free(hs);
}

static const struct backend_ops http_ops = {
	.kind = "http",
	.start = http_start,
	.cancel = http_cancel,
	.close = http_close,
};

static const struct backend_ops s3_ops = {
	.kind = "s3",
	.start = http_start,
	.cancel = http_cancel,
	.close = http_close,
};

int store_http_open(const char *url, struct backend *be, char *msg,
		    size_t msglen)
{
	struct http_store *hs = calloc(1, sizeof(*hs));
	size_t n;

	if (!hs) {
		snprintf(msg, msglen, "out of memory");
		return -ENOMEM;
	}
	n = snprintf(hs->base, sizeof(hs->base), "%s", url);
	if (n >= sizeof(hs->base)) {
		snprintf(msg, msglen, "store URL too long");
		free(hs);
		return -ENAMETOOLONG;
	}
	while (n && hs->base[n - 1] == '/')
		hs->base[--n] = '\0';
	be->ops = &http_ops;
	be->priv = hs;
	return 0;
}

/* "scheme://host[:port]" of an endpoint URL into base, host into host. */
static int split_endpoint(const char *ep, char *base, size_t blen,
			  char *host, size_t hlen)
{
	const char *h = strstr(ep, "://");
	size_t n;

	if (!h || (strncmp(ep, "http://", 7) && strncmp(ep, "https://", 8)))
		return -EINVAL;
	h += 3;
	n = strcspn(h, "/");
	if (!n || n >= hlen)
		return -EINVAL;
	memcpy(host, h, n);
	host[n] = '\0';
	if ((size_t)snprintf(base, blen, "%.*s", (int)(h - ep + n), ep) >=
	    blen)
		return -ENAMETOOLONG;
	return 0;
}

int store_s3_open(const char *url, struct backend *be, char *msg,
		  size_t msglen)
{
	char bucket[256], prefix[512], eprefix[3 * 512 + 1], ep[512];
	char ebase[512], ehost[256];
	const char *b = url + 5, *slash;
	struct http_store *hs;
	bool path_style;
	size_t n;
	int ret;

	slash = strchr(b, '/');
	n = slash ? (size_t)(slash - b) : strlen(b);
	if (!n || n >= sizeof(bucket)) {
		snprintf(msg, msglen, "%s: give s3://BUCKET/PREFIX", url);
		return -EINVAL;
	}
	memcpy(bucket, b, n);
	bucket[n] = '\0';
	snprintf(prefix, sizeof(prefix), "%s", slash ? slash + 1 : "");
	n = strlen(prefix);
	while (n && prefix[n - 1] == '/')
		prefix[--n] = '\0';

	hs = calloc(1, sizeof(*hs));
	if (!hs) {
		snprintf(msg, msglen, "out of memory");
		return -ENOMEM;
	}
	hs->s3 = true;
	ret = sb_aws_cred_load(&hs->cred, bopts.aws_profile, ep, sizeof(ep));
	if (ret) {
		snprintf(msg, msglen, "store %s: loading AWS credentials: %s",
			 url, ep);
		goto fail;
	}
	snprintf(hs->region, sizeof(hs->region), "%s",
		 bopts.s3_region ? bopts.s3_region : hs->cred.region);
	if (bopts.s3_endpoint)
		snprintf(ep, sizeof(ep), "%s", bopts.s3_endpoint);
	else
		snprintf(ep, sizeof(ep), "https://s3.%s.amazonaws.com",
			 hs->region);
	ret = split_endpoint(ep, ebase, sizeof(ebase), ehost, sizeof(ehost));
	if (ret) {
		snprintf(msg, msglen, "--s3-endpoint %s: give "
			 "http(s)://HOST[:PORT]", ep);
		goto fail;
	}
	path_style = bopts.s3_style ? !strcmp(bopts.s3_style, "path") :
		     !!bopts.s3_endpoint;
	ret = sb_sigv4_uri_encode(eprefix, sizeof(eprefix), prefix,
				  strlen(prefix), true);
	if (ret) {
		snprintf(msg, msglen, "%s: prefix too long", url);
		goto fail;
	}
	if (path_style) {
		snprintf(hs->host, sizeof(hs->host), "%s", ehost);
		snprintf(hs->base, sizeof(hs->base), "%s", ebase);
		snprintf(hs->path_prefix, sizeof(hs->path_prefix), "/%s/%s%s",
			 bucket, eprefix, *eprefix ? "/" : "");
	} else {
		const char *scheme_end = strstr(ebase, "://") + 3;

		snprintf(hs->host, sizeof(hs->host), "%s.%s", bucket, ehost);
		snprintf(hs->base, sizeof(hs->base), "%.*s%s.%s",
			 (int)(scheme_end - ebase), ebase, bucket, scheme_end);
		snprintf(hs->path_prefix, sizeof(hs->path_prefix), "/%s%s",
			 eprefix, *eprefix ? "/" : "");
	}
	be->ops = &s3_ops;
	be->priv = hs;
	return 0;
fail:
	sb_aws_cred_free(&hs->cred);
	free(hs);
	return ret;
}
