/* Durations as leadflow.yaml and the CLI write them: "14d", "90m", "1h30m", "500ms", a bare
 * number of seconds; and back, in the largest unit that divides them. */
#include <ctype.h>
#include <inttypes.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "config_int.h"

/* "14d", "36h", "90m", "30s", "500ms", "1w", compounds like "1h30m", fractions ("1.5h"), a
 * leading '-' (so callers can say "must be positive" rather than "not a duration"), or a bare
 * number of seconds. */
int lf_duration_parse(const char *s, int64_t *out_ms)
{
    static const struct {
        const char *unit;
        double ms;
    } units[] = {{"ms", 1}, {"s", 1e3}, {"m", 6e4}, {"h", 3.6e6}, {"d", 8.64e7}, {"w", 6.048e8}};
    if (!s) return LF_ERR;
    while (isspace((unsigned char)*s))
        s++;
    int neg = 0;
    if (*s == '-' || *s == '+') neg = *s++ == '-';
    double total = 0;
    int parts = 0;
    for (;;) {
        while (isspace((unsigned char)*s))
            s++;
        if (*s == '\0') break;
        if (!isdigit((unsigned char)*s) && *s != '.') return LF_ERR;
        const char *num = s;
        while (isdigit((unsigned char)*s))
            s++;
        if (*s == '.') {
            s++;
            while (isdigit((unsigned char)*s))
                s++;
        }
        if (s - num == 1 && *num == '.') return LF_ERR;
        double v = strtod(num, NULL);
        while (isspace((unsigned char)*s))
            s++;
        size_t k, ulen = 0;
        for (k = 0; k < sizeof(units) / sizeof(units[0]); k++) {
            ulen = strlen(units[k].unit);
            if (strncmp(s, units[k].unit, ulen) == 0 && !isalpha((unsigned char)s[ulen])) break;
        }
        if (k == sizeof(units) / sizeof(units[0])) {
            /* A bare number of seconds, only on its own. */
            if (parts > 0 || *s != '\0') return LF_ERR;
            total = v * 1e3;
            parts++;
            break;
        }
        s += ulen;
        total += v * units[k].ms;
        parts++;
    }
    if (parts == 0 || !(total < 9.2e18)) return LF_ERR;
    int64_t ms = (int64_t)llround(total);
    *out_ms = neg ? -ms : ms;
    return LF_OK;
}

/* The largest unit that divides ms exactly: 1209600000 -> "14d". */
void lf_duration_format(int64_t ms, char *buf, size_t cap)
{
    static const struct {
        const char *unit;
        int64_t ms;
    } units[] = {{"d", 86400000}, {"h", 3600000}, {"m", 60000}, {"s", 1000}};
    for (size_t k = 0; k < sizeof(units) / sizeof(units[0]); k++) {
        if (ms != 0 && ms % units[k].ms == 0) {
            lf_fmt(buf, cap, "%" PRId64 "%s", ms / units[k].ms, units[k].unit);
            return;
        }
    }
    lf_fmt(buf, cap, "%" PRId64 "ms", ms);
}
