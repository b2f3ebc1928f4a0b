/* Unit tests for worker/media/plan.c: ladder sizes (even, display aspect
 * incl. SAR and rotation, never upscaled), explicit ladders, caps, level,
 * CFR rate rule, keyframe grid (incl. 29.97 fps), codec string from SPS,
 * and media_opts_from_spec. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "media.h"
#include "plan.h"

static media_opts defaults(void)
{
    media_opts o;
    media_opts_default(&o);
    return o;
}

static void assert_even_positive(const plan_ladder *l)
{
    for (int i = 0; i < l->n; i++) {
        assert_true(l->rungs[i].width > 0 && l->rungs[i].height > 0);
        assert_int_equal(l->rungs[i].width % 2, 0);
        assert_int_equal(l->rungs[i].height % 2, 0);
        if (i)
            assert_true(l->rungs[i].height > l->rungs[i - 1].height);
    }
}

static void test_auto_1080p(void **st)
{
    (void)st;
    media_opts o = defaults();
    plan_src s = { 1920, 1080, 1, 1, 0, 30 };
    plan_ladder l;
    assert_int_equal(plan_ladder_make(&s, &o, &l), 3);
    assert_int_equal(l.rungs[0].height, 360);
    assert_int_equal(l.rungs[0].width, 640);
    assert_int_equal(l.rungs[1].height, 720);
    assert_int_equal(l.rungs[1].width, 1280);
    assert_int_equal(l.rungs[2].height, 1080);
    assert_int_equal(l.rungs[2].width, 1920);
    assert_string_equal(l.rungs[2].name, "1080p");
    assert_int_equal(l.rungs[2].crf, 23);
    assert_int_equal(l.rungs[2].bufsize_kbits, 2 * l.rungs[2].maxrate_kbps);
    assert_even_positive(&l);
}

static void test_auto_other_tops(void **st)
{
    (void)st;
    media_opts o = defaults();
    plan_ladder l;
    plan_src s4k = { 3840, 2160, 1, 1, 0, 30 };
    assert_int_equal(plan_ladder_make(&s4k, &o, &l), 4);
    assert_int_equal(l.rungs[0].height, 360);
    assert_int_equal(l.rungs[1].height, 720);
    assert_int_equal(l.rungs[2].height, 1440);
    assert_int_equal(l.rungs[3].height, 2160);
    plan_src s720 = { 1280, 720, 1, 1, 0, 25 };
    assert_int_equal(plan_ladder_make(&s720, &o, &l), 3);
    assert_int_equal(l.rungs[0].height, 240);
    assert_int_equal(l.rungs[0].width, 426);
    assert_int_equal(l.rungs[1].height, 480);
    assert_int_equal(l.rungs[1].width, 854);
    /* non-standard top is kept as the top rung */
    plan_src s540 = { 960, 540, 1, 1, 0, 25 };
    assert_int_equal(plan_ladder_make(&s540, &o, &l), 2);
    assert_int_equal(l.rungs[0].height, 360);
    assert_int_equal(l.rungs[1].height, 540);
    assert_int_equal(l.rungs[1].width, 960);
    assert_even_positive(&l);
}

static void test_small_and_odd(void **st)
{
    (void)st;
    media_opts o = defaults();
    plan_ladder l;
    plan_src tiny = { 176, 144, 1, 1, 0, 15 };
    assert_int_equal(plan_ladder_make(&tiny, &o, &l), 1);
    assert_int_equal(l.rungs[0].height, 144);
    assert_int_equal(l.rungs[0].width, 176);
    plan_src odd = { 321, 241, 1, 1, 0, 25 };
    assert_int_equal(plan_ladder_make(&odd, &o, &l), 1);
    assert_int_equal(l.rungs[0].height, 240);
    assert_int_equal(l.rungs[0].width, 320);
    assert_even_positive(&l);
    plan_src bad = { 0, 0, 1, 1, 0, 25 };
    assert_int_equal(plan_ladder_make(&bad, &o, &l), -1);
}

static void test_sar_and_rotation(void **st)
{
    (void)st;
    media_opts o = defaults();
    plan_ladder l;
    /* PAL 4:3 stored as 720x576 with SAR 16:15 -> display 768x576 */
    plan_src pal = { 720, 576, 16, 15, 0, 25 };
    int dw, dh;
    plan_display_size(&pal, &dw, &dh);
    assert_int_equal(dw, 768);
    assert_int_equal(dh, 576);
    assert_int_equal(plan_ladder_make(&pal, &o, &l), 2);
    assert_int_equal(l.rungs[1].height, 576);
    assert_int_equal(l.rungs[1].width, 768);
    assert_int_equal(l.rungs[0].height, 360);
    assert_int_equal(l.rungs[0].width, 480);
    /* anamorphic 16:9 DVD */
    plan_src ana = { 720, 480, 32, 27, 0, 30 };
    plan_ladder_make(&ana, &o, &l);
    assert_int_equal(l.rungs[l.n - 1].width, 854);
    /* phone video: 1920x1080 turned 90 degrees -> 1080x1920 portrait */
    plan_src rot = { 1920, 1080, 1, 1, 90, 30 };
    plan_display_size(&rot, &dw, &dh);
    assert_int_equal(dw, 1080);
    assert_int_equal(dh, 1920);
    assert_int_equal(plan_ladder_make(&rot, &o, &l), 4);
    assert_int_equal(l.rungs[3].height, 1920);
    assert_int_equal(l.rungs[3].width, 1080);
    assert_int_equal(l.rungs[2].height, 1080);
    assert_int_equal(l.rungs[2].width, 608);
    assert_int_equal(l.rungs[1].height, 480);
    assert_int_equal(l.rungs[1].width, 270);
    plan_src r180 = { 640, 360, 1, 1, 180, 30 };
    plan_ladder_make(&r180, &o, &l);
    assert_int_equal(l.rungs[l.n - 1].width, 640);
    assert_int_equal(l.rungs[l.n - 1].height, 360);
    assert_even_positive(&l);
}

static void test_explicit(void **st)
{
    (void)st;
    media_opts o = defaults();
    plan_ladder l;
    o.ladder = MEDIA_LADDER_EXPLICIT;
    o.nrungs = 4;
    o.rungs[0] = (media_rung_req){ .height = 1080 };
    o.rungs[1] = (media_rung_req){ .height = 360, .crf = 20 };
    o.rungs[2] = (media_rung_req){ .height = 2160 };
    o.rungs[3] = (media_rung_req){ .height = 720, .width = 1000, .bitrate_kbps = 1234 };
    plan_src s = { 1920, 1080, 1, 1, 0, 30 };
    assert_int_equal(plan_ladder_make(&s, &o, &l), 3);   /* 2160 dropped: no upscaling */
    assert_int_equal(l.rungs[0].height, 360);
    assert_int_equal(l.rungs[0].crf, 20);
    assert_int_equal(l.rungs[1].height, 720);
    assert_int_equal(l.rungs[1].width, 1000);
    assert_int_equal(l.rungs[1].maxrate_kbps, 1234);
    assert_int_equal(l.rungs[1].target_kbps, 1234);   /* two-pass: the given rate */
    assert_int_equal(l.rungs[2].target_kbps, 4200);   /* 0.7 x the 6000 kbps cap */
    assert_int_equal(l.rungs[2].height, 1080);
    assert_non_null(strstr(l.notes, "2160p dropped"));
    /* every rung above the source: one rung at the source height */
    o.nrungs = 1;
    o.rungs[0] = (media_rung_req){ .height = 1080 };
    plan_src small = { 640, 480, 1, 1, 0, 30 };
    assert_int_equal(plan_ladder_make(&small, &o, &l), 1);
    assert_int_equal(l.rungs[0].height, 480);
    assert_int_equal(l.rungs[0].width, 640);
}

static void test_caps_and_level(void **st)
{
    (void)st;
    assert_int_equal(plan_maxrate_kbps(1920, 1080, 30), 6000);
    int c720 = plan_maxrate_kbps(1280, 720, 30), c360 = plan_maxrate_kbps(640, 360, 30);
    assert_true(c720 > 2500 && c720 < 4000);
    assert_true(c360 > 800 && c360 < 1500);
    assert_true(plan_maxrate_kbps(1920, 1080, 60) > 6000);
    assert_true(plan_maxrate_kbps(1920, 1080, 60) <= 9000);
    assert_int_equal(plan_h264_level(640, 360, 30, 1150), 30);
    assert_int_equal(plan_h264_level(1280, 720, 30, 3250), 31);
    assert_int_equal(plan_h264_level(1280, 720, 60, 4900), 32);
    assert_int_equal(plan_h264_level(1920, 1080, 30, 6000), 40);
    assert_int_equal(plan_h264_level(1920, 1080, 60, 9000), 42);
    assert_int_equal(plan_h264_level(3840, 2160, 30, 17000), 51);
}

static void test_fps_rule(void **st)
{
    (void)st;
    int n, d;
    plan_fps(29.97, 0, &n, &d);
    assert_int_equal(n, 30000);
    assert_int_equal(d, 1001);
    plan_fps(30000.0 / 1001, 0, &n, &d);
    assert_int_equal(n, 30000);
    plan_fps(25.0, 25.0, &n, &d);
    assert_int_equal(n, 25);
    assert_int_equal(d, 1);
    plan_fps(24.3, 0, &n, &d);       /* VFR around 24: within 2 % of 24 */
    assert_int_equal(n, 24);
    plan_fps(119.88, 0, &n, &d);     /* halved until <= 60 */
    assert_int_equal(n, 60000);
    assert_int_equal(d, 1001);
    plan_fps(120, 0, &n, &d);
    assert_int_equal(n, 60);
    plan_fps(0, 50, &n, &d);         /* avg unknown: r_frame_rate */
    assert_int_equal(n, 50);
    plan_fps(0, 0, &n, &d);          /* nothing known: 25 */
    assert_int_equal(n, 25);
    plan_fps(17.2, 0, &n, &d);       /* no common rate near: integer */
    assert_int_equal(n, 17);
    assert_int_equal(d, 1);
}

static void test_gop_grid(void **st)
{
    (void)st;
    int sn, sd;
    plan_segment_q(4.0, &sn, &sd);
    assert_int_equal(sn, 4);
    assert_int_equal(sd, 1);
    plan_segment_q(2.5, &sn, &sd);
    assert_int_equal(sn, 5);
    assert_int_equal(sd, 2);
    /* 25 fps, 4 s: every 100 frames */
    assert_int_equal(plan_boundary_frame(0, 25, 1, 4, 1), 0);
    assert_int_equal(plan_boundary_frame(1, 25, 1, 4, 1), 100);
    assert_int_equal(plan_boundary_frame(7, 25, 1, 4, 1), 700);
    assert_int_equal(plan_keyint(25, 1, 4, 1), 100);
    /* 29.97 fps, 4 s = 119.88 frames: first frame at or after each boundary */
    assert_int_equal(plan_keyint(30000, 1001, 4, 1), 120);
    assert_int_equal(plan_boundary_frame(1, 30000, 1001, 4, 1), 120);
    assert_int_equal(plan_boundary_frame(5, 30000, 1001, 4, 1), 600);   /* 599.4 */
    assert_int_equal(plan_boundary_frame(10, 30000, 1001, 4, 1), 1199); /* 1198.8 */
    for (int k = 1; k < 1000; k++) {
        int64_t b = plan_boundary_frame(k, 30000, 1001, 4, 1);
        /* frame b is at or after k*4 s, frame b-1 is before it */
        assert_true(b * 1001 * 1 >= (int64_t)k * 4 * 30000);
        assert_true((b - 1) * 1001 < (int64_t)k * 4 * 30000);
        /* GOPs never longer than keyint: forced IDRs come first */
        assert_true(b - plan_boundary_frame(k - 1, 30000, 1001, 4, 1) <= 120);
    }
    /* audio at 48 kHz: sample index of each boundary */
    assert_int_equal(plan_boundary_frame(3, 48000, 1, 4, 1), 576000);
    /* 2.5 s at 24 fps = 60 frames */
    assert_int_equal(plan_boundary_frame(2, 24, 1, 5, 2), 120);
}

static void test_codec_string(void **st)
{
    (void)st;
    char out[32];
    /* avcC: version 1, High (0x64), compat 0x00, level 3.1 (0x1f) */
    const uint8_t avcc[] = { 0x01, 0x64, 0x00, 0x1f, 0xff, 0xe1, 0x00, 0x04, 0x67, 0x64, 0x00, 0x1f };
    assert_int_equal(plan_avc_codec_string(avcc, sizeof(avcc), out, sizeof(out)), 0);
    assert_string_equal(out, "avc1.64001f");
    /* Annex B: SEI first, then SPS (nal type 7) Main 4.0 with constraint flags 0x40 */
    const uint8_t annexb[] = { 0, 0, 0, 1, 0x06, 0x05, 0x01, 0x80, 0, 0, 0, 1, 0x67, 0x4d, 0x40,
                               0x28, 0xac, 0xd9, 0, 0, 1, 0x68, 0xeb };
    assert_int_equal(plan_avc_codec_string(annexb, sizeof(annexb), out, sizeof(out)), 0);
    assert_string_equal(out, "avc1.4d4028");
    const uint8_t none[] = { 0, 0, 0, 1, 0x68, 0xeb, 0xe3, 0xcb };
    assert_int_equal(plan_avc_codec_string(none, sizeof(none), out, sizeof(out)), -1);
}

/* One title across workers: chunks are whole segments of the keyframe
 * grid, cover the title without gaps, and the last one runs to the end. */
static void test_chunks(void **st)
{
    (void)st;
    plan_chunk c[PLAN_MAX_CHUNKS];
    /* 20 s chunks of 4 s segments: 5 segments each */
    assert_int_equal(plan_chunk_segments(20, 4, 1), 5);
    assert_int_equal(plan_chunk_segments(22.5, 4, 1), 6);   /* rounded to whole segments */
    assert_int_equal(plan_chunk_segments(1, 4, 1), 1);      /* at least one */
    /* 120 s at 30 fps: 30 segments; the start first: 2, 4, then 5 a chunk */
    assert_int_equal(plan_chunk_len(0, 5), 2);
    assert_int_equal(plan_chunk_len(1, 5), 4);
    assert_int_equal(plan_chunk_len(2, 5), 5);
    assert_int_equal(plan_chunk_len(0, 3), 2);     /* 12 s chunks of 4 s: 8 s first */
    assert_int_equal(plan_chunk_len(1, 3), 3);
    assert_int_equal(plan_chunk_len(0, 2), 2);     /* short chunks: no ramp */
    assert_int_equal(plan_chunk_len(3, 20), 16);   /* 2, 4, 8, 16, 20, ... */
    assert_int_equal(plan_chunk_len(4, 20), 20);
    int n = plan_chunks(120, 30, 1, 4, 1, 5, 3, 1, c);
    assert_int_equal(n, 7);
    int64_t seg0[] = { 0, 2, 6, 11, 16, 21, 26 };
    for (int k = 0; k < n; k++) {
        assert_int_equal(c[k].seg0, seg0[k]);
        assert_int_equal(c[k].f0, plan_boundary_frame(seg0[k], 30, 1, 4, 1));
        if (k + 1 < n)
            assert_int_equal(c[k].f1, c[k + 1].f0);
    }
    assert_int_equal(c[6].f1, -1);
    assert_int_equal(c[1].f0, 240);
    /* 29.97 fps, 2 s segments: boundaries are the grid's (first frame at or after 2k s) */
    n = plan_chunks(30, 30000, 1001, 2, 1, 3, 2, 0, c);   /* an explicit length: no ramp */
    assert_int_equal(n, 5);   /* 15 segments (the last partial), 3 a chunk */
    assert_int_equal(c[1].f0, plan_boundary_frame(3, 30000, 1001, 2, 1));
    assert_int_equal(c[1].f0, 180);   /* 6 s at 29.97 fps: frame 179.82 -> 180 */
    /* a part segment at the end counts: 10.5 s in 5 s chunks of 1 s segments */
    n = plan_chunks(10.5, 25, 1, 1, 1, 5, 2, 1, c);
    assert_int_equal(n, 3);
    assert_int_equal(c[2].seg0, 6);   /* 2 + 4, then the 5 left */
    /* auto: no split unless there are more than two chunks (min 3) */
    assert_int_equal(plan_chunks(40, 30, 1, 4, 1, 5, 3, 1, c), 0);
    assert_int_equal(plan_chunks(41, 30, 1, 4, 1, 5, 3, 1, c), 3);
    /* 12 s chunks of 4 s segments (3 a chunk), 30 s: 2, 3, 3 segments */
    assert_int_equal(plan_chunks(30, 30, 1, 4, 1, 3, 3, 1, c), 3);
    assert_int_equal(c[1].seg0, 2);
    assert_int_equal(c[2].seg0, 5);
    /* unknown length or bad grid: no split */
    assert_int_equal(plan_chunks(0, 30, 1, 4, 1, 5, 2, 1, c), 0);
    assert_int_equal(plan_chunks(100, 0, 1, 4, 1, 5, 2, 1, c), 0);
    /* never more than PLAN_MAX_CHUNKS: chunks grow instead */
    n = plan_chunks(100000, 30, 1, 1, 1, 1, 2, 1, c);
    assert_true(n >= 2 && n <= PLAN_MAX_CHUNKS);
    assert_int_equal(c[n - 1].f1, -1);
    for (int k = 1; k < n; k++)
        assert_int_equal(c[k - 1].f1, c[k].f0);
}

static void test_opts_from_spec(void **st)
{
    (void)st;
    media_opts o;
    ss_err err = { 0 };
    json_t *spec = json_loads("{\"source\":\"file:///x.mp4\",\"ladder\":[{\"height\":720},"
                              "{\"height\":360,\"crf\":26,\"bitrate_kbps\":900}],"
                              "\"rate_control\":\"two-pass\",\"segment_seconds\":6,"
                              "\"packaging\":[\"dash\"],\"thumbnails\":{\"enabled\":true,"
                              "\"interval_seconds\":5},\"preset\":\"medium\",\"crf\":21}",
                              0, NULL);
    assert_non_null(spec);
    assert_int_equal(media_opts_from_spec(&o, spec, &err), 0);
    assert_int_equal(o.ladder, MEDIA_LADDER_EXPLICIT);
    assert_int_equal(o.nrungs, 2);
    assert_int_equal(o.rungs[0].height, 720);
    assert_int_equal(o.rungs[1].crf, 26);
    assert_int_equal(o.rungs[1].bitrate_kbps, 900);
    assert_int_equal(o.rate_control, MEDIA_RC_TWO_PASS);
    assert_true(o.segment_seconds == 6.0);
    assert_int_equal(o.hls, 0);
    assert_int_equal(o.dash, 1);
    assert_int_equal(o.thumbnails, 1);
    assert_true(o.thumb_interval == 5.0);
    assert_string_equal(o.preset, "medium");
    assert_int_equal(o.crf, 21);
    json_decref(spec);

    /* audio, codecs, mp4: what the daemon reads from a canonical spec */
    spec = json_loads("{\"audio\":{\"tracks\":[\"fre\",2],\"bitrate_kbps\":96,\"surround\":true},"
                      "\"codecs\":[\"h264\",\"av1\"],\"mp4\":{\"height\":720}}", 0, NULL);
    assert_int_equal(media_opts_from_spec(&o, spec, &err), 0);
    assert_int_equal(o.audio_mode, MEDIA_AUDIO_LIST);
    assert_int_equal(o.naudio_sel, 2);
    assert_string_equal(o.audio_sel[0].lang, "fre");
    assert_int_equal(o.audio_sel[1].index, 2);
    assert_int_equal(o.audio_kbps, 96);
    assert_int_equal(o.surround, 1);
    assert_int_equal(o.av1, 1);
    assert_int_equal(o.mp4_height, 720);
    json_decref(spec);
    spec = json_loads("{\"audio\":{\"tracks\":\"default\"},\"mp4\":true}", 0, NULL);
    assert_int_equal(media_opts_from_spec(&o, spec, &err), 0);
    assert_int_equal(o.audio_mode, MEDIA_AUDIO_DEFAULT);
    assert_int_equal(o.mp4_height, -1);
    assert_int_equal(o.av1, 0);
    json_decref(spec);
    spec = json_loads("{\"codecs\":[\"hevc\"]}", 0, NULL);
    assert_int_equal(media_opts_from_spec(&o, spec, &err), -1);
    json_decref(spec);

    spec = json_loads("{\"ladder\":\"per-title\",\"thumbnails\":false}", 0, NULL);
    assert_int_equal(media_opts_from_spec(&o, spec, &err), 0);
    assert_int_equal(o.ladder, MEDIA_LADDER_PER_TITLE);
    assert_int_equal(o.thumbnails, 0);
    assert_int_equal(o.hls, 1);
    assert_int_equal(o.crf, 23);
    json_decref(spec);

    assert_int_equal(o.split, MEDIA_SPLIT_AUTO);
    spec = json_loads("{\"split\":\"off\"}", 0, NULL);
    assert_int_equal(media_opts_from_spec(&o, spec, &err), 0);
    assert_int_equal(o.split, MEDIA_SPLIT_OFF);
    json_decref(spec);
    spec = json_loads("{\"split\":12}", 0, NULL);
    assert_int_equal(media_opts_from_spec(&o, spec, &err), 0);
    assert_int_equal(o.split, MEDIA_SPLIT_SECONDS);
    assert_true(o.split_seconds == 12.0);
    json_decref(spec);
    spec = json_loads("{\"split\":\"sometimes\"}", 0, NULL);
    assert_int_equal(media_opts_from_spec(&o, spec, &err), -1);
    json_decref(spec);
    ss_err_clear(&err);

    spec = json_loads("{\"ladder\":[{\"height\":99999}]}", 0, NULL);
    assert_int_equal(media_opts_from_spec(&o, spec, &err), -1);
    assert_int_equal(err.code, SS_EINVAL);
    assert_non_null(strstr(err.msg, "ladder[0].height"));
    json_decref(spec);
}


/* A display matrix as libavutil writes it: [a b 0; c d 0; 0 0 1<<30]. */
static void mat(int32_t *m, int a, int b, int c, int d)
{
    memset(m, 0, 9 * sizeof(*m));
    m[0] = a * 65536;
    m[1] = b * 65536;
    m[3] = c * 65536;
    m[4] = d * 65536;
    m[8] = 1 << 30;
}

static void test_orientation(void **st)
{
    (void)st;
    static const struct { int a, b, c, d, rot, mir; const char *turn; } cases[] = {
        { 1, 0, 0, 1, 0, 0, "" },
        { -1, 0, 0, 1, 0, 1, "hflip," },
        { 1, 0, 0, -1, 180, 1, "vflip," },
        { -1, 0, 0, -1, 180, 0, "hflip,vflip," },
        { 0, 1, -1, 0, 90, 0, "transpose=clock," },       /* what ffmpeg -metadata rotate=90 writes */
        { 0, -1, 1, 0, 270, 0, "transpose=cclock," },
        { 0, 1, 1, 0, 90, 1, "transpose=cclock_flip," },  /* x' = y, y' = x */
        { 0, -1, -1, 0, 270, 1, "transpose=clock_flip," },
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        int32_t m[9];
        mat(m, cases[i].a, cases[i].b, cases[i].c, cases[i].d);
        int rot = -1, mir = -1;
        plan_orientation(m, &rot, &mir);
        assert_int_equal(rot, cases[i].rot);
        assert_int_equal(mir, cases[i].mir);
        plan_pre p = { 0, 24, 1, 0.0, PLAN_HDR_NONE, 0, 0, rot, mir };
        char chain[512], want[512];
        assert_int_equal(plan_prefilter(&p, chain, sizeof(chain)), 0);
        snprintf(want, sizeof(want), "fps=fps=24/1:start_time=0.000000:round=near,%sformat=yuv420p",
                 cases[i].turn);
        assert_string_equal(chain, want);
    }
    int rot = -1, mir = -1;
    plan_orientation(NULL, &rot, &mir);
    assert_int_equal(rot, 0);
    assert_int_equal(mir, 0);
    /* 30 degrees counter-clockwise (cos 0.87, sin 0.5): the nearest right angle is none */
    int32_t m[9] = { 56756, -32768, 0, 32768, 56756, 0, 0, 0, 1 << 30 };
    plan_orientation(m, &rot, &mir);
    assert_int_equal(rot, 0);
    assert_int_equal(mir, 0);
}

static void test_prefilter_hdr(void **st)
{
    (void)st;
    assert_int_equal(plan_hdr_of(16), PLAN_HDR_PQ);
    assert_int_equal(plan_hdr_of(18), PLAN_HDR_HLG);
    assert_int_equal(plan_hdr_of(1), PLAN_HDR_NONE);
    assert_int_equal(plan_hdr_of(14), PLAN_HDR_NONE);   /* BT.2020 10-bit SDR */
    assert_string_equal(plan_hdr_name(PLAN_HDR_HLG), "hlg");
    assert_null(plan_hdr_name(PLAN_HDR_NONE));
    plan_pre p = { 1, 30000, 1001, 0.5, PLAN_HDR_PQ, 9, 9, 90, 0 };
    char chain[512];
    assert_int_equal(plan_prefilter(&p, chain, sizeof(chain)), 0);
    assert_string_equal(chain,
        "bwdif=mode=send_frame:parity=auto:deint=interlaced,"
        "fps=fps=30000/1001:start_time=0.500000:round=near,"
        "zscale=tin=smpte2084:pin=2020:min=2020_ncl:rin=tv:t=linear:npl=100,format=gbrpf32le,"
        "zscale=p=bt709,tonemap=tonemap=hable:desat=0,zscale=t=bt709:m=bt709:r=tv,"
        "transpose=clock,format=yuv420p");
    p.hdr = PLAN_HDR_HLG;
    p.primaries = 2;   /* unspecified: BT.2020 */
    p.matrix = 10;
    assert_int_equal(plan_prefilter(&p, chain, sizeof(chain)), 0);
    assert_non_null(strstr(chain, "zscale=tin=arib-std-b67:pin=2020:min=2020_cl:"));
    assert_int_equal(plan_prefilter(&p, chain, 40), -1);   /* too small: refused, not cut */
}

static void test_av1_codec_string(void **st)
{
    (void)st;
    /* av1C bodies libsvtav1 (through libavformat) wrote: 320x180 8-bit at
     * 24 fps (level 2.0), 1920x1080 10-bit at 60 fps (level 4.1) */
    static const uint8_t a[] = { 0x81, 0x00, 0x0c, 0x00, 0x0a, 0x0b, 0x00, 0x00, 0x00, 0x04, 0x3c,
                                 0xfe, 0xcc, 0x02, 0xf8, 0x00, 0x40 };
    static const uint8_t b[] = { 0x81, 0x09, 0x4c, 0x00, 0x0a, 0x0b, 0x00, 0x00, 0x00, 0x4a, 0xab,
                                 0xbf, 0xc3, 0x70, 0x0b, 0xe1, 0x01 };
    char s[16];
    assert_int_equal(plan_av1_codec_string(a, sizeof(a), s, sizeof(s)), 0);
    assert_string_equal(s, "av01.0.00M.08");
    assert_int_equal(plan_av1_codec_string(b, sizeof(b), s, sizeof(s)), 0);
    assert_string_equal(s, "av01.0.09M.10");
    /* the bare OBU (libsvtav1's extradata): the same answer */
    assert_int_equal(plan_av1_codec_string(b + 4, sizeof(b) - 4, s, sizeof(s)), 0);
    assert_string_equal(s, "av01.0.09M.10");
    /* cut short, or no sequence header: refused */
    assert_int_equal(plan_av1_codec_string(b, 9, s, sizeof(s)), -1);
    static const uint8_t td[] = { 0x12, 0x00 };   /* a temporal delimiter only */
    assert_int_equal(plan_av1_codec_string(td, sizeof(td), s, sizeof(s)), -1);
    assert_int_equal(plan_av1_codec_string(NULL, 0, s, sizeof(s)), -1);
}

/* The thread budget: `threads N` is N CPU tokens (the decoding thread 1, a
 * rung its libx264 threads), so a one-thread worker with a 3-rung ladder
 * keeps one core busy, not four; threads 0 (the whole machine) is not
 * gated, so a single worker uses every core as before. */
static void test_thread_budget(void **st)
{
    (void)st;
    plan_ladder l;
    memset(&l, 0, sizeof(l));
    int h[3] = { 360, 720, 1080 };
    for (int i = 0; i < 3; i++) {
        l.rungs[i].height = h[i];
        l.rungs[i].width = h[i] * 16 / 9;
    }
    l.n = 3;
    plan_threads t;
    /* threads 1: one token; every rung one libx264 thread */
    plan_thread_budget(&l, 1, 2, &t);
    assert_int_equal(t.tokens, 1);
    assert_int_equal(t.decoder, 1);
    for (int i = 0; i < 3; i++) {
        assert_int_equal(t.x264[i], 1);
        assert_int_equal(t.weight[i], 1);
    }
    /* threads 2: two tokens; the top rung gets two frame threads, which
     * keep about 1.5 cores busy: it holds one token; the same on 3 cores
     * as on 16 */
    for (int ncpus = 3; ncpus <= 16; ncpus += 13) {
        plan_thread_budget(&l, 2, ncpus, &t);
        assert_int_equal(t.tokens, 2);
        assert_int_equal(t.decoder, 1);
        assert_int_equal(t.x264[0], 1);
        assert_int_equal(t.x264[1], 1);
        assert_int_equal(t.x264[2], 2);
        assert_int_equal(t.weight[2], 1);
    }
    /* no rung gets more threads than the budget; weights are half the
     * threads, rounded up; a big budget decodes on a few threads */
    plan_thread_budget(&l, 4, 16, &t);
    for (int i = 0; i < 3; i++) {
        assert_true(t.x264[i] >= 1 && t.x264[i] <= 4);
        assert_int_equal(t.weight[i], (t.x264[i] + 1) / 2);
    }
    assert_int_equal(t.x264[2], 3);
    assert_int_equal(t.weight[2], 2);
    plan_thread_budget(&l, 16, 32, &t);
    assert_int_equal(t.tokens, 16);
    assert_int_equal(t.decoder, 4);
    assert_int_equal(t.x264[2], 11);   /* ceil(16 x 0.643) */
    /* threads 0: every core, not gated, today's split */
    plan_thread_budget(&l, 0, 8, &t);
    assert_int_equal(t.tokens, 0);
    assert_int_equal(t.decoder, 0);
    assert_int_equal(t.x264[0], 1);
    assert_int_equal(t.x264[2], 6);   /* ceil(8 x 0.643) */
    /* one rung takes the whole budget */
    l.n = 1;
    plan_thread_budget(&l, 3, 8, &t);
    assert_int_equal(t.x264[0], 3);
    assert_int_equal(t.weight[0], 2);
    assert_int_equal(t.tokens, 3);
    /* threads at least the CPUs the worker may use: as threads 0 */
    l.n = 3;
    plan_threads z;
    plan_thread_budget(&l, 0, 2, &z);
    for (int n = 2; n <= 4; n++) {
        plan_thread_budget(&l, n, 2, &t);
        assert_memory_equal(&t, &z, sizeof(t));
    }
    assert_int_equal(t.tokens, 0);
    assert_int_equal(t.x264[2], 2);
}

static void test_budget_tokens(void **st)
{
    (void)st;
    /* a budget only below the CPUs the worker may run on */
    assert_int_equal(plan_budget_tokens(1, 2), 1);
    assert_int_equal(plan_budget_tokens(2, 2), 0);
    assert_int_equal(plan_budget_tokens(3, 2), 0);
    assert_int_equal(plan_budget_tokens(1, 1), 0);   /* taskset to one core */
    assert_int_equal(plan_budget_tokens(2, 16), 2);
    assert_int_equal(plan_budget_tokens(15, 16), 15);
    assert_int_equal(plan_budget_tokens(16, 16), 0);
    assert_int_equal(plan_budget_tokens(0, 8), 0);
    assert_int_equal(plan_budget_tokens(-1, 8), 0);
    assert_int_equal(plan_budget_tokens(1, 0), 0);   /* unknown count: one CPU */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_auto_1080p),     cmocka_unit_test(test_auto_other_tops),
        cmocka_unit_test(test_small_and_odd),  cmocka_unit_test(test_sar_and_rotation),
        cmocka_unit_test(test_explicit),       cmocka_unit_test(test_caps_and_level),
        cmocka_unit_test(test_fps_rule),       cmocka_unit_test(test_gop_grid),
        cmocka_unit_test(test_codec_string),   cmocka_unit_test(test_opts_from_spec),
        cmocka_unit_test(test_orientation),    cmocka_unit_test(test_prefilter_hdr),
        cmocka_unit_test(test_av1_codec_string),
        cmocka_unit_test(test_chunks),         cmocka_unit_test(test_thread_budget), cmocka_unit_test(test_budget_tokens),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
