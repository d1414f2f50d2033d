/* The processor's log lines on stderr: "<ISO-8601 time> leadflow <level>: <message>", or
 * "<time> leadflow[<tag>] <level>: ..." once a tag is set (the workers of `run --workers`).
 * Each line is written with one call, so lines of several processes do not interleave. */
#ifndef LEADFLOW_LOG_H
#define LEADFLOW_LOG_H

void lf_log(const char *level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* The tag of this process's lines (copied; at most 15 characters). */
void lf_log_set_tag(const char *tag);

#endif
