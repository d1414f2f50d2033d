/* `leadflow gen`: a realistic, reproducible synthetic event stream (CONTRACT §2) for demos,
 * tests and benchmarks: B2B leads with Zipf-skewed activity, anonymous visitors who later
 * identify, UTM-tagged page views, QR scans, forms, e-mails, events, sales feedback, plus
 * duplicates and malformed events at given rates.
 *
 * The same seed and options give a byte-identical stream. Records go to one writer interface
 * (a file of length-prefixed records, Kafka, or the caller's own writer, e.g. in tests). */
#ifndef LEADFLOW_GEN_H
#define LEADFLOW_GEN_H

#include <stdint.h>

#include "leadflow/common.h"
#include "leadflow/event.h"

typedef enum { LF_GEN_MSGPACK = 0, LF_GEN_JSON } lf_gen_format_t;

typedef struct {
    uint64_t leads;  /* lead population (default 10000) */
    uint64_t events; /* records to emit, duplicates and bad ones included (default 100000) */
    uint64_t seed;   /* default 1 */
    lf_gen_format_t format;
    double dup_rate;  /* share of records that re-send an earlier event (default 0.01) */
    double bad_rate;  /* share of malformed records (default 0.005) */
    double anon_rate; /* share of leads first seen anonymously, then identified (0.3) */
    double rate_eps;  /* target records/s; 0 = as fast as possible */
    int64_t start_ms; /* event time of the first record (default 2026-01-01T00:00:00Z) */
    double span_days; /* event time spread (default 30) */
    double zipf;      /* activity skew exponent (default 0.9) */
} lf_gen_opts_t;

void lf_gen_opts_default(lf_gen_opts_t *o);

/* What was generated. valid + duplicates + bad == events; a processor that drops
 * duplicates and dead-letters bad input should count the same. */
typedef struct {
    uint64_t events;
    uint64_t valid;      /* first sendings of well-formed events */
    uint64_t duplicates; /* re-sendings: same key and bytes (same messageId) as an earlier one */
    uint64_t bad;
    uint64_t bad_by_reason[LF_BAD__COUNT]; /* the lf_bad_t a decoder should report */
    uint64_t by_kind[LF_KIND__COUNT];      /* valid events per kind */
    uint64_t leads;          /* distinct people in valid events (a visitor who identified
                                counts once, with the lead) */
    uint64_t identified;     /* of those, known by userId */
    uint64_t anonymous_only; /* of those, never identified */
    uint64_t bytes;          /* key + value bytes of all records */
} lf_gen_stats_t;

/* One generated record, handed to the writer. key/val are valid only during the call. */
typedef struct {
    const char *key;
    uint32_t key_len;
    const uint8_t *val;
    uint32_t val_len;
    lf_bad_t bad;   /* LF_BAD_NONE for a well-formed event */
    int dup;        /* a re-sending of an earlier record (same bytes) */
    lf_kind_t kind; /* for well-formed events */
} lf_gen_rec_t;

/* Where records go. write returns LF_OK or LF_ERR with *err set; the generator stops at the
 * first error. close (may be NULL) flushes, waits and frees the writer. */
typedef struct lf_gen_writer lf_gen_writer_t;
struct lf_gen_writer {
    int (*write)(lf_gen_writer_t *w, const lf_gen_rec_t *rec, lf_err_t *err);
    int (*close)(lf_gen_writer_t *w, lf_err_t *err);
    void *ctx; /* the writer's own */
};

/* Length-prefixed records (4-byte big-endian key length, key, 4-byte big-endian value
 * length, value); "-" is stdout. With `lines`, `key<TAB>value<LF>` instead (for JSON piped
 * into `kcat -P -K '\t'`). */
lf_gen_writer_t *lf_gen_writer_file(const char *path, int lines, lf_err_t *err);

/* Produces to Kafka: idempotent, linger.ms=50, batch.num.messages=10000, zstd, then the
 * `props` ("name=value", may override those); close waits for every delivery report and
 * fails if any message was not delivered. */
lf_gen_writer_t *lf_gen_writer_kafka(const char *brokers, const char *topic,
                                     const char *const *props, int nprops, lf_err_t *err);

/* Generates o->events records into w. No allocation per record. */
int lf_gen_run(const lf_gen_opts_t *o, lf_gen_writer_t *w, lf_gen_stats_t *st, lf_err_t *err);

/* The stats as one JSON object (the --stats file). */
int lf_gen_stats_write(const lf_gen_stats_t *st, const lf_gen_opts_t *o, const char *path,
                       lf_err_t *err);

#endif
