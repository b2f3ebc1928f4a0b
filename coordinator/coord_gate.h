/* coord_gate.h — the coordinator's front door: what a client's bytes must
 * look like before evhttp parses them.
 *
 * Every accepted connection gets a socket bufferevent whose input passes
 * through the gate first (evhttp_set_bevcb + an evbuffer callback). The gate
 * holds a request until it is whole and releases it to evhttp only when
 *   - its header block is well formed: a header name is a token (so
 *     "Content-Length : 2", with a space before the colon, is refused), no
 *     line folding, at most one Content-Length, no Transfer-Encoding (411),
 *     at most 32 KiB;
 *   - a request with a body carries the right bearer token (401 before a
 *     byte of the body is kept) and a body of at most API_MAX_BODY, 1 MiB
 *     (413);
 *   - the whole request arrived within request_timeout_ms of its first
 *     byte (else the connection is closed: a client trickling a byte at a
 *     time cannot hold it open);
 *   - fewer than max_connections connections are open (else 503 at its
 *     first byte, and closed after a second if it sends none).
 * A refused request is answered by the router (gate_route) with a JSON error
 * and "Connection: close"; nothing after it on that connection is read.
 * Those two smuggling shapes reached evhttp before: it took the first of two
 * Content-Length values and read the rest of the body as a second request,
 * and ignored "Content-Length :" altogether.
 */
#ifndef SS_COORD_GATE_H
#define SS_COORD_GATE_H

#include <event2/http.h>

#include "coord.h"

#define GATE_MAX_HEAD (32 * 1024)

/* Put the gate in front of c->http (after evhttp_new). */
int gate_start(coord *c, ss_err *err);

/* For the router: when path is the gate's stand-in for a refused request,
 * answer it and return 1; else 0. */
int gate_route(struct evhttp_request *req, const char *path);

/* 1 when an Authorization header value carries the API token (constant
 * time over the token's length). */
int gate_token_ok(const coord *c, const char *authorization);

/* Which token an Authorization header value carries: the API token, the
 * read-only view_token (GET only), or neither. */
enum { GATE_TOKEN_NONE, GATE_TOKEN_VIEW, GATE_TOKEN_FULL };
int gate_token_kind(const coord *c, const char *authorization);

#endif
