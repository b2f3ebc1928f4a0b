/* wpublish.h — playable while encoding (docs/PLAYABLE.md): a split job's
 * early EVENT playlists, published from the job thread of the chunk or
 * audio item that stored more of the title, one worker at a time (the
 * publish lease of common/lua/publish.lua), and the finalize item's wait
 * for a publish still running before it writes the VOD playlists.
 *
 * Both talk to Redis over their own short-lived blocking connection (the
 * job thread never touches the event loop's async contexts), and both are
 * best effort: a failure is logged and never fails the item. */
#ifndef SS_WPUBLISH_H
#define SS_WPUBLISH_H

#include <jansson.h>

#include "storage.h"
#include "worker.h"

/* After item j (a chunk or audio) stored all its files under prefix
 * ("<job id>/") in st: leave its record rec for publishers and, holding
 * the publish lease, write (in scratch) and store the EVENT media
 * playlists, then master.m3u8, as long as more segments became available. */
void wpub_early(wjob *j, storage *st, const char *scratch, const char *prefix, const json_t *rec);

/* Before the VOD playlists of job j are written: wait (at most the lease,
 * checking j->cancel) for an early publish still running, and return the
 * seconds from submission to first playable (early publish), or to now
 * when the title was not published early; -1 when unknown. */
double wpub_final(wjob *j);

#endif
