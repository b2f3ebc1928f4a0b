/* rscripts.c — lookup of the compiled-in Lua scripts and their SHA-1s. */
#include "rscripts.h"

#include <openssl/evp.h>
#include <pthread.h>
#include <string.h>

#include "util.h"

#define MAX_SCRIPTS 64

static char shas[MAX_SCRIPTS][41];
static pthread_once_t sha_once = PTHREAD_ONCE_INIT;

static void compute_shas(void)
{
    for (int i = 0; ss_lua_scripts[i].name && i < MAX_SCRIPTS; i++) {
        unsigned char md[20];
        unsigned int n = 0;
        const char *b = ss_lua_scripts[i].body;
        EVP_Digest(b, strlen(b), md, &n, EVP_sha1(), NULL);
        ss_hex(md, 20, shas[i]);
    }
}

static int script_index(const char *name)
{
    for (int i = 0; ss_lua_scripts[i].name && i < MAX_SCRIPTS; i++)
        if (!strcmp(ss_lua_scripts[i].name, name))
            return i;
    return -1;
}

const char *rscript_body(const char *name)
{
    int i = script_index(name);
    return i < 0 ? NULL : ss_lua_scripts[i].body;
}

const char *rscript_sha(const char *name)
{
    pthread_once(&sha_once, compute_shas);
    int i = script_index(name);
    return i < 0 ? NULL : shas[i];
}
