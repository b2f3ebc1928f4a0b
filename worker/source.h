/* source.h — turning a job's source URL into a local file the pipeline can
 * open: file:// is read in place (after checks), https:// http:// and s3://
 * are downloaded into the job's scratch folder (common/fetch.h). */
#ifndef SS_SOURCE_H
#define SS_SOURCE_H

#include <stdatomic.h>
#include <stddef.h>

#include "ss_err.h"
#include "storage.h"

typedef struct source_conf {
    storage_conf storage;       /* endpoint and credentials for s3:// */
    int allow_private;          /* SSRF guard */
    int allow_http;
    long long max_bytes;        /* download cap, 0 = none */
    long long timeout_seconds;
    const char *file_roots;     /* ':'-separated folders file:// may use; NULL/"" = any */
} source_conf;

/* Resolve url to a local path in out (scratch_dir is the job's folder for
 * downloads). Errors: SS_EINVAL (bad URL), SS_ENOTFOUND, SS_EDENIED (SSRF),
 * SS_ELIMIT, SS_ENET, SS_EAUTH, SS_ECANCELLED. */
int source_resolve(const char *url, const char *scratch_dir, char *out, size_t outlen,
                   const source_conf *conf, const atomic_int *cancel, ss_err *err);

/* 0 when path (resolved through symlinks when it exists) lies inside one
 * of the ':'-separated roots (or roots is empty), else -1 with SS_EDENIED. */
int source_path_allowed(const char *path, const char *roots, const char *what, ss_err *err);

/* Decode %XX escapes of a file:// URL's path into out. */
int source_file_path(const char *url, char *out, size_t outlen, ss_err *err);

#endif
