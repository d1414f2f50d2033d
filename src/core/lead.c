/* Applying an event, or the passing of time, to one lead's state: dedup, counters, touches,
 * traits and fit, capped engagement with decay, and the stage machine. Pure: the pipeline
 * loads the lead, calls these, and stores the result. */
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "leadflow/lead.h"
#include "leadflow/score.h"

void lf_lead_init(lf_lead_t *lead, lf_str_t id)
{
    memset(lead, 0, sizeof(*lead));
    size_t n = id.len > LF_ID_MAX ? LF_ID_MAX : id.len;
    if (n) memcpy(lead->id, id.ptr, n);
    lead->id[n] = '\0';
    lead->stage = LF_STAGE_VISITOR;
}

static void lf_copy_cut(char *dst, size_t cap, lf_str_t src)
{
    size_t n = src.len < cap - 1 ? src.len : cap - 1;
    if (n) memcpy(dst, src.ptr, n);
    dst[n] = '\0';
}

/*---- Score at a time ------------------------------------------------------------------*/

double lf_lead_engagement_at(const lf_lead_t *lead, int64_t now_ms, const lf_model_t *m)
{
    return lead->eng * lf_decay_factor(now_ms - lead->t_ms, m->half_life_ms);
}

double lf_lead_score_at(const lf_lead_t *lead, int64_t now_ms, const lf_model_t *m)
{
    return lead->fit + lf_lead_engagement_at(lead, now_ms, m);
}

int64_t lf_lead_exit_time(const lf_lead_t *lead, const lf_model_t *m)
{
    double gap = m->mql_exit - lead->fit; /* engagement must fall below this */
    if (lead->eng <= 0 || gap <= 0 || !(m->half_life_ms > 0)) return INT64_MAX;
    if (lead->eng < gap) return lead->t_ms; /* already below at t */
    double dt = m->half_life_ms * log2(lead->eng / gap);
    if (!(dt < 9.0e15)) return INT64_MAX;
    /* The first millisecond strictly after the crossing, where score < exit. */
    int64_t at = lead->t_ms + (int64_t)floor(dt) + 1;
    return at < lead->t_ms ? INT64_MAX : at;
}

/*---- Transitions -----------------------------------------------------------------------*/

void lf_lead_history_add(lf_lead_t *lead, const lf_history_t *h)
{
    int i = lead->nhistory;
    while (i > 0 && lead->history[i - 1].seq >= h->seq)
        i--;
    if (i < lead->nhistory && lead->history[i].seq == h->seq) {
        lead->history[i] = *h; /* the same change again: the later record */
        return;
    }
    if (lead->nhistory == LF_HISTORY_KEEP) {
        if (i == 0) return; /* older than every one kept */
        memmove(&lead->history[0], &lead->history[1], sizeof(lead->history[0]) * (size_t)(i - 1));
        lead->history[i - 1] = *h;
        return;
    }
    memmove(&lead->history[i + 1], &lead->history[i],
            sizeof(lead->history[0]) * (size_t)(lead->nhistory - i));
    lead->history[i] = *h;
    lead->nhistory++;
}

/* Move the lead and record the change; the transition appended to out (NULL when out is NULL
 * or full). */
static lf_transition_t *lf_lead_move(lf_lead_t *lead, lf_stage_t to, lf_reason_t reason,
                                     int64_t at_ms, lf_str_t trigger, const lf_model_t *m,
                                     lf_transitions_t *out)
{
    lf_stage_t from = lead->stage;
    /* A recycled lead that leaves nurture (back to mql, or on by sales) is done with it. */
    if (from == LF_STAGE_NURTURE) lead->requalify_at_ms = 0;
    lead->stage = to;
    lead->stage_at_ms = at_ms;
    lead->seq++;
    double fit = lead->fit, eng = lf_lead_engagement_at(lead, at_ms, m);
    lf_history_t h = {lead->seq,       (uint8_t)from, (uint8_t)to,
                      (uint8_t)reason, at_ms,         round((fit + eng) * 100) / 100};
    lf_lead_history_add(lead, &h);
    if (!out || out->n >= LF_TRANSITIONS_MAX) return NULL;
    lf_transition_t *t = &out->t[out->n++];
    memset(t, 0, sizeof(*t));
    t->seq = lead->seq;
    t->from = from;
    t->to = to;
    t->reason = reason;
    t->at_ms = at_ms;
    t->fit = fit;
    t->engagement = eng;
    t->score = t->fit + t->engagement;
    t->grade = lf_grade(t->score, m);
    lf_copy_cut(t->trigger, sizeof(t->trigger), trigger);
    return t;
}

static void lf_lead_adopt_rules(lf_lead_t *lead, const lf_model_t *m);

int lf_lead_advance(lf_lead_t *lead, int64_t now_ms, const lf_model_t *m, lf_transitions_t *out)
{
    lf_lead_adopt_rules(lead, m);
    if (lead->stage != LF_STAGE_MQL) return 0;
    int64_t at = lf_lead_exit_time(lead, m);
    if (at == INT64_MAX || at > now_ms) return 0;
    if (at < lead->stage_at_ms) at = lead->stage_at_ms;
    lf_lead_move(lead, LF_STAGE_NURTURE, LF_REASON_SCORE_DECAY, at, LF_STR_NULL, m, out);
    return 1;
}

/*---- Recycling -------------------------------------------------------------------------*/

/* The policy of the sales feedback kind that recycles a lead (sales_reject, deal_lost). */
static const lf_recycle_policy_t *lf_recycle_policy(const lf_model_t *m, int kind)
{
    return &m->recycle[kind == LF_KIND_DEAL_LOST ? LF_RECYCLE_DEAL_LOST : LF_RECYCLE_SALES_REJECT];
}

/* A sales move to nurture, before the move is recorded (so the transition carries the score
 * the policy left): the engagement policy at the lead's t (the event already decayed eng
 * there), and the time from which the lead may requalify, absolute, from the event's time. */
static void lf_lead_recycle(lf_lead_t *lead, const lf_recycle_policy_t *p, int64_t ts_ms)
{
    if (p->engagement == LF_RECYCLE_RESET)
        lead->eng = 0;
    else if (p->engagement == LF_RECYCLE_SCALE)
        lead->eng *= p->factor;
    if (__builtin_add_overflow(ts_ms, p->cooldown_ms, &lead->requalify_at_ms))
        lead->requalify_at_ms = INT64_MAX;
    lead->requalify = p->requalify == LF_REQUALIFY_BELOW_ENTER;
}

static void lf_transition_recycled(lf_transition_t *t, const lf_lead_t *lead,
                                   const lf_recycle_policy_t *p)
{
    if (!t) return;
    t->recycled = 1;
    t->recycle = (uint8_t)p->engagement;
    t->requalify = (uint8_t)p->requalify;
    t->recycle_factor = p->engagement == LF_RECYCLE_SCALE ? p->factor : 0;
    t->requalify_at_ms = lead->requalify_at_ms;
}

/* Whether a lead in nurture may go back to mql at its event time `at` (the score aside). */
static int lf_lead_may_requalify(const lf_lead_t *lead, int64_t at)
{
    return !lead->requalify && at >= lead->requalify_at_ms;
}

/*---- Traits and fit ------------------------------------------------------------------*/

static lf_trait_t *lf_lead_trait(lf_lead_t *lead, size_t idx)
{
    for (int i = 0; i < lead->ntraits; i++)
        if (lead->traits[i].idx == idx) return &lead->traits[i];
    return NULL;
}

static size_t lf_tracked_index(const lf_model_t *m, const char *name)
{
    for (size_t i = 0; i < m->ntracked_traits; i++)
        if (strcmp(m->tracked_traits[i], name) == 0) return i;
    return SIZE_MAX;
}

static void lf_lead_set_trait(lf_lead_t *lead, size_t idx, lf_str_t val, double num, int is_num)
{
    lf_trait_t *tr = lf_lead_trait(lead, idx);
    if (!tr) {
        if (lead->ntraits >= LF_LEAD_TRAITS_MAX) return;
        tr = &lead->traits[lead->ntraits++];
        tr->idx = (uint16_t)idx;
    }
    lf_copy_cut(tr->val, sizeof(tr->val), val);
    tr->num = num;
    tr->is_num = (uint8_t)is_num;
}

static int lf_lead_fit_rule_holds(lf_lead_t *lead, const lf_fit_rule_t *r, const lf_model_t *m)
{
    for (size_t i = 0; i < r->nconds; i++) {
        const lf_cond_t *c = &r->conds[i];
        lf_trait_t *tr = lf_lead_trait(lead, lf_tracked_index(m, c->field));
        if (!lf_cond_holds(c, tr && tr->val[0] ? tr->val : NULL, tr ? strlen(tr->val) : 0,
                           tr ? tr->num : 0, tr ? tr->is_num : 0))
            return 0;
    }
    return 1;
}

static void lf_lead_compute_fit(lf_lead_t *lead, const lf_model_t *m)
{
    double fit = 0;
    for (size_t i = 0; i < m->nfit; i++)
        if (lf_lead_fit_rule_holds(lead, &m->fit[i], m)) fit += m->fit[i].points;
    lead->fit = fit;
}

static int lf_lead_has_required_traits(lf_lead_t *lead, const lf_model_t *m)
{
    for (size_t i = 0; i < m->nmql_required_traits; i++) {
        lf_trait_t *tr = lf_lead_trait(lead, lf_tracked_index(m, m->mql_required_traits[i]));
        if (!tr || !tr->val[0]) return 0;
    }
    return 1;
}

static void lf_lead_take_traits(lf_lead_t *lead, const lf_event_t *ev, const lf_model_t *m)
{
    for (uint32_t i = 0; i < ev->ntraits; i++) {
        const lf_kv_t *kv = &ev->traits[i];
        for (size_t k = 0; k < m->ntracked_traits; k++) {
            if (lf_str_eq(kv->key, m->tracked_traits[k])) {
                lf_lead_set_trait(lead, k, kv->val, kv->num, kv->is_num);
                break;
            }
        }
    }
}

/*---- Dedup -----------------------------------------------------------------------------*/

int64_t lf_dedup_sec(int64_t ms)
{
    return ms >= 0 ? ms / 1000 : -((-ms + 999) / 1000);
}

static int lf_lead_seen(const lf_lead_t *lead, uint64_t h)
{
    for (int i = 0; i < lead->ndedup; i++)
        if (lead->dedup[i].hash == h) return 1;
    return 0;
}

int lf_lead_seen_message(const lf_lead_t *lead, lf_str_t message_id)
{
    return lead->exists &&
           lf_lead_seen(lead, lf_hash64(message_id.ptr, message_id.len) & LF_DEDUP_MASK);
}

/* Whether entry a goes before b: newer first, then the smaller hash. */
static int lf_dedup_before(uint64_t ha, int64_t sa, const lf_dedup_entry_t *b)
{
    return sa > b->sec || (sa == b->sec && ha < b->hash);
}

void lf_lead_dedup_add(lf_lead_t *lead, uint64_t hash, int64_t sec)
{
    hash &= LF_DEDUP_MASK;
    for (int i = 0; i < lead->ndedup; i++) {
        if (lead->dedup[i].hash != hash) continue;
        if (lead->dedup[i].sec >= sec) return;
        memmove(&lead->dedup[i], &lead->dedup[i + 1],
                sizeof(lead->dedup[0]) * (size_t)(lead->ndedup - i - 1));
        lead->ndedup--;
        break;
    }
    /* Its place in the order (at most LF_DEDUP_MAX entries: a scan is cheap). */
    int at = lead->ndedup;
    while (at > 0 && lf_dedup_before(hash, sec, &lead->dedup[at - 1]))
        at--;
    if (at == LF_DEDUP_MAX) return; /* full, and older than every remembered one */
    int n = lead->ndedup < LF_DEDUP_MAX ? lead->ndedup : LF_DEDUP_MAX - 1; /* drop the oldest */
    memmove(&lead->dedup[at + 1], &lead->dedup[at], sizeof(lead->dedup[0]) * (size_t)(n - at));
    lead->dedup[at].hash = hash;
    lead->dedup[at].sec = sec;
    lead->ndedup = (uint16_t)(n + 1);
}

/* Forget the entries whose second is more than window_s before the lead's t: a repeat
 * carries its original's event time, so it could only be older than the window too. */
static void lf_lead_dedup_prune(lf_lead_t *lead, int window_s)
{
    int64_t from = lf_dedup_sec(lead->t_ms) - (window_s > 0 ? window_s : 0);
    while (lead->ndedup > 0 && lead->dedup[lead->ndedup - 1].sec < from)
        lead->ndedup--;
}

/* After the event moved t: remember it if it is within the window, prune the rest. */
static void lf_lead_remember(lf_lead_t *lead, uint64_t h, int64_t ts_ms, int window_s)
{
    lf_lead_dedup_prune(lead, window_s);
    int64_t sec = lf_dedup_sec(ts_ms), top = lf_dedup_sec(lead->t_ms);
    if (sec > top) sec = top; /* t is the latest event time: cannot happen, stay encodable */
    if (sec >= top - (window_s > 0 ? window_s : 0)) lf_lead_dedup_add(lead, h, sec);
}

/*---- Caps ------------------------------------------------------------------------------*/

/* Points a capped rule may still grant in the window of ts (and book them). Windows older
 * than every remembered one grant nothing: too late to know what they already granted. */
static double lf_lead_cap_grant(lf_lead_t *lead, size_t rule, const lf_engagement_rule_t *r,
                                double points, int64_t ts)
{
    if (r->cap_per_ms <= 0 || points <= 0) return points;
    int64_t k = ts >= 0 ? ts / r->cap_per_ms : -((-ts + r->cap_per_ms - 1) / r->cap_per_ms);
    lf_cap_use_t *cu = NULL;
    for (int i = 0; i < lead->ncaps; i++)
        if (lead->caps[i].rule == rule) cu = &lead->caps[i];
    if (!cu) {
        if (lead->ncaps >= LF_LEAD_CAPS_MAX) return 0; /* cannot book it: grant nothing */
        cu = &lead->caps[lead->ncaps++];
        memset(cu, 0, sizeof(*cu));
        cu->rule = (uint16_t)rule;
    }
    int slot = -1, oldest = -1;
    for (int i = 0; i < cu->n; i++) {
        if (cu->window[i] == k) slot = i;
        if (oldest < 0 || cu->window[i] < cu->window[oldest]) oldest = i;
    }
    if (slot < 0) {
        if (cu->n < LF_CAP_WINDOWS) {
            slot = cu->n++;
        } else if (k > cu->window[oldest]) {
            slot = oldest;
        } else {
            return 0;
        }
        cu->window[slot] = k;
        cu->granted[slot] = 0;
    }
    double left = r->cap_points - cu->granted[slot];
    double grant = points < left ? points : left;
    if (grant < 0) grant = 0;
    cu->granted[slot] += grant;
    return grant;
}

/*---- Touches ---------------------------------------------------------------------------*/

static void lf_touch_set(lf_touch_t *t, const lf_event_t *ev)
{
    lf_copy_cut(t->source, sizeof(t->source), ev->utm[LF_UTM_SOURCE]);
    lf_copy_cut(t->medium, sizeof(t->medium), ev->utm[LF_UTM_MEDIUM]);
    lf_copy_cut(t->campaign, sizeof(t->campaign), ev->utm[LF_UTM_CAMPAIGN]);
    t->at_ms = ev->ts_ms;
}

static void lf_lead_touch(lf_lead_t *lead, const lf_event_t *ev)
{
    if (!ev->utm[LF_UTM_SOURCE].len && !ev->utm[LF_UTM_MEDIUM].len && !ev->utm[LF_UTM_CAMPAIGN].len)
        return;
    if (lead->first_touch.at_ms == 0 || ev->ts_ms < lead->first_touch.at_ms)
        lf_touch_set(&lead->first_touch, ev);
    if (lead->last_touch.at_ms == 0 || ev->ts_ms >= lead->last_touch.at_ms)
        lf_touch_set(&lead->last_touch, ev);
}

/*---- Apply -----------------------------------------------------------------------------*/

/* A lead last written under other rules (a reload, a restart with a changed file): its fit
 * is recomputed from the traits it keeps under the rules in force, which may weigh them
 * otherwise. Its engagement stays: points once given are not taken back (a replay rescores
 * the past). Idempotent; nothing for a lead of these rules. */
static void lf_lead_adopt_rules(lf_lead_t *lead, const lf_model_t *m)
{
    if (!lead->exists || !m->version || strcmp(lead->rules_version, m->version) == 0) return;
    lf_lead_compute_fit(lead, m);
    snprintf(lead->rules_version, sizeof(lead->rules_version), "%s", m->version);
}

lf_apply_result_t lf_lead_apply(lf_lead_t *lead, const lf_event_t *ev, const lf_model_t *m,
                                int dedup_window_s, lf_transitions_t *out)
{
    if (lf_model_is_bot(m, ev)) return LF_APPLY_BOT;
    lf_lead_adopt_rules(lead, m);
    uint64_t h = lf_hash64(ev->message_id.ptr, ev->message_id.len) & LF_DEDUP_MASK;
    if (lead->exists && lf_lead_seen(lead, h)) return LF_APPLY_DUPLICATE;

    /* A decay exit that happened before this event comes first, at its own time. */
    if (lead->exists && ev->ts_ms >= lead->t_ms) lf_lead_advance(lead, ev->ts_ms, m, out);

    if (!lead->exists) {
        lead->exists = 1;
        lead->first_seen_ms = lead->last_seen_ms = ev->ts_ms;
        lead->anonymous = ev->user_id.len == 0;
        lead->stage = LF_STAGE_VISITOR;
        lead->stage_at_ms = ev->ts_ms;
        lead->t_ms = ev->ts_ms; /* eng is 0: t is only a time (also before 1970) */
    }
    /* t is the lead's latest event time whatever the points (docs/contract.md "Semantics"
     * Determinism): a later event decays eng to its time even if it scores nothing, so the stored
     * eng and t do not depend on the order events arrived in. */
    lf_decay_add(&lead->eng, &lead->t_ms, 0, ev->ts_ms, m->half_life_ms);
    lf_lead_remember(lead, h, ev->ts_ms, dedup_window_s);
    lead->counters[ev->kind]++;
    lead->events++;
    if (ev->ts_ms < lead->first_seen_ms) lead->first_seen_ms = ev->ts_ms;
    if (ev->ts_ms > lead->last_seen_ms) lead->last_seen_ms = ev->ts_ms;
    lf_lead_touch(lead, ev);

    if (ev->ntraits) {
        lf_lead_take_traits(lead, ev, m);
        lf_lead_compute_fit(lead, m);
    }
    for (size_t i = 0; i < m->neng; i++) {
        const lf_engagement_rule_t *r = &m->eng[i];
        if (!lf_rule_matches(r, ev)) continue;
        double p = lf_lead_cap_grant(lead, i, r, r->points, ev->ts_ms);
        if (p != 0) lf_decay_add(&lead->eng, &lead->t_ms, p, ev->ts_ms, m->half_life_ms);
    }

    /* The stage machine, in event time (the latest time the lead has seen). */
    int64_t at = lead->t_ms;
    if (lead->stage == LF_STAGE_VISITOR && ev->user_id.len) {
        lead->anonymous = 0;
        lf_lead_move(lead, LF_STAGE_LEAD,
                     ev->kind == LF_KIND_IDENTIFY ? LF_REASON_IDENTIFY : LF_REASON_FIRST_SEEN,
                     ev->ts_ms, ev->message_id, m, out);
    }
    lf_stage_t to;
    int sales_moved = 0;
    if (lf_stage_sales_move(lead->stage, ev->kind, &to)) {
        const lf_recycle_policy_t *rp = NULL;
        if (to == LF_STAGE_NURTURE) {
            rp = lf_recycle_policy(m, ev->kind);
            lf_lead_recycle(lead, rp, ev->ts_ms);
        }
        lf_transition_t *t =
            lf_lead_move(lead, to, LF_REASON_SALES_EVENT, ev->ts_ms, ev->message_id, m, out);
        if (rp) lf_transition_recycled(t, lead, rp);
        sales_moved = 1;
    }

    double score = lf_lead_score_at(lead, at, m);
    if (score < m->mql_enter) lead->requalify = 0;
    if (sales_moved) {
        /* The sales decision is this event's stage change. */
    } else if ((lead->stage == LF_STAGE_LEAD ||
                (lead->stage == LF_STAGE_NURTURE && lf_lead_may_requalify(lead, at))) &&
               score >= m->mql_enter && lf_lead_has_required_traits(lead, m)) {
        lf_lead_move(lead, LF_STAGE_MQL, LF_REASON_SCORE_THRESHOLD, at, ev->message_id, m, out);
    } else if (lead->stage == LF_STAGE_MQL && score < m->mql_exit) {
        lf_lead_move(lead, LF_STAGE_NURTURE, LF_REASON_SCORE_DROP, at, ev->message_id, m, out);
    }
    return LF_APPLY_APPLIED;
}

/*---- Identity --------------------------------------------------------------------------*/

void lf_lead_merge_visitor(lf_lead_t *lead, const lf_lead_t *v, const lf_model_t *m,
                           int dedup_window_s)
{
    if (!v->exists) return;
    if (!lead->exists) {
        lead->exists = 1;
        lead->first_seen_ms = v->first_seen_ms;
        lead->last_seen_ms = v->last_seen_ms;
        lead->stage = LF_STAGE_VISITOR;
        lead->stage_at_ms = v->stage_at_ms;
        lead->t_ms = v->t_ms;
    }
    /* The visitor's engagement is worth v->eng at v->t: add it as points at that time. Also
     * with no engagement: t becomes the later of both, the latest event time of the two. */
    lf_decay_add(&lead->eng, &lead->t_ms, v->eng, v->t_ms, m->half_life_ms);
    for (int k = 0; k < LF_KIND__COUNT; k++)
        lead->counters[k] += v->counters[k];
    lead->events += v->events;
    if (v->first_seen_ms && v->first_seen_ms < lead->first_seen_ms)
        lead->first_seen_ms = v->first_seen_ms;
    if (v->last_seen_ms > lead->last_seen_ms) lead->last_seen_ms = v->last_seen_ms;
    if (v->first_touch.at_ms &&
        (!lead->first_touch.at_ms || v->first_touch.at_ms < lead->first_touch.at_ms))
        lead->first_touch = v->first_touch;
    if (v->last_touch.at_ms && v->last_touch.at_ms > lead->last_touch.at_ms)
        lead->last_touch = v->last_touch;
    for (int i = 0; i < v->ntraits; i++) {
        const lf_trait_t *tr = &v->traits[i];
        if (!lf_lead_trait(lead, tr->idx))
            lf_lead_set_trait(lead, tr->idx, lf_str_from(tr->val), tr->num, tr->is_num);
    }
    for (int i = 0; i < v->ncaps; i++) {
        const lf_cap_use_t *vc = &v->caps[i];
        lf_cap_use_t *lc = NULL;
        for (int j = 0; j < lead->ncaps; j++)
            if (lead->caps[j].rule == vc->rule) lc = &lead->caps[j];
        if (!lc) {
            if (lead->ncaps < LF_LEAD_CAPS_MAX) lead->caps[lead->ncaps++] = *vc;
            continue;
        }
        for (int w = 0; w < vc->n; w++) {
            int slot = -1;
            for (int x = 0; x < lc->n; x++)
                if (lc->window[x] == vc->window[w]) slot = x;
            if (slot >= 0) {
                lc->granted[slot] += vc->granted[w];
            } else if (lc->n < LF_CAP_WINDOWS) {
                lc->window[lc->n] = vc->window[w];
                lc->granted[lc->n++] = vc->granted[w];
            }
        }
    }
    for (int i = 0; i < v->ndedup; i++)
        lf_lead_dedup_add(lead, v->dedup[i].hash, v->dedup[i].sec);
    lf_lead_dedup_prune(lead, dedup_window_s);
    /* The visitor's applied offsets come along: a replay of its events, now resolved to the
     * lead through the alias, must be recognised as already applied. */
    for (int i = 0; i < v->nsrc; i++)
        lf_lead_offset_record(lead, v->src[i].partition, v->src[i].offset);
    lf_lead_compute_fit(lead, m);
}

/*---- Replay protection -----------------------------------------------------------------*/

int lf_lead_offset_applied(const lf_lead_t *lead, int32_t partition, int64_t offset)
{
    for (int i = 0; i < lead->nsrc; i++)
        if (lead->src[i].partition == partition) return offset <= lead->src[i].offset;
    return 0;
}

void lf_lead_offset_record(lf_lead_t *lead, int32_t partition, int64_t offset)
{
    for (int i = 0; i < lead->nsrc; i++) {
        if (lead->src[i].partition == partition) {
            if (offset > lead->src[i].offset) lead->src[i].offset = offset;
            return;
        }
    }
    /* A lead fed by more partitions than remembered forgets the first one; the messageId
     * dedup still guards it. */
    if (lead->nsrc == LF_LEAD_SRC_MAX) {
        memmove(&lead->src[0], &lead->src[1], sizeof(lead->src[0]) * (LF_LEAD_SRC_MAX - 1));
        lead->nsrc--;
    }
    lead->src[lead->nsrc].partition = partition;
    lead->src[lead->nsrc].offset = offset;
    lead->nsrc++;
}
