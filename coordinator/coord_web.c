/* coord_web.c — the dashboard (web/) and read-only output files (/files/).
 * Filled in by the operations work; until then it answers 404 in JSON. */
#include "coord_http.h"

void web_handle(coord *c, struct evhttp_request *req, const char *path)
{
    (void)c;
    (void)path;
    http_reply_error(req, 404, "not_found", "no such resource", NULL);
}
