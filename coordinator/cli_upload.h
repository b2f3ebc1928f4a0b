/* cli_upload.h — `streamscale submit ./local.mp4`: put a local file where
 * the workers can read it before submitting it: the configured bucket's
 * sources prefix (STREAMSCALE_UPLOAD_TO), or the coordinator's upload
 * folder (file:// storage). */
#ifndef SS_CLI_UPLOAD_H
#define SS_CLI_UPLOAD_H

#include <curl/curl.h>
#include <jansson.h>
#include <stdatomic.h>
#include <stddef.h>

#include "ss_err.h"

/* The CLI's curl callbacks. cli_body_cb (CURLOPT_WRITEFUNCTION) collects
 * an answer into a cli_body (NUL-terminated, at most 64 MiB; the caller
 * frees p); cli_cancel_cb (CURLOPT_XFERINFOFUNCTION, data: a const
 * atomic_int *) aborts the transfer once it is non-zero. */
typedef struct cli_body {
    char *p;
    size_t n;
} cli_body;
size_t cli_body_cb(char *d, size_t sz, size_t n, void *ud);
int cli_cancel_cb(void *ud, curl_off_t dt, curl_off_t dn, curl_off_t ut, curl_off_t un);

/* One API request on h (reset first): method, path under api, body of
 * len bytes (JSON, or octet-stream for PUT; NULL = none), the token as
 * Bearer. Returns the HTTP status, or 0 with err set (SS_ENET unreachable,
 * SS_ECANCELLED when cancel became non-zero); *out gets the JSON answer
 * or NULL. */
long cli_http_call(CURL *h, const char *api, const char *token, const char *method,
                   const char *path, const void *body, size_t len, const atomic_int *cancel,
                   json_t **out, ss_err *err);

/* When STREAMSCALE_UPLOAD_TO (s3://bucket/prefix/ or file:///dir/) is set,
 * store path there under "<sha, its first 16 hex>/<file name>" (sha is the
 * SHA-256 of the content, 64 hex) and
 * write the object's URL to url. Returns 1 when uploaded, 0 when no upload
 * target is configured (the caller submits a file:// URL), -1 on error. */
int cli_upload_local(const char *path, const char *sha, char *url, size_t urllen, ss_err *err);

/* Send path to the coordinator's upload folder (POST /v1/uploads, then PUT
 * chunks of the size it names), resuming an upload the coordinator already
 * has part of, sending nothing when it has the whole file. sha is the
 * file's SHA-256 (64 hex) and size its bytes; cancel (may be NULL) stops
 * it (SS_ECANCELLED). Writes the file:// URL to submit into url. Returns 1
 * when uploaded, 0 when the coordinator takes no uploads (upload_dir not
 * set), -1 on error. */
int cli_upload_coordinator(const char *api, const char *token, const char *path, const char *sha,
                           long long size, const atomic_int *cancel, char *url, size_t urllen,
                           ss_err *err);

#endif
