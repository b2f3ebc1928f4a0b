/* test_http_client.c — the pure parts of the shared HTTP layer: response
 * header capture (ETag, Last-Modified, Retry-After, a new response
 * clearing the last one's), retry classification, backoff and header
 * lists. The transfers themselves are tested end to end (test_s3_fetch,
 * test_s3_storage, test_cli). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "http_client.h"

static void hdr(http_resp *r, const char *line)
{
    http_resp_header(r, line, strlen(line));
}

static void test_headers(void **state)
{
    (void)state;
    http_resp r = { 0 };
    hdr(&r, "HTTP/1.1 200 OK\r\n");
    hdr(&r, "etag:  \"abc\" \r\n");
    hdr(&r, "Last-Modified: Wed, 21 Oct 2015 07:28:00 GMT\r\n");
    hdr(&r, "Retry-After: 7\r\n");
    hdr(&r, "ETagged: no\r\n");
    assert_string_equal(r.etag, "\"abc\"");
    assert_string_equal(r.last_modified, "Wed, 21 Oct 2015 07:28:00 GMT");
    assert_int_equal(r.retry_after_ms, 7000);
    /* a redirect hop or 100 Continue: the next response starts clean */
    hdr(&r, "HTTP/2 503\r\n");
    assert_string_equal(r.etag, "");
    assert_string_equal(r.last_modified, "");
    assert_int_equal(r.retry_after_ms, 0);
    hdr(&r, "Retry-After: Wed, 21 Oct 2015 07:28:00 GMT\r\n");   /* a date: not used */
    assert_int_equal(r.retry_after_ms, 0);
    /* a huge number is clamped (it overflowed int64 and was undefined behaviour) */
    hdr(&r, "Retry-After: 99999999999999999999\r\n");
    assert_int_equal(r.retry_after_ms, 86400000);
    hdr(&r, "HTTP/1.1 503 Slow Down\r\n");
    /* a value too long to be an identity is ignored, not cut */
    char line[400] = "ETag: ";
    memset(line + 6, 'x', 300);
    strcpy(line + 306, "\r\n");
    hdr(&r, line);
    assert_string_equal(r.etag, "");
    hdr(&r, "ETag:\r\n");
    assert_string_equal(r.etag, "");
    http_resp_reset(&r);
    assert_string_equal(r.ebuf, "");
    assert_string_equal(http_error_text(&r, CURLE_COULDNT_CONNECT),
                        curl_easy_strerror(CURLE_COULDNT_CONNECT));
    strcpy(r.ebuf, "Failed to connect to 127.0.0.1 port 1");
    assert_string_equal(http_error_text(&r, CURLE_COULDNT_CONNECT), r.ebuf);
}

static void test_classify(void **state)
{
    (void)state;
    ss_code c;
    assert_int_equal(http_classify(CURLE_OK, 200, &c), HTTP_DONE);
    assert_int_equal(http_classify(CURLE_OK, 204, &c), HTTP_DONE);
    assert_int_equal(http_classify(CURLE_OK, 503, &c), HTTP_RETRY);
    assert_int_equal(c, SS_ENET);
    assert_int_equal(http_classify(CURLE_OK, 429, &c), HTTP_RETRY);
    assert_int_equal(http_classify(CURLE_OK, 408, &c), HTTP_RETRY);
    assert_int_equal(http_classify(CURLE_OK, 501, &c), HTTP_FAIL);
    assert_int_equal(http_classify(CURLE_OK, 400, &c), HTTP_FAIL);
    assert_int_equal(c, SS_ENET);
    assert_int_equal(http_classify(CURLE_OK, 403, &c), HTTP_FAIL);
    assert_int_equal(c, SS_EAUTH);
    assert_int_equal(http_classify(CURLE_OK, 404, &c), HTTP_FAIL);
    assert_int_equal(c, SS_ENOTFOUND);
    assert_int_equal(http_classify(CURLE_OPERATION_TIMEDOUT, 0, &c), HTTP_RETRY);
    assert_int_equal(http_classify(CURLE_ABORTED_BY_CALLBACK, 0, &c), HTTP_FAIL);
    assert_int_equal(c, SS_ECANCELLED);
    assert_int_equal(http_classify(CURLE_WRITE_ERROR, 0, &c), HTTP_FAIL);
    assert_int_equal(c, SS_EIO);
    assert_int_equal(http_classify(CURLE_FILESIZE_EXCEEDED, 0, &c), HTTP_FAIL);
    assert_int_equal(c, SS_ELIMIT);
    /* backoff grows and stays under the cap; Retry-After wins, capped */
    for (int a = 1; a < 20; a++) {
        int64_t d = http_retry_delay_ms(a, 0);
        assert_true(d >= 0 && d <= HTTP_BACKOFF_CAP_MS);
    }
    assert_int_equal(http_retry_delay_ms(1, 2000), 2000);
    assert_int_equal(http_retry_delay_ms(1, 999999), HTTP_RETRY_AFTER_CAP_MS);
    atomic_int cancel = 1;
    assert_int_equal(http_backoff_wait(1, 10000, &cancel), -1);
}

static void test_header_list(void **state)
{
    (void)state;
    struct curl_slist *l = NULL;
    assert_int_equal(http_header_add(&l, "Authorization: Bearer %s", "t0ken"), 0);
    assert_int_equal(http_header_add(&l, "Expect:"), 0);
    assert_string_equal(l->data, "Authorization: Bearer t0ken");
    assert_string_equal(l->next->data, "Expect:");
    assert_null(l->next->next);
    curl_slist_free_all(l);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_headers),
        cmocka_unit_test(test_classify),
        cmocka_unit_test(test_header_list),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
