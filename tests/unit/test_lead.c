/* Applying events and time to a lead: new leads, dedup by event-time window (its bound and
 * pruning), caps at window edges, stored fields independent of arrival order, thresholds
 * with hysteresis, decay exits (with and without a later event), sales feedback, identity
 * merge, touches, the stage history the lead keeps. */
#include <limits.h>

#include "fixture.h"
#include "leadflow/lead.h"
#include "leadflow/score.h"
#include "test.h"

#define T0 1767225600000LL /* 2026-01-01T00:00:00Z */
#define WINDOW_S 86400     /* processing.dedup_window's default */

static lf_model_t *lf_funnel_model(void)
{
    lf_model_t *m = lf_test_model(); /* h = 1 day, enter 60, exit 45 */
    lf_test_rule(m, "form", "form_submit", 30, 0, 0);
    lf_test_rule(m, "views", "page_view", 4, 10, LF_DAY_MS);
    lf_test_rule(m, "careers", "page_view", -50, 0, 0);
    lf_test_rule_path(&m->eng[2], "/careers");
    return m;
}

static lf_apply_result_t lf_apply(lf_lead_t *l, lf_event_t ev, const lf_model_t *m,
                                  lf_transitions_t *out)
{
    return lf_lead_apply(l, &ev, m, WINDOW_S, out);
}

static void test_new_lead_first_seen_transition(void)
{
    lf_model_t *m = lf_funnel_model();
    lf_lead_t l;
    lf_lead_init(&l, lf_str_from("u1"));
    lf_transitions_t out = {0};
    lf_event_t ev = lf_test_event("m1", LF_KIND_PAGE_VIEW, "u1", NULL, T0);
    ev.path = lf_str_from("/");
    CHECK_INT(lf_apply(&l, ev, m, &out), LF_APPLY_APPLIED);
    CHECK_INT(out.n, 1);
    CHECK_INT(out.t[0].seq, 1);
    CHECK_INT(out.t[0].from, LF_STAGE_VISITOR);
    CHECK_INT(out.t[0].to, LF_STAGE_LEAD);
    CHECK_INT(out.t[0].reason, LF_REASON_FIRST_SEEN);
    CHECK_STR(out.t[0].trigger, "m1");
    CHECK_INT(l.stage, LF_STAGE_LEAD);
    CHECK_NEAR(l.eng, 4, 1e-12);
    CHECK_INT(l.counters[LF_KIND_PAGE_VIEW], 1);
    CHECK_INT(l.first_seen_ms, T0);
    lf_test_model_free(m);
}

/* After a reload that reweighs fit, a lead written under the old rules takes the new fit at
 * its next event, whatever that event carries; its engagement stays as it was given. */
static void test_fit_follows_the_rules_in_force(void)
{
    lf_model_t *a = lf_funnel_model(), *b = lf_funnel_model();
    lf_test_fit(a, "enterprise", "company_tier", "enterprise", 20);
    lf_test_fit(b, "enterprise", "company_tier", "enterprise", 35);
    lf_free(b->version);
    b->version = lf_strdup("test-2");
    lf_lead_t l;
    lf_lead_init(&l, lf_str_from("u1"));
    lf_transitions_t out = {0};
    lf_event_t ev = lf_test_event("m1", LF_KIND_IDENTIFY, "u1", NULL, T0);
    lf_test_event_trait(&ev, "company_tier", "enterprise");
    lf_apply(&l, ev, a, &out);
    CHECK_NEAR(l.fit, 20, 1e-12);
    snprintf(l.rules_version, sizeof(l.rules_version), "test-1"); /* as stored */
    double eng = l.eng;
    lf_apply(&l, lf_test_event("m2", LF_KIND_EMAIL_OPEN, "u1", NULL, T0), b, &out);
    CHECK_NEAR(l.fit, 35, 1e-12);
    CHECK_STR(l.rules_version, "test-2");
    CHECK_NEAR(l.eng, eng, 1e-12);
    /* The decay sweep's path too. */
    snprintf(l.rules_version, sizeof(l.rules_version), "test-1");
    l.fit = 20;
    lf_lead_advance(&l, T0, b, &out);
    CHECK_NEAR(l.fit, 35, 1e-12);
    lf_test_model_free(a);
    lf_test_model_free(b);
}

static void test_anonymous_visitor_stays_visitor(void)
{
    lf_model_t *m = lf_funnel_model();
    lf_lead_t v;
    lf_lead_init(&v, lf_str_from("a1"));
    lf_transitions_t out = {0};
    for (int i = 0; i < 5; i++) {
        char mid[16];
        snprintf(mid, sizeof(mid), "f%d", i);
        lf_apply(&v, lf_test_event(mid, LF_KIND_FORM_SUBMIT, NULL, "a1", T0 + i), m, &out);
    }
    CHECK_INT(out.n, 0); /* a visitor has no stage changes, however hot */
    CHECK_INT(v.stage, LF_STAGE_VISITOR);
    CHECK(v.anonymous);
    CHECK(v.eng > 100);
    lf_test_model_free(m);
}

static void test_duplicate_message_id_not_applied(void)
{
    lf_model_t *m = lf_funnel_model();
    lf_lead_t l;
    lf_lead_init(&l, lf_str_from("u1"));
    lf_transitions_t out = {0};
    CHECK_INT(lf_apply(&l, lf_test_event("m1", LF_KIND_FORM_SUBMIT, "u1", NULL, T0), m, &out),
              LF_APPLY_APPLIED);
    CHECK_INT(lf_apply(&l, lf_test_event("m1", LF_KIND_FORM_SUBMIT, "u1", NULL, T0 + 5), m, &out),
              LF_APPLY_DUPLICATE);
    CHECK_NEAR(l.eng, 30, 1e-12);
    CHECK_INT(l.events, 1);
    /* However many events came between: 100 others (a count window of 16 forgot m1). */
    for (int i = 0; i < 100; i++) {
        char mid[16];
        snprintf(mid, sizeof(mid), "x%d", i);
        CHECK_INT(lf_apply(&l, lf_test_event(mid, LF_KIND_OTHER, "u1", NULL, T0 + 1000 * (i + 1)),
                           m, &out),
                  LF_APPLY_APPLIED);
    }
    CHECK_INT(lf_apply(&l, lf_test_event("m1", LF_KIND_FORM_SUBMIT, "u1", NULL, T0), m, &out),
              LF_APPLY_DUPLICATE);
    CHECK_INT(lf_apply(&l, lf_test_event("x0", LF_KIND_OTHER, "u1", NULL, T0 + 1000), m, &out),
              LF_APPLY_DUPLICATE);
    CHECK_INT(l.events, 101);
    lf_test_model_free(m);
}

/* The window is event time back from the lead's latest event: a repeat 23 h later is
 * dropped, one whose original lies more than 24 h before the latest event counts as new. */
static void test_dedup_window_in_event_time(void)
{
    lf_model_t *m = lf_funnel_model();
    lf_lead_t l;
    lf_lead_init(&l, lf_str_from("u1"));
    lf_transitions_t out = {0};
    lf_event_t first = lf_test_event("m1", LF_KIND_FORM_SUBMIT, "u1", NULL, T0 + 250);
    CHECK_INT(lf_apply(&l, first, m, &out), LF_APPLY_APPLIED);
    lf_apply(&l, lf_test_event("later", LF_KIND_OTHER, "u1", NULL, T0 + 23 * LF_HOUR_MS), m, &out);
    CHECK_INT(lf_apply(&l, first, m, &out), LF_APPLY_DUPLICATE);
    /* Exactly 24 h after m1's second: still inside (the window counts whole seconds). */
    lf_apply(&l, lf_test_event("edge", LF_KIND_OTHER, "u1", NULL, T0 + LF_DAY_MS + 999), m, &out);
    CHECK_INT(lf_apply(&l, first, m, &out), LF_APPLY_DUPLICATE);
    /* One second more: m1 is forgotten, its repeat is applied as a new event. */
    lf_apply(&l, lf_test_event("past", LF_KIND_OTHER, "u1", NULL, T0 + LF_DAY_MS + 1000), m, &out);
    CHECK(!lf_lead_seen_message(&l, lf_str_from("m1")));
    CHECK(lf_lead_seen_message(&l, lf_str_from("edge")));
    CHECK_INT(lf_apply(&l, first, m, &out), LF_APPLY_APPLIED);
    CHECK_INT(l.counters[LF_KIND_FORM_SUBMIT], 2);
    /* An event already older than the window when it arrives is applied but not kept. */
    lf_event_t late = lf_test_event("late", LF_KIND_OTHER, "u1", NULL, T0 - LF_DAY_MS);
    CHECK_INT(lf_apply(&l, late, m, &out), LF_APPLY_APPLIED);
    CHECK_INT(lf_apply(&l, late, m, &out), LF_APPLY_APPLIED);
    /* Entries are kept newest first and none is older than the window. */
    int64_t top = lf_dedup_sec(l.t_ms);
    for (int i = 0; i < l.ndedup; i++) {
        CHECK(top - l.dedup[i].sec <= WINDOW_S);
        if (i) CHECK(l.dedup[i - 1].sec >= l.dedup[i].sec);
    }
    /* A shorter window forgets sooner. */
    lf_lead_t s;
    lf_lead_init(&s, lf_str_from("u2"));
    lf_event_t a = lf_test_event("a", LF_KIND_OTHER, "u2", NULL, T0);
    lf_lead_apply(&s, &a, m, 3600, &out);
    lf_event_t b = lf_test_event("b", LF_KIND_OTHER, "u2", NULL, T0 + LF_HOUR_MS + 1000);
    lf_lead_apply(&s, &b, m, 3600, &out);
    CHECK_INT(lf_lead_apply(&s, &a, m, 3600, &out), LF_APPLY_APPLIED);
    lf_test_model_free(m);
}

/* Past LF_DEDUP_MAX ids within the window the oldest are forgotten first (documented: their
 * repeats are applied again); a burst of 1000 events keeps the newest LF_DEDUP_MAX. */
static void test_dedup_bound_drops_oldest(void)
{
    lf_model_t *m = lf_funnel_model();
    lf_lead_t l;
    lf_lead_init(&l, lf_str_from("u1"));
    lf_transitions_t out = {0};
    char mid[24];
    for (int i = 0; i <= LF_DEDUP_MAX; i++) { /* one more than the bound, a second apart */
        snprintf(mid, sizeof(mid), "b%d", i);
        lf_apply(&l, lf_test_event(mid, LF_KIND_OTHER, "u1", NULL, T0 + 1000LL * i), m, &out);
    }
    CHECK_INT(l.ndedup, LF_DEDUP_MAX);
    CHECK(!lf_lead_seen_message(&l, lf_str_from("b0")));
    CHECK(lf_lead_seen_message(&l, lf_str_from("b1")));
    snprintf(mid, sizeof(mid), "b%d", LF_DEDUP_MAX);
    CHECK(lf_lead_seen_message(&l, lf_str_from(mid)));
    CHECK_INT(lf_apply(&l, lf_test_event("b1", LF_KIND_OTHER, "u1", NULL, T0 + 1000), m, &out),
              LF_APPLY_DUPLICATE);
    /* Full: an event older than every remembered one is applied and not kept. */
    lf_event_t old = lf_test_event("older", LF_KIND_OTHER, "u1", NULL, T0 - 5000);
    CHECK_INT(lf_apply(&l, old, m, &out), LF_APPLY_APPLIED);
    CHECK(!lf_lead_seen_message(&l, lf_str_from("older")));
    /* A burst of 1000 events in one day. */
    for (int i = 0; i < 1000; i++) {
        snprintf(mid, sizeof(mid), "burst%d", i);
        lf_apply(&l, lf_test_event(mid, LF_KIND_PAGE_VIEW, "u1", NULL, T0 + LF_HOUR_MS + 50LL * i),
                 m, &out);
    }
    CHECK_INT(l.ndedup, LF_DEDUP_MAX);
    snprintf(mid, sizeof(mid), "burst%d", 1000 - LF_DEDUP_MAX);
    CHECK(lf_lead_seen_message(&l, lf_str_from(mid)));
    snprintf(mid, sizeof(mid), "burst%d", 999 - LF_DEDUP_MAX);
    CHECK(!lf_lead_seen_message(&l, lf_str_from(mid)));
    CHECK_INT(l.events, LF_DEDUP_MAX + 1 + 1 + 1000);
    lf_test_model_free(m);
}

static void test_cap_window_edges(void)
{
    lf_model_t *m = lf_funnel_model(); /* views: 4 points, at most 10 per UTC day */
    m->half_life_ms = 1e18;            /* no decay: count points exactly */
    lf_lead_t l;
    lf_lead_init(&l, lf_str_from("u1"));
    lf_transitions_t out = {0};
    int64_t day = T0 + 5 * LF_DAY_MS;
    int64_t times[] = {day,
                       day + 1,
                       day + LF_DAY_MS - 1, /* 4 + 4 + 2 (capped) */
                       day + LF_DAY_MS,
                       day + LF_DAY_MS + 1, /* next window: 4 + 4 */
                       day - 1};            /* previous window: 4 */
    for (size_t i = 0; i < sizeof(times) / sizeof(times[0]); i++) {
        char mid[16];
        snprintf(mid, sizeof(mid), "v%zu", i);
        lf_event_t ev = lf_test_event(mid, LF_KIND_PAGE_VIEW, "u1", NULL, times[i]);
        ev.path = lf_str_from("/blog");
        lf_apply(&l, ev, m, &out);
    }
    CHECK_NEAR(l.eng, 10 + 8 + 4, 1e-9);
    lf_test_model_free(m);
}

static void test_cap_old_window_beyond_memory_grants_nothing(void)
{
    lf_model_t *m = lf_funnel_model();
    m->half_life_ms = 1e18;
    lf_lead_t l;
    lf_lead_init(&l, lf_str_from("u1"));
    lf_transitions_t out = {0};
    for (int d = 0; d < LF_CAP_WINDOWS + 2; d++) {
        char mid[16];
        snprintf(mid, sizeof(mid), "d%d", d);
        lf_event_t ev = lf_test_event(mid, LF_KIND_PAGE_VIEW, "u1", NULL, T0 + d * LF_DAY_MS);
        ev.path = lf_str_from("/");
        lf_apply(&l, ev, m, &out);
    }
    double before = l.eng;
    lf_event_t late = lf_test_event("late", LF_KIND_PAGE_VIEW, "u1", NULL, T0 + 1);
    late.path = lf_str_from("/");
    lf_apply(&l, late, m, &out);
    CHECK_NEAR(l.eng, before, 1e-12); /* day 0 is no longer remembered */
    lf_event_t recent = lf_test_event("recent", LF_KIND_PAGE_VIEW, "u1", NULL,
                                      T0 + (LF_CAP_WINDOWS + 1) * LF_DAY_MS + 7);
    recent.path = lf_str_from("/");
    lf_apply(&l, recent, m, &out);
    CHECK_NEAR(l.eng, before + 4, 1e-12);
    lf_test_model_free(m);
}

static void test_cap_total_independent_of_order(void)
{
    lf_model_t *m = lf_funnel_model();
    m->half_life_ms = 1e18;
    int64_t ts[] = {T0 + 50, T0 + 10, T0 + 30, T0 + 20, T0 + 40};
    lf_lead_t a, b;
    lf_lead_init(&a, lf_str_from("u1"));
    lf_lead_init(&b, lf_str_from("u1"));
    lf_transitions_t out = {0};
    for (int i = 0; i < 5; i++) {
        char mid[16];
        snprintf(mid, sizeof(mid), "v%d", i);
        lf_event_t ev = lf_test_event(mid, LF_KIND_PAGE_VIEW, "u1", NULL, ts[i]);
        ev.path = lf_str_from("/");
        lf_apply(&a, ev, m, &out);
        ev.ts_ms = ts[4 - i];
        lf_apply(&b, ev, m, &out);
    }
    CHECK_NEAR(a.eng, 10, 1e-12);
    CHECK_NEAR(b.eng, 10, 1e-12);
    lf_test_model_free(m);
}

/* docs/contract.md "Semantics" Determinism: t is the lead's latest event time whatever the points,
 * so every arrival order of the same events (zero-point ones included) stores the same eng, t,
 * score and grade, and the same remembered messageIds. Regression: a zero-point event
 * arriving first moved t only while eng was 0. */
typedef struct {
    const char *mid;
    lf_kind_t kind;
    const char *path;
    int64_t ts;
} lf_perm_ev_t;

static const lf_perm_ev_t lf_perm_events[] = {
    {"p-form", LF_KIND_FORM_SUBMIT, NULL, T0 + 2 * LF_HOUR_MS},           /* 30 */
    {"p-view1", LF_KIND_PAGE_VIEW, "/blog", T0},                          /* 4 */
    {"p-open", LF_KIND_EMAIL_OPEN, NULL, T0 + 5 * LF_DAY_MS},             /* 0: no rule */
    {"p-view2", LF_KIND_PAGE_VIEW, "/pricing", T0 + 3 * LF_DAY_MS},       /* 4 */
    {"p-other", LF_KIND_OTHER, NULL, T0 + 4 * LF_DAY_MS + 17},            /* 0 */
    {"p-careers", LF_KIND_PAGE_VIEW, "/careers", T0 + 2 * LF_DAY_MS + 5}, /* 4 - 50 */
    {"p-form2", LF_KIND_FORM_SUBMIT, NULL, T0 + 4 * LF_DAY_MS + 3},       /* 30 */
};
#define LF_PERM_N ((int)(sizeof(lf_perm_events) / sizeof(lf_perm_events[0])))

static void lf_perm_apply(lf_lead_t *l, const int *order, int n, const lf_model_t *m)
{
    lf_lead_init(l, lf_str_from("u1"));
    for (int i = 0; i < n; i++) {
        const lf_perm_ev_t *pe = &lf_perm_events[order[i]];
        lf_event_t ev = lf_test_event(pe->mid, pe->kind, "u1", NULL, pe->ts);
        if (pe->path) ev.path = lf_str_from(pe->path);
        lf_transitions_t out = {0};
        lf_lead_apply(l, &ev, m, WINDOW_S, &out);
    }
}

/* The next permutation in lexicographic order; 0 after the last. */
static int lf_next_perm(int *a, int n)
{
    int i = n - 2;
    while (i >= 0 && a[i] >= a[i + 1])
        i--;
    if (i < 0) return 0;
    int j = n - 1;
    while (a[j] <= a[i])
        j--;
    int x = a[i];
    a[i] = a[j];
    a[j] = x;
    for (int lo = i + 1, hi = n - 1; lo < hi; lo++, hi--) {
        x = a[lo];
        a[lo] = a[hi];
        a[hi] = x;
    }
    return 1;
}

static void test_stored_fields_independent_of_arrival_order(void)
{
    lf_model_t *m = lf_funnel_model();
    int order[LF_PERM_N];
    for (int i = 0; i < LF_PERM_N; i++)
        order[i] = i;
    lf_lead_t ref, l;
    lf_perm_apply(&ref, order, LF_PERM_N, m);
    CHECK_INT(ref.t_ms, T0 + 5 * LF_DAY_MS); /* the zero-point email open is the latest */
    double ref_score = lf_lead_score_at(&ref, ref.t_ms, m);
    int perms = 0;
    do {
        lf_perm_apply(&l, order, LF_PERM_N, m);
        perms++;
        CHECK_INT(l.t_ms, ref.t_ms);
        CHECK_NEAR(l.eng, ref.eng, 1e-12);
        double score = lf_lead_score_at(&l, l.t_ms, m);
        CHECK_NEAR(score, ref_score, 1e-12);
        CHECK_INT(lf_grade(score, m), lf_grade(ref_score, m));
        CHECK_INT(l.events, ref.events);
        CHECK_INT(l.first_seen_ms, ref.first_seen_ms);
        CHECK_INT(l.last_seen_ms, ref.last_seen_ms);
        CHECK_INT(l.ndedup, ref.ndedup);
        for (int i = 0; i < l.ndedup; i++) {
            CHECK(l.dedup[i].hash == ref.dedup[i].hash);
            CHECK_INT(l.dedup[i].sec, ref.dedup[i].sec);
        }
    } while (lf_next_perm(order, LF_PERM_N));
    CHECK_INT(perms, 5040);
    /* Within the window of the latest event (5 d): the three events of days 4 and 5. */
    CHECK_INT(ref.ndedup, 3);
    lf_test_model_free(m);
}

/* The merge moves t to the later of both, also when the later side scored nothing. */
static void test_merge_takes_the_latest_time(void)
{
    lf_model_t *m = lf_funnel_model();
    lf_lead_t visitor, lead;
    lf_lead_init(&visitor, lf_str_from("a1"));
    lf_lead_init(&lead, lf_str_from("u1"));
    lf_transitions_t out = {0};
    lf_apply(&lead, lf_test_event("f", LF_KIND_FORM_SUBMIT, "u1", NULL, T0), m, &out);
    lf_apply(&visitor, lf_test_event("o", LF_KIND_EMAIL_OPEN, NULL, "a1", T0 + LF_DAY_MS), m, &out);
    CHECK_NEAR(visitor.eng, 0, 0);
    lf_lead_merge_visitor(&lead, &visitor, m, WINDOW_S);
    CHECK_INT(lead.t_ms, T0 + LF_DAY_MS);
    CHECK_NEAR(lead.eng, 15, 1e-12); /* 30 decayed by one half-life to the new t */
    /* The same events applied to one lead give the same state. */
    lf_lead_t single;
    lf_lead_init(&single, lf_str_from("u1"));
    lf_apply(&single, lf_test_event("o", LF_KIND_EMAIL_OPEN, "u1", NULL, T0 + LF_DAY_MS), m, &out);
    lf_apply(&single, lf_test_event("f", LF_KIND_FORM_SUBMIT, "u1", NULL, T0), m, &out);
    CHECK_INT(single.t_ms, lead.t_ms);
    CHECK_NEAR(single.eng, lead.eng, 1e-12);
    CHECK_INT(single.ndedup, lead.ndedup);
    /* A visitor merged into a lead that does not exist yet brings its t. */
    lf_lead_t fresh;
    lf_lead_init(&fresh, lf_str_from("u2"));
    lf_lead_merge_visitor(&fresh, &visitor, m, WINDOW_S);
    CHECK_INT(fresh.t_ms, T0 + LF_DAY_MS);
    lf_test_model_free(m);
}

/* Merged ids are pruned to the window of the merged t; the union keeps its order. */
static void test_merge_dedup_union_pruned(void)
{
    lf_model_t *m = lf_funnel_model();
    lf_lead_t visitor, lead;
    lf_lead_init(&visitor, lf_str_from("a1"));
    lf_lead_init(&lead, lf_str_from("u1"));
    lf_transitions_t out = {0};
    lf_apply(&visitor, lf_test_event("v-old", LF_KIND_OTHER, NULL, "a1", T0), m, &out);
    lf_apply(&visitor, lf_test_event("v-new", LF_KIND_OTHER, NULL, "a1", T0 + 30 * LF_HOUR_MS), m,
             &out);
    lf_apply(&lead, lf_test_event("l-old", LF_KIND_OTHER, "u1", NULL, T0 + 1000), m, &out);
    lf_apply(&lead, lf_test_event("l-mid", LF_KIND_OTHER, "u1", NULL, T0 + 20 * LF_HOUR_MS), m,
             &out);
    CHECK(lf_lead_seen_message(&lead, lf_str_from("l-old")));
    lf_lead_merge_visitor(&lead, &visitor, m, WINDOW_S);
    CHECK_INT(lead.t_ms, T0 + 30 * LF_HOUR_MS);
    CHECK(lf_lead_seen_message(&lead, lf_str_from("v-new")));
    CHECK(lf_lead_seen_message(&lead, lf_str_from("l-mid")));
    CHECK(!lf_lead_seen_message(&lead, lf_str_from("l-old"))); /* 30 h before the merged t */
    CHECK(!lf_lead_seen_message(&lead, lf_str_from("v-old")));
    CHECK_INT(lead.ndedup, 2);
    CHECK(lead.dedup[0].sec > lead.dedup[1].sec);
    lf_test_model_free(m);
}

static void test_mql_enter_with_hysteresis_and_drop(void)
{
    lf_model_t *m = lf_funnel_model();
    m->half_life_ms = 1e18;
    lf_lead_t l;
    lf_lead_init(&l, lf_str_from("u1"));
    lf_transitions_t out = {0};
    lf_apply(&l, lf_test_event("f1", LF_KIND_FORM_SUBMIT, "u1", NULL, T0), m, &out);
    CHECK_INT(l.stage, LF_STAGE_LEAD);
    lf_apply(&l, lf_test_event("f2", LF_KIND_FORM_SUBMIT, "u1", NULL, T0 + 1), m, &out); /* 60 */
    CHECK_INT(l.stage, LF_STAGE_MQL);
    CHECK_INT(out.n, 2);
    CHECK_INT(out.t[1].reason, LF_REASON_SCORE_THRESHOLD);
    CHECK_INT(out.t[1].seq, 2);
    CHECK_NEAR(out.t[1].score, 60, 1e-12);
    CHECK_STR(out.t[1].trigger, "f2");
    /* 60 - 50 + 30 = 40 < 45: careers visit then a form: drop to nurture, then... */
    lf_event_t careers = lf_test_event("c1", LF_KIND_PAGE_VIEW, "u1", NULL, T0 + 2);
    careers.path = lf_str_from("/careers");
    lf_apply(&l, careers, m, &out); /* -50 + 4 = 14 */
    CHECK_INT(l.stage, LF_STAGE_NURTURE);
    CHECK_INT(out.t[2].reason, LF_REASON_SCORE_DROP);
    lf_apply(&l, lf_test_event("f3", LF_KIND_FORM_SUBMIT, "u1", NULL, T0 + 3), m, &out); /* 44 */
    CHECK_INT(l.stage, LF_STAGE_NURTURE);
    lf_apply(&l, lf_test_event("f4", LF_KIND_FORM_SUBMIT, "u1", NULL, T0 + 4), m, &out); /* 74 */
    CHECK_INT(l.stage, LF_STAGE_MQL);
    CHECK_INT(out.n, 4);
    CHECK_INT(l.seq, 4);
    lf_test_model_free(m);
}

static void test_hysteresis_no_flapping_between_exit_and_enter(void)
{
    lf_model_t *m = lf_test_model();
    lf_test_rule(m, "plus", "form_submit", 61, 0, 0);
    lf_test_rule(m, "minus", "email_open", -10, 0, 0);
    m->half_life_ms = 1e18;
    lf_lead_t l;
    lf_lead_init(&l, lf_str_from("u1"));
    lf_transitions_t out = {0};
    lf_apply(&l, lf_test_event("p", LF_KIND_FORM_SUBMIT, "u1", NULL, T0), m, &out);
    CHECK_INT(l.stage, LF_STAGE_MQL);
    lf_apply(&l, lf_test_event("n1", LF_KIND_EMAIL_OPEN, "u1", NULL, T0 + 1), m, &out); /* 51 */
    CHECK_INT(l.stage, LF_STAGE_MQL); /* under enter, over exit: stays */
    lf_apply(&l, lf_test_event("n2", LF_KIND_EMAIL_OPEN, "u1", NULL, T0 + 2), m, &out); /* 41 */
    CHECK_INT(l.stage, LF_STAGE_NURTURE);
    lf_test_model_free(m);
}

static void test_decay_exit_time_and_advance(void)
{
    lf_model_t *m = lf_test_model(); /* h = 1 day */
    lf_test_rule(m, "big", "form_submit", 90, 0, 0);
    lf_lead_t l;
    lf_lead_init(&l, lf_str_from("u1"));
    lf_transitions_t out = {0};
    lf_apply(&l, lf_test_event("f", LF_KIND_FORM_SUBMIT, "u1", NULL, T0), m, &out);
    CHECK_INT(l.stage, LF_STAGE_MQL);
    /* 90 * 2^-x = 45 at exactly one half-life: below from the next millisecond on. */
    int64_t exit_at = lf_lead_exit_time(&l, m);
    CHECK_INT(exit_at, T0 + LF_DAY_MS + 1);
    out.n = 0;
    CHECK_INT(lf_lead_advance(&l, T0 + LF_DAY_MS, m, &out), 0);
    CHECK_INT(l.stage, LF_STAGE_MQL);
    CHECK_INT(lf_lead_advance(&l, T0 + 3 * LF_DAY_MS, m, &out), 1);
    CHECK_INT(l.stage, LF_STAGE_NURTURE);
    CHECK_INT(out.t[0].reason, LF_REASON_SCORE_DECAY);
    CHECK_INT(out.t[0].at_ms, T0 + LF_DAY_MS + 1); /* the crossing time, not "now" */
    CHECK_NEAR(out.t[0].score, 45, 1e-6);
    CHECK(out.t[0].score < 45);
    CHECK_STR(out.t[0].trigger, "");
    CHECK_INT(lf_lead_advance(&l, T0 + 9 * LF_DAY_MS, m, &out), 0); /* once only */
    lf_test_model_free(m);
}

static void test_decay_exit_found_by_later_event(void)
{
    lf_model_t *m = lf_test_model();
    lf_test_rule(m, "big", "form_submit", 90, 0, 0);
    lf_test_rule(m, "small", "email_open", 1, 0, 0);
    lf_lead_t l;
    lf_lead_init(&l, lf_str_from("u1"));
    lf_transitions_t out = {0};
    lf_apply(&l, lf_test_event("f", LF_KIND_FORM_SUBMIT, "u1", NULL, T0), m, &out);
    out.n = 0;
    /* No sweep ran; an event two days later finds the exit first, at its own time. */
    lf_apply(&l, lf_test_event("e", LF_KIND_EMAIL_OPEN, "u1", NULL, T0 + 2 * LF_DAY_MS), m, &out);
    CHECK_INT(out.n, 1);
    CHECK_INT(out.t[0].to, LF_STAGE_NURTURE);
    CHECK_INT(out.t[0].reason, LF_REASON_SCORE_DECAY);
    CHECK_INT(out.t[0].at_ms, T0 + LF_DAY_MS + 1);
    CHECK_NEAR(l.eng, 90 * 0.25 + 1, 1e-9);
    lf_test_model_free(m);
}

static void test_fit_never_decays_below_exit(void)
{
    lf_model_t *m = lf_test_model();
    lf_test_fit(m, "ent", "company_tier", "enterprise", 50);
    lf_test_rule(m, "form", "form_submit", 20, 0, 0);
    lf_lead_t l;
    lf_lead_init(&l, lf_str_from("u1"));
    lf_transitions_t out = {0};
    lf_event_t id = lf_test_event("i", LF_KIND_IDENTIFY, "u1", NULL, T0);
    lf_test_event_trait(&id, "company_tier", "Enterprise");
    lf_apply(&l, id, m, &out);
    CHECK_NEAR(l.fit, 50, 1e-12);
    CHECK_INT(out.t[0].reason, LF_REASON_IDENTIFY);
    lf_apply(&l, lf_test_event("f", LF_KIND_FORM_SUBMIT, "u1", NULL, T0 + 1), m, &out);
    CHECK_INT(l.stage, LF_STAGE_MQL);
    CHECK(lf_lead_exit_time(&l, m) == INT64_MAX);
    CHECK_INT(lf_lead_advance(&l, T0 + 1000 * LF_DAY_MS, m, &out), 0);
    lf_test_model_free(m);
}

static void test_required_traits_gate_mql(void)
{
    lf_model_t *m = lf_test_model();
    lf_test_rule(m, "form", "form_submit", 70, 0, 0);
    lf_test_require_trait(m, "company");
    lf_lead_t l;
    lf_lead_init(&l, lf_str_from("u1"));
    lf_transitions_t out = {0};
    lf_apply(&l, lf_test_event("f", LF_KIND_FORM_SUBMIT, "u1", NULL, T0), m, &out);
    CHECK_INT(l.stage, LF_STAGE_LEAD); /* hot, but no company known */
    lf_event_t id = lf_test_event("i", LF_KIND_IDENTIFY, "u1", NULL, T0 + 10);
    lf_test_event_trait(&id, "company", "Acme");
    lf_apply(&l, id, m, &out);
    CHECK_INT(l.stage, LF_STAGE_MQL);
    CHECK_STR(out.t[out.n - 1].trigger, "i");
    lf_test_model_free(m);
}

static void test_sales_feedback_path_and_forbidden_backwards(void)
{
    lf_model_t *m = lf_funnel_model();
    lf_lead_t l;
    lf_lead_init(&l, lf_str_from("u1"));
    lf_transitions_t out = {0};
    lf_kind_t seq[] = {LF_KIND_SALES_ACCEPT,        LF_KIND_SALES_QUALIFY, LF_KIND_SALES_ACCEPT,
                       LF_KIND_OPPORTUNITY_CREATED, LF_KIND_DEAL_WON,      LF_KIND_DEAL_LOST};
    lf_stage_t expect[] = {LF_STAGE_SAL,         LF_STAGE_SQL,      LF_STAGE_SQL,
                           LF_STAGE_OPPORTUNITY, LF_STAGE_CUSTOMER, LF_STAGE_CUSTOMER};
    lf_apply(&l, lf_test_event("m0", LF_KIND_OTHER, "u1", NULL, T0), m, &out);
    for (int i = 0; i < 6; i++) {
        char mid[16];
        snprintf(mid, sizeof(mid), "s%d", i);
        lf_apply(&l, lf_test_event(mid, seq[i], "u1", NULL, T0 + 1 + i), m, &out);
        CHECK_INT(l.stage, expect[i]);
    }
    CHECK_INT(out.n, 5); /* lead, sal, sql, opportunity, customer */
    CHECK_INT(out.t[4].reason, LF_REASON_SALES_EVENT);
    CHECK_INT(l.seq, 5);
    /* Score never demotes a lead sales are working on. */
    lf_event_t careers = lf_test_event("c", LF_KIND_PAGE_VIEW, "u1", NULL, T0 + 20);
    careers.path = lf_str_from("/careers");
    lf_apply(&l, careers, m, &out);
    CHECK_INT(l.stage, LF_STAGE_CUSTOMER);
    lf_apply(&l, lf_test_event("dq", LF_KIND_DISQUALIFY, "u1", NULL, T0 + 30), m, &out);
    CHECK_INT(l.stage, LF_STAGE_DISQUALIFIED);
    /* Disqualified is final, even for a hot lead. */
    for (int i = 0; i < 5; i++) {
        char mid[16];
        snprintf(mid, sizeof(mid), "h%d", i);
        lf_apply(&l, lf_test_event(mid, LF_KIND_FORM_SUBMIT, "u1", NULL, T0 + 40 + i), m, &out);
    }
    CHECK_INT(l.stage, LF_STAGE_DISQUALIFIED);
    lf_test_model_free(m);
}

/* model.recycling with engagement: keep, no cooldown, requalify: below_enter: the rule before
 * recycling policies (tests/unit/test_recycle.c has the others). */
static void test_sales_recycle_needs_requalifying(void)
{
    lf_model_t *m = lf_funnel_model();
    m->half_life_ms = LF_DAY_MS;
    for (int k = 0; k < LF_RECYCLE__COUNT; k++)
        m->recycle[k] = (lf_recycle_policy_t){
            .engagement = LF_RECYCLE_KEEP, .requalify = LF_REQUALIFY_BELOW_ENTER, .set = 1};
    lf_lead_t l;
    lf_lead_init(&l, lf_str_from("u1"));
    lf_transitions_t out = {0};
    for (int i = 0; i < 4; i++) { /* 120 points: hot */
        char mid[16];
        snprintf(mid, sizeof(mid), "f%d", i);
        lf_apply(&l, lf_test_event(mid, LF_KIND_FORM_SUBMIT, "u1", NULL, T0 + i), m, &out);
    }
    CHECK_INT(l.stage, LF_STAGE_MQL);
    lf_apply(&l, lf_test_event("rej", LF_KIND_SALES_REJECT, "u1", NULL, T0 + 10), m, &out);
    CHECK_INT(l.stage, LF_STAGE_NURTURE); /* not straight back to mql */
    CHECK_INT(out.t[out.n - 1].reason, LF_REASON_SALES_EVENT);
    lf_apply(&l, lf_test_event("f9", LF_KIND_FORM_SUBMIT, "u1", NULL, T0 + 20), m, &out);
    CHECK_INT(l.stage, LF_STAGE_NURTURE); /* still the old heat */
    /* Two weeks later the score has cooled below enter; new engagement re-qualifies. */
    int64_t later = T0 + 14 * LF_DAY_MS;
    lf_apply(&l, lf_test_event("e1", LF_KIND_EMAIL_OPEN, "u1", NULL, later), m, &out);
    CHECK_INT(l.stage, LF_STAGE_NURTURE);
    lf_apply(&l, lf_test_event("g1", LF_KIND_FORM_SUBMIT, "u1", NULL, later + 1), m, &out);
    lf_apply(&l, lf_test_event("g2", LF_KIND_FORM_SUBMIT, "u1", NULL, later + 2), m, &out);
    CHECK_INT(l.stage, LF_STAGE_MQL);
    CHECK_INT(out.t[out.n - 1].reason, LF_REASON_SCORE_THRESHOLD);
    lf_test_model_free(m);
}

static void test_bot_events_ignored(void)
{
    lf_model_t *m = lf_funnel_model();
    lf_test_bot(m, "crawler");
    lf_lead_t l;
    lf_lead_init(&l, lf_str_from("a1"));
    lf_transitions_t out = {0};
    lf_event_t ev = lf_test_event("b", LF_KIND_FORM_SUBMIT, NULL, "a1", T0);
    ev.user_agent = lf_str_from("SomeCrawler/1.0");
    CHECK_INT(lf_lead_apply(&l, &ev, m, WINDOW_S, &out), LF_APPLY_BOT);
    CHECK(!l.exists);
    lf_test_model_free(m);
}

/* Identity: a visitor's events then an identify equal one lead that saw them all. */
static void test_merge_visitor_equals_single_history(void)
{
    lf_model_t *m = lf_funnel_model();
    lf_test_fit(m, "ent", "company_tier", "enterprise", 20);
    lf_lead_t visitor, lead, single;
    lf_lead_init(&visitor, lf_str_from("a1"));
    lf_lead_init(&lead, lf_str_from("u1"));
    lf_lead_init(&single, lf_str_from("u1"));
    lf_transitions_t out = {0}, out_single = {0};
    int64_t ts[] = {T0, T0 + LF_HOUR_MS, T0 + 7 * LF_HOUR_MS};
    for (int i = 0; i < 3; i++) {
        char mid[16];
        snprintf(mid, sizeof(mid), "v%d", i);
        lf_event_t ev = lf_test_event(mid, LF_KIND_PAGE_VIEW, NULL, "a1", ts[i]);
        ev.path = lf_str_from("/product");
        if (i == 0) {
            ev.utm[LF_UTM_SOURCE] = lf_str_from("linkedin");
            ev.utm[LF_UTM_MEDIUM] = lf_str_from("cpc");
            ev.has_campaign = 1;
        }
        lf_apply(&visitor, ev, m, &out);
        ev.user_id = lf_str_from("u1");
        lf_apply(&single, ev, m, &out_single);
    }
    lf_event_t form = lf_test_event("f1", LF_KIND_FORM_SUBMIT, "u1", NULL, T0 + 3 * LF_HOUR_MS);
    lf_apply(&lead, form, m, &out);
    lf_apply(&single, form, m, &out_single);
    lf_event_t id = lf_test_event("id", LF_KIND_IDENTIFY, "u1", "a1", T0 + 8 * LF_HOUR_MS);
    lf_test_event_trait(&id, "company_tier", "enterprise");
    lf_lead_merge_visitor(&lead, &visitor, m, WINDOW_S);
    lf_apply(&lead, id, m, &out);
    lf_apply(&single, id, m, &out_single);
    CHECK_NEAR(lead.eng, single.eng, 1e-12);
    CHECK_INT(lead.t_ms, single.t_ms);
    CHECK_NEAR(lead.fit, 20, 1e-12);
    CHECK_INT(lead.counters[LF_KIND_PAGE_VIEW], 3);
    CHECK_INT(lead.events, single.events);
    CHECK_INT(lead.first_seen_ms, T0);
    CHECK_STR(lead.first_touch.source, "linkedin");
    CHECK_INT(lead.first_touch.at_ms, T0);
    CHECK_INT(lead.stage, single.stage);
    /* The visitor's messageIds are known to the lead: a replayed visitor event is a dup. */
    lf_event_t again = lf_test_event("v1", LF_KIND_PAGE_VIEW, "u1", "a1", ts[1]);
    CHECK_INT(lf_apply(&lead, again, m, &out), LF_APPLY_DUPLICATE);
    lf_test_model_free(m);
}

/* Regression (fault suite, kill -9): a visitor's applied offsets move to the lead with its
 * state, so its events replayed after a crash and resolved through the alias are skipped. */
static void test_merge_visitor_carries_offsets(void)
{
    lf_model_t *m = lf_funnel_model();
    lf_lead_t visitor, lead;
    lf_lead_init(&visitor, lf_str_from("a1"));
    lf_lead_init(&lead, lf_str_from("u1"));
    lf_transitions_t out = {0};
    lf_apply(&visitor, lf_test_event("v1", LF_KIND_PAGE_VIEW, NULL, "a1", T0), m, &out);
    lf_lead_offset_record(&visitor, 7, 3);
    lf_apply(&lead, lf_test_event("u1", LF_KIND_FORM_SUBMIT, "u1", NULL, T0 + 1), m, &out);
    lf_lead_offset_record(&lead, 1, 7115);
    lf_lead_merge_visitor(&lead, &visitor, m, WINDOW_S);
    CHECK(lf_lead_offset_applied(&lead, 7, 3));
    CHECK(lf_lead_offset_applied(&lead, 1, 7115));
    CHECK(!lf_lead_offset_applied(&lead, 7, 4));
    lf_test_model_free(m);
}

static void test_touches_first_and_last_out_of_order(void)
{
    lf_model_t *m = lf_funnel_model();
    lf_lead_t l;
    lf_lead_init(&l, lf_str_from("u1"));
    lf_transitions_t out = {0};
    const char *src[] = {"google", "newsletter", "linkedin"};
    int64_t ts[] = {T0 + 100, T0 + 300, T0 + 50};
    for (int i = 0; i < 3; i++) {
        char mid[16];
        snprintf(mid, sizeof(mid), "t%d", i);
        lf_event_t ev = lf_test_event(mid, LF_KIND_PAGE_VIEW, "u1", NULL, ts[i]);
        ev.utm[LF_UTM_SOURCE] = lf_str_from(src[i]);
        ev.utm[LF_UTM_CAMPAIGN] = lf_str_from("q1-launch");
        ev.has_campaign = 1;
        lf_apply(&l, ev, m, &out);
    }
    CHECK_STR(l.first_touch.source, "linkedin");
    CHECK_INT(l.first_touch.at_ms, T0 + 50);
    CHECK_STR(l.last_touch.source, "newsletter");
    CHECK_STR(l.last_touch.campaign, "q1-launch");
    lf_test_model_free(m);
}

/* Every stage change is remembered in the lead (lf_lead_move): its last LF_HISTORY_KEEP, oldest
 * first, each equal to the transition published (seq, from, to, reason, at, score rounded to
 * 2 decimals). */
static void test_history_follows_transitions(void)
{
    lf_model_t *m = lf_test_model();
    lf_test_rule(m, "plus", "form_submit", 61.123, 0, 0);
    lf_test_rule(m, "minus", "email_open", -50, 0, 0);
    m->half_life_ms = 30 * LF_DAY_MS;
    lf_lead_t l;
    lf_lead_init(&l, lf_str_from("u1"));
    lf_transition_t all[64];
    int nall = 0;
    for (int i = 0; i < 14; i++) {
        char mid[16];
        snprintf(mid, sizeof(mid), "e%d", i);
        lf_transitions_t out = {0};
        lf_apply(&l,
                 lf_test_event(mid, i % 2 ? LF_KIND_EMAIL_OPEN : LF_KIND_FORM_SUBMIT, "u1", NULL,
                               T0 + i * LF_HOUR_MS),
                 m, &out);
        for (int k = 0; k < out.n; k++)
            all[nall++] = out.t[k];
        CHECK_INT(l.nhistory, nall < LF_HISTORY_KEEP ? nall : LF_HISTORY_KEEP);
    }
    CHECK(nall > LF_HISTORY_KEEP); /* lead, then mql and nurture in turn */
    for (int i = 0; i < LF_HISTORY_KEEP; i++) {
        const lf_history_t *h = &l.history[i];
        const lf_transition_t *t = &all[nall - LF_HISTORY_KEEP + i];
        CHECK_INT(h->seq, t->seq);
        CHECK_INT(h->from, t->from);
        CHECK_INT(h->to, t->to);
        CHECK_INT(h->reason, t->reason);
        CHECK_INT(h->at_ms, t->at_ms);
        CHECK(h->score == round(t->score * 100) / 100);
    }
    CHECK_INT(l.history[LF_HISTORY_KEEP - 1].seq, l.seq);
    /* A decay exit found by time alone is remembered too. */
    lf_lead_t q;
    lf_lead_init(&q, lf_str_from("u2"));
    lf_transitions_t out = {0};
    lf_apply(&q, lf_test_event("f", LF_KIND_FORM_SUBMIT, "u2", NULL, T0), m, &out);
    CHECK_INT(q.stage, LF_STAGE_MQL);
    out.n = 0;
    CHECK_INT(lf_lead_advance(&q, T0 + 400 * LF_DAY_MS, m, &out), 1);
    CHECK_INT(q.nhistory, 3);
    CHECK_INT(q.history[2].reason, LF_REASON_SCORE_DECAY);
    CHECK_INT(q.history[2].at_ms, out.t[0].at_ms);
    CHECK_INT(q.history[2].to, LF_STAGE_NURTURE);
    lf_test_model_free(m);
}

/* lf_lead_history_add keeps seq order whatever order entries come in (the codec reads the
 * layout before's h0..h7 in hash order), replaces an entry of the same seq, and once full
 * drops the oldest, or the newcomer if it is older than all. */
static void test_history_add_order_and_keep(void)
{
    lf_lead_t l;
    lf_lead_init(&l, lf_str_from("u1"));
    static const int order[] = {5, 2, 9, 7, 3};
    for (size_t i = 0; i < 5; i++) {
        lf_history_t h = {(uint64_t)order[i], 1, 2, 0, order[i] * 10, order[i]};
        lf_lead_history_add(&l, &h);
    }
    CHECK_INT(l.nhistory, 5);
    static const int want1[] = {2, 3, 5, 7, 9};
    for (int i = 0; i < 5; i++)
        CHECK_INT(l.history[i].seq, want1[i]);
    lf_history_t again = {7, 2, 3, 1, 777, 1.5};
    lf_lead_history_add(&l, &again);
    CHECK_INT(l.nhistory, 5);
    CHECK_INT(l.history[3].at_ms, 777);
    CHECK_INT(l.history[3].to, 3);
    for (int s = 10; s <= 12; s++) {
        lf_history_t h = {(uint64_t)s, 1, 2, 0, s, s};
        lf_lead_history_add(&l, &h);
    }
    CHECK_INT(l.nhistory, LF_HISTORY_KEEP); /* 2 3 5 7 9 10 11 12 */
    lf_history_t old = {1, 1, 2, 0, 1, 1};
    lf_lead_history_add(&l, &old); /* older than every one kept: dropped */
    CHECK_INT(l.history[0].seq, 2);
    lf_history_t mid = {6, 1, 2, 0, 6, 6};
    lf_lead_history_add(&l, &mid); /* drops 2 */
    static const int want2[] = {3, 5, 6, 7, 9, 10, 11, 12};
    for (int i = 0; i < LF_HISTORY_KEEP; i++)
        CHECK_INT(l.history[i].seq, want2[i]);
    lf_history_t newest = {20, 1, 2, 0, 20, 20};
    lf_lead_history_add(&l, &newest); /* drops 3 */
    CHECK_INT(l.history[0].seq, 5);
    CHECK_INT(l.history[LF_HISTORY_KEEP - 1].seq, 20);
}

void suite_lead(void)
{
    LF_RUN(test_history_follows_transitions);
    LF_RUN(test_history_add_order_and_keep);
    LF_RUN(test_new_lead_first_seen_transition);
    LF_RUN(test_fit_follows_the_rules_in_force);
    LF_RUN(test_anonymous_visitor_stays_visitor);
    LF_RUN(test_duplicate_message_id_not_applied);
    LF_RUN(test_dedup_window_in_event_time);
    LF_RUN(test_dedup_bound_drops_oldest);
    LF_RUN(test_cap_window_edges);
    LF_RUN(test_cap_old_window_beyond_memory_grants_nothing);
    LF_RUN(test_cap_total_independent_of_order);
    LF_RUN(test_stored_fields_independent_of_arrival_order);
    LF_RUN(test_merge_takes_the_latest_time);
    LF_RUN(test_merge_dedup_union_pruned);
    LF_RUN(test_mql_enter_with_hysteresis_and_drop);
    LF_RUN(test_hysteresis_no_flapping_between_exit_and_enter);
    LF_RUN(test_decay_exit_time_and_advance);
    LF_RUN(test_decay_exit_found_by_later_event);
    LF_RUN(test_fit_never_decays_below_exit);
    LF_RUN(test_required_traits_gate_mql);
    LF_RUN(test_sales_feedback_path_and_forbidden_backwards);
    LF_RUN(test_sales_recycle_needs_requalifying);
    LF_RUN(test_bot_events_ignored);
    LF_RUN(test_merge_visitor_equals_single_history);
    LF_RUN(test_merge_visitor_carries_offsets);
    LF_RUN(test_touches_first_and_last_out_of_order);
}
