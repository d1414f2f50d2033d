/* librdkafka configuration and the dead-letter producer. */
#include <inttypes.h>
#include <openssl/sha.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "leadflow/kafka.h"
#include "leadflow/log.h"

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

/* librdkafka's own log lines, through leadflow's logger (one format, one level setting).
 * @locality librdkafka's internal threads: lf_log writes each line with one call. */
static void lf_kafka_log_cb(const rd_kafka_t *rk, int level, const char *fac, const char *buf)
{
    const char *lv = level <= 3 ? "error" : level == 4 ? "warn" : level <= 6 ? "info" : "debug";
    const char *fields[] = {"component", "librdkafka", "facility",
                            fac,         "client",     rd_kafka_name(rk)};
    lf_log_fields(lv, fields, sizeof(fields) / sizeof(fields[0]), "%s", buf);
}

void lf_kafka_route_logs(rd_kafka_conf_t *conf)
{
    rd_kafka_conf_set_log_cb(conf, lf_kafka_log_cb);
}

rd_kafka_conf_t *lf_kafka_conf(const lf_config_t *cfg, lf_kafka_role_t role, lf_err_t *err)
{
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    lf_kafka_route_logs(conf);
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

size_t lf_kafka_max_message_bytes(rd_kafka_conf_t *conf)
{
    char v[32];
    size_t n = sizeof(v);
    if (rd_kafka_conf_get(conf, "message.max.bytes", v, &n) != RD_KAFKA_CONF_OK) return 1000000;
    long long x = strtoll(v, NULL, 10);
    return x > 0 ? (size_t)x : 1000000;
}

int lf_kafka_refuses_message(rd_kafka_resp_err_t e)
{
    switch (e) {
    case RD_KAFKA_RESP_ERR__QUEUE_FULL: /* transient: deliveries drain the queue */
    case RD_KAFKA_RESP_ERR_NO_ERROR:
        return 0;
    default:
        /* librdkafka retries what is retriable by itself (message.timeout.ms=0): an error that
         * reaches us, or one produce() returns at once, is about this message (too large,
         * invalid) or will not clear by retrying the same bytes. */
        return 1;
    }
}

rd_kafka_resp_err_t lf_kafka_dead_letter(rd_kafka_t *producer, const char *topic,
                                         const rd_kafka_message_t *m, const char *reason,
                                         const char *error, const char *truncated_why, void *opaque,
                                         lf_err_t *err)
{
    char part[16], off[32], size[32], digest[2 * SHA256_DIGEST_LENGTH + 1];
    snprintf(part, sizeof(part), "%" PRId32, m->partition);
    snprintf(off, sizeof(off), "%" PRId64, m->offset);
    const char *src_topic = rd_kafka_topic_name(m->rkt);
    size_t len = m->len;
    rd_kafka_headers_t *h = rd_kafka_headers_new(8);
    rd_kafka_header_add(h, "lf.reason", -1, reason, -1);
    rd_kafka_header_add(h, "lf.error", -1, error, -1);
    rd_kafka_header_add(h, "lf.source.topic", -1, src_topic, -1);
    rd_kafka_header_add(h, "lf.source.partition", -1, part, -1);
    rd_kafka_header_add(h, "lf.source.offset", -1, off, -1);
    if (truncated_why) {
        /* The original cannot be forwarded: its first bytes, and what identifies it. */
        unsigned char md[SHA256_DIGEST_LENGTH];
        SHA256(m->payload ? m->payload : (const void *)"", m->len, md);
        lf_hex_encode(md, sizeof(md), digest);
        snprintf(size, sizeof(size), "%zu", m->len);
        if (len > LF_DLQ_TRUNCATED_BYTES) len = LF_DLQ_TRUNCATED_BYTES;
        rd_kafka_header_add(h, "lf.truncated", -1, "true", -1);
        rd_kafka_header_add(h, "lf.truncated.why", -1, truncated_why, -1);
        rd_kafka_header_add(h, "lf.original.size", -1, size, -1);
        rd_kafka_header_add(h, "lf.original.sha256", -1, digest, -1);
    }
    /* A key is an id: keep it unless it is itself what is too large. */
    size_t key_len = m->key_len <= LF_DLQ_TRUNCATED_BYTES || !truncated_why
                         ? m->key_len
                         : LF_DLQ_TRUNCATED_BYTES;
    rd_kafka_resp_err_t e = rd_kafka_producev(
        producer, RD_KAFKA_V_TOPIC(topic), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
        RD_KAFKA_V_KEY(m->key, key_len), RD_KAFKA_V_VALUE(m->payload, len), RD_KAFKA_V_HEADERS(h),
        RD_KAFKA_V_OPAQUE(opaque), RD_KAFKA_V_END);
    if (e) {
        rd_kafka_headers_destroy(h); /* owned by librdkafka only on success */
        lf_err_set(err, LF_ERR, "dead-letter produce to %s (%zu bytes%s): %s", topic, len,
                   truncated_why ? ", truncated" : "", rd_kafka_err2str(e));
    }
    return e;
}
