/* Recycling (model.recycling, issue 17): what sales_reject and deal_lost do to a hot lead.
 * Each engagement policy's effect (keep: unchanged; reset: 0, new points needed; scale:
 * engagement x factor); the cooldown (an event before the requalify time leaves the lead in
 * nurture, the first one at or after it brings it back to mql); a lost deal under its own
 * policy; requalify: below_enter as before the policies; the requalify time stored absolute
 * (a later rules file does not move it); the recycle's transition naming its policy, other
 * transitions not; the defaults. */
#include "fixture.h"
#include "leadflow/lead.h"
#include "leadflow/score.h"
#include "test.h"

#define T0 1767225600000LL /* 2026-01-01T00:00:00Z */
#define WINDOW_S 86400

/* A form is worth 30 points; the half-life is long (1000 days) so that a hot lead stays hot
 * over a cooldown and what is measured is the policy, not the decay. */
static lf_model_t *lf_recycle_model(void)
{
    lf_model_t *m = lf_test_model();
    m->half_life_ms = 1000.0 * LF_DAY_MS;
    lf_test_rule(m, "form", "form_submit", 30, 0, 0);
    return m;
}

static void lf_policy(lf_model_t *m, lf_recycle_kind_t k, lf_recycle_eng_t eng, double factor,
                      int64_t cooldown_ms, lf_requalify_t rq)
{
    m->recycle[k] = (lf_recycle_policy_t){eng, factor, cooldown_ms, rq, 1};
}

static void lf_apply(lf_lead_t *l, lf_event_t ev, const lf_model_t *m, lf_transitions_t *out)
{
    lf_lead_apply(l, &ev, m, WINDOW_S, out);
}

static void lf_event_at(lf_lead_t *l, const char *mid, lf_kind_t kind, int64_t ts,
                        const lf_model_t *m, lf_transitions_t *out)
{
    lf_apply(l, lf_test_event(mid, kind, "u1", NULL, ts), m, out);
}

/* A hot MQL: four forms (120 points against mql.enter 60) in the first seconds of T0. */
static void lf_hot_lead(lf_lead_t *l, const lf_model_t *m, lf_transitions_t *out)
{
    lf_lead_init(l, lf_str_from("u1"));
    for (int i = 0; i < 4; i++) {
        char mid[16];
        snprintf(mid, sizeof(mid), "f%d", i);
        lf_event_at(l, mid, LF_KIND_FORM_SUBMIT, T0 + i * 1000, m, out);
    }
}

/* The last transition, or a zeroed one when there is none. */
static lf_transition_t lf_last(const lf_transitions_t *out)
{
    lf_transition_t t;
    memset(&t, 0, sizeof(t));
    if (out->n > 0) t = out->t[out->n - 1];
    return t;
}

/* keep: the engagement is what it was; the lead stays in nurture until the cooldown is over,
 * then the next event (scoring nothing) brings it back to mql. */
static void test_recycle_keep_waits_for_the_cooldown(void)
{
    lf_model_t *m = lf_recycle_model();
    lf_policy(m, LF_RECYCLE_SALES_REJECT, LF_RECYCLE_KEEP, 0, 30 * LF_DAY_MS,
              LF_REQUALIFY_COOLDOWN);
    lf_lead_t l;
    lf_transitions_t out = {0};
    lf_hot_lead(&l, m, &out);
    CHECK_INT(l.stage, LF_STAGE_MQL);
    int64_t rej = T0 + 10000;
    double eng_before = lf_lead_engagement_at(&l, rej, m);
    out.n = 0;
    lf_event_at(&l, "rej", LF_KIND_SALES_REJECT, rej, m, &out);
    CHECK_INT(l.stage, LF_STAGE_NURTURE);
    CHECK_INT(out.n, 1);
    CHECK_NEAR(l.eng, eng_before, 1e-9);
    CHECK_INT(l.requalify_at_ms, rej + 30 * LF_DAY_MS);
    CHECK_INT(l.requalify, 0);
    lf_transition_t t = lf_last(&out);
    CHECK_INT(t.reason, LF_REASON_SALES_EVENT);
    CHECK_INT(t.recycled, 1);
    CHECK_INT(t.recycle, LF_RECYCLE_KEEP);
    CHECK_INT(t.requalify, LF_REQUALIFY_COOLDOWN);
    CHECK_INT(t.requalify_at_ms, rej + 30 * LF_DAY_MS);
    CHECK_NEAR(t.engagement, eng_before, 1e-9);
    /* Still hot, more points even: before the requalify time it stays in nurture. */
    lf_event_at(&l, "f9", LF_KIND_FORM_SUBMIT, rej + LF_DAY_MS, m, &out);
    lf_event_at(&l, "o1", LF_KIND_EMAIL_OPEN, rej + 30 * LF_DAY_MS - 1, m, &out);
    CHECK_INT(l.stage, LF_STAGE_NURTURE);
    CHECK_INT(out.n, 1);
    /* At the requalify time: back to mql on the event, by score. */
    lf_event_at(&l, "o2", LF_KIND_EMAIL_OPEN, rej + 30 * LF_DAY_MS, m, &out);
    CHECK_INT(l.stage, LF_STAGE_MQL);
    CHECK_INT(out.n, 2);
    t = lf_last(&out);
    CHECK_INT(t.reason, LF_REASON_SCORE_THRESHOLD);
    CHECK_INT(t.at_ms, rej + 30 * LF_DAY_MS);
    CHECK_INT(t.recycled, 0);
    CHECK_INT(l.requalify_at_ms, 0); /* done with nurture */
    lf_test_model_free(m);
}

/* reset: the engagement is 0 at the recycle (the transition's score is the fit alone); after
 * the cooldown an event that scores nothing leaves it in nurture; new points bring it back. */
static void test_recycle_reset_needs_new_points(void)
{
    lf_model_t *m = lf_recycle_model();
    lf_test_fit(m, "ent", "company_tier", "enterprise", 20);
    lf_policy(m, LF_RECYCLE_SALES_REJECT, LF_RECYCLE_RESET, 0, 7 * LF_DAY_MS,
              LF_REQUALIFY_COOLDOWN);
    lf_lead_t l;
    lf_transitions_t out = {0};
    lf_hot_lead(&l, m, &out);
    lf_event_t id = lf_test_event("id", LF_KIND_IDENTIFY, "u1", NULL, T0 + 5000);
    lf_test_event_trait(&id, "company_tier", "enterprise");
    lf_apply(&l, id, m, &out);
    CHECK_NEAR(l.fit, 20, 0);
    CHECK_INT(l.stage, LF_STAGE_MQL);
    int64_t rej = T0 + 10000;
    out.n = 0;
    lf_event_at(&l, "rej", LF_KIND_SALES_REJECT, rej, m, &out);
    CHECK_INT(l.stage, LF_STAGE_NURTURE);
    CHECK(l.eng == 0);
    lf_transition_t t = lf_last(&out);
    CHECK_INT(t.recycle, LF_RECYCLE_RESET);
    CHECK(t.engagement == 0);
    CHECK_NEAR(t.score, 20, 0);
    CHECK_INT(t.requalify_at_ms, rej + 7 * LF_DAY_MS);
    /* Past the cooldown, nothing new: 20 < 60. */
    lf_event_at(&l, "o1", LF_KIND_EMAIL_OPEN, rej + 8 * LF_DAY_MS, m, &out);
    CHECK_INT(l.stage, LF_STAGE_NURTURE);
    lf_event_at(&l, "g1", LF_KIND_FORM_SUBMIT, rej + 8 * LF_DAY_MS + 1, m, &out);
    CHECK_INT(l.stage, LF_STAGE_NURTURE); /* 50 */
    lf_event_at(&l, "g2", LF_KIND_FORM_SUBMIT, rej + 8 * LF_DAY_MS + 2, m, &out);
    CHECK_INT(l.stage, LF_STAGE_MQL); /* 80 */
    CHECK_INT(lf_last(&out).reason, LF_REASON_SCORE_THRESHOLD);
    lf_test_model_free(m);
}

/* scale: the engagement times the factor, named in the transition. */
static void test_recycle_scale_multiplies(void)
{
    lf_model_t *m = lf_recycle_model();
    lf_policy(m, LF_RECYCLE_SALES_REJECT, LF_RECYCLE_SCALE, 0.25, 0, LF_REQUALIFY_COOLDOWN);
    lf_lead_t l;
    lf_transitions_t out = {0};
    lf_hot_lead(&l, m, &out);
    int64_t rej = T0 + 10000;
    double eng_before = lf_lead_engagement_at(&l, rej, m);
    out.n = 0;
    lf_event_at(&l, "rej", LF_KIND_SALES_REJECT, rej, m, &out);
    CHECK_INT(l.stage, LF_STAGE_NURTURE);
    CHECK_NEAR(l.eng, eng_before * 0.25, 1e-9);
    lf_transition_t t = lf_last(&out);
    CHECK_INT(t.recycle, LF_RECYCLE_SCALE);
    CHECK_NEAR(t.recycle_factor, 0.25, 0);
    CHECK_INT(t.requalify_at_ms, rej); /* no cooldown */
    /* ~30 points: below 60, it stays; one more form (~60) and it is back at once. */
    lf_event_at(&l, "o1", LF_KIND_EMAIL_OPEN, rej + 1, m, &out);
    CHECK_INT(l.stage, LF_STAGE_NURTURE);
    lf_event_at(&l, "g1", LF_KIND_FORM_SUBMIT, rej + 2, m, &out);
    lf_event_at(&l, "g2", LF_KIND_FORM_SUBMIT, rej + 3, m, &out);
    CHECK_INT(l.stage, LF_STAGE_MQL);
    lf_test_model_free(m);
}

/* A lost deal follows its own policy, not the rejection's. */
static void test_recycle_deal_lost_own_policy(void)
{
    lf_model_t *m = lf_recycle_model();
    lf_policy(m, LF_RECYCLE_SALES_REJECT, LF_RECYCLE_RESET, 0, 30 * LF_DAY_MS,
              LF_REQUALIFY_COOLDOWN);
    lf_policy(m, LF_RECYCLE_DEAL_LOST, LF_RECYCLE_KEEP, 0, 90 * LF_DAY_MS, LF_REQUALIFY_COOLDOWN);
    lf_lead_t l;
    lf_transitions_t out = {0};
    lf_hot_lead(&l, m, &out);
    lf_event_at(&l, "acc", LF_KIND_SALES_ACCEPT, T0 + 5000, m, &out);
    lf_event_at(&l, "qual", LF_KIND_SALES_QUALIFY, T0 + 6000, m, &out);
    lf_event_at(&l, "opp", LF_KIND_OPPORTUNITY_CREATED, T0 + 7000, m, &out);
    CHECK_INT(l.stage, LF_STAGE_OPPORTUNITY);
    int64_t lost = T0 + 10 * LF_DAY_MS;
    double eng_before = lf_lead_engagement_at(&l, lost, m);
    out.n = 0;
    lf_event_at(&l, "lost", LF_KIND_DEAL_LOST, lost, m, &out);
    CHECK_INT(l.stage, LF_STAGE_NURTURE);
    lf_transition_t t = lf_last(&out);
    CHECK_INT(t.from, LF_STAGE_OPPORTUNITY);
    CHECK_INT(t.recycle, LF_RECYCLE_KEEP);
    CHECK_INT(t.requalify_at_ms, lost + 90 * LF_DAY_MS);
    CHECK_NEAR(l.eng, eng_before, 1e-9);
    /* 30 days (the rejection's cooldown) are not enough; 90 are. */
    lf_event_at(&l, "o1", LF_KIND_EMAIL_OPEN, lost + 30 * LF_DAY_MS, m, &out);
    CHECK_INT(l.stage, LF_STAGE_NURTURE);
    lf_event_at(&l, "o2", LF_KIND_EMAIL_OPEN, lost + 90 * LF_DAY_MS, m, &out);
    CHECK_INT(l.stage, LF_STAGE_MQL);
    lf_test_model_free(m);
}

/* requalify: below_enter: after the cooldown the score must also have been seen below
 * mql.enter since the recycle, as before the policies. */
static void test_recycle_below_enter_after_cooldown(void)
{
    lf_model_t *m = lf_recycle_model();
    m->half_life_ms = LF_DAY_MS;
    lf_policy(m, LF_RECYCLE_SALES_REJECT, LF_RECYCLE_KEEP, 0, LF_DAY_MS, LF_REQUALIFY_BELOW_ENTER);
    lf_lead_t l;
    lf_transitions_t out = {0};
    lf_hot_lead(&l, m, &out);
    for (int i = 0; i < 4; i++) { /* 240 points: hot for two days of half-lives */
        char mid[16];
        snprintf(mid, sizeof(mid), "h%d", i);
        lf_event_at(&l, mid, LF_KIND_FORM_SUBMIT, T0 + 5000 + i, m, &out);
    }
    int64_t rej = T0 + 10000;
    lf_event_at(&l, "rej", LF_KIND_SALES_REJECT, rej, m, &out);
    CHECK_INT(l.stage, LF_STAGE_NURTURE);
    CHECK_INT(l.requalify, 1);
    CHECK_INT(lf_last(&out).requalify, LF_REQUALIFY_BELOW_ENTER);
    /* Past the cooldown, still above enter (~120): held. */
    lf_event_at(&l, "o1", LF_KIND_EMAIL_OPEN, rej + LF_DAY_MS, m, &out);
    CHECK_INT(l.stage, LF_STAGE_NURTURE);
    CHECK_INT(l.requalify, 1);
    /* Cooled below 60 (~15 after 3 more days): seen; new points bring it back. */
    lf_event_at(&l, "o2", LF_KIND_EMAIL_OPEN, rej + 4 * LF_DAY_MS, m, &out);
    CHECK_INT(l.stage, LF_STAGE_NURTURE);
    CHECK_INT(l.requalify, 0);
    lf_event_at(&l, "g1", LF_KIND_FORM_SUBMIT, rej + 4 * LF_DAY_MS + 1, m, &out);
    lf_event_at(&l, "g2", LF_KIND_FORM_SUBMIT, rej + 4 * LF_DAY_MS + 2, m, &out);
    CHECK_INT(l.stage, LF_STAGE_MQL);
    lf_test_model_free(m);
}

/* The requalify time is stored absolute: a rules file that later lengthens the cooldown does
 * not move a lead already recycled (only the next recycle takes the new one). */
static void test_recycle_requalify_time_is_absolute(void)
{
    lf_model_t *m = lf_recycle_model();
    lf_policy(m, LF_RECYCLE_SALES_REJECT, LF_RECYCLE_KEEP, 0, 30 * LF_DAY_MS,
              LF_REQUALIFY_COOLDOWN);
    lf_lead_t l;
    lf_transitions_t out = {0};
    lf_hot_lead(&l, m, &out);
    int64_t rej = T0 + 10000;
    lf_event_at(&l, "rej", LF_KIND_SALES_REJECT, rej, m, &out);
    m->recycle[LF_RECYCLE_SALES_REJECT].cooldown_ms = 90 * LF_DAY_MS;
    lf_event_at(&l, "o1", LF_KIND_EMAIL_OPEN, rej + 30 * LF_DAY_MS, m, &out);
    CHECK_INT(l.stage, LF_STAGE_MQL);
    lf_test_model_free(m);
}

/* The same events give the same state and transitions, whatever the policy. */
static void test_recycle_deterministic(void)
{
    lf_model_t *m = lf_recycle_model();
    lf_policy(m, LF_RECYCLE_SALES_REJECT, LF_RECYCLE_SCALE, 0.5, 3 * LF_DAY_MS,
              LF_REQUALIFY_COOLDOWN);
    lf_lead_t a, b;
    lf_transitions_t oa = {0}, ob = {0};
    for (int run = 0; run < 2; run++) {
        lf_lead_t *l = run ? &b : &a;
        lf_transitions_t *o = run ? &ob : &oa;
        lf_hot_lead(l, m, o);
        lf_event_at(l, "rej", LF_KIND_SALES_REJECT, T0 + 10000, m, o);
        lf_event_at(l, "g1", LF_KIND_FORM_SUBMIT, T0 + 4 * LF_DAY_MS, m, o);
    }
    CHECK(memcmp(&a, &b, sizeof(a)) == 0);
    CHECK_INT(oa.n, ob.n);
    CHECK(memcmp(oa.t, ob.t, sizeof(oa.t[0]) * (size_t)oa.n) == 0);
    CHECK_INT(a.stage, LF_STAGE_MQL);
    lf_test_model_free(m);
}

/* The defaults fill only the policies not given: reset, requalify after 14 days for a
 * rejection and 90 for a lost deal. */
static void test_recycle_defaults(void)
{
    lf_model_t *m = lf_recycle_model();
    lf_policy(m, LF_RECYCLE_DEAL_LOST, LF_RECYCLE_KEEP, 0, 0, LF_REQUALIFY_BELOW_ENTER);
    lf_model_recycling_defaults(m);
    const lf_recycle_policy_t *r = &m->recycle[LF_RECYCLE_SALES_REJECT];
    CHECK_INT(r->engagement, LF_RECYCLE_RESET);
    CHECK_INT(r->cooldown_ms, 14 * LF_DAY_MS);
    CHECK_INT(r->requalify, LF_REQUALIFY_COOLDOWN);
    const lf_recycle_policy_t *d = &m->recycle[LF_RECYCLE_DEAL_LOST];
    CHECK_INT(d->engagement, LF_RECYCLE_KEEP); /* given: untouched */
    CHECK_INT(d->cooldown_ms, 0);
    CHECK_INT(d->requalify, LF_REQUALIFY_BELOW_ENTER);
    m->recycle[LF_RECYCLE_DEAL_LOST].set = 0;
    lf_model_recycling_defaults(m);
    CHECK_INT(d->engagement, LF_RECYCLE_RESET);
    CHECK_INT(d->cooldown_ms, 90 * LF_DAY_MS);
    CHECK_STR(lf_recycle_eng_name(LF_RECYCLE_SCALE), "scale");
    CHECK_STR(lf_requalify_name(LF_REQUALIFY_BELOW_ENTER), "below_enter");
    CHECK_STR(lf_recycle_kind_name(LF_RECYCLE_DEAL_LOST), "deal_lost");
    lf_test_model_free(m);
}

void suite_recycle(void)
{
    LF_RUN(test_recycle_keep_waits_for_the_cooldown);
    LF_RUN(test_recycle_reset_needs_new_points);
    LF_RUN(test_recycle_scale_multiplies);
    LF_RUN(test_recycle_deal_lost_own_policy);
    LF_RUN(test_recycle_below_enter_after_cooldown);
    LF_RUN(test_recycle_requalify_time_is_absolute);
    LF_RUN(test_recycle_deterministic);
    LF_RUN(test_recycle_defaults);
}
