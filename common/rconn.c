/* rconn.c — blocking Redis client with timeouts and reconnect (rconn.h). */
#include "rconn.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "rkeys.h"
#include "rscripts.h"
#include "util.h"

int redis_addr_parse(const char *url, redis_addr *out, ss_err *err)
{
    memset(out, 0, sizeof(*out));
    out->port = 6379;
    const char *p = url;
    if (ss_str_has_prefix(p, "redis://"))
        p += 8;
    else if (strstr(p, "://"))
        return ss_fail(err, SS_EINVAL, "redis URL '%s' must start with redis://", url);
    /* userinfo ends at the LAST '@' of the authority: a password may hold '@' */
    const char *auth_end = p + strcspn(p, "/");
    const char *at = NULL;
    for (const char *q = p; q < auth_end; q++)
        if (*q == '@')
            at = q;
    if (at) {
        const char *colon = memchr(p, ':', (size_t)(at - p));
        const char *pw = colon ? colon + 1 : p;
        size_t n = (size_t)(at - pw);
        if (n >= sizeof(out->password))
            return ss_fail(err, SS_EINVAL, "redis password too long");
        memcpy(out->password, pw, n);
        p = at + 1;
    }
    size_t hl = strcspn(p, ":/");
    if (hl == 0)
        return ss_fail(err, SS_EINVAL, "redis URL '%s' has no host", url);
    if (hl >= sizeof(out->host))
        return ss_fail(err, SS_EINVAL, "redis host too long");
    memcpy(out->host, p, hl);
    p += hl;
    if (*p == ':') {
        char *end;
        long port = strtol(p + 1, &end, 10);
        if (end == p + 1 || port <= 0 || port > 65535 || (*end && *end != '/'))
            return ss_fail(err, SS_EINVAL, "redis URL '%s': bad port", url);
        out->port = (int)port;
        p = end;
    }
    if (*p == '/' && p[1]) {
        char *end;
        long db = strtol(p + 1, &end, 10);
        if (*end || db < 0 || db > 1000)
            return ss_fail(err, SS_EINVAL, "redis URL '%s': bad database number", url);
        out->db = (int)db;
    }
    return 0;
}

void rconn_init(rconn *r, const redis_addr *addr, int timeout_ms)
{
    memset(r, 0, sizeof(*r));
    r->addr = *addr;
    r->timeout_ms = timeout_ms > 0 ? timeout_ms : 2000;
}

void rconn_close(rconn *r)
{
    if (r->c)
        redisFree(r->c);
    r->c = NULL;
}

static void drop(rconn *r)
{
    rconn_close(r);
    r->failures++;
    r->next_try_ms = ss_mono_ms() + ss_backoff_ms(r->failures, 100, 5000, ss_random_unit());
    if (r->breaker)
        atomic_store(&r->open, 1);
}

void rconn_breaker_enable(rconn *r)
{
    r->breaker = 1;
}

int rconn_breaker_open(rconn *r)
{
    return r->breaker && atomic_load(&r->open);
}

/* AUTH and SELECT on a fresh context; 0 when both were accepted. */
static int handshake(const redis_addr *a, redisContext *c, ss_err *err)
{
    if (a->password[0]) {
        redisReply *rep = redisCommand(c, "AUTH %s", a->password);
        int bad = !rep || rep->type == REDIS_REPLY_ERROR;
        if (rep)
            freeReplyObject(rep);
        if (bad)
            return ss_fail(err, SS_EREDIS, "redis AUTH failed");
    }
    if (a->db) {
        redisReply *rep = redisCommand(c, "SELECT %d", a->db);
        int bad = !rep || rep->type == REDIS_REPLY_ERROR;
        if (rep)
            freeReplyObject(rep);
        if (bad)
            return ss_fail(err, SS_EREDIS, "redis SELECT %d failed", a->db);
    }
    return 0;
}

int rconn_breaker_probe(rconn *r, int always)
{
    /* only an answer to a probe that began while the breaker was open may
     * close it: one that began before a hang says nothing about now */
    int was_open = atomic_load(&r->open);
    if (!always && !was_open)
        return 0;
    struct timeval tv = { r->timeout_ms / 1000, (r->timeout_ms % 1000) * 1000 };
    redisContext *c = redisConnectWithTimeout(r->addr.host, r->addr.port, tv);
    int ok = 0;
    if (c && !c->err) {
        redisSetTimeout(c, tv);
        ss_err e = { 0 };
        if (handshake(&r->addr, c, &e) == 0) {
            redisReply *rep = redisCommand(c, "PING");
            ok = rep && rep->type != REDIS_REPLY_ERROR;
            if (rep)
                freeReplyObject(rep);
        }
    }
    if (c)
        redisFree(c);
    if (!ok)
        atomic_store(&r->open, 1);
    else if (was_open)
        atomic_store(&r->probe_ok, 1);
    return ok ? 0 : -1;
}

int rconn_ensure(rconn *r, ss_err *err)
{
    if (r->breaker && atomic_load(&r->open)) {
        if (!atomic_exchange(&r->probe_ok, 0))
            return ss_fail(err, SS_EREDIS, "redis %s:%d unavailable (it did not answer; "
                           "waiting for it to answer again)", r->addr.host, r->addr.port);
        /* the probe saw it answer: reconnect now, not after the backoff */
        atomic_store(&r->open, 0);
        rconn_close(r);
        r->failures = 0;
        r->next_try_ms = 0;
    }
    if (r->c)
        return 0;
    if (ss_mono_ms() < r->next_try_ms)
        return ss_fail(err, SS_EREDIS, "redis %s:%d unavailable (retrying)", r->addr.host, r->addr.port);
    struct timeval tv = { r->timeout_ms / 1000, (r->timeout_ms % 1000) * 1000 };
    redisContext *c = redisConnectWithTimeout(r->addr.host, r->addr.port, tv);
    if (!c || c->err) {
        ss_fail(err, SS_EREDIS, "cannot connect to redis %s:%d: %s", r->addr.host, r->addr.port,
                c ? c->errstr : "out of memory");
        if (c)
            redisFree(c);
        r->c = NULL;
        drop(r);
        return -1;
    }
    redisSetTimeout(c, tv);
    redisEnableKeepAlive(c);
    r->c = c;
    if (handshake(&r->addr, c, err) != 0) {
        drop(r);
        return -1;
    }
    return 0;
}

static redisReply *check(rconn *r, redisReply *rep, ss_err *err)
{
    if (!rep) {
        ss_fail(err, SS_EREDIS, "redis %s:%d: %s", r->addr.host, r->addr.port,
                r->c && r->c->errstr[0] ? r->c->errstr : "connection lost");
        drop(r);
        return NULL;
    }
    /* A reply, not a TCP accept, ends the backoff: a server that accepts
     * but never answers (stopped, hung, a proxy without a backend) would
     * otherwise cost the caller a whole timeout on every try. */
    r->failures = 0;
    if (rep->type == REDIS_REPLY_ERROR) {
        ss_fail(err, SS_EREDIS, "redis error: %s", rep->str);
        /* A replica answers READONLY after a failover moved the master
         * behind our address: reconnect to reach the new master. */
        if (ss_str_has_prefix(rep->str, "READONLY"))
            drop(r);
        freeReplyObject(rep);
        return NULL;
    }
    return rep;
}

redisReply *rconn_cmd(rconn *r, ss_err *err, int argc, const char **argv)
{
    if (rconn_ensure(r, err) != 0)
        return NULL;
    return check(r, redisCommandArgv(r->c, argc, argv, NULL), err);
}

redisReply *rconn_cmdf(rconn *r, ss_err *err, const char *fmt, ...)
{
    if (rconn_ensure(r, err) != 0)
        return NULL;
    va_list ap;
    va_start(ap, fmt);
    redisReply *rep = redisvCommand(r->c, fmt, ap);
    va_end(ap);
    return check(r, rep, err);
}

redisReply *rconn_script(rconn *r, ss_err *err, const char *name, int nkeys,
                         const char **keys, int nargs, const char **args)
{
    const char *sha = rscript_sha(name);
    if (!sha) {
        ss_fail(err, SS_EINTERNAL, "no script %s", name);
        return NULL;
    }
    int argc = 3 + nkeys + 1 + nargs;
    const char **argv = calloc((size_t)argc, sizeof(*argv));
    if (!argv) {
        ss_fail(err, SS_ENOMEM, "out of memory");
        return NULL;
    }
    char nk[16];
    snprintf(nk, sizeof(nk), "%d", nkeys);
    argv[0] = "EVALSHA";
    argv[1] = sha;
    argv[2] = nk;
    for (int i = 0; i < nkeys; i++)
        argv[3 + i] = keys[i];
    argv[3 + nkeys] = RK_PREFIX;
    for (int i = 0; i < nargs; i++)
        argv[4 + nkeys + i] = args[i];
    if (rconn_ensure(r, err) != 0) {
        free(argv);
        return NULL;
    }
    redisReply *rep = redisCommandArgv(r->c, argc, argv, NULL);
    if (rep && rep->type == REDIS_REPLY_ERROR && ss_str_has_prefix(rep->str, "NOSCRIPT")) {
        freeReplyObject(rep);
        argv[0] = "EVAL";
        argv[1] = rscript_body(name);
        rep = redisCommandArgv(r->c, argc, argv, NULL);
    }
    free(argv);
    return check(r, rep, err);
}
