/* netguard.h — the SSRF guard: which addresses the service may connect to
 * on behalf of a URL someone else gave it (job sources, webhooks, storage
 * endpoints).
 *
 * The check runs on the address libcurl is about to connect to (its
 * CURLOPT_OPENSOCKETFUNCTION), not on the host name, so DNS rebinding, a
 * host name that resolves to 127.0.0.1 and redirects to internal addresses
 * are all refused the same way. Policy (docs/STORAGE.md):
 *   always refused: unspecified (0.0.0.0/8, ::), multicast, broadcast and
 *     reserved ranges, link-local (169.254.0.0/16 incl. the cloud metadata
 *     address 169.254.169.254, fe80::/10);
 *   refused unless allow_private: loopback (127/8, ::1), RFC 1918
 *     (10/8, 172.16/12, 192.168/16), CGNAT 100.64/10, unique local fc00::/7;
 *   IPv4 embedded in IPv6 (::ffff:a.b.c.d, 64:ff9b::/96, 2002::/16) is
 *     judged by the IPv4 address inside.
 * Environment proxies are switched off on guarded handles (a proxy would
 * make the guard check the proxy instead of the target).
 */
#ifndef SS_NETGUARD_H
#define SS_NETGUARD_H

#include <curl/curl.h>
#include <sys/socket.h>

#include "ss_err.h"

typedef enum netguard_class {
    NETGUARD_PUBLIC = 0,
    NETGUARD_LOOPBACK,
    NETGUARD_PRIVATE,      /* RFC 1918, CGNAT, fc00::/7 */
    NETGUARD_LINKLOCAL,    /* 169.254/16 (cloud metadata), fe80::/10 */
    NETGUARD_UNSPECIFIED,  /* 0.0.0.0/8, :: */
    NETGUARD_MULTICAST,    /* 224/4, ff00::/8 */
    NETGUARD_RESERVED      /* 240/4, broadcast, other special ranges */
} netguard_class;

/* What an address is; sa is AF_INET or AF_INET6 (else NETGUARD_RESERVED). */
netguard_class netguard_classify(const struct sockaddr *sa);
const char *netguard_class_name(netguard_class c);

/* 0 when a connection to sa is allowed, -1 when refused. Pure. */
int netguard_check_addr(const struct sockaddr *sa, int allow_private);

/* Per-handle guard state. The caller owns it; it must outlive the handle's
 * transfers. After a refused connect, `refused` is 1 and `refused_addr`
 * names the address and its class. */
typedef struct netguard {
    int allow_private;    /* in: allow loopback/private/CGNAT/ULA */
    int allow_http;       /* in: allow http:// besides https:// */
    int max_redirects;    /* in: 0 = follow none (webhooks), else at most this many */
    int refused;          /* out */
    char refused_addr[80];/* out: "127.0.0.1 (loopback)" */
} netguard;

/* Install the guard on an easy handle: the connect-time address check,
 * allowed protocols (https, and http when allow_http) for the request and
 * for redirects, the redirect limit, and no environment proxy. */
void netguard_apply(CURL *h, netguard *g);

/* Early check of a URL before any request: scheme allowed, host present,
 * and a literal IP host checked right away (SS_EDENIED / SS_EINVAL). Host
 * names are checked at connect time by netguard_apply. */
int netguard_check_url(const char *url, const netguard *g, ss_err *err);

/* After a failed transfer on a guarded handle: fill err with SS_EDENIED and
 * the address when the guard refused the connection; returns 1 then, else 0. */
int netguard_explain(const netguard *g, const char *what, ss_err *err);

#endif
