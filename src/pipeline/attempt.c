/* One attempt at a batch's leads: resolve identity (identity.c), load the leads (from the
 * lead cache, else Redis), apply the events in offset order, then write every changed lead
 * atomically, version-checked, pipelined. A lead that changed under us since it was loaded
 * fails its write; its events stay pending and the next attempt reloads it. */
#include <string.h>

#include "leadflow/alloc.h"
#include "leadflow/lead_codec.h"
#include "leadflow/log.h"
#include "pipeline_int.h"

/* Remember the stage pairs of a slot's transitions (the metrics count them once its write
 * is in). */
static void lf_slot_moves(lf_attempt_t *at, lf_slot_t *s, const lf_transitions_t *tr)
{
    if (s->nmoves + (size_t)tr->n > s->capmoves) {
        size_t cap = (s->capmoves ? 2 * s->capmoves : 8) + (size_t)tr->n;
        uint8_t(*m)[2] = lf_arena_alloc(at->a, cap * sizeof(*m));
        if (s->nmoves) memcpy(m, s->moves, s->nmoves * sizeof(*m));
        s->moves = m;
        s->capmoves = cap;
    }
    for (int k = 0; k < tr->n; k++) {
        s->moves[s->nmoves][0] = (uint8_t)tr->t[k].from;
        s->moves[s->nmoves++][1] = (uint8_t)tr->t[k].to;
    }
}

/* p->leads with room for n leads: large structs, kept and reused from batch to batch. */
lf_lead_t *lf_pipe_leads(lf_pipe_t *p, size_t n)
{
    if (n > p->capleads) {
        lf_free(p->leads);
        p->capleads = n + n / 2;
        p->leads = lf_malloc(p->capleads * sizeof(*p->leads));
    }
    return p->leads;
}

/* Leads this instance wrote are in its cache; the others are read from Redis. Their hashes
 * as read are what the write is computed against: every field, the stage history and the
 * ones this version does not know included. */
static int lf_attempt_load(lf_attempt_t *at, lf_err_t *err)
{
    lf_pipe_t *p = at->p;
    const lf_model_t *m = &p->cfg->model;
    size_t n = at->nslots;
    lf_lead_t *leads = lf_pipe_leads(p, n);
    const char **ids = lf_arena_alloc(at->a, (n + 1) * sizeof(*ids));
    lf_lead_t **outs = lf_arena_alloc(at->a, (n + 1) * sizeof(*outs));
    int *missed = lf_arena_alloc(at->a, (n + 1) * sizeof(*missed));
    uint8_t *visitor = lf_arena_alloc(at->a, n + 1);
    size_t nmiss = 0;
    for (size_t i = 0; i < n; i++) {
        lf_slot_t *s = &at->slots[i];
        lf_stored_hash_t *h = &s->stored;
        lf_err_t derr;
        if (lf_leadcache_get(p->cache, s->id, &h->fields, &h->values, &h->n) &&
            lf_lead_decode(&leads[i], lf_str_from(s->id), h->fields, h->values, h->n, m, &derr) ==
                LF_OK) {
            p->metrics.cache_hits++;
            continue;
        }
        p->metrics.cache_misses++;
        h->n = 0;
        visitor[nmiss] = !s->by_user;
        ids[nmiss] = s->id;
        outs[nmiss] = &leads[i];
        missed[nmiss++] = (int)i;
    }
    lf_stored_hash_t *stored = lf_arena_alloc(at->a, (nmiss + 1) * sizeof(*stored));
    if (p->store->ops->load_leads(p->store, ids, visitor, nmiss, outs, m, stored, at->a, err))
        return LF_ERR;
    for (size_t k = 0; k < nmiss; k++)
        at->slots[missed[k]].stored = stored[k];
    at->t_loaded = lf_now_ms();
    for (size_t i = 0; i < n; i++) {
        lf_slot_t *s = &at->slots[i];
        s->lead_ptr = &leads[i];
        s->loaded_version = leads[i].version;
        s->loaded_exists = leads[i].exists;
        s->loaded_stage = leads[i].stage;
        s->loaded_layout = leads[i].layout;
        s->loaded_expires_s = leads[i].expires_s;
    }
    return LF_OK;
}

/* Apply the pending events, in offset order (a batch holds one partition's messages in
 * order): an offset already applied to its lead is a redelivery, a messageId it has seen a
 * duplicate (only the offset is recorded); the rest score and move the lead. */
static void lf_attempt_apply(lf_attempt_t *at)
{
    lf_pipe_t *p = at->p;
    const lf_config_t *cfg = p->cfg;
    for (size_t i = 0; i < p->nitems; i++) {
        lf_item_t *it = &p->items[i];
        if (it->state != LF_ITEM_PENDING) continue;
        const lf_event_t *ev = &it->ev;
        int32_t part = it->msg->partition;
        int64_t off = it->msg->offset;
        int li = lf_identity_slot(at, ev);
        lf_slot_t *s = &at->slots[li];
        it->slot = li;
        if (lf_lead_offset_applied(s->lead_ptr, part, off)) {
            it->tentative = LF_ITEM_REPLAYED;
            if (lf_identity_finish_absorbed(at, li, ev)) {
                s->dirty = 1;
                s->partition = part;
            }
            continue;
        }
        if (lf_lead_seen_message(s->lead_ptr, ev->message_id)) {
            it->tentative = LF_ITEM_DUPLICATE;
            lf_lead_offset_record(s->lead_ptr, part, off);
            s->dirty = 1;
            s->partition = part;
            continue;
        }
        lf_identity_link(at, li, ev);
        lf_transitions_t tr = {0};
        lf_apply_result_t r = lf_lead_apply(s->lead_ptr, ev, &cfg->model, cfg->dedup_window, &tr);
        it->tentative = r == LF_APPLY_BOT         ? LF_ITEM_FILTERED
                        : r == LF_APPLY_DUPLICATE ? LF_ITEM_DUPLICATE
                                                  : LF_ITEM_APPLIED;
        if (part >= 0 && part < LF_MAX_PARTITIONS && ev->ts_ms > p->part_max_ts[part])
            p->part_max_ts[part] = ev->ts_ms;
        if (s->lead_ptr->exists) {
            lf_lead_offset_record(s->lead_ptr, part, off);
            s->dirty = 1;
            s->partition = part;
        }
        if (lf_pipeline_to_publish(p->opts, s->lead_ptr->id, &tr)) {
            lf_slot_moves(at, s, &tr);
            lf_writes_transitions(&s->trans, &tr, s->lead_ptr->id, cfg->model.version,
                                  cfg->transitions_json, at->a);
        }
    }
}

/* Each item is counted by the write of the lead it finally belongs to (a visitor's items by
 * the lead that absorbed it), in the same atomic call as its effect. */
static void lf_attempt_chain(lf_attempt_t *at)
{
    lf_pipe_t *p = at->p;
    at->head = lf_arena_alloc(at->a, (at->nslots + 1) * sizeof(*at->head));
    at->next = lf_arena_alloc(at->a, (p->nitems + 1) * sizeof(*at->next));
    at->ev = lf_arena_alloc(at->a, (p->nitems + 1) * sizeof(*at->ev));
    for (size_t i = 0; i < at->nslots; i++)
        at->head[i] = -1;
    for (size_t i = 0; i < p->nitems; i++) {
        lf_item_t *it = &p->items[i];
        if (it->state != LF_ITEM_PENDING || it->tentative == LF_ITEM_REPLAYED) continue;
        int fs = it->slot;
        while (at->slots[fs].merged_into >= 0)
            fs = at->slots[fs].merged_into;
        it->slot = fs;
        at->next[i] = at->head[fs];
        at->head[fs] = (int)i;
        at->ev[i] = (lf_writes_event_t){it->msg->partition, it->msg->offset,
                                        lf_item_state_outcome(it->tentative)};
    }
}

/* Encode leads w[from..to) (lf_writes_lead) just before the store sends them; then poll
 * the next batch's first messages while Redis works on the chunks sent before these. */
static void lf_prepare_writes(void *ctx, lf_store_write_t *w, size_t from, size_t to)
{
    lf_attempt_t *at = ctx;
    int64_t now_ms = lf_wall_ms(); /* one clock reading per chunk: visitors' expiry */
    for (size_t k = from; k < to; k++) {
        int i = at->wslot[k];
        lf_slot_t *s = &at->slots[i];
        lf_writes_lead_t l = {
            .lead = s->lead_ptr,
            .loaded_version = s->loaded_version,
            .loaded_exists = s->loaded_exists,
            .loaded_stage = s->loaded_stage,
            .loaded_layout = s->loaded_layout,
            .loaded_expires_s = s->loaded_expires_s,
            .stored = s->stored,
            .partition = s->partition,
            .trans = s->trans.arena ? &s->trans : &at->empty,
            .merged = s->merged,
            .merged_stages = s->merged_stages,
            .merged_versions = s->merged_versions,
            .merged_layouts = s->merged_layouts,
            .merged_expires = s->merged_expires,
            .nmerged = s->nmerged,
            .now_ms = now_ms,
            .visitor_ttl_s = at->p->cfg->visitor_ttl_s,
            .ev = at->ev,
            .first = at->head[i],
            .next = at->next,
        };
        lf_writes_lead(&w[k], &l, &at->p->cfg->model, at->a);
    }
    lf_prefetch(at->p);
}

/* Write every changed lead, atomically each, pipelined; each chunk of leads is encoded
 * (lf_prepare_writes) just before it is sent, while Redis works on the previous one. A
 * rebalance meanwhile waits for the write's end (in_write). */
static int lf_attempt_write(lf_attempt_t *at, lf_err_t *err)
{
    lf_pipe_t *p = at->p;
    at->w = lf_arena_alloc(at->a, (at->nslots + 1) * sizeof(*at->w));
    at->wslot = lf_arena_alloc(at->a, (at->nslots + 1) * sizeof(*at->wslot));
    at->nw = 0;
    for (size_t i = 0; i < at->nslots; i++) {
        const lf_slot_t *s = &at->slots[i];
        if (!s->dirty || s->merged_into >= 0 || !s->lead_ptr->exists) continue;
        at->wslot[at->nw++] = (int)i;
    }
    lf_argv_init_scratch(&at->empty, at->a);
    at->results = lf_arena_alloc(at->a, (at->nw + 1) * sizeof(*at->results));
    at->t_applied = lf_now_ms();
    p->in_write = 1;
    int rc = p->store->ops->write_leads(p->store, at->w, at->nw, at->results, lf_prepare_writes, at,
                                        err);
    p->in_write = 0;
    return rc ? LF_ERR : LF_OK;
}

/* After a lead's write (a batch's or the decay sweep's): the cache holds the hash as written
 * and its transitions are queued to publish; a write that lost to a change elsewhere drops
 * the cached copy (the lead is read again). Returns 1 if it was written. */
int lf_write_settle(lf_pipe_t *p, const lf_store_write_t *x, int result)
{
    if (result != LF_WRITE_OK) {
        /* What it was computed from changed: the lead, or a visitor it absorbed (which may
         * also have expired); all are read again. */
        lf_leadcache_drop(p->cache, x->lead->id);
        for (size_t v = 0; v < x->nmerged; v++)
            lf_leadcache_drop(p->cache, x->merged_visitors[v]);
        return 0;
    }
    lf_leadcache_put(p->cache, x->lead->id, x->whole);
    for (size_t v = 0; v < x->nmerged; v++)
        lf_leadcache_drop(p->cache, x->merged_visitors[v]);
    const lf_argv_t *t = x->trans;
    for (size_t j = 0; j + 1 < t->n; j += 2)
        lf_pub_add(p, x->partition, x->lead->id, t->argv[j], t->argv[j + 1], t->lens[j + 1]);
    return 1;
}

/* Which items are final: those of written leads, or of leads needing no write. Returns how
 * many stay pending (their lead's write lost to a change elsewhere). */
static int lf_attempt_settle(lf_attempt_t *at)
{
    lf_pipe_t *p = at->p;
    int *final = lf_arena_alloc(at->a, (at->nslots + 1) * sizeof(*final));
    for (size_t i = 0; i < at->nslots; i++)
        final[i] = 1;
    for (size_t k = 0; k < at->nw; k++) {
        int i = at->wslot[k];
        if (!lf_write_settle(p, &at->w[k], at->results[k])) {
            final[i] = 0;
            continue;
        }
        for (int it = at->head[i]; it >= 0; it = at->next[it])
            p->items[it].counted = 1;
        lf_metrics_moves(&p->metrics, at->slots[i].moves, at->slots[i].nmoves);
    }
    int pending = 0;
    for (size_t i = 0; i < p->nitems; i++) {
        lf_item_t *it = &p->items[i];
        if (it->state != LF_ITEM_PENDING) continue;
        if (final[it->slot])
            it->state = it->tentative;
        else
            pending++;
    }
    return pending;
}

int lf_attempt(lf_pipe_t *p, int *pending_out, lf_err_t *err)
{
    lf_attempt_t at;
    memset(&at, 0, sizeof(at));
    at.p = p;
    at.a = &p->attempt_arena;
    lf_arena_reset(at.a);
    int rc = lf_identity_collect(&at, err);
    if (rc == LF_OK) rc = lf_attempt_load(&at, err);
    if (rc == LF_OK) {
        lf_attempt_apply(&at);
        lf_attempt_chain(&at);
        rc = lf_attempt_write(&at, err);
    }
    if (rc == LF_OK) {
        if (p->trace)
            lf_log("trace",
                   "  attempt: %zu leads, aliases %lld ms, load %lld ms, apply+encode %lld ms, "
                   "write %zu %lld ms",
                   at.nslots, (long long)(at.t_aliases - at.t_start),
                   (long long)(at.t_loaded - at.t_aliases), (long long)(at.t_applied - at.t_loaded),
                   at.nw, (long long)(lf_now_ms() - at.t_applied));
        *pending_out = lf_attempt_settle(&at);
    } else {
        /* A failed round trip may have applied some writes: forget what we think is stored. */
        lf_leadcache_clear(p->cache);
    }
    lf_free(at.slots);
    return rc;
}
