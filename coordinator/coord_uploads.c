/* coord_uploads.c — /v1/uploads: a local file into the workers' reach when
 * storage is file:// (proto/openapi.yaml "uploads").
 *
 * `streamscale submit talk.mp4` on a machine whose workers cannot read the
 * user's folder (an installed system: ProtectHome, file_roots) sends the
 * file here in chunks; the coordinator writes them into `upload_dir`, a
 * folder inside the workers' file_roots, and answers a file:// URL to
 * submit. evhttp reads a whole request body before a handler runs, so a
 * file comes as PUT requests of at most API_MAX_BODY bytes each, every one
 * with the token checked; memory stays at one chunk per connection.
 *
 * Layout under upload_dir (state on disk, so any coordinator sharing the
 * folder, or a restarted one, can go on with an upload):
 *   .partial/<id>        the bytes so far (its size is the upload's offset)
 *   .partial/<id>.json   what was announced: name, size, sha256
 *   <sha256>/<name>      a complete upload, renamed there atomically once
 *                        its SHA-256 matched the announced one
 * The id is derived from (name, size, sha256), so submitting the same file
 * again resumes an interrupted upload, or finds it complete and sends
 * nothing. The SHA-256 is computed as chunks arrive (kept in memory per
 * upload; a coordinator that did not see the start reads the partial file
 * once). uploads_sweep() removes partial uploads untouched for a day and
 * complete ones older than upload_retention_hours.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/time.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/keyvalq_struct.h>
#include <openssl/evp.h>

#include "coord.h"
#include "coord_http.h"
#include "log.h"
#include "util.h"

#define UP_SLOTS 32                       /* uploads hashed in memory at once */
#define UP_PARTIAL_MAX_AGE_S (24 * 3600)  /* a partial upload untouched this long goes */
#define UP_SWEEP_EVERY_MS (10 * 60 * 1000)

typedef struct up_hash {
    char id[24];
    EVP_MD_CTX *ctx;
    long long hashed;        /* bytes of the partial file fed to ctx */
    long long used_ms;
} up_hash;

struct coord_uploads {
    up_hash slot[UP_SLOTS];
    long long last_sweep_ms;
};

typedef struct up_meta {
    char name[256];
    char sha[65];
    long long size;
} up_meta;

static int hex64(const char *s)
{
    size_t n = 0;
    while (s && ((s[n] >= '0' && s[n] <= '9') || (s[n] >= 'a' && s[n] <= 'f')))
        n++;
    return s && n == 64 && !s[n];
}

/* A file name safe to store and put in a URL: letters, digits, . _ - kept,
 * other bytes become _, at most 128 bytes, never "." or "..". */
static int safe_name(const char *in, char *out, size_t outlen)
{
    size_t n = 0;
    for (const unsigned char *p = (const unsigned char *)in; *p && n + 1 < outlen && n < 128; p++)
        out[n++] = (char)((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
                          (*p >= '0' && *p <= '9') || *p == '.' || *p == '_' || *p == '-' ? *p : '_');
    out[n] = '\0';
    if (!n || !strcmp(out, ".") || !strcmp(out, ".."))
        return -1;
    if (out[0] == '.')
        out[0] = '_';
    return 0;
}

static void up_paths(coord *c, const char *id, char *data, char *meta, size_t n)
{
    snprintf(data, n, "%s/.partial/%s", c->conf.upload_dir, id);
    snprintf(meta, n, "%s/.partial/%s.json", c->conf.upload_dir, id);
}

static void final_path(coord *c, const up_meta *m, char *out, size_t n)
{
    snprintf(out, n, "%s/%s/%s", c->conf.upload_dir, m->sha, m->name);
}

static int read_meta(const char *path, up_meta *m)
{
    ss_err e = { 0 };
    size_t len;
    char *s = ss_read_file(path, 4096, &len, &e);
    if (!s)
        return -1;
    json_t *j = json_loads(s, 0, NULL);
    free(s);
    const char *name = json_string_value(json_object_get(j, "name"));
    const char *sha = json_string_value(json_object_get(j, "sha256"));
    json_t *size = json_object_get(j, "size");
    int rc = -1;
    if (name && hex64(sha) && json_is_integer(size)) {
        ss_strlcpy(m->name, name, sizeof(m->name));
        ss_strlcpy(m->sha, sha, sizeof(m->sha));
        m->size = json_integer_value(size);
        rc = 0;
    }
    json_decref(j);
    return rc;
}

static json_t *state_json(coord *c, const char *id, const up_meta *m, long long offset)
{
    json_t *o = json_pack("{ss ss sI sI ss sI}", "id", id, "name", m->name, "size",
                          (json_int_t)m->size, "offset", (json_int_t)offset, "sha256", m->sha,
                          "chunk_bytes", (json_int_t)API_MAX_BODY);
    if (offset == m->size) {
        char path[8192], url[8192 * 3];
        final_path(c, m, path, sizeof(path));
        ss_file_url(path, url, sizeof(url));
        json_object_set_new(o, "state", json_string("complete"));
        json_object_set_new(o, "source", json_string(url));
    } else {
        json_object_set_new(o, "state", json_string("uploading"));
    }
    return o;
}

/* ---- the running hash of an upload --------------------------------------- */

static up_hash *hash_slot(coord *c, const char *id)
{
    struct coord_uploads *u = c->uploads;
    up_hash *lru = &u->slot[0];
    for (int i = 0; i < UP_SLOTS; i++) {
        if (!strcmp(u->slot[i].id, id))
            return &u->slot[i];
        if (u->slot[i].used_ms < lru->used_ms)
            lru = &u->slot[i];
    }
    EVP_MD_CTX_free(lru->ctx);
    memset(lru, 0, sizeof(*lru));
    ss_strlcpy(lru->id, id, sizeof(lru->id));
    return lru;
}

static void hash_drop(coord *c, const char *id)
{
    struct coord_uploads *u = c->uploads;
    for (int i = 0; i < UP_SLOTS; i++) {
        if (!strcmp(u->slot[i].id, id)) {
            EVP_MD_CTX_free(u->slot[i].ctx);
            memset(&u->slot[i], 0, sizeof(u->slot[i]));
        }
    }
}

/* The slot's hash covers exactly the first `upto` bytes of the partial
 * file: read them again when it does not (a restart, another coordinator
 * took the earlier chunks). */
static int hash_catch_up(up_hash *h, const char *data, long long upto, ss_err *err)
{
    if (h->ctx && h->hashed == upto)
        return 0;
    EVP_MD_CTX_free(h->ctx);
    h->ctx = EVP_MD_CTX_new();
    h->hashed = 0;
    if (!h->ctx || !EVP_DigestInit_ex(h->ctx, EVP_sha256(), NULL))
        return ss_fail(err, SS_ENOMEM, "out of memory");
    if (upto == 0)
        return 0;
    int fd = open(data, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return ss_fail(err, SS_EIO, "open %s: %s", data, strerror(errno));
    static unsigned char buf[1 << 16];
    while (h->hashed < upto) {
        size_t want = (size_t)(upto - h->hashed < (long long)sizeof(buf) ? upto - h->hashed : (long long)sizeof(buf));
        ssize_t n = read(fd, buf, want);
        if (n <= 0) {
            close(fd);
            return ss_fail(err, SS_EIO, "read %s: %s", data, n < 0 ? strerror(errno) : "short file");
        }
        EVP_DigestUpdate(h->ctx, buf, (size_t)n);
        h->hashed += n;
    }
    close(fd);
    return 0;
}

/* ---- handlers ---------------------------------------------------------------- */

static void reply_io(struct evhttp_request *req, const ss_err *e)
{
    log_error(NULL, "upload: %s", e->msg);
    http_reply_error(req, 500, "internal", "the upload folder cannot be written (see the coordinator's log)",
                     NULL);
}

/* POST /v1/uploads {name, size, sha256}: start or resume an upload. */
static void h_create(coord *c, struct evhttp_request *req)
{
    struct evbuffer *in = evhttp_request_get_input_buffer(req);
    size_t len = evbuffer_get_length(in);
    json_error_t je;
    json_t *j = len <= 4096 ? json_loadb((const char *)evbuffer_pullup(in, -1), len, 0, &je) : NULL;
    const char *name = json_string_value(json_object_get(j, "name"));
    const char *sha = json_string_value(json_object_get(j, "sha256"));
    json_t *size = json_object_get(j, "size");
    up_meta m;
    memset(&m, 0, sizeof(m));
    const char *bad = !json_is_object(j) ? "(body)" : !name || safe_name(name, m.name, sizeof(m.name))
                                               ? "name" : !hex64(sha) ? "sha256"
                                               : !json_is_integer(size) || json_integer_value(size) < 1
                                               ? "size" : NULL;
    if (bad) {
        json_decref(j);
        http_reply_error(req, 400, "invalid_request",
                         "the body is {\"name\": file name, \"size\": bytes (at least 1), "
                         "\"sha256\": 64 lowercase hex}", bad);
        return;
    }
    ss_strlcpy(m.sha, sha, sizeof(m.sha));
    m.size = json_integer_value(size);
    json_decref(j);
    if (m.size > c->conf.upload_max_bytes) {
        char msg[160];
        snprintf(msg, sizeof(msg), "the file is %lld bytes, over this coordinator's upload_max_bytes (%lld)",
                 m.size, c->conf.upload_max_bytes);
        http_reply_error(req, 413, "too_large", msg, "size");
        return;
    }
    char key[512], id[65], data[4096], meta[4096], fin[8192];
    snprintf(key, sizeof(key), "upload:%s:%lld:%s", m.sha, m.size, m.name);
    ss_sha256_hex(key, strlen(key), id);
    id[20] = '\0';
    up_paths(c, id, data, meta, sizeof(data));
    final_path(c, &m, fin, sizeof(fin));
    struct stat st;
    if (stat(fin, &st) == 0 && S_ISREG(st.st_mode) && st.st_size == m.size) {
        /* already here: a resubmit sends nothing; keep it from the sweep a while longer */
        char dir[4096];
        snprintf(dir, sizeof(dir), "%s/%s", c->conf.upload_dir, m.sha);
        utimes(dir, NULL);
        http_reply_json(req, 200, state_json(c, id, &m, m.size));
        return;
    }
    ss_err e = { 0 };
    char pdir[4096];
    snprintf(pdir, sizeof(pdir), "%s/.partial", c->conf.upload_dir);
    if (ss_mkdir_p(pdir, &e) != 0) {
        reply_io(req, &e);
        return;
    }
    long long have = ss_file_size(data);
    int created = have < 0;
    if (created) {
        char *ms = NULL;
        json_t *mj = json_pack("{ss ss sI}", "name", m.name, "sha256", m.sha, "size", (json_int_t)m.size);
        ms = json_dumps(mj, JSON_COMPACT);
        json_decref(mj);
        int fd = -1;
        if (!ms || ss_write_file_atomic(meta, ms, strlen(ms), &e) != 0 ||
            (fd = open(data, O_WRONLY | O_CREAT | O_CLOEXEC, 0640)) < 0) {
            if (!e.code)
                ss_fail(&e, SS_EIO, "create %s: %s", data, strerror(errno));
            free(ms);
            reply_io(req, &e);
            return;
        }
        free(ms);
        close(fd);
        have = 0;
    }
    struct statvfs vfs;
    if (statvfs(pdir, &vfs) == 0 &&
        (long double)vfs.f_bavail * vfs.f_frsize < (long double)(m.size - have) + (64LL << 20)) {
        http_reply_error(req, 507, "insufficient_storage",
                         "not enough free space in the upload folder for this file", "size");
        return;
    }
    http_reply_json(req, created ? 201 : 200, state_json(c, id, &m, have));
}

/* The last chunk is in: check the SHA-256, then move the file into place. */
static int finish(coord *c, struct evhttp_request *req, up_hash *h, const up_meta *m,
                  const char *id, const char *data, const char *meta)
{
    unsigned char md[32];
    unsigned int ml = 0;
    char got[65];
    EVP_DigestFinal_ex(h->ctx, md, &ml);
    ss_hex(md, 32, got);
    hash_drop(c, id);
    if (strcmp(got, m->sha)) {
        unlink(data);
        unlink(meta);
        char msg[256];
        snprintf(msg, sizeof(msg), "the bytes sent have SHA-256 %s, not the announced %s (the file "
                 "changed while it was sent?); start again", got, m->sha);
        http_reply_error(req, 422, "checksum_mismatch", msg, NULL);
        return -1;
    }
    char dir[4096], fin[8192];
    ss_err e = { 0 };
    snprintf(dir, sizeof(dir), "%s/%s", c->conf.upload_dir, m->sha);
    final_path(c, m, fin, sizeof(fin));
    int fd = open(data, O_RDONLY | O_CLOEXEC);
    if (fd >= 0) {
        fsync(fd);
        close(fd);
    }
    if (ss_mkdir_p(dir, &e) != 0 || rename(data, fin) != 0) {
        if (!e.code)
            ss_fail(&e, SS_EIO, "rename %s -> %s: %s", data, fin, strerror(errno));
        reply_io(req, &e);
        return -1;
    }
    unlink(meta);
    if ((fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) >= 0) {
        fsync(fd);
        close(fd);
    }
    log_info(NULL, "upload %s complete: %s (%lld bytes)", id, fin, m->size);
    http_reply_json(req, 200, state_json(c, id, m, m->size));
    return 0;
}

/* PUT /v1/uploads/{id}?offset=N: the next chunk. */
static void h_put(coord *c, struct evhttp_request *req, const char *id, struct evkeyvalq *q)
{
    char data[4096], meta[4096];
    up_paths(c, id, data, meta, sizeof(data));
    up_meta m;
    if (read_meta(meta, &m) != 0) {
        http_reply_error(req, 404, "not_found", "no such upload (finished, expired, or never started)",
                         NULL);
        return;
    }
    long long have = ss_file_size(data);
    const char *os = evhttp_find_header(q, "offset");
    char *end = NULL;
    long long off = os ? strtoll(os, &end, 10) : -1;
    if (!os || !*os || *end || off < 0) {
        http_reply_error(req, 400, "invalid_request", "PUT needs ?offset=N, the bytes already sent",
                         "offset");
        return;
    }
    if (have < 0 || off != have) {
        char msg[160];
        snprintf(msg, sizeof(msg), "the upload is at offset %lld, not %lld: send from there", have, off);
        http_reply_error(req, 409, "conflict", msg, "offset");
        return;
    }
    struct evbuffer *in = evhttp_request_get_input_buffer(req);
    size_t len = evbuffer_get_length(in);
    if (len == 0 || (long long)len > m.size - have) {
        http_reply_error(req, 400, "invalid_request",
                         "a chunk has 1 byte up to what is left of the announced size", "(body)");
        return;
    }
    ss_err e = { 0 };
    up_hash *h = hash_slot(c, id);
    h->used_ms = ss_mono_ms();
    if (hash_catch_up(h, data, have, &e) != 0) {
        hash_drop(c, id);
        reply_io(req, &e);
        return;
    }
    int fd = open(data, O_WRONLY | O_CLOEXEC);
    if (fd < 0) {
        ss_fail(&e, SS_EIO, "open %s: %s", data, strerror(errno));
        reply_io(req, &e);
        return;
    }
    const unsigned char *p = evbuffer_pullup(in, -1);
    size_t done = 0;
    while (done < len) {
        ssize_t n = pwrite(fd, p + done, len - done, (off_t)(have + (long long)done));
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            int werr = n < 0 ? errno : ENOSPC;
            ss_fail(&e, SS_EIO, "write %s: %s", data, strerror(werr));
            /* keep the bytes before this chunk; the client sends it again */
            if (ftruncate(fd, (off_t)have) != 0)
                log_warn(NULL, "upload %s: cannot cut back a failed chunk", id);
            close(fd);
            hash_drop(c, id);
            if (werr == ENOSPC)
                http_reply_error(req, 507, "insufficient_storage", "the upload folder is full", NULL);
            else
                reply_io(req, &e);
            return;
        }
        done += (size_t)n;
    }
    close(fd);
    EVP_DigestUpdate(h->ctx, p, len);
    h->hashed = have + (long long)len;
    if (h->hashed == m.size) {
        finish(c, req, h, &m, id, data, meta);
        return;
    }
    http_reply_json(req, 200, state_json(c, id, &m, h->hashed));
}

void uploads_handle(coord *c, struct evhttp_request *req, const char *rest, struct evkeyvalq *q)
{
    enum evhttp_cmd_type m = evhttp_request_get_command(req);
    /* the method is checked first: a coordinator without uploads still
     * serves the documented routes (404 below), and 405 names what is */
    int root = !*rest;
    if (root ? m != EVHTTP_REQ_POST : (m != EVHTTP_REQ_GET && m != EVHTTP_REQ_PUT)) {
        evhttp_add_header(evhttp_request_get_output_headers(req), "Allow", root ? "POST" : "GET, PUT");
        http_reply_error(req, 405, "method_not_allowed", "method not allowed on this path", NULL);
        return;
    }
    if (!c->conf.upload_dir || !*c->conf.upload_dir || !c->uploads) {
        http_reply_error(req, 404, "not_found",
                         "this coordinator takes no uploads (set upload_dir to a folder inside the "
                         "workers' file_roots); submit a URL the workers can read", NULL);
        return;
    }
    if (root) {
        h_create(c, req);
        return;
    }
    const char *id = rest + 1;
    size_t n = strlen(id);
    int ok = *rest == '/' && n == 20;
    for (size_t i = 0; ok && i < n; i++)
        ok = (id[i] >= '0' && id[i] <= '9') || (id[i] >= 'a' && id[i] <= 'f');
    if (!ok) {
        http_reply_error(req, 404, "not_found", "no such upload", NULL);
        return;
    }
    if (m == EVHTTP_REQ_PUT) {
        h_put(c, req, id, q);
    } else {
        char data[4096], meta[4096];
        up_paths(c, id, data, meta, sizeof(data));
        up_meta um;
        long long have = ss_file_size(data);
        if (read_meta(meta, &um) != 0 || have < 0)
            http_reply_error(req, 404, "not_found", "no such upload (finished, expired, or never started)",
                             NULL);
        else
            http_reply_json(req, 200, state_json(c, id, &um, have));
    }
}

/* ---- lifecycle ------------------------------------------------------------------ */

int uploads_start(coord *c, ss_err *err)
{
    if (!c->conf.upload_dir || !*c->conf.upload_dir)
        return 0;
    if (c->conf.upload_dir[0] != '/')
        return ss_fail(err, SS_EINVAL, "config: key 'upload_dir': '%s' is not an absolute path",
                       c->conf.upload_dir);
    char pdir[4096];
    snprintf(pdir, sizeof(pdir), "%s/.partial", c->conf.upload_dir);
    if (ss_mkdir_p(pdir, err) != 0)
        return -1;
    c->uploads = calloc(1, sizeof(*c->uploads));
    if (!c->uploads)
        return ss_fail(err, SS_ENOMEM, "out of memory");
    return 0;
}

void uploads_stop(coord *c)
{
    if (!c->uploads)
        return;
    for (int i = 0; i < UP_SLOTS; i++)
        EVP_MD_CTX_free(c->uploads->slot[i].ctx);
    free(c->uploads);
    c->uploads = NULL;
}

static int old(const char *path, long long max_age_s, long long now_s)
{
    struct stat st;
    return lstat(path, &st) == 0 && now_s - (long long)st.st_mtime > max_age_s;
}

void uploads_sweep(coord *c)
{
    if (!c->uploads)
        return;
    long long now = ss_mono_ms();
    if (c->uploads->last_sweep_ms && now - c->uploads->last_sweep_ms < UP_SWEEP_EVERY_MS)
        return;
    c->uploads->last_sweep_ms = now;
    long long now_s = ss_now_ms() / 1000, kept_s = c->conf.upload_retention_hours * 3600;
    char path[8192];
    snprintf(path, sizeof(path), "%s/.partial", c->conf.upload_dir);
    DIR *d = opendir(path);
    struct dirent *de;
    while (d && (de = readdir(d))) {
        /* an upload's age is its data's: the .json beside it is written once */
        char data[8192];
        snprintf(path, sizeof(path), "%s/.partial/%s", c->conf.upload_dir, de->d_name);
        snprintf(data, sizeof(data), "%s/.partial/%.20s", c->conf.upload_dir, de->d_name);
        if (de->d_name[0] == '.' || !old(access(data, F_OK) == 0 ? data : path, UP_PARTIAL_MAX_AGE_S, now_s))
            continue;
        if (unlink(path) == 0)
            log_info(NULL, "uploads: removed %s (a partial upload untouched for a day)", path);
    }
    if (d)
        closedir(d);
    if (kept_s <= 0 || !(d = opendir(c->conf.upload_dir)))
        return;
    while ((de = readdir(d))) {
        snprintf(path, sizeof(path), "%s/%s", c->conf.upload_dir, de->d_name);
        if (hex64(de->d_name) && old(path, kept_s, now_s)) {
            ss_rm_rf(path);
            log_info(NULL, "uploads: removed %s (older than upload_retention_hours)", path);
        }
    }
    closedir(d);
}
