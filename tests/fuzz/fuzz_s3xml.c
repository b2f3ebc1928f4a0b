/* fuzz_s3xml.c — S3 replies are XML from the network (errors, multipart
 * upload ids, part ETags): walk every <tag> the client looks for, as the
 * client does, and escape what comes back. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "s3_client.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const char *tags[] = { "Code", "Message", "UploadId", "ETag", "Key", "Part", "" };
    char *xml = malloc(size + 1);
    if (!xml)
        return 0;
    memcpy(xml, data, size);
    xml[size] = '\0';
    for (size_t t = 0; t < sizeof(tags) / sizeof(tags[0]); t++) {
        const char *at = xml, *next = NULL;
        for (int k = 0; k < 64 && at; k++) {
            char *v = s3_xml_get(at, tags[t], &next);
            if (!v)
                break;
            char *esc = s3_xml_escape(v);
            free(esc);
            free(v);
            if (!next || next <= at)
                abort();   /* must move forward */
            at = next;
        }
    }
    free(xml);
    return 0;
}
