/* test_hook_sign.c — webhook signatures (common/hook_sign.c) on a fixed
 * vector computed independently:
 *   printf '%s' '1700000000.{"id":...}' | openssl dgst -sha256 -hmac 'whsec_streamscale_test'
 * (and the same with Python's hmac module), plus the verification rules a
 * receiver follows: constant-time match, timestamp tolerance, unsigned and
 * malformed headers, several v1 values. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "hook_sign.h"

#define SECRET "whsec_streamscale_test"
#define BODY "{\"id\":\"evt_0123456789abcdef0123_1\",\"type\":\"job.queued\",\"seq\":1}"
#define T 1700000000LL
#define MAC "ef7841be42a9eeb4670511c043cf24d70eda67bb3712d59a57f438d6aa7ccb51"
/* HMAC over "1700000000." alone (an empty body) */
#define MAC_EMPTY "8e7bb3915d9de209b4126191f176d10f7db44c81218c0d2b0129a71c1660d8d7"

static void known_vector(void **state)
{
    (void)state;
    char h[HOOK_SIG_MAX];
    assert_int_equal(hook_sign_header(SECRET, T, BODY, strlen(BODY), h, sizeof(h)), 0);
    assert_string_equal(h, "t=1700000000,v1=" MAC);
    assert_int_equal(hook_sign_header(SECRET, T, "", 0, h, sizeof(h)), 0);
    assert_string_equal(h, "t=1700000000,v1=" MAC_EMPTY);
}

static void unsigned_without_secret(void **state)
{
    (void)state;
    char h[HOOK_SIG_MAX];
    assert_int_equal(hook_sign_header(NULL, T, BODY, strlen(BODY), h, sizeof(h)), 0);
    assert_string_equal(h, "t=1700000000");
    assert_int_equal(hook_sign_header("", T, BODY, strlen(BODY), h, sizeof(h)), 0);
    assert_string_equal(h, "t=1700000000");
    assert_int_equal(hook_sign_verify(SECRET, h, BODY, strlen(BODY), T, 300), HOOK_SIG_UNSIGNED);
}

static void too_small(void **state)
{
    (void)state;
    char h[40];
    assert_int_equal(hook_sign_header(SECRET, T, BODY, strlen(BODY), h, sizeof(h)), -1);
}

static void verify(void **state)
{
    (void)state;
    const char *good = "t=1700000000,v1=" MAC;
    size_t n = strlen(BODY);
    assert_int_equal(hook_sign_verify(SECRET, good, BODY, n, T, 300), HOOK_SIG_OK);
    assert_int_equal(hook_sign_verify(SECRET, good, BODY, n, T + 300, 300), HOOK_SIG_OK);
    assert_int_equal(hook_sign_verify(SECRET, good, BODY, n, T - 300, 300), HOOK_SIG_OK);
    /* replay protection: too old or too far in the future */
    assert_int_equal(hook_sign_verify(SECRET, good, BODY, n, T + 301, 300), HOOK_SIG_STALE);
    assert_int_equal(hook_sign_verify(SECRET, good, BODY, n, T - 301, 300), HOOK_SIG_STALE);
    /* another secret, another body, another timestamp */
    assert_int_equal(hook_sign_verify("other-secret", good, BODY, n, T, 300), HOOK_SIG_MISMATCH);
    assert_int_equal(hook_sign_verify(SECRET, good, BODY, n - 1, T, 300), HOOK_SIG_MISMATCH);
    assert_int_equal(hook_sign_verify(SECRET, "t=1700000001,v1=" MAC, BODY, n, T, 300),
                     HOOK_SIG_MISMATCH);
    /* one good value among several (secret rotation), unknown schemes ignored */
    assert_int_equal(hook_sign_verify(SECRET, "t=1700000000,v0=abc,v1=" MAC_EMPTY ",v1=" MAC,
                                      BODY, n, T, 300), HOOK_SIG_OK);
    /* malformed */
    assert_int_equal(hook_sign_verify(SECRET, NULL, BODY, n, T, 300), HOOK_SIG_MALFORMED);
    assert_int_equal(hook_sign_verify(SECRET, "v1=" MAC, BODY, n, T, 300), HOOK_SIG_MALFORMED);
    assert_int_equal(hook_sign_verify(SECRET, "t=17x,v1=" MAC, BODY, n, T, 300), HOOK_SIG_MALFORMED);
    assert_int_equal(hook_sign_verify(SECRET, "t=1700000000,v1=abcd", BODY, n, T, 300),
                     HOOK_SIG_MALFORMED);
}

static void round_trip(void **state)
{
    (void)state;
    char h[HOOK_SIG_MAX];
    const char *body = "{\"x\":\"\\u00e9\\n\"}";
    assert_int_equal(hook_sign_header("s3cr3t-value", 1234567890, body, strlen(body), h, sizeof(h)), 0);
    assert_int_equal(hook_sign_verify("s3cr3t-value", h, body, strlen(body), 1234567890, 1),
                     HOOK_SIG_OK);
    assert_string_equal(hook_sig_result_name(HOOK_SIG_STALE), "stale");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(known_vector),
        cmocka_unit_test(unsigned_without_secret),
        cmocka_unit_test(too_small),
        cmocka_unit_test(verify),
        cmocka_unit_test(round_trip),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
