/* log.c — the process-wide logger (see log.h). One mutex around one write so
 * lines from the encode threads and the event loop never interleave. */
#include "log.h"

#include <pthread.h>
#include <stdarg.h>
#include <string.h>
#include <strings.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

static pthread_mutex_t log_lock = PTHREAD_MUTEX_INITIALIZER;
static FILE *log_out;
static ss_log_level log_min = SS_LOG_INFO;
static int log_json = 1;
static char log_prog[32] = "streamscale";
static __thread char log_job[80];

static const char *level_names[] = { "debug", "info", "warn", "error" };

void log_init(const char *prog, FILE *out, ss_log_level level, ss_log_format fmt)
{
    pthread_mutex_lock(&log_lock);
    if (prog)
        snprintf(log_prog, sizeof(log_prog), "%s", prog);
    log_out = out ? out : stderr;
    log_min = level;
    if (fmt == SS_LOG_AUTO)
        log_json = !isatty(fileno(log_out));
    else
        log_json = fmt == SS_LOG_JSON;
    pthread_mutex_unlock(&log_lock);
}

void log_set_level(ss_log_level level)
{
    pthread_mutex_lock(&log_lock);
    log_min = level;
    pthread_mutex_unlock(&log_lock);
}

int log_level_parse(const char *s, ss_log_level *out)
{
    for (int i = 0; i < 4; i++) {
        if (strcasecmp(s, level_names[i]) == 0) {
            *out = (ss_log_level)i;
            return 0;
        }
    }
    if (strcasecmp(s, "warning") == 0) {
        *out = SS_LOG_WARN;
        return 0;
    }
    return -1;
}

void log_set_job(const char *job)
{
    if (job)
        snprintf(log_job, sizeof(log_job), "%s", job);
    else
        log_job[0] = '\0';
}

/* Append s to buf as the inside of a JSON string. */
static size_t json_escape(char *buf, size_t cap, size_t n, const char *s)
{
    for (; *s && n + 7 < cap; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\') {
            buf[n++] = '\\';
            buf[n++] = (char)c;
        } else if (c == '\n') {
            buf[n++] = '\\';
            buf[n++] = 'n';
        } else if (c < 0x20) {
            n += (size_t)snprintf(buf + n, cap - n, "\\u%04x", c);
        } else {
            buf[n++] = (char)c;
        }
    }
    return n;
}

void ss_log(ss_log_level level, const char *job, const char *fmt, ...)
{
    if (level < log_min)
        return;
    char msg[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    size_t ml = strlen(msg);
    while (ml && (msg[ml - 1] == '\n' || msg[ml - 1] == '\r'))
        msg[--ml] = '\0';
    if (!job && log_job[0])
        job = log_job;

    struct timeval tv;
    gettimeofday(&tv, NULL);
    struct tm tm;
    gmtime_r(&tv.tv_sec, &tm);
    char ts[40];
    size_t tl = strftime(ts, sizeof(ts), "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(ts + tl, sizeof(ts) - tl, ".%03dZ", (int)(tv.tv_usec / 1000));

    char line[4096];
    size_t n = 0;
    if (log_json) {
        n += (size_t)snprintf(line, sizeof(line), "{\"ts\":\"%s\",\"level\":\"%s\",\"prog\":\"%s\"",
                              ts, level_names[level], log_prog);
        if (job && *job) {
            n += (size_t)snprintf(line + n, sizeof(line) - n, ",\"job\":\"");
            n = json_escape(line, sizeof(line), n, job);
            line[n++] = '"';
        }
        n += (size_t)snprintf(line + n, sizeof(line) - n, ",\"msg\":\"");
        n = json_escape(line, sizeof(line), n, msg);
        n += (size_t)snprintf(line + n, sizeof(line) - n, "\"}\n");
    } else {
        n = (size_t)snprintf(line, sizeof(line), "%s %-5s %s%s%s%s\n", ts + 11,
                             level_names[level], job && *job ? "[" : "",
                             job && *job ? job : "", job && *job ? "] " : "", msg);
    }
    if (n >= sizeof(line)) {
        n = sizeof(line) - 1;
        line[n - 1] = '\n';
    }
    pthread_mutex_lock(&log_lock);
    FILE *out = log_out ? log_out : stderr;
    fwrite(line, 1, n, out);
    fflush(out);
    pthread_mutex_unlock(&log_lock);
}

void log_redact_url(const char *url, char *out, size_t outlen)
{
    if (!outlen)
        return;
    const char *scheme = strstr(url, "://");
    const char *host = scheme ? scheme + 3 : url;
    const char *end = host + strcspn(host, "/?#");
    const char *at = memchr(host, '@', (size_t)(end - host));
    const char *rest = at ? at + 1 : host;
    size_t pre = (size_t)(host - url);
    size_t keep = strcspn(rest, "?#");
    int redacted = rest[keep] != '\0';
    snprintf(out, outlen, "%.*s%.*s%s", (int)pre, url, (int)keep, rest, redacted ? "?…" : "");
}
