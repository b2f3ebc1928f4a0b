/* wconf.c — the worker config as the settings structs of the modules it
 * drives (storage, sources). */
#include <string.h>

#include "source.h"
#include "worker.h"

void worker_storage_conf(const worker *w, storage_conf *sc)
{
    memset(sc, 0, sizeof(*sc));
    sc->s3_endpoint = w->conf.s3_endpoint;
    sc->s3_region = w->conf.s3_region;
    sc->s3_access_key = w->conf.s3_access_key;
    sc->s3_secret_key = w->conf.s3_secret_key;
    sc->s3_credentials_file = w->conf.s3_credentials_file;
    sc->s3_path_style = w->conf.s3_path_style;
    sc->max_parallel = (int)w->conf.upload_parallel;
    sc->multipart_threshold = w->conf.multipart_threshold;
    sc->part_size = w->conf.part_size;
    /* storage_conf: 0 means "the backend's default", -1 means none */
    sc->max_retries = w->conf.upload_retries > 0 ? (int)w->conf.upload_retries : -1;
    sc->verify = w->conf.upload_verify;
    sc->timeout_seconds = 120;
    sc->public_base_url = w->conf.public_base_url;
    sc->allow_private = w->conf.allow_private_networks;
    sc->file_roots = w->conf.file_roots;
}

void worker_source_conf(const worker *w, source_conf *c)
{
    memset(c, 0, sizeof(*c));
    worker_storage_conf(w, &c->storage);
    c->allow_private = w->conf.allow_private_networks;
    c->allow_http = w->conf.allow_http_sources;
    c->max_bytes = w->conf.max_file_size;
    c->timeout_seconds = w->conf.download_timeout;
    c->file_roots = w->conf.file_roots;
}
