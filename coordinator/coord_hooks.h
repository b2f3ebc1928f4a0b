/* coord_hooks.h — the webhook dispatcher (docs/WEBHOOKS.md).
 *
 * A thread in the coordinator with its own Redis connection and a curl
 * multi handle. It leases due jobs from {ss}:hooks:due (hook_take.lua),
 * POSTs each one's next event, signed (hook_sign.h), through the SSRF
 * guard, and reports the outcome (hook_report.lua). One delivery in flight
 * per job, so a job's events arrive in sequence order; up to
 * webhook_parallel jobs at once. All state lives in Redis: a coordinator
 * that stops or dies loses nothing, and several coordinators share the
 * work. Delivery is at least once: receivers dedupe by event id.
 */
#ifndef SS_COORD_HOOKS_H
#define SS_COORD_HOOKS_H

#include "coord.h"

/* Start the dispatcher thread (c->hooks). Reads c->conf only. */
int hooks_start(coord *c, ss_err *err);
/* Stop it: in-flight deliveries are aborted and handed back to the
 * schedule (due at once, for this or another coordinator). Safe to call
 * when it never started. */
void hooks_stop(coord *c);

/* The retry schedule (pure). */
typedef struct hook_policy {
    long long base_ms;      /* first retry delay (doubles each attempt) */
    long long cap_ms;       /* longest delay between attempts */
    long long max_age_ms;   /* give an event up this long after it was created */
} hook_policy;

/* After failed attempt number `attempt` (1 = the first) of an event created
 * at event_ms, at time now_ms: returns 1 with *next_ms, the time of the
 * next attempt (exponential backoff with jitter from unit in [0,1), never
 * later than the event's deadline event_ms + max_age_ms, so the last try
 * happens at the deadline), or 0 when the deadline has passed: give up. */
int hooks_schedule(const hook_policy *p, int attempt, long long event_ms, long long now_ms,
                   double unit, long long *next_ms);

#endif
