/* file:// storage: two threads of one process storing the same key at once
 * (an early playlist and the final one on one worker) each end with a whole
 * file in place, never a truncated one or an error. They shared one
 * temporary name per process: each unlinked the other's half-written file,
 * so a store failed or the key held a cut copy. */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "storage.h"

#define SIZE (256 * 1024)
#define ROUNDS 200

typedef struct {
    storage *st;
    const char *local;
    int failures;
    char error[512];
} writer;

static void *write_many(void *arg)
{
    writer *w = arg;
    for (int i = 0; i < ROUNDS; i++) {
        ss_err err = { 0 };
        if (storage_put(w->st, w->local, "job/master.m3u8", &err) != 0) {
            if (!w->failures++)
                snprintf(w->error, sizeof(w->error), "%s", err.msg);
        }
    }
    return NULL;
}

static void make_file(const char *path, char fill)
{
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    for (int i = 0; i < SIZE; i++)
        fputc(fill, f);
    assert_int_equal(fclose(f), 0);
}

static void test_same_key_two_threads(void **state)
{
    (void)state;
    char dir[] = "/tmp/ss-storage-file-XXXXXX";
    assert_non_null(mkdtemp(dir));
    char a[512], b[512], url[512], out[512];
    snprintf(a, sizeof(a), "%s/a", dir);
    snprintf(b, sizeof(b), "%s/b", dir);
    snprintf(url, sizeof(url), "file://%s/out/", dir);
    snprintf(out, sizeof(out), "%s/out/job/master.m3u8", dir);
    make_file(a, 'a');
    make_file(b, 'b');

    storage_conf conf = { .max_parallel = 4 };
    ss_err err = { 0 };
    storage *st = storage_open(url, &conf, &err);
    assert_non_null(st);
    writer wa = { .st = st, .local = a }, wb = { .st = st, .local = b };
    pthread_t ta, tb;
    assert_int_equal(pthread_create(&ta, NULL, write_many, &wa), 0);
    assert_int_equal(pthread_create(&tb, NULL, write_many, &wb), 0);
    pthread_join(ta, NULL);
    pthread_join(tb, NULL);
    storage_close(st);
    if (wa.failures || wb.failures)
        fail_msg("%d+%d stores failed: %s%s", wa.failures, wb.failures, wa.error, wb.error);

    /* the key holds one writer's whole file */
    FILE *f = fopen(out, "rb");
    assert_non_null(f);
    char *buf = malloc(SIZE + 1);
    assert_non_null(buf);
    size_t n = fread(buf, 1, SIZE + 1, f);
    fclose(f);
    assert_int_equal(n, SIZE);
    for (size_t i = 1; i < n; i++)
        assert_int_equal(buf[i], buf[0]);
    free(buf);

    char cmd[600];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    assert_int_equal(system(cmd), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_same_key_two_threads),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
