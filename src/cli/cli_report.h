/* The back-test report (issue 17): two lead states held under two key prefixes of one Redis,
 * each built by its own rules, compared lead by lead. The "before" is usually the live prefix
 * and the rules in force; the "after" a replay's or a live challenger's prefix and its rules.
 * `leadflow compare` prints it (cmd_compare.c); `leadflow replay` calls lf_report_run when its
 * shadow state has caught up. docs/backtest-report.md defines every number.
 *
 * Files: cli_report.c reads Redis (SCAN, pipelined HGETALL of both sides), cli_report_calc.c
 * is the pure part (what one lead pair adds, quantiles, history multisets, the channel map,
 * the bounded example lists), cli_report_text.c and cli_report_json.c print. */
#ifndef LEADFLOW_CLI_REPORT_H
#define LEADFLOW_CLI_REPORT_H

#include <stdint.h>
#include <stdio.h>

#include "cli_int.h"
#include "leadflow/keys.h"
#include "leadflow/lead.h"
#include "leadflow/model.h"
#include "leadflow/stage.h"

/*---- The API ------------------------------------------------------------------------------*/

/* One side of the comparison. */
typedef struct {
    const char *label;       /* how the report names it: "before", "live", "replay", ... */
    const char *prefix;      /* its key prefix, e.g. "lf:" or "lf:replay:" */
    const lf_model_t *model; /* the rules that built it: decodes its records, scores, grades */
    /* Where its stream position is kept: <prefix>wm:<group>:<topic>. Both NULL: every
     * <prefix>wm:* hash is found by SCAN and shown (one more pass over the keyspace). */
    const char *group, *topic;
} lf_report_side_t;

#define LF_REPORT_LIMIT_DEFAULT 20
#define LF_REPORT_LIMIT_MAX 10000

typedef struct {
    int64_t at_ms;     /* scores and grades are evaluated at this time (each side's own model) */
    int json;          /* 1: one JSON object (docs/backtest-report.md), 0: text */
    size_t limit;      /* examples and channel rows shown per section; 0 = the default (20) */
    size_t scan_count; /* SCAN COUNT hint; 0 = 1000 */
    /* Called after each chunk read (may be NULL): phase 1 the before side's SCAN, phase 2
     * the after side's (leads only it has); leads = the leads read so far in all. For a
     * progress bar; the report itself is printed only at the end. */
    void (*progress)(void *arg, int phase, uint64_t leads);
    void *progress_arg;
} lf_report_opts_t;

/* Read both sides and print the report to out. Streams: the before side's
 * "<prefix>lead:*" keys are SCANned in chunks, each chunk's records of both sides read in one
 * pipelined round trip (HGETALL of both keys per lead); then the after side's SCAN, reading
 * the leads only it has. Memory: the hashes of the lead ids seen (SCAN may return a key
 * twice), 16-32 bytes per lead in a set kept at most half full, and 8 bytes per lead and
 * side for the scores (the quantiles); everything else is bounded (the
 * examples kept, at most LF_REPORT_VERSIONS_MAX rules versions and LF_REPORT_CHANNELS_MAX
 * channels, past which the rest is counted under "(other)").
 * Only known leads (<prefix>lead:{id}) are compared; visitors are counted from
 * <prefix>funnel (the live ones, as `leadflow stats` counts them).
 * The report is a reading of a state that may be changing (a live challenger): a lead
 * written between the two passes may be missed or read at two moments.
 * Returns LF_OK, or LF_ERR with err set (Redis failed or unreachable: the caller's exit
 * status 2); nothing is printed then. Uses cli->redis only; runs on the caller's thread. */
int lf_report_run(lf_cli_t *cli, const lf_report_side_t *before, const lf_report_side_t *after,
                  const lf_report_opts_t *opts, FILE *out, lf_err_t *err);

/*---- Inside the report files (not for other modules) -------------------------------------*/

#define LF_REPORT_VERSIONS_MAX 64     /* distinct rules versions counted per side */
#define LF_REPORT_CHANNELS_MAX 100000 /* distinct first-touch channels counted */
#define LF_REPORT_QUANTILES 6         /* p10 p25 p50 p75 p90 p99 */
#define LF_REPORT_NGRADES 3

extern const int lf_report_quantile_pct[LF_REPORT_QUANTILES];

/* A set of 64-bit hashes (open addressing): the lead ids already counted. */
typedef struct {
    uint64_t *slot; /* 0 = empty (a hash of 0 is stored as 1) */
    size_t cap, n;
} lf_idset_t;

/* 1 when h was added, 0 when it was there. */
int lf_idset_add(lf_idset_t *s, uint64_t h);
int lf_idset_has(const lf_idset_t *s, uint64_t h);
void lf_idset_free(lf_idset_t *s);

typedef struct {
    double *v;
    size_t n, cap;
} lf_report_scores_t;

typedef struct {
    char version[LF_RULES_VERSION_MAX + 1];
    uint64_t leads;
} lf_report_version_t;

/* One stream position hash: <prefix>wm:<group>:<topic>. */
typedef struct {
    char key[LF_KEY_MAX];
    char group[256], topic[256];
    size_t nparts;
    struct {
        long partition;
        int64_t next_offset; /* -1: none recorded */
    } * parts;
    int64_t consumed, applied; /* summed over partitions */
} lf_report_wm_t;

/* What one side is, as read. */
typedef struct {
    const lf_report_side_t *side;
    uint64_t leads;      /* known leads read and decoded */
    uint64_t only_here;  /* of them: none on the other side */
    uint64_t unreadable; /* records that did not decode (skipped everywhere) */
    long long visitors;  /* live visitors in <prefix>funnel */
    lf_report_version_t versions[LF_REPORT_VERSIONS_MAX];
    size_t nversions;
    uint64_t versions_other; /* leads of versions past LF_REPORT_VERSIONS_MAX */
    lf_report_wm_t *wm;
    size_t nwm;
    lf_report_scores_t scores;
    double score_sum;
    uint64_t grades[LF_REPORT_NGRADES]; /* L1 L2 L3 */
    uint64_t mqls;
} lf_report_sidestat_t;

/* One lead as the report sees it on one side. */
typedef struct {
    lf_stage_t stage;
    int grade; /* 1..3 */
    double score;
} lf_report_view_t;

/* A stage or grade difference kept as an example. */
typedef struct {
    char id[LF_ID_MAX + 1];
    lf_report_view_t b, a;
} lf_report_diff_ex_t;

/* One (from, to, reason) of a stage history. */
typedef struct {
    uint8_t from, to, reason;
} lf_report_move_t;

/* A lead whose transitions differ, kept as an example: the after-only moves ("would emit")
 * and the before-only ones ("would not"). */
typedef struct {
    char id[LF_ID_MAX + 1];
    lf_report_move_t emit[LF_HISTORY_KEEP], not_emit[LF_HISTORY_KEEP];
    uint8_t nemit, nnot;
} lf_report_tr_ex_t;

/* A first-touch channel and its MQLs on both sides. */
typedef struct {
    char *source, *medium, *campaign; /* "" = none */
    uint64_t hash;
    long long before, after;
} lf_report_channel_t;

typedef struct {
    lf_report_channel_t *rows;
    size_t n, cap;
    size_t *index; /* open addressing into rows (+1; 0 empty) */
    size_t index_cap;
    long long other_before, other_after; /* channels past LF_REPORT_CHANNELS_MAX */
    int bounded;
} lf_report_channels_t;

#define LF_REPORT_NMOVES (LF_STAGE__COUNT * LF_STAGE__COUNT * LF_REASON__COUNT)

typedef struct {
    int64_t at_ms;
    size_t limit;
    lf_report_sidestat_t b, a;
    uint64_t both; /* leads on both sides (readable) */
    /* 2. Stage or grade differences (leads on both sides). */
    uint64_t changed, stage_changed, grade_changed;
    uint64_t stage_pairs[LF_STAGE__COUNT][LF_STAGE__COUNT];
    uint64_t grade_pairs[LF_REPORT_NGRADES][LF_REPORT_NGRADES];
    lf_report_diff_ex_t *diff_ex; /* the `limit` largest |score change|, then by id */
    size_t ndiff_ex;
    /* 4. MQLs per channel. */
    lf_report_channels_t channels;
    /* 5. Transitions that differ (counts by from, to, reason: index lf_report_move_index). */
    uint64_t tr_leads;     /* leads whose kept histories differ */
    uint64_t tr_truncated; /* leads not compared: seq past the kept history on a side */
    uint64_t tr_emit, tr_not_emit;
    uint64_t emit_by[LF_REPORT_NMOVES], not_emit_by[LF_REPORT_NMOVES];
    lf_report_tr_ex_t *tr_ex; /* the first `limit` by id */
    size_t ntr_ex;
} lf_report_t;

/*---- cli_report_calc.c: pure ---------------------------------------------------------------*/

void lf_report_init(lf_report_t *r, const lf_report_side_t *before, const lf_report_side_t *after,
                    int64_t at_ms, size_t limit);
void lf_report_free(lf_report_t *r);

/* Add one lead: b and/or a (NULL: not on that side), decoded with each side's model. */
void lf_report_add(lf_report_t *r, const char *id, const lf_lead_t *b, const lf_lead_t *a);

/* Sort what needs sorting once everything is added: the scores (for the quantiles), the
 * channels (by |delta|, then name), the rules versions (by count, then name). */
void lf_report_finish(lf_report_t *r);

/* The nearest-rank quantile of sorted v[0..n): v[ceil(pct/100 * n) - 1]; 0 when n = 0. */
double lf_report_quantile(const double *v, size_t n, int pct);

/* Whether a lead counts as an MQL: its stage is mql or later on the way to customer (sal,
 * sql, opportunity, customer), or its kept history has a change to mql. */
int lf_report_is_mql(const lf_lead_t *l);

/* The multiset difference of two kept histories' (from, to, reason): the moves of x that y
 * does not have (each matched at most once) into out[]; returns how many. */
size_t lf_report_moves_minus(const lf_lead_t *x, const lf_lead_t *y, lf_report_move_t *out);

size_t lf_report_move_index(lf_stage_t from, lf_stage_t to, lf_reason_t reason);

/*---- Output -------------------------------------------------------------------------------*/

void lf_report_print_text(const lf_report_t *r, FILE *out); /* cli_report_text.c */
void lf_report_print_json(const lf_report_t *r, FILE *out); /* cli_report_json.c */

#endif
