/* rkeys.h — the Redis key layout (proto/redis.md is the contract).
 *
 * Every key starts with RK_PREFIX, whose {ss} hash tag puts them all in one
 * Redis Cluster slot, so each Lua script touches one slot.
 */
#ifndef SS_RKEYS_H
#define SS_RKEYS_H

#include <stdio.h>

#define RK_PREFIX "{ss}:"

#define RK_NOTIFY      RK_PREFIX "notify"       /* PUBLISH <job id> on enqueue */
#define RK_WAKE_FMT    RK_PREFIX "wake:%s"      /* PUBLISH <job id> to one idle worker */
#define RK_CTL_FMT     RK_PREFIX "ctl:%s"       /* PUBLISH "cancel" to a running job */
#define RK_CTL_PATTERN RK_PREFIX "ctl:*"
#define RK_JOB_FMT     RK_PREFIX "job:%s"       /* HASH: the job record */
#define RK_ITEM_FMT    RK_PREFIX "item:%s:%s"   /* HASH: a split job's work item (job id, name) */
#define RK_EVENTS_FMT  RK_PREFIX "events:%s"    /* STREAM: the job's events, id 0-<seq> */
#define RK_QUEUE_FMT   RK_PREFIX "q:%s"         /* LIST per priority (high|normal|low) */
#define RK_PROCESSING  RK_PREFIX "processing"   /* ZSET id -> lease deadline ms */
#define RK_DELAYED     RK_PREFIX "delayed"      /* ZSET id -> retry due ms */
#define RK_DEAD        RK_PREFIX "dead"         /* LIST dead-lettered ids */
#define RK_JOBS        RK_PREFIX "jobs"         /* ZSET id -> created ms */
#define RK_STATE_FMT   RK_PREFIX "st:%s"        /* ZSET per state: id -> ms of entry */
#define RK_FENCE       RK_PREFIX "fence"        /* STRING counter: fencing tokens */
#define RK_STATS       RK_PREFIX "stats"        /* HASH counters */
#define RK_WORKERS     RK_PREFIX "workers"      /* ZSET worker id -> last beat ms */
#define RK_WORKER_FMT  RK_PREFIX "worker:%s"    /* STRING JSON info, EX ttl */
#define RK_REAPER_LOCK RK_PREFIX "lock:reaper"  /* STRING, PX: one reaper per tick */
#define RK_HOOKS_DUE   RK_PREFIX "hooks:due"    /* ZSET job id -> next delivery ms */
#define RK_HOOKS_LOCK  RK_PREFIX "lock:hooks"

/* The job states, in proto/redis.md's order. */
extern const char *const rk_states[];   /* NULL-terminated */
int rk_state_valid(const char *s);
int rk_state_final(const char *s);      /* completed, failed, cancelled, dead */

/* snprintf a key from one of the _FMT patterns. */
#define RK_KEY(buf, fmt, id) snprintf((buf), sizeof(buf), (fmt), (id))

#endif
