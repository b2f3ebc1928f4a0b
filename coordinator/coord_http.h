/* coord_http.h — helpers the coordinator's HTTP handlers share. */
#ifndef SS_COORD_HTTP_H
#define SS_COORD_HTTP_H

#include <event2/http.h>
#include <jansson.h>

#include "coord.h"

/* The largest request body evhttp reads (a job spec has its own 64 KiB
 * cap; an upload chunk is at most this). */
#define API_MAX_BODY (1 << 20)

/* Send body (stolen) as application/json with status. */
void http_reply_json(struct evhttp_request *req, int status, json_t *body);
/* Send {"error":{"code","message","field"?}}. */
void http_reply_error(struct evhttp_request *req, int status, const char *code,
                      const char *message, const char *field);
/* Bearer token check (constant time). */
int http_authorized(coord *c, struct evhttp_request *req);

/* coord_uploads.c: /v1/uploads[/<id>] (rest is "" or "/<id>") */
void uploads_handle(coord *c, struct evhttp_request *req, const char *rest, struct evkeyvalq *q);

/* Queue depths, state counts and counters (stats.lua) as JSON. */
int coord_queue_stats(coord *c, json_t **out, ss_err *err);

/* coord_metrics.c: GET /metrics */
void metrics_handle(coord *c, struct evhttp_request *req);
/* coord_web.c: the dashboard and /files/ */
void web_handle(coord *c, struct evhttp_request *req, const char *path);

#endif
