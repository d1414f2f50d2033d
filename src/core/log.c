/* See include/leadflow/log.h. */
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <time.h>

#include "leadflow/timeparse.h"
#include "leadflow/log.h"

static char lf_log_tag[16];

void lf_log_set_tag(const char *tag)
{
    snprintf(lf_log_tag, sizeof(lf_log_tag), "%s", tag ? tag : "");
}

void lf_log(const char *level, const char *fmt, ...)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    char when[32];
    lf_time_format_iso8601((int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000, when, sizeof(when));
    char line[2048];
    int n = lf_log_tag[0]
                ? snprintf(line, sizeof(line), "%s leadflow[%s] %s: ", when, lf_log_tag, level)
                : snprintf(line, sizeof(line), "%s leadflow %s: ", when, level);
    if (n < 0) return;
    va_list ap;
    va_start(ap, fmt);
    int m = vsnprintf(line + n, sizeof(line) - (size_t)n - 1, fmt, ap);
    va_end(ap);
    size_t len = (size_t)n + (m < 0 ? 0 : (size_t)m);
    if (len > sizeof(line) - 2) len = sizeof(line) - 2; /* cut: the line still ends */
    line[len++] = '\n';
    fwrite(line, 1, len, stderr);
}
