/* rscripts.h — the Lua scripts of the Redis contract (common/lua/NAME.lua,
 * compiled in by common/CMakeLists.txt). proto/redis.md documents each.
 * Callers run them with EVALSHA and fall back to EVAL on NOSCRIPT (a Redis
 * that restarted or had SCRIPT FLUSH). */
#ifndef SS_RSCRIPTS_H
#define SS_RSCRIPTS_H

typedef struct ss_lua_script {
    const char *name;   /* file name without .lua */
    const char *body;   /* _lib.lua + the script */
} ss_lua_script;

extern const ss_lua_script ss_lua_scripts[];   /* ends with { 0, 0 } */

/* The body of a script by name, NULL if none. */
const char *rscript_body(const char *name);
/* Its SHA-1 as 40 hex chars (computed once), NULL if none. */
const char *rscript_sha(const char *name);

#endif
