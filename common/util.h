/* util.h — small helpers every module needs: time, files, strings, hashes.
 * Nothing here knows about jobs, Redis or media. */
#ifndef SS_UTIL_H
#define SS_UTIL_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "ss_err.h"

#define SS_ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

int64_t ss_now_ms(void);      /* wall clock, ms since the epoch */
int64_t ss_mono_ms(void);     /* monotonic clock, ms */
int64_t ss_boot_ms(void);     /* monotonic clock that counts a suspend too (CLOCK_BOOTTIME), ms */
double ss_mono_s(void);       /* monotonic clock, seconds */
/* User + system CPU seconds of getrusage(who): RUSAGE_SELF (the process)
 * or RUSAGE_THREAD (the calling thread); 0 when it fails. */
double ss_cpu_s(int who);

/* Copy src into dst (size n), always terminated; returns strlen(src). */
size_t ss_strlcpy(char *dst, const char *src, size_t n);
int ss_str_has_prefix(const char *s, const char *prefix);
int ss_str_has_suffix(const char *s, const char *suffix);
/* Length of the well-formed UTF-8 character at s (1 to 4 bytes; 1 for ASCII
 * and the terminating NUL), or 0 when s starts none: a stray continuation
 * byte, an overlong form, a surrogate, past U+10FFFF, or cut short. */
size_t ss_utf8_len(const char *s);
/* Copy src into dst (size n >= 1), always terminated and valid UTF-8: a
 * byte that starts no well-formed character becomes '?', and a character
 * that does not fit whole is left out with everything after it. For text
 * from a file (a stream's title tag) on its way into JSON. */
void ss_utf8_cut(char *dst, size_t n, const char *src);

/* Create dir and its parents (mode 0755). */
int ss_mkdir_p(const char *path, ss_err *err);
/* Remove a file or a whole tree; a missing path is not an error. */
int ss_rm_rf(const char *path);
/* Read a whole file into a new NUL-terminated buffer (caller frees), at most
 * max bytes, else SS_ELIMIT. */
char *ss_read_file(const char *path, size_t max, size_t *len, ss_err *err);
/* Write data to path via path.tmp + fsync + rename, so readers see the old
 * or the new content, never half. */
int ss_write_file_atomic(const char *path, const void *data, size_t len, ss_err *err);
/* Size of a regular file, -1 if it does not exist or is not one. */
off_t ss_file_size(const char *path);

/* file:// URL of a local path (made absolute against the working folder
 * when relative; not resolved through links), bytes other than
 * A-Za-z0-9 / - . _ ~ %-escaped. -1 when it does not fit. */
int ss_file_url(const char *path, char *out, size_t outlen);

/* Lower-case hex of n bytes into out (2n+1). */
void ss_hex(const unsigned char *in, size_t n, char *out);
/* SHA-256 of data as 64 hex chars + NUL. */
void ss_sha256_hex(const void *data, size_t len, char out[65]);
/* SHA-256 of a whole file as 64 hex chars + NUL, read in 1 MiB blocks;
 * cancel (may be NULL) is polled between blocks (SS_ECANCELLED). Sets
 * *size (may be NULL) to the bytes read. Errors: SS_ENOTFOUND, SS_EIO. */
int ss_sha256_file(const char *path, const atomic_int *cancel, char out[65], int64_t *size,
                   ss_err *err);
/* HMAC-SHA256(key, msg) as 64 hex chars + NUL. */
void ss_hmac_sha256_hex(const void *key, size_t keylen, const void *msg, size_t msglen,
                        char out[65]);
/* n random bytes from the OS as 2n hex chars. */
int ss_random_hex(char *out, size_t nbytes);
/* Uniform random double in [0,1) from the OS (for jitter). */
double ss_random_unit(void);

/* Exponential backoff with full jitter: a delay in ms drawn from
 * [base*2^(attempt-1)/2, base*2^(attempt-1)], capped at cap_ms.
 * attempt starts at 1. unit in [0,1) is the random draw (testable). */
int64_t ss_backoff_ms(int attempt, int64_t base_ms, int64_t cap_ms, double unit);

/* Number of CPUs this process may run on (its affinity mask: taskset,
 * CPUAffinity=; the online CPUs if that cannot be read), at least 1. */
int ss_ncpus(void);

#endif
