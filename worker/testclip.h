/* testclip.h — a generated test clip (test pattern + tone) as H.264/AAC MP4,
 * for the demo and smoke tests. */
#ifndef SS_TESTCLIP_H
#define SS_TESTCLIP_H

#include "ss_err.h"

int testclip_write(const char *path, double seconds, int width, int height, int fps, int audio,
                   ss_err *err);
/* `streamscale-worker testclip ...`; argv[0] is "testclip". */
int testclip_main(int argc, char **argv);

#endif
