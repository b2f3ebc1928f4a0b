/* cli_upload.c — see cli_upload.h. The storage settings come from the
 * environment, under the same names as the worker's keys
 * (STREAMSCALE_S3_ENDPOINT, STREAMSCALE_S3_REGION, ...; credentials also
 * from AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY). Content-addressed keys
 * make a second submit of the same file upload nothing new and name the
 * same source, so the job id (from the spec) is the same too. */
#include "cli_upload.h"

#include <curl/curl.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "http_client.h"
#include "log.h"
#include "storage.h"
#include "util.h"

static const char *env(const char *name)
{
    const char *v = getenv(name);
    return v && *v ? v : NULL;
}

static int env_bool(const char *name, int def)
{
    const char *v = env(name);
    if (!v)
        return def;
    return !strcasecmp(v, "1") || !strcasecmp(v, "true") || !strcasecmp(v, "yes") || !strcasecmp(v, "on");
}

int cli_upload_local(const char *path, const char *sha, char *url, size_t urllen, ss_err *err)
{
    const char *to = env("STREAMSCALE_UPLOAD_TO");
    if (!to)
        return 0;
    storage_conf sc = { 0 };
    sc.s3_endpoint = env("STREAMSCALE_S3_ENDPOINT");
    sc.s3_region = env("STREAMSCALE_S3_REGION");
    if (!sc.s3_region)
        sc.s3_region = "auto";
    sc.s3_access_key = env("STREAMSCALE_S3_ACCESS_KEY");
    sc.s3_secret_key = env("STREAMSCALE_S3_SECRET_KEY");
    sc.s3_credentials_file = env("STREAMSCALE_S3_CREDENTIALS_FILE");
    sc.s3_path_style = env_bool("STREAMSCALE_S3_PATH_STYLE", 1);
    sc.max_parallel = 8;
    sc.multipart_threshold = 64LL << 20;
    sc.part_size = 16LL << 20;
    sc.max_retries = 5;
    sc.timeout_seconds = 300;
    sc.allow_private = env_bool("STREAMSCALE_ALLOW_PRIVATE_NETWORKS", 0);
    const char *base = strrchr(path, '/');
    base = base ? base + 1 : path;
    char key[1024];
    size_t n = (size_t)snprintf(key, sizeof(key), "%.16s/", sha);
    /* keep the file name readable but safe as a key */
    for (const char *p = base; *p && n + 1 < sizeof(key); p++) {
        unsigned char ch = (unsigned char)*p;
        key[n++] = (ch >= 0x80 || ch < 0x20 || strchr("\\?#%\"<>{}|^`[] ", ch)) ? '_' : (char)ch;
    }
    key[n] = '\0';
    storage *st = storage_open(to, &sc, err);
    if (!st)
        return -1;
    fprintf(stderr, "uploading %s to %s ...\n", path, to);
    int rc = storage_put(st, path, key, err);
    if (rc == 0) {
        char *u = st->ops->url(st, key);
        if (!u || strlen(u) >= urllen)
            rc = ss_fail(err, SS_EINVAL, "source URL too long");
        else
            ss_strlcpy(url, u, urllen);
        free(u);
    }
    storage_close(st);
    return rc == 0 ? 1 : -1;
}

/* ---- through the coordinator (POST /v1/uploads) ------------------------------ */

long cli_http_call(CURL *h, const char *api, const char *token, const char *method,
                   const char *path, const void *body, size_t len, const atomic_int *cancel,
                   json_t **out, ss_err *err)
{
    *out = NULL;
    char url[4096];
    size_t al = strlen(api);
    snprintf(url, sizeof(url), "%.*s%s", (int)(al && api[al - 1] == '/' ? al - 1 : al), api, path);
    struct curl_slist *hdr = NULL;
    s3_buf answer;
    s3_buf_init(&answer, 64u << 20);
    http_resp r = { .body = &answer, .body_cap_fails = 1, .cancel = cancel };
    long st = 0;
    if ((token && *token && http_header_add(&hdr, "Authorization: Bearer %s", token) != 0) ||
        http_header_add(&hdr, "Content-Type: %s", body && strcmp(method, "PUT")
                                                      ? "application/json"
                                                      : "application/octet-stream") != 0 ||
        http_header_add(&hdr, "Expect:") != 0) {
        ss_fail(err, SS_ENOMEM, "out of memory");
        goto out;
    }
    curl_easy_reset(h);
    http_limits lim = { .connect_timeout_ms = 5000, .timeout_ms = 60000,
                        .user_agent = "streamscale-cli/" SS_VERSION };
    http_easy_setup(h, NULL, &lim);
    http_capture(h, &r);
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method);
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdr);
    if (body) {
        curl_easy_setopt(h, CURLOPT_POSTFIELDS, body);
        curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)len);
    }
    CURLcode rc = curl_easy_perform(h);
    if (rc == CURLE_ABORTED_BY_CALLBACK) {
        ss_fail(err, SS_ECANCELLED, "interrupted");
    } else if (rc != CURLE_OK) {
        char shown[1024];
        log_redact_url(api, shown, sizeof(shown));
        ss_fail(err, SS_ENET, "cannot reach the API at %s: %s", shown, curl_easy_strerror(rc));
    } else {
        curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &st);
    }
    if (st && answer.data)
        *out = json_loads(answer.data, 0, NULL);
out:
    s3_buf_free(&answer);
    curl_slist_free_all(hdr);
    return st;
}

static int up_error(long st, json_t *body, ss_err *err)
{
    json_t *e = json_object_get(body, "error");
    const char *msg = json_string_value(json_object_get(e, "message"));
    return ss_fail(err, st == 401 ? SS_EAUTH : SS_EINVAL, "HTTP %ld: %s", st,
                   msg ? msg : "unexpected reply");
}

static void show(const char *name, long long off, long long size, double t0, int tty)
{
    if (!tty)
        return;
    double secs = ss_mono_s() - t0;
    fprintf(stderr, "\r\033[Kuploading %s: %3.0f%% (%lld of %lld MB) %.0f MB/s", name,
            size ? 100.0 * (double)off / (double)size : 100, off >> 20, size >> 20,
            secs > 0 ? (double)off / secs / 1e6 : 0);
    fflush(stderr);
}

int cli_upload_coordinator(const char *api, const char *token, const char *path, const char *sha,
                           long long size, const atomic_int *cancel, char *url, size_t urllen,
                           ss_err *err)
{
    const char *base = strrchr(path, '/');
    base = base ? base + 1 : path;
    CURL *h = curl_easy_init();
    if (!h)
        return ss_fail(err, SS_ENOMEM, "out of memory");
    json_t *req = json_pack("{ss sI ss}", "name", base, "size", (json_int_t)size, "sha256", sha);
    char *rb = req ? json_dumps(req, JSON_COMPACT) : NULL;
    json_decref(req);
    json_t *st_j = NULL;
    long st = rb ? cli_http_call(h, api, token, "POST", "/v1/uploads", rb, strlen(rb), cancel, &st_j, err) : 0;
    free(rb);
    int rc = -1, fd = -1, tty = isatty(STDERR_FILENO), conflicts = 0, fails = 0;
    unsigned char *chunk = NULL;
    double t0 = ss_mono_s();
    if (st == 404) {
        /* this coordinator takes no uploads (or predates them) */
        rc = 0;
        goto out;
    }
    if (st != 200 && st != 201) {
        if (st)
            up_error(st, st_j, err);
        goto out;
    }
    char id[32], upath[96];
    ss_strlcpy(id, json_string_value(json_object_get(st_j, "id")) ? json_string_value(json_object_get(st_j, "id")) : "", sizeof(id));
    snprintf(upath, sizeof(upath), "/v1/uploads/%s", id);
    long long cb = json_integer_value(json_object_get(st_j, "chunk_bytes"));
    if (cb <= 0 || cb > (64LL << 20))
        cb = 1 << 20;
    fd = open(path, O_RDONLY | O_CLOEXEC);
    chunk = malloc((size_t)cb);
    if (fd < 0 || !chunk) {
        ss_fail(err, SS_EIO, "cannot read %s", path);
        goto out;
    }
    if (json_integer_value(json_object_get(st_j, "offset")) > 0 && tty)
        fprintf(stderr, "resuming the upload of %s\n", base);
    for (;;) {
        const char *state = json_string_value(json_object_get(st_j, "state"));
        long long off = json_integer_value(json_object_get(st_j, "offset"));
        if (state && !strcmp(state, "complete")) {
            const char *src = json_string_value(json_object_get(st_j, "source"));
            if (!src || strlen(src) >= urllen) {
                ss_fail(err, SS_EINVAL, "the coordinator's upload reply names no source");
                goto out;
            }
            ss_strlcpy(url, src, urllen);
            show(base, size, size, t0, tty);
            if (tty)
                fprintf(stderr, "\n");
            rc = 1;
            goto out;
        }
        show(base, off, size, t0, tty);
        long long want = size - off < cb ? size - off : cb;
        ssize_t n = want > 0 ? pread(fd, chunk, (size_t)want, (off_t)off) : 0;
        if (n <= 0) {
            ss_fail(err, SS_EIO, "cannot read %s at %lld (did it shrink while uploading?)", path, off);
            goto out;
        }
        char p2[160];
        snprintf(p2, sizeof(p2), "%s?offset=%lld", upath, off);
        json_t *next = NULL;
        ss_err e2 = { 0 };
        st = cli_http_call(h, api, token, "PUT", p2, chunk, (size_t)n, cancel, &next, &e2);
        if (st == 200) {
            json_decref(st_j);
            st_j = next;
            fails = 0;
            continue;
        }
        if (e2.code == SS_ECANCELLED) {
            json_decref(next);
            *err = e2;
            goto out;
        }
        if ((st == 409 && ++conflicts < 5) || ((st == 0 || st >= 500) && st != 507 && ++fails <= 5)) {
            /* another copy of us, or a lost answer: ask where the upload is */
            json_decref(next);
            if (st != 409)
                usleep((useconds_t)(200000 << fails));
            ss_err e3 = { 0 };
            st = cli_http_call(h, api, token, "GET", upath, NULL, 0, cancel, &next, &e3);
            if (st == 200) {
                json_decref(st_j);
                st_j = next;
                continue;
            }
        }
        if (st)
            up_error(st, next, err);
        else if (!err->code)
            *err = e2;
        json_decref(next);
        goto out;
    }
out:
    if (tty && rc < 0)
        fprintf(stderr, "\n");
    free(chunk);
    if (fd >= 0)
        close(fd);
    json_decref(st_j);
    curl_easy_cleanup(h);
    return rc;
}
