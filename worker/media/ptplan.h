/* ptplan.h — the per-title ladder from probe measurements, as pure
 * functions (no libav, no files): each probe point is one resolution at one
 * CRF with its predicted bitrate and quality at the display size; from them
 * the rate-quality curve of every resolution, the convex hull across
 * resolutions, and the rungs under the documented constraints. Unit tested
 * on fixed data (tests/unit/test_pertitle.c); docs/MEDIA.md states the
 * rules in words.
 *
 * Curves. For one resolution, log2(bitrate), PSNR and SSIM are piecewise
 * linear in CRF through its probe points, extended linearly below the first
 * point by at most lim->extrap_lo CRF steps and past the last by at most
 * lim->extrap (never outside lim->crf_min..crf_max). The low side is kept
 * short: under the probed range x264's rate rises faster than the
 * extension (grain turns into bits), so a rung planned there overshoots. A resolution can make the rates between those two
 * ends; a rate outside them is not offered at that resolution.
 *
 * Hull. The upper convex hull of all points in (log2 bitrate, PSNR),
 * cut after its best-quality vertex: points under it are dominated (another
 * resolution, or a mix, gives more quality for the bits).
 *
 * Rungs (ptplan_choose), from the top down:
 *  1. top rate: the lowest rate at which the best curve reaches
 *     lim->top_psnr ("good enough: stop spending"), or lim->max_kbps when
 *     no curve reaches the target under it (never above; never above what
 *     the best curve can make); only curves at least lim->top_min_height
 *     tall count for the top (the picture a big screen shows);
 *  2. the other rates evenly spaced in log(rate) from the top down to
 *     lim->floor_kbps: as few rungs as keep adjacent rates at most
 *     lim->max_step apart, but at least lim->min_rungs and at most
 *     lim->max_rungs (the bottom then stays above the floor, max_step
 *     apart), and never closer than lim->min_step (fewer rungs instead; a
 *     top under min_step x floor is the only rung); nothing below the
 *     floor; a rate under every allowed curve moves up to the lowest rate
 *     they make if that is still min_step below the rung above, else the
 *     ladder ends there;
 *  3. each rung takes the resolution whose curve gives the most PSNR at its
 *     rate among those no larger than the rung above (resolution never
 *     grows as the rate falls), at the CRF that curve needs for the rate; a
 *     smaller resolution must win by more than lim->res_margin dB (it is
 *     scaled up on screen, and PSNR under-rates blur).
 */
#ifndef SS_MEDIA_PTPLAN_H
#define SS_MEDIA_PTPLAN_H

#define PT_MAX_POINTS 32

typedef struct pt_point {
    int width, height;      /* probe resolution (the key of its curve: height) */
    double crf;
    double kbps;            /* predicted average video bitrate of a full encode */
    double psnr;            /* predicted luma PSNR at the display size, dB */
    double ssim;            /* predicted luma SSIM at the display size */
} pt_point;

typedef struct pt_limits {
    int min_rungs, max_rungs;   /* 2, 5 */
    double max_step;            /* adjacent rungs at most this rate ratio apart: 2.5 */
    double min_step;            /* ... and at least this: 1.5 */
    double top_psnr;            /* quality target of the top rung: 44 dB */
    double max_kbps;            /* the top rung's average rate at most this (the caller's cap) */
    double floor_kbps;          /* no rung below this: 150 */
    double crf_min, crf_max;    /* CRFs the curves may use: 14 .. 44 */
    double extrap;              /* CRF steps a curve may extend above its last probe: 6 */
    double extrap_lo;           /* ... and below its first probe: 3 (rates grow faster there) */
    double res_margin;          /* a smaller resolution must beat a larger one by this: 0.2 dB */
    int top_min_height;         /* the top rung at least this tall (when a curve is): 0 */
} pt_limits;

typedef struct pt_rung {
    int width, height;
    double kbps;            /* target (predicted) average rate */
    double crf;             /* the CRF the curve needs for kbps */
    double psnr, ssim;      /* predicted */
    char why[240];          /* one sentence: why this rate and this resolution */
} pt_rung;

void ptplan_limits_default(pt_limits *l);

/* Another codec measured on the same frames at one resolution (the AV1
 * ladder of a per-title job): where the reference codec's curve of
 * `height` is at CRF crf (clamped to its range), the other codec's curve
 * at equal PSNR. */
typedef struct pt_codec_map {
    double ref_crf, ref_kbps;   /* the reference curve at crf */
    double psnr;                /* its PSNR there */
    double crf, kbps;           /* the other curve's CRF and rate for that PSNR (clamped to
                                 * its range) */
    double ratio;               /* kbps / ref_kbps */
} pt_codec_map;

/* 0 and out filled, or -1 when either curve has no point at height. */
int ptplan_codec_map(const pt_point *ref, int nref, const pt_limits *lref, const pt_point *alt,
                     int nalt, const pt_limits *lalt, int height, double crf, pt_codec_map *out);

/* Upper convex hull of the points (kbps > 0) in (log2 kbps, psnr), cut
 * after its best-quality vertex. idx receives indices into p in increasing
 * rate (n entries at most); returns their count. */
int ptplan_hull(const pt_point *p, int n, int *idx);

/* The curve of resolution `height` at rate kbps: 0 and out filled (width,
 * height, kbps, crf, psnr, ssim) when the curve can make that rate, -1
 * when not. */
int ptplan_curve_at(const pt_point *p, int n, int height, const pt_limits *lim, double kbps,
                    pt_rung *out);

/* The range of rates the curve of `height` can make; -1 when it has no
 * points. */
int ptplan_curve_range(const pt_point *p, int n, int height, const pt_limits *lim, double *lo,
                       double *hi);

/* The rungs, smallest first, into out (max entries, max >= 1). Returns
 * the count (>= 1), or -1 when there are no usable points. */
int ptplan_choose(const pt_point *p, int n, const pt_limits *lim, pt_rung *out, int max);

#endif
