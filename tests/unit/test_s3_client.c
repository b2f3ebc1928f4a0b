/* test_s3_client.c — the pure parts of the S3 client: retry classification,
 * error messages, s3:// URL and bucket parsing, path-style and virtual-host
 * URLs with signed headers, base64, credentials
 * resolution (conf, environment, file permissions). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "s3_client.h"

static void test_classify(void **state)
{
    (void)state;
    ss_code c;
    assert_int_equal(s3_classify(CURLE_OK, 200, NULL, &c), HTTP_DONE);
    assert_int_equal(s3_classify(CURLE_OK, 206, NULL, &c), HTTP_DONE);
    /* transient: 5xx, 429, 408, timeouts, resets, refused connections */
    assert_int_equal(s3_classify(CURLE_OK, 500, "InternalError", &c), HTTP_RETRY);
    assert_int_equal(c, SS_ENET);
    assert_int_equal(s3_classify(CURLE_OK, 503, "SlowDown", &c), HTTP_RETRY);
    assert_int_equal(s3_classify(CURLE_OK, 429, NULL, &c), HTTP_RETRY);
    assert_int_equal(s3_classify(CURLE_OK, 408, NULL, &c), HTTP_RETRY);
    assert_int_equal(s3_classify(CURLE_OK, 400, "RequestTimeout", &c), HTTP_RETRY);
    assert_int_equal(s3_classify(CURLE_OK, 400, "BadDigest", &c), HTTP_RETRY);
    assert_int_equal(s3_classify(CURLE_OPERATION_TIMEDOUT, 0, NULL, &c), HTTP_RETRY);
    assert_int_equal(s3_classify(CURLE_COULDNT_CONNECT, 0, NULL, &c), HTTP_RETRY);
    assert_int_equal(s3_classify(CURLE_RECV_ERROR, 0, NULL, &c), HTTP_RETRY);
    assert_int_equal(s3_classify(CURLE_SEND_ERROR, 0, NULL, &c), HTTP_RETRY);
    assert_int_equal(s3_classify(CURLE_GOT_NOTHING, 0, NULL, &c), HTTP_RETRY);
    assert_int_equal(s3_classify(CURLE_PARTIAL_FILE, 0, NULL, &c), HTTP_RETRY);
    assert_int_equal(s3_classify(CURLE_HTTP2_STREAM, 0, NULL, &c), HTTP_RETRY);
    /* never retried: credentials, missing things, bad requests */
    assert_int_equal(s3_classify(CURLE_OK, 403, "SignatureDoesNotMatch", &c), HTTP_FAIL);
    assert_int_equal(c, SS_EAUTH);
    assert_int_equal(s3_classify(CURLE_OK, 403, "InvalidAccessKeyId", &c), HTTP_FAIL);
    assert_int_equal(c, SS_EAUTH);
    assert_int_equal(s3_classify(CURLE_OK, 401, NULL, &c), HTTP_FAIL);
    assert_int_equal(c, SS_EAUTH);
    assert_int_equal(s3_classify(CURLE_OK, 400, "ExpiredToken", &c), HTTP_FAIL);
    assert_int_equal(c, SS_EAUTH);
    assert_int_equal(s3_classify(CURLE_OK, 404, "NoSuchBucket", &c), HTTP_FAIL);
    assert_int_equal(c, SS_ENOTFOUND);
    assert_int_equal(s3_classify(CURLE_OK, 404, "NoSuchKey", &c), HTTP_FAIL);
    assert_int_equal(c, SS_ENOTFOUND);
    assert_int_equal(s3_classify(CURLE_OK, 404, "NoSuchUpload", &c), HTTP_FAIL);
    assert_int_equal(c, SS_ENET);
    assert_int_equal(s3_classify(CURLE_OK, 400, "InvalidBucketName", &c), HTTP_FAIL);
    assert_int_equal(c, SS_EINVAL);
    assert_int_equal(s3_classify(CURLE_OK, 400, "EntityTooSmall", &c), HTTP_FAIL);
    assert_int_equal(s3_classify(CURLE_OK, 501, "NotImplemented", &c), HTTP_FAIL);
    assert_int_equal(s3_classify(CURLE_ABORTED_BY_CALLBACK, 0, NULL, &c), HTTP_FAIL);
    assert_int_equal(c, SS_ECANCELLED);
    assert_int_equal(s3_classify(CURLE_READ_ERROR, 0, NULL, &c), HTTP_FAIL);
    assert_int_equal(c, SS_EIO);
    assert_int_equal(s3_classify(CURLE_FILESIZE_EXCEEDED, 0, NULL, &c), HTTP_FAIL);
    assert_int_equal(c, SS_ELIMIT);
    assert_int_equal(s3_classify(CURLE_PEER_FAILED_VERIFICATION, 0, NULL, &c), HTTP_FAIL);
}

static void test_messages(void **state)
{
    (void)state;
    ss_err e = { 0 };
    s3_describe_failure(&e, SS_EAUTH, "PUT s3://b/k", 0, NULL, 403, "SignatureDoesNotMatch",
                        "The request signature we calculated does not match", "b");
    assert_int_equal(e.code, SS_EAUTH);
    assert_non_null(strstr(e.msg, "S3 refused the credentials (403 SignatureDoesNotMatch)"));
    ss_err_clear(&e);
    s3_describe_failure(&e, SS_ENOTFOUND, "PUT s3://media/k", 0, NULL, 404, "NoSuchBucket", NULL, "media");
    assert_string_equal(e.msg, "S3 bucket 'media' does not exist (404 NoSuchBucket)");
    ss_err_clear(&e);
    s3_describe_failure(&e, SS_EAUTH, "GET", 0, NULL, 403, "RequestTimeTooSkewed", NULL, "b");
    assert_non_null(strstr(e.msg, "clock"));
    /* Backoff grows and stays under the cap; Retry-After wins, capped. */
    for (int a = 1; a < 20; a++) {
        int64_t d = http_retry_delay_ms(a, 0);
        assert_true(d >= 0 && d <= HTTP_BACKOFF_CAP_MS);
    }
    assert_true(http_retry_delay_ms(1, 0) <= HTTP_BACKOFF_BASE_MS);
    assert_int_equal(http_retry_delay_ms(1, 2000), 2000);
    assert_int_equal(http_retry_delay_ms(1, 999999), 30000);
}

static void test_parse_url(void **state)
{
    (void)state;
    char *b, *k;
    ss_err e = { 0 };
    assert_int_equal(s3_parse_url("s3://media/jobs/a b/", &b, &k, &e), 0);
    assert_string_equal(b, "media");
    assert_string_equal(k, "jobs/a b/");
    free(b);
    free(k);
    assert_int_equal(s3_parse_url("s3://media", &b, &k, &e), 0);
    assert_string_equal(k, "");
    free(b);
    free(k);
    assert_int_equal(s3_parse_url("s3://Bad_Bucket/x", &b, &k, &e), -1);
    assert_int_equal(e.code, SS_EINVAL);
    ss_err_clear(&e);
    /* credentials in the URL are refused without being echoed (issue 18) */
    assert_int_equal(s3_parse_url("s3://AKID:SECRET@bucket/out/", &b, &k, &e), -1);
    assert_null(strstr(e.msg, "SECRET"));
    assert_non_null(strstr(e.msg, "s3_access_key"));
    ss_err_clear(&e);
    assert_int_equal(s3_parse_url("https://x/y", &b, &k, &e), -1);
    assert_false(s3_bucket_name_ok("ab"));
    assert_false(s3_bucket_name_ok("-abc"));
    assert_false(s3_bucket_name_ok("a..b"));
    assert_true(s3_bucket_name_ok("my.bucket-01"));
}

static storage_conf base_conf(void)
{
    storage_conf c = { 0 };
    c.s3_endpoint = "https://acct.r2.cloudflarestorage.com";
    c.s3_access_key = "AKID";
    c.s3_secret_key = "SECRET";
    return c;
}

static const char *find_hdr(struct curl_slist *l, const char *prefix)
{
    for (; l; l = l->next)
        if (!strncasecmp(l->data, prefix, strlen(prefix)))
            return l->data;
    return NULL;
}

static void test_sign_urls(void **state)
{
    (void)state;
    storage_conf conf = base_conf();
    s3_client c;
    ss_err e = { 0 };
    assert_int_equal(s3_client_init(&c, &conf, &e), 0);
    assert_string_equal(c.region, "auto");   /* R2 endpoint: region auto by default */
    assert_int_equal(c.path_style, 0);
    s3_kv q[] = { { "uploadId", "a/b+c" }, { "partNumber", "2" } };
    s3_request r = { .method = "PUT", .bucket = "media", .key = "jobs/j 1/seg_00001.m4s",
                     .query = q, .nquery = 2, .payload_hash = S3_EMPTY_SHA256 };
    char *url;
    struct curl_slist *h;
    assert_int_equal(s3_sign_request(&c, &r, 1700000000LL, 0, &url, &h, &e), 0);
    assert_string_equal(url, "https://media.acct.r2.cloudflarestorage.com/jobs/j%201/seg_00001.m4s"
                             "?partNumber=2&uploadId=a%2Fb%2Bc");
    assert_string_equal(find_hdr(h, "host:"), "host: media.acct.r2.cloudflarestorage.com");
    assert_string_equal(find_hdr(h, "x-amz-date:"), "x-amz-date: 20231114T221320Z");
    const char *auth = find_hdr(h, "Authorization:");
    assert_non_null(auth);
    assert_non_null(strstr(auth, "Credential=AKID/20231114/auto/s3/aws4_request"));
    assert_non_null(strstr(auth, "SignedHeaders=host;x-amz-content-sha256;x-amz-date,"));
    assert_null(strstr(auth, "SECRET"));
    assert_non_null(find_hdr(h, "Expect:"));   /* small body: no 100-continue wait */
    free(url);
    curl_slist_free_all(h);
    s3_client_free(&c);

    /* Path style, endpoint with a port and a path, bucket-level call. */
    conf.s3_endpoint = "http://127.0.0.1:9000/s3/";
    conf.s3_region = "us-east-1";
    assert_int_equal(s3_client_init(&c, &conf, &e), 0);
    assert_int_equal(c.path_style, 1);   /* an IP endpoint forces path style */
    s3_kv lq[] = { { "list-type", "2" }, { "prefix", "jobs/" } };
    s3_request l = { .method = "GET", .bucket = "media", .key = "", .query = lq, .nquery = 2 };
    assert_int_equal(s3_sign_request(&c, &l, 1700000000LL, 0, &url, &h, &e), 0);
    assert_string_equal(url, "http://127.0.0.1:9000/s3/media?list-type=2&prefix=jobs%2F");
    assert_string_equal(find_hdr(h, "host:"), "host: 127.0.0.1:9000");
    free(url);
    curl_slist_free_all(h);
    /* Large bodies keep Expect: 100-continue. */
    assert_int_equal(s3_sign_request(&c, &r, 1700000000LL, 8 << 20, &url, &h, &e), 0);
    assert_null(find_hdr(h, "Expect:"));
    assert_string_equal(url, "http://127.0.0.1:9000/s3/media/jobs/j%201/seg_00001.m4s"
                             "?partNumber=2&uploadId=a%2Fb%2Bc");
    free(url);
    curl_slist_free_all(h);
    s3_client_free(&c);

    conf.s3_endpoint = "ftp://x";
    assert_int_equal(s3_client_init(&c, &conf, &e), -1);
    assert_int_equal(e.code, SS_EINVAL);
}

static void test_credentials(void **state)
{
    (void)state;
    storage_conf conf = { 0 };
    conf.s3_endpoint = "https://s3.example.com";
    s3_client c;
    ss_err e = { 0 };
    unsetenv("AWS_ACCESS_KEY_ID");
    unsetenv("AWS_SECRET_ACCESS_KEY");
    assert_int_equal(s3_client_init(&c, &conf, &e), -1);
    assert_int_equal(e.code, SS_EAUTH);
    ss_err_clear(&e);

    setenv("AWS_ACCESS_KEY_ID", "envkey", 1);
    setenv("AWS_SECRET_ACCESS_KEY", "envsecret", 1);
    assert_int_equal(s3_client_init(&c, &conf, &e), 0);
    assert_string_equal(c.access_key, "envkey");
    assert_string_equal(c.region, "us-east-1");
    s3_client_free(&c);
    unsetenv("AWS_ACCESS_KEY_ID");
    unsetenv("AWS_SECRET_ACCESS_KEY");

    char path[] = "/tmp/ss_s3cred_XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    const char *text = "# comment\n[default]\naws_access_key_id = filekey\nsecret_key = \"file secret\"\n";
    assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
    close(fd);
    conf.s3_credentials_file = path;
    chmod(path, 0640);
    assert_int_equal(s3_client_init(&c, &conf, &e), -1);
    assert_int_equal(e.code, SS_EAUTH);
    assert_non_null(strstr(e.msg, "chmod 600"));
    ss_err_clear(&e);
    chmod(path, 0600);
    assert_int_equal(s3_client_init(&c, &conf, &e), 0);
    assert_string_equal(c.access_key, "filekey");
    assert_string_equal(c.secret_key, "file secret");
    s3_client_free(&c);
    /* Keys in the config win over everything else. */
    conf.s3_access_key = "confkey";
    conf.s3_secret_key = "confsecret";
    assert_int_equal(s3_client_init(&c, &conf, &e), 0);
    assert_string_equal(c.access_key, "confkey");
    s3_client_free(&c);
    conf.s3_secret_key = NULL;
    assert_int_equal(s3_client_init(&c, &conf, &e), -1);
    assert_int_equal(e.code, SS_EAUTH);
    unlink(path);
}

static void test_base64(void **state)
{
    (void)state;
    char b64[32];
    s3_base64((const unsigned char *)"hello", 5, b64);
    assert_string_equal(b64, "aGVsbG8=");
}

/* Cache-Control of playlists while a title is playable but still
 * encoding (short), when final (long); segments stay immutable
 * (docs/PLAYABLE.md). */
static void test_manifest_cache_control(void **state)
{
    (void)state;
    storage st;
    memset(&st, 0, sizeof(st));
    assert_string_equal(storage_cache_control_on(&st, "j/720p/playlist.m3u8"), "public, max-age=60");
    storage_set_manifest_cc(&st, STORAGE_CC_LIVE);
    assert_string_equal(storage_cache_control_on(&st, "j/720p/playlist.m3u8"), "public, max-age=1");
    assert_string_equal(storage_cache_control_on(&st, "j/master.m3u8"), "public, max-age=1");
    assert_string_equal(storage_cache_control_on(&st, "j/720p/seg_00001.m4s"),
                        "public, max-age=31536000, immutable");
    storage_set_manifest_cc(&st, STORAGE_CC_FINAL);
    assert_string_equal(storage_cache_control_on(&st, "j/manifest.mpd"), "public, max-age=86400");
    assert_string_equal(storage_cache_control_on(&st, "j/job.json"), "public, max-age=60");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_classify),
        cmocka_unit_test(test_messages),
        cmocka_unit_test(test_parse_url),
        cmocka_unit_test(test_sign_urls),
        cmocka_unit_test(test_credentials),
        cmocka_unit_test(test_base64),
        cmocka_unit_test(test_manifest_cache_control),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
