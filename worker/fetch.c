/* fetch.c — source download over https/http and s3 with the SSRF guard,
 * size cap, retries and Range resume (see fetch.h). */
#include "fetch.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "http_client.h"
#include "log.h"
#include "netguard.h"
#include "s3_client.h"
#include "util.h"

typedef struct src {
    int is_s3;
    char *bucket, *key;      /* s3 */
    s3_client c;             /* s3 */
    int have_client;
} src;

typedef struct dl {
    int fd;
    int64_t have;            /* bytes in the file */
    int64_t start;           /* offset this attempt asked for */
    int64_t max;
    int checked;             /* status looked at for this attempt */
    int writing;             /* this attempt's body goes to the file */
    int over_limit;
    int io_error;
    int range_mismatch;
    int64_t got;             /* body bytes of this attempt */
    s3_buf errbody;          /* body of an error answer */
    char validator[256];     /* ETag or Last-Modified for If-Range */
    http_resp hr;            /* ETag, Last-Modified, Retry-After, error text, cancel */
    int64_t total;           /* full size when known (Content-Range/-Length) */
    CURL *h;
} dl;

static void fill_conf(fetch_conf *o, const fetch_conf *c)
{
    memset(o, 0, sizeof(*o));
    if (c)
        *o = *c;
    if (o->max_bytes <= 0)
        o->max_bytes = FETCH_DEFAULT_MAX_BYTES;
    if (o->max_redirects == 0)
        o->max_redirects = FETCH_DEFAULT_REDIRECTS;
    if (o->max_redirects < 0)
        o->max_redirects = 0;
    if (o->connect_timeout_s <= 0)
        o->connect_timeout_s = FETCH_DEFAULT_CONNECT_TIMEOUT_S;
    if (o->low_speed_s <= 0)
        o->low_speed_s = FETCH_DEFAULT_LOW_SPEED_S;
    if (o->max_retries == 0)
        o->max_retries = FETCH_DEFAULT_RETRIES;
    if (o->max_retries < 0)
        o->max_retries = 0;
}

static int src_open(src *s, const char *url, const fetch_conf *c, ss_err *err)
{
    memset(s, 0, sizeof(*s));
    if (!strncmp(url, "file://", 7))
        return ss_fail(err, SS_EINVAL, "file:// sources are read in place by the worker, not fetched");
    if (!strncmp(url, "s3://", 5)) {
        s->is_s3 = 1;
        if (s3_parse_url(url, &s->bucket, &s->key, err) != 0)
            return -1;
        if (!*s->key)
            return ss_fail(err, SS_EINVAL, "s3 source '%s' names no object", url);
        storage_conf sc = { 0 };
        if (c->s3)
            sc = *c->s3;
        sc.allow_private = c->allow_private;
        if (c->max_retries > 0)
            sc.max_retries = c->max_retries;
        sc.timeout_seconds = c->low_speed_s;
        if (s3_client_init(&s->c, &sc, err) != 0)
            return -1;
        s->have_client = 1;
        return 0;
    }
    if (strncasecmp(url, "https://", 8) && strncasecmp(url, "http://", 7))
        return ss_fail(err, SS_EINVAL, "unsupported source URL scheme (https://, s3:// or file://)");
    netguard g = { .allow_private = c->allow_private, .allow_http = c->allow_http };
    return netguard_check_url(url, &g, err);
}

static void src_close(src *s)
{
    free(s->bucket);
    free(s->key);
    if (s->have_client)
        s3_client_free(&s->c);
}

/* Decide, at the first body bytes, where this attempt's body goes. */
static void dl_check(dl *d)
{
    d->checked = 1;
    long st = 0;
    curl_easy_getinfo(d->h, CURLINFO_RESPONSE_CODE, &st);
    if (st == 206) {
        d->writing = 1;
    } else if (st == 200) {
        /* The server sent the whole object: start the file over. */
        if (d->have > 0) {
            if (ftruncate(d->fd, 0) != 0)
                d->io_error = errno;
            d->have = 0;
        }
        d->writing = 1;
    } else {
        d->writing = 0;
    }
}

static size_t dl_write(char *p, size_t sz, size_t n, void *ud)
{
    dl *d = ud;
    size_t len = sz * n;
    if (!d->checked)
        dl_check(d);
    if (!d->writing) {
        s3_buf_add(&d->errbody, p, len);   /* capped; the rest is dropped */
        return len;
    }
    if (d->have + (int64_t)len > d->max) {
        d->over_limit = 1;
        return 0;
    }
    for (size_t off = 0; off < len;) {
        ssize_t w = pwrite(d->fd, p + off, len - off, d->have + (int64_t)off);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0) {
            d->io_error = w < 0 ? errno : EIO;
            return 0;
        }
        off += (size_t)w;
    }
    d->have += (int64_t)len;
    d->got += (int64_t)len;
    return len;
}

static size_t dl_header(char *p, size_t sz, size_t n, void *ud)
{
    dl *d = ud;
    size_t len = sz * n;
    http_resp_header(&d->hr, p, len);
    if (len > 14 && !strncasecmp(p, "Content-Range:", 14)) {
        /* "bytes START-END/TOTAL" */
        long long a = -1, b = -1, t = -1;
        const char *q = p + 14;
        while (*q == ' ')
            q++;
        if (!strncasecmp(q, "bytes", 5) && sscanf(q + 5, " %lld-%lld/%lld", &a, &b, &t) >= 2) {
            if (a != d->start)
                d->range_mismatch = 1;
            if (t > 0)
                d->total = t;
        }
    }
    return len;
}

/* Set up h for one attempt (GET or HEAD) of url/s3 object from offset. */
static int setup_attempt(src *s, const char *url, const fetch_conf *c, CURL *h, netguard *g,
                         int64_t from, int64_t to, const char *validator, int head,
                         struct curl_slist **hdrs, char **surl, ss_err *err)
{
    /* bytes=FROM- (the rest), or bytes=FROM-TO when to >= from (a range
     * read: asked for even at 0) */
    char range[64];
    if (to >= from)
        snprintf(range, sizeof(range), "bytes=%lld-%lld", (long long)from, (long long)to);
    else
        snprintf(range, sizeof(range), "bytes=%lld-", (long long)from);
    int ranged = from > 0 || to >= from;
    curl_easy_reset(h);
    *hdrs = NULL;
    *surl = NULL;
    if (s->is_s3) {
        s3_kv hh[2];
        size_t nh = 0;
        if (ranged) {
            hh[nh++] = (s3_kv){ "range", range };
            /* S3 has no If-Range: If-Match makes a changed object a 412. */
            if (validator && *validator)
                hh[nh++] = (s3_kv){ "if-match", validator };
        }
        s3_request r = { .method = head ? "HEAD" : "GET", .bucket = s->bucket, .key = s->key,
                         .headers = hh, .nheaders = nh };
        if (s3_sign_request(&s->c, &r, (long long)time(NULL), 0, surl, hdrs, err) != 0)
            goto fail;
        s3_easy_defaults(&s->c, h, g);   /* its low-speed window is c->low_speed_s */
        curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, c->connect_timeout_s * 1000L);
        curl_easy_setopt(h, CURLOPT_URL, *surl);
        curl_easy_setopt(h, CURLOPT_HTTPHEADER, *hdrs);
    } else {
        g->allow_private = c->allow_private;
        g->allow_http = c->allow_http;
        g->max_redirects = c->max_redirects;
        http_limits l = { .connect_timeout_ms = c->connect_timeout_s * 1000L,
                          .low_speed_s = c->low_speed_s };
        http_easy_setup(h, g, &l);
        curl_easy_setopt(h, CURLOPT_URL, url);
        curl_easy_setopt(h, CURLOPT_ACCEPT_ENCODING, NULL);
        if (ranged) {
            curl_easy_setopt(h, CURLOPT_RANGE, range + 6);
            if (validator && *validator) {
                if (http_header_add(hdrs, "If-Range: %s", validator) != 0) {
                    ss_fail(err, SS_ENOMEM, "out of memory");
                    goto fail;
                }
                curl_easy_setopt(h, CURLOPT_HTTPHEADER, *hdrs);
            }
        }
    }
    if (head)
        curl_easy_setopt(h, CURLOPT_NOBODY, 1L);
    return 0;
fail:   /* the callers free hdrs and surl only after a successful setup */
    curl_slist_free_all(*hdrs);
    free(*surl);
    *hdrs = NULL;
    *surl = NULL;
    return -1;
}

static void describe_http(ss_err *err, src *s, const char *shown, long st, const s3_buf *errbody,
                          ss_code code)
{
    char *s3code = NULL, *s3msg = NULL;
    if (s->is_s3)
        s3_xml_error(errbody->data, errbody->len, &s3code, &s3msg);
    if (s->is_s3) {
        if (s3code)
            s3_classify(0, st, s3code, &code);
        char what[1200];
        snprintf(what, sizeof(what), "GET s3://%s/%s", s->bucket, s->key);
        s3_describe_failure(err, code, what, 0, NULL, st, s3code, s3msg, s->bucket);
    } else if (code == SS_ENOTFOUND) {
        ss_fail(err, code, "source %s: not found (HTTP %ld)", shown, st);
    } else if (code == SS_EAUTH) {
        ss_fail(err, code, "source %s: access refused (HTTP %ld)", shown, st);
    } else {
        ss_fail(err, code, "source %s: HTTP %ld", shown, st);
    }
    free(s3code);
    free(s3msg);
}

/* What fetch_source and fetch_head_size start with: the settings with
 * their defaults in *c, the URL as it may be shown (credentials and query
 * redacted) in shown, the source opened in *s. On failure *s is closed
 * again and err says why. */
static int fetch_begin(const char *url, const fetch_conf *conf_in, fetch_conf *c, src *s,
                       char *shown, size_t shown_len, ss_err *err)
{
    fill_conf(c, conf_in);
    log_redact_url(url, shown, shown_len);
    if (src_open(s, url, c, err) != 0) {
        src_close(s);
        return -1;
    }
    return 0;
}

int fetch_source(const char *url, const char *dest_path, const fetch_conf *conf_in,
                 const atomic_int *cancel, fetch_result *res, ss_err *err)
{
    if (res)
        memset(res, 0, sizeof(*res));
    fetch_conf c;
    char shown[1024];
    src s;
    if (fetch_begin(url, conf_in, &c, &s, shown, sizeof(shown), err) != 0)
        return -1;
    char part[4200];
    if ((size_t)snprintf(part, sizeof(part), "%s.part", dest_path) >= sizeof(part)) {
        src_close(&s);
        return ss_fail(err, SS_EINVAL, "destination path too long");
    }
    dl d;
    memset(&d, 0, sizeof(d));
    d.max = c.max_bytes;
    d.total = -1;
    d.hr.cancel = cancel;
    s3_buf_init(&d.errbody, 64 * 1024);
    d.fd = open(part, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (d.fd < 0) {
        src_close(&s);
        s3_buf_free(&d.errbody);
        return ss_fail(err, SS_EIO, "create %s: %s", part, strerror(errno));
    }
    CURL *h = curl_easy_init();
    int rc = -1, fails = 0;
    if (!h) {
        ss_fail(err, SS_ENOMEM, "out of memory");
        goto out;
    }
    d.h = h;
    int64_t deadline = c.timeout_s > 0 ? ss_mono_ms() + (int64_t)c.timeout_s * 1000 : 0;
    for (int attempt = 1; attempt <= 100; attempt++) {
        netguard g = { 0 };
        struct curl_slist *hdrs = NULL;
        char *surl = NULL;
        d.start = d.have;
        d.checked = d.writing = 0;
        d.got = 0;
        d.range_mismatch = 0;
        s3_buf_reset(&d.errbody);
        http_resp_reset(&d.hr);
        if (setup_attempt(&s, url, &c, h, &g, d.have, -1, d.validator, 0, &hdrs, &surl, err) != 0)
            break;
        http_capture(h, &d.hr);
        curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, dl_write);
        curl_easy_setopt(h, CURLOPT_WRITEDATA, &d);
        curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, dl_header);
        curl_easy_setopt(h, CURLOPT_HEADERDATA, &d);
        curl_easy_setopt(h, CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)(d.max - d.have));
        if (deadline) {
            int64_t left = deadline - ss_mono_ms();
            curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, (long)(left > 1 ? left : 1));
        }
        CURLcode cc = curl_easy_perform(h);
        curl_slist_free_all(hdrs);
        free(surl);
        long st = 0;
        curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &st);
        curl_off_t clen = -1;
        curl_easy_getinfo(h, CURLINFO_CONTENT_LENGTH_DOWNLOAD_T, &clen);
        if (!d.checked && cc == CURLE_OK)
            dl_check(&d);   /* an empty body */
        /* Remember what identifies this version of the file. */
        if (!d.validator[0] && (st == 200 || st == 206))
            ss_strlcpy(d.validator, d.hr.etag[0] ? d.hr.etag : d.hr.last_modified,
                       sizeof(d.validator));
        if (st == 200 && clen >= 0)
            d.total = clen;

        if (cancel && atomic_load(cancel)) {
            ss_fail(err, SS_ECANCELLED, "download of %s cancelled", shown);
            break;
        }
        if (netguard_explain(&g, shown, err))
            break;
        if (d.over_limit || cc == CURLE_FILESIZE_EXCEEDED) {
            ss_fail(err, SS_ELIMIT, "source %s is larger than the limit of %lld bytes", shown,
                    (long long)c.max_bytes);
            break;
        }
        if (d.io_error) {
            ss_fail(err, SS_EIO, "write %s: %s", part, strerror(d.io_error));
            break;
        }
        if (d.range_mismatch) {
            /* The server answered another range than asked: start over. */
            if (ftruncate(d.fd, 0) != 0) {
                ss_fail(err, SS_EIO, "truncate %s: %s", part, strerror(errno));
                break;
            }
            d.have = 0;
        }
        if (st == 416 && d.start > 0 && d.total == d.start) {
            rc = 0;   /* we already had every byte */
            break;
        }
        ss_code code = SS_OK;
        char *s3code = NULL, *s3msg = NULL;
        if (s.is_s3 && st >= 300)
            s3_xml_error(d.errbody.data, d.errbody.len, &s3code, &s3msg);
        free(s3msg);
        http_verdict v = s3_classify(cc, st, s3code, &code);
        free(s3code);
        if (v == HTTP_DONE && (st == 200 || st == 206)) {
            if (d.total >= 0 && d.have != d.total) {
                v = HTTP_RETRY;   /* short body: resume */
                code = SS_ENET;
            } else {
                rc = 0;
                break;
            }
        } else if (v == HTTP_DONE) {
            v = HTTP_FAIL;   /* 204 or another 2xx without the object */
            code = SS_ENET;
        }
        if (st == 410)
            code = SS_ENOTFOUND;
        if (st == 412 && d.start > 0) {
            /* The object changed since the first attempt: start over. */
            d.validator[0] = '\0';
            if (ftruncate(d.fd, 0) == 0)
                d.have = 0;
            v = HTTP_RETRY;
            code = SS_ENET;
        }
        if (st == 416) {
            /* Range not satisfiable but not complete: start over once. */
            d.validator[0] = '\0';
            if (ftruncate(d.fd, 0) == 0)
                d.have = 0;
            v = HTTP_RETRY;
            code = SS_ENET;
        }
        if (d.got > 0)
            fails = 0;   /* progress: the retry budget counts attempts without any */
        if (v == HTTP_RETRY && deadline && ss_mono_ms() >= deadline) {
            ss_fail(err, SS_ENET, "source %s: download took longer than %d s", shown, c.timeout_s);
            break;
        }
        if (v == HTTP_RETRY && fails < c.max_retries) {
            fails++;
            log_debug(NULL, "fetch %s: retry %d after %s (have %lld bytes)", shown, fails,
                      cc ? curl_easy_strerror(cc) : "HTTP error", (long long)d.have);
            if (http_backoff_wait(fails, d.hr.retry_after_ms, cancel) != 0) {
                ss_fail(err, SS_ECANCELLED, "download of %s cancelled", shown);
                break;
            }
            continue;
        }
        if (cc != CURLE_OK) {
            ss_fail(err, code, "source %s: %s%s", shown, http_error_text(&d.hr, cc),
                    fails ? " (retries spent)" : "");
        } else {
            describe_http(err, &s, shown, st, &d.errbody, code);
        }
        break;
    }
    if (rc == 0) {
        if (fsync(d.fd) != 0 || close(d.fd) != 0) {
            rc = ss_fail(err, SS_EIO, "write %s: %s", part, strerror(errno));
            d.fd = -1;
        } else {
            d.fd = -1;
            if (rename(part, dest_path) != 0)
                rc = ss_fail(err, SS_EIO, "rename %s: %s", dest_path, strerror(errno));
        }
    } else if (err && !err->code) {
        ss_fail(err, SS_ENET, "source %s: download failed", shown);
    }
out:
    if (rc == 0 && res) {
        ss_strlcpy(res->etag, d.hr.etag, sizeof(res->etag));
        ss_strlcpy(res->last_modified, d.hr.last_modified, sizeof(res->last_modified));
        res->bytes = d.have;
    }
    if (d.fd >= 0)
        close(d.fd);
    if (rc != 0)
        unlink(part);
    if (h)
        curl_easy_cleanup(h);
    s3_buf_free(&d.errbody);
    src_close(&s);
    return rc;
}

int fetch_head_size(const char *url, const fetch_conf *conf_in, int64_t *size, ss_err *err)
{
    *size = -1;
    fetch_conf c;
    char shown[1024];
    src s;
    if (fetch_begin(url, conf_in, &c, &s, shown, sizeof(shown), err) != 0)
        return -1;
    CURL *h = curl_easy_init();
    int rc = -1;
    s3_buf errbody;
    s3_buf_init(&errbody, 1024);
    http_resp hr = { .body = &errbody };
    for (int attempt = 1; h; attempt++) {
        netguard g = { 0 };
        struct curl_slist *hdrs = NULL;
        char *surl = NULL;
        http_resp_reset(&hr);
        if (setup_attempt(&s, url, &c, h, &g, 0, -1, NULL, 1, &hdrs, &surl, err) != 0)
            break;
        http_capture(h, &hr);
        CURLcode cc = curl_easy_perform(h);
        curl_slist_free_all(hdrs);
        free(surl);
        long st = 0;
        curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &st);
        if (netguard_explain(&g, shown, err))
            break;
        ss_code code;
        http_verdict v = http_classify(cc, st, &code);
        if (v == HTTP_DONE) {
            curl_off_t cl = -1;
            curl_easy_getinfo(h, CURLINFO_CONTENT_LENGTH_DOWNLOAD_T, &cl);
            *size = cl;
            rc = 0;
            break;
        }
        if (v == HTTP_RETRY && attempt <= c.max_retries) {
            http_backoff_wait(attempt, hr.retry_after_ms, NULL);
            continue;
        }
        if (cc != CURLE_OK)
            ss_fail(err, code, "source %s: %s", shown, http_error_text(&hr, cc));
        else
            describe_http(err, &s, shown, st, &errbody, code);
        break;
    }
    if (!h)
        ss_fail(err, SS_ENOMEM, "out of memory");
    if (h)
        curl_easy_cleanup(h);
    s3_buf_free(&errbody);
    src_close(&s);
    return rc;
}

/* ---- random access by Range requests (fetch_reader_*) ---------------------- */

#define READER_MIN_BLOCK (128 << 10)
#define READER_MAX_BLOCK (4 << 20)

struct fetch_reader {
    src s;
    fetch_conf c;
    char *url;
    char shown[1024];
    CURL *h;
    const atomic_int *cancel;
    char validator[256];     /* the first answer's ETag (or Last-Modified) */
    char etag[256], last_modified[64];
    int64_t size;            /* the object's size (Content-Range total) */
    uint8_t *blk;            /* the block read last: [blk_off, blk_off + blk_len) */
    int64_t blk_off;
    size_t blk_len, blk_cap;
    size_t next;             /* the next block's size: doubles on sequential reads */
    int64_t bytes;           /* body bytes received in all */
    int64_t requests;
    ss_err err;              /* the first failure */
};

typedef struct rd_req {
    dl d;                    /* status, Content-Range, error body, d.hr the headers */
    uint8_t *out;
    size_t want, got;
    int not_partial;         /* the answer was no 206: nothing written */
} rd_req;

static size_t rd_write(char *p, size_t sz, size_t n, void *ud)
{
    rd_req *q = ud;
    size_t len = sz * n;
    if (!q->d.checked) {
        q->d.checked = 1;
        long st = 0;
        curl_easy_getinfo(q->d.h, CURLINFO_RESPONSE_CODE, &st);
        q->d.writing = st == 206;
        q->not_partial = st == 200;
    }
    if (!q->d.writing) {
        if (q->not_partial)
            return 0;   /* the whole object instead of the range: stop it here */
        s3_buf_add(&q->d.errbody, p, len);
        return len;
    }
    if (q->got + len > q->want)
        return 0;       /* more than asked: a server that got the range wrong */
    memcpy(q->out + q->got, p, len);
    q->got += len;
    return len;
}

/* One range [off, off + len) into out, with retries; *got = bytes (less
 * only at the end of the object). */
static int reader_get(fetch_reader *r, int64_t off, size_t len, uint8_t *out, size_t *got,
                      ss_err *err)
{
    int fails = 0;
    for (;;) {
        rd_req q;
        memset(&q, 0, sizeof(q));
        q.d.h = r->h;
        q.d.start = off;
        q.d.total = -1;
        q.d.hr.cancel = r->cancel;
        q.out = out;
        q.want = len;
        s3_buf_init(&q.d.errbody, 16 * 1024);
        netguard g = { 0 };
        struct curl_slist *hdrs = NULL;
        char *surl = NULL;
        if (setup_attempt(&r->s, r->url, &r->c, r->h, &g, off, off + (int64_t)len - 1,
                          r->validator, 0, &hdrs, &surl, err) != 0) {
            s3_buf_free(&q.d.errbody);
            return -1;
        }
        http_capture(r->h, &q.d.hr);
        curl_easy_setopt(r->h, CURLOPT_WRITEFUNCTION, rd_write);
        curl_easy_setopt(r->h, CURLOPT_WRITEDATA, &q);
        curl_easy_setopt(r->h, CURLOPT_HEADERFUNCTION, dl_header);
        curl_easy_setopt(r->h, CURLOPT_HEADERDATA, &q.d);
        CURLcode cc = curl_easy_perform(r->h);
        curl_slist_free_all(hdrs);
        free(surl);
        long st = 0;
        curl_easy_getinfo(r->h, CURLINFO_RESPONSE_CODE, &st);
        r->requests++;
        r->bytes += (int64_t)q.got;
        int rc = 1;   /* 1: retry, 0: done, -1: failed */
        ss_code code = SS_ENET;
        if (r->cancel && atomic_load(r->cancel)) {
            ss_fail(err, SS_ECANCELLED, "reading %s cancelled", r->shown);
            rc = -1;
        } else if (netguard_explain(&g, r->shown, err)) {
            rc = -1;
        } else if (q.not_partial || (st == 412 && r->validator[0])) {
            ss_fail(err, q.not_partial && !r->validator[0] ? SS_EINVAL : SS_ENET,
                    q.not_partial && !r->validator[0]
                        ? "source %s: the server does not answer range requests"
                        : "source %s changed while it was read (its ETag is no longer %s)",
                    r->shown, r->validator);
            rc = -1;
        } else if (st == 206 && cc == CURLE_OK && !q.d.range_mismatch) {
            if (!r->validator[0])
                ss_strlcpy(r->validator, q.d.hr.etag[0] ? q.d.hr.etag : q.d.hr.last_modified,
                           sizeof(r->validator));
            if (!r->etag[0] && !r->last_modified[0]) {
                ss_strlcpy(r->etag, q.d.hr.etag, sizeof(r->etag));
                ss_strlcpy(r->last_modified, q.d.hr.last_modified, sizeof(r->last_modified));
            }
            if (q.d.total > 0)
                r->size = q.d.total;
            *got = q.got;
            rc = 0;
        } else if (st == 416) {
            *got = 0;   /* at or past the end */
            rc = 0;
        } else {
            char *s3code = NULL, *s3msg = NULL;
            if (r->s.is_s3 && st >= 300)
                s3_xml_error(q.d.errbody.data, q.d.errbody.len, &s3code, &s3msg);
            free(s3msg);
            http_verdict v = s3_classify(cc, st, s3code, &code);
            free(s3code);
            if (v == HTTP_DONE || q.d.range_mismatch)
                v = HTTP_RETRY;   /* a 2xx that is not our range, or cut short */
            if (v == HTTP_RETRY && fails < r->c.max_retries) {
                fails++;
                if (http_backoff_wait(fails, q.d.hr.retry_after_ms, r->cancel) != 0) {
                    ss_fail(err, SS_ECANCELLED, "reading %s cancelled", r->shown);
                    rc = -1;
                }
            } else {
                if (cc != CURLE_OK)
                    ss_fail(err, code, "source %s: %s%s", r->shown, http_error_text(&q.d.hr, cc),
                            fails ? " (retries spent)" : "");
                else
                    describe_http(err, &r->s, r->shown, st, &q.d.errbody, code);
                rc = -1;
            }
        }
        s3_buf_free(&q.d.errbody);
        if (rc <= 0)
            return rc;
    }
}

fetch_reader *fetch_reader_open(const char *url, const fetch_conf *conf, const atomic_int *cancel,
                                ss_err *err)
{
    fetch_reader *r = calloc(1, sizeof(*r));
    if (!r) {
        ss_fail(err, SS_ENOMEM, "out of memory");
        return NULL;
    }
    fill_conf(&r->c, conf);
    r->cancel = cancel;
    r->size = -1;
    r->next = READER_MIN_BLOCK;
    log_redact_url(url, r->shown, sizeof(r->shown));
    r->url = strdup(url);
    r->h = curl_easy_init();
    r->blk_cap = READER_MAX_BLOCK;
    r->blk = malloc(r->blk_cap);
    if (!r->url || !r->h || !r->blk) {
        ss_fail(err, SS_ENOMEM, "out of memory");
        fetch_reader_close(r);
        return NULL;
    }
    if (src_open(&r->s, url, &r->c, err) != 0) {
        fetch_reader_close(r);
        return NULL;
    }
    /* the first block: the size (Content-Range) and the version read */
    size_t got = 0;
    if (reader_get(r, 0, READER_MIN_BLOCK, r->blk, &got, err) != 0) {
        fetch_reader_close(r);
        return NULL;
    }
    r->blk_off = 0;
    r->blk_len = got;
    if (r->size < 0) {
        ss_fail(err, SS_EINVAL, "source %s: the server does not say the size (Content-Range)",
                r->shown);
        fetch_reader_close(r);
        return NULL;
    }
    if (r->size > r->c.max_bytes) {
        ss_fail(err, SS_ELIMIT, "source %s is larger than the limit of %lld bytes", r->shown,
                (long long)r->c.max_bytes);
        fetch_reader_close(r);
        return NULL;
    }
    return r;
}

int fetch_reader_read(fetch_reader *r, int64_t off, uint8_t *buf, int len)
{
    if (len <= 0 || off < 0 || r->err.code)
        return r->err.code ? -1 : 0;
    if (off >= r->size)
        return 0;
    if (off < r->blk_off || off >= r->blk_off + (int64_t)r->blk_len) {
        /* a block from off: twice the last one when it follows on, else
         * the smallest again (a seek) */
        int seq = off == r->blk_off + (int64_t)r->blk_len;
        r->next = seq ? (r->next * 2 > READER_MAX_BLOCK ? READER_MAX_BLOCK : r->next * 2)
                      : READER_MIN_BLOCK;
        size_t want = r->next;
        if ((int64_t)want > r->size - off)
            want = (size_t)(r->size - off);
        size_t got = 0;
        r->blk_len = 0;
        if (reader_get(r, off, want, r->blk, &got, &r->err) != 0)
            return -1;
        r->blk_off = off;
        r->blk_len = got;
        if (!got)
            return 0;
    }
    size_t at = (size_t)(off - r->blk_off);
    size_t n = r->blk_len - at;
    if (n > (size_t)len)
        n = (size_t)len;
    memcpy(buf, r->blk + at, n);
    return (int)n;
}

int64_t fetch_reader_size(const fetch_reader *r)
{
    return r->size;
}

void fetch_reader_stats(const fetch_reader *r, int64_t *bytes, int64_t *requests)
{
    *bytes = r->bytes;
    *requests = r->requests;
}

const ss_err *fetch_reader_error(const fetch_reader *r)
{
    return &r->err;
}

void fetch_reader_identity(const fetch_reader *r, char *etag, size_t etag_len, char *last_modified,
                           size_t lm_len)
{
    ss_strlcpy(etag, r->etag, etag_len);
    ss_strlcpy(last_modified, r->last_modified, lm_len);
}

void fetch_reader_close(fetch_reader *r)
{
    if (!r)
        return;
    if (r->h)
        curl_easy_cleanup(r->h);
    src_close(&r->s);
    free(r->url);
    free(r->blk);
    free(r);
}
