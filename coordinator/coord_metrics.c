/* coord_metrics.c — GET /metrics in the Prometheus text format. */
#include <event2/buffer.h>
#include <event2/http.h>
#include <string.h>

#include "coord_http.h"

void metrics_handle(coord *c, struct evhttp_request *req)
{
    ss_err err = { 0 };
    json_t *st;
    if (coord_queue_stats(c, &st, &err) != 0) {
        http_reply_error(req, 503, "unavailable", "the job store (Redis) is unavailable", NULL);
        return;
    }
    struct evbuffer *b = evbuffer_new();
    const char *k;
    json_t *v;
    evbuffer_add_printf(b, "# HELP streamscale_queue_depth Jobs waiting in a priority queue.\n"
                           "# TYPE streamscale_queue_depth gauge\n");
    json_object_foreach(json_object_get(st, "depth"), k, v)
        evbuffer_add_printf(b, "streamscale_queue_depth{priority=\"%s\"} %lld\n", k,
                            (long long)json_integer_value(v));
    evbuffer_add_printf(b, "# HELP streamscale_jobs Jobs by state.\n# TYPE streamscale_jobs gauge\n");
    json_object_foreach(json_object_get(st, "states"), k, v)
        evbuffer_add_printf(b, "streamscale_jobs{state=\"%s\"} %lld\n", k,
                            (long long)json_integer_value(v));
    json_decref(st);
    evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Type",
                      "text/plain; version=0.0.4; charset=utf-8");
    evhttp_send_reply(req, 200, "OK", b);
    evbuffer_free(b);
}
