/* Unit tests for worker/media/quality.c: MSE/PSNR and SSIM of planes with
 * known answers (identical, constant offset, constant planes, noise
 * ordering, tiny planes), and the meter end to end: libx264 encodes a
 * moving synthetic picture, the meter decodes the real packets and
 * measures the frames it was given references for, at the encoded size
 * and scaled up to a larger display size. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <libavutil/log.h>
#include <libavutil/opt.h>

#include "quality.h"

#define W 64
#define H 48

static uint8_t a[H][W], b[H][W];

static uint32_t rng = 12345;
static int rnd(void)
{
    rng = rng * 1103515245u + 12345u;
    return (int)((rng >> 16) & 0x7fff);
}

static void test_mse_psnr(void **st)
{
    (void)st;
    for (int y = 0; y < H; y++)
        for (int x = 0; x < W; x++)
            a[y][x] = (uint8_t)(40 + (x * 3 + y * 5) % 150);
    memcpy(b, a, sizeof(a));
    assert_true(q_mse(&a[0][0], W, &b[0][0], W, W, H) == 0.0);
    assert_true(q_psnr(0) == Q_PSNR_MAX);
    for (int y = 0; y < H; y++)
        for (int x = 0; x < W; x++)
            b[y][x] = a[y][x] + 5;
    assert_float_equal(q_mse(&a[0][0], W, &b[0][0], W, W, H), 25.0, 1e-12);
    assert_float_equal(q_psnr(25.0), 10 * log10(65025.0 / 25.0), 1e-12);
    assert_float_equal(q_psnr(65025.0), 0.0, 1e-12);
    /* half the pixels off by 10: MSE 50 */
    memcpy(b, a, sizeof(a));
    for (int y = 0; y < H / 2; y++)
        for (int x = 0; x < W; x++)
            b[y][x] = a[y][x] - 10;
    assert_float_equal(q_mse(&a[0][0], W, &b[0][0], W, W, H), 50.0, 1e-12);
}

static void test_ssim(void **st)
{
    (void)st;
    for (int y = 0; y < H; y++)
        for (int x = 0; x < W; x++)
            a[y][x] = (uint8_t)rnd();
    assert_float_equal(q_ssim(&a[0][0], W, &a[0][0], W, W, H), 1.0, 1e-12);
    /* constant planes 100 and 110: no variance, only the luminance term */
    memset(a, 100, sizeof(a));
    memset(b, 110, sizeof(b));
    const double c1 = (0.01 * 255) * (0.01 * 255);
    double want = (2.0 * 100 * 110 + c1) / (100.0 * 100 + 110.0 * 110 + c1);
    assert_float_equal(q_ssim(&a[0][0], W, &b[0][0], W, W, H), want, 1e-12);
    /* the same on a plane too small for an 8x8 window (one window) */
    assert_float_equal(q_ssim(&a[0][0], W, &b[0][0], W, 5, 3), want, 1e-12);
    /* more noise, less similarity; symmetric */
    for (int y = 0; y < H; y++)
        for (int x = 0; x < W; x++)
            a[y][x] = (uint8_t)(60 + (x * 4 + y * 2) % 120);
    double prev = 1.0;
    for (int amp = 4; amp <= 64; amp *= 2) {
        for (int y = 0; y < H; y++)
            for (int x = 0; x < W; x++)
                b[y][x] = (uint8_t)(a[y][x] + rnd() % amp - amp / 2);
        double s = q_ssim(&a[0][0], W, &b[0][0], W, W, H);
        assert_true(s < prev);
        assert_true(s > 0);
        assert_float_equal(s, q_ssim(&b[0][0], W, &a[0][0], W, W, H), 1e-12);
        prev = s;
    }
}

/* A moving diagonal gradient with a bright square, w x h yuv420p. */
static AVFrame *picture(int w, int h, int t)
{
    AVFrame *f = av_frame_alloc();
    f->format = AV_PIX_FMT_YUV420P;
    f->width = w;
    f->height = h;
    assert_true(av_frame_get_buffer(f, 0) >= 0);
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++) {
            /* in 160 x 96 units, so every size shows the same picture */
            int u = x * 160 / w, z = y * 96 / h;
            int v = (u * 2 + z + t * 3) % 200 + 20;
            if (u > t * 2 % 160 && u < t * 2 % 160 + 26 && z > 32 && z < 48)
                v = 235;
            f->data[0][y * f->linesize[0] + x] = (uint8_t)v;
        }
    for (int p = 1; p < 3; p++)
        for (int y = 0; y < h / 2; y++)
            memset(f->data[p] + y * f->linesize[p], 128 + (p == 1 ? t % 20 : -(t % 20)), (size_t)w / 2);
    f->pts = t;
    return f;
}

static void meter_run(int enc_w, int enc_h, int ref_w, int ref_h, double min_psnr)
{
    const AVCodec *c = avcodec_find_encoder_by_name("libx264");
    if (!c) {
        skip();
        return;
    }
    AVCodecContext *enc = avcodec_alloc_context3(c);
    enc->width = enc_w;
    enc->height = enc_h;
    enc->pix_fmt = AV_PIX_FMT_YUV420P;
    enc->time_base = (AVRational){ 1, 25 };
    enc->framerate = (AVRational){ 25, 1 };
    enc->gop_size = 12;
    enc->flags |= AV_CODEC_FLAG_GLOBAL_HEADER;
    enc->thread_count = 1;
    AVDictionary *d = NULL;
    av_dict_set(&d, "preset", "ultrafast", 0);
    av_dict_set(&d, "crf", "18", 0);
    assert_int_equal(avcodec_open2(enc, c, &d), 0);
    av_dict_free(&d);
    ss_err err = { 0 };
    qmeter *m = qmeter_new(enc, ref_w, ref_h, &err);
    assert_non_null(m);
    AVPacket *pkt = av_packet_alloc();
    int refs = 0;
    for (int t = 0; t <= 30; t++) {
        AVFrame *f = t < 30 ? picture(enc_w, enc_h, t) : NULL;
        if (f && t % 3 == 1) {
            /* the reference at the display size, as the pipeline keeps it */
            AVFrame *r = picture(ref_w, ref_h, t);
            if (enc_w == ref_w) {
                assert_int_equal(qmeter_ref(m, f, &err), 0);
            } else {
                assert_int_equal(qmeter_ref(m, r, &err), 0);
            }
            av_frame_free(&r);
            refs++;
        }
        assert_true(avcodec_send_frame(enc, f) >= 0);
        av_frame_free(&f);
        while (avcodec_receive_packet(enc, pkt) == 0) {
            assert_int_equal(qmeter_packet(m, pkt, &err), 0);
            av_packet_unref(pkt);
        }
    }
    assert_int_equal(qmeter_packet(m, NULL, &err), 0);
    int n;
    const q_sample *s = qmeter_samples(m, &n);
    assert_int_equal(n, refs);
    for (int i = 0; i < n; i++)
        assert_int_equal(s[i].pts % 3, 1);
    double psnr, ssim;
    qmeter_mean(m, &psnr, &ssim);
    print_message("%dx%d at %dx%d: PSNR %.2f dB, SSIM %.4f over %d frames\n", enc_w, enc_h, ref_w,
                  ref_h, psnr, ssim, n);
    assert_true(psnr > min_psnr && psnr < Q_PSNR_MAX);
    assert_true(ssim > 0.8 && ssim <= 1.0);
    assert_int_equal(qmeter_errors(m), 0);
    qmeter_free(&m);
    assert_null(m);
    av_packet_free(&pkt);
    avcodec_free_context(&enc);
}

static void test_meter_same_size(void **st)
{
    (void)st;
    meter_run(160, 96, 160, 96, 35);
}

static void test_meter_scaled_up(void **st)
{
    (void)st;
    /* a half-size rendition against the full-size picture: upscaling loses
     * detail, but the picture is smooth, so it stays well above 20 dB */
    meter_run(160, 96, 320, 192, 20);
}

int main(void)
{
    av_log_set_level(AV_LOG_ERROR);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_mse_psnr),
        cmocka_unit_test(test_ssim),
        cmocka_unit_test(test_meter_same_size),
        cmocka_unit_test(test_meter_scaled_up),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
