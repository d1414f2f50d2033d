/* The store writes of a batch, computed without a store (src/core/writes.c): the stage
 * history a lead's hash keeps, the fields of a lead's write, the counters its events add,
 * the transitions it carries, and a batch's progress per partition. */
#include <stdlib.h>
#include <string.h>

#include "fixture.h"
#include "leadflow/lead_codec.h"
#include "leadflow/score.h"
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

/* A transitions list as lf_writes_transitions builds it, from bare history entries. */
static void lf_add_triple(lf_argv_t *t, const char *id, const char *entry)
{
    lf_argv_adds(t, id);
    lf_argv_adds(t, "payload");
    lf_argv_adds(t, entry);
}

static void test_writes_history_keeps_stored_and_replaces_by_slot(void)
{
    lf_arena_t a;
    lf_arena_init(&a, 4096);
    /* Stored: two history fields, and fields that are not history (skipped). */
    lf_str_t bf[] = {lf_str_from("stage"), lf_str_from("h1"), lf_str_from("h3"), lf_str_from("h9"),
                     lf_str_from("hx")};
    lf_str_t bv[] = {lf_str_from("mql"), lf_str_from("1|old"), lf_str_from("3|old"),
                     lf_str_from("x"), lf_str_from("y")};
    lf_argv_t trans, out;
    lf_argv_init_scratch(&trans, &a);
    lf_argv_init_scratch(&out, &a);
    lf_add_triple(&trans, "u:9", "9|first");   /* field h1 (9 % 8) */
    lf_add_triple(&trans, "u:10", "10|new");   /* field h2 */
    lf_add_triple(&trans, "u:17", "17|later"); /* h1 again: the later one wins */
    lf_writes_history(bf, bv, 5, &trans, &out);
    /* h3 kept (no transition replaces it), then this write's h1 and h2, one per field. */
    static const char *const want[] = {"h3", "3|old", "h2", "10|new", "h1", "17|later"};
    CHECK(lf_args_are(&out, want, 6));
    lf_arena_free(&a);
}

static void test_writes_history_without_transitions_keeps_all_stored(void)
{
    lf_arena_t a;
    lf_arena_init(&a, 4096);
    lf_str_t bf[LF_HISTORY_KEEP], bv[LF_HISTORY_KEEP];
    char names[LF_HISTORY_KEEP][16]; /* "h" and any int: -Wformat-truncation at -O1 */
    for (int h = 0; h < LF_HISTORY_KEEP; h++) {
        snprintf(names[h], sizeof(names[h]), "h%d", h);
        bf[h] = lf_str_from(names[h]);
        bv[h] = lf_str_from("entry");
    }
    lf_argv_t trans, out;
    lf_argv_init_scratch(&trans, &a);
    lf_argv_init_scratch(&out, &a);
    lf_writes_history(bf, bv, LF_HISTORY_KEEP, &trans, &out);
    CHECK_INT(out.n, 2 * LF_HISTORY_KEEP);
    char b[16];
    CHECK_STR(lf_arg(&out, 2 * 7, b, sizeof(b)), "h7");
    lf_arena_free(&a);
}

static void test_writes_transitions_encodes_triples(void)
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
    CHECK_INT(trans.n, 6);
    char b[256], want[128];
    CHECK_STR(lf_arg(&trans, 0, b, sizeof(b)), "u1:4");
    CHECK_STR(lf_arg(&trans, 3, b, sizeof(b)), "u1:5");
    CHECK(strstr(lf_arg(&trans, 1, b, sizeof(b)), "\"lead_id\"") != NULL); /* JSON payload */
    lf_transition_history_entry(&tr.t[1], want, sizeof(want));
    CHECK_STR(lf_arg(&trans, 5, b, sizeof(b)), want);
    CHECK(strncmp(want, "5|", 2) == 0);
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
                          .next = next};
    lf_store_write_t x;
    lf_writes_lead(&x, &w, m, &a);
    CHECK_INT(l.version, 7);
    CHECK(x.lead == &l);
    CHECK_INT(x.expected_version, 6);
    CHECK_INT(x.old_stage, LF_STAGE_LEAD);
    CHECK_INT(x.old_exists, 1);
    CHECK_INT(x.partition, 2);
    CHECK_INT(x.stage_touched, 1);
    CHECK_NEAR(x.stage_score, (double)lf_lead_exit_time(&l, m), 1e-12); /* an MQL: its exit */
    CHECK_NEAR(x.top_key, lf_rank_key(l.eng, l.t_ms, m->half_life_ms), 1e-12);
    CHECK(x.trans == &trans);
    CHECK(x.base_fields == bf && x.base_values == bv && x.nbase == 3);
    /* The whole hash: the lead's encoding, then the stored h7 and this write's entries. */
    lf_argv_t enc;
    lf_argv_init_scratch(&enc, &a);
    lf_lead_encode(&l, m, &enc);
    CHECK(x.whole->n == enc.n + 2 + 2 * (size_t)tr.n);
    for (size_t i = 0; i < enc.n; i++)
        CHECK(x.whole->lens[i] == enc.lens[i] &&
              memcmp(x.whole->argv[i], enc.argv[i], enc.lens[i]) == 0);
    CHECK_STR(lf_pair(x.whole, "v"), "7");
    char b[64], hf[8];
    CHECK_STR(lf_arg(x.whole, enc.n, b, sizeof(b)), "h7");
    lf_history_field(tr.t[tr.n - 1].seq, hf, sizeof(hf));
    CHECK(lf_pair(x.whole, hf) != NULL);
    CHECK(lf_pair(x.whole, "future") == NULL); /* the store keeps unknown fields itself */
    /* Counters: its event, then its transitions. */
    CHECK_INT(x.counters->n, 6);
    CHECK_STR(lf_arg(x.counters, 0, b, sizeof(b)), "2.consumed");
    CHECK_STR(lf_arg(x.counters, 2, b, sizeof(b)), "2.applied");
    CHECK_STR(lf_arg(x.counters, 4, b, sizeof(b)), "2.transitions");
    char want[8];
    snprintf(want, sizeof(want), "%d", tr.n);
    CHECK_STR(lf_arg(x.counters, 5, b, sizeof(b)), want);
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
    LF_RUN(test_writes_history_keeps_stored_and_replaces_by_slot);
    LF_RUN(test_writes_history_without_transitions_keeps_all_stored);
    LF_RUN(test_writes_transitions_encodes_triples);
    LF_RUN(test_writes_count_by_partition_and_outcome);
    LF_RUN(test_writes_count_many_partitions);
    LF_RUN(test_writes_lead_fields);
    LF_RUN(test_writes_lead_untouched_stage);
    LF_RUN(test_writes_progress_runs_per_partition);
    LF_RUN(test_writes_progress_next_offset_and_untracked);
}
