/* cpuacct.h — the CPU seconds of one job, in a worker that runs several.
 *
 * A group is the thread that joined it and every thread started from a
 * member, transitively: our own (rung threads, per-title probe threads,
 * upload threads) and the ones libx264 and libav* start inside themselves
 * (x264's frame and lookahead threads, decoder frame threads, filter and
 * scaler thread pools). cpuacct.c interposes pthread_create to see those:
 * a thread started by a member joins its creator's group, and at its exit
 * adds its CPU time to the group. getrusage(RUSAGE_SELF) would count the
 * whole worker, every other job included.
 *
 * Not counted: work another thread does for the job without being started
 * from it (the loop thread's Redis traffic, libcurl's resolver threads
 * started outside a member, the kernel's I/O).
 */
#ifndef SS_CPUACCT_H
#define SS_CPUACCT_H

typedef struct cpuacct cpuacct;

/* A new group with no member; NULL when out of memory. The caller holds
 * one reference (cpuacct_unref). */
cpuacct *cpuacct_new(void);
void cpuacct_unref(cpuacct *a);

/* The calling thread joins a (leaving its previous group), and so does
 * every thread it starts from now on. a NULL: it leaves its group. A thread
 * leaves on its own when it exits. */
void cpuacct_join(cpuacct *a);

/* CPU seconds (user + system) of the calling thread's group so far: its
 * exited members' totals plus its live members' clocks. For a thread in no
 * group (streamscale-worker encode: one job per process), the process's. */
double cpuacct_seconds(void);

#endif
