/* The back-test report (cli_report.h): reading both sides from Redis, streaming. Pass 1 SCANs
 * the before side's "<prefix>lead:*" keys; each SCAN reply's leads are read from both sides
 * in one pipelined round trip (HGETALL of both keys per lead), decoded with each side's
 * model and added to the report (cli_report_calc.c). Pass 2 SCANs the after side the same
 * way for the leads pass 1 did not see: the ones only it has. Then each side's visitors (its
 * funnel) and stream positions (its progress hashes), and the report is printed. */
#include <hiredis/hiredis.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli_report.h"
#include "cli_stats_int.h"
#include "leadflow/alloc.h"
#include "leadflow/keys.h"
#include "leadflow/lead_codec.h"
#include "leadflow/redis.h"

#define LF_REPORT_SCAN_COUNT 1000
#define LF_REPORT_WM_MAX 64 /* progress hashes shown per side */

typedef struct {
    lf_cli_t *cli;
    lf_report_t *r;
    const lf_report_opts_t *opts;
    lf_idset_t seen;
    lf_lead_t *lb, *la; /* decoding space, one per side */
    lf_str_t *fields;   /* an HGETALL reply as pairs */
    size_t fields_cap;
    uint64_t read;
    lf_err_t *err;
} lf_report_reader_t;

/*---- Replies ------------------------------------------------------------------------------*/

/* Read n pipelined replies into rs[]; LF_ERR with err set (all freed) when one failed. */
static int lf_report_replies(lf_report_reader_t *rd, redisReply **rs, size_t n, const char *what)
{
    redisContext *c = rd->cli->redis;
    memset(rs, 0, n * sizeof(*rs));
    for (size_t i = 0; i < n; i++) {
        void *x = NULL;
        if (redisGetReply(c, &x) != REDIS_OK) x = NULL;
        rs[i] = x;
        if (!lf_redis_reply_ok(c, rs[i], what, rd->err)) {
            /* The rest stay queued, or the connection is gone: the report ends here. */
            lf_cli_free_replies(rs, i + 1);
            return LF_ERR;
        }
    }
    return LF_OK;
}

static int lf_report_reply1(lf_report_reader_t *rd, redisReply **r, const char *what)
{
    return lf_report_replies(rd, r, 1, what);
}

/*---- Leads --------------------------------------------------------------------------------*/

/* One side's record of a lead decoded into l: l, or NULL when it has none (no hash, or a
 * visitor of the layout before) or it does not decode (counted as unreadable: *bad set). */
static const lf_lead_t *lf_report_decode(lf_report_reader_t *rd, lf_report_sidestat_t *s,
                                         const char *id, const redisReply *h, lf_lead_t *l,
                                         int *bad)
{
    size_t n = h->type == REDIS_REPLY_ARRAY ? h->elements / 2 : 0;
    lf_err_t derr = {0};
    if (!n) return NULL;
    if (2 * n > rd->fields_cap) {
        rd->fields_cap = 2 * n;
        rd->fields = lf_realloc(rd->fields, rd->fields_cap * sizeof(*rd->fields));
    }
    lf_str_t *f = rd->fields, *v = rd->fields + n;
    for (size_t k = 0; k < n; k++) {
        const redisReply *kf = h->element[2 * k], *kv = h->element[2 * k + 1];
        f[k] = (lf_str_t){kf->str ? kf->str : "", kf->str ? (uint32_t)kf->len : 0};
        v[k] = (lf_str_t){kv->str ? kv->str : "", kv->str ? (uint32_t)kv->len : 0};
    }
    lf_lead_init(l, lf_str_from(id));
    if (lf_lead_decode(l, lf_str_from(id), f, v, n, s->side->model, &derr) != LF_OK) {
        s->unreadable++;
        *bad = 1;
        return NULL;
    }
    if (l->anonymous || l->stage == LF_STAGE_VISITOR) return NULL; /* not a known lead */
    return l;
}

/* The leads of one SCAN reply: those not seen yet, both sides read in one round trip. */
static int lf_report_chunk(lf_report_reader_t *rd, const char *scan_prefix, const redisReply *keys)
{
    char(*ids)[LF_ID_MAX + 1] = lf_malloc((keys->elements ? keys->elements : 1) * sizeof(*ids));
    char key[LF_KEY_MAX];
    size_t n = 0;
    int rc = LF_OK;
    for (size_t i = 0; i < keys->elements; i++) {
        if (!lf_cli_lead_key_id(scan_prefix, keys->element[i], ids[n], sizeof(ids[n]))) continue;
        if (!lf_idset_add(&rd->seen, lf_hash64(ids[n], strlen(ids[n])))) continue;
        const char *prefixes[2] = {rd->r->b.side->prefix, rd->r->a.side->prefix};
        for (int s = 0; s < 2; s++) {
            int kl = lf_key_lead(key, sizeof(key), prefixes[s], ids[n], strlen(ids[n]));
            redisAppendCommand(rd->cli->redis, "HGETALL %b", key, (size_t)kl);
        }
        n++;
    }
    if (n) {
        redisReply **rs = lf_calloc(2 * n, sizeof(*rs));
        if ((rc = lf_report_replies(rd, rs, 2 * n, "HGETALL of the leads")) == LF_OK) {
            for (size_t i = 0; i < n; i++) {
                int bad = 0;
                const lf_lead_t *b =
                    lf_report_decode(rd, &rd->r->b, ids[i], rs[2 * i], rd->lb, &bad);
                const lf_lead_t *a =
                    lf_report_decode(rd, &rd->r->a, ids[i], rs[2 * i + 1], rd->la, &bad);
                if (!bad) lf_report_add(rd->r, ids[i], b, a);
            }
            lf_cli_free_replies(rs, 2 * n);
        }
        lf_free(rs);
        rd->read += n;
    }
    lf_free(ids);
    return rc;
}

/* A whole pass: SCAN the side's lead keys, chunk by chunk. */
static int lf_report_pass(lf_report_reader_t *rd, const lf_report_side_t *side, int phase)
{
    char pattern[2 * LF_KEY_MAX], cursor[32] = "0";
    size_t count = rd->opts->scan_count ? rd->opts->scan_count : LF_REPORT_SCAN_COUNT;
    lf_cli_glob(pattern, sizeof(pattern), side->prefix, "lead:*");
    do {
        redisReply *r = NULL;
        redisAppendCommand(rd->cli->redis, "SCAN %s MATCH %s COUNT %lu", cursor, pattern,
                           (unsigned long)count);
        if (lf_report_reply1(rd, &r, "SCAN of the leads")) return LF_ERR;
        if (r->type != REDIS_REPLY_ARRAY || r->elements != 2 ||
            r->element[0]->type != REDIS_REPLY_STRING || r->element[1]->type != REDIS_REPLY_ARRAY) {
            lf_err_set(rd->err, LF_ERR, "SCAN of the leads: unexpected reply");
            freeReplyObject(r);
            return LF_ERR;
        }
        snprintf(cursor, sizeof(cursor), "%.*s", (int)r->element[0]->len, r->element[0]->str);
        int rc = lf_report_chunk(rd, side->prefix, r->element[1]);
        freeReplyObject(r);
        if (rc) return rc;
        if (rd->opts->progress) rd->opts->progress(rd->opts->progress_arg, phase, rd->read);
    } while (strcmp(cursor, "0") != 0);
    return LF_OK;
}

/*---- Visitors and stream positions --------------------------------------------------------*/

/* The live visitors of <prefix>funnel: the buckets "visitor:<unix s>" still ahead. */
static int lf_report_visitors(lf_report_reader_t *rd, lf_report_sidestat_t *s, int64_t now_ms)
{
    char key[LF_KEY_MAX];
    redisReply *h = NULL;
    lf_key_funnel(key, sizeof(key), s->side->prefix);
    redisAppendCommand(rd->cli->redis, "HGETALL %s", key);
    if (lf_report_reply1(rd, &h, "HGETALL of the funnel")) return LF_ERR;
    for (size_t i = 0; h->type == REDIS_REPLY_ARRAY && i + 1 < h->elements; i += 2) {
        const redisReply *f = h->element[i];
        char name[64];
        int64_t e;
        if (f->type != REDIS_REPLY_STRING || f->len <= 8 || memcmp(f->str, "visitor:", 8) != 0)
            continue;
        snprintf(name, sizeof(name), "%.*s", (int)(f->len - 8), f->str + 8);
        if (lf_parse_i64(name, 0, INT64_MAX / 1000, &e) == LF_OK && e * 1000 > now_ms)
            s->visitors += lf_cli_reply_i64(h->element[i + 1], 0);
    }
    freeReplyObject(h);
    return LF_OK;
}

/* A progress hash's HGETALL into the side's list. */
static void lf_report_wm_add(lf_report_sidestat_t *s, const char *key, const redisReply *h)
{
    lf_wm_t wm = {0};
    size_t pl = strlen(s->side->prefix);
    const char *rest = key + pl + 3, *colon = strrchr(rest, ':'); /* past "<prefix>wm:" */
    if (!h || h->type != REDIS_REPLY_ARRAY || !h->elements) return;
    s->wm = lf_realloc(s->wm, (s->nwm + 1) * sizeof(*s->wm));
    lf_report_wm_t *x = &s->wm[s->nwm++];
    memset(x, 0, sizeof(*x));
    snprintf(x->key, sizeof(x->key), "%s", key);
    if (colon) {
        snprintf(x->group, sizeof(x->group), "%.*s", (int)(colon - rest), rest);
        snprintf(x->topic, sizeof(x->topic), "%s", colon + 1);
    } else {
        snprintf(x->group, sizeof(x->group), "%s", rest);
    }
    lf_stats_wm_parse(h, &wm);
    x->nparts = wm.n;
    x->parts = lf_calloc(wm.n ? wm.n : 1, sizeof(*x->parts));
    for (size_t i = 0; i < wm.n; i++) {
        x->parts[i].partition = wm.parts[i].partition;
        x->parts[i].next_offset = wm.parts[i].next_offset;
    }
    x->consumed = wm.total.c[LF_WM_CONSUMED];
    x->applied = wm.total.c[LF_WM_APPLIED];
    lf_free(wm.parts);
}

static int lf_report_wm_cmp(const void *x, const void *y)
{
    return strcmp(((const lf_report_wm_t *)x)->key, ((const lf_report_wm_t *)y)->key);
}

/* The side's progress hashes: the one named by group and topic, else every <prefix>wm:*. */
static int lf_report_positions(lf_report_reader_t *rd, lf_report_sidestat_t *s)
{
    const lf_report_side_t *side = s->side;
    char(*keys)[LF_KEY_MAX] = lf_calloc(LF_REPORT_WM_MAX, sizeof(*keys));
    size_t nkeys = 0;
    int rc = LF_OK;
    if (side->group && side->topic) {
        lf_key_watermarks(keys[0], sizeof(keys[0]), side->prefix, side->group, side->topic);
        nkeys = 1;
    } else {
        char pattern[2 * LF_KEY_MAX], cursor[32] = "0";
        lf_cli_glob(pattern, sizeof(pattern), side->prefix, "wm:*");
        do {
            redisReply *r = NULL;
            redisAppendCommand(rd->cli->redis, "SCAN %s MATCH %s COUNT %d", cursor, pattern,
                               LF_REPORT_SCAN_COUNT * 10);
            if ((rc = lf_report_reply1(rd, &r, "SCAN of the progress hashes"))) break;
            if (r->type != REDIS_REPLY_ARRAY || r->elements != 2) {
                freeReplyObject(r);
                lf_err_set(rd->err, LF_ERR, "SCAN of the progress hashes: unexpected reply");
                rc = LF_ERR;
                break;
            }
            snprintf(cursor, sizeof(cursor), "%.*s", (int)r->element[0]->len, r->element[0]->str);
            for (size_t i = 0; i < r->element[1]->elements && nkeys < LF_REPORT_WM_MAX; i++) {
                const redisReply *k = r->element[1]->element[i];
                int dup = 0;
                if (k->type != REDIS_REPLY_STRING || k->len >= LF_KEY_MAX) continue;
                for (size_t j = 0; j < nkeys && !dup; j++)
                    dup = strlen(keys[j]) == k->len && memcmp(keys[j], k->str, k->len) == 0;
                if (!dup) snprintf(keys[nkeys++], LF_KEY_MAX, "%.*s", (int)k->len, k->str);
            }
            freeReplyObject(r);
        } while (strcmp(cursor, "0") != 0);
    }
    if (!rc && nkeys) {
        redisReply **rs = lf_calloc(nkeys, sizeof(*rs));
        for (size_t i = 0; i < nkeys; i++)
            redisAppendCommand(rd->cli->redis, "HGETALL %s", keys[i]);
        if ((rc = lf_report_replies(rd, rs, nkeys, "HGETALL of the progress")) == LF_OK) {
            for (size_t i = 0; i < nkeys; i++)
                lf_report_wm_add(s, keys[i], rs[i]);
            lf_cli_free_replies(rs, nkeys);
        }
        lf_free(rs);
        if (s->nwm > 1) qsort(s->wm, s->nwm, sizeof(*s->wm), lf_report_wm_cmp);
    }
    lf_free(keys);
    return rc;
}

/*---- The report ---------------------------------------------------------------------------*/

int lf_report_run(lf_cli_t *cli, const lf_report_side_t *before, const lf_report_side_t *after,
                  const lf_report_opts_t *opts, FILE *out, lf_err_t *err)
{
    lf_report_t r;
    lf_report_reader_t rd;
    size_t limit = opts->limit ? opts->limit : LF_REPORT_LIMIT_DEFAULT;
    int rc;
    if (limit > LF_REPORT_LIMIT_MAX) limit = LF_REPORT_LIMIT_MAX;
    lf_report_init(&r, before, after, opts->at_ms, limit);
    memset(&rd, 0, sizeof(rd));
    rd.cli = cli;
    rd.r = &r;
    rd.opts = opts;
    rd.err = err;
    rd.lb = lf_malloc(sizeof(*rd.lb));
    rd.la = lf_malloc(sizeof(*rd.la));
    int64_t now = lf_wall_ms(); /* visitors expire by the wall clock, not --at */
    if ((rc = lf_report_pass(&rd, before, 1)) == LF_OK &&
        (rc = lf_report_pass(&rd, after, 2)) == LF_OK &&
        (rc = lf_report_visitors(&rd, &r.b, now)) == LF_OK &&
        (rc = lf_report_visitors(&rd, &r.a, now)) == LF_OK &&
        (rc = lf_report_positions(&rd, &r.b)) == LF_OK &&
        (rc = lf_report_positions(&rd, &r.a)) == LF_OK) {
        lf_report_finish(&r);
        if (opts->json)
            lf_report_print_json(&r, out);
        else
            lf_report_print_text(&r, out);
        fflush(out);
    }
    lf_idset_free(&rd.seen);
    lf_free(rd.lb);
    lf_free(rd.la);
    lf_free(rd.fields);
    lf_report_free(&r);
    return rc;
}
