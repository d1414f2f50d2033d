/* Small shared helpers: errors, string views, hashing, number formatting. */
#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "leadflow/common.h"

int lf_fmt(char *buf, size_t cap, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(buf, cap, fmt, ap);
    va_end(ap);
    return n;
}

void lf_err_set(lf_err_t *err, int code, const char *fmt, ...)
{
    va_list ap;
    if (!err) return;
    err->code = code;
    va_start(ap, fmt);
    vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
    va_end(ap);
}

int lf_str_eq_nocase(lf_str_t a, const char *s)
{
    size_t n = strlen(s);
    return a.len == n && (n == 0 || strncasecmp(a.ptr, s, n) == 0);
}

lf_str_t lf_str_from(const char *s)
{
    lf_str_t v = {s, s ? (uint32_t)strlen(s) : 0};
    return v;
}

uint64_t lf_hash64(const void *data, size_t len)
{
    const unsigned char *p = data;
    uint64_t h = 14695981039346656037ULL;
    for (size_t i = 0; i < len; i++) {
        h ^= p[i];
        h *= 1099511628211ULL;
    }
    return h;
}

size_t lf_fmt_i64(char *buf, long long v)
{
    /* Hot: every lead write formats a dozen integers; snprintf costs ~10x this. */
    char tmp[24];
    size_t n = 0, k = 0;
    unsigned long long u = v < 0 ? 0ULL - (unsigned long long)v : (unsigned long long)v;
    do {
        tmp[n++] = (char)('0' + u % 10);
        u /= 10;
    } while (u);
    if (v < 0) buf[k++] = '-';
    while (n)
        buf[k++] = tmp[--n];
    buf[k] = '\0';
    return k;
}

/* What %.<p>g prints for the significant digits d[0..p) (d[0] != '0') and decimal exponent x
 * (the value is d[0].d[1]d[2].. x 10^x): fixed notation when -4 <= x < p, else scientific;
 * trailing zeros dropped. out holds at least p + 9 bytes. */
static int lf_render_g(char *out, int neg, const char *d, int p, int x)
{
    int prec = p, n = 0;
    while (p > 1 && d[p - 1] == '0')
        p--;
    if (neg) out[n++] = '-';
    if (x < -4 || x >= prec) {
        out[n++] = d[0];
        if (p > 1) {
            out[n++] = '.';
            memcpy(out + n, d + 1, (size_t)p - 1);
            n += p - 1;
        }
        out[n++] = 'e';
        out[n++] = x < 0 ? '-' : '+';
        int ax = x < 0 ? -x : x;
        if (ax >= 100) out[n++] = (char)('0' + ax / 100);
        out[n++] = (char)('0' + ax / 10 % 10);
        out[n++] = (char)('0' + ax % 10);
    } else if (x >= 0) {
        for (int i = 0; i <= x; i++)
            out[n++] = i < p ? d[i] : '0';
        if (p > x + 1) {
            out[n++] = '.';
            memcpy(out + n, d + x + 1, (size_t)(p - x - 1));
            n += p - x - 1;
        }
    } else {
        out[n++] = '0';
        out[n++] = '.';
        for (int i = 0; i < -x - 1; i++)
            out[n++] = '0';
        memcpy(out + n, d, (size_t)p);
        n += p;
    }
    out[n] = '\0';
    return n;
}

int lf_fmt_double(char *buf, size_t cap, double v)
{
    /* Integral values (fit points, most scores) print as integers, exactly as %.15g would. */
    if (cap >= 24 && v > -1e15 && v < 1e15 && v == (double)(long long)v && (v != 0 || !signbit(v)))
        return (int)lf_fmt_i64(buf, (long long)v);
    /* The shortest of %.15g and %.17g that reads back as v. Every lead write formats a few
     * decayed scores, and glibc's printf of a double costs ~0.5 us: one printf of the 17
     * significant digits (%.16e: what %.17g prints), the 15-digit form rounded from them,
     * and strtod only when it can read back as v: half an ulp is at most 11.1 units of the
     * 17th digit (not so for subnormals), so a 15-digit form further than that from the 17
     * digits cannot. */
    char e[40];
    int n = isnormal(v) && cap >= 32 ? snprintf(e, sizeof(e), "%.16e", v) : -1;
    if (n <= 0 || (size_t)n >= sizeof(e)) {
        n = snprintf(buf, cap, "%.15g", v);
        if (n > 0 && (size_t)n < cap && strtod(buf, NULL) == v) return n;
        return snprintf(buf, cap, "%.17g", v);
    }
    int neg = e[0] == '-';
    const char *s = e + neg; /* d.dddddddddddddddde[+-]x */
    char d17[17], d15[16];
    d17[0] = s[0];
    memcpy(d17 + 1, s + 2, 16);
    int x = atoi(s + 19);
    int tail = (d17[15] - '0') * 10 + (d17[16] - '0');
    if (tail <= 12 || tail >= 88) {
        memcpy(d15, d17, 15);
        int x15 = x;
        if (tail >= 50) { /* round up, carrying */
            int i = 14;
            while (i >= 0 && d15[i] == '9')
                d15[i--] = '0';
            if (i >= 0) {
                d15[i]++;
            } else {
                d15[0] = '1';
                x15++;
            }
        }
        int m = lf_render_g(buf, neg, d15, 15, x15);
        if (strtod(buf, NULL) == v) return m;
    }
    return lf_render_g(buf, neg, d17, 17, x);
}

const char *lf_opt_value(int argc, char **argv, int *i, const char *name, int *missing)
{
    size_t n = strlen(name);
    const char *a = argv[*i];
    if (strncmp(a, name, n) != 0) return NULL;
    if (a[n] == '=') return a + n + 1;
    if (a[n] != '\0') return NULL;
    if (*i + 1 >= argc) {
        *missing = 1;
        return NULL;
    }
    return argv[++*i];
}

/*---- Strict numbers ----------------------------------------------------------------------*/

int lf_parse_i64(const char *s, int64_t lo, int64_t hi, int64_t *out)
{
    const char *d = s && (*s == '-' || *s == '+') ? s + 1 : s;
    if (!d || !isdigit((unsigned char)*d)) return LF_ERR;
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno || *end || v < lo || v > hi) return LF_ERR;
    *out = v;
    return LF_OK;
}

int lf_parse_u64(const char *s, uint64_t *out)
{
    if (!s || !isdigit((unsigned char)*s)) return LF_ERR; /* strtoull takes "-1" as 2^64-1 */
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || *end) return LF_ERR;
    *out = v;
    return LF_OK;
}

int lf_parse_double(const char *s, double *out)
{
    if (!s || !*s || isspace((unsigned char)*s)) return LF_ERR;
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    /* ERANGE on underflow still gives a usable (tiny or zero) value; overflow is infinite. */
    if (end == s || *end || !isfinite(v)) return LF_ERR;
    *out = v;
    return LF_OK;
}

/*---- Clocks ------------------------------------------------------------------------------*/

int64_t lf_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t lf_now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

int64_t lf_wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void lf_hex_encode(const unsigned char *in, size_t n, char *out)
{
    static const char digits[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = digits[in[i] >> 4];
        out[2 * i + 1] = digits[in[i] & 15];
    }
    out[2 * n] = '\0';
}
