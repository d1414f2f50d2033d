/* Event decoding: dispatch between the two front ends, and the Segment field logic, written
 * once over the generic tree of event_int.h (docs/contract.md "Events in").
 *
 * Rules beyond the contract table, decided here:
 *  - JSON null and the empty string mean "absent" for every field.
 *  - The first occurrence of a duplicated key wins (both formats).
 *  - Required fields are checked in this order, and the first failure is reported:
 *    {"batch": [...]} envelope, messageId, type, event (track), userId, anonymousId (one of
 *    the two), previousId (alias), timestamp.
 *  - Ids (messageId, userId, anonymousId, previousId) and the type / event names must be
 *    strings of valid UTF-8 without NUL: anything else is LF_BAD_WRONG_TYPE ("userId is not
 *    valid UTF-8"). A NUL in any string of the event is refused by the front ends (JSON cannot
 *    locate it, see event_json.c), also as LF_BAD_WRONG_TYPE.
 *  - The timestamp is the first of timestamp, originalTimestamp, receivedAt that is present; if
 *    that one is unparsable the event is bad (no silent fall back to the next).
 *  - A track event whose name is "identify" or "alias" does not become an identify / alias: its
 *    kind stays LF_KIND_OTHER with the name as sent.
 *  - Optional fields of the wrong type (context: null, page.url: 5) are ignored.
 *  - A property or trait that is NaN or an infinity (a MessagePack float, or a JSON number too
 *    large for a double such as 1e999) is ignored too: it is no number a rule could compare,
 *    and as a number it would poison min/max matching and every sum it enters.
 *  - The format: a value whose first non-space byte is '{' or '[' is JSON, and so is one that
 *    starts with any other printable ASCII byte (a MessagePack map never does: that byte would
 *    be a lone integer), so a JSON array or scalar is named as such (LF_BAD_NOT_A_MAP) rather
 *    than reported as an integer with bytes after it. A byte order mark (UTF-8 or UTF-16) is
 *    refused with a message that names it. Everything else is MessagePack. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "event_int.h"
#include "leadflow/timeparse.h"
#include "leadflow/url.h"

const char *lf_bad_name(lf_bad_t reason)
{
    static const char *const names[LF_BAD__COUNT] = {
        [LF_BAD_NONE] = "none",
        [LF_BAD_NOT_DECODABLE] = "not_decodable",
        [LF_BAD_NOT_A_MAP] = "not_a_map",
        [LF_BAD_BATCH_ENVELOPE] = "batch_envelope",
        [LF_BAD_MISSING_FIELD] = "missing_field",
        [LF_BAD_WRONG_TYPE] = "wrong_type",
        [LF_BAD_ID_TOO_LONG] = "id_too_long",
        [LF_BAD_TIMESTAMP_UNPARSABLE] = "timestamp_unparsable",
        [LF_BAD_TIMESTAMP_RANGE] = "timestamp_out_of_range",
        [LF_BAD_TOO_LARGE] = "too_large",
        [LF_BAD_TOO_COMPLEX] = "too_complex",
    };
    if ((unsigned)reason >= LF_BAD__COUNT) return "unknown";
    return names[reason];
}

void lf_event_limits_default(lf_event_limits_t *lim)
{
    lim->max_event_bytes = 32768;
    lim->min_ts_ms = 946684800000LL;  /* 2000-01-01T00:00:00Z */
    lim->max_ts_ms = 4102444800000LL; /* 2100-01-01T00:00:00Z */
}

lf_str_t lf_event_key(const lf_event_t *ev)
{
    return ev->user_id.len ? ev->user_id : ev->anonymous_id;
}

static const lf_kv_t *kv_find(const lf_kv_t *kv, uint32_t n, const char *key)
{
    for (uint32_t i = 0; i < n; i++)
        if (lf_str_eq(kv[i].key, key)) return &kv[i];
    return NULL;
}

const lf_kv_t *lf_event_prop(const lf_event_t *ev, const char *key)
{
    return kv_find(ev->props, ev->nprops, key);
}

const lf_kv_t *lf_event_trait(const lf_event_t *ev, const char *key)
{
    return kv_find(ev->traits, ev->ntraits, key);
}

int lf_event_decode(const void *buf, size_t len, const lf_event_limits_t *lim, lf_arena_t *arena,
                    lf_event_t *ev, lf_err_t *err)
{
    lf_event_limits_t def;
    const unsigned char *b = buf;
    if (!lim) {
        lf_event_limits_default(&def);
        lim = &def;
    }
    memset(ev, 0, sizeof(*ev));
    if (len > lim->max_event_bytes) {
        lf_err_set(err, LF_BAD_TOO_LARGE, "the event is %zu bytes, the limit is %zu", len,
                   lim->max_event_bytes);
        return LF_ERR;
    }
    if (!buf || len == 0) {
        lf_err_set(err, LF_BAD_NOT_DECODABLE, "the value is empty");
        return LF_ERR;
    }
    /* JSON senders must not add a byte order mark (RFC 8259 8.1); read as MessagePack its first
     * byte would be a lone integer, and the message would not say what is wrong. */
    if (len >= 3 && b[0] == 0xef && b[1] == 0xbb && b[2] == 0xbf) {
        lf_err_set(err, LF_BAD_NOT_DECODABLE,
                   "the value starts with a UTF-8 byte order mark (EF BB BF): send the JSON "
                   "without it");
        return LF_ERR;
    }
    if (len >= 2 && ((b[0] == 0xfe && b[1] == 0xff) || (b[0] == 0xff && b[1] == 0xfe))) {
        lf_err_set(err, LF_BAD_NOT_DECODABLE,
                   "the value starts with a UTF-16 byte order mark (%02X %02X): send JSON as "
                   "UTF-8, without a byte order mark",
                   b[0], b[1]);
        return LF_ERR;
    }
    /* Text (printable ASCII, or JSON whitespace) is JSON: see the header comment. */
    if (b[0] == '\t' || b[0] == '\r' || b[0] == '\n' || (b[0] >= 0x20 && b[0] < 0x7f))
        return lf_event_decode_json(buf, len, lim, arena, ev, err);
    return lf_event_decode_msgpack(buf, len, lim, arena, ev, err);
}

/*---- The shared field logic -----------------------------------------------------------*/

typedef struct {
    const lf_tree_ops_t *ops;
    lf_arena_t *arena;
    lf_err_t *err;
} ex_t;

static const char *vt_desc(lf_vt_t t)
{
    switch (t) {
    case LF_VT_NULL:
        return "null";
    case LF_VT_BOOL:
        return "a boolean";
    case LF_VT_INT:
    case LF_VT_UINT:
    case LF_VT_FLOAT:
        return "a number";
    case LF_VT_STR:
        return "a string";
    case LF_VT_MAP:
        return "a map";
    case LF_VT_ARRAY:
        return "an array";
    default:
        return "binary data";
    }
}

/* Collect the children of `map` named in keys[] into slots[] (first occurrence wins). */
static void collect(const ex_t *x, const void *map, const lf_str_t *keys, int nkeys,
                    const void **slots)
{
    uintptr_t it = 0;
    lf_str_t k;
    const void *child;
    while (x->ops->next(map, &it, &k, &child)) {
        for (int i = 0; i < nkeys; i++) {
            if (k.len == keys[i].len && !slots[i] && memcmp(k.ptr, keys[i].ptr, k.len) == 0) {
                slots[i] = child;
                break;
            }
        }
    }
}

static int is_map(const ex_t *x, const void *node)
{
    lf_val_t v;
    if (!node) return 0;
    x->ops->get(node, &v);
    return v.t == LF_VT_MAP;
}

static lf_str_t dup(const ex_t *x, lf_str_t s)
{
    lf_str_t r = {lf_arena_strndup(x->arena, s.ptr, s.len), s.len};
    return r;
}

/* An optional string: 1 when it is a non-empty string; other types are ignored. The result
 * points into the parsed tree (copy it before keeping it). */
static int opt_str(const ex_t *x, const void *node, lf_str_t *out)
{
    lf_val_t v;
    if (!node) return 0;
    x->ops->get(node, &v);
    if (v.t != LF_VT_STR || v.s.len == 0) return 0;
    *out = v.s;
    return 1;
}

static int name_field(const ex_t *x, const void *node, const char *field, uint32_t max_len,
                      lf_str_t *out)
{
    lf_val_t v;
    if (!node) return 0;
    x->ops->get(node, &v);
    if (v.t == LF_VT_NULL) return 0;
    if (v.t != LF_VT_STR) {
        lf_err_set(x->err, LF_BAD_WRONG_TYPE, "%s is %s, expected a string", field, vt_desc(v.t));
        return LF_ERR;
    }
    if (v.s.len == 0) return 0;
    if (max_len && v.s.len > max_len) {
        lf_err_set(x->err, LF_BAD_ID_TOO_LONG, "%s is %u bytes, the limit is %u", field,
                   (unsigned)v.s.len, (unsigned)max_len);
        return LF_ERR;
    }
    if (!lf_utf8_valid(v.s)) {
        lf_err_set(x->err, LF_BAD_WRONG_TYPE, "%s is not valid UTF-8 text", field);
        return LF_ERR;
    }
    *out = dup(x, v.s);
    return 1;
}

/* A value for an error message: at most 40 bytes, non-printable bytes as '?'. */
static void show(lf_str_t s, char *buf, size_t cap)
{
    size_t n = s.len < 40 ? s.len : 40, i;
    if (n > cap - 4) n = cap - 4;
    for (i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s.ptr[i];
        buf[i] = (c >= 0x20 && c < 0x7f) ? (char)c : '?';
    }
    if (s.len > n) buf[i++] = '.', buf[i++] = '.', buf[i++] = '.';
    buf[i] = '\0';
}

/* A timestamp field: 1 and *ms when present, 0 when absent, LF_ERR when bad. */
static int ts_field(const ex_t *x, const void *node, const char *field, int64_t *ms)
{
    lf_val_t v;
    char shown[48];
    if (!node) return 0;
    x->ops->get(node, &v);
    switch (v.t) {
    case LF_VT_NULL:
        return 0;
    case LF_VT_STR:
        if (v.s.len == 0) return 0;
        if (lf_time_parse_iso8601(v.s.ptr, v.s.len, ms) == LF_OK) return 1;
        show(v.s, shown, sizeof(shown));
        lf_err_set(x->err, LF_BAD_TIMESTAMP_UNPARSABLE,
                   "%s \"%s\" is not an ISO-8601 date-time (like 2015-07-10T23:00:00.000Z)", field,
                   shown);
        return LF_ERR;
    case LF_VT_UINT:
        *ms = v.u > (uint64_t)INT64_MAX ? INT64_MAX : (int64_t)v.u;
        return 1;
    case LF_VT_INT:
        *ms = v.i;
        return 1;
    case LF_VT_FLOAT:
        if (!isfinite(v.d) || v.d != floor(v.d)) {
            lf_err_set(x->err, LF_BAD_TIMESTAMP_UNPARSABLE,
                       "%s is the number %g, expected whole epoch milliseconds", field, v.d);
            return LF_ERR;
        }
        *ms = v.d >= 9.2e18 ? INT64_MAX : v.d <= -9.2e18 ? INT64_MIN : (int64_t)v.d;
        return 1;
    default:
        lf_err_set(x->err, LF_BAD_WRONG_TYPE,
                   "%s is %s, expected an ISO-8601 string or epoch milliseconds", field,
                   vt_desc(v.t));
        return LF_ERR;
    }
}

/*---- properties and traits --------------------------------------------------------------*/

#define LF_KEY_MAX 256

typedef struct {
    lf_kv_t *kv;
    uint32_t n, max;
    uint32_t dedupe; /* entries [0, dedupe) win over new ones with the same key */
} kvbuf_t;

static void flatten(const ex_t *x, const void *map, char *key, size_t klen, int depth, kvbuf_t *b)
{
    uintptr_t it = 0;
    lf_str_t k;
    const void *child;
    char num[40];
    while (b->n < b->max && x->ops->next(map, &it, &k, &child)) {
        size_t nl = klen + (klen ? 1 : 0) + k.len;
        if (nl >= LF_KEY_MAX) continue;
        if (klen) key[klen] = '.';
        if (k.len) memcpy(key + nl - k.len, k.ptr, k.len);
        lf_str_t full = {key, (uint32_t)nl};
        lf_val_t v;
        x->ops->get(child, &v);
        if (v.t == LF_VT_MAP) {
            if (depth < LF_EVENT_MAX_DEPTH) flatten(x, child, key, nl, depth + 1, b);
            continue;
        }
        if (v.t != LF_VT_STR && v.t != LF_VT_BOOL && v.t != LF_VT_INT && v.t != LF_VT_UINT &&
            v.t != LF_VT_FLOAT)
            continue; /* null, arrays, binary */
        /* NaN and the infinities are ignored: see the top of this file */
        if (v.t == LF_VT_FLOAT && !isfinite(v.d)) continue;
        int seen = 0;
        for (uint32_t i = 0; i < b->dedupe && !seen; i++)
            seen = b->kv[i].key.len == full.len && memcmp(b->kv[i].key.ptr, key, nl) == 0;
        if (seen) continue;
        lf_kv_t *e = &b->kv[b->n++];
        memset(e, 0, sizeof(*e));
        e->key = dup(x, full);
        lf_str_t text;
        switch (v.t) {
        case LF_VT_STR:
            e->val = dup(x, v.s);
            continue;
        case LF_VT_BOOL:
            e->val = v.b ? LF_STR_LIT("true") : LF_STR_LIT("false");
            continue;
        case LF_VT_INT:
            e->num = (double)v.i;
            text.len = (uint32_t)snprintf(num, sizeof(num), "%lld", (long long)v.i);
            break;
        case LF_VT_UINT:
            e->num = (double)v.u;
            text.len = (uint32_t)snprintf(num, sizeof(num), "%llu", (unsigned long long)v.u);
            break;
        default:
            e->num = v.d;
            /* A whole number prints as the integer it is, as the same value sent as a
             * MessagePack integer does (lf_fmt_double writes 1e+15 from 10^15 on), so a trait
             * reads the same in both formats. */
            if (v.d == floor(v.d) && fabs(v.d) < 9.2e18 && !(v.d == 0 && signbit(v.d)))
                text.len = (uint32_t)snprintf(num, sizeof(num), "%lld", (long long)v.d);
            else
                text.len = (uint32_t)lf_fmt_double(num, sizeof(num), v.d);
            break;
        }
        text.ptr = num;
        if (text.len >= sizeof(num)) text.len = sizeof(num) - 1;
        e->val = dup(x, text);
        e->is_num = 1;
    }
}

static lf_kv_t *kv_keep(const ex_t *x, const lf_kv_t *tmp, uint32_t n)
{
    if (n == 0) return NULL;
    lf_kv_t *kv = lf_arena_alloc(x->arena, sizeof(lf_kv_t) * n);
    memcpy(kv, tmp, sizeof(lf_kv_t) * n);
    return kv;
}

/*---- campaign ---------------------------------------------------------------------------*/

/* raw percent-decoded into the arena; empty when raw is. */
static lf_str_t query_decode(const ex_t *x, lf_str_t raw)
{
    lf_str_t r = LF_STR_NULL;
    if (!raw.len) return r;
    char *out = lf_arena_alloc(x->arena, raw.len + 1);
    r.len = (uint32_t)lf_url_decode(raw.ptr, raw.len, out, raw.len, 1);
    out[r.len] = '\0';
    r.ptr = out;
    return r;
}

/*---- the extraction ---------------------------------------------------------------------*/

enum {
    T_MESSAGE_ID,
    T_TYPE,
    T_EVENT,
    T_USER_ID,
    T_ANONYMOUS_ID,
    T_PREVIOUS_ID,
    T_TIMESTAMP,
    T_ORIGINAL_TIMESTAMP,
    T_RECEIVED_AT,
    T_CONTEXT,
    T_PROPERTIES,
    T_TRAITS,
    T_BATCH,
    T__COUNT
};
static const lf_str_t top_keys[T__COUNT] = {
    LF_STR_LIT("messageId"),   LF_STR_LIT("type"),
    LF_STR_LIT("event"),       LF_STR_LIT("userId"),
    LF_STR_LIT("anonymousId"), LF_STR_LIT("previousId"),
    LF_STR_LIT("timestamp"),   LF_STR_LIT("originalTimestamp"),
    LF_STR_LIT("receivedAt"),  LF_STR_LIT("context"),
    LF_STR_LIT("properties"),  LF_STR_LIT("traits"),
    LF_STR_LIT("batch"),
};

enum { C_PAGE, C_CAMPAIGN, C_USER_AGENT, C_TRAITS, C__COUNT };
static const lf_str_t ctx_keys[C__COUNT] = {LF_STR_LIT("page"), LF_STR_LIT("campaign"),
                                            LF_STR_LIT("userAgent"), LF_STR_LIT("traits")};

/* context.page and properties share these. */
enum { P_URL, P_PATH, P_REFERRER, P_TITLE, P_SEARCH, P__COUNT };
static const lf_str_t page_keys[P__COUNT] = {LF_STR_LIT("url"), LF_STR_LIT("path"),
                                             LF_STR_LIT("referrer"), LF_STR_LIT("title"),
                                             LF_STR_LIT("search")};

/* context.campaign, in lf_utm_t order. */
static const lf_str_t campaign_keys[LF_UTM__COUNT] = {LF_STR_LIT("source"), LF_STR_LIT("medium"),
                                                      LF_STR_LIT("name"), LF_STR_LIT("term"),
                                                      LF_STR_LIT("content")};
/* The campaign's query parameters: the UTM fields (in lf_utm_t order), then the click ids in
 * order of preference. */
#define LF_QUERY_NAMES (LF_UTM__COUNT + 4)
static const char *const query_names[LF_QUERY_NAMES] = {"utm_source", "utm_medium",  "utm_campaign",
                                                        "utm_term",   "utm_content", "gclid",
                                                        "msclkid",    "dclid",       "fbclid"};

static int fail_missing(const ex_t *x, const char *what)
{
    lf_err_set(x->err, LF_BAD_MISSING_FIELD, "missing field %s", what);
    return LF_ERR;
}

/* messageId, type and the kind it names, the lead's ids, previousId for an alias. */
static int ex_ids(const ex_t *x, const void *const *top, lf_event_t *ev)
{
    int r = name_field(x, top[T_MESSAGE_ID], "messageId", LF_ID_MAX, &ev->message_id);
    if (r < 0) return LF_ERR;
    if (r == 0) return fail_missing(x, "messageId");
    r = name_field(x, top[T_TYPE], "type", 0, &ev->type);
    if (r < 0) return LF_ERR;
    if (r == 0) return fail_missing(x, "type");

    if (lf_str_eq_nocase(ev->type, "track")) {
        lf_str_t name = LF_STR_NULL;
        r = name_field(x, top[T_EVENT], "event", 0, &name);
        if (r < 0) return LF_ERR;
        if (r == 0) return fail_missing(x, "event (required for type track)");
        ev->kind = lf_kind_from_name(name);
        if (ev->kind == LF_KIND_IDENTIFY || ev->kind == LF_KIND_ALIAS) ev->kind = LF_KIND_OTHER;
        ev->kind_name = ev->kind ? lf_str_from(lf_kind_name(ev->kind)) : name;
    } else {
        if (lf_str_eq_nocase(ev->type, "page"))
            ev->kind = LF_KIND_PAGE_VIEW;
        else
            ev->kind = lf_kind_from_name(ev->type); /* identify, alias, or a kind directly */
        ev->kind_name = ev->kind ? lf_str_from(lf_kind_name(ev->kind)) : ev->type;
    }

    int has_user = name_field(x, top[T_USER_ID], "userId", LF_ID_MAX, &ev->user_id);
    if (has_user < 0) return LF_ERR;
    int has_anon = name_field(x, top[T_ANONYMOUS_ID], "anonymousId", LF_ID_MAX, &ev->anonymous_id);
    if (has_anon < 0) return LF_ERR;
    if (!has_user && !has_anon) return fail_missing(x, "userId or anonymousId (one is required)");
    if (ev->kind == LF_KIND_ALIAS) {
        r = name_field(x, top[T_PREVIOUS_ID], "previousId", LF_ID_MAX, &ev->previous_id);
        if (r < 0) return LF_ERR;
        if (r == 0) return fail_missing(x, "previousId (required for type alias)");
    }
    return LF_OK;
}

/* The event time: timestamp, else originalTimestamp, else receivedAt, within the limits. */
static int ex_time(const ex_t *x, const void *const *top, const lf_event_limits_t *lim,
                   lf_event_t *ev)
{
    static const int ts_slot[3] = {T_TIMESTAMP, T_ORIGINAL_TIMESTAMP, T_RECEIVED_AT};
    static const char *const ts_name[3] = {"timestamp", "originalTimestamp", "receivedAt"};
    int ts_i = -1;
    for (int i = 0; i < 3 && ts_i < 0; i++) {
        int r = ts_field(x, top[ts_slot[i]], ts_name[i], &ev->ts_ms);
        if (r < 0) return LF_ERR;
        if (r == 1) ts_i = i;
    }
    if (ts_i < 0) return fail_missing(x, "timestamp (nor originalTimestamp, receivedAt)");
    if (ev->ts_ms < lim->min_ts_ms || ev->ts_ms > lim->max_ts_ms) {
        char t[40], lo[40], hi[40];
        lf_time_format_iso8601(ev->ts_ms, t, sizeof(t));
        lf_time_format_iso8601(lim->min_ts_ms, lo, sizeof(lo));
        lf_time_format_iso8601(lim->max_ts_ms, hi, sizeof(hi));
        lf_err_set(x->err, LF_BAD_TIMESTAMP_RANGE, "%s %s is outside the accepted range %s .. %s",
                   ts_name[ts_i], t, lo, hi);
        return LF_ERR;
    }
    return LF_OK;
}

/* Page fields from context.page, else properties (pf gets each raw, `search` included), and
 * the user agent. */
static void ex_page(const ex_t *x, const void *const *top, const void *const *ctx, lf_str_t *pf,
                    lf_event_t *ev)
{
    const void *page[P__COUNT] = {0}, *props[P__COUNT] = {0};
    if (is_map(x, ctx[C_PAGE])) collect(x, ctx[C_PAGE], page_keys, P__COUNT, page);
    if (is_map(x, top[T_PROPERTIES])) collect(x, top[T_PROPERTIES], page_keys, P__COUNT, props);
    for (int i = 0; i < P__COUNT; i++)
        if (!opt_str(x, page[i], &pf[i])) opt_str(x, props[i], &pf[i]);
    ev->url = pf[P_URL].len ? dup(x, pf[P_URL]) : LF_STR_NULL;
    ev->path = pf[P_PATH].len ? dup(x, pf[P_PATH]) : lf_url_path(ev->url);
    ev->referrer = pf[P_REFERRER].len ? dup(x, pf[P_REFERRER]) : LF_STR_NULL;
    ev->title = pf[P_TITLE].len ? dup(x, pf[P_TITLE]) : LF_STR_NULL;
    lf_str_t ua;
    if (opt_str(x, ctx[C_USER_AGENT], &ua)) ev->user_agent = dup(x, ua);
}

/* The campaign: context.campaign's fields, then each one still empty from the URL's query,
 * else from `search`; the click id is the first one with a value. */
static void ex_campaign(const ex_t *x, const void *const *ctx, lf_str_t search, lf_event_t *ev)
{
    if (is_map(x, ctx[C_CAMPAIGN])) {
        const void *camp[LF_UTM__COUNT] = {0};
        collect(x, ctx[C_CAMPAIGN], campaign_keys, LF_UTM__COUNT, camp);
        for (int i = 0; i < LF_UTM__COUNT; i++) {
            lf_str_t s;
            if (opt_str(x, camp[i], &s)) ev->utm[i] = dup(x, s);
        }
    }
    if (ev->url.len || search.len) {
        /* An empty parameter in the URL counts as none. */
        lf_str_t in_url[LF_QUERY_NAMES], in_search[LF_QUERY_NAMES];
        lf_url_query_params(ev->url, query_names, LF_QUERY_NAMES, in_url);
        lf_url_query_params(search, query_names, LF_QUERY_NAMES, in_search);
        for (int i = 0; i < LF_QUERY_NAMES; i++)
            if (!in_url[i].len) in_url[i] = in_search[i];
        for (int i = 0; i < LF_UTM__COUNT; i++)
            if (!ev->utm[i].len) ev->utm[i] = query_decode(x, in_url[i]);
        for (int i = LF_UTM__COUNT; i < LF_QUERY_NAMES; i++) {
            lf_str_t id = query_decode(x, in_url[i]);
            if (id.len) {
                ev->click_id_name = lf_str_from(query_names[i]);
                ev->click_id = id;
                break;
            }
        }
    }
    ev->has_campaign = ev->click_id.len != 0;
    for (int i = 0; i < LF_UTM__COUNT; i++)
        if (ev->utm[i].len) ev->has_campaign = 1;
}

/* Properties and traits (top-level, then context.traits for keys not seen), flattened. */
static void ex_props_traits(const ex_t *x, const void *const *top, const void *const *ctx,
                            lf_event_t *ev)
{
    char key[LF_KEY_MAX];
    if (is_map(x, top[T_PROPERTIES])) {
        lf_kv_t tmp[LF_EVENT_MAX_PROPS];
        kvbuf_t b = {tmp, 0, LF_EVENT_MAX_PROPS, 0};
        flatten(x, top[T_PROPERTIES], key, 0, 2, &b);
        ev->props = kv_keep(x, tmp, b.n);
        ev->nprops = b.n;
    }
    int traits_map = is_map(x, top[T_TRAITS]), ctx_traits_map = is_map(x, ctx[C_TRAITS]);
    if (traits_map || ctx_traits_map) {
        lf_kv_t tmp[LF_EVENT_MAX_TRAITS];
        kvbuf_t b = {tmp, 0, LF_EVENT_MAX_TRAITS, 0};
        if (traits_map) flatten(x, top[T_TRAITS], key, 0, 2, &b);
        b.dedupe = b.n;
        if (ctx_traits_map) flatten(x, ctx[C_TRAITS], key, 0, 3, &b);
        ev->traits = kv_keep(x, tmp, b.n);
        ev->ntraits = b.n;
    }
}

int lf_event_extract(const lf_tree_ops_t *ops, const void *root, const lf_event_limits_t *lim,
                     lf_arena_t *arena, lf_event_t *ev, lf_err_t *err)
{
    ex_t x = {ops, arena, err};
    lf_val_t v;
    ops->get(root, &v);
    if (v.t != LF_VT_MAP) {
        lf_err_set(err, LF_BAD_NOT_A_MAP, "the event is %s, expected a map", vt_desc(v.t));
        return LF_ERR;
    }
    const void *top[T__COUNT] = {0};
    collect(&x, root, top_keys, T__COUNT, top);
    if (top[T_BATCH]) {
        ops->get(top[T_BATCH], &v);
        if (v.t == LF_VT_ARRAY) {
            lf_err_set(err, LF_BAD_BATCH_ENVELOPE,
                       "a batch envelope {\"batch\": [...]}: send one event per message");
            return LF_ERR;
        }
    }
    if (ex_ids(&x, top, ev) != LF_OK || ex_time(&x, top, lim, ev) != LF_OK) return LF_ERR;

    const void *ctx[C__COUNT] = {0};
    if (is_map(&x, top[T_CONTEXT])) collect(&x, top[T_CONTEXT], ctx_keys, C__COUNT, ctx);
    lf_str_t pf[P__COUNT] = {{0}};
    ex_page(&x, top, ctx, pf, ev);
    ex_campaign(&x, ctx, pf[P_SEARCH], ev);
    ex_props_traits(&x, top, ctx, ev);
    return LF_OK;
}
