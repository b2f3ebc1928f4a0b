/* storage_s3.c — the s3:// storage backend (Cloudflare R2, AWS S3, any
 * S3-compatible store).
 *
 * One background thread per storage handle runs a curl multi handle: every
 * object is a small state machine of HTTP requests ("xfers"): a single PUT,
 * or CreateMultipartUpload → UploadPart × N (in parallel) →
 * CompleteMultipartUpload (AbortMultipartUpload when anything fails), and an
 * optional HEAD to verify. At most max_parallel requests run at once over
 * reused connections (HTTP/2 where the server offers it). A failed request
 * is retried with exponential backoff and jitter when it is worth it (5xx,
 * 429, timeouts, resets; see s3_classify), never on refused credentials.
 * Every body is hashed first (x-amz-content-sha256 and Content-MD5 of the
 * real bytes), so the server checks what it got; a single PUT's ETag is
 * compared with the MD5.
 *
 * Owns: the thread, the multi handle, the queue of uploads. Callers' threads
 * only touch the incoming queue, the pending count, the first error and the
 * stats, under p->mu.
 */
#include "storage.h"

#include <errno.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "s3_client.h"
#include "util.h"

typedef enum xkind { X_PUT, X_CREATE, X_PART, X_COMPLETE, X_ABORT, X_HEAD } xkind;

static const char *xkind_name[] = { "PUT", "CreateMultipartUpload", "UploadPart",
                                    "CompleteMultipartUpload", "AbortMultipartUpload", "HEAD" };

typedef struct upload upload;

typedef struct xfer {
    struct xfer *next;        /* ready list */
    struct xfer *unext;       /* the upload's list of live xfers */
    upload *u;
    xkind kind;
    int part;                 /* 1-based part number */
    int64_t off, len;         /* body range in the file */
    int attempt;              /* 1 on the first try */
    int max_retries;
    int64_t not_before;       /* monotonic ms */
    int running;
    CURL *h;
    struct curl_slist *hdrs;
    char *url;
    int64_t pos;              /* read position within the range */
    char *body;               /* in-memory body (CompleteMultipartUpload) */
    size_t body_len;
    s3_buf resp;
    http_resp hr;             /* answer: body into resp, ETag, Retry-After, error text */
    int hashed;
    char sha[65];
    char md5hex[33];
    char md5b64[32];
    netguard g;
} xfer;

struct upload {
    upload *next;             /* incoming queue / active list */
    char *path;
    char *key;                /* full object key (prefix + relative key) */
    int fd;
    int64_t size;
    int multipart;
    char *upload_id;
    int nparts, parts_left;
    char **etags;             /* [nparts] */
    char md5hex[33];          /* of a single PUT's body */
    const char *cc;           /* Cache-Control (static text) */
    xfer *xfers;              /* live xfers */
    int inflight;
    int failed;
    ss_err err;
};

typedef struct s3_priv {
    storage *st;
    s3_client c;
    char *bucket;
    char *prefix;             /* "" or "some/prefix/" */
    int max_parallel;
    int64_t threshold, part_size;
    int verify;

    pthread_mutex_t mu;
    pthread_cond_t cv;
    upload *in_head, *in_tail;   /* queued by callers, not yet seen by the thread */
    int pending;                 /* uploads queued and not finished */
    ss_err first;                /* first failure since the last wait */
    int stop, abort_req;

    pthread_t thread;
    int thread_started;
    CURLM *multi;
    /* thread only */
    xfer *ready_head, *ready_tail;
    int running;
    upload *active;
} s3_priv;

/* ---------------------------------------------------------------- xfers */

static xfer *xfer_new(upload *u, xkind kind, int max_retries)
{
    xfer *x = calloc(1, sizeof(*x));
    if (!x)
        return NULL;
    x->u = u;
    x->kind = kind;
    x->attempt = 1;
    x->max_retries = max_retries;
    s3_buf_init(&x->resp, 1 << 20);
    x->hr.body = &x->resp;    /* over the cap: the tail is dropped */
    x->unext = u->xfers;
    u->xfers = x;
    u->inflight++;
    return x;
}

static void ready_push(s3_priv *p, xfer *x)
{
    x->next = NULL;
    if (p->ready_tail)
        p->ready_tail->next = x;
    else
        p->ready_head = x;
    p->ready_tail = x;
}

static void ready_remove(s3_priv *p, xfer *x)
{
    xfer **pp = &p->ready_head, *prev = NULL;
    while (*pp && *pp != x) {
        prev = *pp;
        pp = &(*pp)->next;
    }
    if (!*pp)
        return;
    *pp = x->next;
    if (p->ready_tail == x)
        p->ready_tail = prev;
    x->next = NULL;
}

static void xfer_release_handle(s3_priv *p, xfer *x)
{
    if (x->running) {
        curl_multi_remove_handle(p->multi, x->h);
        x->running = 0;
        p->running--;
    }
    curl_slist_free_all(x->hdrs);
    x->hdrs = NULL;
    free(x->url);
    x->url = NULL;
}

/* Unlink x from its upload and free it; the upload's inflight drops. */
static void xfer_free(s3_priv *p, xfer *x)
{
    upload *u = x->u;
    xfer_release_handle(p, x);
    if (x->h)
        curl_easy_cleanup(x->h);
    for (xfer **pp = &u->xfers; *pp; pp = &(*pp)->unext)
        if (*pp == x) {
            *pp = x->unext;
            break;
        }
    u->inflight--;
    s3_buf_free(&x->resp);
    free(x->body);
    free(x);
}

/* ------------------------------------------------------------- uploads */

static void upload_free(upload *u)
{
    if (u->fd >= 0)
        close(u->fd);
    if (u->etags)
        for (int i = 0; i < u->nparts; i++)
            free(u->etags[i]);
    free(u->etags);
    free(u->upload_id);
    free(u->path);
    free(u->key);
    free(u);
}

/* The upload is over (all its xfers gone): report it and free it. */
static void upload_finish(s3_priv *p, upload *u)
{
    for (upload **pp = &p->active; *pp; pp = &(*pp)->next)
        if (*pp == u) {
            *pp = u->next;
            break;
        }
    pthread_mutex_lock(&p->mu);
    if (u->failed) {
        if (!p->first.code)
            p->first = u->err;
    } else {
        p->st->stats.objects++;
        p->st->stats.bytes += u->size;
    }
    p->pending--;
    pthread_cond_broadcast(&p->cv);
    pthread_mutex_unlock(&p->mu);
    upload_free(u);
}

static void queue_abort_mpu(s3_priv *p, upload *u)
{
    xfer *x = xfer_new(u, X_ABORT, p->c.max_retries < 2 ? p->c.max_retries : 2);
    if (x) {
        x->not_before = 0;
        ready_push(p, x);
    }
}

/* Mark u failed with e: drop its other requests, abort a multipart upload
 * on the server. Does not free u (upload_finish does when nothing is left). */
static void upload_fail(s3_priv *p, upload *u, const ss_err *e, xfer *except)
{
    if (u->failed)
        return;
    u->failed = 1;
    u->err = *e;
    for (xfer *x = u->xfers, *nx; x; x = nx) {
        nx = x->unext;
        if (x == except)
            continue;
        /* A running CreateMultipartUpload may already have made the upload
         * on the server: let it finish, then abort what it made. */
        if (x->kind == X_CREATE && x->running)
            continue;
        ready_remove(p, x);
        xfer_free(p, x);
    }
    if (u->upload_id)
        queue_abort_mpu(p, u);
}

static void maybe_finish(s3_priv *p, upload *u)
{
    if (u->inflight == 0)
        upload_finish(p, u);
}

static void upload_begin(s3_priv *p, upload *u)
{
    ss_err e = { 0 };
    u->next = p->active;
    p->active = u;
    u->fd = open(u->path, O_RDONLY | O_CLOEXEC);
    struct stat sb;
    if (u->fd < 0) {
        ss_fail(&e, errno == ENOENT ? SS_ENOTFOUND : SS_EIO, "upload %s: %s", u->path, strerror(errno));
    } else if (fstat(u->fd, &sb) != 0 || !S_ISREG(sb.st_mode)) {
        ss_fail(&e, SS_EIO, "upload %s: not a regular file", u->path);
    } else {
        u->size = sb.st_size;
        u->multipart = u->size > p->threshold;
        xfer *x = xfer_new(u, u->multipart ? X_CREATE : X_PUT, p->c.max_retries);
        if (!x) {
            ss_fail(&e, SS_ENOMEM, "out of memory");
        } else {
            x->len = u->multipart ? 0 : u->size;
            ready_push(p, x);
        }
    }
    if (e.code) {
        upload_fail(p, u, &e, NULL);
        maybe_finish(p, u);
    }
}

static int make_parts(s3_priv *p, upload *u, ss_err *e)
{
    int64_t ps = p->part_size;
    while ((u->size + ps - 1) / ps > S3_MAX_PARTS)
        ps *= 2;
    u->nparts = (int)((u->size + ps - 1) / ps);
    if (u->nparts < 1)
        u->nparts = 1;
    u->parts_left = u->nparts;
    u->etags = calloc((size_t)u->nparts, sizeof(char *));
    if (!u->etags)
        return ss_fail(e, SS_ENOMEM, "out of memory");
    for (int i = 0; i < u->nparts; i++) {
        xfer *x = xfer_new(u, X_PART, p->c.max_retries);
        if (!x)
            return ss_fail(e, SS_ENOMEM, "out of memory");
        x->part = i + 1;
        x->off = (int64_t)i * ps;
        x->len = u->size - x->off < ps ? u->size - x->off : ps;
        ready_push(p, x);
    }
    return 0;
}

static int queue_complete(s3_priv *p, upload *u, ss_err *e)
{
    s3_buf b;
    s3_buf_init(&b, 0);
    s3_buf_adds(&b, "<CompleteMultipartUpload>");
    for (int i = 0; i < u->nparts; i++) {
        char *et = s3_xml_escape(u->etags[i] ? u->etags[i] : "");
        s3_buf_printf(&b, "<Part><PartNumber>%d</PartNumber><ETag>%s</ETag></Part>", i + 1,
                      et ? et : "");
        free(et);
    }
    s3_buf_adds(&b, "</CompleteMultipartUpload>");
    if (b.oom) {
        s3_buf_free(&b);
        return ss_fail(e, SS_ENOMEM, "out of memory");
    }
    xfer *x = xfer_new(u, X_COMPLETE, p->c.max_retries);
    if (!x) {
        s3_buf_free(&b);
        return ss_fail(e, SS_ENOMEM, "out of memory");
    }
    x->body_len = b.len;
    x->body = s3_buf_take(&b);
    ss_sha256_hex(x->body, x->body_len, x->sha);
    x->hashed = 1;
    ready_push(p, x);
    return 0;
}

/* ------------------------------------------------------- curl callbacks */

static size_t cb_read(char *buf, size_t sz, size_t n, void *ud)
{
    xfer *x = ud;
    size_t want = sz * n;
    if (x->body) {
        size_t left = x->body_len - (size_t)x->pos;
        if (want > left)
            want = left;
        memcpy(buf, x->body + x->pos, want);
        x->pos += (int64_t)want;
        return want;
    }
    int64_t left = x->len - x->pos;
    if ((int64_t)want > left)
        want = (size_t)left;
    if (!want)
        return 0;
    ssize_t r;
    do
        r = pread(x->u->fd, buf, want, x->off + x->pos);
    while (r < 0 && errno == EINTR);
    if (r <= 0)
        return CURL_READFUNC_ABORT;
    x->pos += r;
    return (size_t)r;
}

static int cb_seek(void *ud, curl_off_t off, int origin)
{
    xfer *x = ud;
    if (origin != SEEK_SET || off < 0 || off > x->len)
        return CURL_SEEKFUNC_FAIL;
    x->pos = off;
    return CURL_SEEKFUNC_OK;
}

/* SHA-256 and MD5 of the file range, read with pread. */
static int hash_range(xfer *x, ss_err *e)
{
    EVP_MD_CTX *sha = EVP_MD_CTX_new(), *md5 = EVP_MD_CTX_new();
    unsigned char *buf = malloc(1 << 18);
    int rc = -1;
    if (!sha || !md5 || !buf) {
        ss_fail(e, SS_ENOMEM, "out of memory");
        goto out;
    }
    EVP_DigestInit_ex(sha, EVP_sha256(), NULL);
    EVP_DigestInit_ex(md5, EVP_md5(), NULL);
    for (int64_t done = 0; done < x->len;) {
        size_t want = x->len - done < (1 << 18) ? (size_t)(x->len - done) : (1 << 18);
        ssize_t r = pread(x->u->fd, buf, want, x->off + done);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0) {
            ss_fail(e, SS_EIO, "read %s: %s", x->u->path, r < 0 ? strerror(errno) : "file shrank");
            goto out;
        }
        EVP_DigestUpdate(sha, buf, (size_t)r);
        EVP_DigestUpdate(md5, buf, (size_t)r);
        done += r;
    }
    unsigned char d[32], m[16];
    unsigned int dl = 0, ml = 0;
    EVP_DigestFinal_ex(sha, d, &dl);
    EVP_DigestFinal_ex(md5, m, &ml);
    ss_hex(d, 32, x->sha);
    ss_hex(m, 16, x->md5hex);
    s3_base64(m, 16, x->md5b64);
    x->hashed = 1;
    rc = 0;
out:
    EVP_MD_CTX_free(sha);
    EVP_MD_CTX_free(md5);
    free(buf);
    return rc;
}

/* ------------------------------------------------------------ start/done */

static int xfer_start(s3_priv *p, xfer *x, ss_err *e)
{
    upload *u = x->u;
    if ((x->kind == X_PUT || x->kind == X_PART) && !x->hashed && hash_range(x, e) != 0)
        return -1;
    char partbuf[16];
    s3_kv q[2];
    s3_kv h[3];
    size_t nq = 0, nh = 0;
    const char *method = "PUT";
    switch (x->kind) {
    case X_PUT:
        h[nh++] = (s3_kv){ "content-type", storage_content_type(u->key) };
        h[nh++] = (s3_kv){ "cache-control", u->cc };
        h[nh++] = (s3_kv){ "content-md5", x->md5b64 };
        break;
    case X_CREATE:
        method = "POST";
        q[nq++] = (s3_kv){ "uploads", NULL };
        h[nh++] = (s3_kv){ "content-type", storage_content_type(u->key) };
        h[nh++] = (s3_kv){ "cache-control", u->cc };
        break;
    case X_PART:
        snprintf(partbuf, sizeof(partbuf), "%d", x->part);
        q[nq++] = (s3_kv){ "partNumber", partbuf };
        q[nq++] = (s3_kv){ "uploadId", u->upload_id };
        h[nh++] = (s3_kv){ "content-md5", x->md5b64 };
        break;
    case X_COMPLETE:
        method = "POST";
        q[nq++] = (s3_kv){ "uploadId", u->upload_id };
        h[nh++] = (s3_kv){ "content-type", "application/xml" };
        break;
    case X_ABORT:
        method = "DELETE";
        q[nq++] = (s3_kv){ "uploadId", u->upload_id };
        break;
    case X_HEAD:
        method = "HEAD";
        break;
    }
    s3_request r = {
        .method = method, .bucket = p->bucket, .key = u->key, .query = q, .nquery = nq,
        .headers = h, .nheaders = nh, .payload_hash = x->hashed ? x->sha : NULL,
    };
    xfer_release_handle(p, x);
    int64_t blen = x->body ? (int64_t)x->body_len : x->len;
    if (s3_sign_request(&p->c, &r, (long long)time(NULL), blen, &x->url, &x->hdrs, e) != 0)
        return -1;
    if (!x->h && !(x->h = curl_easy_init()))
        return ss_fail(e, SS_ENOMEM, "out of memory");
    CURL *c = x->h;
    curl_easy_reset(c);
    s3_easy_defaults(&p->c, c, &x->g);
    x->pos = 0;
    http_resp_reset(&x->hr);
    http_capture(c, &x->hr);
    curl_easy_setopt(c, CURLOPT_URL, x->url);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, x->hdrs);
    curl_easy_setopt(c, CURLOPT_PRIVATE, x);
    switch (x->kind) {
    case X_PUT:
    case X_PART:
        curl_easy_setopt(c, CURLOPT_UPLOAD, 1L);
        curl_easy_setopt(c, CURLOPT_READFUNCTION, cb_read);
        curl_easy_setopt(c, CURLOPT_READDATA, x);
        curl_easy_setopt(c, CURLOPT_SEEKFUNCTION, cb_seek);
        curl_easy_setopt(c, CURLOPT_SEEKDATA, x);
        curl_easy_setopt(c, CURLOPT_INFILESIZE_LARGE, (curl_off_t)x->len);
        curl_easy_setopt(c, CURLOPT_UPLOAD_BUFFERSIZE, 256L * 1024);
        break;
    case X_CREATE:
    case X_COMPLETE:
        curl_easy_setopt(c, CURLOPT_POST, 1L);
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, x->body ? x->body : "");
        curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)(x->body ? x->body_len : 0));
        break;
    case X_ABORT:
        curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, "DELETE");
        break;
    case X_HEAD:
        curl_easy_setopt(c, CURLOPT_NOBODY, 1L);
        break;
    }
    if (curl_multi_add_handle(p->multi, c) != CURLM_OK)
        return ss_fail(e, SS_EINTERNAL, "curl_multi_add_handle failed");
    x->running = 1;
    p->running++;
    return 0;
}

static int etag_matches(const char *etag, const char *md5hex)
{
    const char *e = etag;
    size_t n = strlen(e);
    if (n >= 2 && e[0] == '"' && e[n - 1] == '"') {
        e++;
        n -= 2;
    }
    if (n != 32)
        return -1;            /* not an MD5 ETag (e.g. SSE-KMS): cannot compare */
    return strncasecmp(e, md5hex, 32) == 0;
}

static void count_retry(s3_priv *p)
{
    pthread_mutex_lock(&p->mu);
    p->st->stats.retries++;
    pthread_mutex_unlock(&p->mu);
}

static void fail_all(s3_priv *p, const ss_err *e);

static void xfer_done(s3_priv *p, xfer *x, CURLcode cc)
{
    upload *u = x->u;
    long status = 0;
    curl_easy_getinfo(x->h, CURLINFO_RESPONSE_CODE, &status);
    curl_off_t clen = -1;
    curl_easy_getinfo(x->h, CURLINFO_CONTENT_LENGTH_DOWNLOAD_T, &clen);
    xfer_release_handle(p, x);

    char *s3code = NULL, *s3msg = NULL;
    if (s3_xml_error(x->resp.data, x->resp.len, &s3code, &s3msg) && status == 200)
        status = 500;   /* CompleteMultipartUpload's late failure */
    ss_code code;
    http_verdict v = s3_classify(cc, status, s3code, &code);
    /* a missing bucket fails every other object too: known from the S3
     * error code, not from the message text */
    int no_bucket = s3code && !strcmp(s3code, "NoSuchBucket");
    ss_err e = { 0 };
    int force_verify = 0;
    if (x->kind == X_COMPLETE && x->attempt > 1 && status == 404 && s3code &&
        !strcmp(s3code, "NoSuchUpload")) {
        /* An earlier try completed the upload but its answer was lost:
         * the HEAD below tells whether the object is there, whole. */
        v = HTTP_DONE;
        force_verify = 1;
    }
    char what[1400];
    if (x->kind == X_PART)
        snprintf(what, sizeof(what), "%s %d/%d of s3://%s/%s", xkind_name[x->kind], x->part,
                 u->nparts, p->bucket, u->key);
    else
        snprintf(what, sizeof(what), "%s s3://%s/%s", xkind_name[x->kind], p->bucket, u->key);

    if (v == HTTP_DONE) {
        switch (x->kind) {
        case X_PUT:
            memcpy(u->md5hex, x->md5hex, sizeof(u->md5hex));
            if (x->hr.etag[0] && etag_matches(x->hr.etag, x->md5hex) == 0) {
                v = HTTP_RETRY;   /* the server stored other bytes than we sent */
                code = SS_ENET;
            }
            break;
        case X_PART:
            if (!x->hr.etag[0]) {
                v = HTTP_FAIL;
                ss_fail(&e, SS_ENET, "%s: the server returned no ETag", what);
            }
            break;
        case X_CREATE: {
            ss_err pe = { 0 };
            s3_xml *doc = s3_xml_parse(x->resp.data, x->resp.len,
                                       "InitiateMultipartUploadResult", &pe);
            char *id = doc ? s3_xml_child_text(s3_xml_root(doc), "UploadId") : NULL;
            s3_xml_free(doc);
            if (!id || !*id) {
                free(id);
                v = HTTP_FAIL;
                ss_fail(&e, SS_ENET, "%s: no UploadId in the answer%s%s", what, pe.code ? ": " : "",
                        pe.msg);
            } else {
                u->upload_id = id;
            }
            break;
        }
        case X_HEAD:
            if (clen != (curl_off_t)u->size) {
                v = HTTP_FAIL;
                ss_fail(&e, SS_ENET, "verify s3://%s/%s: stored size %lld, local size %lld",
                        p->bucket, u->key, (long long)clen, (long long)u->size);
            } else if (!u->multipart && x->hr.etag[0] && etag_matches(x->hr.etag, u->md5hex) == 0) {
                v = HTTP_FAIL;
                ss_fail(&e, SS_ENET, "verify s3://%s/%s: stored ETag %s is not the MD5 %s",
                        p->bucket, u->key, x->hr.etag, u->md5hex);
            }
            break;
        default:
            break;
        }
    }

    if (v == HTTP_RETRY && x->attempt <= x->max_retries && !u->failed &&
        !netguard_explain(&x->g, what, &e)) {
        count_retry(p);
        int64_t d = http_retry_delay_ms(x->attempt, x->hr.retry_after_ms);
        x->attempt++;
        x->not_before = ss_mono_ms() + d;
        if (x->kind == X_PUT || x->kind == X_PART)
            x->hashed = 0;   /* re-read: BadDigest may mean the file changed */
        ready_push(p, x);
        free(s3code);
        free(s3msg);
        return;
    }
    if (v != HTTP_DONE && !e.code && !netguard_explain(&x->g, what, &e)) {
        if (v == HTTP_RETRY && x->attempt > 1) {
            char w2[1500];
            snprintf(w2, sizeof(w2), "%s (gave up after %d attempts)", what, x->attempt);
            s3_describe_failure(&e, code, w2, cc, http_error_text(&x->hr, cc), status, s3code,
                                s3msg, p->bucket);
        } else {
            s3_describe_failure(&e, code, what, cc, http_error_text(&x->hr, cc), status, s3code,
                                s3msg, p->bucket);
        }
    }
    free(s3code);
    free(s3msg);

    if (x->kind == X_ABORT || u->failed) {
        if (x->kind == X_CREATE && u->failed && u->upload_id)
            queue_abort_mpu(p, u);
        xfer_free(p, x);
        maybe_finish(p, u);
        return;
    }
    if (e.code) {
        upload_fail(p, u, &e, x);
        xfer_free(p, x);
        maybe_finish(p, u);
        if (e.code == SS_EAUTH || (no_bucket && e.code == SS_ENOTFOUND))
            fail_all(p, &e);   /* every other object would get the same answer */
        return;
    }
    /* Success of one step: queue the next. */
    int next_verify = 0;
    switch (x->kind) {
    case X_PUT:
    case X_COMPLETE:
        next_verify = p->verify || force_verify;
        break;
    case X_CREATE:
        make_parts(p, u, &e);
        break;
    case X_PART:
        u->etags[x->part - 1] = strdup(x->hr.etag);
        if (--u->parts_left == 0)
            queue_complete(p, u, &e);
        break;
    default:
        break;
    }
    if (next_verify) {
        xfer *hx = xfer_new(u, X_HEAD, p->c.max_retries);
        if (hx)
            ready_push(p, hx);
        else
            ss_fail(&e, SS_ENOMEM, "out of memory");
    }
    if (e.code)
        upload_fail(p, u, &e, x);
    xfer_free(p, x);
    maybe_finish(p, u);
}

/* Fail every active upload with e (refused credentials, missing bucket:
 * no point sending the rest, and no request storm against the server). */
static void fail_all(s3_priv *p, const ss_err *e)
{
    for (upload *u = p->active; u; u = u->next)
        upload_fail(p, u, e, NULL);
    for (upload *u = p->active, *nu; u; u = nu) {
        nu = u->next;
        maybe_finish(p, u);
    }
}

static void start_ready(s3_priv *p)
{
    int64_t now = ss_mono_ms();
    for (xfer *x = p->ready_head, *nx; x && p->running < p->max_parallel; x = nx) {
        nx = x->next;
        if (x->not_before > now)
            continue;
        ready_remove(p, x);
        ss_err e = { 0 };
        if (xfer_start(p, x, &e) != 0) {
            upload *u = x->u;
            if (x->kind != X_ABORT)
                upload_fail(p, u, &e, x);
            xfer_free(p, x);
            maybe_finish(p, u);
            nx = p->ready_head;   /* upload_fail may have removed nx */
        }
    }
}

static int next_delay_ms(s3_priv *p)
{
    int64_t now = ss_mono_ms(), best = 1000;
    if (p->running >= p->max_parallel)
        return 1000;
    for (xfer *x = p->ready_head; x; x = x->next) {
        int64_t d = x->not_before - now;
        if (d < best)
            best = d < 0 ? 0 : d;
    }
    return (int)best;
}

static void abort_all(s3_priv *p)
{
    ss_err e = { 0 };
    ss_fail(&e, SS_ECANCELLED, "upload cancelled");
    fail_all(p, &e);
}

static void *s3_thread(void *arg)
{
    s3_priv *p = arg;
    for (;;) {
        pthread_mutex_lock(&p->mu);
        upload *in = p->in_head;
        p->in_head = p->in_tail = NULL;
        int stop = p->stop, do_abort = p->abort_req;
        p->abort_req = 0;
        pthread_mutex_unlock(&p->mu);
        for (upload *u = in, *nu; u; u = nu) {
            nu = u->next;
            upload_begin(p, u);
        }
        if (do_abort)
            abort_all(p);
        if (stop && !p->active)
            break;
        start_ready(p);
        int still = 0;
        curl_multi_perform(p->multi, &still);
        CURLMsg *m;
        int left;
        while ((m = curl_multi_info_read(p->multi, &left))) {
            if (m->msg != CURLMSG_DONE)
                continue;
            xfer *x = NULL;
            CURLcode cc = m->data.result;
            curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, (char **)&x);
            if (x)
                xfer_done(p, x, cc);
        }
        start_ready(p);
        curl_multi_poll(p->multi, NULL, 0, next_delay_ms(p), NULL);
    }
    return NULL;
}

/* ----------------------------------------------------------- storage ops */

static void s3_close(storage *st);

static int s3_open(storage *st, const char *url, ss_err *err)
{
    s3_priv *p = calloc(1, sizeof(*p));
    if (!p)
        return ss_fail(err, SS_ENOMEM, "out of memory");
    p->st = st;
    char *key = NULL;
    if (s3_parse_url(url, &p->bucket, &key, err) != 0) {
        free(p);
        return -1;
    }
    size_t kl = strlen(key);
    if (kl && key[kl - 1] != '/') {
        char *k2 = malloc(kl + 2);
        if (k2)
            snprintf(k2, kl + 2, "%s/", key);
        free(key);
        key = k2;
    }
    p->prefix = key;
    if (!p->prefix || s3_client_init(&p->c, &st->conf, err) != 0) {
        if (!p->prefix)
            ss_fail(err, SS_ENOMEM, "out of memory");
        free(p->prefix);
        free(p->bucket);
        free(p);
        return -1;
    }
    const storage_conf *c = &st->conf;
    p->max_parallel = c->max_parallel > 0 ? (c->max_parallel > 256 ? 256 : c->max_parallel)
                                          : S3_DEFAULT_PARALLEL;
    p->threshold = c->multipart_threshold > 0 ? c->multipart_threshold : S3_DEFAULT_MULTIPART_THRESHOLD;
    p->part_size = c->part_size > 0 ? c->part_size : S3_DEFAULT_PART_SIZE;
    if (p->part_size < S3_MIN_PART_SIZE)
        p->part_size = S3_MIN_PART_SIZE;
    if (p->threshold < p->part_size)
        p->threshold = p->part_size;
    p->verify = c->verify;
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->cv, NULL);
    p->multi = curl_multi_init();
    if (!p->multi)
        goto fail;
    curl_multi_setopt(p->multi, CURLMOPT_MAX_TOTAL_CONNECTIONS, (long)p->max_parallel);
    curl_multi_setopt(p->multi, CURLMOPT_MAXCONNECTS, (long)p->max_parallel);
    st->priv = p;
    if (pthread_create(&p->thread, NULL, s3_thread, p) != 0)
        goto fail;
    p->thread_started = 1;
    return 0;
fail:
    st->priv = p;
    s3_close(st);   /* no thread yet: frees what was made */
    return ss_fail(err, SS_ENOMEM, "could not start the S3 upload thread");
}

static int s3_put_async(storage *st, const char *local_path, const char *key, ss_err *err)
{
    s3_priv *p = st->priv;
    if (!storage_key_ok(key))
        return ss_fail(err, SS_EINVAL, "bad object key '%s'", key);
    upload *u = calloc(1, sizeof(*u));
    size_t kl = strlen(p->prefix) + strlen(key) + 1;
    if (u) {
        u->fd = -1;
        u->path = strdup(local_path);
        u->key = malloc(kl);
    }
    if (!u || !u->path || !u->key) {
        if (u)
            upload_free(u);
        return ss_fail(err, SS_ENOMEM, "out of memory");
    }
    snprintf(u->key, kl, "%s%s", p->prefix, key);
    u->cc = storage_cache_control_on(st, key);
    pthread_mutex_lock(&p->mu);
    if (p->in_tail)
        p->in_tail->next = u;
    else
        p->in_head = u;
    p->in_tail = u;
    p->pending++;
    pthread_mutex_unlock(&p->mu);
    curl_multi_wakeup(p->multi);
    return 0;
}

static int s3_wait(storage *st, ss_err *err)
{
    s3_priv *p = st->priv;
    pthread_mutex_lock(&p->mu);
    while (p->pending > 0)
        pthread_cond_wait(&p->cv, &p->mu);
    ss_err first = p->first;
    ss_err_clear(&p->first);
    pthread_mutex_unlock(&p->mu);
    if (first.code) {
        if (err && !err->code)
            *err = first;
        return -1;
    }
    return 0;
}

static void s3_abort(storage *st)
{
    s3_priv *p = st->priv;
    pthread_mutex_lock(&p->mu);
    p->abort_req = 1;
    /* Not yet started: cancel right here. */
    for (upload *u = p->in_head, *nu; u; u = nu) {
        nu = u->next;
        if (!p->first.code)
            ss_fail(&p->first, SS_ECANCELLED, "upload cancelled");
        p->pending--;
        upload_free(u);
    }
    p->in_head = p->in_tail = NULL;
    pthread_cond_broadcast(&p->cv);
    pthread_mutex_unlock(&p->mu);
    curl_multi_wakeup(p->multi);
}

/* ListObjectsV2 (paged) + DeleteObjects in batches of up to 1000 keys. */
static int s3_delete_prefix(storage *st, const char *key_prefix, ss_err *err)
{
    s3_priv *p = st->priv;
    size_t fl = strlen(p->prefix) + strlen(key_prefix) + 1;
    char *full = malloc(fl);
    if (!full)
        return ss_fail(err, SS_ENOMEM, "out of memory");
    snprintf(full, fl, "%s%s", p->prefix, key_prefix);
    if (!*full || strstr(full, "..")) {
        free(full);
        return ss_fail(err, SS_EINVAL, "refusing to delete the whole bucket (empty key prefix)");
    }
    char *token = NULL;
    int rc = 0;
    s3_buf resp, body;
    s3_buf_init(&resp, 16 << 20);
    for (;;) {
        s3_kv q[4];
        size_t nq = 0;
        q[nq++] = (s3_kv){ "list-type", "2" };
        q[nq++] = (s3_kv){ "prefix", full };
        q[nq++] = (s3_kv){ "max-keys", "1000" };
        if (token)
            q[nq++] = (s3_kv){ "continuation-token", token };
        s3_request r = { .method = "GET", .bucket = p->bucket, .key = "", .query = q, .nquery = nq };
        long status = 0;
        if (s3_call(&p->c, &r, NULL, 0, &resp, &status, NULL, NULL, NULL, NULL, err) != 0) {
            rc = -1;
            break;
        }
        ss_err pe = { 0 };
        s3_xml *list = s3_xml_parse(resp.data, resp.len, "ListBucketResult", &pe);
        if (!list) {
            rc = ss_fail(err, pe.code, "ListObjectsV2 in s3://%s/%s: %s", p->bucket, full, pe.msg);
            break;
        }
        const s3_xml_node *top = s3_xml_root(list);
        s3_buf_init(&body, 0);
        s3_buf_adds(&body, "<Delete><Quiet>true</Quiet>");
        int nkeys = 0;
        for (const s3_xml_node *c = s3_xml_child(top, "Contents", NULL); c;
             c = s3_xml_child(top, "Contents", c)) {
            char *k = s3_xml_child_text(c, "Key");
            if (k) {
                char *ek = s3_xml_escape(k);
                s3_buf_printf(&body, "<Object><Key>%s</Key></Object>", ek ? ek : "");
                free(ek);
                nkeys++;
            }
            free(k);
        }
        s3_buf_adds(&body, "</Delete>");
        char *trunc = s3_xml_child_text(top, "IsTruncated");
        int more = trunc && !strcmp(trunc, "true");
        free(trunc);
        free(token);
        token = more ? s3_xml_child_text(top, "NextContinuationToken") : NULL;
        s3_xml_free(list);
        if (nkeys) {
            if (body.oom) {
                s3_buf_free(&body);
                rc = ss_fail(err, SS_ENOMEM, "out of memory");
                break;
            }
            unsigned char md5[16];
            unsigned int ml = 0;
            EVP_Digest(body.data, body.len, md5, &ml, EVP_md5(), NULL);
            char md5b64[32], sha[65];
            s3_base64(md5, 16, md5b64);
            ss_sha256_hex(body.data, body.len, sha);
            s3_kv dq[] = { { "delete", NULL } };
            s3_kv dh[] = { { "content-md5", md5b64 }, { "content-type", "application/xml" } };
            s3_request d = { .method = "POST", .bucket = p->bucket, .key = "", .query = dq,
                             .nquery = 1, .headers = dh, .nheaders = 2, .payload_hash = sha };
            if (s3_call(&p->c, &d, body.data, body.len, &resp, &status, NULL, NULL, NULL, NULL,
                        err) != 0) {
                s3_buf_free(&body);
                rc = -1;
                break;
            }
            s3_xml *res = s3_xml_parse(resp.data, resp.len, "DeleteResult", &pe);
            const s3_xml_node *fail = res ? s3_xml_child(s3_xml_root(res), "Error", NULL) : NULL;
            if (!res || fail) {
                char *ecode = s3_xml_child_text(fail, "Code");
                char *ekey = s3_xml_child_text(fail, "Key");
                if (res)
                    rc = ss_fail(err, SS_ENET, "DeleteObjects in s3://%s/%s: %s for '%s'",
                                 p->bucket, full, ecode ? ecode : "?", ekey ? ekey : "?");
                else
                    rc = ss_fail(err, pe.code, "DeleteObjects in s3://%s/%s: %s", p->bucket, full,
                                 pe.msg);
                free(ekey);
                free(ecode);
                s3_xml_free(res);
                s3_buf_free(&body);
                break;
            }
            s3_xml_free(res);
        }
        s3_buf_free(&body);
        if (!more || !token)
            break;
    }
    free(token);
    free(full);
    s3_buf_free(&resp);
    return rc;
}

static char *s3_url(const storage *st, const char *key)
{
    const s3_priv *p = st->priv;
    size_t n = strlen(p->bucket) + strlen(p->prefix) + strlen(key) + 8;
    char *u = malloc(n);
    if (u)
        snprintf(u, n, "s3://%s/%s%s", p->bucket, p->prefix, key);
    return u;
}

static void s3_close(storage *st)
{
    s3_priv *p = st->priv;
    if (!p)
        return;
    if (p->thread_started) {
        s3_abort(st);
        pthread_mutex_lock(&p->mu);
        p->stop = 1;
        pthread_mutex_unlock(&p->mu);
        curl_multi_wakeup(p->multi);
        pthread_join(p->thread, NULL);
    }
    if (p->multi)
        curl_multi_cleanup(p->multi);
    pthread_mutex_destroy(&p->mu);
    pthread_cond_destroy(&p->cv);
    s3_client_free(&p->c);
    free(p->prefix);
    free(p->bucket);
    free(p);
    st->priv = NULL;
}

const storage_ops storage_s3_ops = {
    .scheme = "s3",
    .open = s3_open,
    .put_async = s3_put_async,
    .wait = s3_wait,
    .delete_prefix = s3_delete_prefix,
    .abort = s3_abort,
    .url = s3_url,
    .close = s3_close,
};
