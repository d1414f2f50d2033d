/* MessagePack front end: msgpack-c (msgpack_unpack_next / msgpack_object) behind the generic
 * tree of event_int.h.
 *
 * msgpack-c allocates the element array of a container from its declared count before reading
 * the elements, and allows 32 levels of nesting. So a non-allocating pre-scan walks the bytes
 * first and checks, whatever they are:
 *  - every declared length or count fits in the bytes that remain (a header claiming 4 G
 *    elements in a 20-byte value is LF_BAD_NOT_DECODABLE, never a huge allocation);
 *  - nesting is at most LF_EVENT_MAX_DEPTH (else LF_BAD_TOO_COMPLEX);
 *  - the value is exactly one object: trailing bytes are LF_BAD_NOT_DECODABLE;
 *  - the reserved byte 0xc1 does not occur (LF_BAD_NOT_DECODABLE);
 *  - no string (key or value) contains a NUL byte: LF_BAD_WRONG_TYPE, as \u0000 in JSON (see
 *    event_json.c). Invalid UTF-8 is checked later, on the id fields only (event.c).
 * Only then is msgpack_unpack_next called. Strings must be msgpack str; bin and ext are not
 * strings (an id sent as bin is LF_BAD_WRONG_TYPE). */
#include <string.h>

#include <msgpack.h>

#include "event_int.h"

static void mp_get(const void *node, lf_val_t *v)
{
    const msgpack_object *o = node;
    memset(v, 0, sizeof(*v));
    switch (o->type) {
    case MSGPACK_OBJECT_NIL:
        v->t = LF_VT_NULL;
        break;
    case MSGPACK_OBJECT_BOOLEAN:
        v->t = LF_VT_BOOL;
        v->b = o->via.boolean ? 1 : 0;
        break;
    case MSGPACK_OBJECT_POSITIVE_INTEGER:
        v->t = LF_VT_UINT;
        v->u = o->via.u64;
        break;
    case MSGPACK_OBJECT_NEGATIVE_INTEGER:
        v->t = LF_VT_INT;
        v->i = o->via.i64;
        break;
    case MSGPACK_OBJECT_FLOAT32:
    case MSGPACK_OBJECT_FLOAT64:
        v->t = LF_VT_FLOAT;
        v->d = o->via.f64;
        break;
    case MSGPACK_OBJECT_STR:
        v->t = LF_VT_STR;
        v->s.ptr = o->via.str.size ? o->via.str.ptr : "";
        v->s.len = o->via.str.size;
        break;
    case MSGPACK_OBJECT_ARRAY:
        v->t = LF_VT_ARRAY;
        break;
    case MSGPACK_OBJECT_MAP:
        v->t = LF_VT_MAP;
        break;
    default:
        v->t = LF_VT_OTHER;
        break;
    }
}

static int mp_next(const void *map, uintptr_t *it, lf_str_t *key, const void **child)
{
    const msgpack_object *m = map;
    while (*it < m->via.map.size) {
        const msgpack_object_kv *kv = &m->via.map.ptr[*it];
        (*it)++;
        if (kv->key.type != MSGPACK_OBJECT_STR) continue;
        key->ptr = kv->key.via.str.size ? kv->key.via.str.ptr : "";
        key->len = kv->key.via.str.size;
        *child = &kv->val;
        return 1;
    }
    return 0;
}

static const lf_tree_ops_t mp_ops = {mp_get, mp_next};

typedef struct {
    const unsigned char *b;
    size_t len, off;
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
    if (depth > LF_EVENT_MAX_DEPTH) {
        lf_err_set(s->err, LF_BAD_TOO_COMPLEX, "nesting is deeper than %d levels",
                   LF_EVENT_MAX_DEPTH);
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

int lf_event_decode_msgpack(const char *buf, size_t len, const lf_event_limits_t *lim,
                            lf_arena_t *arena, lf_event_t *ev, lf_err_t *err)
{
    scan_t s = {(const unsigned char *)buf, len, 0, err};
    if (scan_obj(&s, 0) != LF_OK) return LF_ERR;
    if (s.off != len) {
        unsigned c = (unsigned char)buf[0];
        int map = (c >= 0x80 && c <= 0x8f) || c == 0xde || c == 0xdf;
        lf_err_set(err, LF_BAD_NOT_DECODABLE,
                   "not valid MessagePack: %zu bytes after the first object%s", len - s.off,
                   map ? "" : ", which is not a map (an event is one map)");
        return LF_ERR;
    }
    msgpack_unpacked up;
    size_t off = 0;
    msgpack_unpacked_init(&up);
    msgpack_unpack_return r = msgpack_unpack_next(&up, buf, len, &off);
    int rc;
    if (r != MSGPACK_UNPACK_SUCCESS || off != len) {
        lf_err_set(err, LF_BAD_NOT_DECODABLE, "not valid MessagePack (unpack error %d)", (int)r);
        rc = LF_ERR;
    } else {
        rc = lf_event_extract(&mp_ops, &up.data, lim, arena, ev, err);
    }
    msgpack_unpacked_destroy(&up);
    return rc;
}
