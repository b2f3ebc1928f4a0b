/* promtext.c — the Prometheus text exposition format (see promtext.h). */
#include "promtext.h"

#include <dirent.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include <event2/buffer.h>

void prom_head(struct evbuffer *b, const char *name, const char *type, const char *help)
{
    /* HELP text escapes backslash and newline only. */
    evbuffer_add_printf(b, "# HELP %s ", name);
    for (const char *p = help; *p; p++) {
        if (*p == '\\')
            evbuffer_add(b, "\\\\", 2);
        else if (*p == '\n')
            evbuffer_add(b, "\\n", 2);
        else
            evbuffer_add(b, p, 1);
    }
    evbuffer_add_printf(b, "\n# TYPE %s %s\n", name, type);
}

char *prom_fmt_value(double v, char *out, size_t n)
{
    if (isnan(v))
        snprintf(out, n, "NaN");
    else if (isinf(v))
        snprintf(out, n, "%s", v > 0 ? "+Inf" : "-Inf");
    else if (v == floor(v) && fabs(v) < 9007199254740992.0)
        snprintf(out, n, "%lld", (long long)v);
    else {
        /* the shortest form that reads back as the same double: 0.1, not
         * 0.10000000000000001 (le labels must look like the bounds) */
        for (int prec = 15; prec <= 17; prec++) {
            snprintf(out, n, "%.*g", prec, v);
            if (strtod(out, NULL) == v)
                break;
        }
    }
    return out;
}

void prom_escape_label(const char *v, char *out, size_t n)
{
    size_t o = 0;
    if (!n)
        return;
    for (; v && *v && o + 3 < n; v++) {
        if (*v == '\\' || *v == '"') {
            out[o++] = '\\';
            out[o++] = *v;
        } else if (*v == '\n') {
            out[o++] = '\\';
            out[o++] = 'n';
        } else {
            out[o++] = *v;
        }
    }
    out[o] = '\0';
}

static void add_labels(struct evbuffer *b, va_list ap)
{
    const char *k;
    int first = 1;
    while ((k = va_arg(ap, const char *))) {
        const char *v = va_arg(ap, const char *);
        char esc[512];
        prom_escape_label(v ? v : "", esc, sizeof(esc));
        evbuffer_add_printf(b, "%s%s=\"%s\"", first ? "{" : ",", k, esc);
        first = 0;
    }
    if (!first)
        evbuffer_add(b, "}", 1);
}

void prom_sample(struct evbuffer *b, const char *name, double v, ...)
{
    char val[64];
    va_list ap;
    evbuffer_add_printf(b, "%s", name);
    va_start(ap, v);
    add_labels(b, ap);
    va_end(ap);
    evbuffer_add_printf(b, " %s\n", prom_fmt_value(v, val, sizeof(val)));
}

void prom_hist_init(prom_hist *h, const double *bounds, int n)
{
    memset(h, 0, sizeof(*h));
    if (n > PROM_MAX_BUCKETS)
        n = PROM_MAX_BUCKETS;
    h->nbounds = n;
    memcpy(h->bounds, bounds, sizeof(double) * (size_t)n);
}

void prom_hist_observe(prom_hist *h, double v)
{
    if (isnan(v))
        return;
    int i = 0;
    while (i < h->nbounds && v > h->bounds[i])
        i++;
    h->counts[i]++;
    h->sum += v;
}

void prom_hist_write(struct evbuffer *b, const char *name, const prom_hist *h, const char *lk,
                     const char *lv)
{
    char bname[160], le[64];
    uint64_t cum = 0;
    snprintf(bname, sizeof(bname), "%s_bucket", name);
    for (int i = 0; i <= h->nbounds; i++) {
        cum += h->counts[i];
        prom_fmt_value(i < h->nbounds ? h->bounds[i] : INFINITY, le, sizeof(le));
        if (lk)
            prom_sample(b, bname, (double)cum, lk, lv, "le", le, (char *)NULL);
        else
            prom_sample(b, bname, (double)cum, "le", le, (char *)NULL);
    }
    char sname[160], cname[160];
    snprintf(sname, sizeof(sname), "%s_sum", name);
    snprintf(cname, sizeof(cname), "%s_count", name);
    if (lk) {
        prom_sample(b, sname, h->sum, lk, lv, (char *)NULL);
        prom_sample(b, cname, (double)cum, lk, lv, (char *)NULL);
    } else {
        prom_sample(b, sname, h->sum, (char *)NULL);
        prom_sample(b, cname, (double)cum, (char *)NULL);
    }
}

void prom_process_metrics(struct evbuffer *b, double start_s)
{
    struct rusage ru;
    if (getrusage(RUSAGE_SELF, &ru) == 0) {
        double cpu = (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
                     (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
        prom_head(b, "process_cpu_seconds_total", "counter", "User and system CPU time spent, in seconds.");
        prom_sample(b, "process_cpu_seconds_total", cpu, (char *)NULL);
    }
    FILE *f = fopen("/proc/self/statm", "r");
    if (f) {
        unsigned long long vsz = 0, rss = 0;
        if (fscanf(f, "%llu %llu", &vsz, &rss) == 2) {
            double page = (double)sysconf(_SC_PAGESIZE);
            prom_head(b, "process_virtual_memory_bytes", "gauge", "Virtual memory size in bytes.");
            prom_sample(b, "process_virtual_memory_bytes", (double)vsz * page, (char *)NULL);
            prom_head(b, "process_resident_memory_bytes", "gauge", "Resident memory size in bytes.");
            prom_sample(b, "process_resident_memory_bytes", (double)rss * page, (char *)NULL);
        }
        fclose(f);
    }
    DIR *d = opendir("/proc/self/fd");
    if (d) {
        long n = 0;
        struct dirent *de;
        while ((de = readdir(d)))
            if (de->d_name[0] != '.')
                n++;
        closedir(d);
        prom_head(b, "process_open_fds", "gauge", "Number of open file descriptors.");
        prom_sample(b, "process_open_fds", (double)(n - 1), (char *)NULL);   /* minus the DIR's own */
    }
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY) {
        prom_head(b, "process_max_fds", "gauge", "Maximum number of open file descriptors.");
        prom_sample(b, "process_max_fds", (double)rl.rlim_cur, (char *)NULL);
    }
    prom_head(b, "process_start_time_seconds", "gauge",
              "Start time of the process since the Unix epoch, in seconds.");
    prom_sample(b, "process_start_time_seconds", start_s, (char *)NULL);
}
