/* events.h — the job event envelope (proto/events.schema.json).
 *
 * Scripts append events to the job's stream as (type, ts, data) with the
 * stream id 0-<seq>; readers (the API, the webhook dispatcher) wrap each in
 * the envelope clients see:
 *   {"id":"evt_<job>_<seq>","type":"job.started","job_id":"...","seq":2,
 *    "created_at":"2026-...Z","data":{...},"metadata":{...}}
 * The event id is stable, so a receiver can drop duplicates by id.
 */
#ifndef SS_EVENTS_H
#define SS_EVENTS_H

#include <jansson.h>
#include <stddef.h>

/* Build an envelope. data_json may be NULL or invalid (becomes {}).
 * metadata may be NULL (omitted). Returns a new reference. */
json_t *event_envelope(const char *job_id, long long seq, const char *type, long long ts_ms,
                       const char *data_json, const json_t *metadata);

/* Format ms since the epoch as ISO 8601 UTC with milliseconds. */
void iso8601_ms(long long ms, char *out, size_t outlen);

#endif
