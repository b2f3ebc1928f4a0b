/* ss_s3tool — a small CLI over the storage and fetch API, for the
 * integration tests and tests/bench/bench_upload.sh. It uploads the way the
 * worker does (storage_open + storage_put_async per file + storage_wait).
 *
 *   ss_s3tool [options] put DEST_URL PATH [KEY]   file, or a folder (recursive)
 *   ss_s3tool [options] get SOURCE_URL OUT        fetch_source
 *   ss_s3tool [options] head SOURCE_URL           fetch_head_size
 *   ss_s3tool [options] read SOURCE_URL OFF LEN OUT   fetch_reader: LEN bytes at
 *                                                 OFF (objects = requests made,
 *                                                 bytes = bytes received)
 *   ss_s3tool [options] rm DEST_URL KEY_PREFIX    storage_delete_prefix
 *
 * Prints one JSON line: {"ok":true,"objects":..,"bytes":..,"retries":..,
 * "seconds":..} or {"ok":false,"code":"auth","message":".."}; exit status
 * 0 on success, 1 on failure, 2 on bad usage. Credentials come from
 * --access-key/--secret-key, AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY or
 * --credentials-file (as in the worker).
 */
#include <dirent.h>
#include <jansson.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fetch.h"
#include "storage.h"
#include "util.h"

static void usage(void)
{
    fprintf(stderr,
            "usage: ss_s3tool [options] put DEST_URL PATH [KEY]\n"
            "       ss_s3tool [options] get SOURCE_URL OUT\n"
            "       ss_s3tool [options] head SOURCE_URL\n"
            "       ss_s3tool [options] read SOURCE_URL OFFSET LEN OUT\n"
            "       ss_s3tool [options] rm DEST_URL KEY_PREFIX\n"
            "options: --endpoint URL --region R --access-key K --secret-key S\n"
            "         --credentials-file F --path-style 0|1 --parallel N\n"
            "         --multipart-threshold BYTES --part-size BYTES --retries N\n"
            "         --verify --timeout S --allow-private --allow-http\n"
            "         --max-bytes N --redirects N --abort-after-ms N\n");
}

static int result(int ok, const ss_err *e, const storage_stats *s, double secs)
{
    json_t *o = json_object();
    json_object_set_new(o, "ok", json_boolean(ok));
    if (!ok) {
        json_object_set_new(o, "code", json_string(ss_code_name(e->code)));
        json_object_set_new(o, "message", json_string(e->msg));
    }
    if (s) {
        json_object_set_new(o, "objects", json_integer(s->objects));
        json_object_set_new(o, "bytes", json_integer(s->bytes));
        json_object_set_new(o, "retries", json_integer(s->retries));
    }
    json_object_set_new(o, "seconds", json_real(secs));
    char *t = json_dumps(o, JSON_COMPACT);
    printf("%s\n", t);
    fflush(stdout);
    free(t);
    json_decref(o);
    return ok ? 0 : 1;
}

typedef struct walk {
    storage *st;
    int n;
    ss_err *err;
} walk;

/* Queue every regular file under dir (sorted, recursive); key = prefix + rel. */
static int put_tree(walk *w, const char *dir, const char *prefix)
{
    struct dirent **names = NULL;
    int n = scandir(dir, &names, NULL, alphasort);
    if (n < 0)
        return ss_fail(w->err, SS_EIO, "cannot read %s", dir);
    int rc = 0;
    for (int i = 0; i < n; i++) {
        const char *nm = names[i]->d_name;
        if (!rc && strcmp(nm, ".") && strcmp(nm, "..")) {
            char path[4096], key[4096];
            snprintf(path, sizeof(path), "%s/%s", dir, nm);
            int kl = snprintf(key, sizeof(key) - 1, "%s%s", prefix, nm);
            struct stat sb;
            if (stat(path, &sb) == 0 && S_ISDIR(sb.st_mode)) {
                if (kl > 0 && kl < (int)sizeof(key) - 2) {
                    key[kl] = '/';
                    key[kl + 1] = '\0';
                }
                rc = put_tree(w, path, key);
            } else if (stat(path, &sb) == 0 && S_ISREG(sb.st_mode)) {
                rc = storage_put_async(w->st, path, key, w->err);
                w->n++;
            }
        }
        free(names[i]);
    }
    free(names);
    return rc;
}

int main(int argc, char **argv)
{
    storage_conf sc = { 0 };
    fetch_conf fc = { 0 };
    long abort_after_ms = -1;
    int i = 1;
    for (; i < argc && !strncmp(argv[i], "--", 2); i++) {
        const char *o = argv[i] + 2;
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
#define ARG(name) (!strcmp(o, name) && v && (i++, 1))
        if (ARG("endpoint")) sc.s3_endpoint = v;
        else if (ARG("region")) sc.s3_region = v;
        else if (ARG("access-key")) sc.s3_access_key = v;
        else if (ARG("secret-key")) sc.s3_secret_key = v;
        else if (ARG("credentials-file")) sc.s3_credentials_file = v;
        else if (ARG("path-style")) sc.s3_path_style = atoi(v);
        else if (ARG("parallel")) sc.max_parallel = atoi(v);
        else if (ARG("multipart-threshold")) sc.multipart_threshold = atoll(v);
        else if (ARG("part-size")) sc.part_size = atoll(v);
        else if (ARG("retries")) sc.max_retries = fc.max_retries = atoi(v) ? atoi(v) : -1;
        else if (ARG("timeout")) sc.timeout_seconds = fc.low_speed_s = atoi(v);
        else if (ARG("max-bytes")) fc.max_bytes = atoll(v);
        else if (ARG("redirects")) fc.max_redirects = atoi(v) ? atoi(v) : -1;
        else if (ARG("abort-after-ms")) abort_after_ms = atol(v);
        else if (!strcmp(o, "verify")) sc.verify = 1;
        else if (!strcmp(o, "allow-private")) sc.allow_private = fc.allow_private = 1;
        else if (!strcmp(o, "allow-http")) fc.allow_http = 1;
        else {
            usage();
            return 2;
        }
#undef ARG
    }
    if (argc - i < 2) {
        usage();
        return 2;
    }
    fc.s3 = &sc;
    const char *cmd = argv[i], *url = argv[i + 1];
    ss_err err = { 0 };
    double t0 = ss_mono_s();
    if (!strcmp(cmd, "put") && argc - i >= 3) {
        const char *path = argv[i + 2];
        const char *key = argc - i >= 4 ? argv[i + 3] : NULL;
        storage *st = storage_open(url, &sc, &err);
        if (!st)
            return result(0, &err, NULL, ss_mono_s() - t0);
        struct stat sb;
        int rc = 0;
        if (stat(path, &sb) != 0) {
            rc = ss_fail(&err, SS_ENOTFOUND, "%s does not exist", path);
        } else if (S_ISDIR(sb.st_mode)) {
            char prefix[4096] = "";
            if (key && *key)
                snprintf(prefix, sizeof(prefix), "%s%s", key,
                         ss_str_has_suffix(key, "/") ? "" : "/");
            walk w = { .st = st, .err = &err };
            rc = put_tree(&w, path, prefix);
        } else {
            const char *base = strrchr(path, '/');
            rc = storage_put_async(st, path, key && *key ? key : (base ? base + 1 : path), &err);
        }
        if (abort_after_ms >= 0) {
            usleep((useconds_t)abort_after_ms * 1000);
            storage_abort(st);
        }
        if (storage_wait(st, &err) != 0)
            rc = -1;
        storage_stats s;
        storage_get_stats(st, &s);
        double secs = ss_mono_s() - t0;
        storage_close(st);
        return result(rc == 0, &err, &s, secs);
    }
    if (!strcmp(cmd, "get") && argc - i >= 3) {
        atomic_int cancel = 0;
        int rc = fetch_source(url, argv[i + 2], &fc, &cancel, NULL, &err);
        storage_stats s = { 0 };
        if (rc == 0) {
            s.objects = 1;
            s.bytes = ss_file_size(argv[i + 2]);
        }
        return result(rc == 0, &err, &s, ss_mono_s() - t0);
    }
    if (!strcmp(cmd, "head")) {
        int64_t size = -1;
        int rc = fetch_head_size(url, &fc, &size, &err);
        storage_stats s = { .objects = rc == 0, .bytes = size };
        return result(rc == 0, &err, &s, ss_mono_s() - t0);
    }
    if (!strcmp(cmd, "read") && argc - i >= 5) {
        atomic_int cancel = 0;
        long long off = atoll(argv[i + 2]), len = atoll(argv[i + 3]);
        fetch_reader *r = len > 0 && len < (1LL << 30) ? fetch_reader_open(url, &fc, &cancel, &err)
                                                       : NULL;
        if (!r)
            return result(0, &err, NULL, ss_mono_s() - t0);
        uint8_t *buf = malloc((size_t)len);
        long long have = 0;
        int rc = buf ? 0 : ss_fail(&err, SS_ENOMEM, "out of memory");
        while (!rc && have < len) {
            int n = fetch_reader_read(r, off + have, buf + have,
                                      (int)(len - have > (1 << 20) ? (1 << 20) : len - have));
            if (n < 0) {
                err = *fetch_reader_error(r);
                rc = -1;
            } else if (n == 0) {
                break;
            }
            have += n > 0 ? n : 0;
        }
        FILE *f = rc ? NULL : fopen(argv[i + 4], "wb");
        if (!rc && (!f || fwrite(buf, 1, (size_t)have, f) != (size_t)have))
            rc = ss_fail(&err, SS_EIO, "cannot write %s", argv[i + 4]);
        if (f)
            fclose(f);
        int64_t bytes = 0, reqs = 0;
        fetch_reader_stats(r, &bytes, &reqs);
        storage_stats s = { .objects = reqs, .bytes = bytes };
        free(buf);
        fetch_reader_close(r);
        return result(rc == 0, &err, &s, ss_mono_s() - t0);
    }
    if (!strcmp(cmd, "rm") && argc - i >= 3) {
        storage *st = storage_open(url, &sc, &err);
        if (!st)
            return result(0, &err, NULL, ss_mono_s() - t0);
        int rc = storage_delete_prefix(st, argv[i + 2], &err);
        storage_close(st);
        return result(rc == 0, &err, NULL, ss_mono_s() - t0);
    }
    usage();
    return 2;
}
