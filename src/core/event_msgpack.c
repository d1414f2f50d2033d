/* MessagePack front end: msgpack-c (msgpack_unpack_next / msgpack_object) behind the generic
 * tree of event_int.h.
 *
 * The bytes are walked first (lf_msgpack_check, msgpack_check.h: no declared length beyond the
 * end, nesting at most LF_EVENT_MAX_DEPTH, no 0xc1, no NUL in a string: \u0000 is refused in
 * JSON too, see event_json.c); the value must be exactly one object (trailing bytes are
 * LF_BAD_NOT_DECODABLE). Invalid UTF-8 is checked later, on the id fields only (event.c).
 * Only then is msgpack_unpack_next called. Strings must be msgpack str; bin and ext are not
 * strings (an id sent as bin is LF_BAD_WRONG_TYPE). */
#include <string.h>

#include <msgpack.h>

#include "event_int.h"
#include "leadflow/msgpack_check.h"

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

int lf_event_decode_msgpack(const char *buf, size_t len, const lf_event_limits_t *lim,
                            lf_arena_t *arena, lf_event_t *ev, lf_err_t *err)
{
    size_t used = 0;
    if (lf_msgpack_check(buf, len, LF_EVENT_MAX_DEPTH, &used, err) != LF_OK) return LF_ERR;
    if (used != len) {
        unsigned c = (unsigned char)buf[0];
        int map = (c >= 0x80 && c <= 0x8f) || c == 0xde || c == 0xdf;
        lf_err_set(err, LF_BAD_NOT_DECODABLE,
                   "not valid MessagePack: %zu bytes after the first object%s", len - used,
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
