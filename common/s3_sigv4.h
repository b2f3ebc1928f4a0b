/* s3_sigv4.h — AWS Signature Version 4, written here rather than taken from
 * libcurl's CURLOPT_AWS_SIGV4 (curl 7.88 signs an empty payload for
 * uploads, does not sort or encode the query and signs headers it does not
 * send; see docs/STORAGE.md). Everything here is pure: strings in, strings
 * out, no clock, no network, so tests/unit/test_s3_sigv4.c checks it against
 * AWS's published examples.
 *
 * Ownership: functions returning char * return malloc'd strings the caller
 * frees; NULL means out of memory.
 */
#ifndef SS_S3_SIGV4_H
#define SS_S3_SIGV4_H

#include <stddef.h>

/* SHA-256 of the empty string, the payload hash of a request with no body. */
#define S3_EMPTY_SHA256 "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

typedef struct s3_kv {
    const char *name;
    const char *value;
} s3_kv;

typedef struct s3_sigv4_req {
    const char *method;        /* "GET", "PUT", ... */
    const char *path;          /* canonical, already URI-encoded: "/bucket/a%20b.m4s" */
    const char *query;         /* canonical query (s3_query_build), "" or NULL if none */
    const s3_kv *headers;      /* headers to sign, any case/order; must include host */
    size_t nheaders;
    const char *payload_hash;  /* hex SHA-256 of the body, or "UNSIGNED-PAYLOAD" */
    const char *amz_date;      /* "20130524T000000Z" (UTC) */
    const char *region;        /* "us-east-1", "auto" for R2 */
    const char *service;       /* "s3" */
    const char *access_key;
    const char *secret_key;
} s3_sigv4_req;

/* Percent-encode s the way SigV4 wants (RFC 3986 unreserved kept:
 * A-Z a-z 0-9 - . _ ~; '/' kept when keep_slash). */
char *s3_uri_encode(const char *s, int keep_slash);

/* Canonical query string from unencoded name/value pairs: each encoded,
 * sorted by name then value, joined with '&'; a NULL value is written as
 * "name=" (the form S3 signs for "?uploads"). Sending exactly this string as
 * the URL's query keeps what is signed and what is sent identical. */
char *s3_query_build(const s3_kv *params, size_t n);

/* The canonical request (method, path, query, headers, signed header list,
 * payload hash); *signed_headers (optional) gets "host;x-amz-date". */
char *s3_sigv4_canonical_request(const s3_sigv4_req *r, char **signed_headers);

/* "AWS4-HMAC-SHA256\n<date>\n<scope>\n<hex sha256(canonical request)>". */
char *s3_sigv4_string_to_sign(const s3_sigv4_req *r, const char *canonical_request);

/* Hex signature of string_to_sign with the key derived from the secret,
 * the date, region and service. out gets 64 hex chars + NUL. */
void s3_sigv4_signature(const s3_sigv4_req *r, const char *string_to_sign, char out[65]);

/* The whole Authorization header value:
 * "AWS4-HMAC-SHA256 Credential=AK/DATE/REGION/SERVICE/aws4_request,
 *  SignedHeaders=..., Signature=...". */
char *s3_sigv4_authorization(const s3_sigv4_req *r);

/* "YYYYMMDDTHHMMSSZ" for a UNIX time. */
void s3_amz_date(long long unix_time, char out[17]);

#endif
