/* Lead behaviour: who acts next (Zipf-skewed activity over a seeded ranking of the leads),
 * when (the stream's clock plus jitter, some late), and what: anonymous visits, then the
 * identify, then the journey of a known lead (pages, e-mails, forms, webinars, ...) and,
 * after enough activity, sales feedback that moves through accept -> qualify ->
 * opportunity -> won/lost. Malformed events pick a lead too but do not move it. */
#include <math.h>

#include "gen_int.h"

/* Zipf weights by rank; which lead holds which rank is a seeded shuffle. Whether a lead is
 * first seen anonymously is hashed from the seed and its index. */
void lf_gen_model_init(lf_gen_t *g)
{
    const lf_gen_opts_t *o = &g->o;
    double sum = 0;
    for (uint64_t k = 0; k < o->leads; k++) {
        sum += pow((double)(k + 1), -o->zipf);
        g->cdf[k] = sum;
        g->perm[k] = (uint32_t)k;
    }
    for (uint64_t k = o->leads - 1; k > 0; k--) {
        uint32_t j = (uint32_t)(lf_gen_rng_next(&g->rng) % (k + 1));
        uint32_t t = g->perm[k];
        g->perm[k] = g->perm[j];
        g->perm[j] = t;
    }
    for (uint64_t k = 0; k < o->leads; k++)
        if ((double)(lf_gen_mix(o->seed, k, 0xA0) >> 11) * 0x1.0p-53 < o->anon_rate)
            g->leads[k].flags |= GL_ANON_FIRST;
}

uint32_t lf_gen_model_pick_lead(lf_gen_t *g)
{
    double u = lf_gen_rng_unit(&g->rng) * g->cdf[g->o.leads - 1];
    uint64_t lo = 0, hi = g->o.leads - 1;
    while (lo < hi) {
        uint64_t mid = (lo + hi) / 2;
        if (g->cdf[mid] < u)
            lo = mid + 1;
        else
            hi = mid;
    }
    return g->perm[lo];
}

/* Event time: the stream's clock plus jitter; a few events arrive seconds to minutes late. */
static int64_t gen_event_time(lf_gen_t *g)
{
    uint32_t r = lf_gen_rng_below(&g->rng, 1000);
    if (r < 960) return g->t_base + lf_gen_rng_below(&g->rng, 3000);
    if (r < 990) return g->t_base - 5000 - lf_gen_rng_below(&g->rng, 55000);
    return g->t_base - 60000 - lf_gen_rng_below(&g->rng, 540000);
}

static lf_kind_t gen_next_sales(lf_gen_t *g, lf_gen_lead_t *l)
{
    uint32_t r = lf_gen_rng_below(&g->rng, 100);
    switch (l->sales) {
    case SALES_NONE:
        if (r < 80) {
            l->sales = SALES_ACCEPTED;
            return LF_KIND_SALES_ACCEPT;
        }
        l->sales = SALES_DONE;
        return r < 95 ? LF_KIND_SALES_REJECT : LF_KIND_DISQUALIFY;
    case SALES_ACCEPTED:
        if (r < 75) {
            l->sales = SALES_QUALIFIED;
            return LF_KIND_SALES_QUALIFY;
        }
        l->sales = SALES_DONE;
        return LF_KIND_SALES_REJECT;
    case SALES_QUALIFIED:
        l->sales = SALES_OPPORTUNITY;
        return LF_KIND_OPPORTUNITY_CREATED;
    default:
        l->sales = SALES_DONE;
        return r < 45 ? LF_KIND_DEAL_WON : LF_KIND_DEAL_LOST;
    }
}

/* What a known lead does next. */
static lf_kind_t gen_known_kind(lf_gen_t *g, lf_gen_lead_t *l)
{
    if (l->nev >= 15 && l->sales != SALES_DONE && lf_gen_rng_chance(&g->rng, 0.04))
        return gen_next_sales(g, l);
    uint32_t r = lf_gen_rng_below(&g->rng, 100);
    if (r < 42) return LF_KIND_PAGE_VIEW;
    if (r < 54) return LF_KIND_EMAIL_OPEN;
    if (r < 61) return LF_KIND_EMAIL_CLICK;
    if (r < 66) return LF_KIND_FORM_SUBMIT;
    if (r < 72) return LF_KIND_ASSET_DOWNLOAD;
    if (r < 78) return LF_KIND_VIDEO_VIEW;
    if (r < 82) {
        l->flags |= GL_REGISTERED;
        return LF_KIND_EVENT_REGISTER;
    }
    if (r < 85) return (l->flags & GL_REGISTERED) ? LF_KIND_EVENT_ATTEND : LF_KIND_PAGE_VIEW;
    if (r < 89) return LF_KIND_QR_SCAN;
    if (r < 91) return LF_KIND_UTM_CLICK;
    if (r < 93) return LF_KIND_IDENTIFY; /* profile update */
    return LF_KIND_PAGE_VIEW;
}

static lf_kind_t gen_anon_kind(lf_gen_t *g)
{
    uint32_t r = lf_gen_rng_below(&g->rng, 100);
    if (r < 80) return LF_KIND_PAGE_VIEW;
    if (r < 86) return LF_KIND_VIDEO_VIEW;
    if (r < 90) return LF_KIND_ASSET_DOWNLOAD;
    if (r < 96) return LF_KIND_QR_SCAN;
    return LF_KIND_UTM_CLICK;
}

void lf_gen_model_plan_valid(lf_gen_t *g, uint32_t lead, lf_gen_ev_t *ev)
{
    lf_gen_lead_t *l = &g->leads[lead];
    ev->lead = lead;
    ev->bad = LF_BAD_NONE;
    ev->ts = gen_event_time(g);
    if (!(l->flags & GL_STARTED)) {
        l->flags |= GL_STARTED;
        if (l->flags & GL_ANON_FIRST) l->anon_left = (uint8_t)(1 + lf_gen_rng_below(&g->rng, 5));
    }
    if (!(l->flags & GL_IDENTIFIED)) {
        if ((l->flags & GL_ANON_FIRST) && l->anon_left > 0) {
            l->anon_left--;
            ev->user = 0;
            ev->anon = 1;
            ev->kind = gen_anon_kind(g);
            return;
        }
        /* the identify: with the visitor's anonymousId when it was seen anonymously */
        l->flags |= GL_IDENTIFIED;
        ev->user = 1;
        ev->anon = (l->flags & GL_ANON_FIRST) != 0;
        ev->kind = LF_KIND_IDENTIFY;
        return;
    }
    ev->user = 1;
    /* browsers keep sending the anonymousId after identify */
    ev->anon = (l->flags & GL_ANON_FIRST) && lf_gen_rng_chance(&g->rng, 0.5);
    ev->kind = gen_known_kind(g, l);
    if (ev->kind >= LF_KIND_SALES_ACCEPT && ev->kind <= LF_KIND_DISQUALIFY) ev->anon = 0;
}

lf_bad_t lf_gen_model_plan_bad(lf_gen_t *g, lf_gen_ev_t *ev)
{
    uint32_t lead = lf_gen_model_pick_lead(g);
    lf_gen_lead_t *l = &g->leads[lead];
    ev->lead = lead;
    ev->ts = gen_event_time(g);
    ev->user = (l->flags & GL_IDENTIFIED) || !(l->flags & GL_ANON_FIRST);
    ev->anon = !ev->user;
    ev->kind = LF_KIND_PAGE_VIEW;
    uint32_t r = lf_gen_rng_below(&g->rng, 100);
    if (r < 20) return LF_BAD_NOT_DECODABLE; /* truncated */
    if (r < 30) return LF_BAD_NOT_A_MAP;
    if (r < 50) return LF_BAD_MISSING_FIELD;
    if (r < 60) {
        ev->user = 1;
        return LF_BAD_ID_TOO_LONG;
    }
    if (r < 75) return LF_BAD_TIMESTAMP_UNPARSABLE;
    if (r < 90) return LF_BAD_TIMESTAMP_RANGE;
    return LF_BAD_TOO_LARGE;
}
