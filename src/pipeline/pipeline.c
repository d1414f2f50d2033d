/* `leadflow run`: start-up, the loop and shutdown. Each turn of the loop consumes a batch
 * (consume.c) and takes it through (batch.c: identity -> apply -> persist -> publish ->
 * progress -> commit); when the input is idle it forgets delivered transitions and runs the
 * decay sweep (sweep.c). pipeline_int.h lists the files of each step; docs/design.md has
 * the map. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "leadflow/id_hash.h"
#include "leadflow/log.h"
#include "pipeline_int.h"

void lf_instance_default(char *buf, size_t cap)
{
    char host[64] = "host";
    gethostname(host, sizeof(host) - 1);
    snprintf(buf, cap, "%s-%d", host, (int)getpid());
}

/*---- Start-up and shutdown -----------------------------------------------------------*/

static void lf_pipe_init(lf_pipe_t *p, lf_config_t *cfg, const lf_run_opts_t *opts)
{
    memset(p, 0, sizeof(*p));
    p->cfg = p->cfg_live = cfg;
    p->reload_seen = -1;
    p->opts = opts;
    p->started_mono = p->rate_base_ms = p->last_event_ms = lf_now_ms();
    p->started_ms = lf_wall_ms();
    p->state = LF_STATE_OK;
    p->trace = getenv("LF_TRACE_BATCH") != NULL; /* read once: not per batch */
    for (int i = 0; i < LF_MAX_PARTITIONS; i++)
        p->part_next[i] = -1;
    if (opts->instance)
        snprintf(p->instance, sizeof(p->instance), "%s", opts->instance);
    else
        lf_instance_default(p->instance, sizeof(p->instance));
    lf_metrics_init(&p->metrics);
    lf_arena_init(&p->batch_arena, 1 << 20);
    lf_arena_init(&p->pre_arena, 1 << 20);
    lf_arena_init(&p->attempt_arena, 1 << 20);
    lf_arena_init(&p->pubs.arena, 1 << 16);
    lf_arena_init(&p->sent.arena, 1 << 16);
    p->cache = lf_leadcache_new((size_t)cfg->cache_leads);
    /* In flight: one batch in the application, plus what librdkafka prefetches (bounded by
     * queued.max.messages.kbytes); consumption is paused while a batch cannot be stored. */
    p->batch_cap =
        (size_t)(cfg->batch_max_events < cfg->max_inflight_events ? cfg->batch_max_events
                                                                  : cfg->max_inflight_events);
    p->pre_max = p->batch_cap;
}

/* A Kafka client with the pipeline's callbacks. rd_kafka_new owns the configuration only on
 * success: it is destroyed here otherwise, so no path leaks it. */
static rd_kafka_t *lf_pipe_client(lf_pipe_t *p, lf_kafka_role_t role, lf_err_t *err)
{
    rd_kafka_conf_t *conf = lf_kafka_conf(p->cfg, role, err);
    if (!conf) return NULL; /* lf_kafka_conf destroyed it */
    rd_kafka_conf_set_error_cb(conf, lf_kafka_error_cb);
    rd_kafka_conf_set_opaque(conf, p);
    if (role == LF_KAFKA_PRODUCER) {
        rd_kafka_conf_set_dr_msg_cb(conf, lf_delivery_cb);
        p->dlq_max = lf_kafka_max_message_bytes(conf);
    } else {
        rd_kafka_conf_set_rebalance_cb(conf, lf_rebalance_cb);
    }
    char errstr[512];
    int producer = role == LF_KAFKA_PRODUCER;
    rd_kafka_t *rk = rd_kafka_new(producer ? RD_KAFKA_PRODUCER : RD_KAFKA_CONSUMER, conf, errstr,
                                  sizeof(errstr));
    if (!rk) {
        rd_kafka_conf_destroy(conf);
        lf_err_set(err, LF_ERR, "cannot create the Kafka %s: %s",
                   producer ? "producer" : "consumer", errstr);
    }
    return rk;
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

/* The store, the producer and the consumer (a member of the group from here on). The
 * consumer's main queue (its error callback) is served by rd_kafka_consumer_poll from here
 * on, like its rebalances. LF_ERR with err set: a start that cannot work. */
static int lf_pipe_open(lf_pipe_t *p, lf_err_t *err)
{
    const lf_config_t *cfg = p->cfg;
    if (cfg->ids_hmac_key &&
        !(p->id_hasher = lf_id_hasher_new(cfg->ids_hmac_key, strlen(cfg->ids_hmac_key)))) {
        lf_err_set(err, LF_ERR, "ids.hmac_key: OpenSSL could not set up HMAC-SHA-256");
        return LF_ERR;
    }
    p->store = lf_store_open(cfg, err);
    if (err->code == LF_STORE_REFUSED) return LF_ERR; /* a misconfiguration: say so at once */
    if (err->msg[0]) lf_set_state(p, LF_STATE_DEGRADED, err->msg);
    p->store->rtt = &p->metrics.redis_seconds;
    if (cfg->metrics_listen && cfg->metrics_listen[0] && !p->opts->no_metrics) {
        lf_err_t merr = {0};
        if (!(p->msrv = lf_metrics_start(cfg->metrics_listen, p->opts->metrics_port_offset,
                                         cfg->metrics_stuck_ms, &merr))) {
            *err = merr;
            return LF_ERR;
        }
    }
    if (!(p->producer = lf_pipe_client(p, LF_KAFKA_PRODUCER, err))) return LF_ERR;
    lf_warm_producer_metadata(p);
    if (!(p->consumer = lf_pipe_client(p, LF_KAFKA_CONSUMER, err))) return LF_ERR;
    rd_kafka_poll_set_consumer(p->consumer);
    rd_kafka_topic_partition_list_t *sub = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(sub, cfg->topic_events, RD_KAFKA_PARTITION_UA);
    rd_kafka_resp_err_t se = rd_kafka_subscribe(p->consumer, sub);
    rd_kafka_topic_partition_list_destroy(sub);
    if (se) {
        lf_err_set(err, LF_ERR, "cannot subscribe to %s: %s", cfg->topic_events,
                   rd_kafka_err2str(se));
        return LF_ERR;
    }
    if (cfg->redis_cluster_nodes)
        lf_log("info", "instance %s: consuming %s from %s as group %s; Redis Cluster %s",
               p->instance, cfg->topic_events, cfg->kafka_brokers, cfg->kafka_group,
               cfg->redis_cluster_nodes);
    else
        lf_log("info", "instance %s: consuming %s from %s as group %s; Redis %s:%d", p->instance,
               cfg->topic_events, cfg->kafka_brokers, cfg->kafka_group, cfg->redis_host,
               cfg->redis_port);
    return LF_OK;
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
            /* The revoke comes here as an event (the queue returns events: no callback). */
            if (rd_kafka_event_type(ev) == RD_KAFKA_EVENT_REBALANCE)
                lf_rebalance_apply(p, rd_kafka_event_error(ev),
                                   rd_kafka_event_topic_partition_list(ev));
            rd_kafka_event_destroy(ev);
        }

        if (!rd_kafka_consumer_closed(p->consumer))
            lf_log("warn", "could not leave the consumer group in time (Kafka away?): the "
                           "group hands the partitions on after session.timeout.ms");
    }
    rd_kafka_queue_destroy(q);
}

/* After the loop (rc: its status): abandon the batch in flight (nothing of it was
 * committed), say goodbye in the heartbeat and leave the group. */
static void lf_pipe_stop(lf_pipe_t *p, int rc, lf_err_t *err)
{
    lf_batch_clear(p);
    lf_prefetch_drop(p);
    /* Best effort, and only while the stop's grace lasts: both need Redis. */
    if (rc == 0 && !lf_must_quit(p) && lf_forget_sent(p, err) != LF_OK)
        lf_log("warn",
               "transitions delivered last stay in their outboxes (published again "
               "by the next owner): %s",
               err->msg);
    /* The last heartbeat says the instance is gone, so `leadflow stats` does not count it
     * as live (or, once silent, as stale) until the key expires. */
    p->state = LF_STATE_STOPPED;
    snprintf(p->reason, sizeof(p->reason), "%s", rc == 0 ? "clean shutdown" : err->msg);
    if (!lf_must_quit(p)) lf_heartbeat(p, 1);
    lf_log("info",
           "shutting down: %" PRIu64 " events in, %" PRIu64 " applied, %" PRIu64
           " duplicates, %" PRIu64 " dead-lettered, %" PRIu64 " transitions out",
           p->events_in, p->applied, p->duplicates, p->dead, p->transitions_out);
    lf_consumer_close_bounded(p); /* leaves the group */
}

/* Everything lf_pipe_init and lf_pipe_open made, whatever was made. */
static void lf_pipe_free(lf_pipe_t *p)
{
    lf_id_hasher_free(p->id_hasher);
    p->id_hasher = NULL;
    lf_metrics_stop(p->msrv);
    p->msrv = NULL;
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
}

/*---- The loop ------------------------------------------------------------------------*/

/* After an assignment (or a write whose reply was lost): publish what the outboxes hold.
 * LF_ERR after a backoff (Redis away). */
static int lf_outbox_step(lf_pipe_t *p, int *delay, lf_err_t *err)
{
    if (!p->outbox_flush_pending) return LF_OK;
    if (lf_flush_outboxes(p, err) != LF_OK) {
        lf_set_state(p, LF_STATE_DEGRADED, err->msg);
        lf_backoff(p, delay);
        return LF_ERR;
    }
    p->outbox_flush_pending = 0;
    if (*delay > 100) lf_set_state(p, LF_STATE_OK, ""); /* Redis answers again */
    *delay = 100;
    return LF_OK;
}

/* Nothing came in: clear the outboxes now rather than with the next batch (not after every
 * batch: that would cost a round trip and a wait per batch); the decay sweep, once a second. */
static void lf_idle_step(lf_pipe_t *p, int idle, lf_err_t *err)
{
    if (idle && p->sent.n && lf_forget_sent(p, err) != LF_OK)
        lf_set_state(p, LF_STATE_DEGRADED, err->msg);
    if (p->nitems == 0 && lf_now_ms() - p->last_sweep_ms >= 1000) {
        p->last_sweep_ms = lf_now_ms();
        if (lf_sweep(p, err) != LF_OK) lf_set_state(p, LF_STATE_DEGRADED, err->msg);
    }
}

/* `leadflow replay --switch` at work (<p>ctl:pause): no batch, no sweep, nothing written;
 * what was delivered leaves the outboxes, and the heartbeat says "paused". Returns 1 while
 * paused. */
static int lf_pause_step(lf_pipe_t *p, lf_err_t *err)
{
    if (!p->ctl.pause[0]) {
        if (p->state == LF_STATE_PAUSED) {
            lf_set_state(p, LF_STATE_OK, "");
            lf_pause_all(p, 0);
        }
        return 0;
    }
    if (p->state != LF_STATE_PAUSED) lf_pause_all(p, 1);
    if (p->sent.n && lf_forget_sent(p, err) != LF_OK) {
        lf_set_state(p, LF_STATE_DEGRADED, err->msg);
    } else {
        char why[200];
        snprintf(why, sizeof(why), "asked by %s", p->ctl.pause);
        lf_set_state(p, LF_STATE_PAUSED, why);
    }
    /* The consumer is not polled: a message it returned now would have to be kept. A long
     * pause (past max.poll.interval.ms) makes it leave the group; it joins again when
     * polled, and starts from Redis's positions as after any rebalance. */
    struct timespec ts = {0, 100 * 1000000L};
    nanosleep(&ts, NULL);
    return 1;
}

/* The live state moved to another prefix (a switch): this handle's keys are no longer it. */
static int lf_switched(const lf_pipe_t *p)
{
    if (!p->ctl_read) return 0;
    const char *active = p->ctl.active[0] ? p->ctl.active : p->cfg->redis_prefix;
    return strcmp(active, p->store->prefix) != 0;
}

/* Until a stop signal, a fatal condition, or (exit_idle_ms) an idle input. Returns the exit
 * status: 0, 3 (input lost to retention), LF_PIPE_RESTART (the live state was switched to
 * another prefix) or fatal_rc (err says why). */
static int lf_pipe_loop(lf_pipe_t *p, lf_err_t *err)
{
    const lf_run_opts_t *opts = p->opts;
    int delay = 100;
    while (!*opts->stop && !p->fatal_rc) {
        if (lf_switched(p)) {
            lf_log("info", "the live state was switched to %s: restarting on it",
                   p->ctl.active[0] ? p->ctl.active : p->cfg->redis_prefix);
            return LF_PIPE_RESTART;
        }
        if (lf_pause_step(p, err)) {
            lf_heartbeat(p, 0);
            continue;
        }
        lf_reload_check(p);
        if (lf_assign_pending(p, &delay, err) != LF_OK) continue;
        if (lf_outbox_step(p, &delay, err) != LF_OK) continue;
        /* Nothing is being retried here: what a backoff paused is consumed again. (A batch
         * that gets through resumes too, but after a failed outbox flush no batch could
         * come: the partitions stayed paused for good.) */
        lf_pause_all(p, 0);
        if (lf_batch_collect(p) < 0) {
            lf_err_set(err, LF_ERR, "stopping: input lost to retention");
            return 3;
        }
        int idle = p->nitems == 0;
        if (p->nitems) {
            p->last_event_ms = lf_now_ms();
            if (lf_batch_process(p) != LF_OK) break;
            lf_batch_clear(p);
        }
        lf_idle_step(p, idle, err);
        if (lf_reindex_step(p, err) != LF_OK) lf_set_state(p, LF_STATE_DEGRADED, err->msg);
        lf_heartbeat(p, 0);
        if (lf_replay_done(p)) {
            lf_log("info", "replay: caught up with the end of every partition");
            break;
        }
        if (opts->exit_idle_ms > 0 && p->ever_assigned &&
            lf_now_ms() - p->last_event_ms > opts->exit_idle_ms) {
            lf_log("info", "idle for %d ms: exiting", opts->exit_idle_ms);
            break;
        }
    }
    if (!p->fatal_rc) return 0;
    lf_err_set(err, LF_ERR, "%s", p->fatal_msg);
    lf_log("error", "%s", p->fatal_msg);
    return p->fatal_rc;
}

int lf_pipeline_run(lf_config_t *cfg, const lf_run_opts_t *opts)
{
    lf_pipe_t pp, *p = &pp;
    int rc;
    do {
        lf_err_t err = {0};
        lf_pipe_init(p, cfg, opts);
        if (lf_pipe_open(p, &err) == LF_OK) {
            rc = lf_pipe_loop(p, &err);
            lf_pipe_stop(p, rc == LF_PIPE_RESTART ? 0 : rc, &err);
        } else {
            lf_log("error", "%s", err.msg);
            rc = 2;
        }
        lf_pipe_free(p);
        /* After a switch the rules file is read again: the switch's rules are expected
         * there (README, "Switching"). */
        if (rc == LF_PIPE_RESTART) lf_reload_model(cfg, opts);
    } while (rc == LF_PIPE_RESTART && !*opts->stop);
    return rc == LF_PIPE_RESTART ? 0 : rc;
}
