/* jobspec.h — the job spec (proto/job.schema.json): validation, defaults,
 * the canonical form and the job id.
 *
 * jobspec_validate() checks a client's JSON against the schema by hand (no
 * unknown fields, right types, ranges, URL schemes) and returns the
 * canonical spec: a new object with every fixed default filled in and keys
 * in a fixed order, which is what Redis stores and the worker reads
 * (max_attempts only when the client set it: its default is the
 * coordinator's setting, kept out of the spec and so out of the id). The job id
 * is derived from it (or from idempotency_key), so a resubmit of the same
 * spec names the same job.
 */
#ifndef SS_JOBSPEC_H
#define SS_JOBSPEC_H

#include <jansson.h>
#include <stddef.h>

#include "ss_err.h"

#define JOBSPEC_MAX_BODY      (64 * 1024)   /* request body cap */
#define JOBSPEC_MAX_METADATA  (8 * 1024)    /* serialized metadata cap */
#define JOBSPEC_MAX_URL       2048
#define JOBSPEC_MAX_RUNGS     8
#define JOBSPEC_ID_LEN        20            /* hex characters */

/* The spec's defaults: the one place the coordinator (canonical spec), the
 * media pipeline (media_opts_default) and `streamscale-worker encode` take
 * them from. proto/job.schema.json states the same "default"s;
 * tests/unit/test_jobspec.c checks that they agree. */
#define JOBSPEC_DEFAULT_LADDER          "auto"
#define JOBSPEC_DEFAULT_RATE_CONTROL    "capped-crf"
#define JOBSPEC_DEFAULT_SEGMENT_SECONDS 4
#define JOBSPEC_DEFAULT_THUMB_INTERVAL  10
#define JOBSPEC_DEFAULT_PRIORITY        "normal"
#define JOBSPEC_DEFAULT_PRESET          "veryfast"
#define JOBSPEC_DEFAULT_CRF             23

typedef enum jobspec_priority {
    JOB_PRIO_LOW = 0,
    JOB_PRIO_NORMAL = 1,
    JOB_PRIO_HIGH = 2
} jobspec_priority;

/* Validate spec; on success return the canonical spec (caller decrefs) and
 * fill field (if not NULL) with nothing; on failure return NULL, set err
 * (SS_EINVAL) and copy the offending field's path ("ladder[1].height") into
 * field. */
json_t *jobspec_validate(const json_t *spec, char *field, size_t fieldlen, ss_err *err);

/* Parse a request body (with size and depth caps) and validate it. */
json_t *jobspec_parse(const char *body, size_t len, char *field, size_t fieldlen, ss_err *err);

/* The job id of a canonical spec: JOBSPEC_ID_LEN hex chars of SHA-256 over
 * the idempotency key if present, else over the canonical JSON. */
void jobspec_id(const json_t *canonical, char out[JOBSPEC_ID_LEN + 1]);

/* Is s a well-formed job id? */
int jobspec_id_valid(const char *s);

/* Priority of a canonical spec. */
jobspec_priority jobspec_priority_of(const json_t *canonical);
const char *jobspec_priority_name(jobspec_priority p);

/* A copy of the spec safe to show to API clients and to write into
 * job.json: webhook.secret replaced by "(set)", and the userinfo and signed
 * query parameters of source, destination and webhook.url redacted
 * (ss_url_redact). The stored spec keeps the real URLs: the worker needs
 * them. Caller decrefs. */
json_t *jobspec_redacted(const json_t *canonical);
/* A URL as it may leave the process (log.h: ss_url_redact). Caller frees. */
char *jobspec_redacted_url(const char *url);

#endif
