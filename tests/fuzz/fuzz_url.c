/* fuzz_url.c — source and webhook URLs come from job specs: the SSRF
 * guard's early check must answer yes or no with a reason for any string,
 * and never let a literal private address through when they are refused. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "netguard.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *url = malloc(size + 1);
    if (!url)
        return 0;
    memcpy(url, data, size);
    url[size] = '\0';
    for (int mode = 0; mode < 4; mode++) {
        netguard g;
        memset(&g, 0, sizeof(g));
        g.allow_private = mode & 1;
        g.allow_http = (mode >> 1) & 1;
        ss_err err = { 0 };
        int r = netguard_check_url(url, &g, &err);
        if (r != 0 && !err.msg[0])
            abort();   /* a refusal always says why */
        if (r == 0 && !g.allow_private && (strstr(url, "://127.0.0.1/") == url + 5 ||
                                           strstr(url, "://127.0.0.1/") == url + 4))
            abort();   /* http(s)://127.0.0.1/ must be refused */
    }
    free(url);
    return 0;
}
