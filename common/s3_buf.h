/* s3_buf.h — a growable byte buffer with a size cap, for building request
 * strings and collecting (small) response bodies in the s3/fetch modules.
 * The data is always NUL-terminated. Ownership: the caller frees with
 * s3_buf_free (or takes b->data and frees it itself). */
#ifndef SS_S3_BUF_H
#define SS_S3_BUF_H

#include <stddef.h>

typedef struct s3_buf {
    char *data;
    size_t len, cap;
    size_t max;      /* 0: no cap */
    int oom;         /* set when an append failed (out of memory or over max) */
} s3_buf;

void s3_buf_init(s3_buf *b, size_t max);
int s3_buf_add(s3_buf *b, const void *p, size_t n);   /* 0 ok, -1 failed (b->oom) */
int s3_buf_adds(s3_buf *b, const char *s);
int s3_buf_printf(s3_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void s3_buf_reset(s3_buf *b);
/* Hand over the string (never NULL unless out of memory) and reset b. */
char *s3_buf_take(s3_buf *b);
void s3_buf_free(s3_buf *b);

#endif
