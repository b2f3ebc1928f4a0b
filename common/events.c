/* events.c — the event envelope (events.h). */
#include "events.h"

#include <stdio.h>
#include <time.h>

void iso8601_ms(long long ms, char *out, size_t outlen)
{
    time_t s = (time_t)(ms / 1000);
    struct tm tm;
    gmtime_r(&s, &tm);
    char base[32];
    strftime(base, sizeof(base), "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(out, outlen, "%s.%03dZ", base, (int)(ms % 1000));
}

json_t *event_envelope(const char *job_id, long long seq, const char *type, long long ts_ms,
                       const char *data_json, const json_t *metadata)
{
    char id[96], ts[40];
    snprintf(id, sizeof(id), "evt_%s_%lld", job_id, seq);
    iso8601_ms(ts_ms, ts, sizeof(ts));
    json_t *data = data_json ? json_loads(data_json, 0, NULL) : NULL;
    if (!json_is_object(data)) {
        json_decref(data);
        data = json_object();
    }
    json_t *e = json_pack("{sssssssIssso}", "id", id, "type", type, "job_id", job_id, "seq",
                          (json_int_t)seq, "created_at", ts, "data", data);
    if (e && metadata)
        json_object_set(e, "metadata", (json_t *)metadata);
    return e;
}
