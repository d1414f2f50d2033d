/* The scoring law: decay (hand-computed and order-independent), caps, rule matching, fit,
 * grades. */
#include <float.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>

#include "fixture.h"
#include "leadflow/lead.h"
#include "leadflow/score.h"
#include "test.h"

static void test_decay_hand_computed(void)
{
    double e = 0;
    int64_t t = 0;
    const double h = 1000;
    lf_decay_add(&e, &t, 10, 1000, h);
    CHECK_NEAR(e, 10, 1e-12);
    CHECK_INT(t, 1000);
    lf_decay_add(&e, &t, 10, 2000, h); /* 10 * 2^-1 + 10 */
    CHECK_NEAR(e, 15, 1e-12);
    CHECK_INT(t, 2000);
    lf_decay_add(&e, &t, 8, 1000, h); /* late: 15 + 8 * 2^-1, t unchanged */
    CHECK_NEAR(e, 19, 1e-12);
    CHECK_INT(t, 2000);
    lf_decay_add(&e, &t, 0, 4000, h); /* 19 * 2^-2 */
    CHECK_NEAR(e, 4.75, 1e-12);
    lf_decay_add(&e, &t, 3, 3500, h); /* 4.75 + 3 * 2^-0.5 */
    CHECK_NEAR(e, 4.75 + 3 * 0.70710678118654752, 1e-12);
}

static uint64_t lf_rng_state = 88172645463325252ULL;
static uint64_t lf_rng(void)
{
    lf_rng_state ^= lf_rng_state << 13;
    lf_rng_state ^= lf_rng_state >> 7;
    lf_rng_state ^= lf_rng_state << 17;
    return lf_rng_state;
}

static void test_decay_order_independent(void)
{
    enum { N = 200, ORDERS = 100 };
    const double h = 14 * LF_DAY_MS;
    int64_t ts[N];
    double pts[N];
    int64_t tmax = 0;
    for (int i = 0; i < N; i++) {
        ts[i] = 1700000000000LL + (int64_t)(lf_rng() % (90 * LF_DAY_MS));
        pts[i] = (double)(lf_rng() % 4000) / 100.0 - 5.0; /* some negative */
        if (ts[i] > tmax) tmax = ts[i];
    }
    int64_t T = tmax + 3 * LF_DAY_MS;
    double expect = 0;
    for (int i = 0; i < N; i++)
        expect += pts[i] * exp2(-(double)(T - ts[i]) / h);
    int idx[N];
    for (int i = 0; i < N; i++)
        idx[i] = i;
    for (int o = 0; o < ORDERS; o++) {
        for (int i = N - 1; i > 0; i--) { /* Fisher-Yates */
            int j = (int)(lf_rng() % (uint64_t)(i + 1));
            int tmp = idx[i];
            idx[i] = idx[j];
            idx[j] = tmp;
        }
        double e = 0;
        int64_t t = 0;
        for (int i = 0; i < N; i++)
            lf_decay_add(&e, &t, pts[idx[i]], ts[idx[i]], h);
        CHECK_INT(t, tmax);
        double at_T = e * lf_decay_factor(T - t, h);
        CHECK_NEAR(at_T, expect, 1e-9);
    }
}

static void test_decay_extremes_never_nan(void)
{
    const double h = LF_DAY_MS;
    double e = 0;
    int64_t t = 0;
    lf_decay_add(&e, &t, 100, 946684800000LL, h); /* 2000 */
    lf_decay_add(&e, &t, 5, 4102444800000LL, h);  /* 2100: 100 years later */
    CHECK(isfinite(e));
    CHECK_NEAR(e, 5, 1e-12);
    lf_decay_add(&e, &t, 7, 946684800000LL, h); /* a century late: worth nothing now */
    CHECK(isfinite(e));
    CHECK_NEAR(e, 5, 1e-12);
    CHECK(lf_decay_factor(INT64_MAX, 1) == 0.0);
    CHECK(lf_decay_factor(-5, h) == 1.0);
    CHECK(lf_decay_factor(1000, 0) == 0.0); /* no half-life: no NaN */
    CHECK_NEAR(lf_decay_factor(LF_DAY_MS, h), 0.5, 1e-15);
}

static void test_cond_holds(void)
{
    lf_model_t *m = lf_test_model();
    lf_test_fit(m, "tier", "company_tier", "enterprise", 1);
    lf_cond_t *c = &m->fit[0].conds[0];
    CHECK(lf_cond_holds(c, "Enterprise", 10, 0, 0)); /* case-insensitive */
    CHECK(!lf_cond_holds(c, "enterprise2", 11, 0, 0));
    CHECK(!lf_cond_holds(c, NULL, 0, 0, 0));
    c->negate = 1;
    CHECK(lf_cond_holds(c, NULL, 0, 0, 0));
    c->negate = 0;
    lf_cond_t range = {.field = "employees",
                       .op = LF_MATCH_RANGE,
                       .min = 100,
                       .max = 1000,
                       .has_min = 1,
                       .has_max = 1};
    CHECK(lf_cond_holds(&range, "100", 3, 0, 0));         /* min inclusive */
    CHECK(!lf_cond_holds(&range, "1000", 4, 0, 0));       /* max exclusive */
    CHECK(lf_cond_holds(&range, NULL, 0, 999.5, 1) == 0); /* absent */
    CHECK(lf_cond_holds(&range, "x", 1, 999.5, 1));       /* numeric value wins */
    CHECK(!lf_cond_holds(&range, "lots", 4, 0, 0));
    lf_cond_t present = {.field = "phone", .op = LF_MATCH_PRESENT};
    CHECK(!lf_cond_holds(&present, "", 0, 0, 0));
    CHECK(lf_cond_holds(&present, "+1", 2, 0, 0));
    char *pre[] = {"/pricing", "/demo"};
    lf_cond_t prefix = {.field = "path", .op = LF_MATCH_PREFIX, .values = pre, .nvalues = 2};
    CHECK(lf_cond_holds(&prefix, "/demo/book", 10, 0, 0));
    CHECK(!lf_cond_holds(&prefix, "/Pricing", 8, 0, 0)); /* prefixes are case-sensitive */
    lf_test_model_free(m);
}

static void test_rule_matching(void)
{
    lf_model_t *m = lf_test_model();
    lf_test_rule_path(lf_test_rule(m, "pricing", "page_view", 10, 0, 0), "/pricing");
    lf_test_rule_utm(lf_test_rule(m, "linkedin", "utm_click", 5, 0, 0), "source", "linkedin");
    lf_test_rule_prop(lf_test_rule(m, "demo", "form_submit", 40, 0, 0), "form_id", "demo-request");
    lf_test_rule(m, "any", NULL, 1, 0, 0);
    /* Rules live in a growing array: take pointers once it is complete. */
    lf_engagement_rule_t *li = &m->eng[1], *demo = &m->eng[2], *any = &m->eng[3];

    lf_event_t pv = lf_test_event("m1", LF_KIND_PAGE_VIEW, "u1", NULL, 1000);
    pv.path = lf_str_from("/pricing/enterprise");
    CHECK(lf_rule_matches(&m->eng[0], &pv));
    CHECK(!lf_rule_matches(li, &pv)); /* no campaign */
    CHECK(lf_rule_matches(any, &pv));
    pv.path = lf_str_from("/blog/pricing");
    CHECK(!lf_rule_matches(&m->eng[0], &pv));
    /* A page view through a UTM link counts as a campaign click. */
    pv.utm[LF_UTM_SOURCE] = lf_str_from("LinkedIn");
    pv.has_campaign = 1;
    CHECK(lf_rule_matches(li, &pv));
    pv.utm[LF_UTM_SOURCE] = lf_str_from("google");
    CHECK(!lf_rule_matches(li, &pv));

    lf_event_t form = lf_test_event("m2", LF_KIND_FORM_SUBMIT, "u1", NULL, 1000);
    CHECK(!lf_rule_matches(demo, &form));
    lf_test_event_prop(&form, "form_id", "demo-request");
    CHECK(lf_rule_matches(demo, &form));
    lf_event_t other = lf_test_event("m3", LF_KIND_OTHER, "u1", NULL, 1000);
    other.kind_name = lf_str_from("webinar_poll");
    CHECK(!lf_rule_matches(demo, &other));
    CHECK(lf_rule_matches(any, &other));
    lf_test_model_free(m);
}

static void test_grades(void)
{
    lf_model_t *m = lf_test_model();
    CHECK_INT(lf_grade(80, m), 1);
    CHECK_INT(lf_grade(79.999, m), 2);
    CHECK_INT(lf_grade(40, m), 2);
    CHECK_INT(lf_grade(39.9, m), 3);
    CHECK_INT(lf_grade(-10, m), 3);
    lf_test_model_free(m);
}

static void test_bot_filter(void)
{
    lf_model_t *m = lf_test_model();
    lf_test_bot(m, "bot");
    lf_event_t ev = lf_test_event("m1", LF_KIND_PAGE_VIEW, NULL, "a1", 1000);
    CHECK(!lf_model_is_bot(m, &ev));
    ev.user_agent = lf_str_from("Mozilla/5.0 (compatible; Googlebot/2.1)");
    CHECK(lf_model_is_bot(m, &ev));
    ev.user_agent = lf_str_from("Mozilla/5.0 (X11; Linux x86_64)");
    CHECK(!lf_model_is_bot(m, &ev));
    lf_test_model_free(m);
}

/* lf:top's forward-decay key orders leads as their engagement at any common later time
 * does, for events spread over 20 years of event time and of both signs; never NaN or
 * infinite. */
static void test_rank_key_orders_by_live_engagement(void)
{
    enum { N = 400 };
    const double h = 14.0 * 86400000.0;
    const int64_t t0 = 946684800000LL, span = 20LL * 365 * 86400000LL; /* 2000 .. 2020 */
    double e[N], key[N];
    int64_t t[N];
    srand(7);
    for (int i = 0; i < N; i++) {
        t[i] = t0 + (int64_t)((double)rand() / RAND_MAX * (double)span);
        double mag = exp2(((double)rand() / RAND_MAX) * 60 - 30); /* 1e-9 .. 1e9 */
        e[i] = i % 7 == 0 ? 0 : i % 5 == 0 ? -mag : mag;
        key[i] = lf_rank_key(e[i], t[i], h);
        CHECK(key[i] == key[i] && key[i] > -1e300 && key[i] < 1e300);
    }
    /* At T (later than every t), engagement is e * 2^-((T - t) / h): compare in log space,
     * where it cannot underflow. */
    const int64_t T = t0 + span + 86400000LL;
    for (int i = 0; i < N; i++)
        for (int j = 0; j < N; j++) {
            double li = e[i] == 0 ? 0 : log2(fabs(e[i])) - (double)(T - t[i]) / h;
            double lj = e[j] == 0 ? 0 : log2(fabs(e[j])) - (double)(T - t[j]) / h;
            int si = (e[i] > 0) - (e[i] < 0), sj = (e[j] > 0) - (e[j] < 0);
            int live; /* sign of live(i) - live(j) */
            if (si != sj)
                live = si > sj ? 1 : -1;
            else if (si == 0 || fabs(li - lj) < 1e-9)
                continue; /* equal, or too close to call at double precision */
            else
                live = (si > 0) == (li > lj) ? 1 : -1;
            CHECK((key[i] > key[j] ? 1 : -1) == live);
        }
    CHECK(lf_rank_key(0, t0, h) == 0);
    CHECK(lf_rank_key(1e-300, 0, h) > 0);
    CHECK(lf_rank_key(-1e300, t0 + span, h) < 0);
    CHECK(lf_rank_key(1, 4102444800000LL, 1000) > 0); /* 2100 with a 1 s half-life: finite */
}

typedef struct {
    double key, live;
} lf_ranked_t;

static int lf_by_key(const void *a, const void *b)
{
    double x = ((const lf_ranked_t *)a)->key, y = ((const lf_ranked_t *)b)->key;
    return (x > y) - (x < y);
}

static double lf_uniform(uint64_t *rng)
{
    *rng = *rng * 6364136223846793005ULL + 1442695040888963407ULL;
    return (double)(*rng >> 11) / 9007199254740992.0; /* [0, 1) */
}

/* Leads whose events (1 to 5 each, worth 1e-3 .. 1e6 points, applied out of order by the
 * decay law) are spread over 20 years of event time: sorted by lf_rank_key of their stored
 * (eng, t), their engagement now (lf_lead_engagement_at at a common T after all of them) is in
 * the same order, for half-lives from 1 hour to 90 days. Half the leads had their last event
 * within a few hundred half-lives of T, so that, even with a 1 h half-life, many have an
 * engagement at T that a double holds (the others decayed to 0: ordered by the key, but there
 * is nothing left to compare). Pairs closer than 1e-9 relative are too close to call. */
static void test_rank_key_order_equals_engagement_at_T(void)
{
    enum { N = 4000 };
    static const double half_lives[] = {3600e3,      6 * 3600e3,   86400e3,
                                        7 * 86400e3, 30 * 86400e3, 90 * 86400e3};
    const int64_t start = 1136073600000LL;                 /* 2006-01-01 */
    const int64_t span = (int64_t)(20 * 365.25 * 86400e3); /* 20 years */
    static lf_ranked_t r[N];
    lf_model_t *m = lf_test_model();
    uint64_t rng = 2024;
    for (size_t hi = 0; hi < sizeof(half_lives) / sizeof(half_lives[0]); hi++) {
        double h = half_lives[hi];
        m->half_life_ms = h;
        const int64_t T = start + span + (int64_t)h / 7 + 1;
        double recent = 600 * h < (double)span ? 600 * h : (double)span;
        int compared = 0;
        for (int i = 0; i < N; i++) {
            lf_lead_t l;
            lf_lead_init(&l, lf_str_from("u"));
            l.t_ms = start;
            int nev = 1 + (int)(lf_uniform(&rng) * 5);
            for (int k = 0; k < nev; k++) {
                int64_t at = i % 2 ? start + (int64_t)(lf_uniform(&rng) * (double)span)
                                   : start + span - (int64_t)(lf_uniform(&rng) * recent);
                double p = pow(10, -3 + 9 * lf_uniform(&rng)); /* 1e-3 .. 1e6 */
                lf_decay_add(&l.eng, &l.t_ms, p, at, h);
            }
            r[i].key = lf_rank_key(l.eng, l.t_ms, h);
            r[i].live = lf_lead_engagement_at(&l, T, m);
            if (!isfinite(r[i].key) || !(r[i].key > 0)) {
                lf_test_fail(__FILE__, __LINE__, "h %g: key %g for eng %g at t %lld", h, r[i].key,
                             l.eng, (long long)l.t_ms);
                lf_test_model_free(m);
                return;
            }
        }
        qsort(r, N, sizeof(r[0]), lf_by_key);
        /* Ascending keys: no engagement (that a double holds, normal) may be above a later
         * one's, beyond rounding. */
        double max_before = 0;
        for (int i = 0; i < N; i++) {
            if (!(r[i].live >= 1e-290)) continue;
            compared++;
            if (max_before > r[i].live * (1 + 1e-9)) {
                lf_test_fail(__FILE__, __LINE__,
                             "h %g: a lead of engagement %.17g at T ranks below one of %.17g", h,
                             max_before, r[i].live);
                lf_test_model_free(m);
                return;
            }
            if (r[i].live > max_before) max_before = r[i].live;
        }
        if (compared < N / 4) {
            lf_test_fail(__FILE__, __LINE__, "h %g: only %d leads compared", h, compared);
            break;
        }
    }
    lf_test_model_free(m);
}

/* No NaN and no infinity for any finite input: t at or near 0, in 2100, or the largest;
 * engagements from the smallest subnormal to the largest double, of both signs; half-lives
 * from 1 ms to centuries (and none: 0). Positive engagements key above 0, negative below. */
static void test_rank_key_finite_everywhere(void)
{
    static const double engs[] = {DBL_TRUE_MIN, DBL_MIN, 1e-300, 1e-3, 0.5, 1, 1e6, 1e300, DBL_MAX};
    static const int64_t ts[] = {0,
                                 1,
                                 999,
                                 86400000LL,
                                 1767225600000LL,
                                 4102444800000LL,
                                 4102444800000LL * 100,
                                 INT64_MAX,
                                 -1,
                                 -4102444800000LL,
                                 INT64_MIN};
    static const double hs[] = {1, 1000, 3600e3, 86400e3, 90 * 86400e3, 1e15, 0, -5};
    for (size_t a = 0; a < sizeof(engs) / sizeof(engs[0]); a++)
        for (size_t b = 0; b < sizeof(ts) / sizeof(ts[0]); b++)
            for (size_t c = 0; c < sizeof(hs) / sizeof(hs[0]); c++)
                for (int sign = -1; sign <= 1; sign += 2) {
                    double e = sign * engs[a];
                    double k = lf_rank_key(e, ts[b], hs[c]);
                    if (!isfinite(k) || (hs[c] > 0 && (sign > 0 ? !(k > 0) : !(k < 0))) ||
                        (!(hs[c] > 0) && k != 0)) {
                        lf_test_fail(__FILE__, __LINE__, "lf_rank_key(%g, %lld, %g) = %g", e,
                                     (long long)ts[b], hs[c], k);
                        return;
                    }
                }
    CHECK(lf_rank_key(0, 4102444800000LL, 1) == 0);
    CHECK(lf_rank_key(NAN, 0, 1000) == 0);
    CHECK(lf_rank_key(1, 0, NAN) == 0);
    /* Later is higher for the same engagement, also across 2100 with a 1 s half-life. */
    CHECK(lf_rank_key(1, 4102444800000LL + 1000, 1000) > lf_rank_key(1, 4102444800000LL, 1000));
    /* Halving the engagement equals being one half-life older. */
    const double h = 86400e3;
    CHECK_NEAR(lf_rank_key(8, 1767225600000LL, h), lf_rank_key(16, 1767225600000LL - (int64_t)h, h),
               1e-12);
}

void suite_score(void)
{
    LF_RUN(test_rank_key_order_equals_engagement_at_T);
    LF_RUN(test_rank_key_finite_everywhere);
    LF_RUN(test_rank_key_orders_by_live_engagement);
    LF_RUN(test_decay_hand_computed);
    LF_RUN(test_decay_order_independent);
    LF_RUN(test_decay_extremes_never_nan);
    LF_RUN(test_cond_holds);
    LF_RUN(test_rule_matching);
    LF_RUN(test_grades);
    LF_RUN(test_bot_filter);
}
