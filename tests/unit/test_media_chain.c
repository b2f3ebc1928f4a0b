/* A chunk run that goes on into the next chunk (media.h next_chunk,
 * chunk_done; docs/SPLIT.md): the items of a split job run through
 * media_encode_item three ways on one 12 s clip (1 s segments, 3 s chunks:
 * 4 chunks) — every chunk its own run, one run through all of them, and a
 * run that the caller stops after chunk 1 (next_chunk says no once) — and
 * each chunk's record of a run that went on lists the same segments
 * (numbers, starts, durations), frames and measured frames as its own run's;
 * chunk_done comes in order, once per chunk but the run's last, after its
 * files; finalize over either set of records writes the same media
 * playlists, and tests/integration/lib/check_output.py passes each
 * output. The clip is made with the ffmpeg CLI (tests may use it);
 * without ffmpeg the test is skipped. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <libavutil/log.h>

#include "media.h"
#include "util.h"

static char g_dir[256];

static int group_setup(void **st)
{
    (void)st;
    av_log_set_level(AV_LOG_ERROR);
    snprintf(g_dir, sizeof(g_dir), "/tmp/ss-media-chain-XXXXXX");
    if (!mkdtemp(g_dir))
        return -1;
    if (system("command -v ffmpeg >/dev/null 2>&1") != 0)
        return 0;   /* skipped */
    char cmd[1024];
    snprintf(cmd, sizeof(cmd),
             "ffmpeg -nostdin -v error -y -f lavfi -i testsrc2=size=320x240:rate=25:duration=12 "
             "-f lavfi -i sine=duration=12 -c:v libx264 -preset ultrafast -pix_fmt yuv420p "
             "-c:a aac %s/clip.mp4", g_dir);
    return system(cmd) ? -1 : 0;
}

static int group_teardown(void **st)
{
    (void)st;
    ss_rm_rf(g_dir);
    return 0;
}

typedef struct run {
    json_t *results;   /* name -> record */
    int k;             /* the chunk the run encodes now */
    int refuse;        /* next_chunk says no to this chunk (-1: never) */
    int order_bad;     /* chunk_done out of order */
    int last_done;
    char out[300];
    int files_missing; /* a chunk_done whose segments were not on disk */
} run;

static int on_next(void *ud, int next)
{
    run *r = ud;
    assert_int_equal(next, r->k + 1);
    if (next == r->refuse)
        return 0;
    r->k = next;
    return 1;
}

static void on_done(void *ud, int k, json_t *rec)
{
    run *r = ud;
    if (k != r->last_done + 1 || k >= r->k)
        r->order_bad++;
    r->last_done = k;
    /* its last segment is on disk (announced before) */
    char p[512];
    snprintf(p, sizeof(p), "%s/144p/seg_%05d.m4s", r->out, 3 * k + 2);
    if (access(p, R_OK))
        r->files_missing++;
    char name[16];
    snprintf(name, sizeof(name), "c%d", k);
    json_object_set_new(r->results, name, rec);
}

static void opts_for(media_opts *o, int av1)
{
    media_opts_default(o);
    o->av1 = av1;   /* an SVT-AV1 ladder beside (restarted at every segment boundary) */
    o->ladder = MEDIA_LADDER_EXPLICIT;
    o->rungs[0].height = 144;
    o->nrungs = 1;
    o->segment_seconds = 1;
    o->split = MEDIA_SPLIT_SECONDS;
    o->split_seconds = 3;
    o->threads = 1;
    o->thumbnails = 0;
}

/* The chunks, the audio and finalize into out: chain 0 every chunk its own
 * run; else runs that go on, next_chunk refusing chunk `refuse`. */
static json_t *run_items(const char *src, const char *out, const media_opts *opts,
                         const json_t *plan, int chain, int refuse, int *runs)
{
    media_opts o = *opts;
    o.preset = o.preset_buf[0] ? o.preset_buf : opts->preset;
    run r = { .results = json_object(), .refuse = refuse, .last_done = -1 };
    snprintf(r.out, sizeof(r.out), "%s", out);
    media_events ev = { .ud = &r };
    if (chain) {
        ev.next_chunk = on_next;
        ev.chunk_done = on_done;
    }
    int n = media_plan_chunks(plan);
    *runs = 0;
    for (int k = 0; k < n; k = r.k + 1) {
        char name[16];
        snprintf(name, sizeof(name), "c%d", k);
        r.k = k;
        r.last_done = k - 1;
        json_t *rec = NULL;
        ss_err e = { 0 };
        assert_int_equal(media_encode_item(src, out, &o, plan, name, NULL, &ev, NULL, &rec, &e), 0);
        snprintf(name, sizeof(name), "c%d", r.k);
        json_object_set_new(r.results, name, rec);
        (*runs)++;
    }
    assert_int_equal(r.order_bad, 0);
    assert_int_equal(r.files_missing, 0);
    json_t *rec = NULL, *res = NULL;
    ss_err e = { 0 };
    assert_int_equal(media_encode_item(src, out, &o, plan, "audio", r.results, NULL, NULL, &rec, &e), 0);
    json_object_set_new(r.results, "audio", rec);
    assert_int_equal(media_encode_item(src, out, &o, plan, "finalize", r.results, NULL, NULL, &res, &e),
                     0);
    json_decref(res);
    return r.results;
}

static char *read_text(const char *dir, const char *rel)
{
    char p[512];
    snprintf(p, sizeof(p), "%s/%s", dir, rel);
    size_t n;
    char *t = ss_read_file(p, 1 << 20, &n, NULL);
    assert_non_null(t);
    return t;
}

/* A rung's part of two records of one chunk: the same segments (starts,
 * durations), frames, measured frames and init segment. */
static void same_rung(const json_t *gx, const json_t *gy)
{
    const json_t *sx = json_object_get(gx, "segs"), *sy = json_object_get(gy, "segs");
    assert_int_equal(json_array_size(sx), 3);
    assert_int_equal(json_array_size(sy), json_array_size(sx));
    for (size_t i = 0; i < json_array_size(sx); i++)
        for (size_t f = 0; f < 2; f++)   /* start, duration */
            assert_int_equal(json_integer_value(json_array_get(json_array_get(sx, i), f)),
                             json_integer_value(json_array_get(json_array_get(sy, i), f)));
    static const char *same[] = { "frames", "nq", "init_bytes", "init_crc", "timescale" };
    for (size_t i = 0; i < sizeof(same) / sizeof(same[0]); i++)
        assert_int_equal(json_integer_value(json_object_get(gx, same[i])),
                         json_integer_value(json_object_get(gy, same[i])));
    double bx = (double)json_integer_value(json_object_get(gx, "bytes"));
    double by = (double)json_integer_value(json_object_get(gy, "bytes"));
    assert_true(by > 0.8 * bx && by < 1.2 * bx);
}

/* Chunk records of b equal a's in what finalize reads of the timeline. */
static void same_chunks(const json_t *a, const json_t *b, int n, int first_of_run_mask)
{
    for (int k = 0; k < n; k++) {
        char name[16];
        snprintf(name, sizeof(name), "c%d", k);
        const json_t *x = json_object_get(a, name), *y = json_object_get(b, name);
        assert_non_null(x);
        assert_non_null(y);
        assert_int_equal(json_integer_value(json_object_get(x, "frames")),
                         json_integer_value(json_object_get(y, "frames")));
        int cont = !(first_of_run_mask & (1 << k));
        assert_int_equal(json_is_true(json_object_get(y, "continued")), cont);
        if (cont)
            assert_int_equal(json_integer_value(json_object_get(json_object_get(y, "preroll"),
                                                                "decoded")), 0);
        size_t nr = json_array_size(json_object_get(x, "rungs"));
        assert_true(nr >= 1);
        assert_int_equal(json_array_size(json_object_get(y, "rungs")), nr);
        for (size_t g = 0; g < nr; g++)
            same_rung(json_array_get(json_object_get(x, "rungs"), g),
                      json_array_get(json_object_get(y, "rungs"), g));
        assert_true(json_number_value(json_object_get(y, "cpu_seconds")) > 0);
    }
}


/* own runs, one run, a run stopped after c1 (not with AV1: its encoder
 * under the sanitizers is slow): the same records and playlists, and the
 * checker passes each output */
static void chain_case(int av1)
{
    char src[300], a[300], b[300], c[300];
    snprintf(src, sizeof(src), "%s/clip.mp4", g_dir);
    if (access(src, R_OK))
        skip();
    const char *tag = av1 ? "av1-" : "";
    snprintf(a, sizeof(a), "%s/%sown", g_dir, tag);
    snprintf(b, sizeof(b), "%s/%schain", g_dir, tag);
    snprintf(c, sizeof(c), "%s/%sstop", g_dir, tag);
    media_opts o;
    opts_for(&o, av1);
    json_t *plan = NULL;
    ss_err e = { 0 };
    assert_int_equal(media_plan(src, &o, NULL, NULL, &plan, &e), 0);
    assert_non_null(plan);
    int n = media_plan_chunks(plan), runs;
    assert_int_equal(n, 4);
    json_t *ra = run_items(src, a, &o, plan, 0, -1, &runs);
    assert_int_equal(runs, 4);
    json_t *rb = run_items(src, b, &o, plan, 1, -1, &runs);
    assert_int_equal(runs, 1);
    same_chunks(ra, rb, n, 1 << 0);
    json_t *rc = NULL;
    if (!av1) {
        rc = run_items(src, c, &o, plan, 1, 2, &runs);
        assert_int_equal(runs, 2);
        same_chunks(ra, rc, n, 1 << 0 | 1 << 2);
    }
    /* the segment list: names and durations (the I-frame playlist's byte
     * ranges differ: the bits of a chunk do) */
    const char *files[] = { "144p/playlist.m3u8", "audio/playlist.m3u8",
                            av1 ? "av1-144p/playlist.m3u8" : NULL };
    for (size_t i = 0; i < 3 && files[i]; i++) {
        char *ta = read_text(a, files[i]), *tb = read_text(b, files[i]);
        assert_string_equal(ta, tb);
        if (rc) {
            char *tc = read_text(c, files[i]);
            assert_string_equal(ta, tc);
            free(tc);
        }
        free(ta);
        free(tb);
    }
    /* the independent checker (alignment, continuous tfdt, BANDWIDTH over
     * every segment's peak, durations) on each output */
    const char *dirs[] = { a, b, c };
    char tests[512];   /* tests/, from tests/unit/data */
    snprintf(tests, sizeof(tests), "%s", SS_TEST_DATA);
    char *cut = strstr(tests, "/unit/data");
    assert_non_null(cut);
    *cut = '\0';
    for (size_t i = 0; i < (rc ? 3u : 2u); i++) {
        char cmd[1400];
        snprintf(cmd, sizeof(cmd),
                 "python3 %s/integration/lib/check_output.py %s --source %s >&2", tests, dirs[i], src);
        assert_int_equal(system(cmd), 0);
    }
    json_decref(ra);
    json_decref(rb);
    json_decref(rc);
    json_decref(plan);
}

static void test_chain(void **st)
{
    (void)st;
    chain_case(0);
}

/* AV1 rungs (spec codecs av1) go on too */
static void test_chain_av1(void **st)
{
    (void)st;
    chain_case(1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_chain),
        cmocka_unit_test(test_chain_av1),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
