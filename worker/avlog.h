/* avlog.h — route libav*'s own log lines into our logger, so a daemon's
 * output stays one JSON object per line with the job id on it. */
#ifndef SS_AVLOG_H
#define SS_AVLOG_H

/* Install the callback; libav messages at or above AV_LOG_WARNING become
 * warn lines, AV_LOG_ERROR and worse error lines (debug level lets
 * AV_LOG_INFO through as debug lines). */
void avlog_install(int debug);

#endif
