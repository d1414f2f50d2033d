/* Hand-built models and events for the pure-logic tests. */
#include <stdlib.h>
#include <string.h>

#include "fixture.h"
#include "leadflow/alloc.h"

static char **lf_list_add(char **list, size_t *n, const char *s)
{
    list = lf_realloc(list, (*n + 1) * sizeof(*list));
    list[(*n)++] = lf_strdup(s);
    return list;
}

lf_model_t *lf_test_model(void)
{
    lf_model_t *m = lf_calloc(1, sizeof(*m));
    m->version = lf_strdup("test-1");
    m->half_life_ms = LF_DAY_MS;
    m->grade_l1 = 80;
    m->grade_l2 = 40;
    m->mql_enter = 60;
    m->mql_exit = 45;
    return m;
}

void lf_test_model_free(lf_model_t *m)
{
    lf_model_free(m);
    lf_free(m);
}

lf_engagement_rule_t *lf_test_rule(lf_model_t *m, const char *name, const char *kind, double points,
                                   double cap_points, int64_t cap_per_ms)
{
    m->eng = lf_realloc(m->eng, (m->neng + 1) * sizeof(*m->eng));
    lf_engagement_rule_t *r = &m->eng[m->neng++];
    memset(r, 0, sizeof(*r));
    r->name = lf_strdup(name);
    if (kind) r->kinds = lf_list_add(r->kinds, &r->nkinds, kind);
    r->points = points;
    r->cap_points = cap_points;
    r->cap_per_ms = cap_per_ms;
    return r;
}

void lf_test_rule_path(lf_engagement_rule_t *r, const char *prefix)
{
    r->path_prefixes = lf_list_add(r->path_prefixes, &r->npath_prefixes, prefix);
}

static lf_cond_t *lf_cond_add(lf_cond_t **conds, size_t *n, const char *field, const char *value)
{
    *conds = lf_realloc(*conds, (*n + 1) * sizeof(**conds));
    lf_cond_t *c = &(*conds)[(*n)++];
    memset(c, 0, sizeof(*c));
    c->field = lf_strdup(field);
    if (value) {
        c->op = LF_MATCH_EQUALS;
        c->values = lf_list_add(NULL, &c->nvalues, value);
    } else {
        c->op = LF_MATCH_PRESENT;
    }
    return c;
}

void lf_test_rule_utm(lf_engagement_rule_t *r, const char *field, const char *value)
{
    lf_cond_add(&r->utm, &r->nutm, field, value);
}

void lf_test_rule_prop(lf_engagement_rule_t *r, const char *field, const char *value)
{
    lf_cond_add(&r->props, &r->nprops, field, value);
}

static void lf_track_trait(lf_model_t *m, const char *trait)
{
    for (size_t i = 0; i < m->ntracked_traits; i++)
        if (strcmp(m->tracked_traits[i], trait) == 0) return;
    m->tracked_traits = lf_list_add(m->tracked_traits, &m->ntracked_traits, trait);
}

void lf_test_fit(lf_model_t *m, const char *name, const char *trait, const char *value,
                 double points)
{
    m->fit = lf_realloc(m->fit, (m->nfit + 1) * sizeof(*m->fit));
    lf_fit_rule_t *f = &m->fit[m->nfit++];
    memset(f, 0, sizeof(*f));
    f->name = lf_strdup(name);
    f->points = points;
    lf_cond_add(&f->conds, &f->nconds, trait, value);
    lf_track_trait(m, trait);
}

void lf_test_require_trait(lf_model_t *m, const char *trait)
{
    m->mql_required_traits = lf_list_add(m->mql_required_traits, &m->nmql_required_traits, trait);
    lf_track_trait(m, trait);
}

void lf_test_bot(lf_model_t *m, const char *ua)
{
    m->bot_user_agents = lf_list_add(m->bot_user_agents, &m->nbot_user_agents, ua);
}

lf_event_t lf_test_event(const char *mid, lf_kind_t kind, const char *user, const char *anon,
                         int64_t ts_ms)
{
    lf_event_t ev;
    memset(&ev, 0, sizeof(ev));
    ev.message_id = lf_str_from(mid);
    ev.kind = kind;
    ev.kind_name = lf_str_from(lf_kind_name(kind));
    ev.type = ev.kind_name;
    if (user) ev.user_id = lf_str_from(user);
    if (anon) ev.anonymous_id = lf_str_from(anon);
    ev.ts_ms = ts_ms;
    return ev;
}

static lf_kv_t lf_pool[256];
static int lf_pool_used;

static lf_kv_t *lf_kv_append(lf_kv_t *arr, uint32_t *n, const char *key, const char *val)
{
    if (arr == NULL) {
        if (lf_pool_used + 8 > (int)(sizeof(lf_pool) / sizeof(lf_pool[0]))) lf_pool_used = 0;
        arr = &lf_pool[lf_pool_used];
        lf_pool_used += 8;
    }
    if (*n >= 8) return arr;
    lf_kv_t *kv = &arr[(*n)++];
    memset(kv, 0, sizeof(*kv));
    kv->key = lf_str_from(key);
    kv->val = lf_str_from(val);
    char *end;
    double d = strtod(val, &end);
    if (end != val && *end == '\0') {
        kv->num = d;
        kv->is_num = 1;
    }
    return arr;
}

void lf_test_event_trait(lf_event_t *ev, const char *key, const char *val)
{
    ev->traits = lf_kv_append(ev->traits, &ev->ntraits, key, val);
}

void lf_test_event_prop(lf_event_t *ev, const char *key, const char *val)
{
    ev->props = lf_kv_append(ev->props, &ev->nprops, key, val);
}
