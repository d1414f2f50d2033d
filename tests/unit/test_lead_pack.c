/* The packed lead record (lead_pack.c) through the codec (lead_codec.c): every field of a lead
 * and of a visitor's self-contained record survives lf_lead_encode + lf_lead_decode; a record
 * cut into parts p, p2, ... of <= 64 bytes reads back in any field order; the layout before
 * (one field per value, lead_codec_v1.c) still reads and is rewritten in the current one; a
 * newer format is refused with a message; corrupt, truncated or incomplete records are refused
 * without a crash (ASan in CI); lf_lead_pack_version reads the first part alone. */
#include <inttypes.h>
#include <stdlib.h>

#include "fixture.h"
#include "leadflow/argv.h"
#include "leadflow/lead_codec.h"
#include "leadflow/lead_pack.h"
#include "leadflow/stage.h"
#include "test.h"

#define T0 1767225600000LL /* 2026-01-01T00:00:00Z */

/* Rules: form (30), views (4, capped 10 a day), demo (8, capped 20 a week); tracked traits
 * company_tier, employees. */
static lf_model_t *lf_pack_model(void)
{
    lf_model_t *m = lf_test_model();
    lf_test_rule(m, "form", "form_submit", 30, 0, 0);
    lf_test_rule(m, "views", "page_view", 4, 10, LF_DAY_MS);
    lf_test_rule(m, "demo", "video_view", 8, 20, 7 * LF_DAY_MS);
    lf_test_fit(m, "ent", "company_tier", "enterprise", 20);
    lf_test_fit(m, "big", "employees", NULL, 5);
    return m;
}

/* A known lead with every packed field set, each to a value that tests its encoding. */
static lf_lead_t lf_full_lead(void)
{
    lf_lead_t l;
    lf_lead_init(&l, lf_str_from("u42"));
    l.exists = 1;
    l.stage = LF_STAGE_MQL;
    l.seq = 9;
    l.fit = 25;
    l.eng = 37.123456789;
    l.t_ms = T0 + 123456789;
    l.first_seen_ms = T0 - 400LL * LF_DAY_MS + 17; /* over a year before t */
    l.last_seen_ms = l.t_ms;
    l.stage_at_ms = T0 + 1000;
    l.counters[LF_KIND_OTHER] = 3;
    l.counters[LF_KIND_PAGE_VIEW] = 70000; /* > 16 bits */
    l.counters[LF_KIND_FORM_SUBMIT] = 2;
    l.counters[LF_KIND_ALIAS] = 1; /* the last kind */
    l.events = 70006;
    snprintf(l.first_touch.source, sizeof(l.first_touch.source), "linkedin");
    snprintf(l.first_touch.medium, sizeof(l.first_touch.medium), "social");
    snprintf(l.first_touch.campaign, sizeof(l.first_touch.campaign), "q1 launch \xc3\xa9t\xc3\xa9");
    l.first_touch.at_ms = l.first_seen_ms;
    snprintf(l.last_touch.source, sizeof(l.last_touch.source), "google");
    snprintf(l.last_touch.medium, sizeof(l.last_touch.medium), "cpc");
    memset(l.last_touch.campaign, 'c', LF_TOUCH_MAX); /* the longest a touch value can be */
    l.last_touch.campaign[LF_TOUCH_MAX] = '\0';
    l.last_touch.at_ms = l.t_ms - 5000;
    l.ntraits = 2;
    l.traits[0].idx = 0;
    snprintf(l.traits[0].val, sizeof(l.traits[0].val), "enterprise");
    l.traits[1].idx = 1;
    snprintf(l.traits[1].val, sizeof(l.traits[1].val), "1500");
    l.traits[1].num = 1500;
    l.traits[1].is_num = 1;
    /* Caps in rule order, windows ascending (the order they are packed in). */
    l.ncaps = 2;
    l.caps[0].rule = 1;
    l.caps[0].n = 3;
    int64_t day = l.t_ms / LF_DAY_MS;
    for (int w = 0; w < 3; w++) {
        l.caps[0].window[w] = day - 2 + w;
        l.caps[0].granted[w] = w == 1 ? 2.5 : 10; /* a fraction packs as a double */
    }
    l.caps[1].rule = 2;
    l.caps[1].n = LF_CAP_WINDOWS;
    for (int w = 0; w < LF_CAP_WINDOWS; w++) {
        l.caps[1].window[w] = l.t_ms / (7 * LF_DAY_MS) - 30 + w * 10;
        l.caps[1].granted[w] = 8 * (w + 1) * 0.3;
    }
    /* Remembered ids, newest first: one at t's second, equal seconds, small and huge deltas
     * (a gap of 30 days, then one of ~2^40 s: a varint of 6 bytes). */
    int64_t sec = lf_dedup_sec(l.t_ms);
    int64_t secs[] = {sec,
                      sec,
                      sec - 1,
                      sec - 127,
                      sec - 128,
                      sec - 30LL * 86400,
                      sec - 30LL * 86400 - (1LL << 40)};
    for (size_t i = 0; i < sizeof(secs) / sizeof(secs[0]); i++)
        lf_lead_dedup_add(&l, lf_hash64(&i, sizeof(i)) & LF_DEDUP_MASK, secs[i]);
    l.nsrc = 3;
    l.src[0].partition = 0;
    l.src[0].offset = 0;
    l.src[1].partition = 7;
    l.src[1].offset = 123456789012345LL;
    l.src[2].partition = INT32_MAX;
    l.src[2].offset = 42;
    /* A full history, oldest first. */
    static const uint8_t path[][3] = {
        {LF_STAGE_VISITOR, LF_STAGE_LEAD, LF_REASON_IDENTIFY},
        {LF_STAGE_LEAD, LF_STAGE_MQL, LF_REASON_SCORE_THRESHOLD},
        {LF_STAGE_MQL, LF_STAGE_NURTURE, LF_REASON_SCORE_DECAY},
        {LF_STAGE_NURTURE, LF_STAGE_MQL, LF_REASON_SCORE_THRESHOLD},
        {LF_STAGE_MQL, LF_STAGE_SAL, LF_REASON_SALES_EVENT},
        {LF_STAGE_SAL, LF_STAGE_NURTURE, LF_REASON_SALES_EVENT},
        {LF_STAGE_NURTURE, LF_STAGE_MQL, LF_REASON_SCORE_THRESHOLD},
        {LF_STAGE_MQL, LF_STAGE_MQL, LF_REASON_SCORE_DROP},
    };
    for (int i = 0; i < LF_HISTORY_KEEP; i++) {
        lf_history_t h = {
            (uint64_t)(i + 2), path[i][0], path[i][1], path[i][2], T0 - (8 - i) * LF_DAY_MS + i,
            60.25 + i * 1001.5};
        lf_lead_history_add(&l, &h);
    }
    l.requalify = 1;
    l.version = (1ULL << 40) + 3;
    snprintf(l.rules_version, sizeof(l.rules_version), "test-1"); /* the model's */
    return l;
}

/* A visitor: its own stage, seq, fit, eng and t in the record. */
static lf_lead_t lf_full_visitor(void)
{
    lf_lead_t v;
    lf_lead_init(&v, lf_str_from("a-7c1e"));
    v.exists = 1;
    v.anonymous = 1;
    v.stage = LF_STAGE_VISITOR;
    v.fit = 0.5;
    v.eng = 12.75e-3;
    v.t_ms = T0 + 77;
    v.first_seen_ms = v.last_seen_ms = v.stage_at_ms = T0 - 3 * LF_DAY_MS;
    v.last_seen_ms = v.t_ms;
    v.counters[LF_KIND_PAGE_VIEW] = 4;
    v.events = 4;
    snprintf(v.first_touch.source, sizeof(v.first_touch.source), "newsletter");
    v.first_touch.at_ms = v.first_seen_ms;
    v.last_touch = v.first_touch; /* equal: packed as nil */
    v.ntraits = 1;
    v.traits[0].idx = 0;
    snprintf(v.traits[0].val, sizeof(v.traits[0].val), "smb");
    lf_lead_dedup_add(&v, 0xABCDEF012345ULL, lf_dedup_sec(v.t_ms) - 10);
    lf_lead_dedup_add(&v, 0x000000000001ULL, lf_dedup_sec(v.t_ms));
    v.nsrc = 1;
    v.src[0].partition = 3;
    v.src[0].offset = 99;
    v.version = 4;
    v.expires_s = T0 / 1000 + 30 * 86400;
    return v; /* rules_version "": a visitor's record has none */
}

/* Every field of two leads alike; reports the first that differs. */
static int lf_same_lead(const lf_lead_t *a, const lf_lead_t *b, int line)
{
#define SAME(cond)                                                                                 \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            lf_test_fail(__FILE__, line, "round trip: %s", #cond);                                 \
            return 0;                                                                              \
        }                                                                                          \
    } while (0)
    SAME(!strcmp(a->id, b->id));
    SAME(a->exists == b->exists && a->anonymous == b->anonymous);
    SAME(a->stage == b->stage && a->seq == b->seq);
    SAME(a->fit == b->fit && a->eng == b->eng && a->t_ms == b->t_ms);
    SAME(a->first_seen_ms == b->first_seen_ms && a->last_seen_ms == b->last_seen_ms);
    SAME(a->stage_at_ms == b->stage_at_ms);
    for (int k = 0; k < LF_KIND__COUNT; k++)
        SAME(a->counters[k] == b->counters[k]);
    SAME(a->events == b->events);
    const lf_touch_t *ta[2] = {&a->first_touch, &a->last_touch},
                     *tb[2] = {&b->first_touch, &b->last_touch};
    for (int k = 0; k < 2; k++) {
        SAME(!strcmp(ta[k]->source, tb[k]->source) && !strcmp(ta[k]->medium, tb[k]->medium));
        SAME(!strcmp(ta[k]->campaign, tb[k]->campaign) && ta[k]->at_ms == tb[k]->at_ms);
    }
    SAME(a->ntraits == b->ntraits);
    for (int i = 0; i < a->ntraits; i++) {
        SAME(a->traits[i].idx == b->traits[i].idx && !strcmp(a->traits[i].val, b->traits[i].val));
        SAME(a->traits[i].is_num == b->traits[i].is_num);
        SAME(!a->traits[i].is_num || a->traits[i].num == b->traits[i].num);
    }
    SAME(a->ncaps == b->ncaps);
    for (int i = 0; i < a->ncaps; i++) {
        SAME(a->caps[i].rule == b->caps[i].rule && a->caps[i].n == b->caps[i].n);
        for (int w = 0; w < a->caps[i].n; w++)
            SAME(a->caps[i].window[w] == b->caps[i].window[w] &&
                 a->caps[i].granted[w] == b->caps[i].granted[w]);
    }
    SAME(a->ndedup == b->ndedup);
    for (int i = 0; i < a->ndedup; i++)
        SAME(a->dedup[i].hash == b->dedup[i].hash && a->dedup[i].sec == b->dedup[i].sec);
    SAME(a->requalify == b->requalify && a->requalify_at_ms == b->requalify_at_ms);
    SAME(a->nhistory == b->nhistory);
    for (int i = 0; i < a->nhistory; i++) {
        const lf_history_t *x = &a->history[i], *y = &b->history[i];
        SAME(x->seq == y->seq && x->from == y->from && x->to == y->to && x->reason == y->reason);
        SAME(x->at_ms == y->at_ms && x->score == y->score);
    }
    SAME(a->version == b->version);
    SAME(a->nsrc == b->nsrc);
    for (int i = 0; i < a->nsrc; i++)
        SAME(a->src[i].partition == b->src[i].partition && a->src[i].offset == b->src[i].offset);
    SAME(a->layout == b->layout && a->expires_s == b->expires_s);
    SAME(!strcmp(a->rules_version, b->rules_version));
#undef SAME
    return 1;
}
#define CHECK_SAME_LEAD(a, b)                                                                      \
    do {                                                                                           \
        if (!lf_same_lead((a), (b), __LINE__)) return;                                             \
    } while (0)

/* Pairs of an argv as two arrays (at most 128 pairs). */
typedef struct {
    lf_str_t f[160], v[160];
    size_t n;
} lf_pairs_t;

static void lf_pairs_of(lf_pairs_t *p, const lf_argv_t *a)
{
    p->n = a->n / 2;
    for (size_t i = 0; i < p->n && i < 160; i++) {
        p->f[i] = (lf_str_t){a->argv[2 * i], (uint32_t)a->lens[2 * i]};
        p->v[i] = (lf_str_t){a->argv[2 * i + 1], (uint32_t)a->lens[2 * i + 1]};
    }
}

static int lf_decode_pairs(lf_lead_t *out, const char *id, const lf_pairs_t *p, const lf_model_t *m,
                           lf_err_t *err)
{
    return lf_lead_decode(out, lf_str_from(id), p->f, p->v, p->n, m, err);
}

/* The value of field f, or NULL. */
static const lf_str_t *lf_pair_value(const lf_pairs_t *p, const char *f)
{
    for (size_t i = 0; i < p->n; i++)
        if (lf_str_eq(p->f[i], f)) return &p->v[i];
    return NULL;
}

/* The packed bytes: the parts p, p2, ... joined (into buf); their number in *nparts. */
static size_t lf_joined_parts(const lf_pairs_t *p, char *buf, size_t cap, int *nparts)
{
    size_t len = 0;
    *nparts = 0;
    for (int k = 1; k < 128; k++) {
        char name[8];
        snprintf(name, sizeof(name), k == 1 ? "p" : "p%d", k);
        const lf_str_t *v = lf_pair_value(p, name);
        if (!v) break;
        if (len + v->len <= cap) memcpy(buf + len, v->ptr, v->len);
        len += v->len;
        (*nparts)++;
    }
    return len;
}

/*---- Round trips -----------------------------------------------------------------------*/

static void test_pack_round_trip_every_field(void)
{
    lf_model_t *m = lf_pack_model();
    lf_arena_t arena;
    lf_arena_init(&arena, 4096);
    lf_argv_t a;
    lf_argv_init_scratch(&a, &arena);
    lf_lead_t l = lf_full_lead();
    lf_lead_encode(&l, m, &a);
    lf_pairs_t p;
    lf_pairs_of(&p, &a);
    /* The readable fields, in order, then the parts. */
    static const char *const readable[] = {"stage", "seq", "grade", "score", "fit", "eng", "t"};
    for (size_t i = 0; i < 7; i++)
        CHECK_SV(p.f[i], readable[i]);
    CHECK_SV(p.v[0], "mql");
    CHECK_SV(p.v[1], "9");
    CHECK_SV(p.v[2], "L2"); /* 62.12: L2 from 40 */
    CHECK_SV(p.v[6], "1767349056789");
    CHECK_SV(p.f[7], "p");
    for (size_t i = 0; i < p.n; i++) {
        CHECK(p.v[i].len <= LF_PACK_PART);
        CHECK(!(p.f[i].len >= 1 && p.f[i].ptr[0] == 'h' && p.f[i].len <= 2)); /* no h0..h7 */
    }
    lf_lead_t back;
    lf_err_t err = {0};
    CHECK_INT(lf_decode_pairs(&back, "u42", &p, m, &err), LF_OK);
    CHECK_INT(back.layout, 0);
    CHECK_SAME_LEAD(&back, &l);
    /* Decoded and encoded again: the same bytes (the cache and the diffs rely on it). */
    lf_argv_t b;
    lf_argv_init_scratch(&b, &arena);
    lf_lead_encode(&back, m, &b);
    CHECK_INT(b.n, a.n);
    for (size_t i = 0; i < a.n; i++)
        CHECK(a.lens[i] == b.lens[i] && memcmp(a.argv[i], b.argv[i], a.lens[i]) == 0);
    lf_arena_free(&arena);
    lf_test_model_free(m);
}

/* The "last touch equals first" case packs nil and reads back as the first touch; no touch
 * at all reads back as none; a lead with nothing but its readable fields round-trips. */
static void test_pack_touch_nil_cases_and_empty_lead(void)
{
    lf_model_t *m = lf_pack_model();
    lf_arena_t arena;
    lf_arena_init(&arena, 4096);
    lf_lead_t l = lf_full_lead();
    l.last_touch = l.first_touch;
    lf_argv_t a;
    lf_argv_init_scratch(&a, &arena);
    lf_lead_encode(&l, m, &a);
    lf_pairs_t p;
    lf_pairs_of(&p, &a);
    lf_lead_t back;
    lf_err_t err = {0};
    CHECK_INT(lf_decode_pairs(&back, "u42", &p, m, &err), LF_OK);
    CHECK_SAME_LEAD(&back, &l);
    /* The record is shorter than with two different touches. */
    lf_lead_t two = lf_full_lead();
    lf_argv_t b;
    lf_argv_init_scratch(&b, &arena);
    lf_lead_encode(&two, m, &b);
    lf_pairs_t q;
    lf_pairs_of(&q, &b);
    char buf1[4096], buf2[4096];
    int n1, n2;
    CHECK(lf_joined_parts(&p, buf1, sizeof(buf1), &n1) + 10 <
          lf_joined_parts(&q, buf2, sizeof(buf2), &n2));

    lf_lead_t e;
    lf_lead_init(&e, lf_str_from("u0"));
    e.exists = 1;
    e.stage = LF_STAGE_LEAD;
    e.t_ms = -5000; /* before 1970 */
    e.first_seen_ms = e.last_seen_ms = e.stage_at_ms = -5000;
    snprintf(e.rules_version, sizeof(e.rules_version), "test-1");
    lf_argv_reset(&a);
    lf_lead_encode(&e, m, &a);
    lf_pairs_of(&p, &a);
    CHECK_INT(p.n, 8); /* seven readable fields and p */
    CHECK_INT(lf_decode_pairs(&back, "u0", &p, m, &err), LF_OK);
    CHECK_SAME_LEAD(&back, &e);
    CHECK_INT(back.first_touch.at_ms, 0);
    CHECK_INT(back.last_touch.at_ms, 0);
    lf_arena_free(&arena);
    lf_test_model_free(m);
}

/* A visitor is the single pair ("p", its self-contained record), which may be longer than
 * 64 bytes (a string key, not a hash); every field reads back from it alone. */
static void test_pack_visitor_self_contained(void)
{
    lf_model_t *m = lf_pack_model();
    lf_arena_t arena;
    lf_arena_init(&arena, 4096);
    lf_argv_t a;
    lf_argv_init_scratch(&a, &arena);
    lf_lead_t v = lf_full_visitor();
    lf_lead_encode(&v, m, &a);
    CHECK_INT(a.n, 2);
    lf_pairs_t p;
    lf_pairs_of(&p, &a);
    CHECK_SV(p.f[0], "p");
    lf_lead_t back;
    lf_err_t err = {0};
    CHECK_INT(lf_decode_pairs(&back, "a-7c1e", &p, m, &err), LF_OK);
    CHECK_SAME_LEAD(&back, &v);
    /* Another stage, seq and whole numbers (packed as integers) also come back. */
    v.stage = LF_STAGE_LEAD;
    v.seq = 300;
    v.fit = 5;
    v.eng = 1e6;
    v.t_ms = -1;
    v.first_seen_ms = v.last_seen_ms = v.stage_at_ms = v.first_touch.at_ms = -86400000LL * 365;
    v.last_touch = v.first_touch;
    v.ndedup = 0;
    lf_argv_reset(&a);
    lf_lead_encode(&v, m, &a);
    lf_pairs_of(&p, &a);
    CHECK_INT(lf_decode_pairs(&back, "a-7c1e", &p, m, &err), LF_OK);
    CHECK_SAME_LEAD(&back, &v);
    lf_arena_free(&arena);
    lf_test_model_free(m);
}

/* A recycled lead's requalify time (absolute, a month after t) is appended as element 17
 * and reads back; without one the record has its 17 elements as before (and an older record
 * reads back with none, 0); a visitor's record never carries it. */
static void test_pack_requalify_time(void)
{
    lf_model_t *m = lf_pack_model();
    lf_arena_t arena;
    lf_arena_init(&arena, 4096);
    lf_argv_t a;
    lf_argv_init_scratch(&a, &arena);
    lf_lead_t l = lf_full_lead();
    l.stage = LF_STAGE_NURTURE;
    l.requalify = 1;
    l.requalify_at_ms = l.t_ms + 30 * LF_DAY_MS;
    lf_lead_encode(&l, m, &a);
    lf_pairs_t p;
    lf_pairs_of(&p, &a);
    char rec[4096];
    int nparts;
    size_t len = lf_joined_parts(&p, rec, sizeof(rec), &nparts);
    CHECK((unsigned char)rec[0] == 0xdc && rec[1] == 0 && rec[2] == 18);
    /* The last element: t - requalify time = -30 days in ms, an int64. */
    CHECK((unsigned char)rec[len - 9] == 0xd3);
    lf_lead_t back;
    lf_err_t err = {0};
    CHECK_INT(lf_decode_pairs(&back, "u42", &p, m, &err), LF_OK);
    CHECK_INT(back.requalify_at_ms, l.t_ms + 30 * LF_DAY_MS);
    CHECK_SAME_LEAD(&back, &l);
    lf_argv_t b;
    lf_argv_init_scratch(&b, &arena);
    lf_lead_encode(&back, m, &b);
    CHECK_INT(b.n, a.n);
    for (size_t i = 0; i < a.n; i++)
        CHECK(a.lens[i] == b.lens[i] && memcmp(a.argv[i], b.argv[i], a.lens[i]) == 0);

    /* None: 17 elements, exactly the record written before requalify times existed. */
    l.requalify_at_ms = 0;
    lf_argv_reset(&a);
    lf_lead_encode(&l, m, &a);
    lf_pairs_of(&p, &a);
    len = lf_joined_parts(&p, rec, sizeof(rec), &nparts);
    CHECK((unsigned char)rec[0] == 0xdc && rec[1] == 0 && rec[2] == 17);
    lf_lead_init(&back, lf_str_from("u42"));
    back.requalify_at_ms = 12345; /* the decoder sets it */
    CHECK_INT(lf_decode_pairs(&back, "u42", &p, m, &err), LF_OK);
    CHECK_INT(back.requalify_at_ms, 0);

    /* A visitor is never recycled: its self-contained record has no room for one. */
    lf_lead_t v = lf_full_visitor();
    v.requalify_at_ms = v.t_ms + LF_DAY_MS;
    lf_argv_reset(&a);
    lf_lead_encode(&v, m, &a);
    lf_pairs_of(&p, &a);
    CHECK((unsigned char)p.v[0].ptr[0] == 0xdc && p.v[0].ptr[2] == 22);
    CHECK_INT(lf_decode_pairs(&back, "a-7c1e", &p, m, &err), LF_OK);
    CHECK_INT(back.requalify_at_ms, 0);
    lf_arena_free(&arena);
    lf_test_model_free(m);
}

/* Traits and capped rules the model no longer has are dropped on reading; a rule still there
 * but no longer capped too. */
static void test_pack_drops_what_the_model_lost(void)
{
    lf_model_t *m = lf_pack_model();
    lf_arena_t arena;
    lf_arena_init(&arena, 4096);
    lf_argv_t a;
    lf_argv_init_scratch(&a, &arena);
    lf_lead_t l = lf_full_lead();
    lf_lead_encode(&l, m, &a);
    lf_pairs_t p;
    lf_pairs_of(&p, &a);
    lf_model_t *m2 = lf_test_model();
    lf_test_rule(m2, "demo", "video_view", 8, 20, 7 * LF_DAY_MS); /* now rule 0 */
    lf_test_rule(m2, "views", "page_view", 4, 0, 0);              /* no longer capped */
    lf_test_fit(m2, "big", "employees", NULL, 5);                 /* now trait 0 */
    lf_lead_t back;
    lf_err_t err = {0};
    CHECK_INT(lf_decode_pairs(&back, "u42", &p, m2, &err), LF_OK);
    CHECK_INT(back.ntraits, 1);
    CHECK_INT(back.traits[0].idx, 0);
    CHECK_STR(back.traits[0].val, "1500");
    CHECK(back.traits[0].is_num && back.traits[0].num == 1500);
    CHECK_INT(back.ncaps, 1);
    CHECK_INT(back.caps[0].rule, 0);
    CHECK_INT(back.caps[0].n, LF_CAP_WINDOWS);
    CHECK(back.caps[0].granted[3] == l.caps[1].granted[3]);
    CHECK_INT(back.ndedup, l.ndedup);
    CHECK_INT(back.nhistory, LF_HISTORY_KEEP);
    lf_test_model_free(m2);
    lf_arena_free(&arena);
    lf_test_model_free(m);
}

/* A lead holding two entries for one capped rule (a hash of the layout before with both its
 * "cap" field and the "cap.<rule>" ones, or a corrupt record naming a rule twice) still packs
 * into a record that reads back: one entry per rule. */
static void test_pack_caps_one_entry_per_rule(void)
{
    lf_model_t *m = lf_pack_model();
    lf_str_t f[3] = {lf_str_from("t"), lf_str_from("cap"), lf_str_from("cap.views")};
    lf_str_t v[3] = {lf_str_from("1767225600000"), lf_str_from("views:20454=4,20453=8"),
                     lf_str_from("20454=8")};
    lf_lead_t l;
    lf_err_t err = {0};
    CHECK_INT(lf_lead_decode(&l, lf_str_from("u1"), f, v, 3, m, &err), LF_OK);
    lf_arena_t arena;
    lf_arena_init(&arena, 4096);
    lf_argv_t a;
    lf_argv_init_scratch(&a, &arena);
    lf_lead_encode(&l, m, &a);
    lf_pairs_t p;
    lf_pairs_of(&p, &a);
    lf_lead_t back;
    if (lf_decode_pairs(&back, "u1", &p, m, &err) != LF_OK) {
        lf_test_fail(__FILE__, __LINE__, "the record written does not read back: %s", err.msg);
        lf_arena_free(&arena);
        lf_test_model_free(m);
        return;
    }
    CHECK_INT(back.ncaps, 1);
    CHECK_INT(back.caps[0].rule, 1);
    lf_arena_free(&arena);
    lf_test_model_free(m);
}

/* The largest record a lead can have (every id remembered, the longest deltas, a full
 * history, every counter, traits and caps) is cut into parts p, p2, ... of <= 64 bytes,
 * within Redis's 128 fields for a compact hash, and reads back whatever the field order. */
static void test_pack_parts_of_a_large_record(void)
{
    lf_model_t *m = lf_pack_model();
    lf_arena_t arena;
    lf_arena_init(&arena, 4096);
    lf_lead_t l = lf_full_lead();
    l.ndedup = 0;
    int64_t sec = lf_dedup_sec(l.t_ms);
    for (int i = 0; i < LF_DEDUP_MAX; i++) {
        sec -= i < 76 ? 32768 : 1024;
        lf_lead_dedup_add(&l, lf_hash64(&i, sizeof(i)) & LF_DEDUP_MASK, sec);
    }
    CHECK_INT(l.ndedup, LF_DEDUP_MAX);
    for (int k = 0; k < LF_KIND__COUNT; k++)
        l.counters[k] = 100000u + (uint32_t)k;
    l.nsrc = LF_LEAD_SRC_MAX;
    for (int i = 0; i < LF_LEAD_SRC_MAX; i++) {
        l.src[i].partition = 1000 + i;
        l.src[i].offset = (1LL << 50) + i;
    }
    lf_argv_t a;
    lf_argv_init_scratch(&a, &arena);
    lf_lead_encode(&l, m, &a);
    lf_pairs_t p;
    lf_pairs_of(&p, &a);
    char joined[8192];
    int nparts;
    size_t len = lf_joined_parts(&p, joined, sizeof(joined), &nparts);
    CHECK(nparts > 20);
    CHECK_INT(p.n, 7 + (size_t)nparts); /* nothing else */
    CHECK(p.n < 128);
    CHECK_INT(len, (size_t)(nparts - 1) * LF_PACK_PART + p.v[p.n - 1].len);
    for (size_t i = 0; i < p.n; i++)
        CHECK(p.v[i].len <= LF_PACK_PART);
    lf_lead_t back;
    lf_err_t err = {0};
    CHECK_INT(lf_decode_pairs(&back, "u42", &p, m, &err), LF_OK);
    CHECK_SAME_LEAD(&back, &l);
    /* Any order of the fields (HGETALL's order is Redis's). */
    lf_pairs_t r;
    r.n = p.n;
    for (size_t i = 0; i < p.n; i++) {
        r.f[i] = p.f[p.n - 1 - i];
        r.v[i] = p.v[p.n - 1 - i];
    }
    CHECK_INT(lf_decode_pairs(&back, "u42", &r, m, &err), LF_OK);
    CHECK_SAME_LEAD(&back, &l);
    lf_arena_free(&arena);
    lf_test_model_free(m);
}

/*---- The layout before -----------------------------------------------------------------*/

static const char lf_b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/* The dedup text as the layout before wrote it: per entry the seconds back from the one
 * before (t's second for the first) as a varint of 5 bits per character, low bits first,
 * +32 while more follow, then the 48-bit hash in 8 characters. */
static size_t lf_v1_dedup_text(const lf_lead_t *l, char *out)
{
    size_t n = 0;
    int64_t prev = lf_dedup_sec(l->t_ms);
    for (int i = 0; i < l->ndedup; i++) {
        uint64_t d = (uint64_t)(prev - l->dedup[i].sec);
        prev = l->dedup[i].sec;
        do {
            int c = (int)(d & 31);
            d >>= 5;
            out[n++] = lf_b64[c | (d ? 32 : 0)];
        } while (d);
        for (int k = 7; k >= 0; k--)
            out[n++] = lf_b64[(l->dedup[i].hash >> (6 * k)) & 63];
    }
    out[n] = '\0';
    return n;
}

/* A hash as the layout before wrote it, by hand: readable fields, then one field per value
 * (n.<kind>, ft.*, lt.*, tr.<trait>, cap.<rule>, dw.., o, v, anon, rq, h0..h7). */
static void test_pack_reads_layout_v1_and_rewrites(void)
{
    lf_model_t *m = lf_pack_model();
    lf_lead_t l = lf_full_lead();
    static char vals[64][200];
    static char dwtext[2048];
    const char *fields[64];
    lf_str_t f[64], v[64];
    size_t n = 0;
#define PUT(fname, ...)                                                                            \
    do {                                                                                           \
        fields[n] = (fname);                                                                       \
        snprintf(vals[n], sizeof(vals[n]), __VA_ARGS__);                                           \
        n++;                                                                                       \
    } while (0)
    PUT("stage", "mql");
    PUT("seq", "9");
    PUT("grade", "L2");
    PUT("score", "62.123456789");
    PUT("fit", "25");
    PUT("eng", "%.17g", l.eng);
    PUT("t", "%lld", (long long)l.t_ms);
    PUT("first_seen", "%lld", (long long)l.first_seen_ms);
    PUT("last_seen", "%lld", (long long)l.last_seen_ms);
    PUT("stage_at", "%lld", (long long)l.stage_at_ms);
    PUT("events", "70006");
    PUT("rules_version", "test-1");
    PUT("n.other", "3");
    PUT("n.page_view", "70000");
    PUT("n.form_submit", "2");
    PUT("n.alias", "1");
    PUT("ft.source", "%s", l.first_touch.source);
    PUT("ft.medium", "%s", l.first_touch.medium);
    PUT("ft.campaign", "%s", l.first_touch.campaign);
    PUT("ft.at", "%lld", (long long)l.first_touch.at_ms);
    PUT("lt.source", "%s", l.last_touch.source);
    PUT("lt.medium", "%s", l.last_touch.medium);
    PUT("lt.campaign", "%s", l.last_touch.campaign);
    PUT("lt.at", "%lld", (long long)l.last_touch.at_ms);
    PUT("tr.company_tier", "enterprise");
    PUT("tr.employees", "1500");
    PUT("cap.views", "%lld=10,%lld=2.5,%lld=10", (long long)l.caps[0].window[0],
        (long long)l.caps[0].window[1], (long long)l.caps[0].window[2]);
    PUT("cap.demo", "%lld=%.17g,%lld=%.17g,%lld=%.17g,%lld=%.17g", (long long)l.caps[1].window[0],
        l.caps[1].granted[0], (long long)l.caps[1].window[1], l.caps[1].granted[1],
        (long long)l.caps[1].window[2], l.caps[1].granted[2], (long long)l.caps[1].window[3],
        l.caps[1].granted[3]);
    size_t dl = lf_v1_dedup_text(&l, dwtext);
    PUT("anon", "0");
    PUT("rq", "1");
    PUT("v", "%llu", (unsigned long long)l.version);
    PUT("o", "0:0,7:123456789012345,%d:42", INT32_MAX);
    /* h<seq % 8> = "seq|from|to|reason|at|score", in hash order (not seq order). */
    for (int i = LF_HISTORY_KEEP - 1; i >= 0; i--) {
        const lf_history_t *h = &l.history[i];
        static char hname[LF_HISTORY_KEEP][4];
        snprintf(hname[i], sizeof(hname[i]), "h%d", (int)(h->seq % 8));
        PUT(hname[i], "%llu|%s|%s|%s|%lld|%.2f", (unsigned long long)h->seq,
            lf_stage_name((lf_stage_t)h->from), lf_stage_name((lf_stage_t)h->to),
            lf_reason_name((lf_reason_t)h->reason), (long long)h->at_ms, h->score);
    }
#undef PUT
    for (size_t i = 0; i < n; i++) {
        f[i] = lf_str_from(fields[i]);
        v[i] = lf_str_from(vals[i]);
    }
    /* dw, dw2, ... of 64 characters. */
    static char dwnames[32][8];
    for (size_t at = 0, k = 1; at < dl; at += 64, k++) {
        snprintf(dwnames[k], sizeof(dwnames[k]), k == 1 ? "dw" : "dw%zu", k);
        f[n] = lf_str_from(dwnames[k]);
        v[n] = (lf_str_t){dwtext + at, (uint32_t)(dl - at < 64 ? dl - at : 64)};
        n++;
    }
    CHECK(dl > 64); /* at least two dw fields */
    lf_lead_t back;
    lf_err_t err = {0};
    CHECK_INT(lf_lead_decode(&back, lf_str_from("u42"), f, v, n, m, &err), LF_OK);
    CHECK_INT(back.layout, LF_LAYOUT_V1);
    back.layout = 0;
    CHECK_SAME_LEAD(&back, &l);
    /* The next write is in the current layout: no field of the one before. */
    lf_arena_t arena;
    lf_arena_init(&arena, 4096);
    lf_argv_t a;
    lf_argv_init_scratch(&a, &arena);
    lf_lead_encode(&back, m, &a);
    lf_pairs_t p;
    lf_pairs_of(&p, &a);
    for (size_t i = 0; i < p.n; i++) {
        lf_str_t fi = p.f[i];
        CHECK(fi.len > 0);
        CHECK(!(fi.ptr[0] == 'h' && fi.len == 2));
        CHECK(!(fi.len >= 2 && (!memcmp(fi.ptr, "dw", 2) || !memcmp(fi.ptr, "dd", 2))));
        CHECK(memchr(fi.ptr, '.', fi.len) == NULL); /* n.*, ft.*, tr.*, cap.* */
        CHECK(!lf_str_eq(fi, "v") && !lf_str_eq(fi, "o") && !lf_str_eq(fi, "anon"));
    }
    lf_lead_t again;
    CHECK_INT(lf_decode_pairs(&again, "u42", &p, m, &err), LF_OK);
    CHECK_INT(again.layout, 0);
    CHECK_SAME_LEAD(&again, &back);
    lf_arena_free(&arena);
    lf_test_model_free(m);
}

/*---- Refusals --------------------------------------------------------------------------*/

/* The record of lf_full_lead as bytes (joined parts), and the readable pairs. */
static size_t lf_full_record(const lf_model_t *m, lf_arena_t *arena, lf_pairs_t *p, char *buf,
                             size_t cap, int *nparts)
{
    lf_argv_t a;
    lf_argv_init_scratch(&a, arena);
    lf_lead_t l = lf_full_lead();
    lf_lead_encode(&l, m, &a);
    lf_pairs_of(p, &a);
    return lf_joined_parts(p, buf, cap, nparts);
}

/* What the refusal tests start from: the model, lf_full_lead's record as bytes (parts
 * joined) and its readable pairs. */
typedef struct {
    lf_model_t *m;
    lf_arena_t arena;
    lf_pairs_t p;
    char rec[4096];
    size_t len;
    int nparts;
} lf_full_fixture_t;

static void lf_full_fixture(lf_full_fixture_t *f)
{
    f->m = lf_pack_model();
    lf_arena_init(&f->arena, 4096);
    f->len = lf_full_record(f->m, &f->arena, &f->p, f->rec, sizeof(f->rec), &f->nparts);
}

static void lf_full_fixture_free(lf_full_fixture_t *f)
{
    lf_arena_free(&f->arena);
    lf_test_model_free(f->m);
}

/* Decode the readable fields of p with the given record bytes cut into parts. */
static int lf_decode_with_record(const lf_pairs_t *p, const char *rec, size_t len,
                                 const lf_model_t *m, lf_lead_t *out, lf_err_t *err)
{
    lf_pairs_t q;
    static char names[128][8];
    q.n = 0;
    for (size_t i = 0; i < 7; i++) {
        q.f[q.n] = p->f[i];
        q.v[q.n++] = p->v[i];
    }
    for (size_t at = 0, k = 1; at < len || k == 1; at += LF_PACK_PART, k++) {
        snprintf(names[k], sizeof(names[k]), k == 1 ? "p" : "p%zu", k);
        q.f[q.n] = lf_str_from(names[k]);
        q.v[q.n++] =
            (lf_str_t){rec + at, (uint32_t)(len - at < LF_PACK_PART ? len - at : LF_PACK_PART)};
        if (len == 0) break;
    }
    return lf_decode_pairs(out, "u42", &q, m, err);
}

/* A record of a newer format is refused, saying so: never misread. */
static void test_pack_refuses_newer_format(void)
{
    lf_full_fixture_t fx;
    lf_full_fixture(&fx);
    const lf_model_t *m = fx.m;
    char *rec = fx.rec;
    size_t len = fx.len;
    CHECK((unsigned char)rec[0] == 0xdc); /* array 16 */
    CHECK_INT(rec[3], LF_PACK_FORMAT);
    rec[3] = LF_PACK_FORMAT + 1;
    lf_lead_t back;
    lf_err_t err = {0};
    CHECK_INT(lf_decode_with_record(&fx.p, rec, len, m, &back, &err), LF_ERR);
    CHECK(strstr(err.msg, "u42") != NULL);
    CHECK(strstr(err.msg, "format 3") != NULL);
    CHECK(strstr(err.msg, "newer") != NULL);
    /* The same through lf_lead_unpack directly. */
    lf_lead_t u;
    lf_lead_init(&u, lf_str_from("u42"));
    CHECK_INT(lf_lead_unpack(&u, rec, len, m, &err), LF_ERR);
    CHECK(strstr(err.msg, "format 3") != NULL);
    /* An older format number (there is none below 2 packed) is refused too. */
    rec[3] = 1;
    CHECK_INT(lf_decode_with_record(&fx.p, rec, len, m, &back, &err), LF_ERR);
    lf_full_fixture_free(&fx);
}

/* A newer writer may append elements (format unchanged): an older reader ignores them, also
 * on a lead's record that grows to 22 elements or more (those are not a visitor's own
 * stage, seq, fit, eng and t). The first appended one, element 17, is this version's
 * requalify time (from t); those after it are ignored. */
static void test_pack_ignores_appended_elements(void)
{
    lf_full_fixture_t fx;
    lf_full_fixture(&fx);
    const lf_model_t *m = fx.m;
    char *rec = fx.rec;
    size_t len = fx.len;
    lf_lead_t l = lf_full_lead();
    l.requalify_at_ms = l.t_ms - 5; /* element 17 below: 5 */
    for (int extra = 1; extra <= 8; extra++) {
        char grown[4200];
        memcpy(grown, rec, len);
        uint16_t n = (uint16_t)(17 + extra);
        grown[1] = (char)(n >> 8);
        grown[2] = (char)(n & 0xff);
        size_t gl = len;
        for (int i = 0; i < extra; i++)
            grown[gl++] = (char)(0x05 + i); /* positive fixints 5, 6, ... */
        lf_lead_t back;
        lf_err_t err = {0};
        if (lf_decode_with_record(&fx.p, grown, gl, m, &back, &err) != LF_OK) {
            lf_test_fail(__FILE__, __LINE__, "%d appended elements: %s", extra, err.msg);
            return;
        }
        if (!lf_same_lead(&back, &l, __LINE__)) {
            lf_test_fail(__FILE__, __LINE__, "with %d appended elements", extra);
            return;
        }
    }
    lf_full_fixture_free(&fx);
}

/* A part missing in the middle, the last part missing (a truncated record), an empty part,
 * bytes after the record: refused with a message, no crash. */
static void test_pack_refuses_missing_and_truncated_parts(void)
{
    lf_full_fixture_t fx;
    lf_full_fixture(&fx);
    const lf_model_t *m = fx.m;
    char *rec = fx.rec;
    size_t len = fx.len;
    const lf_pairs_t p = fx.p;
    CHECK(fx.nparts >= 3);
    lf_lead_t back;
    lf_err_t err = {0};
    /* Without p2. */
    lf_pairs_t q = p;
    size_t w = 0;
    for (size_t i = 0; i < p.n; i++)
        if (!lf_str_eq(p.f[i], "p2")) {
            q.f[w] = p.f[i];
            q.v[w++] = p.v[i];
        }
    q.n = w;
    CHECK_INT(lf_decode_pairs(&back, "u42", &q, m, &err), LF_ERR);
    CHECK(strstr(err.msg, "part 2") != NULL);
    /* Without p (the first). */
    w = 0;
    for (size_t i = 0; i < p.n; i++)
        if (!lf_str_eq(p.f[i], "p")) {
            q.f[w] = p.f[i];
            q.v[w++] = p.v[i];
        }
    q.n = w;
    CHECK_INT(lf_decode_pairs(&back, "u42", &q, m, &err), LF_ERR);
    CHECK(strstr(err.msg, "missing") != NULL);
    /* Without the last part: truncated; every shorter cut too. */
    q = p;
    q.n--;
    CHECK_INT(lf_decode_pairs(&back, "u42", &q, m, &err), LF_ERR);
    CHECK(strstr(err.msg, "u42") != NULL);
    for (size_t cut = 0; cut < len; cut++) {
        char *copy = malloc(cut ? cut : 1); /* exact size: ASan sees any read past it */
        memcpy(copy, rec, cut);
        if (lf_decode_with_record(&fx.p, copy, cut, m, &back, &err) != LF_ERR) {
            lf_test_fail(__FILE__, __LINE__, "a record cut to %zu of %zu bytes was accepted", cut,
                         len);
            free(copy);
            return;
        }
        lf_lead_init(&back, lf_str_from("u42"));
        int rc = lf_lead_unpack(&back, copy, cut, m, &err);
        free(copy);
        CHECK_INT(rc, LF_ERR);
    }
    /* Bytes after the record. */
    rec[len] = 0x01;
    CHECK_INT(lf_decode_with_record(&fx.p, rec, len + 1, m, &back, &err), LF_ERR);
    /* A part field beyond what a reader takes (p129) is ignored, not a crash. */
    q = p;
    q.f[q.n] = lf_str_from("p129");
    q.v[q.n++] = lf_str_from("x");
    CHECK_INT(lf_decode_pairs(&back, "u42", &q, m, &err), LF_OK);
    lf_full_fixture_free(&fx);
}

/* Well-formed MessagePack with wrong contents: each refused. Times that do not fit (a
 * distance back from t of -2^63, which t - d would overflow) included. */
static void test_pack_refuses_wrong_elements(void)
{
    lf_model_t *m = lf_pack_model();
    static const struct {
        const char *what;
        unsigned char bytes[48];
        size_t len;
    } bad[] = {
        {"not an array", {0x02}, 1},
        {"too few elements", {0x93, 0x02, 0x01, 0x00}, 4},
        {"nil", {0xc0}, 1},
        {"a map", {0x81, 0x01, 0x02}, 3},
        /* 17 elements, first_seen = -2^63 (int64). */
        {"first_seen overflows",
         {0xdc, 0x00, 0x11, 0x02, 0x01, 0x00, 0xa0, 0xd3, 0x80, 0,    0,    0,    0,    0,   0,
          0,    0x00, 0x00, 0x00, 0x90, 0xc0, 0xc0, 0x90, 0x90, 0xc4, 0x00, 0x90, 0x90, 0x00},
         29},
        /* 17 elements, history at = -2^63. */
        {"history at overflows",
         {0xdc, 0x00, 0x11, 0x02, 0x01, 0x00, 0xa0, 0x00, 0x00, 0x00, 0x00, 0x90,
          0xc0, 0xc0, 0x90, 0x90, 0xc4, 0x00, 0x90, 0x96, 0x01, 0x01, 0x02, 0x02,
          0xd3, 0x80, 0,    0,    0,    0,    0,    0,    0,    0x00, 0x00},
         35},
        /* 17 elements, first touch at = -2^63. */
        {"touch at overflows",
         {0xdc, 0x00, 0x11, 0x02, 0x01, 0x00, 0xa0, 0x00, 0x00, 0x00, 0x00,
          0x90, 0x94, 0xa0, 0xa0, 0xa0, 0xd3, 0x80, 0,    0,    0,    0,
          0,    0,    0,    0xc0, 0x90, 0x90, 0xc4, 0x00, 0x90, 0x90, 0x00},
         33},
        /* 17 elements, a history stage out of range. */
        {"history stage",
         {0xdc, 0x00, 0x11, 0x02, 0x01, 0x00, 0xa0, 0x00, 0x00, 0x00, 0x00, 0x90, 0xc0, 0xc0,
          0x90, 0x90, 0xc4, 0x00, 0x90, 0x96, 0x01, 0x7f, 0x02, 0x02, 0x00, 0x00, 0x00},
         27},
        /* 17 elements, a dedup varint that never ends. */
        {"dedup varint",
         {0xdc, 0x00, 0x11, 0x02, 0x01, 0x00, 0xa0, 0x00, 0x00, 0x00, 0x00, 0x90,
          0xc0, 0xc0, 0x90, 0x90, 0xc4, 0x03, 0x80, 0x80, 0x80, 0x90, 0x90, 0x00},
         24},
        /* 17 elements, a counter of 2^32. */
        {"counter",
         {0xdc, 0x00, 0x11, 0x02, 0x01, 0x00, 0xa0, 0x00, 0x00, 0x00, 0x00,
          0x92, 0x01, 0xcf, 0,    0,    0,    1,    0,    0,    0,    0,
          0xc0, 0xc0, 0x90, 0x90, 0xc4, 0x00, 0x90, 0x90, 0x00},
         31},
    };
    /* The valid skeleton these are cut from reads (so each refusal is its one element). */
    static const unsigned char ok[] = {0xdc, 0x00, 0x11, 0x02, 0x01, 0x00, 0xa0,
                                       0x00, 0x00, 0x00, 0x00, 0x90, 0xc0, 0xc0,
                                       0x90, 0x90, 0xc4, 0x00, 0x90, 0x90, 0x00};
    lf_lead_t l;
    lf_err_t err = {0};
    lf_lead_init(&l, lf_str_from("u1"));
    CHECK_INT(lf_lead_unpack(&l, (const char *)ok, sizeof(ok), m, &err), LF_OK);
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        lf_lead_init(&l, lf_str_from("u1"));
        l.t_ms = 1000; /* t - (-2^63) does not fit */
        if (lf_lead_unpack(&l, (const char *)bad[i].bytes, bad[i].len, m, &err) != LF_ERR)
            lf_test_fail(__FILE__, __LINE__, "%s: accepted", bad[i].what);
        else if (!err.msg[0])
            lf_test_fail(__FILE__, __LINE__, "%s: no message", bad[i].what);
    }
    /* Remembered ids whose deltas (each <= 2^53 s, as allowed) add up past int64: refused. */
    enum { NE = 1100 };
    unsigned char *big = malloc(32 + NE * 14);
    size_t n = 0;
    memcpy(big, ok, 16); /* up to the dedup element */
    n = 16;
    big[n++] = 0xc5; /* bin 16 */
    big[n++] = (unsigned char)((NE * 14) >> 8);
    big[n++] = (unsigned char)((NE * 14) & 0xff);
    for (int i = 0; i < NE; i++) {
        static const unsigned char d53[8] = {0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x10};
        memcpy(big + n, d53, 8); /* the varint of 2^53 */
        n += 8;
        memset(big + n, 0xab, 6);
        n += 6;
    }
    big[n++] = 0x90;
    big[n++] = 0x90;
    big[n++] = 0x00;
    lf_lead_init(&l, lf_str_from("u1"));
    int rc = lf_lead_unpack(&l, (const char *)big, n, m, &err);
    free(big);
    CHECK_INT(rc, LF_ERR);
    lf_test_model_free(m);
}

/* Random corruption (byte flips, insertions of hostile headers, whole random records) is
 * refused or reads as some lead, never a crash or a read outside the bytes (ASan in CI). */
static void test_pack_corrupt_bytes_never_crash(void)
{
    lf_full_fixture_t fx;
    lf_full_fixture(&fx);
    const lf_model_t *m = fx.m;
    char *rec = fx.rec;
    size_t len = fx.len;
    static const unsigned char hostile[] = {0xdd, 0xdf, 0xc6, 0xdb, 0xcf, 0xd3, 0xc1,
                                            0xff, 0x80, 0x7f, 0xc0, 0xcb, 0xc4, 0x9f};
    uint64_t rng = 12345;
    int refused = 0, read = 0;
    for (int it = 0; it < 4000; it++) {
        char *c = malloc(len);
        memcpy(c, rec, len);
        int flips = 1 + it % 4;
        for (int k = 0; k < flips; k++) {
            rng = rng * 6364136223846793005ULL + 1442695040888963407ULL;
            size_t at = (size_t)(rng >> 33) % len;
            c[at] = (char)(it % 2 ? hostile[(rng >> 20) % sizeof(hostile)] : (rng >> 40) & 0xff);
        }
        lf_lead_t back;
        lf_err_t err = {0};
        int rc = lf_decode_with_record(&fx.p, c, len, m, &back, &err);
        if (rc == LF_OK) {
            read++;
            CHECK(back.ntraits <= LF_LEAD_TRAITS_MAX && back.ncaps <= LF_LEAD_CAPS_MAX);
            CHECK(back.ndedup <= LF_DEDUP_MAX && back.nhistory <= LF_HISTORY_KEEP);
            CHECK(back.nsrc <= LF_LEAD_SRC_MAX && back.stage < LF_STAGE__COUNT);
        } else {
            refused++;
            CHECK(err.msg[0] != '\0');
        }
        free(c);
    }
    CHECK(refused > 0);
    /* Whole random values, of every length up to 200, as a visitor's record. */
    for (int it = 0; it < 2000; it++) {
        size_t n = (size_t)it % 200 + 1;
        unsigned char *c = malloc(n);
        for (size_t k = 0; k < n; k++) {
            rng = rng * 6364136223846793005ULL + 1442695040888963407ULL;
            c[k] = (unsigned char)(rng >> 56);
        }
        if (n > 3) { /* often a plausible start */
            c[0] = 0xdc;
            c[1] = 0;
            c[2] = it % 3 ? 0x16 : 0x11;
            c[3] = 0x02;
        }
        lf_str_t f = lf_str_from("p"), v = {(const char *)c, (uint32_t)n};
        lf_lead_t back;
        lf_err_t err = {0};
        (void)lf_lead_decode(&back, lf_str_from("a1"), &f, &v, 1, m, &err);
        uint64_t ver;
        (void)lf_lead_pack_version((const char *)c, n, &ver);
        free(c);
    }
    (void)read;
    lf_full_fixture_free(&fx);
}

/*---- The write version from the first part ---------------------------------------------*/

static void test_pack_version_from_first_part(void)
{
    lf_model_t *m = lf_pack_model();
    lf_arena_t arena;
    lf_arena_init(&arena, 4096);
    static const uint64_t versions[] = {
        0,         1, 127, 128, 255, 256, 65535, 65536, 4294967295u, 4294967296, (1ULL << 40) + 3,
        UINT64_MAX};
    for (int visitor = 0; visitor < 2; visitor++)
        for (size_t i = 0; i < sizeof(versions) / sizeof(versions[0]); i++) {
            lf_lead_t l = visitor ? lf_full_visitor() : lf_full_lead();
            l.version = versions[i];
            lf_argv_t a;
            lf_argv_init_scratch(&a, &arena);
            lf_lead_encode(&l, m, &a);
            lf_pairs_t p;
            lf_pairs_of(&p, &a);
            const lf_str_t *first = lf_pair_value(&p, "p");
            CHECK(first != NULL);
            uint64_t v = 12345;
            size_t n = first->len < LF_PACK_PART ? first->len : LF_PACK_PART;
            char *copy = malloc(n); /* the first part alone, exactly */
            memcpy(copy, first->ptr, n);
            int rc = lf_lead_pack_version(copy, n, &v);
            free(copy);
            CHECK_INT(rc, LF_OK);
            CHECK(v == versions[i]);
            /* Also from a first part cut just after the version. */
            for (size_t cut = 0; cut < 16 && cut < n; cut++) {
                copy = malloc(cut ? cut : 1);
                memcpy(copy, first->ptr, cut);
                uint64_t w = 0;
                rc = lf_lead_pack_version(copy, cut, &w);
                free(copy);
                CHECK(rc == LF_ERR || w == versions[i]);
            }
        }
    /* Not a packed record: refused. */
    uint64_t v;
    CHECK_INT(lf_lead_pack_version("mql", 3, &v), LF_ERR);
    CHECK_INT(lf_lead_pack_version("", 0, &v), LF_ERR);
    CHECK_INT(lf_lead_pack_version("\xdc\x00\x11\xa1x", 5, &v), LF_ERR); /* format not an int */
    CHECK_INT(lf_lead_pack_version("\xdc\x00\x11\x02\xa1x", 6, &v), LF_ERR);
    CHECK_INT(lf_lead_pack_version("\xdc\x00\x11\x02\xcf\x00", 6, &v), LF_ERR); /* cut */
    lf_arena_free(&arena);
    lf_test_model_free(m);
}

void suite_lead_pack(void)
{
    LF_RUN(test_pack_round_trip_every_field);
    LF_RUN(test_pack_touch_nil_cases_and_empty_lead);
    LF_RUN(test_pack_visitor_self_contained);
    LF_RUN(test_pack_requalify_time);
    LF_RUN(test_pack_drops_what_the_model_lost);
    LF_RUN(test_pack_caps_one_entry_per_rule);
    LF_RUN(test_pack_parts_of_a_large_record);
    LF_RUN(test_pack_reads_layout_v1_and_rewrites);
    LF_RUN(test_pack_refuses_newer_format);
    LF_RUN(test_pack_ignores_appended_elements);
    LF_RUN(test_pack_refuses_missing_and_truncated_parts);
    LF_RUN(test_pack_refuses_wrong_elements);
    LF_RUN(test_pack_corrupt_bytes_never_crash);
    LF_RUN(test_pack_version_from_first_part);
}
