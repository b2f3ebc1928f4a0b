/* jobspec.c — job spec validation and identity (jobspec.h). The rules here
 * and proto/job.schema.json must agree; tests/unit/test_jobspec.c checks
 * the cases the schema names. */
#include "jobspec.h"

#include <ctype.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>

#include "log.h"
#include "util.h"

static const char *x264_presets[] = {
    "ultrafast", "superfast", "veryfast", "faster", "fast", "medium", "slow", "slower",
    "veryslow", "placebo", NULL
};

typedef struct vctx {
    char *field;
    size_t fieldlen;
    ss_err *err;
} vctx;

static int bad(vctx *v, const char *field, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int bad(vctx *v, const char *field, const char *fmt, ...)
{
    if (v->field)
        ss_strlcpy(v->field, field, v->fieldlen);
    char msg[400];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    return ss_fail(v->err, SS_EINVAL, "%s: %s", field, msg);
}

static int in_list(const char *s, const char *const *list)
{
    for (; *list; list++)
        if (!strcmp(s, *list))
            return 1;
    return 0;
}

static int url_scheme_ok(const char *url, const char *const *schemes)
{
    for (; *schemes; schemes++) {
        size_t n = strlen(*schemes);
        if (!strncmp(url, *schemes, n) && url[n] != '\0')
            return 1;
    }
    return 0;
}

static int str_clean(const char *s)
{
    for (; *s; s++)
        if ((unsigned char)*s < 0x20 || *s == 0x7f)
            return 0;
    return 1;
}

static int check_url(vctx *v, const char *field, json_t *val, const char *const *schemes,
                     const char *what)
{
    if (!json_is_string(val))
        return bad(v, field, "must be a string (%s)", what);
    const char *s = json_string_value(val);
    if (strlen(s) > JOBSPEC_MAX_URL)
        return bad(v, field, "is longer than 2048 characters");
    if (!str_clean(s) || strchr(s, ' '))
        return bad(v, field, "contains spaces or control characters");
    if (!url_scheme_ok(s, schemes))
        return bad(v, field, "must be %s", what);
    if (!strncmp(s, "file://", 7) && s[7] != '/')
        return bad(v, field, "file URLs must be absolute (file:///path)");
    if (!strncmp(s, "s3://", 5)) {
        const char *b = s + 5;
        size_t bl = strcspn(b, "/");
        if (memchr(b, '@', bl))
            return bad(v, field, "s3 URLs carry no credentials: the workers' S3 keys go in their "
                                 "config (s3_access_key and s3_secret_key, s3_credentials_file, or "
                                 "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY), never in a job");
        if (bl < 3 || bl > 63)
            return bad(v, field, "s3 URL needs a bucket name (s3://bucket/key)");
    }
    return 0;
}

/* JSON has one number type: 23 and 23.0 (and 2.3e1) are the same integer
 * to a client, and Python or JavaScript may send either. */
static int is_integral(json_t *val)
{
    if (json_is_integer(val))
        return 1;
    double d = json_real_value(val);
    return json_is_real(val) && d == floor(d) && fabs(d) < 9e15;
}

static long long int_value(json_t *val)
{
    return json_is_integer(val) ? (long long)json_integer_value(val)
                                : (long long)json_real_value(val);
}

/* An integer within [lo, hi]. */
static int check_int(vctx *v, const char *field, json_t *val, long long lo, long long hi)
{
    if (!is_integral(val)) {
        char d[64];
        snprintf(d, sizeof(d), "%lld and %lld", lo, hi);
        return bad(v, field, "must be an integer between %s", d);
    }
    long long x = int_value(val);
    if (x < lo || x > hi) {
        char d[64];
        snprintf(d, sizeof(d), "%lld and %lld", lo, hi);
        return bad(v, field, "must be between %s", d);
    }
    return 0;
}

static int check_unknown(vctx *v, const char *prefix, json_t *obj, const char *const *allowed)
{
    const char *k;
    json_t *val;
    json_object_foreach(obj, k, val) {
        if (!in_list(k, allowed)) {
            char f[256];
            snprintf(f, sizeof(f), "%s%s", prefix, k);
            return bad(v, f, "unknown field");
        }
    }
    return 0;
}

static int check_ladder(vctx *v, json_t *val, json_t *out)
{
    if (json_is_string(val)) {
        const char *s = json_string_value(val);
        if (strcmp(s, "auto") && strcmp(s, "per-title"))
            return bad(v, "ladder", "must be \"auto\", \"per-title\" or a list of rungs");
        json_object_set_new(out, "ladder", json_string(s));
        return 0;
    }
    if (!json_is_array(val) || json_array_size(val) == 0 ||
        json_array_size(val) > JOBSPEC_MAX_RUNGS)
        return bad(v, "ladder", "must be \"auto\", \"per-title\" or a list of 1 to 8 rungs");
    static const char *const rung_keys[] = { "height", "width", "bitrate_kbps", "crf", NULL };
    json_t *rungs = json_array();
    size_t i;
    json_t *r;
    json_array_foreach(val, i, r) {
        char pre[64], f[96];
        snprintf(pre, sizeof(pre), "ladder[%zu].", i);
        if (!json_is_object(r)) {
            snprintf(f, sizeof(f), "ladder[%zu]", i);
            json_decref(rungs);
            return bad(v, f, "must be an object like {\"height\": 720}");
        }
        if (check_unknown(v, pre, r, rung_keys)) {
            json_decref(rungs);
            return -1;
        }
        json_t *c = json_object();
        json_array_append_new(rungs, c);
        struct { const char *k; long long lo, hi; int required; } fields[] = {
            { "height", 64, 4320, 1 }, { "width", 64, 7680, 0 },
            { "bitrate_kbps", 50, 100000, 0 }, { "crf", 1, 51, 0 },
        };
        for (size_t j = 0; j < SS_ARRAY_LEN(fields); j++) {
            json_t *x = json_object_get(r, fields[j].k);
            snprintf(f, sizeof(f), "%s%s", pre, fields[j].k);
            if (!x) {
                if (fields[j].required) {
                    json_decref(rungs);
                    return bad(v, f, "is required");
                }
                continue;
            }
            if (check_int(v, f, x, fields[j].lo, fields[j].hi)) {
                json_decref(rungs);
                return -1;
            }
            long long n = int_value(x);
            if ((!strcmp(fields[j].k, "height") || !strcmp(fields[j].k, "width")) && (n & 1)) {
                json_decref(rungs);
                return bad(v, f, "must be even");
            }
            json_object_set_new(c, fields[j].k, json_integer(n));
        }
    }
    json_object_set_new(out, "ladder", rungs);
    return 0;
}

/* source_identity: what the client knows of the source's content (see
 * proto/job.schema.json). Part of the canonical spec, so of the job id:
 * the same path with other content is another job. The worker checks each
 * key against what it reads. */
static int check_source_identity(vctx *v, json_t *x)
{
    static const char *const keys[] = { "sha256", "size", "etag", "last_modified", NULL };
    if (!json_is_object(x) || json_object_size(x) == 0)
        return bad(v, "source_identity",
                   "must be an object with sha256, size, etag and/or last_modified");
    if (check_unknown(v, "source_identity.", x, keys))
        return -1;
    json_t *y = json_object_get(x, "sha256");
    if (y) {
        const char *h = json_string_value(y);
        size_t n = 0;
        while (h && h[n] && (isdigit((unsigned char)h[n]) || (h[n] >= 'a' && h[n] <= 'f')))
            n++;
        if (!h || n != 64 || h[n])
            return bad(v, "source_identity.sha256", "must be 64 lowercase hex characters");
    }
    if ((y = json_object_get(x, "size")) &&
        (!json_is_integer(y) || json_integer_value(y) < 0 ||
         json_integer_value(y) > 9007199254740991LL))
        return bad(v, "source_identity.size", "must be a whole number of bytes");
    static const struct { const char *k; size_t max; } strs[] = { { "etag", 256 },
                                                                  { "last_modified", 64 } };
    for (size_t i = 0; i < SS_ARRAY_LEN(strs); i++) {
        if (!(y = json_object_get(x, strs[i].k)))
            continue;
        const char *t = json_string_value(y);
        if (!t || !*t || strlen(t) > strs[i].max || !str_clean(t)) {
            char f[64], m[96];
            snprintf(f, sizeof(f), "source_identity.%s", strs[i].k);
            snprintf(m, sizeof(m), "must be a string of 1 to %zu printable characters", strs[i].max);
            return bad(v, f, "%s", m);
        }
    }
    return 0;
}

/* A language in an audio track list: a BCP 47 tag or an ISO 639-2 code
 * ("en", "pt-BR", "fre"): letters, digits and '-', 2 to 15 characters,
 * starting with a letter. */
static int lang_ok(const char *s)
{
    size_t n = strlen(s);
    if (n < 2 || n > 15 || !isalpha((unsigned char)s[0]))
        return 0;
    for (; *s; s++)
        if (!isalnum((unsigned char)*s) && *s != '-')
            return 0;
    return 1;
}

/* "audio": {"tracks": "all" | "default" | [language or index, ...],
 * "bitrate_kbps": N, "surround": bool}. Written to the canonical spec only
 * when it differs from the default ({"tracks": "all", "bitrate_kbps": 128,
 * "surround": false}), so the ids of specs from before it existed hold. */
static int check_audio(vctx *v, json_t *val, json_t *out)
{
    static const char *const ak[] = { "tracks", "bitrate_kbps", "surround", NULL };
    if (!json_is_object(val))
        return bad(v, "audio", "must be an object like {\"tracks\": \"all\"}");
    if (check_unknown(v, "audio.", val, ak))
        return -1;
    json_t *c = json_object();
    json_t *t = json_object_get(val, "tracks");
    if (t && json_is_string(t)) {
        const char *ts = json_string_value(t);
        if (strcmp(ts, "all") && strcmp(ts, "default")) {
            json_decref(c);
            return bad(v, "audio.tracks", "must be \"all\", \"default\" or a list of languages and indexes");
        }
        if (strcmp(ts, "all"))
            json_object_set(c, "tracks", t);
    } else if (t) {
        if (!json_is_array(t) || json_array_size(t) == 0 || json_array_size(t) > 16) {
            json_decref(c);
            return bad(v, "audio.tracks", "must be \"all\", \"default\" or a list of 1 to 16 languages and indexes");
        }
        size_t i;
        json_t *e;
        json_array_foreach(t, i, e) {
            char f[48];
            snprintf(f, sizeof(f), "audio.tracks[%zu]", i);
            if (json_is_string(e) ? !lang_ok(json_string_value(e))
                                  : (!is_integral(e) || int_value(e) < 0 || int_value(e) > 63)) {
                json_decref(c);
                return bad(v, f, "must be a language (\"en\", \"fre\", \"pt-BR\") or an audio stream index 0 to 63");
            }
        }
        json_object_set(c, "tracks", t);
    }
    json_t *b = json_object_get(val, "bitrate_kbps");
    if (b) {
        if (check_int(v, "audio.bitrate_kbps", b, 32, 512)) {
            json_decref(c);
            return -1;
        }
        if (int_value(b) != 128)
            json_object_set_new(c, "bitrate_kbps", json_integer(int_value(b)));
    }
    json_t *su = json_object_get(val, "surround");
    if (su && !json_is_boolean(su)) {
        json_decref(c);
        return bad(v, "audio.surround", "must be true or false");
    }
    if (su && json_is_true(su))
        json_object_set_new(c, "surround", json_true());
    if (json_object_size(c))
        json_object_set_new(out, "audio", c);
    else
        json_decref(c);
    return 0;
}

/* "codecs": ["h264"] (default) or ["h264", "av1"]; in the canonical spec
 * only when AV1 is asked for, always in the order h264, av1. */
static int check_codecs(vctx *v, json_t *val, json_t *out)
{
    if (!json_is_array(val) || json_array_size(val) == 0 || json_array_size(val) > 2)
        return bad(v, "codecs", "must be [\"h264\"] or [\"h264\", \"av1\"]");
    int h264 = 0, av1 = 0;
    size_t i;
    json_t *e;
    json_array_foreach(val, i, e) {
        const char *cs = json_string_value(e);
        if (cs && !strcmp(cs, "h264") && !h264)
            h264 = 1;
        else if (cs && !strcmp(cs, "av1") && !av1)
            av1 = 1;
        else {
            char f[32];
            snprintf(f, sizeof(f), "codecs[%zu]", i);
            return bad(v, f, "must be \"h264\" or \"av1\", each once");
        }
    }
    if (!h264)
        return bad(v, "codecs", "must include \"h264\" (AV1 is offered next to it, for the players that decode it)");
    if (av1)
        json_object_set_new(out, "codecs", json_pack("[ss]", "h264", "av1"));
    return 0;
}

/* "mp4": false (default), true (the top rung) or {"height": N} (the rung
 * closest to N): a progressive download file; canonical only when asked. */
static int check_mp4(vctx *v, json_t *val, json_t *out)
{
    if (json_is_boolean(val)) {
        if (json_is_true(val))
            json_object_set_new(out, "mp4", json_true());
        return 0;
    }
    if (!json_is_object(val))
        return bad(v, "mp4", "must be true, false or {\"height\": N}");
    static const char *const mk[] = { "height", NULL };
    if (check_unknown(v, "mp4.", val, mk))
        return -1;
    json_t *h = json_object_get(val, "height");
    if (!h)
        return bad(v, "mp4.height", "is required");
    if (check_int(v, "mp4.height", h, 64, 4320))
        return -1;
    json_object_set_new(out, "mp4", json_pack("{sI}", "height", (json_int_t)int_value(h)));
    return 0;
}

json_t *jobspec_validate(const json_t *spec, char *field, size_t fieldlen, ss_err *err)
{
    vctx v = { field, fieldlen, err };
    if (field && fieldlen)
        field[0] = '\0';
    if (!json_is_object(spec)) {
        bad(&v, "(body)", "must be a JSON object");
        return NULL;
    }
    static const char *const top_keys[] = {
        "source", "destination", "ladder", "rate_control", "segment_seconds", "packaging",
        "thumbnails", "webhook", "priority", "metadata", "idempotency_key", "preset", "crf",
        "max_attempts", "source_identity", "audio", "codecs", "mp4", "split", NULL
    };
    json_t *s = (json_t *)spec;
    if (check_unknown(&v, "", s, top_keys))
        return NULL;
    json_t *out = json_object();
    json_t *x;

    static const char *const src_schemes[] = { "https://", "http://", "s3://", "file://", NULL };
    static const char *const dst_schemes[] = { "s3://", "file://", NULL };
    x = json_object_get(s, "source");
    if (!x) {
        bad(&v, "source", "is required");
        goto fail;
    }
    if (check_url(&v, "source", x, src_schemes, "an https://, http://, s3:// or file:/// URL"))
        goto fail;
    json_object_set(out, "source", x);

    if ((x = json_object_get(s, "source_identity"))) {
        if (check_source_identity(&v, x))
            goto fail;
        json_object_set(out, "source_identity", x);
    }

    if ((x = json_object_get(s, "destination"))) {
        if (check_url(&v, "destination", x, dst_schemes, "an s3://bucket/prefix/ or file:///dir/ URL"))
            goto fail;
        json_object_set(out, "destination", x);
    }

    x = json_object_get(s, "ladder");
    if (!x)
        json_object_set_new(out, "ladder", json_string(JOBSPEC_DEFAULT_LADDER));
    else if (check_ladder(&v, x, out))
        goto fail;

    x = json_object_get(s, "rate_control");
    if (x && (!json_is_string(x) || (strcmp(json_string_value(x), "capped-crf") &&
                                      strcmp(json_string_value(x), "two-pass")))) {
        bad(&v, "rate_control", "must be \"capped-crf\" or \"two-pass\"");
        goto fail;
    }
    json_object_set_new(out, "rate_control",
                        json_string(x ? json_string_value(x) : JOBSPEC_DEFAULT_RATE_CONTROL));

    x = json_object_get(s, "segment_seconds");
    if (x) {
        if (!json_is_number(x) || json_number_value(x) < 1 || json_number_value(x) > 20) {
            bad(&v, "segment_seconds", "must be a number between 1 and 20");
            goto fail;
        }
        double d = json_number_value(x);
        if (d == floor(d))
            json_object_set_new(out, "segment_seconds", json_integer((json_int_t)d));
        else
            json_object_set_new(out, "segment_seconds", json_real(d));
    } else {
        json_object_set_new(out, "segment_seconds", json_integer(JOBSPEC_DEFAULT_SEGMENT_SECONDS));
    }

    /* split: "auto" (the default, left out of the canonical spec so
     * existing job ids stay), "off", or seconds a chunk */
    x = json_object_get(s, "split");
    if (x) {
        const char *sv = json_string_value(x);
        if (sv ? strcmp(sv, "auto") && strcmp(sv, "off")
               : !json_is_number(x) || json_number_value(x) < 1 || json_number_value(x) > 3600) {
            bad(&v, "split", "must be \"auto\", \"off\" or seconds a chunk from 1 to 3600");
            goto fail;
        }
        if (!sv || strcmp(sv, "auto"))
            json_object_set(out, "split", x);
    }

    x = json_object_get(s, "packaging");
    if (x) {
        int hls = 0, dash = 0;
        size_t i;
        json_t *p;
        if (!json_is_array(x) || json_array_size(x) == 0 || json_array_size(x) > 2) {
            bad(&v, "packaging", "must be a list of \"hls\" and/or \"dash\"");
            goto fail;
        }
        json_array_foreach(x, i, p) {
            const char *ps = json_string_value(p);
            if (ps && !strcmp(ps, "hls") && !hls)
                hls = 1;
            else if (ps && !strcmp(ps, "dash") && !dash)
                dash = 1;
            else {
                char f[32];
                snprintf(f, sizeof(f), "packaging[%zu]", i);
                bad(&v, f, "must be \"hls\" or \"dash\", each once");
                goto fail;
            }
        }
        json_t *pk = json_array();
        if (hls)
            json_array_append_new(pk, json_string("hls"));
        if (dash)
            json_array_append_new(pk, json_string("dash"));
        json_object_set_new(out, "packaging", pk);
    } else {
        json_object_set_new(out, "packaging", json_pack("[ss]", "hls", "dash"));
    }

    x = json_object_get(s, "thumbnails");
    if (x) {
        if (json_is_boolean(x)) {
            json_object_set_new(out, "thumbnails", json_pack("{sbsi}", "enabled", json_is_true(x),
                                                             "interval_seconds",
                                                             JOBSPEC_DEFAULT_THUMB_INTERVAL));
        } else if (json_is_object(x)) {
            static const char *const tk[] = { "enabled", "interval_seconds", NULL };
            if (check_unknown(&v, "thumbnails.", x, tk))
                goto fail;
            json_t *en = json_object_get(x, "enabled"), *iv = json_object_get(x, "interval_seconds");
            if (en && !json_is_boolean(en)) {
                bad(&v, "thumbnails.enabled", "must be true or false");
                goto fail;
            }
            if (iv && check_int(&v, "thumbnails.interval_seconds", iv, 1, 600))
                goto fail;
            json_object_set_new(out, "thumbnails",
                                json_pack("{sbsI}", "enabled", en ? json_is_true(en) : 1,
                                          "interval_seconds",
                                          (json_int_t)(iv ? int_value(iv)
                                                          : JOBSPEC_DEFAULT_THUMB_INTERVAL)));
        } else {
            bad(&v, "thumbnails", "must be true, false or {\"interval_seconds\": N}");
            goto fail;
        }
    } else {
        json_object_set_new(out, "thumbnails", json_pack("{sbsi}", "enabled", 1, "interval_seconds",
                                                         JOBSPEC_DEFAULT_THUMB_INTERVAL));
    }

    if ((x = json_object_get(s, "webhook"))) {
        static const char *const wk[] = { "url", "secret", NULL };
        static const char *const hook_schemes[] = { "https://", "http://", NULL };
        if (!json_is_object(x)) {
            bad(&v, "webhook", "must be an object {\"url\": ..., \"secret\": ...}");
            goto fail;
        }
        if (check_unknown(&v, "webhook.", x, wk))
            goto fail;
        json_t *u = json_object_get(x, "url"), *sec = json_object_get(x, "secret");
        if (!u) {
            bad(&v, "webhook.url", "is required");
            goto fail;
        }
        if (check_url(&v, "webhook.url", u, hook_schemes, "an https:// or http:// URL"))
            goto fail;
        if (sec && (!json_is_string(sec) || strlen(json_string_value(sec)) < 8 ||
                    strlen(json_string_value(sec)) > 256)) {
            bad(&v, "webhook.secret", "must be a string of 8 to 256 characters");
            goto fail;
        }
        json_t *w = json_pack("{sO}", "url", u);
        if (sec)
            json_object_set(w, "secret", sec);
        json_object_set_new(out, "webhook", w);
    }

    x = json_object_get(s, "priority");
    if (x) {
        static const char *const pr[] = { "low", "normal", "high", NULL };
        if (!json_is_string(x) || !in_list(json_string_value(x), pr)) {
            bad(&v, "priority", "must be \"high\", \"normal\" or \"low\"");
            goto fail;
        }
        json_object_set(out, "priority", x);
    } else {
        json_object_set_new(out, "priority", json_string(JOBSPEC_DEFAULT_PRIORITY));
    }

    if ((x = json_object_get(s, "metadata"))) {
        if (!json_is_object(x)) {
            bad(&v, "metadata", "must be an object");
            goto fail;
        }
        char *dump = json_dumps(x, JSON_COMPACT);
        size_t dl = dump ? strlen(dump) : 0;
        free(dump);
        if (dl > JOBSPEC_MAX_METADATA) {
            bad(&v, "metadata", "is larger than 8 KiB");
            goto fail;
        }
        json_object_set(out, "metadata", x);
    }

    if ((x = json_object_get(s, "idempotency_key"))) {
        const char *k = json_string_value(x);
        if (!k || !*k || strlen(k) > 128 || !str_clean(k)) {
            bad(&v, "idempotency_key", "must be a string of 1 to 128 printable characters");
            goto fail;
        }
        json_object_set(out, "idempotency_key", x);
    }

    x = json_object_get(s, "preset");
    if (x && (!json_is_string(x) || !in_list(json_string_value(x), x264_presets))) {
        bad(&v, "preset", "must be a libx264 preset (ultrafast ... veryslow)");
        goto fail;
    }
    json_object_set_new(out, "preset", json_string(x ? json_string_value(x) : JOBSPEC_DEFAULT_PRESET));

    x = json_object_get(s, "crf");
    if (x && check_int(&v, "crf", x, 1, 51))
        goto fail;
    json_object_set_new(out, "crf", json_integer(x ? int_value(x) : JOBSPEC_DEFAULT_CRF));

    if ((x = json_object_get(s, "audio")) && check_audio(&v, x, out))
        goto fail;
    if ((x = json_object_get(s, "codecs")) && check_codecs(&v, x, out))
        goto fail;
    if ((x = json_object_get(s, "mp4")) && check_mp4(&v, x, out))
        goto fail;

    /* max_attempts has no fixed default (it is the coordinator's setting):
     * only a value the client set is part of the spec, and so of the id */
    x = json_object_get(s, "max_attempts");
    if (x && check_int(&v, "max_attempts", x, 1, 20))
        goto fail;
    if (x)
        json_object_set_new(out, "max_attempts", json_integer(int_value(x)));
    return out;

fail:
    json_decref(out);
    return NULL;
}

json_t *jobspec_parse(const char *body, size_t len, char *field, size_t fieldlen, ss_err *err)
{
    if (field && fieldlen)
        field[0] = '\0';
    if (len > JOBSPEC_MAX_BODY) {
        if (field)
            ss_strlcpy(field, "(body)", fieldlen);
        ss_fail(err, SS_ELIMIT, "(body): request body is larger than %d bytes", JOBSPEC_MAX_BODY);
        return NULL;
    }
    /* Depth cap: jansson has its own (2048); ours is far lower. */
    int depth = 0, maxdepth = 0, instr = 0;
    for (size_t i = 0; i < len; i++) {
        char c = body[i];
        if (instr) {
            if (c == '\\')
                i++;
            else if (c == '"')
                instr = 0;
        } else if (c == '"') {
            instr = 1;
        } else if (c == '{' || c == '[') {
            if (++depth > maxdepth)
                maxdepth = depth;
        } else if (c == '}' || c == ']') {
            depth--;
        }
    }
    if (maxdepth > 16) {
        if (field)
            ss_strlcpy(field, "(body)", fieldlen);
        ss_fail(err, SS_EINVAL, "(body): JSON nested deeper than 16 levels");
        return NULL;
    }
    json_error_t je;
    json_t *j = json_loadb(body, len, JSON_REJECT_DUPLICATES, &je);
    if (!j) {
        if (field)
            ss_strlcpy(field, "(body)", fieldlen);
        ss_fail(err, SS_EINVAL, "(body): malformed JSON at line %d column %d: %s", je.line,
                je.column, je.text);
        return NULL;
    }
    json_t *c = jobspec_validate(j, field, fieldlen, err);
    json_decref(j);
    return c;
}

void jobspec_id(const json_t *canonical, char out[JOBSPEC_ID_LEN + 1])
{
    char hex[65];
    const char *key = json_string_value(json_object_get(canonical, "idempotency_key"));
    if (key) {
        char buf[160];
        int n = snprintf(buf, sizeof(buf), "key:%s", key);   /* key <= 128 chars */
        ss_sha256_hex(buf, (size_t)n, hex);
    } else {
        char *dump = json_dumps(canonical, JSON_COMPACT | JSON_SORT_KEYS);
        size_t dl = dump ? strlen(dump) : 0;
        char *buf = malloc(dl + 8);
        if (buf && dump) {
            memcpy(buf, "spec:", 5);
            memcpy(buf + 5, dump, dl);
            ss_sha256_hex(buf, dl + 5, hex);
        } else {
            ss_sha256_hex("", 0, hex);
        }
        free(buf);
        free(dump);
    }
    memcpy(out, hex, JOBSPEC_ID_LEN);
    out[JOBSPEC_ID_LEN] = '\0';
}

int jobspec_id_valid(const char *s)
{
    size_t n = 0;
    for (; s[n]; n++)
        if (!isxdigit((unsigned char)s[n]) || isupper((unsigned char)s[n]))
            return 0;
    return n == JOBSPEC_ID_LEN;
}

jobspec_priority jobspec_priority_of(const json_t *canonical)
{
    const char *p = json_string_value(json_object_get(canonical, "priority"));
    if (p && !strcmp(p, "high"))
        return JOB_PRIO_HIGH;
    if (p && !strcmp(p, "low"))
        return JOB_PRIO_LOW;
    return JOB_PRIO_NORMAL;
}

const char *jobspec_priority_name(jobspec_priority p)
{
    return p == JOB_PRIO_HIGH ? "high" : p == JOB_PRIO_LOW ? "low" : "normal";
}

/* Replace the string at obj[key] by its redacted form (log.h). */
static void redact_url_field(json_t *obj, const char *key)
{
    const char *u = json_string_value(json_object_get(obj, key));
    if (!u)
        return;
    size_t n = strlen(u) + 64;
    char *r = malloc(n);
    if (r && ss_url_redact(u, r, n))
        json_object_set_new(obj, key, json_string(r));
    free(r);
}

json_t *jobspec_redacted(const json_t *canonical)
{
    json_t *c = json_deep_copy(canonical);
    json_t *w = json_object_get(c, "webhook");
    if (w && json_object_get(w, "secret"))
        json_object_set_new(w, "secret", json_string("(set)"));
    redact_url_field(c, "source");
    redact_url_field(c, "destination");
    redact_url_field(w, "url");
    return c;
}

char *jobspec_redacted_url(const char *url)
{
    size_t n = strlen(url) + 64;
    char *r = malloc(n);
    if (r)
        ss_url_redact(url, r, n);
    return r;
}
