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

/* Days since 1970-01-01 of a proleptic Gregorian date (month 1..12, day 1..31), and back. */
int64_t lf_time_days_from_civil(int64_t y, unsigned m, unsigned d);
void lf_time_civil_from_days(int64_t days, int64_t *y, unsigned *m, unsigned *d);

#endif
