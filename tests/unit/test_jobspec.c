/* Job spec validation, canonical form and job id (common/jobspec.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "jobspec.h"

static json_t *ok(const char *body)
{
    char field[128];
    ss_err err = { 0 };
    json_t *c = jobspec_parse(body, strlen(body), field, sizeof(field), &err);
    if (!c)
        fail_msg("rejected %s: %s", body, err.msg);
    return c;
}

static void bad(const char *body, const char *want_field, const char *want_msg)
{
    char field[128];
    ss_err err = { 0 };
    json_t *c = jobspec_parse(body, strlen(body), field, sizeof(field), &err);
    if (c)
        fail_msg("accepted %s", body);
    assert_string_equal(field, want_field);
    if (want_msg && !strstr(err.msg, want_msg))
        fail_msg("error '%s' lacks '%s'", err.msg, want_msg);
}

static void test_defaults_filled(void **state)
{
    (void)state;
    json_t *c = ok("{\"source\":\"https://example.com/a.mp4\"}");
    assert_string_equal(json_string_value(json_object_get(c, "ladder")), "auto");
    assert_string_equal(json_string_value(json_object_get(c, "rate_control")), "capped-crf");
    assert_int_equal(json_integer_value(json_object_get(c, "segment_seconds")), 4);
    assert_int_equal(json_array_size(json_object_get(c, "packaging")), 2);
    assert_string_equal(json_string_value(json_object_get(c, "priority")), "normal");
    assert_string_equal(json_string_value(json_object_get(c, "preset")), "veryfast");
    assert_int_equal(json_integer_value(json_object_get(c, "crf")), 23);
    assert_null(json_object_get(c, "max_attempts"));   /* the coordinator's setting */
    assert_true(json_is_true(json_object_get(json_object_get(c, "thumbnails"), "enabled")));
    assert_null(json_object_get(c, "destination"));
    json_decref(c);
}

/* proto/job.schema.json's "default"s are the ones jobspec.h's table fills in. */
static void test_defaults_match_the_schema(void **state)
{
    (void)state;
    /* SS_TEST_DATA is <source>/tests/unit/data */
    char path[4096];
    snprintf(path, sizeof(path), "%s", SS_TEST_DATA);
    char *t = strstr(path, "/tests/unit/data");
    assert_non_null(t);
    snprintf(t, sizeof(path) - (size_t)(t - path), "/proto/job.schema.json");
    json_error_t je;
    json_t *schema = json_load_file(path, 0, &je);
    if (!schema)
        fail_msg("cannot read proto/job.schema.json: %s", je.text);
    json_t *c = ok("{\"source\":\"https://example.com/a.mp4\"}");
    json_t *props = json_object_get(schema, "properties");
    const char *k;
    json_t *p;
    int checked = 0;
    json_object_foreach(props, k, p) {
        json_t *d = json_object_get(p, "default");
        if (!d)
            continue;
        if (!json_equal(d, json_object_get(c, k)))
            fail_msg("default of %s: schema %s, canonical spec %s", k, json_dumps(d, JSON_ENCODE_ANY),
                     json_dumps(json_object_get(c, k), JSON_ENCODE_ANY));
        checked++;
    }
    assert_true(checked >= 8);
    json_decref(c);
    json_decref(schema);
}

static void test_rejections_name_the_field(void **state)
{
    (void)state;
    bad("", "(body)", "malformed JSON");
    bad("{\"source\": ", "(body)", "malformed JSON");
    bad("[]", "(body)", "JSON object");
    bad("{\"source\":\"file:///a\",\"source\":\"file:///b\"}", "(body)", NULL);
    bad("{}", "source", "required");
    bad("{\"source\":1}", "source", "string");
    bad("{\"source\":\"ftp://x/a\"}", "source", NULL);
    bad("{\"source\":\"file://rel/a\"}", "source", "absolute");
    bad("{\"source\":\"s3://ab\"}", "source", "bucket");
    bad("{\"source\":\"https://x/a b\"}", "source", "spaces");
    bad("{\"source\":\"file:///a\",\"extra\":1}", "extra", "unknown field");
    bad("{\"source\":\"file:///a\",\"ladder\":[]}", "ladder", NULL);
    bad("{\"source\":\"file:///a\",\"ladder\":[{\"height\":720},{\"height\":63}]}", "ladder[1].height", NULL);
    bad("{\"source\":\"file:///a\",\"ladder\":[{\"height\":720,\"width\":1281}]}", "ladder[0].width", "even");
    bad("{\"source\":\"file:///a\",\"ladder\":[{\"width\":1280}]}", "ladder[0].height", "required");
    bad("{\"source\":\"file:///a\",\"ladder\":[{\"height\":720,\"x\":1}]}", "ladder[0].x", "unknown");
    bad("{\"source\":\"file:///a\",\"segment_seconds\":21}", "segment_seconds", NULL);
    bad("{\"source\":\"file:///a\",\"segment_seconds\":\"4\"}", "segment_seconds", NULL);
    bad("{\"source\":\"file:///a\",\"packaging\":[\"hls\",\"hls\"]}", "packaging[1]", NULL);
    bad("{\"source\":\"file:///a\",\"thumbnails\":{\"interval_seconds\":0}}", "thumbnails.interval_seconds", NULL);
    bad("{\"source\":\"file:///a\",\"webhook\":{\"secret\":\"abcdefgh\"}}", "webhook.url", "required");
    bad("{\"source\":\"file:///a\",\"webhook\":{\"url\":\"https://h/\",\"secret\":\"x\"}}", "webhook.secret", NULL);
    bad("{\"source\":\"file:///a\",\"priority\":5}", "priority", NULL);
    bad("{\"source\":\"file:///a\",\"metadata\":\"x\"}", "metadata", "object");
    bad("{\"source\":\"file:///a\",\"idempotency_key\":\"\"}", "idempotency_key", NULL);
    bad("{\"source\":\"file:///a\",\"preset\":\"turbo\"}", "preset", NULL);
    bad("{\"source\":\"file:///a\",\"crf\":52}", "crf", NULL);
    bad("{\"source\":\"file:///a\",\"max_attempts\":0}", "max_attempts", NULL);
    bad("{\"source\":\"file:///a\",\"destination\":\"https://x/\"}", "destination", NULL);
}

static void test_limits(void **state)
{
    (void)state;
    /* nesting deeper than 16 */
    char deep[256] = "{\"source\":\"file:///a\",\"metadata\":";
    for (int i = 0; i < 20; i++)
        strcat(deep, "{\"a\":");
    strcat(deep, "1");
    for (int i = 0; i < 21; i++)
        strcat(deep, "}");
    bad(deep, "(body)", "deeper");
    /* oversized body */
    size_t n = JOBSPEC_MAX_BODY + 10;
    char *big = malloc(n + 1);
    memset(big, ' ', n);
    big[n] = '\0';
    char field[64];
    ss_err err = { 0 };
    assert_null(jobspec_parse(big, n, field, sizeof(field), &err));
    assert_int_equal(err.code, SS_ELIMIT);
    free(big);
    /* metadata over 8 KiB */
    char *meta = malloc(10000);
    strcpy(meta, "{\"source\":\"file:///a\",\"metadata\":{\"k\":\"");
    size_t l = strlen(meta);
    memset(meta + l, 'x', 9000);
    strcpy(meta + l + 9000, "\"}}");
    bad(meta, "metadata", "8 KiB");
    free(meta);
}

static void test_integral_reals(void **state)
{
    (void)state;
    /* 23.0 and 2.3e1 are the integer 23 to JSON; the canonical form keeps
     * an integer so the job id does not depend on how it was written */
    json_t *a = ok("{\"source\":\"file:///a\",\"crf\":23.0,\"ladder\":[{\"height\":7.2e2}]}");
    json_t *b = ok("{\"source\":\"file:///a\",\"crf\":23,\"ladder\":[{\"height\":720}]}");
    assert_true(json_is_integer(json_object_get(a, "crf")));
    char ia[JOBSPEC_ID_LEN + 1], ib[JOBSPEC_ID_LEN + 1];
    jobspec_id(a, ia);
    jobspec_id(b, ib);
    assert_string_equal(ia, ib);
    bad("{\"source\":\"file:///a\",\"crf\":23.5}", "crf", "integer");
    json_decref(a);
    json_decref(b);
}

static void test_identity(void **state)
{
    (void)state;
    json_t *a = ok("{\"source\":\"file:///a.mp4\",\"metadata\":{\"x\":1,\"y\":2}}");
    json_t *b = ok("{\"metadata\":{\"y\":2,\"x\":1},\"segment_seconds\":4,\"source\":\"file:///a.mp4\"}");
    json_t *c = ok("{\"source\":\"file:///a.mp4\",\"metadata\":{\"x\":1,\"y\":3}}");
    char ia[JOBSPEC_ID_LEN + 1], ib[JOBSPEC_ID_LEN + 1], ic[JOBSPEC_ID_LEN + 1];
    jobspec_id(a, ia);
    jobspec_id(b, ib);
    jobspec_id(c, ic);
    assert_string_equal(ia, ib);   /* key order and defaults do not matter */
    assert_string_not_equal(ia, ic);
    assert_true(jobspec_id_valid(ia));
    assert_false(jobspec_id_valid("ABCDEF0123456789abcd"));
    assert_false(jobspec_id_valid("abc"));
    assert_false(jobspec_id_valid("../../../../etc/pass"));
    json_t *k1 = ok("{\"source\":\"file:///a.mp4\",\"idempotency_key\":\"order-1\"}");
    json_t *k2 = ok("{\"source\":\"file:///b.mp4\",\"idempotency_key\":\"order-1\"}");
    char i1[JOBSPEC_ID_LEN + 1], i2[JOBSPEC_ID_LEN + 1];
    jobspec_id(k1, i1);
    jobspec_id(k2, i2);
    assert_string_equal(i1, i2);
    assert_string_not_equal(i1, ia);
    json_decref(a);
    json_decref(b);
    json_decref(c);
    json_decref(k1);
    json_decref(k2);
}

static void test_source_identity(void **state)
{
    (void)state;
    const char *h1 = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";
    const char *h2 = "60303ae22b998861bce3b28f33eec1be758a213c86c93c076dbe9f558c11c752";
    char b1[512], b2[512], ia[JOBSPEC_ID_LEN + 1], ib[JOBSPEC_ID_LEN + 1], ic[JOBSPEC_ID_LEN + 1];
    snprintf(b1, sizeof(b1), "{\"source\":\"file:///a.mp4\",\"source_identity\":{\"sha256\":\"%s\",\"size\":4}}", h1);
    snprintf(b2, sizeof(b2), "{\"source\":\"file:///a.mp4\",\"source_identity\":{\"size\":4,\"sha256\":\"%s\"}}", h2);
    json_t *a = ok(b1), *b = ok(b2), *c = ok("{\"source\":\"file:///a.mp4\"}");
    assert_string_equal(json_string_value(json_object_get(json_object_get(a, "source_identity"), "sha256")), h1);
    jobspec_id(a, ia);
    jobspec_id(b, ib);
    jobspec_id(c, ic);
    /* the same path with other content is another job, and neither is the path alone */
    assert_string_not_equal(ia, ib);
    assert_string_not_equal(ia, ic);
    json_t *a2 = ok(b1);
    char ia2[JOBSPEC_ID_LEN + 1];
    jobspec_id(a2, ia2);
    assert_string_equal(ia, ia2);
    json_decref(a);
    json_decref(a2);
    json_decref(b);
    json_decref(c);
    json_decref(ok("{\"source\":\"https://h/a.mp4\",\"source_identity\":{\"etag\":\"\\\"abc\\\"\",\"last_modified\":\"Wed, 21 Oct 2015 07:28:00 GMT\"}}"));
    bad("{\"source\":\"file:///a\",\"source_identity\":{}}", "source_identity", NULL);
    bad("{\"source\":\"file:///a\",\"source_identity\":\"x\"}", "source_identity", NULL);
    bad("{\"source\":\"file:///a\",\"source_identity\":{\"sha256\":\"ABC\"}}", "source_identity.sha256", "hex");
    bad("{\"source\":\"file:///a\",\"source_identity\":{\"size\":-1}}", "source_identity.size", NULL);
    bad("{\"source\":\"file:///a\",\"source_identity\":{\"etag\":\"\"}}", "source_identity.etag", NULL);
    bad("{\"source\":\"file:///a\",\"source_identity\":{\"mtime\":1}}", "source_identity.mtime", "unknown");
}

static void same_id(const char *x, const char *y, int want_same)
{
    json_t *a = ok(x), *b = ok(y);
    char ia[JOBSPEC_ID_LEN + 1], ib[JOBSPEC_ID_LEN + 1];
    jobspec_id(a, ia);
    jobspec_id(b, ib);
    if (want_same)
        assert_string_equal(ia, ib);
    else
        assert_string_not_equal(ia, ib);
    json_decref(a);
    json_decref(b);
}

/* audio, codecs and mp4 came after the first release: asked for at their
 * defaults they leave the canonical spec (and so the job id) as it was. */
static void test_media_fields(void **state)
{
    (void)state;
    const char *plain = "{\"source\":\"file:///a.mp4\"}";
    same_id(plain, "{\"source\":\"file:///a.mp4\",\"codecs\":[\"h264\"],\"mp4\":false,"
                   "\"audio\":{\"tracks\":\"all\",\"bitrate_kbps\":128,\"surround\":false}}", 1);
    same_id(plain, "{\"source\":\"file:///a.mp4\",\"codecs\":[\"h264\",\"av1\"]}", 0);
    same_id("{\"source\":\"file:///a.mp4\",\"codecs\":[\"av1\",\"h264\"]}",
            "{\"source\":\"file:///a.mp4\",\"codecs\":[\"h264\",\"av1\"]}", 1);
    same_id(plain, "{\"source\":\"file:///a.mp4\",\"audio\":{\"surround\":true}}", 0);
    same_id(plain, "{\"source\":\"file:///a.mp4\",\"mp4\":true}", 0);
    json_t *c = ok("{\"source\":\"file:///a.mp4\",\"audio\":{\"tracks\":[\"en\",2,\"pt-BR\"],"
                   "\"bitrate_kbps\":96},\"mp4\":{\"height\":720},\"codecs\":[\"av1\",\"h264\"]}");
    json_t *a = json_object_get(c, "audio");
    assert_int_equal(json_array_size(json_object_get(a, "tracks")), 3);
    assert_int_equal(json_integer_value(json_object_get(a, "bitrate_kbps")), 96);
    assert_null(json_object_get(a, "surround"));
    assert_int_equal(json_integer_value(json_object_get(json_object_get(c, "mp4"), "height")), 720);
    assert_string_equal(json_string_value(json_array_get(json_object_get(c, "codecs"), 0)), "h264");
    json_decref(c);
    bad("{\"source\":\"file:///a\",\"audio\":\"all\"}", "audio", "object");
    bad("{\"source\":\"file:///a\",\"audio\":{\"tracks\":\"some\"}}", "audio.tracks", NULL);
    bad("{\"source\":\"file:///a\",\"audio\":{\"tracks\":[]}}", "audio.tracks", NULL);
    bad("{\"source\":\"file:///a\",\"audio\":{\"tracks\":[\"en\",\"e n\"]}}", "audio.tracks[1]", NULL);
    bad("{\"source\":\"file:///a\",\"audio\":{\"tracks\":[64]}}", "audio.tracks[0]", NULL);
    bad("{\"source\":\"file:///a\",\"audio\":{\"bitrate_kbps\":16}}", "audio.bitrate_kbps", NULL);
    bad("{\"source\":\"file:///a\",\"audio\":{\"surround\":1}}", "audio.surround", NULL);
    bad("{\"source\":\"file:///a\",\"audio\":{\"lang\":1}}", "audio.lang", "unknown");
    bad("{\"source\":\"file:///a\",\"codecs\":[\"av1\"]}", "codecs", "h264");
    bad("{\"source\":\"file:///a\",\"codecs\":[\"h264\",\"hevc\"]}", "codecs[1]", NULL);
    bad("{\"source\":\"file:///a\",\"codecs\":[\"h264\",\"h264\"]}", "codecs[1]", NULL);
    bad("{\"source\":\"file:///a\",\"mp4\":{}}", "mp4.height", "required");
    bad("{\"source\":\"file:///a\",\"mp4\":\"720\"}", "mp4", NULL);
}

static void test_redaction_and_priority(void **state)
{
    (void)state;
    json_t *c = ok("{\"source\":\"file:///a\",\"priority\":\"high\","
                   "\"webhook\":{\"url\":\"https://h/x\",\"secret\":\"topsecret\"}}");
    assert_int_equal(jobspec_priority_of(c), JOB_PRIO_HIGH);
    json_t *r = jobspec_redacted(c);
    char *s = json_dumps(r, 0);
    assert_null(strstr(s, "topsecret"));
    free(s);
    /* the original keeps it (the dispatcher signs with it) */
    assert_string_equal(json_string_value(json_object_get(json_object_get(c, "webhook"), "secret")),
                        "topsecret");
    json_decref(r);
    json_decref(c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults_filled),
        cmocka_unit_test(test_defaults_match_the_schema),
        cmocka_unit_test(test_rejections_name_the_field),
        cmocka_unit_test(test_limits),
        cmocka_unit_test(test_integral_reals),
        cmocka_unit_test(test_identity),
        cmocka_unit_test(test_source_identity),
        cmocka_unit_test(test_redaction_and_priority),
        cmocka_unit_test(test_media_fields),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
