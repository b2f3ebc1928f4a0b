/* s3_client.h — what the s3:// storage backend and the s3:// source fetcher
 * share: endpoint and credentials resolution, bucket/key URLs (path-style or
 * virtual-host), request signing (s3_sigv4), what S3's error codes add to
 * the retry classification, and a blocking request
 * with retries for the small control calls (list, delete, head). The curl
 * plumbing under all of it (handle options, answer capture, backoff) is
 * http_client.h.
 *
 * Secrets: the secret key lives only in s3_client and in the signing key
 * derivation; nothing here logs, and error messages never contain it nor a
 * signed URL.
 */
#ifndef SS_S3_CLIENT_H
#define SS_S3_CLIENT_H

#include <curl/curl.h>
#include <stdatomic.h>
#include <stdint.h>

#include "http_client.h"
#include "netguard.h"
#include "s3_buf.h"
#include "s3_sigv4.h"
#include "s3_xml.h"
#include "ss_err.h"
#include "storage.h"

/* Defaults for storage_conf fields left 0. */
#define S3_DEFAULT_PARALLEL 16
#define S3_DEFAULT_MULTIPART_THRESHOLD (32LL << 20)
#define S3_DEFAULT_PART_SIZE (8LL << 20)
#define S3_MIN_PART_SIZE (5LL << 20)
#define S3_MAX_PARTS 10000
#define S3_DEFAULT_RETRIES 6
#define S3_DEFAULT_TIMEOUT_S 30
#define S3_CONNECT_TIMEOUT_S 10

typedef struct s3_client {
    char *scheme;        /* "https" or "http" */
    char *host;          /* "host" or "host:port" as it goes in Host: */
    char *base_path;     /* path of the endpoint URL without trailing '/', usually "" */
    char *region;
    char *access_key;
    char *secret_key;
    char *session_token; /* optional (AWS_SESSION_TOKEN) */
    int path_style;      /* effective: forced on for IP-literal endpoints */
    int max_retries;
    int timeout_s;       /* low-speed window: < 1 KB/s for this long aborts */
    int allow_private;   /* SSRF guard on the endpoint's address */
} s3_client;

/* Resolve the endpoint, region and credentials from conf (credentials:
 * conf keys, else AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY[/AWS_SESSION_TOKEN],
 * else conf->s3_credentials_file, which must not be group/other
 * accessible). Free with s3_client_free. */
int s3_client_init(s3_client *c, const storage_conf *conf, ss_err *err);
void s3_client_free(s3_client *c);

/* Read "access_key = ..." / "secret_key = ..." (also the AWS names
 * aws_access_key_id / aws_secret_access_key / aws_session_token). Refuses a
 * file with any group/other permission bits. Out strings are malloc'd. */
int s3_read_credentials_file(const char *path, char **access_key, char **secret_key,
                             char **session_token, ss_err *err);

/* "s3://bucket/some/prefix" -> bucket "bucket", key "some/prefix" (may be
 * ""). Both malloc'd. Checks the bucket name (3-63 chars, a-z 0-9 . -). */
int s3_parse_url(const char *url, char **bucket, char **key, ss_err *err);
int s3_bucket_name_ok(const char *bucket);

/* One S3 call to sign and send. */
typedef struct s3_request {
    const char *method;       /* GET PUT POST DELETE HEAD */
    const char *bucket;
    const char *key;          /* NULL/"" for a bucket-level call */
    const s3_kv *query;       /* unencoded; NULL value = "name=" */
    size_t nquery;
    const s3_kv *headers;     /* extra headers, signed and sent */
    size_t nheaders;
    const char *payload_hash; /* hex SHA-256 of the body; NULL = empty body */
} s3_request;

/* Build the URL and the signed header list for r at time now (UNIX s).
 * *url and *hdrs are the caller's (free / curl_slist_free_all). The list
 * also turns off curl's Expect: 100-continue for bodies under 1 MiB. */
int s3_sign_request(const s3_client *c, const s3_request *r, long long now, int64_t body_len,
                    char **url, struct curl_slist **hdrs, ss_err *err);

/* Options every S3 easy handle gets (http_easy_setup with the S3 timeouts,
 * the SSRF guard g on the endpoint, owned by the caller, one per handle;
 * no redirects) and the S3 quirks: the path as is, a 1 s wait for 100
 * Continue. */
void s3_easy_defaults(const s3_client *c, CURL *h, netguard *g);

/* http_classify with what S3's error code adds (s3_code: the <Code> of an
 * S3 error body, or NULL): 400 RequestTimeout/BadDigest/SlowDown/...
 * retry, 400 ExpiredToken/InvalidAccessKeyId/... are SS_EAUTH,
 * InvalidBucketName SS_EINVAL, 404 NoSuchUpload SS_ENET. Pure. */
http_verdict s3_classify(int curl_code, long status, const char *s3_code, ss_code *code);

/* Fill err with a clear message for a failed request ("S3 refused the
 * credentials (403 SignatureDoesNotMatch) ..."). what: "PUT
 * bucket/key". s3_message may be NULL. */
void s3_describe_failure(ss_err *err, ss_code code, const char *what, int curl_code,
                         const char *curl_msg, long status, const char *s3_code,
                         const char *s3_message, const char *bucket);

/* Base64 of n bytes into out (size >= 4*ceil(n/3)+1). */
void s3_base64(const unsigned char *in, size_t n, char *out);

/* Blocking call with retries for small control requests (list, delete,
 * head, create/complete multipart): body from memory (may be NULL), the
 * response body into resp (capped by its max), HTTP status into *status,
 * response ETag into etag (optional, 128 bytes). Returns 0 on a 2xx, -1
 * with err set otherwise. *retries (optional) counts retries made. */
int s3_call(const s3_client *c, const s3_request *r, const void *body, size_t body_len,
            s3_buf *resp, long *status, char *etag, int64_t *content_length,
            const atomic_int *cancel, int *retries, ss_err *err);

#endif
