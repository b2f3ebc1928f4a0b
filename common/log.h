/* log.h — one line per event, JSON when the log stream is not a terminal,
 * readable text when it is. Every line about a job carries its id: pass it
 * explicitly, or set it for the calling thread with log_set_job().
 *
 * Never pass secrets (tokens, keys, webhook secrets, signed URLs) to the log;
 * log_redact_url() strips credentials and query strings from a URL first.
 */
#ifndef SS_LOG_H
#define SS_LOG_H

#include <stdio.h>
#include <stddef.h>

#include "ss_err.h"

typedef enum ss_log_level {
    SS_LOG_DEBUG = 0,
    SS_LOG_INFO,
    SS_LOG_WARN,
    SS_LOG_ERROR
} ss_log_level;

typedef enum ss_log_format {
    SS_LOG_AUTO = 0,  /* JSON unless the stream is a terminal */
    SS_LOG_JSON,
    SS_LOG_TEXT
} ss_log_format;

/* prog: short program name on every line; out: stdout for daemons, stderr
 * for the CLI. Safe to call again (e.g. on SIGHUP) to change the level. */
void log_init(const char *prog, FILE *out, ss_log_level level, ss_log_format fmt);
void log_set_level(ss_log_level level);
/* log_init from the config's text values (log_level, log_format); -1 with
 * err naming the bad key. *level_out (may be NULL) gets the level. */
int log_setup(const char *prog, FILE *out, const char *level, const char *format,
              ss_log_level *level_out, ss_err *err);
int log_level_parse(const char *s, ss_log_level *out);   /* 0 ok, -1 bad */

/* The job id lines from this thread carry when the call passes job == NULL.
 * The string is copied; NULL clears it. */
void log_set_job(const char *job);
/* The calling thread's job id ("" when none), to hand to threads it starts. */
const char *log_get_job(void);

void ss_log(ss_log_level level, const char *job, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#define log_debug(job, ...) ss_log(SS_LOG_DEBUG, (job), __VA_ARGS__)
#define log_info(job, ...)  ss_log(SS_LOG_INFO, (job), __VA_ARGS__)
#define log_warn(job, ...)  ss_log(SS_LOG_WARN, (job), __VA_ARGS__)
#define log_error(job, ...) ss_log(SS_LOG_ERROR, (job), __VA_ARGS__)

/* Copy url into out without userinfo, query or fragment:
 * "https://u:p@h/p?X-Amz-Signature=..." -> "https://h/p?…". */
void log_redact_url(const char *url, char *out, size_t outlen);

/* Copy url into out keeping its shape but not its secrets, for URLs that
 * leave the process in JSON (events, webhooks, the API, job.json): the
 * userinfo becomes "redacted@", and the value of every credential-like
 * query parameter (X-Amz-Signature, X-Amz-Credential, Signature, token,
 * key, ... — the list the log lines use) becomes "redacted":
 * "https://u:p@h/x?X-Amz-Signature=abc&v=1" -> "https://redacted@h/x?X-Amz-Signature=redacted&v=1".
 * Returns 1 when something was redacted. */
int ss_url_redact(const char *url, char *out, size_t outlen);

#endif
