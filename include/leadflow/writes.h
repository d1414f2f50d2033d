/* What a batch writes to the store, computed without one (pure: no Redis, no Kafka): each
 * lead's write (its whole hash after the write, with the stage history it keeps; its stage-set
 * fields; the transitions for its outbox; the counters of the events it accounts for) and the
 * batch's progress per partition. The pipeline fills store.h's structs with these (a batch's
 * leads in src/pipeline/attempt.c, the decay sweep's in sweep.c, progress in progress.c); the
 * store back end sends them as they are. */
#ifndef LEADFLOW_WRITES_H
#define LEADFLOW_WRITES_H

#include <stddef.h>
#include <stdint.h>

#include "leadflow/alloc.h"
#include "leadflow/argv.h"
#include "leadflow/lead.h"
#include "leadflow/model.h"
#include "leadflow/store.h"

/* Partitions 0 .. LF_MAX_PARTITIONS - 1 have per-partition state (next offset, event clock);
 * a batch's progress has at most this many partitions. */
#define LF_MAX_PARTITIONS 4096

/* One consumed event as the counters and the progress see it. */
typedef struct {
    int32_t partition;
    int64_t offset;
    /* The counters it adds to besides "consumed" (0: none). In a lead's write: its outcome in
     * this attempt; in the progress: 0 when a lead's write counted it already. */
    lf_outcome_t outcome;
} lf_writes_event_t;

/* Append a lead's transitions to `trans` as (transition_id, payload) pairs, payloads encoded
 * as published (lf_transition_encode). An empty `trans` (all zero) is set up in arena `a`
 * first. */
void lf_writes_transitions(lf_argv_t *trans, const lf_transitions_t *tr, const char *lead_id,
                           const char *rules_version, int json, lf_arena_t *a);

/* lf:funnel counts visitors by the time their record expires, in LF_FUNNEL_BUCKETS buckets per
 * visitor TTL: a visitor written at now_ms expires at the end of the bucket that holds
 * now + ttl (unix seconds, a multiple of the bucket width ceil(ttl / LF_FUNNEL_BUCKETS)), and
 * is counted in field "visitor:<that time>" until then. So the live visitors are the sum of
 * the fields whose time is still ahead, whatever expired meanwhile, with no write at expiry. */
#define LF_FUNNEL_BUCKETS 64
int64_t lf_writes_visitor_expiry(int64_t now_ms, int ttl_s);
/* The lf:funnel field of a stage ("mql"), or of a visitor expiring at expires_s
 * ("visitor:1767225600"); returns its length. */
int lf_writes_funnel_field(char *buf, size_t cap, lf_stage_t stage, int64_t expires_s);
/* Whether lf:stage:<s> exists: the sales-active stages mql, sal, sql, opportunity. */
int lf_writes_stage_indexed(lf_stage_t s);

/* Counter increments ("<partition>.<name>", n) for the events chained from `first` through
 * `next` (-1 ends the chain): "consumed" for each, "applied", "duplicates" and "filtered" by
 * outcome (a filtered event is applied too). Zero counts are left out. */
void lf_writes_count(const lf_writes_event_t *ev, int first, const int *next, lf_argv_t *out);

/* A lead as a batch (or the decay sweep) changed it, and what it was loaded from. */
typedef struct {
    lf_lead_t *lead; /* its version becomes loaded_version + 1 */
    uint64_t loaded_version;
    int loaded_exists;
    lf_stage_t loaded_stage;
    int loaded_layout;        /* lead_codec.h: LF_LAYOUT_V1 or 0 */
    int64_t loaded_expires_s; /* a visitor's, as loaded (its funnel bucket) */
    lf_stored_hash_t stored;  /* its hash as loaded (n = 0: none) */
    int32_t partition;        /* whose outbox and counters */
    lf_argv_t *trans;         /* its transitions (lf_writes_transitions), maybe none; not NULL */
    const char **merged;      /* visitors merged into it, their stages and versions */
    const lf_stage_t *merged_stages;
    const uint64_t *merged_versions;
    const int *merged_layouts;     /* LF_LAYOUT_V1: stored in the layout before */
    const int64_t *merged_expires; /* their funnel buckets (0: not counted) */
    size_t nmerged;
    int64_t now_ms; /* wall clock: a visitor's record expires visitor_ttl_s after it */
    int visitor_ttl_s;
    /* The events its write counts: ev[first], ev[next[first]], ... (ev NULL: none). */
    const lf_writes_event_t *ev;
    int first;
    const int *next;
} lf_writes_lead_t;

/* Fill x, the store write of lead l: its whole record (lf_lead_encode; the stored hash is kept
 * as the base of the HSET fallback's difference), a visitor's expiry, the version check, its
 * lf:top key, its stage-set entry, its lf:funnel changes, its transitions and its counters
 * (lf_writes_count, then "<partition>.transitions"). Allocates in `a`. */
void lf_writes_lead(lf_store_write_t *x, const lf_writes_lead_t *l, const lf_model_t *m,
                    lf_arena_t *a);

/* The write of a known lead loaded and changed with no event (the decay sweep, the index
 * rewrite after a reload, a switch): its whole record and indexes, and the transitions tr
 * (NULL: none published) into the outbox of the partition that first wrote it. */
void lf_writes_loaded_lead(lf_store_write_t *x, lf_lead_t *l, uint64_t loaded_version,
                           lf_stage_t loaded_stage, const lf_stored_hash_t *stored,
                           const lf_transitions_t *tr, int json, const lf_model_t *m,
                           lf_arena_t *a);

/* A batch's progress per partition, in order of first appearance: the next offset (past the
 * highest offset seen), the partition's event clock (part_max_ts[partition], for partitions
 * below LF_MAX_PARTITIONS) and the runs of consecutive offsets with one outcome, of the events
 * with an outcome, in the order given. Returns the number of partitions; *out and the runs
 * live in `a`. */
size_t lf_writes_progress(const lf_writes_event_t *ev, size_t n, const int64_t *part_max_ts,
                          lf_arena_t *a, lf_progress_t **out);

#endif
