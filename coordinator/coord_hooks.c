/* coord_hooks.c — the webhook dispatcher (coord_hooks.h, docs/WEBHOOKS.md).
 *
 * One thread: a loop around a curl multi handle with webhook_parallel
 * slots. Each turn it
 *   1. leases due jobs into free slots (hook_take.lua: pops them from
 *      {ss}:hooks:due by re-scoring them to now + lease, and returns each
 *      one's next event after hook_seq),
 *   2. builds the envelope (events.h) with the job's metadata, signs it
 *      (hook_sign.h) and starts the POST: timeout webhook_timeout_ms, no
 *      redirects, the SSRF guard on the connect address, at most
 *      HOOK_BODY_CAP bytes of the answer read,
 *   3. reports finished attempts (hook_report.lua): 2xx delivers the event
 *      and keeps the job due while events remain; anything else schedules
 *      the same event again with exponential backoff and jitter, until the
 *      event is older than webhook_max_age_s: then it is undeliverable and
 *      the next event goes.
 * A report that Redis did not take is retried from the slot (the slot
 * stays busy) until Redis answers; the lease protects the job meanwhile.
 * The thread owns its rconn, curl handles and slots; the rest of the
 * coordinator only reads c->conf, which does not change after start.
 */
#include "coord_hooks.h"

#include <curl/curl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "events.h"
#include "hook_sign.h"
#include "log.h"
#include "netguard.h"
#include "rkeys.h"
#include "util.h"

#define HOOK_BODY_CAP   4096    /* bytes of a receiver's answer we read */
#define HOOK_ERR_SNIP   160     /* bytes of it quoted in last_error */
#define HOOK_LEASE_PAD  5000    /* lease = timeout + this */

enum slot_state { SLOT_IDLE = 0, SLOT_SENDING, SLOT_REPORT };

typedef struct hslot {
    int state;
    CURL *easy;
    struct curl_slist *hdrs;
    netguard guard;
    char job[64];
    char token[24];
    char type[32];
    long long seq;
    long long event_ms;     /* the event's creation time (Redis clock) */
    int attempts;           /* failed attempts before this one */
    long long take_ms;      /* Redis time at lease */
    int64_t take_mono;
    int64_t start_mono;
    char *body;
    char resp[HOOK_ERR_SNIP + 1];
    size_t resp_len, resp_total;
    int capped;
    char errbuf[CURL_ERROR_SIZE];
    /* the report */
    char outcome[8];
    long long next_ms;
    char error[400];
    int report_warned;
} hslot;

typedef struct hooks {
    coord *c;
    pthread_t th;
    int running;
    atomic_int stop;
    CURLM *multi;
    rconn redis;
    hslot *slots;
    int nslots;
    hook_policy pol;
    long long lease_ms;
    int64_t next_take;
    int kick;               /* take again without waiting for the poll */
    int64_t quiet_until;    /* rate limit for "redis down" warnings */
} hooks;

int hooks_schedule(const hook_policy *p, int attempt, long long event_ms, long long now_ms,
                   double unit, long long *next_ms)
{
    long long deadline = event_ms + p->max_age_ms;
    if (now_ms >= deadline)
        return 0;
    long long next = now_ms + ss_backoff_ms(attempt, p->base_ms, p->cap_ms, unit);
    if (next > deadline)
        next = deadline;
    *next_ms = next;
    return 1;
}

/* ---- one attempt ------------------------------------------------------------ */

static size_t on_body(char *ptr, size_t size, size_t nmemb, void *ud)
{
    hslot *s = ud;
    size_t n = size * nmemb;
    if (s->resp_len < HOOK_ERR_SNIP) {
        size_t k = HOOK_ERR_SNIP - s->resp_len;
        if (k > n)
            k = n;
        memcpy(s->resp + s->resp_len, ptr, k);
        s->resp_len += k;
        s->resp[s->resp_len] = '\0';
    }
    s->resp_total += n;
    if (s->resp_total > HOOK_BODY_CAP) {
        s->capped = 1;
        return 0;   /* stop reading: the status line is all we need */
    }
    return n;
}

static void slot_clear(hooks *hk, hslot *s)
{
    if (s->easy) {
        curl_multi_remove_handle(hk->multi, s->easy);
        curl_easy_cleanup(s->easy);
    }
    curl_slist_free_all(s->hdrs);
    free(s->body);
    memset(s, 0, sizeof(*s));
}

/* The Redis time now, estimated from the lease reply and the monotonic
 * clock (schedules use Redis' clock, like the event timestamps). */
static long long slot_now(const hslot *s)
{
    return s->take_ms + (long long)(ss_mono_ms() - s->take_mono);
}

/* A failed attempt: retry later or give the event up. */
static void slot_failed(hooks *hk, hslot *s, const char *why)
{
    long long next = 0;
    int attempt = s->attempts + 1;
    if (hooks_schedule(&hk->pol, attempt, s->event_ms, slot_now(s), ss_random_unit(), &next)) {
        ss_strlcpy(s->outcome, "retry", sizeof(s->outcome));
        s->next_ms = next;
        snprintf(s->error, sizeof(s->error), "attempt %d: %s", attempt, why);
        log_warn(s->job, "webhook: event %lld (%s) attempt %d failed: %s; next attempt in %.1fs",
                 s->seq, s->type, attempt, why, (double)(next - slot_now(s)) / 1000.0);
    } else {
        ss_strlcpy(s->outcome, "giveup", sizeof(s->outcome));
        snprintf(s->error, sizeof(s->error),
                 "event %lld undeliverable after %d attempt%s in %llds: %s", s->seq, attempt,
                 attempt == 1 ? "" : "s", hk->pol.max_age_ms / 1000, why);
        log_error(s->job, "webhook: event %lld (%s) given up after %d attempt%s: %s", s->seq,
                  s->type, attempt, attempt == 1 ? "" : "s", why);
    }
    s->state = SLOT_REPORT;
}

/* Which secret signs this job's deliveries: the spec's webhook.secret for a
 * job that named its own webhook, the config's webhook_secret for jobs on
 * the default one. NULL: sent unsigned. */
static const char *job_secret(hooks *hk, json_t *spec)
{
    json_t *w = json_object_get(spec, "webhook");
    if (json_is_object(w) && json_object_get(w, "url")) {
        const char *s = json_string_value(json_object_get(w, "secret"));
        return s && *s ? s : NULL;
    }
    const char *s = hk->c->conf.webhook_secret;
    return s && *s ? s : NULL;
}

/* Start the POST for a freshly leased slot (fields job..attempts set from
 * the lease; url, data and spec as hook_take returned them). */
static void slot_start(hooks *hk, hslot *s, const char *url, const char *data, const char *spec_s)
{
    char why[300];
    json_t *spec = json_loads(spec_s, 0, NULL);
    json_t *env = event_envelope(s->job, s->seq, s->type, s->event_ms, data,
                                 json_object_get(spec, "metadata"));
    s->body = env ? json_dumps(env, JSON_COMPACT) : NULL;
    json_decref(env);
    const char *secret = job_secret(hk, spec);
    char sig[HOOK_SIG_MAX];
    int sig_ok = s->body && hook_sign_header(secret, (long long)(ss_now_ms() / 1000), s->body,
                                             strlen(s->body), sig, sizeof(sig)) == 0;
    json_decref(spec);
    if (!sig_ok) {
        slot_failed(hk, s, "out of memory building the event");
        return;
    }
    s->guard.allow_private = hk->c->conf.allow_private_networks;
    s->guard.allow_http = 1;
    s->guard.max_redirects = 0;
    ss_err err = { 0 };
    if (netguard_check_url(url, &s->guard, &err) != 0) {
        slot_failed(hk, s, err.msg);
        return;
    }
    char h[256];
    s->hdrs = curl_slist_append(s->hdrs, "Content-Type: application/json");
    s->hdrs = curl_slist_append(s->hdrs, "User-Agent: streamscale/" SS_VERSION);
    snprintf(h, sizeof(h), "Streamscale-Event-Id: evt_%s_%lld", s->job, s->seq);
    s->hdrs = curl_slist_append(s->hdrs, h);
    snprintf(h, sizeof(h), "Streamscale-Event-Type: %s", s->type);
    s->hdrs = curl_slist_append(s->hdrs, h);
    snprintf(h, sizeof(h), "Streamscale-Delivery-Attempt: %d", s->attempts + 1);
    s->hdrs = curl_slist_append(s->hdrs, h);
    snprintf(h, sizeof(h), "Streamscale-Signature: %s", sig);
    s->hdrs = curl_slist_append(s->hdrs, h);
    s->hdrs = curl_slist_append(s->hdrs, "Expect:");
    s->easy = curl_easy_init();
    if (!s->easy || !s->hdrs) {
        slot_failed(hk, s, "out of memory starting the request");
        return;
    }
    CURL *e = s->easy;
    curl_easy_setopt(e, CURLOPT_URL, url);
    curl_easy_setopt(e, CURLOPT_POST, 1L);
    curl_easy_setopt(e, CURLOPT_POSTFIELDS, s->body);
    curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE, (long)strlen(s->body));
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, s->hdrs);
    curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, (long)hk->c->conf.webhook_timeout_ms);
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, s);
    curl_easy_setopt(e, CURLOPT_ERRORBUFFER, s->errbuf);
    curl_easy_setopt(e, CURLOPT_PRIVATE, s);
#if LIBCURL_VERSION_NUM >= 0x075700
    /* at shutdown, do not wait for a slow DNS lookup to finish */
    curl_easy_setopt(e, CURLOPT_QUICK_EXIT, 1L);
#endif
    netguard_apply(e, &s->guard);   /* after our options: it sets redirects and protocols */
    s->start_mono = ss_mono_ms();
    if (curl_multi_add_handle(hk->multi, e) != CURLM_OK) {
        snprintf(why, sizeof(why), "cannot start the request");
        slot_failed(hk, s, why);
        return;
    }
    s->state = SLOT_SENDING;
}

/* Keep only printable ASCII of a receiver's answer for the error text. */
static void printable(const char *in, char *out, size_t outlen)
{
    size_t n = 0;
    for (; *in && n + 1 < outlen; in++)
        out[n++] = (*in >= 0x20 && *in < 0x7f) ? *in : ' ';
    out[n] = '\0';
}

static void slot_done(hooks *hk, hslot *s, CURLcode rc)
{
    long code = 0;
    curl_easy_getinfo(s->easy, CURLINFO_RESPONSE_CODE, &code);
    int64_t ms = ss_mono_ms() - s->start_mono;
    char why[360];
    if ((rc == CURLE_OK || (rc == CURLE_WRITE_ERROR && s->capped)) && code >= 200 && code < 300) {
        ss_strlcpy(s->outcome, "ok", sizeof(s->outcome));
        s->state = SLOT_REPORT;
        log_debug(s->job, "webhook: event %lld (%s) delivered: HTTP %ld in %lld ms", s->seq, s->type,
                  code, (long long)ms);
        return;
    }
    ss_err err = { 0 };
    if (netguard_explain(&s->guard, "webhook", &err)) {
        ss_strlcpy(why, err.msg, sizeof(why));
    } else if (code >= 300 && code < 400) {
        char *loc = NULL;
        curl_easy_getinfo(s->easy, CURLINFO_REDIRECT_URL, &loc);
        char red[200] = "";
        if (loc)
            log_redact_url(loc, red, sizeof(red));
        snprintf(why, sizeof(why), "HTTP %ld: redirects are not followed%s%s", code,
                 red[0] ? " (Location: " : "", red[0] ? red : "");
        if (red[0])
            strncat(why, ")", sizeof(why) - strlen(why) - 1);
    } else if (code > 0 && (rc == CURLE_OK || s->capped)) {
        char snip[HOOK_ERR_SNIP + 1];
        printable(s->resp, snip, sizeof(snip));
        snprintf(why, sizeof(why), "HTTP %ld%s%s", code, snip[0] ? ": " : "", snip);
    } else {
        ss_strlcpy(why, s->errbuf[0] ? s->errbuf : curl_easy_strerror(rc), sizeof(why));
    }
    slot_failed(hk, s, why);
}

/* ---- Redis ---------------------------------------------------------------- */

static void redis_trouble(hooks *hk, const char *what, const ss_err *err)
{
    int64_t now = ss_mono_ms();
    if (now >= hk->quiet_until) {
        log_warn(NULL, "webhooks: %s: %s", what, err->msg);
        hk->quiet_until = now + 10000;
    }
}

/* Report a slot's outcome; the slot is free again once Redis took it.
 * Returns -1 when Redis did not answer (the slot keeps the outcome). */
static int slot_report(hooks *hk, hslot *s)
{
    char key[128], seq[24], next[24];
    RK_KEY(key, RK_JOB_FMT, s->job);
    snprintf(seq, sizeof(seq), "%lld", s->seq);
    snprintf(next, sizeof(next), "%lld", s->next_ms);
    const char *keys[] = { key };
    const char *args[] = { s->job, s->token, seq, s->outcome, next, s->error };
    ss_err err = { 0 };
    redisReply *rep = rconn_script(&hk->redis, &err, "hook_report", 1, keys, 6, args);
    if (!rep) {
        if (!s->report_warned)
            log_warn(s->job, "webhook: cannot record the outcome (%s) of event %lld yet, will "
                             "retry: %s", s->outcome, s->seq, err.msg);
        s->report_warned = 1;
        return -1;
    }
    if (rep->type == REDIS_REPLY_ARRAY && rep->elements == 2 && rep->element[0]->integer < 0)
        log_warn(s->job, "webhook: outcome of event %lld not recorded: the delivery lease was "
                         "taken over (this event may be delivered twice)", s->seq);
    else if (!strcmp(s->outcome, "ok"))
        hk->kick = 1;   /* the job's next event may be due at once */
    freeReplyObject(rep);
    slot_clear(hk, s);
    return 0;
}

/* Lease up to `room` due jobs into idle slots. Returns how many. */
static int take(hooks *hk, int room)
{
    char lim[16], lease[24];
    snprintf(lim, sizeof(lim), "%d", room);
    snprintf(lease, sizeof(lease), "%lld", hk->lease_ms);
    const char *keys[] = { RK_HOOKS_DUE };
    const char *args[] = { lim, lease };
    ss_err err = { 0 };
    redisReply *rep = rconn_script(&hk->redis, &err, "hook_take", 1, keys, 2, args);
    if (!rep) {
        redis_trouble(hk, "cannot read the delivery schedule", &err);
        return 0;
    }
    int n = 0;
    if (rep->type == REDIS_REPLY_ARRAY && rep->elements >= 1) {
        long long now = rep->element[0]->integer;
        int64_t mono = ss_mono_ms();
        int si = 0;
        for (size_t i = 1; i < rep->elements; i++) {
            redisReply *e = rep->element[i];
            if (e->type != REDIS_REPLY_ARRAY || e->elements != 9)
                continue;
            while (si < hk->nslots && hk->slots[si].state != SLOT_IDLE)
                si++;
            if (si == hk->nslots)
                break;   /* cannot happen: we asked for `room`; the lease expires */
            hslot *s = &hk->slots[si];
            for (size_t k = 0; k < 9; k++)
                if (e->element[k]->type != REDIS_REPLY_STRING)
                    goto next;
            ss_strlcpy(s->job, e->element[0]->str, sizeof(s->job));
            ss_strlcpy(s->token, e->element[1]->str, sizeof(s->token));
            s->seq = atoll(e->element[3]->str);
            ss_strlcpy(s->type, e->element[4]->str, sizeof(s->type));
            s->event_ms = atoll(e->element[5]->str);
            s->attempts = atoi(e->element[8]->str);
            s->take_ms = now;
            s->take_mono = mono;
            n++;
            slot_start(hk, s, e->element[2]->str, e->element[6]->str, e->element[7]->str);
        next:;
        }
    }
    freeReplyObject(rep);
    return n;
}

/* ---- the loop ---------------------------------------------------------------- */

static void *hooks_main(void *arg)
{
    hooks *hk = arg;
    const coord_conf *cf = &hk->c->conf;
    while (!atomic_load(&hk->stop)) {
        /* outcomes to record (or that Redis has not taken yet) */
        int stuck = 0;
        for (int i = 0; i < hk->nslots; i++)
            if (hk->slots[i].state == SLOT_REPORT && slot_report(hk, &hk->slots[i]) != 0)
                stuck = 1;
        int idle = 0;
        for (int i = 0; i < hk->nslots; i++)
            idle += hk->slots[i].state == SLOT_IDLE;
        int64_t now = ss_mono_ms();
        if (idle > 0 && (hk->kick || now >= hk->next_take)) {
            hk->kick = 0;
            int got = take(hk, idle);
            hk->next_take = now + cf->webhook_poll_ms;
            if (got == idle)
                hk->kick = 1;   /* there may be more due */
            for (int i = 0; i < hk->nslots; i++)
                if (hk->slots[i].state == SLOT_REPORT)
                    hk->kick = 1;   /* failed before sending: report at once */
        }
        int still = 0;
        curl_multi_perform(hk->multi, &still);
        CURLMsg *m;
        int left;
        while ((m = curl_multi_info_read(hk->multi, &left))) {
            if (m->msg != CURLMSG_DONE)
                continue;
            hslot *s = NULL;
            curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, (char **)&s);
            if (s) {
                slot_done(hk, s, m->data.result);
                hk->kick = 1;
            }
        }
        int wait = 0;
        if (stuck) {
            /* Redis is away: no hurry, and no spinning on the reports */
            hk->kick = 0;
            wait = (int)(cf->webhook_poll_ms > 1000 ? 1000 : cf->webhook_poll_ms);
        } else if (!hk->kick) {
            int64_t t = hk->next_take - ss_mono_ms();
            wait = t < 0 ? 0 : t > 1000 ? 1000 : (int)t;
        }
        curl_multi_poll(hk->multi, NULL, 0, wait, NULL);
    }
    /* Shutting down: record what finished, hand back what is in flight. */
    for (int i = 0; i < hk->nslots; i++) {
        hslot *s = &hk->slots[i];
        if (s->state == SLOT_SENDING) {
            ss_strlcpy(s->outcome, "release", sizeof(s->outcome));
            s->state = SLOT_REPORT;
        }
        if (s->state == SLOT_REPORT)
            slot_report(hk, s);
        if (s->state != SLOT_IDLE) {
            log_warn(s->job, "webhook: event %lld left leased (Redis unreachable); another "
                             "coordinator delivers it when the lease ends", s->seq);
            slot_clear(hk, s);
        }
    }
    return NULL;
}

int hooks_start(coord *c, ss_err *err)
{
    const coord_conf *cf = &c->conf;
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != 0)
        return ss_fail(err, SS_EINTERNAL, "curl_global_init failed");
    hooks *hk = calloc(1, sizeof(*hk));
    if (!hk)
        return ss_fail(err, SS_ENOMEM, "out of memory");
    hk->c = c;
    hk->nslots = (int)cf->webhook_parallel;
    hk->slots = calloc((size_t)hk->nslots, sizeof(*hk->slots));
    hk->multi = curl_multi_init();
    if (!hk->slots || !hk->multi) {
        free(hk->slots);
        if (hk->multi)
            curl_multi_cleanup(hk->multi);
        free(hk);
        return ss_fail(err, SS_ENOMEM, "out of memory");
    }
    curl_multi_setopt(hk->multi, CURLMOPT_MAXCONNECTS, (long)hk->nslots);
    hk->pol.base_ms = cf->webhook_retry_base_ms;
    hk->pol.cap_ms = cf->webhook_retry_cap_ms;
    hk->pol.max_age_ms = cf->webhook_max_age_s * 1000;
    hk->lease_ms = cf->webhook_timeout_ms + HOOK_LEASE_PAD;
    redis_addr ra;
    if (redis_addr_parse(cf->redis, &ra, err) != 0) {
        curl_multi_cleanup(hk->multi);
        free(hk->slots);
        free(hk);
        return -1;
    }
    rconn_init(&hk->redis, &ra, (int)cf->redis_timeout_ms);
    atomic_init(&hk->stop, 0);
    c->hooks = hk;
    if (pthread_create(&hk->th, NULL, hooks_main, hk) != 0) {
        c->hooks = NULL;
        curl_multi_cleanup(hk->multi);
        free(hk->slots);
        free(hk);
        return ss_fail(err, SS_EINTERNAL, "cannot start the webhook dispatcher thread");
    }
    hk->running = 1;
    if (cf->webhook_url && *cf->webhook_url && !(cf->webhook_secret && *cf->webhook_secret))
        log_warn(NULL, "webhook_url is set without webhook_secret: deliveries to it are unsigned");
    log_info(NULL, "webhook dispatcher: %d in parallel, timeout %lld ms, retries %lld ms..%lld ms "
                   "for up to %lld s%s", hk->nslots, cf->webhook_timeout_ms,
             cf->webhook_retry_base_ms, cf->webhook_retry_cap_ms, cf->webhook_max_age_s,
             cf->allow_private_networks ? ", private networks allowed" : "");
    return 0;
}

void hooks_stop(coord *c)
{
    hooks *hk = c->hooks;
    if (!hk)
        return;
    if (hk->running) {
        atomic_store(&hk->stop, 1);
        curl_multi_wakeup(hk->multi);
        pthread_join(hk->th, NULL);
    }
    curl_multi_cleanup(hk->multi);
    rconn_close(&hk->redis);
    free(hk->slots);
    free(hk);
    c->hooks = NULL;
    curl_global_cleanup();
}
