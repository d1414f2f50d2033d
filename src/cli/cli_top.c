/* `leadflow top [-n N] [--stage S]`: the live leaderboard. The order is lf:top's (CONTRACT §6:
 * `ZREVRANGE lf:top 0 N-1`); the numbers come from each lead's hash, decayed to one common
 * time, read with one pipelined round trip per page. Read-only. */
#include <cjson/cJSON.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "leadflow/commands.h"
#include "leadflow/alloc.h"
#include "cli_int.h"
#include "leadflow/event.h"
#include "leadflow/keys.h"
#include "leadflow/score.h"

#define LF_TOP_MAX_N 10000        /* -n at most */
#define LF_TOP_SCAN_MAX 100000    /* members of lf:top looked at for --stage, at most */
#define LF_TOP_STAGE_DIRECT 10000 /* a stage this small is read whole, then ranked */

static const char lf_top_usage[] =
    "usage: leadflow top [-n N] [--stage STAGE] [--at TIME] [-c FILE] [--redis HOST:PORT] "
    "[--json]\n"
    "  The live leaderboard: the first N leads of lf:top (default 10) with score, fit,\n"
    "  engagement, grade, stage, last seen and last-touch source. Scores are decayed to one\n"
    "  time: --at, else the latest event time among the leads shown.\n"
    "  -n N               how many (1..10000)\n"
    "  --stage STAGE      only leads in this stage (visitor, lead, mql, sal, sql,\n"
    "                     opportunity, customer, nurture, disqualified), still by score\n"
    "  --at TIME          ISO-8601, epoch milliseconds or \"now\"\n"
    "  -c, --config FILE  rules file (default: $LEADFLOW_CONFIG, else ./leadflow.yaml)\n"
    "  --redis HOST:PORT  override the rules file's redis.host / redis.port\n"
    "  --json             one JSON object\n";

/* The fields of a lead's hash the table needs, in HMGET order. */
static const char *const lf_top_fields[] = {"stage", "fit", "eng", "t", "last_seen", "lt.source"};
#define LF_TOP_NFIELDS 6

typedef struct {
    char id[LF_ID_MAX + 1];
    double index_score; /* its score in lf:top */
    int has_hash;
    char stage[24];
    double fit, eng;
    int64_t t_ms, last_seen_ms;
    char lt_source[80];
} lf_top_row_t;

typedef struct {
    lf_top_row_t *rows;
    size_t n, cap;
} lf_top_rows_t;

/*---- Reading ------------------------------------------------------------------------------*/

static void lf_top_row_id(lf_top_row_t *row, const redisReply *id, const redisReply *score)
{
    memset(row, 0, sizeof(*row));
    lf_cli_reply_str(id, row->id, sizeof(row->id));
    row->index_score = lf_cli_reply_double(score, 0);
}

static void lf_top_row_fill(lf_top_row_t *row, const redisReply *hm)
{
    const redisReply *const *e = (const redisReply *const *)hm->element;
    if (hm->type != REDIS_REPLY_ARRAY || hm->elements != LF_TOP_NFIELDS) return;
    row->has_hash = e[0]->type == REDIS_REPLY_STRING;
    if (!row->has_hash) return;
    lf_cli_reply_str(e[0], row->stage, sizeof(row->stage));
    row->fit = lf_cli_reply_double(e[1], 0);
    row->eng = lf_cli_reply_double(e[2], 0);
    row->t_ms = lf_cli_reply_i64(e[3], 0);
    row->last_seen_ms = lf_cli_reply_i64(e[4], 0);
    lf_cli_reply_str(e[5], row->lt_source, sizeof(row->lt_source));
}

/* HMGET the hashes of rows[0..n), one round trip. */
static int lf_top_fetch_hashes(lf_cli_t *cli, lf_top_row_t *rows, size_t n)
{
    char key[LF_KEY_MAX];
    const char *argv[2 + LF_TOP_NFIELDS];
    size_t lens[2 + LF_TOP_NFIELDS];
    int rc = 0;
    if (!n) return 0;
    argv[0] = "HMGET";
    lens[0] = 5;
    for (size_t f = 0; f < LF_TOP_NFIELDS; f++) {
        argv[2 + f] = lf_top_fields[f];
        lens[2 + f] = strlen(lf_top_fields[f]);
    }
    for (size_t i = 0; i < n; i++) {
        int kl =
            lf_key_lead(key, sizeof(key), cli->cfg.redis_prefix, rows[i].id, strlen(rows[i].id));
        argv[1] = key;
        lens[1] = (size_t)kl;
        redisAppendCommandArgv(cli->redis, 2 + LF_TOP_NFIELDS, argv, lens);
    }
    redisReply **r = lf_calloc(n, sizeof(*r));
    if ((rc = lf_cli_replies(cli, r, n, "HMGET of the leads")) == 0) {
        for (size_t i = 0; i < n; i++)
            lf_top_row_fill(&rows[i], r[i]);
        lf_cli_free_replies(r, n);
    }
    lf_free(r);
    return rc;
}

static lf_top_row_t *lf_top_push(lf_top_rows_t *out)
{
    if (out->n == out->cap) {
        out->cap = out->cap ? out->cap * 2 : 16;
        out->rows = lf_realloc(out->rows, out->cap * sizeof(*out->rows));
    }
    return &out->rows[out->n++];
}

/* Members [start, start+count) of lf:top with their hashes appended to *out; filtered by
 * stage when one is given. *got = members read (fewer than count: the end). */
static int lf_top_page(lf_cli_t *cli, const char *top_key, long start, long count,
                       const char *stage, lf_top_rows_t *out, long *got)
{
    redisReply *r = NULL;
    int rc;
    redisAppendCommand(cli->redis, "ZREVRANGE %s %ld %ld WITHSCORES", top_key, start,
                       start + count - 1);
    if ((rc = lf_cli_replies(cli, &r, 1, "ZREVRANGE of the leaderboard"))) return rc;
    size_t first = out->n, n = r->elements / 2;
    for (size_t i = 0; i < n; i++)
        lf_top_row_id(lf_top_push(out), r->element[2 * i], r->element[2 * i + 1]);
    freeReplyObject(r);
    *got = (long)n;
    if ((rc = lf_top_fetch_hashes(cli, out->rows + first, n))) return rc;
    if (stage) {
        size_t keep = first;
        for (size_t i = first; i < out->n; i++)
            if (out->rows[i].has_hash && strcmp(out->rows[i].stage, stage) == 0)
                out->rows[keep++] = out->rows[i];
        out->n = keep;
    }
    return 0;
}

static int lf_top_cmp_desc(const void *a, const void *b)
{
    const lf_top_row_t *x = a, *y = b;
    if (x->index_score != y->index_score) return x->index_score < y->index_score ? 1 : -1;
    return strcmp(y->id, x->id); /* ZREVRANGE's tie order: reverse lexicographic */
}

/* A small stage is read whole (ZRANGE of lf:stage:<s>, then ZSCORE in lf:top of each, one
 * round trip), ranked, and the first n kept: exact whatever the stage's share of lf:top. */
static int lf_top_stage_direct(lf_cli_t *cli, const char *top_key, const char *stage_key, long n,
                               lf_top_rows_t *out)
{
    redisReply *r = NULL;
    int rc;
    redisAppendCommand(cli->redis, "ZRANGE %s 0 -1", stage_key);
    if ((rc = lf_cli_replies(cli, &r, 1, "ZRANGE of the stage"))) return rc;
    size_t m = r->elements;
    for (size_t i = 0; i < m; i++)
        redisAppendCommand(cli->redis, "ZSCORE %s %b", top_key, r->element[i]->str,
                           r->element[i]->len);
    redisReply **s = lf_calloc(m ? m : 1, sizeof(*s));
    if ((rc = lf_cli_replies(cli, s, m, "ZSCORE in the leaderboard")) == 0) {
        for (size_t i = 0; i < m; i++) {
            if (s[i]->type != REDIS_REPLY_STRING) continue; /* not (or no longer) in lf:top */
            lf_top_row_id(lf_top_push(out), r->element[i], s[i]);
        }
        lf_cli_free_replies(s, m);
    }
    lf_free(s);
    freeReplyObject(r);
    if (rc) return rc;
    if (out->n > 1) qsort(out->rows, out->n, sizeof(*out->rows), lf_top_cmp_desc);
    if (out->n > (size_t)n) out->n = (size_t)n;
    return lf_top_fetch_hashes(cli, out->rows, out->n);
}

/*---- Output -------------------------------------------------------------------------------*/

typedef struct {
    const char *top_key;
    long long total;   /* ZCARD lf:top */
    const char *stage; /* --stage or NULL */
    long n;            /* -n */
    long scanned;      /* members of lf:top looked at */
    int bounded;       /* the --stage scan stopped at LF_TOP_SCAN_MAX */
    int64_t at_ms;
    const char *at_source; /* "option", "latest_last_seen", "now" */
} lf_top_info_t;

static double lf_top_eng(const lf_top_row_t *row, int64_t at_ms, const lf_model_t *m)
{
    return row->eng * lf_decay_factor(at_ms - row->t_ms, m->half_life_ms);
}

static void lf_top_print(const lf_cli_t *cli, const lf_top_info_t *info, const lf_top_rows_t *rs)
{
    const lf_model_t *m = &cli->cfg.model;
    char a[40], b[40];
    static const char *const head[] = {"RANK",  "LEAD",  "SCORE",     "FIT",       "ENGAGEMENT",
                                       "GRADE", "STAGE", "LAST SEEN", "LAST TOUCH"};
    lf_table_t t;
    lf_table_init(&t, 9, head, (1u << 0) | (1u << 2) | (1u << 3) | (1u << 4));
    for (size_t i = 0; i < rs->n; i++) {
        const lf_top_row_t *r = &rs->rows[i];
        char rank[24], score[32], fit[32], eng[32];
        /* Ids and UTM values come from events: a newline or an escape sequence in one would
         * break the table (or forge rows), so they are shown escaped (--json: exact). */
        char id[LF_ESCAPED_CAP(LF_ID_MAX)], src[LF_ESCAPED_CAP(sizeof(r->lt_source))];
        snprintf(rank, sizeof(rank), "%zu", i + 1);
        lf_str_escape(lf_str_from(r->id), id, sizeof(id));
        if (!r->has_hash) {
            lf_table_add(&t, (const char *const[]){rank, id, NULL, NULL, NULL, NULL, "(no record)",
                                                   NULL, NULL});
            continue;
        }
        double e = lf_top_eng(r, info->at_ms, m);
        snprintf(score, sizeof(score), "%.2f", lf_cli_num(r->fit + e));
        snprintf(fit, sizeof(fit), "%.2f", lf_cli_num(r->fit));
        snprintf(eng, sizeof(eng), "%.2f", lf_cli_num(e));
        lf_table_add(&t, (const char *const[]){
                             rank, id, score, fit, eng, lf_cli_grade(r->fit + e, m), r->stage,
                             lf_cli_fmt_time(r->last_seen_ms, a, sizeof(a)),
                             r->lt_source[0]
                                 ? lf_str_escape(lf_str_from(r->lt_source), src, sizeof(src))
                                 : NULL});
    }
    printf("top %zu%s%s of %s leads in %s, scores at %s (%s)\n",
           rs->n < (size_t)info->n ? rs->n : (size_t)info->n, info->stage ? " in stage " : "",
           info->stage ? info->stage : "", lf_cli_fmt_count(info->total, b, sizeof(b)),
           info->top_key, lf_cli_fmt_time(info->at_ms, a, sizeof(a)),
           strcmp(info->at_source, "option") == 0 ? "--at"
           : strcmp(info->at_source, "now") == 0  ? "wall clock: no lead shown"
                                                  : "latest event time among them");
    if (rs->n)
        lf_table_print(&t, stdout, 0);
    else
        printf("no leads%s\n", info->stage ? " in this stage" : "");
    if (info->bounded)
        printf("(looked at the first %s leads of %s only; more may be in stage %s)\n",
               lf_cli_fmt_count(info->scanned, a, sizeof(a)), info->top_key, info->stage);
    lf_table_free(&t);
}

static cJSON *lf_top_json(const lf_cli_t *cli, const lf_top_info_t *info, const lf_top_rows_t *rs)
{
    const lf_model_t *m = &cli->cfg.model;
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "key", info->top_key);
    cJSON_AddNumberToObject(o, "total", (double)info->total);
    if (info->stage)
        cJSON_AddStringToObject(o, "stage", info->stage);
    else
        cJSON_AddNullToObject(o, "stage");
    cJSON_AddNumberToObject(o, "n", (double)info->n);
    lf_cli_json_time(o, "at", info->at_ms);
    cJSON_AddStringToObject(o, "at_source", info->at_source);
    cJSON_AddNumberToObject(o, "scanned", (double)info->scanned);
    cJSON_AddBoolToObject(o, "bounded", info->bounded);
    cJSON *arr = cJSON_AddArrayToObject(o, "leads");
    for (size_t i = 0; i < rs->n; i++) {
        const lf_top_row_t *r = &rs->rows[i];
        cJSON *x = cJSON_CreateObject();
        cJSON_AddNumberToObject(x, "rank", (double)(i + 1));
        cJSON_AddStringToObject(x, "id", r->id);
        cJSON_AddNumberToObject(x, "index_score", r->index_score);
        cJSON_AddBoolToObject(x, "has_record", r->has_hash);
        if (r->has_hash) {
            double e = lf_top_eng(r, info->at_ms, m);
            cJSON_AddNumberToObject(x, "score", r->fit + e);
            cJSON_AddNumberToObject(x, "fit", r->fit);
            cJSON_AddNumberToObject(x, "engagement", e);
            cJSON_AddStringToObject(x, "grade", lf_cli_grade(r->fit + e, m));
            cJSON_AddStringToObject(x, "stage", r->stage);
            lf_cli_json_time(x, "last_seen", r->last_seen_ms);
            if (r->lt_source[0])
                cJSON_AddStringToObject(x, "last_touch_source", r->lt_source);
            else
                cJSON_AddNullToObject(x, "last_touch_source");
        }
        cJSON_AddItemToArray(arr, x);
    }
    return o;
}

/*---- The command --------------------------------------------------------------------------*/

/* The options into *info and *stage: LF_CLI_GO, or the exit status after a message. */
static int lf_top_args(lf_cli_t *cli, int argc, char **argv, lf_top_info_t *info, lf_stage_t *stage)
{
    const char *at_arg = NULL, *n_arg = NULL;
    const lf_cli_opt_t own[] = {
        {"-n", &n_arg}, {"--stage", &info->stage}, {"--at", &at_arg}, {NULL, NULL}};
    int64_t n;
    for (int i = 1; i < argc; i++) {
        int o = lf_cli_option(cli, argc, argv, &i, own);
        if (o == LF_CLI_OPT_HELP) return LF_CLI_EXIT_OK;
        if (o == LF_CLI_OPT_ERROR) return LF_CLI_EXIT_USAGE;
        if (o == LF_CLI_OPT_NONE) return lf_cli_usage_error(cli, "unexpected argument %s", argv[i]);
    }
    if (n_arg) {
        if (lf_parse_i64(n_arg, 1, LF_TOP_MAX_N, &n) != LF_OK)
            return lf_cli_usage_error(cli, "-n wants a number from 1 to %d, not \"%s\"",
                                      LF_TOP_MAX_N, n_arg);
        info->n = (long)n;
    }
    if (info->stage && lf_stage_from_name(info->stage, strlen(info->stage), stage) != LF_OK)
        return lf_cli_usage_error(cli, "unknown stage \"%s\"", info->stage);
    if (at_arg) {
        if (lf_cli_parse_at(cli, at_arg, &info->at_ms)) return LF_CLI_EXIT_USAGE;
        info->at_source = "option";
    }
    return LF_CLI_GO;
}

/* A big stage is a good share of lf:top: walk it from the top, filtering. */
static int lf_top_walk_stage(lf_cli_t *cli, lf_top_info_t *info, lf_top_rows_t *rs)
{
    long page = info->n * 4 < 1000 ? (info->n * 4 > 200 ? info->n * 4 : 200) : 1000, got = 0;
    int rc = 0;
    while (rs->n < (size_t)info->n && info->scanned < LF_TOP_SCAN_MAX) {
        if ((rc = lf_top_page(cli, info->top_key, info->scanned, page, info->stage, rs, &got)))
            break;
        info->scanned += got;
        if (got < page) break;
    }
    if (!rc && rs->n < (size_t)info->n && info->scanned >= LF_TOP_SCAN_MAX) info->bounded = 1;
    if (rs->n > (size_t)info->n) rs->n = (size_t)info->n;
    return rc;
}

/* The rows to show: the first n of lf:top, of the stage read whole, or of lf:top filtered. */
static int lf_top_read(lf_cli_t *cli, lf_top_info_t *info, const char *stage_key, lf_top_rows_t *rs)
{
    redisReply *r[2] = {NULL, NULL};
    int rc;
    redisAppendCommand(cli->redis, "ZCARD %s", info->top_key);
    redisAppendCommand(cli->redis, "ZCARD %s", stage_key);
    if ((rc = lf_cli_replies(cli, r, 2, "ZCARD"))) return rc;
    info->total = r[0]->integer;
    if (!info->stage) {
        rc = lf_top_page(cli, info->top_key, 0, info->n, NULL, rs, &info->scanned);
    } else if (r[1]->integer <= LF_TOP_STAGE_DIRECT) {
        rc = lf_top_stage_direct(cli, info->top_key, stage_key, info->n, rs);
        info->scanned = r[1]->integer;
    } else {
        rc = lf_top_walk_stage(cli, info, rs);
    }
    lf_cli_free_replies(r, 2);
    return rc;
}

/* Without --at, scores are decayed to the latest event time among the leads shown. */
static void lf_top_default_at(lf_top_info_t *info, const lf_top_rows_t *rs)
{
    if (info->at_source) return;
    for (size_t i = 0; i < rs->n; i++)
        if (rs->rows[i].last_seen_ms > info->at_ms) info->at_ms = rs->rows[i].last_seen_ms;
    info->at_source = info->at_ms ? "latest_last_seen" : "now";
    if (!info->at_ms) info->at_ms = lf_wall_ms();
}

int lf_cmd_top(int argc, char **argv)
{
    lf_cli_t cli;
    lf_top_rows_t rs = {0};
    lf_top_info_t info = {0};
    char top_key[LF_KEY_MAX], stage_key[LF_KEY_MAX];
    lf_stage_t stage = LF_STAGE_VISITOR;
    int rc;

    lf_cli_init(&cli, argc > 0 ? argv[0] : "top", lf_top_usage);
    info.n = 10;
    if ((rc = lf_top_args(&cli, argc, argv, &info, &stage)) != LF_CLI_GO) return rc;
    if ((rc = lf_cli_open(&cli))) goto out;
    lf_key_top(top_key, sizeof(top_key), cli.cfg.redis_prefix);
    lf_key_stage(stage_key, sizeof(stage_key), cli.cfg.redis_prefix, stage);
    info.top_key = top_key;
    if ((rc = lf_top_read(&cli, &info, stage_key, &rs))) goto out;
    lf_top_default_at(&info, &rs);
    if (cli.json)
        lf_cli_json_print(lf_top_json(&cli, &info, &rs));
    else
        lf_top_print(&cli, &info, &rs);
    rc = LF_CLI_EXIT_OK;
out:
    lf_free(rs.rows);
    lf_cli_close(&cli);
    return rc;
}
