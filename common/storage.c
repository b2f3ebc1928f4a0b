/* storage.c — backend dispatch and the per-file-type headers (storage.h). */
#include "storage.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

static const storage_ops *backends[] = {
    &storage_file_ops,
    &storage_s3_ops,
    NULL
};

storage *storage_open(const char *url, const storage_conf *conf, ss_err *err)
{
    const char *sep = strstr(url, "://");
    if (!sep) {
        ss_fail(err, SS_EINVAL, "destination '%s' is not a URL (file:///dir/ or s3://bucket/prefix/)", url);
        return NULL;
    }
    size_t sl = (size_t)(sep - url);
    for (size_t i = 0; backends[i]; i++) {
        if (strlen(backends[i]->scheme) == sl && !strncmp(backends[i]->scheme, url, sl)) {
            storage *st = calloc(1, sizeof(*st));
            if (!st) {
                ss_fail(err, SS_ENOMEM, "out of memory");
                return NULL;
            }
            st->ops = backends[i];
            if (conf)
                st->conf = *conf;
            if (st->ops->open(st, url, err) != 0) {
                free(st);
                return NULL;
            }
            return st;
        }
    }
    ss_fail(err, SS_EINVAL, "destination '%.*s://' is not a supported storage scheme", (int)sl, url);
    return NULL;
}

int storage_put_async(storage *st, const char *local_path, const char *key, ss_err *err)
{
    return st->ops->put_async(st, local_path, key, err);
}

int storage_wait(storage *st, ss_err *err)
{
    return st->ops->wait(st, err);
}

int storage_put(storage *st, const char *local_path, const char *key, ss_err *err)
{
    if (storage_put_async(st, local_path, key, err) != 0)
        return -1;
    return storage_wait(st, err);
}

int storage_delete_prefix(storage *st, const char *key_prefix, ss_err *err)
{
    return st->ops->delete_prefix(st, key_prefix, err);
}

void storage_abort(storage *st)
{
    if (st && st->ops->abort)
        st->ops->abort(st);
}

char *storage_url(const storage *st, const char *key)
{
    const char *base = st->conf.public_base_url;
    if (base && *base) {
        size_t bl = strlen(base);
        int slash = bl && base[bl - 1] == '/';
        size_t n = bl + strlen(key) + 2;
        char *u = malloc(n);
        if (u)
            snprintf(u, n, "%s%s%s", base, slash ? "" : "/", key);
        return u;
    }
    return st->ops->url(st, key);
}

void storage_get_stats(const storage *st, storage_stats *out)
{
    *out = st->stats;
}

void storage_close(storage *st)
{
    if (!st)
        return;
    if (st->ops->close)
        st->ops->close(st);
    free(st);
}

static const struct {
    const char *ext, *type;
    int immutable;
} file_types[] = {
    { ".m3u8", "application/vnd.apple.mpegurl", 0 },
    { ".mpd", "application/dash+xml", 0 },
    { ".m4s", "video/iso.segment", 1 },
    { ".mp4", "video/mp4", 1 },
    { ".m4a", "audio/mp4", 1 },
    { ".jpg", "image/jpeg", 1 },
    { ".jpeg", "image/jpeg", 1 },
    { ".png", "image/png", 1 },
    { ".vtt", "text/vtt", 1 },
    { ".json", "application/json", 0 },
};

static int type_index(const char *key)
{
    for (size_t i = 0; i < SS_ARRAY_LEN(file_types); i++)
        if (ss_str_has_suffix(key, file_types[i].ext))
            return (int)i;
    return -1;
}

const char *storage_content_type(const char *key)
{
    int i = type_index(key);
    return i < 0 ? "application/octet-stream" : file_types[i].type;
}

const char *storage_cache_control(const char *key)
{
    int i = type_index(key);
    /* Segments, init segments, thumbnails and captions never change under
     * their name; manifests and job.json may be replaced by a re-encode. */
    if (i >= 0 && file_types[i].immutable)
        return "public, max-age=31536000, immutable";
    return "public, max-age=60";
}
