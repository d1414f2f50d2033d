/* Time stamps as the contract writes them (ISO-8601), to and from epoch milliseconds
 * (src/core/timeparse.c). */
#ifndef LEADFLOW_TIMEPARSE_H
#define LEADFLOW_TIMEPARSE_H

#include <stddef.h>
#include <stdint.h>

#include "leadflow/common.h"

/* ISO-8601 date-time ("2015-07-10T23:00:00Z", fractions of any length, "+02:00", "+0200",
 * "-07:00"; a missing offset means UTC) to epoch ms. LF_ERR when unparsable. */
int lf_time_parse_iso8601(const char *s, size_t len, int64_t *out_ms);
/* Epoch ms to "2015-07-10T23:00:00.000Z" (buf >= 25 bytes). */
void lf_time_format_iso8601(int64_t ms, char *buf, size_t cap);

#endif
