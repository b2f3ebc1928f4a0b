/* fuzz_s3xml.c — S3 replies are XML from the network (errors, multipart
 * upload ids, list pages, delete results): parse them as the client does
 * (any root, then each root the client expects), walk every element two
 * levels down reading its text as the list and delete readers do, read
 * the error code, and escape what comes back. Must never crash, leak or
 * hang; a refused document needs a message. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "s3_client.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void walk(const s3_xml_node *n, int level)
{
    for (const s3_xml_node *c = s3_xml_child(n, NULL, NULL); c; c = s3_xml_child(n, NULL, c)) {
        char *t = s3_xml_text(c);
        char *esc = t ? s3_xml_escape(t) : NULL;
        free(esc);
        free(t);
        if (level < 2)
            walk(c, level + 1);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const char *roots[] = { NULL, "Error", "ListBucketResult", "DeleteResult",
                                   "InitiateMultipartUploadResult" };
    const char *xml = (const char *)data;
    for (size_t r = 0; r < sizeof(roots) / sizeof(roots[0]); r++) {
        ss_err e = { 0 };
        s3_xml *x = s3_xml_parse(xml, size, roots[r], &e);
        if (!x) {
            if (!e.code || !e.msg[0])
                abort();   /* a refusal must say why */
            continue;
        }
        const s3_xml_node *top = s3_xml_root(x);
        if (!top || !s3_xml_name(top))
            abort();
        walk(top, 1);
        char *k = s3_xml_child_text(s3_xml_child(top, "Contents", NULL), "Key");
        free(k);
        s3_xml_free(x);
    }
    char *code = NULL, *msg = NULL;
    s3_xml_error(xml, size, &code, &msg);
    free(code);
    free(msg);
    return 0;
}
