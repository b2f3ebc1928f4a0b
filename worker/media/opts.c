/* opts.c — media_opts defaults and the mapping from a canonical job spec
 * (media.h). */
#include "media.h"

#include "jobspec.h"

#include <stdio.h>
#include <string.h>

void media_opts_default(media_opts *o)
{
    memset(o, 0, sizeof(*o));
    o->ladder = MEDIA_LADDER_AUTO;
    o->rate_control = MEDIA_RC_CAPPED_CRF;
    o->preset = JOBSPEC_DEFAULT_PRESET;
    o->crf = JOBSPEC_DEFAULT_CRF;
    o->segment_seconds = JOBSPEC_DEFAULT_SEGMENT_SECONDS;
    o->threads = 0;
    o->audio_kbps = 128;
    o->hls = 1;
    o->dash = 1;
    o->thumbnails = 1;
    o->thumb_interval = JOBSPEC_DEFAULT_THUMB_INTERVAL;
    o->scratch_dir = "/tmp";
    o->split = MEDIA_SPLIT_AUTO;
    o->chunk_seconds = MEDIA_CHUNK_SECONDS;
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

static int audio_from_spec(media_opts *o, const json_t *a, ss_err *err)
{
    if (!a)
        return 0;
    if (!json_is_object(a))
        return ss_fail(err, SS_EINVAL, "audio must be an object");
    if (int_field(a, "bitrate_kbps", 32, 512, &o->audio_kbps, "audio.", err))
        return -1;
    json_t *su = json_object_get(a, "surround");
    if (su && !json_is_boolean(su))
        return ss_fail(err, SS_EINVAL, "audio.surround must be true or false");
    o->surround = json_is_true(su);
    json_t *t = json_object_get(a, "tracks");
    if (!t || (json_is_string(t) && !strcmp(json_string_value(t), "all")))
        return 0;
    if (json_is_string(t) && !strcmp(json_string_value(t), "default")) {
        o->audio_mode = MEDIA_AUDIO_DEFAULT;
        return 0;
    }
    if (!json_is_array(t) || json_array_size(t) == 0 || json_array_size(t) > MEDIA_MAX_AUDIO_SEL)
        return ss_fail(err, SS_EINVAL, "audio.tracks must be \"all\", \"default\" or a list");
    o->audio_mode = MEDIA_AUDIO_LIST;
    size_t i;
    json_t *v;
    json_array_foreach(t, i, v) {
        media_audio_sel *q = &o->audio_sel[i];
        if (json_is_integer(v) && json_integer_value(v) >= 0 && json_integer_value(v) <= 63) {
            q->index = (int)json_integer_value(v);
            q->lang[0] = '\0';
        } else if (json_is_string(v) && strlen(json_string_value(v)) < sizeof(q->lang) &&
                   json_string_length(v) >= 2) {
            q->index = -1;
            memcpy(q->lang, json_string_value(v), json_string_length(v) + 1);
        } else {
            return ss_fail(err, SS_EINVAL, "audio.tracks[%zu] must be a language or an index", i);
        }
    }
    o->naudio_sel = (int)i;
    return 0;
}

int media_opts_from_spec(media_opts *o, const json_t *spec, ss_err *err)
{
    media_opts_default(o);
    if (!json_is_object(spec))
        return ss_fail(err, SS_EINVAL, "job spec must be an object");
    json_t *x = json_object_get(spec, "split");
    if (json_is_string(x) && !strcmp(json_string_value(x), "off")) {
        o->split = MEDIA_SPLIT_OFF;
    } else if (json_is_number(x)) {
        o->split = MEDIA_SPLIT_SECONDS;
        o->split_seconds = json_number_value(x);
        if (!(o->split_seconds >= 1 && o->split_seconds <= 3600))
            return ss_fail(err, SS_EINVAL, "split must be \"auto\", \"off\" or 1 to 3600 seconds");
    } else if (x && !(json_is_string(x) && !strcmp(json_string_value(x), "auto"))) {
        return ss_fail(err, SS_EINVAL, "split must be \"auto\", \"off\" or 1 to 3600 seconds");
    }
    x = json_object_get(spec, "ladder");
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
    if (audio_from_spec(o, json_object_get(spec, "audio"), err))
        return -1;
    x = json_object_get(spec, "codecs");
    if (x) {
        size_t i;
        json_t *v;
        if (!json_is_array(x))
            return ss_fail(err, SS_EINVAL, "codecs must be a list of \"h264\" and \"av1\"");
        json_array_foreach(x, i, v) {
            const char *s = json_string_value(v);
            if (s && !strcmp(s, "av1"))
                o->av1 = 1;
            else if (!s || strcmp(s, "h264"))
                return ss_fail(err, SS_EINVAL, "codecs[%zu] must be \"h264\" or \"av1\"", i);
        }
    }
    x = json_object_get(spec, "mp4");
    if (json_is_true(x))
        o->mp4_height = -1;
    else if (json_is_object(x)) {
        if (int_field(x, "height", 64, 4320, &o->mp4_height, "mp4.", err))
            return -1;
    } else if (x && !json_is_false(x)) {
        return ss_fail(err, SS_EINVAL, "mp4 must be a boolean or {\"height\": N}");
    }
    return 0;
}
