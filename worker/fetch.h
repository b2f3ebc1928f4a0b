/* fetch.h — download a job's source to local scratch: https:// (http://
 * when allowed), s3://bucket/key (signed GET with the storage settings).
 *
 * file:// is not fetched: the worker reads local sources in place, so
 * fetch_source returns SS_EINVAL for it (and for any other scheme).
 *
 * Safety: the SSRF guard (netguard.h) checks every address connected to,
 * redirects included (at most max_redirects, https only unless
 * allow_http); a size cap (SS_ELIMIT, checked against Content-Length first
 * and against the bytes as they come); connect and low-speed timeouts.
 * Robustness: transient failures (connection reset/refused, timeouts, 5xx,
 * 429) are retried with exponential backoff and jitter, resuming with a
 * Range request (If-Range on the first answer's ETag/Last-Modified, so a
 * file that changed meanwhile is downloaded again from the start).
 * The download goes to DEST.part and is renamed to DEST when complete, so
 * DEST is either whole or absent.
 */
#ifndef SS_FETCH_H
#define SS_FETCH_H

#include <stdatomic.h>
#include <stdint.h>

#include "ss_err.h"
#include "storage.h"

#define FETCH_DEFAULT_MAX_BYTES (64LL << 30)   /* 64 GiB */
#define FETCH_DEFAULT_REDIRECTS 3
#define FETCH_DEFAULT_RETRIES 5
#define FETCH_DEFAULT_CONNECT_TIMEOUT_S 10
#define FETCH_DEFAULT_LOW_SPEED_S 30

/* Zero fields take the defaults above. Strings and s3 are borrowed. */
typedef struct fetch_conf {
    const storage_conf *s3;   /* s3:// sources: s3_endpoint, s3_region, credentials,
                                 s3_path_style (the SSRF guard on the S3 endpoint uses
                                 allow_private below). NULL: AWS defaults + env creds */
    int64_t max_bytes;        /* size cap (SS_ELIMIT) */
    int allow_http;           /* allow plain http:// sources and redirects to them */
    int allow_private;        /* allow loopback/private addresses (tests, on-prem) */
    int max_redirects;        /* -1: follow none */
    int connect_timeout_s;
    int low_speed_s;          /* abort (and retry) when < 1 KB/s for this long */
    int max_retries;          /* -1: no retry */
    int timeout_s;            /* whole download, retries included; 0: no limit */
} fetch_conf;

/* What identified the version downloaded: the last answer's ETag and
 * Last-Modified headers ("" when the server sent none) and its size. */
typedef struct fetch_result {
    char etag[256];
    char last_modified[64];
    int64_t bytes;
} fetch_result;

/* Download url to dest_path; res (may be NULL) gets what identified it. cancel (may be NULL) is polled; when it
 * becomes non-zero the download stops with SS_ECANCELLED. Errors:
 * SS_EINVAL (bad/unsupported URL, file://), SS_EDENIED (SSRF guard, http://
 * not allowed), SS_ENOTFOUND (404 / NoSuchKey / NoSuchBucket), SS_EAUTH
 * (401/403), SS_ELIMIT (over max_bytes), SS_ENET (network, retries spent),
 * SS_EIO (local disk). */
int fetch_source(const char *url, const char *dest_path, const fetch_conf *conf,
                 const atomic_int *cancel, fetch_result *res, ss_err *err);

/* Size of the object at url (HEAD; the same guard and retries); -1 in
 * *size when the server does not say. */
int fetch_head_size(const char *url, const fetch_conf *conf, int64_t *size, ss_err *err);

#endif
