/* main.c — streamscale-worker: the daemon (wmain.c), or `encode` to run the
 * media pipeline once in the foreground (encode_cmd.c), or `testclip` to
 * write a generated clip (testclip.c). */
#include <stdlib.h>
#include <string.h>

#include "encode_cmd.h"
#include "testclip.h"

int worker_main(int argc, char **argv);

int main(int argc, char **argv)
{
    /* SVT-AV1 prints a banner and per-encoder lines to stderr on its own
     * (not through av_log): errors only, unless the operator asks for more.
     * Set before any thread exists. */
    setenv("SVT_LOG", "1", 0);
    if (argc > 1 && !strcmp(argv[1], "encode"))
        return encode_cmd_main(argc - 1, argv + 1);
    if (argc > 1 && !strcmp(argv[1], "testclip"))
        return testclip_main(argc - 1, argv + 1);
    return worker_main(argc, argv);
}
