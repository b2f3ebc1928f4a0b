/* wmain.c — streamscale-worker: config, the event loop, signals, drain.
 *
 * SIGTERM/SIGINT: stop claiming, let running jobs finish for up to
 * drain_timeout seconds, then release them to the queue (not counted as an
 * attempt) and exit 0. A second signal releases at once. SIGHUP reloads
 * the config file: admission (cpu_threshold, slots), timing (lease,
 * heartbeat, poll, aging, retry backoff, registry TTL, progress events,
 * drain_timeout for the next drain) and log_level take effect at once;
 * threads and the source limits apply to jobs claimed after the reload (a
 * running job keeps the copy it was claimed under, wjob.conf, so its thread
 * never reads what this thread rewrites); connections, storage, ids and
 * paths need a restart.
 */
#include <malloc.h>
#include <signal.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/thread.h>

#include "avlog.h"
#include "log.h"
#include "util.h"
#include "wmetrics.h"
#include "worker.h"

#define OPT(k, t, d, f, lo, hi, h) { k, t, d, offsetof(worker_conf, f), lo, hi, h }

const cfg_opt worker_opts[] = {
    OPT("redis", CFG_STR, "redis://127.0.0.1:6379/0", redis, 0, 0,
        "Redis URL redis://[[user]:password@]host:port/db or "
        "sentinel://[[user]:password@]host1:port1,host2:port2,.../master-name/db"),
    OPT("redis_wait_replicas", CFG_INT, "0", redis_wait_replicas, 0, 16,
        "a job's report counts as delivered once this many replicas hold it (WAIT); else it is "
        "sent again, so a failover cannot undo a finished job; 0 = do not wait"),
    OPT("redis_wait_ms", CFG_INT, "1000", redis_wait_ms, 1, 60000,
        "how long a report waits for redis_wait_replicas"),
    OPT("id", CFG_STR, NULL, id, 0, 0,
        "worker id in the registry, unique in the fleet (default: host name-pid); with a fixed id "
        "a restart after a crash hands its old claims to the reaper at once"),
    OPT("cpu_threshold", CFG_DOUBLE, "85", cpu_threshold, 1, 100,
        "claim only while the machine's CPU load (last ~8 s, percent) is under this; 100 = slots only"),
    OPT("slots", CFG_INT, "1", slots, 1, 64, "jobs this worker runs at once"),
    OPT("threads", CFG_INT, "0", threads, 0, 256,
        "about this many busy cores per job (0 = all cores divided by slots)"),
    OPT("keep_memory", CFG_BOOL, "true", keep_memory, 0, 0,
        "keep freed memory for the next item or job (fewer page faults; the process stays at its "
        "peak size between jobs); read at start"),
    OPT("items_per_slot", CFG_INT, "0", items_per_slot, 0, 64,
        "items of one split job a slot runs at once (0 = by its budget B: below 4 cores one chunk "
        "at a time, else items of ceil(B/4) cores each, 4 on 4, 8 or 16; N = N items of B/N; "
        "1 = one chunk at a time, the audio item beside the first)"),
    OPT("stagger_items", CFG_BOOL, "false", stagger_items, 0, 0,
        "a slot that runs several items of a split job starts its next chunk only once the "
        "running chunk has read all its input (its encoders drain), each with the slot's whole "
        "budget; the audio item runs beside one chunk (docs/SPLIT.md)"),
    OPT("chain_chunks", CFG_BOOL, "true", chain_chunks, 0, 0,
        "a chunk's encode goes on into the job's next chunk when this worker can claim it as the "
        "range ends (same decoder and encoders: no drain, no new pre-roll; docs/SPLIT.md)"),
    OPT("scratch_dir", CFG_STR, "/var/lib/streamscale/scratch", scratch_dir, 0, 0,
        "working folder for downloads and output before upload"),
    OPT("storage", CFG_STR, "file:///var/lib/streamscale/out/", storage, 0, 0,
        "default destination (file:///dir/ or s3://bucket/prefix/) for jobs that name none"),
    OPT("lease_seconds", CFG_INT, "30", lease_seconds, 3, 3600,
        "a claim expires this long after the last renewal (renewed every heartbeat_ms)"),
    OPT("heartbeat_ms", CFG_INT, "1000", heartbeat_ms, 100, 60000,
        "lease renewal and progress update interval"),
    OPT("prefetch", CFG_INT, "32", prefetch, 0, 64,
        "while the last 16 jobs each completed under prefetch_max_ms, claim up to this many jobs beyond "
        "the free slots, so a slot that frees starts its next job without a round trip to Redis "
        "(0 = off; one not started within 2 x prefetch_max_ms, at least 1 s, goes back to the queue)"),
    OPT("prefetch_max_ms", CFG_INT, "50", prefetch_max_ms, 1, 60000,
        "a job that ran under this long counts as short for prefetch"),
    OPT("poll_ms", CFG_INT, "2000", poll_ms, 100, 600000,
        "look for work this often even without a notification"),
    OPT("drain_timeout", CFG_INT, "1800", drain_timeout, 0, 86400,
        "on SIGTERM, seconds to let running jobs finish before releasing them"),
    OPT("claim_delay_ms", CFG_INT, "50", claim_delay_ms, 0, 10000,
        "after a notification, wait up to this long scaled by load, so idle workers win"),
    OPT("aging_seconds", CFG_INT, "300", aging_seconds, 0, 86400,
        "a queued job gains one priority level per this many seconds waited (0 = strict)"),
    OPT("registry_ttl", CFG_INT, "10", registry_ttl, 2, 3600,
        "seconds a silent worker stays in the registry"),
    OPT("progress_event_seconds", CFG_INT, "5", progress_event_seconds, 1, 3600,
        "at most one job.progress event per this many seconds (and per 5%)"),
    OPT("retry_base_ms", CFG_INT, "2000", retry_base_ms, 0, 3600000,
        "retry delay after a failed attempt (doubles per attempt, with jitter)"),
    OPT("retry_cap_ms", CFG_INT, "300000", retry_cap_ms, 0, 86400000, "longest retry delay"),
    OPT("max_duration", CFG_DOUBLE, "21600", max_duration, 0, 1e9,
        "longest source in seconds (0 = no limit)"),
    OPT("chunk_seconds", CFG_DOUBLE, "12", chunk_seconds, 1, 3600,
        "split jobs (spec split auto): chunk length in seconds, rounded to whole segments"),
    OPT("max_pixels", CFG_INT, "35389440", max_pixels, 0, 1LL << 40,
        "largest source frame, width*height (default 8192x4320; 0 = no limit)"),
    OPT("max_file_size", CFG_INT, "21474836480", max_file_size, 0, 1LL << 50,
        "largest source file in bytes (default 20 GiB; 0 = no limit)"),
    OPT("log_level", CFG_STR, "info", log_level, 0, 0, "debug, info, warn or error"),
    OPT("log_format", CFG_STR, "auto", log_format, 0, 0, "auto, json or text"),
    OPT("metrics_listen", CFG_STR, NULL, metrics_listen, 0, 0,
        "address:port for the worker's own /metrics (off when empty)"),
    OPT("s3_endpoint", CFG_STR, NULL, s3_endpoint, 0, 0,
        "S3 endpoint, e.g. https://ACCOUNT.r2.cloudflarestorage.com"),
    OPT("s3_region", CFG_STR, "auto", s3_region, 0, 0, "signing region (auto for R2)"),
    OPT("s3_access_key", CFG_SECRET, NULL, s3_access_key, 0, 0,
        "access key id (else AWS_ACCESS_KEY_ID, else s3_credentials_file)"),
    OPT("s3_secret_key", CFG_SECRET, NULL, s3_secret_key, 0, 0,
        "secret key (else AWS_SECRET_ACCESS_KEY, else s3_credentials_file)"),
    OPT("s3_credentials_file", CFG_STR, NULL, s3_credentials_file, 0, 0,
        "file with access_key = / secret_key = lines, readable only by the service user"),
    OPT("s3_path_style", CFG_BOOL, "true", s3_path_style, 0, 0,
        "path-style URLs (endpoint/bucket/key); false = virtual-host (bucket.endpoint/key)"),
    OPT("upload_parallel", CFG_INT, "16", upload_parallel, 1, 256, "uploads in flight at once"),
    OPT("multipart_threshold", CFG_INT, "67108864", multipart_threshold, 5242880, 1LL << 40,
        "files larger than this (bytes) use multipart upload"),
    OPT("part_size", CFG_INT, "16777216", part_size, 5242880, 5368709120LL,
        "multipart part size in bytes"),
    OPT("upload_retries", CFG_INT, "5", upload_retries, 0, 100,
        "retries per request on 5xx, 429, timeouts and resets"),
    OPT("upload_verify", CFG_BOOL, "false", upload_verify, 0, 0,
        "HEAD every object after upload and compare its size"),
    OPT("public_base_url", CFG_STR, NULL, public_base_url, 0, 0,
        "public URL of the destination (for the URLs in job.json and webhooks)"),
    OPT("allow_private_networks", CFG_BOOL, "false", allow_private_networks, 0, 0,
        "allow sources and endpoints on loopback/private addresses (SSRF guard off for them)"),
    OPT("allow_http_sources", CFG_BOOL, "false", allow_http_sources, 0, 0,
        "allow plain http:// sources (https:// always allowed)"),
    OPT("file_roots", CFG_STR, NULL, file_roots, 0, 0,
        "':'-separated folders that file:// sources and destinations must lie in "
        "(empty: file:// sources and destinations are refused; the worker's own `storage` folder "
        "needs no entry)"),
    OPT("download_timeout", CFG_INT, "3600", download_timeout, 5, 86400,
        "longest source download in seconds"),
    { 0 }
};

/* glibc malloc returns freed memory above 128 KiB-ish to the kernel
 * (mmap'd blocks at once, the heap's top past the trim threshold), so
 * every item's frame buffers, decoder and x264 and filter graph were fresh
 * pages again: ~10k page faults per chunk item (docs/BENCHMARKS.md). With
 * a 32 MiB mmap threshold (its dynamic maximum) and a 1 GiB trim
 * threshold, freed memory stays in the heap for the next item. Both
 * together: setting only the trim threshold turns off glibc's adaptive
 * mmap threshold and maps every frame. And as many arenas as cores
 * (glibc's default is 8 per core): every item starts its threads afresh
 * (rungs, x264's, the decoder's), and with two items at once a new
 * thread mostly got an arena that held none of the memory the last item
 * freed, so it grew that one with fresh pages (measured, a warm worker on
 * 2 cores: 51k page faults per split job of 4 chunks with two items at
 * once, 12k with 2 arenas, 18k for the job unsplit). Not when
 * GLIBC_TUNABLES sets malloc itself (the operator's choice). */
void worker_keep_memory(int ncpus)
{
    const char *t = getenv("GLIBC_TUNABLES");
    if (t && strstr(t, "glibc.malloc."))
        return;
    mallopt(M_MMAP_THRESHOLD, 32 * 1024 * 1024);
    mallopt(M_TRIM_THRESHOLD, 1024 * 1024 * 1024);
    mallopt(M_ARENA_MAX, ncpus > 1 ? ncpus : 1);
}

int worker_busy(const worker *w)
{
    return w->njobs;
}

int worker_slots_busy(const worker *w)
{
    /* The common case in one pass: a claim of a new slot is put at the
     * head of the list with the next group, so groups that fall strictly
     * along the list are all distinct (the pairwise walk below cost 4 % of
     * a 50-slot worker's CPU: it runs on every claim and report). */
    int n = 0, xfound = 0, prev = 0, falling = 1;
    for (const wjob *j = w->jobs; j; j = j->next) {
        falling &= n == 0 || j->group < prev;
        prev = j->group;
        n++;
        xfound |= w->xclaim_group && j->group == w->xclaim_group;
    }
    if (falling)
        return n + (w->xclaim_group && !xfound);
    n = 0;
    xfound = 0;
    for (const wjob *j = w->jobs; j; j = j->next) {
        const wjob *k = w->jobs;
        while (k != j && k->group != j->group)
            k = k->next;
        n += k == j;   /* the first of its group */
        xfound |= w->xclaim_group && j->group == w->xclaim_group;
    }
    return n + (w->xclaim_group && !xfound);
}

int worker_slot_budget(const worker *w)
{
    int ncpus = w->ncpus > 0 ? w->ncpus : 1;
    int b = (int)w->conf.threads;
    if (b <= 0)
        b = ncpus / (int)(w->conf.slots > 0 ? w->conf.slots : 1);
    return b > ncpus ? ncpus : b < 1 ? 1 : b;
}

int worker_items_per_slot(const worker *w, int *threads_each)
{
    int ncpus = w->ncpus > 0 ? w->ncpus : 1;
    int b = worker_slot_budget(w);
    int per = (b + SS_ITEM_CORES - 1) / SS_ITEM_CORES;
    /* below SS_ITEM_CORES: one chunk at a time with the whole budget (the
     * audio item beside c0, claim_items): on 2 cores it cost less wall
     * and CPU than two items at once (docs/BENCHMARKS.md); stagger_items
     * keeps its own rule */
    if (w->conf.items_per_slot == 0 && b < SS_ITEM_CORES && !w->conf.stagger_items)
        per = b;
    if (w->conf.items_per_slot > 0)
        per = b / (int)w->conf.items_per_slot;
    if (per < 1)
        per = 1;
    int k = b / per;
    if (w->conf.items_per_slot > 0 && k > w->conf.items_per_slot)
        k = (int)w->conf.items_per_slot;
    /* a slot without a budget (threads 0 with one slot, threads >= the
     * cores) owns its cores: each item may use twice its share (all of
     * them on 2 cores: no budget, as a job there), so a job's last item,
     * alone, still fills the machine; the kernel shares them meanwhile */
    int each = b < ncpus ? per : 2 * per;
    /* staggered: one chunk at a time runs with the whole budget, the next
     * starts while it drains (claim_items) */
    if (w->conf.stagger_items && k > 1)
        each = b;
    if (threads_each)
        *threads_each = k > 1 ? (each >= ncpus ? 0 : each) : 0;
    return k > 1 ? k : 1;
}

static void stop_loop(worker *w)
{
    if (w->stopping)
        return;
    w->stopping = 1;
    wq_registry_bye(w);
    /* Give the goodbye a moment to be written, then leave the loop. */
    struct timeval tv = { 0, 200000 };
    event_base_loopexit(w->base, &tv);
}

void worker_fatal(worker *w)
{
    w->fatal = 1;
    w->draining = 1;
    stop_loop(w);
}

/* A draining worker leaves once nothing is running and no claim is on
 * the wire (its answer could be a job nobody would then release). */
void worker_check_drain(worker *w)
{
    if (w->draining && w->njobs == 0 && w->claim_inflight == 0 && !w->xclaim_group)
        stop_loop(w);
}

void worker_job_finished(worker *w, wjob *j)
{
    if (j->prev || w->jobs == j) {
        /* in the list; no walk: at 50 slots with prefetch the list holds
         * ~100 jobs and every report unlinked one */
        if (j->prev)
            j->prev->next = j->next;
        else
            w->jobs = j->next;
        if (j->next)
            j->next->prev = j->prev;
        j->prev = j->next = NULL;
        w->njobs--;
    }
    w->xclaim_after_ms = 0;   /* its slot may take another item of the job now */
    wjob_free(j);
    worker_check_drain(w);
    if (w->draining)
        return;
    if (w->defer_claim)
        w->claim_deferred = 1;   /* the caller claims once for all its jobs */
    else
        wq_try_claim(w);
}

static void release_all(worker *w)
{
    for (wjob *j = w->jobs; j; j = j->next) {
        int expected = 0;
        atomic_compare_exchange_strong(&j->cancel, &expected, WJOB_CANCEL_DRAIN);
    }
}

static void on_drain_timeout(evutil_socket_t fd, short what, void *arg)
{
    worker *w = arg;
    w->drain_expired = 1;
    log_warn(NULL, "drain timeout: releasing %d running job(s) back to the queue", w->njobs);
    release_all(w);
}

static void on_term(evutil_socket_t sig, short what, void *arg)
{
    worker *w = arg;
    if (w->draining) {
        log_warn(NULL, "second signal: releasing running jobs now");
        release_all(w);
        return;
    }
    w->draining = 1;
    log_info(NULL, "signal %d: draining (%d job(s) running, up to %llds)", (int)sig, w->njobs,
             w->conf.drain_timeout);
    wq_release_prefetched(w, 0);   /* not started: back to the queue now */
    if (w->njobs == 0 && w->claim_inflight == 0 && !w->xclaim_group) {
        stop_loop(w);
        return;
    }
    struct timeval tv = { (time_t)w->conf.drain_timeout, 0 };
    w->drain_ev = evtimer_new(w->base, on_drain_timeout, w);
    evtimer_add(w->drain_ev, &tv);
}

static void on_hup(evutil_socket_t sig, short what, void *arg)
{
    worker *w = arg;
    worker_conf nc;
    memset(&nc, 0, sizeof(nc));
    ss_err err = { 0 };
    if (cfg_load(worker_opts, &nc, w->argc, w->argv, NULL, NULL, NULL, &err) != 0) {
        log_error(NULL, "SIGHUP: config not reloaded: %s", err.msg);
        cfg_free(worker_opts, &nc);
        return;
    }
    ss_log_level lvl;
    if (log_level_parse(nc.log_level, &lvl) == 0)
        log_set_level(lvl);
    /* The numbers that steer admission and timing take effect at once
     * (lease_seconds with the next renewal; a drain already under way
     * keeps its timer). Connections, storage, ids and paths need a
     * restart. */
    w->conf.cpu_threshold = nc.cpu_threshold;
    w->conf.slots = nc.slots;
    w->conf.threads = nc.threads;
    w->conf.items_per_slot = nc.items_per_slot;
    w->conf.stagger_items = nc.stagger_items;
    w->conf.chain_chunks = nc.chain_chunks;
    w->conf.prefetch = nc.prefetch;
    w->conf.prefetch_max_ms = nc.prefetch_max_ms;
    w->conf.poll_ms = nc.poll_ms;
    w->conf.claim_delay_ms = nc.claim_delay_ms;
    w->conf.aging_seconds = nc.aging_seconds;
    w->conf.lease_seconds = nc.lease_seconds;
    w->conf.heartbeat_ms = nc.heartbeat_ms;
    w->conf.registry_ttl = nc.registry_ttl;
    w->conf.progress_event_seconds = nc.progress_event_seconds;
    w->conf.retry_base_ms = nc.retry_base_ms;
    w->conf.retry_cap_ms = nc.retry_cap_ms;
    w->conf.drain_timeout = nc.drain_timeout;
    w->conf.max_duration = nc.max_duration;
    w->conf.chunk_seconds = nc.chunk_seconds;
    w->conf.max_pixels = nc.max_pixels;
    w->conf.max_file_size = nc.max_file_size;
    log_info(NULL, "SIGHUP: config reloaded (cpu_threshold %.0f%%, slots %lld)", nc.cpu_threshold,
             nc.slots);
    cfg_free(worker_opts, &nc);
    wq_try_claim(w);
}

static void on_tick(evutil_socket_t fd, short what, void *arg)
{
    worker *w = arg;
    cpu_sample s;
    int64_t now = ss_mono_ms();
    if (now - w->last_sample_ms >= 1000 && gate_sample(&s) == 0) {
        int was_measured = w->gate.load >= 0;
        gate_push(&w->gate, &s);
        w->last_sample_ms = now;
        if (!was_measured && w->gate.load >= 0)
            wq_try_claim(w);   /* the first measurement may open the gate */
    }
    wq_tick(w);
}

static void on_poll(evutil_socket_t fd, short what, void *arg)
{
    worker *w = arg;
    w->idle_marked = 0;   /* the safety net: one claim even when marked idle */
    wq_try_claim(w);
    struct timeval tv = { w->conf.poll_ms / 1000, (w->conf.poll_ms % 1000) * 1000 };
    evtimer_add(w->poll_ev, &tv);
}

static void usage(void)
{
    printf("usage: streamscale-worker [-c FILE] [--key value ...]\n"
           "       streamscale-worker encode SOURCE OUTDIR [options]   (see encode --help)\n\n"
           "The streamscale worker daemon: claims jobs from Redis while its CPU gate is\n"
           "open, encodes an H.264/AAC CMAF ladder, uploads it and reports the result.\n\n");
    cfg_usage(stdout, worker_opts);
}

int worker_main(int argc, char **argv);
int worker_main(int argc, char **argv)
{
    return worker_main_with(argc, argv, NULL);
}

int worker_main_with(int argc, char **argv, void (*runner)(wjob *j))
{
    static worker w;
    ss_err err = { 0 };
    int help = 0, argi = 0, rc = 1;

    if (cfg_load(worker_opts, &w.conf, argc, argv, &argi, &help, NULL, &err) != 0) {
        fprintf(stderr, "streamscale-worker: %s\n", err.msg);
        return 2;
    }
    if (help) {
        usage();
        cfg_free(worker_opts, &w.conf);
        return 0;
    }
    if (argi < argc) {
        fprintf(stderr, "streamscale-worker: unexpected argument '%s' (try --help)\n", argv[argi]);
        cfg_free(worker_opts, &w.conf);
        return 2;
    }
    w.argc = argc;
    w.argv = argv;
    w.runner = runner;
    ss_log_level lvl;
    if (log_setup("worker", stdout, w.conf.log_level, w.conf.log_format, &lvl, &err) != 0) {
        fprintf(stderr, "streamscale-worker: %s\n", err.msg);
        cfg_free(worker_opts, &w.conf);
        return 2;
    }
    avlog_install(lvl == SS_LOG_DEBUG);
    if (redis_addr_parse(w.conf.redis, &w.raddr, &err) != 0) {
        log_error(NULL, "config: key 'redis': %s", err.msg);
        goto out;
    }
    gethostname(w.host, sizeof(w.host) - 1);
    if (w.conf.id && *w.conf.id)
        ss_strlcpy(w.id, w.conf.id, sizeof(w.id));
    else
        snprintf(w.id, sizeof(w.id), "%.100s-%d", w.host, (int)getpid());
    w.ncpus = ss_ncpus();
    if (ss_mkdir_p(w.conf.scratch_dir, &err) != 0) {
        log_error(NULL, "config: key 'scratch_dir': %s", err.msg);
        goto out;
    }
    /* Refuse a default destination we cannot open, before claiming work. */
    {
        storage_conf sc = { 0 };
        sc.allow_private = 1;
        if (ss_str_has_prefix(w.conf.storage, "file://")) {
            storage *st = storage_open(w.conf.storage, &sc, &err);
            if (!st) {
                log_error(NULL, "config: key 'storage': %s", err.msg);
                goto out;
            }
            storage_close(st);
        }
    }

    signal(SIGPIPE, SIG_IGN);
    if (w.conf.keep_memory)
        worker_keep_memory(w.ncpus);
    evthread_use_pthreads();
    w.base = event_base_new();
    if (!w.base) {
        log_error(NULL, "event_base_new failed");
        goto out;
    }
    gate_init(&w.gate);
    cpu_sample s;
    if (gate_sample(&s) == 0)
        gate_push(&w.gate, &s);
    w.last_sample_ms = ss_mono_ms();

    if (wmetrics_start(&w, &err) != 0) {
        log_error(NULL, "%s", err.msg);
        goto out;
    }
    if (wq_start(&w, &err) != 0) {
        log_error(NULL, "%s", err.msg);
        goto out;
    }
    w.sig_term = evsignal_new(w.base, SIGTERM, on_term, &w);
    w.sig_int = evsignal_new(w.base, SIGINT, on_term, &w);
    w.sig_hup = evsignal_new(w.base, SIGHUP, on_hup, &w);
    event_add(w.sig_term, NULL);
    event_add(w.sig_int, NULL);
    event_add(w.sig_hup, NULL);
    w.tick_ev = event_new(w.base, -1, EV_PERSIST, on_tick, &w);
    struct timeval tick = { 0, 250000 };
    event_add(w.tick_ev, &tick);
    w.poll_ev = evtimer_new(w.base, on_poll, &w);
    struct timeval ptv = { w.conf.poll_ms / 1000, (w.conf.poll_ms % 1000) * 1000 };
    evtimer_add(w.poll_ev, &ptv);

    char rdesc[512];
    log_info(NULL, "worker ready: id %s, %d cores, %lld slot(s), cpu_threshold %.0f%%, redis %s, "
                   "storage %s", w.id, w.ncpus, w.conf.slots, w.conf.cpu_threshold,
             redis_addr_describe(&w.raddr, rdesc, sizeof(rdesc)), w.conf.storage);
    event_base_dispatch(w.base);
    rc = w.fatal ? 1 : 0;
    log_info(NULL, "worker stopped (%lld completed, %lld failed, %lld cancelled)",
             (long long)w.jobs_completed, (long long)w.jobs_failed, (long long)w.jobs_cancelled);

out:
    wq_stop(&w);
    wjob_pool_stop(&w);
    struct event **evs[] = { &w.sig_term, &w.sig_int, &w.sig_hup, &w.tick_ev, &w.poll_ev,
                             &w.claim_ev, &w.drain_ev, &w.reconnect_ev };
    for (size_t i = 0; i < SS_ARRAY_LEN(evs); i++) {
        if (*evs[i])
            event_free(*evs[i]);
        *evs[i] = NULL;
    }
    wmetrics_stop(&w);
    if (w.base)
        event_base_free(w.base);
    cfg_free(worker_opts, &w.conf);
    return rc;
}
