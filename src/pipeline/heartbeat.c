/* The instance's state ("ok", "degraded", "stopped" and why), Kafka's reachability as
 * librdkafka reports it, and the heartbeat: the instance's hash in Redis, written at most
 * once a second, that `leadflow stats` reads. */
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "leadflow/log.h"
#include "pipeline_int.h"

const char *lf_state_name(lf_state_t s)
{
    switch (s) {
    case LF_STATE_OK:
        return "ok";
    case LF_STATE_DEGRADED:
        return "degraded";
    case LF_STATE_STOPPED:
        return "stopped";
    case LF_STATE_PAUSED:
        return "paused";
    }
    return "?";
}

/* A change of state or reason is logged once; the heartbeat shows the latest. */
void lf_set_state(lf_pipe_t *p, lf_state_t state, const char *reason)
{
    if (p->state != state || strcmp(p->reason, reason) != 0) {
        if (state == LF_STATE_OK)
            lf_log("info", "back to normal");
        else
            lf_log("warn", "%s: %s", lf_state_name(state), reason);
    }
    p->state = state;
    snprintf(p->reason, sizeof(p->reason), "%s", reason);
}

/* librdkafka's client-level errors (brokers down, authentication). Most clear by themselves;
 * until something arrives from Kafka again the instance shows as degraded (lf_kafka_health).
 * @locality the pipeline's thread: the producer's inside rd_kafka_poll / rd_kafka_flush of
 * the producer, the consumer's inside rd_kafka_consumer_poll (its main queue is redirected
 * there by rd_kafka_poll_set_consumer). */
void lf_kafka_error_cb(rd_kafka_t *rk, int code, const char *reason, void *opaque)
{
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
        if (strncmp(p->reason, "Kafka: ", 7) == 0) lf_set_state(p, LF_STATE_OK, "");
    } else if (p->state == LF_STATE_OK) {
        lf_set_state(p, LF_STATE_DEGRADED, p->kafka_err);
    }
}

int lf_partition_lags(lf_pipe_t *p, int32_t *part, int64_t *lag, int max)
{
    int n = 0;
    if (!p->assignment || !p->consumer) return 0;
    rd_kafka_topic_partition_list_t *pos = rd_kafka_topic_partition_list_copy(p->assignment);
    rd_kafka_position(p->consumer, pos);
    for (int i = 0; i < pos->cnt && n < max; i++) {
        int64_t lo, hi;
        if (rd_kafka_get_watermark_offsets(p->consumer, pos->elems[i].topic,
                                           pos->elems[i].partition, &lo, &hi) != 0)
            continue;
        int64_t at = pos->elems[i].offset >= 0 ? pos->elems[i].offset : lo;
        part[n] = pos->elems[i].partition;
        lag[n++] = hi > at ? hi - at : 0;
    }
    rd_kafka_topic_partition_list_destroy(pos);
    return n;
}

static int64_t lf_lag(lf_pipe_t *p)
{
    static int32_t part[LF_MAX_PARTITIONS]; /* the pipeline's thread only */
    static int64_t lags[LF_MAX_PARTITIONS];
    int64_t sum = 0;
    for (int i = lf_partition_lags(p, part, lags, LF_MAX_PARTITIONS) - 1; i >= 0; i--)
        sum += lags[i];
    return sum;
}

/* The events per second since the last measure, at most once a second. */
static void lf_heartbeat_rate(lf_pipe_t *p, int64_t now)
{
    if (now - p->rate_base_ms < 1000) return;
    p->events_per_s =
        (double)(p->events_in - p->rate_base_events) * 1000.0 / (double)(now - p->rate_base_ms);
    p->rate_base_ms = now;
    p->rate_base_events = p->events_in;
}

/* The heartbeat's fields, in the order `leadflow stats` shows them. */
static void lf_heartbeat_fields(lf_pipe_t *p, int64_t now, lf_argv_t *f)
{
    char host[128] = "";
    gethostname(host, sizeof(host) - 1);
    char parts[1024];
    size_t n = (size_t)snprintf(parts, sizeof(parts), "%s:", p->cfg->topic_events);
    for (int i = 0; p->assignment && i < p->assignment->cnt && n < sizeof(parts) - 16; i++)
        n += (size_t)snprintf(parts + n, sizeof(parts) - n, "%s%d", i ? "," : "",
                              p->assignment->elems[i].partition);
#define LF_HB_STR(k, v) (lf_argv_adds(f, k), lf_argv_adds(f, v))
#define LF_HB_INT(k, v) (lf_argv_adds(f, k), lf_argv_add_i64(f, (long long)(v)))
    LF_HB_STR("instance", p->instance);
    LF_HB_STR("host", host);
    LF_HB_INT("pid", getpid());
    LF_HB_STR("version", LF_VERSION);
    LF_HB_INT("started_ms", p->started_ms);
    LF_HB_INT("uptime_s", (now - p->started_mono) / 1000);
    LF_HB_STR("state", lf_state_name(p->state));
    LF_HB_STR("reason", p->reason);
    LF_HB_STR("partitions", parts);
    LF_HB_INT("lag", lf_lag(p));
    LF_HB_INT("events_in", p->events_in);
    LF_HB_INT("applied", p->applied);
    LF_HB_INT("duplicates", p->duplicates);
    LF_HB_INT("dead_lettered", p->dead);
    LF_HB_INT("filtered", p->filtered);
    LF_HB_INT("transitions_out", p->transitions_out);
    lf_argv_adds(f, "events_per_s");
    lf_argv_add_double(f, (double)(int64_t)(p->events_per_s * 10) / 10);
    LF_HB_STR("rules_version", p->cfg->model.version ? p->cfg->model.version : "");
    LF_HB_INT("reload_gen", p->reload_seen < 0 ? 0 : p->reload_seen);
    LF_HB_STR("reload_result", p->reload_result);
    LF_HB_INT("reload_ms", p->reload_ms);
    LF_HB_INT("last_commit_ms", p->last_commit_ms);
    LF_HB_INT("heartbeat_ms", lf_wall_ms());
    LF_HB_STR("store_loss", p->store_loss);
    LF_HB_INT("store_loss_ms", p->store_loss_ms);
#undef LF_HB_STR
#undef LF_HB_INT
}

/* The periodic progress line (log.progress_every): the counters, the rate and the lag. */
static void lf_progress_line(lf_pipe_t *p, int64_t now)
{
    int64_t every = (int64_t)p->cfg->log_progress_s * 1000;
    if (every <= 0 || now - p->progress_line_ms < every) return;
    p->progress_line_ms = now;
    char v[7][32];
    snprintf(v[0], sizeof(v[0]), "%llu", (unsigned long long)p->events_in);
    snprintf(v[1], sizeof(v[1]), "%llu", (unsigned long long)p->applied);
    snprintf(v[2], sizeof(v[2]), "%llu", (unsigned long long)p->duplicates);
    snprintf(v[3], sizeof(v[3]), "%llu", (unsigned long long)p->dead);
    snprintf(v[4], sizeof(v[4]), "%llu", (unsigned long long)p->transitions_out);
    snprintf(v[5], sizeof(v[5]), "%lld", (long long)lf_lag(p));
    snprintf(v[6], sizeof(v[6]), "%.1f", p->events_per_s);
    const char *f[] = {"events_in",       v[0], "applied",       v[1],
                       "duplicates",      v[2], "dead_lettered", v[3],
                       "transitions_out", v[4], "lag",           v[5],
                       "events_per_s",    v[6], "state",         lf_state_name(p->state)};
    lf_log_fields("info", f, sizeof(f) / sizeof(f[0]), "progress: %s events in, %s/s, lag %s", v[0],
                  v[6], v[5]);
}

/* Written once a second at most (force: now, the last one at shutdown); a failure to write
 * it shows in the state. */
void lf_heartbeat(lf_pipe_t *p, int force)
{
    int64_t now = lf_now_ms();
    lf_metrics_step(p); /* also from the waits: the thread is alive while it waits on purpose */
    if (!force && now - p->last_heartbeat_ms < 1000) return;
    lf_heartbeat_rate(p, now);
    lf_progress_line(p, now);
    p->last_heartbeat_ms = now;
    lf_kafka_health(p);
    lf_arena_t a;
    lf_arena_init(&a, 4096);
    lf_argv_t f;
    lf_argv_init(&f, &a);
    lf_heartbeat_fields(p, now, &f);
    lf_err_t err;
    if (p->store->ops->heartbeat(p->store, p->instance, &f, p->cfg->heartbeat_ttl_s, &p->ctl, &err))
        lf_set_state(p, LF_STATE_DEGRADED, err.msg);
    else
        p->ctl_read = 1;
    lf_argv_free(&f);
    lf_arena_free(&a);
}
