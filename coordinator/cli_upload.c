/* cli_upload.c — see cli_upload.h. The storage settings come from the
 * environment, under the same names as the worker's keys
 * (STREAMSCALE_S3_ENDPOINT, STREAMSCALE_S3_REGION, ...; credentials also
 * from AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY). Content-addressed keys
 * make a second submit of the same file upload nothing new and name the
 * same source, so the job id (from the spec) is the same too. */
#include "cli_upload.h"

#include <fcntl.h>
#include <openssl/evp.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "storage.h"
#include "util.h"

static const char *env(const char *name)
{
    const char *v = getenv(name);
    return v && *v ? v : NULL;
}

static int env_bool(const char *name, int def)
{
    const char *v = env(name);
    if (!v)
        return def;
    return !strcasecmp(v, "1") || !strcasecmp(v, "true") || !strcasecmp(v, "yes") || !strcasecmp(v, "on");
}

int cli_upload_local(const char *path, const char *sha, char *url, size_t urllen, ss_err *err)
{
    const char *to = env("STREAMSCALE_UPLOAD_TO");
    if (!to)
        return 0;
    storage_conf sc = { 0 };
    sc.s3_endpoint = env("STREAMSCALE_S3_ENDPOINT");
    sc.s3_region = env("STREAMSCALE_S3_REGION");
    if (!sc.s3_region)
        sc.s3_region = "auto";
    sc.s3_access_key = env("STREAMSCALE_S3_ACCESS_KEY");
    sc.s3_secret_key = env("STREAMSCALE_S3_SECRET_KEY");
    sc.s3_credentials_file = env("STREAMSCALE_S3_CREDENTIALS_FILE");
    sc.s3_path_style = env_bool("STREAMSCALE_S3_PATH_STYLE", 1);
    sc.max_parallel = 8;
    sc.multipart_threshold = 64LL << 20;
    sc.part_size = 16LL << 20;
    sc.max_retries = 5;
    sc.timeout_seconds = 300;
    sc.allow_private = env_bool("STREAMSCALE_ALLOW_PRIVATE_NETWORKS", 0);
    const char *base = strrchr(path, '/');
    base = base ? base + 1 : path;
    char key[1024];
    size_t n = (size_t)snprintf(key, sizeof(key), "%.16s/", sha);
    /* keep the file name readable but safe as a key */
    for (const char *p = base; *p && n + 1 < sizeof(key); p++) {
        unsigned char ch = (unsigned char)*p;
        key[n++] = (ch >= 0x80 || ch < 0x20 || strchr("\\?#%\"<>{}|^`[] ", ch)) ? '_' : (char)ch;
    }
    key[n] = '\0';
    storage *st = storage_open(to, &sc, err);
    if (!st)
        return -1;
    fprintf(stderr, "uploading %s to %s ...\n", path, to);
    int rc = storage_put(st, path, key, err);
    if (rc == 0) {
        char *u = st->ops->url(st, key);
        if (!u || strlen(u) >= urllen)
            rc = ss_fail(err, SS_EINVAL, "source URL too long");
        else
            ss_strlcpy(url, u, urllen);
        free(u);
    }
    storage_close(st);
    return rc == 0 ? 1 : -1;
}
