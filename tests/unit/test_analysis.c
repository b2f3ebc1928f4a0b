/* Unit tests for worker/media/analysis.c on synthetic frames with known
 * answers: SI of flat frames and step edges (the Sobel magnitude is 4 x the
 * step on the two columns or rows next to the edge), TI of identical,
 * offset and half-changed frames, the histogram distance, scene cuts in TI
 * series with and without a spike, the summary and the class rule (with
 * the coding cost the probes measured). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <math.h>
#include <string.h>

#include <cmocka.h>

#include "analysis.h"

#define W 64
#define H 32

static uint8_t a[H][W], b[H][W];

static void fill(uint8_t p[H][W], int v)
{
    memset(p, v, H * W);
}

static void test_si_flat(void **st)
{
    (void)st;
    fill(a, 0);
    assert_true(an_si(&a[0][0], W, W, H) == 0.0);
    fill(a, 137);
    assert_true(an_si(&a[0][0], W, W, H) == 0.0);
    /* too small for the kernel */
    assert_true(an_si(&a[0][0], W, 2, 2) == 0.0);
}

static void test_si_step_edges(void **st)
{
    (void)st;
    /* vertical edge between columns 31 and 32, step 100: |Gx| = 4 x 100 on
     * columns 31 and 32, 0 elsewhere; the inner area is 62 x 30 pixels */
    for (int y = 0; y < H; y++)
        for (int x = 0; x < W; x++)
            a[y][x] = x < 32 ? 0 : 100;
    double p = 2.0 / 62.0;
    double want = 400.0 * sqrt(p * (1 - p));
    assert_float_equal(an_si(&a[0][0], W, W, H), want, 1e-9);
    /* the same step the other way up gives the same SI */
    for (int y = 0; y < H; y++)
        for (int x = 0; x < W; x++)
            a[y][x] = x < 32 ? 100 : 0;
    assert_float_equal(an_si(&a[0][0], W, W, H), want, 1e-9);
    /* horizontal edge between rows 15 and 16, step 50: rows 15 and 16 of 30 */
    for (int y = 0; y < H; y++)
        for (int x = 0; x < W; x++)
            a[y][x] = y < 16 ? 10 : 60;
    p = 2.0 / 30.0;
    assert_float_equal(an_si(&a[0][0], W, W, H), 200.0 * sqrt(p * (1 - p)), 1e-9);
    /* a larger step gives proportionally more */
    for (int y = 0; y < H; y++)
        for (int x = 0; x < W; x++)
            a[y][x] = y < 16 ? 10 : 110;
    assert_float_equal(an_si(&a[0][0], W, W, H), 400.0 * sqrt(p * (1 - p)), 1e-9);
    /* a stride wider than the width is honoured: only the left 32 columns
     * (flat) are looked at */
    for (int y = 0; y < H; y++)
        for (int x = 0; x < W; x++)
            a[y][x] = x < 40 ? 0 : 255;
    assert_true(an_si(&a[0][0], W, 32, H) == 0.0);
}

static void test_ti(void **st)
{
    (void)st;
    for (int y = 0; y < H; y++)
        for (int x = 0; x < W; x++)
            a[y][x] = (uint8_t)((x * 7 + y * 13) & 0xff) / 2;
    memcpy(b, a, sizeof(a));
    assert_true(an_ti(&a[0][0], W, &b[0][0], W, W, H) == 0.0);
    /* a constant offset moves the mean of the difference, not its spread */
    for (int y = 0; y < H; y++)
        for (int x = 0; x < W; x++)
            b[y][x] = a[y][x] + 20;
    assert_true(an_ti(&b[0][0], W, &a[0][0], W, W, H) == 0.0);
    /* half the pixels change by d: the difference is 0 or d, std d/2 */
    memcpy(b, a, sizeof(a));
    for (int y = 0; y < H; y++)
        for (int x = 0; x < W / 2; x++)
            b[y][x] = a[y][x] + 30;
    assert_float_equal(an_ti(&b[0][0], W, &a[0][0], W, W, H), 15.0, 1e-9);
    /* the order of the frames does not matter */
    assert_float_equal(an_ti(&a[0][0], W, &b[0][0], W, W, H), 15.0, 1e-9);
}

static void test_hist(void **st)
{
    (void)st;
    uint32_t ha[AN_BINS], hb[AN_BINS];
    fill(a, 0);
    fill(b, 255);
    an_hist(&a[0][0], W, W, H, ha);
    an_hist(&b[0][0], W, W, H, hb);
    assert_int_equal(ha[0], W * H);
    assert_int_equal(hb[AN_BINS - 1], W * H);
    assert_float_equal(an_hist_dist(ha, hb), 1.0, 1e-12);
    assert_float_equal(an_hist_dist(ha, ha), 0.0, 1e-12);
    /* half the pixels move to another bin */
    for (int y = 0; y < H / 2; y++)
        memset(b[y], 0, W);
    an_hist(&b[0][0], W, W, H, hb);
    assert_float_equal(an_hist_dist(ha, hb), 0.5, 1e-12);
}

static void test_scene_cuts(void **st)
{
    (void)st;
    double ti[30], hd[30];
    int cuts[8];
    for (int i = 0; i < 30; i++) {
        ti[i] = 2.0 + (i % 3) * 0.5;   /* small motion */
        hd[i] = 0.02;
    }
    assert_int_equal(an_scene_cuts(ti, hd, 30, cuts, 8), 0);
    ti[12] = 45;                       /* a cut: a TI spike */
    assert_int_equal(an_scene_cuts(ti, hd, 30, cuts, 8), 1);
    assert_int_equal(cuts[0], 12);
    hd[20] = 0.7;                      /* a cut seen only in the histogram */
    assert_int_equal(an_scene_cuts(ti, hd, 30, cuts, 8), 2);
    assert_int_equal(cuts[1], 20);
    /* the first frame of a run has no predecessor: never a cut */
    ti[0] = 100;
    hd[0] = 1;
    assert_int_equal(an_scene_cuts(ti, hd, 30, cuts, 8), 2);
    /* noise: high TI on every frame, no spike, no cut */
    for (int i = 0; i < 30; i++) {
        ti[i] = 40 + (i % 5);
        hd[i] = 0.05;
    }
    assert_int_equal(an_scene_cuts(ti, hd, 30, cuts, 8), 0);
    /* a spike under the absolute minimum is motion, not a cut */
    for (int i = 0; i < 30; i++)
        ti[i] = 1;
    ti[10] = AN_CUT_TI_MIN - 1;
    assert_int_equal(an_scene_cuts(ti, NULL, 30, cuts, 8), 0);
    /* more cuts than room: all counted, max written */
    for (int i = 0; i < 30; i++)
        hd[i] = i % 2 ? 0.9 : 0;
    assert_int_equal(an_scene_cuts(ti, hd, 30, cuts, 3), 15);
    assert_int_equal(cuts[2], 5);
}

static void test_summary_and_class(void **st)
{
    (void)st;
    double v[10];
    for (int i = 0; i < 10; i++)
        v[i] = 10 - i;   /* 10..1 */
    an_summary s;
    an_summarise(v, 10, v, 9, &s);
    assert_int_equal(s.frames, 10);
    assert_int_equal(s.ti_frames, 9);
    assert_float_equal(s.si_mean, 5.5, 1e-12);
    assert_float_equal(s.si_max, 10, 1e-12);
    assert_float_equal(s.si_p90, 9, 1e-12);   /* nearest rank: 9th of 10 */
    assert_float_equal(s.ti_mean, 6, 1e-12);  /* 10..2 */
    an_summarise(v, 0, v, 0, &s);
    assert_true(s.si_mean == 0 && s.ti_max == 0);

    an_summary c = { 0 };
    c.si_mean = 100;           /* sharp but still, cheap to code: low */
    c.ti_mean = 0.5;
    assert_string_equal(an_class(&c, 0.0005), "low");
    assert_string_equal(an_class(&c, -1), "low");     /* cost unknown: from TI */
    assert_string_equal(an_class(&c, 0.03), "medium"); /* a detailed still costs bits */
    c.ti_mean = 12;            /* moving */
    assert_string_equal(an_class(&c, 0.005), "medium");
    assert_string_equal(an_class(&c, 0.03), "medium");
    assert_string_equal(an_class(&c, AN_HIGH_BPP), "high"); /* noise: the encoder pays */
    c.ti_mean = AN_HIGH_TI;    /* fast motion */
    assert_string_equal(an_class(&c, 0.02), "high");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_si_flat), cmocka_unit_test(test_si_step_edges),
        cmocka_unit_test(test_ti),      cmocka_unit_test(test_hist),
        cmocka_unit_test(test_scene_cuts), cmocka_unit_test(test_summary_and_class),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
