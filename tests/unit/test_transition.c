/* Transition encoding (transition.h, docs/contract.md "Transitions out" / README "Transitions
 * out"): the JSON and the MessagePack forms decode back (cJSON, msgpack-c) to exactly the 13
 * fields, with their types: transition_id "<lead id>:<seq>", lead_id, seq, from, to, reason, score,
 * fit, engagement, grade L1/L2/L3, at (ms), trigger (nil when empty), rules_version ("" when none).
 * Ids with quotes, backslashes, control bytes and UTF-8 survive; a buffer too small is refused. */
#include <cjson/cJSON.h>
#include <msgpack.h>

#include "leadflow/model.h"
#include "leadflow/transition.h"
#include "test.h"

static lf_transition_t lf_tr_sample(void)
{
    lf_transition_t t;
    memset(&t, 0, sizeof(t));
    t.seq = 3;
    t.from = LF_STAGE_LEAD;
    t.to = LF_STAGE_MQL;
    t.reason = LF_REASON_SCORE_THRESHOLD;
    t.score = 61.25;
    t.fit = 20;
    t.engagement = 41.25;
    t.grade = 2;
    t.at_ms = 1767225600123LL;
    snprintf(t.trigger, sizeof(t.trigger), "msg-9");
    return t;
}

/* The fields every encoding must carry, as decoded. */
#define LF_TR_CAP 600
typedef struct {
    char id[LF_TR_CAP], lead[LF_TR_CAP], from[LF_TR_CAP], to[LF_TR_CAP], reason[LF_TR_CAP];
    char grade[LF_TR_CAP], trigger[LF_TR_CAP], rules[LF_TR_CAP];
    int trigger_nil;
    unsigned long long seq;
    long long at;
    double score, fit, engagement;
    int nfields;
} lf_tr_fields_t;

/* The string field named k (trigger included), or NULL. */
static char *lf_tr_str_field(lf_tr_fields_t *f, const char *k)
{
    const struct {
        const char *name;
        char *dst;
    } t[] = {{"transition_id", f->id}, {"lead_id", f->lead},
             {"from", f->from},        {"to", f->to},
             {"reason", f->reason},    {"grade", f->grade},
             {"trigger", f->trigger},  {"rules_version", f->rules}};
    for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++)
        if (strcmp(k, t[i].name) == 0) return t[i].dst;
    return NULL;
}

/* The float field named k, or NULL. */
static double *lf_tr_num_field(lf_tr_fields_t *f, const char *k)
{
    return strcmp(k, "score") == 0        ? &f->score
           : strcmp(k, "fit") == 0        ? &f->fit
           : strcmp(k, "engagement") == 0 ? &f->engagement
                                          : NULL;
}

static void lf_tr_str(char *dst, const char *p, size_t n)
{
    if (n >= LF_TR_CAP) n = LF_TR_CAP - 1;
    memcpy(dst, p, n);
    dst[n] = '\0';
}

/* One JSON member into out: 0, or -1 for a field the contract has not or a wrong type. */
static int lf_tr_json_member(const cJSON *c, lf_tr_fields_t *out)
{
    char *dst = lf_tr_str_field(out, c->string);
    double *num = lf_tr_num_field(out, c->string);
    out->nfields++;
    if (dst == out->trigger && cJSON_IsNull(c))
        out->trigger_nil = 1;
    else if (dst && cJSON_IsString(c))
        lf_tr_str(dst, c->valuestring, strlen(c->valuestring));
    else if (dst || !cJSON_IsNumber(c))
        return -1;
    else if (num)
        *num = c->valuedouble;
    else if (strcmp(c->string, "seq") == 0)
        out->seq = (unsigned long long)c->valuedouble;
    else if (strcmp(c->string, "at") == 0)
        out->at = (long long)c->valuedouble;
    else
        return -1;
    return 0;
}

static int lf_tr_from_json(const char *buf, int len, lf_tr_fields_t *out)
{
    int bad = 0;
    memset(out, 0, sizeof(*out));
    cJSON *o = cJSON_ParseWithLength(buf, (size_t)len);
    if (!o || !cJSON_IsObject(o)) bad = 1;
    for (const cJSON *c = o ? o->child : NULL; c; c = c->next)
        bad |= lf_tr_json_member(c, out) != 0;
    cJSON_Delete(o);
    return bad ? -1 : 0;
}

/* One MessagePack pair into out: integers for seq and at, float64 for the numbers, nil or a
 * string for trigger, strings for the rest. 0, or -1. */
static int lf_tr_msgpack_pair(const msgpack_object *ko, const msgpack_object *v,
                              lf_tr_fields_t *out)
{
    char k[32];
    if (ko->type != MSGPACK_OBJECT_STR || ko->via.str.size >= sizeof(k)) return -1;
    memcpy(k, ko->via.str.ptr, ko->via.str.size);
    k[ko->via.str.size] = '\0';
    char *dst = lf_tr_str_field(out, k);
    double *num = lf_tr_num_field(out, k);
    out->nfields++;
    if (dst == out->trigger && v->type == MSGPACK_OBJECT_NIL)
        out->trigger_nil = 1;
    else if (dst && v->type == MSGPACK_OBJECT_STR)
        lf_tr_str(dst, v->via.str.ptr, v->via.str.size);
    else if (num && v->type == MSGPACK_OBJECT_FLOAT64)
        *num = v->via.f64;
    else if (strcmp(k, "seq") == 0 && v->type == MSGPACK_OBJECT_POSITIVE_INTEGER)
        out->seq = v->via.u64;
    else if (strcmp(k, "at") == 0 && v->type == MSGPACK_OBJECT_POSITIVE_INTEGER)
        out->at = (long long)v->via.u64;
    else if (strcmp(k, "at") == 0 && v->type == MSGPACK_OBJECT_NEGATIVE_INTEGER)
        out->at = v->via.i64;
    else
        return -1;
    return 0;
}

/* The whole buffer is one map. */
static int lf_tr_from_msgpack(const char *buf, int len, lf_tr_fields_t *out)
{
    msgpack_unpacked u;
    size_t off = 0;
    int bad = 0;
    memset(out, 0, sizeof(*out));
    msgpack_unpacked_init(&u);
    if (msgpack_unpack_next(&u, buf, (size_t)len, &off) != MSGPACK_UNPACK_SUCCESS ||
        off != (size_t)len || u.data.type != MSGPACK_OBJECT_MAP)
        bad = 1;
    for (uint32_t i = 0; !bad && i < u.data.via.map.size; i++)
        bad |= lf_tr_msgpack_pair(&u.data.via.map.ptr[i].key, &u.data.via.map.ptr[i].val, out);
    msgpack_unpacked_destroy(&u);
    return bad ? -1 : 0;
}

/* Encode t in one format and decode it back. */
static int lf_tr_roundtrip(const lf_transition_t *t, const char *lead, const char *rules, int json,
                           lf_tr_fields_t *out)
{
    char buf[LF_TRANSITION_MAX_BYTES];
    int n = lf_transition_encode(t, lead, rules, json, buf, sizeof(buf));
    if (n <= 0) return -1;
    return json ? lf_tr_from_json(buf, n, out) : lf_tr_from_msgpack(buf, n, out);
}

/* Every field of t came back, in both formats. */
static void lf_tr_check_all(const lf_transition_t *t, const char *lead, const char *rules)
{
    char id[LF_TR_CAP];
    snprintf(id, sizeof(id), "%s:%llu", lead, (unsigned long long)t->seq);
    for (int json = 0; json <= 1; json++) {
        lf_tr_fields_t f;
        CHECK_INT(lf_tr_roundtrip(t, lead, rules, json, &f), 0);
        CHECK_INT(f.nfields, 13);
        CHECK_STR(f.id, id);
        CHECK_STR(f.lead, lead);
        CHECK_INT(f.seq, t->seq);
        CHECK_STR(f.from, lf_stage_name(t->from));
        CHECK_STR(f.to, lf_stage_name(t->to));
        CHECK_STR(f.reason, lf_reason_name(t->reason));
        CHECK(f.score == t->score);
        CHECK(f.fit == t->fit);
        CHECK(f.engagement == t->engagement);
        CHECK_STR(f.grade, t->grade == 1 ? "L1" : t->grade == 2 ? "L2" : "L3");
        CHECK_INT(f.at, t->at_ms);
        CHECK_INT(f.trigger_nil, t->trigger[0] == '\0');
        if (t->trigger[0]) CHECK_STR(f.trigger, t->trigger);
        CHECK_STR(f.rules, rules ? rules : "");
    }
}

static void test_transition_fields(void)
{
    lf_transition_t t = lf_tr_sample();
    lf_tr_check_all(&t, "u-42", "rules-v7");
    char id[64];
    CHECK_INT(lf_transition_id(&t, "u-42", id, sizeof(id)), 6);
    CHECK_STR(id, "u-42:3");
    /* A challenger's published transitions: ids of their own (its own numbering). */
    t.model = "champion";
    CHECK_INT(lf_transition_id(&t, "u-42", id, sizeof(id)), 6);
    CHECK_STR(id, "u-42:3");
    t.model = "challenger";
    CHECK_INT(lf_transition_id(&t, "u-42", id, sizeof(id)), 17);
    CHECK_STR(id, "u-42:challenger:3");
}

/* Each reason, stage and grade by its name; a decay has no trigger; no rules version is "". */
static void test_transition_names(void)
{
    lf_transition_t t = lf_tr_sample();
    for (int r = 0; r < LF_REASON__COUNT; r++) {
        t.reason = (lf_reason_t)r;
        t.from = (lf_stage_t)(r % LF_STAGE__COUNT);
        t.to = (lf_stage_t)((r + 3) % LF_STAGE__COUNT);
        t.grade = 1 + r % 3;
        lf_tr_check_all(&t, "u", "v");
    }
    t.reason = LF_REASON_SCORE_DECAY;
    t.trigger[0] = '\0';
    lf_tr_check_all(&t, "u", NULL);
    CHECK_STR(lf_reason_name(LF_REASON_SCORE_DECAY), "score_decay");
    CHECK_STR(lf_reason_name(LF_REASON_SALES_EVENT), "sales_event");
}

/* Ids and triggers come from events: quotes, backslashes, control bytes and UTF-8 survive
 * both encodings exactly. */
static void test_transition_escaping(void)
{
    lf_transition_t t = lf_tr_sample();
    const char *lead = "a\"b\\c\nd\te\x01f/é😀";
    snprintf(t.trigger, sizeof(t.trigger), "m\"\\\x1f");
    lf_tr_check_all(&t, lead, "r\"1\n");
    char buf[LF_TRANSITION_MAX_BYTES];
    int n = lf_transition_encode(&t, lead, "r", 1, buf, sizeof(buf));
    CHECK(n > 0);
    CHECK(memchr(buf, '\n', (size_t)n) == NULL); /* one line: a newline is escaped */
    CHECK(memchr(buf, '\x01', (size_t)n) == NULL);
}

/* Numbers at their edges: a large seq and time, negative and fractional scores. */
static void test_transition_numbers(void)
{
    lf_transition_t t = lf_tr_sample();
    /* cJSON prints 15 significant digits when they read back nearly equal: integers are exact
     * below 10^15 (a seq or a time in ms far beyond any real one), not up to 2^53. */
    t.seq = 999999999999999ULL;
    t.at_ms = 4102444800000LL;
    t.score = -12.5;
    t.fit = 0.1;
    t.engagement = -12.6;
    lf_tr_check_all(&t, "u", "v");
    t.seq = 1;
    t.at_ms = 0;
    t.score = t.fit = t.engagement = 0;
    lf_tr_check_all(&t, "u", "v");
}

/* The longest lead id fits LF_TRANSITION_MAX_BYTES; a buffer too small is refused. */
static void test_transition_bounds(void)
{
    lf_transition_t t = lf_tr_sample();
    char lead[LF_ID_MAX + 1], buf[LF_TRANSITION_MAX_BYTES];
    memset(lead, 'x', LF_ID_MAX);
    lead[LF_ID_MAX] = '\0';
    memset(t.trigger, 'm', LF_ID_MAX);
    t.trigger[LF_ID_MAX] = '\0';
    lf_tr_check_all(&t, lead, "rules-v7");
    for (int json = 0; json <= 1; json++) {
        int n = lf_transition_encode(&t, "u-42", "v", json, buf, sizeof(buf));
        CHECK(n > 0);
        CHECK_INT(lf_transition_encode(&t, "u-42", "v", json, buf, (size_t)n / 2), -1);
    }
}

/*---- A recycle's policy fields ---------------------------------------------------------*/

typedef struct {
    int n; /* members */
    char recycle[16], requalify[16];
    double factor;
    int has_factor;
    long long requalify_at;
} lf_tr_recycle_t;

static void lf_tr_recycle_json(const char *buf, int len, lf_tr_recycle_t *r)
{
    memset(r, 0, sizeof(*r));
    cJSON *o = cJSON_ParseWithLength(buf, (size_t)len);
    for (const cJSON *c = o ? o->child : NULL; c; c = c->next, r->n++) {
        if (strcmp(c->string, "recycle") == 0 && cJSON_IsString(c))
            snprintf(r->recycle, sizeof(r->recycle), "%s", c->valuestring);
        else if (strcmp(c->string, "requalify") == 0 && cJSON_IsString(c))
            snprintf(r->requalify, sizeof(r->requalify), "%s", c->valuestring);
        else if (strcmp(c->string, "recycle_factor") == 0 && cJSON_IsNumber(c))
            r->factor = c->valuedouble, r->has_factor = 1;
        else if (strcmp(c->string, "requalify_at") == 0 && cJSON_IsNumber(c))
            r->requalify_at = (long long)c->valuedouble;
    }
    cJSON_Delete(o);
}

static int lf_key_is(const msgpack_object *k, const char *s)
{
    return k->type == MSGPACK_OBJECT_STR && k->via.str.size == strlen(s) &&
           memcmp(k->via.str.ptr, s, k->via.str.size) == 0;
}

static void lf_tr_recycle_msgpack(const char *buf, int len, lf_tr_recycle_t *r)
{
    msgpack_unpacked u;
    size_t off = 0;
    memset(r, 0, sizeof(*r));
    msgpack_unpacked_init(&u);
    if (msgpack_unpack_next(&u, buf, (size_t)len, &off) == MSGPACK_UNPACK_SUCCESS &&
        u.data.type == MSGPACK_OBJECT_MAP) {
        for (uint32_t i = 0; i < u.data.via.map.size; i++, r->n++) {
            const msgpack_object *k = &u.data.via.map.ptr[i].key, *v = &u.data.via.map.ptr[i].val;
            if ((lf_key_is(k, "recycle") || lf_key_is(k, "requalify")) &&
                v->type == MSGPACK_OBJECT_STR)
                snprintf(lf_key_is(k, "recycle") ? r->recycle : r->requalify, sizeof(r->recycle),
                         "%.*s", (int)v->via.str.size, v->via.str.ptr);
            else if (lf_key_is(k, "recycle_factor") && v->type == MSGPACK_OBJECT_FLOAT64)
                r->factor = v->via.f64, r->has_factor = 1;
            else if (lf_key_is(k, "requalify_at") && v->type == MSGPACK_OBJECT_POSITIVE_INTEGER)
                r->requalify_at = (long long)v->via.u64;
        }
    }
    msgpack_unpacked_destroy(&u);
}

/* A recycle's transition adds recycle, recycle_factor (scale only), requalify and
 * requalify_at after the 13 fields, which stay byte for byte what they were; a transition
 * that is not a recycle has none of them, whatever the other fields hold. */
static void test_transition_recycle_fields(void)
{
    lf_transition_t t = lf_tr_sample();
    t.from = LF_STAGE_SQL;
    t.to = LF_STAGE_NURTURE;
    t.reason = LF_REASON_SALES_EVENT;
    char plain[2][LF_TRANSITION_MAX_BYTES], buf[LF_TRANSITION_MAX_BYTES];
    int plain_n[2];
    for (int json = 0; json <= 1; json++)
        plain_n[json] = lf_transition_encode(&t, "u1", "v1", json, plain[json], sizeof(plain[0]));
    t.recycled = 1;
    t.recycle = LF_RECYCLE_SCALE;
    t.recycle_factor = 0.25;
    t.requalify = LF_REQUALIFY_BELOW_ENTER;
    t.requalify_at_ms = 1769817600123LL;
    for (int json = 0; json <= 1; json++) {
        lf_tr_recycle_t r;
        int n = lf_transition_encode(&t, "u1", "v1", json, buf, sizeof(buf));
        CHECK(n > plain_n[json]);
        if (json) {
            lf_tr_recycle_json(buf, n, &r);
            /* The same text up to the closing brace of the 13 fields. */
            CHECK(memcmp(buf, plain[json], (size_t)plain_n[json] - 1) == 0);
        } else {
            lf_tr_recycle_msgpack(buf, n, &r);
            /* A map of 17 (map 16, 3 bytes) instead of 13 (fixmap), then the same pairs. */
            CHECK((unsigned char)buf[0] == 0xde && buf[1] == 0 && buf[2] == 17);
            CHECK((unsigned char)plain[json][0] == 0x80 + 13);
            CHECK(memcmp(buf + 3, plain[json] + 1, (size_t)plain_n[json] - 1) == 0);
        }
        CHECK_INT(r.n, 17);
        CHECK_STR(r.recycle, "scale");
        CHECK(r.has_factor && r.factor == 0.25);
        CHECK_STR(r.requalify, "below_enter");
        CHECK_INT(r.requalify_at, 1769817600123LL);
    }
    t.recycle = LF_RECYCLE_RESET;
    t.requalify = LF_REQUALIFY_COOLDOWN;
    for (int json = 0; json <= 1; json++) {
        lf_tr_recycle_t r;
        int n = lf_transition_encode(&t, "u1", "v1", json, buf, sizeof(buf));
        if (json)
            lf_tr_recycle_json(buf, n, &r);
        else
            lf_tr_recycle_msgpack(buf, n, &r);
        CHECK_INT(r.n, 16);
        CHECK_STR(r.recycle, "reset");
        CHECK(!r.has_factor);
        CHECK_STR(r.requalify, "cooldown");
    }
    /* Not a recycle: the 13 fields, the same bytes, whatever else is set. */
    t.recycled = 0;
    for (int json = 0; json <= 1; json++) {
        int n = lf_transition_encode(&t, "u1", "v1", json, buf, sizeof(buf));
        CHECK_INT(n, plain_n[json]);
        CHECK(memcmp(buf, plain[json], (size_t)n) == 0);
    }
}

/* With a challenger split the pipeline names the model: one more field, `model`, last; the
 * rest byte for byte as without it. */
static void test_transition_model_field(void)
{
    lf_transition_t t = lf_tr_sample();
    char plain[LF_TRANSITION_MAX_BYTES], buf[LF_TRANSITION_MAX_BYTES];
    for (int json = 0; json <= 1; json++) {
        t.model = NULL;
        int pn = lf_transition_encode(&t, "u1", "v1", json, plain, sizeof(plain));
        t.model = "champion"; /* the challenger's have ids of their own: test_transition_fields */
        int n = lf_transition_encode(&t, "u1", "v1", json, buf, sizeof(buf));
        CHECK(pn > 0 && n > pn);
        if (json) {
            cJSON *o = cJSON_ParseWithLength(buf, (size_t)n);
            CHECK(o != NULL);
            CHECK_STR(cJSON_GetObjectItem(o, "model")->valuestring, "champion");
            CHECK_INT(cJSON_GetArraySize(o), 14);
            cJSON_Delete(o);
            CHECK(memcmp(buf, plain, (size_t)pn - 1) == 0);
        } else {
            CHECK((unsigned char)buf[0] == 0x80 + 14 && (unsigned char)plain[0] == 0x80 + 13);
            CHECK(memcmp(buf + 1, plain + 1, (size_t)pn - 1) == 0);
            /* fixstr "model", fixstr "champion" */
            CHECK(memcmp(buf + pn,
                         "\xa5model\xa8"
                         "champion",
                         15) == 0);
            CHECK_INT(n, pn + 15);
        }
    }
}

void suite_transition(void)
{
    LF_RUN(test_transition_model_field);
    LF_RUN(test_transition_fields);
    LF_RUN(test_transition_names);
    LF_RUN(test_transition_escaping);
    LF_RUN(test_transition_numbers);
    LF_RUN(test_transition_bounds);
    LF_RUN(test_transition_recycle_fields);
}
