/* ISO-8601 / RFC 3339 date-times to and from UTC epoch milliseconds.
 *
 * Accepted: YYYY-MM-DDTHH:MM:SS, then an optional fraction ('.' or ',' and 1 or more digits; only
 * the first three count, the rest are truncated), then an optional offset: Z, +HH:MM, +HHMM or
 * +HH (or '-'); no offset means UTC. Every numeric field must have exactly its width (so
 * "2015-2-02T..." is refused), the date must exist (Feb 29 only in leap years), and nothing may
 * follow (so Go's time.String() "2020-05-09 23:54:49.2 +0000 UTC" and Java's "...Z[GMT]" are
 * refused). A lower-case 't'/'z' is accepted, a space instead of 'T' is not. */
#include <stdio.h>

#include "leadflow/timeparse.h"

static int digits(const char *s, size_t len, size_t pos, int n, int *out)
{
    int v = 0;
    if (pos + (size_t)n > len) return 0;
    for (int i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[pos + (size_t)i];
        if (c < '0' || c > '9') return 0;
        v = v * 10 + (c - '0');
    }
    *out = v;
    return 1;
}

/* H. Hinnant's algorithms (http://howardhinnant.github.io/date_algorithms.html). */
int64_t lf_time_days_from_civil(int64_t y, unsigned m, unsigned d)
{
    y -= m <= 2;
    const int64_t era = (y >= 0 ? y : y - 399) / 400;
    const unsigned yoe = (unsigned)(y - era * 400);
    const unsigned doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
    const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + (int64_t)doe - 719468;
}

void lf_time_civil_from_days(int64_t z, int64_t *y, unsigned *m, unsigned *d)
{
    z += 719468;
    const int64_t era = (z >= 0 ? z : z - 146096) / 146097;
    const unsigned doe = (unsigned)(z - era * 146097);
    const unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    const unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    const unsigned mp = (5 * doy + 2) / 153;
    *d = doy - (153 * mp + 2) / 5 + 1;
    *m = mp < 10 ? mp + 3 : mp - 9;
    *y = (int64_t)yoe + era * 400 + (*m <= 2);
}

static int days_in_month(int y, int m)
{
    static const int dm[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    if (m == 2 && ((y % 4 == 0 && y % 100 != 0) || y % 400 == 0)) return 29;
    return dm[m - 1];
}

int lf_time_parse_iso8601(const char *s, size_t len, int64_t *out_ms)
{
    int y, mo, d, h, mi, sec, ms = 0;
    size_t p = 0;
    if (!s) return LF_ERR;
    if (!digits(s, len, 0, 4, &y) || len < 19 || s[4] != '-' || !digits(s, len, 5, 2, &mo) ||
        s[7] != '-' || !digits(s, len, 8, 2, &d) || (s[10] != 'T' && s[10] != 't') ||
        !digits(s, len, 11, 2, &h) || s[13] != ':' || !digits(s, len, 14, 2, &mi) || s[16] != ':' ||
        !digits(s, len, 17, 2, &sec))
        return LF_ERR;
    if (mo < 1 || mo > 12 || d < 1 || d > days_in_month(y, mo) || h > 23 || mi > 59 || sec > 59)
        return LF_ERR;
    p = 19;
    if (p < len && (s[p] == '.' || s[p] == ',')) {
        size_t start = ++p;
        int scale = 100;
        while (p < len && s[p] >= '0' && s[p] <= '9') {
            if (scale) {
                ms += (s[p] - '0') * scale;
                scale /= 10;
            }
            p++;
        }
        if (p == start) return LF_ERR;
    }
    int off_min = 0;
    if (p < len) {
        char c = s[p];
        if ((c == 'Z' || c == 'z') && p + 1 == len) {
            p++;
        } else if (c == '+' || c == '-') {
            int oh, om = 0;
            if (!digits(s, len, p + 1, 2, &oh)) return LF_ERR;
            p += 3;
            if (p < len && s[p] == ':') {
                if (!digits(s, len, p + 1, 2, &om)) return LF_ERR;
                p += 3;
            } else if (p < len) {
                if (!digits(s, len, p, 2, &om)) return LF_ERR;
                p += 2;
            }
            if (oh > 23 || om > 59 || p != len) return LF_ERR;
            off_min = (oh * 60 + om) * (c == '-' ? -1 : 1);
        } else {
            return LF_ERR;
        }
    }
    int64_t days = lf_time_days_from_civil(y, (unsigned)mo, (unsigned)d);
    int64_t secs = days * 86400 + h * 3600 + mi * 60 + sec - (int64_t)off_min * 60;
    *out_ms = secs * 1000 + ms;
    return LF_OK;
}

void lf_time_format_iso8601(int64_t ms, char *buf, size_t cap)
{
    int64_t secs = ms / 1000, rem = ms % 1000;
    if (rem < 0) {
        rem += 1000;
        secs--;
    }
    int64_t days = secs / 86400, sod = secs % 86400;
    if (sod < 0) {
        sod += 86400;
        days--;
    }
    int64_t y;
    unsigned m, d;
    lf_time_civil_from_days(days, &y, &m, &d);
    if (!buf || cap == 0) return;
    snprintf(buf, cap, "%04lld-%02u-%02uT%02d:%02d:%02d.%03dZ", (long long)y, m, d,
             (int)(sod / 3600), (int)(sod / 60 % 60), (int)(sod % 60), (int)rem);
}
