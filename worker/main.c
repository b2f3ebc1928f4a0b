/* main.c — streamscale-worker: the daemon (wmain.c), or `encode` to run the
 * media pipeline once in the foreground (encode_cmd.c). */
#include <string.h>

#include "encode_cmd.h"

int worker_main(int argc, char **argv);

int main(int argc, char **argv)
{
    if (argc > 1 && !strcmp(argv[1], "encode"))
        return encode_cmd_main(argc - 1, argv + 1);
    return worker_main(argc, argv);
}
