/* The processor's log lines on stderr: "<ISO-8601 time> leadflow <level>: <message>". */
#ifndef LEADFLOW_LOG_H
#define LEADFLOW_LOG_H

void lf_log(const char *level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif
