/* The packed lead record: see include/leadflow/lead_pack.h and docs/redis-layout.md.
 *
 * Elements of the array, in order (times in ms; "from t" = the lead's t minus the time, so
 * that they stay small):
 *   0 format   1 write version   2 flags (1 visitor, 2 requalify)   3 rules version (str; ""
 *   for a visitor)   4 first_seen from t   5 last_seen from t   6 stage_at from t
 *   7 events   8 counters [kind, n, ...] (kind: lf_kind_t, docs/contract.md "Events in"'s order)
 *   9 first touch [source, medium, campaign, at from t] or nil
 *   10 last touch, the same, or nil when it equals the first touch
 *   11 traits [name, value, ...]   12 caps [rule, [window, granted, ...], ...]
 *   13 remembered messageIds: bin, newest first, each the seconds back from the entry before
 *      it (from t's second for the first) as a LEB128 varint, then the 48-bit hash in 6 bytes
 *   14 applied offsets [partition, offset, ...]
 *   15 history [seq, from, to, reason, at from t, score x 100, ...] oldest first
 *   16 expiry (unix s) of a visitor's record as last written, 0 for a lead
 *   17..21 (self-contained records only) stage, seq, fit, eng, t
 *   17 (a lead's record, appended, only while it is set) requalify time from t
 * Numbers that are whole are packed as integers (MessagePack's shortest form), others as
 * doubles. */
#include <math.h>
#include <string.h>

#include <msgpack.h>

#include "leadflow/lead_pack.h"
#include "leadflow/msgpack_check.h"

#define LF_PACK_ELEMS 17
#define LF_PACK_ELEMS_SELF 22
#define LF_PACK_DEPTH 3
#define LF_VARINT_MAX 10

/*---- Encoding --------------------------------------------------------------------------*/

static void lf_pack_num(msgpack_packer *pk, double v)
{
    if (v == floor(v) && fabs(v) < 9.0e15)
        msgpack_pack_int64(pk, (int64_t)v);
    else
        msgpack_pack_double(pk, v);
}

static void lf_pack_cstr(msgpack_packer *pk, const char *s)
{
    size_t n = strlen(s);
    msgpack_pack_str(pk, n);
    msgpack_pack_str_body(pk, s, n);
}

static int lf_touch_eq(const lf_touch_t *a, const lf_touch_t *b)
{
    return a->at_ms == b->at_ms && !strcmp(a->source, b->source) && !strcmp(a->medium, b->medium) &&
           !strcmp(a->campaign, b->campaign);
}

static void lf_pack_touch(msgpack_packer *pk, const lf_touch_t *t, int64_t t_ms)
{
    if (!t->at_ms) {
        msgpack_pack_nil(pk);
        return;
    }
    msgpack_pack_array(pk, 4);
    lf_pack_cstr(pk, t->source);
    lf_pack_cstr(pk, t->medium);
    lf_pack_cstr(pk, t->campaign);
    msgpack_pack_int64(pk, t_ms - t->at_ms);
}

static size_t lf_varint(unsigned char *p, uint64_t v)
{
    size_t n = 0;
    do {
        p[n] = (unsigned char)(v & 0x7f);
        v >>= 7;
        if (v) p[n] |= 0x80;
        n++;
    } while (v);
    return n;
}

static void lf_pack_dedup(msgpack_packer *pk, const lf_lead_t *l)
{
    unsigned char buf[LF_DEDUP_MAX * (LF_VARINT_MAX + 6)];
    size_t n = 0;
    int64_t prev = lf_dedup_sec(l->t_ms);
    for (int i = 0; i < l->ndedup; i++) {
        int64_t sec = l->dedup[i].sec;
        n += lf_varint(buf + n, sec < prev ? (uint64_t)(prev - sec) : 0);
        if (sec < prev) prev = sec;
        uint64_t h = l->dedup[i].hash & LF_DEDUP_MASK;
        for (int k = 5; k >= 0; k--)
            buf[n++] = (unsigned char)(h >> (8 * k));
    }
    msgpack_pack_bin(pk, n);
    msgpack_pack_bin_body(pk, buf, n);
}

/* Capped rules' windows, ascending, so equal states pack alike whatever the arrival order. */
static const lf_cap_use_t *lf_cap_of(const lf_lead_t *l, size_t rule)
{
    const lf_cap_use_t *c = NULL;
    for (int i = 0; i < l->ncaps; i++)
        if (l->caps[i].rule == rule && l->caps[i].n > 0) c = &l->caps[i];
    return c;
}

/* One entry per rule (the last, as lf_lead_cap_grant books it), counted as written: a lead
 * read with two entries for a rule must still pack into a well-formed array. */
static void lf_pack_caps(msgpack_packer *pk, const lf_lead_t *l, const lf_model_t *m)
{
    int n = 0;
    for (size_t r = 0; r < m->neng; r++)
        n += lf_cap_of(l, r) != NULL;
    msgpack_pack_array(pk, (size_t)n * 2);
    for (size_t r = 0; r < m->neng; r++) {
        const lf_cap_use_t *c = lf_cap_of(l, r);
        if (!c) continue;
        int order[LF_CAP_WINDOWS];
        for (int w = 0; w < c->n; w++)
            order[w] = w;
        for (int x = 1; x < c->n; x++)
            for (int y = x; y > 0 && c->window[order[y]] < c->window[order[y - 1]]; y--) {
                int t = order[y];
                order[y] = order[y - 1];
                order[y - 1] = t;
            }
        lf_pack_cstr(pk, m->eng[r].name);
        msgpack_pack_array(pk, (size_t)c->n * 2);
        for (int w = 0; w < c->n; w++) {
            msgpack_pack_int64(pk, c->window[order[w]]);
            lf_pack_num(pk, c->granted[order[w]]);
        }
    }
}

static void lf_pack_lists(msgpack_packer *pk, const lf_lead_t *l, const lf_model_t *m)
{
    int nc = 0;
    for (int k = 0; k < LF_KIND__COUNT; k++)
        nc += l->counters[k] != 0;
    msgpack_pack_array(pk, (size_t)nc * 2);
    for (int k = 0; k < LF_KIND__COUNT; k++)
        if (l->counters[k]) {
            msgpack_pack_int(pk, k);
            msgpack_pack_uint32(pk, l->counters[k]);
        }
    lf_pack_touch(pk, &l->first_touch, l->t_ms);
    if (lf_touch_eq(&l->first_touch, &l->last_touch))
        msgpack_pack_nil(pk);
    else
        lf_pack_touch(pk, &l->last_touch, l->t_ms);
    int nt = 0;
    for (int i = 0; i < l->ntraits; i++)
        nt += l->traits[i].idx < m->ntracked_traits;
    msgpack_pack_array(pk, (size_t)nt * 2);
    for (int i = 0; i < l->ntraits; i++) {
        if (l->traits[i].idx >= m->ntracked_traits) continue;
        lf_pack_cstr(pk, m->tracked_traits[l->traits[i].idx]);
        lf_pack_cstr(pk, l->traits[i].val);
    }
    lf_pack_caps(pk, l, m);
    lf_pack_dedup(pk, l);
    msgpack_pack_array(pk, (size_t)l->nsrc * 2);
    for (int i = 0; i < l->nsrc; i++) {
        msgpack_pack_int32(pk, l->src[i].partition);
        msgpack_pack_int64(pk, l->src[i].offset);
    }
    msgpack_pack_array(pk, (size_t)l->nhistory * 6);
    for (int i = 0; i < l->nhistory; i++) {
        const lf_history_t *h = &l->history[i];
        msgpack_pack_uint64(pk, h->seq);
        msgpack_pack_int(pk, h->from);
        msgpack_pack_int(pk, h->to);
        msgpack_pack_int(pk, h->reason);
        msgpack_pack_int64(pk, l->t_ms - h->at_ms);
        msgpack_pack_int64(pk, (int64_t)llround(h->score * 100));
    }
}

void lf_lead_pack(const lf_lead_t *l, const lf_model_t *m, int self_contained, lf_argv_t *out)
{
    msgpack_sbuffer sb;
    msgpack_packer pk;
    msgpack_sbuffer_init(&sb);
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    /* A visitor is never recycled: its record has no requalify time. A lead's record has one
     * only while it is set, so other records are written as before. */
    int requalify_at = !self_contained && l->requalify_at_ms != 0;
    msgpack_pack_array(&pk, self_contained ? LF_PACK_ELEMS_SELF : LF_PACK_ELEMS + requalify_at);
    msgpack_pack_int(&pk, LF_PACK_FORMAT);
    msgpack_pack_uint64(&pk, l->version);
    msgpack_pack_int(&pk, (l->anonymous ? 1 : 0) | (l->requalify ? 2 : 0));
    lf_pack_cstr(&pk, l->anonymous || !m->version ? "" : m->version);
    msgpack_pack_int64(&pk, l->t_ms - l->first_seen_ms);
    msgpack_pack_int64(&pk, l->t_ms - l->last_seen_ms);
    msgpack_pack_int64(&pk, l->t_ms - l->stage_at_ms);
    msgpack_pack_uint64(&pk, l->events);
    lf_pack_lists(&pk, l, m);
    msgpack_pack_int64(&pk, l->expires_s);
    if (requalify_at) {
        int64_t d;
        /* From t like the other times (small); a distance past int64 cannot be one. */
        if (__builtin_sub_overflow(l->t_ms, l->requalify_at_ms, &d)) d = INT64_MIN;
        msgpack_pack_int64(&pk, d);
    }
    if (self_contained) {
        msgpack_pack_int(&pk, l->stage);
        msgpack_pack_uint64(&pk, l->seq);
        lf_pack_num(&pk, l->fit);
        lf_pack_num(&pk, l->eng);
        msgpack_pack_int64(&pk, l->t_ms);
    }
    lf_argv_add(out, sb.data ? sb.data : "", sb.size);
    msgpack_sbuffer_destroy(&sb);
}

/*---- Decoding --------------------------------------------------------------------------*/

static int lf_obj_i64(const msgpack_object *o, int64_t *out)
{
    if (o->type == MSGPACK_OBJECT_POSITIVE_INTEGER && o->via.u64 <= (uint64_t)INT64_MAX)
        *out = (int64_t)o->via.u64;
    else if (o->type == MSGPACK_OBJECT_NEGATIVE_INTEGER)
        *out = o->via.i64;
    else
        return LF_ERR;
    return LF_OK;
}

static int lf_obj_num(const msgpack_object *o, double *out)
{
    int64_t i;
    if (o->type == MSGPACK_OBJECT_FLOAT64 || o->type == MSGPACK_OBJECT_FLOAT32) {
        *out = o->via.f64;
        return isfinite(*out) ? LF_OK : LF_ERR;
    }
    if (lf_obj_i64(o, &i)) return LF_ERR;
    *out = (double)i;
    return LF_OK;
}

/* A time stored as the distance back from t. */
static int lf_obj_from_t(const msgpack_object *o, int64_t t_ms, int64_t *out)
{
    int64_t d;
    if (lf_obj_i64(o, &d)) return LF_ERR;
    /* A distance that puts the time outside int64 is a corrupt value (and t - d undefined). */
    return __builtin_sub_overflow(t_ms, d, out) ? LF_ERR : LF_OK;
}

static int lf_obj_str(const msgpack_object *o, char *dst, size_t cap)
{
    if (o->type != MSGPACK_OBJECT_STR) return LF_ERR;
    size_t n = o->via.str.size < cap - 1 ? o->via.str.size : cap - 1;
    if (n) memcpy(dst, o->via.str.ptr, n);
    dst[n] = '\0';
    return LF_OK;
}

static int lf_obj_list(const msgpack_object *o, uint32_t stride, const msgpack_object **items,
                       uint32_t *n)
{
    if (o->type != MSGPACK_OBJECT_ARRAY || o->via.array.size % stride) return LF_ERR;
    *items = o->via.array.ptr;
    *n = o->via.array.size / stride;
    return LF_OK;
}

static int lf_str_is(const msgpack_object *o, const char *s)
{
    return o->type == MSGPACK_OBJECT_STR && o->via.str.size == strlen(s) &&
           memcmp(o->via.str.ptr, s, o->via.str.size) == 0;
}

static int lf_unpack_touch(const msgpack_object *o, int64_t t_ms, lf_touch_t *t)
{
    const msgpack_object *x;
    uint32_t n;
    memset(t, 0, sizeof(*t));
    if (o->type == MSGPACK_OBJECT_NIL) return LF_OK;
    if (lf_obj_list(o, 4, &x, &n) || n != 1) return LF_ERR;
    if (lf_obj_str(&x[0], t->source, sizeof(t->source)) ||
        lf_obj_str(&x[1], t->medium, sizeof(t->medium)) ||
        lf_obj_str(&x[2], t->campaign, sizeof(t->campaign)))
        return LF_ERR;
    return lf_obj_from_t(&x[3], t_ms, &t->at_ms);
}

static int lf_unpack_counters(lf_lead_t *l, const msgpack_object *o)
{
    const msgpack_object *x;
    uint32_t n;
    if (lf_obj_list(o, 2, &x, &n)) return LF_ERR;
    for (uint32_t i = 0; i < n; i++) {
        int64_t k, c;
        if (lf_obj_i64(&x[2 * i], &k) || lf_obj_i64(&x[2 * i + 1], &c) || c < 0 || c > UINT32_MAX)
            return LF_ERR;
        if (k >= 0 && k < LF_KIND__COUNT) l->counters[k] = (uint32_t)c;
    }
    return LF_OK;
}

static int lf_unpack_traits(lf_lead_t *l, const msgpack_object *o, const lf_model_t *m)
{
    const msgpack_object *x;
    uint32_t n;
    if (lf_obj_list(o, 2, &x, &n)) return LF_ERR;
    for (uint32_t i = 0; i < n; i++) {
        for (size_t k = 0; k < m->ntracked_traits; k++) {
            if (!lf_str_is(&x[2 * i], m->tracked_traits[k]) || l->ntraits >= LF_LEAD_TRAITS_MAX)
                continue;
            lf_trait_t *tr = &l->traits[l->ntraits++];
            tr->idx = (uint16_t)k;
            if (lf_obj_str(&x[2 * i + 1], tr->val, sizeof(tr->val))) return LF_ERR;
            tr->is_num = lf_parse_double(tr->val, &tr->num) == LF_OK;
            break;
        }
    }
    return LF_OK;
}

static int lf_unpack_caps(lf_lead_t *l, const msgpack_object *o, const lf_model_t *m)
{
    const msgpack_object *x, *w;
    uint32_t n, nw;
    if (lf_obj_list(o, 2, &x, &n)) return LF_ERR;
    for (uint32_t i = 0; i < n; i++) {
        if (lf_obj_list(&x[2 * i + 1], 2, &w, &nw) || nw > LF_CAP_WINDOWS) return LF_ERR;
        int idx = -1;
        for (size_t r = 0; r < m->neng && idx < 0; r++)
            if (lf_str_is(&x[2 * i], m->eng[r].name)) idx = (int)r;
        /* A rule the model no longer caps is dropped. */
        if (idx < 0 || m->eng[idx].cap_per_ms <= 0 || l->ncaps >= LF_LEAD_CAPS_MAX) continue;
        lf_cap_use_t *c = &l->caps[l->ncaps++];
        memset(c, 0, sizeof(*c));
        c->rule = (uint16_t)idx;
        for (uint32_t k = 0; k < nw; k++, c->n++)
            if (lf_obj_i64(&w[2 * k], &c->window[k]) || lf_obj_num(&w[2 * k + 1], &c->granted[k]))
                return LF_ERR;
    }
    return LF_OK;
}

static int lf_unpack_dedup(lf_lead_t *l, const msgpack_object *o)
{
    if (o->type != MSGPACK_OBJECT_BIN) return LF_ERR;
    const unsigned char *b = (const unsigned char *)o->via.bin.ptr;
    size_t len = o->via.bin.size, i = 0;
    int64_t prev = lf_dedup_sec(l->t_ms);
    while (i < len) {
        uint64_t delta = 0;
        int shift = 0;
        unsigned char c;
        do {
            if (i >= len || shift > 56) return LF_ERR;
            c = b[i++];
            delta |= (uint64_t)(c & 0x7f) << shift;
            shift += 7;
        } while (c & 0x80);
        if (delta > (1ULL << 53) || len - i < 6) return LF_ERR;
        uint64_t h = 0;
        for (int k = 0; k < 6; k++)
            h = (h << 8) | b[i++];
        if (__builtin_sub_overflow(prev, (int64_t)delta, &prev)) return LF_ERR;
        if (l->ndedup < LF_DEDUP_MAX) l->dedup[l->ndedup++] = (lf_dedup_entry_t){h, prev};
    }
    return LF_OK;
}

static int lf_unpack_offsets(lf_lead_t *l, const msgpack_object *o)
{
    const msgpack_object *x;
    uint32_t n;
    if (lf_obj_list(o, 2, &x, &n)) return LF_ERR;
    for (uint32_t i = 0; i < n; i++) {
        int64_t part, off;
        if (lf_obj_i64(&x[2 * i], &part) || lf_obj_i64(&x[2 * i + 1], &off) || part < 0 ||
            part > INT32_MAX)
            return LF_ERR;
        lf_lead_offset_record(l, (int32_t)part, off);
    }
    return LF_OK;
}

static int lf_unpack_history(lf_lead_t *l, const msgpack_object *o)
{
    const msgpack_object *x;
    uint32_t n;
    if (lf_obj_list(o, 6, &x, &n)) return LF_ERR;
    for (uint32_t i = 0; i < n; i++, x += 6) {
        int64_t v[6], at;
        for (int k = 0; k < 6; k++)
            if (lf_obj_i64(&x[k], &v[k])) return LF_ERR;
        if (v[1] < 0 || v[1] >= LF_STAGE__COUNT || v[2] < 0 || v[2] >= LF_STAGE__COUNT ||
            v[3] < 0 || v[3] >= LF_REASON__COUNT || lf_obj_from_t(&x[4], l->t_ms, &at))
            return LF_ERR;
        lf_history_t h = {(uint64_t)v[0],    (uint8_t)v[1], (uint8_t)v[2], (uint8_t)v[3], at,
                          (double)v[5] / 100};
        lf_lead_history_add(l, &h);
    }
    return LF_OK;
}

/* The self-contained part (a visitor's): stage, seq, fit, eng, t. */
static int lf_unpack_own(lf_lead_t *l, const msgpack_object *e)
{
    int64_t stage, seq;
    if (lf_obj_i64(&e[17], &stage) || stage < 0 || stage >= LF_STAGE__COUNT ||
        lf_obj_i64(&e[18], &seq) || seq < 0 || lf_obj_num(&e[19], &l->fit) ||
        lf_obj_num(&e[20], &l->eng) || lf_obj_i64(&e[21], &l->t_ms))
        return LF_ERR;
    l->stage = (lf_stage_t)stage;
    l->seq = (uint64_t)seq;
    return LF_OK;
}

/* Elements 0..16 of a checked array e of n elements. */
static int lf_unpack_elems(lf_lead_t *l, const msgpack_object *e, uint32_t n, const lf_model_t *m)
{
    int64_t format, version, flags, events;
    if (lf_obj_i64(&e[0], &format) || format != LF_PACK_FORMAT || lf_obj_i64(&e[2], &flags))
        return LF_ERR;
    /* A visitor's record (flag 1) is the self-contained one: elements 17..21 are its own. A
     * lead's record may have more than 17 elements too (appended by a newer writer): those
     * are not a visitor's fields, and are ignored. */
    if ((flags & 1) && (n < LF_PACK_ELEMS_SELF || lf_unpack_own(l, e))) return LF_ERR;
    if (lf_obj_i64(&e[1], &version) ||
        lf_obj_str(&e[3], l->rules_version, sizeof(l->rules_version)) ||
        lf_obj_from_t(&e[4], l->t_ms, &l->first_seen_ms) ||
        lf_obj_from_t(&e[5], l->t_ms, &l->last_seen_ms) ||
        lf_obj_from_t(&e[6], l->t_ms, &l->stage_at_ms) || lf_obj_i64(&e[7], &events) ||
        lf_unpack_counters(l, &e[8]) || lf_unpack_touch(&e[9], l->t_ms, &l->first_touch) ||
        lf_unpack_touch(&e[10], l->t_ms, &l->last_touch) || lf_unpack_traits(l, &e[11], m) ||
        lf_unpack_caps(l, &e[12], m) || lf_unpack_dedup(l, &e[13]) ||
        lf_unpack_offsets(l, &e[14]) || lf_unpack_history(l, &e[15]) ||
        lf_obj_i64(&e[16], &l->expires_s))
        return LF_ERR;
    /* A lead's appended element 17: the requalify time (absent: 0, none). */
    if (!(flags & 1) && n > LF_PACK_ELEMS && lf_obj_from_t(&e[17], l->t_ms, &l->requalify_at_ms))
        return LF_ERR;
    if (e[10].type == MSGPACK_OBJECT_NIL) l->last_touch = l->first_touch;
    l->version = (uint64_t)version;
    l->anonymous = (flags & 1) != 0;
    l->requalify = (flags & 2) != 0;
    l->events = (uint64_t)events;
    return LF_OK;
}

int lf_lead_unpack(lf_lead_t *l, const char *buf, size_t len, const lf_model_t *m, lf_err_t *err)
{
    size_t used = 0;
    lf_err_t cerr;
    uint64_t format = 0;
    if (lf_msgpack_check(buf, len, LF_PACK_DEPTH, &used, &cerr) != LF_OK || used != len) {
        lf_err_set(err, LF_ERR, "the packed record is not MessagePack (%s)",
                   used != len ? "bytes after its end" : cerr.msg);
        return LF_ERR;
    }
    unsigned char c = len ? (unsigned char)buf[0] : 0;
    size_t at = c == 0xdc ? 3 : c == 0xdd ? 5 : 1;
    if (len > at) format = (unsigned char)buf[at];
    if (format > LF_PACK_FORMAT && format < 0x80) {
        lf_err_set(err, LF_ERR,
                   "the packed record is of format %u, written by a newer leadflow (this one "
                   "reads format %d): upgrade leadflow",
                   (unsigned)format, LF_PACK_FORMAT);
        return LF_ERR;
    }
    msgpack_zone zone;
    msgpack_object root;
    size_t off = 0;
    int rc = LF_ERR;
    if (!msgpack_zone_init(&zone, 2048)) {
        lf_err_set(err, LF_ERR, "out of memory unpacking a lead record");
        return LF_ERR;
    }
    if (msgpack_unpack(buf, len, &off, &zone, &root) != MSGPACK_UNPACK_SUCCESS ||
        root.type != MSGPACK_OBJECT_ARRAY || root.via.array.size < LF_PACK_ELEMS) {
        lf_err_set(err, LF_ERR, "the packed record is not an array of %d or more elements",
                   LF_PACK_ELEMS);
        goto done;
    }
    if (lf_unpack_elems(l, root.via.array.ptr, root.via.array.size, m) != LF_OK) {
        lf_err_set(err, LF_ERR, "the packed record has a malformed element");
        goto done;
    }
    rc = LF_OK;
done:
    msgpack_zone_destroy(&zone);
    return rc;
}

int lf_lead_pack_version(const char *buf, size_t len, uint64_t *version)
{
    const unsigned char *b = (const unsigned char *)buf;
    size_t i;
    if (len < 3) return LF_ERR;
    if (b[0] >= 0x90 && b[0] <= 0x9f)
        i = 1;
    else if (b[0] == 0xdc)
        i = 3;
    else
        return LF_ERR;
    if (i + 2 > len || b[i] > 0x7f) return LF_ERR; /* the format: a positive fixint */
    i++;
    unsigned c = b[i++];
    if (c <= 0x7f) {
        *version = c;
        return LF_OK;
    }
    if (c < 0xcc || c > 0xcf) return LF_ERR;
    size_t n = (size_t)1 << (c - 0xcc);
    if (i + n > len) return LF_ERR;
    uint64_t v = 0;
    for (size_t k = 0; k < n; k++)
        v = (v << 8) | b[i + k];
    *version = v;
    return LF_OK;
}
