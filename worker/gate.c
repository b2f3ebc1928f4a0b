/* gate.c — CPU load from /proc/stat and the claim decision (gate.h). */
#include "gate.h"

#include <stdio.h>
#include <string.h>
#include <sys/times.h>

#include "util.h"

int gate_parse_proc_stat(const char *text, cpu_sample *out)
{
    const char *p = text;
    while (p && strncmp(p, "cpu ", 4) != 0) {
        p = strchr(p, '\n');
        if (p)
            p++;
    }
    if (!p)
        return -1;
    unsigned long long v[10] = { 0 };
    int n = sscanf(p + 4, "%llu %llu %llu %llu %llu %llu %llu %llu %llu %llu",
                   &v[0], &v[1], &v[2], &v[3], &v[4], &v[5], &v[6], &v[7], &v[8], &v[9]);
    if (n < 4)
        return -1;
    /* user nice system idle iowait irq softirq steal guest guest_nice;
     * guest time is already counted in user, so it is left out. */
    uint64_t idle = v[3] + v[4];
    uint64_t busy = v[0] + v[1] + v[2] + v[5] + v[6] + v[7];
    out->busy = busy;
    out->total = busy + idle;
    return 0;
}

int gate_sample(cpu_sample *out)
{
    char buf[4096];
    FILE *f = fopen("/proc/stat", "re");
    if (!f)
        return -1;
    size_t n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[n] = '\0';
    struct tms t;
    if (times(&t) == (clock_t)-1)
        return -1;
    if (gate_parse_proc_stat(buf, out))
        return -1;
    /* times() counts in sysconf(_SC_CLK_TCK) ticks, /proc/stat in USER_HZ:
     * both are 100 on Linux */
    out->own = (uint64_t)t.tms_utime + (uint64_t)t.tms_stime;
    return 0;
}

double gate_load_between(const cpu_sample *a, const cpu_sample *b)
{
    if (b->total <= a->total || b->busy < a->busy)
        return -1;
    double l = (double)(b->busy - a->busy) / (double)(b->total - a->total);
    return l < 0 ? 0 : l > 1 ? 1 : l;
}

void gate_init(cpu_gate *g)
{
    memset(g, 0, sizeof(*g));
    g->head = -1;
    g->load = -1;
}

void gate_push(cpu_gate *g, const cpu_sample *s)
{
    const int cap = GATE_WINDOW + 1;
    g->head = (g->head + 1) % cap;
    g->ring[g->head] = *s;
    if (g->n < cap)
        g->n++;
    if (g->n >= 2) {
        int oldest = (g->head - g->n + 1 + cap) % cap;
        const cpu_sample *a = &g->ring[oldest], *b = &g->ring[g->head];
        double l = gate_load_between(a, b);
        if (l >= 0) {
            g->load = l;
            double own = b->own >= a->own ? (double)(b->own - a->own) / (double)(b->total - a->total)
                                          : 0;
            g->own = own < 0 ? 0 : own > l ? l : own;
        }
    }
}

double gate_load_after(const cpu_gate *g, int busy_after)
{
    if (g->load < 0 || busy_after > 0)
        return g->load;
    return g->load - g->own < 0 ? 0 : g->load - g->own;
}

int gate_open(double load, double threshold, int busy_slots, int slots)
{
    if (busy_slots >= slots)
        return 0;
    /* threshold 100%: only the slots decide */
    if (threshold >= 1.0)
        return 1;
    /* The worker's own running encodes push the load up; with a free slot
     * and the machine under the threshold, take more. */
    return load >= 0 && load < threshold;
}

void gate_reason(double load, double threshold, int busy_slots, int slots, int draining,
                 char *out, size_t outlen)
{
    if (draining)
        snprintf(out, outlen, "draining");
    else if (busy_slots >= slots)
        snprintf(out, outlen, "slots full (%d/%d)", busy_slots, slots);
    else if (gate_open(load, threshold, busy_slots, slots))
        snprintf(out, outlen, "open");
    else if (load < 0)
        snprintf(out, outlen, "measuring load");
    else
        snprintf(out, outlen, "load %.0f%% >= threshold %.0f%%", load * 100, threshold * 100);
}

int gate_claim_delay_ms(double load, int busy_slots, int slots, int delay_per_load_ms)
{
    if (delay_per_load_ms <= 0)
        return 0;
    double occupied = slots > 0 ? (double)busy_slots / slots : 1;
    double d = delay_per_load_ms * (load > occupied ? load : occupied);
    if (d < 0)
        d = 0;
    if (d > delay_per_load_ms)
        d = delay_per_load_ms;
    return (int)d;
}
