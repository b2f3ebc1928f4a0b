/* coord_reaper.c — the reaper: every reap_interval_ms, the coordinator that
 * wins a short Redis lock (SET NX PX) runs reap.lua, which requeues jobs
 * whose lease expired (with backoff) or dead-letters them after
 * max_attempts, and promotes due retries. Several coordinators may run:
 * only the lock holder acts in a tick. */
#include "coord.h"
#include "log.h"
#include "rkeys.h"
#include "util.h"

static void reap_tick(evutil_socket_t fd, short what, void *arg)
{
    coord *c = arg;
    ss_err err = { 0 };
    char px[24];
    uploads_sweep(c);   /* each coordinator its own spool; no lock needed */
    snprintf(px, sizeof(px), "%lld", c->conf.reap_interval_ms > 100 ? c->conf.reap_interval_ms - 50 : 50);
    redisReply *lock = rconn_cmdf(&c->redis, &err, "SET %s %s NX PX %s", RK_REAPER_LOCK, c->id, px);
    if (!lock) {
        log_debug(NULL, "reaper: %s", err.msg);
        return;
    }
    int mine = lock->type == REDIS_REPLY_STATUS;
    freeReplyObject(lock);
    if (!mine)
        return;
    char base[24], cap[24], jit[32];
    snprintf(base, sizeof(base), "%lld", c->conf.retry_base_ms);
    snprintf(cap, sizeof(cap), "%lld", c->conf.retry_cap_ms);
    snprintf(jit, sizeof(jit), "%.6f", ss_random_unit());
    const char *keys[] = { RK_PROCESSING };
    const char *args[] = { base, cap, jit, "100" };
    redisReply *rep = rconn_script(&c->redis, &err, "reap", 1, keys, 4, args);
    if (!rep) {
        log_warn(NULL, "reaper: %s", err.msg);
        return;
    }
    if (rep->type == REDIS_REPLY_INTEGER && rep->integer > 0)
        log_warn(NULL, "reaper: %lld job(s) lost their worker's lease and were requeued or dead-lettered",
                 rep->integer);
    freeReplyObject(rep);

    /* Retention, every 60 reaper ticks (a minute by default): ended jobs
     * older than retention_days leave Redis (their outputs stay). */
    int64_t now = ss_mono_ms();
    if (c->conf.retention_days > 0 && now - c->last_expire_ms >= c->conf.reap_interval_ms * 60) {
        c->last_expire_ms = now;
        char cutoff[32];
        snprintf(cutoff, sizeof(cutoff), "%lld",
                 (long long)(ss_now_ms() - (int64_t)(c->conf.retention_days * 86400000.0)));
        const char *ekeys[] = { RK_JOBS };
        const char *eargs[] = { cutoff, "1000" };
        rep = rconn_script(&c->redis, &err, "expire", 1, ekeys, 2, eargs);
        if (!rep) {
            log_warn(NULL, "retention: %s", err.msg);
            return;
        }
        if (rep->type == REDIS_REPLY_INTEGER && rep->integer > 0)
            log_info(NULL, "retention: forgot %lld job(s) that ended over %g days ago",
                     rep->integer, c->conf.retention_days);
        freeReplyObject(rep);
    }
}

int reaper_start(coord *c, ss_err *err)
{
    c->reap_timer = event_new(c->base, -1, EV_PERSIST, reap_tick, c);
    if (!c->reap_timer)
        return ss_fail(err, SS_ENOMEM, "event_new failed");
    struct timeval tv = { c->conf.reap_interval_ms / 1000, (c->conf.reap_interval_ms % 1000) * 1000 };
    event_add(c->reap_timer, &tv);
    return 0;
}

void reaper_stop(coord *c)
{
    if (c->reap_timer) {
        event_free(c->reap_timer);
        c->reap_timer = NULL;
    }
}
