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
/* 405 with Allow. */
void http_reply_not_allowed(struct evhttp_request *req, const char *allow);
/* Map a store error (ss_err) to a reply: 404, 503 or 500. */
void http_reply_store_err(struct evhttp_request *req, const ss_err *err);

/* coord_uploads.c: /v1/uploads[/<id>] (rest is "" or "/<id>") */
void uploads_handle(coord *c, struct evhttp_request *req, const char *rest, struct evkeyvalq *q);

/* Queue depths, state counts and counters (stats.lua) as JSON. */
int coord_queue_stats(coord *c, json_t **out, ss_err *err);

/* coord_console.c: the operator console's /v1 routes (p is the path after
 * "/v1/"): bulk retry/clear, worker drain/resume, queue history. Returns 1
 * when it answered the request. */
int console_route(coord *c, struct evhttp_request *req, enum evhttp_cmd_type m, const char *p,
                  struct evkeyvalq *q);
/* The drain flags ({ss}:drain) merged into /v1/workers' entries. */
int console_mark_drained(coord *c, json_t *workers, ss_err *err);

/* coord_metrics.c: GET /metrics */
void metrics_handle(coord *c, struct evhttp_request *req);
/* coord_web.c: the dashboard and /files/ */
void web_handle(coord *c, struct evhttp_request *req, const char *path);

#endif
