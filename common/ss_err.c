/* ss_err.c — filling and naming errors (see ss_err.h). */
#include "ss_err.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

__attribute__((format(printf, 3, 0)))
static void vfill(ss_err *err, ss_code code, const char *fmt, va_list ap)
{
    err->code = code;
    vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
}

int ss_fail(ss_err *err, ss_code code, const char *fmt, ...)
{
    if (err && err->code == SS_OK) {
        va_list ap;
        va_start(ap, fmt);
        vfill(err, code, fmt, ap);
        va_end(ap);
    }
    return -1;
}

int ss_failf_replace(ss_err *err, ss_code code, const char *fmt, ...)
{
    if (err) {
        char tmp[sizeof(err->msg)];
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(tmp, sizeof(tmp), fmt, ap);
        va_end(ap);
        err->code = code;
        memcpy(err->msg, tmp, sizeof(tmp));
    }
    return -1;
}

void ss_err_clear(ss_err *err)
{
    if (err) {
        err->code = SS_OK;
        err->msg[0] = '\0';
    }
}

const char *ss_code_name(ss_code code)
{
    switch (code) {
    case SS_OK:         return "ok";
    case SS_EINVAL:     return "invalid";
    case SS_EMEDIA:     return "media";
    case SS_ELIMIT:     return "limit";
    case SS_EAUTH:      return "auth";
    case SS_ENOTFOUND:  return "not_found";
    case SS_EDENIED:    return "denied";
    case SS_EIO:        return "io";
    case SS_ENET:       return "network";
    case SS_EREDIS:     return "redis";
    case SS_ENOMEM:     return "no_memory";
    case SS_ECANCELLED: return "cancelled";
    case SS_ELOST:      return "lease_lost";
    case SS_ECHANGED:   return "source_changed";
    case SS_EINTERNAL:  return "internal";
    }
    return "unknown";
}

int ss_err_permanent(ss_code code)
{
    switch (code) {
    case SS_EINVAL: case SS_EMEDIA: case SS_ELIMIT: case SS_EAUTH:
    case SS_ENOTFOUND: case SS_EDENIED: case SS_ECHANGED:
        return 1;
    default:
        return 0;
    }
}
