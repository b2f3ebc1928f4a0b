/* storage_file.c — the file:// backend: copies each file into
 * DIR/KEY through a temporary name and rename(), so a reader sees a whole
 * file or none. Local disks are fast, so put_async works synchronously and
 * keeps the first error for storage_wait. */
#include "storage.h"

#include <ctype.h>
#include <stdatomic.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util.h"

typedef struct file_priv {
    char root[4096];     /* absolute directory, ends without '/' */
    ss_err first;        /* first failure since the last wait */
} file_priv;

static int file_open(storage *st, const char *url, ss_err *err)
{
    /* The path is decoded once; the same canonical path is checked and
     * used for every file (storage.h: storage_file_confine). */
    char path[4096];
    if (storage_file_path(url, path, sizeof(path), err) != 0)
        return -1;
    file_priv *p = calloc(1, sizeof(*p));
    if (!p)
        return ss_fail(err, SS_ENOMEM, "out of memory");
    if (st->conf.file_confine) {
        if (storage_file_confine(path, st->conf.file_roots, "destination", p->root,
                                 sizeof(p->root) - 256, err) != 0) {
            free(p);
            return -1;
        }
    } else {
        size_t n = ss_strlcpy(p->root, path, sizeof(p->root));
        if (n >= sizeof(p->root) - 256) {
            free(p);
            return ss_fail(err, SS_EINVAL, "destination path too long");
        }
        while (n > 1 && p->root[n - 1] == '/')
            p->root[--n] = '\0';
        if (strstr(p->root, "/../") || ss_str_has_suffix(p->root, "/..")) {
            free(p);
            return ss_fail(err, SS_EINVAL, "destination may not contain '..'");
        }
    }
    st->priv = p;
    return 0;
}

static int copy_file(const char *from, const char *to, int64_t *bytes, ss_err *err)
{
    /* the temporary name is unique per process and call: two threads of
     * one worker storing the same key (an early playlist and the final one)
     * must not unlink or overwrite each other's half-written file */
    static atomic_uint seq;
    char tmp[8192];
    if ((size_t)snprintf(tmp, sizeof(tmp), "%s.part.%d.%u", to, (int)getpid(),
                         atomic_fetch_add(&seq, 1)) >= sizeof(tmp))
        return ss_fail(err, SS_EINVAL, "path too long: %s", to);
    int in = open(from, O_RDONLY | O_CLOEXEC);
    if (in < 0)
        return ss_fail(err, SS_EIO, "open %s: %s", from, strerror(errno));
    unlink(tmp);   /* a leftover of a killed run */
    int out = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
    if (out < 0) {
        int e = errno;
        close(in);
        return ss_fail(err, SS_EIO, "create %s: %s", tmp, strerror(e));
    }
    char buf[1 << 16];
    int rc = 0;
    *bytes = 0;
    for (;;) {
        ssize_t r = read(in, buf, sizeof(buf));
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            rc = ss_fail(err, SS_EIO, "read %s: %s", from, strerror(errno));
            break;
        }
        if (r == 0)
            break;
        for (ssize_t off = 0; off < r;) {
            ssize_t w = write(out, buf + off, (size_t)(r - off));
            if (w < 0 && errno == EINTR)
                continue;
            if (w < 0) {
                rc = ss_fail(err, SS_EIO, "write %s: %s", tmp, strerror(errno));
                break;
            }
            off += w;
        }
        if (rc)
            break;
        *bytes += r;
    }
    close(in);
    if (close(out) != 0 && !rc)
        rc = ss_fail(err, SS_EIO, "close %s: %s", tmp, strerror(errno));
    if (!rc && rename(tmp, to) != 0)
        rc = ss_fail(err, SS_EIO, "rename %s: %s", to, strerror(errno));
    if (rc)
        unlink(tmp);
    return rc;
}

static int file_put_async(storage *st, const char *local_path, const char *key, ss_err *err)
{
    file_priv *p = st->priv;
    ss_err e = { 0 };
    char dest[8192];
    if (!storage_key_ok(key))
        ss_fail(&e, SS_EINVAL, "bad object key '%s'", key);
    else
        snprintf(dest, sizeof(dest), "%s/%s", p->root, key);
    if (!e.code) {
        char dir[8192];
        ss_strlcpy(dir, dest, sizeof(dir));
        char *slash = strrchr(dir, '/');
        if (slash)
            *slash = '\0';
        int64_t bytes = 0;
        if (ss_mkdir_p(dir, &e) == 0 && copy_file(local_path, dest, &bytes, &e) == 0) {
            st->stats.objects++;
            st->stats.bytes += bytes;
        }
    }
    if (e.code && !p->first.code)
        p->first = e;
    (void)err;
    return 0;
}

static int file_wait(storage *st, ss_err *err)
{
    file_priv *p = st->priv;
    if (p->first.code) {
        if (err && !err->code)
            *err = p->first;
        ss_err_clear(&p->first);
        return -1;
    }
    return 0;
}

static int file_delete_prefix(storage *st, const char *key_prefix, ss_err *err)
{
    file_priv *p = st->priv;
    if (!storage_key_ok(key_prefix))
        return ss_fail(err, SS_EINVAL, "bad key prefix '%s'", key_prefix);
    char path[8192];
    snprintf(path, sizeof(path), "%s/%s", p->root, key_prefix);
    size_t n = strlen(path);
    while (n && path[n - 1] == '/')
        path[--n] = '\0';
    if (ss_rm_rf(path) != 0)
        return ss_fail(err, SS_EIO, "could not remove %s", path);
    return 0;
}

static char *file_url(const storage *st, const char *key)
{
    /* the inverse of storage_file_path: bytes a URL cannot hold raw
     * (and '%' itself) are escaped, so the URL names this very path */
    const file_priv *p = st->priv;
    size_t n = 7 + 3 * (strlen(p->root) + strlen(key) + 1) + 1;
    char *u = malloc(n);
    if (!u)
        return NULL;
    size_t o = (size_t)snprintf(u, n, "file://");
    for (int part = 0; part < 2; part++) {
        const char *s = part ? key : p->root;
        if (part && u[o - 1] != '/')
            u[o++] = '/';
        for (; *s; s++) {
            unsigned char c = (unsigned char)*s;
            if (isalnum(c) || strchr("/-._~!$&'()*+,;=:@", c))
                u[o++] = (char)c;
            else
                o += (size_t)snprintf(u + o, n - o, "%%%02X", c);
        }
    }
    u[o] = '\0';
    return u;
}

static void file_close(storage *st)
{
    free(st->priv);
    st->priv = NULL;
}

const storage_ops storage_file_ops = {
    .scheme = "file",
    .open = file_open,
    .put_async = file_put_async,
    .wait = file_wait,
    .delete_prefix = file_delete_prefix,
    .abort = NULL,
    .url = file_url,
    .close = file_close,
};
