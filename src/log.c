/* See include/leadflow/log.h. */
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <time.h>

#include "leadflow/event.h"
#include "leadflow/log.h"

void lf_log(const char *level, const char *fmt, ...)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    char when[32];
    lf_time_format_iso8601((int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000, when, sizeof(when));
    fprintf(stderr, "%s leadflow %s: ", when, level);
    va_list ap;
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
}
