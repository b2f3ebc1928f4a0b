/* promtext.h — writing the Prometheus text exposition format (0.0.4) into
 * an evbuffer: family headers, samples with escaped labels, fixed-bucket
 * histograms, and the standard process_* metrics from /proc/self.
 *
 * Both daemons use it: the coordinator's GET /metrics (coord_metrics.c) and
 * the worker's own /metrics on metrics_listen (worker/wmetrics.c). Nothing
 * here allocates beyond the evbuffer it is given; nothing is thread-safe by
 * itself (a histogram is guarded by whoever owns it).
 */
#ifndef SS_PROMTEXT_H
#define SS_PROMTEXT_H

#include <stddef.h>
#include <stdint.h>

struct evbuffer;

/* "# HELP name help\n# TYPE name type\n"; type is counter, gauge,
 * histogram or untyped. */
void prom_head(struct evbuffer *b, const char *name, const char *type, const char *help);

/* One sample line: name{k1="v1",k2="v2"} value. The label pairs are given
 * as a NULL-terminated list of key, value strings; values are escaped
 * (backslash, double quote, newline). Integral values print exactly. */
void prom_sample(struct evbuffer *b, const char *name, double v, ...)
    __attribute__((sentinel));

/* A value as the format writes it: integers exactly, +Inf, -Inf, NaN,
 * otherwise %.17g. Returns out. */
char *prom_fmt_value(double v, char *out, size_t n);

/* Append the escaped form of a label value to out (NUL-terminated, cut at n). */
void prom_escape_label(const char *v, char *out, size_t n);

/* A histogram with fixed upper bounds (ascending, +Inf implied). */
#define PROM_MAX_BUCKETS 24
typedef struct prom_hist {
    int nbounds;
    double bounds[PROM_MAX_BUCKETS];
    uint64_t counts[PROM_MAX_BUCKETS + 1];   /* per bucket, not cumulative; last = +Inf */
    double sum;
} prom_hist;

void prom_hist_init(prom_hist *h, const double *bounds, int n);
void prom_hist_observe(prom_hist *h, double v);
/* name_bucket{[lk="lv",]le="..."} cumulative counts, name_sum, name_count.
 * lk may be NULL for no extra label. The caller writes prom_head first. */
void prom_hist_write(struct evbuffer *b, const char *name, const prom_hist *h, const char *lk,
                     const char *lv);

/* process_cpu_seconds_total (getrusage), process_resident_memory_bytes and
 * process_virtual_memory_bytes (/proc/self/statm), process_open_fds
 * (/proc/self/fd), process_max_fds, and process_start_time_seconds =
 * start_s (the caller's recorded start, wall clock seconds). A source that
 * cannot be read is left out. */
void prom_process_metrics(struct evbuffer *b, double start_s);

#endif
