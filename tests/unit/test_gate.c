/* The CPU gate: load from /proc/stat samples, the claim decision, and the
 * load-scaled claim delay (worker/gate.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <math.h>

#include <cmocka.h>

#include "gate.h"

static void test_parse(void **state)
{
    (void)state;
    const char *text = "cpu  100 20 30 800 50 5 5 0 7 0\n"
                       "cpu0 50 10 15 400 25 2 3 0 0 0\nintr 1 2 3\n";
    cpu_sample s;
    assert_int_equal(gate_parse_proc_stat(text, &s), 0);
    /* busy = user+nice+system+irq+softirq+steal; idle = idle+iowait;
     * guest is inside user already */
    assert_int_equal(s.busy, 100 + 20 + 30 + 5 + 5 + 0);
    assert_int_equal(s.total, s.busy + 800 + 50);
    assert_int_equal(gate_parse_proc_stat("intr 1 2\n", &s), -1);
    assert_int_equal(gate_parse_proc_stat("cpu  1 2\n", &s), -1);
    /* old kernels with only 4 fields */
    assert_int_equal(gate_parse_proc_stat("cpu 10 0 10 80\n", &s), 0);
    assert_int_equal(s.total, 100);
}

static void test_load_between(void **state)
{
    (void)state;
    cpu_sample a = { 100, 1000, 0 }, b = { 400, 1400, 0 };
    assert_true(fabs(gate_load_between(&a, &b) - 0.75) < 1e-9);
    assert_true(gate_load_between(&b, &a) < 0);      /* time went backwards */
    assert_true(gate_load_between(&a, &a) < 0);      /* no time passed */
}

static void test_window(void **state)
{
    (void)state;
    cpu_gate g;
    gate_init(&g);
    cpu_sample s = { 0, 0, 0 };
    assert_true(g.load < 0);   /* nothing measured yet */
    gate_push(&g, &s);
    assert_true(g.load < 0);   /* one sample is no measurement: a busy machine is not "0 %" */
    /* 100% busy for 3 ticks */
    for (int i = 0; i < 3; i++) {
        s.busy += 100;
        s.total += 100;
        gate_push(&g, &s);
    }
    assert_true(fabs(g.load - 1.0) < 1e-9);
    /* then idle for GATE_WINDOW ticks: the busy ticks leave the window */
    for (int i = 0; i < GATE_WINDOW; i++) {
        s.total += 100;
        gate_push(&g, &s);
    }
    assert_true(fabs(g.load - 0.0) < 1e-9);
    /* half busy */
    for (int i = 0; i < GATE_WINDOW; i++) {
        s.busy += 50;
        s.total += 100;
        gate_push(&g, &s);
    }
    assert_true(fabs(g.load - 0.5) < 1e-9);
}

/* A worker whose own encode filled the machine: once that ends (no slot
 * busy after the claim) it judges the load without its own share, so it
 * takes the next item at once; with a slot still busy, the whole load. */
static void test_load_after(void **state)
{
    (void)state;
    cpu_gate g;
    gate_init(&g);
    assert_true(gate_load_after(&g, 0) < 0);   /* not measured yet, either way */
    cpu_sample s = { 0, 0, 0 };
    gate_push(&g, &s);
    for (int i = 0; i < 4; i++) {
        s.busy += 190;    /* 2 cores: 95 % busy, */
        s.own += 100;     /* half of it ours (one core) */
        s.total += 200;
        gate_push(&g, &s);
    }
    assert_true(fabs(g.load - 0.95) < 1e-9);
    assert_true(fabs(g.own - 0.5) < 1e-9);
    assert_true(fabs(gate_load_after(&g, 0) - 0.45) < 1e-9);
    assert_true(fabs(gate_load_after(&g, 1) - 0.95) < 1e-9);
    assert_true(gate_open(gate_load_after(&g, 0), 0.85, 0, 1));
    assert_false(gate_open(gate_load_after(&g, 1), 0.85, 1, 2));
    /* our counter can never make the others' load negative */
    s.own += 1000;
    s.busy += 10;
    s.total += 200;
    gate_push(&g, &s);
    assert_true(g.own <= g.load && gate_load_after(&g, 0) >= 0);
}

static void test_decision(void **state)
{
    (void)state;
    assert_true(gate_open(0.10, 0.85, 0, 1));
    assert_false(gate_open(0.90, 0.85, 0, 1));     /* machine too busy */
    assert_false(gate_open(0.10, 0.85, 1, 1));     /* no free slot */
    assert_true(gate_open(0.50, 0.85, 2, 4));
    assert_false(gate_open(0.85, 0.85, 0, 4));     /* at the threshold: closed */
    assert_true(gate_open(0.99, 1.00, 0, 1));      /* threshold 100%: slots only */
    assert_true(gate_open(1.00, 1.00, 0, 1));
    assert_false(gate_open(1.00, 1.00, 1, 1));
    assert_false(gate_open(-1, 0.85, 0, 1));       /* not measured yet: closed */
    assert_true(gate_open(-1, 1.00, 0, 1));        /* unless only the slots decide */
}

static void test_reason(void **state)
{
    (void)state;
    char r[96];
    gate_reason(0.92, 0.85, 0, 1, 0, r, sizeof(r));
    assert_string_equal(r, "load 92% >= threshold 85%");
    gate_reason(0.10, 0.85, 2, 2, 0, r, sizeof(r));
    assert_string_equal(r, "slots full (2/2)");
    gate_reason(0.10, 0.85, 0, 2, 1, r, sizeof(r));
    assert_string_equal(r, "draining");
    gate_reason(-1, 0.85, 0, 2, 0, r, sizeof(r));
    assert_string_equal(r, "measuring load");
    gate_reason(0.10, 0.85, 1, 2, 0, r, sizeof(r));
    assert_string_equal(r, "open");
}

static void test_claim_delay(void **state)
{
    (void)state;
    assert_int_equal(gate_claim_delay_ms(0.0, 0, 4, 50), 0);
    assert_int_equal(gate_claim_delay_ms(0.5, 0, 4, 50), 25);
    assert_int_equal(gate_claim_delay_ms(0.1, 2, 4, 50), 25);   /* busy share counts */
    assert_int_equal(gate_claim_delay_ms(1.0, 0, 4, 50), 50);
    assert_int_equal(gate_claim_delay_ms(0.7, 0, 4, 0), 0);     /* disabled */
    /* an idle worker never waits longer than a busy one */
    assert_true(gate_claim_delay_ms(0.2, 0, 2, 50) < gate_claim_delay_ms(0.6, 1, 2, 50));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse),
        cmocka_unit_test(test_load_between),
        cmocka_unit_test(test_window),
        cmocka_unit_test(test_load_after),
        cmocka_unit_test(test_decision),
        cmocka_unit_test(test_reason),
        cmocka_unit_test(test_claim_delay),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
