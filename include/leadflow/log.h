/* The processor's log lines on stderr, one line per call (lines of several processes do not
 * interleave): text, "<ISO-8601 time> leadflow <level>: <message>" ("leadflow[<tag>]" for
 * the workers of `run --workers`), or with log.format: json one object per line: "ts",
 * "level", "msg", "worker" (a worker's tag), and any fields given. Levels: debug, info,
 * warn, error; below log.level nothing is written. */
#ifndef LEADFLOW_LOG_H
#define LEADFLOW_LOG_H

#include <stddef.h>

void lf_log(const char *level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* With fields: n strings, name and value in turn (a JSON line's extra keys; "[name value]"
 * before the message in text). */
void lf_log_fields(const char *level, const char *const *fields, size_t n, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* The tag of this process's lines (copied; at most 15 characters). */
void lf_log_set_tag(const char *tag);
/* json: one JSON object per line; min_level: 0 debug, 1 info, 2 warn, 3 error (log.level's
 * index, as the settings table stores it). */
void lf_log_configure(int json, int min_level);
/* 0 debug .. 3 error; an unknown name is info. */
int lf_log_level_index(const char *level);

#endif
