/* test_metrics.c — the Prometheus text writer (values, label escapes,
 * histograms), the coordinator's route classes, the fleet histograms read
 * back from {ss}:stats fields, and that the bounds in coord_metrics.c are
 * the ones the Lua scripts bucket by (common/lua/_lib.lua HIST_BOUNDS). */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <event2/buffer.h>

#include "coord_metrics.h"
#include "promtext.h"
#include "rscripts.h"

static char *drain(struct evbuffer *b)
{
    size_t n = evbuffer_get_length(b);
    char *s = malloc(n + 1);
    evbuffer_remove(b, s, n);
    s[n] = '\0';
    return s;
}

static void test_values(void **state)
{
    char v[64];
    assert_string_equal(prom_fmt_value(0, v, sizeof(v)), "0");
    assert_string_equal(prom_fmt_value(42, v, sizeof(v)), "42");
    assert_string_equal(prom_fmt_value(-3, v, sizeof(v)), "-3");
    assert_string_equal(prom_fmt_value(0.1, v, sizeof(v)), "0.1");
    assert_string_equal(prom_fmt_value(0.0025, v, sizeof(v)), "0.0025");
    assert_string_equal(prom_fmt_value(1e15, v, sizeof(v)), "1000000000000000");
    assert_string_equal(prom_fmt_value(INFINITY, v, sizeof(v)), "+Inf");
    assert_string_equal(prom_fmt_value(-INFINITY, v, sizeof(v)), "-Inf");
    assert_string_equal(prom_fmt_value(NAN, v, sizeof(v)), "NaN");
    prom_fmt_value(1.0 / 3, v, sizeof(v));
    assert_true(strtod(v, NULL) == 1.0 / 3);
}

static void test_labels(void **state)
{
    char out[64];
    prom_escape_label("a\"b\\c\nd", out, sizeof(out));
    assert_string_equal(out, "a\\\"b\\\\c\\nd");
    prom_escape_label("xxxxxxxxxx", out, 6);   /* cut, still terminated */
    assert_true(strlen(out) < 6);
    struct evbuffer *b = evbuffer_new();
    prom_head(b, "m", "gauge", "Line one\nback\\slash.");
    prom_sample(b, "m", 1.5, "worker", "w\"1", "host", "h", (char *)NULL);
    prom_sample(b, "m", 2, (char *)NULL);
    char *s = drain(b);
    assert_string_equal(s, "# HELP m Line one\\nback\\\\slash.\n# TYPE m gauge\n"
                           "m{worker=\"w\\\"1\",host=\"h\"} 1.5\nm 2\n");
    free(s);
    evbuffer_free(b);
}

static void test_histogram(void **state)
{
    static const double bounds[] = { 1, 5 };
    prom_hist h;
    prom_hist_init(&h, bounds, 2);
    prom_hist_observe(&h, 0.5);
    prom_hist_observe(&h, 1);     /* le is inclusive */
    prom_hist_observe(&h, 3);
    prom_hist_observe(&h, 100);
    prom_hist_observe(&h, NAN);   /* ignored */
    struct evbuffer *b = evbuffer_new();
    prom_hist_write(b, "d_seconds", &h, "route", "job");
    char *s = drain(b);
    assert_string_equal(s, "d_seconds_bucket{route=\"job\",le=\"1\"} 2\n"
                           "d_seconds_bucket{route=\"job\",le=\"5\"} 3\n"
                           "d_seconds_bucket{route=\"job\",le=\"+Inf\"} 4\n"
                           "d_seconds_sum{route=\"job\"} 104.5\n"
                           "d_seconds_count{route=\"job\"} 4\n");
    free(s);
    evbuffer_free(b);
}

static void test_routes(void **state)
{
    static const struct {
        enum evhttp_cmd_type m;
        const char *path, *want;
    } t[] = {
        { EVHTTP_REQ_GET, "/healthz", "healthz" },
        { EVHTTP_REQ_GET, "/metrics", "metrics" },
        { EVHTTP_REQ_POST, "/v1/jobs", "jobs_submit" },
        { EVHTTP_REQ_GET, "/v1/jobs", "jobs_list" },
        { EVHTTP_REQ_GET, "/v1/jobs/0123456789abcdef0123", "job" },
        { EVHTTP_REQ_DELETE, "/v1/jobs/0123456789abcdef0123", "job_cancel" },
        { EVHTTP_REQ_POST, "/v1/jobs/0123456789abcdef0123/cancel", "job_cancel" },
        { EVHTTP_REQ_POST, "/v1/jobs/0123456789abcdef0123/retry", "job_retry" },
        { EVHTTP_REQ_GET, "/v1/jobs/0123456789abcdef0123/events", "job_events" },
        { EVHTTP_REQ_GET, "/v1/jobs/x/y/z", "api_other" },
        { EVHTTP_REQ_GET, "/v1/workers", "workers" },
        { EVHTTP_REQ_GET, "/v1/queue", "queue" },
        { EVHTTP_REQ_GET, "/v1/nothing", "api_other" },
        { EVHTTP_REQ_GET, "/files/0123456789abcdef0123/master.m3u8", "files" },
        { EVHTTP_REQ_GET, "/", "dashboard" },
        { EVHTTP_REQ_GET, "/app.js", "dashboard" },
        { EVHTTP_REQ_GET, NULL, "other" },
    };
    for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++)
        assert_string_equal(metrics_route_class(t[i].m, t[i].path), t[i].want);
}

/* The Lua table line "  name = {a, b, c}," for a histogram, parsed. */
static int lua_bounds(const char *body, const char *name, double *out, int max)
{
    char pat[96];
    snprintf(pat, sizeof(pat), "\n  %s = {", name);
    const char *p = strstr(body, pat);
    if (!p)
        return -1;
    p += strlen(pat);
    int n = 0;
    while (*p && *p != '}' && n < max) {
        char *end;
        out[n++] = strtod(p, &end);
        if (end == p)
            return -1;
        p = end;
        while (*p == ',' || *p == ' ')
            p++;
    }
    return *p == '}' ? n : -1;
}

static void test_bounds_match_lua(void **state)
{
    const char *body = rscript_body("finish");
    assert_non_null(body);
    /* finish counts the result through complete_job (_lib.lua) */
    assert_non_null(strstr(body, "count_result(jk, ms, result, "));
    assert_non_null(strstr(rscript_body("claim"), "observe('job_queue_wait_seconds'"));
    int checked = 0;
    for (const metrics_hist_def *d = metrics_hists; d->name; d++) {
        double lb[METRICS_HIST_MAX + 4];
        int n = lua_bounds(body, d->name, lb, METRICS_HIST_MAX + 4);
        assert_int_equal(n, d->n);
        for (int i = 0; i < n; i++)
            assert_true(lb[i] == d->bounds[i]);
        checked++;
    }
    assert_int_equal(checked, 4);
}

static void test_store_histograms(void **state)
{
    /* what stats.lua hands back: per-bucket fields named by tostring(bound) */
    json_t *st = json_pack("{s{sisisi} s{sisi} s{sisisisisisisi} si si si si}",
                           "depth", "high", 1, "normal", 2, "low", 0,
                           "states", "queued", 3, "completed", 7,
                           "counters", "completed", 7, "upload_bytes", 1000,
                           "hist:job_duration_seconds:5", 2, "hist:job_duration_seconds:60", 1,
                           "hist:job_duration_seconds:+Inf", 1,
                           "hist:job_duration_seconds:sum_milli", 100500, "brand_new", 9,
                           "delayed", 0, "processing", 1, "dead", 0, "hooks_due", 0);
    json_t *workers = json_pack("[{ss ss ss si si sf sf si sb sf}]", "id", "enc-1", "host", "h1",
                                "version", "0.1.0", "slots", 4, "busy", 3, "cpu_load", 55.0,
                                "cpu_threshold", 85.0, "cores", 16, "draining", 1,
                                "heartbeat_age_seconds", 1.5);
    struct evbuffer *b = evbuffer_new();
    metrics_write_store(b, st, workers, NULL);
    char *s = drain(b);
    const char *want[] = {
        "streamscale_queue_depth{priority=\"normal\"} 2\n",
        "streamscale_jobs{state=\"completed\"} 7\n",
        "streamscale_jobs_completed_total 7\n",
        "streamscale_jobs_failed_total 0\n",
        "streamscale_upload_bytes_total 1000\n",
        "streamscale_stats_total{name=\"brand_new\"} 9\n",
        "streamscale_job_duration_seconds_bucket{le=\"1\"} 0\n",
        "streamscale_job_duration_seconds_bucket{le=\"5\"} 2\n",
        "streamscale_job_duration_seconds_bucket{le=\"30\"} 2\n",
        "streamscale_job_duration_seconds_bucket{le=\"60\"} 3\n",
        "streamscale_job_duration_seconds_bucket{le=\"+Inf\"} 4\n",
        "streamscale_job_duration_seconds_sum 100.5\n",
        "streamscale_job_duration_seconds_count 4\n",
        "streamscale_job_queue_wait_seconds_bucket{le=\"0.1\"} 0\n",
        "streamscale_workers 1\n",
        "streamscale_fleet_slots 4\n",
        "streamscale_worker_cpu_load_ratio{worker=\"enc-1\"} 0.55\n",
        "streamscale_worker_busy_slots{worker=\"enc-1\"} 3\n",
        "streamscale_worker_draining{worker=\"enc-1\"} 1\n",
        "streamscale_worker_info{worker=\"enc-1\",host=\"h1\",version=\"0.1.0\"} 1\n",
    };
    for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
        if (!strstr(s, want[i]))
            fail_msg("missing: %s", want[i]);
    }
    assert_null(strstr(s, "hist:"));   /* histogram fields never leak as counters */
    free(s);
    evbuffer_free(b);
    json_decref(st);
    json_decref(workers);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_values),
        cmocka_unit_test(test_labels),
        cmocka_unit_test(test_histogram),
        cmocka_unit_test(test_routes),
        cmocka_unit_test(test_bounds_match_lua),
        cmocka_unit_test(test_store_histograms),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
