/* wpublish.c — playable while encoding: the worker's side of
 * common/lua/publish.lua (wpublish.h). */
#include "wpublish.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log.h"
#include "media.h"
#include "rconn.h"
#include "rkeys.h"
#include "util.h"

/* The publish lease (finalize waits at most that long for a holder).
 * Before each store the holder asks Redis (publish.lua check) whether its
 * lease is still its own with PUB_MARGIN_MS left and finalize has not
 * started: a holder that stalled, or that a newer lease or finalize
 * overtook, stores nothing more, so it cannot write EVENT playlists over
 * the final ones or shrink a newer holder's. */
#define PUB_LEASE_MS 20000
#define PUB_MARGIN_MS 5000

static int open_redis(wjob *j, rconn *rc)
{
    redis_addr a;
    ss_err e = { 0 };
    if (redis_addr_parse(j->conf.redis, &a, &e) != 0) {
        log_warn(j->id, "early publish: %s", e.msg);
        return -1;
    }
    rconn_init(rc, &a, 3000);
    return 0;
}

static redisReply *pub_call(rconn *rc, wjob *j, int nargs, const char **args)
{
    char key[160];
    RK_KEY(key, RK_JOB_FMT, j->id);
    const char *keys[] = { key };
    ss_err e = { 0 };
    redisReply *r = rconn_script(rc, &e, "publish", 1, keys, nargs, args);
    if (!r)
        log_warn(j->id, "early publish: redis: %s", e.msg);
    return r;
}

/* Whether this holder (gen) may store now (publish.lua check). */
static int still_holder(rconn *rc, wjob *j, const char *gen)
{
    char margin[16];
    snprintf(margin, sizeof(margin), "%d", PUB_MARGIN_MS);
    const char *args[] = { j->id, "check", gen, margin };
    redisReply *r = pub_call(rc, j, 4, args);
    int ok = r && r->type == REDIS_REPLY_INTEGER && r->integer > 0;
    if (r)
        freeReplyObject(r);
    if (!ok)
        log_info(j->id, "early publish: the lease is no longer this worker's; stopped");
    return ok;
}

/* Queue <dir>/<sub>/<name> as <prefix><sub>/<name> when it was written. */
static int put_if_there(storage *st, const char *dir, const char *prefix, const char *sub,
                        const char *name, ss_err *e)
{
    char local[4400], key[4400];
    if ((size_t)snprintf(local, sizeof(local), "%s/%s/%s", dir, sub, name) >= sizeof(local) ||
        (size_t)snprintf(key, sizeof(key), "%s%s/%s", prefix, sub, name) >= sizeof(key))
        return ss_fail(e, SS_EINVAL, "early publish: path too long");
    return access(local, F_OK) == 0 ? storage_put_async(st, local, key, e) : 0;
}

/* Store the playlists: every media playlist, then (a barrier) the master,
 * so no master names a playlist that is not there; each stage only while
 * the lease is still this holder's. */
static int store_playlists(storage *st, const char *dir, const char *prefix, const json_t *plan,
                           rconn *rc, wjob *j, const char *gen, ss_err *e)
{
    if (!still_holder(rc, j, gen))
        return 1;
    size_t i;
    json_t *r;
    char local[4400], key[4400];
    json_array_foreach(json_object_get(plan, "rungs"), i, r) {
        const char *name = json_string_value(json_object_get(r, "name"));
        if (put_if_there(st, dir, prefix, name ? name : "", "playlist.m3u8", e) ||
            put_if_there(st, dir, prefix, name ? name : "", "iframes.m3u8", e))
            return -1;
    }
    if (put_if_there(st, dir, prefix, "audio", "playlist.m3u8", e))
        return -1;
    snprintf(local, sizeof(local), "%s/subtitles", dir);
    DIR *d = opendir(local);
    struct dirent *de;
    while (d && (de = readdir(d)))
        if (ss_str_has_suffix(de->d_name, ".m3u8") &&
            put_if_there(st, dir, prefix, "subtitles", de->d_name, e)) {
            closedir(d);
            return -1;
        }
    if (d)
        closedir(d);
    if (storage_wait(st, e))
        return -1;
    if (!still_holder(rc, j, gen))
        return 1;
    snprintf(local, sizeof(local), "%s/master.m3u8", dir);
    snprintf(key, sizeof(key), "%smaster.m3u8", prefix);
    return storage_put(st, local, key, e);
}

void wpub_early(wjob *j, storage *st, const char *scratch, const char *prefix, const json_t *rec)
{
    rconn rc;
    if (open_redis(j, &rc))
        return;
    char *recs = json_dumps(rec, JSON_COMPACT);
    char lease[16], url_key[256], dir[4200];
    snprintf(lease, sizeof(lease), "%d", PUB_LEASE_MS);
    snprintf(url_key, sizeof(url_key), "%smaster.m3u8", prefix);
    snprintf(dir, sizeof(dir), "%s/early", scratch);
    char *url = storage_url(st, url_key);
    const char *take[] = { j->id, "take", j->item, j->token, recs ? recs : "{}", lease };
    redisReply *r = recs && url ? pub_call(&rc, j, 6, take) : NULL;
    storage_set_manifest_cc(st, STORAGE_CC_LIVE);
    /* a lease given for the audio item's final record (in this call or,
     * when another worker held the lease then, in its holder's next one)
     * brings the subtitles: published even when no segment more is listed,
     * and `done` says so (pub_texts) */
    while (r && r->type == REDIS_REPLY_ARRAY && r->elements == 6 && r->element[0]->integer == 1) {
        char gen[24], segs[24];
        int force = r->element[5]->integer == 1, texts = 0;
        snprintf(gen, sizeof(gen), "%lld", r->element[1]->integer);
        json_t *plan = json_loads(r->element[2]->str ? r->element[2]->str : "", 0, NULL);
        json_t *records = json_loads(r->element[3]->str ? r->element[3]->str : "", 0, NULL);
        long long have = r->element[4]->integer;
        freeReplyObject(r);
        ss_err e = { 0 };
        int n = plan && records ? media_publish_early(dir, plan, records, &e) : 0;
        if ((n > have || (force && n > 0 && n == have)) &&
            store_playlists(st, dir, prefix, plan, &rc, j, gen, &e) == 0) {
            log_info(j->id, "published %d segment(s) of every rung while encoding", n);
            texts = force;
        } else {
            if (n < 0 || e.code)
                log_warn(j->id, "early publish: %s", e.msg);
            n = 0;
        }
        json_decref(plan);
        json_decref(records);
        snprintf(segs, sizeof(segs), "%d", n);
        const char *done[] = { j->id, "done", gen, segs, url, texts ? "1" : "0" };
        r = pub_call(&rc, j, 6, done);
    }
    storage_set_manifest_cc(st, STORAGE_CC_DEFAULT);
    if (r)
        freeReplyObject(r);
    free(url);
    free(recs);
    rconn_close(&rc);
}

double wpub_final(wjob *j)
{
    rconn rc;
    if (open_redis(j, &rc))
        return -1;
    double out = -1, t0 = ss_mono_s();
    const char *args[] = { j->id, "final" };
    for (;;) {
        redisReply *r = pub_call(&rc, j, 2, args);
        if (!r || r->type != REDIS_REPLY_ARRAY || r->elements != 4) {
            if (r)
                freeReplyObject(r);
            break;
        }
        long long left = r->element[0]->integer, playable = r->element[1]->integer,
                  created = r->element[2]->integer, now = r->element[3]->integer;
        freeReplyObject(r);
        if (left > 0 && ss_mono_s() - t0 < PUB_LEASE_MS / 1000.0 && !atomic_load(&j->cancel)) {
            usleep(left < 200 ? (useconds_t)left * 1000 : 200000);
            continue;
        }
        if (created > 0)
            out = (double)((playable > 0 ? playable : now) - created) / 1000;
        break;
    }
    rconn_close(&rc);
    return out;
}
