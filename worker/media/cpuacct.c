/* cpuacct.c — per-job CPU groups (cpuacct.h), and the pthread_create that
 * makes a started thread join its creator's group.
 *
 * This file defines pthread_create itself. The executable's definition
 * comes first in the dynamic linker's lookup, so libx264's and libav*'s
 * calls reach it too (the link exports it: they reference the symbol); it
 * forwards to the next definition (libc's, or a sanitizer's interceptor)
 * through dlsym(RTLD_NEXT). A thread outside every group is started exactly
 * as before.
 *
 * A member is listed with its CPU clock while it runs, so a reading sums
 * live clocks under the group's lock; at exit (a pthread key destructor,
 * which also runs on pthread_exit) it adds its final CPU time to the group
 * and leaves the list. Each member holds a reference, so a group outlives
 * threads that end after the job thread.
 */
#include "cpuacct.h"

#include <dlfcn.h>
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <time.h>

#include "util.h"

typedef struct member {
    struct member *next;
    cpuacct *group;
    clockid_t clk;
    double base;        /* the thread's clock when it joined (a pooled job
                         * thread joins once per job) */
} member;

struct cpuacct {
    pthread_mutex_t mu;
    atomic_int refs;
    double gone;        /* CPU seconds of members that left */
    member *live;
};

static pthread_key_t key;          /* value: the thread's member, for its exit */
static pthread_once_t key_once = PTHREAD_ONCE_INIT;
static __thread member *self;
/* The thread's CPU clock when it last left a group, or -1: a pooled job
 * thread joins its next job's group from that reading, one clock read per
 * job instead of two (each a system call: the vDSO does not serve thread
 * CPU clocks). What the thread does in between (hand the job back, wait
 * for the next one: microseconds of CPU) counts in the next job's group. */
static __thread double left_at = -1;

static double clock_s(clockid_t c)
{
    struct timespec ts;
    if (clock_gettime(c, &ts) != 0)
        return 0;
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void leave(member *m)
{
    cpuacct *a = m->group;
    left_at = clock_s(CLOCK_THREAD_CPUTIME_ID);   /* m is this thread's */
    double s = left_at - m->base;
    pthread_mutex_lock(&a->mu);
    for (member **pp = &a->live; *pp; pp = &(*pp)->next) {
        if (*pp == m) {
            *pp = m->next;
            break;
        }
    }
    a->gone += s;
    pthread_mutex_unlock(&a->mu);
    free(m);
    cpuacct_unref(a);
}

static void on_thread_exit(void *p)
{
    self = NULL;
    leave(p);
}

static void make_key(void)
{
    pthread_key_create(&key, on_thread_exit);
}

cpuacct *cpuacct_new(void)
{
    cpuacct *a = calloc(1, sizeof(*a));
    if (!a)
        return NULL;
    pthread_mutex_init(&a->mu, NULL);
    atomic_init(&a->refs, 1);
    return a;
}

void cpuacct_unref(cpuacct *a)
{
    if (!a || atomic_fetch_sub(&a->refs, 1) != 1)
        return;
    pthread_mutex_destroy(&a->mu);
    free(a);
}

void cpuacct_join(cpuacct *a)
{
    pthread_once(&key_once, make_key);
    if (self) {
        member *m = self;
        self = NULL;
        pthread_setspecific(key, NULL);
        leave(m);
    }
    if (!a)
        return;
    member *m = calloc(1, sizeof(*m));
    if (!m || pthread_getcpuclockid(pthread_self(), &m->clk) != 0) {
        free(m);
        left_at = -1;   /* the next job must not start from an old reading */
        return;   /* not counted rather than wrong */
    }
    m->base = left_at >= 0 ? left_at : clock_s(m->clk);
    left_at = -1;
    atomic_fetch_add(&a->refs, 1);
    m->group = a;
    pthread_mutex_lock(&a->mu);
    m->next = a->live;
    a->live = m;
    pthread_mutex_unlock(&a->mu);
    self = m;
    pthread_setspecific(key, m);
}

double cpuacct_seconds(void)
{
    member *me = self;
    if (!me)
        return ss_cpu_s(RUSAGE_SELF);
    cpuacct *a = me->group;
    pthread_mutex_lock(&a->mu);
    double s = a->gone;
    for (member *m = a->live; m; m = m->next)
        s += clock_s(m->clk) - m->base;
    pthread_mutex_unlock(&a->mu);
    return s;
}

/* ---- pthread_create ------------------------------------------------------ */

typedef int (*create_fn)(pthread_t *, const pthread_attr_t *, void *(*)(void *), void *);

typedef struct start {
    void *(*fn)(void *);
    void *arg;
    cpuacct *group;     /* a reference, handed to the new thread */
} start;

static void *trampoline(void *p)
{
    start s = *(start *)p;
    free(p);
    cpuacct_join(s.group);
    cpuacct_unref(s.group);
    return s.fn(s.arg);
}

int pthread_create(pthread_t *t, const pthread_attr_t *attr, void *(*fn)(void *), void *arg)
{
    static _Atomic(create_fn) real;
    create_fn next = atomic_load(&real);
    if (!next) {
        next = (create_fn)dlsym(RTLD_NEXT, "pthread_create");
        if (!next)
            return EAGAIN;
        atomic_store(&real, next);
    }
    member *me = self;
    if (!me)
        return next(t, attr, fn, arg);
    start *s = malloc(sizeof(*s));
    if (!s)
        return EAGAIN;
    s->fn = fn;
    s->arg = arg;
    s->group = me->group;
    atomic_fetch_add(&s->group->refs, 1);
    int rc = next(t, attr, trampoline, s);
    if (rc != 0) {
        cpuacct_unref(s->group);
        free(s);
    }
    return rc;
}
