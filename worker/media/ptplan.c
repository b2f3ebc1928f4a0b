/* ptplan.c — per-title curves, hull and rung choice (see ptplan.h). Pure
 * functions over probe points. */
#include "ptplan.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

void ptplan_limits_default(pt_limits *l)
{
    memset(l, 0, sizeof(*l));
    l->min_rungs = 2;
    l->max_rungs = 5;
    l->max_step = 2.5;
    l->min_step = 1.5;
    l->top_psnr = 45.0;
    l->max_kbps = 0;   /* the caller sets its cap; 0: none */
    l->floor_kbps = 150;
    l->crf_min = 14;
    l->crf_max = 44;
    l->extrap = 6;
    l->extrap_lo = 3;
    l->res_margin = 0.2;
    l->top_min_height = 0;
}

static void appendf(char *buf, size_t n, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static void appendf(char *buf, size_t n, const char *fmt, ...)
{
    size_t used = strlen(buf);
    if (used + 1 >= n)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf + used, n - used, fmt, ap);   /* a long sentence is cut, never overrun */
    va_end(ap);
}

/* ---- hull ------------------------------------------------------------ */

int ptplan_hull(const pt_point *p, int n, int *idx)
{
    int ord[PT_MAX_POINTS], m = 0;
    for (int i = 0; i < n && m < PT_MAX_POINTS; i++)
        if (p[i].kbps > 0)
            ord[m++] = i;
    /* by rate, then by quality (higher first at the same rate) */
    for (int i = 1; i < m; i++)
        for (int k = i; k > 0; k--) {
            const pt_point *a = &p[ord[k - 1]], *b = &p[ord[k]];
            if (a->kbps > b->kbps || (a->kbps == b->kbps && a->psnr < b->psnr)) {
                int t = ord[k];
                ord[k] = ord[k - 1];
                ord[k - 1] = t;
            } else {
                break;
            }
        }
    int h = 0;
    for (int i = 0; i < m; i++) {
        const pt_point *c = &p[ord[i]];
        if (h && p[idx[h - 1]].kbps == c->kbps)
            continue;   /* same rate, lower quality */
        double cx = log2(c->kbps), cy = c->psnr;
        while (h >= 2) {
            const pt_point *a = &p[idx[h - 2]], *b = &p[idx[h - 1]];
            double ax = log2(a->kbps), ay = a->psnr, bx = log2(b->kbps), by = b->psnr;
            /* b is under (or on) the chord a-c: not a vertex of the upper hull */
            if ((bx - ax) * (cy - ay) - (by - ay) * (cx - ax) >= -1e-9)
                h--;
            else
                break;
        }
        idx[h++] = ord[i];
    }
    /* cut after the best-quality vertex: more bits for less quality is dominated */
    int best = 0;
    for (int i = 1; i < h; i++)
        if (p[idx[i]].psnr > p[idx[best]].psnr)
            best = i;
    return h ? best + 1 : 0;
}

/* ---- one resolution's curve ------------------------------------------ */

typedef struct curve {
    int k;
    double crf[PT_MAX_POINTS], lr[PT_MAX_POINTS], q[PT_MAX_POINTS], s[PT_MAX_POINTS];
    int width, height;
    double lo_crf, hi_crf;
} curve;

static int curve_make(const pt_point *p, int n, int height, const pt_limits *lim, curve *c)
{
    memset(c, 0, sizeof(*c));
    for (int i = 0; i < n && c->k < PT_MAX_POINTS; i++) {
        if (p[i].height != height || !(p[i].kbps > 0))
            continue;
        int k = c->k++;
        /* insert by CRF */
        while (k > 0 && c->crf[k - 1] > p[i].crf) {
            c->crf[k] = c->crf[k - 1];
            c->lr[k] = c->lr[k - 1];
            c->q[k] = c->q[k - 1];
            c->s[k] = c->s[k - 1];
            k--;
        }
        c->crf[k] = p[i].crf;
        c->lr[k] = log2(p[i].kbps);
        c->q[k] = p[i].psnr;
        c->s[k] = p[i].ssim;
        c->width = p[i].width;
        c->height = height;
    }
    if (!c->k)
        return -1;
    /* monotone in CRF: a higher CRF never costs more bits or gives more
     * quality (probe noise aside) */
    for (int i = 1; i < c->k; i++) {
        if (c->crf[i] <= c->crf[i - 1])
            c->crf[i] = c->crf[i - 1] + 1e-3;
        if (c->lr[i] > c->lr[i - 1] - 1e-3)
            c->lr[i] = c->lr[i - 1] - 1e-3;
        if (c->q[i] > c->q[i - 1])
            c->q[i] = c->q[i - 1];
        if (c->s[i] > c->s[i - 1])
            c->s[i] = c->s[i - 1];
    }
    c->lo_crf = fmax(lim->crf_min, c->crf[0] - lim->extrap_lo);
    c->hi_crf = fmin(lim->crf_max, c->crf[c->k - 1] + lim->extrap);
    if (c->hi_crf < c->lo_crf)
        c->lo_crf = c->hi_crf = fmin(fmax(c->crf[0], lim->crf_min), lim->crf_max);
    return 0;
}

/* value of series v at CRF x: piecewise linear, end segments extended
 * (one point: slope d1 per CRF step) */
static double curve_eval(const curve *c, const double *v, double x, double d1)
{
    if (c->k == 1)
        return v[0] + d1 * (x - c->crf[0]);
    int i = 0;
    while (i < c->k - 2 && x > c->crf[i + 1])
        i++;
    double t = (x - c->crf[i]) / (c->crf[i + 1] - c->crf[i]);
    return v[i] + t * (v[i + 1] - v[i]);
}

/* single-point slopes: x264 roughly halves the rate every 6 CRF steps */
#define LR_SLOPE (-1.0 / 6.0)
#define Q_SLOPE (-0.5)
#define S_SLOPE (-0.002)

static double curve_lr(const curve *c, double x)
{
    return curve_eval(c, c->lr, x, LR_SLOPE);
}

static int curve_at(const curve *c, double kbps, pt_rung *out)
{
    double want = log2(kbps);
    double hi = curve_lr(c, c->lo_crf), lo = curve_lr(c, c->hi_crf);
    if (want > hi + 1e-9 || want < lo - 1e-9)
        return -1;
    /* log2 rate falls strictly with CRF: bisect */
    double a = c->lo_crf, b = c->hi_crf;
    for (int it = 0; it < 60; it++) {
        double m = (a + b) / 2;
        if (curve_lr(c, m) > want)
            a = m;
        else
            b = m;
    }
    double x = (a + b) / 2;
    memset(out, 0, sizeof(*out));
    out->width = c->width;
    out->height = c->height;
    out->kbps = kbps;
    out->crf = x;
    out->psnr = curve_eval(c, c->q, x, Q_SLOPE);
    out->ssim = fmin(1.0, curve_eval(c, c->s, x, S_SLOPE));
    return 0;
}

int ptplan_curve_at(const pt_point *p, int n, int height, const pt_limits *lim, double kbps,
                    pt_rung *out)
{
    curve c;
    if (!(kbps > 0) || curve_make(p, n, height, lim, &c))
        return -1;
    return curve_at(&c, kbps, out);
}

int ptplan_curve_range(const pt_point *p, int n, int height, const pt_limits *lim, double *lo,
                       double *hi)
{
    curve c;
    if (curve_make(p, n, height, lim, &c))
        return -1;
    *lo = exp2(curve_lr(&c, c.hi_crf));
    *hi = exp2(curve_lr(&c, c.lo_crf));
    return 0;
}

int ptplan_codec_map(const pt_point *ref, int nref, const pt_limits *lref, const pt_point *alt,
                     int nalt, const pt_limits *lalt, int height, double crf, pt_codec_map *out)
{
    curve a, b;
    if (curve_make(ref, nref, height, lref, &a) || curve_make(alt, nalt, height, lalt, &b))
        return -1;
    memset(out, 0, sizeof(*out));
    out->ref_crf = fmin(fmax(crf, a.lo_crf), a.hi_crf);
    out->ref_kbps = exp2(curve_lr(&a, out->ref_crf));
    out->psnr = curve_eval(&a, a.q, out->ref_crf, Q_SLOPE);
    /* PSNR never rises with the CRF: bisect for the last CRF still at it */
    double lo = b.lo_crf, hi = b.hi_crf;
    for (int it = 0; it < 60; it++) {
        double m = (lo + hi) / 2;
        if (curve_eval(&b, b.q, m, Q_SLOPE) >= out->psnr)
            lo = m;
        else
            hi = m;
    }
    out->crf = (lo + hi) / 2;
    out->kbps = exp2(curve_lr(&b, out->crf));
    out->ratio = out->kbps / out->ref_kbps;
    return 0;
}

/* ---- the ladder ------------------------------------------------------ */

typedef struct curves {
    curve c[PT_MAX_POINTS];
    int n;                 /* by height, largest first */
} curves;

static void curves_make(const pt_point *p, int n, const pt_limits *lim, curves *cs)
{
    cs->n = 0;
    for (int i = 0; i < n; i++) {
        int seen = 0;
        for (int k = 0; k < cs->n; k++)
            if (cs->c[k].height == p[i].height)
                seen = 1;
        if (seen || !(p[i].kbps > 0) || cs->n == PT_MAX_POINTS)
            continue;
        if (curve_make(p, n, p[i].height, lim, &cs->c[cs->n]) == 0)
            cs->n++;
    }
    for (int i = 1; i < cs->n; i++)
        for (int k = i; k > 0 && cs->c[k].height > cs->c[k - 1].height; k--) {
            curve t = cs->c[k];
            cs->c[k] = cs->c[k - 1];
            cs->c[k - 1] = t;
        }
}

static double curve_lo(const curve *c)
{
    return exp2(curve_lr(c, c->hi_crf));
}

static double curve_hi(const curve *c)
{
    return exp2(curve_lr(c, c->lo_crf));
}

/* Best resolution no taller than maxh at kbps; *second: the runner-up
 * (height 0 when none). -1 when no curve makes the rate. */
static int best_at(const curves *cs, double kbps, int minh, int maxh, double margin, pt_rung *best,
                   pt_rung *second)
{
    int found = 0;
    memset(second, 0, sizeof(*second));
    for (int i = 0; i < cs->n; i++) {
        pt_rung r;
        if (cs->c[i].height > maxh || cs->c[i].height < minh || curve_at(&cs->c[i], kbps, &r))
            continue;
        /* curves come largest first: a smaller picture must win by more
         * than the margin */
        if (!found || r.psnr > best->psnr + margin + 1e-9) {
            if (found)
                *second = *best;
            *best = r;
            found = 1;
        } else if (!second->height || r.psnr > second->psnr) {
            *second = r;
        }
    }
    return found ? 0 : -1;
}

static double envelope(const curves *cs, double kbps, int minh, double margin)
{
    pt_rung b, s;
    return best_at(cs, kbps, minh, 1 << 30, margin, &b, &s) ? -1e9 : b.psnr;
}

static void why_res(pt_rung *r, const pt_rung *second, int ncand)
{
    if (second->height)
        appendf(r->why, sizeof(r->why), "; %dx%d gives the most PSNR at this rate (%.2f dB, CRF %.1f; "
                "next best %dx%d %.2f dB)", r->width, r->height, r->psnr, r->crf, second->width,
                second->height, second->psnr);
    else
        appendf(r->why, sizeof(r->why), "; %dx%d is the only resolution%s that makes this rate "
                "(%.2f dB, CRF %.1f)", r->width, r->height, ncand > 1 ? " allowed here" : "",
                r->psnr, r->crf);
}

int ptplan_choose(const pt_point *p, int n, const pt_limits *lim, pt_rung *out, int max)
{
    curves local;   /* about 32 KiB */
    curves *cs = &local;
    curves_make(p, n, lim, cs);
    if (!cs->n || max < 1)
        return -1;
    /* the top rung's resolution: at least lim->top_min_height when a curve
     * is that tall */
    int minh = cs->c[0].height >= lim->top_min_height ? lim->top_min_height : 0;
    double lo_all = 1e300, hi_all = 0;
    for (int i = 0; i < cs->n; i++) {
        if (cs->c[i].height < minh)
            continue;
        lo_all = fmin(lo_all, curve_lo(&cs->c[i]));
        hi_all = fmax(hi_all, curve_hi(&cs->c[i]));
    }
    double cap = lim->max_kbps > 0 ? lim->max_kbps : hi_all;
    double rhi = fmin(cap, hi_all);
    pt_rung rungs[16], second;
    int nr = 0, maxr = lim->max_rungs < max ? lim->max_rungs : max;
    if (maxr > 16)
        maxr = 16;
    if (maxr < 1)
        maxr = 1;

    if (rhi < lo_all) {
        /* even the cheapest point is over the cap: one rung there */
        best_at(cs, lo_all, minh, 1 << 30, lim->res_margin, &rungs[0], &second);
        snprintf(rungs[0].why, sizeof(rungs[0].why), "only rung: every resolution needs more than "
                 "the %.0f kbps cap even at CRF %.0f, so the cheapest point", cap, lim->crf_max);
        why_res(&rungs[0], &second, cs->n);
        out[0] = rungs[0];
        return 1;
    }
    /* 1. the top rate. The envelope need not rise with the rate (the
     * curves cover different ranges; a still picture's rate hardly moves
     * with the CRF), so scan it on a log grid: the first rate where it
     * reaches the target (refined by bisection), else the lowest rate of
     * its best quality under the cap. */
    double rtop;
    int why_top;
    enum { GRID = 400 };
    double a = log2(lo_all), b = log2(rhi), xprev = a;
    double best_q = -1e9, best_r = rhi;
    int hit = 0;
    for (int k = 0; k <= GRID && !hit; k++) {
        double x = a + (b - a) * k / GRID;
        double q = envelope(cs, exp2(x), minh, lim->res_margin);
        if (q >= lim->top_psnr) {
            hit = 1;
            if (k > 0) {
                double lo = xprev, hi = x;
                for (int it = 0; it < 40; it++) {
                    double m = (lo + hi) / 2;
                    if (envelope(cs, exp2(m), minh, lim->res_margin) >= lim->top_psnr)
                        hi = m;
                    else
                        lo = m;
                }
                x = hi;
            }
            best_r = exp2(x);
        } else if (q > best_q + 1e-3) {
            best_q = q;
            best_r = exp2(x);
        }
        xprev = x;
    }
    rtop = best_r;
    if (hit)
        why_top = rtop <= lo_all * (1 + 1e-9) ? 2 : 3;
    else
        why_top = lim->max_kbps <= 0 || rhi < lim->max_kbps || rtop < rhi * (1 - 1e-6) ? 0 : 1;
    best_at(cs, rtop, minh, 1 << 30, lim->res_margin, &rungs[0], &second);
    if (why_top == 0)
        snprintf(rungs[0].why, sizeof(rungs[0].why), "top: the best quality the curves make%s "
                 "(%.0f kbps) stays under the %.1f dB target", lim->max_kbps > 0 ? " under the cap" : "",
                 rtop, lim->top_psnr);
    else if (why_top == 1)
        snprintf(rungs[0].why, sizeof(rungs[0].why), "top: the %.1f dB target is not reached under "
                 "the %.0f kbps cap, so the cap", lim->top_psnr, cap);
    else if (why_top == 2)
        snprintf(rungs[0].why, sizeof(rungs[0].why), "top: even the cheapest point (%.0f kbps) "
                 "reaches the %.1f dB target", rtop, lim->top_psnr);
    else
        snprintf(rungs[0].why, sizeof(rungs[0].why), "top: the lowest rate at which the best curve "
                 "reaches the %.1f dB target", lim->top_psnr);
    why_res(&rungs[0], &second, cs->n);
    nr = 1;

    /* 2. downwards: how many rungs, how far apart */
    int want = 1;
    double ratio = lim->max_step;
    if (rtop >= lim->floor_kbps * lim->min_step) {
        double span = rtop / lim->floor_kbps;
        want = 1 + (int)ceil(log(span) / log(lim->max_step) - 1e-9);
        if (want < lim->min_rungs)
            want = lim->min_rungs;
        if (want > maxr)
            want = maxr;
        while (want > 1 && pow(span, 1.0 / (want - 1)) < lim->min_step - 1e-9)
            want--;
        if (want > 1)
            ratio = fmin(pow(span, 1.0 / (want - 1)), lim->max_step);
    }
    while (nr < want) {
        const pt_rung *prev = &rungs[nr - 1];
        double r = prev->kbps / ratio;
        if (r < lim->floor_kbps)
            r = lim->floor_kbps;   /* rounding */
        char w[240];
        if (nr + 1 == want && fabs(r - lim->floor_kbps) < 1e-6 * r)
            snprintf(w, sizeof(w), "bottom: the %.0f kbps floor, %d rungs evenly spaced (%.2fx) below "
                     "the top", lim->floor_kbps, want, ratio);
        else
            snprintf(w, sizeof(w), "%.2fx below the rung above (%d rungs evenly spaced from the top "
                     "to the %.0f kbps floor, at most %.1fx apart)", ratio, want, lim->floor_kbps,
                     lim->max_step);
        pt_rung cand;
        if (best_at(cs, r, 0, prev->height, lim->res_margin, &cand, &second)) {
            /* under every allowed curve: the lowest rate they make, if far enough below */
            double lo = 1e300;
            for (int i = 0; i < cs->n; i++)
                if (cs->c[i].height <= prev->height)
                    lo = fmin(lo, curve_lo(&cs->c[i]));
            if (lo > r && prev->kbps / lo >= lim->min_step - 1e-9 &&
                best_at(cs, lo, 0, prev->height, lim->res_margin, &cand, &second) == 0) {
                snprintf(w, sizeof(w), "bottom: the lowest rate the curves make (CRF %.1f), %.2fx "
                         "below the rung above", cand.crf, prev->kbps / lo);
                want = nr + 1;
            } else {
                break;
            }
        }
        int allowed = 0;
        for (int i = 0; i < cs->n; i++)
            allowed += cs->c[i].height <= prev->height;
        snprintf(cand.why, sizeof(cand.why), "%s", w);
        why_res(&cand, &second, allowed);
        rungs[nr++] = cand;
    }
    for (int i = 0; i < nr; i++)
        out[i] = rungs[nr - 1 - i];
    return nr;
}
