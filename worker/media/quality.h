/* quality.h — objective quality of encoded video against its source:
 * PSNR and SSIM of the luma plane, and a meter that decodes an encoder's
 * real output packets and measures chosen frames against kept references.
 *
 * The plane functions are pure (unit tested with known answers in
 * tests/unit/test_media_quality.c):
 *   MSE  = mean of (a - b)^2 over the plane;
 *   PSNR = 10 log10(255^2 / MSE) dB, Q_PSNR_MAX when MSE is 0; a series is
 *          summarised by the PSNR of its mean MSE (as ffmpeg's psnr filter);
 *   SSIM = mean over 8x8 windows placed every 4 pixels (overlapping by
 *          half) of ((2 mx my + C1)(2 cxy + C2)) / ((mx^2 + my^2 + C1)
 *          (vx + vy + C2)), means mx, my, sample variances vx, vy and
 *          covariance cxy (n - 1 = 63 in the divisor), C1 = (0.01 x 255)^2,
 *          C2 = (0.03 x 255)^2 (Wang et al. 2004 with the 8x8 window of
 *          x264 and ffmpeg's ssim filter instead of the 11x11 Gaussian);
 *          a plane smaller than 8x8 is one window.
 *
 * The meter compares at one reference size (the caller's display size):
 * references are scaled to it when they differ, decoded frames are scaled
 * up (or down) to it with swscale's bicubic filter, as a player would
 * before showing them full screen.
 */
#ifndef SS_MEDIA_QUALITY_H
#define SS_MEDIA_QUALITY_H

#include <stddef.h>
#include <stdint.h>

#include <libavcodec/avcodec.h>

#include "ss_err.h"

#define Q_PSNR_MAX 100.0

double q_mse(const uint8_t *a, ptrdiff_t as, const uint8_t *b, ptrdiff_t bs, int w, int h);
double q_psnr(double mse);
double q_ssim(const uint8_t *a, ptrdiff_t as, const uint8_t *b, ptrdiff_t bs, int w, int h);

struct SwsContext;
/* sws_getCachedContext() for the luma of a w x h frame of format fmt to a
 * GRAY8 ow x oh picture (bicubic), sample values kept as they are (no
 * limited-to-full range stretch). */
struct SwsContext *q_luma_scaler(struct SwsContext *c, int w, int h, int fmt, int ow, int oh);

typedef struct q_sample {
    int64_t pts;       /* in the encoder's time base */
    double mse, ssim;  /* luma, at the reference size */
} q_sample;

typedef struct qmeter qmeter;

/* A meter for what enc (an open H.264 encoder with its extradata) produces,
 * compared at ref_w x ref_h. Free with qmeter_free(). */
qmeter *qmeter_new(const AVCodecContext *enc, int ref_w, int ref_h, ss_err *err);

/* Keep src (any size, 8-bit YUV or gray; its luma is used) as the
 * reference of the output frame whose pts (encoder time base) is src->pts.
 * The frame is referenced (or scaled into a new frame), never modified. At
 * most a few dozen references wait at a time; the oldest is dropped beyond
 * that. */
int qmeter_ref(qmeter *m, const AVFrame *src, ss_err *err);

/* Decode one output packet (NULL: flush the decoder) and measure every
 * decoded frame that has a reference. Packets must be sent in decode order
 * from a keyframe on; whole GOPs may be skipped. Undecodable packets are
 * counted (qmeter_errors), not fatal. */
int qmeter_packet(qmeter *m, const AVPacket *pkt, ss_err *err);

/* Measure the frames still in the decoder and make it ready for the next
 * packets (from a keyframe), keeping the references: the end of a chunk
 * in a run that goes on (its frames are counted in its record). */
int qmeter_drain(qmeter *m, ss_err *err);

/* The measured frames so far (owned by m). */
const q_sample *qmeter_samples(const qmeter *m, int *n);
int qmeter_errors(const qmeter *m);

/* PSNR of the mean MSE and the mean SSIM of the samples; 0 and 0 when
 * none. */
void qmeter_mean(const qmeter *m, double *psnr, double *ssim);

void qmeter_free(qmeter **m);

#endif
