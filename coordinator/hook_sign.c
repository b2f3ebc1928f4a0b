/* hook_sign.c — webhook signatures (hook_sign.h). */
#include "hook_sign.h"

#include <openssl/crypto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

/* hex HMAC-SHA256(secret, "<t>." + body) into out[65]; -1 on no memory. */
static int mac_hex(const char *secret, long long t, const char *body, size_t len, char out[65])
{
    char pre[32];
    int pl = snprintf(pre, sizeof(pre), "%lld.", t);
    if (pl < 0 || (size_t)pl >= sizeof(pre))
        return -1;
    char *msg = malloc((size_t)pl + len + 1);
    if (!msg)
        return -1;
    memcpy(msg, pre, (size_t)pl);
    if (len)
        memcpy(msg + pl, body, len);
    ss_hmac_sha256_hex(secret, strlen(secret), msg, (size_t)pl + len, out);
    free(msg);
    return 0;
}

int hook_sign_header(const char *secret, long long t, const char *body, size_t len,
                     char *out, size_t outlen)
{
    int n;
    if (!secret || !*secret) {
        n = snprintf(out, outlen, "t=%lld", t);
    } else {
        char hex[65];
        if (mac_hex(secret, t, body, len, hex) != 0)
            return -1;
        n = snprintf(out, outlen, "t=%lld,v1=%s", t, hex);
    }
    return n < 0 || (size_t)n >= outlen ? -1 : 0;
}

hook_sig_result hook_sign_verify(const char *secret, const char *header, const char *body,
                                 size_t len, long long now, long long tolerance_s)
{
    if (!header)
        return HOOK_SIG_MALFORMED;
    long long t = -1;
    char v1[8][65];
    int nv1 = 0;
    const char *p = header;
    while (*p) {
        while (*p == ' ')
            p++;
        size_t n = strcspn(p, ",");
        if (n > 2 && !strncmp(p, "t=", 2)) {
            char *end;
            t = strtoll(p + 2, &end, 10);
            if (end != p + n || t < 0)
                return HOOK_SIG_MALFORMED;
        } else if (n > 3 && !strncmp(p, "v1=", 3)) {
            if (n - 3 != 64)
                return HOOK_SIG_MALFORMED;
            if (nv1 < 8) {
                memcpy(v1[nv1], p + 3, 64);
                v1[nv1][64] = '\0';
                nv1++;
            }
        }   /* other schemes are ignored, as receivers should */
        p += n;
        if (*p == ',')
            p++;
    }
    if (t < 0)
        return HOOK_SIG_MALFORMED;
    if (nv1 == 0)
        return HOOK_SIG_UNSIGNED;
    long long d = now - t;
    if (d > tolerance_s || -d > tolerance_s)
        return HOOK_SIG_STALE;
    char want[65];
    if (!secret || mac_hex(secret, t, body, len, want) != 0)
        return HOOK_SIG_MISMATCH;
    int ok = 0;
    for (int i = 0; i < nv1; i++)
        ok |= CRYPTO_memcmp(want, v1[i], 64) == 0;
    return ok ? HOOK_SIG_OK : HOOK_SIG_MISMATCH;
}

const char *hook_sig_result_name(hook_sig_result r)
{
    switch (r) {
    case HOOK_SIG_OK: return "ok";
    case HOOK_SIG_MALFORMED: return "malformed";
    case HOOK_SIG_UNSIGNED: return "unsigned";
    case HOOK_SIG_STALE: return "stale";
    case HOOK_SIG_MISMATCH: return "mismatch";
    }
    return "?";
}
