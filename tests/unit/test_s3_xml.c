/* test_s3_xml.c — the strict reader of S3's XML answers: the documents S3
 * sends (list pages, errors, upload ids, namespaced), escaping, and
 * hostile or broken input (entities and DTDs, deep nesting, CDATA, the
 * wrong root, truncation, trailing bytes, NUL bytes), each a clear error
 * and never a crash. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "s3_xml.h"

/* Parse s expecting failure; the message must contain want. */
static void refused(const char *s, const char *root, const char *want)
{
    ss_err e = { 0 };
    s3_xml *x = s3_xml_parse(s, strlen(s), root, &e);
    if (x || !strstr(e.msg, want))
        fail_msg("'%.60s': got %s '%s', wanted an error with '%s'", s, x ? "a document" : "error",
                 e.msg, want);
    assert_int_equal(e.code, SS_ENET);
}

static void test_list(void **state)
{
    (void)state;
    const char *doc =
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
        "<ListBucketResult xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">"
        "<IsTruncated>true</IsTruncated>"
        "<Contents><Key>a &amp; b&lt;c&gt;&#233;&#x41;</Key><Size>3</Size></Contents>"
        "<Contents><Key>sec<!-- note -->ond</Key></Contents>"
        "<NextContinuationToken>tok+/=</NextContinuationToken></ListBucketResult>";
    ss_err e = { 0 };
    s3_xml *x = s3_xml_parse(doc, strlen(doc), "ListBucketResult", &e);
    assert_non_null(x);
    const s3_xml_node *top = s3_xml_root(x);
    assert_string_equal(s3_xml_name(top), "ListBucketResult");
    const s3_xml_node *c1 = s3_xml_child(top, "Contents", NULL);
    const s3_xml_node *c2 = s3_xml_child(top, "Contents", c1);
    assert_null(s3_xml_child(top, "Contents", c2));
    char *k1 = s3_xml_child_text(c1, "Key"), *k2 = s3_xml_child_text(c2, "Key");
    assert_string_equal(k1, "a & b<c>\xc3\xa9" "A");
    assert_string_equal(k2, "second");
    char *t = s3_xml_child_text(top, "NextContinuationToken");
    assert_string_equal(t, "tok+/=");
    assert_null(s3_xml_child_text(top, "Missing"));
    assert_null(s3_xml_child_text(NULL, "Key"));
    free(k1);
    free(k2);
    free(t);
    s3_xml_free(x);
    s3_xml_free(NULL);

    /* a <Key> with nothing in it is "", not absent */
    const char *empty =
        "<InitiateMultipartUploadResult><UploadId/></InitiateMultipartUploadResult>";
    x = s3_xml_parse(empty, strlen(empty), "InitiateMultipartUploadResult", &e);
    assert_non_null(x);
    char *id = s3_xml_child_text(s3_xml_root(x), "UploadId");
    assert_string_equal(id, "");
    free(id);
    s3_xml_free(x);

    char *esc = s3_xml_escape("a&b<c>\"d'");
    assert_string_equal(esc, "a&amp;b&lt;c&gt;&quot;d&apos;");
    free(esc);
}

static void test_error_doc(void **state)
{
    (void)state;
    const char *err = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>NoSuchBucket</Code>"
                      "<Message>The specified bucket does not exist</Message>"
                      "<BucketName>media</BucketName></Error>";
    char *code, *msg;
    assert_int_equal(s3_xml_error(err, strlen(err), &code, &msg), 1);
    assert_string_equal(code, "NoSuchBucket");
    assert_string_equal(msg, "The specified bucket does not exist");
    free(code);
    free(msg);
    /* CDATA is text, never markup */
    const char *cdata = "<Error><Code><![CDATA[<NoSuchKey>]]></Code></Error>";
    assert_int_equal(s3_xml_error(cdata, strlen(cdata), &code, &msg), 1);
    assert_string_equal(code, "<NoSuchKey>");
    assert_null(msg);
    free(code);
    /* not an error document: no code, whatever it contains */
    const char *others[] = {
        "<ListBucketResult><Contents><Key>Error</Key><Code>x</Code></Contents></ListBucketResult>",
        "<html><body><h1>502 Bad Gateway</h1></body></html>",
        "<Error><Code>NoSuchKey</Code>",   /* truncated */
        "Service Unavailable",
        "",
    };
    for (size_t i = 0; i < sizeof(others) / sizeof(others[0]); i++) {
        assert_int_equal(s3_xml_error(others[i], strlen(others[i]), &code, &msg), 0);
        assert_null(code);
        assert_null(msg);
    }
    assert_int_equal(s3_xml_error(NULL, 0, &code, &msg), 0);
}

static void test_hostile(void **state)
{
    (void)state;
    /* entity expansion ("billion laughs") and external entities: no DTD at all */
    refused("<?xml version=\"1.0\"?><!DOCTYPE l [<!ENTITY a \"aaaaaaaaaa\">"
            "<!ENTITY b \"&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;\"><!ENTITY c \"&b;&b;&b;&b;&b;&b;&b;\">]>"
            "<Error><Code>&c;</Code></Error>", "Error", "DTD");
    refused("<!DOCTYPE Error [<!ENTITY x SYSTEM \"file:///etc/passwd\">]>"
            "<Error><Code>&x;</Code></Error>", NULL, "DTD");
    refused("<Error><Code>&x;</Code></Error>", NULL, "malformed XML");
    refused("<Error><Code>&#0;</Code></Error>", NULL, "malformed XML");
    /* the wrong document */
    refused("<Error><Code>AccessDenied</Code></Error>", "ListBucketResult",
            "expected an XML <ListBucketResult> document, got <Error>");
    /* truncated, unbalanced, trailing bytes, empty, not XML */
    refused("<ListBucketResult><Contents><Key>a</Key>", NULL, "malformed XML");
    refused("<ListBucketResult><Contents></ListBucketResult></Contents>", NULL, "malformed XML");
    refused("<Error><Code>x</Code></Error><Error/>", NULL, "malformed XML");
    refused("<Error><Code>x</Code></Error>junk", NULL, "malformed XML");
    refused("", NULL, "empty");
    refused("   ", NULL, "malformed XML");
    refused("just text", NULL, "malformed XML");
    refused("<Error><Code>x</Code>", NULL, "malformed XML");
    refused("<Error attr='1' attr='2'/>", NULL, "malformed XML");
    /* NUL bytes (UTF-16 and the like) */
    ss_err e = { 0 };
    assert_null(s3_xml_parse("<a>\0</a>", 8, NULL, &e));
    assert_non_null(strstr(e.msg, "NUL"));
    /* nesting: S3's documents are shallow; deep ones are refused quickly */
    size_t depth = 100000, n = 0;
    char *deep = malloc(depth * 3 + 1);
    assert_non_null(deep);
    for (size_t i = 0; i < depth; i++, n += 3)
        memcpy(deep + n, "<a>", 3);
    deep[n] = '\0';
    refused(deep, NULL, "malformed XML");
    free(deep);
    char nest[1024] = "";
    for (int i = 0; i < S3_XML_MAX_DEPTH + 1; i++)
        strcat(nest, "<a>");
    for (int i = 0; i < S3_XML_MAX_DEPTH + 1; i++)
        strcat(nest, "</a>");
    refused(nest, NULL, "nested deeper");
    /* within the limit is fine */
    nest[0] = '\0';
    for (int i = 0; i < S3_XML_MAX_DEPTH; i++)
        strcat(nest, "<a>");
    for (int i = 0; i < S3_XML_MAX_DEPTH; i++)
        strcat(nest, "</a>");
    s3_xml *x = s3_xml_parse(nest, strlen(nest), "a", &e);
    assert_non_null(x);
    s3_xml_free(x);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_list),
        cmocka_unit_test(test_error_doc),
        cmocka_unit_test(test_hostile),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
