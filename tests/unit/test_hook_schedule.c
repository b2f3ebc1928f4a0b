/* test_hook_schedule.c — the webhook retry schedule (hooks_schedule in
 * coordinator/coord_hooks.c, over ss_backoff_ms): exponential growth from
 * the base, jitter within [d/2, d], the cap, the last attempt pinned to
 * the event's deadline, giving up after it, and what the defaults add up
 * to over 24 hours. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "coord_hooks.h"
#include "util.h"

static const hook_policy TEST = { 1000, 8000, 60000 };

static void doubles_with_jitter(void **state)
{
    (void)state;
    /* attempt n: d = base * 2^(n-1) capped; the delay is in [d/2, d] */
    const long long d[] = { 1000, 2000, 4000, 8000, 8000, 8000 };
    for (int a = 1; a <= 6; a++) {
        long long lo = 0, hi = 0;
        assert_int_equal(hooks_schedule(&TEST, a, 0, 0, 0.0, &lo), 1);
        assert_int_equal(hooks_schedule(&TEST, a, 0, 0, 0.999999, &hi), 1);
        assert_int_equal(lo, d[a - 1] / 2);
        assert_true(hi <= d[a - 1] && hi >= d[a - 1] - 1);
        long long mid = 0;
        assert_int_equal(hooks_schedule(&TEST, a, 0, 0, 0.5, &mid), 1);
        assert_int_equal(mid, d[a - 1] * 3 / 4);
    }
    /* the delay counts from now, not from the event */
    long long next = 0;
    assert_int_equal(hooks_schedule(&TEST, 1, 0, 10000, 0.0, &next), 1);
    assert_int_equal(next, 10500);
}

static void deadline(void **state)
{
    (void)state;
    long long next = 0;
    /* a retry that would land past the deadline is pinned to it ... */
    assert_int_equal(hooks_schedule(&TEST, 4, 1000, 57000, 0.999999, &next), 1);
    assert_int_equal(next, 61000);
    /* ... and an attempt at or after the deadline that fails gives up */
    assert_int_equal(hooks_schedule(&TEST, 5, 1000, 61000, 0.0, &next), 0);
    assert_int_equal(hooks_schedule(&TEST, 1, 1000, 99000, 0.0, &next), 0);
    /* an event older than max age still gets its one attempt: the
     * schedule is only asked after a failure */
}

static void huge_attempt_counts(void **state)
{
    (void)state;
    long long next = 0;
    assert_int_equal(hooks_schedule(&TEST, 10000, 0, 0, 0.0, &next), 1);
    assert_int_equal(next, 4000);
    assert_int_equal(ss_backoff_ms(0, 1000, 8000, 0.0), 500);   /* attempt < 1 = first */
}

static void defaults_over_a_day(void **state)
{
    (void)state;
    /* the coordinator's defaults: 5 s doubling to 30 min, for 24 h */
    const hook_policy def = { 5000, 1800000, 86400000 };
    for (int pass = 0; pass < 2; pass++) {
        double unit = pass ? 0.999999 : 0.0;
        long long now = 0, next = 0;
        int attempts = 1;   /* the first attempt happens at once */
        while (hooks_schedule(&def, attempts, 0, now, unit, &next)) {
            assert_true(next > now);
            assert_true(next <= 86400000);
            now = next;
            attempts++;
        }
        assert_true(now == 86400000);   /* the last one at the deadline */
        /* with the longest delays: 5,10,...,1280 s then every 30 min; about
         * 55 attempts. With the shortest, about twice as many. */
        assert_true(attempts >= 45 && attempts <= 110);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(doubles_with_jitter),
        cmocka_unit_test(deadline),
        cmocka_unit_test(huge_attempt_counts),
        cmocka_unit_test(defaults_over_a_day),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
