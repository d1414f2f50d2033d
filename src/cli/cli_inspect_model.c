/* `leadflow inspect`: what the loaded model says about a lead (which fit rules hold, which
 * engagement rules its events are of) and what its record says as stored; shared by the
 * text and the JSON output. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli_inspect_int.h"
#include "leadflow/score.h"

static const lf_trait_t *lf_inspect_trait(const lf_lead_t *l, const lf_model_t *m, const char *name)
{
    for (int i = 0; i < l->ntraits; i++)
        if (l->traits[i].idx < m->ntracked_traits &&
            strcmp(m->tracked_traits[l->traits[i].idx], name) == 0)
            return &l->traits[i];
    return NULL;
}

int lf_inspect_fit_holds(const lf_lead_t *l, const lf_model_t *m, const lf_fit_rule_t *r)
{
    for (size_t i = 0; i < r->nconds; i++) {
        const lf_cond_t *c = &r->conds[i];
        const lf_trait_t *tr = lf_inspect_trait(l, m, c->field);
        if (!lf_cond_holds(c, tr && tr->val[0] ? tr->val : NULL, tr ? strlen(tr->val) : 0,
                           tr ? tr->num : 0, tr ? tr->is_num : 0))
            return 0;
    }
    return 1;
}

uint64_t lf_inspect_rule_events(const lf_lead_t *l, const lf_engagement_rule_t *r)
{
    if (r->nkinds == 0) return l->events;
    uint64_t n = 0;
    for (size_t i = 0; i < r->nkinds; i++)
        n += l->counters[lf_kind_from_name(lf_str_from(r->kinds[i]))];
    return n;
}

void lf_inspect_kinds(const lf_engagement_rule_t *r, char *buf, size_t cap)
{
    size_t o = 0;
    buf[0] = '\0';
    if (r->nkinds == 0) snprintf(buf, cap, "any");
    for (size_t i = 0; i < r->nkinds && o < cap; i++)
        o += (size_t)snprintf(buf + o, cap - o, "%s%s", i ? "," : "", r->kinds[i]);
}

/*---- The record as stored ---------------------------------------------------------------*/

const char *lf_inspect_trait_name(const lf_model_t *m, const lf_trait_t *t)
{
    return t->idx < m->ntracked_traits ? m->tracked_traits[t->idx] : "?";
}

double lf_inspect_stored_score(const lf_inspect_t *in, char *grade, size_t cap, const lf_model_t *m)
{
    const lf_lead_t *l = &in->lead;
    const redisReply *s = in->visitor ? NULL : lf_cli_hash_get(in->hash, "score");
    const redisReply *g = in->visitor ? NULL : lf_cli_hash_get(in->hash, "grade");
    if (g && g->type == REDIS_REPLY_STRING)
        lf_cli_reply_str(g, grade, cap);
    else
        snprintf(grade, cap, "%s", lf_cli_grade(l->fit + l->eng, m));
    return s && s->type == REDIS_REPLY_STRING ? lf_cli_reply_double(s, l->fit + l->eng)
                                              : l->fit + l->eng;
}

const char *lf_inspect_layout_name(const lf_inspect_t *in)
{
    return in->lead.layout == LF_LAYOUT_V1 ? "v1" : "packed";
}

const char *lf_inspect_layout_text(const lf_inspect_t *in)
{
    return in->lead.layout == LF_LAYOUT_V1 ? "v1, rewritten on next write" : "packed";
}

/*---- Escaping for the text output ---------------------------------------------------------*/

const char *lf_inspect_esc(const char *p, size_t n, char *buf)
{
    return lf_str_escape((lf_str_t){p, (uint32_t)n}, buf, sizeof(lf_esc_buf_t));
}

const char *lf_inspect_esc_c(const char *s, char *buf)
{
    return lf_inspect_esc(s, strlen(s), buf);
}
