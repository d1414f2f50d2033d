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

/* Append a lead's transitions to `trans` as (transition_id, payload, history entry) triples,
 * payloads encoded as published (lf_transition_encode). An empty `trans` (all zero) is set up
 * in arena `a` first. */
void lf_writes_transitions(lf_argv_t *trans, const lf_transitions_t *tr, const char *lead_id,
                           const char *rules_version, int json, lf_arena_t *a);

/* The stage history of a lead's hash after a write: appends to `out` the stored history fields
 * (bf/bv, bn pairs of the stored hash; other fields are skipped) that no transition of `trans`
 * replaces, then one field per transition of `trans` ("h<seq % LF_HISTORY_KEEP>" = its history
 * entry; of two transitions for one field, the later). The values are copied. */
void lf_writes_history(const lf_str_t *bf, const lf_str_t *bv, size_t bn, const lf_argv_t *trans,
                       lf_argv_t *out);

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
    lf_stored_hash_t stored; /* its hash as loaded (n = 0: none) */
    int32_t partition;       /* whose outbox and counters */
    lf_argv_t *trans;        /* its transitions (lf_writes_transitions), maybe none; not NULL */
    const char **merged;     /* visitors merged into it, their stages and versions */
    const lf_stage_t *merged_stages;
    const uint64_t *merged_versions;
    size_t nmerged;
    /* The events its write counts: ev[first], ev[next[first]], ... (ev NULL: none). */
    const lf_writes_event_t *ev;
    int first;
    const int *next;
} lf_writes_lead_t;

/* Fill x, the store write of lead l: its whole hash (lf_lead_encode, then lf_writes_history
 * against the stored hash, which x keeps as the base of the HSET fallback's difference), the
 * version check, its stage-set entry, its transitions and its counters (lf_writes_count, then
 * "<partition>.transitions"). Allocates in `a`. */
void lf_writes_lead(lf_store_write_t *x, const lf_writes_lead_t *l, const lf_model_t *m,
                    lf_arena_t *a);

/* A batch's progress per partition, in order of first appearance: the next offset (past the
 * highest offset seen), the partition's event clock (part_max_ts[partition], for partitions
 * below LF_MAX_PARTITIONS) and the runs of consecutive offsets with one outcome, of the events
 * with an outcome, in the order given. Returns the number of partitions; *out and the runs
 * live in `a`. */
size_t lf_writes_progress(const lf_writes_event_t *ev, size_t n, const int64_t *part_max_ts,
                          lf_arena_t *a, lf_progress_t **out);

#endif
