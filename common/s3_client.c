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
    char line[8192];
    for (size_t i = 0; i < nh; i++) {
        snprintf(line, sizeof(line), "%s: %s", h[i].name, h[i].value);
        struct curl_slist *nl = curl_slist_append(l, line);
        if (!nl)
            goto oom_list;
        l = nl;
    }
    snprintf(line, sizeof(line), "Authorization: %s", auth);
    if (!(l = curl_slist_append(l, line)))
        goto oom;
    if (body_len < (1 << 20) && !(l = curl_slist_append(l, "Expect:")))
        goto oom;
    if (!has_ct && !strcmp(r->method, "POST") && !(l = curl_slist_append(l, "Content-Type:")))
        goto oom;
    OPENSSL_cleanse(line, sizeof(line));
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
    netguard_apply(h, g);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT, (long)S3_CONNECT_TIMEOUT_S);
    curl_easy_setopt(h, CURLOPT_LOW_SPEED_LIMIT, 1024L);
    curl_easy_setopt(h, CURLOPT_LOW_SPEED_TIME, (long)c->timeout_s);
    curl_easy_setopt(h, CURLOPT_TCP_KEEPALIVE, 1L);
    curl_easy_setopt(h, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_2TLS);
    curl_easy_setopt(h, CURLOPT_PATH_AS_IS, 1L);
    curl_easy_setopt(h, CURLOPT_EXPECT_100_TIMEOUT_MS, 1000L);
    curl_easy_setopt(h, CURLOPT_USERAGENT, "streamscale/" SS_VERSION);
}

s3_verdict s3_classify(int curl_code, long status, const char *s3_code, ss_code *code)
{
    const char *sc = s3_code ? s3_code : "";
    *code = SS_OK;
    if (curl_code != CURLE_OK) {
        switch (curl_code) {
        case CURLE_ABORTED_BY_CALLBACK:
            *code = SS_ECANCELLED;
            return S3_FAIL;
        case CURLE_READ_ERROR:
        case CURLE_WRITE_ERROR:
            *code = SS_EIO;
            return S3_FAIL;
        case CURLE_FILESIZE_EXCEEDED:
            *code = SS_ELIMIT;
            return S3_FAIL;
        case CURLE_UNSUPPORTED_PROTOCOL:
        case CURLE_URL_MALFORMAT:
            *code = SS_EINVAL;
            return S3_FAIL;
        case CURLE_PEER_FAILED_VERIFICATION:
        case CURLE_SSL_CERTPROBLEM:
        case CURLE_SSL_CACERT_BADFILE:
        case CURLE_TOO_MANY_REDIRECTS:
        case CURLE_OUT_OF_MEMORY:
            *code = curl_code == CURLE_OUT_OF_MEMORY ? SS_ENOMEM : SS_ENET;
            return S3_FAIL;
        default:
            /* connect refused/timed out, DNS, resets, timeouts, HTTP/2
             * stream errors, partial bodies: all worth another try. */
            *code = SS_ENET;
            return S3_RETRY;
        }
    }
    if (status >= 200 && status < 300)
        return S3_DONE;
    if (status == 401 || status == 403) {
        *code = SS_EAUTH;
        return S3_FAIL;
    }
    if (status == 404) {
        *code = strcmp(sc, "NoSuchUpload") ? SS_ENOTFOUND : SS_ENET;
        return S3_FAIL;
    }
    if (status == 408 || status == 429) {
        *code = SS_ENET;
        return S3_RETRY;
    }
    if (status == 400) {
        if (!strcmp(sc, "RequestTimeout") || !strcmp(sc, "BadDigest") ||
            !strcmp(sc, "XAmzContentSHA256Mismatch") || !strcmp(sc, "IncompleteBody") ||
            !strcmp(sc, "SlowDown")) {
            *code = SS_ENET;
            return S3_RETRY;
        }
        if (!strcmp(sc, "ExpiredToken") || !strcmp(sc, "InvalidToken") ||
            !strcmp(sc, "AuthorizationHeaderMalformed") || !strcmp(sc, "InvalidAccessKeyId")) {
            *code = SS_EAUTH;
            return S3_FAIL;
        }
        *code = !strcmp(sc, "InvalidBucketName") ? SS_EINVAL : SS_ENET;
        return S3_FAIL;
    }
    if (status >= 500 && status != 501 && status != 505) {
        *code = SS_ENET;
        return S3_RETRY;
    }
    *code = SS_ENET;
    return S3_FAIL;
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

int64_t s3_retry_delay_ms(int attempt, int64_t retry_after_ms)
{
    if (retry_after_ms > 0)
        return retry_after_ms > 30000 ? 30000 : retry_after_ms;
    return ss_backoff_ms(attempt, S3_BACKOFF_BASE_MS, S3_BACKOFF_CAP_MS, ss_random_unit());
}

static void xml_decode(char *s)
{
    char *o = s;
    for (char *p = s; *p;) {
        if (*p == '&') {
            char *semi = strchr(p, ';');
            if (semi && semi - p <= 10) {
                size_t n = (size_t)(semi - p - 1);
                const char *ent = p + 1;
                unsigned long cp = 0;
                int ok = 1;
                if (n == 3 && !strncmp(ent, "amp", 3)) cp = '&';
                else if (n == 2 && !strncmp(ent, "lt", 2)) cp = '<';
                else if (n == 2 && !strncmp(ent, "gt", 2)) cp = '>';
                else if (n == 4 && !strncmp(ent, "quot", 4)) cp = '"';
                else if (n == 4 && !strncmp(ent, "apos", 4)) cp = '\'';
                else if (n >= 2 && ent[0] == '#')
                    cp = ent[1] == 'x' ? strtoul(ent + 2, NULL, 16) : strtoul(ent + 1, NULL, 10);
                else
                    ok = 0;
                if (ok && cp > 0 && cp < 0x110000) {
                    if (cp < 0x80) {
                        *o++ = (char)cp;
                    } else if (cp < 0x800) {
                        *o++ = (char)(0xc0 | (cp >> 6));
                        *o++ = (char)(0x80 | (cp & 0x3f));
                    } else if (cp < 0x10000) {
                        *o++ = (char)(0xe0 | (cp >> 12));
                        *o++ = (char)(0x80 | ((cp >> 6) & 0x3f));
                        *o++ = (char)(0x80 | (cp & 0x3f));
                    } else {
                        *o++ = (char)(0xf0 | (cp >> 18));
                        *o++ = (char)(0x80 | ((cp >> 12) & 0x3f));
                        *o++ = (char)(0x80 | ((cp >> 6) & 0x3f));
                        *o++ = (char)(0x80 | (cp & 0x3f));
                    }
                    p = semi + 1;
                    continue;
                }
            }
        }
        *o++ = *p++;
    }
    *o = '\0';
}

char *s3_xml_get(const char *xml, const char *tag, const char **next)
{
    if (!xml)
        return NULL;
    char open[80], close[80];
    snprintf(open, sizeof(open), "<%s>", tag);
    snprintf(close, sizeof(close), "</%s>", tag);
    const char *a = strstr(xml, open);
    if (!a)
        return NULL;
    a += strlen(open);
    const char *b = strstr(a, close);
    if (!b)
        return NULL;
    char *v = strndup(a, (size_t)(b - a));
    if (v)
        xml_decode(v);
    if (next)
        *next = b + strlen(close);
    return v;
}

char *s3_xml_escape(const char *s)
{
    s3_buf b;
    s3_buf_init(&b, 0);
    s3_buf_add(&b, "", 0);
    for (; *s; s++) {
        switch (*s) {
        case '&': s3_buf_adds(&b, "&amp;"); break;
        case '<': s3_buf_adds(&b, "&lt;"); break;
        case '>': s3_buf_adds(&b, "&gt;"); break;
        case '"': s3_buf_adds(&b, "&quot;"); break;
        case '\'': s3_buf_adds(&b, "&apos;"); break;
        default: s3_buf_add(&b, s, 1);
        }
    }
    return s3_buf_take(&b);
}

void s3_base64(const unsigned char *in, size_t n, char *out)
{
    EVP_EncodeBlock((unsigned char *)out, in, (int)n);
}

/* ---- blocking calls ---- */

typedef struct call_state {
    s3_buf *resp;
    char *etag;
    int64_t retry_after_ms;
    const atomic_int *cancel;
} call_state;

static size_t call_write(char *p, size_t sz, size_t n, void *ud)
{
    call_state *cs = ud;
    if (cs->resp && s3_buf_add(cs->resp, p, sz * n) != 0)
        return 0;
    return sz * n;
}

/* One response header line: keep the ETag and Retry-After. */
static size_t call_header(char *p, size_t sz, size_t n, void *ud)
{
    call_state *cs = ud;
    size_t len = sz * n;
    if (cs->etag && len > 5 && !strncasecmp(p, "ETag:", 5)) {
        const char *v = p + 5;
        size_t vl = len - 5;
        while (vl && (*v == ' ' || *v == '\t')) {
            v++;
            vl--;
        }
        while (vl && (v[vl - 1] == '\r' || v[vl - 1] == '\n' || v[vl - 1] == ' '))
            vl--;
        if (vl >= 128)
            vl = 127;
        memcpy(cs->etag, v, vl);
        cs->etag[vl] = '\0';
    } else if (len > 12 && !strncasecmp(p, "Retry-After:", 12)) {
        long s = strtol(p + 12, NULL, 10);
        if (s > 0)
            cs->retry_after_ms = (int64_t)s * 1000;
    }
    return len;
}

static int call_progress(void *ud, curl_off_t a, curl_off_t b, curl_off_t c, curl_off_t d)
{
    call_state *cs = ud;
    (void)a; (void)b; (void)c; (void)d;
    return cs->cancel && atomic_load(cs->cancel) ? 1 : 0;
}

int s3_call(const s3_client *c, const s3_request *r, const void *body, size_t body_len,
            s3_buf *resp, long *status, char *etag, int64_t *content_length,
            const atomic_int *cancel, int *retries, ss_err *err)
{
    s3_buf own;
    s3_buf_init(&own, 1 << 20);
    if (!resp)
        resp = &own;
    char what[512];
    snprintf(what, sizeof(what), "%s s3://%s/%s", r->method, r->bucket ? r->bucket : "",
             r->key ? r->key : "");
    CURL *h = curl_easy_init();
    if (!h)
        return ss_fail(err, SS_ENOMEM, "out of memory");
    int rc = -1;
    for (int attempt = 1;; attempt++) {
        s3_buf_reset(resp);
        if (etag)
            etag[0] = '\0';
        call_state cs = { .resp = resp, .etag = etag, .cancel = cancel };
        char *url = NULL;
        struct curl_slist *hdrs = NULL;
        if (s3_sign_request(c, r, (long long)time(NULL), (int64_t)body_len, &url, &hdrs, err) != 0)
            break;
        netguard g;
        curl_easy_reset(h);
        s3_easy_defaults(c, h, &g);
        char ebuf[CURL_ERROR_SIZE] = "";
        curl_easy_setopt(h, CURLOPT_ERRORBUFFER, ebuf);
        curl_easy_setopt(h, CURLOPT_URL, url);
        curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdrs);
        curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, call_write);
        curl_easy_setopt(h, CURLOPT_WRITEDATA, &cs);
        curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, call_header);
        curl_easy_setopt(h, CURLOPT_HEADERDATA, &cs);
        curl_easy_setopt(h, CURLOPT_XFERINFOFUNCTION, call_progress);
        curl_easy_setopt(h, CURLOPT_XFERINFODATA, &cs);
        curl_easy_setopt(h, CURLOPT_NOPROGRESS, 0L);
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
        curl_slist_free_all(hdrs);
        free(url);
        char *s3code = NULL, *s3msg = NULL;
        if (cc == CURLE_OK && resp->data) {
            s3code = s3_xml_get(resp->data, "Code", NULL);
            s3msg = s3_xml_get(resp->data, "Message", NULL);
        }
        /* CompleteMultipartUpload may answer 200 with an error document. */
        if (cc == CURLE_OK && st == 200 && s3code && resp->data && strstr(resp->data, "<Error>"))
            st = 500;
        ss_code code;
        s3_verdict v = s3_classify(cc, st, s3code, &code);
        if (v == S3_DONE) {
            rc = 0;
        } else if (netguard_explain(&g, what, err)) {
            v = S3_FAIL;
        } else if (v == S3_RETRY && attempt <= c->max_retries &&
                   !(cancel && atomic_load(cancel))) {
            if (retries)
                (*retries)++;
            int64_t d = s3_retry_delay_ms(attempt, cs.retry_after_ms);
            int64_t until = ss_mono_ms() + d;
            while (ss_mono_ms() < until && !(cancel && atomic_load(cancel)))
                usleep(20000);
        } else {
            if (v == S3_RETRY && attempt > 1) {
                char w2[600];
                snprintf(w2, sizeof(w2), "%s (after %d attempts)", what, attempt);
                s3_describe_failure(err, code, w2, cc, ebuf, st, s3code, s3msg, r->bucket);
            } else {
                s3_describe_failure(err, code, what, cc, ebuf, st, s3code, s3msg, r->bucket);
            }
            v = S3_FAIL;
        }
        free(s3code);
        free(s3msg);
        if (v != S3_RETRY)
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
