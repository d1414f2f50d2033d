/* URL helpers for campaign attribution: percent-decoding, query parameters, the path. */
#include <string.h>

#include "leadflow/url.h"

static int hexval(unsigned char c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

/* A '%' not followed by two hex digits is kept as it is. Stops when out is full. */
size_t lf_url_decode(const char *in, size_t len, char *out, size_t cap, int plus_as_space)
{
    size_t o = 0;
    for (size_t i = 0; i < len && o < cap; i++) {
        unsigned char c = (unsigned char)in[i];
        if (c == '%' && i + 2 < len) {
            int hi = hexval((unsigned char)in[i + 1]), lo = hexval((unsigned char)in[i + 2]);
            if (hi >= 0 && lo >= 0) {
                out[o++] = (char)(hi * 16 + lo);
                i += 2;
                continue;
            }
        }
        out[o++] = (c == '+' && plus_as_space) ? ' ' : (char)c;
    }
    return o;
}

static int name_eq_nocase(const char *p, size_t n, const char *name)
{
    size_t i = 0;
    for (; i < n; i++) {
        unsigned char a = (unsigned char)p[i], b = (unsigned char)name[i];
        if (b == 0) return 0;
        if (a >= 'A' && a <= 'Z') a = (unsigned char)(a + 32);
        if (b >= 'A' && b <= 'Z') b = (unsigned char)(b + 32);
        if (a != b) return 0;
    }
    return name[i] == 0;
}

/* The query is what follows the first '?' that comes before any '#'. Parameters are split on
 * '&'; the name is compared case-insensitively (UTM_Source = utm_source); a name written
 * "amp;utm_source" (an HTML-escaped "&amp;" left in the URL) counts too. The first occurrence
 * wins. A parameter without '=' has an empty value. One pass finds several names: vals[k]
 * gets the first occurrence of names[k] (ptr NULL when absent); returns how many were found.
 * (The campaign fields ask for nine names per event: one pass, not nine.) */
size_t lf_url_query_params(lf_str_t url, const char *const *names, size_t nnames, lf_str_t *vals)
{
    for (size_t k = 0; k < nnames; k++)
        vals[k] = LF_STR_NULL;
    const char *s = url.ptr;
    size_t n = url.len, i = 0, found = 0;
    if (!s) return 0;
    while (i < n && s[i] != '?' && s[i] != '#')
        i++;
    if (i >= n || s[i] != '?') return 0;
    i++;
    while (i < n && s[i] != '#' && found < nnames) {
        size_t start = i, eq = 0, has_eq = 0;
        while (i < n && s[i] != '&' && s[i] != '#') {
            if (s[i] == '=' && !has_eq) {
                has_eq = 1;
                eq = i;
            }
            i++;
        }
        size_t name_end = has_eq ? eq : i;
        const char *np = s + start;
        size_t nl = name_end - start;
        if (nl > 4 && memcmp(np, "amp;", 4) == 0) {
            np += 4;
            nl -= 4;
        }
        for (size_t k = 0; k < nnames; k++) {
            if (vals[k].ptr || !name_eq_nocase(np, nl, names[k])) continue;
            vals[k].ptr = has_eq ? s + eq + 1 : s + i;
            vals[k].len = has_eq ? (uint32_t)(i - eq - 1) : 0;
            found++;
            break;
        }
        if (i < n && s[i] == '&') i++;
    }
    return found;
}

int lf_url_query_param(lf_str_t url, const char *name, lf_str_t *val)
{
    return lf_url_query_params(url, &name, 1, val) == 1;
}

/* "https://x.com/pricing?a=1" -> "/pricing"; "https://x.com" -> "/"; "//x.com/a" -> "/a";
 * a relative "index.html" or "/a/b?x" keeps what comes before '?' / '#'. */
lf_str_t lf_url_path(lf_str_t url)
{
    const char *s = url.ptr;
    size_t n = url.len, end = 0, host = 0;
    lf_str_t r = LF_STR_NULL;
    if (!s || n == 0) return r;
    while (end < n && s[end] != '?' && s[end] != '#')
        end++;
    /* A scheme: letters, digits, '+', '-', '.' then "://". */
    size_t i = 0;
    while (i < end && ((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= 'A' && s[i] <= 'Z') ||
                       (s[i] >= '0' && s[i] <= '9') || s[i] == '+' || s[i] == '-' || s[i] == '.'))
        i++;
    if (i > 0 && i + 3 <= end && memcmp(s + i, "://", 3) == 0) {
        host = i + 3;
    } else if (end >= 2 && s[0] == '/' && s[1] == '/') {
        host = 2;
    } else {
        r.ptr = s;
        r.len = (uint32_t)end;
        return r;
    }
    size_t p = host;
    while (p < end && s[p] != '/')
        p++;
    if (p >= end) return LF_STR_LIT("/");
    r.ptr = s + p;
    r.len = (uint32_t)(end - p);
    return r;
}
