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

/* Produce a bad event to the dead-letter topic unchanged, with headers lf.reason, lf.error,
 * lf.source.topic, lf.source.partition, lf.source.offset. `opaque` comes back in the
 * delivery report. */
int lf_kafka_dead_letter(rd_kafka_t *producer, const char *topic, const rd_kafka_message_t *m,
                         const char *reason, const char *error, void *opaque, lf_err_t *err);

#endif
