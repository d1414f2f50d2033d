/* Private to the event decoder (src/core/event*.c): the small generic tree both front ends expose,
 * so that the Segment field logic (lf_event_extract) is written once.
 *
 * A front end hands out opaque node pointers (a cJSON * or a msgpack_object *) and two
 * functions: read one node, and step through the entries of a map. */
#ifndef LEADFLOW_EVENT_PRIV_H
#define LEADFLOW_EVENT_PRIV_H

#include "leadflow/event.h"

typedef enum {
    LF_VT_NULL = 0,
    LF_VT_BOOL,
    LF_VT_INT,   /* i */
    LF_VT_UINT,  /* u */
    LF_VT_FLOAT, /* d (every JSON number) */
    LF_VT_STR,   /* s */
    LF_VT_MAP,
    LF_VT_ARRAY,
    LF_VT_OTHER /* msgpack bin / ext */
} lf_vt_t;

typedef struct {
    lf_vt_t t;
    int b;
    int64_t i;
    uint64_t u;
    double d;
    lf_str_t s;
} lf_val_t;

typedef struct {
    /* The type and, for a scalar, the value of a node. */
    void (*get)(const void *node, lf_val_t *v);
    /* Next entry of a map whose key is a string. *it is 0 before the first call. Returns 0 at
     * the end. */
    int (*next)(const void *map, uintptr_t *it, lf_str_t *key, const void **child);
} lf_tree_ops_t;

/* Whether s is valid UTF-8 (no overlong form, surrogate, or code point above U+10FFFF). */
int lf_utf8_valid(lf_str_t s);

/* The Segment field logic, shared by both formats. */
int lf_event_extract(const lf_tree_ops_t *ops, const void *root, const lf_event_limits_t *lim,
                     lf_arena_t *arena, lf_event_t *ev, lf_err_t *err);

/* Front ends: parse, then call lf_event_extract. len is already within the size limit. */
int lf_event_decode_json(const char *buf, size_t len, const lf_event_limits_t *lim,
                         lf_arena_t *arena, lf_event_t *ev, lf_err_t *err);
int lf_event_decode_msgpack(const char *buf, size_t len, const lf_event_limits_t *lim,
                            lf_arena_t *arena, lf_event_t *ev, lf_err_t *err);

#endif
