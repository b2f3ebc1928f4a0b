/* opts.c — media_opts defaults (media.h). */
#include "media.h"

#include <string.h>

void media_opts_default(media_opts *o)
{
    memset(o, 0, sizeof(*o));
    o->ladder = MEDIA_LADDER_AUTO;
    o->rate_control = MEDIA_RC_CAPPED_CRF;
    o->preset = "veryfast";
    o->crf = 23;
    o->segment_seconds = 4.0;
    o->threads = 0;
    o->audio_kbps = 128;
    o->hls = 1;
    o->dash = 1;
    o->thumbnails = 1;
    o->thumb_interval = 10.0;
    o->scratch_dir = "/tmp";
}
