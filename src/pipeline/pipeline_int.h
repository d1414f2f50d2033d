/* Internal to src/pipeline/: the state of one running pipeline (lf_pipe_t) and the functions
 * its subsystems call across files. One file per step of the data path:
 *
 *   pipeline.c    lf_pipeline_run: start-up, the loop, shutdown
 *   consume.c     consume -> the batch (prefetch while a write is in flight, decode)
 *   batch.c       one batch through: fence, dead letters, attempts, publish, finish; backoff
 *   attempt.c     one attempt: load the leads, apply the events, write the leads
 *   identity.c    which lead each event belongs to (aliases, identify/alias merges)
 *   deadletter.c  bad input to the dead-letter topic
 *   publish.c     transitions to Kafka, delivery reports, outboxes
 *   progress.c    progress to Redis, offsets to Kafka
 *   sweep.c       the decay sweep (MQLs that cooled down with no event)
 *   assign.c      rebalances: start positions from Redis, assign, revoke, pause
 *   fence.c       a Redis that lost data: notice it, replay or stop
 *   heartbeat.c   the instance's state and its heartbeat in Redis; Kafka's health
 *   clock.c       the clocks and the stop deadline
 *   reload.c      hot reload of the rules file (SIGHUP, `leadflow reload`)
 *   replay.c      what a replay and a challenger need: publishing by lead, the end to run to
 *
 * Threads: everything here runs on the one thread that called lf_pipeline_run. librdkafka's
 * own threads do the network I/O and never call into leadflow: its callbacks (rebalance,
 * error, delivery report) are served on this thread, inside the poll calls named at each
 * callback (@locality notes). */
#ifndef LEADFLOW_PIPELINE_INT_H
#define LEADFLOW_PIPELINE_INT_H

#include <stdint.h>

#include "leadflow/alloc.h"
#include "leadflow/event.h"
#include "leadflow/kafka.h"
#include "leadflow/leadcache.h"
#include "leadflow/metrics.h"
#include "leadflow/pipeline.h"
#include "leadflow/store.h"
#include "leadflow/writes.h"

#define LF_MAX_ATTEMPTS 8
/* After SIGTERM the batch in flight may finish for this long; then every wait gives up. */
#define LF_STOP_GRACE_MS 10000
/* Leaving the group and flushing the producer at shutdown, at most. */
#define LF_STOP_CLOSE_MS 4000

/* A produced message's delivery: librdkafka's delivery report writes it (lf_delivery_cb).
 * `done` first: the waits walk arrays of it with a stride. */
typedef struct {
    int done; /* 0 in flight, 1 delivered, -1 failed */
    rd_kafka_resp_err_t err;
} lf_delivery_t;

typedef enum {
    LF_ITEM_PENDING = 0,
    LF_ITEM_APPLIED,
    LF_ITEM_FILTERED,  /* bot: applied as "no effect" */
    LF_ITEM_DUPLICATE, /* same messageId already applied to the lead */
    LF_ITEM_REPLAYED,  /* this offset was already applied (a redelivery) */
    LF_ITEM_DEAD,
} lf_item_state_t;

typedef struct {
    rd_kafka_message_t *msg;
    lf_event_t ev;
    lf_item_state_t state;
    lf_item_state_t tentative; /* outcome in the current attempt, final once its lead is */
    int slot;                  /* lead slot in the current attempt */
    int dlq_sent;
    lf_delivery_t dlq;
    int dlq_truncated; /* forwarded as a truncated copy (the original was refused) */
    int counted;       /* its counters went with its lead's atomic write */
    int decoded;       /* ev (or bad) is set: it was decoded while it was prefetched */
    lf_err_t bad;
} lf_item_t;

/* A transition written to the store, to publish. */
typedef struct {
    int32_t partition;
    char *lead_id;
    char *id;
    char *payload;
    size_t len;
    lf_delivery_t dr; /* librdkafka's delivery report writes it here */
} lf_pub_t;

/* Transitions to publish, their strings in their own arena. Lists swap, never copy: a
 * produced pub's `done` is written through a pointer librdkafka holds. */
typedef struct {
    lf_pub_t *v;
    size_t n, cap;
    lf_arena_t arena;
    int produced; /* handed to librdkafka already (a batch retried after a failed finish) */
} lf_publist_t;

/* The instance's state, as the heartbeat shows it (lf_state_name: "ok", ...). */
typedef enum {
    LF_STATE_OK = 0,
    LF_STATE_DEGRADED, /* Redis or Kafka away, or a write keeps failing: `reason` says */
    LF_STATE_STOPPED,  /* the last heartbeat of an instance that stopped */
    LF_STATE_PAUSED,   /* `leadflow replay --switch` asked it to stop writing (<p>ctl:pause) */
} lf_state_t;

/* lf_pipe_loop's status when the live state was switched to another prefix. */
#define LF_PIPE_RESTART (-100)

typedef struct {
    const lf_config_t *cfg;
    lf_config_t *cfg_live; /* the same: a reload (reload.c) replaces its model */
    const lf_run_opts_t *opts;
    lf_store_t *store;
    rd_kafka_t *consumer, *producer;
    rd_kafka_topic_partition_list_t *assignment;
    int outbox_flush_pending;
    int revoked; /* a revoke happened: drop items of partitions no longer owned */
    int ever_assigned;
    int positions_pending; /* assigned, but the start offsets are not known yet */
    int paused;            /* lf_pause_all(1), or a parked assignment, is in force */
    /* Next offset per partition as this instance knows it (set on assignment and with each
     * progress write): anything below it was already processed, whatever librdkafka
     * redelivers. -1 = unknown. */
    int64_t part_next[LF_MAX_PARTITIONS];
    /* the batch */
    lf_item_t *items;
    size_t nitems, capitems;
    lf_arena_t batch_arena, attempt_arena;
    /* The start of the next batch, polled and decoded (into pre_arena) while this batch's
     * writes are in flight, so leadflow works while Redis does (lf_prefetch). */
    lf_item_t *pre;
    size_t npre, cappre, pre_max;
    lf_arena_t pre_arena;
    size_t batch_cap; /* events per batch, at most */
    /* A rebalance that arrives while a write is in flight waits for its end: handling it
     * reads Redis and empties the lead cache, which the write is using. */
    int in_write;
    rd_kafka_resp_err_t deferred_err;
    rd_kafka_topic_partition_list_t *deferred_parts;
    /* This batch's transitions; and the previous batch's, produced but not yet known to be
     * delivered or not yet forgotten in their outbox (with the next batch's progress, or
     * when idle): a batch does not wait for its own deliveries. */
    lf_publist_t pubs, sent;
    lf_lead_t *leads; /* the loaded leads of an attempt: large structs, so kept and reused */
    size_t capleads;
    lf_leadcache_t *cache;
    /* Latest event time seen per partition: the stream's clock for the decay sweep. */
    int64_t part_max_ts[LF_MAX_PARTITIONS];
    int64_t last_sweep_ms;
    /* counters for the heartbeat */
    uint64_t events_in, applied, duplicates, dead, filtered, transitions_out;
    int64_t started_ms, last_commit_ms;                     /* wall clock: stored */
    int64_t started_mono, last_heartbeat_ms, last_event_ms; /* monotonic */
    int64_t stop_deadline; /* monotonic: set at the first stop signal */
    size_t dlq_max;        /* the producer's message.max.bytes */
    /* The last loss of data in Redis this instance noticed, for the heartbeat (docs/design.md,
     * "A Redis that lost data"; the store handle keeps the epoch it writes under). */
    char store_loss[1024];
    int64_t store_loss_ms;
    int64_t sweep_clock; /* the decay sweep's clock: event time, never moving back */
    /* Kafka's reachability, from librdkafka's error callback and what arrives since. */
    char kafka_err[256];
    int64_t kafka_err_ms, kafka_ok_ms, kafka_probe_ms; /* monotonic */
    uint64_t rate_base_events;
    int64_t rate_base_ms;
    double events_per_s;
    lf_state_t state;
    char reason[256];
    char instance[128];
    /* Reload (reload.c): the control keys as the last heartbeat read them, the reload
     * generation seen (-1 before the first read), the last reload's outcome and wall time;
     * the index rewrite that follows one (sweep.c: 1 lf:stage:mql, 2 lf:top, 0 done). */
    lf_control_t ctl;
    int ctl_read; /* ctl holds what a heartbeat read (not the zeros of a start) */
    int64_t reload_seen, reload_ms;
    char reload_result[320];
    int reindex_pending, reindex_top;
    uint64_t reindex_cursor;
    /* A replay (replay.c): each partition's start and end, the last progress report. */
    int64_t until_start[LF_MAX_PARTITIONS], until_end[LF_MAX_PARTITIONS];
    int until_known;
    int64_t progress_ms;
    size_t swept_due; /* MQLs the last sweep found due */
    /* Metrics (metrics_feed.c, metrics_http.c): the numbers, the endpoint (NULL: off), when
     * they were last handed over, and the loop's last turn (monotonic). */
    lf_metrics_t metrics;
    struct lf_metrics_server *msrv;
    struct lf_id_hasher *id_hasher; /* ids.hmac_key's, made once: consume.c hashes ids */
    int64_t metrics_pub_ms, last_loop_mono, batch_start_mono;
    int64_t progress_line_ms; /* monotonic: the last progress line (log.progress_every) */
    int trace;                /* LF_TRACE_BATCH was set at start: time each batch's steps */
    int fatal_rc;             /* non-zero: stop with this status (fatal_msg says why) */
    char fatal_msg[1536];
} lf_pipe_t;

/*---- One attempt at a batch's leads (attempt.c, identity.c) ----*/

/* A tiny open-addressing map from id to slot index, in the attempt arena. */
typedef struct {
    const char **keys;
    int *vals;
    size_t cap;
} lf_idmap_t;

/* A lead touched by the batch, in one attempt. */
typedef struct {
    const char *id;
    lf_lead_t *lead_ptr; /* in lf_pipe_t.leads, reused from batch to batch */
    uint64_t loaded_version;
    int loaded_exists;
    lf_stage_t loaded_stage;
    int loaded_layout;
    int64_t loaded_expires_s;
    int dirty;
    int merged_into; /* >= 0: a visitor merged into that slot */
    int by_user;     /* named by a userId or an alias: a known lead's slot (else a visitor's) */
    int probe; /* >= 0: the slot reading lead <id> for a visitor an identify/alias would link */
    int32_t partition;
    lf_argv_t trans; /* (transition_id, payload) pairs */
    /* Their stage pairs (from, to), counted in the metrics once the write is in. */
    uint8_t (*moves)[2];
    size_t nmoves, capmoves;
    /* The lead's record as stored before this batch (all its pairs): the base of the HSET
     * fallback's difference. */
    lf_stored_hash_t stored;
    const char **merged;
    lf_stage_t *merged_stages;
    uint64_t *merged_versions;
    int *merged_layouts;
    int64_t *merged_expires;
    size_t nmerged;
} lf_slot_t;

typedef struct {
    lf_pipe_t *p;
    lf_arena_t *a; /* the attempt arena: everything below lives there but slots */
    lf_idmap_t leads_map, anon_map;
    /* Slots grow as ids are found (lf_free'd at the end); the maps store indices. */
    lf_slot_t *slots;
    size_t nslots, capslots;
    const char **anons; /* the anonymous ids the events link, and the leads they alias */
    char **alias;       /* alias[i]: the lead anons[i] is an alias of, or NULL */
    size_t nanons;
    /* Each item is counted by the write of the lead it finally belongs to: the chain of a
     * slot's items is head[slot], next[head[slot]], ...; ev[i] is how item i counts. */
    int *head, *next;
    lf_writes_event_t *ev;
    /* The writes: w[k] is the write of slots[wslot[k]]; results[k] its lf_write_result_t. */
    lf_store_write_t *w;
    int *wslot, *results;
    size_t nw;
    lf_argv_t empty;                                 /* the transitions of a lead with none */
    int64_t t_start, t_aliases, t_loaded, t_applied; /* LF_TRACE_BATCH */
} lf_attempt_t;

/*---- clock.c ----*/
int lf_must_quit(lf_pipe_t *p);

/*---- heartbeat.c ----*/
const char *lf_state_name(lf_state_t s);
void lf_set_state(lf_pipe_t *p, lf_state_t state, const char *reason);
void lf_kafka_error_cb(rd_kafka_t *rk, int code, const char *reason, void *opaque);
void lf_heartbeat(lf_pipe_t *p, int force);
/* Messages behind the high watermark per assigned partition (at most max): how many. */
int lf_partition_lags(lf_pipe_t *p, int32_t *part, int64_t *lag, int max);

/*---- assign.c ----*/
void lf_rebalance_cb(rd_kafka_t *rk, rd_kafka_resp_err_t err,
                     rd_kafka_topic_partition_list_t *parts, void *opaque);
void lf_rebalance_apply(lf_pipe_t *p, rd_kafka_resp_err_t err,
                        rd_kafka_topic_partition_list_t *parts);
void lf_rebalance_deferred(lf_pipe_t *p);
int lf_assign_pending(lf_pipe_t *p, int *delay, lf_err_t *err);
void lf_assign_consumer(lf_pipe_t *p, rd_kafka_topic_partition_list_t *assign,
                        rd_kafka_topic_partition_list_t *held);
int lf_owned(const lf_pipe_t *p, int32_t partition);
void lf_pause_all(lf_pipe_t *p, int pause);

/*---- reload.c, sweep.c ----*/
void lf_reload_check(lf_pipe_t *p);
/* Read the model from the rules file again into cfg (a restart after a switch); a file that
 * does not load keeps the model in force (logged). */
void lf_reload_model(lf_config_t *cfg, const lf_run_opts_t *opts);
int lf_sweep_ids(lf_pipe_t *p, char **ids, size_t n, int64_t wm, int rewrite, lf_err_t *err);
int lf_reindex_step(lf_pipe_t *p, lf_err_t *err);

/*---- replay.c ----*/
/* A lead's new transitions: each gets its `model` ("champion" / "challenger" with a split,
 * else none); returns whether there are any and this run publishes them. */
int lf_pipeline_to_publish(const lf_run_opts_t *opts, const char *lead_id, lf_transitions_t *tr);
int lf_replay_targets(lf_pipe_t *p, const int32_t *ids, const int64_t *next, int n);
int lf_replay_done(lf_pipe_t *p);

/*---- metrics_http.c, metrics_feed.c ----*/
typedef struct lf_metrics_server lf_metrics_server_t;
/* Serve /metrics, /healthz and /readyz on listen (IPv4-ADDRESS:PORT) with PORT+port_offset,
 * from libmicrohttpd's own thread. */
lf_metrics_server_t *lf_metrics_start(const char *listen, int port_offset, int stuck_ms,
                                      lf_err_t *err);
void lf_metrics_publish(lf_metrics_server_t *s, const lf_metrics_t *m, int64_t last_loop_mono,
                        int ready, const char *not_ready);
void lf_metrics_stop(lf_metrics_server_t *s);
/* A turn of the loop ended: the numbers to the endpoint, at most 4 times a second. */
void lf_metrics_step(lf_pipe_t *p);

/*---- fence.c ----*/
void lf_store_loss_note(lf_pipe_t *p, const char *what);
void lf_check_committed(lf_pipe_t *p, const rd_kafka_topic_partition_list_t *parts,
                        const int64_t *next);
int lf_fence(lf_pipe_t *p, lf_err_t *err);

/*---- consume.c ----*/
int lf_batch_collect(lf_pipe_t *p);
void lf_prefetch(lf_pipe_t *p);
void lf_prefetch_drop(lf_pipe_t *p);
void lf_batch_decode(lf_pipe_t *p);
void lf_batch_drop_revoked(lf_pipe_t *p);
void lf_batch_clear(lf_pipe_t *p);

/*---- batch.c ----*/
int lf_batch_process(lf_pipe_t *p);
void lf_backoff(lf_pipe_t *p, int *delay_ms);

/*---- identity.c ----*/
int lf_identity_collect(lf_attempt_t *at, lf_err_t *err);
int lf_identity_slot(lf_attempt_t *at, const lf_event_t *ev);
void lf_identity_link(lf_attempt_t *at, int li, const lf_event_t *ev);
int lf_identity_finish_absorbed(lf_attempt_t *at, int li, const lf_event_t *ev);

/*---- attempt.c ----*/
int lf_attempt(lf_pipe_t *p, int *pending_out, lf_err_t *err);
lf_lead_t *lf_pipe_leads(lf_pipe_t *p, size_t n);
int lf_write_settle(lf_pipe_t *p, const lf_store_write_t *x, int result);

/*---- deadletter.c ----*/
int lf_produce_dead_letters(lf_pipe_t *p);
int lf_await_dead_letters(lf_pipe_t *p);

/*---- publish.c ----*/
void lf_delivery_cb(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque);
int lf_wait_deliveries(lf_pipe_t *p, int *flags, size_t n, size_t stride,
                       int (*retry)(lf_pipe_t *p, size_t i));
void lf_pub_add(lf_pipe_t *p, int32_t partition, const char *lead_id, const char *id,
                const char *payload, size_t len);
int lf_produce_pubs(lf_pipe_t *p);
size_t lf_pubs_by_partition(lf_publist_t *l, lf_outbox_ids_t **out);
void lf_publist_clear(lf_publist_t *l);
int lf_forget_sent(lf_pipe_t *p, lf_err_t *err);
int lf_publish_and_forget(lf_pipe_t *p, lf_err_t *err);
int lf_flush_outboxes(lf_pipe_t *p, lf_err_t *err);

/*---- progress.c ----*/
lf_outcome_t lf_item_state_outcome(lf_item_state_t state);
int lf_finish_batch(lf_pipe_t *p, lf_err_t *err);

/*---- sweep.c ----*/
int lf_sweep(lf_pipe_t *p, lf_err_t *err);

#endif
