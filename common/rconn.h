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

#define REDIS_MAX_SENTINELS 8

typedef struct redis_hostport {
    char host[256];
    int port;
} redis_hostport;

typedef struct redis_addr {
    char host[256];       /* the server; with Sentinel, the master last resolved */
    int port;
    int db;
    char username[128];   /* empty: AUTH with the password only (the default user) */
    char password[256];   /* empty: no AUTH */
    char master[128];     /* Sentinel's master name; empty: a plain redis:// address */
    int nsentinels;
    int next_sentinel;    /* the sentinel asked first next time (the last one that answered) */
    redis_hostport sentinels[REDIS_MAX_SENTINELS];
} redis_addr;

/* Parse redis://[[user]:password@]host[:port][/db] or
 * sentinel://[[user]:password@]h1:p1,h2:p2,.../<master-name>[/db]
 * (the credentials are for the data nodes; sentinels are asked without). */
int redis_addr_parse(const char *url, redis_addr *out, ss_err *err);

/* The address for logs, never the credentials: "host:port" or
 * "sentinel master NAME (h1:p1,h2:p2) at host:port". */
const char *redis_addr_describe(const redis_addr *a, char *buf, size_t len);

/* With Sentinel: ask the sentinels in turn (each within timeout_ms) for
 * the master's address and store it in a->host/port. A plain address
 * returns 0 at once. */
int redis_sentinel_resolve(redis_addr *a, int timeout_ms, ss_err *err);

/* An error reply that means "this server is not (or not yet) the master
 * you want": READONLY (a demoted master), LOADING, MASTERDOWN. The caller
 * reconnects, asking Sentinel again. */
int redis_error_wants_reconnect(const char *msg);

typedef struct rconn {
    redis_addr addr;         /* the owner's thread only (a master's address changes) */
    redis_addr conf;         /* as configured, never changed: for the probing thread */
    redisContext *c;
    int timeout_ms;          /* connect and command timeout */
    long long next_try_ms;   /* monotonic: no reconnect before this */
    int failures;            /* consecutive failures without a reply (backoff) */
    int replicas;            /* replicas connected to the server (ROLE), for WAIT */
    long long replicas_ms;   /* monotonic: when replicas was read; 0 = never */
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

/* Acknowledged writes: WAIT until this connection's writes are on
 * `replicas` replicas -- or on every connected replica when fewer are
 * connected (ROLE, read at most once a second): a failover can only
 * promote a replica, and one that connects later copies the data set
 * with the write in it. 0 when acknowledged (or replicas <= 0); -1 with
 * err (SS_EREDIS) when not within ms milliseconds, or Redis failed. */
int rconn_wait(rconn *r, int replicas, int ms, ss_err *err);

/* From a ROLE reply: the number of replicas a master lists, -1 when the
 * server is not a master (or the reply is not ROLE's). */
int redis_role_replicas(const redisReply *role);

#endif
