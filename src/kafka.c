/* librdkafka configuration and the dead-letter producer. */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "leadflow/kafka.h"

static int lf_conf_set(rd_kafka_conf_t *conf, const char *k, const char *v, lf_err_t *err)
{
    char errstr[512];
    if (rd_kafka_conf_set(conf, k, v, errstr, sizeof(errstr)) != RD_KAFKA_CONF_OK) {
        lf_err_set(err, LF_ERR, "kafka property %s=%s: %s", k, v, errstr);
        return LF_ERR;
    }
    return LF_OK;
}

/* librdkafka warns when a client gets a property of the other side: keep the shared
 * kafka.properties list quiet by giving each side only what it uses. Prefixes. */
static const char *const lf_consumer_only[] = {
    "group.",
    "session.timeout.ms",
    "heartbeat.interval.ms",
    "partition.assignment.strategy",
    "max.poll.interval.ms",
    "enable.auto.",
    "auto.commit.",
    "auto.offset.reset",
    "fetch.",
    "queued.",
    "isolation.level",
    "check.crcs",
    "enable.partition.eof",
    "offset.store.",
    "consume.callback.max.messages",
    "allow.auto.create.topics",
    "coordinator.query.",
};
static const char *const lf_producer_only[] = {
    "acks",
    "request.required.acks",
    "linger.ms",
    "queue.buffering.",
    "batch.",
    "compression.",
    "compression.codec",
    "enable.idempotence",
    "enable.gapless.guarantee",
    "message.timeout.ms",
    "delivery.timeout.ms",
    "transactional.id",
    "transaction.timeout.ms",
    "retries",
    "message.send.max.retries",
    "retry.backoff.ms",
    "partitioner",
    "sticky.partitioning.",
    "max.in.flight",
    "queuing.strategy",
    "request.timeout.ms",
    "delivery.report.only.error",
};

static int lf_prop_for_other_side(const char *key, lf_kafka_role_t role)
{
    const char *const *list = role == LF_KAFKA_CONSUMER ? lf_producer_only : lf_consumer_only;
    size_t n = role == LF_KAFKA_CONSUMER ? sizeof(lf_producer_only) / sizeof(*lf_producer_only)
                                         : sizeof(lf_consumer_only) / sizeof(*lf_consumer_only);
    for (size_t i = 0; i < n; i++)
        if (strncmp(key, list[i], strlen(list[i])) == 0) return 1;
    return 0;
}

rd_kafka_conf_t *lf_kafka_conf(const lf_config_t *cfg, lf_kafka_role_t role, lf_err_t *err)
{
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    static const char *const consumer_defaults[][2] = {
        {"enable.auto.commit", "false"},
        {"enable.auto.offset.store", "false"},
        /* Start offsets are always explicit (the Redis watermark, else the beginning), so
         * falling below the log start is an error we report, never a silent jump. */
        {"auto.offset.reset", "error"},
        /* The eager assignors: librdkafka 2.0.2's cooperative-sticky has known hangs. */
        {"partition.assignment.strategy", "range,roundrobin"},
        {"enable.partition.eof", "false"},
        {"reconnect.backoff.max.ms", "1000"},
        {"fetch.wait.max.ms", "100"},
        {"queued.max.messages.kbytes", "65536"},
    };
    static const char *const producer_defaults[][2] = {
        {"enable.idempotence", "true"},
        {"acks", "all"},
        /* A batch's transitions are produced together and awaited: lingering only delays. */
        {"linger.ms", "1"},
        {"reconnect.backoff.max.ms", "1000"},
        {"message.timeout.ms", "0"}, /* never give up: we wait for the broker */
    };
    if (lf_conf_set(conf, "bootstrap.servers", cfg->kafka_brokers, err)) goto fail;
    if (lf_conf_set(conf, "client.id", "leadflow", err)) goto fail;
    if (role == LF_KAFKA_CONSUMER) {
        if (lf_conf_set(conf, "group.id", cfg->kafka_group, err)) goto fail;
        for (size_t i = 0; i < sizeof(consumer_defaults) / sizeof(consumer_defaults[0]); i++)
            if (lf_conf_set(conf, consumer_defaults[i][0], consumer_defaults[i][1], err)) goto fail;
    } else {
        for (size_t i = 0; i < sizeof(producer_defaults) / sizeof(producer_defaults[0]); i++)
            if (lf_conf_set(conf, producer_defaults[i][0], producer_defaults[i][1], err)) goto fail;
    }
    for (size_t i = 0; i < cfg->nkafka_props; i++) {
        const char *k = cfg->kafka_props[i].key;
        if (lf_prop_for_other_side(k, role)) continue;
        char errstr[256];
        /* A property only one side knows is fine on the other: skip it there. */
        rd_kafka_conf_res_t r =
            rd_kafka_conf_set(conf, k, cfg->kafka_props[i].value, errstr, sizeof(errstr));
        if (r == RD_KAFKA_CONF_INVALID) {
            lf_err_set(err, LF_ERR, "kafka property %s: %s", k, errstr);
            goto fail;
        }
    }
    return conf;
fail:
    rd_kafka_conf_destroy(conf);
    return NULL;
}

int lf_kafka_dead_letter(rd_kafka_t *producer, const char *topic, const rd_kafka_message_t *m,
                         const char *reason, const char *error, void *opaque, lf_err_t *err)
{
    char part[16], off[32];
    snprintf(part, sizeof(part), "%" PRId32, m->partition);
    snprintf(off, sizeof(off), "%" PRId64, m->offset);
    const char *src_topic = rd_kafka_topic_name(m->rkt);
    rd_kafka_resp_err_t e = rd_kafka_producev(
        producer, RD_KAFKA_V_TOPIC(topic), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
        RD_KAFKA_V_KEY(m->key, m->key_len), RD_KAFKA_V_VALUE(m->payload, m->len),
        RD_KAFKA_V_HEADER("lf.reason", reason, -1), RD_KAFKA_V_HEADER("lf.error", error, -1),
        RD_KAFKA_V_HEADER("lf.source.topic", src_topic, -1),
        RD_KAFKA_V_HEADER("lf.source.partition", part, -1),
        RD_KAFKA_V_HEADER("lf.source.offset", off, -1), RD_KAFKA_V_OPAQUE(opaque), RD_KAFKA_V_END);
    if (e) {
        lf_err_set(err, LF_ERR, "dead-letter produce to %s: %s", topic, rd_kafka_err2str(e));
        return LF_ERR;
    }
    return LF_OK;
}
