/* hook_sign.h — webhook signatures (docs/WEBHOOKS.md is the contract).
 *
 * Every delivery carries
 *   Streamscale-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>
 * where <body> is the exact request body. A delivery without a secret (a job
 * webhook that names none) carries "t=<unix seconds>" only: unsigned.
 * A receiver recomputes the HMAC over the raw body, compares in constant
 * time, and refuses timestamps too far from its clock (replays).
 *
 * Pure functions, no I/O: the dispatcher (coordinator/coord_hooks.c) signs,
 * hook_sign_verify is the reference check the unit tests and docs use.
 */
#ifndef SS_HOOK_SIGN_H
#define SS_HOOK_SIGN_H

#include <stddef.h>

/* Room for "t=<20 digits>,v1=<64 hex>" and its NUL. */
#define HOOK_SIG_MAX 96

/* Write the Streamscale-Signature value for body (len bytes) signed at unix
 * time t. secret NULL or "" gives the unsigned form "t=<t>".
 * Returns 0, or -1 when out (outlen bytes) is too small or memory ran out. */
int hook_sign_header(const char *secret, long long t, const char *body, size_t len,
                     char *out, size_t outlen);

typedef enum hook_sig_result {
    HOOK_SIG_OK = 0,
    HOOK_SIG_MALFORMED,   /* no t=, or not numbers/hex where expected */
    HOOK_SIG_UNSIGNED,    /* no v1= at all */
    HOOK_SIG_STALE,       /* |now - t| > tolerance_s */
    HOOK_SIG_MISMATCH     /* no v1 matches */
} hook_sig_result;

/* Check a Streamscale-Signature value against body with secret, at unix
 * time now, accepting timestamps within tolerance_s of now. Any of several
 * v1= values may match (room for secret rotation). */
hook_sig_result hook_sign_verify(const char *secret, const char *header, const char *body,
                                 size_t len, long long now, long long tolerance_s);

const char *hook_sig_result_name(hook_sig_result r);

#endif
