/* `leadflow top [N] [--stage S] [--at TIME]`: the live leaderboard by current total score.
 *
 * lf:top holds at most redis.top_leads known leads (default 10,000) ordered by a time-invariant
 * forward-decay key of their engagement (lf_rank_key): the most engaged leads at any moment. The
 * command reads them as candidates (ZREVRANGE, pages of LF_TOP_PAGE, at most
 * LF_TOP_CANDIDATES_MAX members: the whole set at the default size), their readable fields
 * stage fit eng t (HMGET, one pipelined round trip per page), ranks them by fit + engagement
 * decayed to the time asked for (--at, else now), and decodes the records of the N shown
 * (HGETALL) for last seen and last touch. A lead with a high fit and little engagement can be
 * missing from lf:top: the header says what was looked at. Members that are not known leads
 * (a visitor of the layout before, left in lf:top by an upgrade: its hash says anon=1; or a
 * member with no record) are skipped and counted.
 * --stage: the stage's members among the candidates; a sales-active stage (mql, sal, sql,
 * opportunity) of at most LF_TOP_STAGE_DIRECT members is read whole from lf:stage:<s> instead
 * (exact for that stage, in lf:top or not).
 * On a Redis Cluster lf:top and lf:stage:<s> are one shard per hash slot (keys.h): the
 * candidates are the best of all shards merged (lf_top_read_index_cluster), a stage is read
 * from every shard, a lead's lf:top score from its own slot's shard. Read-only. */
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
#include "leadflow/lead_codec.h"
#include "leadflow/score.h"
#include "leadflow/writes.h"

#define LF_TOP_MAX_N 10000           /* N at most */
#define LF_TOP_CANDIDATES_MAX 100000 /* members of lf:top ranked, at most */
#define LF_TOP_PAGE 1000             /* members read per round trip */
#define LF_TOP_STAGE_DIRECT 10000    /* a stage set this small is read whole */

static const char lf_top_usage[] =
    "usage: leadflow top [N] [-n N] [--stage STAGE] [--at TIME] [-c FILE] [--redis HOST:PORT] "
    "[--json]\n"
    "  The live leaderboard: the N known leads (default 10) with the highest current total\n"
    "  score (fit + engagement decayed to --at, else now), with fit, engagement, grade,\n"
    "  stage, last seen and last-touch source. Candidates are the members of lf:top (the\n"
    "  redis.top_leads most engaged known leads; at most 100,000 of them are read).\n"
    "  N, -n N            how many (1..10000)\n"
    "  --stage STAGE      only leads in this stage (lead, mql, sal, sql, opportunity,\n"
    "                     customer, nurture, disqualified), still by score\n"
    "  --at TIME          ISO-8601, epoch milliseconds or \"now\" (the default)\n"
    "  -c, --config FILE  rules file (default: $LEADFLOW_CONFIG, else ./leadflow.yaml)\n"
    "  --redis HOST:PORT  override the rules file's redis.host / redis.port\n"
    "  --json             one JSON object\n";

/* The readable fields of a lead's hash the ranking needs, in HMGET order ("anon": a visitor
 * of the layout before). */
static const char *const lf_top_fields[] = {"stage", "fit", "eng", "t", "anon"};
#define LF_TOP_NFIELDS 5

typedef struct {
    char id[LF_ID_MAX + 1];
    double index_score; /* its score in lf:top (0 when not in it: --stage read whole) */
    int in_top;
    lf_stage_t stage;
    double fit, eng, score;
    int64_t t_ms, last_seen_ms;
    char lt_source[LF_TOUCH_MAX + 1];
} lf_top_row_t;

typedef struct {
    lf_top_row_t *rows;
    size_t n, cap;
} lf_top_rows_t;

typedef struct {
    const char *top_key;
    const char *source_key; /* the key the candidates came from: lf:top or lf:stage:<s> */
    long long total;        /* ZCARD lf:top */
    const char *stage;      /* --stage or NULL */
    lf_stage_t stage_v;
    long n;                /* N */
    long scanned;          /* members of source_key looked at */
    long skipped_visitors; /* of them: visitors of the layout before */
    long skipped_missing;  /* of them: no record */
    long candidates;       /* known leads ranked (in the stage, with --stage) */
    int bounded;           /* stopped at LF_TOP_CANDIDATES_MAX */
    int64_t at_ms;
    const char *at_source; /* "option", "now" */
} lf_top_info_t;

/*---- Reading ------------------------------------------------------------------------------*/

static lf_top_row_t *lf_top_push(lf_top_rows_t *out)
{
    if (out->n == out->cap) {
        out->cap = out->cap ? out->cap * 2 : 64;
        out->rows = lf_realloc(out->rows, out->cap * sizeof(*out->rows));
    }
    return &out->rows[out->n++];
}

static double lf_top_eng_at(double eng, int64_t t_ms, int64_t at_ms, const lf_model_t *m)
{
    return at_ms > t_ms ? eng * lf_decay_factor(at_ms - t_ms, m->half_life_ms) : eng;
}

/* One candidate from its HMGET reply: kept (appended to *out) when it is a known lead, in the
 * stage asked for if any; else counted as skipped. */
static void lf_top_candidate(lf_top_info_t *info, const lf_model_t *m, const redisReply *id,
                             const redisReply *score, const redisReply *hm, lf_top_rows_t *out)
{
    const redisReply *const *e = (const redisReply *const *)hm->element;
    lf_stage_t st;
    if (hm->type != REDIS_REPLY_ARRAY || hm->elements != LF_TOP_NFIELDS ||
        e[0]->type != REDIS_REPLY_STRING) {
        info->skipped_missing++;
        return;
    }
    if (e[4]->type == REDIS_REPLY_STRING && e[4]->len == 1 && e[4]->str[0] == '1') {
        info->skipped_visitors++;
        return;
    }
    if (lf_stage_from_name(e[0]->str, e[0]->len, &st) != LF_OK) {
        info->skipped_missing++;
        return;
    }
    if (st == LF_STAGE_VISITOR) {
        info->skipped_visitors++;
        return;
    }
    if (info->stage && st != info->stage_v) return;
    lf_top_row_t *row = lf_top_push(out);
    memset(row, 0, sizeof(*row));
    lf_cli_reply_str(id, row->id, sizeof(row->id));
    row->in_top = score != NULL && score->type == REDIS_REPLY_STRING;
    row->index_score = row->in_top ? lf_cli_reply_double(score, 0) : 0;
    row->stage = st;
    row->fit = lf_cli_reply_double(e[1], 0);
    row->eng = lf_cli_reply_double(e[2], 0);
    row->t_ms = lf_cli_reply_i64(e[3], 0);
    row->score = row->fit + lf_top_eng_at(row->eng, row->t_ms, info->at_ms, m);
    info->candidates++;
}

/* HMGET the readable fields of ids[0..n) (scores[i]: its lf:top score reply, may be NULL),
 * one round trip (one per node on a cluster: each lead's key in its own slot), and keep the
 * candidates. */
static int lf_top_fetch(lf_cli_t *cli, lf_top_info_t *info, const redisReply *const *ids,
                        const redisReply *const *scores, size_t n, lf_top_rows_t *out)
{
    char key[LF_KEY_MAX];
    const char *argv[2 + LF_TOP_NFIELDS];
    size_t lens[2 + LF_TOP_NFIELDS];
    lf_cli_batch_t b = {0};
    int rc;
    if (!n) return 0;
    argv[0] = "HMGET";
    lens[0] = 5;
    for (size_t f = 0; f < LF_TOP_NFIELDS; f++) {
        argv[2 + f] = lf_top_fields[f];
        lens[2 + f] = strlen(lf_top_fields[f]);
    }
    for (size_t i = 0; i < n; i++) {
        int kl = lf_key_lead(key, sizeof(key), cli->cfg.redis_prefix,
                             ids[i]->str ? ids[i]->str : "", ids[i]->str ? ids[i]->len : 0);
        argv[1] = key;
        lens[1] = (size_t)kl;
        lf_cli_batch_add(&b, 2 + LF_TOP_NFIELDS, argv, lens);
    }
    if ((rc = lf_cli_batch_run(cli, &b, "HMGET of the leads")) == 0)
        for (size_t i = 0; i < n; i++)
            lf_top_candidate(info, &cli->cfg.model, ids[i], scores ? scores[i] : NULL,
                             lf_cli_batch_reply(&b, i), out);
    lf_cli_batch_free(&b);
    return rc;
}

/* The candidates of lf:top, from the top, page by page, at most LF_TOP_CANDIDATES_MAX. */
static int lf_top_read_index(lf_cli_t *cli, lf_top_info_t *info, lf_top_rows_t *out)
{
    char from[24], to[24];
    int rc = 0;
    while (info->scanned < LF_TOP_CANDIDATES_MAX) {
        lf_cli_batch_t b = {0};
        long count = LF_TOP_CANDIDATES_MAX - info->scanned < LF_TOP_PAGE
                         ? LF_TOP_CANDIDATES_MAX - info->scanned
                         : LF_TOP_PAGE;
        snprintf(from, sizeof(from), "%ld", info->scanned);
        snprintf(to, sizeof(to), "%ld", info->scanned + count - 1);
        lf_cli_batch_cmd(&b, "ZREVRANGE", info->top_key, from, to, "WITHSCORES", NULL);
        if ((rc = lf_cli_batch_run(cli, &b, "ZREVRANGE of the leaderboard"))) {
            lf_cli_batch_free(&b);
            return rc;
        }
        const redisReply *r = lf_cli_batch_reply(&b, 0);
        size_t n = r->elements / 2;
        const redisReply **ids = lf_calloc(n ? n : 1, sizeof(*ids));
        const redisReply **scores = lf_calloc(n ? n : 1, sizeof(*scores));
        for (size_t i = 0; i < n; i++) {
            ids[i] = r->element[2 * i];
            scores[i] = r->element[2 * i + 1];
        }
        rc = lf_top_fetch(cli, info, ids, scores, n, out);
        lf_free(ids);
        lf_free(scores);
        lf_cli_batch_free(&b);
        info->scanned += (long)n;
        if (rc || (long)n < count) return rc;
    }
    if (info->scanned < info->total) info->bounded = 1;
    return 0;
}

/*---- On a Redis Cluster: lf:top is one shard per slot ------------------------------------*/

/* A member of a shard read, pointing into its reply. */
typedef struct {
    const redisReply *id, *score;
    double s;
} lf_top_member_t;

typedef struct {
    lf_top_member_t *m;
    size_t n, cap;
} lf_top_members_t;

/* The members of a WITHSCORES reply appended; the score of the last one into *last. */
static void lf_top_members_add(lf_top_members_t *ms, const redisReply *r, const redisReply **last)
{
    for (size_t i = 0; i + 1 < r->elements; i += 2) {
        if (ms->n == ms->cap) {
            ms->cap = ms->cap ? ms->cap * 2 : 1024;
            ms->m = lf_realloc(ms->m, ms->cap * sizeof(*ms->m));
        }
        ms->m[ms->n++] = (lf_top_member_t){r->element[i], r->element[i + 1],
                                           lf_cli_reply_double(r->element[i + 1], 0)};
        if (last) *last = r->element[i + 1];
    }
}

/* As ZREVRANGE orders them: by score, then by member, both descending. */
static int lf_top_member_cmp(const void *a, const void *b)
{
    const lf_top_member_t *x = a, *y = b;
    if (x->s != y->s) return x->s < y->s ? 1 : -1;
    size_t n = x->id->len < y->id->len ? x->id->len : y->id->len;
    int c = memcmp(x->id->str, y->id->str, n);
    if (!c) c = (x->id->len > y->id->len) - (x->id->len < y->id->len);
    return -c;
}

/* The smallest q with sum over shards of min(card, q) >= want: reading each shard's best q
 * gives at least want members (all of them when the shards hold fewer). */
static long long lf_top_per_shard(const long long *cards, size_t ns, long long want)
{
    long long lo = 1, hi = 1;
    for (size_t k = 0; k < ns; k++)
        if (cards[k] > hi) hi = cards[k];
    while (lo < hi) {
        long long mid = lo + (hi - lo) / 2, sum = 0;
        for (size_t k = 0; k < ns && sum < want; k++)
            sum += cards[k] < mid ? cards[k] : mid;
        if (sum >= want)
            hi = mid;
        else
            lo = mid + 1;
    }
    return lo;
}

/* The candidates a single lf:top would hold: the best `want` of all shards by their score
 * (each shard keeps its own best, so the best overall are among the shards' best). Two round
 * trips: each shard's best q (q chosen so that at least `want` come back), which sets the
 * want-th best score T; then, from the shards whose q-th member still scored T or more, the
 * rest of their members at T or above. Their ranks then go as on one Redis. */
static int lf_top_read_index_cluster(lf_cli_t *cli, lf_top_info_t *info, const long long *cards,
                                     lf_top_rows_t *out)
{
    size_t ns = lf_cli_nshards(cli);
    long long want = LF_TOP_CANDIDATES_MAX;
    if (cli->cfg.top_leads > 0 && cli->cfg.top_leads < want) want = cli->cfg.top_leads;
    long long q = lf_top_per_shard(cards, ns, want);
    lf_cli_batch_t b1 = {0}, b2 = {0};
    lf_top_members_t ms = {0};
    const redisReply **last = lf_calloc(ns, sizeof(*last));
    char key[LF_KEY_MAX], stop[24], off[24], cnt[24];
    int rc;
    size_t *shard1 = lf_calloc(ns, sizeof(*shard1)), n1 = 0;
    snprintf(stop, sizeof(stop), "%lld", q - 1);
    for (size_t k = 0; k < ns; k++) {
        if (!cards[k]) continue;
        lf_cli_shard_key(cli, key, sizeof(key), info->top_key, k);
        lf_cli_batch_cmd(&b1, "ZREVRANGE", key, "0", stop, "WITHSCORES", NULL);
        shard1[n1++] = k;
    }
    if ((rc = lf_cli_batch_run(cli, &b1, "ZREVRANGE of the leaderboard's shards"))) goto out;
    for (size_t i = 0; i < n1; i++)
        lf_top_members_add(&ms, lf_cli_batch_reply(&b1, i), &last[shard1[i]]);
    if (info->total > want && ms.n >= (size_t)want) {
        qsort(ms.m, ms.n, sizeof(*ms.m), lf_top_member_cmp);
        const lf_top_member_t t = ms.m[want - 1];
        char min[64];
        lf_cli_reply_str(t.score, min, sizeof(min));
        snprintf(off, sizeof(off), "%lld", q);
        snprintf(cnt, sizeof(cnt), "%lld", want);
        for (size_t i = 0; i < n1; i++) {
            size_t k = shard1[i];
            if (cards[k] <= q || lf_cli_reply_double(last[k], 0) < t.s) continue;
            lf_cli_shard_key(cli, key, sizeof(key), info->top_key, k);
            lf_cli_batch_cmd(&b2, "ZREVRANGEBYSCORE", key, "+inf", min, "WITHSCORES", "LIMIT", off,
                             cnt, NULL);
        }
        if ((rc = lf_cli_batch_run(cli, &b2, "ZREVRANGEBYSCORE of the leaderboard's shards")))
            goto out;
        for (size_t i = 0; i < b2.n; i++)
            lf_top_members_add(&ms, lf_cli_batch_reply(&b2, i), NULL);
    }
    if (ms.n > 1) qsort(ms.m, ms.n, sizeof(*ms.m), lf_top_member_cmp);
    if (ms.n > (size_t)want) ms.n = (size_t)want;
    for (size_t from = 0; from < ms.n && !rc; from += LF_TOP_PAGE) {
        size_t n = ms.n - from < LF_TOP_PAGE ? ms.n - from : LF_TOP_PAGE;
        const redisReply **ids = lf_calloc(n, sizeof(*ids)), **scores = lf_calloc(n, sizeof(*ids));
        for (size_t i = 0; i < n; i++) {
            ids[i] = ms.m[from + i].id;
            scores[i] = ms.m[from + i].score;
        }
        rc = lf_top_fetch(cli, info, ids, scores, n, out);
        lf_free(ids);
        lf_free(scores);
    }
    info->scanned = (long)ms.n;
    if (info->scanned < info->total) info->bounded = 1;
out:
    lf_free(ms.m);
    lf_free(last);
    lf_free(shard1);
    lf_cli_batch_free(&b1);
    lf_cli_batch_free(&b2);
    return rc;
}

/* A small sales-active stage read whole: ZRANGE of lf:stage:<s> (of each shard holding some
 * on a cluster), then ZSCORE in lf:top (in the lead's own shard on a cluster: the one of its
 * key's slot) and the readable fields of each, page by page. */
static int lf_top_read_stage(lf_cli_t *cli, lf_top_info_t *info, const long long *cards,
                             lf_top_rows_t *out)
{
    char key[LF_KEY_MAX], lkey[LF_KEY_MAX];
    lf_cli_batch_t b = {0};
    size_t ns = lf_cli_nshards(cli), nm = 0, cap = 0;
    const redisReply **m = NULL;
    int rc;
    for (size_t k = 0; k < ns; k++) {
        if (!cards[k]) continue;
        lf_cli_shard_key(cli, key, sizeof(key), info->source_key, k);
        lf_cli_batch_cmd(&b, "ZRANGE", key, "0", "-1", NULL);
    }
    if ((rc = lf_cli_batch_run(cli, &b, "ZRANGE of the stage"))) goto out;
    for (size_t i = 0; i < b.n; i++) {
        const redisReply *r = lf_cli_batch_reply(&b, i);
        if (nm + r->elements > cap) {
            cap = (nm + r->elements) * 2;
            m = lf_realloc(m, cap * sizeof(*m));
        }
        for (size_t j = 0; j < r->elements; j++)
            m[nm++] = r->element[j];
    }
    for (size_t from = 0; from < nm && !rc; from += LF_TOP_PAGE) {
        size_t n = nm - from < LF_TOP_PAGE ? nm - from : LF_TOP_PAGE;
        lf_cli_batch_t z = {0};
        for (size_t i = 0; i < n; i++) {
            const redisReply *id = m[from + i];
            int kl = lf_key_lead(lkey, sizeof(lkey), cli->cfg.redis_prefix, id->str, id->len);
            lf_cli_lead_shard_key(cli, key, sizeof(key), info->top_key, lkey, (size_t)kl);
            lf_cli_batch_add(&z, 3, (const char *const[]){"ZSCORE", key, id->str},
                             (const size_t[]){6, strlen(key), id->len});
        }
        if ((rc = lf_cli_batch_run(cli, &z, "ZSCORE in the leaderboard")) == 0) {
            const redisReply **s = lf_calloc(n, sizeof(*s));
            for (size_t i = 0; i < n; i++)
                s[i] = lf_cli_batch_reply(&z, i);
            rc = lf_top_fetch(cli, info, m + from, s, n, out);
            lf_free(s);
        }
        lf_cli_batch_free(&z);
        info->scanned += (long)n;
    }
out:
    lf_free(m);
    lf_cli_batch_free(&b);
    return rc;
}

static int lf_top_cmp_desc(const void *a, const void *b)
{
    const lf_top_row_t *x = a, *y = b;
    if (x->score != y->score) return x->score < y->score ? 1 : -1;
    if (x->index_score != y->index_score) return x->index_score < y->index_score ? 1 : -1;
    return strcmp(x->id, y->id);
}

/* Last seen and last touch of the rows shown: their records decoded (either layout), one
 * round trip. A record that does not decode keeps them unknown. */
static int lf_top_details(lf_cli_t *cli, lf_top_rows_t *rs)
{
    char key[LF_KEY_MAX];
    int rc;
    if (!rs->n) return 0;
    lf_cli_batch_t b = {0};
    for (size_t i = 0; i < rs->n; i++) {
        lf_key_lead(key, sizeof(key), cli->cfg.redis_prefix, rs->rows[i].id,
                    strlen(rs->rows[i].id));
        lf_cli_batch_cmd(&b, "HGETALL", key, NULL);
    }
    lf_lead_t *l = lf_malloc(sizeof(*l));
    if ((rc = lf_cli_batch_run(cli, &b, "HGETALL of the leads shown")) == 0) {
        for (size_t i = 0; i < rs->n; i++) {
            const redisReply *h = lf_cli_batch_reply(&b, i);
            size_t n = h->elements / 2;
            lf_err_t err = {0};
            lf_str_t *f = lf_calloc(2 * n + 1, sizeof(*f)), *v = f + n;
            for (size_t k = 0; k < n; k++) {
                const redisReply *kf = h->element[2 * k], *kv = h->element[2 * k + 1];
                f[k] = (lf_str_t){kf->str ? kf->str : "", kf->str ? (uint32_t)kf->len : 0};
                v[k] = (lf_str_t){kv->str ? kv->str : "", kv->str ? (uint32_t)kv->len : 0};
            }
            if (n && lf_lead_decode(l, lf_str_from(rs->rows[i].id), f, v, n, &cli->cfg.model,
                                    &err) == LF_OK) {
                rs->rows[i].last_seen_ms = l->last_seen_ms;
                snprintf(rs->rows[i].lt_source, sizeof(rs->rows[i].lt_source), "%s",
                         l->last_touch.source);
            }
            lf_free(f);
        }
    }
    lf_free(l);
    lf_cli_batch_free(&b);
    return rc;
}

/*---- Output -------------------------------------------------------------------------------*/

/* "ranked by score at <time> (<why>) among ..." */
static void lf_top_print_what(const lf_top_info_t *info)
{
    char a[40], b[40];
    printf("top %ld%s%s by score at %s (%s)", info->n, info->stage ? " in stage " : "",
           info->stage ? info->stage : "", lf_cli_fmt_time(info->at_ms, a, sizeof(a)),
           strcmp(info->at_source, "option") == 0 ? "--at" : "now");
    if (strcmp(info->source_key, info->top_key) == 0)
        printf(", among the %s most engaged known leads in %s\n",
               lf_cli_fmt_count(info->scanned - info->skipped_visitors - info->skipped_missing, b,
                                sizeof(b)),
               info->top_key);
    else
        printf(", among all %s leads of %s\n", lf_cli_fmt_count(info->candidates, b, sizeof(b)),
               info->source_key);
    if (info->bounded)
        printf("(read the first %s members of %s only: it holds %s)\n",
               lf_cli_fmt_count(info->scanned, a, sizeof(a)), info->top_key,
               lf_cli_fmt_count(info->total, b, sizeof(b)));
    if (info->skipped_visitors || info->skipped_missing)
        printf("(skipped %ld member%s of %s that %s: %ld visitor%s of the layout before, %ld "
               "with no record)\n",
               info->skipped_visitors + info->skipped_missing,
               info->skipped_visitors + info->skipped_missing == 1 ? "" : "s", info->source_key,
               info->skipped_visitors + info->skipped_missing == 1 ? "is not a known lead"
                                                                   : "are not known leads",
               info->skipped_visitors, info->skipped_visitors == 1 ? "" : "s",
               info->skipped_missing);
}

static void lf_top_print(const lf_cli_t *cli, const lf_top_info_t *info, const lf_top_rows_t *rs)
{
    const lf_model_t *m = &cli->cfg.model;
    char a[40];
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
        double e = r->score - r->fit;
        snprintf(rank, sizeof(rank), "%zu", i + 1);
        lf_str_escape(lf_str_from(r->id), id, sizeof(id));
        snprintf(score, sizeof(score), "%.2f", lf_cli_num(r->score));
        snprintf(fit, sizeof(fit), "%.2f", lf_cli_num(r->fit));
        snprintf(eng, sizeof(eng), "%.2f", lf_cli_num(e));
        lf_table_add(
            &t, (const char *const[]){
                    rank, id, score, fit, eng, lf_cli_grade(r->score, m), lf_stage_name(r->stage),
                    lf_cli_fmt_time(r->last_seen_ms, a, sizeof(a)),
                    r->lt_source[0] ? lf_str_escape(lf_str_from(r->lt_source), src, sizeof(src))
                                    : NULL});
    }
    lf_top_print_what(info);
    if (rs->n)
        lf_table_print(&t, stdout, 0);
    else
        printf("no leads%s\n", info->stage ? " in this stage" : "");
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
    cJSON_AddStringToObject(o, "ranked_by", "score_at");
    cJSON_AddStringToObject(o, "source", info->source_key);
    cJSON_AddNumberToObject(o, "scanned", (double)info->scanned);
    cJSON_AddNumberToObject(o, "candidates", (double)info->candidates);
    cJSON_AddNumberToObject(o, "skipped_visitors", (double)info->skipped_visitors);
    cJSON_AddNumberToObject(o, "skipped_missing", (double)info->skipped_missing);
    cJSON_AddNumberToObject(o, "max_candidates", LF_TOP_CANDIDATES_MAX);
    cJSON_AddBoolToObject(o, "bounded", info->bounded);
    cJSON *arr = cJSON_AddArrayToObject(o, "leads");
    for (size_t i = 0; i < rs->n; i++) {
        const lf_top_row_t *r = &rs->rows[i];
        cJSON *x = cJSON_CreateObject();
        cJSON_AddNumberToObject(x, "rank", (double)(i + 1));
        cJSON_AddStringToObject(x, "id", r->id);
        if (r->in_top)
            cJSON_AddNumberToObject(x, "index_score", r->index_score);
        else
            cJSON_AddNullToObject(x, "index_score");
        cJSON_AddBoolToObject(x, "has_record", 1);
        cJSON_AddNumberToObject(x, "score", r->score);
        cJSON_AddNumberToObject(x, "fit", r->fit);
        cJSON_AddNumberToObject(x, "engagement", r->score - r->fit);
        cJSON_AddStringToObject(x, "grade", lf_cli_grade(r->score, m));
        cJSON_AddStringToObject(x, "stage", lf_stage_name(r->stage));
        cJSON_AddNumberToObject(x, "eng", r->eng);
        lf_cli_json_time(x, "t", r->t_ms);
        lf_cli_json_time(x, "last_seen", r->last_seen_ms);
        if (r->lt_source[0])
            cJSON_AddStringToObject(x, "last_touch_source", r->lt_source);
        else
            cJSON_AddNullToObject(x, "last_touch_source");
        cJSON_AddItemToArray(arr, x);
    }
    return o;
}

/*---- The command --------------------------------------------------------------------------*/

/* The options into *info: LF_CLI_GO, or the exit status after a message. */
static int lf_top_args(lf_cli_t *cli, int argc, char **argv, lf_top_info_t *info)
{
    const char *at_arg = NULL, *n_arg = NULL, *pos = NULL;
    const lf_cli_opt_t own[] = {
        {"-n", &n_arg}, {"--stage", &info->stage}, {"--at", &at_arg}, {NULL, NULL}};
    int64_t n;
    for (int i = 1; i < argc; i++) {
        int o = lf_cli_option(cli, argc, argv, &i, own);
        if (o == LF_CLI_OPT_HELP) return LF_CLI_EXIT_OK;
        if (o == LF_CLI_OPT_ERROR) return LF_CLI_EXIT_USAGE;
        if (o == LF_CLI_OPT_TAKEN) continue;
        if (argv[i][0] == '-' || pos)
            return lf_cli_usage_error(cli, "unexpected argument %s", argv[i]);
        pos = argv[i];
    }
    if (pos && n_arg) return lf_cli_usage_error(cli, "N given twice (%s and -n %s)", pos, n_arg);
    if (pos) n_arg = pos;
    if (n_arg) {
        if (lf_parse_i64(n_arg, 1, LF_TOP_MAX_N, &n) != LF_OK)
            return lf_cli_usage_error(cli, "-n wants a number from 1 to %d, not \"%s\"",
                                      LF_TOP_MAX_N, n_arg);
        info->n = (long)n;
    }
    if (info->stage &&
        lf_stage_from_name(info->stage, strlen(info->stage), &info->stage_v) != LF_OK)
        return lf_cli_usage_error(cli, "unknown stage \"%s\"", info->stage);
    if (info->stage && info->stage_v == LF_STAGE_VISITOR)
        return lf_cli_usage_error(cli, "visitors are not ranked: lf:top holds known leads only");
    if (at_arg) {
        if (lf_cli_parse_at(cli, at_arg, &info->at_ms)) return LF_CLI_EXIT_USAGE;
        info->at_source = "option";
    }
    return LF_CLI_GO;
}

/* The candidates: lf:top's, or a small sales-active stage's whole set; ranked, the first n
 * kept and their records read. */
static int lf_top_read(lf_cli_t *cli, lf_top_info_t *info, const char *stage_key, lf_top_rows_t *rs)
{
    /* Per shard: one on one Redis, every slot's on a cluster (keys.h). */
    size_t ns = lf_cli_nshards(cli);
    long long *top_cards = lf_calloc(ns, sizeof(*top_cards));
    long long *stage_cards = lf_calloc(ns, sizeof(*stage_cards)), stage_total = 0;
    int rc, direct = info->stage && lf_writes_stage_indexed(info->stage_v);
    if ((rc = lf_cli_zcard(cli, info->top_key, &info->total, top_cards))) goto out;
    if (direct && (rc = lf_cli_zcard(cli, stage_key, &stage_total, stage_cards))) goto out;
    direct = direct && stage_total <= LF_TOP_STAGE_DIRECT;
    info->source_key = direct ? stage_key : info->top_key;
    if (direct)
        rc = lf_top_read_stage(cli, info, stage_cards, rs);
    else if (cli->cc)
        rc = lf_top_read_index_cluster(cli, info, top_cards, rs);
    else
        rc = lf_top_read_index(cli, info, rs);
    if (rc) goto out;
    if (rs->n > 1) qsort(rs->rows, rs->n, sizeof(*rs->rows), lf_top_cmp_desc);
    if (rs->n > (size_t)info->n) rs->n = (size_t)info->n;
    rc = lf_top_details(cli, rs);
out:
    lf_free(top_cards);
    lf_free(stage_cards);
    return rc;
}

int lf_cmd_top(int argc, char **argv)
{
    lf_cli_t cli;
    lf_top_rows_t rs = {0};
    lf_top_info_t info = {0};
    char top_key[LF_KEY_MAX], stage_key[LF_KEY_MAX];
    int rc;

    lf_cli_init(&cli, argc > 0 ? argv[0] : "top", lf_top_usage);
    info.n = 10;
    if ((rc = lf_top_args(&cli, argc, argv, &info)) != LF_CLI_GO) return rc;
    if (!info.at_source) {
        info.at_ms = lf_wall_ms();
        info.at_source = "now";
    }
    if ((rc = lf_cli_open(&cli))) goto out;
    lf_key_top(top_key, sizeof(top_key), cli.cfg.redis_prefix);
    lf_key_stage(stage_key, sizeof(stage_key), cli.cfg.redis_prefix,
                 info.stage ? info.stage_v : LF_STAGE_MQL);
    info.top_key = top_key;
    if ((rc = lf_top_read(&cli, &info, stage_key, &rs))) goto out;
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
