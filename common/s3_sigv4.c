/* s3_sigv4.c — AWS Signature Version 4 (see s3_sigv4.h): canonical request,
 * string to sign, derived key, Authorization header. Pure functions only. */
#include "s3_sigv4.h"

#include <ctype.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "s3_buf.h"
#include "util.h"

static int unreserved(unsigned char c)
{
    return isalnum(c) || c == '-' || c == '.' || c == '_' || c == '~';
}

char *s3_uri_encode(const char *s, int keep_slash)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t n = strlen(s);
    char *out = malloc(3 * n + 1), *o = out;
    if (!out)
        return NULL;
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (unreserved(*p) || (keep_slash && *p == '/')) {
            *o++ = (char)*p;
        } else {
            *o++ = '%';
            *o++ = hex[*p >> 4];
            *o++ = hex[*p & 15];
        }
    }
    *o = '\0';
    return out;
}

typedef struct enc_pair {
    char *name, *value;
} enc_pair;

static int pair_cmp(const void *a, const void *b)
{
    const enc_pair *x = a, *y = b;
    int c = strcmp(x->name, y->name);
    return c ? c : strcmp(x->value, y->value);
}

char *s3_query_build(const s3_kv *params, size_t n)
{
    enc_pair *pairs = calloc(n ? n : 1, sizeof(*pairs));
    s3_buf b;
    s3_buf_init(&b, 0);
    char *out = NULL;
    if (!pairs)
        return NULL;
    for (size_t i = 0; i < n; i++) {
        pairs[i].name = s3_uri_encode(params[i].name, 0);
        pairs[i].value = s3_uri_encode(params[i].value ? params[i].value : "", 0);
        if (!pairs[i].name || !pairs[i].value)
            goto out;
    }
    qsort(pairs, n, sizeof(*pairs), pair_cmp);
    s3_buf_add(&b, "", 0);
    for (size_t i = 0; i < n; i++)
        s3_buf_printf(&b, "%s%s=%s", i ? "&" : "", pairs[i].name, pairs[i].value);
    out = s3_buf_take(&b);
out:
    for (size_t i = 0; i < n; i++) {
        free(pairs[i].name);
        free(pairs[i].value);
    }
    free(pairs);
    s3_buf_free(&b);
    return out;
}

typedef struct canon_hdr {
    char *name;    /* lower case */
    char *value;   /* trimmed, inner runs of spaces collapsed */
} canon_hdr;

static int hdr_cmp(const void *a, const void *b)
{
    const canon_hdr *x = a, *y = b;
    return strcmp(x->name, y->name);
}

static char *lower_dup(const char *s)
{
    char *d = strdup(s);
    if (d)
        for (char *p = d; *p; p++)
            *p = (char)tolower((unsigned char)*p);
    return d;
}

static char *trim_dup(const char *s)
{
    while (*s == ' ' || *s == '\t')
        s++;
    size_t n = strlen(s);
    while (n && (s[n - 1] == ' ' || s[n - 1] == '\t'))
        n--;
    char *d = malloc(n + 1), *o = d;
    if (!d)
        return NULL;
    for (size_t i = 0; i < n; i++) {
        int sp = s[i] == ' ' || s[i] == '\t';
        if (sp && o > d && o[-1] == ' ')
            continue;
        *o++ = sp ? ' ' : s[i];
    }
    *o = '\0';
    return d;
}

char *s3_sigv4_canonical_request(const s3_sigv4_req *r, char **signed_headers)
{
    canon_hdr *h = calloc(r->nheaders ? r->nheaders : 1, sizeof(*h));
    s3_buf b, sh;
    s3_buf_init(&b, 0);
    s3_buf_init(&sh, 0);
    char *out = NULL;
    if (!h)
        return NULL;
    for (size_t i = 0; i < r->nheaders; i++) {
        h[i].name = lower_dup(r->headers[i].name);
        h[i].value = trim_dup(r->headers[i].value ? r->headers[i].value : "");
        if (!h[i].name || !h[i].value)
            goto out;
    }
    qsort(h, r->nheaders, sizeof(*h), hdr_cmp);
    s3_buf_printf(&b, "%s\n%s\n%s\n", r->method, r->path && *r->path ? r->path : "/",
                  r->query ? r->query : "");
    for (size_t i = 0; i < r->nheaders; i++) {
        /* Repeated names are one line with the values joined by ','. */
        if (i && !strcmp(h[i].name, h[i - 1].name)) {
            b.len--;   /* drop the previous '\n' */
            s3_buf_printf(&b, ",%s\n", h[i].value);
            continue;
        }
        s3_buf_printf(&b, "%s:%s\n", h[i].name, h[i].value);
        s3_buf_printf(&sh, "%s%s", sh.len ? ";" : "", h[i].name);
    }
    s3_buf_add(&sh, "", 0);
    s3_buf_printf(&b, "\n%s\n%s", sh.data ? sh.data : "", r->payload_hash);
    if (b.oom || sh.oom)
        goto out;
    out = s3_buf_take(&b);
    if (signed_headers) {
        *signed_headers = s3_buf_take(&sh);
        if (!*signed_headers) {
            free(out);
            out = NULL;
        }
    }
out:
    for (size_t i = 0; i < r->nheaders; i++) {
        free(h[i].name);
        free(h[i].value);
    }
    free(h);
    s3_buf_free(&b);
    s3_buf_free(&sh);
    return out;
}

char *s3_sigv4_string_to_sign(const s3_sigv4_req *r, const char *canonical_request)
{
    char hash[65];
    ss_sha256_hex(canonical_request, strlen(canonical_request), hash);
    s3_buf b;
    s3_buf_init(&b, 0);
    s3_buf_printf(&b, "AWS4-HMAC-SHA256\n%s\n%.8s/%s/%s/aws4_request\n%s", r->amz_date,
                  r->amz_date, r->region, r->service, hash);
    return s3_buf_take(&b);
}

static void hmac(const void *key, size_t keylen, const char *msg, unsigned char out[32])
{
    unsigned int len = 32;
    HMAC(EVP_sha256(), key, (int)keylen, (const unsigned char *)msg, strlen(msg), out, &len);
}

void s3_sigv4_signature(const s3_sigv4_req *r, const char *string_to_sign, char out[65])
{
    size_t sl = strlen(r->secret_key);
    char *k0 = malloc(sl + 5);
    unsigned char k1[32], k2[32], k3[32], k4[32], sig[32];
    if (!k0) {
        out[0] = '\0';
        return;
    }
    memcpy(k0, "AWS4", 4);
    memcpy(k0 + 4, r->secret_key, sl + 1);
    char date[9];
    memcpy(date, r->amz_date, 8);
    date[8] = '\0';
    hmac(k0, sl + 4, date, k1);
    hmac(k1, 32, r->region, k2);
    hmac(k2, 32, r->service, k3);
    hmac(k3, 32, "aws4_request", k4);
    hmac(k4, 32, string_to_sign, sig);
    ss_hex(sig, 32, out);
    /* The secret does not linger in freed memory. */
    OPENSSL_cleanse(k0, sl + 4);
    OPENSSL_cleanse(k4, sizeof(k4));
    free(k0);
}

char *s3_sigv4_authorization(const s3_sigv4_req *r)
{
    char *signed_headers = NULL, *sts = NULL, *out = NULL;
    char *creq = s3_sigv4_canonical_request(r, &signed_headers);
    if (!creq)
        return NULL;
    sts = s3_sigv4_string_to_sign(r, creq);
    if (sts) {
        char sig[65];
        s3_sigv4_signature(r, sts, sig);
        s3_buf b;
        s3_buf_init(&b, 0);
        s3_buf_printf(&b,
                      "AWS4-HMAC-SHA256 Credential=%s/%.8s/%s/%s/aws4_request, "
                      "SignedHeaders=%s, Signature=%s",
                      r->access_key, r->amz_date, r->region, r->service, signed_headers, sig);
        out = s3_buf_take(&b);
    }
    free(creq);
    free(sts);
    free(signed_headers);
    return out;
}

void s3_amz_date(long long unix_time, char out[17])
{
    time_t t = (time_t)unix_time;
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(out, 17, "%Y%m%dT%H%M%SZ", &tm);
}
