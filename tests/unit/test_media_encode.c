/* Tests of media_encode() through its C interface (the one the worker
 * daemon uses): file_ready announces every data file exactly once, after it
 * is complete and before any manifest exists; progress is monotonic per
 * stage; cancel stops within a second with SS_ECANCELLED; errors carry the
 * right code. The source clips are made with the ffmpeg CLI (tests may use
 * it); without ffmpeg the tests are skipped. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <pthread.h>
#include <unistd.h>

#include <cmocka.h>
#include <libavutil/log.h>

#include "media.h"
#include "util.h"

static char g_dir[256];

static int make_clip(const char *name, int seconds, const char *size)
{
    char cmd[1024];
    snprintf(cmd, sizeof(cmd),
             "ffmpeg -nostdin -v error -y -f lavfi -i testsrc2=size=%s:rate=25:duration=%d "
             "-f lavfi -i sine=duration=%d -c:v libx264 -preset ultrafast -pix_fmt yuv420p "
             "-c:a aac %s/%s", size, seconds, seconds, g_dir, name);
    return system(cmd);
}

static int group_setup(void **st)
{
    (void)st;
    av_log_set_level(AV_LOG_ERROR);
    snprintf(g_dir, sizeof(g_dir), "/tmp/ss-media-unit-XXXXXX");
    if (!mkdtemp(g_dir))
        return -1;
    char p[300];
    snprintf(p, sizeof(p), "%s/empty.mp4", g_dir);
    FILE *f = fopen(p, "w");
    if (!f)
        return -1;
    fclose(f);
    if (system("command -v ffmpeg >/dev/null 2>&1") != 0)
        return 0;   /* the clip tests skip */
    if (make_clip("short.mp4", 3, "640x360") || make_clip("long.mp4", 20, "640x360"))
        return -1;
    return 0;
}

static int group_teardown(void **st)
{
    (void)st;
    ss_rm_rf(g_dir);
    return 0;
}

static int have_clips(void)
{
    char p[300];
    snprintf(p, sizeof(p), "%s/short.mp4", g_dir);
    return access(p, R_OK) == 0;
}

typedef struct rec {
    pthread_mutex_t mu;
    char out[300];
    char files[256][64];
    int nfiles;
    int bad;                 /* announced file missing/empty/manifest, or twice */
    char stage[32];
    double last;
    int backwards;
    int progress_calls;
    int warnings;
    atomic_int *cancel;
    double cancel_at;
    double cancelled_at;
} rec;

static void on_file(void *ud, const char *rel)
{
    rec *r = ud;
    pthread_mutex_lock(&r->mu);
    char p[512];
    snprintf(p, sizeof(p), "%s/%s", r->out, rel);
    struct stat sb;
    if (stat(p, &sb) != 0 || sb.st_size == 0)
        r->bad++;
    if (ss_str_has_suffix(rel, ".m3u8") || ss_str_has_suffix(rel, ".mpd"))
        r->bad++;
    snprintf(p, sizeof(p), "%s/master.m3u8", r->out);
    if (access(p, F_OK) == 0)
        r->bad++;   /* manifests come last */
    for (int i = 0; i < r->nfiles; i++)
        if (!strcmp(r->files[i], rel))
            r->bad++;
    if (r->nfiles < 256)
        snprintf(r->files[r->nfiles++], sizeof(r->files[0]), "%s", rel);
    pthread_mutex_unlock(&r->mu);
}

static void on_progress(void *ud, const char *stage, double f)
{
    rec *r = ud;
    pthread_mutex_lock(&r->mu);
    if (strcmp(stage, r->stage)) {
        snprintf(r->stage, sizeof(r->stage), "%s", stage);
        r->last = -1;
    }
    if (f < r->last || f < 0 || f > 1)
        r->backwards++;
    r->last = f;
    r->progress_calls++;
    if (r->cancel && !strcmp(stage, "encoding") && f >= r->cancel_at && !r->cancelled_at) {
        atomic_store(r->cancel, 1);
        r->cancelled_at = ss_mono_s();
    }
    pthread_mutex_unlock(&r->mu);
}

static void on_warning(void *ud, const char *msg)
{
    rec *r = ud;
    (void)msg;
    pthread_mutex_lock(&r->mu);
    r->warnings++;
    pthread_mutex_unlock(&r->mu);
}

static int announced(rec *r, const char *rel)
{
    for (int i = 0; i < r->nfiles; i++)
        if (!strcmp(r->files[i], rel))
            return 1;
    return 0;
}

static void test_events(void **st)
{
    (void)st;
    if (!have_clips())
        skip();
    rec r;
    memset(&r, 0, sizeof(r));
    pthread_mutex_init(&r.mu, NULL);
    snprintf(r.out, sizeof(r.out), "%s/out-events", g_dir);
    media_opts o;
    media_opts_default(&o);
    o.segment_seconds = 1;
    o.thumb_interval = 1;
    media_events ev = { .ud = &r, .progress = on_progress, .file_ready = on_file, .warning = on_warning };
    atomic_int cancel = 0;
    json_t *res = NULL;
    ss_err err = { 0 };
    char src[300];
    snprintf(src, sizeof(src), "%s/short.mp4", g_dir);
    int rc = media_encode(src, r.out, &o, &ev, &cancel, &res, &err);
    if (rc)
        fail_msg("media_encode: %s", err.msg);
    assert_non_null(res);
    assert_int_equal(r.bad, 0);
    assert_int_equal(r.backwards, 0);
    assert_true(r.progress_calls >= 4);
    /* 640x360: 240p + 360p, 3 segments each, audio, thumbnails */
    json_t *rs = json_object_get(res, "renditions");
    assert_int_equal(json_array_size(rs), 2);
    assert_int_equal(json_integer_value(json_object_get(res, "segment_count")), 3);
    const char *want[] = { "240p/init.mp4", "240p/seg_00000.m4s", "240p/seg_00002.m4s",
                           "360p/init.mp4", "360p/seg_00002.m4s", "audio/init.mp4",
                           "audio/seg_00002.m4s", "thumbs/poster.jpg", "thumbs/sprite.jpg",
                           "thumbs/storyboard.vtt" };
    for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++)
        if (!announced(&r, want[i]))
            fail_msg("%s was not announced", want[i]);
    assert_false(announced(&r, "240p/seg_00003.m4s"));
    assert_int_equal(r.nfiles, 3 * 4 + 3);
    char p[512];
    snprintf(p, sizeof(p), "%s/master.m3u8", r.out);
    assert_int_equal(access(p, F_OK), 0);
    snprintf(p, sizeof(p), "%s/manifest.mpd", r.out);
    assert_int_equal(access(p, F_OK), 0);
    json_t *tm = json_object_get(res, "timings");
    assert_true(json_is_number(json_object_get(tm, "encode")));
    json_t *r0 = json_array_get(rs, 0);
    assert_string_equal(json_string_value(json_object_get(r0, "codecs")), "avc1.64001e,mp4a.40.2");
    assert_true(json_integer_value(json_object_get(r0, "bandwidth")) >
                json_integer_value(json_object_get(r0, "average_bandwidth")));
    assert_int_equal(json_integer_value(json_object_get(r0, "frames")), 75);
    json_decref(res);
    pthread_mutex_destroy(&r.mu);
}

static void test_cancel(void **st)
{
    (void)st;
    if (!have_clips())
        skip();
    rec r;
    memset(&r, 0, sizeof(r));
    pthread_mutex_init(&r.mu, NULL);
    snprintf(r.out, sizeof(r.out), "%s/out-cancel", g_dir);
    atomic_int cancel = 0;
    r.cancel = &cancel;
    r.cancel_at = 0.2;
    media_opts o;
    media_opts_default(&o);
    media_events ev = { .ud = &r, .progress = on_progress, .file_ready = on_file, .warning = on_warning };
    json_t *res = NULL;
    ss_err err = { 0 };
    char src[300];
    snprintf(src, sizeof(src), "%s/long.mp4", g_dir);
    int rc = media_encode(src, r.out, &o, &ev, &cancel, &res, &err);
    double took = ss_mono_s() - r.cancelled_at;
    assert_int_equal(rc, -1);
    assert_null(res);
    assert_int_equal(err.code, SS_ECANCELLED);
    assert_true(r.cancelled_at > 0);
    assert_true(took < 1.0);
    char p[512];
    snprintf(p, sizeof(p), "%s/master.m3u8", r.out);
    assert_int_not_equal(access(p, F_OK), 0);
    pthread_mutex_destroy(&r.mu);
}

static void test_errors(void **st)
{
    (void)st;
    media_opts o;
    media_opts_default(&o);
    json_t *res = NULL;
    ss_err err = { 0 };
    char src[300], out[300];
    snprintf(out, sizeof(out), "%s/out-err", g_dir);
    snprintf(src, sizeof(src), "%s/does-not-exist.mp4", g_dir);
    assert_int_equal(media_encode(src, out, &o, NULL, NULL, &res, &err), -1);
    assert_int_equal(err.code, SS_ENOTFOUND);
    ss_err_clear(&err);
    snprintf(src, sizeof(src), "%s/empty.mp4", g_dir);
    assert_int_equal(media_encode(src, out, &o, NULL, NULL, &res, &err), -1);
    assert_int_equal(err.code, SS_EMEDIA);
    assert_non_null(strstr(err.msg, "0-byte"));
    if (!have_clips())
        return;
    ss_err_clear(&err);
    snprintf(src, sizeof(src), "%s/short.mp4", g_dir);
    o.max_pixels = 100000;
    assert_int_equal(media_encode(src, out, &o, NULL, NULL, &res, &err), -1);
    assert_int_equal(err.code, SS_ELIMIT);
    assert_non_null(strstr(err.msg, "640x360"));
    ss_err_clear(&err);
    o.max_pixels = 0;
    o.max_duration = 1;
    assert_int_equal(media_encode(src, out, &o, NULL, NULL, &res, &err), -1);
    assert_int_equal(err.code, SS_ELIMIT);
    assert_null(res);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_events),
        cmocka_unit_test(test_cancel),
        cmocka_unit_test(test_errors),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
