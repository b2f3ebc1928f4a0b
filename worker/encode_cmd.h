/* encode_cmd.h — `streamscale-worker encode SOURCE OUTDIR [options]`: the
 * media pipeline in the foreground, without Redis (local use, benchmarks).
 * main.c calls encode_cmd_main(argc - 1, argv + 1) when argv[1] is "encode". */
#ifndef SS_ENCODE_CMD_H
#define SS_ENCODE_CMD_H

#include "media.h"
#include "ss_err.h"

/* argv[0] is "encode". Returns the process exit status: 0 on success, 1 on
 * failure (the readable error on stderr), 2 on a usage error. */
int encode_cmd_main(int argc, char **argv);

/* The command's own options (not media_opts). */
typedef struct encode_flags {
    int json;            /* --json */
    int chain;           /* 0 with --no-chain (a chunk run never goes on into the next) */
    int chunk_threads;   /* --chunk-threads (default 1) */
} encode_flags;

/* Parse the options after SOURCE OUTDIR into o (defaults first) and fl
 * (may be NULL). Returns 0, or -1 with err (SS_EINVAL). */
int encode_cmd_parse(int argc, char **argv, media_opts *o, const char **src, const char **outdir,
                     encode_flags *fl, ss_err *err);

#endif
