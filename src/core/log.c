/* See include/leadflow/log.h. */
#include <cjson/cJSON.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "leadflow/log.h"
#include "leadflow/timeparse.h"

static char lf_log_tag[16];
static int lf_log_json, lf_log_min = 1; /* 0 debug, 1 info, 2 warn, 3 error */

static const char *const lf_levels[] = {"debug", "info", "warn", "error"};

void lf_log_set_tag(const char *tag)
{
    snprintf(lf_log_tag, sizeof(lf_log_tag), "%s", tag ? tag : "");
}

int lf_log_level_index(const char *level)
{
    for (int i = 0; i < 4; i++)
        if (strcmp(level, lf_levels[i]) == 0) return i;
    return 1;
}

void lf_log_configure(int json, int min_level)
{
    lf_log_json = json;
    lf_log_min = min_level >= 0 && min_level <= 3 ? min_level : 1;
}

/* One line, written with one call: "<time> leadflow[<tag>] <level>: <msg>", or one JSON
 * object {"ts", "level", "msg", "worker", then the fields}. */
static void lf_log_emit(const char *level, const char *msg, const char *const *fields, size_t n)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    char when[32], line[4096];
    lf_time_format_iso8601((int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000, when, sizeof(when));
    size_t len;
    if (lf_log_json) {
        cJSON *o = cJSON_CreateObject();
        if (!o) return;
        cJSON_AddStringToObject(o, "ts", when);
        cJSON_AddStringToObject(o, "level", level);
        cJSON_AddStringToObject(o, "msg", msg);
        if (lf_log_tag[0]) cJSON_AddStringToObject(o, "worker", lf_log_tag);
        for (size_t i = 0; i + 1 < n; i += 2)
            cJSON_AddStringToObject(o, fields[i], fields[i + 1] ? fields[i + 1] : "");
        if (!cJSON_PrintPreallocated(o, line, (int)sizeof(line) - 1, 0)) {
            cJSON_Delete(o);
            /* Too long for the buffer: the message cut, still one valid object. */
            char cut[1024];
            snprintf(cut, sizeof(cut), "%.1000s", msg);
            lf_log_emit(level, cut, NULL, 0);
            return;
        }
        cJSON_Delete(o);
        len = strlen(line);
    } else {
        int h = lf_log_tag[0]
                    ? snprintf(line, sizeof(line), "%s leadflow[%s] %s: ", when, lf_log_tag, level)
                    : snprintf(line, sizeof(line), "%s leadflow %s: ", when, level);
        if (h < 0) return;
        len = (size_t)h;
        for (size_t i = 0; i + 1 < n && len < sizeof(line) - 2; i += 2) {
            int w = snprintf(line + len, sizeof(line) - len - 1, "[%s %s] ", fields[i],
                             fields[i + 1] ? fields[i + 1] : "");
            if (w > 0) len += (size_t)w;
        }
        if (len < sizeof(line) - 2) {
            int w = snprintf(line + len, sizeof(line) - len - 1, "%s", msg);
            if (w > 0) len += (size_t)w;
        }
        if (len > sizeof(line) - 2) len = sizeof(line) - 2; /* cut: the line still ends */
    }
    line[len++] = '\n';
    fwrite(line, 1, len, stderr);
}

static void lf_log_va(const char *level, const char *const *fields, size_t n, const char *fmt,
                      va_list ap)
{
    if (lf_log_level_index(level) < lf_log_min) return;
    char msg[2048];
    vsnprintf(msg, sizeof(msg), fmt, ap);
    lf_log_emit(level, msg, fields, n);
}

void lf_log_fields(const char *level, const char *const *fields, size_t n, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    lf_log_va(level, fields, n, fmt, ap);
    va_end(ap);
}

void lf_log(const char *level, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    lf_log_va(level, NULL, 0, fmt, ap);
    va_end(ap);
}
