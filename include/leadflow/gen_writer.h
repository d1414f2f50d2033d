/* Where `leadflow gen` sends what the generator (leadflow/gen.h) makes: a file or Kafka
 * (src/tools/gen_writers.c), and the --stats summary. Not in the pure core: Kafka. */
#ifndef LEADFLOW_GEN_WRITER_H
#define LEADFLOW_GEN_WRITER_H

#include "leadflow/common.h"
#include "leadflow/gen.h"

/* Length-prefixed records (4-byte big-endian key length, key, 4-byte big-endian value
 * length, value); "-" is stdout. With `lines`, `key<TAB>value<LF>` instead (for JSON piped
 * into `kcat -P -K '\t'`). */
lf_gen_writer_t *lf_gen_writer_file(const char *path, int lines, lf_err_t *err);

/* Produces to Kafka: idempotent, linger.ms=50, batch.num.messages=10000, zstd, then the
 * `props` ("name=value", may override those); close waits for every delivery report and
 * fails if any message was not delivered. */
lf_gen_writer_t *lf_gen_writer_kafka(const char *brokers, const char *topic,
                                     const char *const *props, int nprops, lf_err_t *err);

/* The stats as one JSON object (the --stats file); "-" is stdout. */
int lf_gen_stats_write(const lf_gen_stats_t *st, const lf_gen_opts_t *o, const char *path,
                       lf_err_t *err);

#endif
