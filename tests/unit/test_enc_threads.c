/* SVT-AV1 encoders opened and closed by several threads of one process at
 * once, as a split worker's chunk threads do at every AV1 segment boundary
 * (encoder.h restart). libsvtav1 sets up and tears down process-wide tables
 * without a lock of its own; unguarded, this crashed inside libSvtAv1Enc
 * (seen under ASan in test_media_tracks' split case). */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <libavutil/frame.h>
#include <libavutil/log.h>

#include "encoder.h"

#define THREADS 8
#define ROUNDS 30

/* one grey frame and the end of the stream (an SVT-AV1 encoder closed
 * without frames waits for ever: rung.c feeds such a rung one) */
static int encode_one(AVCodecContext *c)
{
    AVFrame *f = av_frame_alloc();
    AVPacket *p = av_packet_alloc();
    int r = -1, got = 0;
    if (f && p) {
        f->width = c->width;
        f->height = c->height;
        f->format = c->pix_fmt;
        if (av_frame_get_buffer(f, 0) >= 0) {
            memset(f->data[0], 100, (size_t)f->linesize[0] * f->height);
            memset(f->data[1], 128, (size_t)f->linesize[1] * (f->height / 2));
            memset(f->data[2], 128, (size_t)f->linesize[2] * (f->height / 2));
            if (avcodec_send_frame(c, f) >= 0 && avcodec_send_frame(c, NULL) >= 0) {
                while (avcodec_receive_packet(c, p) >= 0) {
                    got++;
                    av_packet_unref(p);
                }
                r = got > 0 ? 0 : -1;
            }
        }
    }
    av_frame_free(&f);
    av_packet_free(&p);
    return r;
}

static void *open_close(void *arg)
{
    int *failures = arg;
    enc_settings s = { .name = "t", .width = 64, .height = 64, .fps_num = 25, .fps_den = 1,
                       .keyint = 50, .maxrate_kbps = 300, .bufsize_kbits = 600, .crf = 23,
                       .threads = 1 };
    for (int i = 0; i < ROUNDS; i++) {
        AVCodecContext *c = NULL;
        char codecs[64];
        ss_err err = { 0 };
        if (enc_svtav1.open(&s, &c, codecs, sizeof(codecs), &err) != 0 ||
            strncmp(codecs, "av01.", 5) != 0 || encode_one(c) != 0)
            (*failures)++;
        enc_free(&c);
    }
    return NULL;
}

static void test_svtav1_threads(void **state)
{
    (void)state;
    av_log_set_level(AV_LOG_QUIET);
    setenv("SVT_LOG", "1", 0);   /* SVT-AV1's own log: errors only */
    pthread_t th[THREADS];
    int failures[THREADS] = { 0 };
    for (int i = 0; i < THREADS; i++)
        assert_int_equal(pthread_create(&th[i], NULL, open_close, &failures[i]), 0);
    for (int i = 0; i < THREADS; i++) {
        pthread_join(th[i], NULL);
        assert_int_equal(failures[i], 0);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_svtav1_threads),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
