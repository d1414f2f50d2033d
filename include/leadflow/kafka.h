/* librdkafka set-up from the rules file: our defaults, then kafka.properties passed through
 * unchanged (so SASL/TLS and tuning need no code here). */
#ifndef LEADFLOW_KAFKA_H
#define LEADFLOW_KAFKA_H

#include <librdkafka/rdkafka.h>

#include "leadflow/config.h"

typedef enum { LF_KAFKA_CONSUMER, LF_KAFKA_PRODUCER } lf_kafka_role_t;

/* A configuration for a consumer (group member, manual commits, explicit start offsets) or
 * an idempotent producer. NULL with err set when a property is rejected. */
rd_kafka_conf_t *lf_kafka_conf(const lf_config_t *cfg, lf_kafka_role_t role, lf_err_t *err);

/* A dead letter that cannot be forwarded whole keeps this many bytes of the original. */
#define LF_DLQ_TRUNCATED_BYTES 4096

/* librdkafka's own log lines go through leadflow's logger (log.h: one format, one level)
 * instead of librdkafka's raw "%3|...|FAIL|" lines on stderr. */
void lf_kafka_route_logs(rd_kafka_conf_t *conf);

/* The producer's message.max.bytes as configured (kafka.properties may set it). */
size_t lf_kafka_max_message_bytes(rd_kafka_conf_t *conf);

/* 1 if a produce error (returned by produce() or in a delivery report) means these bytes will
 * not be accepted however often they are sent: forward a truncated copy instead. */
int lf_kafka_refuses_message(rd_kafka_resp_err_t e);

/* Produce a bad event to the dead-letter topic, with headers lf.reason, lf.error,
 * lf.source.topic, lf.source.partition, lf.source.offset. With `truncated_why` (why the
 * original cannot be forwarded) only its first LF_DLQ_TRUNCATED_BYTES go, with lf.truncated,
 * lf.truncated.why, lf.original.size and lf.original.sha256 (hex). `opaque` comes back in
 * the delivery report. Returns produce()'s error (0 = queued). */
rd_kafka_resp_err_t lf_kafka_dead_letter(rd_kafka_t *producer, const char *topic,
                                         const rd_kafka_message_t *m, const char *reason,
                                         const char *error, const char *truncated_why, void *opaque,
                                         lf_err_t *err);

#endif
