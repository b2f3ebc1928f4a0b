/* coord_metrics.h — the coordinator's metrics (GET /metrics is
 * metrics_handle() in coord_http.h). What is exported and where each number
 * comes from is documented at the top of coord_metrics.c and in
 * docs/OPERATIONS.md. */
#ifndef SS_COORD_METRICS_H
#define SS_COORD_METRICS_H

#include <event2/http.h>
#include <jansson.h>

#include "coord.h"

struct evbuffer;

/* Called by the router for every request it parses (path may be NULL for a
 * malformed URI): counts it by route class and, once the reply is sent, by
 * status code and duration. Loop thread only. */
void metrics_request_begin(coord *c, struct evhttp_request *req, const char *path);

/* The bounded route class of a request ("jobs_submit", "job", "files", ...). */
const char *metrics_route_class(enum evhttp_cmd_type m, const char *path);

/* The fleet-wide histograms kept in {ss}:stats by the Lua scripts
 * (common/lua/_lib.lua HIST_BOUNDS must list the same bounds). */
#define METRICS_HIST_MAX 16
typedef struct metrics_hist_def {
    const char *name;         /* without the streamscale_ prefix */
    const char *help;
    int n;
    double bounds[METRICS_HIST_MAX];
} metrics_hist_def;
extern const metrics_hist_def metrics_hists[];   /* ends with name == NULL */

/* Write the part of /metrics that comes from Redis: stats is
 * coord_queue_stats()'s object, workers the registry entries (objects as in
 * GET /v1/workers, each with "heartbeat_age_seconds"), oldest the age in
 * seconds of the oldest queued job per priority (may be NULL). */
void metrics_write_store(struct evbuffer *b, json_t *stats, json_t *workers, json_t *oldest);

#endif
