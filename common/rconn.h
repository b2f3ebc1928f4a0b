/* rconn.h — Redis connection settings and a blocking client for the
 * coordinator and the CLI-side tools.
 *
 * The coordinator serves each HTTP request with a few sub-millisecond Redis
 * calls on loopback/LAN, so it uses one blocking hiredis context per thread
 * with connect and command timeouts, reconnecting on the next call after a
 * failure (with backoff, never spinning). The worker uses hiredis' async
 * API instead (worker/wqueue.c).
 */
#ifndef SS_RCONN_H
#define SS_RCONN_H

#include <stdatomic.h>

#include <hiredis/hiredis.h>

#include "ss_err.h"

typedef struct redis_addr {
    char host[256];
    int port;
    int db;
    char password[256];   /* empty: no AUTH */
} redis_addr;

/* Parse redis://[:password@]host[:port][/db]. */
int redis_addr_parse(const char *url, redis_addr *out, ss_err *err);

typedef struct rconn {
    redis_addr addr;
    redisContext *c;
    int timeout_ms;          /* connect and command timeout */
    long long next_try_ms;   /* monotonic: no reconnect before this */
    int failures;            /* consecutive failures without a reply (backoff) */
    /* Circuit breaker (rconn_breaker_*), for a connection an event loop
     * uses: after a call that got no reply (a timeout, a lost or refused
     * connection) every call fails at once until another thread's probe
     * saw the server answer. Off unless rconn_breaker_enable. */
    int breaker;
    atomic_int open;         /* set by the owner's thread on a failure */
    atomic_int probe_ok;     /* set by the probing thread: the server answers */
} rconn;

void rconn_init(rconn *r, const redis_addr *addr, int timeout_ms);
void rconn_close(rconn *r);
/* Connect if not connected (honouring the backoff). */
int rconn_ensure(rconn *r, ss_err *err);

/* Turn the circuit breaker on (before first use). */
void rconn_breaker_enable(rconn *r);
/* 1 while calls fail fast (any thread may ask). */
int rconn_breaker_open(rconn *r);
/* From another thread: one blocking PING on a fresh connection to r's
 * server (with AUTH/SELECT), within r's timeout. When `always` is 0 it only
 * probes while the breaker is open; an answer closes the breaker (the
 * owner reconnects on its next call at once), a failure opens it. Returns
 * 0 when the server answered. */
int rconn_breaker_probe(rconn *r, int always);

/* Run a command from an argv; returns a reply the caller frees with
 * freeReplyObject, or NULL with err set (SS_EREDIS). An error reply from
 * Redis is returned as NULL with its text in err. */
redisReply *rconn_cmd(rconn *r, ss_err *err, int argc, const char **argv);
redisReply *rconn_cmdf(rconn *r, ss_err *err, const char *fmt, ...);

/* Run a compiled-in script by name: EVALSHA, then EVAL on NOSCRIPT.
 * keys/args are arrays of strings (the prefix is added as ARGV[1]). */
redisReply *rconn_script(rconn *r, ss_err *err, const char *name, int nkeys,
                         const char **keys, int nargs, const char **args);

#endif
