/* coord_web.c — the dashboard (static files from web_dir) and finished
 * file:// outputs (read-only, under /files/<job id>/... from output_dir).
 *
 * Neither needs the API token: the dashboard is static and asks the
 * browser's user for the token, which it sends on its /v1 calls; players
 * (hls.js, Safari, ffplay) cannot send a Bearer header on every segment
 * request, so /files is open. Job ids are 80-bit hashes; anyone who knows
 * one can fetch that job's output, like anyone who knows a public bucket
 * URL. Put the coordinator behind a proxy that restricts /files if that is
 * too much (docs/OPERATIONS.md).
 *
 * Path safety: the request path is split on '/', and every component must
 * be a plain name (no "", ".", "..", no leading dot, no NUL). Each folder
 * is opened relative to the previous one with O_NOFOLLOW, the file with
 * O_NOFOLLOW too, and it must be a regular file: no symlink is ever
 * followed below the configured root, so nothing outside it can be read.
 * GET and HEAD, single byte ranges (206/416), ETag/If-None-Match (304).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>

#include "coord_http.h"
#include "jobspec.h"
#include "log.h"
#include "util.h"

#define WEB_MAX_DEPTH 16
#define WEB_MAX_PATH 1024

static const struct {
    const char *ext, *type;
} mime_types[] = {
    { ".m3u8", "application/vnd.apple.mpegurl" },
    { ".mpd", "application/dash+xml" },
    { ".m4s", "video/iso.segment" },
    { ".mp4", "video/mp4" },
    { ".m4a", "audio/mp4" },
    { ".m4v", "video/mp4" },
    { ".ts", "video/mp2t" },
    { ".vtt", "text/vtt; charset=utf-8" },
    { ".jpg", "image/jpeg" },
    { ".jpeg", "image/jpeg" },
    { ".png", "image/png" },
    { ".webp", "image/webp" },
    { ".svg", "image/svg+xml" },
    { ".ico", "image/x-icon" },
    { ".json", "application/json" },
    { ".html", "text/html; charset=utf-8" },
    { ".js", "text/javascript; charset=utf-8" },
    { ".mjs", "text/javascript; charset=utf-8" },
    { ".css", "text/css; charset=utf-8" },
    { ".txt", "text/plain; charset=utf-8" },
    { ".map", "application/json" },
};

static const char *mime_of(const char *name)
{
    const char *dot = strrchr(name, '.');
    if (dot)
        for (size_t i = 0; i < SS_ARRAY_LEN(mime_types); i++)
            if (!strcasecmp(dot, mime_types[i].ext))
                return mime_types[i].type;
    if (!strcasecmp(name, "LICENSE") || ss_str_has_suffix(name, ".LICENSE"))
        return "text/plain; charset=utf-8";
    return "application/octet-stream";
}

/* Open root/rel (rel without a leading '/') for reading, never following a
 * symlink below root and never leaving it. Returns an fd of a regular file
 * with *st filled, or -1 with errno (ENOENT for anything refused, so a
 * probe learns nothing about what exists outside). */
static int open_under(const char *root, const char *rel, struct stat *st)
{
    char buf[WEB_MAX_PATH + 1];
    if (!root || !*root || strlen(rel) > WEB_MAX_PATH) {
        errno = ENOENT;
        return -1;
    }
    memcpy(buf, rel, strlen(rel) + 1);
    char *comps[WEB_MAX_DEPTH];
    int n = 0;
    for (char *save = NULL, *p = strtok_r(buf, "/", &save); p; p = strtok_r(NULL, "/", &save)) {
        if (n == WEB_MAX_DEPTH || p[0] == '.' || strlen(p) > 255) {
            errno = ENOENT;
            return -1;
        }
        comps[n++] = p;
    }
    /* "a//b" or a trailing "/" would hide an empty component: refuse */
    if (n == 0 || strstr(rel, "//") || rel[strlen(rel) - 1] == '/') {
        errno = ENOENT;
        return -1;
    }
    int dfd = open(root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd < 0)
        return -1;
    for (int i = 0; i < n - 1; i++) {
        int next = openat(dfd, comps[i], O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        int e = errno;
        close(dfd);
        if (next < 0) {
            errno = e == ELOOP || e == ENOTDIR ? ENOENT : e;
            return -1;
        }
        dfd = next;
    }
    int fd = openat(dfd, comps[n - 1], O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
    int e = errno;
    close(dfd);
    if (fd < 0) {
        errno = e == ELOOP ? ENOENT : e;
        return -1;
    }
    if (fstat(fd, st) != 0 || !S_ISREG(st->st_mode)) {
        close(fd);
        errno = ENOENT;
        return -1;
    }
    return fd;
}

/* Parse a single "bytes=a-b" / "bytes=a-" / "bytes=-n" range against size.
 * 1 = a satisfiable range in *off and *len, 0 = no (usable) Range header,
 * -1 = unsatisfiable (416). Multiple ranges are answered with the whole
 * file (allowed: a server may ignore Range). */
static int parse_range(const char *h, long long size, long long *off, long long *len)
{
    if (!h || strncasecmp(h, "bytes=", 6) != 0)
        return 0;
    h += 6;
    if (strchr(h, ','))
        return 0;
    char *end;
    long long a = -1, b = -1;
    if (*h == '-') {
        long long nlast = strtoll(h + 1, &end, 10);
        if (end == h + 1 || *end)
            return 0;
        if (nlast <= 0 || size == 0)
            return -1;
        a = nlast >= size ? 0 : size - nlast;
        b = size - 1;
    } else {
        a = strtoll(h, &end, 10);
        if (end == h || *end != '-' || a < 0)
            return 0;
        h = end + 1;
        if (*h) {
            b = strtoll(h, &end, 10);
            if (*end || b < a)
                return 0;
        } else {
            b = size - 1;
        }
        if (a >= size)
            return -1;
        if (b >= size)
            b = size - 1;
    }
    *off = a;
    *len = b - a + 1;
    return 1;
}

static void common_headers(struct evkeyvalq *h)
{
    evhttp_add_header(h, "X-Content-Type-Options", "nosniff");
    evhttp_add_header(h, "Referrer-Policy", "no-referrer");
}

/* scheme://host[:port] of url into out ("" when url is not http(s)). */
static void origin_of(const char *url, char *out, size_t n)
{
    out[0] = '\0';
    if (!url || !(ss_str_has_prefix(url, "https://") || ss_str_has_prefix(url, "http://")))
        return;
    const char *host = strstr(url, "://") + 3;
    size_t hl = strcspn(host, "/?#");
    if (memchr(host, '@', hl) || memchr(host, ' ', hl) || memchr(host, ';', hl) ||
        memchr(host, '\'', hl))
        return;
    snprintf(out, n, "%.*s", (int)(host - url + (long)hl), url);
}

static void page_headers(coord *c, struct evkeyvalq *h)
{
    char pub[300], csp[1200];
    origin_of(c->conf.public_base_url, pub, sizeof(pub));
    const char *sp = *pub ? " " : "";
    int n = snprintf(csp, sizeof(csp),
                     "default-src 'self'; script-src 'self'; style-src 'self'; "
                     "img-src 'self' data: blob:%s%s; media-src 'self' blob:%s%s; "
                     "connect-src 'self'%s%s; worker-src 'self' blob:; object-src 'none'; "
                     "base-uri 'none'; form-action 'self'; frame-ancestors 'none'",
                     sp, pub, sp, pub, sp, pub);
    if (n > 0 && (size_t)n < sizeof(csp))
        evhttp_add_header(h, "Content-Security-Policy", csp);
    evhttp_add_header(h, "X-Frame-Options", "DENY");
}

/* Serve an open file (fd is taken over) with Range/ETag handling. */
static void send_file(coord *c, struct evhttp_request *req, int fd, const struct stat *st,
                      const char *name, int files)
{
    struct evkeyvalq *in = evhttp_request_get_input_headers(req);
    struct evkeyvalq *h = evhttp_request_get_output_headers(req);
    char etag[64];
    snprintf(etag, sizeof(etag), "\"%llx-%llx-%lx\"", (unsigned long long)st->st_size,
             (unsigned long long)st->st_mtim.tv_sec, (long)st->st_mtim.tv_nsec);
    common_headers(h);
    const char *type = mime_of(name);
    evhttp_add_header(h, "Content-Type", type);
    evhttp_add_header(h, "ETag", etag);
    evhttp_add_header(h, "Accept-Ranges", "bytes");
    int manifest = ss_str_has_suffix(name, ".m3u8") || ss_str_has_suffix(name, ".mpd") ||
                   ss_str_has_suffix(name, ".json") || ss_str_has_suffix(name, ".html");
    evhttp_add_header(h, "Cache-Control", files && !manifest ? "public, max-age=60" : "no-cache");
    if (files)
        evhttp_add_header(h, "Access-Control-Allow-Origin", "*");
    else if (ss_str_has_prefix(type, "text/html"))
        page_headers(c, h);
    const char *inm = evhttp_find_header(in, "If-None-Match");
    if (inm && strstr(inm, etag)) {
        close(fd);
        evhttp_send_reply(req, 304, "Not Modified", NULL);
        return;
    }
    long long off = 0, len = (long long)st->st_size;
    int status = 200;
    int r = parse_range(evhttp_find_header(in, "Range"), (long long)st->st_size, &off, &len);
    const char *ifr = evhttp_find_header(in, "If-Range");
    if (r != 0 && ifr && strcmp(ifr, etag) != 0) {
        r = 0;   /* the file changed since the client's copy: send it whole */
        off = 0;
        len = (long long)st->st_size;
    }
    if (r < 0) {
        char cr[64];
        snprintf(cr, sizeof(cr), "bytes */%lld", (long long)st->st_size);
        evhttp_add_header(h, "Content-Range", cr);
        close(fd);
        http_reply_error(req, 416, "range_not_satisfiable", "the requested range is past the end", NULL);
        return;
    }
    if (r > 0) {
        char cr[96];
        snprintf(cr, sizeof(cr), "bytes %lld-%lld/%lld", off, off + len - 1, (long long)st->st_size);
        evhttp_add_header(h, "Content-Range", cr);
        status = 206;
    }
    struct evbuffer *b = evbuffer_new();
    if (!b) {
        close(fd);
        http_reply_error(req, 500, "internal", "out of memory", NULL);
        return;
    }
    if (evhttp_request_get_command(req) == EVHTTP_REQ_HEAD) {
        /* evhttp sends no body for HEAD and then no length either */
        char cl[32];
        snprintf(cl, sizeof(cl), "%lld", len);
        evhttp_add_header(h, "Content-Length", cl);
        close(fd);
        len = 0;
        fd = -1;
    }
    if (len > 0) {
        if (evbuffer_add_file(b, fd, off, len) != 0) {   /* takes fd on success */
            close(fd);
            evbuffer_free(b);
            http_reply_error(req, 500, "internal", "cannot read the file", NULL);
            return;
        }
    } else if (fd >= 0) {
        close(fd);
    }
    evhttp_send_reply(req, status, status == 206 ? "Partial Content" : "OK", b);
    evbuffer_free(b);
}

static void not_found(struct evhttp_request *req, const char *msg)
{
    common_headers(evhttp_request_get_output_headers(req));
    http_reply_error(req, 404, "not_found", msg, NULL);
}

/* GET /dashboard.json: what the page needs to know about this coordinator
 * (nothing secret: public_base_url is public by definition). */
static void dashboard_config(coord *c, struct evhttp_request *req)
{
    json_t *o = json_pack("{ss ss sb}", "version", SS_VERSION, "coordinator", c->id, "files",
                          c->conf.output_dir && *c->conf.output_dir);
    const char *pub = c->conf.public_base_url;
    json_object_set_new(o, "public_base_url", pub && *pub ? json_string(pub) : json_null());
    common_headers(evhttp_request_get_output_headers(req));
    http_reply_json(req, 200, o);
}

static void serve_files(coord *c, struct evhttp_request *req, const char *rest)
{
    const char *root = c->conf.output_dir;
    if (!root || !*root) {
        not_found(req, "this coordinator serves no outputs (output_dir is not set)");
        return;
    }
    char id[JOBSPEC_ID_LEN + 1];
    size_t il = strcspn(rest, "/");
    if (il != JOBSPEC_ID_LEN || rest[il] != '/') {
        not_found(req, "no such file (paths are /files/<job id>/<file>)");
        return;
    }
    memcpy(id, rest, il);
    id[il] = '\0';
    if (!jobspec_id_valid(id)) {
        not_found(req, "no such file (paths are /files/<job id>/<file>)");
        return;
    }
    struct stat st;
    int fd = open_under(root, rest, &st);
    if (fd < 0) {
        if (errno != ENOENT && errno != ENOTDIR)
            log_warn(id, "files: cannot open %s: %s", rest, strerror(errno));
        not_found(req, "no such file");
        return;
    }
    const char *slash = strrchr(rest, '/');
    send_file(c, req, fd, &st, slash ? slash + 1 : rest, 1);
}

void web_handle(coord *c, struct evhttp_request *req, const char *path)
{
    /* the router hands us the decoded path as a C string: an encoded NUL
     * would cut it short ("a.m3u8%00.txt" -> "a.m3u8"); refuse those */
    const char *raw = evhttp_request_get_uri(req);
    if (raw && strcasestr(raw, "%00")) {
        not_found(req, "no such resource");
        return;
    }
    if (ss_str_has_prefix(path, "/files/")) {
        serve_files(c, req, path + 7);
        return;
    }
    if (!strcmp(path, "/dashboard.json")) {
        dashboard_config(c, req);
        return;
    }
    const char *rel = !strcmp(path, "/") ? "index.html" : path + 1;
    if (path[0] != '/') {
        not_found(req, "no such resource");
        return;
    }
    struct stat st;
    int fd = open_under(c->conf.web_dir, rel, &st);
    if (fd < 0) {
        static int warned;
        struct stat ds;
        if (!warned && (!c->conf.web_dir || stat(c->conf.web_dir, &ds) != 0 || !S_ISDIR(ds.st_mode))) {
            warned = 1;   /* once: a wrong web_dir, not a wrong URL */
            log_warn(NULL, "web_dir '%s' is not a folder: the dashboard cannot be served",
                     c->conf.web_dir ? c->conf.web_dir : "");
        }
        not_found(req, "no such resource");
        return;
    }
    const char *slash = strrchr(rel, '/');
    send_file(c, req, fd, &st, slash ? slash + 1 : rel, 0);
}
