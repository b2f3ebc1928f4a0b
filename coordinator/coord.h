/* coord.h — the coordinator's internal interface: its config and the state
 * its modules share. The coordinator is one libevent loop (HTTP API,
 * reaper timer) plus the webhook dispatcher thread; each thread has its
 * own blocking Redis connection (rconn.h). */
#ifndef SS_COORD_H
#define SS_COORD_H

#include <pthread.h>
#include <stdatomic.h>

#include <event2/event.h>
#include <event2/http.h>
#include <jansson.h>

#include "config.h"
#include "rconn.h"

typedef struct coord_conf {
    char *listen;              /* host:port */
    char *redis;               /* redis://host:port/db */
    char *api_token;           /* Bearer token for /v1 */
    char *view_token;          /* read-only Bearer token (wall screens): GET only */
    char *log_level;
    char *log_format;
    long long redis_timeout_ms;
    long long redis_wait_replicas; /* acknowledged submits: WAIT for this many replicas */
    long long redis_wait_ms;
    long long reap_interval_ms;
    long long retry_base_ms;   /* reaper backoff after a lost lease */
    long long retry_cap_ms;
    long long max_attempts;    /* default for specs that give none */
    double retention_days;     /* forget ended jobs after this long, 0 = never */
    char *default_destination; /* shown in job links when a spec has none */
    char *output_dir;          /* file:// root served read-only under /files/ */
    char *public_base_url;     /* where viewers reach s3:// outputs */
    char *web_dir;             /* dashboard files */
    char *webhook_url;         /* default webhook for jobs without one */
    char *webhook_secret;
    long long webhook_timeout_ms;
    long long webhook_max_age_s;   /* give up on an event after this long */
    long long webhook_parallel;
    long long webhook_retry_base_ms;   /* first retry delay (doubles, with jitter) */
    long long webhook_retry_cap_ms;    /* longest delay between attempts */
    long long webhook_poll_ms;         /* how often the schedule is read */
    int allow_private_networks;    /* webhooks to loopback/private hosts */
    char *coordinator_id;
    long long max_connections;     /* HTTP connections open at once */
    long long request_timeout_ms;  /* a whole request must arrive within this */
    char *upload_dir;              /* /v1/uploads spool, inside the workers' file_roots */
    long long upload_max_bytes;
    long long upload_retention_hours;
    long long history_sample_seconds;   /* the console's queue history ring */
} coord_conf;

extern const cfg_opt coord_opts[];

struct coord_uploads;   /* coord_uploads.c */
struct console;         /* coord_console.c */
struct hooks;           /* coord_hooks.c */

typedef struct coord {
    coord_conf conf;
    char id[64];
    struct event_base *base;
    struct evhttp *http;
    rconn redis;               /* used by the loop thread only */
    struct event *reap_timer;
    long long last_expire_ms;  /* monotonic: last retention sweep */
    struct event *sig_int, *sig_term;
    long long started_ms;
    struct hooks *hooks;       /* webhook dispatcher (coord_hooks.c) */
    pthread_t watch;           /* probes Redis for the loop's circuit breaker */
    int watch_started;
    atomic_int stopping;
    struct coord_uploads *uploads;   /* NULL when upload_dir is not set */
    struct console *console;         /* queue history (coord_console.c) */
} coord;

/* coord_api.c */
int api_start(coord *c, ss_err *err);

/* coord_uploads.c: the upload spool (start checks upload_dir; sweep runs
 * on the reaper's tick and acts every 10 minutes) */
int uploads_start(coord *c, ss_err *err);
void uploads_stop(coord *c);
void uploads_sweep(coord *c);

/* coord_console.c: the queue history sampler */
int console_start(coord *c, ss_err *err);
void console_stop(coord *c);

/* coord_reaper.c */
int reaper_start(coord *c, ss_err *err);
void reaper_stop(coord *c);

/* coord_store.c: job records as API JSON */
json_t *store_job_json(rconn *r, const char *id, int full, ss_err *err);
json_t *store_job_from_fields(const char *id, json_t *fields, int full);

#endif
