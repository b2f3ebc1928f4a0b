/* wconf.c — the worker config as the settings structs of the modules it
 * drives (storage, sources). Job threads pass their own copy (wjob.conf). */
#include <string.h>

#include "source.h"
#include "worker.h"

void worker_storage_conf(const worker_conf *wc, storage_conf *sc)
{
    memset(sc, 0, sizeof(*sc));
    sc->s3_endpoint = wc->s3_endpoint;
    sc->s3_region = wc->s3_region;
    sc->s3_access_key = wc->s3_access_key;
    sc->s3_secret_key = wc->s3_secret_key;
    sc->s3_credentials_file = wc->s3_credentials_file;
    sc->s3_path_style = wc->s3_path_style;
    sc->max_parallel = (int)wc->upload_parallel;
    sc->multipart_threshold = wc->multipart_threshold;
    sc->part_size = wc->part_size;
    /* storage_conf: 0 means "the backend's default", -1 means none */
    sc->max_retries = wc->upload_retries > 0 ? (int)wc->upload_retries : -1;
    sc->verify = wc->upload_verify;
    sc->timeout_seconds = 120;
    sc->public_base_url = wc->public_base_url;
    sc->allow_private = wc->allow_private_networks;
    sc->file_roots = wc->file_roots;
}

void worker_source_conf(const worker_conf *wc, source_conf *c)
{
    memset(c, 0, sizeof(*c));
    worker_storage_conf(wc, &c->storage);
    c->allow_private = wc->allow_private_networks;
    c->allow_http = wc->allow_http_sources;
    c->max_bytes = wc->max_file_size;
    c->timeout_seconds = wc->download_timeout;
    c->file_roots = wc->file_roots;
}
