/* fuzz_http.c — raw bytes into the coordinator's request handling: each
 * input is written to a real loopback connection of a real evhttp server
 * set up by api_start (the request gate, evhttp's parser, the router, the
 * handlers, JSON replies), then the client half-closes and the loop runs
 * until the server has closed the connection. Redis points at a closed
 * port with the circuit breaker on, so /v1 handlers run up to their Redis
 * call and answer 503 at once.
 *
 * Checked: no crash, leak or sanitizer report; the server always ends the
 * connection (a hang is a bug: the loop gives each input 2 s and aborts
 * after that); what comes back starts with an HTTP status line.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <event2/event.h>
#include <event2/http.h>

#include "coord.h"
#include "log.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static coord C;
static int port;

typedef struct client {
    int fd;
    struct event *ev;
    char head[16];
    size_t got;
    int closed;
} client;

static void setup(void)
{
    static char listen[32], token[] = "fuzz-token-0123456789", web[] = SS_WEB_DIR;
    signal(SIGPIPE, SIG_IGN);
    FILE *null = fopen("/dev/null", "w");
    log_init("fuzz", null ? null : stderr, SS_LOG_ERROR, SS_LOG_TEXT);
    /* a free port: bind to 0, read it, let it go */
    int s = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    socklen_t al = sizeof(a);
    if (s < 0 || bind(s, (struct sockaddr *)&a, sizeof(a)) != 0 ||
        getsockname(s, (struct sockaddr *)&a, &al) != 0)
        abort();
    port = ntohs(a.sin_port);
    close(s);
    snprintf(listen, sizeof(listen), "127.0.0.1:%d", port);
    C.conf.listen = listen;
    C.conf.api_token = token;
    C.conf.web_dir = web;
    C.conf.max_attempts = 3;
    C.conf.max_connections = 64;
    C.conf.request_timeout_ms = 30000;
    redis_addr ra = { .host = "127.0.0.1", .port = 1 };
    rconn_init(&C.redis, &ra, 200);
    rconn_breaker_enable(&C.redis);
    C.base = event_base_new();
    ss_err err = { 0 };
    if (!C.base || api_start(&C, &err) != 0) {
        fprintf(stderr, "fuzz_http: %s\n", err.msg);
        abort();
    }
}

static void on_read(evutil_socket_t fd, short what, void *arg)
{
    client *cl = arg;
    (void)what;
    char buf[4096];
    ssize_t n = recv(fd, buf, sizeof(buf), 0);
    if (n > 0) {
        size_t k = (size_t)n;
        if (cl->got < sizeof(cl->head)) {
            size_t take = k < sizeof(cl->head) - cl->got ? k : sizeof(cl->head) - cl->got;
            memcpy(cl->head + cl->got, buf, take);
        }
        cl->got += k;
        return;
    }
    if (n < 0 && (errno == EAGAIN || errno == EINTR))
        return;
    cl->closed = 1;
    event_base_loopbreak(C.base);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!C.base)
        setup();
    client cl = { .fd = socket(AF_INET, SOCK_STREAM, 0) };
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port),
                             .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    if (cl.fd < 0 || connect(cl.fd, (struct sockaddr *)&a, sizeof(a)) != 0)
        abort();
    /* the whole input fits the socket buffers at -max_len 8192 */
    for (size_t off = 0; off < size;) {
        ssize_t w = send(cl.fd, data + off, size - off, 0);
        if (w <= 0)
            break;   /* the server may close early (a refused request) */
        off += (size_t)w;
    }
    shutdown(cl.fd, SHUT_WR);
    evutil_make_socket_nonblocking(cl.fd);
    cl.ev = event_new(C.base, cl.fd, EV_READ | EV_PERSIST, on_read, &cl);
    event_add(cl.ev, NULL);
    /* dispatch in slices (a loopexit left from an earlier input may end
     * one early) until the server closes, for at most 2 s */
    struct timeval limit = { 0, 200 * 1000 };
    long long t0;
    struct timeval now;
    evutil_gettimeofday(&now, NULL);
    t0 = now.tv_sec * 1000LL + now.tv_usec / 1000;
    while (!cl.closed) {
        event_base_loopexit(C.base, &limit);
        event_base_dispatch(C.base);
        evutil_gettimeofday(&now, NULL);
        if (!cl.closed && now.tv_sec * 1000LL + now.tv_usec / 1000 - t0 > 2000) {
            fprintf(stderr, "fuzz_http: the server did not end the connection within 2 s\n");
            abort();
        }
    }
    /* whatever came back is an HTTP answer (evhttp echoes the request's
     * version, "HTTP/0.1" included) */
    if (cl.got && memcmp(cl.head, "HTTP/", cl.got < 5 ? cl.got : 5) != 0)
        abort();
    event_free(cl.ev);
    close(cl.fd);
    return 0;
}
