/* The scoring law of docs/contract.md "Semantics": decay, rule matching, grades. Pure functions. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "leadflow/score.h"

/* Beyond ~1100 half-lives 2^-x is below the smallest double; stop before exp2 underflows. */
#define LF_DECAY_MAX_HALF_LIVES 1100.0

double lf_decay_factor(int64_t dt_ms, double half_life_ms)
{
    if (dt_ms <= 0) return 1.0;
    if (!(half_life_ms > 0)) return 0.0;
    double x = (double)dt_ms / half_life_ms;
    if (x > LF_DECAY_MAX_HALF_LIVES) return 0.0;
    return exp2(-x);
}

double lf_rank_key(double e, int64_t t_ms, double half_life_ms)
{
    if (!(e == e) || e == 0 || !(half_life_ms > 0)) return 0;
    double at = (double)(t_ms > 0 ? t_ms : 0) / half_life_ms;
    double k = LF_RANK_OFFSET + log2(fabs(e)) + at;
    return e > 0 ? k : -k;
}

void lf_decay_add(double *e, int64_t *t_ms, double p, int64_t tau_ms, double half_life_ms)
{
    if (tau_ms >= *t_ms) {
        *e = *e * lf_decay_factor(tau_ms - *t_ms, half_life_ms) + p;
        *t_ms = tau_ms;
    } else {
        *e += p * lf_decay_factor(*t_ms - tau_ms, half_life_ms);
    }
}

static int lf_value_num(const char *val, size_t len, double num, int is_num, double *out)
{
    if (is_num) {
        *out = num;
        return 1;
    }
    char buf[64];
    if (len == 0 || len >= sizeof(buf)) return 0;
    memcpy(buf, val, len);
    buf[len] = '\0';
    char *end;
    double v = strtod(buf, &end);
    if (end == buf || *end != '\0' || !isfinite(v)) return 0;
    *out = v;
    return 1;
}

int lf_cond_holds(const lf_cond_t *c, const char *val, size_t len, double num, int is_num)
{
    int ok = 0;
    switch (c->op) {
    case LF_MATCH_PRESENT:
        ok = val != NULL && len > 0;
        break;
    case LF_MATCH_EQUALS:
        for (size_t i = 0; val && i < c->nvalues && !ok; i++)
            ok = strlen(c->values[i]) == len && strncasecmp(c->values[i], val, len) == 0;
        break;
    case LF_MATCH_PREFIX:
        for (size_t i = 0; val && i < c->nvalues && !ok; i++) {
            size_t n = strlen(c->values[i]);
            ok = n <= len && memcmp(c->values[i], val, n) == 0;
        }
        break;
    case LF_MATCH_RANGE: {
        double v;
        if (val && lf_value_num(val, len, num, is_num, &v))
            ok = (!c->has_min || v >= c->min) && (!c->has_max || v < c->max);
        break;
    }
    }
    return c->negate ? !ok : ok;
}

static int lf_kind_listed(const lf_engagement_rule_t *r, const lf_event_t *ev)
{
    if (r->nkinds == 0) return 1;
    for (size_t i = 0; i < r->nkinds; i++) {
        if (lf_str_eq_nocase(ev->kind_name, r->kinds[i])) return 1;
        /* Landing on a page through a UTM-tagged link is a campaign click. */
        if (ev->kind == LF_KIND_PAGE_VIEW && ev->has_campaign &&
            strcasecmp(r->kinds[i], "utm_click") == 0)
            return 1;
    }
    return 0;
}

static int lf_utm_index(const char *field)
{
    for (int i = 0; i < LF_UTM__COUNT; i++)
        if (strcasecmp(field, lf_utm_name((lf_utm_t)i)) == 0) return i;
    if (strcasecmp(field, "name") == 0) return LF_UTM_CAMPAIGN;
    return -1;
}

int lf_rule_matches(const lf_engagement_rule_t *r, const lf_event_t *ev)
{
    if (!lf_kind_listed(r, ev)) return 0;
    if (r->npath_prefixes) {
        int any = 0;
        for (size_t i = 0; i < r->npath_prefixes && !any; i++)
            any = lf_str_has_prefix(ev->path, r->path_prefixes[i]);
        if (!any) return 0;
    }
    for (size_t i = 0; i < r->nutm; i++) {
        const lf_cond_t *c = &r->utm[i];
        int idx = lf_utm_index(c->field);
        lf_str_t v = LF_STR_NULL;
        if (idx >= 0)
            v = ev->utm[idx];
        else if (strcasecmp(c->field, "click_id") == 0)
            v = ev->click_id;
        if (!lf_cond_holds(c, v.len ? v.ptr : NULL, v.len, 0, 0)) return 0;
    }
    for (size_t i = 0; i < r->nprops; i++) {
        const lf_cond_t *c = &r->props[i];
        const lf_kv_t *kv = lf_event_prop(ev, c->field);
        if (!lf_cond_holds(c, kv ? kv->val.ptr : NULL, kv ? kv->val.len : 0, kv ? kv->num : 0,
                           kv ? kv->is_num : 0))
            return 0;
    }
    return 1;
}

int lf_model_is_bot(const lf_model_t *m, const lf_event_t *ev)
{
    if (ev->user_agent.len == 0) return 0;
    char ua[512];
    size_t n = ev->user_agent.len < sizeof(ua) - 1 ? ev->user_agent.len : sizeof(ua) - 1;
    memcpy(ua, ev->user_agent.ptr, n);
    ua[n] = '\0';
    for (size_t i = 0; i < m->nbot_user_agents; i++)
        if (strcasestr(ua, m->bot_user_agents[i])) return 1;
    return 0;
}

int lf_grade(double score, const lf_model_t *m)
{
    if (score >= m->grade_l1) return 1;
    if (score >= m->grade_l2) return 2;
    return 3;
}
