/* The safety scan of MessagePack bytes before msgpack-c unpacks them: see
 * include/leadflow/msgpack_check.h. */
#include <string.h>

#include "leadflow/event.h"
#include "leadflow/msgpack_check.h"

typedef struct {
    const unsigned char *b;
    size_t len, off;
    int max_depth;
    lf_err_t *err;
} scan_t;

static int scan_fail(scan_t *s, int code, const char *what)
{
    lf_err_set(s->err, code, "not valid MessagePack: %s at byte %zu", what, s->off);
    return LF_ERR;
}

static uint64_t be(const unsigned char *p, int n)
{
    uint64_t v = 0;
    for (int i = 0; i < n; i++)
        v = (v << 8) | p[i];
    return v;
}

/* Read an n-byte big-endian length at off; advance past it. */
static int scan_len(scan_t *s, int n, uint64_t *out)
{
    if (s->len - s->off < (size_t)n) return scan_fail(s, LF_BAD_NOT_DECODABLE, "truncated");
    *out = be(s->b + s->off, n);
    s->off += (size_t)n;
    return LF_OK;
}

static int scan_bytes(scan_t *s, uint64_t n, int is_str)
{
    if ((uint64_t)(s->len - s->off) < n)
        return scan_fail(s, LF_BAD_NOT_DECODABLE, "a length beyond the end");
    if (is_str && n && memchr(s->b + s->off, 0, (size_t)n)) {
        lf_err_set(s->err, LF_BAD_WRONG_TYPE,
                   "a string contains a NUL byte (at byte %zu), which is not accepted", s->off);
        return LF_ERR;
    }
    s->off += (size_t)n;
    return LF_OK;
}

static int scan_obj(scan_t *s, int depth);

static int scan_items(scan_t *s, uint64_t n, int depth)
{
    if (depth > s->max_depth) {
        lf_err_set(s->err, LF_BAD_TOO_COMPLEX, "nesting is deeper than %d levels", s->max_depth);
        return LF_ERR;
    }
    /* Each item takes at least one byte. */
    if (n > (uint64_t)(s->len - s->off))
        return scan_fail(s, LF_BAD_NOT_DECODABLE, "a count beyond the end");
    for (uint64_t i = 0; i < n; i++)
        if (scan_obj(s, depth) != LF_OK) return LF_ERR;
    return LF_OK;
}

static int scan_obj(scan_t *s, int depth)
{
    uint64_t n;
    if (s->off >= s->len) return scan_fail(s, LF_BAD_NOT_DECODABLE, "truncated");
    unsigned c = s->b[s->off++];
    if (c <= 0x7f || c >= 0xe0) return LF_OK;                                 /* fixint */
    if (c <= 0x8f) return scan_items(s, (uint64_t)(c & 0x0f) * 2, depth + 1); /* fixmap */
    if (c <= 0x9f) return scan_items(s, c & 0x0f, depth + 1);                 /* fixarray */
    if (c <= 0xbf) return scan_bytes(s, c & 0x1f, 1);                         /* fixstr */
    switch (c) {
    case 0xc0: /* nil */
    case 0xc2: /* false */
    case 0xc3: /* true */
        return LF_OK;
    case 0xc4: /* bin 8/16/32 */
    case 0xc5:
    case 0xc6:
        if (scan_len(s, 1 << (c - 0xc4), &n) != LF_OK) return LF_ERR;
        return scan_bytes(s, n, 0);
    case 0xc7: /* ext 8/16/32: length, type, data */
    case 0xc8:
    case 0xc9:
        if (scan_len(s, 1 << (c - 0xc7), &n) != LF_OK) return LF_ERR;
        return scan_bytes(s, n + 1, 0);
    case 0xca:
        return scan_bytes(s, 4, 0);
    case 0xcb:
        return scan_bytes(s, 8, 0);
    case 0xcc: /* uint 8/16/32/64 */
    case 0xcd:
    case 0xce:
    case 0xcf:
        return scan_bytes(s, 1u << (c - 0xcc), 0);
    case 0xd0: /* int 8/16/32/64 */
    case 0xd1:
    case 0xd2:
    case 0xd3:
        return scan_bytes(s, 1u << (c - 0xd0), 0);
    case 0xd4: /* fixext 1/2/4/8/16: type, data */
    case 0xd5:
    case 0xd6:
    case 0xd7:
    case 0xd8:
        return scan_bytes(s, 1 + (1u << (c - 0xd4)), 0);
    case 0xd9: /* str 8/16/32 */
    case 0xda:
    case 0xdb:
        if (scan_len(s, 1 << (c - 0xd9), &n) != LF_OK) return LF_ERR;
        return scan_bytes(s, n, 1);
    case 0xdc: /* array 16/32 */
    case 0xdd:
        if (scan_len(s, c == 0xdc ? 2 : 4, &n) != LF_OK) return LF_ERR;
        return scan_items(s, n, depth + 1);
    case 0xde: /* map 16/32 */
    case 0xdf:
        if (scan_len(s, c == 0xde ? 2 : 4, &n) != LF_OK) return LF_ERR;
        return scan_items(s, n * 2, depth + 1);
    default: /* 0xc1: never used */
        s->off--;
        return scan_fail(s, LF_BAD_NOT_DECODABLE, "the reserved byte 0xc1");
    }
}

int lf_msgpack_check(const char *buf, size_t len, int max_depth, size_t *used, lf_err_t *err)
{
    scan_t s = {(const unsigned char *)buf, len, 0, max_depth, err};
    if (scan_obj(&s, 0) != LF_OK) return LF_ERR;
    *used = s.off;
    return LF_OK;
}
