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
} rconn;

void rconn_init(rconn *r, const redis_addr *addr, int timeout_ms);
void rconn_close(rconn *r);
/* Connect if not connected (honouring the backoff). */
int rconn_ensure(rconn *r, ss_err *err);

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
