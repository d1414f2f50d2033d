/* The store writes of a batch, computed without a store (src/core/writes.c): the fields of a
 * lead's write (its whole record, with the history it keeps itself), the lf:funnel changes of
 * leads and visitors (by stage, and visitors by expiry bucket), the counters its events add,
 * the transitions it carries, and a batch's progress per partition. */
#include <stdlib.h>
#include <string.h>

#include "fixture.h"
#include "leadflow/lead_codec.h"
#include "leadflow/score.h"
#include "leadflow/transition.h"
#include "leadflow/writes.h"
#include "test.h"

#define T0 1767225600000LL /* 2026-01-01T00:00:00Z */

/* The value of field f in a list of field/value pairs, or NULL. */
static const char *lf_pair(const lf_argv_t *a, const char *f)
{
    for (size_t i = 0; i + 1 < a->n; i += 2)
        if (a->lens[i] == strlen(f) && memcmp(a->argv[i], f, a->lens[i]) == 0)
            return a->argv[i + 1];
    return NULL;
}

/* Argument i as a C string (the arena copies are not terminated by contract). */
static const char *lf_arg(const lf_argv_t *a, size_t i, char *buf, size_t cap)
{
    snprintf(buf, cap, "%.*s", (int)a->lens[i], a->argv[i]);
    return buf;
}

/* The list holds exactly these n arguments (a mismatch is reported). */
static int lf_args_are(const lf_argv_t *a, const char *const *want, size_t n)
{
    char b[256];
    if (a->n != n) {
        lf_test_fail(__FILE__, __LINE__, "%zu arguments, expected %zu", a->n, n);
        return 0;
    }
    for (size_t i = 0; i < n; i++)
        if (strcmp(lf_arg(a, i, b, sizeof(b)), want[i]) != 0) {
            lf_test_fail(__FILE__, __LINE__, "argument %zu is \"%s\", expected \"%s\"", i, b,
                         want[i]);
            return 0;
        }
    return 1;
}

static void test_writes_transitions_encodes_pairs(void)
{
    lf_arena_t a;
    lf_arena_init(&a, 8192);
    lf_transitions_t tr = {0};
    tr.n = 2;
    tr.t[0] = (lf_transition_t){.seq = 4,
                                .from = LF_STAGE_LEAD,
                                .to = LF_STAGE_MQL,
                                .reason = LF_REASON_SCORE_THRESHOLD,
                                .at_ms = T0,
                                .score = 61};
    tr.t[1] = (lf_transition_t){.seq = 5,
                                .from = LF_STAGE_MQL,
                                .to = LF_STAGE_NURTURE,
                                .reason = LF_REASON_SCORE_DECAY,
                                .at_ms = T0 + 1000,
                                .score = 44};
    lf_argv_t trans;
    memset(&trans, 0, sizeof(trans)); /* set up by the call */
    lf_writes_transitions(&trans, &tr, "u1", "r1", 1, &a);
    /* (id, payload) pairs: no history entry any more (the lead keeps its history). */
    CHECK_INT(trans.n, 4);
    char b[2048], want[2048];
    CHECK_STR(lf_arg(&trans, 0, b, sizeof(b)), "u1:4");
    CHECK_STR(lf_arg(&trans, 2, b, sizeof(b)), "u1:5");
    for (int i = 0; i < 2; i++) {
        int n = lf_transition_encode(&tr.t[i], "u1", "r1", 1, want, sizeof(want));
        CHECK(n > 0);
        CHECK_INT(trans.lens[2 * i + 1], n);
        CHECK(memcmp(trans.argv[2 * i + 1], want, (size_t)n) == 0);
    }
    CHECK(strstr(lf_arg(&trans, 1, b, sizeof(b)), "\"lead_id\"") != NULL); /* JSON payload */
    /* Appended to a list that has some. */
    tr.n = 1;
    lf_writes_transitions(&trans, &tr, "u1", "r1", 1, &a);
    CHECK_INT(trans.n, 6);
    lf_arena_free(&a);
}

static void test_writes_count_by_partition_and_outcome(void)
{
    lf_arena_t a;
    lf_arena_init(&a, 4096);
    lf_writes_event_t ev[] = {
        {3, 10, LF_OUTCOME_APPLIED},   {3, 11, LF_OUTCOME_FILTERED}, {5, 7, LF_OUTCOME_DUPLICATE},
        {3, 12, LF_OUTCOME_DUPLICATE}, {9, 1, LF_OUTCOME_APPLIED},
    };
    /* The chain: 3 -> 2 -> 1 -> 0 (event 4 belongs to another lead). */
    int next[] = {-1, 0, 1, 2, -1};
    lf_argv_t out;
    lf_argv_init_scratch(&out, &a);
    lf_writes_count(ev, 3, next, &out);
    /* Partition 3 first (met first), zero counts left out; a filtered event is applied too. */
    static const char *const want[] = {"3.consumed", "3", "3.applied",  "2", "3.duplicates", "1",
                                       "3.filtered", "1", "5.consumed", "1", "5.duplicates", "1"};
    CHECK(lf_args_are(&out, want, 12));
    lf_arena_free(&a);
}

/* More partitions than the accumulators hold: every event still counted once. */
static void test_writes_count_many_partitions(void)
{
    lf_arena_t a;
    lf_arena_init(&a, 8192);
    lf_writes_event_t ev[20];
    int next[20];
    for (int i = 0; i < 20; i++) {
        ev[i] = (lf_writes_event_t){i % 10, i, LF_OUTCOME_APPLIED};
        next[i] = i + 1 < 20 ? i + 1 : -1;
    }
    lf_argv_t out;
    lf_argv_init_scratch(&out, &a);
    lf_writes_count(ev, 0, next, &out);
    long long consumed = 0, applied = 0;
    for (size_t i = 0; i + 1 < out.n; i += 2) {
        char f[32], v[32];
        lf_arg(&out, i, f, sizeof(f));
        long long n = atoll(lf_arg(&out, i + 1, v, sizeof(v)));
        if (strstr(f, ".consumed")) consumed += n;
        if (strstr(f, ".applied")) applied += n;
    }
    CHECK_INT(consumed, 20);
    CHECK_INT(applied, 20);
    lf_arena_free(&a);
}

/* A lead that crossed into MQL in this batch, loaded at version 6 with a stored hash. */
static void test_writes_lead_fields(void)
{
    lf_model_t *m = lf_test_model(); /* enter 60, exit 45 */
    lf_test_rule(m, "form", "form_submit", 70, 0, 0);
    lf_arena_t a;
    lf_arena_init(&a, 1 << 16);
    lf_lead_t l;
    lf_lead_init(&l, lf_str_from("u1"));
    l.version = 6;
    lf_transitions_t tr = {0};
    lf_event_t e = lf_test_event("m1", LF_KIND_FORM_SUBMIT, "u1", NULL, T0);
    lf_lead_apply(&l, &e, m, 86400, &tr);
    CHECK_INT(l.stage, LF_STAGE_MQL);
    CHECK(tr.n >= 1);
    CHECK_INT(l.nhistory, tr.n); /* the lead keeps its stage changes itself */
    lf_argv_t trans;
    memset(&trans, 0, sizeof(trans));
    lf_writes_transitions(&trans, &tr, l.id, "r1", 0, &a);
    lf_str_t bf[] = {lf_str_from("stage"), lf_str_from("h7"), lf_str_from("future")};
    lf_str_t bv[] = {lf_str_from("visitor"), lf_str_from("7|kept"), lf_str_from("x")};
    lf_writes_event_t ev[] = {{2, 40, LF_OUTCOME_APPLIED}};
    int next[] = {-1};
    lf_writes_lead_t w = {.lead = &l,
                          .loaded_version = 6,
                          .loaded_exists = 1,
                          .loaded_stage = LF_STAGE_LEAD,
                          .stored = {bf, bv, 3},
                          .partition = 2,
                          .trans = &trans,
                          .ev = ev,
                          .first = 0,
                          .next = next,
                          .now_ms = T0 + 5000,
                          .visitor_ttl_s = 3600};
    lf_store_write_t x;
    lf_writes_lead(&x, &w, m, &a);
    CHECK_INT(l.version, 7);
    CHECK(x.lead == &l);
    CHECK_INT(x.expected_version, 6);
    CHECK_INT(x.old_stage, LF_STAGE_LEAD);
    CHECK_INT(x.old_exists, 1);
    CHECK_INT(x.old_layout, 0);
    CHECK_INT(x.partition, 2);
    CHECK_INT(x.stage_touched, 1);
    CHECK_NEAR(x.stage_score, (double)lf_lead_exit_time(&l, m), 1e-12); /* an MQL: its exit */
    /* A known lead: ranked in lf:top by its forward-decay key, no expiry. */
    CHECK_INT(x.ranked, 1);
    CHECK_INT(x.visitor, 0);
    CHECK_INT(x.expires_ms, 0);
    CHECK_INT(l.expires_s, 0);
    CHECK(x.top_key == lf_rank_key(l.eng, l.t_ms, m->half_life_ms));
    CHECK(x.trans == &trans);
    CHECK(x.base_fields == bf && x.base_values == bv && x.nbase == 3);
    /* The whole record is the lead's encoding and nothing else: no h-fields (the history is
     * in the packed part), no stored field carried over (the store keeps unknown ones). */
    lf_argv_t enc;
    lf_argv_init_scratch(&enc, &a);
    lf_lead_encode(&l, m, &enc);
    CHECK_INT(x.whole->n, enc.n);
    for (size_t i = 0; i < enc.n; i++)
        CHECK(x.whole->lens[i] == enc.lens[i] &&
              memcmp(x.whole->argv[i], enc.argv[i], enc.lens[i]) == 0);
    CHECK(lf_pair(x.whole, "h7") == NULL);
    CHECK(lf_pair(x.whole, "future") == NULL);
    CHECK(lf_pair(x.whole, "p") != NULL);
    lf_str_t f[64], v[64];
    for (size_t i = 0; i < enc.n / 2; i++) {
        f[i] = (lf_str_t){enc.argv[2 * i], (uint32_t)enc.lens[2 * i]};
        v[i] = (lf_str_t){enc.argv[2 * i + 1], (uint32_t)enc.lens[2 * i + 1]};
    }
    lf_lead_t back;
    lf_err_t err;
    CHECK_INT(lf_lead_decode(&back, lf_str_from("u1"), f, v, enc.n / 2, m, &err), LF_OK);
    CHECK_INT(back.version, 7);
    CHECK_INT(back.nhistory, tr.n);
    CHECK_INT(back.history[tr.n - 1].seq, tr.t[tr.n - 1].seq);
    CHECK_INT(back.history[tr.n - 1].to, LF_STAGE_MQL);
    /* Counters: its event, then its transitions. */
    char b[64];
    CHECK_INT(x.counters->n, 6);
    CHECK_STR(lf_arg(x.counters, 0, b, sizeof(b)), "2.consumed");
    CHECK_STR(lf_arg(x.counters, 2, b, sizeof(b)), "2.applied");
    CHECK_STR(lf_arg(x.counters, 4, b, sizeof(b)), "2.transitions");
    char want[8];
    snprintf(want, sizeof(want), "%d", tr.n);
    CHECK_STR(lf_arg(x.counters, 5, b, sizeof(b)), want);
    /* Its funnel change: out of lead, into mql. */
    static const char *const fw[] = {"lead", "-1", "mql", "1"};
    CHECK(lf_args_are(x.funnel, fw, 4));
    lf_arena_free(&a);
    lf_test_model_free(m);
}

/* A visitor's write: one pair ("p", self-contained record), not ranked, expiring at the end
 * of its funnel bucket (x->expires_ms, and in the record). */
static void test_writes_visitor_fields(void)
{
    lf_model_t *m = lf_test_model();
    lf_test_rule(m, "views", "page_view", 4, 0, 0);
    lf_arena_t a;
    lf_arena_init(&a, 1 << 16);
    lf_lead_t l;
    lf_lead_init(&l, lf_str_from("anon-1"));
    lf_transitions_t tr = {0};
    lf_event_t e = lf_test_event("m1", LF_KIND_PAGE_VIEW, NULL, "anon-1", T0);
    lf_lead_apply(&l, &e, m, 86400, &tr);
    CHECK(l.anonymous);
    CHECK_INT(tr.n, 0);
    lf_argv_t empty;
    lf_argv_init_scratch(&empty, &a);
    const int64_t now = T0 + 123456; /* the wall clock, not event time */
    lf_writes_lead_t w = {.lead = &l, .trans = &empty, .now_ms = now, .visitor_ttl_s = 86400};
    lf_store_write_t x;
    lf_writes_lead(&x, &w, m, &a);
    CHECK_INT(x.visitor, 1);
    CHECK_INT(x.ranked, 0);
    int64_t exp = lf_writes_visitor_expiry(now, 86400);
    CHECK_INT(l.expires_s, exp);
    CHECK_INT(x.expires_ms, exp * 1000);
    CHECK_INT(x.whole->n, 2);
    char b[8];
    CHECK_STR(lf_arg(x.whole, 0, b, sizeof(b)), "p");
    lf_str_t f = {x.whole->argv[0], 1}, v = {x.whole->argv[1], (uint32_t)x.whole->lens[1]};
    lf_lead_t back;
    lf_err_t err;
    CHECK_INT(lf_lead_decode(&back, lf_str_from("anon-1"), &f, &v, 1, m, &err), LF_OK);
    CHECK(back.anonymous);
    CHECK_INT(back.expires_s, exp);
    CHECK_INT(back.version, 1);
    CHECK(back.eng == l.eng);
    char field[48];
    lf_writes_funnel_field(field, sizeof(field), LF_STAGE_VISITOR, exp);
    const char *fw[] = {field, "1"};
    CHECK(lf_args_are(x.funnel, fw, 2));
    lf_arena_free(&a);
    lf_test_model_free(m);
}

/* The bucket math: the expiry is a multiple of the bucket width ceil(ttl / 64), at or after
 * now + ttl (whole seconds) and before now + ttl + bucket; monotonic in now. */
static void test_writes_visitor_expiry_buckets(void)
{
    static const int ttls[] = {1,   2,    63,    64,    65,         127,
                               128, 3600, 86399, 86400, 30 * 86400, 400 * 86400};
    uint64_t rng = 99;
    for (size_t i = 0; i < sizeof(ttls) / sizeof(ttls[0]); i++) {
        int ttl = ttls[i];
        int64_t bucket = (ttl + LF_FUNNEL_BUCKETS - 1) / LF_FUNNEL_BUCKETS;
        int64_t prev = 0;
        for (int k = 0; k < 2000; k++) {
            rng = rng * 6364136223846793005ULL + 1442695040888963407ULL;
            /* Consecutive ms around the boundaries, then random times up to 2100. */
            int64_t now = k < 1000 ? T0 + k * 997 : (int64_t)(rng >> 22);
            int64_t exp = lf_writes_visitor_expiry(now, ttl);
            int64_t now_s = now / 1000;
            if (exp % bucket != 0 || exp < now_s + ttl || exp >= now_s + ttl + bucket) {
                lf_test_fail(__FILE__, __LINE__,
                             "ttl %d now %lld: expiry %lld (bucket %lld, now + ttl %lld)", ttl,
                             (long long)now, (long long)exp, (long long)bucket,
                             (long long)(now_s + ttl));
                return;
            }
            if (k < 1000) {
                CHECK(exp >= prev);
                prev = exp;
            }
        }
    }
    /* At most LF_FUNNEL_BUCKETS + 1 live buckets: the expiries of a TTL's worth of writes. */
    int64_t first = lf_writes_visitor_expiry(T0, 86400), last = first, distinct = 1;
    for (int64_t t = T0; t <= T0 + 86400000LL; t += 60000) {
        int64_t e = lf_writes_visitor_expiry(t, 86400);
        if (e != last) distinct++, last = e;
    }
    CHECK(distinct <= LF_FUNNEL_BUCKETS + 1);
    CHECK_INT(lf_writes_visitor_expiry(T0, 0) >= T0 / 1000, 1); /* no TTL: no crash */
}

static void test_writes_funnel_field_names(void)
{
    char b[48];
    CHECK_INT(lf_writes_funnel_field(b, sizeof(b), LF_STAGE_MQL, 0), 3);
    CHECK_STR(b, "mql");
    CHECK_INT(lf_writes_funnel_field(b, sizeof(b), LF_STAGE_OPPORTUNITY, 123), 11);
    CHECK_STR(b, "opportunity");
    lf_writes_funnel_field(b, sizeof(b), LF_STAGE_VISITOR, 1767225600);
    CHECK_STR(b, "visitor:1767225600");
    CHECK(lf_writes_stage_indexed(LF_STAGE_MQL) && lf_writes_stage_indexed(LF_STAGE_SAL));
    CHECK(lf_writes_stage_indexed(LF_STAGE_SQL) && lf_writes_stage_indexed(LF_STAGE_OPPORTUNITY));
    CHECK(!lf_writes_stage_indexed(LF_STAGE_VISITOR) && !lf_writes_stage_indexed(LF_STAGE_LEAD));
    CHECK(!lf_writes_stage_indexed(LF_STAGE_CUSTOMER) &&
          !lf_writes_stage_indexed(LF_STAGE_NURTURE));
    CHECK(!lf_writes_stage_indexed(LF_STAGE_DISQUALIFIED));
}

/* The funnel pairs of one write of lead l loaded as w says. */
static const lf_argv_t *lf_funnel_of(lf_lead_t *l, lf_writes_lead_t *w, lf_model_t *m,
                                     lf_arena_t *a, lf_store_write_t *x)
{
    static lf_argv_t empty;
    lf_argv_init_scratch(&empty, a);
    w->lead = l;
    w->trans = &empty;
    lf_writes_lead(x, w, m, a);
    return x->funnel;
}

/* lf:funnel counting: each write moves the lead between the fields it is counted in. */
static void test_writes_funnel_counting(void)
{
    lf_model_t *m = lf_test_model();
    lf_arena_t a;
    lf_arena_init(&a, 1 << 16);
    lf_store_write_t x;
    lf_lead_t l;
    lf_lead_init(&l, lf_str_from("u1"));
    l.exists = 1;
    l.stage = LF_STAGE_LEAD;
    const int ttl = 6400; /* buckets of 100 s */
    const int64_t now = T0 + 50000;
    /* A new lead: +1 in its stage. */
    lf_writes_lead_t w = {.loaded_exists = 0, .now_ms = now, .visitor_ttl_s = ttl};
    {
        static const char *const want[] = {"lead", "1"};
        CHECK(lf_args_are(lf_funnel_of(&l, &w, m, &a, &x), want, 2));
    }
    /* A stage change: -1 the old, +1 the new. */
    w.loaded_exists = 1;
    w.loaded_stage = LF_STAGE_LEAD;
    l.stage = LF_STAGE_MQL;
    {
        static const char *const want[] = {"lead", "-1", "mql", "1"};
        CHECK(lf_args_are(lf_funnel_of(&l, &w, m, &a, &x), want, 4));
    }
    /* No change: nothing. */
    w.loaded_stage = LF_STAGE_MQL;
    CHECK_INT(lf_funnel_of(&l, &w, m, &a, &x)->n, 0);
    /* A record of the layout before was never counted: no -1, +1 in its stage, also when
     * the stage did not change. */
    w.loaded_layout = LF_LAYOUT_V1;
    {
        static const char *const want[] = {"mql", "1"};
        CHECK(lf_args_are(lf_funnel_of(&l, &w, m, &a, &x), want, 2));
    }
    w.loaded_stage = LF_STAGE_LEAD;
    CHECK(lf_args_are(lf_funnel_of(&l, &w, m, &a, &x), (const char *const[]){"mql", "1"}, 2));
    w.loaded_layout = 0;

    /* A visitor: a new one is counted in its expiry bucket. */
    lf_lead_t v;
    lf_lead_init(&v, lf_str_from("a1"));
    v.exists = 1;
    v.anonymous = 1;
    v.stage = LF_STAGE_VISITOR;
    lf_writes_lead_t wv = {.loaded_exists = 0, .now_ms = now, .visitor_ttl_s = ttl};
    int64_t e1 = lf_writes_visitor_expiry(now, ttl);
    char f1[48], f2[48];
    lf_writes_funnel_field(f1, sizeof(f1), LF_STAGE_VISITOR, e1);
    CHECK(lf_args_are(lf_funnel_of(&v, &wv, m, &a, &x), (const char *const[]){f1, "1"}, 2));
    CHECK_INT(v.expires_s, e1);
    /* Refreshed within the same bucket: nothing. */
    wv.loaded_exists = 1;
    wv.loaded_stage = LF_STAGE_VISITOR;
    wv.loaded_expires_s = e1;
    wv.now_ms = now + 1000;
    CHECK_INT(lf_writes_visitor_expiry(now + 1000, ttl), e1);
    CHECK_INT(lf_funnel_of(&v, &wv, m, &a, &x)->n, 0);
    /* Refreshed later: moves from the old bucket to the new. */
    wv.now_ms = now + 3600000;
    int64_t e2 = lf_writes_visitor_expiry(wv.now_ms, ttl);
    CHECK(e2 > e1);
    lf_writes_funnel_field(f2, sizeof(f2), LF_STAGE_VISITOR, e2);
    CHECK(
        lf_args_are(lf_funnel_of(&v, &wv, m, &a, &x), (const char *const[]){f1, "-1", f2, "1"}, 4));
    /* A visitor of the layout before: not counted before, counted now. */
    wv.loaded_layout = LF_LAYOUT_V1;
    wv.loaded_expires_s = 0;
    CHECK(lf_args_are(lf_funnel_of(&v, &wv, m, &a, &x), (const char *const[]){f2, "1"}, 2));
    wv.loaded_layout = 0;
    /* A visitor that identifies in place: out of its bucket, into lead. */
    v.anonymous = 0;
    v.stage = LF_STAGE_LEAD;
    v.expires_s = 0;
    wv.loaded_expires_s = e1;
    CHECK(lf_args_are(lf_funnel_of(&v, &wv, m, &a, &x),
                      (const char *const[]){f1, "-1", "lead", "1"}, 4));
    CHECK_INT(x.visitor, 0);
    CHECK_INT(x.ranked, 1);
    lf_arena_free(&a);
    lf_test_model_free(m);
}

/* A visitor merged into a lead leaves its bucket: -1 there, whether the lead is new, changes
 * stage, or stays in its stage; a merged visitor of the layout before (bucket 0) was never
 * counted. */
static void test_writes_funnel_merged_visitor(void)
{
    lf_model_t *m = lf_test_model();
    lf_arena_t a;
    lf_arena_init(&a, 1 << 16);
    lf_store_write_t x;
    lf_lead_t l;
    lf_lead_init(&l, lf_str_from("u1"));
    l.exists = 1;
    l.stage = LF_STAGE_LEAD;
    const char *merged[] = {"a1", "a2"};
    lf_stage_t mstages[] = {LF_STAGE_VISITOR, LF_STAGE_VISITOR};
    uint64_t mversions[] = {3, 1};
    int mlayouts[] = {0, LF_LAYOUT_V1};
    int64_t mexp[] = {1767230000, 0};
    char fv[48];
    lf_writes_funnel_field(fv, sizeof(fv), LF_STAGE_VISITOR, mexp[0]);
    lf_writes_lead_t w = {.loaded_exists = 0,
                          .merged = merged,
                          .merged_stages = mstages,
                          .merged_versions = mversions,
                          .merged_layouts = mlayouts,
                          .merged_expires = mexp,
                          .nmerged = 2,
                          .now_ms = T0,
                          .visitor_ttl_s = 3600};
    /* Into a new lead. */
    CHECK(lf_args_are(lf_funnel_of(&l, &w, m, &a, &x), (const char *const[]){"lead", "1", fv, "-1"},
                      4));
    CHECK(x.merged_layouts == mlayouts);
    /* Into a lead that changes stage. */
    w.loaded_exists = 1;
    w.loaded_stage = LF_STAGE_LEAD;
    l.stage = LF_STAGE_MQL;
    CHECK(lf_args_are(lf_funnel_of(&l, &w, m, &a, &x),
                      (const char *const[]){"lead", "-1", "mql", "1", fv, "-1"}, 6));
    /* Into a lead that stays in its stage: the visitor still leaves its bucket. */
    w.loaded_stage = LF_STAGE_MQL;
    CHECK(lf_args_are(lf_funnel_of(&l, &w, m, &a, &x), (const char *const[]){fv, "-1"}, 2));
    lf_arena_free(&a);
    lf_test_model_free(m);
}

/* Same stage, not an MQL, no transition, no merge: the stage sets are left alone; no events
 * and no transitions: no counters. An MQL, or a merge, touches them. */
static void test_writes_lead_untouched_stage(void)
{
    lf_model_t *m = lf_test_model();
    lf_arena_t a;
    lf_arena_init(&a, 1 << 16);
    lf_lead_t l;
    lf_lead_init(&l, lf_str_from("u2"));
    l.exists = 1;
    l.stage = LF_STAGE_LEAD;
    l.stage_at_ms = T0;
    lf_argv_t empty;
    lf_argv_init_scratch(&empty, &a);
    lf_writes_lead_t w = {.lead = &l,
                          .loaded_version = 3,
                          .loaded_exists = 1,
                          .loaded_stage = LF_STAGE_LEAD,
                          .trans = &empty};
    lf_store_write_t x;
    lf_writes_lead(&x, &w, m, &a);
    CHECK_INT(x.stage_touched, 0);
    CHECK_NEAR(x.stage_score, (double)T0, 0);
    CHECK_INT(x.counters->n, 0);
    CHECK_INT(x.nbase, 0);
    /* An MQL stays in the stage sets by its exit time, which moves with every event. */
    l.stage = LF_STAGE_MQL;
    w.loaded_stage = LF_STAGE_MQL;
    lf_writes_lead(&x, &w, m, &a);
    CHECK_INT(x.stage_touched, 1);
    CHECK_NEAR(x.stage_score, (double)lf_lead_exit_time(&l, m), 0);
    l.stage = LF_STAGE_LEAD;
    w.loaded_stage = LF_STAGE_LEAD;
    /* A merged visitor touches the stage sets. */
    const char *merged[] = {"a1"};
    lf_stage_t mstages[] = {LF_STAGE_VISITOR};
    uint64_t mversions[] = {2};
    w.merged = merged;
    w.merged_stages = mstages;
    w.merged_versions = mversions;
    w.nmerged = 1;
    lf_writes_lead(&x, &w, m, &a);
    CHECK_INT(x.stage_touched, 1);
    CHECK_INT(x.nmerged, 1);
    CHECK_STR(x.merged_visitors[0], "a1");
    CHECK_INT(x.merged_versions[0], 2);
    lf_arena_free(&a);
    lf_test_model_free(m);
}

static void test_writes_progress_runs_per_partition(void)
{
    lf_arena_t a;
    lf_arena_init(&a, 8192);
    int64_t *clock = calloc(LF_MAX_PARTITIONS, sizeof(*clock));
    clock[1] = T0;
    clock[4] = T0 + 5;
    lf_writes_event_t ev[] = {
        {1, 100, LF_OUTCOME_DEAD},
        {1, 101, LF_OUTCOME_DEAD},
        {4, 7, 0},
        {1, 102, 0},
        {1, 103, LF_OUTCOME_DEAD},
        {4, 8, LF_OUTCOME_APPLIED},
        {1, 104, LF_OUTCOME_APPLIED},
        {4, 9, LF_OUTCOME_APPLIED},
        {4, 10, LF_OUTCOME_FILTERED},
    };
    lf_progress_t *prog = NULL;
    size_t n = lf_writes_progress(ev, 9, clock, &a, &prog);
    CHECK_INT(n, 2);
    CHECK_INT(prog[0].partition, 1);
    CHECK_INT(prog[0].next_offset, 105);
    CHECK_INT(prog[0].max_event_ms, T0);
    /* 100-101 dead, 102 counted elsewhere (a gap), 103 dead, 104 applied. */
    CHECK_INT(prog[0].nruns, 3);
    CHECK_INT(prog[0].runs[0].first, 100);
    CHECK_INT(prog[0].runs[0].n, 2);
    CHECK_INT(prog[0].runs[0].outcome, LF_OUTCOME_DEAD);
    CHECK_INT(prog[0].runs[1].first, 103);
    CHECK_INT(prog[0].runs[1].n, 1);
    CHECK_INT(prog[0].runs[2].first, 104);
    CHECK_INT(prog[0].runs[2].outcome, LF_OUTCOME_APPLIED);
    CHECK_INT(prog[1].partition, 4);
    CHECK_INT(prog[1].next_offset, 11);
    CHECK_INT(prog[1].max_event_ms, T0 + 5);
    CHECK_INT(prog[1].nruns, 2);
    CHECK_INT(prog[1].runs[0].first, 8);
    CHECK_INT(prog[1].runs[0].n, 2);
    CHECK_INT(prog[1].runs[1].first, 10);
    CHECK_INT(prog[1].runs[1].outcome, LF_OUTCOME_FILTERED);
    free(clock);
    lf_arena_free(&a);
}

/* A redelivered offset below a later one keeps the partition's next offset past the highest;
 * a partition beyond the tracked range has no clock. */
static void test_writes_progress_next_offset_and_untracked(void)
{
    lf_arena_t a;
    lf_arena_init(&a, 4096);
    int64_t *clock = calloc(LF_MAX_PARTITIONS, sizeof(*clock));
    lf_writes_event_t ev[] = {{0, 50, 0}, {0, 20, 0}, {LF_MAX_PARTITIONS + 1, 3, 0}};
    lf_progress_t *prog = NULL;
    size_t n = lf_writes_progress(ev, 3, clock, &a, &prog);
    CHECK_INT(n, 2);
    CHECK_INT(prog[0].next_offset, 51);
    CHECK_INT(prog[0].nruns, 0);
    CHECK_INT(prog[1].partition, LF_MAX_PARTITIONS + 1);
    CHECK_INT(prog[1].max_event_ms, 0);
    CHECK_INT(prog[1].next_offset, 4);
    free(clock);
    lf_arena_free(&a);
}

void suite_writes(void)
{
    LF_RUN(test_writes_transitions_encodes_pairs);
    LF_RUN(test_writes_count_by_partition_and_outcome);
    LF_RUN(test_writes_count_many_partitions);
    LF_RUN(test_writes_lead_fields);
    LF_RUN(test_writes_lead_untouched_stage);
    LF_RUN(test_writes_visitor_fields);
    LF_RUN(test_writes_visitor_expiry_buckets);
    LF_RUN(test_writes_funnel_field_names);
    LF_RUN(test_writes_funnel_counting);
    LF_RUN(test_writes_funnel_merged_visitor);
    LF_RUN(test_writes_progress_runs_per_partition);
    LF_RUN(test_writes_progress_next_offset_and_untracked);
}
