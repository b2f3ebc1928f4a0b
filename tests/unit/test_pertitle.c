/* Unit tests for worker/media/ptplan.c on fixed data: the convex hull of a
 * hand-made point set (known vertices, dominated points left out, cut after
 * the best quality), curve interpolation (a probe's own rate gives back its
 * CRF and quality; monotone in spite of noisy points; the extrapolation
 * limit), and the rung choice under every constraint of ptplan.h on model
 * curves of easy, medium and hard content: count, spacing, floor, cap,
 * top-quality target, resolution never growing as the rate falls, each
 * rung on the best curve for its rate, and a reason per rung. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "ptplan.h"

static void test_hull_known(void **st)
{
    (void)st;
    pt_point p[] = {
        { 640, 360, 30, 100, 30, 0.9 },   /* 0: vertex (cheapest) */
        { 1280, 720, 30, 200, 36, 0.9 },  /* 1: vertex */
        { 1280, 720, 25, 400, 38, 0.9 },  /* 2: vertex */
        { 640, 360, 20, 400, 35, 0.9 },   /* 3: same rate, less quality */
        { 1920, 1080, 25, 800, 39, 0.9 }, /* 4: vertex, the best quality */
        { 640, 360, 25, 300, 31, 0.9 },   /* 5: under the chord 1-2 */
        { 1920, 1080, 18, 1600, 38.5, 0.9 }, /* 6: more bits, less quality: cut */
        { 640, 360, 27, 150, 31, 0.9 },   /* 7: under the chord 0-1 */
        { 640, 360, 40, 0, 20, 0.5 },     /* 8: no rate: ignored */
    };
    int idx[16];
    int n = ptplan_hull(p, 9, idx);
    assert_int_equal(n, 4);
    assert_int_equal(idx[0], 0);
    assert_int_equal(idx[1], 1);
    assert_int_equal(idx[2], 2);
    assert_int_equal(idx[3], 4);
    /* a point exactly on a chord is not a vertex */
    pt_point q[] = { { 2, 2, 0, 100, 30, 0 }, { 2, 2, 0, 200, 33, 0 }, { 2, 2, 0, 400, 36, 0 } };
    n = ptplan_hull(q, 3, idx);
    assert_int_equal(n, 2);
    assert_int_equal(idx[1], 2);
    assert_int_equal(ptplan_hull(q, 0, idx), 0);
}

/* A model of x264 + upscaling: resolution i (height h, pixel share a of
 * 1080p) at CRF c makes R = r0 * a^0.8 * 2^(-(c - 23) / 6) kbps; its coding
 * loss alone would give p0 - 0.55 (c - 23) dB, its upscaling loss alone
 * 60 - detail * (1 - sqrt(a)) dB, and the errors add up (as MSEs). r0, p0
 * and detail set the content's difficulty. */
static int model(double r0, double p0, double detail, const int *hs, int nh, pt_point *out)
{
    static const double crfs[] = { 20, 27, 34 };
    int n = 0;
    for (int i = 0; i < nh; i++) {
        double a = (double)hs[i] * hs[i] / (1080.0 * 1080.0);
        double up = 60 - detail * (1 - sqrt(a));
        for (int c = 0; c < 3; c++) {
            pt_point *p = &out[n++];
            p->height = hs[i];
            p->width = hs[i] * 16 / 9 / 2 * 2;
            p->crf = crfs[c];
            p->kbps = r0 * pow(a, 0.8) * pow(2, -(crfs[c] - 23) / 6);
            double coded = p0 - 0.55 * (crfs[c] - 23);
            p->psnr = -10 * log10(pow(10, -coded / 10) + pow(10, -up / 10));
            p->ssim = 1 - 0.002 * (60 - p->psnr);
        }
    }
    return n;
}

static const int H5[] = { 1080, 720, 540, 360, 240 };

static void test_curve(void **st)
{
    (void)st;
    pt_point p[32];
    int n = model(3000, 42, 20, H5, 5, p);
    pt_limits lim;
    ptplan_limits_default(&lim);
    pt_rung r;
    for (int i = 0; i < n; i++) {
        assert_int_equal(ptplan_curve_at(p, n, p[i].height, &lim, p[i].kbps, &r), 0);
        assert_float_equal(r.crf, p[i].crf, 1e-6);
        assert_float_equal(r.psnr, p[i].psnr, 1e-6);
        assert_int_equal(r.height, p[i].height);
        assert_int_equal(r.width, p[i].width);
    }
    /* between two probes: between their CRFs and qualities */
    assert_int_equal(ptplan_curve_at(p, n, 720, &lim, sqrt(p[3].kbps * p[4].kbps), &r), 0);
    assert_true(r.crf > 20 && r.crf < 27);
    assert_true(r.psnr < p[3].psnr && r.psnr > p[4].psnr);
    /* the range ends at the extrapolation limits: 3 CRF below the first
     * probe (17), 6 above the last (40) */
    double lo, hi;
    assert_int_equal(ptplan_curve_range(p, n, 720, &lim, &lo, &hi), 0);
    double a = 720.0 * 720 / (1080.0 * 1080);
    assert_float_equal(hi, 3000 * pow(a, 0.8) * pow(2, -(17 - 23) / 6.0), 1e-6 * hi);
    assert_float_equal(lo, 3000 * pow(a, 0.8) * pow(2, -(40 - 23) / 6.0), 1e-6 * lo);
    assert_int_equal(ptplan_curve_at(p, n, 720, &lim, hi * 1.01, &r), -1);
    assert_int_equal(ptplan_curve_at(p, n, 720, &lim, lo * 0.99, &r), -1);
    assert_int_equal(ptplan_curve_at(p, n, 480, &lim, 1000, &r), -1);   /* no such curve */
    /* noisy probes (a higher CRF that cost more bits) still give a curve
     * whose rate falls as the CRF rises */
    pt_point noisy[] = { { 640, 360, 20, 1000, 40, 0.98 }, { 640, 360, 27, 1100, 38, 0.97 },
                         { 640, 360, 34, 300, 35, 0.95 } };
    double prev = 1e9;
    for (double k = 310; k < 990; k += 40) {
        assert_int_equal(ptplan_curve_at(noisy, 3, 360, &lim, k, &r), 0);
        assert_true(r.crf < prev);
        prev = r.crf;
    }
}

/* Every constraint of ptplan.h on a chosen ladder. */
static void check_ladder(const pt_point *p, int n, const pt_limits *lim, const pt_rung *r, int nr)
{
    for (int i = nr - 1; i >= 0; i--)
        print_message("  %4dp %8.1f kbps CRF %5.2f %6.2f dB  %s\n", r[i].height, r[i].kbps, r[i].crf,
                      r[i].psnr, r[i].why);
    assert_true(nr >= 1 && nr <= lim->max_rungs);
    const pt_rung *top = &r[nr - 1];
    if (lim->max_kbps > 0)
        assert_true(top->kbps <= lim->max_kbps * (1 + 1e-9));
    for (int i = 0; i < nr; i++) {
        assert_true(r[i].why[0] != '\0');
        if (i) {
            assert_true(r[i].kbps / r[i - 1].kbps >= lim->min_step - 1e-9);
            assert_true(r[i].kbps / r[i - 1].kbps <= lim->max_step + 1e-9);
            assert_true(r[i].height >= r[i - 1].height);
            assert_true(r[i].psnr >= r[i - 1].psnr);
        }
        /* nothing under the floor, but a top that is itself under it */
        if (nr > 1)
            assert_true(r[i].kbps >= lim->floor_kbps - 1e-9);
        /* the best curve among those allowed (no taller than the rung above;
         * a smaller one only when it wins by more than the margin) */
        int maxh = i + 1 < nr ? r[i + 1].height : 1 << 30, tallest = 0;
        for (int k = 0; k < n; k++)
            tallest = p[k].height > tallest ? p[k].height : tallest;
        int minh = i + 1 == nr && tallest >= lim->top_min_height ? lim->top_min_height : 0;
        if (i + 1 == nr)
            assert_true(r[i].height >= minh);
        for (int k = 0; k < n; k++) {
            pt_rung o;
            if (p[k].height <= maxh && p[k].height >= minh &&
                ptplan_curve_at(p, n, p[k].height, lim, r[i].kbps, &o) == 0)
                assert_true(o.psnr <= r[i].psnr + 1e-9 +
                            (p[k].height < r[i].height ? lim->res_margin : 0));
        }
        assert_true(r[i].crf >= lim->crf_min - 1e-9 && r[i].crf <= lim->crf_max + 1e-9);
    }
}

/* ptplan_choose, then check_ladder on what it chose; the count. */
static int choose_checked(const pt_point *p, int n, const pt_limits *lim, pt_rung *r, int max)
{
    int nr = ptplan_choose(p, n, lim, r, max);
    check_ladder(p, n, lim, r, nr);
    return nr;
}

static void test_choose_medium(void **st)
{
    (void)st;
    pt_point p[32];
    int n = model(3000, 44, 20, H5, 5, p);
    pt_limits lim;
    ptplan_limits_default(&lim);
    lim.max_kbps = 4200;
    pt_rung r[8];
    int nr = choose_checked(p, n, &lim, r, 8);
    const pt_rung *top = &r[nr - 1];
    /* the target is reachable under the cap: reached, at the lowest rate */
    assert_true(top->psnr >= lim.top_psnr - 1e-6);
    assert_true(top->kbps < lim.max_kbps);
    for (int k = 0; k < n; k++) {
        pt_rung o;
        if (ptplan_curve_at(p, n, p[k].height, &lim, top->kbps * 0.97, &o) == 0)
            assert_true(o.psnr < lim.top_psnr);
    }
    assert_true(nr >= 3);
    /* the bottom rung is at the floor or a full step above it */
    assert_true(r[0].kbps >= lim.floor_kbps - 1e-9 && r[0].kbps < 2 * lim.floor_kbps);
    /* at low rates a smaller picture wins */
    assert_true(r[0].height < top->height);
    /* evenly spaced: one ratio between all rungs */
    for (int i = 2; i < nr; i++)
        assert_float_equal(r[i].kbps / r[i - 1].kbps, r[1].kbps / r[0].kbps, 1e-6);
    /* with fewer allowed rungs the top stays the same, the bottom stays
     * max_step below it (above the floor) */
    lim.max_rungs = 2;
    pt_rung r2[8];
    choose_checked(p, n, &lim, r2, 8);
    assert_float_equal(r2[1].kbps, top->kbps, 1e-6);
    assert_float_equal(r2[0].kbps, top->kbps / lim.max_step, 1e-6);
    /* the output array's size also bounds the count */
    lim.max_rungs = 6;
    assert_int_equal(ptplan_choose(p, n, &lim, r2, 1), 1);
}

static void test_choose_easy_and_hard(void **st)
{
    (void)st;
    pt_point easy[32], hard[32];
    int ne = model(150, 50, 40, H5, 5, easy);    /* a still slide: few bits reach high quality */
    int nh = model(40000, 33, 30, H5, 5, hard); /* noise: the target is out of reach */
    pt_limits lim;
    ptplan_limits_default(&lim);
    lim.max_kbps = 4200;
    pt_rung re[8], rh[8];
    int nre = choose_checked(easy, ne, &lim, re, 8);
    int nrh = choose_checked(hard, nh, &lim, rh, 8);
    /* easy: the target reached with a top under min_step x floor: one rung */
    assert_true(re[nre - 1].psnr >= lim.top_psnr - 1e-6);
    assert_true(re[nre - 1].kbps < lim.floor_kbps * lim.min_step);
    assert_int_equal(nre, 1);
    /* a little harder: two rungs at least (min_rungs), the bottom at the floor */
    ne = model(1500, 50, 40, H5, 5, easy);
    nre = choose_checked(easy, ne, &lim, re, 8);
    assert_true(nre >= lim.min_rungs);
    assert_float_equal(re[0].kbps, lim.floor_kbps, 1e-6);
    /* hard: the cap binds, and the ladder spans down to the floor */
    assert_float_equal(rh[nrh - 1].kbps, 4200, 1e-6);
    assert_true(rh[nrh - 1].psnr < lim.top_psnr);
    assert_true(strstr(rh[nrh - 1].why, "cap") != NULL);
    assert_true(nrh >= 4);
    double bits_e = 0, bits_h = 0;
    for (int i = 0; i < nre; i++)
        bits_e += re[i].kbps;
    for (int i = 0; i < nrh; i++)
        bits_h += rh[i].kbps;
    assert_true(bits_e * 5 < bits_h);
    /* no cap at all: the top is where the target is reached (or the most
     * the curves make) */
    lim.max_kbps = 0;
    nrh = choose_checked(hard, nh, &lim, rh, 8);
    assert_true(rh[nrh - 1].kbps > 4200);
}

static void test_res_margin(void **st)
{
    (void)st;
    /* two curves 0.1 dB apart: the larger picture wins with the margin, the
     * smaller one without */
    pt_point p[] = { { 1280, 720, 24, 800, 40.0, 0.98 }, { 1280, 720, 34, 250, 35.0, 0.96 },
                     { 640, 360, 24, 800, 40.1, 0.98 },  { 640, 360, 34, 250, 35.1, 0.96 } };
    pt_limits lim;
    ptplan_limits_default(&lim);
    lim.top_psnr = 38;
    pt_rung r[8];
    int n = choose_checked(p, 4, &lim, r, 8);
    assert_int_equal(r[n - 1].height, 720);
    lim.res_margin = 0;
    n = choose_checked(p, 4, &lim, r, 8);
    assert_int_equal(r[n - 1].height, 360);
}

static void test_top_min_height(void **st)
{
    (void)st;
    /* a soft picture: 360p reaches the target cheapest, but the top rung
     * must be at least 540 lines (half of 1080) */
    pt_point p[32];
    int n = model(150, 50, 5, H5, 5, p);
    pt_limits lim;
    ptplan_limits_default(&lim);
    lim.max_kbps = 4200;
    pt_rung r[8];
    int nr = choose_checked(p, n, &lim, r, 8);
    assert_true(r[nr - 1].height < 540);
    lim.top_min_height = 540;
    nr = choose_checked(p, n, &lim, r, 8);
    assert_true(r[nr - 1].height >= 540);
    assert_true(r[nr - 1].psnr >= lim.top_psnr - 1e-6);
    /* no curve that tall: the rule does not apply */
    static const int small[] = { 360, 240 };
    n = model(150, 50, 5, small, 2, p);
    nr = choose_checked(p, n, &lim, r, 8);
    assert_true(nr >= 1 && r[nr - 1].height <= 360);
}

static void test_choose_edges(void **st)
{
    (void)st;
    pt_limits lim;
    ptplan_limits_default(&lim);
    pt_rung r[8];
    assert_int_equal(ptplan_choose(NULL, 0, &lim, r, 8), -1);
    /* one resolution, one point */
    pt_point one[] = { { 320, 240, 27, 400, 38, 0.97 } };
    int n = choose_checked(one, 1, &lim, r, 8);
    assert_int_equal(r[n - 1].height, 240);
    /* everything over the cap: one rung, the cheapest point */
    pt_point dear[] = { { 640, 360, 20, 9000, 30, 0.8 }, { 640, 360, 34, 5000, 25, 0.7 } };
    lim.max_kbps = 500;
    assert_int_equal(ptplan_choose(dear, 2, &lim, r, 8), 1);
    assert_float_equal(r[0].crf, lim.crf_max < 34 + lim.extrap ? lim.crf_max : 34 + lim.extrap, 1e-6);
    assert_true(strstr(r[0].why, "cap") != NULL);
}

/* Another codec's curve at equal PSNR (the per-title AV1 ladder): a codec
 * that needs half the rate for the same PSNR at a higher CRF scale maps
 * to ratio 0.5 and its own CRF, not a fixed multiple of the reference's;
 * out of its range it clamps; no point at the height: -1. */
static void test_codec_map(void **st)
{
    (void)st;
    pt_limits lim, al;
    ptplan_limits_default(&lim);
    al = lim;
    al.crf_min = 1;
    al.crf_max = 63;
    pt_point ref[] = { { 640, 360, 24, 2000, 40, 0.98 }, { 640, 360, 30, 1000, 37, 0.96 },
                       { 640, 360, 36, 500, 34, 0.93 }, { 320, 180, 30, 300, 30, 0.9 } };
    pt_point alt[] = { { 640, 360, 32, 1000, 40, 0.98 }, { 640, 360, 42, 500, 37, 0.96 },
                       { 640, 360, 52, 250, 34, 0.93 } };
    pt_codec_map m;
    assert_int_equal(ptplan_codec_map(ref, 4, &lim, alt, 3, &al, 360, 30, &m), 0);
    assert_float_equal(m.ref_kbps, 1000, 1e-6);
    assert_float_equal(m.psnr, 37, 1e-6);
    assert_float_equal(m.crf, 42, 1e-3);
    assert_float_equal(m.kbps, 500, 0.1);
    assert_float_equal(m.ratio, 0.5, 1e-4);
    /* between probes: CRF 27 -> PSNR 38.5 -> the alt's CRF 37 */
    assert_int_equal(ptplan_codec_map(ref, 4, &lim, alt, 3, &al, 360, 27, &m), 0);
    assert_float_equal(m.crf, 37, 1e-3);
    assert_float_equal(m.ratio, 0.5, 1e-3);
    /* a PSNR the alt curve cannot go down to: its highest CRF (52 + 6) */
    pt_point flat[] = { { 640, 360, 32, 1000, 45, 0.99 }, { 640, 360, 52, 400, 44, 0.99 } };
    assert_int_equal(ptplan_codec_map(ref, 4, &lim, flat, 2, &al, 360, 36, &m), 0);
    assert_float_equal(m.crf, 58, 1e-6);
    assert_int_equal(ptplan_codec_map(ref, 4, &lim, alt, 3, &al, 720, 30, &m), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_hull_known),     cmocka_unit_test(test_curve),
        cmocka_unit_test(test_choose_medium),  cmocka_unit_test(test_choose_easy_and_hard),
        cmocka_unit_test(test_res_margin),     cmocka_unit_test(test_top_min_height),
        cmocka_unit_test(test_choose_edges),   cmocka_unit_test(test_codec_map),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
