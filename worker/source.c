/* source.c — see source.h. */
#include "source.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "events.h"
#include "fetch.h"
#include "log.h"
#include "util.h"

static void fetch_conf_of(const source_conf *conf, fetch_conf *fc)
{
    memset(fc, 0, sizeof(*fc));
    fc->s3 = &conf->storage;
    fc->max_bytes = conf->max_bytes;
    fc->allow_http = conf->allow_http;
    fc->allow_private = conf->allow_private;
    fc->timeout_s = conf->timeout_seconds > 0 && conf->timeout_seconds < (1 << 30) ?
                    (int)conf->timeout_seconds : 0;
}

static int resolve(const char *url, const char *scratch_dir, char *out, size_t outlen,
                   const source_conf *conf, const atomic_int *cancel, source_info *info,
                   ss_err *err)
{
    if (ss_str_has_prefix(url, "file://")) {
        /* decoded once; the canonical path that was checked is the one opened */
        char path[4096];
        if (storage_file_path(url, path, sizeof(path), err) != 0 ||
            storage_file_confine(path, conf->file_roots, "source", out, outlen, err) != 0)
            return -1;
        struct stat st;
        if (stat(out, &st) != 0)
            return ss_fail(err, errno == ENOENT ? SS_ENOTFOUND : SS_EIO,
                           "source %s: %s", out, strerror(errno));
        if (!S_ISREG(st.st_mode))
            return ss_fail(err, SS_EINVAL, "source %s is not a regular file", out);
        if (access(out, R_OK) != 0)
            return ss_fail(err, SS_EDENIED, "source %s is not readable by the worker: %s", out,
                           strerror(errno));
        if (conf->max_bytes > 0 && st.st_size > conf->max_bytes)
            return ss_fail(err, SS_ELIMIT, "source is %lld bytes, over the limit of %lld (max_file_size)",
                           (long long)st.st_size, conf->max_bytes);
        info->mtime = (long long)st.st_mtime;
        return 0;
    }
    /* Remote: download into the job's scratch folder, keeping the name's
     * extension (some demuxers use it as a hint). */
    const char *q = url + strcspn(url, "?#");
    const char *dot = NULL;
    for (const char *p = url; p < q; p++) {
        if (*p == '/')
            dot = NULL;
        else if (*p == '.')
            dot = p;
    }
    char ext[16] = "";
    if (dot && q - dot < (long)sizeof(ext)) {
        memcpy(ext, dot, (size_t)(q - dot));
        ext[q - dot] = '\0';
        for (char *e = ext + 1; *e; e++)
            if (!isalnum((unsigned char)*e))
                ext[0] = '\0';
    }
    if ((size_t)snprintf(out, outlen, "%s/source%s", scratch_dir, ext) >= outlen)
        return ss_fail(err, SS_EINVAL, "scratch path too long");
    fetch_conf fc;
    fetch_conf_of(conf, &fc);
    fetch_result fr;
    if (fetch_source(url, out, &fc, cancel, &fr, err) != 0)
        return -1;
    ss_strlcpy(info->etag, fr.etag, sizeof(info->etag));
    ss_strlcpy(info->last_modified, fr.last_modified, sizeof(info->last_modified));
    return 0;
}

int source_resolve(const char *url, const char *scratch_dir, char *out, size_t outlen,
                   const source_conf *conf, const atomic_int *cancel, source_info *info,
                   ss_err *err)
{
    source_info tmp;
    if (!info)
        info = &tmp;
    memset(info, 0, sizeof(*info));
    info->mtime = -1;
    if (resolve(url, scratch_dir, out, outlen, conf, cancel, info, err) != 0)
        return -1;
    if (conf->no_hash) {
        struct stat st;
        if (stat(out, &st) != 0)
            return ss_fail(err, SS_EIO, "source %s: %s", out, strerror(errno));
        info->size = (long long)st.st_size;
        return 0;
    }
    int64_t n = 0;
    if (ss_sha256_file(out, cancel, info->sha256, &n, err) != 0)
        return -1;
    info->size = (long long)n;
    return 0;
}

int source_check_identity(const source_info *info, const json_t *identity, ss_err *err)
{
    if (!identity)
        return 0;
    json_t *want = json_object_get(identity, "sha256");
    if (want && strcmp(json_string_value(want), info->sha256))
        return ss_fail(err, SS_EINVAL,
                       "the source changed since it was submitted: its SHA-256 is %s, the job's "
                       "source_identity says %s", info->sha256, json_string_value(want));
    want = json_object_get(identity, "size");
    if (want && json_integer_value(want) != info->size)
        return ss_fail(err, SS_EINVAL,
                       "the source changed since it was submitted: it is %lld bytes, the job's "
                       "source_identity says %lld", info->size, (long long)json_integer_value(want));
    struct { const char *k; const char *have; } hdr[] = { { "etag", info->etag },
                                                          { "last_modified", info->last_modified } };
    for (size_t i = 0; i < SS_ARRAY_LEN(hdr); i++) {
        want = json_object_get(identity, hdr[i].k);
        if (want && strcmp(json_string_value(want), hdr[i].have))
            return ss_fail(err, SS_EINVAL,
                           "the source changed since it was submitted: its %s is '%s', the job's "
                           "source_identity says '%s'", hdr[i].k, hdr[i].have,
                           json_string_value(want));
    }
    return 0;
}

json_t *source_info_json(const char *url, const source_info *info)
{
    char shown[2048];
    log_redact_url(url, shown, sizeof(shown));
    json_t *o = json_pack("{ss sI ss}", "url", shown, "size", (json_int_t)info->size, "sha256",
                          info->sha256);
    if (info->mtime >= 0) {
        char t[40];
        iso8601_ms((int64_t)info->mtime * 1000, t, sizeof(t));
        json_object_set_new(o, "mtime", json_string(t));
    }
    if (info->etag[0])
        json_object_set_new(o, "etag", json_string(info->etag));
    if (info->last_modified[0])
        json_object_set_new(o, "last_modified", json_string(info->last_modified));
    return o;
}

fetch_reader *source_open_reader(const char *url, const source_conf *conf, const atomic_int *cancel,
                                 source_info *info, ss_err *err)
{
    memset(info, 0, sizeof(*info));
    info->mtime = -1;
    if (ss_str_has_prefix(url, "file://"))
        return NULL;   /* read in place: a seek is a seek already */
    fetch_conf fc;
    fetch_conf_of(conf, &fc);
    ss_err e = { 0 };
    fetch_reader *r = fetch_reader_open(url, &fc, cancel, &e);
    if (!r) {
        if (e.code != SS_EINVAL) {
            *err = e;
            return NULL;
        }
        char shown[1024];
        log_redact_url(url, shown, sizeof(shown));
        log_info(NULL, "source %s: no range reads (%s): downloading it whole", shown, e.msg);
        return NULL;
    }
    info->size = (long long)fetch_reader_size(r);
    fetch_reader_identity(r, info->etag, sizeof(info->etag), info->last_modified,
                          sizeof(info->last_modified));
    return r;
}
