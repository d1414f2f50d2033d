/* UTF-8 checking and the escaping of event-supplied strings for terminals and logs
 * (lf_str_escape, declared in leadflow/event.h). */
#include <stdio.h>
#include <string.h>

#include "event_int.h"

/* The length of the UTF-8 sequence at p[0..n) (n >= 1) and its code point in *cp; 0 when it
 * is not valid UTF-8 (an overlong form, a surrogate, above U+10FFFF, cut short). */
static size_t utf8_char(const unsigned char *p, size_t n, unsigned *cp)
{
    unsigned c = p[0];
    size_t need;
    unsigned min;
    if (c < 0x80) {
        *cp = c;
        return 1;
    }
    if (c >= 0xc2 && c <= 0xdf) {
        need = 1, min = 0x80, *cp = c & 0x1f;
    } else if (c >= 0xe0 && c <= 0xef) {
        need = 2, min = 0x800, *cp = c & 0x0f;
    } else if (c >= 0xf0 && c <= 0xf4) {
        need = 3, min = 0x10000, *cp = c & 0x07;
    } else {
        return 0;
    }
    if (n - 1 < need) return 0;
    for (size_t k = 1; k <= need; k++) {
        if ((p[k] & 0xc0) != 0x80) return 0;
        *cp = (*cp << 6) | (p[k] & 0x3f);
    }
    if (*cp < min || *cp > 0x10ffff || (*cp >= 0xd800 && *cp <= 0xdfff)) return 0;
    return need + 1;
}

/* Valid UTF-8 and no NUL. */
int lf_utf8_valid(lf_str_t s)
{
    const unsigned char *p = (const unsigned char *)s.ptr;
    size_t n = s.len, i = 0;
    while (i < n) {
        unsigned cp;
        size_t k = utf8_char(p + i, n - i, &cp);
        if (k == 0 || cp == 0) return 0;
        i += k;
    }
    return 1;
}

/* The printable form of the character at p[0..n) (n >= 1) into esc; its length in bytes of
 * input into *k. Returns the length of esc. */
static size_t escape_one(const unsigned char *p, size_t n, size_t *k, char esc[16])
{
    unsigned cp;
    *k = utf8_char(p, n, &cp);
    if (*k == 0) { /* not UTF-8: the byte itself */
        *k = 1;
        return (size_t)snprintf(esc, 16, "\\x%02x", p[0]);
    }
    if (cp == '\n' || cp == '\r' || cp == '\t') {
        esc[0] = '\\';
        esc[1] = cp == '\n' ? 'n' : cp == '\r' ? 'r' : 't';
        return 2;
    }
    if (cp < 0x20 || cp == 0x7f) return (size_t)snprintf(esc, 16, "\\x%02x", cp);
    /* C1 controls, and the bidi overrides that make a terminal draw text reordered */
    if ((cp >= 0x80 && cp <= 0x9f) || (cp >= 0x202a && cp <= 0x202e) ||
        (cp >= 0x2066 && cp <= 0x2069))
        return (size_t)snprintf(esc, 16, "\\u%04x", cp);
    memcpy(esc, p, *k);
    return *k;
}

const char *lf_str_escape(lf_str_t s, char *buf, size_t cap)
{
    const unsigned char *p = (const unsigned char *)s.ptr;
    size_t i, k, o = 0, total = 0;
    char esc[16];
    if (!buf || cap == 0) return "";
    for (i = 0; i < s.len; i += k)
        total += escape_one(p + i, s.len - i, &k, esc);
    /* Too long: whole characters up to what leaves room for "...". */
    size_t room = total < cap ? total : cap > 4 ? cap - 4 : 0;
    for (i = 0; i < s.len; i += k) {
        size_t el = escape_one(p + i, s.len - i, &k, esc);
        if (o + el > room) break;
        memcpy(buf + o, esc, el);
        o += el;
    }
    if (total >= cap) {
        size_t dots = cap - 1 - o < 3 ? cap - 1 - o : 3;
        memcpy(buf + o, "...", dots);
        o += dots;
    }
    buf[o] = '\0';
    return buf;
}

/* A name-like field (an id, the type, the event): 1 when present (copied into the arena), 0
 * when absent (missing, null or empty), LF_ERR with *err set when it has the wrong type, is
 * not valid UTF-8, or is longer than max_len (0: no limit). */
