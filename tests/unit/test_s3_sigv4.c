/* test_s3_sigv4.c — the SigV4 signer against AWS's published examples:
 * the "get-vanilla" case of the SigV4 test suite and the four worked S3
 * examples of the S3 API reference ("Signature Calculations for the
 * Authorization Header", examplebucket, 2013-05-24), plus key and query
 * encoding. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "s3_sigv4.h"

#define S3_AK "AKIAIOSFODNN7EXAMPLE"
#define S3_SK "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"

static void check(const s3_sigv4_req *r, const char *want_creq, const char *want_sts,
                  const char *want_sig)
{
    char *sh = NULL;
    char *creq = s3_sigv4_canonical_request(r, &sh);
    assert_non_null(creq);
    if (want_creq)
        assert_string_equal(creq, want_creq);
    char *sts = s3_sigv4_string_to_sign(r, creq);
    assert_non_null(sts);
    if (want_sts)
        assert_string_equal(sts, want_sts);
    char sig[65];
    s3_sigv4_signature(r, sts, sig);
    assert_string_equal(sig, want_sig);
    char *auth = s3_sigv4_authorization(r);
    assert_non_null(auth);
    assert_non_null(strstr(auth, want_sig));
    assert_non_null(strstr(auth, sh));
    free(auth);
    free(sts);
    free(creq);
    free(sh);
}

/* aws-sig-v4-test-suite/get-vanilla */
static void test_get_vanilla(void **state)
{
    (void)state;
    s3_kv h[] = { { "Host", "example.amazonaws.com" }, { "X-Amz-Date", "20150830T123600Z" } };
    s3_sigv4_req r = {
        .method = "GET", .path = "/", .query = "", .headers = h, .nheaders = 2,
        .payload_hash = S3_EMPTY_SHA256, .amz_date = "20150830T123600Z",
        .region = "us-east-1", .service = "service",
        .access_key = "AKIDEXAMPLE", .secret_key = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
    };
    check(&r,
          "GET\n/\n\nhost:example.amazonaws.com\nx-amz-date:20150830T123600Z\n\n"
          "host;x-amz-date\n" S3_EMPTY_SHA256,
          "AWS4-HMAC-SHA256\n20150830T123600Z\n20150830/us-east-1/service/aws4_request\n"
          "bb579772317eb040ac9ed261061d46c1f17a8133879d6129b6e1c25292927e63",
          "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31");
    char *auth = s3_sigv4_authorization(&r);
    assert_string_equal(auth,
                        "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/"
                        "aws4_request, SignedHeaders=host;x-amz-date, "
                        "Signature=5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31");
    free(auth);
}

/* S3 example: GET Object with a Range header. */
static void test_s3_get_object(void **state)
{
    (void)state;
    s3_kv h[] = {
        { "Host", "examplebucket.s3.amazonaws.com" },
        { "Range", "bytes=0-9" },
        { "x-amz-content-sha256", S3_EMPTY_SHA256 },
        { "x-amz-date", "20130524T000000Z" },
    };
    s3_sigv4_req r = {
        .method = "GET", .path = "/test.txt", .query = "", .headers = h, .nheaders = 4,
        .payload_hash = S3_EMPTY_SHA256, .amz_date = "20130524T000000Z",
        .region = "us-east-1", .service = "s3", .access_key = S3_AK, .secret_key = S3_SK,
    };
    check(&r,
          "GET\n/test.txt\n\nhost:examplebucket.s3.amazonaws.com\nrange:bytes=0-9\n"
          "x-amz-content-sha256:" S3_EMPTY_SHA256 "\nx-amz-date:20130524T000000Z\n\n"
          "host;range;x-amz-content-sha256;x-amz-date\n" S3_EMPTY_SHA256,
          "AWS4-HMAC-SHA256\n20130524T000000Z\n20130524/us-east-1/s3/aws4_request\n"
          "7344ae5b7ee6c3e7e6b0fe0640412a37625d1fbfff95c48bbb2dc43964946972",
          "f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41");
}

/* S3 example: PUT Object "test$file.text" with body "Welcome to Amazon S3." */
static void test_s3_put_object(void **state)
{
    (void)state;
    const char *body_hash = "44ce7dd67c959e0d3524ffac1771dfbba87d2b6b4b4e99e42034a8b803f8b072";
    s3_kv h[] = {
        { "Date", "Fri, 24 May 2013 00:00:00 GMT" },
        { "Host", "examplebucket.s3.amazonaws.com" },
        { "x-amz-date", "20130524T000000Z" },
        { "x-amz-storage-class", "REDUCED_REDUNDANCY" },
        { "x-amz-content-sha256", body_hash },
    };
    char *path = s3_uri_encode("/test$file.text", 1);
    assert_string_equal(path, "/test%24file.text");
    s3_sigv4_req r = {
        .method = "PUT", .path = path, .query = "", .headers = h, .nheaders = 5,
        .payload_hash = body_hash, .amz_date = "20130524T000000Z",
        .region = "us-east-1", .service = "s3", .access_key = S3_AK, .secret_key = S3_SK,
    };
    check(&r,
          "PUT\n/test%24file.text\n\ndate:Fri, 24 May 2013 00:00:00 GMT\n"
          "host:examplebucket.s3.amazonaws.com\nx-amz-content-sha256:"
          "44ce7dd67c959e0d3524ffac1771dfbba87d2b6b4b4e99e42034a8b803f8b072\n"
          "x-amz-date:20130524T000000Z\nx-amz-storage-class:REDUCED_REDUNDANCY\n\n"
          "date;host;x-amz-content-sha256;x-amz-date;x-amz-storage-class\n"
          "44ce7dd67c959e0d3524ffac1771dfbba87d2b6b4b4e99e42034a8b803f8b072",
          "AWS4-HMAC-SHA256\n20130524T000000Z\n20130524/us-east-1/s3/aws4_request\n"
          "9e0e90d9c76de8fa5b200d8c849cd5b8dc7a3be3951ddb7f6a76b4158342019d",
          "98ad721746da40c64f1a55b78f14c238d841ea1380cd77a1b5971af0ece108bd");
    free(path);
}

/* S3 example: GET Bucket Lifecycle, "?lifecycle" signed as "lifecycle=". */
static void test_s3_get_lifecycle(void **state)
{
    (void)state;
    s3_kv q[] = { { "lifecycle", NULL } };
    char *query = s3_query_build(q, 1);
    assert_string_equal(query, "lifecycle=");
    s3_kv h[] = {
        { "Host", "examplebucket.s3.amazonaws.com" },
        { "x-amz-content-sha256", S3_EMPTY_SHA256 },
        { "x-amz-date", "20130524T000000Z" },
    };
    s3_sigv4_req r = {
        .method = "GET", .path = "/", .query = query, .headers = h, .nheaders = 3,
        .payload_hash = S3_EMPTY_SHA256, .amz_date = "20130524T000000Z",
        .region = "us-east-1", .service = "s3", .access_key = S3_AK, .secret_key = S3_SK,
    };
    check(&r,
          "GET\n/\nlifecycle=\nhost:examplebucket.s3.amazonaws.com\n"
          "x-amz-content-sha256:" S3_EMPTY_SHA256 "\nx-amz-date:20130524T000000Z\n\n"
          "host;x-amz-content-sha256;x-amz-date\n" S3_EMPTY_SHA256,
          NULL, "fea454ca298b7da1c68078a5d1bdbfbbe0d65c699e0f91ac7a200a0136783543");
    free(query);
}

/* S3 example: GET Bucket (List Objects) "?max-keys=2&prefix=J", with the
 * parameters given out of order: the builder sorts them. */
static void test_s3_list_objects(void **state)
{
    (void)state;
    s3_kv q[] = { { "prefix", "J" }, { "max-keys", "2" } };
    char *query = s3_query_build(q, 2);
    assert_string_equal(query, "max-keys=2&prefix=J");
    s3_kv h[] = {
        { "host", "examplebucket.s3.amazonaws.com" },
        { "x-amz-date", "20130524T000000Z" },
        { "x-amz-content-sha256", S3_EMPTY_SHA256 },
    };
    s3_sigv4_req r = {
        .method = "GET", .path = "/", .query = query, .headers = h, .nheaders = 3,
        .payload_hash = S3_EMPTY_SHA256, .amz_date = "20130524T000000Z",
        .region = "us-east-1", .service = "s3", .access_key = S3_AK, .secret_key = S3_SK,
    };
    check(&r, NULL, NULL, "34b48302e7b5fa45bde8084f4b7868a86f0a534bc59db6670ed5711ef69dc6f7");
    free(query);
}

static void test_uri_encode(void **state)
{
    (void)state;
    char *s = s3_uri_encode("720p/seg 00001+x=y&z~_-.m4s", 1);
    assert_string_equal(s, "720p/seg%2000001%2Bx%3Dy%26z~_-.m4s");
    free(s);
    s = s3_uri_encode("a/b", 0);
    assert_string_equal(s, "a%2Fb");
    free(s);
    /* UTF-8 bytes are encoded one by one, upper-case hex. */
    s = s3_uri_encode("caf\xc3\xa9", 1);
    assert_string_equal(s, "caf%C3%A9");
    free(s);
    /* Query values are encoded (curl 7.88 would not). */
    s3_kv q[] = { { "prefix", "job 1/" }, { "list-type", "2" }, { "continuation-token", "a+b=" } };
    char *query = s3_query_build(q, 3);
    assert_string_equal(query, "continuation-token=a%2Bb%3D&list-type=2&prefix=job%201%2F");
    free(query);
    query = s3_query_build(NULL, 0);
    assert_string_equal(query, "");
    free(query);
}

static void test_header_canonical_form(void **state)
{
    (void)state;
    /* Values are trimmed and inner runs of spaces collapsed; names sorted
     * case-insensitively; repeated names joined with ','. */
    s3_kv h[] = {
        { "X-Amz-Meta-B", "  two   words  " },
        { "Host", "h" },
        { "x-amz-meta-a", "1" },
        { "X-AMZ-META-A", "2" },
    };
    s3_sigv4_req r = {
        .method = "PUT", .path = "/k", .query = NULL, .headers = h, .nheaders = 4,
        .payload_hash = "UNSIGNED-PAYLOAD", .amz_date = "20240101T000000Z",
        .region = "auto", .service = "s3", .access_key = "a", .secret_key = "s",
    };
    char *sh = NULL;
    char *creq = s3_sigv4_canonical_request(&r, &sh);
    assert_string_equal(creq, "PUT\n/k\n\nhost:h\nx-amz-meta-a:1,2\nx-amz-meta-b:two words\n\n"
                              "host;x-amz-meta-a;x-amz-meta-b\nUNSIGNED-PAYLOAD");
    assert_string_equal(sh, "host;x-amz-meta-a;x-amz-meta-b");
    free(creq);
    free(sh);
}

static void test_amz_date(void **state)
{
    (void)state;
    char d[17];
    s3_amz_date(1369353600LL, d);
    assert_string_equal(d, "20130524T000000Z");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_get_vanilla),
        cmocka_unit_test(test_s3_get_object),
        cmocka_unit_test(test_s3_put_object),
        cmocka_unit_test(test_s3_get_lifecycle),
        cmocka_unit_test(test_s3_list_objects),
        cmocka_unit_test(test_uri_encode),
        cmocka_unit_test(test_header_canonical_form),
        cmocka_unit_test(test_amz_date),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
