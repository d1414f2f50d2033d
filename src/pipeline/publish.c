/* Publishing transitions. A lead's write puts its transitions in its partition's outbox in
 * Redis (atomically with the lead); they are then produced to the transitions topic and, once
 * Kafka acknowledged them, forgotten in the outbox (with the next batch's progress, or when
 * idle). A batch does not wait for its own deliveries, but the next one waits for them before
 * producing, so a lead's transitions reach the topic in order even when a delivery fails.
 * After an assignment, what a previous owner left in the outboxes is published again.
 * Also the delivery reports and the wait for them, which dead letters share. */
#include <stdio.h>
#include <string.h>

#include "leadflow/alloc.h"
#include "leadflow/log.h"
#include "pipeline_int.h"

/*---- Deliveries -----------------------------------------------------------------------*/

/* A produced message's delivery report: into the lf_delivery_t it was produced with.
 * @locality the pipeline's thread, inside rd_kafka_poll / rd_kafka_flush of the producer. */
void lf_delivery_cb(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
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

/* Wait until every delivery flag is set (flags: n of them, `stride` bytes apart), polling
 * the producer; re-produce failed ones through `retry`, with a backoff between rounds (a
 * refusal comes back at once). LF_ERR only when stopping. */
int lf_wait_deliveries(lf_pipe_t *p, int *flags, size_t n, size_t stride,
                       int (*retry)(lf_pipe_t *p, size_t i))
{
    int64_t since = lf_now_ms(), next_warn = since + 10000, retry_at = 0;
    int delay = 0;
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
            lf_set_state(p, LF_STATE_DEGRADED, why);
            next_warn += 10000;
        }
        rd_kafka_poll(p->producer, 50);
        lf_heartbeat(p, 0); /* a stuck produce shows in the heartbeat, not as silence */
        if (lf_must_quit(p)) return LF_ERR;
    }
}

/*---- Transitions ----------------------------------------------------------------------*/

void lf_pub_add(lf_pipe_t *p, int32_t partition, const char *lead_id, const char *id,
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
        lf_set_state(p, LF_STATE_DEGRADED, rd_kafka_err2str(e));
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
int lf_produce_pubs(lf_pipe_t *p)
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
size_t lf_pubs_by_partition(lf_publist_t *l, lf_outbox_ids_t **out)
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

void lf_publist_clear(lf_publist_t *l)
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
int lf_forget_sent(lf_pipe_t *p, lf_err_t *err)
{
    if (lf_forget_delivered(p, &p->sent, lf_sent_retry, err) != LF_OK) return LF_ERR;
    lf_publist_clear(&p->sent);
    return LF_OK;
}

/* Outside a batch (outbox flush, decay sweep): publish p->pubs, forget them in their
 * outboxes once delivered, count them, and clear the list. */
int lf_publish_and_forget(lf_pipe_t *p, lf_err_t *err)
{
    int rc = lf_produce_pubs(p);
    if (rc == LF_OK) rc = lf_forget_delivered(p, &p->pubs, lf_pubs_retry, err);
    p->transitions_out += p->pubs.n;
    lf_publist_clear(&p->pubs);
    return rc;
}

/* After an assignment: publish what a previous owner left in the outboxes. */
int lf_flush_outboxes(lf_pipe_t *p, lf_err_t *err)
{
    if (!p->assignment) return LF_OK;
    /* Not the ones this instance has just published. */
    if (lf_forget_sent(p, err) != LF_OK) return LF_ERR;
    size_t np = (size_t)p->assignment->cnt;
    int32_t *parts = lf_malloc((np + 1) * sizeof(*parts));
    for (size_t i = 0; i < np; i++)
        parts[i] = p->assignment->elems[i].partition;
    lf_outbox_entry_t *e = NULL;
    size_t n = 0;
    int rc =
        p->store->ops->outbox_load(p->store, p->cfg->topic_transitions, parts, np, &e, &n, err);
    lf_free(parts);
    if (rc != LF_OK || !n) return rc ? LF_ERR : LF_OK;
    lf_log("info", "publishing %zu transition(s) left in the outboxes of %zu partition(s)", n, np);
    for (size_t k = 0; k < n; k++) {
        /* transition_id is "<lead id>:<seq>": the key is the part before the colon. */
        char *colon = strrchr(e[k].id, ':');
        size_t kl = colon ? (size_t)(colon - e[k].id) : strlen(e[k].id);
        char lead[LF_ID_MAX + 1];
        snprintf(lead, sizeof(lead), "%.*s", (int)kl, e[k].id);
        lf_pub_add(p, e[k].partition, lead, e[k].id, e[k].payload, e[k].len);
    }
    rc = lf_publish_and_forget(p, err);
    lf_outbox_entries_free(e, n);
    return rc ? LF_ERR : LF_OK;
}
