/* http_client.c — easy-handle defaults, answer capture, header lists,
 * retry classification and backoff shared by every libcurl caller (see
 * http_client.h). */
#include "http_client.h"

#include <openssl/crypto.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "util.h"

void http_easy_setup(CURL *h, netguard *g, const http_limits *l)
{
    if (g)
        netguard_apply(h, g);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    if (l->connect_timeout_ms > 0)
        curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, l->connect_timeout_ms);
    if (l->low_speed_s > 0) {
        curl_easy_setopt(h, CURLOPT_LOW_SPEED_LIMIT, HTTP_LOW_SPEED_BYTES);
        curl_easy_setopt(h, CURLOPT_LOW_SPEED_TIME, l->low_speed_s);
    }
    if (l->timeout_ms > 0)
        curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, l->timeout_ms);
    curl_easy_setopt(h, CURLOPT_TCP_KEEPALIVE, 1L);
    curl_easy_setopt(h, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_2TLS);
    curl_easy_setopt(h, CURLOPT_USERAGENT,
                     l->user_agent ? l->user_agent : "streamscale/" SS_VERSION);
}

void http_resp_reset(http_resp *r)
{
    r->etag[0] = r->last_modified[0] = r->ebuf[0] = '\0';
    r->retry_after_ms = 0;
    if (r->body)
        s3_buf_reset(r->body);
}

static size_t resp_write(char *p, size_t sz, size_t n, void *ud)
{
    http_resp *r = ud;
    if (r->body && s3_buf_add(r->body, p, sz * n) != 0 && r->body_cap_fails)
        return 0;
    return sz * n;
}

static size_t resp_header(char *p, size_t sz, size_t n, void *ud)
{
    http_resp_header(ud, p, sz * n);
    return sz * n;
}

static int resp_progress(void *ud, curl_off_t dt, curl_off_t dn, curl_off_t ut, curl_off_t un)
{
    const http_resp *r = ud;
    (void)dt, (void)dn, (void)ut, (void)un;
    return r->cancel && atomic_load(r->cancel) ? 1 : 0;
}

void http_capture(CURL *h, http_resp *r)
{
    curl_easy_setopt(h, CURLOPT_ERRORBUFFER, r->ebuf);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, resp_write);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, r);
    curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, resp_header);
    curl_easy_setopt(h, CURLOPT_HEADERDATA, r);
    if (r->cancel) {
        curl_easy_setopt(h, CURLOPT_XFERINFOFUNCTION, resp_progress);
        curl_easy_setopt(h, CURLOPT_XFERINFODATA, r);
        curl_easy_setopt(h, CURLOPT_NOPROGRESS, 0L);
    }
}

/* The trimmed value of header line p (len bytes) when it is `name:`
 * (case-insensitive) into dst; a value that does not fit leaves dst "". */
static int header_copy(const char *p, size_t len, const char *name, char *dst, size_t dn)
{
    size_t nl = strlen(name);
    if (len <= nl || strncasecmp(p, name, nl) || p[nl] != ':')
        return 0;
    const char *v = p + nl + 1;
    size_t vl = len - nl - 1;
    while (vl && (*v == ' ' || *v == '\t')) {
        v++;
        vl--;
    }
    while (vl && (v[vl - 1] == '\r' || v[vl - 1] == '\n' || v[vl - 1] == ' '))
        vl--;
    if (vl >= dn)
        vl = 0;   /* too long to be useful: ignore */
    memcpy(dst, v, vl);
    dst[vl] = '\0';
    return 1;
}

void http_resp_header(http_resp *r, const char *p, size_t len)
{
    char ra[32];
    if (len > 5 && !strncmp(p, "HTTP/", 5)) {
        r->etag[0] = r->last_modified[0] = '\0';
        r->retry_after_ms = 0;
    } else if (header_copy(p, len, "ETag", r->etag, sizeof(r->etag)) ||
               header_copy(p, len, "Last-Modified", r->last_modified, sizeof(r->last_modified))) {
        return;
    } else if (header_copy(p, len, "Retry-After", ra, sizeof(ra))) {
        /* clamped before the multiplication: a huge value must not overflow */
        long s = strtol(ra, NULL, 10);
        if (s > 0)
            r->retry_after_ms = (int64_t)(s > 86400 ? 86400 : s) * 1000;
    }
}

const char *http_error_text(const http_resp *r, CURLcode cc)
{
    return r && r->ebuf[0] ? r->ebuf : curl_easy_strerror(cc);
}

int http_header_add(struct curl_slist **l, const char *fmt, ...)
{
    char line[8192];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof(line), fmt, ap);
    va_end(ap);
    struct curl_slist *nl = curl_slist_append(*l, line);
    OPENSSL_cleanse(line, sizeof(line));
    if (!nl)
        return -1;
    *l = nl;
    return 0;
}

http_verdict http_classify(int curl_code, long status, ss_code *code)
{
    *code = SS_OK;
    if (curl_code != CURLE_OK) {
        switch (curl_code) {
        case CURLE_ABORTED_BY_CALLBACK:
            *code = SS_ECANCELLED;
            return HTTP_FAIL;
        case CURLE_READ_ERROR:
        case CURLE_WRITE_ERROR:
            *code = SS_EIO;
            return HTTP_FAIL;
        case CURLE_FILESIZE_EXCEEDED:
            *code = SS_ELIMIT;
            return HTTP_FAIL;
        case CURLE_UNSUPPORTED_PROTOCOL:
        case CURLE_URL_MALFORMAT:
            *code = SS_EINVAL;
            return HTTP_FAIL;
        case CURLE_PEER_FAILED_VERIFICATION:
        case CURLE_SSL_CERTPROBLEM:
        case CURLE_SSL_CACERT_BADFILE:
        case CURLE_TOO_MANY_REDIRECTS:
        case CURLE_OUT_OF_MEMORY:
            *code = curl_code == CURLE_OUT_OF_MEMORY ? SS_ENOMEM : SS_ENET;
            return HTTP_FAIL;
        default:
            /* connect refused/timed out, DNS, resets, timeouts, HTTP/2
             * stream errors, partial bodies: all worth another try. */
            *code = SS_ENET;
            return HTTP_RETRY;
        }
    }
    if (status >= 200 && status < 300)
        return HTTP_DONE;
    if (status == 401 || status == 403) {
        *code = SS_EAUTH;
        return HTTP_FAIL;
    }
    if (status == 404) {
        *code = SS_ENOTFOUND;
        return HTTP_FAIL;
    }
    *code = SS_ENET;
    if (status == 408 || status == 429 || (status >= 500 && status != 501 && status != 505))
        return HTTP_RETRY;
    return HTTP_FAIL;
}

int64_t http_retry_delay_ms(int attempt, int64_t retry_after_ms)
{
    if (retry_after_ms > 0)
        return retry_after_ms > HTTP_RETRY_AFTER_CAP_MS ? HTTP_RETRY_AFTER_CAP_MS : retry_after_ms;
    return ss_backoff_ms(attempt, HTTP_BACKOFF_BASE_MS, HTTP_BACKOFF_CAP_MS, ss_random_unit());
}

int http_backoff_wait(int attempt, int64_t retry_after_ms, const atomic_int *cancel)
{
    int64_t until = ss_mono_ms() + http_retry_delay_ms(attempt, retry_after_ms);
    while (ss_mono_ms() < until) {
        if (cancel && atomic_load(cancel))
            return -1;
        usleep(20000);
    }
    return 0;
}
