/* opts.c — media_opts defaults and the mapping from a canonical job spec
 * (media.h). */
#include "media.h"

#include <stdio.h>
#include <string.h>

void media_opts_default(media_opts *o)
{
    memset(o, 0, sizeof(*o));
    o->ladder = MEDIA_LADDER_AUTO;
    o->rate_control = MEDIA_RC_CAPPED_CRF;
    o->preset = "veryfast";
    o->crf = 23;
    o->segment_seconds = 4.0;
    o->threads = 0;
    o->audio_kbps = 128;
    o->hls = 1;
    o->dash = 1;
    o->thumbnails = 1;
    o->thumb_interval = 10.0;
    o->scratch_dir = "/tmp";
}

static int int_field(const json_t *obj, const char *key, int lo, int hi, int *out,
                     const char *path, ss_err *err)
{
    json_t *x = json_object_get(obj, key);
    if (!x)
        return 0;
    if (!json_is_integer(x) || json_integer_value(x) < lo || json_integer_value(x) > hi)
        return ss_fail(err, SS_EINVAL, "%s%s must be an integer from %d to %d", path, key, lo, hi);
    *out = (int)json_integer_value(x);
    return 0;
}

int media_opts_from_spec(media_opts *o, const json_t *spec, ss_err *err)
{
    media_opts_default(o);
    if (!json_is_object(spec))
        return ss_fail(err, SS_EINVAL, "job spec must be an object");
    json_t *x = json_object_get(spec, "ladder");
    if (json_is_string(x)) {
        const char *s = json_string_value(x);
        if (!strcmp(s, "auto"))
            o->ladder = MEDIA_LADDER_AUTO;
        else if (!strcmp(s, "per-title"))
            o->ladder = MEDIA_LADDER_PER_TITLE;
        else
            return ss_fail(err, SS_EINVAL, "ladder must be \"auto\", \"per-title\" or a list");
    } else if (json_is_array(x)) {
        size_t n = json_array_size(x);
        if (n == 0 || n > MEDIA_MAX_RUNGS)
            return ss_fail(err, SS_EINVAL, "ladder must have 1 to %d rungs", MEDIA_MAX_RUNGS);
        o->ladder = MEDIA_LADDER_EXPLICIT;
        for (size_t i = 0; i < n; i++) {
            json_t *r = json_array_get(x, i);
            char path[32];
            snprintf(path, sizeof(path), "ladder[%zu].", i);
            if (!json_is_object(r) || !json_object_get(r, "height"))
                return ss_fail(err, SS_EINVAL, "ladder[%zu] must be an object with a height", i);
            media_rung_req *q = &o->rungs[i];
            if (int_field(r, "height", 64, 4320, &q->height, path, err) ||
                int_field(r, "width", 64, 7680, &q->width, path, err) ||
                int_field(r, "bitrate_kbps", 50, 100000, &q->bitrate_kbps, path, err) ||
                int_field(r, "crf", 1, 51, &q->crf, path, err))
                return -1;
        }
        o->nrungs = (int)n;
    } else if (x) {
        return ss_fail(err, SS_EINVAL, "ladder must be \"auto\", \"per-title\" or a list");
    }
    x = json_object_get(spec, "rate_control");
    if (x) {
        const char *s = json_string_value(x);
        if (s && !strcmp(s, "capped-crf"))
            o->rate_control = MEDIA_RC_CAPPED_CRF;
        else if (s && !strcmp(s, "two-pass"))
            o->rate_control = MEDIA_RC_TWO_PASS;
        else
            return ss_fail(err, SS_EINVAL, "rate_control must be \"capped-crf\" or \"two-pass\"");
    }
    x = json_object_get(spec, "segment_seconds");
    if (x) {
        if (!json_is_number(x) || json_number_value(x) < 1 || json_number_value(x) > 20)
            return ss_fail(err, SS_EINVAL, "segment_seconds must be a number from 1 to 20");
        o->segment_seconds = json_number_value(x);
    }
    x = json_object_get(spec, "packaging");
    if (x) {
        if (!json_is_array(x) || json_array_size(x) == 0)
            return ss_fail(err, SS_EINVAL, "packaging must be a list of \"hls\" and/or \"dash\"");
        o->hls = o->dash = 0;
        size_t i;
        json_t *v;
        json_array_foreach(x, i, v) {
            const char *s = json_string_value(v);
            if (s && !strcmp(s, "hls"))
                o->hls = 1;
            else if (s && !strcmp(s, "dash"))
                o->dash = 1;
            else
                return ss_fail(err, SS_EINVAL, "packaging[%zu] must be \"hls\" or \"dash\"", i);
        }
    }
    x = json_object_get(spec, "thumbnails");
    if (json_is_boolean(x)) {
        o->thumbnails = json_is_true(x);
    } else if (json_is_object(x)) {
        json_t *en = json_object_get(x, "enabled"), *iv = json_object_get(x, "interval_seconds");
        if (en && !json_is_boolean(en))
            return ss_fail(err, SS_EINVAL, "thumbnails.enabled must be true or false");
        o->thumbnails = en ? json_is_true(en) : 1;
        if (iv) {
            if (!json_is_number(iv) || json_number_value(iv) < 1 || json_number_value(iv) > 600)
                return ss_fail(err, SS_EINVAL, "thumbnails.interval_seconds must be from 1 to 600");
            o->thumb_interval = json_number_value(iv);
        }
    } else if (x) {
        return ss_fail(err, SS_EINVAL, "thumbnails must be a boolean or an object");
    }
    x = json_object_get(spec, "preset");
    if (x) {
        const char *s = json_string_value(x);
        if (!s || !s[0] || strlen(s) >= sizeof(o->preset_buf))
            return ss_fail(err, SS_EINVAL, "preset must be a libx264 preset name");
        memcpy(o->preset_buf, s, strlen(s) + 1);
        o->preset = o->preset_buf;
    }
    if (int_field(spec, "crf", 1, 51, &o->crf, "", err))
        return -1;
    return 0;
}
