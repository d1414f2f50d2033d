/* `leadflow stats`: what the numbers read mean. The watermarks per partition and their
 * conservation check, the funnel's reach, and the verdict: which instances are live, stale,
 * degraded or stopped, and the exit status with one sentence per problem. */
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli_stats_int.h"
#include "leadflow/alloc.h"

/*---- Watermarks ---------------------------------------------------------------------------*/

const char *const lf_stats_wm_counters[LF_WM_N] = {"consumed", "applied",  "duplicates",
                                                   "dead",     "filtered", "transitions"};

static lf_wm_part_t *lf_wm_part(lf_wm_t *wm, long p)
{
    for (size_t i = 0; i < wm->n; i++)
        if (wm->parts[i].partition == p) return &wm->parts[i];
    if (wm->n == wm->cap) {
        wm->cap = wm->cap ? wm->cap * 2 : 16;
        wm->parts = lf_realloc(wm->parts, wm->cap * sizeof(*wm->parts));
    }
    lf_wm_part_t *x = &wm->parts[wm->n++];
    memset(x, 0, sizeof(*x));
    x->partition = p;
    x->next_offset = -1;
    return x;
}

static int lf_wm_part_cmp(const void *a, const void *b)
{
    long x = ((const lf_wm_part_t *)a)->partition, y = ((const lf_wm_part_t *)b)->partition;
    return (x > y) - (x < y);
}

void lf_stats_wm_parse(const redisReply *h, lf_wm_t *wm)
{
    memset(&wm->total, 0, sizeof(wm->total));
    wm->total.partition = -1;
    for (size_t i = 0; i + 1 < h->elements; i += 2) {
        const redisReply *f = h->element[i];
        char name[128], *end;
        lf_cli_reply_str(f, name, sizeof(name));
        long p = strtol(name, &end, 10);
        if (end == name || p < 0) continue; /* not a partition's field */
        int64_t v = lf_cli_reply_i64(h->element[i + 1], 0);
        if (*end == '\0') {
            lf_wm_part(wm, p)->next_offset = v;
            continue;
        }
        if (*end != '.') continue;
        for (int k = 0; k < LF_WM_N; k++)
            if (strcmp(end + 1, lf_stats_wm_counters[k]) == 0) lf_wm_part(wm, p)->c[k] = v;
    }
    if (wm->n > 1) qsort(wm->parts, wm->n, sizeof(*wm->parts), lf_wm_part_cmp);
    for (size_t i = 0; i < wm->n; i++)
        for (int k = 0; k < LF_WM_N; k++)
            wm->total.c[k] += wm->parts[i].c[k];
}

int64_t lf_stats_wm_diff(const lf_wm_part_t *p)
{
    return p->c[LF_WM_CONSUMED] - (p->c[LF_WM_APPLIED] + p->c[LF_WM_DUP] + p->c[LF_WM_DEAD]);
}

/*---- Funnel -------------------------------------------------------------------------------*/

void lf_stats_funnel_parse(const redisReply *h, lf_stats_t *st)
{
    static const char vis[] = "visitor:";
    const size_t vl = sizeof(vis) - 1;
    for (size_t i = 0; i + 1 < h->elements; i += 2) {
        const redisReply *f = h->element[i], *v = h->element[i + 1];
        lf_stage_t s;
        int64_t n = lf_cli_reply_i64(v, 0);
        if (f->type != REDIS_REPLY_STRING) continue;
        if (f->len > vl && memcmp(f->str, vis, vl) == 0) {
            char num[32];
            int64_t at_s;
            snprintf(num, sizeof(num), "%.*s", (int)(f->len - vl), f->str + vl);
            if (f->len - vl >= sizeof(num) ||
                lf_parse_i64(num, 0, INT64_MAX / 1000, &at_s) != LF_OK)
                continue;
            if (at_s * 1000 > st->now_ms) {
                st->stage_count[LF_STAGE_VISITOR] += n;
                st->visitor_buckets_live++;
                if (!st->visitor_next_expiry_s || at_s < st->visitor_next_expiry_s)
                    st->visitor_next_expiry_s = at_s;
            } else {
                st->visitors_expired += n;
                st->visitor_buckets_expired++;
            }
        } else if (lf_stage_from_name(f->str, f->len, &s) == LF_OK && s != LF_STAGE_VISITOR) {
            st->stage_count[s] += n;
        }
    }
}

const lf_stage_t lf_stats_funnel_steps[LF_NFUNNEL_STEPS] = {
    LF_STAGE_LEAD, LF_STAGE_MQL, LF_STAGE_SQL, LF_STAGE_OPPORTUNITY, LF_STAGE_CUSTOMER};

/* Nurture and disqualified leads are not counted: how far they got is not indexed. */
long long lf_stats_funnel_reached(const long long *count, lf_stage_t s)
{
    long long n = 0;
    for (int i = (int)s; i <= LF_STAGE_CUSTOMER; i++)
        n += count[i];
    return n;
}

/*---- The verdict --------------------------------------------------------------------------*/

static void lf_stats_problem(lf_stats_t *st, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void lf_stats_problem(lf_stats_t *st, int code, const char *fmt, ...)
{
    char msg[768];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    st->problems = lf_realloc(st->problems, (st->nproblems + 1) * sizeof(*st->problems));
    st->problems[st->nproblems++] = lf_strdup(msg);
    if (code > st->verdict) st->verdict = code;
}

/* Present, stopped, stale, degraded, live: from each heartbeat's state and age. */
static void lf_stats_classify(lf_stats_t *st)
{
    char state[64];
    for (size_t i = 0; i < st->ninst; i++) {
        lf_instance_t *in = &st->inst[i];
        const redisReply *h = in->hash;
        if (!h->elements) continue;
        in->present = 1;
        st->npresent++;
        lf_cli_reply_str(lf_cli_hash_get(h, "state"), state, sizeof(state));
        int64_t hb = lf_cli_reply_i64(lf_cli_hash_get(h, "heartbeat_ms"), 0);
        /* A heartbeat from the future is a clock difference between hosts: fresh. */
        in->hb_age_ms = hb ? (st->now_ms > hb ? st->now_ms - hb : 0) : -1;
        in->stopped = strcmp(state, "stopped") == 0;
        in->stale = !in->stopped && (!hb || in->hb_age_ms > st->stale_after_ms);
        in->degraded = !in->stopped && strcmp(state, "ok") != 0;
        if (!in->stopped && !in->stale) st->nlive++;
    }
}

/* A partition off while the total holds (two errors cancelling) is broken too. */
static void lf_stats_judge_conservation(lf_stats_t *st)
{
    int64_t diff = lf_stats_wm_diff(&st->wm.total);
    char bad[256] = "";
    size_t n = 0;
    for (size_t i = 0; i < st->wm.n && n + 24 < sizeof(bad); i++)
        if (lf_stats_wm_diff(&st->wm.parts[i]))
            n += (size_t)snprintf(bad + n, sizeof(bad) - n, "%s%ld", n ? ", " : "",
                                  st->wm.parts[i].partition);
    if (diff || n)
        lf_stats_problem(st, LF_CLI_EXIT_CONSERVATION,
                         "conservation broken: consumed - (applied + duplicates + "
                         "dead-lettered) = %" PRId64 " (partitions %s) in %s: events were lost "
                         "or counted twice; keep the instances' logs and report it",
                         diff, n ? bad : "-", st->wm_key);
}

static void lf_stats_judge_instances(lf_stats_t *st)
{
    char state[64], reason[512], age[32], lim[32];
    for (size_t i = 0; i < st->ninst; i++) {
        const lf_instance_t *in = &st->inst[i];
        if (!in->present) continue;
        lf_cli_fmt_duration(st->stale_after_ms, lim, sizeof(lim));
        if (in->stale && in->hb_age_ms < 0)
            lf_stats_problem(st, LF_CLI_EXIT_UNHEALTHY,
                             "instance %s: its heartbeat has no heartbeat_ms: not written by a "
                             "leadflow run of this version",
                             in->id);
        else if (in->stale)
            lf_stats_problem(st, LF_CLI_EXIT_UNHEALTHY,
                             "instance %s: last heartbeat %s ago (stale after %s): the process "
                             "is stuck, paused, or cannot write to Redis; look at its log",
                             in->id, lf_cli_fmt_duration(in->hb_age_ms, age, sizeof(age)), lim);
        if (in->degraded) {
            lf_cli_reply_str(lf_cli_hash_get(in->hash, "state"), state, sizeof(state));
            lf_cli_reply_str(lf_cli_hash_get(in->hash, "reason"), reason, sizeof(reason));
            lf_stats_problem(st, LF_CLI_EXIT_UNHEALTHY, "instance %s is %s: %s", in->id,
                             state[0] ? state : "in no state",
                             reason[0] ? reason : "no reason given");
        }
    }
}

/* The problems in the order printed: the worst first (conservation, instances, none). */
void lf_stats_judge(const lf_cli_t *cli, lf_stats_t *st)
{
    lf_stats_classify(st);
    lf_stats_judge_conservation(st);
    lf_stats_judge_instances(st);
    if (!st->nlive)
        lf_stats_problem(st, LF_CLI_EXIT_NO_INSTANCE,
                         "no instance running: no live heartbeat under %sops:instance:* "
                         "(start `leadflow run`, or point -c / --redis at its Redis)",
                         cli->cfg.redis_prefix);
}
