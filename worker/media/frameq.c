/* frameq.c — the bounded frame queue between the decoding thread and the
 * encoder threads (one producer, one consumer; see mediai.h). */
#include "mediai.h"

#include <string.h>
#include <time.h>

void frameq_init(frameq *q)
{
    memset(q, 0, sizeof(*q));
    pthread_mutex_init(&q->mu, NULL);
    pthread_cond_init(&q->cv, NULL);
}

void frameq_destroy(frameq *q)
{
    for (int i = 0; i < q->n; i++)
        av_frame_free(&q->f[(q->head + i) % FRAMEQ_CAP]);
    q->n = 0;
    pthread_mutex_destroy(&q->mu);
    pthread_cond_destroy(&q->cv);
}

static void deadline(struct timespec *ts, long ms)
{
    clock_gettime(CLOCK_REALTIME, ts);
    ts->tv_nsec += ms * 1000000L;
    ts->tv_sec += ts->tv_nsec / 1000000000L;
    ts->tv_nsec %= 1000000000L;
}

int frameq_put(frameq *q, AVFrame *f, int (*stop)(void *), void *ud)
{
    pthread_mutex_lock(&q->mu);
    while (q->n == FRAMEQ_CAP && !stop(ud)) {
        struct timespec ts;
        deadline(&ts, 50);
        pthread_cond_timedwait(&q->cv, &q->mu, &ts);
    }
    if (stop(ud)) {
        pthread_mutex_unlock(&q->mu);
        av_frame_free(&f);
        return -1;
    }
    if (f)
        q->f[(q->head + q->n++) % FRAMEQ_CAP] = f;
    else
        q->eof = 1;
    pthread_cond_broadcast(&q->cv);
    pthread_mutex_unlock(&q->mu);
    return 0;
}

int frameq_get(frameq *q, AVFrame **f, int (*stop)(void *), void *ud)
{
    pthread_mutex_lock(&q->mu);
    while (q->n == 0 && !q->eof && !stop(ud)) {
        struct timespec ts;
        deadline(&ts, 50);
        pthread_cond_timedwait(&q->cv, &q->mu, &ts);
    }
    int r;
    if (stop(ud)) {
        r = -1;
    } else if (q->n) {
        *f = q->f[q->head];
        q->head = (q->head + 1) % FRAMEQ_CAP;
        q->n--;
        r = 1;
    } else {
        r = 0;
    }
    pthread_cond_broadcast(&q->cv);
    pthread_mutex_unlock(&q->mu);
    return r;
}

int frameq_room(frameq *q)
{
    pthread_mutex_lock(&q->mu);
    int r = q->n < FRAMEQ_CAP;
    pthread_mutex_unlock(&q->mu);
    return r;
}

int frameq_ready(frameq *q)
{
    pthread_mutex_lock(&q->mu);
    int r = q->n > 0 || q->eof;
    pthread_mutex_unlock(&q->mu);
    return r;
}
