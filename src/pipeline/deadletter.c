/* Dead letters: an event that cannot be decoded goes to the dead-letter topic with why
 * (headers lf.reason, lf.error, its source; kafka.c builds the message). A batch's dead
 * letters are produced before its leads are written and awaited with its transitions, before
 * its progress is recorded: a dead letter is never lost, and the input never stalls on one
 * (what Kafka refuses is forwarded as a truncated copy). */
#include <stdio.h>

#include "leadflow/event.h"
#include "pipeline_int.h"

/* Why item it's dead letter is forwarded truncated ("" = it is not): over the producer's
 * message.max.bytes, or Kafka refused the original (the delivery report's error: the wait
 * reset `done` before lf_dlq_retry). */
static void lf_dlq_truncate_why(const lf_pipe_t *p, lf_item_t *it, char *why, size_t cap)
{
    /* headers and record framing: what the value must leave room for */
    if (!it->dlq_truncated && it->msg->len + it->msg->key_len + 1024 > p->dlq_max) {
        it->dlq_truncated = 1;
        snprintf(why, cap, "%zu bytes: over the producer's message.max.bytes (%zu)", it->msg->len,
                 p->dlq_max);
    } else if (!it->dlq_truncated && lf_kafka_refuses_message(it->dlq.err)) {
        it->dlq_truncated = 1;
        snprintf(why, cap, "Kafka refused the original: %s", rd_kafka_err2str(it->dlq.err));
    } else if (it->dlq_truncated) {
        snprintf(why, cap, "the original could not be forwarded");
    }
}

/* (Re)produce item i's dead letter. The original unchanged when the producer can take it;
 * else, or once Kafka refused it, a truncated copy with its size and digest: no input can
 * hold a partition. Transient failures back off; a stop request ends the wait. */
static int lf_dlq_retry(lf_pipe_t *p, size_t i)
{
    lf_item_t *it = &p->items[i];
    char why[256] = "";
    lf_dlq_truncate_why(p, it, why, sizeof(why));
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
        lf_set_state(p, LF_STATE_DEGRADED, e.msg);
        rd_kafka_poll(p->producer, delay);
        delay = delay * 2 > 2000 ? 2000 : delay * 2;
        lf_heartbeat(p, 0);
        if (lf_must_quit(p)) return LF_ERR;
    }
}

/* Produce the batch's dead letters (once); their delivery is awaited with the transitions',
 * before progress is recorded. */
int lf_produce_dead_letters(lf_pipe_t *p)
{
    for (size_t i = 0; i < p->nitems; i++) {
        lf_item_t *it = &p->items[i];
        /* A replay or a challenger counts bad input as the live run does, but the live run
         * dead-letters it: it is not sent twice. */
        if (it->state != LF_ITEM_DEAD || p->opts->no_dead_letters) {
            it->dlq.done = 1;
            continue;
        }
        if (it->dlq_sent) continue;
        if (lf_dlq_retry(p, i) != LF_OK) return LF_ERR; /* stopping */
        it->dlq_sent = 1;
    }
    return LF_OK;
}

int lf_await_dead_letters(lf_pipe_t *p)
{
    if (p->nitems == 0) return LF_OK;
    return lf_wait_deliveries(p, &p->items[0].dlq.done, p->nitems, sizeof(lf_item_t), lf_dlq_retry);
}
