/* The store writes of a batch, computed without the store: see include/leadflow/writes.h. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "leadflow/lead_codec.h"
#include "leadflow/score.h"
#include "leadflow/transition.h"
#include "leadflow/writes.h"

void lf_writes_transitions(lf_argv_t *trans, const lf_transitions_t *tr, const char *lead_id,
                           const char *rules_version, int json, lf_arena_t *a)
{
    char id[LF_ID_MAX + 32], payload[LF_TRANSITION_MAX_BYTES];
    for (int i = 0; i < tr->n; i++) {
        const lf_transition_t *t = &tr->t[i];
        int idl = lf_transition_id(t, lead_id, id, sizeof(id));
        int pl = lf_transition_encode(t, lead_id, rules_version, json, payload, sizeof(payload));
        if (!trans->arena) lf_argv_init_scratch(trans, a);
        lf_argv_add(trans, id, (size_t)idl);
        lf_argv_add(trans, payload, pl > 0 ? (size_t)pl : 0);
    }
}

int64_t lf_writes_visitor_expiry(int64_t now_ms, int ttl_s)
{
    int64_t bucket = ttl_s / LF_FUNNEL_BUCKETS + (ttl_s % LF_FUNNEL_BUCKETS != 0);
    if (bucket < 1) bucket = 1;
    int64_t end = now_ms / 1000 + ttl_s;
    return (end + bucket - 1) / bucket * bucket;
}

int lf_writes_funnel_field(char *buf, size_t cap, lf_stage_t stage, int64_t expires_s)
{
    if (stage == LF_STAGE_VISITOR) return snprintf(buf, cap, "visitor:%lld", (long long)expires_s);
    return snprintf(buf, cap, "%s", lf_stage_name(stage));
}

static void lf_funnel_add(lf_argv_t *out, lf_stage_t stage, int64_t expires_s, int delta)
{
    char f[48];
    int n = lf_writes_funnel_field(f, sizeof(f), stage, expires_s);
    lf_argv_add(out, f, (size_t)n);
    lf_argv_add_i64(out, delta);
}

/* lf:funnel: the lead leaves the stage (or visitor bucket) it was counted in and is counted in
 * its new one; merged visitors leave theirs. A record of the layout before was never counted. */
static void lf_writes_funnel(lf_store_write_t *x, const lf_writes_lead_t *l, lf_arena_t *a)
{
    const lf_lead_t *lead = l->lead;
    x->funnel = lf_arena_alloc(a, sizeof(*x->funnel));
    lf_argv_init_scratch(x->funnel, a);
    int was_counted = l->loaded_exists && !l->loaded_layout;
    int64_t old_exp = l->loaded_stage == LF_STAGE_VISITOR ? l->loaded_expires_s : 0;
    int64_t new_exp = lead->anonymous ? lead->expires_s : 0;
    /* Counted where it was already: no move of its own (merged visitors still leave theirs). */
    if (!(was_counted && l->loaded_stage == lead->stage && old_exp == new_exp)) {
        if (was_counted) lf_funnel_add(x->funnel, l->loaded_stage, old_exp, -1);
        lf_funnel_add(x->funnel, lead->stage, new_exp, 1);
    }
    for (size_t v = 0; v < l->nmerged; v++)
        if (l->merged_expires && l->merged_expires[v])
            lf_funnel_add(x->funnel, LF_STAGE_VISITOR, l->merged_expires[v], -1);
}

int lf_writes_stage_indexed(lf_stage_t s)
{
    return s == LF_STAGE_MQL || s == LF_STAGE_SAL || s == LF_STAGE_SQL || s == LF_STAGE_OPPORTUNITY;
}

static const char *const lf_count_names[4] = {"consumed", "applied", "duplicates", "filtered"};

typedef struct {
    int32_t part;
    long long c[4]; /* by lf_count_names */
} lf_count_acc_t;

static void lf_count_flush(const lf_count_acc_t *acc, int nacc, lf_argv_t *out)
{
    for (int j = 0; j < nacc; j++)
        for (int c = 0; c < 4; c++)
            if (acc[j].c[c]) {
                lf_argv_add_part_field(out, acc[j].part, lf_count_names[c]);
                lf_argv_add_i64(out, acc[j].c[c]);
            }
}

/* A lead's events are mostly of one partition: a few accumulators, flushed when full. */
void lf_writes_count(const lf_writes_event_t *ev, int first, const int *next, lf_argv_t *out)
{
    lf_count_acc_t acc[8];
    int nacc = 0;
    for (int i = first; i >= 0; i = next[i]) {
        int k = 0;
        while (k < nacc && acc[k].part != ev[i].partition)
            k++;
        if (k == nacc) {
            if (nacc == 8) { /* more partitions than expected for one lead */
                lf_count_flush(acc, nacc, out);
                nacc = 0;
                k = 0;
            }
            memset(&acc[k], 0, sizeof(acc[k]));
            acc[k].part = ev[i].partition;
            nacc++;
        }
        acc[k].c[0]++;
        if (ev[i].outcome == LF_OUTCOME_APPLIED)
            acc[k].c[1]++;
        else if (ev[i].outcome == LF_OUTCOME_DUPLICATE)
            acc[k].c[2]++;
        else if (ev[i].outcome == LF_OUTCOME_FILTERED)
            acc[k].c[1]++, acc[k].c[3]++;
    }
    lf_count_flush(acc, nacc, out);
}

void lf_writes_lead(lf_store_write_t *x, const lf_writes_lead_t *l, const lf_model_t *m,
                    lf_arena_t *a)
{
    lf_lead_t *lead = l->lead;
    lead->version = l->loaded_version + 1;
    if (lead->anonymous) lead->expires_s = lf_writes_visitor_expiry(l->now_ms, l->visitor_ttl_s);
    memset(x, 0, sizeof(*x));
    x->lead = lead;
    x->whole = lf_arena_alloc(a, sizeof(*x->whole));
    lf_argv_init_scratch(x->whole, a);
    lf_lead_encode(lead, m, x->whole);
    x->base_fields = l->stored.fields;
    x->base_values = l->stored.values;
    x->nbase = l->stored.n;
    x->visitor = lead->anonymous;
    x->expires_ms = lead->anonymous ? lead->expires_s * 1000 : 0;
    x->ranked = !lead->anonymous;
    x->top_key = lf_rank_key(lead->eng, lead->t_ms, m->half_life_ms);
    x->expected_version = l->loaded_version;
    x->old_stage = l->loaded_stage;
    x->old_exists = l->loaded_exists;
    x->old_layout = l->loaded_layout;
    x->partition = l->partition;
    /* Any transition touches the stage sets (a lead may leave and come back in one batch:
     * same stage, new entry time). */
    x->stage_touched = !l->loaded_exists || l->loaded_stage != lead->stage ||
                       lead->stage == LF_STAGE_MQL || l->nmerged || l->trans->n;
    x->trans = l->trans;
    x->merged_visitors = l->merged;
    x->merged_stages = l->merged_stages;
    x->merged_versions = l->merged_versions;
    x->merged_layouts = l->merged_layouts;
    x->nmerged = l->nmerged;
    x->stage_score = lead->stage == LF_STAGE_MQL ? (double)lf_lead_exit_time(lead, m)
                                                 : (double)lead->stage_at_ms;
    lf_writes_funnel(x, l, a);
    x->counters = lf_arena_alloc(a, sizeof(*x->counters));
    lf_argv_init_scratch(x->counters, a);
    if (l->ev) lf_writes_count(l->ev, l->first, l->next, x->counters);
    if (l->trans->n) {
        lf_argv_add_part_field(x->counters, l->partition, "transitions");
        lf_argv_add_i64(x->counters, (long long)(l->trans->n / 2));
    }
}

/* Two passes: group the events by partition (sizing each group's runs), then the runs. */
size_t lf_writes_progress(const lf_writes_event_t *ev, size_t n, const int64_t *part_max_ts,
                          lf_arena_t *a, lf_progress_t **out)
{
    size_t maxprog = n < LF_MAX_PARTITIONS ? n : LF_MAX_PARTITIONS;
    lf_progress_t *prog = lf_arena_alloc(a, (maxprog + 1) * sizeof(*prog));
    size_t *counted = lf_arena_alloc(a, (maxprog + 1) * sizeof(*counted));
    size_t *of = lf_arena_alloc(a, (n + 1) * sizeof(*of));
    size_t nprog = 0, k = 0;
    for (size_t i = 0; i < n; i++) {
        int32_t part = ev[i].partition;
        if (nprog == 0 || prog[k].partition != part) {
            for (k = 0; k < nprog && prog[k].partition != part; k++)
                ;
            if (k == nprog) {
                memset(&prog[k], 0, sizeof(prog[k]));
                prog[k].partition = part;
                if (part >= 0 && part < LF_MAX_PARTITIONS) prog[k].max_event_ms = part_max_ts[part];
                counted[k] = 0;
                nprog++;
            }
        }
        of[i] = k;
        if (ev[i].offset + 1 > prog[k].next_offset) prog[k].next_offset = ev[i].offset + 1;
        counted[k] += ev[i].outcome != 0;
    }
    lf_offset_run_t **runs = lf_arena_alloc(a, (nprog + 1) * sizeof(*runs));
    for (k = 0; k < nprog; k++) {
        runs[k] = lf_arena_alloc(a, (counted[k] + 1) * sizeof(**runs));
        prog[k].runs = runs[k];
    }
    for (size_t i = 0; i < n; i++) {
        lf_outcome_t o = ev[i].outcome;
        if (!o) continue;
        lf_progress_t *g = &prog[of[i]];
        lf_offset_run_t *last = g->nruns ? &runs[of[i]][g->nruns - 1] : NULL;
        if (last && last->outcome == o && last->first + last->n == ev[i].offset)
            last->n++;
        else
            runs[of[i]][g->nruns++] = (lf_offset_run_t){ev[i].offset, 1, o};
    }
    *out = prog;
    return nprog;
}

void lf_writes_loaded_lead(lf_store_write_t *x, lf_lead_t *l, uint64_t loaded_version,
                           lf_stage_t loaded_stage, const lf_stored_hash_t *stored,
                           const lf_transitions_t *tr, int json, const lf_model_t *m, lf_arena_t *a)
{
    lf_argv_t *trans = lf_arena_alloc(a, sizeof(*trans));
    memset(trans, 0, sizeof(*trans));
    lf_writes_transitions(trans, tr ? tr : &(lf_transitions_t){0}, l->id, m->version, json, a);
    lf_writes_lead_t w = {
        .lead = l,
        .loaded_version = loaded_version,
        .loaded_exists = 1,
        .loaded_stage = loaded_stage,
        .loaded_layout = l->layout,
        .stored = *stored,
        .partition = l->nsrc ? l->src[0].partition : 0,
        .trans = trans,
    };
    lf_writes_lead(x, &w, m, a);
}
