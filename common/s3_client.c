/* s3_client.c — endpoint/credentials resolution, signed request building,
 * retry classification and small blocking calls for S3 (see s3_client.h). */
#include "s3_client.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "util.h"

static char *dup_or_null(const char *s)
{
    return s ? strdup(s) : NULL;
}

static void free_secret(char **s)
{
    if (*s) {
        OPENSSL_cleanse(*s, strlen(*s));
        free(*s);
        *s = NULL;
    }
}

static char *trim_inplace(char *s)
{
    while (*s == ' ' || *s == '\t')
        s++;
    size_t n = strlen(s);
    while (n && (s[n - 1] == ' ' || s[n - 1] == '\t' || s[n - 1] == '\r' || s[n - 1] == '\n'))
        s[--n] = '\0';
    if (n >= 2 && ((s[0] == '"' && s[n - 1] == '"') || (s[0] == '\'' && s[n - 1] == '\''))) {
        s[n - 1] = '\0';
        s++;
    }
    return s;
}

int s3_read_credentials_file(const char *path, char **access_key, char **secret_key,
                             char **session_token, ss_err *err)
{
    struct stat stt;
    if (stat(path, &stt) != 0)
        return ss_fail(err, errno == ENOENT ? SS_ENOTFOUND : SS_EIO,
                       "s3_credentials_file %s: %s", path, strerror(errno));
    if (stt.st_mode & 0077)
        return ss_fail(err, SS_EAUTH,
                       "s3_credentials_file %s is accessible by group or others (mode %03o): "
                       "chmod 600 it", path, (unsigned)(stt.st_mode & 0777));
    size_t len = 0;
    char *text = ss_read_file(path, 64 * 1024, &len, err);
    if (!text)
        return -1;
    char *save = NULL;
    int lineno = 0;
    for (char *line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        lineno++;
        char *l = trim_inplace(line);
        if (!*l || *l == '#' || *l == ';' || *l == '[')
            continue;
        char *eq = strchr(l, '=');
        if (!eq)
            continue;
        *eq = '\0';
        char *k = trim_inplace(l), *v = trim_inplace(eq + 1);
        char **dst = NULL;
        if (!strcmp(k, "access_key") || !strcmp(k, "aws_access_key_id"))
            dst = access_key;
        else if (!strcmp(k, "secret_key") || !strcmp(k, "aws_secret_access_key"))
            dst = secret_key;
        else if (!strcmp(k, "session_token") || !strcmp(k, "aws_session_token"))
            dst = session_token;
        if (dst && !*dst)
            *dst = strdup(v);
    }
    (void)lineno;
    OPENSSL_cleanse(text, len);
    free(text);
    if (!*access_key || !*secret_key) {
        free_secret(access_key);
        free_secret(secret_key);
        free_secret(session_token);
        return ss_fail(err, SS_EAUTH, "s3_credentials_file %s has no access_key and secret_key", path);
    }
    return 0;
}

static int is_ip_literal(const char *host)
{
    char h[256];
    ss_strlcpy(h, host, sizeof(h));
    if (h[0] == '[')
        return 1;
    char *colon = strchr(h, ':');
    if (colon)
        *colon = '\0';
    struct in_addr a;
    return inet_pton(AF_INET, h, &a) == 1;
}

int s3_client_init(s3_client *c, const storage_conf *conf, ss_err *err)
{
    memset(c, 0, sizeof(*c));
    storage_conf zero = { 0 };
    if (!conf)
        conf = &zero;
    const char *region = conf->s3_region && *conf->s3_region ? conf->s3_region : NULL;
    const char *ep = conf->s3_endpoint && *conf->s3_endpoint ? conf->s3_endpoint : NULL;
    char defep[128];
    if (!ep) {
        snprintf(defep, sizeof(defep), "https://s3.%s.amazonaws.com", region ? region : "us-east-1");
        ep = defep;
    }
    if (!region)
        region = strstr(ep, ".r2.cloudflarestorage.com") ? "auto" : "us-east-1";
    const char *sep = strstr(ep, "://");
    if (!sep || (strncasecmp(ep, "https://", 8) && strncasecmp(ep, "http://", 7)))
        return ss_fail(err, SS_EINVAL, "s3_endpoint '%s' must start with https:// (or http://)", ep);
    const char *host = sep + 3;
    size_t hl = strcspn(host, "/?#");
    if (!hl || memchr(host, '@', hl))
        return ss_fail(err, SS_EINVAL, "s3_endpoint has no host (or has user info): put credentials "
                                       "in s3_access_key/s3_secret_key");
    c->scheme = strndup(ep, (size_t)(sep - ep));
    for (char *p = c->scheme; p && *p; p++)
        *p = (char)tolower((unsigned char)*p);
    c->host = strndup(host, hl);
    const char *path = host + hl;
    size_t pl = strcspn(path, "?#");
    while (pl && path[pl - 1] == '/')
        pl--;
    c->base_path = strndup(path, pl);
    c->region = strdup(region);
    if (!c->scheme || !c->host || !c->base_path || !c->region)
        goto oom;
    for (char *p = c->host; *p; p++)
        *p = (char)tolower((unsigned char)*p);

    if (conf->s3_access_key && *conf->s3_access_key) {
        if (!conf->s3_secret_key || !*conf->s3_secret_key) {
            s3_client_free(c);
            return ss_fail(err, SS_EAUTH, "s3_access_key is set but s3_secret_key is not");
        }
        c->access_key = strdup(conf->s3_access_key);
        c->secret_key = strdup(conf->s3_secret_key);
    } else if (getenv("AWS_ACCESS_KEY_ID") && *getenv("AWS_ACCESS_KEY_ID") &&
               getenv("AWS_SECRET_ACCESS_KEY") && *getenv("AWS_SECRET_ACCESS_KEY")) {
        c->access_key = strdup(getenv("AWS_ACCESS_KEY_ID"));
        c->secret_key = strdup(getenv("AWS_SECRET_ACCESS_KEY"));
        c->session_token = dup_or_null(getenv("AWS_SESSION_TOKEN"));
        if (c->session_token && !*c->session_token)
            free_secret(&c->session_token);
    } else if (conf->s3_credentials_file && *conf->s3_credentials_file) {
        if (s3_read_credentials_file(conf->s3_credentials_file, &c->access_key, &c->secret_key,
                                     &c->session_token, err) != 0) {
            s3_client_free(c);
            return -1;
        }
    } else {
        s3_client_free(c);
        return ss_fail(err, SS_EAUTH,
                       "no S3 credentials: set s3_access_key and s3_secret_key, or "
                       "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or s3_credentials_file");
    }
    if (!c->access_key || !c->secret_key)
        goto oom;
    c->path_style = conf->s3_path_style || is_ip_literal(c->host);
    c->max_retries = conf->max_retries > 0 ? conf->max_retries : (conf->max_retries < 0 ? 0 : S3_DEFAULT_RETRIES);
    c->timeout_s = conf->timeout_seconds > 0 ? conf->timeout_seconds : S3_DEFAULT_TIMEOUT_S;
    c->allow_private = conf->allow_private;
    return 0;
oom:
    s3_client_free(c);
    return ss_fail(err, SS_ENOMEM, "out of memory");
}

void s3_client_free(s3_client *c)
{
    free(c->scheme);
    free(c->host);
    free(c->base_path);
    free(c->region);
    free_secret(&c->access_key);
    free_secret(&c->secret_key);
    free_secret(&c->session_token);
    memset(c, 0, sizeof(*c));
}

int s3_bucket_name_ok(const char *b)
{
    size_t n = strlen(b);
    if (n < 3 || n > 63)
        return 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)b[i];
        if (!(islower(ch) || isdigit(ch) || ch == '.' || ch == '-' || ch == '_'))
            return 0;
    }
    if (!isalnum((unsigned char)b[0]) || !isalnum((unsigned char)b[n - 1]) || strstr(b, ".."))
        return 0;
    return 1;
}

int s3_parse_url(const char *url, char **bucket, char **key, ss_err *err)
{
    *bucket = *key = NULL;
    if (strncmp(url, "s3://", 5))
        return ss_fail(err, SS_EINVAL, "'%s' is not an s3:// URL", url);
    const char *b = url + 5;
    size_t bl = strcspn(b, "/");
    *bucket = strndup(b, bl);
    *key = strdup(b[bl] == '/' ? b + bl + 1 : "");
    if (!*bucket || !*key) {
        free(*bucket);
        free(*key);
        *bucket = *key = NULL;
        return ss_fail(err, SS_ENOMEM, "out of memory");
    }
    if (strchr(*bucket, '@')) {
        /* s3://KEY:SECRET@bucket: never echo what looks like credentials */
        ss_fail(err, SS_EINVAL, "s3 URLs carry no credentials: S3 keys go in the worker's config "
                                "(s3_access_key and s3_secret_key, or s3_credentials_file)");
        free(*bucket);
        free(*key);
        *bucket = *key = NULL;
        return -1;
    }
    if (!s3_bucket_name_ok(*bucket)) {
        ss_fail(err, SS_EINVAL, "'%s' is not a valid S3 bucket name (3-63 characters a-z 0-9 . -)",
                *bucket);
        free(*bucket);
        free(*key);
        *bucket = *key = NULL;
        return -1;
    }
    return 0;
}

int s3_sign_request(const s3_client *c, const s3_request *r, long long now, int64_t body_len,
                    char **url, struct curl_slist **hdrs, ss_err *err)
{
    *url = NULL;
    *hdrs = NULL;
    const char *key = r->key ? r->key : "";
    int vhost = !c->path_style && r->bucket && *r->bucket && !strchr(r->bucket, '.');
    char *ekey = s3_uri_encode(key, 1);
    char *query = s3_query_build(r->query, r->nquery);
    s3_buf path, host, u;
    s3_buf_init(&path, 0);
    s3_buf_init(&host, 0);
    s3_buf_init(&u, 0);
    s3_kv *h = calloc(r->nheaders + 5, sizeof(*h));
    char *auth = NULL;
    int rc = -1;
    if (!ekey || !query || !h)
        goto oom;
    if (vhost) {
        s3_buf_printf(&host, "%s.%s", r->bucket, c->host);
        s3_buf_printf(&path, "%s/%s", c->base_path, ekey);
    } else {
        s3_buf_adds(&host, c->host);
        s3_buf_adds(&path, c->base_path);
        if (r->bucket && *r->bucket) {
            s3_buf_printf(&path, "/%s", r->bucket);
            if (*key)
                s3_buf_printf(&path, "/%s", ekey);
        } else {
            s3_buf_adds(&path, "/");
        }
    }
    if (path.oom || host.oom)
        goto oom;
    char date[17];
    s3_amz_date(now, date);
    const char *phash = r->payload_hash ? r->payload_hash : S3_EMPTY_SHA256;
    size_t nh = 0;
    h[nh++] = (s3_kv){ "host", host.data };
    h[nh++] = (s3_kv){ "x-amz-date", date };
    h[nh++] = (s3_kv){ "x-amz-content-sha256", phash };
    if (c->session_token)
        h[nh++] = (s3_kv){ "x-amz-security-token", c->session_token };
    int has_ct = 0;
    for (size_t i = 0; i < r->nheaders; i++) {
        h[nh++] = r->headers[i];
        if (!strcasecmp(r->headers[i].name, "content-type"))
            has_ct = 1;
    }
    s3_sigv4_req sr = {
        .method = r->method, .path = path.data, .query = query, .headers = h, .nheaders = nh,
        .payload_hash = phash, .amz_date = date, .region = c->region, .service = "s3",
        .access_key = c->access_key, .secret_key = c->secret_key,
    };
    auth = s3_sigv4_authorization(&sr);
    if (!auth)
        goto oom;
    s3_buf_printf(&u, "%s://%s%s%s%s", c->scheme, host.data, path.data, *query ? "?" : "", query);
    if (u.oom)
        goto oom;
    struct curl_slist *l = NULL;
    for (size_t i = 0; i < nh; i++)
        if (http_header_add(&l, "%s: %s", h[i].name, h[i].value) != 0)
            goto oom_list;
    if (http_header_add(&l, "Authorization: %s", auth) != 0 ||
        (body_len < (1 << 20) && http_header_add(&l, "Expect:") != 0) ||
        (!has_ct && !strcmp(r->method, "POST") && http_header_add(&l, "Content-Type:") != 0))
        goto oom_list;
    *hdrs = l;
    *url = s3_buf_take(&u);
    rc = 0;
    goto out;
oom_list:
    curl_slist_free_all(l);
oom:
    ss_fail(err, SS_ENOMEM, "out of memory");
out:
    free(auth);
    free(h);
    free(ekey);
    free(query);
    s3_buf_free(&path);
    s3_buf_free(&host);
    s3_buf_free(&u);
    return rc;
}

void s3_easy_defaults(const s3_client *c, CURL *h, netguard *g)
{
    g->allow_private = c->allow_private;
    g->allow_http = !strcmp(c->scheme, "http");
    g->max_redirects = 0;
    http_limits l = { .connect_timeout_ms = S3_CONNECT_TIMEOUT_S * 1000L,
                      .low_speed_s = c->timeout_s };
    http_easy_setup(h, g, &l);
    curl_easy_setopt(h, CURLOPT_PATH_AS_IS, 1L);
    curl_easy_setopt(h, CURLOPT_EXPECT_100_TIMEOUT_MS, 1000L);
}

http_verdict s3_classify(int curl_code, long status, const char *s3_code, ss_code *code)
{
    const char *sc = s3_code ? s3_code : "";
    if (curl_code == CURLE_OK && status == 404 && !strcmp(sc, "NoSuchUpload")) {
        *code = SS_ENET;   /* the upload, not the object, is gone */
        return HTTP_FAIL;
    }
    if (curl_code == CURLE_OK && status == 400) {
        if (!strcmp(sc, "RequestTimeout") || !strcmp(sc, "BadDigest") ||
            !strcmp(sc, "XAmzContentSHA256Mismatch") || !strcmp(sc, "IncompleteBody") ||
            !strcmp(sc, "SlowDown")) {
            *code = SS_ENET;
            return HTTP_RETRY;
        }
        if (!strcmp(sc, "ExpiredToken") || !strcmp(sc, "InvalidToken") ||
            !strcmp(sc, "AuthorizationHeaderMalformed") || !strcmp(sc, "InvalidAccessKeyId")) {
            *code = SS_EAUTH;
            return HTTP_FAIL;
        }
        if (!strcmp(sc, "InvalidBucketName")) {
            *code = SS_EINVAL;
            return HTTP_FAIL;
        }
    }
    return http_classify(curl_code, status, code);
}

void s3_describe_failure(ss_err *err, ss_code code, const char *what, int curl_code,
                         const char *curl_msg, long status, const char *s3_code,
                         const char *s3_message, const char *bucket)
{
    char detail[200] = "";
    if (s3_message && *s3_message)
        snprintf(detail, sizeof(detail), ": %.150s", s3_message);
    const char *sc = s3_code && *s3_code ? s3_code : "";
    if (curl_code != CURLE_OK) {
        ss_fail(err, code, "%s failed: %s", what,
                curl_msg && *curl_msg ? curl_msg : curl_easy_strerror((CURLcode)curl_code));
        return;
    }
    if (code == SS_EAUTH) {
        if (!strcmp(sc, "RequestTimeTooSkewed"))
            ss_fail(err, code, "S3 refused the request (%ld %s): this machine's clock is off; "
                               "fix the time (NTP)", status, sc);
        else if (!strcmp(sc, "AccessDenied"))
            ss_fail(err, code, "S3 denied access (%ld AccessDenied) for %s%s: the key lacks "
                               "permission on this bucket", status, what, detail);
        else
            ss_fail(err, code, "S3 refused the credentials (%ld %s) for %s%s; check "
                               "s3_access_key/s3_secret_key and s3_region", status,
                    *sc ? sc : "Forbidden", what, detail);
        return;
    }
    if (!strcmp(sc, "NoSuchBucket")) {
        ss_fail(err, code, "S3 bucket '%s' does not exist (404 NoSuchBucket)", bucket ? bucket : "?");
        return;
    }
    if (status == 404) {
        ss_fail(err, code, "%s: not found (404%s%s)", what, *sc ? " " : "", sc);
        return;
    }
    ss_fail(err, code, "%s failed: HTTP %ld%s%s%s", what, status, *sc ? " " : "", sc, detail);
}

void s3_base64(const unsigned char *in, size_t n, char *out)
{
    EVP_EncodeBlock((unsigned char *)out, in, (int)n);
}

/* ---- blocking calls ---- */

int s3_call(const s3_client *c, const s3_request *r, const void *body, size_t body_len,
            s3_buf *resp, long *status, char *etag, int64_t *content_length,
            const atomic_int *cancel, int *retries, ss_err *err)
{
    s3_buf own;
    s3_buf_init(&own, 1 << 20);
    http_resp hr = { .body = resp ? resp : &own, .body_cap_fails = 1, .cancel = cancel };
    resp = hr.body;
    char what[512];
    snprintf(what, sizeof(what), "%s s3://%s/%s", r->method, r->bucket ? r->bucket : "",
             r->key ? r->key : "");
    CURL *h = curl_easy_init();
    if (!h)
        return ss_fail(err, SS_ENOMEM, "out of memory");
    int rc = -1;
    for (int attempt = 1;; attempt++) {
        http_resp_reset(&hr);
        if (etag)
            etag[0] = '\0';
        char *url = NULL;
        struct curl_slist *hdrs = NULL;
        if (s3_sign_request(c, r, (long long)time(NULL), (int64_t)body_len, &url, &hdrs, err) != 0)
            break;
        netguard g;
        curl_easy_reset(h);
        s3_easy_defaults(c, h, &g);
        http_capture(h, &hr);
        curl_easy_setopt(h, CURLOPT_URL, url);
        curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdrs);
        if (!strcmp(r->method, "HEAD")) {
            curl_easy_setopt(h, CURLOPT_NOBODY, 1L);
        } else if (!strcmp(r->method, "POST")) {
            curl_easy_setopt(h, CURLOPT_POST, 1L);
            curl_easy_setopt(h, CURLOPT_POSTFIELDS, body ? (const char *)body : "");
            curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)body_len);
        } else if (strcmp(r->method, "GET")) {
            curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, r->method);
            if (body) {
                curl_easy_setopt(h, CURLOPT_POSTFIELDS, (const char *)body);
                curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)body_len);
            }
        }
        CURLcode cc = curl_easy_perform(h);
        long st = 0;
        curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &st);
        if (status)
            *status = st;
        if (content_length) {
            curl_off_t cl = -1;
            curl_easy_getinfo(h, CURLINFO_CONTENT_LENGTH_DOWNLOAD_T, &cl);
            *content_length = cl;
        }
        if (etag)
            ss_strlcpy(etag, hr.etag, 128);
        curl_slist_free_all(hdrs);
        free(url);
        char *s3code = NULL, *s3msg = NULL;
        /* CompleteMultipartUpload may answer 200 with an error document. */
        if (cc == CURLE_OK && s3_xml_error(resp->data, resp->len, &s3code, &s3msg) && st == 200)
            st = 500;
        ss_code code;
        http_verdict v = s3_classify(cc, st, s3code, &code);
        if (v == HTTP_DONE) {
            rc = 0;
        } else if (netguard_explain(&g, what, err)) {
            v = HTTP_FAIL;
        } else if (v == HTTP_RETRY && attempt <= c->max_retries &&
                   !(cancel && atomic_load(cancel))) {
            if (retries)
                (*retries)++;
            http_backoff_wait(attempt, hr.retry_after_ms, cancel);
        } else {
            const char *ebuf = cc ? http_error_text(&hr, cc) : NULL;
            if (v == HTTP_RETRY && attempt > 1) {
                char w2[600];
                snprintf(w2, sizeof(w2), "%s (after %d attempts)", what, attempt);
                s3_describe_failure(err, code, w2, cc, ebuf, st, s3code, s3msg, r->bucket);
            } else {
                s3_describe_failure(err, code, what, cc, ebuf, st, s3code, s3msg, r->bucket);
            }
            v = HTTP_FAIL;
        }
        free(s3code);
        free(s3msg);
        if (v != HTTP_RETRY)
            break;
        if (cancel && atomic_load(cancel)) {
            ss_fail(err, SS_ECANCELLED, "%s: cancelled", what);
            break;
        }
    }
    curl_easy_cleanup(h);
    s3_buf_free(&own);
    return rc;
}
