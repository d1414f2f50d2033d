/* Progress: once a batch's leads are written, its dead letters delivered and its
 * transitions produced, each partition's next offset and the counters of the events no lead
 * write counted are recorded in Redis (with the previous batch's delivered transitions
 * forgotten, in the same round trip); then the offsets are committed to Kafka, for monitoring
 * only: Redis's progress is where a new owner starts. */
#include "leadflow/alloc.h"
#include "pipeline_int.h"

/* How an item in `state` counts ("applied", "duplicates", ...); 0 (pending, replayed):
 * nothing but "consumed". In a lead's write its tentative state counts; in progress its
 * final one. */
lf_outcome_t lf_item_state_outcome(lf_item_state_t state)
{
    switch (state) {
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

/* The outcome an item counts with in the batch's progress, or 0: counted already by its lead's
 * write, or (a redelivery) when it was first applied; none is pending when a batch ends. */
static lf_outcome_t lf_item_outcome(const lf_item_t *it)
{
    return it->counted ? 0 : lf_item_state_outcome(it->state);
}

/* The batch's progress per partition (lf_writes_progress), in the batch arena. */
static size_t lf_batch_progress(lf_pipe_t *p, lf_progress_t **out)
{
    lf_writes_event_t *ev = lf_arena_alloc(&p->batch_arena, (p->nitems + 1) * sizeof(*ev));
    for (size_t i = 0; i < p->nitems; i++) {
        const rd_kafka_message_t *m = p->items[i].msg;
        ev[i] = (lf_writes_event_t){m->partition, m->offset, lf_item_outcome(&p->items[i])};
    }
    return lf_writes_progress(ev, p->nitems, p->part_max_ts, &p->batch_arena, out);
}

/* Instance counters (this process's view; a redelivery counts as a duplicate here). */
static void lf_count_batch(lf_pipe_t *p)
{
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
            if ((unsigned)p->items[i].bad.code < LF_BAD__COUNT)
                p->metrics.dead_by_reason[p->items[i].bad.code]++;
            break;
        case LF_ITEM_PENDING:
            break;
        }
    }
}

/* Kafka's committed offsets follow Redis's watermark: for lag monitoring and tools. */
static void lf_commit(lf_pipe_t *p, const lf_progress_t *prog, size_t nprog)
{
    rd_kafka_topic_partition_list_t *offs = rd_kafka_topic_partition_list_new((int)nprog);
    for (size_t k = 0; k < nprog; k++)
        rd_kafka_topic_partition_list_add(offs, p->cfg->topic_events, prog[k].partition)->offset =
            prog[k].next_offset;
    rd_kafka_commit(p->consumer, offs, 1);
    rd_kafka_topic_partition_list_destroy(offs);
    p->last_commit_ms = lf_wall_ms();
}

/* Record progress (next offsets and counters per partition) and forget the previous
 * batch's delivered transitions in their outboxes, in one round trip; then commit to Kafka
 * for monitoring. This batch's transitions stay in the outbox until they are delivered, so
 * progress need not wait for them. */
int lf_finish_batch(lf_pipe_t *p, lf_err_t *err)
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
    lf_count_batch(p);
    p->transitions_out += p->pubs.n;
    double took = (double)(lf_now_ms() - p->batch_start_mono) / 1000.0;
    lf_hist_observe(&p->metrics.batch_events, (double)p->nitems);
    lf_hist_observe(&p->metrics.batch_seconds, took);
    for (size_t k = 0; k < p->pubs.n; k++) /* handed to librdkafka in this batch */
        lf_hist_observe(&p->metrics.transition_seconds, took);
    /* The previous batch's are forgotten; this batch's are the ones to settle next. */
    lf_publist_t t = p->sent;
    p->sent = p->pubs;
    p->pubs = t;
    lf_publist_clear(&p->pubs);
    lf_commit(p, prog, nprog);
    return LF_OK;
}
