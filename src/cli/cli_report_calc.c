/* The back-test report's arithmetic (cli_report.h): what one lead, seen on one side or both,
 * adds to the report, and the sorting at the end. Pure: no Redis, no output. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "cli_report.h"
#include "leadflow/alloc.h"
#include "leadflow/score.h"

const int lf_report_quantile_pct[LF_REPORT_QUANTILES] = {10, 25, 50, 75, 90, 99};

/*---- The set of lead ids seen -------------------------------------------------------------*/

static void lf_idset_put(uint64_t *slot, size_t cap, uint64_t h)
{
    size_t i = (size_t)(h * 0x9E3779B97F4A7C15ULL) & (cap - 1);
    while (slot[i] && slot[i] != h)
        i = (i + 1) & (cap - 1);
    slot[i] = h;
}

int lf_idset_has(const lf_idset_t *s, uint64_t h)
{
    if (!s->cap) return 0;
    if (!h) h = 1;
    size_t i = (size_t)(h * 0x9E3779B97F4A7C15ULL) & (s->cap - 1);
    while (s->slot[i]) {
        if (s->slot[i] == h) return 1;
        i = (i + 1) & (s->cap - 1);
    }
    return 0;
}

int lf_idset_add(lf_idset_t *s, uint64_t h)
{
    if (!h) h = 1;
    if (lf_idset_has(s, h)) return 0;
    if (2 * (s->n + 1) > s->cap) { /* at most half full: short probes */
        size_t cap = s->cap ? 2 * s->cap : 1024;
        uint64_t *slot = lf_calloc(cap, sizeof(*slot));
        for (size_t i = 0; i < s->cap; i++)
            if (s->slot[i]) lf_idset_put(slot, cap, s->slot[i]);
        lf_free(s->slot);
        s->slot = slot;
        s->cap = cap;
    }
    lf_idset_put(s->slot, s->cap, h);
    s->n++;
    return 1;
}

void lf_idset_free(lf_idset_t *s)
{
    lf_free(s->slot);
    memset(s, 0, sizeof(*s));
}

/*---- Setup --------------------------------------------------------------------------------*/

void lf_report_init(lf_report_t *r, const lf_report_side_t *before, const lf_report_side_t *after,
                    int64_t at_ms, size_t limit)
{
    memset(r, 0, sizeof(*r));
    r->b.side = before;
    r->a.side = after;
    r->at_ms = at_ms;
    r->limit = limit;
    r->diff_ex = lf_calloc(limit ? limit : 1, sizeof(*r->diff_ex));
    r->tr_ex = lf_calloc(limit ? limit : 1, sizeof(*r->tr_ex));
}

static void lf_report_side_free(lf_report_sidestat_t *s)
{
    for (size_t i = 0; i < s->nwm; i++)
        lf_free(s->wm[i].parts);
    lf_free(s->wm);
    lf_free(s->scores.v);
}

void lf_report_free(lf_report_t *r)
{
    lf_report_side_free(&r->b);
    lf_report_side_free(&r->a);
    for (size_t i = 0; i < r->channels.n; i++) {
        lf_free(r->channels.rows[i].source);
        lf_free(r->channels.rows[i].medium);
        lf_free(r->channels.rows[i].campaign);
    }
    lf_free(r->channels.rows);
    lf_free(r->channels.index);
    lf_free(r->diff_ex);
    lf_free(r->tr_ex);
    memset(r, 0, sizeof(*r));
}

/*---- Pure helpers -------------------------------------------------------------------------*/

double lf_report_quantile(const double *v, size_t n, int pct)
{
    if (!n) return 0;
    /* ceil(pct * n / 100) in integers: no floating-point rounding at exact ranks. */
    size_t rank = ((size_t)pct * n + 99) / 100;
    if (rank < 1) rank = 1;
    if (rank > n) rank = n;
    return v[rank - 1];
}

int lf_report_is_mql(const lf_lead_t *l)
{
    switch (l->stage) {
    case LF_STAGE_MQL:
    case LF_STAGE_SAL:
    case LF_STAGE_SQL:
    case LF_STAGE_OPPORTUNITY:
    case LF_STAGE_CUSTOMER:
        return 1;
    default:
        break;
    }
    for (uint8_t i = 0; i < l->nhistory; i++)
        if (l->history[i].to == LF_STAGE_MQL) return 1;
    return 0;
}

size_t lf_report_moves_minus(const lf_lead_t *x, const lf_lead_t *y, lf_report_move_t *out)
{
    uint8_t used[LF_HISTORY_KEEP] = {0};
    size_t n = 0;
    for (uint8_t i = 0; x && i < x->nhistory; i++) {
        const lf_history_t *h = &x->history[i];
        int matched = 0;
        for (uint8_t k = 0; y && k < y->nhistory && !matched; k++) {
            const lf_history_t *g = &y->history[k];
            if (!used[k] && g->from == h->from && g->to == h->to && g->reason == h->reason)
                used[k] = matched = 1;
        }
        if (!matched) out[n++] = (lf_report_move_t){h->from, h->to, h->reason};
    }
    return n;
}

size_t lf_report_move_index(lf_stage_t from, lf_stage_t to, lf_reason_t reason)
{
    return ((size_t)from * LF_STAGE__COUNT + (size_t)to) * LF_REASON__COUNT + (size_t)reason;
}

/*---- One side of a lead -------------------------------------------------------------------*/

static void lf_report_version_count(lf_report_sidestat_t *s, const char *v)
{
    for (size_t i = 0; i < s->nversions; i++)
        if (strcmp(s->versions[i].version, v) == 0) {
            s->versions[i].leads++;
            return;
        }
    if (s->nversions == LF_REPORT_VERSIONS_MAX) {
        s->versions_other++;
        return;
    }
    lf_report_version_t *x = &s->versions[s->nversions++];
    snprintf(x->version, sizeof(x->version), "%s", v);
    x->leads = 1;
}

static void lf_report_score_push(lf_report_scores_t *s, double v)
{
    if (s->n == s->cap) {
        s->cap = s->cap ? 2 * s->cap : 4096;
        s->v = lf_realloc(s->v, s->cap * sizeof(*s->v));
    }
    s->v[s->n++] = v;
}

/* The side's counts for one lead; its view (stage, grade, score at the report time). */
static lf_report_view_t lf_report_side_add(lf_report_t *r, lf_report_sidestat_t *s,
                                           const lf_lead_t *l)
{
    const lf_model_t *m = s->side->model;
    lf_report_view_t v;
    v.stage = l->stage;
    v.score = lf_lead_score_at(l, r->at_ms, m);
    v.grade = lf_grade(v.score, m);
    s->leads++;
    lf_report_version_count(s, l->rules_version);
    lf_report_score_push(&s->scores, v.score);
    s->grades[v.grade - 1]++;
    return v;
}

/*---- MQLs per channel ---------------------------------------------------------------------*/

static uint64_t lf_report_channel_hash(const lf_touch_t *t)
{
    /* The three values with their lengths: ("a", "bc") and ("ab", "c") differ. */
    uint64_t h = 1469598103934665603ULL;
    const char *parts[3] = {t->source, t->medium, t->campaign};
    for (int i = 0; i < 3; i++) {
        size_t n = strlen(parts[i]);
        h ^= lf_hash64(parts[i], n) + (uint64_t)n + 0x9E3779B97F4A7C15ULL + (h << 6) + (h >> 2);
    }
    return h;
}

static int lf_report_channel_is(const lf_report_channel_t *c, const lf_touch_t *t)
{
    return strcmp(c->source, t->source) == 0 && strcmp(c->medium, t->medium) == 0 &&
           strcmp(c->campaign, t->campaign) == 0;
}

static void lf_report_channel_reindex(lf_report_channels_t *cs)
{
    size_t cap = cs->index_cap ? 2 * cs->index_cap : 256;
    lf_free(cs->index);
    cs->index = lf_calloc(cap, sizeof(*cs->index));
    cs->index_cap = cap;
    for (size_t i = 0; i < cs->n; i++) {
        size_t k = (size_t)cs->rows[i].hash & (cap - 1);
        while (cs->index[k])
            k = (k + 1) & (cap - 1);
        cs->index[k] = i + 1;
    }
}

/* The channel row of a first touch, created if new; NULL past LF_REPORT_CHANNELS_MAX. */
static lf_report_channel_t *lf_report_channel(lf_report_channels_t *cs, const lf_touch_t *t)
{
    uint64_t h = lf_report_channel_hash(t);
    if (2 * (cs->n + 1) > cs->index_cap) lf_report_channel_reindex(cs);
    size_t k = (size_t)h & (cs->index_cap - 1);
    while (cs->index[k]) {
        lf_report_channel_t *c = &cs->rows[cs->index[k] - 1];
        if (c->hash == h && lf_report_channel_is(c, t)) return c;
        k = (k + 1) & (cs->index_cap - 1);
    }
    if (cs->n == LF_REPORT_CHANNELS_MAX) {
        cs->bounded = 1;
        return NULL;
    }
    if (cs->n == cs->cap) {
        cs->cap = cs->cap ? 2 * cs->cap : 64;
        cs->rows = lf_realloc(cs->rows, cs->cap * sizeof(*cs->rows));
    }
    lf_report_channel_t *c = &cs->rows[cs->n++];
    memset(c, 0, sizeof(*c));
    c->source = lf_strdup(t->source);
    c->medium = lf_strdup(t->medium);
    c->campaign = lf_strdup(t->campaign);
    c->hash = h;
    cs->index[k] = cs->n;
    return c;
}

static void lf_report_mql(lf_report_t *r, const lf_lead_t *l, int after)
{
    if (!lf_report_is_mql(l)) return;
    lf_report_channel_t *c = lf_report_channel(&r->channels, &l->first_touch);
    if (after) {
        r->a.mqls++;
        if (c)
            c->after++;
        else
            r->channels.other_after++;
    } else {
        r->b.mqls++;
        if (c)
            c->before++;
        else
            r->channels.other_before++;
    }
}

/*---- Examples, bounded --------------------------------------------------------------------*/

/* Whether example x goes before y: the larger |score change|, then the id. */
static int lf_report_diff_before(const lf_report_diff_ex_t *x, const lf_report_diff_ex_t *y)
{
    double dx = fabs(x->a.score - x->b.score), dy = fabs(y->a.score - y->b.score);
    if (dx != dy) return dx > dy;
    return strcmp(x->id, y->id) < 0;
}

static void lf_report_keep_diff(lf_report_t *r, const lf_report_diff_ex_t *x)
{
    size_t n = r->ndiff_ex, i;
    if (!r->limit) return;
    if (n == r->limit && !lf_report_diff_before(x, &r->diff_ex[n - 1])) return;
    if (n < r->limit) n++;
    for (i = n - 1; i > 0 && lf_report_diff_before(x, &r->diff_ex[i - 1]); i--)
        r->diff_ex[i] = r->diff_ex[i - 1];
    r->diff_ex[i] = *x;
    r->ndiff_ex = n;
}

static void lf_report_keep_tr(lf_report_t *r, const lf_report_tr_ex_t *x)
{
    size_t n = r->ntr_ex, i;
    if (!r->limit) return;
    if (n == r->limit && strcmp(x->id, r->tr_ex[n - 1].id) >= 0) return;
    if (n < r->limit) n++;
    for (i = n - 1; i > 0 && strcmp(x->id, r->tr_ex[i - 1].id) < 0; i--)
        r->tr_ex[i] = r->tr_ex[i - 1];
    r->tr_ex[i] = *x;
    r->ntr_ex = n;
}

/*---- One lead -----------------------------------------------------------------------------*/

/* Whether a lead's kept history is all its transitions (only the newest LF_HISTORY_KEEP are
 * kept). */
static int lf_report_history_whole(const lf_lead_t *l)
{
    return !l || l->seq <= l->nhistory;
}

static void lf_report_transitions(lf_report_t *r, const char *id, const lf_lead_t *b,
                                  const lf_lead_t *a)
{
    lf_report_tr_ex_t x;
    if (!lf_report_history_whole(b) || !lf_report_history_whole(a)) {
        r->tr_truncated++;
        return;
    }
    x.nemit = (uint8_t)lf_report_moves_minus(a, b, x.emit);
    x.nnot = (uint8_t)lf_report_moves_minus(b, a, x.not_emit);
    if (!x.nemit && !x.nnot) return;
    r->tr_leads++;
    r->tr_emit += x.nemit;
    r->tr_not_emit += x.nnot;
    for (uint8_t i = 0; i < x.nemit; i++)
        r->emit_by[lf_report_move_index(x.emit[i].from, x.emit[i].to, x.emit[i].reason)]++;
    for (uint8_t i = 0; i < x.nnot; i++)
        r->not_emit_by[lf_report_move_index(x.not_emit[i].from, x.not_emit[i].to,
                                            x.not_emit[i].reason)]++;
    snprintf(x.id, sizeof(x.id), "%s", id);
    lf_report_keep_tr(r, &x);
}

void lf_report_add(lf_report_t *r, const char *id, const lf_lead_t *b, const lf_lead_t *a)
{
    lf_report_view_t vb = {0}, va = {0};
    if (!b && !a) return;
    if (b) {
        vb = lf_report_side_add(r, &r->b, b);
        lf_report_mql(r, b, 0);
    }
    if (a) {
        va = lf_report_side_add(r, &r->a, a);
        lf_report_mql(r, a, 1);
    }
    if (!a) r->b.only_here++;
    if (!b) r->a.only_here++;
    lf_report_transitions(r, id, b, a);
    if (!a || !b) return;
    r->both++;
    r->stage_pairs[vb.stage][va.stage]++;
    r->grade_pairs[vb.grade - 1][va.grade - 1]++;
    int ds = vb.stage != va.stage, dg = vb.grade != va.grade;
    if (!ds && !dg) return;
    r->changed++;
    r->stage_changed += (uint64_t)ds;
    r->grade_changed += (uint64_t)dg;
    lf_report_diff_ex_t x;
    snprintf(x.id, sizeof(x.id), "%s", id);
    x.b = vb;
    x.a = va;
    lf_report_keep_diff(r, &x);
}

/*---- At the end ---------------------------------------------------------------------------*/

static int lf_report_double_cmp(const void *x, const void *y)
{
    double a = *(const double *)x, b = *(const double *)y;
    return (a > b) - (a < b);
}

static int lf_report_version_cmp(const void *x, const void *y)
{
    const lf_report_version_t *a = x, *b = y;
    if (a->leads != b->leads) return a->leads < b->leads ? 1 : -1;
    return strcmp(a->version, b->version);
}

static long long lf_report_absdelta(const lf_report_channel_t *c)
{
    long long d = c->after - c->before;
    return d < 0 ? -d : d;
}

static int lf_report_channel_cmp(const void *x, const void *y)
{
    const lf_report_channel_t *a = x, *b = y;
    long long da = lf_report_absdelta(a), db = lf_report_absdelta(b);
    int c;
    if (da != db) return da < db ? 1 : -1;
    if ((c = strcmp(a->source, b->source))) return c;
    if ((c = strcmp(a->medium, b->medium))) return c;
    return strcmp(a->campaign, b->campaign);
}

void lf_report_finish(lf_report_t *r)
{
    lf_report_sidestat_t *sides[2] = {&r->b, &r->a};
    for (int i = 0; i < 2; i++) {
        lf_report_sidestat_t *s = sides[i];
        if (s->scores.n > 1)
            qsort(s->scores.v, s->scores.n, sizeof(*s->scores.v), lf_report_double_cmp);
        /* The sum again, in score order: the same to the last bit whatever order SCAN
         * returned the leads in (two reports of one state print one mean). */
        s->score_sum = 0;
        for (size_t k = 0; k < s->scores.n; k++)
            s->score_sum += s->scores.v[k];
        if (s->nversions > 1)
            qsort(s->versions, s->nversions, sizeof(*s->versions), lf_report_version_cmp);
    }
    /* The index no longer matches once the rows move: dropped. */
    lf_free(r->channels.index);
    r->channels.index = NULL;
    r->channels.index_cap = 0;
    if (r->channels.n > 1)
        qsort(r->channels.rows, r->channels.n, sizeof(*r->channels.rows), lf_report_channel_cmp);
}
