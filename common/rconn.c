/* rconn.c — blocking Redis client with timeouts and reconnect (rconn.h). */
#include "rconn.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "rkeys.h"
#include "rscripts.h"
#include "util.h"

/* "host[:port]" of len n into hp; port_def when absent. */
static int parse_hostport(const char *p, size_t n, int port_def, redis_hostport *hp,
                          const char *url, ss_err *err)
{
    const char *colon = memchr(p, ':', n);
    size_t hl = colon ? (size_t)(colon - p) : n;
    if (hl == 0)
        return ss_fail(err, SS_EINVAL, "redis URL '%s' has no host", url);
    if (hl >= sizeof(hp->host))
        return ss_fail(err, SS_EINVAL, "redis host too long");
    memcpy(hp->host, p, hl);
    hp->host[hl] = 0;
    hp->port = port_def;
    if (colon) {
        char digits[8] = "";
        size_t dl = n - hl - 1;
        char *end;
        if (dl == 0 || dl >= sizeof(digits))
            return ss_fail(err, SS_EINVAL, "redis URL '%s': bad port", url);
        memcpy(digits, colon + 1, dl);
        long port = strtol(digits, &end, 10);
        if (*end || port <= 0 || port > 65535)
            return ss_fail(err, SS_EINVAL, "redis URL '%s': bad port", url);
        hp->port = (int)port;
    }
    return 0;
}

static int parse_db(const char *p, redis_addr *out, const char *url, ss_err *err)
{
    if (!*p)
        return 0;
    char *end;
    long db = strtol(p, &end, 10);
    if (end == p || *end || db < 0 || db > 1000)
        return ss_fail(err, SS_EINVAL, "redis URL '%s': bad database number", url);
    out->db = (int)db;
    return 0;
}

int redis_addr_parse(const char *url, redis_addr *out, ss_err *err)
{
    memset(out, 0, sizeof(*out));
    out->port = 6379;
    const char *p = url;
    int sentinel = 0;
    if (ss_str_has_prefix(p, "redis://"))
        p += 8;
    else if (ss_str_has_prefix(p, "sentinel://")) {
        p += 11;
        sentinel = 1;
    } else if (strstr(p, "://"))
        return ss_fail(err, SS_EINVAL, "redis URL '%s' must start with redis:// or sentinel://%s",
                       url, ss_str_has_prefix(p, "rediss://")
                                ? " (no TLS in this client: reach a TLS Redis through a local "
                                  "stunnel, see docs/OPERATIONS.md)"
                                : "");
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
        if (colon) {
            size_t un = (size_t)(colon - p);
            if (un >= sizeof(out->username))
                return ss_fail(err, SS_EINVAL, "redis user name too long");
            memcpy(out->username, p, un);
        }
        p = at + 1;
    }
    if (!sentinel) {
        redis_hostport hp;
        if (parse_hostport(p, strcspn(p, "/"), 6379, &hp, url, err) != 0)
            return -1;
        memcpy(out->host, hp.host, sizeof(out->host));
        out->port = hp.port;
        p += strcspn(p, "/");
        return *p == '/' ? parse_db(p + 1, out, url, err) : 0;
    }
    /* sentinel://h1:p1,h2:p2/<master-name>[/db] */
    while (p < auth_end) {
        size_t n = strcspn(p, ",/");
        if (out->nsentinels == REDIS_MAX_SENTINELS)
            return ss_fail(err, SS_EINVAL, "redis URL '%s': more than %d sentinels", url,
                           REDIS_MAX_SENTINELS);
        if (parse_hostport(p, n, 26379, &out->sentinels[out->nsentinels], url, err) != 0)
            return -1;
        out->nsentinels++;
        p += n;
        if (*p == ',')
            p++;
    }
    if (*p != '/' || p[1] == 0 || p[1] == '/')
        return ss_fail(err, SS_EINVAL, "redis URL '%s': sentinel:// needs /<master-name> after "
                                       "the sentinels", url);
    p++;
    size_t ml = strcspn(p, "/");
    if (ml >= sizeof(out->master))
        return ss_fail(err, SS_EINVAL, "redis URL '%s': master name too long", url);
    memcpy(out->master, p, ml);
    p += ml;
    /* until a sentinel answers, the first one's host stands in for logs */
    memcpy(out->host, out->sentinels[0].host, sizeof(out->host));
    out->port = 0;
    return *p == '/' ? parse_db(p + 1, out, url, err) : 0;
}

const char *redis_addr_describe(const redis_addr *a, char *buf, size_t len)
{
    if (!a->master[0]) {
        snprintf(buf, len, "%s:%d", a->host, a->port);
        return buf;
    }
    size_t o = (size_t)snprintf(buf, len, "sentinel master %s (", a->master);
    for (int i = 0; i < a->nsentinels && o < len; i++)
        o += (size_t)snprintf(buf + o, len - o, "%s%s:%d", i ? "," : "", a->sentinels[i].host,
                              a->sentinels[i].port);
    if (o < len) {
        if (a->port)
            snprintf(buf + o, len - o, ") at %s:%d", a->host, a->port);
        else
            snprintf(buf + o, len - o, ")");
    }
    return buf;
}

int redis_error_wants_reconnect(const char *msg)
{
    return msg && (ss_str_has_prefix(msg, "READONLY") || ss_str_has_prefix(msg, "LOADING") ||
                   ss_str_has_prefix(msg, "MASTERDOWN"));
}

int redis_sentinel_resolve(redis_addr *a, int timeout_ms, ss_err *err)
{
    if (!a->master[0])
        return 0;
    if (timeout_ms <= 0 || timeout_ms > 1000)
        timeout_ms = 1000;   /* a dead sentinel must not hold the caller long */
    struct timeval tv = { timeout_ms / 1000, (timeout_ms % 1000) * 1000 };
    char last[600] = "no sentinel configured";
    for (int k = 0; k < a->nsentinels; k++) {
        int i = (a->next_sentinel + k) % a->nsentinels;
        const redis_hostport *s = &a->sentinels[i];
        redisContext *c = redisConnectWithTimeout(s->host, s->port, tv);
        if (!c || c->err) {
            snprintf(last, sizeof(last), "sentinel %s:%d: %s", s->host, s->port,
                     c ? c->errstr : "out of memory");
            if (c)
                redisFree(c);
            continue;
        }
        redisSetTimeout(c, tv);
        redisReply *rep = redisCommand(c, "SENTINEL get-master-addr-by-name %s", a->master);
        int ok = rep && rep->type == REDIS_REPLY_ARRAY && rep->elements == 2 &&
                 rep->element[0]->type == REDIS_REPLY_STRING &&
                 rep->element[1]->type == REDIS_REPLY_STRING &&
                 rep->element[0]->len < sizeof(a->host);
        long port = ok ? strtol(rep->element[1]->str, NULL, 10) : 0;
        if (ok && port > 0 && port <= 65535) {
            memcpy(a->host, rep->element[0]->str, rep->element[0]->len + 1);
            a->port = (int)port;
            a->next_sentinel = i;
            freeReplyObject(rep);
            redisFree(c);
            return 0;
        }
        snprintf(last, sizeof(last), "sentinel %s:%d: %s", s->host, s->port,
                 !rep ? (c->errstr[0] ? c->errstr : "no answer")
                 : rep->type == REDIS_REPLY_ERROR ? rep->str
                 : rep->type == REDIS_REPLY_NIL ? "does not know this master name"
                                                : "unexpected answer");
        if (rep)
            freeReplyObject(rep);
        redisFree(c);
    }
    return ss_fail(err, SS_EREDIS, "no sentinel gave the address of master '%s' (last: %s)",
                   a->master, last);
}

void rconn_init(rconn *r, const redis_addr *addr, int timeout_ms)
{
    memset(r, 0, sizeof(*r));
    r->addr = *addr;
    r->conf = *addr;
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
    r->replicas_ms = 0;
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

/* One setup command on a fresh context; its refusal into err. */
static int setup_cmd(const redis_addr *a, redisContext *c, ss_err *err, const char *what, int argc,
                     const char **argv)
{
    redisReply *rep = redisCommandArgv(c, argc, argv, NULL);
    int bad = !rep || rep->type == REDIS_REPLY_ERROR;
    if (bad)
        ss_fail(err, SS_EREDIS, "redis %s:%d: %s refused: %s", a->host, a->port, what,
                rep ? rep->str : c->errstr[0] ? c->errstr : "connection lost");
    if (rep)
        freeReplyObject(rep);
    return bad ? -1 : 0;
}

/* AUTH [user], SELECT and, with Sentinel, ROLE on a fresh context; 0 when
 * all were accepted and the server is the master. */
static int handshake(const redis_addr *a, redisContext *c, ss_err *err)
{
    if (a->password[0]) {
        /* AUTH [user] password: hiredis 0.14 knows no ACL users itself */
        int user = a->username[0] != 0;
        const char *argv[] = { "AUTH", user ? a->username : a->password, a->password };
        char what[160];
        snprintf(what, sizeof(what), "AUTH as user '%s'", user ? a->username : "default");
        if (setup_cmd(a, c, err, what, user ? 3 : 2, argv) != 0)
            return -1;
    }
    if (a->db) {
        char db[16];
        snprintf(db, sizeof(db), "%d", a->db);
        const char *argv[] = { "SELECT", db };
        if (setup_cmd(a, c, err, "SELECT", 2, argv) != 0)
            return -1;
    }
    if (a->master[0]) {
        /* Sentinel's answer may be a step behind a failover: talk only to
         * a server that says it is the master. */
        redisReply *rep = redisCommand(c, "ROLE");
        int master = rep && rep->type == REDIS_REPLY_ARRAY && rep->elements > 0 &&
                     rep->element[0]->type == REDIS_REPLY_STRING &&
                     !strcmp(rep->element[0]->str, "master");
        if (!master)
            ss_fail(err, SS_EREDIS, "redis %s:%d (from sentinel, master '%s') is not the master: %s",
                    a->host, a->port, a->master,
                    !rep ? "no answer" : rep->type == REDIS_REPLY_ERROR ? rep->str : "ROLE says replica");
        if (rep)
            freeReplyObject(rep);
        if (!master)
            return -1;
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
    /* the owner's thread may be moving r->addr to a new master: probe from
     * the configuration, asking Sentinel ourselves */
    redis_addr a = r->conf;
    ss_err e = { 0 };
    redisContext *c = redis_sentinel_resolve(&a, r->timeout_ms, &e) == 0
                          ? redisConnectWithTimeout(a.host, a.port, tv) : NULL;
    int ok = 0;
    if (c && !c->err) {
        redisSetTimeout(c, tv);
        if (handshake(&a, c, &e) == 0) {
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
    char desc[512];
    if (ss_mono_ms() < r->next_try_ms)
        return ss_fail(err, SS_EREDIS, "redis %s unavailable (retrying)",
                       redis_addr_describe(&r->addr, desc, sizeof(desc)));
    if (redis_sentinel_resolve(&r->addr, r->timeout_ms, err) != 0) {
        drop(r);
        return -1;
    }
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
         * behind our address (LOADING: a restarted server reading its
         * data): reconnect, asking Sentinel again, to reach the master. */
        if (redis_error_wants_reconnect(rep->str))
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

int redis_role_replicas(const redisReply *role)
{
    if (!role || role->type != REDIS_REPLY_ARRAY || role->elements < 3 ||
        role->element[0]->type != REDIS_REPLY_STRING || strcmp(role->element[0]->str, "master") ||
        role->element[2]->type != REDIS_REPLY_ARRAY)
        return -1;
    return (int)role->element[2]->elements;
}

int rconn_wait(rconn *r, int replicas, int ms, ss_err *err)
{
    if (replicas <= 0)
        return 0;
    int64_t now = ss_mono_ms();
    if (!r->c || !r->replicas_ms || now - r->replicas_ms >= 1000) {
        redisReply *role = rconn_cmdf(r, err, "ROLE");
        if (!role)
            return -1;
        int n = redis_role_replicas(role);
        freeReplyObject(role);
        if (n < 0) {
            drop(r);
            return ss_fail(err, SS_EREDIS, "redis %s:%d is no longer the master", r->addr.host,
                           r->addr.port);
        }
        r->replicas = n;
        r->replicas_ms = now;
    }
    int want = replicas < r->replicas ? replicas : r->replicas;
    if (want == 0)
        return 0;
    redisReply *rep = rconn_cmdf(r, err, "WAIT %d %d", want, ms);
    if (!rep)
        return -1;
    long long n = rep->type == REDIS_REPLY_INTEGER ? rep->integer : -1;
    freeReplyObject(rep);
    if (n >= want)
        return 0;
    r->replicas_ms = 0;   /* a replica may have gone: count again next time */
    return ss_fail(err, SS_EREDIS, "redis %s:%d: the write reached %lld of %d replica(s) within %d ms",
                   r->addr.host, r->addr.port, n < 0 ? 0 : n, want, ms);
}
