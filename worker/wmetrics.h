/* wmetrics.h — the worker's own metrics: counters its job threads and loop
 * keep, served as Prometheus text on GET /metrics at metrics_listen (an
 * evhttp server on the worker's event loop; off when metrics_listen is
 * empty). Also GET /healthz: 200 while Redis is connected, else 503.
 *
 * The counters exist whether or not the server runs; every function is safe
 * with w->metrics == NULL (before wmetrics_start, after wmetrics_stop).
 */
#ifndef SS_WMETRICS_H
#define SS_WMETRICS_H

#include "storage.h"
#include "worker.h"

/* Loop thread, after the event base exists: allocate the counters and, when
 * metrics_listen is set, listen on it. Fails (err set) when the address is
 * bad or taken. */
int wmetrics_start(worker *w, ss_err *err);
/* Loop thread, before the event base is freed. */
void wmetrics_stop(worker *w);

/* Any thread: what one job's storage handle uploaded (all outcomes). */
void wmetrics_uploaded(worker *w, const storage_stats *s);
/* Loop thread: a job's thread has ended with this outcome; for completed
 * jobs its result (job.json) feeds the duration and speed histograms. */
void wmetrics_job_ended(worker *w, wjob *j, wjob_outcome oc);

#endif
