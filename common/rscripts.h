/* rscripts.h — the Lua scripts of the Redis contract (common/lua/NAME.lua,
 * compiled in by common/CMakeLists.txt). proto/redis.md documents each. */
#ifndef SS_RSCRIPTS_H
#define SS_RSCRIPTS_H

typedef struct ss_lua_script {
    const char *name;   /* file name without .lua */
    const char *body;
} ss_lua_script;

extern const ss_lua_script ss_lua_scripts[];   /* ends with { 0, 0 } */

/* The body of a script by name, NULL if none. */
const char *rscript_body(const char *name);

#endif
