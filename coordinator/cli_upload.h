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

/* One API request on h (reset first, then set up by http_client.h with
 * a 5 s connect and a 60 s overall timeout): method, path under api, body
 * of len bytes (JSON, or octet-stream for PUT; NULL = none), the token as
 * Bearer; the answer is read up to 64 MiB. Returns the HTTP status, or 0
 * with err set (SS_ENET unreachable, SS_ECANCELLED when cancel became
 * non-zero); *out gets the JSON answer or NULL. */
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
