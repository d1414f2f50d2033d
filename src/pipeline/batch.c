/* One batch through, after it was consumed: the fence (does Redis still hold what this
 * instance wrote?), dead letters, the leads (attempts until none lost to a change elsewhere),
 * transitions, progress. While Redis or Kafka is unavailable the batch is retried with a
 * backoff, its partitions paused; it gives up only when stopping. */
#include <time.h>
#include <string.h>

#include "leadflow/log.h"
#include "pipeline_int.h"

/* Sleep for the backoff while serving the consumer (heartbeats, rebalances): partitions
 * are paused, so nothing new arrives. */
void lf_backoff(lf_pipe_t *p, int *delay_ms)
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

/* Through again: back to "ok", and what a backoff paused is consumed again. */
static void lf_batch_recovered(lf_pipe_t *p)
{
    if (p->state == LF_STATE_OK) return;
    lf_set_state(p, LF_STATE_OK, ""); /* Redis answers again */
    lf_pause_all(p, 0);
}

/* Attempts at the batch's leads until every event's lead is written (a lead changed
 * elsewhere meanwhile is reloaded), at most LF_MAX_ATTEMPTS. A rebalance that came during a
 * write is handled after it. */
static int lf_batch_leads(lf_pipe_t *p, lf_err_t *err)
{
    int pending = 1, attempts = 0, rc = LF_OK;
    while (pending && rc == LF_OK) {
        if (++attempts > LF_MAX_ATTEMPTS) {
            lf_err_set(err, LF_ERR,
                       "leads keep changing under this instance (another "
                       "instance writing the same leads?)");
            return LF_ERR;
        }
        rc = lf_attempt(p, &pending, err);
        lf_rebalance_deferred(p);
        /* What another instance holds (a lead being written, a visitor a Redis Cluster merge
         * has claimed) is usually free within milliseconds: back off a little more each time. */
        if (rc == LF_OK && pending) {
            struct timespec ts = {0, (long)attempts * 2000000L};
            nanosleep(&ts, NULL);
        }
    }
    return rc;
}

typedef enum {
    LF_BATCH_DONE,  /* through: progress recorded */
    LF_BATCH_RETRY, /* Redis failed (err says why): again after a backoff */
    LF_BATCH_STOP,  /* a wait gave up: stopping */
} lf_batch_step_t;

/* One try at the batch, the fence passed. */
static lf_batch_step_t lf_batch_try(lf_pipe_t *p, lf_err_t *err)
{
    int64_t t0 = lf_now_ms();
    if (lf_produce_dead_letters(p) != LF_OK) return LF_BATCH_STOP;
    int64_t t1 = lf_now_ms();
    int rc = lf_batch_leads(p, err);
    int64_t t2 = lf_now_ms();
    if (rc == LF_OK) lf_batch_recovered(p);
    if (rc == LF_OK && lf_produce_pubs(p) != LF_OK) return LF_BATCH_STOP;
    if (rc == LF_OK && lf_await_dead_letters(p) != LF_OK) return LF_BATCH_STOP;
    int64_t t3 = lf_now_ms();
    size_t npubs = p->pubs.n;
    if (rc == LF_OK) rc = lf_finish_batch(p, err);
    if (p->trace)
        lf_log("trace",
               "batch %zu events: produce dead letters %lld ms, leads %lld ms, publish %zu + "
               "await "
               "dead letters %lld ms, finish %lld ms",
               p->nitems, (long long)(t1 - t0), (long long)(t2 - t1), npubs, (long long)(t3 - t2),
               (long long)(lf_now_ms() - t3));
    if (rc != LF_OK) return LF_BATCH_RETRY;
    lf_batch_recovered(p);
    return LF_BATCH_DONE;
}

/* Everything after consuming: dead letters, leads, transitions, progress. Retries with
 * backoff while Redis or Kafka is unavailable; returns LF_ERR only when stopping. */
int lf_batch_process(lf_pipe_t *p)
{
    p->batch_start_mono = lf_now_ms();
    lf_batch_decode(p);
    int delay = 100;
    lf_err_t err = {0};
    for (;;) {
        if (p->revoked) lf_batch_drop_revoked(p);
        if (p->nitems == 0) return LF_OK;
        int fenced = lf_fence(p, &err);
        if (fenced == LF_STORE_LOST) return LF_OK; /* dropped: its events come again */
        if (p->fatal_rc) return LF_ERR;            /* lf_store_lost: the input to replay is gone */
        if (fenced == LF_OK) {
            lf_batch_step_t s = lf_batch_try(p, &err);
            if (s == LF_BATCH_DONE) return LF_OK;
            if (s == LF_BATCH_STOP) return LF_ERR;
            /* A write whose reply was lost may have been applied, outbox entries included;
             * its events then replay as no-ops and would not publish them: flush the
             * outboxes once the batch is through. */
            p->outbox_flush_pending = 1;
        }
        lf_set_state(p, LF_STATE_DEGRADED, err.msg);
        if (lf_must_quit(p)) return LF_ERR;
        lf_backoff(p, &delay);
        if (lf_must_quit(p)) return LF_ERR;
    }
}
