/* coord_http.h — helpers the coordinator's HTTP handlers share. */
#ifndef SS_COORD_HTTP_H
#define SS_COORD_HTTP_H

#include <event2/http.h>
#include <jansson.h>

#include "coord.h"

/* Send body (stolen) as application/json with status. */
void http_reply_json(struct evhttp_request *req, int status, json_t *body);
/* Send {"error":{"code","message","field"?}}. */
void http_reply_error(struct evhttp_request *req, int status, const char *code,
                      const char *message, const char *field);
/* Bearer token check (constant time). */
int http_authorized(coord *c, struct evhttp_request *req);

/* Queue depths, state counts and counters (stats.lua) as JSON. */
int coord_queue_stats(coord *c, json_t **out, ss_err *err);

/* coord_metrics.c: GET /metrics */
void metrics_handle(coord *c, struct evhttp_request *req);
/* coord_web.c: the dashboard and /files/ */
void web_handle(coord *c, struct evhttp_request *req, const char *path);

#endif
