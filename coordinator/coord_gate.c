/* coord_gate.c — the front door in front of evhttp (coord_gate.h).
 *
 * Owns one gate_conn per accepted connection: the bytes of the request
 * being received (stage), its deadline timer, and its place in the count
 * against max_connections. A gate_conn lives from evhttp's bufferevent
 * callback to the connection's close callback.
 */
#include "coord_gate.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <openssl/crypto.h>
#include <openssl/rand.h>

#include "coord_http.h"
#include "log.h"
#include "util.h"

/* Why a request was refused; the index travels in the stand-in request's
 * path, so the table is the only place the answers are written. */
enum {
    R_MALFORMED, R_DUP_LENGTH, R_BAD_LENGTH, R_CHUNKED, R_HEAD_LARGE, R_AUTH, R_BODY_LARGE,
    R_BODY_METHOD, R_BUSY, R_COUNT
};
static const struct {
    int status;
    const char *code, *message;
} refusals[R_COUNT] = {
    [R_MALFORMED] = { 400, "invalid_request",
                      "malformed request header: a header name must be a token directly followed "
                      "by ':' (no space before the colon), and lines may not be folded" },
    [R_DUP_LENGTH] = { 400, "invalid_request", "more than one Content-Length header" },
    [R_BAD_LENGTH] = { 400, "invalid_request", "Content-Length must be a decimal number" },
    [R_CHUNKED] = { 411, "length_required",
                    "Transfer-Encoding is not supported: send the body with a Content-Length" },
    [R_HEAD_LARGE] = { 431, "too_large", "the request's header block is larger than 32 KiB" },
    [R_AUTH] = { 401, "unauthorized",
                 "a request with a body needs the bearer token (Authorization: Bearer <api_token>)" },
    [R_BODY_LARGE] = { 413, "too_large", "request body is larger than 1048576 bytes" },
    [R_BODY_METHOD] = { 400, "invalid_request", "this method takes no body" },
    [R_BUSY] = { 503, "unavailable",
                 "too many open connections (the coordinator's max_connections); retry later" },
};

enum { G_HEAD, G_WHOLE, G_DROP };

typedef struct gate_conn {
    struct gate *g;
    struct bufferevent *bev;
    struct evbuffer *stage;        /* received, not yet released to evhttp */
    struct event *timer;           /* first: bind; then the request's deadline */
    int state;                     /* G_HEAD: reading a header block; G_WHOLE: waiting for
                                      `need` bytes; G_DROP: refused, input discarded */
    size_t need;                   /* bytes of the whole request (head + body) */
    int bound;                     /* evhttp's close callback points at us */
    int over;                      /* over max_connections: refuse its first request */
    int busy;                      /* inside our own input callback */
    struct gate_conn *prev, *next;
} gate_conn;

typedef struct gate {
    coord *c;
    int open;                      /* connections counted against the cap */
    char prefix[48];               /* "/.gate-<nonce>/" */
    gate_conn *conns;
} gate;

static gate G;

static int token_is(const char *tok, const char *h)
{
    if (!h || !tok || !*tok || strncasecmp(h, "Bearer ", 7) != 0)
        return 0;
    h += 7;
    while (*h == ' ')
        h++;
    size_t a = strlen(h), b = strlen(tok);
    while (a > b && (h[a - 1] == ' ' || h[a - 1] == '\t'))
        a--;
    /* constant time over the expected token's length */
    return a == b && CRYPTO_memcmp(h, tok, b) == 0;
}

int gate_token_ok(const coord *c, const char *h)
{
    return token_is(c->conf.api_token, h);
}

int gate_token_kind(const coord *c, const char *h)
{
    if (token_is(c->conf.api_token, h))
        return GATE_TOKEN_FULL;
    if (token_is(c->conf.view_token, h))
        return GATE_TOKEN_VIEW;
    return GATE_TOKEN_NONE;
}

/* ---- the header block ------------------------------------------------------ */

static int is_tchar(unsigned char ch)
{
    return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
           (ch && strchr("!#$%&'*+-.^_`|~", ch));
}

/* Offset just past the blank line that ends the header block in p[0..n),
 * or 0 when it has not arrived yet. */
static size_t head_end(const char *p, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (p[i] != '\n')
            continue;
        if (i + 1 < n && p[i + 1] == '\n')
            return i + 2;
        if (i + 2 < n && p[i + 1] == '\r' && p[i + 2] == '\n')
            return i + 3;
    }
    return 0;
}

static int method_takes_body(const char *m, size_t n)
{
    static const char *const ok[] = { "POST", "PUT", "PATCH", "GET", "DELETE", "OPTIONS",
                                       "CONNECT", NULL };
    for (size_t i = 0; ok[i]; i++)
        if (strlen(ok[i]) == n && !memcmp(ok[i], m, n))
            return 1;
    return 0;
}

/* -1 when the header block p[0..n) may pass (its body length in *body),
 * else the refusal. */
static int check_head(const gate *g, const char *p, size_t n, size_t *body)
{
    const char *e = p + n;
    const char *nl = memchr(p, '\n', n);
    size_t mlen = 0;   /* the method: p is not NUL-terminated */
    while (p + mlen < nl && p[mlen] != ' ' && p[mlen] != '\r')
        mlen++;
    const char *q = nl + 1;
    int lengths = 0, chunked = 0, authed = 0;
    unsigned long long len = 0;
    while (q < e) {
        nl = memchr(q, '\n', (size_t)(e - q));
        size_t k = (size_t)(nl - q);
        if (k && q[k - 1] == '\r')
            k--;
        if (!k)
            break;
        if (q[0] == ' ' || q[0] == '\t')
            return R_MALFORMED;
        size_t nm = 0;
        while (nm < k && is_tchar((unsigned char)q[nm]))
            nm++;
        if (!nm || nm >= k || q[nm] != ':')
            return R_MALFORMED;
        const char *v = q + nm + 1, *ve = q + k;
        while (v < ve && (*v == ' ' || *v == '\t'))
            v++;
        while (ve > v && (ve[-1] == ' ' || ve[-1] == '\t'))
            ve--;
        if (nm == 14 && !strncasecmp(q, "Content-Length", 14)) {
            if (++lengths > 1)
                return R_DUP_LENGTH;
            if (v == ve || ve - v > 12)
                return R_BAD_LENGTH;
            for (const char *d = v; d < ve; d++) {
                if (*d < '0' || *d > '9')
                    return R_BAD_LENGTH;
                len = len * 10 + (unsigned)(*d - '0');
            }
        } else if (nm == 17 && !strncasecmp(q, "Transfer-Encoding", 17)) {
            chunked = 1;
        } else if (nm == 13 && !strncasecmp(q, "Authorization", 13) && ve - v < 1024) {
            char a[1024];
            memcpy(a, v, (size_t)(ve - v));
            a[ve - v] = '\0';
            authed |= gate_token_kind(g->c, a) != GATE_TOKEN_NONE;
        }
        q = nl + 1;
    }
    if (chunked)
        return R_CHUNKED;
    if (len && !method_takes_body(p, mlen))
        return R_BODY_METHOD;
    if (len && !authed)
        return R_AUTH;
    if (len > API_MAX_BODY)
        return R_BODY_LARGE;
    *body = (size_t)len;
    return -1;
}

/* ---- connections ----------------------------------------------------------- */

static void arm(gate_conn *gc)
{
    long long ms = gc->g->c->conf.request_timeout_ms;
    struct timeval tv = { (time_t)(ms / 1000), (suseconds_t)(ms % 1000) * 1000 };
    evtimer_add(gc->timer, &tv);
}

/* Hand evhttp a stand-in for a refused request, drop everything else. */
static void refuse(gate_conn *gc, struct evbuffer *in, int why)
{
    evbuffer_drain(gc->stage, evbuffer_get_length(gc->stage));
    gc->state = G_DROP;
    evtimer_del(gc->timer);
    evbuffer_add_printf(in, "GET %s%d HTTP/1.1\r\nConnection: close\r\n\r\n", gc->g->prefix, why);
}

/* Release whole, well-formed requests from the stage to evhttp's input. */
static void process(gate_conn *gc, struct evbuffer *in)
{
    for (;;) {
        size_t have = evbuffer_get_length(gc->stage);
        if (gc->state == G_DROP) {
            evbuffer_drain(gc->stage, have);
            return;
        }
        if (!have)
            return;
        if (gc->state == G_HEAD) {
            if (gc->over) {
                refuse(gc, in, R_BUSY);
                continue;
            }
            size_t scan = have < GATE_MAX_HEAD + 3 ? have : GATE_MAX_HEAD + 3;
            const char *p = (const char *)evbuffer_pullup(gc->stage, (ev_ssize_t)scan);
            size_t end = p ? head_end(p, scan) : 0;
            if (!end || end > GATE_MAX_HEAD) {
                if (end || have > GATE_MAX_HEAD)
                    refuse(gc, in, R_HEAD_LARGE);
                return;
            }
            size_t body = 0;
            int why = check_head(&G, p, end, &body);
            if (why >= 0) {
                refuse(gc, in, why);
                continue;
            }
            gc->need = end + body;
            gc->state = G_WHOLE;
        }
        if (evbuffer_get_length(gc->stage) < gc->need)
            return;
        evbuffer_remove_buffer(gc->stage, in, gc->need);
        gc->state = G_HEAD;
        evtimer_del(gc->timer);
        if (evbuffer_get_length(gc->stage))
            arm(gc);     /* the next request has begun */
    }
}

static void on_closed(struct evhttp_connection *evcon, void *arg);

static void bind_conn(gate_conn *gc)
{
    void *evcon = NULL;
    bufferevent_getcb(gc->bev, NULL, NULL, NULL, &evcon);
    if (evcon) {
        evhttp_connection_set_closecb(evcon, on_closed, gc);
        gc->bound = 1;
    }
}

static void on_input(struct evbuffer *in, const struct evbuffer_cb_info *info, void *arg)
{
    gate_conn *gc = arg;
    if (gc->busy || !info->n_added)
        return;
    gc->busy = 1;
    if (!gc->bound)
        bind_conn(gc);
    /* the bytes that just arrived are at the end of the input; what is
     * before them was released earlier and waits for evhttp */
    size_t total = evbuffer_get_length(in);
    size_t fresh = info->n_added < total ? info->n_added : total;
    struct evbuffer *tmp = evbuffer_new();
    if (tmp) {
        evbuffer_remove_buffer(in, tmp, total);
        evbuffer_remove_buffer(tmp, in, total - fresh);
        if (gc->state == G_HEAD && !evbuffer_get_length(gc->stage))
            arm(gc);
        if (gc->state != G_DROP)
            evbuffer_add_buffer(gc->stage, tmp);
        evbuffer_free(tmp);
        process(gc, in);
    }
    gc->busy = 0;
}

static void on_timer(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    gate_conn *gc = arg;
    if (!gc->bound) {
        bind_conn(gc);   /* the first turn of the loop after accept */
        if (gc->over) {
            /* over max_connections: answered 503 at its first byte, and
             * not kept waiting for one longer than a second */
            struct timeval tv = { 1, 0 };
            evtimer_add(gc->timer, &tv);
        }
        return;
    }
    /* The request did not arrive whole in time: close the connection the
     * way evhttp's own read timeout does (it frees gc via on_closed). */
    if (gc->over)
        log_debug(NULL, "http: closing a connection over max_connections that sent nothing");
    else
        log_warn(NULL, "http: a request was not received within request_timeout_ms (%lld ms); "
                       "closing the connection", gc->g->c->conf.request_timeout_ms);
    bufferevent_trigger_event(gc->bev, BEV_EVENT_TIMEOUT | BEV_EVENT_READING, 0);
}

static void conn_free(gate_conn *gc)
{
    if (gc->prev)
        gc->prev->next = gc->next;
    else
        gc->g->conns = gc->next;
    if (gc->next)
        gc->next->prev = gc->prev;
    if (!gc->over)
        gc->g->open--;
    evbuffer_free(gc->stage);
    event_free(gc->timer);
    free(gc);
}

static void on_closed(struct evhttp_connection *evcon, void *arg)
{
    (void)evcon;
    gate_conn *gc = arg;
    /* the bufferevent outlives this call by a moment: stop watching it */
    evbuffer_remove_cb(bufferevent_get_input(gc->bev), on_input, gc);
    conn_free(gc);
}

static struct bufferevent *make_bev(struct event_base *base, void *arg)
{
    gate *g = arg;
    struct bufferevent *bev = bufferevent_socket_new(base, -1, 0);
    gate_conn *gc = bev ? calloc(1, sizeof(*gc)) : NULL;
    if (gc) {
        gc->g = g;
        gc->bev = bev;
        gc->stage = evbuffer_new();
        gc->timer = evtimer_new(base, on_timer, gc);
    }
    if (!gc || !gc->stage || !gc->timer ||
        !evbuffer_add_cb(bufferevent_get_input(bev), on_input, gc)) {
        if (gc) {
            if (gc->stage)
                evbuffer_free(gc->stage);
            if (gc->timer)
                event_free(gc->timer);
            free(gc);
        }
        return bev;   /* evhttp serves it ungated rather than not at all */
    }
    gc->over = g->open >= g->c->conf.max_connections;
    if (gc->over) {
        static long long warned_ms;
        long long now = ss_mono_ms();
        if (!warned_ms || now - warned_ms >= 10000) {
            warned_ms = now;
            log_warn(NULL, "http: %d connections open (max_connections): refusing new ones with 503",
                     g->open);
        }
    } else {
        g->open++;
    }
    gc->next = g->conns;
    if (g->conns)
        g->conns->prev = gc;
    g->conns = gc;
    /* evhttp makes its connection object right after this returns: bind
     * its close callback on the loop's next turn (or at the first byte) */
    struct timeval now = { 0, 0 };
    evtimer_add(gc->timer, &now);
    return bev;
}

int gate_start(coord *c, ss_err *err)
{
    unsigned char nonce[12];
    if (RAND_bytes(nonce, sizeof(nonce)) != 1)
        return ss_fail(err, SS_EINTERNAL, "no random bytes for the request gate");
    memset(&G, 0, sizeof(G));
    G.c = c;
    size_t o = (size_t)snprintf(G.prefix, sizeof(G.prefix), "/.gate-");
    for (size_t i = 0; i < sizeof(nonce); i++)
        o += (size_t)snprintf(G.prefix + o, sizeof(G.prefix) - o, "%02x", nonce[i]);
    snprintf(G.prefix + o, sizeof(G.prefix) - o, "/");
    evhttp_set_bevcb(c->http, make_bev, &G);
    return 0;
}

int gate_route(struct evhttp_request *req, const char *path)
{
    size_t pl = strlen(G.prefix);
    if (!pl || strncmp(path, G.prefix, pl) != 0)
        return 0;
    int why = atoi(path + pl);
    if (why < 0 || why >= R_COUNT)
        why = R_MALFORMED;
    evhttp_add_header(evhttp_request_get_output_headers(req), "Connection", "close");
    http_reply_error(req, refusals[why].status, refusals[why].code, refusals[why].message, NULL);
    return 1;
}
