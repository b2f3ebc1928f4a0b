/* cli_upload.h — `streamscale submit ./local.mp4`: put a local file into
 * the configured bucket's sources prefix before submitting it. */
#ifndef SS_CLI_UPLOAD_H
#define SS_CLI_UPLOAD_H

#include <stddef.h>

#include "ss_err.h"

/* When STREAMSCALE_UPLOAD_TO (s3://bucket/prefix/ or file:///dir/) is set,
 * store path there under "<sha, its first 16 hex>/<file name>" (sha is the
 * SHA-256 of the content, 64 hex) and
 * write the object's URL to url. Returns 1 when uploaded, 0 when no upload
 * target is configured (the caller submits a file:// URL), -1 on error. */
int cli_upload_local(const char *path, const char *sha, char *url, size_t urllen, ss_err *err);

#endif
