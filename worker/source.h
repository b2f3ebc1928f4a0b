/* source.h — turning a job's source URL into a local file the pipeline can
 * open: file:// is read in place (after checks), https:// http:// and s3://
 * are downloaded into the job's scratch folder (fetch.h). */
#ifndef SS_SOURCE_H
#define SS_SOURCE_H

#include <stdatomic.h>
#include <jansson.h>
#include <stddef.h>

#include "ss_err.h"
#include "storage.h"

typedef struct source_conf {
    storage_conf storage;       /* endpoint and credentials for s3:// */
    int allow_private;          /* SSRF guard */
    int allow_http;
    long long max_bytes;        /* download cap, 0 = none */
    long long timeout_seconds;
    const char *file_roots;     /* ':'-separated folders file:// may use; NULL/"" = none */
    int no_hash;                /* source_resolve leaves info->sha256 empty (a split job's
                                   chunk: hashing a local title whole per chunk cost more
                                   than a chunk's pre-roll) */
} source_conf;

/* What the worker read, so job.json can say which content it encoded
 * (proto/openapi.yaml JobResult.source). */
typedef struct source_info {
    long long size;            /* bytes */
    long long mtime;           /* file:// only: modification time (unix s); -1 otherwise */
    char sha256[65];           /* of the bytes read */
    char etag[256];            /* http(s)/s3: the server's ETag, "" when none */
    char last_modified[64];    /* http(s)/s3: its Last-Modified, "" when none */
} source_info;

/* Resolve url to a local path in out (scratch_dir is the job's folder for
 * downloads) and fill info (may be NULL) with its identity: size, SHA-256
 * of the content (read once more from the local copy, cancellable), mtime
 * or ETag/Last-Modified. Errors: SS_EINVAL (bad URL), SS_ENOTFOUND,
 * SS_EDENIED (SSRF), SS_ELIMIT, SS_ENET, SS_EAUTH, SS_ECANCELLED. */
int source_resolve(const char *url, const char *scratch_dir, char *out, size_t outlen,
                   const source_conf *conf, const atomic_int *cancel, source_info *info,
                   ss_err *err);

/* Check info against a spec's source_identity (NULL: nothing to check).
 * Any key that differs fails with SS_EINVAL ("the source changed since it
 * was submitted"), naming the key and both values. */
int source_check_identity(const source_info *info, const json_t *identity, ss_err *err);

/* info as job.json's "source" object (caller decrefs). */
json_t *source_info_json(const char *url, const source_info *info);

/* A split job's chunk, and the plan's probe, read a remote (http(s), s3)
 * source by range requests instead of downloading it (fetch.h,
 * fetch_reader; docs/SPLIT.md "Sources"). NULL with
 * err untouched: read it the usual way (file://, or a server that does not
 * answer ranges: logged); NULL with err set: the source failed (as
 * source_resolve would). info gets the size and the ETag/Last-Modified, no
 * SHA-256 (nothing reads the whole file). */
struct fetch_reader *source_open_reader(const char *url, const source_conf *conf,
                                        const atomic_int *cancel, source_info *info, ss_err *err);

#endif
