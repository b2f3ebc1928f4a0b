/* avlog.h — route libav*'s own log lines into our logger, so a daemon's
 * output stays one JSON object per line with the job id on it.
 *
 * libav warnings that carry no action for an operator (an MP4 edit list
 * the demuxer handles, swscale's "deprecated pixel format used" on yuvj*
 * input, ...) are routine: logged at debug and counted per job (job.json
 * "libav_routine"). Every other warning, a real media problem, stays a
 * warning. */
#ifndef SS_AVLOG_H
#define SS_AVLOG_H

#include <stddef.h>

/* Install the callback; libav messages at or above AV_LOG_WARNING become
 * warn lines (routine ones debug), AV_LOG_ERROR and worse error lines
 * (debug level lets AV_LOG_INFO through as debug lines). */
void avlog_install(int debug);

/* Is msg one of the routine warnings? (pure; unit tested) */
int avlog_is_routine(const char *msg);

/* Count the routine warnings logged by threads whose log job id is job,
 * from begin to end; end returns the count and copies the first such
 * message into first (may be NULL). At most 64 jobs at once. */
void avlog_job_begin(const char *job);
long long avlog_job_end(const char *job, char *first, size_t firstlen);

#endif
