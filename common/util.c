/* util.c — see util.h. */
#include "util.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

int64_t ss_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t ss_mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t ss_boot_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_BOOTTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

double ss_mono_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

double ss_cpu_s(int who)
{
    struct rusage ru;
    if (getrusage(who, &ru))
        return 0;
    return ru.ru_utime.tv_sec + ru.ru_stime.tv_sec + (ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

size_t ss_strlcpy(char *dst, const char *src, size_t n)
{
    size_t len = strlen(src);
    if (n) {
        size_t c = len < n - 1 ? len : n - 1;
        memcpy(dst, src, c);
        dst[c] = '\0';
    }
    return len;
}

int ss_str_has_prefix(const char *s, const char *prefix)
{
    return strncmp(s, prefix, strlen(prefix)) == 0;
}

int ss_str_has_suffix(const char *s, const char *suffix)
{
    size_t a = strlen(s), b = strlen(suffix);
    return a >= b && memcmp(s + a - b, suffix, b) == 0;
}

size_t ss_utf8_len(const char *s)
{
    const unsigned char *u = (const unsigned char *)s;
    size_t n;
    unsigned cp;
    if (u[0] < 0x80)
        return 1;
    if (u[0] >= 0xc2 && u[0] <= 0xdf) {
        n = 2;
        cp = u[0] & 0x1fu;
    } else if (u[0] >= 0xe0 && u[0] <= 0xef) {
        n = 3;
        cp = u[0] & 0x0fu;
    } else if (u[0] >= 0xf0 && u[0] <= 0xf4) {
        n = 4;
        cp = u[0] & 0x07u;
    } else {
        return 0;
    }
    for (size_t i = 1; i < n; i++) {
        if ((u[i] & 0xc0) != 0x80)   /* also stops at the terminating NUL */
            return 0;
        cp = cp << 6 | (u[i] & 0x3fu);
    }
    if ((n == 3 && cp < 0x800) || (n == 4 && (cp < 0x10000 || cp > 0x10ffff)) ||
        (cp >= 0xd800 && cp <= 0xdfff))
        return 0;
    return n;
}

void ss_utf8_cut(char *dst, size_t n, const char *src)
{
    size_t o = 0;
    while (*src) {
        size_t c = ss_utf8_len(src);
        size_t w = c ? c : 1;
        if (o + w >= n)
            break;
        if (c)
            memcpy(dst + o, src, c);
        else
            dst[o] = '?';
        o += w;
        src += w;
    }
    dst[o] = '\0';
}

int ss_mkdir_p(const char *path, ss_err *err)
{
    char buf[4096];
    if (!*path)
        return ss_fail(err, SS_EINVAL, "empty path");
    if (ss_strlcpy(buf, path, sizeof(buf)) >= sizeof(buf))
        return ss_fail(err, SS_EINVAL, "path too long: %s", path);
    for (char *p = buf + 1; ; p++) {
        if (*p == '/' || *p == '\0') {
            char c = *p;
            *p = '\0';
            if (mkdir(buf, 0755) != 0 && errno != EEXIST)
                return ss_fail(err, SS_EIO, "mkdir %s: %s", buf, strerror(errno));
            *p = c;
            if (c == '\0')
                break;
        }
    }
    return 0;
}

int ss_rm_rf(const char *path)
{
    struct stat st;
    if (lstat(path, &st) != 0)
        return errno == ENOENT ? 0 : -1;
    if (!S_ISDIR(st.st_mode))
        return unlink(path);
    DIR *d = opendir(path);
    if (!d)
        return -1;
    struct dirent *de;
    int rc = 0;
    while ((de = readdir(d))) {
        if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
            continue;
        char sub[4096];
        if ((size_t)snprintf(sub, sizeof(sub), "%s/%s", path, de->d_name) >= sizeof(sub)) {
            rc = -1;
            continue;
        }
        if (ss_rm_rf(sub) != 0)
            rc = -1;
    }
    closedir(d);
    if (rmdir(path) != 0)
        rc = -1;
    return rc;
}

char *ss_read_file(const char *path, size_t max, size_t *len, ss_err *err)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        ss_fail(err, errno == ENOENT ? SS_ENOTFOUND : SS_EIO, "%s: %s", path, strerror(errno));
        return NULL;
    }
    size_t cap = 4096, n = 0;
    char *buf = malloc(cap + 1);
    for (;;) {
        if (!buf) {
            ss_fail(err, SS_ENOMEM, "out of memory reading %s", path);
            break;
        }
        if (n == cap) {
            if (cap >= max) {
                ss_fail(err, SS_ELIMIT, "%s is larger than %zu bytes", path, max);
                free(buf);
                buf = NULL;
                break;
            }
            cap = cap * 2 > max ? max : cap * 2;
            char *nb = realloc(buf, cap + 1);
            if (!nb) {
                free(buf);
                buf = NULL;
                continue;
            }
            buf = nb;
        }
        ssize_t r = read(fd, buf + n, cap - n);
        if (r < 0) {
            if (errno == EINTR)
                continue;
            ss_fail(err, SS_EIO, "read %s: %s", path, strerror(errno));
            free(buf);
            buf = NULL;
            break;
        }
        if (r == 0) {
            buf[n] = '\0';
            if (len)
                *len = n;
            break;
        }
        n += (size_t)r;
    }
    close(fd);
    return buf;
}

int ss_write_file_atomic(const char *path, const void *data, size_t len, ss_err *err)
{
    char tmp[4096];
    if ((size_t)snprintf(tmp, sizeof(tmp), "%s.tmp.%d", path, (int)getpid()) >= sizeof(tmp))
        return ss_fail(err, SS_EINVAL, "path too long: %s", path);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0)
        return ss_fail(err, SS_EIO, "open %s: %s", tmp, strerror(errno));
    const char *p = data;
    size_t left = len;
    while (left) {
        ssize_t w = write(fd, p, left);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            int e = errno;
            close(fd);
            unlink(tmp);
            return ss_fail(err, SS_EIO, "write %s: %s", tmp, strerror(e));
        }
        p += w;
        left -= (size_t)w;
    }
    if (fsync(fd) != 0 || close(fd) != 0) {
        unlink(tmp);
        return ss_fail(err, SS_EIO, "fsync %s: %s", tmp, strerror(errno));
    }
    if (rename(tmp, path) != 0) {
        int e = errno;
        unlink(tmp);
        return ss_fail(err, SS_EIO, "rename to %s: %s", path, strerror(e));
    }
    return 0;
}

off_t ss_file_size(const char *path)
{
    struct stat st;
    if (stat(path, &st) != 0 || !S_ISREG(st.st_mode))
        return -1;
    return st.st_size;
}

void ss_hex(const unsigned char *in, size_t n, char *out)
{
    static const char digits[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = digits[in[i] >> 4];
        out[2 * i + 1] = digits[in[i] & 15];
    }
    out[2 * n] = '\0';
}

void ss_sha256_hex(const void *data, size_t len, char out[65])
{
    unsigned char md[32];
    unsigned int mdlen = 0;
    EVP_Digest(data, len, md, &mdlen, EVP_sha256(), NULL);
    ss_hex(md, 32, out);
}

int ss_file_url(const char *path, char *out, size_t outlen)
{
    char cwd[4096] = "";
    if (path[0] != '/' && !getcwd(cwd, sizeof(cwd)))
        return -1;
    size_t n = (size_t)snprintf(out, outlen, "file://");
    for (int part = 0; part < 2; part++) {
        const unsigned char *p = (const unsigned char *)(part ? path : cwd);
        if (part && *cwd)
            p = (const unsigned char *)path, n += (size_t)snprintf(out + n, outlen - n, "/");
        for (; *p; p++) {
            if (n + 4 >= outlen)
                return -1;
            if ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
                strchr("/-._~", *p))
                out[n++] = (char)*p;
            else
                n += (size_t)snprintf(out + n, outlen - n, "%%%02X", *p);
        }
    }
    out[n] = '\0';
    return 0;
}

int ss_sha256_file(const char *path, const atomic_int *cancel, char out[65], int64_t *size,
                   ss_err *err)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return ss_fail(err, errno == ENOENT ? SS_ENOTFOUND : SS_EIO, "cannot open %s: %s", path,
                       strerror(errno));
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    unsigned char *buf = malloc(1 << 20);
    int rc = 0;
    int64_t total = 0;
    if (!ctx || !buf || !EVP_DigestInit_ex(ctx, EVP_sha256(), NULL)) {
        rc = ss_fail(err, SS_ENOMEM, "out of memory");
        goto out;
    }
    for (;;) {
        if (cancel && atomic_load(cancel)) {
            rc = ss_fail(err, SS_ECANCELLED, "cancelled while reading %s", path);
            goto out;
        }
        ssize_t n = read(fd, buf, 1 << 20);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            rc = ss_fail(err, SS_EIO, "cannot read %s: %s", path, strerror(errno));
            goto out;
        }
        if (n == 0)
            break;
        EVP_DigestUpdate(ctx, buf, (size_t)n);
        total += n;
    }
    unsigned char md[32];
    unsigned int ml = 0;
    EVP_DigestFinal_ex(ctx, md, &ml);
    ss_hex(md, 32, out);
    if (size)
        *size = total;
out:
    free(buf);
    EVP_MD_CTX_free(ctx);
    close(fd);
    return rc;
}

void ss_hmac_sha256_hex(const void *key, size_t keylen, const void *msg, size_t msglen,
                        char out[65])
{
    unsigned char md[32];
    unsigned int mdlen = 0;
    HMAC(EVP_sha256(), key, (int)keylen, msg, msglen, md, &mdlen);
    ss_hex(md, 32, out);
}

int ss_random_hex(char *out, size_t nbytes)
{
    unsigned char buf[64];
    if (nbytes > sizeof(buf))
        return -1;
    if (getrandom(buf, nbytes, 0) != (ssize_t)nbytes)
        return -1;
    ss_hex(buf, nbytes, out);
    return 0;
}

double ss_random_unit(void)
{
    uint64_t v = 0;
    if (getrandom(&v, sizeof(v), 0) != (ssize_t)sizeof(v))
        v = (uint64_t)ss_mono_ms() * 6364136223846793005ULL;
    return (double)(v >> 11) / 9007199254740992.0;
}

int64_t ss_backoff_ms(int attempt, int64_t base_ms, int64_t cap_ms, double unit)
{
    if (attempt < 1)
        attempt = 1;
    double d = (double)base_ms;
    for (int i = 1; i < attempt && d < (double)cap_ms; i++)
        d *= 2;
    if (d > (double)cap_ms)
        d = (double)cap_ms;
    if (unit < 0)
        unit = 0;
    if (unit >= 1)
        unit = 0.999999;
    return (int64_t)(d / 2 + unit * d / 2);
}

int ss_ncpus(void)
{
    /* the CPUs this process may run on (taskset, systemd's CPUAffinity=),
     * not every one the machine has */
    cpu_set_t set;
    CPU_ZERO(&set);
    if (sched_getaffinity(0, sizeof(set), &set) == 0 && CPU_COUNT(&set) > 0)
        return CPU_COUNT(&set);
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n > 0 ? (int)n : 1;
}
