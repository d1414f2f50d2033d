/* Rebalances: which partitions this instance owns, and where each starts. The start offset of
 * a partition is the one Redis recorded (its progress), never Kafka's committed offset, so a
 * new assignment waits until Redis answers; a revoke forgets what the next owner may change.
 * Also pausing and resuming the assigned partitions (a backoff). */
#include <stdio.h>

#include "leadflow/alloc.h"
#include "leadflow/log.h"
#include "pipeline_int.h"

/* Hand `assign` (NULL: nothing yet) to the consumer. librdkafka keeps a partition's pause flag
 * across assignments: ours on the partitions `held` is lifted. */
void lf_assign_consumer(lf_pipe_t *p, rd_kafka_topic_partition_list_t *assign,
                        rd_kafka_topic_partition_list_t *held)
{
    rd_kafka_assign(p->consumer, assign);
    if (p->paused) rd_kafka_resume_partitions(p->consumer, held);
    p->paused = 0;
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
    if (rc == LF_OK && lf_replay_targets(p, ids, next, parts->cnt) != LF_OK) {
        lf_err_set(err, LF_ERR, "%s", p->fatal_msg);
        rc = LF_ERR;
    }
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

/* Start consuming `parts` from the positions Redis holds. LF_ERR (err set) when Redis cannot
 * tell: nothing is assigned then. The one way partitions are started, on a rebalance and
 * when the loop retries an assignment that had to wait for Redis. */
static int lf_assign_start(lf_pipe_t *p, rd_kafka_topic_partition_list_t *parts, lf_err_t *err)
{
    if (lf_positions_from_store(p, parts, err) != LF_OK) return LF_ERR;
    lf_assign_consumer(p, parts, parts);
    p->positions_pending = 0;
    return LF_OK;
}

static void lf_rebalance_assign(lf_pipe_t *p, rd_kafka_topic_partition_list_t *parts)
{
    if (p->assignment) rd_kafka_topic_partition_list_destroy(p->assignment);
    p->assignment = rd_kafka_topic_partition_list_copy(parts);
    lf_err_t e = {0};
    if (lf_assign_start(p, parts, &e) != LF_OK) {
        /* Redis is the truth for where to start, and it is not reachable: take the
         * partitions but fetch nothing until the main loop can read the positions. */
        lf_set_state(p, LF_STATE_DEGRADED, e.msg);
        /* Owned in the group, but nothing assigned to the consumer yet: no offset lookup,
         * no fetch, no pause flag. (Parking them at the log end, paused, lost the race
         * with the later assign now and then: a partition then delivered nothing.) */
        lf_assign_consumer(p, NULL, parts);
        p->positions_pending = 1;
    }
    p->outbox_flush_pending = 1;
    p->last_event_ms = lf_now_ms(); /* the idle clock starts once there is work */
    p->ever_assigned = 1;
    p->kafka_ok_ms = lf_now_ms();
    lf_log("info", "assigned %d partition(s)%s", parts->cnt,
           p->positions_pending ? " (waiting for Redis to know where to start)" : "");
}

static void lf_rebalance_revoke(lf_pipe_t *p, rd_kafka_topic_partition_list_t *parts)
{
    /* The pause flag outlives the assignment: lift ours before letting go. */
    if (p->paused && p->assignment) rd_kafka_resume_partitions(p->consumer, p->assignment);
    rd_kafka_assign(p->consumer, NULL);
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

/* An assignment or a revoke, from the rebalance callback, after a write (deferred), or as an
 * event while leaving the group (lf_consumer_close_bounded). */
void lf_rebalance_apply(lf_pipe_t *p, rd_kafka_resp_err_t err,
                        rd_kafka_topic_partition_list_t *parts)
{
    if (err == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS)
        lf_rebalance_assign(p, parts);
    else
        lf_rebalance_revoke(p, parts);
}

/* @locality the pipeline's thread, inside rd_kafka_consumer_poll: the batch's collection
 * (lf_batch_collect), a backoff (lf_backoff) or a prefetch while a write is in flight
 * (lf_prefetch), where it is deferred to the write's end (lf_rebalance_deferred).
 * librdkafka waits for the assign/unassign call it makes. */
void lf_rebalance_cb(rd_kafka_t *rk, rd_kafka_resp_err_t err,
                     rd_kafka_topic_partition_list_t *parts, void *opaque)
{
    (void)rk; /* p->consumer */
    lf_pipe_t *p = opaque;
    if (p->in_write && !p->deferred_parts) {
        /* librdkafka waits for the assign/unassign call: it comes when the write ends. */
        p->deferred_err = err;
        p->deferred_parts = rd_kafka_topic_partition_list_copy(parts);
        lf_log("info", "rebalance during a write: handled when the write ends");
        return;
    }
    lf_rebalance_apply(p, err, parts);
}

/* After a write: the rebalance that arrived during it. */
void lf_rebalance_deferred(lf_pipe_t *p)
{
    if (!p->deferred_parts) return;
    rd_kafka_topic_partition_list_t *parts = p->deferred_parts;
    p->deferred_parts = NULL;
    lf_rebalance_apply(p, p->deferred_err, parts);
    rd_kafka_topic_partition_list_destroy(parts);
}

/* The loop's step for an assignment that waits for Redis to know where to start: LF_OK when
 * there is none (any more); LF_ERR after a backoff (Redis still away). */
int lf_assign_pending(lf_pipe_t *p, int *delay, lf_err_t *err)
{
    if (!p->positions_pending || !p->assignment) return LF_OK;
    rd_kafka_topic_partition_list_t *parts = rd_kafka_topic_partition_list_copy(p->assignment);
    int rc = lf_assign_start(p, parts, err);
    rd_kafka_topic_partition_list_destroy(parts);
    if (rc != LF_OK) {
        lf_set_state(p, LF_STATE_DEGRADED, err->msg);
        lf_backoff(p, delay);
        return LF_ERR;
    }
    p->last_event_ms = lf_now_ms();
    *delay = 100;
    lf_log("info", "start positions read from Redis: consuming");
    return LF_OK;
}

int lf_owned(const lf_pipe_t *p, int32_t partition)
{
    if (!p->assignment) return 0;
    for (int i = 0; i < p->assignment->cnt; i++)
        if (p->assignment->elems[i].partition == partition) return 1;
    return 0;
}

/* Pause or resume the assigned partitions. Only what this code paused is resumed:
 * librdkafka 2.0.2 rewinds a partition that is resumed without having been paused. */
void lf_pause_all(lf_pipe_t *p, int pause)
{
    /* (Partitions waiting for their start positions are not assigned to the consumer.) */
    if (!p->assignment || p->positions_pending || pause == p->paused) return;
    if (pause)
        rd_kafka_pause_partitions(p->consumer, p->assignment);
    else
        rd_kafka_resume_partitions(p->consumer, p->assignment);
    p->paused = pause;
}
