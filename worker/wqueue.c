/* wqueue.c — the worker's side of the Redis contract (proto/redis.md), on
 * the loop thread: two hiredis async contexts (commands; SUBSCRIBE to
 * notifications and PSUBSCRIBE to cancel messages), reconnect with backoff,
 * claim, lease renewal with progress, finish, and the worker registry.
 *
 * hiredis 0.14 has no command timeout for async contexts, so every call is
 * kept on a list with its send time; a call older than the lease's third
 * drops the connection (pending callbacks then get reply == NULL) and the
 * reconnect path takes over. While Redis is down nothing spins: reconnects
 * back off exponentially, running encodes go on, and their heartbeats and
 * final reports resume when Redis is back.
 */
#include <limits.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <hiredis/adapters/libevent.h>

#include "log.h"
#include "rkeys.h"
#include "rscripts.h"
#include "util.h"
#include "wmetrics.h"
#include "worker.h"

typedef void (*wq_cb)(worker *w, redisReply *r, void *ud);

typedef struct wcall {
    worker *w;
    struct wcall *prev, *next;
    wq_cb cb;
    void *ud;
    int argc;
    const char **argv;     /* into the call's own block (or static: NOSCRIPT's EVAL) */
    size_t *lens;
    int retried;           /* EVALSHA -> EVAL after NOSCRIPT */
    int64_t sent_ms;
    int64_t sent_boot_ms;  /* ss_boot_ms: what lease_ok_ms compares (a suspend counts) */
} wcall;

typedef struct wcalls {
    wcall *head, *tail;
} wcalls;

static void schedule_reconnect(worker *w);

/* ---- in-flight call list ---------------------------------------------- */

static wcalls *calls(worker *w)
{
    if (!w->calls)
        w->calls = calloc(1, sizeof(wcalls));
    return w->calls;
}

static void call_unlink(wcall *c)
{
    wcalls *l = calls(c->w);
    if (c->prev)
        c->prev->next = c->next;
    else
        l->head = c->next;
    if (c->next)
        c->next->prev = c->prev;
    else
        l->tail = c->prev;
    c->prev = c->next = NULL;
}

/* The call, its argv, lens and strings are one allocation (wq_call). */
static void call_free(wcall *c)
{
    free(c);
}

static void on_reply(redisAsyncContext *ac, void *r, void *priv);

/* Close both connections (they reconnect together, to the same server). */
static void drop_connections(worker *w)
{
    if (w->cmd)
        redisAsyncDisconnect(w->cmd);
    if (w->sub)
        redisAsyncDisconnect(w->sub);
}

/* A refusal no retry fixes: an ACL user without the worker's commands,
 * keys or channels (NOPERM), or wrong credentials before Redis ever
 * accepted a command of ours. Say so and stop (nothing runs yet; with
 * jobs running, keep them and keep trying). Returns 1 when msg is such a
 * refusal (logged). */
static int refused(worker *w, const char *msg)
{
    int noperm = msg && ss_str_has_prefix(msg, "NOPERM");
    if (!msg || !(noperm || ss_str_has_prefix(msg, "WRONGPASS") || ss_str_has_prefix(msg, "NOAUTH")))
        return 0;
    const char *user = w->raddr.username[0] ? w->raddr.username : "default";
    if ((!noperm && w->redis_answered) || w->njobs > 0) {
        log_error(NULL, "redis refused user '%s': %s", user, msg);
        return 1;
    }
    if (w->fatal)
        return 1;   /* said once */
    log_error(NULL, "redis refused user '%s': %s -- %s; stopping", user, msg,
              noperm ? "a worker needs the worker user's commands, keys and channels "
                       "(deploy/redis-acl.conf, user ss-worker)"
                     : "check the user and password in the redis URL");
    worker_fatal(w);
    return 1;
}

static int call_send(wcall *c)
{
    worker *w = c->w;
    if (!w->cmd || !w->cmd_connected)
        return -1;
    c->sent_ms = ss_mono_ms();
    c->sent_boot_ms = ss_boot_ms();
    wcalls *l = calls(w);
    c->prev = l->tail;
    c->next = NULL;
    if (l->tail)
        l->tail->next = c;
    else
        l->head = c;
    l->tail = c;
    if (redisAsyncCommandArgv(w->cmd, on_reply, c, c->argc, c->argv, c->lens) != REDIS_OK) {
        call_unlink(c);
        return -1;
    }
    return 0;
}

static void on_reply(redisAsyncContext *ac, void *r, void *priv)
{
    wcall *c = priv;
    redisReply *reply = r;
    call_unlink(c);
    if (reply)
        c->w->cmd_answered = 1;
    if (reply && reply->type == REDIS_REPLY_ERROR && !c->retried &&
        ss_str_has_prefix(reply->str, "NOSCRIPT")) {
        /* Redis lost its script cache (restart, SCRIPT FLUSH): send the body. */
        const char *name = c->argv[1];
        const char *body = NULL;
        for (const ss_lua_script *s = ss_lua_scripts; s->name; s++)
            if (!strcmp(rscript_sha(s->name), name))
                body = s->body;
        if (body) {
            c->retried = 1;
            c->argv[0] = "EVAL";   /* static strings: nothing to free */
            c->argv[1] = body;
            c->lens[0] = 4;
            c->lens[1] = strlen(body);
            if (call_send(c) == 0)
                return;
        }
    }
    if (reply && reply->type != REDIS_REPLY_ERROR) {
        c->w->redis_failures = 0;   /* a working server, not just a TCP accept */
        c->w->redis_answered = 1;
    }
    if (reply && reply->type == REDIS_REPLY_ERROR && !refused(c->w, reply->str)) {
        log_warn(NULL, "redis: %s", reply->str);
        /* After a failover our address may lead to a replica (READONLY),
         * or to a server still loading its data: reconnect, asking
         * Sentinel again (allowed from a callback: it closes once replies
         * are in). */
        if (redis_error_wants_reconnect(reply->str))
            drop_connections(c->w);
    }
    /* the lease a claim or renewal answered began after this: a reply
     * read late (the process was paused) must not look fresh */
    c->w->reply_sent_ms = c->sent_boot_ms;
    if (c->cb)
        c->cb(c->w, reply, c->ud);
    call_free(c);
}

/* Send argv (copied) as one call; cb gets the reply (NULL when the
 * connection is lost). The copy is one allocation with the call (a
 * finish_many of 25 jobs has 100+ arguments: one malloc, not 100+). */
static int wq_call(worker *w, int argc, const char **argv, wq_cb cb, void *ud)
{
    size_t bytes = 0;
    for (int i = 0; i < argc; i++)
        bytes += strlen(argv[i]) + 1;
    size_t head = sizeof(wcall) + (size_t)argc * (sizeof(char *) + sizeof(size_t));
    wcall *c = calloc(1, head + bytes);
    if (!c)
        return -1;
    c->w = w;
    c->cb = cb;
    c->ud = ud;
    c->argc = argc;
    c->argv = (const char **)(c + 1);
    c->lens = (size_t *)(c->argv + argc);
    char *p = (char *)c + head;
    for (int i = 0; i < argc; i++) {
        size_t n = strlen(argv[i]);
        memcpy(p, argv[i], n + 1);
        c->argv[i] = p;
        c->lens[i] = n;
        p += n + 1;
    }
    if (call_send(c) != 0) {
        call_free(c);
        return -1;
    }
    return 0;
}

/* EVALSHA a script: keys then args, the prefix inserted as ARGV[1]. */
static int wq_script(worker *w, const char *name, int nkeys, const char **keys, int nargs,
                     const char **args, wq_cb cb, void *ud)
{
    int argc = 3 + nkeys + 1 + nargs;
    const char **argv = calloc((size_t)argc, sizeof(*argv));
    if (!argv)
        return -1;
    char nk[16];
    snprintf(nk, sizeof(nk), "%d", nkeys);
    int i = 0;
    argv[i++] = "EVALSHA";
    argv[i++] = rscript_sha(name);
    argv[i++] = nk;
    for (int k = 0; k < nkeys; k++)
        argv[i++] = keys[k];
    argv[i++] = RK_PREFIX;
    for (int k = 0; k < nargs; k++)
        argv[i++] = args[k];
    int rc = wq_call(w, argc, argv, cb, ud);
    free(argv);
    return rc;
}

/* ---- connections --------------------------------------------------------- */

static void on_sub_message(redisAsyncContext *ac, void *r, void *priv);
static void wake_settle(worker *w);

/* on_orphans' ud: the mode and why */
#define ORPHANS_RELEASE NULL
#define ORPHANS_EXPIRE ((void *)1)
#define ORPHANS_AFTER_ERROR ((void *)2)

static void on_orphans(worker *w, redisReply *r, void *ud)
{
    if (w->claim_inflight > 0)
        w->claim_inflight--;
    if (r && r->type == REDIS_REPLY_INTEGER && r->integer > 0)
        log_warn(NULL, "%lld claim(s) held for this worker were unknown to it: %s", r->integer,
                 ud == ORPHANS_EXPIRE ? "their leases end now (the reaper counts the attempt)"
                                      : "released to the queue unstarted");
    /* after a claim that errored, the next claim waits for the tick or a
     * notification: a job that breaks every claim must not spin us */
    if (ud != ORPHANS_AFTER_ERROR)
        wq_try_claim(w);
    wake_settle(w);
}

/* Send orphans in the mode ud says, the tokens of the jobs we run known. */
static void send_orphans(worker *w, void *ud)
{
    int n = 0;
    for (wjob *j = w->jobs; j; j = j->next)
        n++;
    const char **args = calloc((size_t)n + 2, sizeof(*args));
    if (!args)
        return;
    args[0] = w->id;
    args[1] = ud == ORPHANS_EXPIRE ? "expire" : "release";
    int k = 2;
    for (wjob *j = w->jobs; j; j = j->next)
        args[k++] = j->token;
    const char *keys[] = { RK_PROCESSING };
    /* no claim goes out before this answer: it must not see its own claim */
    if (wq_script(w, "orphans", 1, keys, k, args, on_orphans, ud) == 0)
        w->claim_inflight++;
    free(args);
}

/* Claims Redis holds for our id that we do not run: after a restart under
 * the same id (a crash), end their leases; after a reconnect, a claim whose
 * answer was lost is released unstarted. */
static void check_orphans(worker *w)
{
    int first = !w->connected_once;
    w->connected_once = 1;
    send_orphans(w, first ? ORPHANS_EXPIRE : ORPHANS_RELEASE);
}

/* A claim call answered with an error: Redis keeps a script's writes up
 * to the error, so claims it made before it are ours without our knowing
 * (issue 17): give them back unstarted, as after a lost answer. */
static void send_due_orphans(worker *w)
{
    /* only with no claim on the wire: a claim call sent before the error
     * runs in Redis before orphans, and its job, not in w->jobs yet, would
     * be released while its answer still starts it here (run twice) */
    if (w->orphans_due && w->claim_inflight == 0 && !w->xclaim_group && !w->chain_inflight &&
        w->cmd_connected) {
        w->orphans_due = 0;
        send_orphans(w, ORPHANS_AFTER_ERROR);
    }
}

static void claim_failed(worker *w, redisReply *r)
{
    if (r && r->type == REDIS_REPLY_ERROR && w->cmd_connected) {
        w->orphans_due = 1;   /* no new claim goes out until it is sent */
        send_due_orphans(w);
    }
}

static void on_role_count(worker *w, redisReply *r, void *ud)
{
    w->role_inflight = 0;
    if (!r || r->type == REDIS_REPLY_ERROR)
        return;
    int n = redis_role_replicas(r);
    if (n < 0) {
        log_warn(NULL, "redis %s:%d is no longer a master: reconnecting", w->raddr.host, w->raddr.port);
        drop_connections(w);
        return;
    }
    w->replicas = n;
}

/* How many replicas a report has to reach (redis_wait_replicas): asked
 * on connect and every second after. */
static void role_refresh(worker *w)
{
    if (w->conf.redis_wait_replicas <= 0 || w->role_inflight || !w->cmd_connected)
        return;
    w->replicas_ms = ss_mono_ms();
    const char *argv[] = { "ROLE" };
    if (wq_call(w, 1, argv, on_role_count, NULL) == 0)
        w->role_inflight = 1;
}

static void on_cmd_connect(const redisAsyncContext *ac, int status)
{
    worker *w = ac->data;
    if (status != REDIS_OK) {
        log_warn(NULL, "redis %s:%d: connect failed: %s", w->raddr.host, w->raddr.port, ac->errstr);
        w->cmd = NULL;   /* hiredis frees it */
        schedule_reconnect(w);
        return;
    }
    w->cmd_connected = 1;
    w->cmd_answered = 0;
    w->replicas = -1;
    log_info(NULL, "redis %s:%d connected", w->raddr.host, w->raddr.port);
    role_refresh(w);
    check_orphans(w);
}

static void on_cmd_disconnect(const redisAsyncContext *ac, int status)
{
    worker *w = ac->data;
    if (!w->stopping && !w->cmd_answered)
        /* accepted, then closed without a word: what a TLS tunnel does
         * when it refuses the server's certificate */
        log_warn(NULL, "redis %s:%d closed the connection before answering%s%s (a TLS tunnel "
                       "that refused the server's certificate? see the tunnel's log); reconnecting",
                 w->raddr.host, w->raddr.port, ac->errstr[0] ? ": " : "", ac->errstr);
    else if (!w->stopping)
        log_warn(NULL, "redis connection lost%s%s; running jobs go on, reconnecting",
                 ac->errstr[0] ? ": " : "", ac->errstr);
    w->cmd = NULL;
    w->cmd_connected = 0;
    w->claim_inflight = 0;
    w->orphans_due = 0;   /* the reconnect's orphans call releases them */
    w->role_inflight = 0;
    w->wake_id[0] = 0;   /* the claims after the reconnect will see the job */
    w->idle_marked = 0;
    for (wjob *j = w->jobs; j; j = j->next)
        j->hb_inflight = 0;
    /* With Sentinel both connections follow the master together. */
    if (w->raddr.master[0] && w->sub && !w->stopping)
        redisAsyncDisconnect(w->sub);
    schedule_reconnect(w);
    worker_check_drain(w);
}

static void on_sub_connect(const redisAsyncContext *ac, int status)
{
    worker *w = ac->data;
    if (status != REDIS_OK) {
        w->sub = NULL;
        schedule_reconnect(w);
        return;
    }
    w->sub_connected = 1;
}

static void on_sub_disconnect(const redisAsyncContext *ac, int status)
{
    worker *w = ac->data;
    w->sub = NULL;
    w->sub_connected = 0;
    if (w->raddr.master[0] && w->cmd && !w->stopping)
        redisAsyncDisconnect(w->cmd);
    schedule_reconnect(w);
}

static void on_setup_reply(redisAsyncContext *ac, void *r, void *priv)
{
    redisReply *reply = r;
    if (reply && reply->type == REDIS_REPLY_ERROR) {
        if (!refused(ac->data, reply->str))
            log_error(NULL, "redis %s failed: %s", (const char *)priv, reply->str);
        redisAsyncDisconnect(ac);
    }
}

/* Sentinel's answer may be a step behind a failover: stay only on a
 * server that says it is the master. */
static void on_role_reply(redisAsyncContext *ac, void *r, void *priv)
{
    redisReply *reply = r;
    worker *w = ac->data;
    if (!reply)
        return;
    if (reply->type == REDIS_REPLY_ERROR) {
        on_setup_reply(ac, r, (void *)"ROLE");
        return;
    }
    if (reply->type != REDIS_REPLY_ARRAY || reply->elements == 0 ||
        reply->element[0]->type != REDIS_REPLY_STRING || strcmp(reply->element[0]->str, "master")) {
        log_warn(NULL, "redis %s:%d is not the master '%s' (a failover under way?): reconnecting",
                 w->raddr.host, w->raddr.port, w->raddr.master);
        drop_connections(w);
    }
}

static redisAsyncContext *open_ctx(worker *w, void (*conn)(const redisAsyncContext *, int),
                                   void (*disc)(const redisAsyncContext *, int))
{
    redisAsyncContext *ac = redisAsyncConnect(w->raddr.host, w->raddr.port);
    if (!ac)
        return NULL;
    if (ac->err) {
        log_warn(NULL, "redis %s:%d: %s", w->raddr.host, w->raddr.port, ac->errstr);
        redisAsyncFree(ac);
        return NULL;
    }
    ac->data = w;
    redisEnableKeepAlive(&ac->c);
    redisLibeventAttach(ac, w->base);
    redisAsyncSetConnectCallback(ac, conn);
    redisAsyncSetDisconnectCallback(ac, disc);
    /* AUTH and SELECT are queued before anything else on the socket; a
     * refusal drops the connection (and is retried with backoff) instead
     * of leaving a context that silently never works. */
    if (w->raddr.password[0] && w->raddr.username[0])
        redisAsyncCommand(ac, on_setup_reply, (void *)"AUTH", "AUTH %s %s", w->raddr.username,
                          w->raddr.password);
    else if (w->raddr.password[0])
        redisAsyncCommand(ac, on_setup_reply, (void *)"AUTH", "AUTH %s", w->raddr.password);
    if (w->raddr.db)
        redisAsyncCommand(ac, on_setup_reply, (void *)"SELECT", "SELECT %d", w->raddr.db);
    if (w->raddr.master[0])
        redisAsyncCommand(ac, on_role_reply, NULL, "ROLE");
    return ac;
}

/* With Sentinel: where is the master now? Connections to an old address
 * are closed (they reconnect to the new one). -1 when no sentinel knew. */
static int resolve_master(worker *w)
{
    if (!w->raddr.master[0])
        return 0;
    char old[256];
    int oldport = w->raddr.port;
    ss_strlcpy(old, w->raddr.host, sizeof(old));
    ss_err err = { 0 };
    if (redis_sentinel_resolve(&w->raddr, 1000, &err) != 0) {
        log_warn(NULL, "%s", err.msg);
        return -1;
    }
    if (oldport != w->raddr.port || strcmp(old, w->raddr.host)) {
        log_info(NULL, "redis master '%s' is at %s:%d", w->raddr.master, w->raddr.host, w->raddr.port);
        drop_connections(w);
    }
    return 0;
}

static void connect_all(worker *w)
{
    if (w->stopping)
        return;
    if ((!w->cmd || !w->sub) && resolve_master(w) != 0) {
        schedule_reconnect(w);
        return;
    }
    if (!w->cmd) {
        w->cmd = open_ctx(w, on_cmd_connect, on_cmd_disconnect);
        if (!w->cmd) {
            schedule_reconnect(w);
            return;
        }
    }
    if (!w->sub) {
        w->sub = open_ctx(w, on_sub_connect, on_sub_disconnect);
        if (!w->sub) {
            schedule_reconnect(w);
            return;
        }
        char wake[256];
        RK_KEY(wake, RK_WAKE_FMT, w->id);
        redisAsyncCommand(w->sub, on_sub_message, w, "SUBSCRIBE %s %s", RK_NOTIFY, wake);
        redisAsyncCommand(w->sub, on_sub_message, w, "PSUBSCRIBE %s", RK_CTL_PATTERN);
    }
}

static void on_reconnect(evutil_socket_t fd, short what, void *arg)
{
    connect_all(arg);
}

static void schedule_reconnect(worker *w)
{
    if (w->stopping || !w->base)
        return;
    if (!w->reconnect_ev)
        w->reconnect_ev = evtimer_new(w->base, on_reconnect, w);
    if (evtimer_pending(w->reconnect_ev, NULL))
        return;
    w->redis_failures++;
    int64_t ms = ss_backoff_ms(w->redis_failures, 200, 10000, ss_random_unit());
    struct timeval tv = { (time_t)(ms / 1000), (suseconds_t)((ms % 1000) * 1000) };
    evtimer_add(w->reconnect_ev, &tv);
}

int wq_start(worker *w, ss_err *err)
{
    connect_all(w);
    (void)err;
    return 0;
}

void wq_stop(worker *w)
{
    w->stopping = 1;
    if (w->cmd)
        redisAsyncFree(w->cmd);
    if (w->sub)
        redisAsyncFree(w->sub);
    w->cmd = w->sub = NULL;
    free(w->calls);
    w->calls = NULL;
    if (w->flush_ev)
        event_free(w->flush_ev);
    w->flush_ev = NULL;
    free(w->batch);
    w->batch = NULL;
    w->nbatch = w->batch_cap = 0;
}

/* ---- notifications and cancel messages ----------------------------------- */

static void on_claim_timer(evutil_socket_t fd, short what, void *arg)
{
    wq_try_claim(arg);
}

/* A wake-up we could not act on at once (a claim or a report of ours was
 * on the wire): claim if a slot is free now, else pass the job on to every
 * worker. Called again as those answers come in. */
static int answer_pending(const worker *w)
{
    if (w->claim_inflight > 0)
        return 1;
    for (const wjob *j = w->jobs; j; j = j->next)
        if (j->finishing)
            return 1;   /* its report may free a slot (or bring a job) */
    return 0;
}

static void wake_settle(worker *w)
{
    if (!w->wake_id[0] || answer_pending(w))
        return;
    char id[sizeof(w->wake_id)];
    ss_strlcpy(id, w->wake_id, sizeof(id));
    w->wake_id[0] = 0;
    int busy = worker_slots_busy(w);
    if (!w->draining && !w->stopping && w->cmd_connected &&
        gate_open(gate_load_after(&w->gate, busy), w->conf.cpu_threshold / 100.0, busy,
                  (int)w->conf.slots)) {
        w->queue_empty = 0;
        wq_try_claim(w);
        return;
    }
    const char *argv[] = { "PUBLISH", RK_NOTIFY, id };
    wq_call(w, 3, argv, NULL, NULL);
}

static void on_sub_message(redisAsyncContext *ac, void *r, void *priv)
{
    worker *w = priv;
    redisReply *reply = r;
    if (reply && reply->type == REDIS_REPLY_ERROR && !refused(w, reply->str))
        log_warn(NULL, "redis subscription: %s", reply->str);
    if (!reply || reply->type != REDIS_REPLY_ARRAY || reply->elements < 3)
        return;
    const char *kind = reply->element[0]->str;
    const char *chan = reply->element[1]->str;
    if (kind && !strcmp(kind, "message") && chan && ss_str_has_prefix(chan, RK_PREFIX "wake:")) {
        /* the queue chose us (we were idle): claim now; with a claim in
         * flight, let its answer decide (wake_settle); else pass the job
         * on to everyone */
        const char *id = reply->element[2]->str ? reply->element[2]->str : "";
        w->queue_empty = 0;
        ss_strlcpy(w->wake_id, id, sizeof(w->wake_id));
        if (w->draining || !answer_pending(w))
            wake_settle(w);
        return;
    }
    if (kind && !strcmp(kind, "message")) {
        /* a new job for everyone (no idle worker was known): claim after
         * a delay that grows with our load, so an idle worker tends to win
         * the race on a busy fleet; a worker with nothing running claims
         * at once */
        if (w->draining)
            return;
        w->queue_empty = 0;
        int busy = worker_slots_busy(w);
        int delay = busy == 0 ? 0 : gate_claim_delay_ms(w->gate.load, busy, (int)w->conf.slots,
                                                        (int)w->conf.claim_delay_ms);
        if (!w->claim_ev)
            w->claim_ev = evtimer_new(w->base, on_claim_timer, w);
        if (!evtimer_pending(w->claim_ev, NULL)) {
            struct timeval tv = { delay / 1000, (delay % 1000) * 1000 };
            evtimer_add(w->claim_ev, &tv);
        }
    } else if (kind && !strcmp(kind, "pmessage") && reply->elements >= 4) {
        const char *pchan = reply->element[2]->str;
        const char *msg = reply->element[3]->str;
        const char *pre = RK_PREFIX "ctl:";
        if (!pchan || !ss_str_has_prefix(pchan, pre))
            return;
        /* every claim of that job here (a split job's items too) */
        for (wjob *j = w->jobs; j && msg && !strcmp(msg, "cancel"); j = j->next) {
            if (strcmp(j->id, pchan + strlen(pre)))
                continue;
            log_info(j->id, "cancel requested: stopping the encode");
            int expected = 0;
            atomic_compare_exchange_strong(&j->cancel, &expected, WJOB_CANCEL_USER);
        }
    }
}

/* ---- claim ------------------------------------------------------------------ */

/* A job's "claimed" line: at debug when claimed, at info once it has
 * run WJOB_SHORT_MS (wq_tick; ran_ms > 0). */
static void log_claim(const wjob *j, ss_log_level level, int64_t ran_ms)
{
    char ran[48] = "";
    if (ran_ms > 0)
        snprintf(ran, sizeof(ran), ", running for %.1fs", (double)ran_ms / 1000);
    ss_log(level, j->id, "claimed%s%s (attempt %d, token %s, %d/%lld slots busy, load %.0f%%)%s",
           j->item[0] ? " item " : "", j->item, j->attempt, j->token, j->claim_busy, j->conf.slots,
           j->claim_load * 100, ran);
}

/* ---- prefetch ----------------------------------------------------------------
 * While the worker's recent jobs were all short (prefetch_max_ms), it
 * claims up to prefetch jobs beyond its slots: they wait in the job pool,
 * and a job thread that ends its job takes the next one at once, with no
 * round trip to Redis in between (docs/OPERATIONS.md, "prefetch"). A
 * prefetched job holds a lease like any claim (heartbeats renew it); one
 * that no thread took within prefetch_hold_ms (the slots got long jobs
 * after all), or when the worker drains, goes back to the queue unstarted
 * (finish "release": the attempt is not counted). */
#define PREFETCH_AFTER 16        /* short jobs in a row before prefetching */

/* How long a prefetched job may wait for a thread before it goes back:
 * twice a short job, at least 1 s. */
static int64_t prefetch_hold_ms(const worker *w)
{
    return 2 * w->conf.prefetch_max_ms > 1000 ? 2 * w->conf.prefetch_max_ms : 1000;
}

static int short_threads(const worker *w);

static int prefetch_now(const worker *w)
{
    if (w->conf.prefetch <= 0 || w->draining || w->stopping || w->short_run < PREFETCH_AFTER)
        return 0;
    /* no deeper than the short-job threads get through in one short job
     * (prefetch_max_ms) at the recent jobs' pace: the last one waits about
     * that long, half of what prefetch_check allows a claim */
    double fit = (double)short_threads(w) * (double)w->conf.prefetch_max_ms /
                 (w->run_avg_ms > 1 ? w->run_avg_ms : 1);
    return fit < (double)w->conf.prefetch ? (fit < 1 ? 1 : (int)fit) : (int)w->conf.prefetch;
}

/* The claims the gate may fill: the slots, plus the prefetch. */
static int claim_cap(const worker *w)
{
    return (int)w->conf.slots + prefetch_now(w);
}

/* Threads that run short jobs: the slots, at most one per core. */
static int short_threads(const worker *w)
{
    int n = w->ncpus > 0 ? w->ncpus : 1;
    return w->conf.slots < n ? (int)w->conf.slots : n;
}

/* From the tick: a claim running (or waiting) longer than a short job and
 * a short job before it would take means jobs are not short now, and
 * prefetch stops (so a prefetched job released after prefetch_hold_ms is
 * not claimed again at once). */
static void prefetch_check(worker *w, int64_t now)
{
    int64_t old = now - 2 * w->conf.prefetch_max_ms;
    for (const wjob *j = w->jobs; j; j = j->next)
        if (j->thread_started && j->claimed_ms < old) {
            w->short_run = 0;   /* until 16 short jobs in a row again */
            return;
        }
}

/* A claim that no thread ran ends as oc (err: why it failed): its report
 * goes now. */
static void end_unstarted(worker *w, wjob *j, wjob_outcome oc, const ss_err *err)
{
    pthread_mutex_lock(&j->mu);
    j->outcome = oc;
    if (err)
        j->err = *err;
    pthread_mutex_unlock(&j->mu);
    j->thread_done = 1;
    wq_finish(w, j);
}

void wq_release_prefetched(worker *w, int64_t unstarted_ms)
{
    int64_t now = ss_mono_ms();
    for (wjob *j = w->jobs, *next; j; j = next) {
        next = j->next;   /* wq_finish may end j (a lost lease) */
        if (!j->prefetched || !j->thread_started || now - j->claimed_ms < unstarted_ms ||
            !wjob_unqueue(w, j))
            continue;
        /* one whose lease was lost meanwhile is dropped by wq_finish, and
         * counted so (lease_lost), not as released */
        wjob_outcome oc = atomic_load(&j->cancel) == WJOB_CANCEL_LOST ? WJOB_LOST : WJOB_RELEASE;
        if (oc == WJOB_RELEASE)
            log_info(j->id, "prefetched, not started%s: releasing it to the queue",
                     w->draining ? " (draining)" : " in time (every slot runs a longer job)");
        wmetrics_job_ended(w, j, oc);
        end_unstarted(w, j, oc, NULL);
    }
}

/* Start a job from the claim fields {id, token, attempt, spec, still
 * queued[, item, payload]} (n of them: 5 for a job, 7 for a split job's
 * work item), in a slot of its own (group 0) or beside the items of
 * that group (another item of their job, claim_items). */
static wjob *start_claimed(worker *w, redisReply **f, size_t n, int group, wjob *park)
{
    wjob *j = calloc(1, sizeof(*j));
    if (!j)
        return NULL;   /* the lease runs out and the reaper requeues it */
    j->w = w;
    j->conf = w->conf;   /* the settings it runs under, whatever SIGHUP does later */
    ss_strlcpy(j->id, f[0]->str ? f[0]->str : "", sizeof(j->id));
    ss_strlcpy(j->token, f[1]->str ? f[1]->str : "", sizeof(j->token));
    j->attempt = (int)f[2]->integer;
    /* parsed (and freed) by the job thread, not here: at 50 slots of short
     * jobs, parsing and freeing specs was a third of the loop thread's
     * CPU, and every claim and report waited behind it */
    j->spec_text = f[3]->str ? strdup(f[3]->str) : NULL;
    if (n >= 7 && f[5]->str) {
        ss_strlcpy(j->item, f[5]->str, sizeof(j->item));
        j->item_in = f[6]->str ? json_loads(f[6]->str, 0, NULL) : NULL;
        /* a slot that runs several items at once divides its budget */
        int each = 0;
        if (worker_items_per_slot(w, &each) > 1)
            j->item_threads = each;
    }
    j->group = group ? group : ++w->next_group;
    pthread_mutex_init(&j->mu, NULL);
    pthread_cond_init(&j->chain_cv, NULL);
    j->chain_want = -1;
    ss_strlcpy(j->stage, "starting", sizeof(j->stage));
    j->last_hb_ok_ms = ss_mono_ms();
    j->next = w->jobs;
    if (w->jobs)
        w->jobs->prev = j;
    w->jobs = j;
    w->njobs++;
    if (w->draining) {
        /* a claim answered after SIGTERM: hand it straight back, not
         * counted as an attempt */
        log_info(j->id, "claimed while draining: releasing it to the queue");
        j->outcome = WJOB_RELEASE;
        j->thread_done = 1;
        j->release_held = 1;   /* release_held, after the reply's other claims */
        return NULL;
    }
    /* the info line waits until the job has run WJOB_SHORT_MS (wq_tick):
     * a short job's lines are debug ones, summed up by the tick */
    j->claimed_ms = ss_mono_ms();
    atomic_store(&j->lease_ok_ms, w->reply_sent_ms);
    j->claim_busy = worker_slots_busy(w);   /* slots, as the registry counts them */
    j->claim_load = w->gate.load < 0 ? 0 : w->gate.load;
    log_claim(j, SS_LOG_DEBUG, 0);
    ss_err err = { 0 };
    if (!j->spec_text)
        ss_fail(&err, SS_EINVAL, "job spec in Redis is not valid JSON");
    else if (j->item[0] && !j->item_in)
        ss_fail(&err, SS_EINVAL, "work item %s: its plan in Redis is not valid JSON", j->item);
    else {
        /* every slot runs: a prefetched claim, for the first thread that
         * ends its job */
        j->prefetched = group == 0 && w->conf.prefetch > 0 && w->slots_live >= w->conf.slots;
        if (j->prefetched && j->item[0]) {
            /* a split job's item is an encode of seconds: never held
             * beyond the slots (nor given sibling items, claim_items).
             * Jobs are not short now: prefetch stops (until 16 short jobs
             * in a row again), or the next claim would take it again */
            log_info(j->id, "item %s claimed beyond the slots: releasing it to the queue", j->item);
            w->short_run = 0;
            pthread_mutex_lock(&j->mu);
            j->outcome = WJOB_RELEASE;
            pthread_mutex_unlock(&j->mu);
            j->thread_done = 1;
            j->release_held = 1;
            return NULL;
        }
        if (park) {
            /* the next chunk of park's run: park's thread encodes it
             * (wq_chain); heartbeats renew it meanwhile */
            j->thread_started = 1;
            park->chain = j;
            return j;
        }
        /* short jobs run on as many threads as there are cores (a thread
         * that ends one takes the next), not on one thread each; items
         * always on a thread of their own */
        int limit = (prefetch_now(w) > 0 || j->prefetched) && !j->item[0] ? short_threads(w) : INT_MAX;
        if (wjob_start(w, j, limit, &err) == 0) {
            j->slot_live = group == 0;
            w->slots_live += j->slot_live;
            return j;
        }
        j->prefetched = 0;
    }
    /* Could not even start: report it as this attempt's failure. */
    end_unstarted(w, j, WJOB_FAILED, &err);
    return NULL;
}

/* Hand back the claims start_claimed set aside (drain, an item beyond the
 * slots), newest first: a release puts a job back at the head of its
 * queue and an item at the head of its job's ready list, so the oldest
 * claim, released last, is again the first one out. */
static void release_held(worker *w)
{
    for (wjob *j = w->jobs, *next; j; j = next) {
        next = j->next;   /* w->jobs is newest first; wq_finish may end j */
        if (j->release_held) {
            j->release_held = 0;
            wq_finish(w, j);
        }
    }
}

/* Claim calls in flight at once; once a claim comes back empty, only
 * one probes at a time until a notification says there is work again.
 * Every claim call passes want (the free slots the gate lets us fill, up
 * to CLAIM_BATCH_MAX): one claim path, one answer shape. */
#define MAX_CLAIMS_IN_FLIGHT 8
#define CLAIM_BATCH_MAX 64

/* The answer to a claim with want = (intptr_t)ud: a list of claims,
 * shorter than want when claim_next found no more (Redis then has us in
 * {ss}:idle unless drained or after 16 stale ids). */
static void on_claim(worker *w, redisReply *r, void *ud)
{
    /* ud: want | free << 8 (the claims beyond free were prefetch) */
    int want = (int)((intptr_t)ud & 0xff), free_slots = (int)((intptr_t)ud >> 8);
    w->claim_inflight -= want;
    if (w->claim_inflight < 0)
        w->claim_inflight = 0;
    if (!r || r->type != REDIS_REPLY_ARRAY) {
        w->queue_empty = 1;   /* Redis trouble (logged): the tick and notifications retry */
        claim_failed(w, r);
        worker_check_drain(w);
        wake_settle(w);
        return;
    }
    size_t got = 0;
    for (size_t i = 0; i < r->elements; i++) {
        redisReply *c = r->element[i];
        if (c->type != REDIS_REPLY_ARRAY || (c->elements != 5 && c->elements != 7))
            continue;
        got++;
        w->queue_empty = c->element[4]->integer == 0;
        w->idle_marked = 0;
        start_claimed(w, c->element, c->elements, 0, NULL);
    }
    release_held(w);
    if ((int)got < want) {
        w->queue_empty = 1;
        /* Redis marked us idle only when a claim for a free slot found
         * nothing; one beyond the slots (prefetch) did not */
        w->idle_marked = (int)got < free_slots;
        w->wake_id[0] = 0;   /* the job we were woken for is taken */
    } else if (w->queue_empty) {
        w->wake_id[0] = 0;
    }
    worker_check_drain(w);
    wq_try_claim(w);   /* another free slot? */
    wake_settle(w);
}

/* The lease and aging arguments (ms) every call that claims passes. */
static void claim_times(const worker *w, char lease[24], char aging[24])
{
    snprintf(lease, 24, "%lld", w->conf.lease_seconds * 1000);
    snprintf(aging, 24, "%lld", w->conf.aging_seconds * 1000);
}

/* The claims running in slot group g (several items of one split job
 * share one). */
static int group_size(const worker *w, int g)
{
    int n = 0;
    for (const wjob *k = w->jobs; k; k = k->next)
        n += k->group == g;
    return n;
}

/* A claim of the audio item beside c0 in slot group g that got no answer
 * (Redis error, connection lost): c0 may ask again. */
static void stagger_unask(worker *w, int g)
{
    for (wjob *k = w->jobs; k; k = k->next)
        if (k->group == g)
            k->audio_asked = 0;
}

/* The answer to claim_items' call: the item (or nothing) for ud's slot. */
static void on_claim_item(worker *w, redisReply *r, void *ud)
{
    int group = (int)(intptr_t)ud;
    w->xclaim_group = 0;
    size_t got = 0;
    if (r && r->type == REDIS_REPLY_ARRAY) {
        for (size_t i = 0; i < r->elements; i++) {
            redisReply *c = r->element[i];
            if (c->type != REDIS_REPLY_ARRAY || c->elements != 7)
                continue;
            got++;
            start_claimed(w, c->element, c->elements, group, NULL);
        }
        release_held(w);
    } else {
        claim_failed(w, r);
        stagger_unask(w, group);   /* the audio beside c0: ask again */
    }
    if (!got)   /* none ready now: ask again after a poll, or when one of ours ends */
        w->xclaim_after_ms = ss_mono_ms() + w->conf.poll_ms;
    worker_check_drain(w);
    wq_try_claim(w);
    wake_settle(w);
}

/* stagger_items: the slot of j may start its next item only while none of
 * its chunks still reads input (they drain), or once beside its first
 * chunk c0 (the next in claim order is the audio item, one core of AAC;
 * should another worker hold it, that claim gives c1). One item at a time
 * (overlap 0: items_per_slot 1 on a budget of 2+ cores) keeps only the
 * latter, and its claim names the audio item (claim_items): the audio
 * item alone would leave all but one core idle. */
static int stagger_ready(worker *w, wjob *j, int overlap)
{
    int chunks = 0, reading = 0;
    wjob *first = NULL;
    for (wjob *k = w->jobs; k; k = k->next) {
        if (k->group != j->group || k->thread_done || !strcmp(k->item, "audio"))
            continue;
        chunks++;
        reading += !atomic_load(&k->input_done);
        first = k;
    }
    if (reading == 0 && overlap)
        return 1;
    if (chunks == 1 && reading == 1 && !strcmp(first->item, "c0") && !first->audio_asked &&
        group_size(w, j->group) == 1) {
        first->audio_asked = 1;
        return 1;
    }
    return 0;
}

/* A slot running an item of a split job, with room for more of them
 * (worker_items_per_slot): claim the job's next item into the same slot,
 * one claim at a time. The claim script gives only an item of that job,
 * and only while it is the job the queue would give next (a later job's
 * items do not overtake; an unsplit job never shares a slot). The CPU gate
 * admitted the slot; its own load does not hold back its items. */
static void claim_items(worker *w)
{
    if (w->xclaim_group || w->orphans_due || w->draining || w->stopping || !w->cmd_connected ||
        ss_mono_ms() < w->xclaim_after_ms)
        return;
    int per = worker_items_per_slot(w, NULL);
    /* one at a time with cores to spare: the audio item beside c0 */
    int beside = per < 2 && worker_slot_budget(w) > 1;
    if (per < 2 && !beside)
        return;
    if (w->conf.stagger_items)
        per = 3;   /* a draining chunk, the next one and the audio item */
    else if (beside)
        per = 2;
    for (wjob *j = w->jobs; j; j = j->next) {
        if (!j->item[0] || j->thread_done || atomic_load(&j->cancel))
            continue;
        if (group_size(w, j->group) >= per)
            continue;
        if ((w->conf.stagger_items || beside) && !stagger_ready(w, j, !beside))
            continue;
        char lease[24], aging[24];
        claim_times(w, lease, aging);
        /* beside c0: the audio item by name, never the next chunk (which
         * would run at the slot's whole budget beside c0) */
        char only[sizeof j->id + 8];
        snprintf(only, sizeof only, "%s%s", j->id, beside ? "/audio" : "");
        const char *keys[] = { RK_PROCESSING };
        const char *args[] = { w->id, lease, aging, "1", only };
        if (wq_script(w, "claim", 1, keys, 5, args, on_claim_item, (void *)(intptr_t)j->group) == 0)
            w->xclaim_group = j->group;
        else if (beside)
            stagger_unask(w, j->group);
        return;
    }
}

/* ---- a chunk's run that goes on into the next chunk (docs/SPLIT.md) ------- */

/* The loop's answer to j's thread (chain_answer or chain_swapped: 1 or
 * -1), which waits for it in wjob.c's chain_ask. */
static void chain_reply(wjob *j, int *answer, int v)
{
    pthread_mutex_lock(&j->mu);
    *answer = v;
    pthread_cond_signal(&j->chain_cv);
    pthread_mutex_unlock(&j->mu);
}

#define SWAP(a, b) do { __typeof__(a) t_ = (a); (a) = (b); (b) = t_; } while (0)

/* The answer to the claim of the next chunk of ud's run. ud is alive: its
 * thread waits for this answer, and every call gets one (a NULL reply when
 * the connection goes). */
static void on_chain_claim(worker *w, redisReply *r, void *ud)
{
    wjob *j = ud;
    int got = 0;
    w->chain_inflight -= w->chain_inflight > 0;
    if (r && r->type == REDIS_REPLY_ARRAY) {
        for (size_t i = 0; i < r->elements; i++) {
            redisReply *c = r->element[i];
            if (c->type == REDIS_REPLY_ARRAY && c->elements == 7 && !j->chain)
                got |= start_claimed(w, c->element, c->elements, j->group, j) != NULL;
        }
        release_held(w);
    } else {
        claim_failed(w, r);
    }
    chain_reply(j, &j->chain_answer, got ? 1 : -1);
    send_due_orphans(w);
}

/* The claims trade places: j (its thread, whose cancel flag the pipeline
 * reads, goes on) takes the parked claim of the next chunk, and the parked
 * wjob reports j's finished chunk with rec. The job's payload (item_in: the
 * plan the pipeline reads) and spec stay with j. */
static void chain_swap(worker *w, wjob *j, json_t *rec)
{
    wjob *n = j->chain;
    j->chain = NULL;
    char tok[sizeof j->token], item[sizeof j->item];
    memcpy(tok, j->token, sizeof tok);
    memcpy(j->token, n->token, sizeof tok);
    memcpy(n->token, tok, sizeof tok);
    memcpy(item, j->item, sizeof item);
    memcpy(j->item, n->item, sizeof item);
    memcpy(n->item, item, sizeof item);
    SWAP(j->attempt, n->attempt);
    SWAP(j->claimed_ms, n->claimed_ms);
    SWAP(j->claim_logged, n->claim_logged);
    SWAP(j->last_hb_ok_ms, n->last_hb_ok_ms);
    int64_t t = atomic_exchange(&j->lease_ok_ms, atomic_load(&n->lease_ok_ms));
    atomic_store(&n->lease_ok_ms, t);
    /* a cancel that reached the parked claim (a lost lease, the job
     * cancelled) now stops the run; the finished chunk reports as done */
    int c = atomic_exchange(&n->cancel, 0), expected = 0;
    if (c)
        atomic_compare_exchange_strong(&j->cancel, &expected, c);
    n->thread_started = 0;
    n->thread_done = 1;
    n->item_cpu = json_number_value(json_object_get(rec, "cpu_seconds"));
    int64_t now = ss_mono_ms();
    pthread_mutex_lock(&n->mu);
    n->outcome = WJOB_COMPLETED;
    n->result = rec;
    n->progress = 100;
    n->started_mono_ms = j->started_mono_ms;
    pthread_mutex_unlock(&n->mu);
    pthread_mutex_lock(&j->mu);
    j->started_mono_ms = now;
    j->progress = 5;
    pthread_mutex_unlock(&j->mu);
    chain_reply(j, &j->chain_swapped, 1);
    log_info(j->id, "item %s done; its encode goes on as %s", n->item, j->item);
    atomic_fetch_add(&w->jobs_completed, 1);
    wmetrics_job_ended(w, n, WJOB_COMPLETED);
    wq_finish(w, n);
}

void wq_chain(worker *w, wjob *j)
{
    pthread_mutex_lock(&j->mu);
    int want = j->chain_want;
    json_t *rec = j->chain_rec;
    j->chain_want = -1;
    j->chain_rec = NULL;
    pthread_mutex_unlock(&j->mu);
    if (rec) {
        if (j->chain && atomic_load(&j->cancel) != WJOB_CANCEL_LOST) {
            chain_swap(w, j, rec);
        } else {
            /* nothing parked (the thread never hands one over then), or the
             * finished chunk's lease is gone (its report would be refused,
             * and the run stops): the parked claim, if any, stays for
             * wq_chain_unpark */
            json_decref(rec);
            chain_reply(j, &j->chain_swapped, -1);
        }
    }
    if (want < 0)
        return;
    /* the chunk by name, only while this job is what the queue would give
     * this worker anyway (claim's `only`, as claim_items) */
    char lease[24], aging[24], only[sizeof j->id + 24];
    claim_times(w, lease, aging);
    snprintf(only, sizeof only, "%s/c%d", j->id, want);
    const char *keys[] = { RK_PROCESSING };
    const char *args[] = { w->id, lease, aging, "1", only };
    if (j->chain || w->draining || w->stopping || !w->cmd_connected || w->orphans_due ||
        atomic_load(&j->cancel) || wq_script(w, "claim", 1, keys, 5, args, on_chain_claim, j) != 0)
        chain_reply(j, &j->chain_answer, -1);
    else
        w->chain_inflight++;   /* no orphans release while it is on the wire */
}

/* j's thread ended with the next chunk still parked (its run failed or
 * stopped before that chunk): the chunk runs on a thread of its own. */
void wq_chain_unpark(worker *w, wjob *j)
{
    wjob *n = j->chain;
    if (!n)
        return;
    j->chain = NULL;
    n->thread_started = 0;
    ss_err err = { 0 };
    if (w->draining) {
        /* never started: back to the queue, not counted as an attempt */
        end_unstarted(w, n, WJOB_RELEASE, NULL);
    } else if (wjob_start(w, n, INT_MAX, &err) == 0) {
        n->slot_live = j->slot_live;   /* the slot is n's now */
        j->slot_live = 0;
    } else {
        end_unstarted(w, n, WJOB_FAILED, &err);
    }
}

void wq_try_claim(worker *w)
{
    send_due_orphans(w);
    if (w->orphans_due)
        return;   /* the claims on the wire answer first, then the release */
    char lease[24], aging[24];
    claim_times(w, lease, aging);
    const char *keys[] = { RK_PROCESSING };
    /* with the queue empty, one claim probes (and so marks us idle); once
     * Redis has us in {ss}:idle, none: a notification or the poll comes */
    int limit = !w->queue_empty ? MAX_CLAIMS_IN_FLIGHT : w->idle_marked ? 0 : 1;
    /* the slots the gate lets us fill now */
    int k = 0, busy = worker_slots_busy(w), cap = claim_cap(w);
    /* the slots free, not only room to prefetch: with the queue empty, only
     * they probe (a probe that finds nothing marks the worker idle) */
    int real = (int)w->conf.slots - busy - w->claim_inflight;
    if (w->queue_empty && real <= 0)
        limit = 0;
    while (!w->draining && !w->stopping && w->cmd_connected && k < CLAIM_BATCH_MAX &&
           (k == 0 ? w->claim_inflight < limit : !w->queue_empty) &&
           gate_open(gate_load_after(&w->gate, busy + w->claim_inflight + k),
                     w->conf.cpu_threshold / 100.0, busy + w->claim_inflight + k, cap))
        k++;
    if (k > 0) {
        /* one call claims every free slot (at start, after a wake), each job
         * with its own lease and token */
        char want[16], free[16];
        snprintf(want, sizeof(want), "%d", k);
        if (real < 0)
            real = 0;
        snprintf(free, sizeof(free), "%d", real);
        /* free: the claims beyond it are prefetch, and finding nothing
         * there does not mark us idle */
        const char *args[] = { w->id, lease, aging, want, "", free };
        if (wq_script(w, "claim", 1, keys, 6, args, on_claim,
                       (void *)(intptr_t)(k | (real > k ? k : real) << 8)) == 0)
            w->claim_inflight += k;
    }
    claim_items(w);
}

/* ---- heartbeat and progress ----------------------------------------------- */

static void on_heartbeat(worker *w, redisReply *r, void *ud)
{
    /* ud is the job, still alive: jobs are freed only after their finish
     * call, and that is sent after the heartbeat in flight (FIFO socket)
     * returns; wq_finish waits for hb_inflight == 0. */
    wjob *j = ud;
    j->hb_inflight = 0;
    if (strcmp(j->hb_token, j->token)) {
        /* it renewed the claim j held before a swap (chain_swap): that
         * claim's fate is not this one's */
        if (j->thread_done && !j->finishing)
            wq_finish(w, j);
        return;
    }
    if (!r || r->type != REDIS_REPLY_ARRAY || r->elements != 2) {
        /* an error (READONLY from a demoted master, a dropped link): the
         * job's report still goes now, or from the tick once Redis is back,
         * not after the next heartbeat (which the tick sends first after
         * a reconnect and may fail the same way until the lease is gone) */
        if (j->thread_done && !j->finishing)
            wq_finish(w, j);
        return;
    }
    long long ok = r->element[0]->integer;
    const char *state = r->element[1]->str ? r->element[1]->str : "";
    if (ok == 1) {
        j->last_hb_ok_ms = ss_mono_ms();
        atomic_store(&j->lease_ok_ms, w->reply_sent_ms);
        if (!strcmp(state, "cancelling")) {
            int expected = 0;
            if (atomic_compare_exchange_strong(&j->cancel, &expected, WJOB_CANCEL_USER))
                log_info(j->id, "job is being cancelled: stopping the encode");
        }
    } else {
        int prev = atomic_exchange(&j->cancel, WJOB_CANCEL_LOST);
        if (prev != WJOB_CANCEL_LOST)
            log_warn(j->id, "lease lost (job is now %s): stopping, our late writes are refused", state);
    }
    if (j->thread_done && !j->finishing)
        wq_finish(w, j);
}

static void heartbeat(worker *w, wjob *j)
{
    if (j->hb_inflight || j->finishing || j->reported || !w->cmd_connected)
        return;
    if (atomic_load(&j->cancel) == WJOB_CANCEL_LOST)
        return;
    double pct, speed, fps;
    char stage[24];
    pthread_mutex_lock(&j->mu);
    pct = j->progress;
    speed = j->speed;
    fps = j->fps;
    ss_strlcpy(stage, j->stage, sizeof(stage));
    pthread_mutex_unlock(&j->mu);
    int64_t now = ss_mono_ms();
    /* job.progress events: at most one per progress_event_seconds, and only
     * for a 5% step or a new stage. */
    int emit = 0;
    if (now - j->last_event_ms >= w->conf.progress_event_seconds * 1000 &&
        (pct - j->last_event_pct >= 5 || strcmp(stage, j->last_event_stage) != 0)) {
        emit = 1;
        j->last_event_ms = now;
        j->last_event_pct = pct;
        ss_strlcpy(j->last_event_stage, stage, sizeof(j->last_event_stage));
    }
    char key[160], lease[24], prog[24], sp[24] = "", fp[24] = "";
    if (j->item[0])
        snprintf(key, sizeof(key), RK_ITEM_FMT, j->id, j->item);
    else
        RK_KEY(key, RK_JOB_FMT, j->id);
    snprintf(lease, sizeof(lease), "%lld", w->conf.lease_seconds * 1000);
    snprintf(prog, sizeof(prog), "%.1f", pct);
    if (speed > 0) {
        snprintf(sp, sizeof(sp), "%.3f", speed);
        snprintf(fp, sizeof(fp), "%.1f", fps);
    }
    const char *keys[] = { key };
    const char *args[] = { j->id, j->token, lease, prog, stage, emit ? "1" : "0", sp, fp, j->item };
    if (wq_script(w, "heartbeat", 1, keys, j->item[0] ? 9 : 8, args, on_heartbeat, j) == 0) {
        j->hb_inflight = 1;
        memcpy(j->hb_token, j->token, sizeof j->hb_token);
    }
}

/* ---- finish ---------------------------------------------------------------- */

/* The report is not (known to be) in Redis yet: send it again later. */
static void finish_later(wjob *j)
{
    j->finishing = 0;
    j->finish_failures++;
    j->next_finish_ms = ss_mono_ms() + ss_backoff_ms(j->finish_failures, 500, 5000, ss_random_unit());
}

/* Replicas a report must reach: redis_wait_replicas, or every connected
 * one when fewer are (a failover can only promote a replica; one that
 * connects later copies the data with the report in it). Unknown yet
 * (no ROLE answer): all that were asked for. */
static int wait_target(const worker *w)
{
    int want = (int)w->conf.redis_wait_replicas;
    return w->replicas >= 0 && w->replicas < want ? w->replicas : want;
}

static void on_finish_wait(worker *w, redisReply *r, void *ud)
{
    wjob *j = ud;
    long long n = r && r->type == REDIS_REPLY_INTEGER ? r->integer : -1;
    if (n >= wait_target(w)) {
        worker_job_finished(w, j);
        wake_settle(w);
        return;
    }
    /* Not on a replica in time: a failover could undo it. Report again:
     * Redis either takes it (it was lost) or refuses it with the state
     * we already gave the job (it was kept). */
    log_warn(j->id, "report reached %lld of %d replica(s) within %lld ms; sending it again",
             n < 0 ? 0 : n, wait_target(w), w->conf.redis_wait_ms);
    w->replicas_ms = 0;   /* a replica may have gone: count again */
    finish_later(j);
    wake_settle(w);
}

static void finish_reply(worker *w, redisReply *r, void *ud);

static void on_finish(worker *w, redisReply *r, void *ud)
{
    finish_reply(w, r, ud);   /* may free the job */
    wake_settle(w);
}

static void finish_reply(worker *w, redisReply *r, void *ud)
{
    wjob *j = ud;
    int asked = j->claims_next;
    if (j->claims_next) {
        j->claims_next = 0;
        if (w->claim_inflight > 0)
            w->claim_inflight--;
    }
    int refused = r && r->type == REDIS_REPLY_ARRAY && r->elements == 2 &&
                  r->element[0]->integer == -1;
    int ok = r && r->type == REDIS_REPLY_ARRAY &&
             (r->elements == 2 || r->elements == 7 || r->elements == 9) && r->element[0]->integer == 1;
    if (refused && j->reported && r->element[1]->str &&
        !strcmp(r->element[1]->str, j->reported_state)) {
        /* our earlier report survived after all */
        log_debug(j->id, "report was kept: job is %s", j->reported_state);
        worker_job_finished(w, j);
        return;
    }
    if (!ok && !refused) {
        /* Redis unreachable or answering with an error (LOADING after a
         * restart, READONLY during a failover, BUSY): keep the outcome,
         * keep renewing the lease, and report again with backoff. Only
         * a refusal of our token ends the job without a record. */
        if (r)
            log_warn(j->id, "report not accepted yet (%s); will retry",
                     r->type == REDIS_REPLY_ERROR ? r->str : "unexpected reply");
        finish_later(j);
        return;
    }
    if (ok) {
        const char *st = r->element[1]->str ? r->element[1]->str : "?";
        if (asked && r->elements == 2)
            w->queue_empty = 1;   /* the claim it carried found nothing */
        if (asked && r->elements == 2)
            w->wake_id[0] = 0;    /* its claim found nothing: taken already */
        if ((asked && r->elements == 2 && !j->claim_beyond) || j->says_idle)
            w->idle_marked = 1;   /* (a claim beyond the slots marks nothing) */
        else if (r->elements == 7)
            w->idle_marked = 0;
        log_debug(j->id, "reported: job is now %s", st);
        int wait = wait_target(w) > 0;
        if (wait) {
            j->reported = 1;
            ss_strlcpy(j->reported_state, st, sizeof(j->reported_state));
        }
        if (r->elements >= 7) {
            /* the next job (or work item) came back with the report */
            /* start it before the old job's slot is given up, so the
             * claim wq_try_claim may send next sees the right count */
            w->queue_empty = r->element[6]->integer == 0;
            w->idle_marked = 0;
            if (w->queue_empty)
                w->wake_id[0] = 0;
            start_claimed(w, r->element + 2, r->elements - 2, 0, NULL);
            release_held(w);
        }
        if (wait) {
            /* acknowledged: the job is done for us only once a replica
             * holds the report (WAIT), so a failover cannot undo it */
            char nrep[24], ms[24];
            snprintf(nrep, sizeof(nrep), "%d", wait_target(w));
            snprintf(ms, sizeof(ms), "%lld", w->conf.redis_wait_ms);
            const char *argv[] = { "WAIT", nrep, ms };
            if (wq_call(w, 3, argv, on_finish_wait, j) != 0)
                finish_later(j);
            return;
        }
    } else {
        log_warn(j->id, "report refused: our lease was lost (job is %s); result not recorded",
                 r->element[1]->str ? r->element[1]->str : "?");
    }
    worker_job_finished(w, j);
}

static void finish_one(worker *w, wjob *j, wjob_outcome oc);
static int batch_add(worker *w, wjob *j);

void wq_finish(worker *w, wjob *j)
{
    if (j->finishing)
        return;
    if (j->hb_inflight)
        return;   /* on_heartbeat calls us again */
    pthread_mutex_lock(&j->mu);
    wjob_outcome oc = j->outcome;
    pthread_mutex_unlock(&j->mu);
    int lost = oc == WJOB_LOST || atomic_load(&j->cancel) == WJOB_CANCEL_LOST;
    /* (a draining worker does not wait for Redis to say that an item it
     * lost stopped: that report only shortens a wait, below) */
    if (lost && (!j->item[0] || (w->draining && !w->cmd_connected))) {
        log_warn(j->id, "dropping the job: lease lost, another worker owns it now");
        worker_job_finished(w, j);
        return;
    }
    if (!w->cmd_connected)
        return;   /* retried from the tick when Redis is back */
    if (lost) {
        /* A work item whose claim a re-plan, a retry or the job's end took
         * away: its pipeline has returned (uploads finished or aborted), so
         * it says so. Refused as stale, the call ends the job's wait for
         * this claim (fence_release); with its token still valid (the job
         * failed meanwhile) it leaves the item cancelled, not running until
         * its lease runs out. docs/SPLIT.md "Fencing the old claims" */
        log_info(j->id, "item %s: lease lost, another worker or a new plan owns it now; "
                        "saying it stopped",
                 j->item);
        finish_one(w, j, WJOB_CANCELLED);
        return;
    }
    /* A completed job waits for the others that complete in this pass of
     * the loop: their reports go in one finish_many call (flush_ev). */
    if (oc == WJOB_COMPLETED && !j->item[0] && !j->no_batch && batch_add(w, j) == 0)
        return;
    finish_one(w, j, oc);
}

/* 1 when j's slot is free once j ends: no other claim in its group, none
 * on the wire for it. */
static int group_alone(const worker *w, const wjob *j)
{
    return w->xclaim_group != j->group && group_size(w, j->group) == 1;
}

/* One finish (or item_finish) call for j. */
static void finish_one(worker *w, wjob *j, wjob_outcome oc)
{
    const char *outcome = "failed";
    char *payload = NULL, *evdata = NULL;
    const char *report = NULL, *report_ev = NULL;   /* a completed job's, owned by j */
    char permanent[4] = "0", delay[24] = "0";
    json_t *ev = NULL;
    switch (oc) {
    case WJOB_COMPLETED:
        outcome = "completed";
        wjob_completed_report(j, &report, &report_ev);
        break;
    case WJOB_SPLIT:
        outcome = "split";
        payload = json_dumps(j->result, JSON_COMPACT);
        ev = json_object();
        break;
    case WJOB_CANCELLED:
        outcome = "cancelled";
        ev = json_pack("{ss}", "reason", "cancelled while running");
        break;
    case WJOB_RELEASE:
        outcome = "release";
        ev = json_pack("{sssi}", "reason",
                       w->draining ? "released by a draining worker"
                                   : "prefetched, not started in time: released by the worker",
                       "attempt", j->attempt);
        break;
    default: {
        json_t *e = json_pack("{ssss}", "code", ss_code_name(j->err.code), "message",
                              j->err.msg[0] ? j->err.msg : "unknown error");
        /* a failed finalize names the items at fault: a retry runs them again */
        if (j->item[0] && json_is_array(json_object_get(j->result, "items")))
            json_object_set(e, "items", json_object_get(j->result, "items"));
        payload = json_dumps(e, JSON_COMPACT);
        json_decref(e);
        permanent[0] = ss_err_permanent(j->err.code) ? '1' : '0';
        snprintf(delay, sizeof(delay), "%lld",
                 (long long)ss_backoff_ms(j->attempt, w->conf.retry_base_ms, w->conf.retry_cap_ms,
                                          ss_random_unit()));
        ev = json_object();
    }
    }
    if (ev) {
        evdata = json_dumps(ev, JSON_COMPACT);
        json_decref(ev);
    }
    char key[160], lease[24], aging[24], cpu[32] = "0";
    RK_KEY(key, RK_JOB_FMT, j->id);
    claim_times(w, lease, aging);
    const char *keys[] = { key };
    const char *pl = report ? report : payload ? payload : "{}";
    const char *ed = report_ev ? report_ev : evdata ? evdata : "{}";
    const char *args[] = { j->id, j->token, outcome, pl, permanent, delay, ed, w->id, lease, aging,
                           "idle" };
    const char **tail = &args[10];
    /* Ask for the next job in the same call when this job's slot will be
     * free and the gate is open: one round trip per job. When the last
     * claim said nothing is left, say we are idle instead (the queue then
     * wakes us for new work: no claim runs just to find nothing). */
    int after = worker_slots_busy(w) - group_alone(w, j) + w->claim_inflight;
    /* a release (drain, or a prefetched job that did not start) claims
     * nothing in its place */
    int free_slot = !w->draining && !w->stopping && oc != WJOB_RELEASE &&
                    gate_open(gate_load_after(&w->gate, after), w->conf.cpu_threshold / 100.0,
                              after, claim_cap(w));
    /* a slot of its own, not only room to prefetch: only such a worker
     * says it is idle, or lets a claim that finds nothing mark it so
     * (notify_work would wake it ahead of a really idle one) */
    int real_slot = free_slot && after < (int)w->conf.slots;
    int claim = free_slot && !w->queue_empty && !w->orphans_due;
    int nargs = claim ? (real_slot ? 10 : 11)
                      : real_slot && w->claim_inflight == 0 && !w->orphans_due ? 11 : 7;
    if (claim)
        *tail = "busy";   /* (used only when nargs is 11) */
    /* a split job's work item: its own script, fenced by the item's token
     * (two more arguments: its CPU seconds; the item's backoff, computed
     * from its attempt as a job's) */
    const char *iargs[] = { j->id, j->item, j->token, outcome, pl, permanent, ed, cpu, delay, w->id,
                            lease, aging, *tail };
    if (j->item[0]) {
        snprintf(key, sizeof(key), RK_ITEM_FMT, j->id, j->item);
        snprintf(cpu, sizeof(cpu), "%.2f", j->item_cpu);
    }
    int rc = j->item[0] ? wq_script(w, "item_finish", 1, keys, nargs + 2, iargs, on_finish, j)
                        : wq_script(w, "finish", 1, keys, nargs, args, on_finish, j);
    if (rc == 0) {
        j->finishing = 1;
        j->says_idle = nargs == 11 && !claim;
        j->claim_beyond = claim && !real_slot;
        if (claim) {
            j->claims_next = 1;
            w->claim_inflight++;
        }
    }
    free(payload);
    free(evdata);
}

/* ---- finish_many: the reports of jobs that completed together ------------------- */

/* Reports per finish_many call: bounded, so one call stays short in Redis. */
#define FINISH_BATCH_MAX 64
/* finish_many calls in flight at once: the jobs that complete while one is
 * on the wire go (with the claims for their slots) in a second one right
 * behind it on the same connection, not after its answer; what completes
 * while two are out waits for the first answer, so batches still grow with
 * the load. */
#define FINISH_CALLS_IN_FLIGHT 2

typedef struct fbatch {
    int n, want, idle;
    int free;   /* of want, the claims for free slots (the rest: prefetch) */
    wjob *jobs[];
} fbatch;

static void on_flush(evutil_socket_t fd, short what, void *arg);

/* Queue j's report for flush_ev, which runs once the loop has handled the
 * other events of this pass (the jobs that completed with it). -1: send it
 * alone now. */
static int batch_add(worker *w, wjob *j)
{
    if (!w->flush_ev && !(w->flush_ev = event_new(w->base, -1, 0, on_flush, w)))
        return -1;
    if (w->nbatch == w->batch_cap) {
        int cap = w->batch_cap ? w->batch_cap * 2 : 16;
        wjob **b = realloc(w->batch, (size_t)cap * sizeof(*b));
        if (!b)
            return -1;
        w->batch = b;
        w->batch_cap = cap;
    }
    w->batch[w->nbatch++] = j;
    j->says_idle = 0;
    j->claim_beyond = 0;
    j->finishing = 1;
    j->batched = 1;
    /* at most FINISH_CALLS_IN_FLIGHT batch calls in flight: what completes
     * meanwhile goes in the next one (on_finish_many activates flush_ev),
     * so batches grow with the load instead of one call per completion */
    if (w->nbatch == 1 && w->reports_inflight < FINISH_CALLS_IN_FLIGHT)
        event_active(w->flush_ev, EV_TIMEOUT, 0);
    return 0;
}

static void on_finish_many(worker *w, redisReply *r, void *ud)
{
    fbatch *b = ud;
    if (w->reports_inflight > 0)
        w->reports_inflight--;
    w->reports_jobs -= b->n;
    if (w->reports_jobs < 0)
        w->reports_jobs = 0;
    if (w->reports_inflight < FINISH_CALLS_IN_FLIGHT && w->nbatch > 0 && w->flush_ev)
        event_active(w->flush_ev, EV_TIMEOUT, 0);   /* the reports that waited for this one */
    w->claim_inflight -= b->want;
    if (w->claim_inflight < 0)
        w->claim_inflight = 0;
    int ok = r && r->type == REDIS_REPLY_ARRAY && r->elements >= (size_t)b->n + 1 &&
             r->element[0]->type == REDIS_REPLY_INTEGER && r->element[0]->integer == b->n;
    for (size_t i = 1; ok && i <= (size_t)b->n; i++)
        ok = r->element[i]->type == REDIS_REPLY_ARRAY && r->element[i]->elements == 2;
    if (!ok) {
        /* Redis unreachable or an error: each job reports again, alone
         * (a bad argument of one must not hold back the others); claims
         * the call made before an error go back first */
        if (b->want > 0)
            claim_failed(w, r);
        for (int i = 0; i < b->n; i++) {
            b->jobs[i]->batched = 0;
            if (r)
                b->jobs[i]->no_batch = 1;
            finish_reply(w, r && r->type == REDIS_REPLY_ERROR ? r : NULL, b->jobs[i]);
        }
        free(b);
        wake_settle(w);
        return;
    }
    /* the next jobs first, before the reports give up their slots (so a
     * claim wq_try_claim sends meanwhile sees the right count) */
    size_t claimed = r->elements - 1 - (size_t)b->n;
    for (size_t i = (size_t)b->n + 1; i < r->elements; i++) {
        redisReply *c = r->element[i];
        if (c->type != REDIS_REPLY_ARRAY || (c->elements != 5 && c->elements != 7))
            continue;
        w->queue_empty = c->element[4]->integer == 0;
        w->idle_marked = 0;
        start_claimed(w, c->element, c->elements, 0, NULL);
    }
    release_held(w);
    if ((int)claimed < b->want || (b->want == 0 && b->idle)) {
        /* claim_next found no more (Redis has us in {ss}:idle unless
         * drained or after 16 stale ids): no probing until told */
        w->queue_empty = 1;
        /* only a claim for a free slot that found nothing left us there */
        w->idle_marked = b->want == 0 || (int)claimed < b->free;
        w->wake_id[0] = 0;
    } else if (w->queue_empty) {
        w->wake_id[0] = 0;
    }
    /* one claim check after all the reports, not one per job (each walks
     * the jobs) */
    w->defer_claim++;
    for (int i = 0; i < b->n; i++) {
        b->jobs[i]->batched = 0;
        finish_reply(w, r->element[i + 1], b->jobs[i]);   /* may free the job */
    }
    w->defer_claim--;
    if (w->claim_deferred && !w->defer_claim) {
        w->claim_deferred = 0;
        wq_try_claim(w);
    }
    free(b);
    wake_settle(w);
}

/* One finish_many call for n completed jobs (n >= 1), asking for as many
 * next jobs as the gate allows in the slots they free. */
static void batch_send(worker *w, wjob **jobs, int n)
{
    fbatch *b = calloc(1, sizeof(*b) + (size_t)n * sizeof(wjob *));
    const char **args = calloc(6 + 4 * (size_t)n, sizeof(*args));
    int rc = -1;
    if (b && args) {
        int freed = 0;   /* slots the gate lets us fill again */
        /* as finish_one: the load without our own finished work when
         * nothing else of ours would run (completed jobs, not items: each
         * had a slot of its own), nor the jobs a call still in flight
         * reports (the claims it carries are in claim_inflight) */
        int busy = worker_slots_busy(w) - n - w->reports_jobs, cap = claim_cap(w);
        while (!w->draining && !w->stopping && freed < n &&
               gate_open(gate_load_after(&w->gate, busy + w->claim_inflight + freed),
                         w->conf.cpu_threshold / 100.0,
                         busy + w->claim_inflight + freed, cap))
            freed++;
        /* of those, the ones that are slots, not only room to prefetch:
         * only they may leave the worker marked idle (as finish_one) */
        int real = (int)w->conf.slots - busy - w->claim_inflight;
        real = real < 0 ? 0 : real > freed ? freed : real;
        b->n = n;
        b->want = w->queue_empty || w->orphans_due ? 0 : freed;
        b->free = real;
        b->idle = real > 0 && w->queue_empty && w->claim_inflight == 0 && !w->orphans_due;
        char lease[24], aging[24], want[16], count[16], nreal[16];
        snprintf(nreal, sizeof(nreal), "%d", real);
        claim_times(w, lease, aging);
        snprintf(want, sizeof(want), "%d", b->want);
        snprintf(count, sizeof(count), "%d", n);
        args[0] = w->id;
        args[1] = lease;
        args[2] = aging;
        args[3] = want;
        args[4] = b->want > 0 ? nreal : b->idle ? "idle" : "";
        args[5] = count;
        for (int i = 0; i < n; i++) {
            wjob *j = jobs[i];
            b->jobs[i] = j;
            args[6 + 4 * i] = j->id;
            args[7 + 4 * i] = j->token;
            wjob_completed_report(j, &args[8 + 4 * i], &args[9 + 4 * i]);
        }
        const char *keys[] = { RK_PROCESSING };
        rc = wq_script(w, "finish_many", 1, keys, 6 + 4 * n, args, on_finish_many, b);
    }
    free(args);
    if (rc == 0) {
        w->claim_inflight += b->want;
        w->reports_inflight++;
        w->reports_jobs += n;
        return;
    }
    /* not sent: the tick reports them (one by one) when it can */
    for (int i = 0; i < n; i++) {
        jobs[i]->finishing = 0;
        jobs[i]->batched = 0;
    }
    free(b);
}

static void on_flush(evutil_socket_t fd, short what, void *arg)
{
    worker *w = arg;
    wjob **jobs = w->batch;
    int n = w->nbatch;
    w->batch = NULL;
    w->nbatch = w->batch_cap = 0;
    for (int k = 0; k < n; k += FINISH_BATCH_MAX) {
        int m = n - k < FINISH_BATCH_MAX ? n - k : FINISH_BATCH_MAX;
        if (!w->cmd_connected) {
            for (int i = k; i < n; i++)
                jobs[i]->finishing = jobs[i]->batched = 0;   /* the tick retries */
            break;
        }
        batch_send(w, jobs + k, m);
    }
    free(jobs);
}

/* ---- registry ----------------------------------------------------------------- */

static void registry_beat(worker *w)
{
    json_t *jobs = json_array();
    for (wjob *j = w->jobs; j; j = j->next) {
        pthread_mutex_lock(&j->mu);
        json_array_append_new(jobs, json_pack("{sssfss}", "id", j->id, "progress", j->progress,
                                              "stage", j->stage));
        pthread_mutex_unlock(&j->mu);
    }
    char gate[96];
    int busy = worker_slots_busy(w);
    /* prefetched jobs count in busy (they hold claims), not in the gate's
     * "slots full (n/slots)" */
    int shown = busy < w->conf.slots ? busy : (int)w->conf.slots;
    gate_reason(gate_load_after(&w->gate, busy), w->conf.cpu_threshold / 100.0, shown,
                (int)w->conf.slots,
                w->draining || w->stopping, gate, sizeof(gate));
    json_t *info = json_pack("{ss ss si sI si sf sf ss so sb ss}", "id", w->id, "host", w->host,
                             "cores", w->ncpus, "slots", (json_int_t)w->conf.slots, "busy", busy,
                             "cpu_load", w->gate.load < 0 ? 0 : w->gate.load * 100, "cpu_threshold",
                             w->conf.cpu_threshold, "version", SS_VERSION, "jobs", jobs, "draining",
                             w->draining, "gate", gate);
    char *s = json_dumps(info, JSON_COMPACT);
    json_decref(info);
    char key[256], ttl[16];
    RK_KEY(key, RK_WORKER_FMT, w->id);
    snprintf(ttl, sizeof(ttl), "%lld", w->conf.registry_ttl);
    const char *keys[] = { key };
    const char *args[] = { w->id, ttl, s ? s : "{}" };
    wq_script(w, "worker_beat", 1, keys, 3, args, NULL, NULL);
    free(s);
}

void wq_registry_bye(worker *w)
{
    if (!w->cmd_connected)
        return;
    char key[256];
    RK_KEY(key, RK_WORKER_FMT, w->id);
    const char *keys[] = { key };
    const char *args[] = { w->id };
    wq_script(w, "worker_bye", 1, keys, 1, args, NULL, NULL);
}

/* ---- the tick ---------------------------------------------------------------- */

void wq_tick(worker *w)
{
    int64_t now = ss_mono_ms();
    /* A call outstanding for too long means a hung connection: drop it. */
    wcalls *l = calls(w);
    if (!w->short_since_ms)
        w->short_since_ms = now;
    if (now - w->short_since_ms >= WJOB_SUMMARY_MS) {
        long long n = atomic_exchange(&w->short_completed, 0);
        if (n > 0)
            log_info(NULL, "%lld job(s) completed in under %.1fs each in the last %.0fs "
                           "(their own lines are debug ones)",
                     n, WJOB_SHORT_MS / 1000.0, (double)(now - w->short_since_ms) / 1000);
        w->short_since_ms = now;
    }
    int64_t limit = w->conf.lease_seconds * 1000 / 3;
    if (limit < 2000)
        limit = 2000;
    if (l->head && w->cmd && now - l->head->sent_ms > limit) {
        log_warn(NULL, "redis did not answer for %lld ms: reconnecting", (long long)(now - l->head->sent_ms));
        redisAsyncContext *ac = w->cmd;
        redisAsyncFree(ac);   /* callbacks get NULL; on_cmd_disconnect clears w->cmd */
        w->cmd = NULL;
        w->cmd_connected = 0;
        schedule_reconnect(w);
    }
    if (w->cmd_connected) {
        static int64_t last_hb;
        if (now - last_hb >= w->conf.heartbeat_ms) {
            last_hb = now;
            for (wjob *j = w->jobs; j; j = j->next)
                heartbeat(w, j);
        }
        if (now - w->replicas_ms >= 1000)
            role_refresh(w);
        if (now - w->last_beat_ms >= 2000 && !w->stopping) {
            w->last_beat_ms = now;
            registry_beat(w);
        }
    }
    /* Jobs whose report could not be sent yet (Redis was down); the
     * "claimed" info line of those running WJOB_SHORT_MS. */
    for (wjob *j = w->jobs, *next; j; j = next) {
        next = j->next;
        if (!j->claim_logged && j->claimed_ms && now - j->claimed_ms >= WJOB_SHORT_MS) {
            j->claim_logged = 1;
            log_claim(j, SS_LOG_INFO, now - j->claimed_ms);
        }
        if (j->thread_done && !j->finishing && now >= j->next_finish_ms)
            wq_finish(w, j);
    }
    prefetch_check(w, now);
    /* queued jobs held up behind one that turned out long get threads of
     * their own, up to the slots; those beyond the slots go back */
    wjob_pool_kick(w, 2 * w->conf.prefetch_max_ms, (int)w->conf.slots);
    wq_release_prefetched(w, prefetch_hold_ms(w));
}
