/* netguard.c — the SSRF guard (see netguard.h): address classes, the
 * libcurl open-socket hook that refuses forbidden addresses at connect
 * time, and an early URL check. */
#include "netguard.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "util.h"

static netguard_class classify_v4(uint32_t a)   /* host byte order */
{
    unsigned b0 = a >> 24, b1 = (a >> 16) & 0xff;
    if (b0 == 0)
        return NETGUARD_UNSPECIFIED;                 /* 0.0.0.0/8 "this network" */
    if (b0 == 127)
        return NETGUARD_LOOPBACK;
    if (b0 == 10 || (b0 == 172 && (b1 & 0xf0) == 16) || (b0 == 192 && b1 == 168))
        return NETGUARD_PRIVATE;
    if (b0 == 100 && (b1 & 0xc0) == 64)
        return NETGUARD_PRIVATE;                     /* CGNAT 100.64.0.0/10 */
    if (b0 == 169 && b1 == 254)
        return NETGUARD_LINKLOCAL;
    if (b0 >= 224 && b0 <= 239)
        return NETGUARD_MULTICAST;
    if (b0 >= 240)
        return NETGUARD_RESERVED;                    /* 240/4 and 255.255.255.255 */
    if (b0 == 192 && b1 == 0 && ((a >> 8) & 0xff) == 0)
        return NETGUARD_RESERVED;                    /* 192.0.0.0/24 protocol assignments */
    if (b0 == 198 && (b1 & 0xfe) == 18)
        return NETGUARD_PRIVATE;                     /* 198.18.0.0/15 benchmarking */
    return NETGUARD_PUBLIC;
}

static netguard_class classify_v6(const unsigned char *b)
{
    static const unsigned char zero[16];
    static const unsigned char mapped[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff };
    static const unsigned char nat64[12] = { 0, 0x64, 0xff, 0x9b, 0, 0, 0, 0, 0, 0, 0, 0 };
    if (!memcmp(b, zero, 16))
        return NETGUARD_UNSPECIFIED;
    if (!memcmp(b, zero, 15) && b[15] == 1)
        return NETGUARD_LOOPBACK;
    if (!memcmp(b, mapped, 12) || !memcmp(b, nat64, 12))
        return classify_v4((uint32_t)b[12] << 24 | (uint32_t)b[13] << 16 |
                           (uint32_t)b[14] << 8 | b[15]);
    if (!memcmp(b, zero, 12))
        return NETGUARD_RESERVED;                    /* deprecated IPv4-compatible ::a.b.c.d */
    if (b[0] == 0x20 && b[1] == 0x02)                /* 6to4 2002:AABB:CCDD::/48 */
        return classify_v4((uint32_t)b[2] << 24 | (uint32_t)b[3] << 16 |
                           (uint32_t)b[4] << 8 | b[5]);
    if (b[0] == 0xff)
        return NETGUARD_MULTICAST;
    if (b[0] == 0xfe && (b[1] & 0xc0) == 0x80)
        return NETGUARD_LINKLOCAL;
    if (b[0] == 0xfe && (b[1] & 0xc0) == 0xc0)
        return NETGUARD_PRIVATE;                     /* deprecated site-local fec0::/10 */
    if ((b[0] & 0xfe) == 0xfc)
        return NETGUARD_PRIVATE;                     /* unique local fc00::/7 */
    return NETGUARD_PUBLIC;
}

netguard_class netguard_classify(const struct sockaddr *sa)
{
    if (!sa)
        return NETGUARD_RESERVED;
    if (sa->sa_family == AF_INET) {
        const struct sockaddr_in *s4 = (const struct sockaddr_in *)(const void *)sa;
        return classify_v4(ntohl(s4->sin_addr.s_addr));
    }
    if (sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)(const void *)sa;
        return classify_v6(s6->sin6_addr.s6_addr);
    }
    return NETGUARD_RESERVED;
}

const char *netguard_class_name(netguard_class c)
{
    switch (c) {
    case NETGUARD_PUBLIC:      return "public";
    case NETGUARD_LOOPBACK:    return "loopback";
    case NETGUARD_PRIVATE:     return "private";
    case NETGUARD_LINKLOCAL:   return "link-local";
    case NETGUARD_UNSPECIFIED: return "unspecified";
    case NETGUARD_MULTICAST:   return "multicast";
    case NETGUARD_RESERVED:    return "reserved";
    }
    return "unknown";
}

int netguard_check_addr(const struct sockaddr *sa, int allow_private)
{
    switch (netguard_classify(sa)) {
    case NETGUARD_PUBLIC:
        return 0;
    case NETGUARD_LOOPBACK:
    case NETGUARD_PRIVATE:
        return allow_private ? 0 : -1;
    default:
        return -1;
    }
}

static void addr_text(const struct sockaddr *sa, char *out, size_t n)
{
    char ip[INET6_ADDRSTRLEN] = "?";
    if (sa->sa_family == AF_INET)
        inet_ntop(AF_INET, &((const struct sockaddr_in *)(const void *)sa)->sin_addr, ip, sizeof(ip));
    else if (sa->sa_family == AF_INET6)
        inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr, ip, sizeof(ip));
    snprintf(out, n, "%s (%s)", ip, netguard_class_name(netguard_classify(sa)));
}

static curl_socket_t guard_opensocket(void *clientp, curlsocktype purpose,
                                      struct curl_sockaddr *address)
{
    netguard *g = clientp;
    if (purpose != CURLSOCKTYPE_IPCXN)
        return CURL_SOCKET_BAD;
    if (netguard_check_addr(&address->addr, g->allow_private) != 0) {
        g->refused = 1;
        addr_text(&address->addr, g->refused_addr, sizeof(g->refused_addr));
        return CURL_SOCKET_BAD;
    }
    return socket(address->family, address->socktype | SOCK_CLOEXEC, address->protocol);
}

void netguard_apply(CURL *h, netguard *g)
{
    g->refused = 0;
    g->refused_addr[0] = '\0';
    curl_easy_setopt(h, CURLOPT_OPENSOCKETFUNCTION, guard_opensocket);
    curl_easy_setopt(h, CURLOPT_OPENSOCKETDATA, g);
    const char *protos = g->allow_http ? "http,https" : "https";
    curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, protos);
    curl_easy_setopt(h, CURLOPT_REDIR_PROTOCOLS_STR, protos);
    if (g->max_redirects > 0) {
        curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 1L);
        curl_easy_setopt(h, CURLOPT_MAXREDIRS, (long)g->max_redirects);
    } else {
        curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 0L);
    }
    /* No proxy from the environment: the guard must see the real target. */
    curl_easy_setopt(h, CURLOPT_PROXY, "");
}

/* Host part of a URL (brackets removed for IPv6 literals) into out. */
static int url_host(const char *url, char *out, size_t n)
{
    const char *p = strstr(url, "://");
    if (!p)
        return -1;
    p += 3;
    const char *end = p + strcspn(p, "/?#");
    const char *at = NULL;
    for (const char *q = p; q < end; q++)
        if (*q == '@')
            at = q;
    if (at)
        p = at + 1;
    const char *hs = p, *he;
    if (*p == '[') {
        hs = p + 1;
        he = memchr(hs, ']', (size_t)(end - hs));
        if (!he)
            return -1;
    } else {
        he = memchr(p, ':', (size_t)(end - p));
        if (!he)
            he = end;
    }
    if (he <= hs || (size_t)(he - hs) >= n)
        return -1;
    memcpy(out, hs, (size_t)(he - hs));
    out[he - hs] = '\0';
    return 0;
}

int netguard_check_url(const char *url, const netguard *g, ss_err *err)
{
    int https = !strncasecmp(url, "https://", 8), http = !strncasecmp(url, "http://", 7);
    if (!https && !(http && g->allow_http))
        return ss_fail(err, http ? SS_EDENIED : SS_EINVAL,
                       http ? "plain http:// URLs are not allowed here (https:// only)"
                            : "only https:// URLs are allowed here");
    char host[256];
    if (url_host(url, host, sizeof(host)) != 0)
        return ss_fail(err, SS_EINVAL, "URL has no host");
    struct sockaddr_storage ss;
    memset(&ss, 0, sizeof(ss));
    struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;
    struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;
    /* inet_aton also reads the numeric forms a resolver accepts for an
     * IPv4 address ("2130706433", "0x7f.1", "0"), which are as literal */
    if (inet_pton(AF_INET, host, &s4->sin_addr) == 1 || inet_aton(host, &s4->sin_addr) == 1)
        ss.ss_family = AF_INET;
    else if (inet_pton(AF_INET6, host, &s6->sin6_addr) == 1)
        ss.ss_family = AF_INET6;
    else
        return 0;   /* a name: checked on the resolved address at connect time */
    if (netguard_check_addr((struct sockaddr *)&ss, g->allow_private) != 0) {
        char txt[80];
        addr_text((struct sockaddr *)&ss, txt, sizeof(txt));
        return ss_fail(err, SS_EDENIED,
                       "refused to connect to %s: not a public address (SSRF guard; "
                       "allow_private_networks allows loopback/private ones)", txt);
    }
    return 0;
}

int netguard_explain(const netguard *g, const char *what, ss_err *err)
{
    if (!g->refused)
        return 0;
    ss_failf_replace(err, SS_EDENIED,
                     "%s: refused to connect to %s: not a public address (SSRF guard)",
                     what ? what : "request", g->refused_addr);
    return 1;
}
