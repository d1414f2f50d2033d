/* The decay sweep: an MQL whose score decays below the exit threshold with no event since is
 * moved to nurture at the crossing time, by the instance that owns the partition that first
 * wrote it, when the input is idle (at most once a second). The sweep runs on its own
 * clock (lf_sweep_clock), so the same input gives the same stages however fast it is read. */
#include <string.h>

#include "leadflow/log.h"

#include "pipeline_int.h"

/* The decay sweep's clock (docs/contract.md "Semantics"): while any owned partition has unread
 * input, the latest event time of the least advanced such partition (one that has delivered nothing
 * holds it at 0, unless a previous owner left its clock in Redis), minus the allowed
 * lateness; once every owned partition is caught up (everything below the high watermark
 * Kafka last reported is recorded in Redis), the wall clock minus the allowed lateness, so
 * an MQL that cools down while the stream is quiet is still demoted (processing.idle_clock:
 * event keeps event time instead, for backfills of old events). Never moves back. A
 * partition whose high watermark is not known yet counts as not caught up. 0 = not known. */

/* With processing.idle_clock: event, a caught-up instance's clock is the least latest event
 * time of its partitions. 0 = none known. */
static int64_t lf_sweep_event_clock(const lf_pipe_t *p)
{
    int64_t least = 0;
    for (int i = 0; i < p->assignment->cnt; i++) {
        int32_t part = p->assignment->elems[i].partition;
        if (part < 0 || part >= LF_MAX_PARTITIONS || p->part_max_ts[part] == 0) continue;
        if (least == 0 || p->part_max_ts[part] < least) least = p->part_max_ts[part];
    }
    return least;
}

static int64_t lf_sweep_clock(lf_pipe_t *p)
{
    if (!p->assignment || p->positions_pending || p->assignment->cnt == 0) return 0;
    int64_t least = INT64_MAX;
    int behind = 0;
    for (int i = 0; i < p->assignment->cnt; i++) {
        int32_t part = p->assignment->elems[i].partition;
        if (part < 0 || part >= LF_MAX_PARTITIONS) continue;
        int64_t lo = -1, hi = -1;
        int caught_up = 0;
        if (rd_kafka_get_watermark_offsets(p->consumer, p->cfg->topic_events, part, &lo, &hi) ==
                RD_KAFKA_RESP_ERR_NO_ERROR &&
            hi >= 0)
            caught_up = lo >= hi || (p->part_next[part] >= 0 && p->part_next[part] >= hi);
        if (caught_up) continue;
        behind = 1;
        if (p->part_max_ts[part] < least) least = p->part_max_ts[part];
    }
    int64_t clock = 0;
    if (!behind && p->cfg->idle_clock == LF_IDLE_CLOCK_WALL)
        clock = lf_wall_ms() - p->cfg->allowed_lateness_ms; /* compared with event times */
    else if (!behind)
        clock = lf_sweep_event_clock(p) - p->cfg->allowed_lateness_ms;
    else if (least > 0)
        clock = least - p->cfg->allowed_lateness_ms;
    if (clock > p->sweep_clock) p->sweep_clock = clock;
    return p->sweep_clock;
}

/* The write of a loaded lead the clock `wm` demotes, if this instance sweeps it (the owner
 * of the partition that first wrote it): into *x, and 1; else 0. With `rewrite` (after a
 * reload), an owned lead of the index is written even if it stays: its index entries are
 * recomputed under the rules now in force. */
static int lf_sweep_lead(lf_pipe_t *p, lf_lead_t *l, const lf_stored_hash_t *stored, int64_t wm,
                         int rewrite, lf_store_write_t *x, int *published)
{
    const lf_model_t *m = &p->cfg->model;
    if (!l->exists || l->anonymous || l->nsrc == 0 || !lf_owned(p, l->src[0].partition)) return 0;
    if (!rewrite && l->stage != LF_STAGE_MQL) return 0;
    uint64_t loaded_version = l->version;
    lf_stage_t loaded_stage = l->stage;
    lf_transitions_t tr = {0};
    if (lf_lead_advance(l, wm, m, &tr) == 0 && !rewrite) return 0;
    *published = lf_pipeline_to_publish(p->opts, l->id, &tr);
    lf_writes_loaded_lead(x, l, loaded_version, loaded_stage, stored, *published ? &tr : NULL,
                          p->cfg->transitions_json, m, &p->attempt_arena);
    return 1;
}

int lf_sweep_ids(lf_pipe_t *p, char **ids, size_t n, int64_t wm, int rewrite, lf_err_t *err)
{
    lf_arena_t *a = &p->attempt_arena;
    if (n == 0) return LF_OK;
    lf_lead_t *leads = lf_pipe_leads(p, n);
    lf_lead_t **outs = lf_arena_alloc(a, n * sizeof(*outs));
    for (size_t i = 0; i < n; i++)
        outs[i] = &leads[i];
    lf_stored_hash_t *stored = lf_arena_alloc(a, n * sizeof(*stored));
    if (p->store->ops->load_leads(p->store, (const char *const *)ids, NULL, n, outs, &p->cfg->model,
                                  stored, a, err))
        return LF_ERR;
    lf_store_write_t *w = lf_arena_alloc(a, n * sizeof(*w));
    int *published = lf_arena_alloc(a, n * sizeof(*published));
    size_t nw = 0;
    for (size_t i = 0; i < n; i++)
        nw += (size_t)lf_sweep_lead(p, &leads[i], &stored[i], wm, rewrite, &w[nw], &published[nw]);
    if (nw == 0) return LF_OK;
    int *results = lf_arena_alloc(a, nw * sizeof(*results));
    if (p->store->ops->write_leads(p->store, w, nw, results, NULL, NULL, err)) return LF_ERR;
    static const uint8_t decay[1][2] = {{LF_STAGE_MQL, LF_STAGE_NURTURE}};
    for (size_t k = 0; k < nw; k++) /* a write that lost: the next sweep sees the lead again */
        if (lf_write_settle(p, &w[k], results[k]) && published[k])
            lf_metrics_moves(&p->metrics, decay, 1);
    return lf_publish_and_forget(p, err);
}

/* MQLs whose score decayed below the exit threshold with no event since: move them to
 * nurture at the crossing time. lf:stage:mql is ordered by that time, so the due ones are a
 * range query. A lead is swept by the owner of the partition that first wrote it (one
 * instance acts); the write is version-checked like any other. */
int lf_sweep(lf_pipe_t *p, lf_err_t *err)
{
    int64_t wm = lf_sweep_clock(p);
    if (wm <= 0) return LF_OK;
    int fenced = lf_fence(p, err); /* a sweep writes too */
    if (fenced == LF_STORE_LOST) return LF_OK;
    if (fenced != LF_OK) return LF_ERR;
    lf_arena_reset(&p->attempt_arena);
    char **ids = NULL;
    size_t n = 0;
    if (p->store->ops->due_mql(p->store, wm, 500, &ids, &n, &p->attempt_arena, err)) return LF_ERR;
    p->swept_due = n;
    return lf_sweep_ids(p, ids, n, wm, 0, err);
}

/* After a reload: one step of rewriting the indexes whose scores the rules decide (the
 * MQLs' decay-exit times; lf:top's keys when the half-life changed), a chunk per turn of
 * the loop until every member was seen. An MQL the new rules put below the exit threshold
 * is demoted on the way. */
int lf_reindex_step(lf_pipe_t *p, lf_err_t *err)
{
    if (!p->reindex_pending || !p->assignment || p->positions_pending) return LF_OK;
    int fenced = lf_fence(p, err);
    if (fenced == LF_STORE_LOST) return LF_OK;
    if (fenced != LF_OK) return LF_ERR;
    lf_arena_reset(&p->attempt_arena);
    char **ids = NULL;
    size_t n = 0;
    lf_store_index_t index = p->reindex_pending == 2 ? LF_INDEX_TOP : LF_INDEX_MQL;
    uint64_t cursor = p->reindex_cursor;
    if (p->store->ops->scan_index(p->store, index, &cursor, 200, &ids, &n, &p->attempt_arena, err))
        return LF_ERR;
    if (lf_sweep_ids(p, ids, n, lf_sweep_clock(p), 1, err) != LF_OK) return LF_ERR;
    p->reindex_cursor = cursor;
    if (cursor == 0) {
        /* lf:top after lf:stage:mql, only when its keys changed (the half-life). */
        p->reindex_pending = p->reindex_pending == 1 && p->reindex_top ? 2 : 0;
        if (!p->reindex_pending)
            lf_log("info", "indexes rewritten under rules version %s",
                   p->cfg->model.version ? p->cfg->model.version : "");
    }
    return LF_OK;
}
