/* fuzz_jobspec.c — POST /v1/jobs bodies: parse, validate, canonicalise.
 * An accepted spec must give a valid id and survive redaction, and its
 * canonical form must parse again to the same id (the id is what makes a
 * resubmit idempotent). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "jobspec.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char field[128];
    ss_err err = { 0 };
    json_t *spec = jobspec_parse((const char *)data, size, field, sizeof(field), &err);
    if (!spec)
        return 0;
    char id[JOBSPEC_ID_LEN + 1], again[JOBSPEC_ID_LEN + 1];
    jobspec_id(spec, id);
    if (!jobspec_id_valid(id))
        abort();
    json_t *red = jobspec_redacted(spec);
    json_decref(red);
    char *canon = json_dumps(spec, JSON_COMPACT | JSON_SORT_KEYS);
    if (canon) {
        ss_err e2 = { 0 };
        json_t *back = jobspec_parse(canon, strlen(canon), field, sizeof(field), &e2);
        if (!back)
            abort();   /* our own canonical form must be a valid spec */
        jobspec_id(back, again);
        if (strcmp(id, again))
            abort();
        json_decref(back);
        free(canon);
    }
    json_decref(spec);
    return 0;
}
