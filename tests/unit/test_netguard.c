/* test_netguard.c — SSRF guard address classes and URL pre-checks. The
 * connect-time hook is tested end to end in tests/integration/test_s3_fetch.py. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <arpa/inet.h>
#include <cmocka.h>
#include <netinet/in.h>

#include "netguard.h"

static netguard_class cls(const char *ip)
{
    struct sockaddr_storage ss;
    memset(&ss, 0, sizeof(ss));
    if (strchr(ip, ':')) {
        struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;
        s6->sin6_family = AF_INET6;
        assert_int_equal(inet_pton(AF_INET6, ip, &s6->sin6_addr), 1);
    } else {
        struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;
        s4->sin_family = AF_INET;
        assert_int_equal(inet_pton(AF_INET, ip, &s4->sin_addr), 1);
    }
    return netguard_classify((struct sockaddr *)&ss);
}

static int allowed(const char *ip, int allow_private)
{
    struct sockaddr_storage ss;
    memset(&ss, 0, sizeof(ss));
    if (strchr(ip, ':')) {
        struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;
        s6->sin6_family = AF_INET6;
        inet_pton(AF_INET6, ip, &s6->sin6_addr);
    } else {
        struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;
        s4->sin_family = AF_INET;
        inet_pton(AF_INET, ip, &s4->sin_addr);
    }
    return netguard_check_addr((struct sockaddr *)&ss, allow_private) == 0;
}

static void test_ipv4_classes(void **state)
{
    (void)state;
    assert_int_equal(cls("8.8.8.8"), NETGUARD_PUBLIC);
    assert_int_equal(cls("104.18.1.1"), NETGUARD_PUBLIC);
    assert_int_equal(cls("127.0.0.1"), NETGUARD_LOOPBACK);
    assert_int_equal(cls("127.255.255.254"), NETGUARD_LOOPBACK);
    assert_int_equal(cls("10.1.2.3"), NETGUARD_PRIVATE);
    assert_int_equal(cls("172.16.0.1"), NETGUARD_PRIVATE);
    assert_int_equal(cls("172.31.255.255"), NETGUARD_PRIVATE);
    assert_int_equal(cls("172.32.0.1"), NETGUARD_PUBLIC);
    assert_int_equal(cls("172.15.255.255"), NETGUARD_PUBLIC);
    assert_int_equal(cls("192.168.1.1"), NETGUARD_PRIVATE);
    assert_int_equal(cls("100.64.0.1"), NETGUARD_PRIVATE);
    assert_int_equal(cls("100.127.255.255"), NETGUARD_PRIVATE);
    assert_int_equal(cls("100.128.0.1"), NETGUARD_PUBLIC);
    assert_int_equal(cls("169.254.169.254"), NETGUARD_LINKLOCAL);
    assert_int_equal(cls("0.0.0.0"), NETGUARD_UNSPECIFIED);
    assert_int_equal(cls("0.1.2.3"), NETGUARD_UNSPECIFIED);
    assert_int_equal(cls("224.0.0.1"), NETGUARD_MULTICAST);
    assert_int_equal(cls("239.255.255.250"), NETGUARD_MULTICAST);
    assert_int_equal(cls("255.255.255.255"), NETGUARD_RESERVED);
    assert_int_equal(cls("240.0.0.1"), NETGUARD_RESERVED);
}

static void test_ipv6_classes(void **state)
{
    (void)state;
    assert_int_equal(cls("2606:4700::6810:1"), NETGUARD_PUBLIC);
    assert_int_equal(cls("::1"), NETGUARD_LOOPBACK);
    assert_int_equal(cls("::"), NETGUARD_UNSPECIFIED);
    assert_int_equal(cls("fe80::1"), NETGUARD_LINKLOCAL);
    assert_int_equal(cls("febf::1"), NETGUARD_LINKLOCAL);
    assert_int_equal(cls("fc00::1"), NETGUARD_PRIVATE);
    assert_int_equal(cls("fd12:3456::1"), NETGUARD_PRIVATE);
    assert_int_equal(cls("ff02::1"), NETGUARD_MULTICAST);
    /* IPv4 inside IPv6 is judged by the IPv4 address. */
    assert_int_equal(cls("::ffff:127.0.0.1"), NETGUARD_LOOPBACK);
    assert_int_equal(cls("::ffff:169.254.169.254"), NETGUARD_LINKLOCAL);
    assert_int_equal(cls("::ffff:10.0.0.1"), NETGUARD_PRIVATE);
    assert_int_equal(cls("::ffff:8.8.8.8"), NETGUARD_PUBLIC);
    assert_int_equal(cls("64:ff9b::a9fe:a9fe"), NETGUARD_LINKLOCAL);
    assert_int_equal(cls("2002:7f00:1::1"), NETGUARD_LOOPBACK);
    assert_int_equal(cls("::127.0.0.1"), NETGUARD_RESERVED);
}

static void test_policy(void **state)
{
    (void)state;
    assert_true(allowed("8.8.8.8", 0));
    assert_false(allowed("127.0.0.1", 0));
    assert_true(allowed("127.0.0.1", 1));
    assert_false(allowed("10.0.0.1", 0));
    assert_true(allowed("10.0.0.1", 1));
    assert_false(allowed("::1", 0));
    assert_true(allowed("::1", 1));
    assert_false(allowed("::ffff:192.168.0.1", 0));
    /* Never, whatever the setting: metadata/link-local, unspecified, multicast. */
    assert_false(allowed("169.254.169.254", 1));
    assert_false(allowed("fe80::1", 1));
    assert_false(allowed("0.0.0.0", 1));
    assert_false(allowed("::", 1));
    assert_false(allowed("224.0.0.1", 1));

    struct sockaddr sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_family = AF_UNIX;
    assert_int_equal(netguard_check_addr(&sa, 1), -1);
}

static void test_url_precheck(void **state)
{
    (void)state;
    netguard g = { .allow_private = 0, .allow_http = 0 };
    ss_err e = { 0 };
    assert_int_equal(netguard_check_url("https://example.com/v.mp4", &g, &e), 0);
    assert_int_equal(netguard_check_url("https://8.8.8.8/v.mp4", &g, &e), 0);
    assert_int_equal(netguard_check_url("http://example.com/v.mp4", &g, &e), -1);
    assert_int_equal(e.code, SS_EDENIED);
    ss_err_clear(&e);
    assert_int_equal(netguard_check_url("ftp://example.com/v.mp4", &g, &e), -1);
    assert_int_equal(e.code, SS_EINVAL);
    ss_err_clear(&e);
    assert_int_equal(netguard_check_url("https://127.0.0.1:8080/x", &g, &e), -1);
    assert_int_equal(e.code, SS_EDENIED);
    assert_non_null(strstr(e.msg, "loopback"));
    ss_err_clear(&e);
    assert_int_equal(netguard_check_url("https://user:pw@169.254.169.254/latest", &g, &e), -1);
    assert_int_equal(e.code, SS_EDENIED);
    ss_err_clear(&e);
    assert_int_equal(netguard_check_url("https://[::1]:9000/x", &g, &e), -1);
    ss_err_clear(&e);
    assert_int_equal(netguard_check_url("https:///x", &g, &e), -1);
    assert_int_equal(e.code, SS_EINVAL);
    ss_err_clear(&e);
    g.allow_http = 1;
    g.allow_private = 1;
    assert_int_equal(netguard_check_url("http://127.0.0.1:8080/x", &g, &e), 0);
    assert_int_equal(netguard_check_url("http://[::1]:8080/x", &g, &e), 0);
    assert_int_equal(netguard_check_url("http://169.254.169.254/x", &g, &e), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ipv4_classes),
        cmocka_unit_test(test_ipv6_classes),
        cmocka_unit_test(test_policy),
        cmocka_unit_test(test_url_precheck),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
