/* The store fence: a Redis that lost data under this instance (flushed, restarted empty or
 * from an older snapshot, a lagging replica promoted). Noticed before every write (lf_fence)
 * and on assignment (lf_check_committed); what was built on the lost state is dropped and the
 * owned partitions replay from what Redis still holds, if Kafka still retains that input;
 * if it does not, the instance stops with an error naming what is lost: never guess.
 * docs/design.md, "A Redis that lost data". */
#include <stdio.h>

#include "leadflow/alloc.h"
#include "leadflow/log.h"
#include "pipeline_int.h"

/* Remember a loss for the heartbeat and `leadflow stats`, and say it loudly. */
void lf_store_loss_note(lf_pipe_t *p, const char *what)
{
    lf_fmt(p->store_loss, sizeof(p->store_loss), "%s", what); /* cut to fit */
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
void lf_check_committed(lf_pipe_t *p, const rd_kafka_topic_partition_list_t *parts,
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

/* Wait until librdkafka holds no message of ours: delivery reports point into the batch and
 * the transition lists, which a loss empties. Bounded by a stop request. */
static void lf_drain_producer(lf_pipe_t *p)
{
    while (rd_kafka_outq_len(p->producer) > 0 && !lf_must_quit(p)) {
        rd_kafka_flush(p->producer, 100);
        lf_heartbeat(p, 0);
    }
}

/* The positions to replay from (parts), or LF_ERR: Kafka cannot say what it retains, or no
 * longer holds the input to replay (then fatal_rc, fatal_msg and err->code 3 say so). */
static int lf_replay_positions(lf_pipe_t *p, const char *why, const int32_t *ids,
                               const int64_t *next, size_t n,
                               rd_kafka_topic_partition_list_t *parts, lf_err_t *err)
{
    char gone[1024] = "";
    size_t gl = 0;
    for (size_t i = 0; i < n; i++) {
        int64_t lo = 0, hi = 0;
        rd_kafka_resp_err_t e = rd_kafka_query_watermark_offsets(p->consumer, p->cfg->topic_events,
                                                                 ids[i], &lo, &hi, 5000);
        if (e) {
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
    if (!gl) return LF_OK;
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

/* Redis lost data: forget everything cached and replay every owned partition from what Redis
 * still holds (lf_replay_positions). Returns LF_STORE_LOST (handled: the batch in flight is
 * dropped, its events come again) or LF_ERR with err->code 3 (stop). */
static int lf_store_lost(lf_pipe_t *p, const char *why, const int32_t *ids, const int64_t *next,
                         const int64_t *ts, size_t n, lf_err_t *err)
{
    lf_store_loss_note(p, why);
    lf_drain_producer(p);
    rd_kafka_topic_partition_list_t *parts = rd_kafka_topic_partition_list_new((int)n);
    if (lf_replay_positions(p, why, ids, next, n, parts, err) != LF_OK) {
        rd_kafka_topic_partition_list_destroy(parts);
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
    lf_assign_consumer(p, parts, parts);
    rd_kafka_topic_partition_list_destroy(parts);
    p->outbox_flush_pending = 1; /* what the outboxes still hold is published again */
    lf_log("warn", "replaying %zu partition(s) from the positions Redis still holds", n);
    lf_set_state(p, LF_STATE_DEGRADED, "Redis lost data: replaying from Kafka");
    return LF_STORE_LOST;
}

/* Before writing: does Redis still hold what this instance wrote? The store epoch is the
 * one it wrote under, and no owned partition's next offset is behind what it recorded.
 * Returns LF_OK, LF_STORE_LOST (handled, see lf_store_lost) or LF_ERR. */
int lf_fence(lf_pipe_t *p, lf_err_t *err)
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
