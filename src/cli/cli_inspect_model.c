/* `leadflow inspect`: what the loaded model says about a lead (which fit rules hold, which
 * engagement rules its events are of) and its stage history as stored; shared by the text
 * and the JSON output. */
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

/*---- Stage history ------------------------------------------------------------------------*/

static int lf_inspect_hist_parse(const redisReply *e, lf_hist_entry_t *h)
{
    char *fields[6] = {h->seq, h->from, h->to, h->reason, h->at, h->score};
    size_t caps[6] = {sizeof(h->seq),    sizeof(h->from), sizeof(h->to),
                      sizeof(h->reason), sizeof(h->at),   sizeof(h->score)};
    const char *p = e->str, *end = e->str + e->len;
    if (e->type != REDIS_REPLY_STRING) return LF_ERR;
    for (int i = 0; i < 6; i++) {
        const char *bar = i < 5 ? memchr(p, '|', (size_t)(end - p)) : end;
        if (!bar) return LF_ERR;
        size_t n = (size_t)(bar - p) < caps[i] - 1 ? (size_t)(bar - p) : caps[i] - 1;
        memcpy(fields[i], p, n);
        fields[i][n] = '\0';
        p = bar < end ? bar + 1 : end;
    }
    return LF_OK;
}

static int lf_hist_cmp(const void *x, const void *y)
{
    unsigned long long a = strtoull(((const lf_hist_entry_t *)x)->seq, NULL, 10);
    unsigned long long b = strtoull(((const lf_hist_entry_t *)y)->seq, NULL, 10);
    return a < b ? -1 : a > b;
}

size_t lf_inspect_history(const redisReply *hash, lf_hist_entry_t *out)
{
    size_t n = 0;
    for (size_t i = 0; i + 1 < hash->elements && n < LF_HISTORY_KEEP; i += 2) {
        const redisReply *f = hash->element[i];
        if (f->type != REDIS_REPLY_STRING ||
            !(f->len == 2 && f->str[0] == 'h'))
            continue;
        if (lf_inspect_hist_parse(hash->element[i + 1], &out[n]) == LF_OK) n++;
    }
    qsort(out, n, sizeof(*out), lf_hist_cmp);
    return n;
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
