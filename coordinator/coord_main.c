/* coord_main.c — streamscale-coordinator: config, start-up, the event loop,
 * shutdown on SIGINT/SIGTERM. */
#include <errno.h>
#include <signal.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <event2/thread.h>

#include "coord.h"
#include "coord_hooks.h"
#include "log.h"
#include "util.h"

#define OPT(k, t, d, f, lo, hi, h) { k, t, d, offsetof(coord_conf, f), lo, hi, h }

const cfg_opt coord_opts[] = {
    OPT("listen", CFG_STR, "127.0.0.1:8080", listen, 0, 0,
        "address:port the HTTP API listens on"),
    OPT("redis", CFG_STR, "redis://127.0.0.1:6379/0", redis, 0, 0,
        "Redis URL redis://[[user]:password@]host:port/db or "
        "sentinel://[[user]:password@]host1:port1,host2:port2,.../master-name/db"),
    OPT("api_token", CFG_SECRET, NULL, api_token, 0, 0,
        "Bearer token clients must send on /v1 (required)"),
    OPT("view_token", CFG_SECRET, NULL, view_token, 0, 0,
        "read-only Bearer token (wall screens): GET on /v1 only, anything else answers 403"),
    OPT("history_sample_seconds", CFG_INT, "60", history_sample_seconds, 1, 3600,
        "how often the coordinator samples queue depth and throughput for the console's "
        "history (it keeps the last 240 samples)"),
    OPT("log_level", CFG_STR, "info", log_level, 0, 0, "debug, info, warn or error"),
    OPT("log_format", CFG_STR, "auto", log_format, 0, 0,
        "auto (JSON unless stdout is a terminal), json or text"),
    OPT("redis_timeout_ms", CFG_INT, "2000", redis_timeout_ms, 50, 60000,
        "connect and command timeout for Redis"),
    OPT("redis_wait_replicas", CFG_INT, "0", redis_wait_replicas, 0, 16,
        "a submit is answered 201 only once this many replicas hold it (WAIT); 503 when they do "
        "not within redis_wait_ms (resubmitting is safe); 0 = do not wait"),
    OPT("redis_wait_ms", CFG_INT, "1000", redis_wait_ms, 1, 60000,
        "how long a submit waits for redis_wait_replicas"),
    OPT("reap_interval_ms", CFG_INT, "1000", reap_interval_ms, 50, 60000,
        "how often expired leases are reaped"),
    OPT("retry_base_ms", CFG_INT, "2000", retry_base_ms, 0, 3600000,
        "first retry delay after a failed attempt (doubles each attempt, with jitter)"),
    OPT("retry_cap_ms", CFG_INT, "300000", retry_cap_ms, 0, 86400000,
        "longest retry delay"),
    OPT("max_attempts", CFG_INT, "3", max_attempts, 1, 20,
        "attempts per job before it is dead-lettered (a spec may set its own)"),
    OPT("retention_days", CFG_DOUBLE, "30", retention_days, 0, 36500,
        "ended jobs (and their events) are removed from Redis this many days after they ended; "
        "0 keeps them forever; outputs in storage are never touched"),
    OPT("default_destination", CFG_STR, NULL, default_destination, 0, 0,
        "destination shown for jobs whose spec has none (the workers' storage)"),
    OPT("output_dir", CFG_STR, NULL, output_dir, 0, 0,
        "a file:// destination folder served read-only under /files/ (dashboard preview)"),
    OPT("public_base_url", CFG_STR, NULL, public_base_url, 0, 0,
        "public URL of the s3:// destination, for previews"),
    OPT("web_dir", CFG_STR, SS_WEB_DIR, web_dir, 0, 0, "folder with the dashboard files"),
    OPT("upload_dir", CFG_STR, NULL, upload_dir, 0, 0,
        "where POST /v1/uploads puts files (`streamscale submit ./file` with file:// storage); "
        "a folder inside the workers' file_roots; unset = no uploads"),
    OPT("upload_max_bytes", CFG_INT, "21474836480", upload_max_bytes, 1, 1LL << 50,
        "largest file /v1/uploads takes"),
    OPT("upload_retention_hours", CFG_INT, "168", upload_retention_hours, 0, 876000,
        "complete uploads are deleted this long after their last upload (0 = kept); "
        "partial ones after a day without a chunk"),
    OPT("webhook_url", CFG_STR, NULL, webhook_url, 0, 0,
        "default webhook for jobs that name none"),
    OPT("webhook_secret", CFG_SECRET, NULL, webhook_secret, 0, 0,
        "secret that signs deliveries to webhook_url"),
    OPT("webhook_timeout_ms", CFG_INT, "10000", webhook_timeout_ms, 100, 120000,
        "timeout of one delivery attempt"),
    OPT("webhook_max_age_s", CFG_INT, "86400", webhook_max_age_s, 1, 604800,
        "an event not delivered after this long is marked undeliverable"),
    OPT("webhook_parallel", CFG_INT, "8", webhook_parallel, 1, 256,
        "deliveries in flight at once (one per job at a time, in order)"),
    OPT("webhook_retry_base_ms", CFG_INT, "5000", webhook_retry_base_ms, 10, 3600000,
        "delay before the first retry of a failed delivery (doubles each attempt, with jitter)"),
    OPT("webhook_retry_cap_ms", CFG_INT, "1800000", webhook_retry_cap_ms, 10, 86400000,
        "longest delay between two delivery attempts of one event"),
    OPT("webhook_poll_ms", CFG_INT, "250", webhook_poll_ms, 10, 60000,
        "how often the dispatcher looks for due deliveries (new events wait at most this long)"),
    OPT("allow_private_networks", CFG_BOOL, "false", allow_private_networks, 0, 0,
        "allow webhooks to loopback/private addresses (tests, trusted networks)"),
    OPT("coordinator_id", CFG_STR, NULL, coordinator_id, 0, 0,
        "name in logs and locks (default: host name and pid)"),
    OPT("max_connections", CFG_INT, "256", max_connections, 1, 100000,
        "HTTP connections open at once; a connection over the cap gets 503 and is closed"),
    OPT("request_timeout_ms", CFG_INT, "30000", request_timeout_ms, 100, 600000,
        "a request (headers and body) must arrive whole within this long of its first byte, "
        "else the connection is closed"),
    { 0 }
};

static void on_signal(evutil_socket_t sig, short what, void *arg)
{
    coord *c = arg;
    log_info(NULL, "signal %d: shutting down", (int)sig);
    event_base_loopexit(c->base, NULL);
}

/* The loop's Redis connection has a circuit breaker (rconn.h): after a
 * call gets no reply, the loop fails fast (503) instead of waiting a whole
 * redis_timeout_ms per request, and this thread finds out when Redis
 * answers again. It also pings while all is well, so a hang is usually
 * noticed here before a request has to wait for it. */
#define WATCH_OPEN_MS 200
#define WATCH_CLOSED_MS 1000

static void *watch_main(void *arg)
{
    coord *c = arg;
    while (!atomic_load(&c->stopping)) {
        rconn_breaker_probe(&c->redis, 1);
        int wait = rconn_breaker_open(&c->redis) ? WATCH_OPEN_MS : WATCH_CLOSED_MS;
        for (int t = 0; t < wait && !atomic_load(&c->stopping); t += 50)
            nanosleep(&(struct timespec){ 0, 50 * 1000000L }, NULL);
    }
    return NULL;
}

static void usage(void)
{
    printf("usage: streamscale-coordinator [-c FILE] [--key value ...]\n\n"
           "The streamscale HTTP API: takes jobs, stores them in Redis, reaps expired\n"
           "leases, delivers webhooks. See README.md and proto/openapi.yaml.\n\n");
    cfg_usage(stdout, coord_opts);
}

int coord_main(int argc, char **argv);
int coord_main(int argc, char **argv)
{
    static coord c;
    ss_err err = { 0 };
    int help = 0, argi = 0, rc = 1;
    char *cfgpath = NULL;

    if (cfg_load(coord_opts, &c.conf, argc, argv, &argi, &help, &cfgpath, &err) != 0) {
        fprintf(stderr, "streamscale-coordinator: %s\n", err.msg);
        return 2;
    }
    if (help) {
        usage();
        cfg_free(coord_opts, &c.conf);
        return 0;
    }
    if (argi < argc) {
        fprintf(stderr, "streamscale-coordinator: unexpected argument '%s' (try --help)\n", argv[argi]);
        return 2;
    }
    if (log_setup("coordinator", stdout, c.conf.log_level, c.conf.log_format, NULL, &err) != 0) {
        fprintf(stderr, "streamscale-coordinator: %s\n", err.msg);
        return 2;
    }
    if (!c.conf.api_token || strlen(c.conf.api_token) < 8) {
        log_error(NULL, "api_token is required (at least 8 characters): set it in the config "
                        "file, STREAMSCALE_API_TOKEN or --api_token");
        goto out;
    }
    if (c.conf.view_token && *c.conf.view_token &&
        (strlen(c.conf.view_token) < 8 || !strcmp(c.conf.view_token, c.conf.api_token))) {
        log_error(NULL, "view_token must be at least 8 characters and differ from api_token");
        goto out;
    }
    if (c.conf.coordinator_id && *c.conf.coordinator_id) {
        ss_strlcpy(c.id, c.conf.coordinator_id, sizeof(c.id));
    } else {
        char host[48] = "host";
        gethostname(host, sizeof(host) - 1);
        snprintf(c.id, sizeof(c.id), "%s-%d", host, (int)getpid());
    }
    redis_addr ra;
    if (redis_addr_parse(c.conf.redis, &ra, &err) != 0) {
        log_error(NULL, "config: key 'redis': %s", err.msg);
        goto out;
    }
    rconn_init(&c.redis, &ra, (int)c.conf.redis_timeout_ms);
    rconn_breaker_enable(&c.redis);

    signal(SIGPIPE, SIG_IGN);
    evthread_use_pthreads();
    c.base = event_base_new();
    if (!c.base) {
        log_error(NULL, "event_base_new failed");
        goto out;
    }
    c.started_ms = ss_now_ms();
    if (uploads_start(&c, &err) != 0 || api_start(&c, &err) != 0) {
        log_error(NULL, "%s", err.msg);
        goto out;
    }
    if (console_start(&c, &err) != 0 || reaper_start(&c, &err) != 0) {
        log_error(NULL, "%s", err.msg);
        goto out;
    }
    if (hooks_start(&c, &err) != 0) {
        log_error(NULL, "%s", err.msg);
        goto out;
    }
    ss_err rerr = { 0 };
    if (rconn_ensure(&c.redis, &rerr) != 0)
        log_warn(NULL, "%s; serving 503 until it is reachable", rerr.msg);
    if (pthread_create(&c.watch, NULL, watch_main, &c) == 0)
        c.watch_started = 1;
    else
        log_warn(NULL, "cannot start the Redis watch thread: a hung Redis will stall requests");
    c.sig_int = evsignal_new(c.base, SIGINT, on_signal, &c);
    c.sig_term = evsignal_new(c.base, SIGTERM, on_signal, &c);
    event_add(c.sig_int, NULL);
    event_add(c.sig_term, NULL);
    char rdesc[512];
    log_info(NULL, "coordinator %s listening on %s, redis %s", c.id, c.conf.listen,
             redis_addr_describe(&c.redis.addr, rdesc, sizeof(rdesc)));
    event_base_dispatch(c.base);
    rc = 0;

out:
    atomic_store(&c.stopping, 1);
    if (c.watch_started)
        pthread_join(c.watch, NULL);
    reaper_stop(&c);
    console_stop(&c);
    hooks_stop(&c);
    uploads_stop(&c);
    if (c.sig_int)
        event_free(c.sig_int);
    if (c.sig_term)
        event_free(c.sig_term);
    if (c.http)
        evhttp_free(c.http);
    if (c.base)
        event_base_free(c.base);
    rconn_close(&c.redis);
    cfg_free(coord_opts, &c.conf);
    free(cfgpath);
    if (rc == 0)
        log_info(NULL, "coordinator stopped");
    return rc;
}
