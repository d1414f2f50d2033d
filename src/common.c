/* Small shared helpers: errors, string views, hashing, number formatting. */
#include <stdarg.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "leadflow/common.h"

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

int lf_fmt_double(char *buf, size_t cap, double v)
{
    /* Integral values (fit points, most scores) print as integers, exactly as %.15g would. */
    if (cap >= 24 && v > -1e15 && v < 1e15 && v == (double)(long long)v && (v != 0 || !signbit(v)))
        return (int)lf_fmt_i64(buf, (long long)v);
    int n = snprintf(buf, cap, "%.15g", v);
    if (n > 0 && (size_t)n < cap && strtod(buf, NULL) == v) return n;
    return snprintf(buf, cap, "%.17g", v);
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
