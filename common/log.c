/* log.c — the process-wide logger (see log.h). One mutex around one write so
 * lines from the encode threads and the event loop never interleave. */
#include "log.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <string.h>
#include <strings.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "util.h"

static pthread_mutex_t log_lock = PTHREAD_MUTEX_INITIALIZER;
static FILE *log_out;
/* read by every thread without the lock; SIGHUP changes it on the loop thread */
static _Atomic int log_min = SS_LOG_INFO;
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
    atomic_store_explicit(&log_min, (int)level, memory_order_relaxed);
    if (fmt == SS_LOG_AUTO)
        log_json = !isatty(fileno(log_out));
    else
        log_json = fmt == SS_LOG_JSON;
    pthread_mutex_unlock(&log_lock);
}

void log_set_level(ss_log_level level)
{
    atomic_store_explicit(&log_min, (int)level, memory_order_relaxed);
}

int log_setup(const char *prog, FILE *out, const char *level, const char *format,
              ss_log_level *level_out, ss_err *err)
{
    ss_log_level lvl;
    ss_log_format fmt;
    if (log_level_parse(level, &lvl) != 0)
        return ss_fail(err, SS_EINVAL, "key 'log_level': '%s' is not debug, info, warn or error", level);
    if (!strcmp(format, "auto"))
        fmt = SS_LOG_AUTO;
    else if (!strcmp(format, "json"))
        fmt = SS_LOG_JSON;
    else if (!strcmp(format, "text"))
        fmt = SS_LOG_TEXT;
    else
        return ss_fail(err, SS_EINVAL, "key 'log_format': '%s' is not auto, json or text", format);
    log_init(prog, out, lvl, fmt);
    if (level_out)
        *level_out = lvl;
    return 0;
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

/* Append s to buf as the inside of a JSON string. Bytes that are not UTF-8
 * (a request line, a remote error text) become U+FFFD, and a character is
 * never cut in two, so the line stays valid JSON for every log reader. */
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
        } else if (c < 0x80) {
            buf[n++] = (char)c;
        } else {
            size_t k = ss_utf8_len(s);
            if (!k) {
                n += (size_t)snprintf(buf + n, cap - n, "\\ufffd");
                continue;
            }
            if (n + k + 7 >= cap)
                break;
            memcpy(buf + n, s, k);
            n += k;
            s += k - 1;
        }
    }
    return n;
}

/* ---- redaction ------------------------------------------------------------
 * A last line of defence: callers already keep secrets out of what they log
 * (log_redact_url, jobspec_redacted), but a message can still carry one from
 * a library's error text or a URL in an error. Every message is scanned for
 *   - userinfo in URLs:           scheme://user:pass@host  -> scheme://[redacted]@host
 *   - credential query parameters (X-Amz-Signature, X-Amz-Credential,
 *     X-Amz-Security-Token, Signature, sig, token, key, secret, ...)
 *                                  ?X-Amz-Signature=abc    -> ?X-Amz-Signature=[redacted]
 *   - bearer tokens:              Bearer abc              -> Bearer [redacted]
 *   - secret settings as key = value or "key": "value" (api_token,
 *     webhook_secret, s3_secret_key, secret_key, password, secret, ...).
 */
static const char *const redact_params[] = {
    "x-amz-signature", "x-amz-credential", "x-amz-security-token", "x-goog-signature",
    "x-goog-credential", "signature", "sig", "token", "access_token", "id_token", "auth",
    "authorization", "key", "api_key", "apikey", "secret", "password", "pass", "pwd",
    "awsaccesskeyid", NULL
};
static const char *const redact_keys[] = {
    "api_token", "webhook_secret", "s3_secret_key", "secret_key", "secret_access_key",
    "aws_secret_access_key", "aws_session_token", "session_token", "requirepass", "masterauth",
    "password", "secret", NULL
};
#define REDACTED "[redacted]"

static int is_word(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
           c == '-';
}

/* Length of the name in list that s starts with (case-insensitive, a whole
 * word), or 0. */
static size_t starts_with_name(const char *s, const char *const *list)
{
    for (size_t i = 0; list[i]; i++) {
        size_t n = strlen(list[i]);
        if (strncasecmp(s, list[i], n) == 0 && !is_word(s[n]) && s[n] != '.')
            return n;
    }
    return 0;
}

/* Copy in to out (cap bytes, NUL-terminated) with secrets replaced. */
static void redact(const char *in, char *out, size_t cap)
{
    size_t o = 0;
/* c is evaluated once, also when out is full (PUT(*p++) must advance p) */
#define PUT(c) do { char c_ = (char)(c); if (o + 1 < cap) out[o++] = c_; } while (0)
#define PUTS(str) do { for (const char *q_ = (str); *q_; q_++) PUT(*q_); } while (0)
    const char *p = in;
    while (*p) {
        /* scheme://user:pass@host */
        if (p[0] == ':' && p[1] == '/' && p[2] == '/') {
            PUTS("://");
            p += 3;
            size_t span = strcspn(p, "/?#@ \t\"'<>");
            if (p[span] == '@') {
                PUTS(REDACTED "@");
                p += span + 1;
            }
            continue;
        }
        /* ?name=value / &name=value */
        if ((p[0] == '?' || p[0] == '&' || p[0] == ';') && p[1]) {
            size_t n = starts_with_name(p + 1, redact_params);
            if (n && p[1 + n] == '=') {
                for (size_t i = 0; i < n + 2; i++)
                    PUT(p[i]);
                PUTS(REDACTED);
                p += n + 2;
                p += strcspn(p, "&#; \t\"'<>),]}");
                continue;
            }
        }
        /* Bearer <token> */
        if ((p == in || !is_word(p[-1])) && strncasecmp(p, "bearer ", 7) == 0 && p[7] && p[7] != ' ') {
            for (size_t i = 0; i < 7; i++)
                PUT(p[i]);
            PUTS(REDACTED);
            p += 7;
            p += strcspn(p, " \t\"',;");
            continue;
        }
        /* key = value, key: value, "key": "value" */
        if ((p == in || (!is_word(p[-1]) && p[-1] != '.'))) {
            size_t n = starts_with_name(p, redact_keys);
            /* JSON style "key": needs the quotes; bare words need '=' so
             * prose such as "without webhook_secret: deliveries..." stays */
            int json = p > in && p[-1] == '"';
            if (n && (!json || p[n] == '"')) {
                const char *q = p + n + (json ? 1 : 0);
                while (*q == ' ')
                    q++;
                if (json ? *q == ':' : *q == '=') {
                    q++;
                    while (*q == ' ')
                        q++;
                    int quoted = *q == '"';
                    if (quoted)
                        q++;
                    for (const char *c = p; c < q; c++)
                        PUT(*c);
                    PUTS(REDACTED);
                    if (quoted) {
                        while (*q && *q != '"')
                            q += q[0] == '\\' && q[1] ? 2 : 1;
                    } else {
                        q += strcspn(q, " \t,;}'\"");
                    }
                    p = q;
                    continue;
                }
            }
        }
        PUT(*p);
        p++;
    }
    out[o < cap ? o : cap - 1] = '\0';
#undef PUT
#undef PUTS
}

const char *log_get_job(void)
{
    return log_job;
}

void ss_log(ss_log_level level, const char *job, const char *fmt, ...)
{
    if ((int)level < atomic_load_explicit(&log_min, memory_order_relaxed))
        return;
    char raw[2048], msg[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(raw, sizeof(raw), fmt, ap);
    va_end(ap);
    redact(raw, msg, sizeof(msg));
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
        /* escapes stop early enough that the closing "} always fits:
         * a long message is cut, the line stays valid JSON */
        if (job && *job) {
            n += (size_t)snprintf(line + n, sizeof(line) - n, ",\"job\":\"");
            n = json_escape(line, sizeof(line) / 2, n, job);
            line[n++] = '"';
        }
        n += (size_t)snprintf(line + n, sizeof(line) - n, ",\"msg\":\"");
        n = json_escape(line, sizeof(line) - 8, n, msg);
        n += (size_t)snprintf(line + n, sizeof(line) - n, "\"}\n");
    } else {
        /* one event, one line: control characters (a newline from a
         * remote error text) are shown escaped, never as a line break */
        char safe[2048];
        size_t k = 0;
        for (const char *p = msg; *p && k + 4 < sizeof(safe); p++) {
            unsigned char ch = (unsigned char)*p;
            if (ch == '\n') {
                safe[k++] = '\\';
                safe[k++] = 'n';
            } else if (ch < 0x20 || ch == 0x7f) {
                safe[k++] = '?';
            } else {
                safe[k++] = (char)ch;
            }
        }
        safe[k] = '\0';
        n = (size_t)snprintf(line, sizeof(line), "%s %-5s %s%s%s%s\n", ts + 11,
                             level_names[level], job && *job ? "[" : "",
                             job && *job ? job : "", job && *job ? "] " : "", safe);
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

int ss_url_redact(const char *url, char *out, size_t outlen)
{
    size_t o = 0;
    int changed = 0;
/* c is evaluated once, also when out is full (PUT(*p++) must advance p) */
#define PUT(c) do { char c_ = (char)(c); if (o + 1 < outlen) out[o++] = c_; } while (0)
#define PUTS(str) do { for (const char *q_ = (str); *q_; q_++) PUT(*q_); } while (0)
    if (!outlen)
        return 0;
    const char *p = url;
    const char *sep = strstr(url, "://");
    if (sep) {
        for (; p < sep + 3; p++)
            PUT(*p);
        size_t auth = strcspn(p, "/?#");
        const char *at = NULL;
        for (size_t i = 0; i < auth; i++)
            if (p[i] == '@')
                at = p + i;
        if (at) {
            PUTS("redacted@");
            p = at + 1;
            changed = 1;
        }
    }
    for (; *p && *p != '?' && *p != '#'; p++)
        PUT(*p);
    if (*p == '?') {
        PUT(*p++);
        while (*p && *p != '#') {
            size_t n = strcspn(p, "&;#");
            size_t name = starts_with_name(p, redact_params);
            if (name && name < n && p[name] == '=') {
                for (size_t i = 0; i <= name; i++)
                    PUT(p[i]);
                PUTS("redacted");
                changed = 1;
            } else {
                for (size_t i = 0; i < n; i++)
                    PUT(p[i]);
            }
            p += n;
            if (*p == '&' || *p == ';')
                PUT(*p++);
        }
    }
    PUTS(p);
    out[o] = '\0';
#undef PUT
#undef PUTS
    return changed;
}
