/* Small pure helpers: backoff with jitter, Redis URLs, URL redaction for
 * logs, file:// paths, job states. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>

#include <cmocka.h>

#include "log.h"
#include "rconn.h"
#include "rkeys.h"
#include "storage.h"
#include "util.h"

static void test_backoff(void **state)
{
    (void)state;
    /* full range: attempt n draws from [d/2, d], d = base * 2^(n-1), capped */
    assert_int_equal(ss_backoff_ms(1, 1000, 60000, 0.0), 500);
    assert_int_equal(ss_backoff_ms(1, 1000, 60000, 0.999999), 999);
    assert_int_equal(ss_backoff_ms(2, 1000, 60000, 0.0), 1000);
    assert_int_equal(ss_backoff_ms(3, 1000, 60000, 0.0), 2000);
    assert_int_equal(ss_backoff_ms(4, 1000, 60000, 0.5), 6000);
    assert_int_equal(ss_backoff_ms(30, 1000, 60000, 0.0), 30000);   /* capped */
    assert_true(ss_backoff_ms(30, 1000, 60000, 0.999) <= 60000);
    assert_int_equal(ss_backoff_ms(0, 1000, 60000, 0.0), 500);      /* attempt < 1 */
    /* the draw is always within bounds */
    for (int i = 0; i < 1000; i++) {
        int64_t d = ss_backoff_ms(5, 100, 100000, ss_random_unit());
        assert_true(d >= 800 && d <= 1600);
    }
}

static void test_redis_url(void **state)
{
    (void)state;
    redis_addr a;
    ss_err err = { 0 };
    assert_int_equal(redis_addr_parse("redis://10.0.0.5:6380/2", &a, &err), 0);
    assert_string_equal(a.host, "10.0.0.5");
    assert_int_equal(a.port, 6380);
    assert_int_equal(a.db, 2);
    assert_string_equal(a.password, "");
    assert_int_equal(redis_addr_parse("redis://:s3cret@h", &a, &err), 0);
    assert_string_equal(a.password, "s3cret");
    assert_string_equal(a.host, "h");
    assert_int_equal(a.port, 6379);
    assert_int_equal(a.db, 0);
    assert_int_equal(redis_addr_parse("http://h:1", &a, &err), -1);
    assert_int_equal(redis_addr_parse("redis://h:0", &a, &err), -1);
    assert_int_equal(redis_addr_parse("redis://h:1/x", &a, &err), -1);
    assert_int_equal(redis_addr_parse("redis://:6379", &a, &err), -1);
    /* ACL user and password (a password may hold ':' and '@') */
    assert_int_equal(redis_addr_parse("redis://ss-worker:p:w@d@h:7000/1", &a, &err), 0);
    assert_string_equal(a.username, "ss-worker");
    assert_string_equal(a.password, "p:w@d");
    assert_string_equal(a.host, "h");
    assert_int_equal(a.port, 7000);
    assert_int_equal(a.db, 1);
    assert_string_equal(a.master, "");
    /* TLS is refused with a pointer to the tunnel */
    ss_err_clear(&err);
    assert_int_equal(redis_addr_parse("rediss://h:6380", &a, &err), -1);
    assert_non_null(strstr(err.msg, "stunnel"));
}

static void test_sentinel_url(void **state)
{
    (void)state;
    redis_addr a;
    ss_err err = { 0 };
    char d[512];
    assert_int_equal(redis_addr_parse("sentinel://s1:26379,10.0.0.2:5000,s3/mymaster/3", &a, &err), 0);
    assert_int_equal(a.nsentinels, 3);
    assert_string_equal(a.sentinels[0].host, "s1");
    assert_int_equal(a.sentinels[0].port, 26379);
    assert_string_equal(a.sentinels[1].host, "10.0.0.2");
    assert_int_equal(a.sentinels[1].port, 5000);
    assert_string_equal(a.sentinels[2].host, "s3");
    assert_int_equal(a.sentinels[2].port, 26379);
    assert_string_equal(a.master, "mymaster");
    assert_int_equal(a.db, 3);
    assert_string_equal(redis_addr_describe(&a, d, sizeof(d)),
                        "sentinel master mymaster (s1:26379,10.0.0.2:5000,s3:26379)");
    assert_int_equal(redis_addr_parse("sentinel://u:pw@s1:1/m", &a, &err), 0);
    assert_string_equal(a.username, "u");
    assert_string_equal(a.password, "pw");
    assert_int_equal(a.db, 0);
    assert_null(strstr(redis_addr_describe(&a, d, sizeof(d)), "pw"));
    assert_int_equal(redis_addr_parse("sentinel://s1:1", &a, &err), -1);
    assert_non_null(strstr(err.msg, "master-name"));
    ss_err_clear(&err);
    assert_int_equal(redis_addr_parse("sentinel://s1:1/", &a, &err), -1);
    assert_int_equal(redis_addr_parse("sentinel://s1:x/m", &a, &err), -1);
    assert_int_equal(redis_addr_parse("sentinel://s1,,s2/m", &a, &err), -1);
    assert_int_equal(redis_addr_parse("sentinel://a,b,c,d,e,f,g,h,i/m", &a, &err), -1);
    assert_int_equal(redis_addr_parse("sentinel://s1/m/x", &a, &err), -1);
    assert_true(redis_error_wants_reconnect("READONLY You can't write against a read only replica."));
    assert_true(redis_error_wants_reconnect("LOADING Redis is loading the dataset in memory"));
    assert_false(redis_error_wants_reconnect("ERR unknown command"));
}

static void test_redact(void **state)
{
    (void)state;
    char out[256];
    log_redact_url("https://user:pass@bucket.r2.example.com/key.mp4?X-Amz-Signature=abc", out, sizeof(out));
    assert_null(strstr(out, "pass"));
    assert_null(strstr(out, "abc"));
    assert_non_null(strstr(out, "bucket.r2.example.com/key.mp4"));
    log_redact_url("s3://bucket/key", out, sizeof(out));
    assert_string_equal(out, "s3://bucket/key");
}

static void test_file_url(void **state)
{
    (void)state;
    char p[256];
    ss_err err = { 0 };
    assert_int_equal(storage_file_path("file:///srv/in/my%20clip.mp4", p, sizeof(p), &err), 0);
    assert_string_equal(p, "/srv/in/my clip.mp4");
    assert_int_equal(storage_file_path("file://relative.mp4", p, sizeof(p), &err), -1);
    ss_err_clear(&err);
    assert_int_equal(storage_file_path("file:///a%2", p, sizeof(p), &err), -1);
    ss_err_clear(&err);
    assert_int_equal(storage_file_path("file:///a%00b", p, sizeof(p), &err), -1);
}

static void test_file_roots(void **state)
{
    (void)state;
    ss_err err = { 0 };
    char c[4096];
    /* empty roots refuse everything, naming the setting */
    assert_int_equal(storage_file_confine("/anything/at/all", NULL, "source", c, sizeof(c), &err), -1);
    assert_non_null(strstr(err.msg, "STREAMSCALE_FILE_ROOTS"));
    ss_err_clear(&err);
    assert_int_equal(storage_file_confine("/anything", "", "source", c, sizeof(c), &err), -1);
    ss_err_clear(&err);
    /* paths that do not exist are judged by their words */
    assert_int_equal(storage_file_confine("/srv/media/a.mp4", "/data:/srv/media/", "source", c, sizeof(c), &err), 0);
    assert_string_equal(c, "/srv/media/a.mp4");
    assert_int_equal(storage_file_confine("/srv/media", "/srv/media", "source", c, sizeof(c), &err), 0);
    assert_int_equal(storage_file_confine("/srv/mediaX/a.mp4", "/srv/media", "source", c, sizeof(c), &err), -1);
    assert_int_equal(err.code, SS_EDENIED);
    ss_err_clear(&err);
    assert_int_equal(storage_file_confine("/srv/media/../etc/x", "/srv/media", "source", c, sizeof(c), &err), -1);
    ss_err_clear(&err);
    assert_int_equal(storage_file_confine("/srv/media/./x", "/srv/media", "source", c, sizeof(c), &err), -1);
    ss_err_clear(&err);
    assert_int_equal(storage_file_confine("/etc/passwd", "/srv/media", "destination", c, sizeof(c), &err), -1);
    assert_non_null(strstr(err.msg, "destination"));
    ss_err_clear(&err);
    /* the longest existing prefix is resolved through symlinks:
     * /proc/self/cwd links to the test's folder, outside /proc, so a
     * missing leaf under it lies outside too */
    assert_int_equal(storage_file_confine("/proc/self/cwd/nope/x", "/proc", "destination", c, sizeof(c), &err), -1);
    assert_int_equal(err.code, SS_EDENIED);
    ss_err_clear(&err);
    assert_int_equal(storage_file_confine("/proc/self/nope/x", "/proc", "destination", c, sizeof(c), &err), 0);
    assert_true(strncmp(c, "/proc/", 6) == 0 && strstr(c, "self") == NULL);
}

static void test_keys(void **state)
{
    (void)state;
    assert_true(storage_key_ok("0123/720p/seg_00001.m4s"));
    assert_true(storage_key_ok("0123/"));
    assert_false(storage_key_ok(""));
    assert_false(storage_key_ok("/abs"));
    assert_false(storage_key_ok("a/../b"));
    assert_false(storage_key_ok("a/./b"));
    assert_false(storage_key_ok("a//b"));
    assert_false(storage_key_ok("a\nb"));
}

static void test_states(void **state)
{
    (void)state;
    assert_true(rk_state_valid("queued"));
    assert_true(rk_state_valid("dead"));
    assert_false(rk_state_valid("done"));
    assert_true(rk_state_final("completed"));
    assert_true(rk_state_final("cancelled"));
    assert_false(rk_state_final("retrying"));
    assert_false(rk_state_final("cancelling"));
}

static void test_errors(void **state)
{
    (void)state;
    ss_err e = { 0 };
    assert_int_equal(ss_fail(&e, SS_EMEDIA, "first %d", 1), -1);
    ss_fail(&e, SS_ENET, "second");
    assert_int_equal(e.code, SS_EMEDIA);      /* the first error is kept */
    assert_string_equal(e.msg, "first 1");
    assert_true(ss_err_permanent(SS_EMEDIA));
    assert_true(ss_err_permanent(SS_EAUTH));
    assert_false(ss_err_permanent(SS_ENET));
    assert_false(ss_err_permanent(SS_EREDIS));
    assert_string_equal(ss_code_name(SS_ELIMIT), "limit");
}

static void test_utf8_cut(void **state)
{
    (void)state;
    char b[8];
    ss_utf8_cut(b, sizeof(b), "abc");
    assert_string_equal(b, "abc");
    ss_utf8_cut(b, sizeof(b), "a\xff\xc3" "b");   /* stray bytes become question marks */
    assert_string_equal(b, "a?" "?b");
    ss_utf8_cut(b, sizeof(b), "12345\xe2\x82\xac");   /* the euro sign does not fit whole */
    assert_string_equal(b, "12345");
    ss_utf8_cut(b, sizeof(b), "1234\xe2\x82\xac");
    assert_string_equal(b, "1234\xe2\x82\xac");
    ss_utf8_cut(b, 1, "abc");
    assert_string_equal(b, "");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_backoff),
        cmocka_unit_test(test_redis_url),
        cmocka_unit_test(test_sentinel_url),
        cmocka_unit_test(test_redact),
        cmocka_unit_test(test_file_url),
        cmocka_unit_test(test_file_roots),
        cmocka_unit_test(test_keys),
        cmocka_unit_test(test_states),
        cmocka_unit_test(test_errors),
        cmocka_unit_test(test_utf8_cut),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
