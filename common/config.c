/* config.c — see config.h. */
#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "util.h"

static const cfg_opt *find_opt(const cfg_opt *opts, const char *key, size_t keylen)
{
    for (const cfg_opt *o = opts; o->key; o++) {
        if (strlen(o->key) == keylen && strncmp(o->key, key, keylen) == 0)
            return o;
    }
    /* Allow '-' for '_' in keys (flags read better with dashes). */
    for (const cfg_opt *o = opts; o->key; o++) {
        if (strlen(o->key) != keylen)
            continue;
        size_t i;
        for (i = 0; i < keylen; i++) {
            char a = o->key[i], b = key[i];
            if (a != b && !(a == '_' && b == '-'))
                break;
        }
        if (i == keylen)
            return o;
    }
    return NULL;
}

static int parse_bool(const char *v, int *out)
{
    static const char *yes[] = { "1", "true", "yes", "on" };
    static const char *no[] = { "0", "false", "no", "off" };
    for (size_t i = 0; i < 4; i++) {
        if (strcasecmp(v, yes[i]) == 0) {
            *out = 1;
            return 0;
        }
        if (strcasecmp(v, no[i]) == 0) {
            *out = 0;
            return 0;
        }
    }
    return -1;
}

static int apply(const cfg_opt *o, void *conf, const char *val, const char *where, ss_err *err)
{
    char *field = (char *)conf + o->off;
    switch (o->type) {
    case CFG_STR:
    case CFG_SECRET: {
        char *dup = strdup(val ? val : "");
        if (!dup)
            return ss_fail(err, SS_ENOMEM, "out of memory");
        char **p = (char **)(void *)field;
        free(*p);
        *p = dup;
        return 0;
    }
    case CFG_INT: {
        errno = 0;
        char *end;
        long long v = strtoll(val, &end, 10);
        if (!*val || *end || errno)
            return ss_fail(err, SS_EINVAL, "%s: key '%s': '%s' is not an integer", where, o->key, val);
        if (o->min < o->max && ((double)v < o->min || (double)v > o->max))
            return ss_fail(err, SS_EINVAL, "%s: key '%s': %lld is out of range [%g, %g]", where,
                           o->key, v, o->min, o->max);
        *(long long *)(void *)field = v;
        return 0;
    }
    case CFG_DOUBLE: {
        errno = 0;
        char *end;
        double v = strtod(val, &end);
        if (!*val || *end || errno || v != v)
            return ss_fail(err, SS_EINVAL, "%s: key '%s': '%s' is not a number", where, o->key, val);
        if (o->min < o->max && (v < o->min || v > o->max))
            return ss_fail(err, SS_EINVAL, "%s: key '%s': %g is out of range [%g, %g]", where,
                           o->key, v, o->min, o->max);
        *(double *)(void *)field = v;
        return 0;
    }
    case CFG_BOOL: {
        int b;
        if (parse_bool(val, &b) != 0)
            return ss_fail(err, SS_EINVAL, "%s: key '%s': '%s' is not a boolean (true/false)",
                           where, o->key, val);
        *(int *)(void *)field = b;
        return 0;
    }
    }
    return ss_fail(err, SS_EINTERNAL, "bad option type");
}

int cfg_defaults(const cfg_opt *opts, void *conf, ss_err *err)
{
    for (const cfg_opt *o = opts; o->key; o++) {
        const char *d = o->def;
        if (!d)
            d = (o->type == CFG_STR || o->type == CFG_SECRET) ? "" : "0";
        if (apply(o, conf, d, "default", err) != 0)
            return -1;
    }
    return 0;
}

int cfg_set(const cfg_opt *opts, void *conf, const char *key, const char *val,
            const char *where, ss_err *err)
{
    const cfg_opt *o = find_opt(opts, key, strlen(key));
    if (!o)
        return ss_fail(err, SS_EINVAL, "%s: unknown key '%s'", where, key);
    return apply(o, conf, val, where, err);
}

static char *trim(char *s)
{
    while (isspace((unsigned char)*s))
        s++;
    char *e = s + strlen(s);
    while (e > s && isspace((unsigned char)e[-1]))
        *--e = '\0';
    return s;
}

int cfg_parse_text(const cfg_opt *opts, void *conf, const char *text, const char *name,
                   ss_err *err)
{
    char *copy = strdup(text);
    if (!copy)
        return ss_fail(err, SS_ENOMEM, "out of memory");
    int rc = 0, lineno = 0;
    char *save = NULL;
    char *line = copy;
    /* strtok would skip empty lines and miscount; split by hand. */
    while (line) {
        char *next = strchr(line, '\n');
        if (next)
            *next++ = '\0';
        lineno++;
        char *l = trim(line);
        if (*l && *l != '#' && *l != ';') {
            char where[512];
            snprintf(where, sizeof(where), "%s:%d", name, lineno);
            char *eq = strchr(l, '=');
            if (!eq) {
                rc = ss_fail(err, SS_EINVAL, "%s: expected 'key = value', got '%.60s'", where, l);
                break;
            }
            *eq = '\0';
            char *key = trim(l), *val = trim(eq + 1);
            size_t vl = strlen(val);
            if (vl >= 2 && ((val[0] == '"' && val[vl - 1] == '"') ||
                            (val[0] == '\'' && val[vl - 1] == '\''))) {
                val[vl - 1] = '\0';
                val++;
            }
            if (!*key) {
                rc = ss_fail(err, SS_EINVAL, "%s: missing key before '='", where);
                break;
            }
            if (cfg_set(opts, conf, key, val, where, err) != 0) {
                rc = -1;
                break;
            }
        }
        line = next;
    }
    (void)save;
    free(copy);
    return rc;
}

int cfg_parse_file(const cfg_opt *opts, void *conf, const char *path, ss_err *err)
{
    char *text = ss_read_file(path, 1 << 20, NULL, err);
    if (!text)
        return -1;
    int rc = cfg_parse_text(opts, conf, text, path, err);
    free(text);
    return rc;
}

int cfg_parse_env(const cfg_opt *opts, void *conf, ss_err *err)
{
    for (const cfg_opt *o = opts; o->key; o++) {
        char name[128] = "STREAMSCALE_";
        size_t n = strlen(name);
        for (const char *k = o->key; *k && n + 1 < sizeof(name); k++)
            name[n++] = (char)toupper((unsigned char)*k);
        name[n] = '\0';
        const char *v = getenv(name);
        if (v && apply(o, conf, v, name, err) != 0)
            return -1;
    }
    return 0;
}

int cfg_load(const cfg_opt *opts, void *conf, int argc, char **argv, int *argi,
             int *help, char **config_path, ss_err *err)
{
    const char *file = getenv("STREAMSCALE_CONFIG");
    int i;
    if (help)
        *help = 0;
    /* First pass: find -c and --help; stop at the first positional. */
    for (i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--"))
            break;
        if (a[0] != '-')
            break;
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            if (help)
                *help = 1;
            continue;
        }
        if (!strcmp(a, "-c") || !strcmp(a, "--config")) {
            if (i + 1 >= argc)
                return ss_fail(err, SS_EINVAL, "%s needs a file name", a);
            file = argv[++i];
            continue;
        }
        if (!strncmp(a, "--config=", 9)) {
            file = a + 9;
            continue;
        }
        if (!strncmp(a, "--", 2) && !strchr(a, '=')) {
            const cfg_opt *o = find_opt(opts, a + 2, strlen(a + 2));
            if (o && o->type != CFG_BOOL)
                i++;   /* skip its value */
        }
    }
    if (cfg_defaults(opts, conf, err) != 0)
        return -1;
    if (help && *help)
        return 0;
    if (file && *file && cfg_parse_file(opts, conf, file, err) != 0)
        return -1;
    if (config_path) {
        free(*config_path);
        *config_path = file && *file ? strdup(file) : NULL;
    }
    if (cfg_parse_env(opts, conf, err) != 0)
        return -1;
    for (i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--")) {
            i++;
            break;
        }
        if (a[0] != '-')
            break;
        if (!strcmp(a, "-h") || !strcmp(a, "--help"))
            continue;
        if (!strcmp(a, "-c") || !strcmp(a, "--config")) {
            i++;
            continue;
        }
        if (!strncmp(a, "--config=", 9))
            continue;
        if (strncmp(a, "--", 2) != 0)
            return ss_fail(err, SS_EINVAL, "unknown option '%s' (try --help)", a);
        const char *key = a + 2;
        const char *eq = strchr(key, '=');
        size_t keylen = eq ? (size_t)(eq - key) : strlen(key);
        const char *val = eq ? eq + 1 : NULL;
        int negate = 0;
        const cfg_opt *o = find_opt(opts, key, keylen);
        if (!o && keylen > 3 && !strncmp(key, "no-", 3)) {
            o = find_opt(opts, key + 3, keylen - 3);
            negate = o && o->type == CFG_BOOL;
            if (!negate)
                o = NULL;
        }
        if (!o)
            return ss_fail(err, SS_EINVAL, "unknown option '--%.*s' (try --help)", (int)keylen, key);
        if (!val) {
            if (o->type == CFG_BOOL)
                val = negate ? "false" : "true";
            else if (i + 1 < argc)
                val = argv[++i];
            else
                return ss_fail(err, SS_EINVAL, "--%s needs a value", o->key);
        }
        char where[160];
        snprintf(where, sizeof(where), "--%s", o->key);
        if (apply(o, conf, val, where, err) != 0)
            return -1;
    }
    if (argi)
        *argi = i;
    return 0;
}

void cfg_usage(FILE *out, const cfg_opt *opts)
{
    static const char *tn[] = { "string", "secret", "integer", "number", "bool" };
    fprintf(out, "Every key can be set in the config file (key = value), in the environment\n"
                 "as STREAMSCALE_<KEY>, or as a flag --key VALUE (highest precedence).\n\n");
    for (const cfg_opt *o = opts; o->key; o++) {
        const char *d = o->def && *o->def ? o->def : "(none)";
        if (o->type == CFG_SECRET && o->def && *o->def)
            d = "(set)";
        fprintf(out, "  --%-24s %-7s default: %s\n      %s\n", o->key, tn[o->type], d,
                o->help ? o->help : "");
    }
}

void cfg_free(const cfg_opt *opts, void *conf)
{
    for (const cfg_opt *o = opts; o->key; o++) {
        if (o->type == CFG_STR || o->type == CFG_SECRET) {
            char **p = (char **)(void *)((char *)conf + o->off);
            free(*p);
            *p = NULL;
        }
    }
}

int cfg_split_hostport(const char *s, char *host, size_t hostlen, int *port, int port_def)
{
    const char *colon = strrchr(s, ':');
    const char *hs = s, *he;
    if (s[0] == '[') {   /* [v6]:port */
        const char *rb = strchr(s, ']');
        if (!rb)
            return -1;
        hs = s + 1;
        he = rb;
        colon = rb[1] == ':' ? rb + 1 : NULL;
    } else {
        he = colon ? colon : s + strlen(s);
    }
    if ((size_t)(he - hs) >= hostlen)
        return -1;
    memcpy(host, hs, (size_t)(he - hs));
    host[he - hs] = '\0';
    if (colon) {
        char *end;
        long p = strtol(colon + 1, &end, 10);
        if (*end || p <= 0 || p > 65535)
            return -1;
        *port = (int)p;
    } else {
        *port = port_def;
    }
    return 0;
}
