// SPDX-License-Identifier: GPL-2.0
/*
 * SigV4 signing against AWS's published vectors, and the checks that keep
 * a malformed request from being signed at all.
 *
 * Sources of the vectors (data only):
 *  [SUITE] AWS Signature Version 4 Test Suite, formerly
 *          https://docs.aws.amazon.com/general/latest/gr/signature-v4-test-suite.html
 *          (aws-sig-v4-test-suite.zip), as kept in github.com/bazelbuild/bazel
 *          third_party/aws-sig-v4-test-suite/<name>/<name>.{req,creq,sts,authz}
 *          and in github.com/aws/aws-sdk-js-v3
 *          packages/signature-v4/src/suite.fixture.ts. Credentials
 *          AKIDEXAMPLE / wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY, region
 *          us-east-1, service "service", 20150830T123600Z. The suite signs
 *          no x-amz-content-sha256 header, hence SB_SIGV4_NO_CONTENT_SHA256.
 *  [S3]    "Signature Calculations for the Authorization Header:
 *          Transferring Payload in a Single Chunk (AWS Signature Version 4)",
 *          Amazon S3 API Reference,
 *          https://docs.aws.amazon.com/AmazonS3/latest/API/sig-v4-header-based-auth.html,
 *          section "Example: GET Object". Credentials AKIAIOSFODNN7EXAMPLE /
 *          wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY (the page's stated
 *          example keys; note '/' where the suite has '+').
 *  [IAM]   AWS General Reference, "Signature Version 4 signing process",
 *          tasks 1-3 (sigv4-create-canonical-request.html,
 *          sigv4-create-string-to-sign.html, sigv4-calculate-signature.html,
 *          https://docs.aws.amazon.com/general/latest/gr/), the IAM
 *          ListUsers example: its canonical request hash
 *          f536975d..., signing key c4afb1cc... and signature 5d672d79...
 * Each was recomputed independently with Python's hmac/hashlib before use.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "kselftest_harness.h"
#include "sigv4.h"

#define SUITE_TIME	1440938160	/* 2015-08-30T12:36:00Z */
#define S3_TIME		1369353600	/* 2013-05-24T00:00:00Z */
#define SUITE_AUTH_PREFIX \
	"Authorization: AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/" \
	"us-east-1/service/aws4_request, "

static struct sb_aws_cred suite_cred(void)
{
	struct sb_aws_cred c = {
		.access_key_id = "AKIDEXAMPLE",
		.secret_access_key = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
		.region = "us-east-1",
	};

	return c;
}

static struct sb_sigv4_req suite_req(const char *method, const char *path)
{
	struct sb_sigv4_req r = {
		.method = method,
		.host = "example.amazonaws.com",
		.path = path,
		.region = "us-east-1",
		.service = "service",
		.now = SUITE_TIME,
		.flags = SB_SIGV4_NO_CONTENT_SHA256,
	};

	return r;
}

/* Sign r with c and compare the Authorization line with want. */
static void expect_auth(struct __test_metadata *_metadata,
			const struct sb_sigv4_req *r,
			const struct sb_aws_cred *c, const char *want)
{
	struct sb_sigv4_out out;

	ASSERT_EQ(0, sb_sigv4_sign(r, c, &out));
	EXPECT_STREQ(want, out.lines[0]);
	sb_sigv4_out_free(&out);
}

/* [SUITE] get-vanilla: GET / with only Host and X-Amz-Date. */
TEST(suite_get_vanilla)
{
	struct sb_aws_cred c = suite_cred();
	struct sb_sigv4_req r = suite_req("GET", "/");
	struct sb_sigv4_out out;
	char *creq;

	ASSERT_EQ(0, sb_sigv4_canonical_request(&r, &c, &creq));
	EXPECT_STREQ("GET\n/\n\n"
		     "host:example.amazonaws.com\n"
		     "x-amz-date:20150830T123600Z\n\n"
		     "host;x-amz-date\n"
		     SB_SIGV4_EMPTY_SHA256, creq);
	free(creq);

	ASSERT_EQ(0, sb_sigv4_sign(&r, &c, &out));
	ASSERT_EQ(2, out.n_lines);
	EXPECT_STREQ(SUITE_AUTH_PREFIX "SignedHeaders=host;x-amz-date, "
		     "Signature=5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31",
		     out.lines[0]);
	EXPECT_STREQ("x-amz-date: 20150830T123600Z", out.lines[1]);
	EXPECT_EQ(NULL, out.lines[2]);
	EXPECT_STREQ("20150830T123600Z", out.amz_date);
	sb_sigv4_out_free(&out);
}

/* [SUITE] get-vanilla-query-order-key-case: the query is signed sorted. */
TEST(suite_get_vanilla_query_order_key_case)
{
	struct sb_aws_cred c = suite_cred();
	struct sb_sigv4_req r = suite_req("GET", "/");

	r.query = "Param2=value2&Param1=value1";
	expect_auth(_metadata, &r, &c,
		    SUITE_AUTH_PREFIX "SignedHeaders=host;x-amz-date, "
		    "Signature=b97d918cfa904a5beff61c982a1b6f458b799221646efd99d3219ec94cdf2500");
}

/* [SUITE] get-vanilla-query-unreserved: unreserved characters stay. */
TEST(suite_get_vanilla_query_unreserved)
{
	struct sb_aws_cred c = suite_cred();
	struct sb_sigv4_req r = suite_req("GET", "/");

	r.query = "-._~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz="
		  "-._~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
	expect_auth(_metadata, &r, &c,
		    SUITE_AUTH_PREFIX "SignedHeaders=host;x-amz-date, "
		    "Signature=9c3e54bfcdf0b19771a7f523ee5669cdf59bc7cc0884027167c21bb143a40197");
}

/*
 * [SUITE] get-header-value-trim: "My-Header1: value1" and
 * "My-Header2: \"a   b   c\"" sign as my-header1:value1 and
 * my-header2:"a b c" (names lowercased, blanks folded, even in quotes).
 */
TEST(suite_get_header_value_trim)
{
	struct sb_aws_cred c = suite_cred();
	struct sb_sigv4_req r = suite_req("GET", "/");
	struct sb_sigv4_hdr h[] = {
		{ "My-Header1", " value1" },
		{ "My-Header2", "\"a   b   c\"" },
	};
	char *creq;

	r.extra = h;
	r.n_extra = 2;
	ASSERT_EQ(0, sb_sigv4_canonical_request(&r, &c, &creq));
	EXPECT_STREQ("GET\n/\n\n"
		     "host:example.amazonaws.com\n"
		     "my-header1:value1\n"
		     "my-header2:\"a b c\"\n"
		     "x-amz-date:20150830T123600Z\n\n"
		     "host;my-header1;my-header2;x-amz-date\n"
		     SB_SIGV4_EMPTY_SHA256, creq);
	free(creq);
	expect_auth(_metadata, &r, &c,
		    SUITE_AUTH_PREFIX
		    "SignedHeaders=host;my-header1;my-header2;x-amz-date, "
		    "Signature=acc3ed3afb60bb290fc8d2dd0098b9911fcaa05412b367055dee359757a9c736");
}

/*
 * [SUITE] post-x-www-form-urlencoded: body "Param1=value1", whose hash
 * ends the canonical request (.creq and .sts files of the suite).
 */
TEST(suite_post_x_www_form_urlencoded)
{
	static const char body[] = "Param1=value1";
	struct sb_aws_cred c = suite_cred();
	struct sb_sigv4_req r = suite_req("POST", "/");
	struct sb_sigv4_hdr h[] = {
		{ "Content-Type", "application/x-www-form-urlencoded" },
	};
	char hash[65], *creq;

	ASSERT_EQ(0, sb_sigv4_sha256_hex(body, strlen(body), hash));
	EXPECT_STREQ("9095672bbd1f56dfc5b65f3e153adc8731a4a654192329106275f4c7b24d0b6e",
		     hash);
	r.payload_sha256_hex = hash;
	r.extra = h;
	r.n_extra = 1;
	ASSERT_EQ(0, sb_sigv4_canonical_request(&r, &c, &creq));
	EXPECT_STREQ("POST\n/\n\n"
		     "content-type:application/x-www-form-urlencoded\n"
		     "host:example.amazonaws.com\n"
		     "x-amz-date:20150830T123600Z\n\n"
		     "content-type;host;x-amz-date\n"
		     "9095672bbd1f56dfc5b65f3e153adc8731a4a654192329106275f4c7b24d0b6e",
		     creq);
	free(creq);
	expect_auth(_metadata, &r, &c,
		    SUITE_AUTH_PREFIX
		    "SignedHeaders=content-type;host;x-amz-date, "
		    "Signature=ff11897932ad3f4e8b18135d722051e5ac45fc38421b1da7b9d196a0fe09473a");
}

/* [SUITE] post-sts-token/post-sts-header-before: the token is signed. */
TEST(suite_post_sts_header_before)
{
	struct sb_aws_cred c = suite_cred();
	struct sb_sigv4_req r = suite_req("POST", "/");
	struct sb_sigv4_out out;

	c.session_token = "AQoDYXdzEPT//////////wEXAMPLEtc764bNrC9SAPBSM22wDOk4x4HIZ8j4FZTwdQWLWsKWHGBuFqwAeMicRXmxfpSPfIeoIYRqTflfKD8YUuwthAx7mSEI/qkPpKPi/kMcGdQrmGdeehM4IC1NtBmUpp2wUE8phUZampKsburEDy0KPkyQDYwT7WZ0wq5VSXDvp75YU9HFvlRd8Tx6q6fE8YQcHNVXAkiY9q6d+xo0rKwT38xVqr7ZD0u0iPPkUL64lIZbqBAz+scqKmlzm8FDrypNC9Yjc8fPOLn9FX9KSYvKTr4rvx3iSIlTJabIQwj2ICCR/oLxBA==";
	ASSERT_EQ(0, sb_sigv4_sign(&r, &c, &out));
	ASSERT_EQ(3, out.n_lines);
	EXPECT_STREQ(SUITE_AUTH_PREFIX
		     "SignedHeaders=host;x-amz-date;x-amz-security-token, "
		     "Signature=85d96828115b5dc0cfc3bd16ad9e210dd772bbebba041836c64533a82be05ead",
		     out.lines[0]);
	EXPECT_EQ(0, strncmp(out.lines[2], "x-amz-security-token: AQoDYXdzEPT//", 35));
	EXPECT_STREQ(c.session_token,
		     out.lines[2] + strlen("x-amz-security-token: "));
	sb_sigv4_out_free(&out);
}

/* [SUITE] get-utf8: path "/\u1234", encoded here with the helper. */
TEST(suite_get_utf8_through_uri_encode)
{
	struct sb_aws_cred c = suite_cred();
	struct sb_sigv4_req r;
	char path[SB_SIGV4_URI_ENCODED_MAX(4)];

	ASSERT_EQ(0, sb_sigv4_uri_encode(path, sizeof(path), "/\xe1\x88\xb4",
					 4, true));
	EXPECT_STREQ("/%E1%88%B4", path);
	r = suite_req("GET", path);
	expect_auth(_metadata, &r, &c,
		    SUITE_AUTH_PREFIX "SignedHeaders=host;x-amz-date, "
		    "Signature=8318018e0b0f223aa2bbf98705b62bb787dc9c0e678f255a891fd03141be5d85");
}

/* [SUITE] get-unreserved: a path of unreserved characters is kept. */
TEST(suite_get_unreserved)
{
	static const char p[] =
		"/-._~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
	struct sb_aws_cred c = suite_cred();
	struct sb_sigv4_req r = suite_req("GET", p);
	char enc[SB_SIGV4_URI_ENCODED_MAX(sizeof(p))];

	ASSERT_EQ(0, sb_sigv4_uri_encode(enc, sizeof(enc), p, strlen(p),
					 true));
	EXPECT_STREQ(p, enc);
	expect_auth(_metadata, &r, &c,
		    SUITE_AUTH_PREFIX "SignedHeaders=host;x-amz-date, "
		    "Signature=07ef7494c76fa4850883e2b006601f940f8a34d404d0cfa977f52a65bbf5f24f");
}

/*
 * [S3] Example: GET Object, the first 10 bytes of test.txt with
 * "Range: bytes=0-9": canonical request, and the signature
 * f0e8bdb8... (the page writes the header with ',' and no space between
 * parts; both forms are accepted by S3, the signature is the same).
 */
TEST(s3_get_object_with_range)
{
	struct sb_aws_cred c = {
		.access_key_id = "AKIAIOSFODNN7EXAMPLE",
		.secret_access_key = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
		.region = "us-east-1",
	};
	struct sb_sigv4_hdr range = { "Range", "bytes=0-9" };
	struct sb_sigv4_req r = {
		.method = "GET",
		.host = "examplebucket.s3.amazonaws.com",
		.path = "/test.txt",
		.payload_sha256_hex = SB_SIGV4_EMPTY_SHA256,
		.now = S3_TIME,
		.extra = &range,
		.n_extra = 1,
	};
	struct sb_sigv4_out out;
	char *creq;

	ASSERT_EQ(0, sb_sigv4_canonical_request(&r, &c, &creq));
	EXPECT_STREQ("GET\n/test.txt\n\n"
		     "host:examplebucket.s3.amazonaws.com\n"
		     "range:bytes=0-9\n"
		     "x-amz-content-sha256:" SB_SIGV4_EMPTY_SHA256 "\n"
		     "x-amz-date:20130524T000000Z\n\n"
		     "host;range;x-amz-content-sha256;x-amz-date\n"
		     SB_SIGV4_EMPTY_SHA256, creq);
	free(creq);

	/* region and service default to the credentials' region and s3 */
	ASSERT_EQ(0, sb_sigv4_sign(&r, &c, &out));
	EXPECT_STREQ("f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41",
		     out.signature);
	ASSERT_EQ(3, out.n_lines);
	EXPECT_STREQ("Authorization: AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request, "
		     "SignedHeaders=host;range;x-amz-content-sha256;x-amz-date, "
		     "Signature=f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41",
		     out.lines[0]);
	EXPECT_STREQ("x-amz-date: 20130524T000000Z", out.lines[1]);
	EXPECT_STREQ("x-amz-content-sha256: " SB_SIGV4_EMPTY_SHA256,
		     out.lines[2]);
	sb_sigv4_out_free(&out);
}

/* [IAM] The ListUsers example: signing key and signature. */
TEST(iam_list_users_example)
{
	struct sb_aws_cred c = suite_cred();
	struct sb_sigv4_hdr ct = {
		"Content-Type", "application/x-www-form-urlencoded; charset=utf-8"
	};
	struct sb_sigv4_req r = {
		.method = "GET",
		.host = "iam.amazonaws.com",
		.path = "/",
		.query = "Action=ListUsers&Version=2010-05-08",
		.service = "iam",
		.now = SUITE_TIME,
		.extra = &ct,
		.n_extra = 1,
		.flags = SB_SIGV4_NO_CONTENT_SHA256,
	};
	unsigned char key[32];
	char hex[65], *creq;

	ASSERT_EQ(0, sb_sigv4_signing_key(c.secret_access_key, "20150830",
					  "us-east-1", "iam", key));
	for (int i = 0; i < 32; i++)
		sprintf(hex + 2 * i, "%02x", key[i]);
	EXPECT_STREQ("c4afb1cc5771d871763a393e44b703571b55cc28424d1a5e86da6ed3c154a4b9",
		     hex);

	ASSERT_EQ(0, sb_sigv4_canonical_request(&r, &c, &creq));
	ASSERT_EQ(0, sb_sigv4_sha256_hex(creq, strlen(creq), hex));
	EXPECT_STREQ("f536975d06c0309214f805bb90ccff089219ecd68b2577efef23edd43b7e1a59",
		     hex);
	free(creq);
	expect_auth(_metadata, &r, &c,
		    "Authorization: AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/iam/aws4_request, "
		    "SignedHeaders=content-type;host;x-amz-date, "
		    "Signature=5d672d79c15b13162d9279b0855cfba6789a8edb4c82c400e06b5924a6f2b5d7");
}

/*
 * What snapblkd sends to radosgw: a ranged GET with a session token and an
 * unsigned payload. Every produced header is also signed, in sorted order,
 * and sent in the documented order.
 */
TEST(s3_session_token_and_unsigned_payload_are_sent_and_signed)
{
	struct sb_aws_cred c = {
		.access_key_id = "AKID", .secret_access_key = "secret",
		.session_token = "tok+/=", .region = "default",
	};
	struct sb_sigv4_hdr range = { "range", "bytes=0-524287" };
	struct sb_sigv4_req r = {
		.method = "GET", .host = "127.0.0.1:7480",
		.path = "/chunks/ab/abcdef", .now = S3_TIME,
		.payload_sha256_hex = SB_SIGV4_UNSIGNED_PAYLOAD,
		.extra = &range, .n_extra = 1,
	};
	struct sb_sigv4_out out;
	char *creq;

	ASSERT_EQ(0, sb_sigv4_canonical_request(&r, &c, &creq));
	EXPECT_STREQ("GET\n/chunks/ab/abcdef\n\n"
		     "host:127.0.0.1:7480\n"
		     "range:bytes=0-524287\n"
		     "x-amz-content-sha256:UNSIGNED-PAYLOAD\n"
		     "x-amz-date:20130524T000000Z\n"
		     "x-amz-security-token:tok+/=\n\n"
		     "host;range;x-amz-content-sha256;x-amz-date;x-amz-security-token\n"
		     "UNSIGNED-PAYLOAD", creq);
	free(creq);
	ASSERT_EQ(0, sb_sigv4_sign(&r, &c, &out));
	ASSERT_EQ(4, out.n_lines);
	EXPECT_EQ(0, strncmp(out.lines[0],
			     "Authorization: AWS4-HMAC-SHA256 Credential=AKID/20130524/default/s3/aws4_request, "
			     "SignedHeaders=host;range;x-amz-content-sha256;x-amz-date;x-amz-security-token, Signature=",
			     strlen("Authorization: AWS4-HMAC-SHA256 Credential=AKID/20130524/default/s3/aws4_request, "
				    "SignedHeaders=host;range;x-amz-content-sha256;x-amz-date;x-amz-security-token, Signature=")));
	EXPECT_EQ(64, strlen(out.signature));
	EXPECT_STREQ("x-amz-date: 20130524T000000Z", out.lines[1]);
	EXPECT_STREQ("x-amz-content-sha256: UNSIGNED-PAYLOAD", out.lines[2]);
	EXPECT_STREQ("x-amz-security-token: tok+/=", out.lines[3]);
	EXPECT_EQ(NULL, out.lines[4]);
	sb_sigv4_out_free(&out);
}

/* A different secret, date or token gives a different signature. */
TEST(signature_depends_on_secret_date_and_token)
{
	struct sb_aws_cred c = suite_cred();
	struct sb_sigv4_req r = suite_req("GET", "/");
	struct sb_sigv4_out a, b;

	ASSERT_EQ(0, sb_sigv4_sign(&r, &c, &a));
	c.secret_access_key = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEZ";
	ASSERT_EQ(0, sb_sigv4_sign(&r, &c, &b));
	EXPECT_STRNE(a.signature, b.signature);
	sb_sigv4_out_free(&b);
	c = suite_cred();
	r.now += 86400;
	ASSERT_EQ(0, sb_sigv4_sign(&r, &c, &b));
	EXPECT_STRNE(a.signature, b.signature);
	EXPECT_STREQ("20150831T123600Z", b.amz_date);
	sb_sigv4_out_free(&b);
	r.now -= 86400;
	c.session_token = "x";
	ASSERT_EQ(0, sb_sigv4_sign(&r, &c, &b));
	EXPECT_STRNE(a.signature, b.signature);
	sb_sigv4_out_free(&b);
	sb_sigv4_out_free(&a);
}

/* Query parameters: sorted by name then value; a bare name gets '='. */
TEST(canonical_query_sorts_and_completes_parameters)
{
	struct sb_aws_cred c = suite_cred();
	struct sb_sigv4_req r = suite_req("GET", "/bucket");
	char *creq;

	r.query = "prefix=ab%2F&list-type=2&acl&a=2&a=1&A=3";
	ASSERT_EQ(0, sb_sigv4_canonical_request(&r, &c, &creq));
	EXPECT_EQ(0, strncmp(creq, "GET\n/bucket\nA=3&a=1&a=2&acl=&list-type=2&prefix=ab%2F\n",
			     strlen("GET\n/bucket\nA=3&a=1&a=2&acl=&list-type=2&prefix=ab%2F\n")));
	free(creq);
}

/* Requests that would be signed wrongly, or inject headers, are refused. */
TEST(malformed_requests_are_refused)
{
	struct sb_aws_cred c = suite_cred();
	struct sb_sigv4_req r;
	struct sb_sigv4_hdr h[SB_SIGV4_MAX_EXTRA + 1];
	struct sb_sigv4_out out;
	static const char *const bad_paths[] = {
		"", "bucket/key", "/a b", "/a%2f", "/a%2", "/a%", "/a+b",
		"/caf\xc3\xa9", "/a?b",
	};
	static const char *const bad_queries[] = {
		"a=b=c", "&a=1", "a=1&", "a b=1", "=1", "a=%zz", "p=a/b",
	};
	static const char *const bad_names[] = {
		"Host", "authorization", "X-Amz-Date", "x-amz-content-sha256",
		"X-Amz-Security-Token", "", "bad name", "bad:name",
	};
	size_t i;

	for (i = 0; i < sizeof(bad_paths) / sizeof(*bad_paths); i++) {
		r = suite_req("GET", bad_paths[i]);
		EXPECT_EQ(-EINVAL, sb_sigv4_sign(&r, &c, &out)) {
			TH_LOG("path \"%s\" was signed", bad_paths[i]);
		}
		EXPECT_EQ(NULL, out.buf);
	}
	for (i = 0; i < sizeof(bad_queries) / sizeof(*bad_queries); i++) {
		r = suite_req("GET", "/");
		r.query = bad_queries[i];
		EXPECT_EQ(-EINVAL, sb_sigv4_sign(&r, &c, &out)) {
			TH_LOG("query \"%s\" was signed", bad_queries[i]);
		}
	}
	for (i = 0; i < sizeof(bad_names) / sizeof(*bad_names); i++) {
		r = suite_req("GET", "/");
		h[0].name = bad_names[i];
		h[0].value = "v";
		r.extra = h;
		r.n_extra = 1;
		EXPECT_EQ(-EINVAL, sb_sigv4_sign(&r, &c, &out)) {
			TH_LOG("header name \"%s\" was accepted", bad_names[i]);
		}
	}

	/* header injection through a value, the host or the token */
	r = suite_req("GET", "/");
	h[0].name = "range";
	h[0].value = "bytes=0-1\r\nx-evil: 1";
	r.extra = h;
	r.n_extra = 1;
	EXPECT_EQ(-EINVAL, sb_sigv4_sign(&r, &c, &out));
	r.n_extra = 0;
	r.host = "example.com\r\nx-evil: 1";
	EXPECT_EQ(-EINVAL, sb_sigv4_sign(&r, &c, &out));
	r = suite_req("GET", "/");
	c.session_token = "tok\nx-evil: 1";
	EXPECT_EQ(-EINVAL, sb_sigv4_sign(&r, &c, &out));
	c = suite_cred();

	/* the same header twice, in different case */
	h[0].name = "Range";
	h[1].name = "range";
	h[1].value = "v";
	r.extra = h;
	r.n_extra = 2;
	h[0].value = "v";
	EXPECT_EQ(-EINVAL, sb_sigv4_sign(&r, &c, &out));

	/* too many extra headers */
	for (i = 0; i <= SB_SIGV4_MAX_EXTRA; i++) {
		h[i].name = "x-h";
		h[i].value = "v";
	}
	r.n_extra = SB_SIGV4_MAX_EXTRA + 1;
	EXPECT_EQ(-E2BIG, sb_sigv4_sign(&r, &c, &out));

	/* payload hash, method, scope and key id */
	r = suite_req("GET", "/");
	r.payload_sha256_hex = "E3B0C44298FC1C149AFBF4C8996FB92427AE41E4649B934CA495991B7852B855";
	EXPECT_EQ(-EINVAL, sb_sigv4_sign(&r, &c, &out));
	r.payload_sha256_hex = "e3b0";
	EXPECT_EQ(-EINVAL, sb_sigv4_sign(&r, &c, &out));
	r = suite_req("get", "/");
	EXPECT_EQ(-EINVAL, sb_sigv4_sign(&r, &c, &out));
	r = suite_req("GET", "/");
	r.region = "us/east";
	EXPECT_EQ(-EINVAL, sb_sigv4_sign(&r, &c, &out));
	r.region = "";
	EXPECT_EQ(-EINVAL, sb_sigv4_sign(&r, &c, &out));
	r = suite_req("GET", "/");
	c.access_key_id = "AKID/x";
	EXPECT_EQ(-EINVAL, sb_sigv4_sign(&r, &c, &out));
	c.access_key_id = NULL;
	EXPECT_EQ(-EINVAL, sb_sigv4_sign(&r, &c, &out));
	c = suite_cred();
	c.secret_access_key = "";
	EXPECT_EQ(-EINVAL, sb_sigv4_sign(&r, &c, &out));
	EXPECT_EQ(NULL, out.lines[0]);
}

/* AWS URI encoding of a segment: what S3 object keys need. */
TEST(uri_encode_follows_aws_rules)
{
	char buf[64];

	ASSERT_EQ(0, sb_sigv4_uri_encode(buf, sizeof(buf), "a b+c/d~e*", 10,
					 false));
	EXPECT_STREQ("a%20b%2Bc%2Fd~e%2A", buf);
	ASSERT_EQ(0, sb_sigv4_uri_encode(buf, sizeof(buf), "a b+c/d~e*", 10,
					 true));
	EXPECT_STREQ("a%20b%2Bc/d~e%2A", buf);
	ASSERT_EQ(0, sb_sigv4_uri_encode(buf, sizeof(buf), "\x00\xff", 2,
					 false));
	EXPECT_STREQ("%00%FF", buf);
	ASSERT_EQ(0, sb_sigv4_uri_encode(buf, sizeof(buf), "", 0, false));
	EXPECT_STREQ("", buf);

	/* exactly enough room, and one byte short */
	ASSERT_EQ(0, sb_sigv4_uri_encode(buf, 10, "a b c", 5, false));
	EXPECT_STREQ("a%20b%20c", buf);
	EXPECT_EQ(-ENOSPC, sb_sigv4_uri_encode(buf, 9, "a b c", 5, false));
	EXPECT_STREQ("", buf);
	EXPECT_EQ(-ENOSPC, sb_sigv4_uri_encode(buf, 0, "a", 1, false));
}

TEST_HARNESS_MAIN
