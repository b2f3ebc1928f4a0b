/* Config parsing: file text, environment, flags, precedence and errors that
 * name the file, line and key. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "config.h"

typedef struct conf {
    char *name;
    char *secret;
    long long slots;
    double threshold;
    int flag;
} conf;

static const cfg_opt opts[] = {
    { "name", CFG_STR, "default-name", offsetof(conf, name), 0, 0, "a name" },
    { "secret", CFG_SECRET, NULL, offsetof(conf, secret), 0, 0, "a secret" },
    { "slots", CFG_INT, "1", offsetof(conf, slots), 1, 64, "slots" },
    { "cpu_threshold", CFG_DOUBLE, "85", offsetof(conf, threshold), 1, 100, "percent" },
    { "flag", CFG_BOOL, "false", offsetof(conf, flag), 0, 0, "a flag" },
    { 0 }
};

static void test_defaults(void **state)
{
    (void)state;
    conf c = { 0 };
    ss_err err = { 0 };
    assert_int_equal(cfg_defaults(opts, &c, &err), 0);
    assert_string_equal(c.name, "default-name");
    assert_string_equal(c.secret, "");
    assert_int_equal(c.slots, 1);
    assert_true(c.threshold == 85.0);
    assert_int_equal(c.flag, 0);
    cfg_free(opts, &c);
}

static void test_file_text(void **state)
{
    (void)state;
    conf c = { 0 };
    ss_err err = { 0 };
    cfg_defaults(opts, &c, &err);
    const char *text = "# comment\n\n  name = \"quoted value\"  \nslots=4\nflag = yes\n"
                       "cpu_threshold = 70.5\n; also a comment\n";
    assert_int_equal(cfg_parse_text(opts, &c, text, "w.conf", &err), 0);
    assert_string_equal(c.name, "quoted value");
    assert_int_equal(c.slots, 4);
    assert_int_equal(c.flag, 1);
    assert_true(c.threshold == 70.5);
    cfg_free(opts, &c);
}

static void expect_error(const char *text, const char *want)
{
    conf c = { 0 };
    ss_err err = { 0 };
    cfg_defaults(opts, &c, &err);
    assert_int_equal(cfg_parse_text(opts, &c, text, "worker.conf", &err), -1);
    assert_int_equal(err.code, SS_EINVAL);
    if (!strstr(err.msg, want))
        fail_msg("error '%s' does not contain '%s'", err.msg, want);
    cfg_free(opts, &c);
}

static void test_errors_name_file_line_key(void **state)
{
    (void)state;
    expect_error("name = a\n\nslots = many\n", "worker.conf:3: key 'slots': 'many' is not an integer");
    expect_error("slots = 65\n", "worker.conf:1: key 'slots': 65 is out of range");
    expect_error("\n\ncpu_treshold = 5\n", "worker.conf:3: unknown key 'cpu_treshold'");
    expect_error("flag = maybe\n", "worker.conf:1: key 'flag': 'maybe' is not a boolean");
    expect_error("just words\n", "worker.conf:1: expected 'key = value'");
    expect_error(" = 3\n", "worker.conf:1: missing key");
    expect_error("cpu_threshold = 0.5x\n", "worker.conf:1: key 'cpu_threshold'");
}

static void test_precedence_env_flags(void **state)
{
    (void)state;
    char path[] = "/tmp/ss-test-config-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    const char *text = "name = from-file\nslots = 2\ncpu_threshold = 50\n";
    assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
    close(fd);
    setenv("STREAMSCALE_SLOTS", "3", 1);
    setenv("STREAMSCALE_CPU_THRESHOLD", "60", 1);
    char *argv[] = { "prog", "-c", path, "--cpu-threshold", "75", "--flag", "encode", "x", NULL };
    conf c = { 0 };
    ss_err err = { 0 };
    int argi = 0, help = 0;
    assert_int_equal(cfg_load(opts, &c, 8, argv, &argi, &help, NULL, &err), 0);
    assert_string_equal(c.name, "from-file");   /* file over default */
    assert_int_equal(c.slots, 3);               /* env over file */
    assert_true(c.threshold == 75.0);           /* flag over env */
    assert_int_equal(c.flag, 1);                /* bare bool flag */
    assert_int_equal(argi, 6);                  /* stops at the first positional */
    assert_int_equal(help, 0);
    cfg_free(opts, &c);

    setenv("STREAMSCALE_SLOTS", "zero", 1);
    char *argv2[] = { "prog", NULL };
    memset(&c, 0, sizeof(c));
    ss_err_clear(&err);
    assert_int_equal(cfg_load(opts, &c, 1, argv2, &argi, &help, NULL, &err), -1);
    assert_non_null(strstr(err.msg, "STREAMSCALE_SLOTS: key 'slots'"));
    cfg_free(opts, &c);
    unsetenv("STREAMSCALE_SLOTS");
    unsetenv("STREAMSCALE_CPU_THRESHOLD");

    char *argv3[] = { "prog", "--slots=9", "--no-flag", "--bogus", "1", NULL };
    memset(&c, 0, sizeof(c));
    ss_err_clear(&err);
    assert_int_equal(cfg_load(opts, &c, 5, argv3, &argi, &help, NULL, &err), -1);
    assert_non_null(strstr(err.msg, "unknown option '--bogus'"));
    cfg_free(opts, &c);

    char *argv4[] = { "prog", "--slots", NULL };
    memset(&c, 0, sizeof(c));
    ss_err_clear(&err);
    assert_int_equal(cfg_load(opts, &c, 2, argv4, &argi, &help, NULL, &err), -1);
    assert_non_null(strstr(err.msg, "--slots needs a value"));
    cfg_free(opts, &c);

    char *argv5[] = { "prog", "-c", "/nonexistent/ss.conf", NULL };
    memset(&c, 0, sizeof(c));
    ss_err_clear(&err);
    assert_int_equal(cfg_load(opts, &c, 3, argv5, &argi, &help, NULL, &err), -1);
    assert_non_null(strstr(err.msg, "/nonexistent/ss.conf"));
    cfg_free(opts, &c);
    unlink(path);
}

static void test_help_hides_secrets(void **state)
{
    (void)state;
    static const cfg_opt sec[] = {
        { "token", CFG_SECRET, "hunter2", 0, 0, 0, "the token" },
        { 0 }
    };
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    cfg_usage(f, sec);
    fclose(f);
    assert_null(strstr(buf, "hunter2"));
    assert_non_null(strstr(buf, "--token"));
    free(buf);
}

static void test_hostport(void **state)
{
    (void)state;
    char host[64];
    int port;
    assert_int_equal(cfg_split_hostport("127.0.0.1:8080", host, sizeof(host), &port, 1), 0);
    assert_string_equal(host, "127.0.0.1");
    assert_int_equal(port, 8080);
    assert_int_equal(cfg_split_hostport("[::1]:9", host, sizeof(host), &port, 1), 0);
    assert_string_equal(host, "::1");
    assert_int_equal(port, 9);
    assert_int_equal(cfg_split_hostport("example", host, sizeof(host), &port, 80), 0);
    assert_int_equal(port, 80);
    assert_int_equal(cfg_split_hostport("h:99999", host, sizeof(host), &port, 80), -1);
    assert_int_equal(cfg_split_hostport("h:x", host, sizeof(host), &port, 80), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults),
        cmocka_unit_test(test_file_text),
        cmocka_unit_test(test_errors_name_file_line_key),
        cmocka_unit_test(test_precedence_env_flags),
        cmocka_unit_test(test_help_hides_secrets),
        cmocka_unit_test(test_hostport),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
