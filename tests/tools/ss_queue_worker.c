/* ss_queue_worker — the real worker daemon (same config, queue client,
 * leases, registry, drain) with a no-op executor instead of the media
 * pipeline, for queue tests and the queue benchmark.
 *
 * A job's metadata steers what the executor does:
 *   "sleep_ms": N         hold the job this long (polling cancel every 5 ms)
 *   "fail": "transient"   fail with a retryable error
 *   "fail": "permanent"   fail with a permanent error
 *   "speed": X            report this encode speed (x real time, and 25·X
 *                         fps) in its heartbeats, as the media pipeline does
 *   "playable": true      the result names an HLS master (urls.hls), so the
 *                         completion is also the job's job.playable
 * On success the result names the worker and the attempt, and the worker
 * appends "<job id> <worker id>\n" to $SS_QUEUE_LOG (if set) so tests can
 * count completions per worker independently of Redis.
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "util.h"
#include "worker.h"

static void noop_runner(wjob *j)
{
    json_t *meta = json_object_get(j->spec, "metadata");
    long long sleep_ms = json_integer_value(json_object_get(meta, "sleep_ms"));
    const char *fail = json_string_value(json_object_get(meta, "fail"));
    double speed = json_number_value(json_object_get(meta, "speed"));
    ss_err err = { 0 };
    int64_t end = ss_mono_ms() + sleep_ms;
    while (ss_mono_ms() < end) {
        if (atomic_load(&j->cancel)) {
            ss_fail(&err, SS_ECANCELLED, "cancelled");
            int c = atomic_load(&j->cancel);
            wjob_set_outcome(j, c == WJOB_CANCEL_LOST ? WJOB_LOST
                               : c == WJOB_CANCEL_DRAIN ? WJOB_RELEASE : WJOB_CANCELLED, &err, NULL);
            return;
        }
        pthread_mutex_lock(&j->mu);
        j->progress = 100.0 * (1.0 - (double)(end - ss_mono_ms()) / (double)sleep_ms);
        snprintf(j->stage, sizeof(j->stage), "encoding");
        if (speed > 0) {
            j->speed = speed;
            j->fps = 25 * speed;
        }
        pthread_mutex_unlock(&j->mu);
        usleep(5000);
    }
    if (fail) {
        int perm = !strcmp(fail, "permanent");
        ss_fail(&err, perm ? SS_EMEDIA : SS_ENET, "%s failure requested by the test",
                perm ? "permanent" : "transient");
        wjob_set_outcome(j, WJOB_FAILED, &err, NULL);
        return;
    }
    const char *logp = getenv("SS_QUEUE_LOG");
    if (logp && *logp) {
        char line[256];
        int n = snprintf(line, sizeof(line), "%s %s\n", j->id, j->w->id);
        int fd = open(logp, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
        if (fd >= 0) {
            if (write(fd, line, (size_t)n) != n)
                perror("ss_queue_worker: log");
            close(fd);
        }
    }
    json_t *urls = json_object();
    if (json_is_true(json_object_get(meta, "playable"))) {
        char u[160];
        snprintf(u, sizeof(u), "file:///noop/%s/master.m3u8", j->id);
        json_object_set_new(urls, "hls", json_string(u));
    }
    json_t *res = json_pack("{sssiso}", "worker", j->w->id, "attempt", j->attempt, "urls", urls);
    wjob_set_outcome(j, WJOB_COMPLETED, NULL, res);
}

int main(int argc, char **argv)
{
    return worker_main_with(argc, argv, noop_runner);
}
