/* rkeys.c — job states (rkeys.h). */
#include "rkeys.h"

#include <string.h>

const char *const rk_states[] = {
    "queued", "running", "cancelling", "retrying", "completed", "failed", "cancelled", "dead",
    NULL
};

int rk_state_valid(const char *s)
{
    for (int i = 0; rk_states[i]; i++)
        if (!strcmp(s, rk_states[i]))
            return 1;
    return 0;
}

int rk_state_final(const char *s)
{
    return !strcmp(s, "completed") || !strcmp(s, "failed") || !strcmp(s, "cancelled") ||
           !strcmp(s, "dead");
}
