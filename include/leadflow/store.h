/* Where lead state lives: the operations the pipeline needs from Redis, behind a small
 * table of functions so a Redis Cluster back end can take the standalone one's place.
 *
 * Guarantees the pipeline builds on (docs/contract.md "Guarantees"):
 *  - a lead's write is atomic (one transaction) and checks the version it was computed from,
 *    writes the hash, its index entries, its stage history and its transitions into the
 *    partition's outbox, and (identify) removes a merged visitor and sets its alias;
 *  - progress (the next offset of each partition and its counters) is written after the
 *    leads of a batch and after its transitions were delivered. */
#ifndef LEADFLOW_STORE_H
#define LEADFLOW_STORE_H

#include <stdint.h>

#include "leadflow/argv.h"
#include "leadflow/config.h"
#include "leadflow/metrics.h"
#include "leadflow/lead.h"

typedef struct lf_store lf_store_t;

/* The store epoch: a random id stored once in Redis (`<prefix>epoch`, copied into each
 * progress hash). Every write is fenced on it, so a Redis that was flushed, restarted empty or
 * replaced is noticed before leadflow writes to it (docs/design.md, "A Redis that lost
 * data"). */
#define LF_EPOCH_MAX 40
/* err->code of a store call that found the epoch changed: Redis lost data under us. */
#define LF_STORE_LOST 2
/* err->code of a connection refused because the server could lose leadflow's keys by
 * itself (an eviction policy other than noeviction). */
#define LF_STORE_REFUSED 3

/* One lead to write. `whole` holds its whole record after the write (field/value pairs; a
 * visitor's is the one pair ("p", record)), the base the stored hash it was computed from
 * (nbase = 0: none): the store writes a lead's hash whole, or the difference. `trans` the
 * encoded transitions (transition_id, payload pairs). */
typedef struct {
    const lf_lead_t *lead;
    uint64_t expected_version; /* what it was loaded with (0 = did not exist) */
    lf_stage_t old_stage;
    int old_exists;
    int old_layout;    /* LF_LAYOUT_V1: it was read from the layout before */
    int32_t partition; /* whose outbox takes its transitions */
    lf_argv_t *whole;
    const lf_str_t *base_fields, *base_values;
    size_t nbase;
    int visitor; /* a visitor: a string key, expiring at expires_ms (unix ms) */
    int64_t expires_ms;
    lf_argv_t *trans;
    int stage_touched;            /* 0: the stage sets need no update (same stage, not mql) */
    const char **merged_visitors; /* anonymousIds whose visitor state was merged in */
    size_t nmerged;
    const lf_stage_t *merged_stages;
    const uint64_t *merged_versions; /* the visitor versions that were merged (0 = none) */
    const int *merged_layouts;       /* LF_LAYOUT_V1: stored in the layout before */
    double stage_score;              /* lf:stage:<stage> score */
    int ranked;                      /* a known lead: in lf:top */
    double top_key;                  /* lf:top's score: lf_rank_key of the lead's eng at t */
    /* lf:funnel increments (field, delta pairs), in the same transaction as the write. */
    lf_argv_t *funnel;
    /* Progress counters this write accounts for, as field/increment pairs of the watermark
     * hash ("3.applied", 2): counted in the same atomic call as the effect, so a replayed
     * event is never counted twice and a crash never loses a count. */
    lf_argv_t *counters;
} lf_store_write_t;

typedef void (*lf_store_prepare_fn)(void *ctx, lf_store_write_t *w, size_t from, size_t to);

typedef enum {
    LF_WRITE_OK = 1,
    LF_WRITE_CONFLICT = -1, /* somebody else wrote the lead since it was loaded */
} lf_write_result_t;

/* How an event that no lead write accounted for counts (dead letters; bots, duplicates and
 * events of no lead): the progress counters it adds to, besides "consumed". */
typedef enum {
    LF_OUTCOME_APPLIED = 1, /* "applied" */
    LF_OUTCOME_FILTERED,    /* "applied" and "filtered" */
    LF_OUTCOME_DUPLICATE,   /* "duplicates" */
    LF_OUTCOME_DEAD,        /* "dead" */
} lf_outcome_t;

/* Offsets first .. first + n - 1 of a partition, all with one outcome. */
typedef struct {
    int64_t first, n;
    lf_outcome_t outcome;
} lf_offset_run_t;

/* Per-partition progress written after a batch: the next offset, the latest event time
 * applied (the partition's clock for the decay sweep; 0 = none), and the offsets of the
 * events no lead write accounted for. The store counts those at or past the partition's
 * stored next offset only, so an offset is counted once even when two instances processed
 * it: one that lost the partition and saves late, and the new owner that read the next
 * offset before that save. */
typedef struct {
    int32_t partition;
    int64_t next_offset;
    int64_t max_event_ms;
    const lf_offset_run_t *runs;
    size_t nruns;
} lf_progress_t;

/* Delivered transitions of one partition's outbox, to forget. */
typedef struct {
    int32_t partition;
    const char *const *ids;
    size_t n;
} lf_outbox_ids_t;

/* A transition waiting in an outbox. */
typedef struct {
    char *id;
    char *payload;
    size_t len;
    int32_t partition; /* the events partition whose outbox holds it */
} lf_outbox_entry_t;

/* A lead's hash as read: its field/value pairs, all of them (n = 0: no hash). */
typedef struct {
    const lf_str_t *fields, *values;
    size_t n;
    /* On a Redis Cluster: visitors this lead absorbed whose own keys (another hash slot) were
     * not cleared yet (<p>absorbed:{<id>}), anonymousId and visitor version; a merge of one of
     * them again would count it twice. None on a standalone Redis. */
    const lf_str_t *absorbed;
    const uint64_t *absorbed_versions;
    size_t nabsorbed;
} lf_stored_hash_t;

/* The indexes a reload rewrites (their scores depend on the rules). */
typedef enum { LF_INDEX_MQL = 0, LF_INDEX_TOP } lf_store_index_t;

/* What operators ask of running instances through Redis (keys.h: <p>ctl:...), read with
 * each heartbeat. */
typedef struct {
    /* <p>ctl:reload: how many times `leadflow reload` was asked (0: never). An instance
     * reloads its rules file when this grows past what it saw first. */
    int64_t reload;
    /* <p>ctl:pause: non-empty while `leadflow replay --switch` asks the instances to stop
     * writing (its value says who asks). */
    char pause[128];
    /* <base>active: the prefix the live state is under ("" = the configured one). An
     * instance whose store resolved another restarts on it. */
    char active[256];
} lf_control_t;

typedef struct {
    /* Many leads in one round trip; out[i] decoded (new when absent). visitor[i] (visitor NULL:
     * none): ids[i] is an anonymousId no alias resolved, read as a visitor. With `stored` set,
     * stored[i] receives the record's pairs as read (a visitor's: ("p", record)), copied into
     * `arena`. */
    int (*load_leads)(lf_store_t *s, const char *const *ids, const uint8_t *visitor, size_t n,
                      lf_lead_t *const *out, const lf_model_t *m, lf_stored_hash_t *stored,
                      lf_arena_t *arena, lf_err_t *err);
    /* GET of many aliases, refreshing their TTL; out[i] = lead id or NULL (strings in arena). */
    int (*load_aliases)(lf_store_t *s, const char *const *anons, size_t n, char **out,
                        lf_arena_t *arena, lf_err_t *err);
    /* Write leads, pipelined; results[i] = lf_write_result_t. Fails with err->code
     * LF_STORE_LOST if the store epoch changed (nothing of that chunk is written). If `prepare` is
     * set, w[from..to) is filled in by prepare(ctx, w, from, to) just before those leads are sent,
     * so the caller's encoding of later leads overlaps Redis's work on earlier ones. */
    int (*write_leads)(lf_store_t *s, lf_store_write_t *w, size_t n, int *results,
                       lf_store_prepare_fn prepare, void *ctx, lf_err_t *err);
    /* The fence, and start positions. Per partition: the next offset (-1 = never processed)
     * and the latest event time applied (0 = not known), as the last owner recorded them.
     * Creates the store epoch if Redis has none. Returns LF_OK; or LF_STORE_LOST (the
     * outputs are filled) when the epoch is not the one this store handle wrote under
     * before, or the progress hash belongs to another epoch: Redis lost data (the handle
     * adopts the epoch it found); or LF_ERR. */
    int (*load_watermarks)(lf_store_t *s, const char *topic, const int32_t *parts, size_t n,
                           int64_t *next_offsets, int64_t *max_event_ms, lf_err_t *err);
    /* Forget the delivered outbox entries `done` (of `outbox_topic`), then record progress of
     * `topic`: one pipelined round trip (the deletes first: a crash in between republishes,
     * it never loses). Fails with err->code LF_STORE_LOST, writing no progress, when the
     * progress hash is not of this handle's epoch. */
    int (*save_progress)(lf_store_t *s, const char *topic, const lf_progress_t *p, size_t n,
                         const char *outbox_topic, const lf_outbox_ids_t *done, size_t ndone,
                         lf_err_t *err);
    /* What the outboxes of partitions parts[0..nparts) hold (of `topic`), in one pass. */
    int (*outbox_load)(lf_store_t *s, const char *topic, const int32_t *parts, size_t nparts,
                       lf_outbox_entry_t **out, size_t *n, lf_err_t *err);
    /* HDEL of delivered entries, one pipelined round trip for every group. */
    int (*outbox_delete)(lf_store_t *s, const char *topic, const lf_outbox_ids_t *groups, size_t n,
                         lf_err_t *err);
    /* MQL leads whose score decays below the exit threshold at or before `until_ms` (event
     * time), at most `max`; ids in arena. */
    int (*due_mql)(lf_store_t *s, int64_t until_ms, size_t max, char ***ids, size_t *n,
                   lf_arena_t *arena, lf_err_t *err);
    /* One step of a scan over an index's members (ZSCAN: every member present for the whole
     * scan comes at least once): *cursor 0 to start, 0 again when done. ids in arena. */
    int (*scan_index)(lf_store_t *s, lf_store_index_t index, uint64_t *cursor, size_t count,
                      char ***ids, size_t *n, lf_arena_t *arena, lf_err_t *err);
    /* Instance heartbeat: field/value pairs into <p>ops:instance:<id> with a TTL; in the same
     * round trip, the control keys operators write (lf_control_t). */
    int (*heartbeat)(lf_store_t *s, const char *instance, const lf_argv_t *fields, int ttl_s,
                     lf_control_t *ctl, lf_err_t *err);
    void (*close)(lf_store_t *s);
} lf_store_ops_t;

struct lf_store {
    const lf_store_ops_t *ops;
    const lf_config_t *cfg;
    const char *group;
    /* The prefix of every key it reads and writes: cfg->redis_prefix, unless <that>active
     * names another (after `leadflow replay --switch`), read at the first connection. */
    const char *prefix;
    /* When set (by the pipeline, for its metrics): every pipelined round trip's time, in
     * seconds, is observed into it. */
    lf_hist_t *rtt;
};

/* The standalone Redis back end (src/store/store_redis*.c). Connects (a failed connection is
 * retried by the next call: the error is in err, the handle is returned all the same). */
lf_store_t *lf_store_redis_open(const lf_config_t *cfg, lf_err_t *err);
/* The Redis Cluster back end (src/store/store_cluster*.c), for cfg->redis_cluster_nodes. */
lf_store_t *lf_store_cluster_open(const lf_config_t *cfg, lf_err_t *err);
/* The back end the rules file chooses: the cluster one when redis.cluster.nodes is set. */
lf_store_t *lf_store_open(const lf_config_t *cfg, lf_err_t *err);
/* Whether visitor `anon` at `version` is among the visitors the stored lead absorbed. */
int lf_stored_absorbed(const lf_stored_hash_t *h, const char *anon, uint64_t version);
void lf_outbox_entries_free(lf_outbox_entry_t *e, size_t n);

#endif
