/* analysis.c — SI/TI, histogram distance, scene cuts and the complexity
 * class (see analysis.h). Pure functions over luma planes. */
#include "analysis.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

double an_si(const uint8_t *y, ptrdiff_t stride, int w, int h)
{
    if (w < 3 || h < 3)
        return 0;
    double sum = 0, sum2 = 0;
    long n = 0;
    for (int r = 1; r < h - 1; r++) {
        const uint8_t *a = y + (r - 1) * stride, *b = y + r * stride, *c = y + (r + 1) * stride;
        for (int x = 1; x < w - 1; x++) {
            int gx = (a[x + 1] + 2 * b[x + 1] + c[x + 1]) - (a[x - 1] + 2 * b[x - 1] + c[x - 1]);
            int gy = (c[x - 1] + 2 * c[x] + c[x + 1]) - (a[x - 1] + 2 * a[x] + a[x + 1]);
            double m = sqrt((double)(gx * gx + gy * gy));
            sum += m;
            sum2 += m * m;
            n++;
        }
    }
    double mean = sum / n, var = sum2 / n - mean * mean;
    return var > 0 ? sqrt(var) : 0;
}

double an_ti(const uint8_t *cur, ptrdiff_t cstride, const uint8_t *prev, ptrdiff_t pstride, int w,
             int h)
{
    if (w < 1 || h < 1)
        return 0;
    /* exact integer sums (a row's squares fit 32 bits up to 33,000 pixels) */
    int64_t sum = 0, sum2 = 0;
    for (int r = 0; r < h; r++) {
        const uint8_t *a = cur + r * cstride, *b = prev + r * pstride;
        int32_t s = 0, s2 = 0;
        for (int x = 0; x < w; x++) {
            int d = a[x] - b[x];
            s += d;
            s2 += d * d;
        }
        sum += s;
        sum2 += s2;
    }
    double n = (double)w * h, mean = sum / n, var = sum2 / n - mean * mean;
    return var > 0 ? sqrt(var) : 0;
}

void an_hist(const uint8_t *y, ptrdiff_t stride, int w, int h, uint32_t hist[AN_BINS])
{
    memset(hist, 0, AN_BINS * sizeof(hist[0]));
    for (int r = 0; r < h; r++)
        for (int x = 0; x < w; x++)
            hist[y[r * stride + x] * AN_BINS / 256]++;
}

double an_hist_dist(const uint32_t a[AN_BINS], const uint32_t b[AN_BINS])
{
    uint64_t na = 0, d = 0;
    for (int i = 0; i < AN_BINS; i++) {
        na += a[i];
        d += a[i] > b[i] ? a[i] - b[i] : b[i] - a[i];
    }
    return na ? (double)d / (2.0 * (double)na) : 0;
}

static int cmp_double(const void *x, const void *y)
{
    double a = *(const double *)x, b = *(const double *)y;
    return a < b ? -1 : a > b;
}

int an_scene_cuts(const double *ti, const double *hd, int n, int *cuts, int max)
{
    int found = 0;
    for (int k = 1; k < n; k++) {
        double near[2 * AN_CUT_SPAN];
        int m = 0;
        for (int i = k - AN_CUT_SPAN; i <= k + AN_CUT_SPAN; i++)
            if (i >= 1 && i < n && i != k)
                near[m++] = ti[i];
        double med = 0;
        if (m) {
            qsort(near, (size_t)m, sizeof(near[0]), cmp_double);
            med = m % 2 ? near[m / 2] : (near[m / 2 - 1] + near[m / 2]) / 2;
        }
        int cut = (ti[k] >= AN_CUT_TI_MIN && ti[k] >= AN_CUT_TI_RATIO * med) ||
                  (hd && hd[k] >= AN_CUT_HIST);
        if (cut) {
            if (found < max)
                cuts[found] = k;
            found++;
        }
    }
    return found;
}

/* mean, max and 90th percentile (nearest rank) of v[0..n) */
static void stats(const double *v, int n, double *mean, double *mx, double *p90)
{
    *mean = *mx = *p90 = 0;
    if (n <= 0)
        return;
    double s = 0;
    double *c = malloc((size_t)n * sizeof(*c));
    for (int i = 0; i < n; i++) {
        s += v[i];
        if (i == 0 || v[i] > *mx)
            *mx = v[i];
        if (c)
            c[i] = v[i];
    }
    *mean = s / n;
    if (c) {
        qsort(c, (size_t)n, sizeof(*c), cmp_double);
        int rank = (int)ceil(0.9 * n) - 1;
        *p90 = c[rank < 0 ? 0 : rank];
        free(c);
    } else {
        *p90 = *mx;
    }
}

void an_summarise(const double *si, int n, const double *ti, int nti, an_summary *out)
{
    memset(out, 0, sizeof(*out));
    out->frames = n;
    out->ti_frames = nti;
    stats(si, n, &out->si_mean, &out->si_max, &out->si_p90);
    stats(ti, nti, &out->ti_mean, &out->ti_max, &out->ti_p90);
}

const char *an_class(const an_summary *s, double bpp30)
{
    if (s->ti_mean >= AN_HIGH_TI || bpp30 >= AN_HIGH_BPP)
        return "high";
    if (s->ti_mean < AN_LOW_TI && bpp30 < AN_LOW_BPP)
        return "low";
    return "medium";
}
