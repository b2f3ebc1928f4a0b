/* s3_buf.c — see s3_buf.h. */
#include "s3_buf.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void s3_buf_init(s3_buf *b, size_t max)
{
    memset(b, 0, sizeof(*b));
    b->max = max;
}

int s3_buf_add(s3_buf *b, const void *p, size_t n)
{
    if (b->oom)
        return -1;
    if (b->max && b->len + n > b->max) {
        b->oom = 1;
        return -1;
    }
    if (b->len + n + 1 > b->cap) {
        size_t nc = b->cap ? b->cap : 256;
        while (nc < b->len + n + 1)
            nc *= 2;
        char *nd = realloc(b->data, nc);
        if (!nd) {
            b->oom = 1;
            return -1;
        }
        b->data = nd;
        b->cap = nc;
    }
    if (n)
        memcpy(b->data + b->len, p, n);
    b->len += n;
    b->data[b->len] = '\0';
    return 0;
}

int s3_buf_adds(s3_buf *b, const char *s)
{
    return s3_buf_add(b, s, strlen(s));
}

int s3_buf_printf(s3_buf *b, const char *fmt, ...)
{
    char small[512];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(small, sizeof(small), fmt, ap);
    va_end(ap);
    if (n < 0) {
        b->oom = 1;
        return -1;
    }
    if ((size_t)n < sizeof(small))
        return s3_buf_add(b, small, (size_t)n);
    char *big = malloc((size_t)n + 1);
    if (!big) {
        b->oom = 1;
        return -1;
    }
    va_start(ap, fmt);
    vsnprintf(big, (size_t)n + 1, fmt, ap);
    va_end(ap);
    int rc = s3_buf_add(b, big, (size_t)n);
    free(big);
    return rc;
}

void s3_buf_reset(s3_buf *b)
{
    b->len = 0;
    b->oom = 0;
    if (b->data)
        b->data[0] = '\0';
}

char *s3_buf_take(s3_buf *b)
{
    char *d = NULL;
    if (!b->oom) {
        if (!b->data)
            s3_buf_add(b, "", 0);
        d = b->data;
        b->data = NULL;
    }
    s3_buf_free(b);
    return d;
}

void s3_buf_free(s3_buf *b)
{
    free(b->data);
    b->data = NULL;
    b->len = b->cap = 0;
    b->oom = 0;
}
