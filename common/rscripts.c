/* rscripts.c — lookup of the compiled-in Lua scripts (rscripts.h). */
#include "rscripts.h"

#include <string.h>

const char *rscript_body(const char *name)
{
    for (const ss_lua_script *s = ss_lua_scripts; s->name; s++)
        if (!strcmp(s->name, name))
            return s->body;
    return NULL;
}
