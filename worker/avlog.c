/* avlog.c — see avlog.h. libav calls its callback with pieces of a line;
 * pieces are collected per thread until the newline. */
#include "avlog.h"

#include <libavutil/log.h>
#include <stdio.h>
#include <string.h>

#include "log.h"

static __thread char line[1024];
static __thread int print_prefix = 1;
static int show_info;

static void cb(void *avcl, int level, const char *fmt, va_list vl)
{
    if (level > (show_info ? AV_LOG_INFO : AV_LOG_WARNING))
        return;
    size_t n = strlen(line);
    char piece[1024];
    av_log_format_line2(avcl, level, fmt, vl, piece, sizeof(piece), &print_prefix);
    snprintf(line + n, sizeof(line) - n, "%s", piece);
    n = strlen(line);
    if (n == 0 || (line[n - 1] != '\n' && n < sizeof(line) - 1))
        return;
    ss_log(level <= AV_LOG_ERROR ? SS_LOG_ERROR : level <= AV_LOG_WARNING ? SS_LOG_WARN : SS_LOG_DEBUG,
           NULL, "libav: %s", line);
    line[0] = '\0';
}

void avlog_install(int debug)
{
    show_info = debug;
    av_log_set_level(debug ? AV_LOG_INFO : AV_LOG_WARNING);
    av_log_set_callback(cb);
}
