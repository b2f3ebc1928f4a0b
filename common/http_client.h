/* http_client.h — the libcurl plumbing every HTTP caller shares: the S3
 * control calls and upload thread (s3_client, storage_s3), source downloads
 * (worker/fetch) and the CLI's API calls (coordinator/cli_upload).
 *
 * It owns no handle and no thread. Callers make their own easy handles
 * (easy or multi interface) and use this layer to
 *   - set what every handle gets (http_easy_setup): the SSRF guard when
 *     given, the connect timeout, a low-speed limit that aborts a hung
 *     server, an overall timeout, keep-alive, HTTP/2 over TLS, user agent;
 *   - capture the answer (http_resp, http_capture): the body into a capped
 *     s3_buf, the ETag / Last-Modified / Retry-After headers, curl's error
 *     text, and a cancel flag polled while the transfer runs;
 *   - build header lists (http_header_add) without leaving a secret on the
 *     stack;
 *   - classify a finished transfer for retry (http_classify) and wait the
 *     backoff before the next try (http_backoff_wait).
 * URLs in error text go through log_redact_url (log.h) first.
 */
#ifndef SS_HTTP_CLIENT_H
#define SS_HTTP_CLIENT_H

#include <curl/curl.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "netguard.h"
#include "s3_buf.h"
#include "ss_err.h"

#define HTTP_LOW_SPEED_BYTES 1024L      /* under this many bytes/s for low_speed_s: abort */
#define HTTP_BACKOFF_BASE_MS 250
#define HTTP_BACKOFF_CAP_MS 15000
#define HTTP_RETRY_AFTER_CAP_MS 30000

typedef struct http_limits {
    long connect_timeout_ms;   /* 0: curl's default */
    long low_speed_s;          /* abort when < HTTP_LOW_SPEED_BYTES/s this long; 0: never */
    long timeout_ms;           /* the whole request; 0: no limit */
    const char *user_agent;    /* NULL: "streamscale/VERSION" */
} http_limits;

/* Reset nothing; set on h what every request gets: the guard g (when not
 * NULL: configured by the caller, owned by it, one per handle; see
 * netguard_apply), no signals, the limits l, TCP keep-alive, HTTP/2 over
 * TLS where offered and the user agent. */
void http_easy_setup(CURL *h, netguard *g, const http_limits *l);

/* What one transfer answered. Fill body, body_cap_fails and cancel, then
 * http_resp_reset before each attempt. */
typedef struct http_resp {
    s3_buf *body;              /* the body goes here (capped by its max); NULL: dropped */
    int body_cap_fails;        /* 1: a body over the cap fails the transfer
                                  (CURLE_WRITE_ERROR); 0: its tail is dropped */
    const atomic_int *cancel;  /* non-zero aborts the transfer
                                  (CURLE_ABORTED_BY_CALLBACK); may be NULL */
    char etag[256];            /* of the last response; "" if none or too long */
    char last_modified[256];
    int64_t retry_after_ms;    /* Retry-After (seconds) in ms; 0 if none */
    char ebuf[CURL_ERROR_SIZE];
} http_resp;

/* Clear the captured headers and error text and empty r->body. */
void http_resp_reset(http_resp *r);

/* Point h's error buffer, body, header and (when r->cancel is set)
 * progress callbacks at r. A caller with its own write or header function
 * sets it after this one and calls http_resp_header from it. */
void http_capture(CURL *h, http_resp *r);

/* Take in one response header line (as curl's HEADERFUNCTION gets it): a
 * status line starts a new response (redirect hop, 100 Continue) and
 * clears what the previous one said; ETag, Last-Modified and Retry-After
 * are kept. */
void http_resp_header(http_resp *r, const char *line, size_t len);

/* curl's error text for this transfer: the error buffer when curl wrote
 * one, else the generic text of cc. */
const char *http_error_text(const http_resp *r, CURLcode cc);

/* Append the header line printf(fmt, ...) to *l. The formatted line is
 * wiped from the stack afterwards (it may carry a credential). Returns 0,
 * or -1 when out of memory (*l unchanged: the caller still frees it with
 * curl_slist_free_all). */
int http_header_add(struct curl_slist **l, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Retry classification of a finished transfer. */
typedef enum http_verdict {
    HTTP_DONE = 0,   /* success (2xx) */
    HTTP_RETRY,      /* transient: retry after a backoff */
    HTTP_FAIL        /* permanent for this request */
} http_verdict;

/* curl_code: the CURLcode of the transfer; status: HTTP status (0 if
 * none). *code gets the ss_code to report when not HTTP_DONE: network,
 * timeouts, 408/429/5xx retry (SS_ENET); 401/403 SS_EAUTH, 404 SS_ENOTFOUND,
 * cancel SS_ECANCELLED, local read/write SS_EIO, over a size cap SS_ELIMIT
 * fail. Pure. */
http_verdict http_classify(int curl_code, long status, ss_code *code);

/* Delay before retry number `attempt` (1-based): exponential with jitter,
 * or the server's Retry-After (ms, capped at HTTP_RETRY_AFTER_CAP_MS) when
 * it gave one. */
int64_t http_retry_delay_ms(int attempt, int64_t retry_after_ms);

/* Sleep http_retry_delay_ms(attempt, retry_after_ms), waking early when
 * cancel (may be NULL) becomes non-zero. Returns 0, or -1 when cancelled. */
int http_backoff_wait(int attempt, int64_t retry_after_ms, const atomic_int *cancel);

#endif
