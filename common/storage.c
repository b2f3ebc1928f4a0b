/* storage.c — backend dispatch and the per-file-type headers (storage.h). */
#include "storage.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

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

/* ---- file:// paths and keys ------------------------------------------------ */

static int hexval(int c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    c = tolower(c);
    return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

int storage_file_path(const char *url, char *out, size_t outlen, ss_err *err)
{
    if (!ss_str_has_prefix(url, "file://"))
        return ss_fail(err, SS_EINVAL, "not a file:// URL: %s", url);
    const char *p = url + 7;
    if (*p != '/')
        return ss_fail(err, SS_EINVAL, "file URL must be absolute (file:///path): %s", url);
    size_t n = 0;
    for (; *p && *p != '?' && *p != '#'; p++) {
        int c = (unsigned char)*p;
        if (c == '%') {
            int a = hexval(p[1]), b = a < 0 ? -1 : hexval(p[2]);
            if (a < 0 || b < 0)
                return ss_fail(err, SS_EINVAL, "bad %%-escape in %s", url);
            c = a * 16 + b;
            p += 2;
        }
        if (c == 0)
            return ss_fail(err, SS_EINVAL, "NUL byte in %s", url);
        if (n + 1 >= outlen)
            return ss_fail(err, SS_EINVAL, "path too long");
        out[n++] = (char)c;
    }
    out[n] = '\0';
    return 0;
}

/* 1 when path has a "." or ".." component. */
static int has_dot_component(const char *path)
{
    for (const char *p = path; *p;) {
        p += strspn(p, "/");
        size_t n = strcspn(p, "/");
        if ((n == 1 && p[0] == '.') || (n == 2 && p[0] == '.' && p[1] == '.'))
            return 1;
        p += n;
    }
    return 0;
}

/* Canonical path of an absolute, dot-free path: realpath of its longest
 * existing prefix, then the components that do not exist yet. */
static int canonical(const char *path, char *out, size_t outlen, ss_err *err)
{
    char head[PATH_MAX];
    if (ss_strlcpy(head, path, sizeof(head)) >= sizeof(head))
        return ss_fail(err, SS_EINVAL, "path too long");
    size_t n = strlen(head);
    while (n > 1 && head[n - 1] == '/')
        head[--n] = '\0';
    const char *tail = "";
    char real[PATH_MAX];
    for (;;) {
        if (realpath(head, real))
            break;
        struct stat st;
        if (errno != ENOENT || lstat(head, &st) == 0)
            /* a dangling symlink, a loop, no permission: cannot tell where
             * it leads, so it leads nowhere we allow */
            return ss_fail(err, SS_EDENIED, "%s cannot be resolved safely", head);
        char *slash = strrchr(head, '/');
        if (!slash || slash == head) {
            ss_strlcpy(real, "/", sizeof(real));
            tail = path + 1;
            break;
        }
        *slash = '\0';
        tail = path + (slash - head) + 1;
    }
    tail += strspn(tail, "/");
    size_t rl = strlen(real);
    int w = snprintf(out, outlen, "%s%s%s", real, rl > 1 && *tail ? "/" : "", tail);
    if (w < 0 || (size_t)w >= outlen)
        return ss_fail(err, SS_EINVAL, "path too long");
    n = (size_t)w;
    while (n > 1 && out[n - 1] == '/')
        out[--n] = '\0';
    return 0;
}

int storage_file_confine(const char *path, const char *roots, const char *what, char *out,
                         size_t outlen, ss_err *err)
{
    if (!roots || !*roots)
        return ss_fail(err, SS_EDENIED,
                       "%s %s: file:// %ss are refused because the worker's file_roots is empty; "
                       "set file_roots (env STREAMSCALE_FILE_ROOTS) to the folders they may use",
                       what, path, what);
    if (path[0] != '/')
        return ss_fail(err, SS_EINVAL, "%s %s is not an absolute path", what, path);
    if (has_dot_component(path))
        return ss_fail(err, SS_EDENIED, "%s %s may not contain '.' or '..' components", what, path);
    ss_err e = { 0 };
    if (canonical(path, out, outlen, &e) != 0)
        return ss_fail(err, e.code, "%s %s: %s", what, path, e.msg);
    for (const char *r = roots; *r;) {
        size_t n = strcspn(r, ":");
        char root[PATH_MAX], croot[PATH_MAX];
        if (n && n < sizeof(root) && r[0] == '/') {
            memcpy(root, r, n);
            root[n] = '\0';
            ss_err ignore = { 0 };
            if (!has_dot_component(root) && canonical(root, croot, sizeof(croot), &ignore) == 0) {
                size_t cl = strlen(croot);
                if (cl == 1 || (!strncmp(out, croot, cl) && (out[cl] == '/' || out[cl] == '\0')))
                    return 0;
            }
        }
        r += n;
        if (*r == ':')
            r++;
    }
    return ss_fail(err, SS_EDENIED, "%s %s (%s) is outside the worker's file_roots", what, path, out);
}

int storage_key_ok(const char *key)
{
    size_t n = strlen(key);
    if (!n || n > 1024 || key[0] == '/' || strstr(key, "..") || strstr(key, "//") ||
        has_dot_component(key))
        return 0;
    for (const unsigned char *c = (const unsigned char *)key; *c; c++)
        if (*c < 0x20 || *c == 0x7f)
            return 0;
    return 1;
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

void storage_set_manifest_cc(storage *st, storage_cc cc)
{
    st->manifest_cc = cc;
}

const char *storage_cache_control_on(const storage *st, const char *key)
{
    if (st->manifest_cc != STORAGE_CC_DEFAULT &&
        (ss_str_has_suffix(key, ".m3u8") || ss_str_has_suffix(key, ".mpd")))
        /* an EVENT playlist changes every few seconds; the final one does
         * not any more */
        return st->manifest_cc == STORAGE_CC_LIVE ? "public, max-age=1" : "public, max-age=86400";
    return storage_cache_control(key);
}
