/* ss_err.h — the one error type every layer returns.
 *
 * A function that can fail takes an `ss_err *` (may be NULL), fills it once at
 * the place that knows what went wrong, and returns -1 (or NULL). The caller
 * that knows the context logs it once; nothing below main() prints or exits.
 * The code says what kind of failure it is, which decides whether the queue
 * retries the job: see ss_err_permanent().
 */
#ifndef SS_ERR_H
#define SS_ERR_H

#include <stddef.h>

typedef enum ss_code {
    SS_OK = 0,
    SS_EINVAL,      /* bad input from a user: spec, flag, config (permanent) */
    SS_EMEDIA,      /* source cannot be decoded / unsupported (permanent) */
    SS_ELIMIT,      /* source over a configured limit (permanent) */
    SS_EAUTH,       /* credentials refused by a remote (permanent until fixed) */
    SS_ENOTFOUND,   /* a remote object or local file is missing (permanent) */
    SS_EDENIED,     /* refused by policy, e.g. the SSRF guard (permanent) */
    SS_EIO,         /* local I/O failed, disk full (transient) */
    SS_ENET,        /* network / remote server failure (transient) */
    SS_EREDIS,      /* Redis unavailable or script error (transient) */
    SS_ENOMEM,      /* out of memory (transient) */
    SS_ECANCELLED,  /* the job was cancelled */
    SS_ELOST,       /* the worker lost its lease (fencing token refused) */
    SS_ECHANGED,    /* a split job's source is not the one it was planned from: the queue
                       plans the job again (docs/SPLIT.md "Retry") */
    SS_EINTERNAL    /* a bug: should not happen */
} ss_code;

typedef struct ss_err {
    ss_code code;
    char msg[512];
} ss_err;

/* Fill err (if not NULL) with code and a printf-style message; returns -1 so
 * callers can write `return ss_fail(err, SS_EIO, "...")`. Keeps the first
 * error: a later ss_fail on an already-set err does not overwrite it. */
int ss_fail(ss_err *err, ss_code code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Like ss_fail but always overwrites (used to add context to a lower error). */
int ss_failf_replace(ss_err *err, ss_code code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

void ss_err_clear(ss_err *err);

/* Short stable name of a code ("invalid", "media", ...), used in JSON. */
const char *ss_code_name(ss_code code);

/* True for failures that retrying cannot fix (bad spec, corrupt source...). */
int ss_err_permanent(ss_code code);

#endif
