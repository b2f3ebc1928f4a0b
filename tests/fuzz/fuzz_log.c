/* fuzz_log.c — arbitrary bytes (a request line, a header, a file name)
 * through the JSON log writer: every line must be one valid UTF-8 JSON
 * object, whatever the input. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "log.h"
#include "util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static FILE *out;
static char *buf;
static size_t len;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!out) {
        out = open_memstream(&buf, &len);
        if (!out)
            abort();
        log_init("fuzz", out, SS_LOG_DEBUG, SS_LOG_JSON);
    }
    char *s = malloc(size + 1);
    if (!s)
        return 0;
    memcpy(s, data, size);
    s[size] = '\0';
    rewind(out);
    /* the job id slot too: ids come from URLs */
    log_info(size > 20 ? s + size - 20 : NULL, "%s", s);
    fflush(out);
    if (len < 2 || buf[len - 1] != '\n')
        abort();
    buf[len - 1] = '\0';
    for (const char *p = buf; *p;) {
        size_t n = ss_utf8_len(p);
        if (!n)
            abort();   /* not UTF-8 */
        p += n;
    }
    json_error_t e;
    json_t *j = json_loads(buf, 0, &e);
    if (!j || !json_is_object(j))
        abort();
    json_decref(j);
    free(s);
    return 0;
}
