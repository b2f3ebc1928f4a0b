/* avlog.c — see avlog.h. libav calls its callback with pieces of a line;
 * pieces are collected per thread until the newline. */
#include "avlog.h"

#include <libavutil/log.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "log.h"
#include "util.h"

static __thread char line[1024];
static __thread int print_prefix = 1;
static int show_info;

/* libav's warnings that ask nothing of an operator: the demuxer or scaler
 * copes, the output is right. They go to debug and are counted per job. */
static const char *const routine[] = {
    "edit list",                         /* mov: "multiple edit list entries, a/v desync might occur" */
    "Could not update timestamps for skipped samples",
    "Could not update timestamps for discarded samples",
    "deprecated pixel format used",      /* swscale on yuvj*: we set the range ourselves */
    "No accelerated colorspace conversion found",
    "not enough frames to estimate rate",
    "Estimating duration from bitrate",
    "Guessed Channel Layout",
    "Increasing reorder buffer",
};

int avlog_is_routine(const char *msg)
{
    for (size_t i = 0; i < SS_ARRAY_LEN(routine); i++)
        if (strstr(msg, routine[i]))
            return 1;
    return 0;
}

/* Jobs between avlog_job_begin and avlog_job_end, by the log's job id of
 * the thread that logs (the job thread and its rung threads set it). */
#define AVLOG_JOBS 64
static struct {
    char id[80];
    long long count;
    char first[256];
} jobs[AVLOG_JOBS];
static pthread_mutex_t jobs_mu = PTHREAD_MUTEX_INITIALIZER;

static void count_routine(const char *msg)
{
    const char *id = log_get_job();
    if (!id || !*id)
        return;
    pthread_mutex_lock(&jobs_mu);
    for (int i = 0; i < AVLOG_JOBS; i++) {
        if (!strcmp(jobs[i].id, id)) {
            if (!jobs[i].count++)
                ss_strlcpy(jobs[i].first, msg, sizeof(jobs[i].first));
            break;
        }
    }
    pthread_mutex_unlock(&jobs_mu);
}

void avlog_job_begin(const char *job)
{
    pthread_mutex_lock(&jobs_mu);
    for (int i = 0; i < AVLOG_JOBS; i++) {
        if (!jobs[i].id[0]) {
            ss_strlcpy(jobs[i].id, job, sizeof(jobs[i].id));
            jobs[i].count = 0;
            jobs[i].first[0] = '\0';
            break;
        }
    }
    pthread_mutex_unlock(&jobs_mu);
}

long long avlog_job_end(const char *job, char *first, size_t firstlen)
{
    long long n = 0;
    if (first && firstlen)
        first[0] = '\0';
    pthread_mutex_lock(&jobs_mu);
    for (int i = 0; i < AVLOG_JOBS; i++) {
        if (!strcmp(jobs[i].id, job)) {
            n = jobs[i].count;
            if (first)
                ss_strlcpy(first, jobs[i].first, firstlen);
            jobs[i].id[0] = '\0';
            break;
        }
    }
    pthread_mutex_unlock(&jobs_mu);
    return n;
}

static void cb(void *avcl, int level, const char *fmt, va_list vl)
{
    if (level > (show_info ? AV_LOG_INFO : AV_LOG_WARNING))
        return;
    size_t n = strlen(line);
    char piece[1024];
    av_log_format_line2(avcl, level, fmt, vl, piece, sizeof(piece), &print_prefix);
    snprintf(line + n, sizeof(line) - n, "%s", piece);
    n = strlen(line);
    if (n == 0 || (line[n - 1] != '\n' && n < sizeof(line) - 1))
        return;
    int lvl = level <= AV_LOG_ERROR ? SS_LOG_ERROR : level <= AV_LOG_WARNING ? SS_LOG_WARN : SS_LOG_DEBUG;
    if (lvl == SS_LOG_WARN && avlog_is_routine(line)) {
        if (line[n - 1] == '\n')
            line[n - 1] = '\0';
        count_routine(line);
        lvl = SS_LOG_DEBUG;
    }
    ss_log(lvl, NULL, "libav: %s", line);
    line[0] = '\0';
}

void avlog_install(int debug)
{
    show_info = debug;
    av_log_set_level(debug ? AV_LOG_INFO : AV_LOG_WARNING);
    av_log_set_callback(cb);
}
