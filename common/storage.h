/* storage.h — where finished output goes: file:///dir/ or s3://bucket/prefix/.
 *
 * A storage handle is opened per job destination. Files are handed over one
 * by one as the encoder finishes them (storage_put_async); the backend moves
 * them in the background, several at once where that helps, and
 * storage_wait() is the barrier the publisher uses before it writes the
 * manifests (so no manifest ever names a missing object) and again before
 * job.json (so job.json means "everything is there").
 *
 * Keys are relative ("720p/seg_00001.m4s"); the handle adds the destination's
 * prefix. Every object gets a Content-Type and Cache-Control from its name
 * (storage_content_type / storage_cache_control).
 *
 * Ownership: storage_open returns a handle the caller frees with
 * storage_close (which waits for nothing: call storage_wait first, or
 * storage_abort to drop what is pending).
 */
#ifndef SS_STORAGE_H
#define SS_STORAGE_H

#include <stddef.h>
#include <stdint.h>

#include "ss_err.h"

/* Settings for every backend (each reads what it needs). Strings are
 * borrowed: they must outlive the handle. */
typedef struct storage_conf {
    /* s3:// */
    const char *s3_endpoint;         /* https://ACCOUNT.r2.cloudflarestorage.com */
    const char *s3_region;           /* "auto" for R2 */
    const char *s3_access_key;       /* else AWS_ACCESS_KEY_ID, else credentials file */
    const char *s3_secret_key;       /* else AWS_SECRET_ACCESS_KEY */
    const char *s3_credentials_file; /* "access_key = ...\nsecret_key = ..." mode 0600 */
    int s3_path_style;               /* 1: endpoint/bucket/key, 0: bucket.endpoint/key */
    int max_parallel;                /* transfers at once (default 16) */
    int64_t multipart_threshold;     /* bytes; larger files use multipart */
    int64_t part_size;               /* bytes per part (>= 5 MiB) */
    int max_retries;                 /* per request, on 5xx/429/timeouts/resets */
    int verify;                      /* HEAD each object after upload */
    int timeout_seconds;             /* per request */
    const char *public_base_url;     /* how viewers reach the destination, optional */
    int allow_private;               /* SSRF guard: allow loopback/private endpoints */
    /* file:// */
    int file_confine;                /* 1: the folder must lie in file_roots (a URL a client
                                        gave); 0: the operator's own storage setting */
    const char *file_roots;          /* ':'-separated folders; NULL or "" refuses every path */
} storage_conf;

typedef struct storage storage;

typedef struct storage_stats {
    int64_t objects;      /* objects stored */
    int64_t bytes;        /* bytes stored */
    int64_t retries;      /* requests retried */
} storage_stats;

/* Open a destination URL ("file:///srv/out/", "s3://bucket/prefix/"). The
 * job's own folder is a key prefix the caller adds (storage_put* keys). */
storage *storage_open(const char *url, const storage_conf *conf, ss_err *err);

/* Queue local_path to be stored as key. Returns at once; a failure shows up
 * in storage_wait. The local file must stay until storage_wait returns. */
int storage_put_async(storage *st, const char *local_path, const char *key, ss_err *err);

/* Wait for every queued transfer; 0 when all succeeded, else -1 with the
 * first error (the others are still finished or cancelled). */
int storage_wait(storage *st, ss_err *err);

/* Store one file now (put_async + wait). */
int storage_put(storage *st, const char *local_path, const char *key, ss_err *err);

/* Delete every object under key_prefix (best effort cleanup of a job that
 * failed half way). */
int storage_delete_prefix(storage *st, const char *key_prefix, ss_err *err);

/* Cancel what is queued and not started; running transfers are stopped. */
void storage_abort(storage *st);

/* The URL a client uses to reach key: public_base_url + key when set, else
 * the storage URL (file:///..., s3://bucket/...). Caller frees. */
char *storage_url(const storage *st, const char *key);

void storage_get_stats(const storage *st, storage_stats *out);
void storage_close(storage *st);

/* Content-Type and Cache-Control for a key, from its extension. */
const char *storage_content_type(const char *key);
const char *storage_cache_control(const char *key);

/* Cache-Control of the playlists and MPD stored next (docs/PLAYABLE.md):
 * STORAGE_CC_LIVE while they are EVENT playlists that grow (a short
 * max-age), STORAGE_CC_FINAL for the finished title (long, as segments but
 * not immutable); STORAGE_CC_DEFAULT is storage_cache_control's. Read when
 * a file is queued (storage_put_async). */
typedef enum { STORAGE_CC_DEFAULT, STORAGE_CC_LIVE, STORAGE_CC_FINAL } storage_cc;
void storage_set_manifest_cc(storage *st, storage_cc cc);
/* The Cache-Control a key gets on st now. */
const char *storage_cache_control_on(const storage *st, const char *key);

/* ---- file:// paths and object keys (one rule for every caller) ----
 *
 * A file:// URL is decoded once (storage_file_path) and the decoded path is
 * what is checked and what is used. storage_file_confine turns it into the
 * canonical path inside one of the roots: ".." and "." components are
 * refused, the longest existing prefix is resolved through its symlinks
 * (realpath) and the rest must not exist yet (a dangling symlink is
 * refused), so no component can lead out of a root. Roots NULL or "" refuse
 * everything: file:// is off until the operator names folders. */

/* Decode the %XX escapes of a file:///path URL into out (absolute path). */
int storage_file_path(const char *url, char *out, size_t outlen, ss_err *err);

/* Canonical form of path (see above) in out when it lies inside one of the
 * ':'-separated roots, else -1 with SS_EDENIED; `what` ("source",
 * "destination") starts the message. */
int storage_file_confine(const char *path, const char *roots, const char *what, char *out,
                         size_t outlen, ss_err *err);

/* 1 when key is a safe relative object key: not empty, at most 1024 bytes,
 * no leading '/', no "//", no "." or ".." component, no control bytes. */
int storage_key_ok(const char *key);

/* ---- for backends ---- */
typedef struct storage_ops {
    const char *scheme;   /* "file", "s3" */
    int (*open)(storage *st, const char *url, ss_err *err);
    int (*put_async)(storage *st, const char *local_path, const char *key, ss_err *err);
    int (*wait)(storage *st, ss_err *err);
    int (*delete_prefix)(storage *st, const char *key_prefix, ss_err *err);
    void (*abort)(storage *st);
    char *(*url)(const storage *st, const char *key);
    void (*close)(storage *st);
} storage_ops;

struct storage {
    const storage_ops *ops;
    storage_conf conf;
    void *priv;           /* the backend's state */
    storage_stats stats;  /* updated by the backend (under its own lock) */
    storage_cc manifest_cc;   /* the caller's thread only (storage_set_manifest_cc) */
};

extern const storage_ops storage_file_ops;
extern const storage_ops storage_s3_ops;

#endif
