/* `leadflow stats` inside: what was read from Redis (instances, watermarks, funnel) and the
 * verdict, shared by the reader (cli_stats.c), the judge (cli_stats_judge.c) and the text
 * and JSON printers (cli_stats_text.c, cli_stats_json.c). Internal to src/cli. */
#ifndef LEADFLOW_CLI_STATS_INT_H
#define LEADFLOW_CLI_STATS_INT_H

#include <hiredis/hiredis.h>
#include <stdint.h>

#include "cli_int.h"
#include "leadflow/keys.h"
#include "leadflow/stage.h"

/* One id of lf:ops:instances and its heartbeat hash lf:ops:instance:<id>. */
typedef struct {
    char id[256];
    redisReply *hash; /* HGETALL; no elements = the key expired */
    int present;      /* it has a heartbeat key */
    int stopped;      /* state "stopped": a clean exit, not a problem */
    int stale;        /* heartbeat older than --stale-after (or none recorded) */
    int degraded;     /* a state other than ok / stopped */
    int64_t hb_age_ms;
} lf_instance_t;

/* The counters of lf:wm:<group>:<topic>, "<part>.<name>", in the order of
 * lf_stats_wm_counters. */
enum { LF_WM_CONSUMED, LF_WM_APPLIED, LF_WM_DUP, LF_WM_DEAD, LF_WM_FILTERED, LF_WM_TRANS, LF_WM_N };
extern const char *const lf_stats_wm_counters[LF_WM_N];

typedef struct {
    long partition;
    int64_t next_offset; /* -1: none recorded */
    int64_t c[LF_WM_N];
} lf_wm_part_t;

typedef struct {
    lf_wm_part_t *parts; /* by partition */
    size_t n, cap;
    lf_wm_part_t total;
} lf_wm_t;

typedef struct {
    lf_instance_t *inst;           /* by id */
    size_t ninst, npresent, nlive; /* in the set; with a heartbeat key; running and beating */
    char wm_key[LF_KEY_MAX];
    lf_wm_t wm;
    /* The funnel, from HGETALL lf:funnel: leads per stage; visitor = the live visitors, the
     * sum of the buckets "visitor:<unix s>" whose time is still ahead. */
    char funnel_key[LF_KEY_MAX];
    long long stage_count[LF_STAGE__COUNT];
    long long visitors_expired; /* counted in buckets whose time has passed */
    size_t visitor_buckets_live, visitor_buckets_expired;
    int64_t visitor_next_expiry_s; /* the earliest live bucket's time, 0: none */
    int64_t now_ms, stale_after_ms;
    /* The verdict: exit status and what is wrong, one sentence each. */
    int verdict;
    char **problems;
    size_t nproblems;
} lf_stats_t;

/*---- Computing (cli_stats_judge.c) --------------------------------------------------------*/

/* The HGETALL of the watermarks into wm: per partition, sorted, and the totals. */
void lf_stats_wm_parse(const redisReply *h, lf_wm_t *wm);
/* consumed - (applied + duplicates + dead): 0 when conservation holds. */
int64_t lf_stats_wm_diff(const lf_wm_part_t *p);

/* The HGETALL of lf:funnel into st's stage counts and visitor buckets, at st->now_ms. Fields
 * it does not know are ignored. */
void lf_stats_funnel_parse(const redisReply *h, lf_stats_t *st);

/* The linear part of the funnel the conversion ratios follow. */
#define LF_NFUNNEL_STEPS 5
extern const lf_stage_t lf_stats_funnel_steps[LF_NFUNNEL_STEPS];
/* Leads at this stage or further along visitor -> ... -> customer. */
long long lf_stats_funnel_reached(const long long *count, lf_stage_t s);

/* Classify every instance, then the verdict and its problems. */
void lf_stats_judge(const lf_cli_t *cli, lf_stats_t *st);

/*---- Output -------------------------------------------------------------------------------*/

void lf_stats_print(const lf_cli_t *cli, const lf_stats_t *st);         /* cli_stats_text.c */
struct cJSON *lf_stats_json(const lf_cli_t *cli, const lf_stats_t *st); /* cli_stats_json.c */

#endif
