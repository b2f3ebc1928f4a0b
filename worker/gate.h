/* gate.h — the CPU gate: may this worker claim another job now?
 *
 * The machine's CPU load is measured from /proc/stat samples (the busy share
 * of all jiffies between two samples, averaged over a short window). The
 * gate opens when the load is under cpu_threshold AND a slot is free; it is
 * the only admission rule, so a bigger machine (lower load per job, more
 * slots) claims more of the work.
 */
#ifndef SS_GATE_H
#define SS_GATE_H

#include <stddef.h>
#include <stdint.h>

typedef struct cpu_sample {
    uint64_t busy;    /* user+nice+system+irq+softirq+steal jiffies */
    uint64_t total;   /* busy + idle + iowait */
    uint64_t own;     /* this process's user+system clock ticks (times()) */
} cpu_sample;

/* Parse the first "cpu " line of /proc/stat text. 0 ok, -1 malformed. */
int gate_parse_proc_stat(const char *text, cpu_sample *out);
/* Read /proc/stat (and this process's CPU time) now. */
int gate_sample(cpu_sample *out);
/* Busy share (0..1) between two samples; -1 if no time passed. */
double gate_load_between(const cpu_sample *a, const cpu_sample *b);

#define GATE_WINDOW 8   /* samples kept (one per second: the last ~8 s) */

typedef struct cpu_gate {
    cpu_sample ring[GATE_WINDOW + 1];
    int n;            /* samples in the ring */
    int head;         /* index of the newest */
    double load;      /* busy share over the window, 0..1; -1 until two samples
                         measured it (a worker just started on a busy machine
                         must not claim on a load of 0) */
    double own;       /* the part of it this process used, 0..load */
} cpu_gate;

void gate_init(cpu_gate *g);
/* Add a sample and recompute the load over the window. */
void gate_push(cpu_gate *g, const cpu_sample *s);

/* The decision, pure so it can be unit tested. threshold in 0..1, load
 * -1 when not measured yet (closed unless the threshold is 100%).
 * Returns 1 when a job may be claimed. */
int gate_open(double load, double threshold, int busy_slots, int slots);

/* The load to decide a claim on when busy_after of this worker's slots
 * will still be busy: with none, the machine's load without this
 * process's own share (that was the work that has just ended, or ends with
 * this claim's report); with some, the whole load. So a worker whose own
 * encode filled the machine takes the next item the moment it ends,
 * instead of idling until the window forgets its own work. */
double gate_load_after(const cpu_gate *g, int busy_after);

/* Why the gate is closed, for people ("load 92% >= threshold 85%",
 * "slots full (2/2)", "draining", "measuring load"), or "open". */
void gate_reason(double load, double threshold, int busy_slots, int slots, int draining,
                 char *out, size_t outlen);

/* How long (ms) to hold back a claim after a notification so the least
 * loaded worker tends to win a race: delay_per_load_ms * load, capped. */
int gate_claim_delay_ms(double load, int busy_slots, int slots, int delay_per_load_ms);

#endif
