/* analysis.h — content complexity of a title, as pure functions over 8-bit
 * luma planes: spatial and temporal information (ITU-T P.910 SI/TI), a luma
 * histogram distance, scene cuts over a run of frames, and a complexity
 * class. No libav state, no allocation: unit tested on synthetic frames
 * with known answers (tests/unit/test_analysis.c).
 *
 * Definitions (P.910, computed on whatever plane size the caller gives;
 * the per-title pass gives luma scaled to AN_WIDTH pixels wide, so figures
 * of titles of different sizes compare):
 *   SI(n) = standard deviation over the pixels of the Sobel gradient
 *           magnitude sqrt(Gx^2 + Gy^2) of frame n (the one-pixel border,
 *           where the 3x3 kernel does not fit, is left out);
 *   TI(n) = standard deviation over the pixels of F(n) - F(n-1).
 * P.910 reports max over time; we keep the per-frame values and summarise
 * them (mean, max, 90th percentile).
 */
#ifndef SS_MEDIA_ANALYSIS_H
#define SS_MEDIA_ANALYSIS_H

#include <stddef.h>
#include <stdint.h>

#define AN_WIDTH 320          /* analysis width in pixels (height from the display aspect) */
#define AN_BINS 32            /* luma histogram bins */

/* Scene cut rule (an_scene_cuts): frame n starts a new scene when
 *   TI(n) >= AN_CUT_TI_MIN and TI(n) >= AN_CUT_TI_RATIO x the median TI of
 *   the AN_CUT_SPAN frames on either side (n itself left out), or
 *   the histogram distance to frame n-1 is >= AN_CUT_HIST. */
#define AN_CUT_TI_MIN 20.0
#define AN_CUT_TI_RATIO 3.0
#define AN_CUT_SPAN 5
#define AN_CUT_HIST 0.5

/* Complexity class (an_class), from the summary and the coding cost the
 * per-title probes measured: bpp30, bits per pixel of the top resolution
 * at CRF 30 (SI/TI at AN_WIDTH miss grain and noise, which a downscale
 * averages away; the encoder does not). "high" when bpp30 >= AN_HIGH_BPP or
 * the mean TI >= AN_HIGH_TI (fast motion, grain, noise); "low" when bpp30 <
 * AN_LOW_BPP and the mean TI < AN_LOW_TI (slides, a still scene); "medium"
 * otherwise. */
#define AN_LOW_BPP 0.012
#define AN_LOW_TI 6.0
#define AN_HIGH_BPP 0.08
#define AN_HIGH_TI 25.0

/* SI of a w x h plane (row stride in bytes). 0 when w or h < 3. */
double an_si(const uint8_t *y, ptrdiff_t stride, int w, int h);

/* TI between cur and prev (same w x h). */
double an_ti(const uint8_t *cur, ptrdiff_t cstride, const uint8_t *prev, ptrdiff_t pstride, int w,
             int h);

/* Luma histogram with AN_BINS bins (8 levels each). */
void an_hist(const uint8_t *y, ptrdiff_t stride, int w, int h, uint32_t hist[AN_BINS]);

/* Distance between two histograms of the same pixel count: half the sum of
 * the absolute bin differences over the pixel count, 0 (same) .. 1
 * (disjoint). */
double an_hist_dist(const uint32_t a[AN_BINS], const uint32_t b[AN_BINS]);

/* Scene cuts in a run of n consecutive frames: ti[k] and hd[k] are TI and
 * histogram distance of frame k against frame k-1 (ti[0], hd[0] are
 * ignored: the run's first frame has no predecessor). Writes the indices of
 * frames that start a new scene into cuts (up to max) and returns how many
 * were found (possibly more than max). */
int an_scene_cuts(const double *ti, const double *hd, int n, int *cuts, int max);

typedef struct an_summary {
    int frames;               /* frames with SI */
    int ti_frames;            /* frames with TI (all but each run's first) */
    double si_mean, si_max, si_p90;
    double ti_mean, ti_max, ti_p90;
} an_summary;

/* Summarise per-frame values (si: n values; ti: nti values). */
void an_summarise(const double *si, int n, const double *ti, int nti, an_summary *out);

/* "low", "medium" or "high" (see AN_LOW_* / AN_HIGH_*); bpp30 < 0:
 * unknown (from TI alone). */
const char *an_class(const an_summary *s, double bpp30);

#endif
