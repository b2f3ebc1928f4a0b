/* config.h — table-driven configuration shared by every binary.
 *
 * Each program describes its keys in a cfg_opt table (name, type, default,
 * help, offset into its own config struct). Values come from, lowest to
 * highest precedence: the default, the file given with -c/--config
 * (`key = value` lines, # comments), the environment (STREAMSCALE_<KEY>, the
 * key upper-cased), and command-line flags (--key value or --key=value).
 * Errors name where the bad value came from: "worker.conf:12: key
 * 'slots': not an integer", "STREAMSCALE_SLOTS: ...", "--slots: ...".
 */
#ifndef SS_CONFIG_H
#define SS_CONFIG_H

#include <stddef.h>
#include <stdio.h>

#include "ss_err.h"

typedef enum cfg_type {
    CFG_STR,     /* char *, strdup'd; "" allowed */
    CFG_SECRET,  /* like CFG_STR, but never printed (help shows "(set)") */
    CFG_INT,     /* long long; min/max checked */
    CFG_DOUBLE,  /* double; min/max checked */
    CFG_BOOL     /* int 0/1: true/false/yes/no/on/off/1/0 */
} cfg_type;

typedef struct cfg_opt {
    const char *key;
    cfg_type type;
    const char *def;    /* default as text; NULL = empty / 0 */
    size_t off;         /* offsetof(conf struct, field) */
    double min, max;    /* for CFG_INT / CFG_DOUBLE when min < max */
    const char *help;
} cfg_opt;

/* Set every key to its default. */
int cfg_defaults(const cfg_opt *opts, void *conf, ss_err *err);
/* Apply one key = value; `where` names the source for errors. */
int cfg_set(const cfg_opt *opts, void *conf, const char *key, const char *val,
            const char *where, ss_err *err);
/* Apply the text of a config file; `name` is used in errors. */
int cfg_parse_text(const cfg_opt *opts, void *conf, const char *text, const char *name,
                   ss_err *err);
int cfg_parse_file(const cfg_opt *opts, void *conf, const char *path, ss_err *err);
/* Apply STREAMSCALE_<KEY> variables. */
int cfg_parse_env(const cfg_opt *opts, void *conf, ss_err *err);

/* The whole sequence: defaults, file (-c/--config in argv, or cfg_file_env
 * e.g. STREAMSCALE_CONFIG), environment, flags. Stops at the first argument
 * that is not a flag and stores its index in *argi (argc if none).
 * Sets *help when --help/-h was given. */
int cfg_load(const cfg_opt *opts, void *conf, int argc, char **argv, int *argi,
             int *help, char **config_path, ss_err *err);

/* Print every key with its type, default and help. */
void cfg_usage(FILE *out, const cfg_opt *opts);
/* Free the strings a config struct holds. */
void cfg_free(const cfg_opt *opts, void *conf);

/* Helpers for the common value shapes. */
/* "host:port" -> host and port; port_def if missing. */
int cfg_split_hostport(const char *s, char *host, size_t hostlen, int *port, int port_def);

#endif
