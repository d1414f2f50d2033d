/* Consume: Kafka's messages into the batch. What was prefetched while the last batch's writes
 * were in flight comes first, then what is waiting, for at most batch_max_ms after the first
 * event. Redeliveries of what Redis already recorded, and messages of partitions revoked
 * meanwhile, are dropped here; each message is decoded once. */
#include <string.h>

#include "leadflow/id_hash.h"
#include "leadflow/alloc.h"
#include "leadflow/log.h"
#include "pipeline_int.h"

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
    else if (p->id_hasher) /* ids.hmac_key: before anything reads an id */
        lf_event_hash_ids(&it->ev, p->id_hasher, arena);
}

void lf_batch_decode(lf_pipe_t *p)
{
    for (size_t i = 0; i < p->nitems; i++)
        if (!p->items[i].decoded) lf_item_decode(p, &p->items[i], &p->batch_arena);
}

/* While a batch's writes are in flight (called between chunks): poll and decode the next
 * batch's first messages. Bounded per call, so the replies of the chunks in flight are read
 * soon; stops at a rebalance (handled after the write) and when the next batch is full. */
void lf_prefetch(lf_pipe_t *p)
{
    if (!p->in_write || p->paused) return;
    for (int k = 0; k < 128 && p->npre < p->pre_max && !p->deferred_parts; k++) {
        rd_kafka_message_t *m = rd_kafka_consumer_poll(p->consumer, 0);
        if (!m) break;
        lf_item_t *it = lf_items_push(&p->pre, &p->npre, &p->cappre, m);
        if (!m->err) lf_item_decode(p, it, &p->pre_arena); /* an error: the batch handles it */
    }
}

/* Let go of the prefetched messages (shutting down, or replaying after a store loss). */
void lf_prefetch_drop(lf_pipe_t *p)
{
    for (size_t k = 0; k < p->npre; k++)
        rd_kafka_message_destroy(p->pre[k].msg);
    p->npre = 0;
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
    lf_set_state(p, LF_STATE_DEGRADED, rd_kafka_message_errstr(m));
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
    lf_items_push(&p->items, &p->nitems, &p->capitems, m);
    if (pre) p->items[p->nitems - 1] = *pre;
    return 1;
}

/* The prefetched messages first (decoded in pre_arena, which becomes the batch's arena).
 * Returns -1 if the input was lost to retention; sets *deadline at the first event. */
static int lf_batch_take_prefetched(lf_pipe_t *p, int64_t *deadline)
{
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
        if (r > 0 && !*deadline) *deadline = lf_now_ms() + p->cfg->batch_max_ms;
    }
    return fatal ? -1 : 0;
}

/* Collect a batch: what is waiting (plus batch_linger_ms), up to batch_max_events, and no
 * longer than batch_max_ms after the first event. Under load the previous batch's processing
 * time lets the next one grow (fewer round trips per event); at a low rate an event is not
 * held back waiting for company. Returns -1 if the input was lost to retention, else 0 (the
 * batch may be empty: idle). */
int lf_batch_collect(lf_pipe_t *p)
{
    int64_t deadline = 0;
    if (lf_batch_take_prefetched(p, &deadline) < 0) return -1;
    while (p->nitems < p->batch_cap && !*p->opts->stop) {
        int wait = 100;
        if (deadline) {
            int64_t left = deadline - lf_now_ms();
            if (left <= 0) break;
            wait = left > p->cfg->batch_linger_ms ? p->cfg->batch_linger_ms : (int)left;
        }
        rd_kafka_message_t *m = rd_kafka_consumer_poll(p->consumer, wait);
        rd_kafka_poll(p->producer, 0);
        if (p->revoked) lf_batch_drop_revoked(p);
        if (!m) break; /* nothing waiting (idle: heartbeat and check stop) */
        int r = lf_take_message(p, m, NULL);
        if (r < 0) return -1;
        if (r > 0 && !deadline) deadline = lf_now_ms() + p->cfg->batch_max_ms;
    }
    return 0;
}

void lf_batch_clear(lf_pipe_t *p)
{
    for (size_t i = 0; i < p->nitems; i++)
        rd_kafka_message_destroy(p->items[i].msg);
    p->nitems = 0;
    lf_arena_reset(&p->batch_arena);
}

/* Drop the items of partitions this instance no longer owns (after a revoke): the new
 * owner starts from the Redis watermark, which they never passed. */
void lf_batch_drop_revoked(lf_pipe_t *p)
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
