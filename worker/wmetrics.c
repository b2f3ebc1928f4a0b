/* wmetrics.c — the worker's GET /metrics and /healthz on metrics_listen
 * (see wmetrics.h). Everything here is about this one worker process; the
 * coordinator's /metrics has the fleet view. Names start with
 * streamscale_worker_, and every series carries worker="<id>", so the
 * gauges the coordinator also exports per worker (slots, busy slots, CPU
 * load, ...) line up under `max by (worker)`. No label carries a job id.
 *
 * Sources: the loop thread's own state (slots, busy, CPU gate, Redis
 * connection, draining) read at scrape time on the loop thread; job
 * outcomes and histograms recorded when a job thread is reaped; upload
 * counters added by each job's thread when it closes its storage handle
 * (so failed and cancelled jobs' uploads count too).
 */
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>
#include <event2/http.h>

#include "log.h"
#include "promtext.h"
#include "util.h"
#include "wmetrics.h"

/* Same bounds as the coordinator's fleet histograms (coord_metrics.c). */
static const double dur_bounds[] = { 1, 5, 15, 30, 60, 120, 300, 600, 1200, 1800, 3600, 7200,
                                     14400, 43200 };
static const double speed_bounds[] = { 0.1, 0.25, 0.5, 1, 2, 4, 8, 16, 32, 64 };
static const double fps_bounds[] = { 5, 10, 25, 50, 100, 200, 400, 800, 1600, 3200 };

enum { OC_COMPLETED, OC_FAILED, OC_CANCELLED, OC_RELEASED, OC_LOST, OC_N };
static const char *const oc_names[OC_N] = { "completed", "failed", "cancelled", "released",
                                            "lease_lost" };

typedef struct wmetrics {
    pthread_mutex_t mu;
    struct evhttp *http;
    double start_s;                 /* wall clock */
    unsigned long long jobs[OC_N];
    unsigned long long up_bytes, up_objects, up_retries;
    prom_hist duration, speed, fps;
} wmetrics;

static void write_metrics(worker *w, wmetrics *m, struct evbuffer *b)
{
    char wid[160];
    ss_strlcpy(wid, w->id, sizeof(wid));
    prom_head(b, "streamscale_worker_info", "gauge", "Always 1; labels name this worker, its host and version.");
    prom_sample(b, "streamscale_worker_info", 1, "worker", wid, "host", w->host, "version", SS_VERSION,
                (char *)NULL);
    static const struct {
        const char *name, *help;
    } g[] = {
        { "streamscale_worker_slots", "Jobs this worker runs at once (slots)." },
        { "streamscale_worker_busy_slots", "Slots busy now (several items of one split job in a slot count once), and the short jobs prefetched beyond the slots (prefetch: can exceed slots)." },
        { "streamscale_worker_cpu_load_ratio", "The machine's CPU load over the last ~8 s (0-1), as the gate sees it." },
        { "streamscale_worker_cpu_threshold_ratio", "The gate claims work only under this load (cpu_threshold, 0-1)." },
        { "streamscale_worker_cores", "CPU cores of this machine." },
        { "streamscale_worker_redis_connected", "1 while the worker's command connection to Redis is up." },
        { "streamscale_worker_draining", "1 after SIGTERM: claims nothing, finishes or releases its jobs." },
    };
    double v[] = { (double)w->conf.slots, (double)worker_slots_busy(w), w->gate.load < 0 ? 0 : w->gate.load,
                   w->conf.cpu_threshold / 100.0,
                   (double)w->ncpus, w->cmd_connected ? 1 : 0, w->draining ? 1 : 0 };
    for (size_t i = 0; i < SS_ARRAY_LEN(g); i++) {
        prom_head(b, g[i].name, "gauge", g[i].help);
        prom_sample(b, g[i].name, v[i], "worker", wid, (char *)NULL);
    }
    pthread_mutex_lock(&m->mu);
    prom_head(b, "streamscale_worker_jobs_total", "counter",
              "Jobs this worker ran to an end, by outcome (released = handed back by a drain, or "
              "prefetched and not started; "
              "lease_lost = another worker owns it now).");
    for (int i = 0; i < OC_N; i++)
        prom_sample(b, "streamscale_worker_jobs_total", (double)m->jobs[i], "worker", wid, "outcome",
                    oc_names[i], (char *)NULL);
    prom_head(b, "streamscale_worker_upload_bytes_total", "counter",
              "Bytes this worker stored (all jobs, also failed and cancelled ones).");
    prom_sample(b, "streamscale_worker_upload_bytes_total", (double)m->up_bytes, "worker", wid, (char *)NULL);
    prom_head(b, "streamscale_worker_upload_objects_total", "counter", "Objects (files) this worker stored.");
    prom_sample(b, "streamscale_worker_upload_objects_total", (double)m->up_objects, "worker", wid, (char *)NULL);
    prom_head(b, "streamscale_worker_upload_retries_total", "counter",
              "Storage requests this worker retried (5xx, 429, timeouts, resets).");
    prom_sample(b, "streamscale_worker_upload_retries_total", (double)m->up_retries, "worker", wid, (char *)NULL);
    prom_head(b, "streamscale_worker_job_duration_seconds", "histogram",
              "Run time of the jobs this worker completed (its thread's start to end).");
    prom_hist_write(b, "streamscale_worker_job_duration_seconds", &m->duration, "worker", wid);
    prom_head(b, "streamscale_worker_encode_speed_ratio", "histogram",
              "Encode speed of completed jobs as a multiple of real time.");
    prom_hist_write(b, "streamscale_worker_encode_speed_ratio", &m->speed, "worker", wid);
    prom_head(b, "streamscale_worker_encode_frames_per_second", "histogram",
              "Encode speed of completed jobs in source frames per second.");
    prom_hist_write(b, "streamscale_worker_encode_frames_per_second", &m->fps, "worker", wid);
    pthread_mutex_unlock(&m->mu);
    prom_head(b, "streamscale_worker_uptime_seconds", "gauge", "Seconds since this worker started.");
    prom_sample(b, "streamscale_worker_uptime_seconds", (double)ss_now_ms() / 1000 - m->start_s,
                "worker", wid, (char *)NULL);
    prom_process_metrics(b, m->start_s);
}

static void on_request(struct evhttp_request *req, void *arg)
{
    worker *w = arg;
    wmetrics *m = w->metrics;
    const char *uri = evhttp_request_get_uri(req);
    size_t pl = strcspn(uri, "?#");
    enum evhttp_cmd_type cmd = evhttp_request_get_command(req);
    struct evkeyvalq *h = evhttp_request_get_output_headers(req);
    struct evbuffer *b = evbuffer_new();
    if (!b || !m) {
        evhttp_send_error(req, 500, NULL);
        if (b)
            evbuffer_free(b);
        return;
    }
    if (cmd != EVHTTP_REQ_GET && cmd != EVHTTP_REQ_HEAD) {
        evhttp_add_header(h, "Allow", "GET, HEAD");
        evhttp_add_header(h, "Content-Type", "text/plain; charset=utf-8");
        evbuffer_add_printf(b, "method not allowed\n");
        evhttp_send_reply(req, 405, "Method Not Allowed", b);
    } else if (pl == 8 && !strncmp(uri, "/metrics", 8)) {
        write_metrics(w, m, b);
        evhttp_add_header(h, "Content-Type", "text/plain; version=0.0.4; charset=utf-8");
        evhttp_add_header(h, "Cache-Control", "no-store");
        evhttp_send_reply(req, 200, "OK", b);
    } else if (pl == 8 && !strncmp(uri, "/healthz", 8)) {
        evhttp_add_header(h, "Content-Type", "application/json");
        evhttp_add_header(h, "Cache-Control", "no-store");
        evbuffer_add_printf(b, "{\"status\":\"%s\",\"redis\":\"%s\",\"busy\":%d,\"draining\":%s}\n",
                            w->cmd_connected ? "ok" : "unavailable", w->cmd_connected ? "ok" : "down",
                            worker_slots_busy(w), w->draining ? "true" : "false");
        evhttp_send_reply(req, w->cmd_connected ? 200 : 503, NULL, b);
    } else {
        evhttp_add_header(h, "Content-Type", "text/plain; charset=utf-8");
        evbuffer_add_printf(b, "not found: this is a worker's metrics port (GET /metrics, /healthz)\n");
        evhttp_send_reply(req, 404, "Not Found", b);
    }
    evbuffer_free(b);
}

int wmetrics_start(worker *w, ss_err *err)
{
    wmetrics *m = calloc(1, sizeof(*m));
    if (!m)
        return ss_fail(err, SS_ENOMEM, "out of memory");
    pthread_mutex_init(&m->mu, NULL);
    m->start_s = (double)ss_now_ms() / 1000;
    prom_hist_init(&m->duration, dur_bounds, (int)SS_ARRAY_LEN(dur_bounds));
    prom_hist_init(&m->speed, speed_bounds, (int)SS_ARRAY_LEN(speed_bounds));
    prom_hist_init(&m->fps, fps_bounds, (int)SS_ARRAY_LEN(fps_bounds));
    w->metrics = m;
    const char *listen = w->conf.metrics_listen;
    if (!listen || !*listen)
        return 0;
    char host[256];
    int port;
    if (cfg_split_hostport(listen, host, sizeof(host), &port, 9102) != 0)
        return ss_fail(err, SS_EINVAL, "config: key 'metrics_listen': '%s' is not host:port", listen);
    m->http = evhttp_new(w->base);
    if (!m->http)
        return ss_fail(err, SS_ENOMEM, "evhttp_new failed");
    evhttp_set_allowed_methods(m->http, EVHTTP_REQ_GET | EVHTTP_REQ_HEAD | EVHTTP_REQ_POST |
                                            EVHTTP_REQ_PUT | EVHTTP_REQ_DELETE);
    evhttp_set_max_body_size(m->http, 4096);
    evhttp_set_max_headers_size(m->http, 16 * 1024);
    evhttp_set_timeout(m->http, 10);
    evhttp_set_gencb(m->http, on_request, w);
    if (!evhttp_bind_socket_with_handle(m->http, host, (ev_uint16_t)port))
        return ss_fail(err, SS_EIO, "config: key 'metrics_listen': cannot listen on %s:%d "
                                    "(in use, or not a local address)", host, port);
    log_info(NULL, "metrics on http://%s:%d/metrics", host, port);
    return 0;
}

void wmetrics_stop(worker *w)
{
    wmetrics *m = w->metrics;
    if (!m)
        return;
    if (m->http)
        evhttp_free(m->http);
    w->metrics = NULL;
    pthread_mutex_destroy(&m->mu);
    free(m);
}

void wmetrics_uploaded(worker *w, const storage_stats *s)
{
    wmetrics *m = w->metrics;
    if (!m || !s)
        return;
    pthread_mutex_lock(&m->mu);
    m->up_bytes += s->bytes > 0 ? (unsigned long long)s->bytes : 0;
    m->up_objects += s->objects > 0 ? (unsigned long long)s->objects : 0;
    m->up_retries += s->retries > 0 ? (unsigned long long)s->retries : 0;
    pthread_mutex_unlock(&m->mu);
}

void wmetrics_job_ended(worker *w, wjob *j, wjob_outcome oc)
{
    wmetrics *m = w->metrics;
    if (!m)
        return;
    int k = oc == WJOB_COMPLETED ? OC_COMPLETED : oc == WJOB_CANCELLED ? OC_CANCELLED
          : oc == WJOB_RELEASE ? OC_RELEASED : oc == WJOB_LOST ? OC_LOST : OC_FAILED;
    double secs = j->started_mono_ms ? (double)(ss_mono_ms() - j->started_mono_ms) / 1000 : -1;
    double dur = 0, enc = 0, frames = 0;
    if (oc == WJOB_COMPLETED) {
        pthread_mutex_lock(&j->mu);
        json_t *out = json_object_get(j->result, "output");
        dur = json_number_value(json_object_get(out, "duration"));
        enc = json_number_value(json_object_get(json_object_get(out, "timings"), "encode"));
        size_t i;
        json_t *r;
        json_array_foreach(json_object_get(out, "renditions"), i, r) {
            double f = json_number_value(json_object_get(r, "frames"));
            if (f > frames)
                frames = f;
        }
        pthread_mutex_unlock(&j->mu);
    }
    pthread_mutex_lock(&m->mu);
    m->jobs[k]++;
    if (oc == WJOB_COMPLETED) {
        if (secs >= 0)
            prom_hist_observe(&m->duration, secs);
        if (enc > 0 && dur > 0)
            prom_hist_observe(&m->speed, dur / enc);
        if (enc > 0 && frames > 0)
            prom_hist_observe(&m->fps, frames / enc);
    }
    pthread_mutex_unlock(&m->mu);
}
