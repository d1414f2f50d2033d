/* `leadflow run`: the consume -> decode -> resolve -> score -> store -> publish -> commit
 * loop. See include/leadflow/pipeline.h and docs/design.md. */
#include <errno.h>
#include <stdarg.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "leadflow/alloc.h"
#include "leadflow/event.h"
#include "leadflow/kafka.h"
#include "leadflow/lead_codec.h"
#include "leadflow/log.h"
#include "leadflow/leadcache.h"
#include "leadflow/pipeline.h"
#include "leadflow/score.h"
#include "leadflow/store.h"
#include "leadflow/transition.h"

#define LF_MAX_PARTITIONS 4096
#define LF_MAX_ATTEMPTS 8
/* After SIGTERM the batch in flight may finish for this long; then every wait gives up. */
#define LF_STOP_GRACE_MS 10000
/* Leaving the group and flushing the producer at shutdown, at most. */
#define LF_STOP_CLOSE_MS 4000

/* A produced message's delivery: librdkafka's delivery report writes it (on this thread,
 * inside rd_kafka_poll). `done` first: the waits walk arrays of it with a stride. */
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

/* A lead touched by the batch, in one attempt. */
typedef struct {
    const char *id;
    lf_lead_t *lead_ptr; /* in lf_pipe_t.leads, reused from batch to batch */
    uint64_t loaded_version;
    int loaded_exists;
    lf_stage_t loaded_stage;
    int dirty;
    int merged_into; /* >= 0: a visitor merged into that slot */
    int32_t partition;
    lf_argv_t trans; /* (transition_id, payload, history entry) triples */
    /* The lead's hash as stored before this batch (all its pairs): what its write keeps of
     * the stage history, and the base of the HSET fallback's difference. */
    const lf_str_t *bf, *bv;
    size_t bn;
    const char **merged;
    lf_stage_t *merged_stages;
    uint64_t *merged_versions;
    size_t nmerged;
} lf_slot_t;

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

typedef struct {
    const lf_config_t *cfg;
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
    /* The store epoch this instance writes under (docs/design.md, "A Redis that lost
     * data"), and the last loss it noticed, for the heartbeat. */
    char epoch[LF_EPOCH_MAX];
    char store_loss[1024];
    int64_t store_loss_ms;
    int64_t sweep_clock; /* the decay sweep's clock: event time, never moving back */
    /* Kafka's reachability, from librdkafka's error callback and what arrives since. */
    char kafka_err[256];
    int64_t kafka_err_ms, kafka_ok_ms, kafka_probe_ms; /* monotonic */
    uint64_t rate_base_events;
    int64_t rate_base_ms;
    double events_per_s;
    char state[16];
    char reason[256];
    char instance[128];
    int fatal_rc; /* non-zero: stop with this status (fatal_msg says why) */
    char fatal_msg[1536];
} lf_pipe_t;

static int lf_forget_sent(lf_pipe_t *p, lf_err_t *err);
static void lf_batch_clear(lf_pipe_t *p);
static void lf_publist_clear(lf_publist_t *l);

/* Deadlines, backoffs and intervals: the monotonic clock. */
static int64_t lf_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Times that are stored or shown (heartbeat, the idle sweep clock): the wall clock. */
static int64_t lf_wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Give up waiting? After a second stop signal at once; after the first one, once the batch
 * in flight had LF_STOP_GRACE_MS to finish (Redis or Kafka may be away for good). */
static int lf_must_quit(lf_pipe_t *p)
{
    if (!*p->opts->stop) return 0;
    if (*p->opts->stop > 1) return 1;
    int64_t now = lf_now_ms();
    if (!p->stop_deadline) p->stop_deadline = now + LF_STOP_GRACE_MS;
    return now >= p->stop_deadline;
}

static void lf_heartbeat(lf_pipe_t *p, int force);

static void lf_set_state(lf_pipe_t *p, const char *state, const char *reason)
{
    if (strcmp(p->state, state) != 0 || strcmp(p->reason, reason) != 0) {
        if (strcmp(state, "ok") == 0)
            lf_log("info", "back to normal");
        else
            lf_log("warn", "%s: %s", state, reason);
    }
    snprintf(p->state, sizeof(p->state), "%s", state);
    snprintf(p->reason, sizeof(p->reason), "%s", reason);
}

/*---- Kafka callbacks (run on this thread, inside poll) --------------------------------*/

static void lf_delivery_cb(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
    (void)rk;
    lf_delivery_t *d = m->_private;
    if (d) {
        d->err = m->err;
        d->done = m->err ? -1 : 1;
    }
    if (!m->err) ((lf_pipe_t *)opaque)->kafka_ok_ms = lf_now_ms();
    /* One line per error kind and 10 s: a refused message comes back many times. */
    static rd_kafka_resp_err_t last_err;
    static int64_t last_ms, suppressed;
    if (m->err) {
        int64_t now = lf_now_ms();
        if (m->err != last_err || now - last_ms >= 10000) {
            lf_log("warn", "delivery failed: %s%s", rd_kafka_err2str(m->err),
                   suppressed ? " (and more since the last such line)" : "");
            last_err = m->err;
            last_ms = now;
            suppressed = 0;
        } else {
            suppressed++;
        }
    }
}

/* librdkafka's client-level errors (brokers down, authentication): on this thread, inside
 * rd_kafka_poll / rd_kafka_consumer_poll. Most clear by themselves; until something arrives
 * from Kafka again the instance shows as degraded (lf_kafka_health). */
static void lf_kafka_error_cb(rd_kafka_t *rk, int code, const char *reason, void *opaque)
{
    (void)rk;
    lf_pipe_t *p = opaque;
    if (code == RD_KAFKA_RESP_ERR__FATAL) {
        char buf[256];
        rd_kafka_fatal_error(rk, buf, sizeof(buf));
        lf_log("error", "fatal Kafka error: %s", buf);
    }
    snprintf(p->kafka_err, sizeof(p->kafka_err), "Kafka: %s", reason);
    p->kafka_err_ms = lf_now_ms();
}

/* Degraded while the last Kafka error is newer than the last sign of a working cluster; a
 * metadata request every 5 s tells when it is back although nothing flows. */
static void lf_kafka_health(lf_pipe_t *p)
{
    if (!p->kafka_err_ms || p->kafka_ok_ms >= p->kafka_err_ms) return;
    int64_t now = lf_now_ms();
    if (now - p->kafka_probe_ms >= 5000 && p->consumer) {
        p->kafka_probe_ms = now;
        const struct rd_kafka_metadata *md = NULL;
        if (rd_kafka_metadata(p->consumer, 0, NULL, &md, 500) == RD_KAFKA_RESP_ERR_NO_ERROR && md &&
            md->broker_cnt > 0)
            p->kafka_ok_ms = lf_now_ms();
        if (md) rd_kafka_metadata_destroy(md);
    }
    if (p->kafka_ok_ms >= p->kafka_err_ms) {
        if (strncmp(p->reason, "Kafka: ", 7) == 0) lf_set_state(p, "ok", "");
    } else if (strcmp(p->state, "ok") == 0) {
        lf_set_state(p, "degraded", p->kafka_err);
    }
}

/* Remember a loss for the heartbeat and `leadflow stats`, and say it loudly. */
static void lf_store_loss_note(lf_pipe_t *p, const char *what)
{
    snprintf(p->store_loss, sizeof(p->store_loss), "%s", what);
    p->store_loss_ms = lf_wall_ms();
    lf_log("error", "Redis lost data: %s", what);
}

/* Redis holds no progress for some partitions of this assignment. Kafka's committed offsets
 * follow Redis's progress (they are written after it): a partition the group committed an
 * offset for had progress in Redis, so Redis lost it (both Redis and leadflow restarted, or
 * a new instance found an empty Redis). Replaying from the beginning rebuilds it while Kafka
 * retains the whole partition; when it does not, stop (fatal_rc) rather than start at the
 * log start as if nothing had been lost. A failed lookup is logged and not held against
 * the start: it only adds a check. */
static void lf_check_committed(lf_pipe_t *p, const rd_kafka_topic_partition_list_t *parts,
                               const int64_t *next)
{
    rd_kafka_topic_partition_list_t *ask = rd_kafka_topic_partition_list_new(parts->cnt);
    for (int i = 0; i < parts->cnt; i++)
        if (next[i] < 0)
            rd_kafka_topic_partition_list_add(ask, p->cfg->topic_events, parts->elems[i].partition);
    rd_kafka_resp_err_t e = ask->cnt ? rd_kafka_committed(p->consumer, ask, 5000) : 0;
    if (e) lf_log("warn", "cannot read the group's committed offsets: %s", rd_kafka_err2str(e));
    char lost[1024] = "", gone[1024] = "";
    size_t ll = 0, gl = 0;
    for (int i = 0; !e && i < ask->cnt && ll < sizeof(lost) - 96; i++) {
        const rd_kafka_topic_partition_t *x = &ask->elems[i];
        if (x->err || x->offset <= 0) continue;
        ll += (size_t)snprintf(lost + ll, sizeof(lost) - ll, "%s%s[%d] committed at %lld",
                               ll ? ", " : "", x->topic, x->partition, (long long)x->offset);
        int64_t lo = 0, hi = 0;
        if (rd_kafka_query_watermark_offsets(p->consumer, x->topic, x->partition, &lo, &hi, 5000) ==
                RD_KAFKA_RESP_ERR_NO_ERROR &&
            lo > 0 && gl < sizeof(gone) - 64)
            gl += (size_t)snprintf(gone + gl, sizeof(gone) - gl, "%s%s[%d] offsets 0..%lld",
                                   gl ? ", " : "", x->topic, x->partition, (long long)lo - 1);
    }
    rd_kafka_topic_partition_list_destroy(ask);
    if (!ll) return;
    char what[1200];
    snprintf(what, sizeof(what),
             "Redis holds no progress for partitions the consumer group had processed (%s)", lost);
    lf_store_loss_note(p, what);
    if (!gl) return; /* replayed from the beginning: everything is still in Kafka */
    p->fatal_rc = 3;
    lf_fmt(p->fatal_msg, sizeof(p->fatal_msg),
           "%s, and Kafka no longer holds the input to rebuild it: %s are gone. Stopping "
           "rather than guessing: restore Redis from a backup, or, for a deliberate fresh "
           "start, use a new kafka.group_id",
           what, gone);
}

/* Set each partition's start offset from the store: its watermark, or the beginning of the
 * retained log for a partition never processed. */
static int lf_positions_from_store(lf_pipe_t *p, rd_kafka_topic_partition_list_t *parts,
                                   lf_err_t *err)
{
    int32_t *ids = lf_malloc(sizeof(*ids) * (size_t)(parts->cnt + 1));
    int64_t *next = lf_malloc(sizeof(*next) * (size_t)(parts->cnt + 1));
    int64_t *ts = lf_malloc(sizeof(*ts) * (size_t)(parts->cnt + 1));
    for (int i = 0; i < parts->cnt; i++)
        ids[i] = parts->elems[i].partition;
    int rc = p->store->ops->load_watermarks(p->store, p->cfg->topic_events, ids, (size_t)parts->cnt,
                                            next, ts, err);
    if (rc == LF_STORE_LOST) {
        /* The new assignment starts from what Redis holds anyway; what was cached is not. */
        lf_store_loss_note(p, err->msg);
        lf_leadcache_clear(p->cache);
        rc = LF_OK;
    }
    if (rc == LF_OK) lf_check_committed(p, parts, next);
    if (rc == LF_OK)
        for (int i = 0; i < parts->cnt; i++) {
            parts->elems[i].offset = next[i] >= 0 ? next[i] : RD_KAFKA_OFFSET_BEGINNING;
            if (ids[i] < 0 || ids[i] >= LF_MAX_PARTITIONS) continue;
            p->part_next[ids[i]] = next[i];
            /* The partition's clock as the last owner left it: a new owner that sees no new
             * event there still sweeps the leads it now owns. */
            if (ts[i] > p->part_max_ts[ids[i]]) p->part_max_ts[ids[i]] = ts[i];
        }
    lf_free(ids);
    lf_free(next);
    lf_free(ts);
    return rc;
}

static void lf_rebalance_apply(lf_pipe_t *p, rd_kafka_t *rk, rd_kafka_resp_err_t err,
                               rd_kafka_topic_partition_list_t *parts)
{
    if (err == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS) {
        if (p->assignment) rd_kafka_topic_partition_list_destroy(p->assignment);
        p->assignment = rd_kafka_topic_partition_list_copy(parts);
        lf_err_t e = {0};
        if (lf_positions_from_store(p, parts, &e) == LF_OK) {
            rd_kafka_assign(rk, parts);
            if (p->paused) rd_kafka_resume_partitions(rk, parts); /* a pause outlives assign */
            p->paused = 0;
            p->positions_pending = 0;
        } else {
            /* Redis is the truth for where to start, and it is not reachable: take the
             * partitions but fetch nothing until the main loop can read the positions. */
            lf_set_state(p, "degraded", e.msg);
            /* Owned in the group, but nothing assigned to the consumer yet: no offset lookup,
             * no fetch, no pause flag. (Parking them at the log end, paused, lost the race
             * with the later assign now and then: a partition then delivered nothing.) */
            rd_kafka_assign(rk, NULL);
            if (p->paused) rd_kafka_resume_partitions(rk, parts); /* a pause outlives assign */
            p->paused = 0;
            p->positions_pending = 1;
        }
        p->outbox_flush_pending = 1;
        p->last_event_ms = lf_now_ms(); /* the idle clock starts once there is work */
        p->ever_assigned = 1;
        p->kafka_ok_ms = lf_now_ms();
        lf_log("info", "assigned %d partition(s)%s", parts->cnt,
               p->positions_pending ? " (waiting for Redis to know where to start)" : "");
    } else {
        /* The pause flag outlives the assignment: lift ours before letting go. */
        if (p->paused && p->assignment) rd_kafka_resume_partitions(rk, p->assignment);
        rd_kafka_assign(rk, NULL);
        if (p->assignment) rd_kafka_topic_partition_list_destroy(p->assignment);
        p->assignment = NULL;
        p->revoked = 1;
        p->positions_pending = 0;
        p->paused = 0;
        for (int i = 0; i < LF_MAX_PARTITIONS; i++)
            p->part_next[i] = -1;
        lf_leadcache_clear(p->cache); /* the next owner may change them */
        /* The next owner republishes what their outboxes hold: forget what was delivered. */
        lf_err_t e = {0};
        if (lf_forget_sent(p, &e) != LF_OK)
            lf_log("warn",
                   "transitions delivered before the revoke stay in their outboxes "
                   "(the next owner publishes them again): %s",
                   e.msg);
        lf_log("info", "revoked %d partition(s)", parts->cnt);
    }
}

static void lf_rebalance_cb(rd_kafka_t *rk, rd_kafka_resp_err_t err,
                            rd_kafka_topic_partition_list_t *parts, void *opaque)
{
    lf_pipe_t *p = opaque;
    if (p->in_write && !p->deferred_parts) {
        /* librdkafka waits for the assign/unassign call: it comes when the write ends. */
        p->deferred_err = err;
        p->deferred_parts = rd_kafka_topic_partition_list_copy(parts);
        lf_log("info", "rebalance during a write: handled when the write ends");
        return;
    }
    lf_rebalance_apply(p, rk, err, parts);
}

/* Let go of the prefetched messages (shutting down). */
static void lf_prefetch_drop(lf_pipe_t *p)
{
    for (size_t k = 0; k < p->npre; k++)
        rd_kafka_message_destroy(p->pre[k].msg);
    p->npre = 0;
}

/* After a write: the rebalance that arrived during it. */
static void lf_rebalance_deferred(lf_pipe_t *p)
{
    if (!p->deferred_parts) return;
    rd_kafka_topic_partition_list_t *parts = p->deferred_parts;
    p->deferred_parts = NULL;
    lf_rebalance_apply(p, p->consumer, p->deferred_err, parts);
    rd_kafka_topic_partition_list_destroy(parts);
}

/* A new item for message m at the end of an item array (the batch's or the prefetched). */
static lf_item_t *lf_items_push(lf_item_t **items, size_t *n, size_t *cap, rd_kafka_message_t *m)
{
    if (*n == *cap) {
        *cap = *cap ? *cap * 2 : 1024;
        *items = lf_realloc(*items, *cap * sizeof(**items));
    }
    lf_item_t *it = &(*items)[(*n)++];
    memset(it, 0, sizeof(*it));
    it->msg = m;
    return it;
}

/* Decode an item's message once (into arena): its event, or why it goes to the dead letters. */
static void lf_item_decode(const lf_pipe_t *p, lf_item_t *it, lf_arena_t *arena)
{
    it->decoded = 1;
    if (lf_event_decode(it->msg->payload, it->msg->len, &p->cfg->limits, arena, &it->ev,
                        &it->bad) != LF_OK)
        it->state = LF_ITEM_DEAD;
}

/* While a batch's writes are in flight (called between chunks): poll and decode the next
 * batch's first messages. Bounded per call, so the replies of the chunks in flight are read
 * soon; stops at a rebalance (handled after the write) and when the next batch is full. */
static void lf_prefetch(lf_pipe_t *p)
{
    if (!p->in_write || p->paused) return;
    for (int k = 0; k < 128 && p->npre < p->pre_max && !p->deferred_parts; k++) {
        rd_kafka_message_t *m = rd_kafka_consumer_poll(p->consumer, 0);
        if (!m) break;
        lf_item_t *it = lf_items_push(&p->pre, &p->npre, &p->cappre, m);
        if (!m->err) lf_item_decode(p, it, &p->pre_arena); /* an error: the batch handles it */
    }
}

static int lf_owned(const lf_pipe_t *p, int32_t partition)
{
    if (!p->assignment) return 0;
    for (int i = 0; i < p->assignment->cnt; i++)
        if (p->assignment->elems[i].partition == partition) return 1;
    return 0;
}

/*---- Batch helpers ----------------------------------------------------------------------*/

/* A tiny open-addressing map from id to slot index, in the attempt arena. */
typedef struct {
    const char **keys;
    int *vals;
    size_t cap;
} lf_idmap_t;

static void lf_idmap_init(lf_idmap_t *m, size_t n, lf_arena_t *a)
{
    m->cap = 16;
    while (m->cap < n * 2)
        m->cap *= 2;
    m->keys = lf_arena_alloc(a, m->cap * sizeof(*m->keys));
    m->vals = lf_arena_alloc(a, m->cap * sizeof(*m->vals));
    memset(m->keys, 0, m->cap * sizeof(*m->keys));
}

static int *lf_idmap_slot(lf_idmap_t *m, const char *key, int insert)
{
    size_t i = lf_hash64(key, strlen(key)) & (m->cap - 1);
    while (m->keys[i]) {
        if (strcmp(m->keys[i], key) == 0) return &m->vals[i];
        i = (i + 1) & (m->cap - 1);
    }
    if (!insert) return NULL;
    m->keys[i] = key;
    m->vals[i] = -1;
    return &m->vals[i];
}

static const char *lf_cstr(lf_arena_t *a, lf_str_t s)
{
    return lf_arena_strndup(a, s.ptr ? s.ptr : "", s.len);
}

/* Identify and alias link an anonymous id (alias: previousId) to the user. */
static lf_str_t lf_link_id(const lf_event_t *ev)
{
    if (ev->kind == LF_KIND_ALIAS) return ev->previous_id;
    return ev->anonymous_id;
}

/* Wait until every delivery flag is set, polling the producer and the consumer (so the
 * group keeps us); re-produce failed ones through `retry`. */
static int lf_wait_deliveries(lf_pipe_t *p, int *flags, size_t n, size_t stride,
                              int (*retry)(lf_pipe_t *p, size_t i))
{
    int64_t since = lf_now_ms(), next_warn = since + 10000, retry_at = 0;
    int delay = 0; /* between rounds of re-produces: a refusal comes back at once */
    for (;;) {
        size_t pending = 0, failed = 0;
        int retry_now = lf_now_ms() >= retry_at;
        for (size_t i = 0; i < n; i++) {
            int *f = (int *)((char *)flags + i * stride);
            if (*f == -1 && retry_now) {
                *f = 0;
                if (retry(p, i) != LF_OK) return LF_ERR;
                failed++;
            }
            if (*f != 1) pending++;
        }
        if (pending == 0) return LF_OK;
        if (failed) {
            delay = delay ? (delay * 2 > 2000 ? 2000 : delay * 2) : 100;
            retry_at = lf_now_ms() + delay;
        }
        if (lf_now_ms() >= next_warn) {
            /* Never silent: the wait has no end (message.timeout.ms=0) while Kafka is away. */
            char why[160];
            snprintf(why, sizeof(why), "Kafka has not acknowledged %zu message(s) for %lld s",
                     pending, (long long)((lf_now_ms() - since) / 1000));
            lf_set_state(p, "degraded", why);
            next_warn += 10000;
        }
        rd_kafka_poll(p->producer, 50);
        lf_heartbeat(p, 0); /* a stuck produce shows in the heartbeat, not as silence */
        if (lf_must_quit(p)) return LF_ERR;
    }
}

/*---- The store fence: a Redis that lost data --------------------------------------------*/

/* Wait until librdkafka holds no message of ours: delivery reports point into the batch and
 * the transition lists, which a loss empties. Bounded by a stop request. */
static void lf_drain_producer(lf_pipe_t *p)
{
    while (rd_kafka_outq_len(p->producer) > 0 && !lf_must_quit(p)) {
        rd_kafka_flush(p->producer, 100);
        lf_heartbeat(p, 0);
    }
}

/* Redis lost data under this instance (flushed, restarted empty or from an older snapshot, a
 * lagging replica promoted). Forget everything cached, and replay every owned partition from
 * what Redis still holds, if Kafka still retains that input; if it does not, stop with an
 * error naming what is lost: never guess. Returns LF_STORE_LOST (handled: the batch in
 * flight is dropped, its events come again) or LF_ERR with err->code 3 (stop). */
static int lf_store_lost(lf_pipe_t *p, const char *why, const int32_t *ids, const int64_t *next,
                         const int64_t *ts, size_t n, lf_err_t *err)
{
    lf_store_loss_note(p, why);
    lf_drain_producer(p);
    rd_kafka_topic_partition_list_t *parts = rd_kafka_topic_partition_list_new((int)n);
    char gone[1024] = "";
    size_t gl = 0;
    for (size_t i = 0; i < n; i++) {
        int64_t lo = 0, hi = 0;
        rd_kafka_resp_err_t e = rd_kafka_query_watermark_offsets(p->consumer, p->cfg->topic_events,
                                                                 ids[i], &lo, &hi, 5000);
        if (e) {
            rd_kafka_topic_partition_list_destroy(parts);
            lf_err_set(err, LF_ERR, "Redis lost data; asking Kafka what it retains of %s [%d]: %s",
                       p->cfg->topic_events, ids[i], rd_kafka_err2str(e));
            return LF_ERR;
        }
        int64_t from = next[i] >= 0 ? next[i] : 0;
        if (lo > from && gl < sizeof(gone) - 64)
            gl += (size_t)snprintf(gone + gl, sizeof(gone) - gl, "%s%s[%d] offsets %lld..%lld",
                                   gl ? ", " : "", p->cfg->topic_events, ids[i], (long long)from,
                                   (long long)lo - 1);
        rd_kafka_topic_partition_list_add(parts, p->cfg->topic_events, ids[i])->offset =
            next[i] >= 0 ? next[i] : RD_KAFKA_OFFSET_BEGINNING;
    }
    if (gl) {
        rd_kafka_topic_partition_list_destroy(parts);
        /* What is gone first: the reason can be long (fatal_msg has room for both). */
        p->fatal_rc = 3;
        lf_fmt(p->fatal_msg, sizeof(p->fatal_msg),
               "Kafka no longer holds the input to rebuild what Redis lost: %s are gone. "
               "Stopping rather than guessing: restore Redis from a backup at least as "
               "recent, or set the partitions' next offsets in the progress hash "
               "deliberately. What Redis lost: %s",
               gone, why);
        lf_err_set(err, 3, "Redis lost data and Kafka no longer holds the input: stopping");
        return LF_ERR;
    }
    /* Everything built on the lost state goes: the cache, the batch and the prefetched
     * messages (they come again from the rewound positions), the clock. */
    lf_leadcache_clear(p->cache);
    lf_batch_clear(p);
    lf_prefetch_drop(p);
    lf_arena_reset(&p->pre_arena);
    lf_publist_clear(&p->pubs);
    lf_publist_clear(&p->sent);
    p->sweep_clock = 0;
    for (size_t i = 0; i < n; i++)
        if (ids[i] >= 0 && ids[i] < LF_MAX_PARTITIONS) {
            p->part_next[ids[i]] = next[i];
            p->part_max_ts[ids[i]] = ts[i];
        }
    rd_kafka_assign(p->consumer, parts);
    if (p->paused) rd_kafka_resume_partitions(p->consumer, parts); /* a pause outlives assign */
    p->paused = 0;
    rd_kafka_topic_partition_list_destroy(parts);
    p->outbox_flush_pending = 1; /* what the outboxes still hold is published again */
    lf_log("warn", "replaying %zu partition(s) from the positions Redis still holds", n);
    lf_set_state(p, "degraded", "Redis lost data: replaying from Kafka");
    return LF_STORE_LOST;
}

/* Before writing: does Redis still hold what this instance wrote? The store epoch is the
 * one it wrote under, and no owned partition's next offset is behind what it recorded.
 * Returns LF_OK, LF_STORE_LOST (handled, see lf_store_lost) or LF_ERR. */
static int lf_fence(lf_pipe_t *p, lf_err_t *err)
{
    if (!p->assignment || p->positions_pending || p->assignment->cnt == 0) return LF_OK;
    size_t n = (size_t)p->assignment->cnt;
    int32_t *ids = lf_malloc(n * sizeof(*ids));
    int64_t *next = lf_malloc(n * sizeof(*next)), *ts = lf_malloc(n * sizeof(*ts));
    for (size_t i = 0; i < n; i++)
        ids[i] = p->assignment->elems[i].partition;
    int rc = p->store->ops->load_watermarks(p->store, p->cfg->topic_events, ids, n, next, ts, err);
    char why[1024] = "";
    size_t wl = 0;
    int lagging = 0;
    if (rc == LF_STORE_LOST) wl = (size_t)snprintf(why, sizeof(why), "%s", err->msg);
    for (size_t i = 0; rc != LF_ERR && i < n && wl < sizeof(why) - 128; i++) {
        int32_t part = ids[i];
        if (part < 0 || part >= LF_MAX_PARTITIONS || p->part_next[part] < 0) continue;
        if (next[i] >= p->part_next[part]) continue;
        rc = LF_STORE_LOST;
        if (!lagging++)
            wl += (size_t)snprintf(why + wl, sizeof(why) - wl,
                                   "%sRedis is behind what this instance wrote (an older "
                                   "snapshot or a lagging replica): next offsets",
                                   wl ? "; " : "");
        wl += (size_t)snprintf(why + wl, sizeof(why) - wl, " %s[%d] %lld < %lld",
                               p->cfg->topic_events, part, (long long)next[i],
                               (long long)p->part_next[part]);
    }
    if (rc == LF_STORE_LOST) rc = lf_store_lost(p, why, ids, next, ts, n, err);
    lf_free(ids);
    lf_free(next);
    lf_free(ts);
    return rc;
}

/*---- Dead letters -------------------------------------------------------------------------*/

/* (Re)produce item i's dead letter. The original unchanged when the producer can take it;
 * else, or once Kafka refused it, a truncated copy with its size and digest: no input can
 * hold a partition. Transient failures back off; a stop request ends the wait. */
static int lf_dlq_retry(lf_pipe_t *p, size_t i)
{
    lf_item_t *it = &p->items[i];
    char why[256] = "";
    /* headers and record framing: what the value must leave room for */
    if (!it->dlq_truncated && it->msg->len + it->msg->key_len + 1024 > p->dlq_max) {
        it->dlq_truncated = 1;
        snprintf(why, sizeof(why), "%zu bytes: over the producer's message.max.bytes (%zu)",
                 it->msg->len, p->dlq_max);
    } else if (!it->dlq_truncated && lf_kafka_refuses_message(it->dlq.err)) {
        /* (the delivery report's error: the wait reset `done` before calling us) */
        it->dlq_truncated = 1;
        snprintf(why, sizeof(why), "Kafka refused the original: %s", rd_kafka_err2str(it->dlq.err));
    } else if (it->dlq_truncated) {
        snprintf(why, sizeof(why), "the original could not be forwarded");
    }
    int delay = 100;
    for (;;) {
        lf_err_t e;
        it->dlq.done = 0;
        it->dlq.err = RD_KAFKA_RESP_ERR_NO_ERROR;
        rd_kafka_resp_err_t r = lf_kafka_dead_letter(
            p->producer, p->cfg->topic_dead_letter, it->msg, lf_bad_name((lf_bad_t)it->bad.code),
            it->bad.msg, it->dlq_truncated ? why : NULL, &it->dlq, &e);
        if (!r) return LF_OK;
        if (!it->dlq_truncated && lf_kafka_refuses_message(r)) {
            it->dlq_truncated = 1;
            snprintf(why, sizeof(why), "%s", rd_kafka_err2str(r));
            continue;
        }
        lf_set_state(p, "degraded", e.msg);
        rd_kafka_poll(p->producer, delay);
        delay = delay * 2 > 2000 ? 2000 : delay * 2;
        lf_heartbeat(p, 0);
        if (lf_must_quit(p)) return LF_ERR;
    }
}

/* Produce the batch's dead letters (once); their delivery is awaited with the transitions',
 * before progress is recorded. */
static int lf_produce_dead_letters(lf_pipe_t *p)
{
    for (size_t i = 0; i < p->nitems; i++) {
        lf_item_t *it = &p->items[i];
        if (it->state != LF_ITEM_DEAD) {
            it->dlq.done = 1;
            continue;
        }
        if (it->dlq_sent) continue;
        if (lf_dlq_retry(p, i) != LF_OK) return LF_ERR; /* stopping */
        it->dlq_sent = 1;
    }
    return LF_OK;
}

static int lf_await_dead_letters(lf_pipe_t *p)
{
    if (p->nitems == 0) return LF_OK;
    return lf_wait_deliveries(p, &p->items[0].dlq.done, p->nitems, sizeof(lf_item_t), lf_dlq_retry);
}

/*---- One attempt at applying the batch -----------------------------------------------*/

static void lf_pub_add(lf_pipe_t *p, int32_t partition, const char *lead_id, const char *id,
                       const char *payload, size_t len)
{
    lf_publist_t *l = &p->pubs;
    if (l->n == l->cap) {
        l->cap = l->cap ? l->cap * 2 : 256;
        l->v = lf_realloc(l->v, l->cap * sizeof(*l->v));
    }
    lf_pub_t *pub = &l->v[l->n++];
    pub->partition = partition;
    pub->lead_id = lf_arena_strndup(&l->arena, lead_id, strlen(lead_id));
    pub->id = lf_arena_strndup(&l->arena, id, strlen(id));
    pub->payload = lf_arena_strndup(&l->arena, payload, len);
    pub->len = len;
    pub->dr.done = 0;
}

/* Slots grow as ids are found; the map stores indices, so growing is safe. */
typedef struct {
    lf_slot_t *v;
    size_t n, cap;
} lf_slots_t;

static int lf_slot_of(lf_idmap_t *map, lf_slots_t *slots, const char *id)
{
    int *v = lf_idmap_slot(map, id, 1);
    if (*v < 0) {
        if (slots->n == slots->cap) {
            slots->cap = slots->cap ? slots->cap * 2 : 256;
            slots->v = lf_realloc(slots->v, slots->cap * sizeof(*slots->v));
        }
        *v = (int)slots->n++;
        lf_slot_t *s = &slots->v[*v];
        memset(s, 0, sizeof(*s));
        s->id = id;
        s->merged_into = -1;
    }
    return *v;
}

static void lf_slot_add_transitions(lf_pipe_t *p, lf_slot_t *s, const lf_transitions_t *tr,
                                    lf_arena_t *a)
{
    char id[LF_ID_MAX + 32], payload[LF_TRANSITION_MAX_BYTES], hist[128];
    for (int i = 0; i < tr->n; i++) {
        const lf_transition_t *t = &tr->t[i];
        int idl = lf_transition_id(t, s->lead_ptr->id, id, sizeof(id));
        int pl = lf_transition_encode(t, s->lead_ptr->id, p->cfg->model.version,
                                      p->cfg->transitions_json, payload, sizeof(payload));
        int hl = lf_transition_history_entry(t, hist, sizeof(hist));
        if (!s->trans.arena) lf_argv_init_scratch(&s->trans, a);
        lf_argv_add(&s->trans, id, (size_t)idl);
        lf_argv_add(&s->trans, payload, pl > 0 ? (size_t)pl : 0);
        lf_argv_add(&s->trans, hist, (size_t)hl);
    }
}

/* Stage history: one hash field per transition. trans holds (transition_id, payload, history
 * entry) triples; an entry starts with seq. Appends to `out` the stored history fields
 * (bf/bv, bn pairs) that no transition of this write replaces, then this write's, one per
 * field (of a slot written twice, the later): `out` then holds the lead's whole hash. */
static void lf_add_history_fields(const lf_str_t *bf, const lf_str_t *bv, size_t bn,
                                  const lf_argv_t *trans, lf_argv_t *out)
{
    int last[LF_HISTORY_KEEP];
    for (int h = 0; h < LF_HISTORY_KEEP; h++)
        last[h] = -1;
    for (size_t t = 0; t + 2 < trans->n; t += 3)
        last[strtoull(trans->argv[t + 2], NULL, 10) % LF_HISTORY_KEEP] = (int)t;
    for (size_t k = 0; k < bn; k++) /* copied: the cache entry they are in may go first */
        if (lf_is_history_field(bf[k]) && last[bf[k].ptr[1] - '0'] < 0) {
            lf_argv_add(out, bf[k].ptr, bf[k].len);
            lf_argv_add(out, bv[k].ptr, bv[k].len);
        }
    for (size_t t = 0; t + 2 < trans->n; t += 3) {
        uint64_t seq = strtoull(trans->argv[t + 2], NULL, 10);
        if (last[seq % LF_HISTORY_KEEP] != (int)t) continue;
        char hf[8];
        int hl = lf_history_field(seq, hf, sizeof(hf));
        lf_argv_add(out, hf, (size_t)hl);
        lf_argv_add_ref(out, trans->argv[t + 2], trans->lens[t + 2]);
    }
}

/* A lead's whole hash after its write (the encoding, then the stage history), computed
 * against the stored one (bf/bv, bn pairs), which x records as the base. */
static void lf_hash_write(lf_store_write_t *x, const lf_model_t *m, const lf_str_t *bf,
                          const lf_str_t *bv, size_t bn, const lf_argv_t *trans, lf_arena_t *a)
{
    x->whole = lf_arena_alloc(a, sizeof(*x->whole));
    lf_argv_init_scratch(x->whole, a);
    lf_lead_encode(x->lead, m, x->whole);
    lf_add_history_fields(bf, bv, bn, trans, x->whole);
    x->top_key = lf_rank_key(x->lead->eng, x->lead->t_ms, m->half_life_ms);
    x->base_fields = bf;
    x->base_values = bv;
    x->nbase = bn;
}

/* Counter increments ("<partition>.<name>", n) for the items chained from `first`. */
static void lf_count_items(const lf_pipe_t *p, int first, const int *next, lf_argv_t *out)
{
    struct {
        int32_t part;
        long long c[4];
    } acc[8];
    int nacc = 0;
    static const char *const names[4] = {"consumed", "applied", "duplicates", "filtered"};
    for (int i = first; i >= 0; i = next[i]) {
        const lf_item_t *it = &p->items[i];
        int k = 0;
        while (k < nacc && acc[k].part != it->msg->partition)
            k++;
        if (k == nacc) {
            if (nacc == 8) { /* flush: more partitions than expected for one lead */
                for (int j = 0; j < nacc; j++)
                    for (int c = 0; c < 4; c++)
                        if (acc[j].c[c]) {
                            lf_argv_add_part_field(out, acc[j].part, names[c]);
                            lf_argv_add_i64(out, acc[j].c[c]);
                        }
                nacc = 0;
                k = 0;
            }
            memset(&acc[k], 0, sizeof(acc[k]));
            acc[k].part = it->msg->partition;
            nacc++;
        }
        acc[k].c[0]++;
        if (it->tentative == LF_ITEM_APPLIED)
            acc[k].c[1]++;
        else if (it->tentative == LF_ITEM_DUPLICATE)
            acc[k].c[2]++;
        else if (it->tentative == LF_ITEM_FILTERED)
            acc[k].c[1]++, acc[k].c[3]++;
    }
    for (int j = 0; j < nacc; j++)
        for (int c = 0; c < 4; c++)
            if (acc[j].c[c]) {
                lf_argv_add_part_field(out, acc[j].part, names[c]);
                lf_argv_add_i64(out, acc[j].c[c]);
            }
}

/* What lf_prepare_writes needs of the attempt. */
typedef struct {
    lf_pipe_t *p;
    lf_slot_t *slots;
    const int *wslot; /* w[k] is the write of slots[wslot[k]] */
    const int *head, *next;
    lf_arena_t *a;
    lf_argv_t empty;
} lf_prep_t;

/* Encode leads w[from..to): their changed fields, stage move, transitions and counters. */
static void lf_prepare_writes(void *ctx, lf_store_write_t *w, size_t from, size_t to)
{
    lf_prep_t *pr = ctx;
    lf_pipe_t *p = pr->p;
    const lf_model_t *m = &p->cfg->model;
    lf_arena_t *a = pr->a;
    for (size_t k = from; k < to; k++) {
        int i = pr->wslot[k];
        lf_slot_t *s = &pr->slots[i];
        s->lead_ptr->version = s->loaded_version + 1;
        lf_store_write_t *x = &w[k];
        memset(x, 0, sizeof(*x));
        x->lead = s->lead_ptr;
        lf_hash_write(x, m, s->bf, s->bv, s->bn, &s->trans, a);
        x->expected_version = s->loaded_version;
        x->old_stage = s->loaded_stage;
        x->old_exists = s->loaded_exists;
        x->partition = s->partition;
        /* Any transition touches the stage sets (a lead may leave and come back in one
         * batch: same stage, new entry time). */
        x->stage_touched = !s->loaded_exists || s->loaded_stage != s->lead_ptr->stage ||
                           s->lead_ptr->stage == LF_STAGE_MQL || s->nmerged || s->trans.n;
        x->trans = s->trans.arena ? &s->trans : &pr->empty;
        x->merged_visitors = s->merged;
        x->merged_stages = s->merged_stages;
        x->merged_versions = s->merged_versions;
        x->nmerged = s->nmerged;
        x->stage_score = s->lead_ptr->stage == LF_STAGE_MQL
                             ? (double)lf_lead_exit_time(s->lead_ptr, m)
                             : (double)s->lead_ptr->stage_at_ms;
        x->counters = lf_arena_alloc(a, sizeof(*x->counters));
        lf_argv_init_scratch(x->counters, a);
        lf_count_items(p, pr->head[i], pr->next, x->counters);
        if (s->trans.n) {
            lf_argv_add_part_field(x->counters, s->partition, "transitions");
            lf_argv_add_i64(x->counters, (long long)(s->trans.n / 3));
        }
    }
    lf_prefetch(p); /* Redis works on the chunks sent before these */
}

static int lf_attempt(lf_pipe_t *p, int *pending_out, lf_err_t *err)
{
    const lf_config_t *cfg = p->cfg;
    const lf_model_t *m = &cfg->model;
    lf_arena_t *a = &p->attempt_arena;
    lf_arena_reset(a);

    size_t cap = p->nitems * 3 + 8;
    lf_idmap_t leads_map, anon_map;
    lf_idmap_init(&leads_map, cap, a);
    lf_idmap_init(&anon_map, cap, a);
    lf_slots_t sl = {0};
    const char **anons = lf_arena_alloc(a, cap * sizeof(*anons));
    size_t nanons = 0;

    /* Round 1: the leads and aliases the pending events name. */
    for (size_t i = 0; i < p->nitems; i++) {
        lf_item_t *it = &p->items[i];
        if (it->state != LF_ITEM_PENDING) continue;
        if (it->ev.user_id.len) lf_slot_of(&leads_map, &sl, lf_cstr(a, it->ev.user_id));
        lf_str_t link = it->ev.user_id.len ? lf_link_id(&it->ev) : it->ev.anonymous_id;
        if (link.len) {
            const char *anon = lf_cstr(a, link);
            int *v = lf_idmap_slot(&anon_map, anon, 1);
            if (*v < 0) {
                *v = (int)nanons;
                anons[nanons++] = anon;
            }
            lf_slot_of(&leads_map, &sl, anon);
        }
    }
    char **alias = lf_arena_alloc(a, (nanons + 1) * sizeof(*alias));
    int rc = LF_ERR;
    int64_t tt0 = lf_now_ms();
    if (p->store->ops->load_aliases(p->store, anons, nanons, alias, a, err)) goto done;
    int64_t tt1 = lf_now_ms();
    /* Round 2: the leads those aliases point to. */
    for (size_t i = 0; i < nanons; i++)
        if (alias[i]) lf_slot_of(&leads_map, &sl, alias[i]);
    lf_slot_t *slots = sl.v;
    size_t nslots = sl.n;
    if (nslots > p->capleads) {
        lf_free(p->leads);
        p->capleads = nslots + nslots / 2;
        p->leads = lf_malloc(p->capleads * sizeof(*p->leads));
    }
    /* Leads this instance wrote are in its cache; the others are read from Redis. */
    const char **ids = lf_arena_alloc(a, (nslots + 1) * sizeof(*ids));
    lf_lead_t **outs = lf_arena_alloc(a, (nslots + 1) * sizeof(*outs));
    int *missed = lf_arena_alloc(a, (nslots + 1) * sizeof(*missed));
    size_t nmiss = 0;
    for (size_t i = 0; i < nslots; i++) {
        lf_slot_t *sl_i = &slots[i];
        lf_err_t derr;
        if (lf_leadcache_get(p->cache, sl_i->id, &sl_i->bf, &sl_i->bv, &sl_i->bn) &&
            lf_lead_decode(&p->leads[i], lf_str_from(sl_i->id), sl_i->bf, sl_i->bv, sl_i->bn, m,
                           &derr) == LF_OK)
            continue;
        sl_i->bn = 0;
        ids[nmiss] = sl_i->id;
        outs[nmiss] = &p->leads[i];
        missed[nmiss++] = (int)i;
    }
    /* Their hashes as read are what the write is computed against: every field, the stage
     * history and the ones this version does not know included. */
    lf_stored_hash_t *stored = lf_arena_alloc(a, (nmiss + 1) * sizeof(*stored));
    if (p->store->ops->load_leads(p->store, ids, nmiss, outs, m, stored, a, err)) goto done;
    for (size_t k = 0; k < nmiss; k++) {
        lf_slot_t *sl_k = &slots[missed[k]];
        sl_k->bf = stored[k].fields;
        sl_k->bv = stored[k].values;
        sl_k->bn = stored[k].n;
    }
    int64_t tt2 = lf_now_ms();
    for (size_t i = 0; i < nslots; i++) {
        slots[i].lead_ptr = &p->leads[i];
        slots[i].loaded_version = p->leads[i].version;
        slots[i].loaded_exists = p->leads[i].exists;
        slots[i].loaded_stage = p->leads[i].stage;
    }

    /* Apply in offset order (a batch holds one partition's messages in order). */
    for (size_t i = 0; i < p->nitems; i++) {
        lf_item_t *it = &p->items[i];
        if (it->state != LF_ITEM_PENDING) continue;
        const lf_event_t *ev = &it->ev;
        int32_t part = it->msg->partition;
        int64_t off = it->msg->offset;
        int li;
        if (ev->user_id.len) {
            li = *lf_idmap_slot(&leads_map, lf_cstr(a, ev->user_id), 0);
        } else {
            const char *anon = lf_cstr(a, ev->anonymous_id);
            const char *to = alias[*lf_idmap_slot(&anon_map, anon, 0)];
            li = *lf_idmap_slot(&leads_map, to ? to : anon, 0);
        }
        lf_slot_t *s = &slots[li];
        while (s->merged_into >= 0)
            s = &slots[s->merged_into];
        li = (int)(s - slots);
        it->slot = li;
        if (lf_lead_offset_applied(s->lead_ptr, part, off)) {
            it->tentative = LF_ITEM_REPLAYED;
            continue;
        }
        if (lf_lead_seen_message(s->lead_ptr, ev->message_id)) {
            it->tentative = LF_ITEM_DUPLICATE;
            lf_lead_offset_record(s->lead_ptr, part, off);
            s->dirty = 1;
            s->partition = part;
            continue;
        }
        /* identify / alias: link the visitor to the lead, once. */
        lf_str_t link = lf_link_id(ev);
        if (ev->user_id.len && link.len &&
            (ev->kind == LF_KIND_IDENTIFY || ev->kind == LF_KIND_ALIAS) &&
            !lf_str_eq(link, s->lead_ptr->id)) {
            const char *anon = lf_cstr(a, link);
            int ai = *lf_idmap_slot(&anon_map, anon, 0);
            if (!alias[ai]) {
                lf_slot_t *v = &slots[*lf_idmap_slot(&leads_map, anon, 0)];
                if (v->merged_into < 0 && v != s) {
                    if (v->lead_ptr->exists && v->lead_ptr->anonymous)
                        lf_lead_merge_visitor(s->lead_ptr, v->lead_ptr, m, cfg->dedup_window);
                    v->merged_into = li;
                    /* Grow by copying: merges per lead and batch are few. */
                    const char **nm = lf_arena_alloc(a, sizeof(*nm) * (s->nmerged + 1));
                    lf_stage_t *ns = lf_arena_alloc(a, sizeof(*ns) * (s->nmerged + 1));
                    uint64_t *nv = lf_arena_alloc(a, sizeof(*nv) * (s->nmerged + 1));
                    if (s->nmerged) {
                        memcpy(nm, s->merged, sizeof(*nm) * s->nmerged);
                        memcpy(ns, s->merged_stages, sizeof(*ns) * s->nmerged);
                        memcpy(nv, s->merged_versions, sizeof(*nv) * s->nmerged);
                    }
                    s->merged = nm;
                    s->merged_stages = ns;
                    s->merged_versions = nv;
                    nv[s->nmerged] = v->loaded_version;
                    s->merged[s->nmerged] = anon;
                    s->merged_stages[s->nmerged] =
                        v->loaded_exists ? v->loaded_stage : LF_STAGE_VISITOR;
                    s->nmerged++;
                }
                alias[ai] = (char *)s->lead_ptr->id;
            }
        }
        lf_transitions_t tr = {0};
        lf_apply_result_t r = lf_lead_apply(s->lead_ptr, ev, m, cfg->dedup_window, &tr);
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
        if (tr.n) lf_slot_add_transitions(p, s, &tr, a);
    }

    /* Each item is counted by the write of the lead it finally belongs to (a visitor's items
     * by the lead that absorbed it), in the same atomic call as its effect. */
    int *head = lf_arena_alloc(a, (nslots + 1) * sizeof(*head));
    int *next = lf_arena_alloc(a, (p->nitems + 1) * sizeof(*next));
    for (size_t i = 0; i < nslots; i++)
        head[i] = -1;
    for (size_t i = 0; i < p->nitems; i++) {
        lf_item_t *it = &p->items[i];
        if (it->state != LF_ITEM_PENDING || it->tentative == LF_ITEM_REPLAYED) continue;
        int fs = it->slot;
        while (slots[fs].merged_into >= 0)
            fs = slots[fs].merged_into;
        it->slot = fs;
        next[i] = head[fs];
        head[fs] = (int)i;
    }

    /* Write every changed lead, atomically each, pipelined; each chunk of leads is encoded
     * (lf_prepare_writes) just before it is sent, while Redis works on the previous one. */
    lf_store_write_t *w = lf_arena_alloc(a, (nslots + 1) * sizeof(*w));
    int *wslot = lf_arena_alloc(a, (nslots + 1) * sizeof(*wslot));
    size_t nw = 0;
    for (size_t i = 0; i < nslots; i++) {
        lf_slot_t *s = &slots[i];
        if (!s->dirty || s->merged_into >= 0 || !s->lead_ptr->exists) continue;
        wslot[nw++] = (int)i;
    }
    lf_prep_t prep = {p, slots, wslot, head, next, a, {0}};
    lf_argv_init_scratch(&prep.empty, a);
    int *results = lf_arena_alloc(a, (nw + 1) * sizeof(*results));
    int64_t tt3 = lf_now_ms();
    p->in_write = 1;
    int wrc = p->store->ops->write_leads(p->store, w, nw, results, lf_prepare_writes, &prep, err);
    p->in_write = 0;
    if (wrc) goto done;
    if (getenv("LF_TRACE_BATCH"))
        lf_log("trace",
               "  attempt: %zu leads, aliases %lld ms, load %lld ms, apply+encode %lld ms, "
               "write %zu %lld ms",
               nslots, (long long)(tt1 - tt0), (long long)(tt2 - tt1), (long long)(tt3 - tt2), nw,
               (long long)(lf_now_ms() - tt3));

    /* Which slots are final: written, or not needing a write. */
    int *final = lf_arena_alloc(a, (nslots + 1) * sizeof(*final));
    for (size_t i = 0; i < nslots; i++)
        final[i] = 1;
    for (size_t k = 0; k < nw; k++) {
        lf_slot_t *s = &slots[wslot[k]];
        if (results[k] != LF_WRITE_OK) {
            final[wslot[k]] = 0;
            lf_leadcache_drop(p->cache, s->lead_ptr->id);
            continue;
        }
        lf_leadcache_put(p->cache, s->lead_ptr->id, w[k].whole); /* the hash as written */
        for (size_t v = 0; v < s->nmerged; v++)
            lf_leadcache_drop(p->cache, s->merged[v]);
        for (int it = head[wslot[k]]; it >= 0; it = next[it])
            p->items[it].counted = 1;
        for (size_t t = 0; t + 2 < s->trans.n; t += 3)
            lf_pub_add(p, s->partition, s->lead_ptr->id, s->trans.argv[t], s->trans.argv[t + 1],
                       s->trans.lens[t + 1]);
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
    *pending_out = pending;
    rc = LF_OK;
done:
    /* A failed round trip may have applied some writes: forget what we think is stored. */
    if (rc != LF_OK) lf_leadcache_clear(p->cache);
    lf_free(sl.v);
    return rc;
}

/*---- Publishing transitions --------------------------------------------------------------*/

static int lf_pub_send(lf_pipe_t *p, lf_pub_t *pub)
{
    for (;;) {
        rd_kafka_resp_err_t e =
            rd_kafka_producev(p->producer, RD_KAFKA_V_TOPIC(p->cfg->topic_transitions),
                              RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                              RD_KAFKA_V_KEY(pub->lead_id, strlen(pub->lead_id)),
                              RD_KAFKA_V_VALUE(pub->payload, pub->len),
                              RD_KAFKA_V_HEADER("lf.transition_id", pub->id, -1),
                              RD_KAFKA_V_OPAQUE(&pub->dr), RD_KAFKA_V_END);
        if (!e) return LF_OK;
        /* Queue full: let deliveries drain. */
        lf_set_state(p, "degraded", rd_kafka_err2str(e));
        rd_kafka_poll(p->producer, 100);
        lf_heartbeat(p, 0);
        if (lf_must_quit(p)) return LF_ERR;
    }
}

static int lf_pubs_retry(lf_pipe_t *p, size_t i)
{
    return lf_pub_send(p, &p->pubs.v[i]);
}
static int lf_sent_retry(lf_pipe_t *p, size_t i)
{
    return lf_pub_send(p, &p->sent.v[i]);
}

/* Wait until the previous batch's transitions are delivered (re-producing a failed one).
 * Done before anything newer is produced, so a lead's transitions reach the topic in order
 * even when a delivery fails. */
static int lf_settle_sent(lf_pipe_t *p)
{
    if (p->sent.n == 0) return LF_OK;
    return lf_wait_deliveries(p, &p->sent.v[0].dr.done, p->sent.n, sizeof(lf_pub_t), lf_sent_retry);
}

/* Hand this batch's transitions to librdkafka, after the previous batch's are delivered;
 * their own delivery is awaited by the next batch (or when idle). */
static int lf_produce_pubs(lf_pipe_t *p)
{
    if (lf_settle_sent(p) != LF_OK) return LF_ERR;
    if (p->pubs.produced) return LF_OK;
    for (size_t i = 0; i < p->pubs.n; i++) {
        p->pubs.v[i].dr.done = 0;
        if (lf_pub_send(p, &p->pubs.v[i]) != LF_OK) return LF_ERR;
    }
    p->pubs.produced = 1;
    return LF_OK;
}

/* The ids of a list grouped by partition (in order of first appearance), in the list's
 * arena; returns the number of groups. */
static size_t lf_pubs_by_partition(lf_publist_t *l, lf_outbox_ids_t **out)
{
    lf_outbox_ids_t *g = lf_arena_alloc(&l->arena, (l->n + 1) * sizeof(*g));
    int *group_of = lf_arena_alloc(&l->arena, (l->n + 1) * sizeof(*group_of));
    size_t ng = 0, last = 0;
    for (size_t i = 0; i < l->n; i++) {
        int32_t part = l->v[i].partition;
        if (!(ng && g[last].partition == part)) {
            for (last = 0; last < ng && g[last].partition != part; last++)
                ;
            if (last == ng) g[ng++] = (lf_outbox_ids_t){part, NULL, 0};
        }
        g[last].n++;
        group_of[i] = (int)last;
    }
    for (size_t k = 0; k < ng; k++) { /* sized by the count, then filled again from 0 */
        g[k].ids = lf_arena_alloc(&l->arena, g[k].n * sizeof(*g[k].ids));
        g[k].n = 0;
    }
    for (size_t i = 0; i < l->n; i++) {
        lf_outbox_ids_t *x = &g[group_of[i]];
        ((const char **)x->ids)[x->n++] = l->v[i].id;
    }
    *out = g;
    return ng;
}

static void lf_publist_clear(lf_publist_t *l)
{
    l->n = 0;
    l->produced = 0;
    lf_arena_reset(&l->arena);
}

/* Wait until every transition of a produced list is delivered (retry re-produces a failed
 * one), then forget them in their outboxes: one pipelined round trip. */
static int lf_forget_delivered(lf_pipe_t *p, lf_publist_t *l, int (*retry)(lf_pipe_t *p, size_t i),
                               lf_err_t *err)
{
    if (l->n == 0) return LF_OK;
    if (lf_wait_deliveries(p, &l->v[0].dr.done, l->n, sizeof(lf_pub_t), retry) != LF_OK)
        return LF_ERR;
    lf_outbox_ids_t *groups = NULL;
    size_t ng = lf_pubs_by_partition(l, &groups);
    return p->store->ops->outbox_delete(p->store, p->cfg->topic_transitions, groups, ng, err);
}

/* The previous batch's transitions, forgotten now rather than with the next batch's
 * progress (idle, revoked partitions, shutting down, before the outboxes are read). */
static int lf_forget_sent(lf_pipe_t *p, lf_err_t *err)
{
    if (lf_forget_delivered(p, &p->sent, lf_sent_retry, err) != LF_OK) return LF_ERR;
    lf_publist_clear(&p->sent);
    return LF_OK;
}

/* Outside a batch (outbox flush, decay sweep): publish p->pubs, forget them in their
 * outboxes once delivered, count them, and clear the list. */
static int lf_publish_and_forget(lf_pipe_t *p, lf_err_t *err)
{
    int rc = lf_produce_pubs(p);
    if (rc == LF_OK) rc = lf_forget_delivered(p, &p->pubs, lf_pubs_retry, err);
    p->transitions_out += p->pubs.n;
    lf_publist_clear(&p->pubs);
    return rc;
}

/* The outcome an item counts with in the batch's progress, or 0: counted already by its lead's
 * write, or (a redelivery) when it was first applied; none is pending when a batch ends. */
static lf_outcome_t lf_item_outcome(const lf_item_t *it)
{
    if (it->counted) return 0;
    switch (it->state) {
    case LF_ITEM_APPLIED:
        return LF_OUTCOME_APPLIED;
    case LF_ITEM_FILTERED:
        return LF_OUTCOME_FILTERED;
    case LF_ITEM_DUPLICATE:
        return LF_OUTCOME_DUPLICATE;
    case LF_ITEM_DEAD:
        return LF_OUTCOME_DEAD;
    case LF_ITEM_REPLAYED:
    case LF_ITEM_PENDING:
        break;
    }
    return 0;
}

/* The batch's progress per partition: next offset, event-time clock, and the runs of offsets
 * whose events it counts, in the order they were consumed. */
static size_t lf_batch_progress(lf_pipe_t *p, lf_progress_t **out)
{
    lf_arena_t *a = &p->batch_arena;
    size_t maxprog = p->nitems < LF_MAX_PARTITIONS ? p->nitems : LF_MAX_PARTITIONS;
    lf_progress_t *prog = lf_arena_alloc(a, (maxprog + 1) * sizeof(*prog));
    size_t *counted = lf_arena_alloc(a, (maxprog + 1) * sizeof(*counted));
    size_t *of = lf_arena_alloc(a, (p->nitems + 1) * sizeof(*of));
    size_t nprog = 0, k = 0;
    for (size_t i = 0; i < p->nitems; i++) {
        const rd_kafka_message_t *m = p->items[i].msg;
        if (nprog == 0 || prog[k].partition != m->partition) {
            for (k = 0; k < nprog && prog[k].partition != m->partition; k++)
                ;
            if (k == nprog) {
                memset(&prog[k], 0, sizeof(prog[k]));
                prog[k].partition = m->partition;
                if (m->partition >= 0 && m->partition < LF_MAX_PARTITIONS)
                    prog[k].max_event_ms = p->part_max_ts[m->partition];
                counted[k] = 0;
                nprog++;
            }
        }
        of[i] = k;
        if (m->offset + 1 > prog[k].next_offset) prog[k].next_offset = m->offset + 1;
        counted[k] += lf_item_outcome(&p->items[i]) != 0;
    }
    lf_offset_run_t **runs = lf_arena_alloc(a, (nprog + 1) * sizeof(*runs));
    for (k = 0; k < nprog; k++) {
        runs[k] = lf_arena_alloc(a, (counted[k] + 1) * sizeof(**runs));
        prog[k].runs = runs[k];
    }
    for (size_t i = 0; i < p->nitems; i++) {
        lf_outcome_t o = lf_item_outcome(&p->items[i]);
        if (!o) continue;
        lf_progress_t *g = &prog[of[i]];
        lf_offset_run_t *last = g->nruns ? &runs[of[i]][g->nruns - 1] : NULL;
        int64_t off = p->items[i].msg->offset;
        if (last && last->outcome == o && last->first + last->n == off)
            last->n++;
        else
            runs[of[i]][g->nruns++] = (lf_offset_run_t){off, 1, o};
    }
    *out = prog;
    return nprog;
}

/* Record progress (next offsets and counters per partition) and forget the previous
 * batch's delivered transitions in their outboxes, in one round trip; then commit to Kafka
 * for monitoring. This batch's transitions stay in the outbox until they are delivered, so
 * progress need not wait for them. */
static int lf_finish_batch(lf_pipe_t *p, lf_err_t *err)
{
    lf_outbox_ids_t *done = NULL;
    size_t ndone = lf_pubs_by_partition(&p->sent, &done);
    lf_progress_t *prog = NULL;
    size_t nprog = lf_batch_progress(p, &prog);
    if (p->store->ops->save_progress(p->store, p->cfg->topic_events, prog, nprog,
                                     p->cfg->topic_transitions, done, ndone, err))
        return LF_ERR;
    for (size_t k = 0; k < nprog; k++)
        if (prog[k].partition >= 0 && prog[k].partition < LF_MAX_PARTITIONS &&
            prog[k].next_offset > p->part_next[prog[k].partition])
            p->part_next[prog[k].partition] = prog[k].next_offset;
    /* Instance counters (this process's view; a redelivery counts as a duplicate here). */
    for (size_t i = 0; i < p->nitems; i++) {
        p->events_in++;
        switch (p->items[i].state) {
        case LF_ITEM_APPLIED:
            p->applied++;
            break;
        case LF_ITEM_FILTERED:
            p->applied++, p->filtered++;
            break;
        case LF_ITEM_DUPLICATE:
        case LF_ITEM_REPLAYED:
            p->duplicates++;
            break;
        case LF_ITEM_DEAD:
            p->dead++;
            break;
        case LF_ITEM_PENDING:
            break;
        }
    }
    p->transitions_out += p->pubs.n;
    /* The previous batch's are forgotten; this batch's are the ones to settle next. */
    lf_publist_t t = p->sent;
    p->sent = p->pubs;
    p->pubs = t;
    lf_publist_clear(&p->pubs);
    /* Kafka's committed offsets follow Redis's watermark: for lag monitoring and tools. */
    rd_kafka_topic_partition_list_t *offs = rd_kafka_topic_partition_list_new((int)nprog);
    for (size_t k = 0; k < nprog; k++)
        rd_kafka_topic_partition_list_add(offs, p->cfg->topic_events, prog[k].partition)->offset =
            prog[k].next_offset;
    rd_kafka_commit(p->consumer, offs, 1);
    rd_kafka_topic_partition_list_destroy(offs);
    p->last_commit_ms = lf_wall_ms();
    return LF_OK;
}

/*---- The batch ---------------------------------------------------------------------------*/

static void lf_batch_clear(lf_pipe_t *p)
{
    for (size_t i = 0; i < p->nitems; i++)
        rd_kafka_message_destroy(p->items[i].msg);
    p->nitems = 0;
    lf_arena_reset(&p->batch_arena);
}

/* Drop the items of partitions this instance no longer owns (after a revoke): the new
 * owner starts from the Redis watermark, which they never passed. */
static void lf_batch_drop_revoked(lf_pipe_t *p)
{
    size_t k = 0;
    for (size_t i = 0; i < p->nitems; i++) {
        if (lf_owned(p, p->items[i].msg->partition)) {
            p->items[k++] = p->items[i];
        } else {
            rd_kafka_message_destroy(p->items[i].msg);
        }
    }
    if (k != p->nitems)
        lf_log("info", "dropped %zu in-flight event(s) of revoked partitions", p->nitems - k);
    p->nitems = k;
    p->revoked = 0;
}

static void lf_batch_decode(lf_pipe_t *p)
{
    for (size_t i = 0; i < p->nitems; i++)
        if (!p->items[i].decoded) lf_item_decode(p, &p->items[i], &p->batch_arena);
}

/* Pause or resume the assigned partitions. Only what this code paused is resumed:
 * librdkafka 2.0.2 rewinds a partition that is resumed without having been paused. */
static void lf_pause_all(lf_pipe_t *p, int pause)
{
    /* (Partitions waiting for their start positions are not assigned to the consumer.) */
    if (!p->assignment || p->positions_pending || pause == p->paused) return;
    if (pause)
        rd_kafka_pause_partitions(p->consumer, p->assignment);
    else
        rd_kafka_resume_partitions(p->consumer, p->assignment);
    p->paused = pause;
}

/* Sleep for the backoff while serving the consumer (heartbeats, rebalances): partitions
 * are paused, so nothing new arrives. */
static void lf_backoff(lf_pipe_t *p, int *delay_ms)
{
    int64_t until = lf_now_ms() + *delay_ms;
    lf_pause_all(p, 1);
    while (lf_now_ms() < until && !lf_must_quit(p)) {
        rd_kafka_message_t *m = rd_kafka_consumer_poll(p->consumer, 100);
        if (m) rd_kafka_message_destroy(m); /* paused: only errors arrive */
        rd_kafka_poll(p->producer, 0);
        lf_heartbeat(p, 0); /* the heartbeat says "degraded" while Redis or Kafka is away */
    }
    *delay_ms = *delay_ms * 2 > 10000 ? 10000 : *delay_ms * 2;
}

/* Everything after consuming: dead letters, leads, transitions, progress. Retries with
 * backoff while Redis or Kafka is unavailable; returns LF_ERR only when stopping. */
static int lf_batch_process(lf_pipe_t *p)
{
    lf_batch_decode(p);
    int delay = 100;
    lf_err_t err = {0};
    for (;;) {
        if (p->revoked) lf_batch_drop_revoked(p);
        if (p->nitems == 0) return LF_OK;
        int fenced = lf_fence(p, &err);
        if (fenced == LF_STORE_LOST) return LF_OK; /* dropped: its events come again */
        if (p->fatal_rc) return LF_ERR;            /* lf_store_lost: the input to replay is gone */
        if (fenced != LF_OK) {
            lf_set_state(p, "degraded", err.msg);
            if (lf_must_quit(p)) return LF_ERR;
            lf_backoff(p, &delay);
            if (lf_must_quit(p)) return LF_ERR;
            continue;
        }
        int64_t t0 = lf_now_ms();
        if (lf_produce_dead_letters(p) != LF_OK) return LF_ERR;
        int64_t t1 = lf_now_ms();
        int pending = 1, attempts = 0, rc = LF_OK;
        while (pending && rc == LF_OK) {
            if (++attempts > LF_MAX_ATTEMPTS) {
                lf_err_set(&err, LF_ERR,
                           "leads keep changing under this instance (another "
                           "instance writing the same leads?)");
                rc = LF_ERR;
                break;
            }
            rc = lf_attempt(p, &pending, &err);
            lf_rebalance_deferred(p);
        }
        int64_t t2 = lf_now_ms();
        if (rc == LF_OK && strcmp(p->state, "ok") != 0) {
            lf_set_state(p, "ok", ""); /* Redis answers again */
            lf_pause_all(p, 0);
        }
        if (rc == LF_OK && lf_produce_pubs(p) != LF_OK) return LF_ERR;
        if (rc == LF_OK && lf_await_dead_letters(p) != LF_OK) return LF_ERR;
        int64_t t3 = lf_now_ms();
        size_t npubs = p->pubs.n;
        if (rc == LF_OK) rc = lf_finish_batch(p, &err);
        if (getenv("LF_TRACE_BATCH"))
            lf_log("trace",
                   "batch %zu events: produce dead letters %lld ms, leads %lld ms, publish %zu + "
                   "await "
                   "dead letters %lld ms, finish %lld ms",
                   p->nitems, (long long)(t1 - t0), (long long)(t2 - t1), npubs,
                   (long long)(t3 - t2), (long long)(lf_now_ms() - t3));
        if (rc == LF_OK) {
            if (strcmp(p->state, "ok") != 0) {
                lf_set_state(p, "ok", "");
                lf_pause_all(p, 0);
            }
            return LF_OK;
        }
        lf_set_state(p, "degraded", err.msg);
        /* A write whose reply was lost may have been applied, outbox entries included; its
         * events then replay as no-ops and would not publish them: flush the outboxes once
         * the batch is through. */
        p->outbox_flush_pending = 1;
        if (lf_must_quit(p)) return LF_ERR;
        lf_backoff(p, &delay);
        if (lf_must_quit(p)) return LF_ERR;
    }
}

/* After an assignment: publish what a previous owner left in the outboxes. */
static int lf_flush_outboxes(lf_pipe_t *p, lf_err_t *err)
{
    if (!p->assignment) return LF_OK;
    /* Not the ones this instance has just published. */
    if (lf_forget_sent(p, err) != LF_OK) return LF_ERR;
    for (int i = 0; i < p->assignment->cnt; i++) {
        int32_t part = p->assignment->elems[i].partition;
        lf_outbox_entry_t *e = NULL;
        size_t n = 0;
        if (p->store->ops->outbox_load(p->store, p->cfg->topic_transitions, part, &e, &n, err))
            return LF_ERR;
        if (n) {
            lf_log("info", "publishing %zu transition(s) left in the outbox of partition %d", n,
                   part);
            for (size_t k = 0; k < n; k++) {
                /* transition_id is "<lead id>:<seq>": the key is the part before the colon. */
                char *colon = strrchr(e[k].id, ':');
                size_t kl = colon ? (size_t)(colon - e[k].id) : strlen(e[k].id);
                char lead[LF_ID_MAX + 1];
                snprintf(lead, sizeof(lead), "%.*s", (int)kl, e[k].id);
                lf_pub_add(p, part, lead, e[k].id, e[k].payload, e[k].len);
            }
            int rc = lf_publish_and_forget(p, err);
            lf_outbox_entries_free(e, n);
            if (rc) return LF_ERR;
        }
    }
    return LF_OK;
}

/*---- Decay sweep ---------------------------------------------------------------------------*/

/* The decay sweep's clock (CONTRACT §4): while any owned partition has unread input, the
 * latest event time of the least advanced such partition (one that has delivered nothing
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
        clock = lf_wall_ms() - p->cfg->allowed_lateness_ms;
    else if (!behind)
        clock = lf_sweep_event_clock(p) - p->cfg->allowed_lateness_ms;
    else if (least > 0)
        clock = least - p->cfg->allowed_lateness_ms;
    if (clock > p->sweep_clock) p->sweep_clock = clock;
    return p->sweep_clock;
}

/* MQLs whose score decayed below the exit threshold with no event since: move them to
 * nurture at the crossing time. lf:stage:mql is ordered by that time, so the due ones are a
 * range query. A lead is swept by the owner of the partition that first wrote it (one
 * instance acts); the write is version-checked like any other. */
static int lf_sweep(lf_pipe_t *p, lf_err_t *err)
{
    int64_t wm = lf_sweep_clock(p);
    if (wm <= 0) return LF_OK;
    int fenced = lf_fence(p, err); /* a sweep writes too */
    if (fenced == LF_STORE_LOST) return LF_OK;
    if (fenced != LF_OK) return LF_ERR;
    const lf_model_t *m = &p->cfg->model;
    lf_arena_t *a = &p->attempt_arena;
    lf_arena_reset(a);
    char **ids = NULL;
    size_t n = 0;
    if (p->store->ops->due_mql(p->store, wm, 500, &ids, &n, a, err)) return LF_ERR;
    if (n == 0) return LF_OK;
    if (n > p->capleads) {
        lf_free(p->leads);
        p->capleads = n;
        p->leads = lf_malloc(n * sizeof(*p->leads));
    }
    lf_lead_t **outs = lf_arena_alloc(a, n * sizeof(*outs));
    for (size_t i = 0; i < n; i++)
        outs[i] = &p->leads[i];
    lf_stored_hash_t *stored = lf_arena_alloc(a, n * sizeof(*stored));
    if (p->store->ops->load_leads(p->store, (const char *const *)ids, n, outs, m, stored, a, err))
        return LF_ERR;
    lf_store_write_t *w = lf_arena_alloc(a, n * sizeof(*w));
    size_t nw = 0;
    for (size_t i = 0; i < n; i++) {
        lf_lead_t *l = &p->leads[i];
        if (!l->exists || l->stage != LF_STAGE_MQL || l->nsrc == 0 ||
            !lf_owned(p, l->src[0].partition))
            continue;
        uint64_t loaded_version = l->version;
        lf_transitions_t tr = {0};
        if (lf_lead_advance(l, wm, m, &tr) == 0) continue;
        l->version = loaded_version + 1;
        lf_slot_t slot;
        memset(&slot, 0, sizeof(slot));
        slot.lead_ptr = l;
        lf_slot_add_transitions(p, &slot, &tr, a);
        lf_argv_t *trans = lf_arena_alloc(a, sizeof(*trans));
        *trans = slot.trans;
        lf_store_write_t *x = &w[nw++];
        memset(x, 0, sizeof(*x));
        x->lead = l;
        lf_hash_write(x, m, stored[i].fields, stored[i].values, stored[i].n, trans, a);
        x->expected_version = loaded_version;
        x->old_stage = LF_STAGE_MQL;
        x->old_exists = 1;
        x->partition = l->src[0].partition;
        x->trans = trans;
        x->stage_score = (double)l->stage_at_ms;
        x->stage_touched = 1;
        x->counters = lf_arena_alloc(a, sizeof(*x->counters));
        lf_argv_init_scratch(x->counters, a);
        lf_argv_add_part_field(x->counters, x->partition, "transitions");
        lf_argv_add_i64(x->counters, tr.n);
    }
    if (nw == 0) return LF_OK;
    int *results = lf_arena_alloc(a, nw * sizeof(*results));
    if (p->store->ops->write_leads(p->store, w, nw, results, NULL, NULL, err)) return LF_ERR;
    for (size_t k = 0; k < nw; k++) {
        if (results[k] != LF_WRITE_OK) { /* changed meanwhile: the next sweep sees it */
            lf_leadcache_drop(p->cache, w[k].lead->id);
            continue;
        }
        lf_leadcache_put(p->cache, w[k].lead->id, w[k].whole);
        const lf_argv_t *t = w[k].trans;
        for (size_t j = 0; j + 2 < t->n; j += 3)
            lf_pub_add(p, w[k].partition, w[k].lead->id, t->argv[j], t->argv[j + 1],
                       t->lens[j + 1]);
    }
    return lf_publish_and_forget(p, err);
}

/*---- Heartbeat ---------------------------------------------------------------------------*/

static int64_t lf_lag(lf_pipe_t *p)
{
    if (!p->assignment) return 0;
    int64_t lag = 0;
    rd_kafka_topic_partition_list_t *pos = rd_kafka_topic_partition_list_copy(p->assignment);
    rd_kafka_position(p->consumer, pos);
    for (int i = 0; i < pos->cnt; i++) {
        int64_t lo, hi;
        if (rd_kafka_get_watermark_offsets(p->consumer, pos->elems[i].topic,
                                           pos->elems[i].partition, &lo, &hi) != 0)
            continue;
        int64_t at = pos->elems[i].offset >= 0 ? pos->elems[i].offset : lo;
        if (hi > at) lag += hi - at;
    }
    rd_kafka_topic_partition_list_destroy(pos);
    return lag;
}

static void lf_heartbeat(lf_pipe_t *p, int force)
{
    int64_t now = lf_now_ms();
    if (!force && now - p->last_heartbeat_ms < 1000) return;
    if (now - p->rate_base_ms >= 1000) {
        p->events_per_s =
            (double)(p->events_in - p->rate_base_events) * 1000.0 / (double)(now - p->rate_base_ms);
        p->rate_base_ms = now;
        p->rate_base_events = p->events_in;
    }
    p->last_heartbeat_ms = now;
    lf_kafka_health(p);
    lf_arena_t a;
    lf_arena_init(&a, 4096);
    lf_argv_t f;
    lf_argv_init(&f, &a);
    char host[128] = "";
    gethostname(host, sizeof(host) - 1);
    char parts[1024];
    size_t n = (size_t)snprintf(parts, sizeof(parts), "%s:", p->cfg->topic_events);
    for (int i = 0; p->assignment && i < p->assignment->cnt && n < sizeof(parts) - 16; i++)
        n += (size_t)snprintf(parts + n, sizeof(parts) - n, "%s%d", i ? "," : "",
                              p->assignment->elems[i].partition);
#define LF_HB_STR(k, v) (lf_argv_adds(&f, k), lf_argv_adds(&f, v))
#define LF_HB_INT(k, v) (lf_argv_adds(&f, k), lf_argv_add_i64(&f, (long long)(v)))
    LF_HB_STR("instance", p->instance);
    LF_HB_STR("host", host);
    LF_HB_INT("pid", getpid());
    LF_HB_STR("version", LF_VERSION);
    LF_HB_INT("started_ms", p->started_ms);
    LF_HB_INT("uptime_s", (now - p->started_mono) / 1000);
    LF_HB_STR("state", p->state);
    LF_HB_STR("reason", p->reason);
    LF_HB_STR("partitions", parts);
    LF_HB_INT("lag", lf_lag(p));
    LF_HB_INT("events_in", p->events_in);
    LF_HB_INT("applied", p->applied);
    LF_HB_INT("duplicates", p->duplicates);
    LF_HB_INT("dead_lettered", p->dead);
    LF_HB_INT("filtered", p->filtered);
    LF_HB_INT("transitions_out", p->transitions_out);
    lf_argv_adds(&f, "events_per_s");
    lf_argv_add_double(&f, (double)(int64_t)(p->events_per_s * 10) / 10);
    LF_HB_STR("rules_version", p->cfg->model.version ? p->cfg->model.version : "");
    LF_HB_INT("last_commit_ms", p->last_commit_ms);
    LF_HB_INT("heartbeat_ms", lf_wall_ms());
    LF_HB_STR("store_loss", p->store_loss);
    LF_HB_INT("store_loss_ms", p->store_loss_ms);
    lf_err_t err;
    if (p->store->ops->heartbeat(p->store, p->instance, &f, p->cfg->heartbeat_ttl_s, &err))
        lf_set_state(p, "degraded", err.msg);
    lf_argv_free(&f);
    lf_arena_free(&a);
}

/*---- The loop ----------------------------------------------------------------------------*/

static void lf_item_push(lf_pipe_t *p, rd_kafka_message_t *m)
{
    lf_items_push(&p->items, &p->nitems, &p->capitems, m);
}

/* A consumer error: transient ones are logged; falling below the log start means events
 * were lost to retention before we read them, which we refuse to hide. */
static int lf_consumer_error(lf_pipe_t *p, rd_kafka_message_t *m)
{
    if (m->err == RD_KAFKA_RESP_ERR__AUTO_OFFSET_RESET ||
        m->err == RD_KAFKA_RESP_ERR_OFFSET_OUT_OF_RANGE) {
        lf_log("error",
               "%s [%d]: the position is outside the retained log (%s): events were deleted "
               "by retention before leadflow read them. Refusing to skip them silently; "
               "restore the data, or reset this partition's progress deliberately.",
               m->rkt ? rd_kafka_topic_name(m->rkt) : "?", m->partition,
               rd_kafka_message_errstr(m));
        return LF_ERR;
    }
    if (m->err == RD_KAFKA_RESP_ERR__FATAL) {
        char buf[512];
        rd_kafka_fatal_error(p->consumer, buf, sizeof(buf));
        lf_log("error", "fatal Kafka error: %s", buf);
        return LF_ERR;
    }
    lf_set_state(p, "degraded", rd_kafka_message_errstr(m));
    return LF_OK;
}

/* One consumed message into the batch (`pre`: as prefetched and decoded). Returns 1 if
 * it was added, 0 if it was not (an error event, a redelivery, a revoked partition's), -1
 * if the input was lost to retention. The message is the batch's or destroyed. */
static int lf_take_message(lf_pipe_t *p, rd_kafka_message_t *m, const lf_item_t *pre)
{
    if (!m->err) p->kafka_ok_ms = lf_now_ms();
    if (m->err) {
        int fatal = lf_consumer_error(p, m) != LF_OK;
        rd_kafka_message_destroy(m);
        return fatal ? -1 : 0;
    }
    if ((m->partition >= 0 && m->partition < LF_MAX_PARTITIONS &&
         m->offset < p->part_next[m->partition]) ||
        (pre && !lf_owned(p, m->partition))) {
        /* Already processed and recorded (a redelivery, e.g. a rewind); or prefetched from
         * a partition revoked since. */
        rd_kafka_message_destroy(m);
        return 0;
    }
    lf_item_push(p, m);
    if (pre) p->items[p->nitems - 1] = *pre;
    return 1;
}

/* librdkafka 2.0.2 holds messages for a topic it has no metadata for until its next
 * once-a-second topic scan: ask now, so the first transitions and dead letters go out at
 * once (measured: the first second of transitions otherwise waited ~1 s). Best effort. */
static void lf_warm_producer_metadata(lf_pipe_t *p)
{
    const char *topics[] = {p->cfg->topic_transitions, p->cfg->topic_dead_letter};
    for (size_t i = 0; i < sizeof(topics) / sizeof(topics[0]); i++) {
        rd_kafka_topic_t *t = rd_kafka_topic_new(p->producer, topics[i], NULL);
        if (!t) continue;
        const struct rd_kafka_metadata *md = NULL;
        /* Short: with Kafka away this only delays the start (and a stop request). */
        rd_kafka_resp_err_t e = rd_kafka_metadata(p->producer, 0, t, &md, 1500);
        if (e)
            lf_log("warn", "no metadata for %s yet (%s): its first messages may wait ~1 s",
                   topics[i], rd_kafka_err2str(e));
        if (md) rd_kafka_metadata_destroy(md);
        rd_kafka_topic_destroy(t);
    }
}

/* Leave the group (the partitions go to the others at once), but not for longer than
 * LF_STOP_CLOSE_MS / 2: with Kafka away, rd_kafka_consumer_close() can wait much longer. */
static void lf_consumer_close_bounded(lf_pipe_t *p)
{
    if (!p->consumer) return;
    rd_kafka_queue_t *q = rd_kafka_queue_new(p->consumer);
    rd_kafka_error_t *e = rd_kafka_consumer_close_queue(p->consumer, q);
    if (e) {
        lf_log("warn", "leaving the consumer group: %s", rd_kafka_error_string(e));
        rd_kafka_error_destroy(e);
    } else {
        int64_t until = lf_now_ms() + LF_STOP_CLOSE_MS / 2;
        while (!rd_kafka_consumer_closed(p->consumer) && lf_now_ms() < until) {
            rd_kafka_event_t *ev = rd_kafka_queue_poll(q, 100);
            if (!ev) continue;
            /* The revoke comes here as an event, not through lf_rebalance_cb. */
            if (rd_kafka_event_type(ev) == RD_KAFKA_EVENT_REBALANCE)
                lf_rebalance_apply(p, p->consumer, rd_kafka_event_error(ev),
                                   rd_kafka_event_topic_partition_list(ev));
            rd_kafka_event_destroy(ev);
        }

        if (!rd_kafka_consumer_closed(p->consumer))
            lf_log("warn", "could not leave the consumer group in time (Kafka away?): the "
                           "group hands the partitions on after session.timeout.ms");
    }
    rd_kafka_queue_destroy(q);
}

void lf_instance_default(char *buf, size_t cap)
{
    char host[64] = "host";
    gethostname(host, sizeof(host) - 1);
    snprintf(buf, cap, "%s-%d", host, (int)getpid());
}

int lf_pipeline_run(const lf_config_t *cfg, const lf_run_opts_t *opts)
{
    lf_pipe_t pp, *p = &pp;
    memset(p, 0, sizeof(*p));
    p->cfg = cfg;
    p->opts = opts;
    p->started_mono = p->rate_base_ms = p->last_event_ms = lf_now_ms();
    p->started_ms = lf_wall_ms();
    snprintf(p->state, sizeof(p->state), "ok");
    for (int i = 0; i < LF_MAX_PARTITIONS; i++)
        p->part_next[i] = -1;
    if (opts->instance)
        snprintf(p->instance, sizeof(p->instance), "%s", opts->instance);
    else
        lf_instance_default(p->instance, sizeof(p->instance));
    lf_arena_init(&p->batch_arena, 1 << 20);
    lf_arena_init(&p->pre_arena, 1 << 20);
    lf_arena_init(&p->attempt_arena, 1 << 20);
    lf_arena_init(&p->pubs.arena, 1 << 16);
    lf_arena_init(&p->sent.arena, 1 << 16);
    int rc = 1;
    lf_err_t err = {0};
    char errstr[512];

    p->cache = lf_leadcache_new((size_t)cfg->cache_leads);
    p->store = lf_store_redis_open(cfg, &err);
    if (err.code == LF_STORE_REFUSED) goto fatal; /* a misconfiguration: say so at once */
    if (err.msg[0]) lf_set_state(p, "degraded", err.msg);

    rd_kafka_conf_t *pconf = lf_kafka_conf(cfg, LF_KAFKA_PRODUCER, &err);
    if (!pconf) goto fatal;
    rd_kafka_conf_set_dr_msg_cb(pconf, lf_delivery_cb);
    rd_kafka_conf_set_error_cb(pconf, lf_kafka_error_cb);
    rd_kafka_conf_set_opaque(pconf, p);
    p->dlq_max = lf_kafka_max_message_bytes(pconf);
    p->producer = rd_kafka_new(RD_KAFKA_PRODUCER, pconf, errstr, sizeof(errstr));
    if (!p->producer) {
        rd_kafka_conf_destroy(pconf); /* rd_kafka_new owns it only on success */
        lf_err_set(&err, LF_ERR, "cannot create the Kafka producer: %s", errstr);
        goto fatal;
    }
    lf_warm_producer_metadata(p);
    rd_kafka_conf_t *cconf = lf_kafka_conf(cfg, LF_KAFKA_CONSUMER, &err);
    if (!cconf) goto fatal;
    rd_kafka_conf_set_rebalance_cb(cconf, lf_rebalance_cb);
    rd_kafka_conf_set_error_cb(cconf, lf_kafka_error_cb);
    rd_kafka_conf_set_opaque(cconf, p);
    p->consumer = rd_kafka_new(RD_KAFKA_CONSUMER, cconf, errstr, sizeof(errstr));
    if (!p->consumer) {
        rd_kafka_conf_destroy(cconf);
        lf_err_set(&err, LF_ERR, "cannot create the Kafka consumer: %s", errstr);
        goto fatal;
    }
    rd_kafka_poll_set_consumer(p->consumer);
    rd_kafka_topic_partition_list_t *sub = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(sub, cfg->topic_events, RD_KAFKA_PARTITION_UA);
    rd_kafka_resp_err_t se = rd_kafka_subscribe(p->consumer, sub);
    rd_kafka_topic_partition_list_destroy(sub);
    if (se) {
        lf_err_set(&err, LF_ERR, "cannot subscribe to %s: %s", cfg->topic_events,
                   rd_kafka_err2str(se));
        goto fatal;
    }
    lf_log("info", "instance %s: consuming %s from %s as group %s; Redis %s:%d", p->instance,
           cfg->topic_events, cfg->kafka_brokers, cfg->kafka_group, cfg->redis_host,
           cfg->redis_port);

    /* In flight: one batch in the application, plus what librdkafka prefetches (bounded by
     * queued.max.messages.kbytes); consumption is paused while a batch cannot be stored. */
    size_t batch_cap =
        (size_t)(cfg->batch_max_events < cfg->max_inflight_events ? cfg->batch_max_events
                                                                  : cfg->max_inflight_events);
    p->pre_max = batch_cap;
    int delay = 100;
    while (!*opts->stop && !p->fatal_rc) {
        if (p->positions_pending && p->assignment) {
            rd_kafka_topic_partition_list_t *parts =
                rd_kafka_topic_partition_list_copy(p->assignment);
            if (lf_positions_from_store(p, parts, &err) != LF_OK) {
                rd_kafka_topic_partition_list_destroy(parts);
                lf_set_state(p, "degraded", err.msg);
                lf_backoff(p, &delay);
                continue;
            }
            rd_kafka_assign(p->consumer, parts);
            /* librdkafka keeps a partition's pause flag across assignments. */
            if (p->paused) rd_kafka_resume_partitions(p->consumer, parts);
            p->paused = 0;
            rd_kafka_topic_partition_list_destroy(parts);
            p->positions_pending = 0;
            p->last_event_ms = lf_now_ms();
            delay = 100;
            lf_log("info", "start positions read from Redis: consuming");
        }
        if (p->outbox_flush_pending) {
            if (lf_flush_outboxes(p, &err) != LF_OK) {
                lf_set_state(p, "degraded", err.msg);
                lf_backoff(p, &delay);
                continue;
            }
            p->outbox_flush_pending = 0;
            if (delay > 100) lf_set_state(p, "ok", ""); /* Redis answers again */
            delay = 100;
        }
        /* Nothing is being retried here: what a backoff paused is consumed again. (A batch
         * that gets through resumes too, but after a failed outbox flush no batch could
         * come: the partitions stayed paused for good.) */
        lf_pause_all(p, 0);
        /* Collect a batch: what is waiting (plus batch_linger_ms), up to batch_max_events, and
         * no longer than batch_max_ms after the first event. Under load the previous batch's
         * processing time lets the next one grow (fewer round trips per event); at a low
         * rate an event is not held back waiting for company. */
        int64_t deadline = 0;
        /* What was prefetched during the last batch's writes comes first (decoded in
         * pre_arena, which becomes this batch's arena). */
        size_t npre = p->npre;
        if (npre) {
            lf_arena_t t = p->batch_arena;
            p->batch_arena = p->pre_arena;
            p->pre_arena = t;
            lf_arena_reset(&p->pre_arena);
            p->npre = 0;
        }
        int fatal = 0;
        for (size_t k = 0; k < npre; k++) {
            if (fatal) {
                rd_kafka_message_destroy(p->pre[k].msg);
                continue;
            }
            int r = lf_take_message(p, p->pre[k].msg, &p->pre[k]);
            if (r < 0) fatal = 1;
            if (r > 0 && !deadline) deadline = lf_now_ms() + cfg->batch_max_ms;
        }
        while (!fatal && p->nitems < batch_cap && !*opts->stop) {
            int64_t now = lf_now_ms();
            int wait = 100;
            if (deadline) {
                wait = (int)(deadline - now);
                if (wait <= 0) break;
                if (wait > cfg->batch_linger_ms) wait = cfg->batch_linger_ms;
            }
            rd_kafka_message_t *m = rd_kafka_consumer_poll(p->consumer, wait);
            rd_kafka_poll(p->producer, 0);
            if (p->revoked) lf_batch_drop_revoked(p);
            if (!m) break; /* nothing waiting (idle: heartbeat and check stop) */
            int r = lf_take_message(p, m, NULL);
            if (r < 0) fatal = 1;
            if (r > 0 && !deadline) deadline = lf_now_ms() + cfg->batch_max_ms;
        }
        if (fatal) {
            lf_err_set(&err, LF_ERR, "stopping: input lost to retention");
            rc = 3;
            goto stop;
        }
        int idle = p->nitems == 0;
        if (p->nitems) {
            p->last_event_ms = lf_now_ms();
            if (lf_batch_process(p) != LF_OK) break;
            lf_batch_clear(p);
        }
        /* Nothing came in: clear the outboxes now rather than with the next batch. (Not
         * after every batch: that would cost a round trip and a wait per batch.) */
        if (idle && p->sent.n && lf_forget_sent(p, &err) != LF_OK)
            lf_set_state(p, "degraded", err.msg);
        if (p->nitems == 0 && lf_now_ms() - p->last_sweep_ms >= 1000) {
            p->last_sweep_ms = lf_now_ms();
            if (lf_sweep(p, &err) != LF_OK) lf_set_state(p, "degraded", err.msg);
        }
        lf_heartbeat(p, 0);
        if (opts->exit_idle_ms > 0 && p->ever_assigned &&
            lf_now_ms() - p->last_event_ms > opts->exit_idle_ms) {
            lf_log("info", "idle for %d ms: exiting", opts->exit_idle_ms);
            break;
        }
    }
    rc = 0;
    if (p->fatal_rc) {
        lf_err_set(&err, LF_ERR, "%s", p->fatal_msg);
        lf_log("error", "%s", p->fatal_msg);
        rc = p->fatal_rc;
    }
stop:
    /* Finish (or abandon) the in-flight batch: nothing of it was committed. */
    lf_batch_clear(p);
    lf_prefetch_drop(p);
    /* Best effort, and only while the stop's grace lasts: both need Redis. */
    if (rc == 0 && !lf_must_quit(p) && lf_forget_sent(p, &err) != LF_OK)
        lf_log("warn",
               "transitions delivered last stay in their outboxes (published again "
               "by the next owner): %s",
               err.msg);
    /* The last heartbeat says the instance is gone, so `leadflow stats` does not count it
     * as live (or, once silent, as stale) until the key expires. */
    snprintf(p->state, sizeof(p->state), "stopped");
    snprintf(p->reason, sizeof(p->reason), "%s", rc == 0 ? "clean shutdown" : err.msg);
    if (!lf_must_quit(p)) lf_heartbeat(p, 1);
    lf_log("info",
           "shutting down: %" PRIu64 " events in, %" PRIu64 " applied, %" PRIu64
           " duplicates, %" PRIu64 " dead-lettered, %" PRIu64 " transitions out",
           p->events_in, p->applied, p->duplicates, p->dead, p->transitions_out);
    lf_consumer_close_bounded(p); /* leaves the group */
    goto cleanup;
fatal:
    lf_log("error", "%s", err.msg);
    rc = 2;
cleanup:
    lf_prefetch_drop(p);
    if (p->deferred_parts) rd_kafka_topic_partition_list_destroy(p->deferred_parts);
    /* A consumer that could not leave the group in time is not asked again. */
    if (p->consumer)
        rd_kafka_destroy_flags(p->consumer, rd_kafka_consumer_closed(p->consumer)
                                                ? 0
                                                : RD_KAFKA_DESTROY_F_NO_CONSUMER_CLOSE);
    if (p->producer) {
        /* Only dead letters and transitions can be queued: both are redone from Redis's
         * progress by the next owner, so a Kafka that is away does not hold the stop. */
        rd_kafka_flush(p->producer, LF_STOP_CLOSE_MS / 2);
        rd_kafka_purge(p->producer, RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT);
        rd_kafka_destroy(p->producer);
    }
    if (p->assignment) rd_kafka_topic_partition_list_destroy(p->assignment);
    if (p->store) p->store->ops->close(p->store);
    lf_free(p->items);
    lf_free(p->pubs.v);
    lf_free(p->sent.v);
    lf_arena_free(&p->pubs.arena);
    lf_arena_free(&p->sent.arena);
    lf_free(p->leads);
    lf_leadcache_free(p->cache);
    lf_free(p->pre);
    lf_arena_free(&p->batch_arena);
    lf_arena_free(&p->pre_arena);
    lf_arena_free(&p->attempt_arena);
    return rc;
}
