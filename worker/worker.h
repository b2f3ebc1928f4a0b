/* worker.h — streamscale-worker's internal interface.
 *
 * Threads: one libevent loop thread owns everything that talks to Redis
 * (two hiredis async contexts: one SUBSCRIBEd to notifications and cancel
 * messages, one for commands), the CPU gate, lease renewal and the
 * registry heartbeat. Each claimed job runs on a job thread (wjob.c: a pool
 * of long-lived threads, one job at a time each):
 * download, media pipeline, upload. The job thread never touches Redis;
 * it publishes progress into its wjob under a mutex and signals the loop
 * with event_active() when it is done, so a CPU-bound encode can never
 * starve lease renewal.
 */
#ifndef SS_WORKER_H
#define SS_WORKER_H

#include <event2/event.h>
#include <hiredis/async.h>
#include <jansson.h>
#include <pthread.h>
#include <stdatomic.h>

#include "config.h"
#include "gate.h"
#include "rconn.h"
#include "ss_err.h"
#include "storage.h"

typedef struct worker_conf {
    char *redis;
    long long redis_wait_replicas; /* a report counts once this many replicas hold it */
    long long redis_wait_ms;
    char *id;
    double cpu_threshold;          /* percent, 100 = no CPU check */
    long long slots;
    long long threads;             /* encoder threads per job, 0 = all cores */
    long long items_per_slot;      /* split jobs: items a slot runs at once, 0 = by its budget */
    int stagger_items;             /* a slot's next item only once its chunk's input is done */
    int chain_chunks;              /* a chunk's run goes on into the job's next chunk (wjob.chain) */
    long long prefetch;            /* jobs claimed beyond the free slots while jobs are short */
    long long prefetch_max_ms;     /* a job that ran under this long counts as short */
    int keep_memory;               /* malloc keeps freed memory (worker_keep_memory) */
    char *scratch_dir;
    char *storage;                 /* default destination URL */
    long long lease_seconds;
    long long heartbeat_ms;
    long long poll_ms;
    long long drain_timeout;       /* seconds */
    long long claim_delay_ms;      /* max hold-back after a notification, scaled by load */
    long long aging_seconds;       /* a waiting job gains one priority level per period */
    long long registry_ttl;        /* seconds */
    long long progress_event_seconds;
    long long retry_base_ms;       /* backoff before the next attempt after a failure */
    long long retry_cap_ms;
    double max_duration;           /* seconds of source, 0 = no limit */
    double chunk_seconds;          /* split jobs: chunk length (spec split "auto") */
    long long max_pixels;          /* source width*height */
    long long max_file_size;       /* bytes */
    char *log_level;
    char *log_format;
    char *metrics_listen;
    /* storage (s3://) and sources */
    char *s3_endpoint;
    char *s3_region;
    char *s3_access_key;
    char *s3_secret_key;
    char *s3_credentials_file;
    int s3_path_style;
    long long upload_parallel;
    long long multipart_threshold;
    long long part_size;
    long long upload_retries;
    int upload_verify;
    char *public_base_url;
    int allow_private_networks;
    int allow_http_sources;
    long long download_timeout;    /* seconds per source download */
    char *file_roots;              /* folders file:// sources/destinations may use */
} worker_conf;

extern const cfg_opt worker_opts[];

typedef enum wjob_outcome {
    WJOB_RUNNING = 0,
    WJOB_COMPLETED,
    WJOB_FAILED,
    WJOB_CANCELLED,
    WJOB_RELEASE,       /* drain: give it back without counting the attempt */
    WJOB_LOST,          /* the lease was lost: write nothing */
    WJOB_SPLIT          /* planned as a split job: result is the plan (finish "split") */
} wjob_outcome;

/* cancel flag values (wjob.cancel) */
#define WJOB_CANCEL_USER 1
#define WJOB_CANCEL_LOST 2
#define WJOB_CANCEL_DRAIN 3

/* Per-job info lines ("claimed", "completed in") only for jobs that run at
 * least this long; shorter ones log them at debug, and the worker sums
 * them up in one info line per WJOB_SUMMARY_MS (docs/OPERATIONS.md,
 * "Logs"): a no-op queue job cost two formatted writes under the log lock. */
#define WJOB_SHORT_MS 1000
#define WJOB_SUMMARY_MS 60000

/* A slot whose CPU budget is larger runs several items of one split job at
 * once, each with about this many cores at most (worker_items_per_slot) */
#define SS_ITEM_CORES 4

typedef struct worker worker;
typedef struct wjob_pool wjob_pool;

typedef struct wjob {
    worker *w;
    /* The config the job was claimed under: a copy made on the loop thread
     * at the claim, read-only afterwards. The job thread reads settings
     * only from here, never from w->conf, which SIGHUP rewrites on the loop
     * thread (its strings are never replaced, only its numbers). */
    worker_conf conf;
    struct wjob *next, *prev;   /* worker.jobs, newest first (prev: unlinked without a walk;
                                 * in the list = prev set or the head) */
    char id[64];
    char token[32];
    int attempt;
    json_t *spec;               /* canonical spec (owned): parsed, and freed, by the job thread */
    char *spec_text;            /* the claim's spec JSON (owned; the job thread parses it) */
    char item[16];              /* a split job's work item ("c3", "audio", "finalize"); "" = the job */
    json_t *item_in;            /* its claim payload: {plan, results, items} (owned) */
    char *rep_payload, *rep_evdata;   /* wjob_completed_report's text (owned) */
    int rep_built;              /* wjob_completed_report ran (its dumps may be NULL) */
    double item_cpu;            /* CPU seconds the item took (set by the job thread) */
    int item_threads;           /* > 0: its CPU budget (mo.threads) when several items of
                                 * one job share a slot (worker_items_per_slot) */
    int group;                  /* the slot it runs in: the claims of one slot share it
                                 * (several items of one split job, docs/SPLIT.md) */
    struct wjob *pool_next;     /* wjob.c: handed to the job threads, not yet taken */
    int64_t pool_queued_ms;     /* wjob.c, under the pool's lock: when it was handed over */
    int thread_started;         /* handed to a job thread that has not signalled done_ev */
    int slot_live;              /* counted in worker.slots_live */
    int prefetched;             /* loop: claimed beyond the slots, waiting in the pool for a
                                 * thread that ends its job (wjob_start hold) */
    atomic_int cancel;          /* read by the pipeline; WJOB_CANCEL_* */
    atomic_llong lease_ok_ms;   /* ss_boot_ms (a suspend counts): when the claim or the last renewal Redis
                                 * accepted was sent; a job that waited in the pool starts
                                 * only while this is under half a lease old */
    struct event *done_ev;      /* activated by the job thread when it ends */
    struct event *input_ev;     /* a chunk item: activated when its input is done */
    atomic_int input_done;      /* a chunk item fed all its input: its encoders drain
                                 * (stagger_items, claim_items) */
    int audio_asked;            /* loop, stagger_items: c0's slot asked for the audio item */
    /* A chunk's run that goes on into the job's next chunk (chain_chunks,
     * docs/SPLIT.md): the job thread asks for chunk chain_want (chain_ev);
     * the loop claims it by name and parks the claim in `chain` (not
     * started: this job's thread encodes it); when the thread hands over
     * the finished chunk's record (chain_rec, chain_ev), the loop swaps the
     * two claims: this wjob, whose cancel flag the pipeline reads, takes
     * the parked claim and the parked wjob reports the finished chunk. */
    struct wjob *chain;         /* loop: the parked claim of the next chunk */
    struct event *chain_ev;     /* thread -> loop: chain_want or chain_rec is set */
    pthread_cond_t chain_cv;    /* loop -> thread: chain_answer / chain_swapped (under mu) */
    int chain_want;             /* under mu: the chunk asked for (-1: none) */
    int chain_answer;           /* under mu: 1 it is parked, -1 not, 0 no answer yet */
    json_t *chain_rec;          /* under mu: the finished chunk's record, for the swap */
    int chain_swapped;          /* under mu: 1 the loop swapped the claims, -1 it could not */

    pthread_mutex_t mu;         /* guards the fields below */
    double progress;            /* 0..100 */
    double speed, fps;          /* the encode's average so far (x real time, frames/s); 0 = none */
    double pos_t0, pos_media0;  /* the first position report: monotonic s, title s */
    int64_t pos_frames0;
    char stage[24];
    wjob_outcome outcome;
    json_t *result;             /* job.json content on success (owned) */
    ss_err err;
    int64_t started_mono_ms;
    int64_t ran_ms;             /* how long the runner ran; -1 = it never started */

    /* loop-thread only */
    int64_t claimed_ms;         /* monotonic: when the claim came back */
    int claim_logged;           /* the info "claimed" line is out (wq_tick) */
    int claim_busy;             /* slots busy with it, at the claim (for that line) */
    double claim_load;          /* the CPU load then, 0..1 */
    int hb_inflight;
    char hb_token[32];          /* the claim that heartbeat renews (a swap may change j->token) */
    int finishing;              /* finish script in flight or pending */
    int claims_next;            /* that finish also claims the next job */
    int says_idle;              /* that finish marks the worker idle instead */
    int claim_beyond;           /* the claim it carries is beyond the slots (prefetch) */
    int batched;                /* waiting in (or sent with) a finish_many batch */
    int no_batch;               /* a batch with it failed: report it alone */
    int finish_failures;        /* reports Redis did not accept yet */
    int64_t next_finish_ms;     /* monotonic: no report before this */
    int thread_done;
    int release_held;           /* a claim to hand back: release_held() sends it, newest first */
    double last_event_pct;
    int64_t last_event_ms;
    char last_event_stage[24];
    int64_t last_hb_ok_ms;
    int reported;               /* Redis took the report; waiting for replicas (WAIT) */
    char reported_state[16];    /* the state that report gave the job */
} wjob;

struct worker {
    worker_conf conf;
    char id[128];
    char host[128];
    int ncpus;
    char **argv;                /* for SIGHUP reloads */
    int argc;
    struct event_base *base;
    redisAsyncContext *cmd, *sub;
    int cmd_connected, sub_connected;
    int redis_failures;
    struct event *reconnect_ev;
    struct event *tick_ev, *poll_ev, *claim_ev, *drain_ev;
    struct event *sig_term, *sig_int, *sig_hup;
    redis_addr raddr;
    cpu_gate gate;
    int64_t last_sample_ms;
    wjob *jobs;
    int njobs;
    int claim_inflight;         /* claim scripts sent, not answered */
    int orphans_due;            /* a claim call errored: release what Redis gave us unknown,
                                 * once no other claim is on the wire (wqueue.c) */
    int next_group;             /* the last wjob.group given out */
    int xclaim_group;           /* a claim of another item for this slot (group) in flight */
    int chain_inflight;         /* claims of a run's next chunk on the wire (wq_chain) */
    int64_t xclaim_after_ms;    /* monotonic: no such claim before (the last found none) */
    int queue_empty;            /* the last claim found nothing */
    char wake_id[64];           /* woken for this job while a claim was in flight */
    int idle_marked;            /* a claim found nothing (Redis has us in {ss}:idle unless
                                 * drained or after 16 stale ids): no probing claims
                                 * until a notification or the poll tick */
    int connected_once;         /* Redis answered us before (orphan check mode) */
    int draining;               /* SIGTERM seen: claim nothing more */
    int drain_expired;
    int stopping;               /* loop is about to exit */
    int fatal;                  /* stopped for an error a restart will not fix: exit 1 */
    int redis_answered;         /* some command of ours was ever accepted */
    int cmd_answered;           /* the command connection got a reply since it opened */
    int replicas;               /* replicas of the server (ROLE), for WAIT; -1 unknown */
    int role_inflight;
    int64_t replicas_ms;        /* monotonic: when replicas was asked for */
    int64_t last_beat_ms;
    struct wcalls *calls;       /* in-flight Redis calls (wqueue.c) */
    int64_t reply_sent_ms;      /* ss_boot_ms: when the call whose reply is handled now was sent */
    wjob **batch;               /* completed jobs whose report waits for flush_ev */
    int nbatch, batch_cap;
    struct event *flush_ev;     /* sends the batch once this loop pass's jobs are in */
    int reports_inflight;       /* finish/finish_many calls of batchable reports in flight */
    int reports_jobs;           /* the completed jobs those calls report */
    /* short jobs (under WJOB_SHORT_MS) log at debug; the tick sums them up at info */
    atomic_llong short_completed;
    int64_t short_since_ms;
    wjob_pool *pool;            /* the long-lived job threads (wjob.c) */
    int short_run;              /* jobs in a row that completed under prefetch_max_ms (prefetch) */
    double run_avg_ms;          /* the jobs' run time, moving average (prefetch's depth) */
    int slots_live;             /* claims of a slot of their own handed to the pool, not
                                 * ended (wjob.slot_live): prefetch holds beyond these */
    int defer_claim;            /* > 0: worker_job_finished leaves wq_try_claim to the caller */
    int claim_deferred;         /* ... which then calls it once */
    atomic_llong jobs_completed, jobs_failed, jobs_cancelled;
    struct wmetrics *metrics;   /* wmetrics.c: counters, /metrics on metrics_listen */
    /* What a claimed job runs on its thread: the media pipeline
     * (wjob_run_media) in the product; benchmarks and queue tests plug in
     * a no-op executor over the same queue code. */
    void (*runner)(wjob *j);
};

/* wqueue.c: Redis side (loop thread only) */
int wq_start(worker *w, ss_err *err);
void wq_stop(worker *w);
void wq_tick(worker *w);                 /* heartbeats, registry, timeouts */
void wq_try_claim(worker *w);
void wq_finish(worker *w, wjob *j);      /* report a finished job */
/* chain_ev of j's run (wjob.chain): claim the chunk its thread asks for,
 * or swap the claims once it hands over the finished chunk's record */
void wq_chain(worker *w, wjob *j);
/* j's thread ended: a chunk still parked in j->chain gets a thread of its own */
void wq_chain_unpark(worker *w, wjob *j);
void wq_registry_bye(worker *w);
/* Give prefetched jobs that no thread has taken back to the queue, those
 * claimed at least unstarted_ms ago (0: all, for a drain). */
void wq_release_prefetched(worker *w, int64_t unstarted_ms);

/* wjob.c: the job threads. wjob_start hands j to an idle thread of the
 * worker's pool (a new one when none is idle), unless run_limit threads
 * already run jobs or are about to look at the queue: then the first of
 * them that ends its job takes it, before it sleeps (short jobs: no hand-off
 * to a sleeping thread; INT_MAX = a thread for every job). wjob_pool_kick
 * (the tick) gives the queued jobs threads, up to run_limit running, once
 * the oldest has waited waited_ms (a job that turned out long holds up the
 * ones behind it). wjob_unqueue takes a job back that no thread has taken
 * yet (1; 0 when one has). A job whose cancel flag is set before a thread
 * takes it ends without running (released, lost or cancelled, as the flag
 * says). wjob_pool_stop ends the threads (after the loop: nothing may run). */
int wjob_start(worker *w, wjob *j, int run_limit, ss_err *err);
void wjob_pool_kick(worker *w, int64_t waited_ms, int run_limit);
int wjob_unqueue(worker *w, wjob *j);
void wjob_pool_stop(worker *w);
/* Job thread: parse the claim's spec (j->spec_text) into j->spec once;
 * -1 (err set) when it is not JSON. */
int wjob_parse_spec(wjob *j, ss_err *err);
/* A completed job's report as JSON text: the result (payload) and the
 * job.completed event's data, built once (by the job thread as it ends
 * the job) and owned by j. */
void wjob_completed_report(wjob *j, const char **payload, const char **evdata);
void wjob_free(wjob *j);
/* loop thread: called when done_ev fires */
void wjob_reap_thread(wjob *j);

/* wconf.c: the config as module settings */
struct source_conf;
void worker_storage_conf(const worker_conf *wc, storage_conf *sc);
void worker_source_conf(const worker_conf *wc, struct source_conf *c);

/* The media job: source, pipeline, upload, job.json (wjob.c). */
void wjob_run_media(wjob *j);
/* Record a runner's outcome (thread-safe). err may be NULL on success;
 * result (stolen) is the job.json document for WJOB_COMPLETED. */
void wjob_set_outcome(wjob *j, wjob_outcome oc, const ss_err *err, json_t *result);

/* wmain.c */
void worker_job_finished(worker *w, wjob *j);   /* after the finish script */
/* Stop at once for an error a retry cannot fix (already logged): exit 1. */
void worker_fatal(worker *w);
int worker_busy(const worker *w);
/* malloc keeps freed memory for the next item (keep_memory; wmain.c) */
void worker_keep_memory(int ncpus);
/* Slots busy: the distinct groups of the running claims (several items of
 * one split job share one slot), counting a group whose item claim is in
 * flight. */
int worker_slots_busy(const worker *w);
/* How many items of one split job a slot runs at once (1: one, as a job),
 * and the CPU budget (threads) of each (docs/SPLIT.md "Several items at
 * once"): a slot's budget B (threads, or cores / slots; at most the cores)
 * gives each item ceil(B / 4) tokens, and the slot B / that many items;
 * items_per_slot N > 0: N items of B / N tokens each (at least 1). A slot
 * without a budget (B = every core) gives each item twice that (0 = no
 * budget when that is every core). */
int worker_items_per_slot(const worker *w, int *threads_each);
/* A slot's CPU budget B in cores (threads, or cores / slots; 1 to the
 * cores). */
int worker_slot_budget(const worker *w);
/* A draining worker exits once nothing runs and no claim is in flight. */
void worker_check_drain(worker *w);
/* The daemon; runner NULL = the media pipeline. */
int worker_main_with(int argc, char **argv, void (*runner)(wjob *j));

#endif
