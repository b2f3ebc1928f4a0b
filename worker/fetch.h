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

/* Random access to a remote source (https/http, s3) by Range requests, so
 * that a split job's chunk reads only its part of the title. Each read
 * past the block in hand is one GET of bytes=A-B (128 KiB after a seek,
 * doubling up to 4 MiB while the reads follow on), with the guard,
 * timeouts and retries of fetch_source, and If-Range (http) / If-Match
 * (s3) on the first answer's ETag: a source that changes while it is read
 * is an error, never a mix of two versions.
 *
 * fetch_reader_open reads the first block and learns the size; it fails
 * with SS_EINVAL when the server does not answer ranges (the caller then
 * downloads the whole source), SS_ELIMIT over max_bytes, else as
 * fetch_source. Free with fetch_reader_close. */
typedef struct fetch_reader fetch_reader;
fetch_reader *fetch_reader_open(const char *url, const fetch_conf *conf, const atomic_int *cancel,
                                ss_err *err);
/* Up to len bytes at off into buf: the count (0 at the end), -1 on a
 * failure (fetch_reader_error says which; later reads fail too). */
int fetch_reader_read(fetch_reader *r, int64_t off, uint8_t *buf, int len);
int64_t fetch_reader_size(const fetch_reader *r);
/* Body bytes received and requests made so far. */
void fetch_reader_stats(const fetch_reader *r, int64_t *bytes, int64_t *requests);
const ss_err *fetch_reader_error(const fetch_reader *r);
/* What identified the version read (as fetch_result's). */
void fetch_reader_identity(const fetch_reader *r, char *etag, size_t etag_len, char *last_modified,
                           size_t lm_len);
void fetch_reader_close(fetch_reader *r);

#endif
