/* `leadflow gen`: a realistic, reproducible synthetic event stream (docs/contract.md "Events in")
 * for demos, tests and benchmarks: B2B leads with Zipf-skewed activity, anonymous visitors who
 * later identify, UTM-tagged page views, QR scans, forms, e-mails, events, sales feedback, plus
 * duplicates and malformed events at given rates.
 *
 * The same seed and options give a byte-identical stream. Records go to one writer interface
 * (a file of length-prefixed records, Kafka, or the caller's own writer, e.g. in tests).
 * The generator itself is pure (src/core/gen_*.c, libleadflow_core.a); the writers and the
 * command are src/tools/. */
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

/* The stock writers (a file, Kafka) are in leadflow/gen_writer.h: they are the tool's, not
 * the pure core's. */

void lf_gen_opts_default(lf_gen_opts_t *o);
/* LF_ERR with a message naming the option (as `leadflow gen` spells it) when o is out of
 * range; lf_gen_run checks too. */
int lf_gen_opts_check(const lf_gen_opts_t *o, lf_err_t *err);

/* Generates o->events records into w. No allocation per record. */
int lf_gen_run(const lf_gen_opts_t *o, lf_gen_writer_t *w, lf_gen_stats_t *st, lf_err_t *err);

/* Asks a running lf_gen_run to stop before its next record (it fails with err->code 2).
 * Async-signal-safe: for a SIGINT/SIGTERM handler. The request stays for the process. */
void lf_gen_interrupt(void);
int lf_gen_interrupted(void);

/* Seconds on the monotonic clock: the pacing clock of --rate. */
double lf_gen_clock(void);

#endif
