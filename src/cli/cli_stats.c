/* `leadflow stats`: how the processor is doing, from Redis alone. Three parts:
 *   instances   lf:ops:instances and each one's heartbeat hash lf:ops:instance:<id>;
 *   progress    lf:wm:<group>:<topic>: per partition the next offset and the counters, and
 *               the conservation check consumed = applied + duplicates + dead-lettered;
 *   funnel      ZCARD of every lf:stage:<stage>, with conversion ratios.
 * Read-only: an instance id whose heartbeat key expired is reported, not removed.
 * The exit status is the verdict, for scripts and probes: 0 healthy; 3 no instance running;
 * 4 an instance degraded, or its heartbeat stale (written more than --stale-after ago: the
 * process is stuck or cut off from Redis, though its key has not expired yet); 5 the
 * conservation check fails. When several hold, the highest. 1 usage, 2 Redis unreadable. */
#include <cjson/cJSON.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "leadflow/commands.h"
#include "leadflow/alloc.h"
#include "cli_int.h"
#include "leadflow/keys.h"

static const char lf_stats_usage[] =
    "usage: leadflow stats [-c FILE] [--redis HOST:PORT] [--group ID] [--stale-after DURATION] "
    "[--json]\n"
    "  The running instances (state, uptime, partitions, lag, counters, rate, rules version,\n"
    "  last commit, what Redis lost), the consumer group's progress per partition with the\n"
    "  conservation check consumed = applied + duplicates + dead-lettered, the stage funnel,\n"
    "  and a verdict, also as the exit status.\n"
    "  -c, --config FILE       rules file (default: $LEADFLOW_CONFIG, else ./leadflow.yaml): "
    "prefix, group, topic\n"
    "  --redis HOST:PORT       override the rules file's redis.host / redis.port\n"
    "  --group ID              the consumer group to report on (default: kafka.group_id)\n"
    "  --stale-after DURATION  a heartbeat older than this is stale (default 10s; instances\n"
    "                          write one every second)\n"
    "  --json                  one JSON object (its \"health\" holds the verdict)\n"
    "Exit status: 0 healthy: an instance is live, none is degraded or stale, conservation\n"
    "holds; 1 usage or an unreadable rules file; 2 Redis unreachable; 3 no instance running;\n"
    "4 an instance degraded or its heartbeat stale; 5 conservation broken. When several\n"
    "hold, the highest.\n";

#define LF_STATS_STALE_MS 10000 /* 10 heartbeats missed: one is written every second */

/*---- Instances ----------------------------------------------------------------------------*/

typedef enum { LF_F_STR, LF_F_INT, LF_F_NUM } lf_field_type_t;

/* The heartbeat hash the pipeline writes, and how each field reads. */
static const struct {
    const char *name;
    lf_field_type_t type;
} lf_instance_fields[] = {
    {"instance", LF_F_STR},
    {"host", LF_F_STR},
    {"pid", LF_F_INT},
    {"version", LF_F_STR},
    {"started_ms", LF_F_INT},
    {"uptime_s", LF_F_INT},
    {"state", LF_F_STR},
    {"reason", LF_F_STR},
    {"partitions", LF_F_STR},
    {"lag", LF_F_INT},
    {"events_in", LF_F_INT},
    {"applied", LF_F_INT},
    {"duplicates", LF_F_INT},
    {"dead_lettered", LF_F_INT},
    {"filtered", LF_F_INT},
    {"transitions_out", LF_F_INT},
    {"events_per_s", LF_F_NUM},
    {"rules_version", LF_F_STR},
    {"last_commit_ms", LF_F_INT},
    {"heartbeat_ms", LF_F_INT},
    {"store_loss", LF_F_STR},    /* what Redis lost and what leadflow did; empty: nothing */
    {"store_loss_ms", LF_F_INT}, /* when */
};
#define LF_NINSTANCE_FIELDS (sizeof(lf_instance_fields) / sizeof(lf_instance_fields[0]))

typedef struct {
    char id[256];
    redisReply *hash; /* HGETALL; no elements = the key expired */
    int present;      /* it has a heartbeat key */
    int stopped;      /* state "stopped": a clean exit, not a problem */
    int stale;        /* heartbeat older than --stale-after (or none recorded) */
    int degraded;     /* a state other than ok / stopped */
    int64_t hb_age_ms;
} lf_instance_t;

static int lf_instance_cmp(const void *a, const void *b)
{
    return strcmp(((const lf_instance_t *)a)->id, ((const lf_instance_t *)b)->id);
}

/*---- Watermarks ---------------------------------------------------------------------------*/

/* The counters of lf:wm:<group>:<topic>, "<part>.<name>", in this order. */
static const char *const lf_wm_counters[] = {"consumed", "applied",  "duplicates",
                                             "dead",     "filtered", "transitions"};
enum { LF_WM_CONSUMED, LF_WM_APPLIED, LF_WM_DUP, LF_WM_DEAD, LF_WM_FILTERED, LF_WM_TRANS, LF_WM_N };

typedef struct {
    long partition;
    int64_t next_offset; /* -1: none recorded */
    int64_t c[LF_WM_N];
} lf_wm_part_t;

typedef struct {
    lf_wm_part_t *parts;
    size_t n, cap;
    lf_wm_part_t total;
} lf_wm_t;

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

static void lf_wm_parse(const redisReply *h, lf_wm_t *wm)
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
            if (strcmp(end + 1, lf_wm_counters[k]) == 0) lf_wm_part(wm, p)->c[k] = v;
    }
    if (wm->n > 1) qsort(wm->parts, wm->n, sizeof(*wm->parts), lf_wm_part_cmp);
    for (size_t i = 0; i < wm->n; i++)
        for (int k = 0; k < LF_WM_N; k++)
            wm->total.c[k] += wm->parts[i].c[k];
}

/* consumed - (applied + duplicates + dead): 0 when conservation holds. */
static int64_t lf_wm_diff(const lf_wm_part_t *p)
{
    return p->c[LF_WM_CONSUMED] - (p->c[LF_WM_APPLIED] + p->c[LF_WM_DUP] + p->c[LF_WM_DEAD]);
}

/*---- Funnel -------------------------------------------------------------------------------*/

/* The linear part of the funnel the conversion ratios follow. */
static const lf_stage_t lf_funnel_steps[] = {LF_STAGE_LEAD, LF_STAGE_MQL, LF_STAGE_SQL,
                                             LF_STAGE_OPPORTUNITY, LF_STAGE_CUSTOMER};
#define LF_NFUNNEL_STEPS 5

/* Leads at this stage or further along visitor -> ... -> customer. Nurture and disqualified
 * leads are not counted: how far they got is not indexed. */
static long long lf_funnel_reached(const long long *count, lf_stage_t s)
{
    long long n = 0;
    for (int i = (int)s; i <= LF_STAGE_CUSTOMER; i++)
        n += count[i];
    return n;
}

/*---- Human output -------------------------------------------------------------------------*/

typedef struct {
    lf_instance_t *inst;
    size_t ninst, npresent, nlive; /* in the set; with a heartbeat key; running and beating */
    char wm_key[LF_KEY_MAX];
    lf_wm_t wm;
    long long stage_count[LF_STAGE__COUNT];
    int64_t now_ms, stale_after_ms;
    /* The verdict: exit status and what is wrong, one sentence each. */
    int verdict;
    char **problems;
    size_t nproblems;
} lf_stats_t;

static const char *lf_count_or_dash(const redisReply *r, char *buf, size_t cap)
{
    if (!r) return "-";
    return lf_cli_fmt_count(lf_cli_reply_i64(r, 0), buf, cap);
}

static const char *lf_age(int64_t now_ms, int64_t ms, char *buf, size_t cap)
{
    char d[32];
    if (!ms) return "-";
    if (now_ms < ms)
        snprintf(buf, cap, "just now");
    else
        snprintf(buf, cap, "%s ago", lf_cli_fmt_duration(now_ms - ms, d, sizeof(d)));
    return buf;
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

/* Classify every instance, then the verdict: the worst first (conservation, instances, none). */
static void lf_stats_judge(const lf_cli_t *cli, lf_stats_t *st)
{
    char state[64], reason[512], age[32], lim[32];
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

    /* A partition off while the total holds (two errors cancelling) is broken too. */
    int64_t diff = lf_wm_diff(&st->wm.total);
    char bad[256] = "";
    size_t n = 0;
    for (size_t i = 0; i < st->wm.n && n + 24 < sizeof(bad); i++)
        if (lf_wm_diff(&st->wm.parts[i]))
            n += (size_t)snprintf(bad + n, sizeof(bad) - n, "%s%ld", n ? ", " : "",
                                  st->wm.parts[i].partition);
    if (diff || n)
        lf_stats_problem(st, LF_CLI_EXIT_CONSERVATION,
                         "conservation broken: consumed - (applied + duplicates + "
                         "dead-lettered) = %" PRId64 " (partitions %s) in %s: events were lost "
                         "or counted twice; keep the instances' logs and report it",
                         diff, n ? bad : "-", st->wm_key);
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
    if (!st->nlive)
        lf_stats_problem(st, LF_CLI_EXIT_NO_INSTANCE,
                         "no instance running: no live heartbeat under %sops:instance:* "
                         "(start `leadflow run`, or point -c / --redis at its Redis)",
                         cli->cfg.redis_prefix);
}

static void lf_stats_print_health(const lf_stats_t *st)
{
    if (!st->verdict) {
        printf("\nhealth: ok (exit 0)\n");
        return;
    }
    printf("\nhealth: FAILING (exit %d)\n", st->verdict);
    for (size_t i = 0; i < st->nproblems; i++)
        printf("  %s\n", st->problems[i]);
}

static void lf_stats_print_instances(const lf_stats_t *st)
{
    static const char *const head[] = {"INSTANCE", "STATE",   "UPTIME", "LAG",
                                       "IN",       "APPLIED", "DUP",    "DEAD",
                                       "TRANS",    "EV/S",    "RULES",  "LAST COMMIT"};
    lf_table_t t;
    int64_t sum[5] = {0};
    size_t nstale = 0, nstopped = 0;
    for (size_t i = 0; i < st->ninst; i++) {
        nstale += st->inst[i].stale;
        nstopped += st->inst[i].stopped;
    }
    printf("instances: %zu live", st->nlive);
    if (nstale) printf(", %zu stale", nstale);
    if (nstopped) printf(", %zu stopped", nstopped);
    if (st->ninst > st->npresent) printf(", %zu expired", st->ninst - st->npresent);
    printf("\n");
    if (!st->nlive) printf("  none running (no live heartbeat in Redis)\n");
    lf_table_init(&t, 12, head, 0x3FCu); /* UPTIME .. EV/S */
    for (size_t i = 0; i < st->ninst; i++) {
        const redisReply *h = st->inst[i].hash;
        if (!h->elements) continue;
        char state[64], up[32], lag[32], in[32], ap[32], dup[32], dead[32], tr[32], rate[32];
        char rules[64], commit[48];
        lf_cli_reply_str(lf_cli_hash_get(h, "state"), state, sizeof(state));
        lf_cli_fmt_duration(lf_cli_reply_i64(lf_cli_hash_get(h, "uptime_s"), 0) * 1000, up,
                            sizeof(up));
        snprintf(rate, sizeof(rate), "%.1f",
                 lf_cli_reply_double(lf_cli_hash_get(h, "events_per_s"), 0));
        lf_cli_reply_str(lf_cli_hash_get(h, "rules_version"), rules, sizeof(rules));
        if (st->inst[i].stale) snprintf(state, sizeof(state), "stale");
        const char *row[12] = {
            st->inst[i].id,
            state[0] ? state : NULL,
            up,
            lf_count_or_dash(lf_cli_hash_get(h, "lag"), lag, sizeof(lag)),
            lf_count_or_dash(lf_cli_hash_get(h, "events_in"), in, sizeof(in)),
            lf_count_or_dash(lf_cli_hash_get(h, "applied"), ap, sizeof(ap)),
            lf_count_or_dash(lf_cli_hash_get(h, "duplicates"), dup, sizeof(dup)),
            lf_count_or_dash(lf_cli_hash_get(h, "dead_lettered"), dead, sizeof(dead)),
            lf_count_or_dash(lf_cli_hash_get(h, "transitions_out"), tr, sizeof(tr)),
            rate,
            rules[0] ? rules : NULL,
            lf_age(st->now_ms, lf_cli_reply_i64(lf_cli_hash_get(h, "last_commit_ms"), 0), commit,
                   sizeof(commit)),
        };
        lf_table_add(&t, row);
        static const char *const summed[] = {"events_in", "applied", "duplicates", "dead_lettered",
                                             "transitions_out"};
        for (int k = 0; k < 5; k++)
            sum[k] += lf_cli_reply_i64(lf_cli_hash_get(h, summed[k]), 0);
    }
    if (st->npresent > 1) {
        char c[5][32];
        for (int k = 0; k < 5; k++)
            lf_cli_fmt_count(sum[k], c[k], sizeof(c[k]));
        lf_table_add(&t, (const char *const[]){"total", "", "", "", c[0], c[1], c[2], c[3], c[4],
                                               "", "", ""});
    }
    if (t.nrows) lf_table_print(&t, stdout, 2);
    size_t shown = t.nrows;
    lf_table_free(&t);

    /* What does not fit in the table: where it runs, its partitions, why it is degraded. */
    if (shown) putchar('\n');
    for (size_t i = 0; i < st->ninst; i++) {
        const redisReply *h = st->inst[i].hash;
        char host[128], pid[24], ver[64], parts[512], state[64], reason[256], hb[48], start[40];
        char loss[512], lim[32];
        if (!h->elements) continue;
        lf_cli_reply_str(lf_cli_hash_get(h, "host"), host, sizeof(host));
        lf_cli_reply_str(lf_cli_hash_get(h, "pid"), pid, sizeof(pid));
        lf_cli_reply_str(lf_cli_hash_get(h, "version"), ver, sizeof(ver));
        lf_cli_reply_str(lf_cli_hash_get(h, "partitions"), parts, sizeof(parts));
        lf_cli_reply_str(lf_cli_hash_get(h, "state"), state, sizeof(state));
        lf_cli_reply_str(lf_cli_hash_get(h, "reason"), reason, sizeof(reason));
        printf("  %s: host %s, pid %s, version %s, started %s, heartbeat %s\n", st->inst[i].id,
               host[0] ? host : "-", pid[0] ? pid : "-", ver[0] ? ver : "-",
               lf_cli_fmt_time(lf_cli_reply_i64(lf_cli_hash_get(h, "started_ms"), 0), start,
                               sizeof(start)),
               lf_age(st->now_ms, lf_cli_reply_i64(lf_cli_hash_get(h, "heartbeat_ms"), 0), hb,
                      sizeof(hb)));
        printf("    partitions %s\n", parts[0] ? parts : "none");
        if (strcmp(state, "ok") != 0 && !st->inst[i].stopped && (state[0] || reason[0]))
            printf("    %s: %s\n", state[0] ? state : "state",
                   reason[0] ? reason : "no reason given");
        if (st->inst[i].stale)
            printf("    heartbeat stale: none for over %s (stuck, paused, or cut off from "
                   "Redis)\n",
                   lf_cli_fmt_duration(st->stale_after_ms, lim, sizeof(lim)));
        lf_cli_reply_str(lf_cli_hash_get(h, "store_loss"), loss, sizeof(loss));
        if (loss[0]) {
            int64_t at = lf_cli_reply_i64(lf_cli_hash_get(h, "store_loss_ms"), 0);
            printf("    Redis lost data (%s, %s): %s\n", lf_age(st->now_ms, at, hb, sizeof(hb)),
                   lf_cli_fmt_time(at, start, sizeof(start)), loss);
        }
    }
    if (st->ninst > st->npresent) {
        printf("  expired (in the set, heartbeat key gone: stopped or dead):");
        for (size_t i = 0; i < st->ninst; i++)
            if (!st->inst[i].hash->elements) printf(" %s", st->inst[i].id);
        printf("\n");
    }
}

static void lf_stats_print_wm(const lf_cli_t *cli, const lf_stats_t *st)
{
    static const char *const head[] = {"PARTITION", "NEXT OFFSET", "CONSUMED", "APPLIED", "DUP",
                                       "DEAD",      "FILTERED",    "TRANS",    "CHECK"};
    const lf_wm_t *wm = &st->wm;
    char c[LF_WM_N][32], off[32], part[24];
    lf_table_t t;
    printf("\nconsumer group %s, topic %s (%s)\n", cli->cfg.kafka_group, cli->cfg.topic_events,
           st->wm_key);
    if (!wm->n) {
        printf("  nothing consumed yet\n");
        return;
    }
    lf_table_init(&t, 9, head, 0xFFu);
    for (size_t i = 0; i <= wm->n; i++) {
        const lf_wm_part_t *p = i < wm->n ? &wm->parts[i] : &wm->total;
        for (int k = 0; k < LF_WM_N; k++)
            lf_cli_fmt_count(p->c[k], c[k], sizeof(c[k]));
        if (i < wm->n) {
            snprintf(part, sizeof(part), "%ld", p->partition);
            if (p->next_offset >= 0)
                lf_cli_fmt_count(p->next_offset, off, sizeof(off));
            else
                snprintf(off, sizeof(off), "-");
        }
        lf_table_add(&t, (const char *const[]){i < wm->n ? part : "total", i < wm->n ? off : "",
                                               c[0], c[1], c[2], c[3], c[4], c[5],
                                               lf_wm_diff(p) ? "MISMATCH" : "ok"});
    }
    lf_table_print(&t, stdout, 2);
    lf_table_free(&t);

    const lf_wm_part_t *tot = &wm->total;
    int64_t diff = lf_wm_diff(tot);
    for (int k = 0; k < LF_WM_N; k++)
        lf_cli_fmt_count(tot->c[k], c[k], sizeof(c[k]));
    if (!diff) {
        printf("  conservation OK: consumed %s = applied %s + duplicates %s + dead-lettered %s\n",
               c[0], c[1], c[2], c[3]);
    } else {
        char d[32];
        lf_cli_fmt_count(diff, d, sizeof(d));
        printf("  conservation MISMATCH: consumed %s != applied %s + duplicates %s + "
               "dead-lettered %s (difference %s)\n",
               c[0], c[1], c[2], c[3], d);
    }
    for (size_t i = 0; i < wm->n; i++)
        if (lf_wm_diff(&wm->parts[i]))
            printf("  partition %ld: consumed - (applied + duplicates + dead) = %" PRId64 "\n",
                   wm->parts[i].partition, lf_wm_diff(&wm->parts[i]));
}

static void lf_stats_print_funnel(const lf_cli_t *cli, const lf_stats_t *st)
{
    static const char *const head[] = {"STAGE", "LEADS"};
    char n[32], a[32], b[32];
    lf_table_t t;
    printf("\nfunnel (%sstage:*)\n", cli->cfg.redis_prefix);
    lf_table_init(&t, 2, head, 1u << 1);
    for (int s = 0; s < LF_STAGE__COUNT; s++) {
        lf_cli_fmt_count(st->stage_count[s], n, sizeof(n));
        lf_table_add(&t, (const char *const[]){lf_stage_name((lf_stage_t)s), n});
    }
    lf_table_print(&t, stdout, 2);
    lf_table_free(&t);

    static const char *const chead[] = {"STEP", "RATE", "REACHED", "OF"};
    lf_table_init(&t, 4, chead, (1u << 1) | (1u << 2) | (1u << 3));
    for (int i = 0; i + 1 < LF_NFUNNEL_STEPS; i++) {
        lf_stage_t from = lf_funnel_steps[i], to = lf_funnel_steps[i + 1];
        long long den = lf_funnel_reached(st->stage_count, from);
        long long num = lf_funnel_reached(st->stage_count, to);
        char step[64], rate[32];
        snprintf(step, sizeof(step), "%s -> %s", lf_stage_name(from), lf_stage_name(to));
        if (den)
            snprintf(rate, sizeof(rate), "%.1f%%", 100.0 * (double)num / (double)den);
        else
            snprintf(rate, sizeof(rate), "-");
        lf_table_add(&t, (const char *const[]){step, rate, lf_cli_fmt_count(num, a, sizeof(a)),
                                               lf_cli_fmt_count(den, b, sizeof(b))});
    }
    printf("\nconversion (leads now at a stage or further along; nurture and disqualified not "
           "counted)\n");
    lf_table_print(&t, stdout, 2);
    lf_table_free(&t);
}

/*---- JSON output --------------------------------------------------------------------------*/

static cJSON *lf_wm_part_json(const lf_wm_part_t *p, int total)
{
    cJSON *x = cJSON_CreateObject();
    if (!total) {
        cJSON_AddNumberToObject(x, "partition", (double)p->partition);
        if (p->next_offset >= 0)
            cJSON_AddNumberToObject(x, "next_offset", (double)p->next_offset);
        else
            cJSON_AddNullToObject(x, "next_offset");
    }
    for (int k = 0; k < LF_WM_N; k++)
        cJSON_AddNumberToObject(x, lf_wm_counters[k], (double)p->c[k]);
    cJSON_AddBoolToObject(x, "ok", lf_wm_diff(p) == 0);
    return x;
}

static cJSON *lf_stats_json(const lf_cli_t *cli, const lf_stats_t *st)
{
    static const char *const verdicts[] = {"ok",          "",          "",
                                           "no_instance", "unhealthy", "conservation"};
    cJSON *o = cJSON_CreateObject(), *arr, *x;
    char buf[512];
    cJSON_AddStringToObject(o, "prefix", cli->cfg.redis_prefix);
    lf_cli_json_time(o, "now", st->now_ms);

    x = cJSON_AddObjectToObject(o, "health");
    cJSON_AddBoolToObject(x, "ok", st->verdict == 0);
    cJSON_AddStringToObject(x, "verdict", verdicts[st->verdict]);
    cJSON_AddNumberToObject(x, "exit_status", st->verdict);
    cJSON_AddNumberToObject(x, "live_instances", (double)st->nlive);
    cJSON_AddNumberToObject(x, "stale_after_ms", (double)st->stale_after_ms);
    arr = cJSON_AddArrayToObject(x, "problems");
    for (size_t i = 0; i < st->nproblems; i++)
        cJSON_AddItemToArray(arr, cJSON_CreateString(st->problems[i]));

    arr = cJSON_AddArrayToObject(o, "instances");
    cJSON *stale = cJSON_CreateArray();
    for (size_t i = 0; i < st->ninst; i++) {
        const redisReply *h = st->inst[i].hash;
        if (!h->elements) {
            cJSON_AddItemToArray(stale, cJSON_CreateString(st->inst[i].id));
            continue;
        }
        x = cJSON_CreateObject();
        cJSON_AddStringToObject(x, "id", st->inst[i].id);
        for (size_t f = 0; f < LF_NINSTANCE_FIELDS; f++) {
            const char *name = lf_instance_fields[f].name;
            const redisReply *v = lf_cli_hash_get(h, name);
            if (!v)
                cJSON_AddNullToObject(x, name);
            else if (lf_instance_fields[f].type == LF_F_STR)
                cJSON_AddStringToObject(x, name, lf_cli_reply_str(v, buf, sizeof(buf)));
            else if (lf_instance_fields[f].type == LF_F_INT)
                cJSON_AddNumberToObject(x, name, (double)lf_cli_reply_i64(v, 0));
            else
                cJSON_AddNumberToObject(x, name, lf_cli_reply_double(v, 0));
        }
        int64_t hb = lf_cli_reply_i64(lf_cli_hash_get(h, "heartbeat_ms"), 0);
        if (hb)
            cJSON_AddNumberToObject(x, "heartbeat_age_ms", (double)(st->now_ms - hb));
        else
            cJSON_AddNullToObject(x, "heartbeat_age_ms");
        const lf_instance_t *in = &st->inst[i];
        cJSON_AddBoolToObject(x, "live", !in->stopped && !in->stale);
        cJSON_AddBoolToObject(x, "heartbeat_stale", in->stale);
        cJSON_AddBoolToObject(x, "degraded", in->degraded);
        cJSON_AddItemToArray(arr, x);
    }
    /* Ids in the set whose heartbeat key expired (the name predates "heartbeat_stale"). */
    cJSON_AddItemToObject(o, "stale_instances", stale);

    x = cJSON_AddObjectToObject(o, "progress");
    cJSON_AddStringToObject(x, "key", st->wm_key);
    cJSON_AddStringToObject(x, "group", cli->cfg.kafka_group);
    cJSON_AddStringToObject(x, "topic", cli->cfg.topic_events);
    arr = cJSON_AddArrayToObject(x, "partitions");
    for (size_t i = 0; i < st->wm.n; i++)
        cJSON_AddItemToArray(arr, lf_wm_part_json(&st->wm.parts[i], 0));
    cJSON_AddItemToObject(x, "totals", lf_wm_part_json(&st->wm.total, 1));
    cJSON *cons = cJSON_AddObjectToObject(x, "conservation");
    cJSON_AddBoolToObject(cons, "ok", lf_wm_diff(&st->wm.total) == 0);
    cJSON_AddNumberToObject(cons, "consumed", (double)st->wm.total.c[LF_WM_CONSUMED]);
    cJSON_AddNumberToObject(cons, "applied", (double)st->wm.total.c[LF_WM_APPLIED]);
    cJSON_AddNumberToObject(cons, "duplicates", (double)st->wm.total.c[LF_WM_DUP]);
    cJSON_AddNumberToObject(cons, "dead", (double)st->wm.total.c[LF_WM_DEAD]);
    cJSON_AddNumberToObject(cons, "difference", (double)lf_wm_diff(&st->wm.total));
    cJSON *bad = cJSON_AddArrayToObject(cons, "mismatched_partitions");
    for (size_t i = 0; i < st->wm.n; i++)
        if (lf_wm_diff(&st->wm.parts[i]))
            cJSON_AddItemToArray(bad, cJSON_CreateNumber((double)st->wm.parts[i].partition));

    x = cJSON_AddObjectToObject(o, "funnel");
    cJSON *stages = cJSON_AddObjectToObject(x, "stages");
    for (int s = 0; s < LF_STAGE__COUNT; s++)
        cJSON_AddNumberToObject(stages, lf_stage_name((lf_stage_t)s), (double)st->stage_count[s]);
    arr = cJSON_AddArrayToObject(x, "conversion");
    for (int i = 0; i + 1 < LF_NFUNNEL_STEPS; i++) {
        lf_stage_t from = lf_funnel_steps[i], to = lf_funnel_steps[i + 1];
        long long den = lf_funnel_reached(st->stage_count, from);
        long long num = lf_funnel_reached(st->stage_count, to);
        cJSON *c = cJSON_CreateObject();
        cJSON_AddStringToObject(c, "from", lf_stage_name(from));
        cJSON_AddStringToObject(c, "to", lf_stage_name(to));
        cJSON_AddNumberToObject(c, "reached_from", (double)den);
        cJSON_AddNumberToObject(c, "reached_to", (double)num);
        if (den)
            cJSON_AddNumberToObject(c, "ratio", (double)num / (double)den);
        else
            cJSON_AddNullToObject(c, "ratio");
        cJSON_AddItemToArray(arr, c);
    }
    return o;
}

/*---- The command --------------------------------------------------------------------------*/

int lf_cmd_stats(int argc, char **argv)
{
    lf_cli_t cli;
    lf_stats_t st;
    char key[LF_KEY_MAX];
    enum { R_MEMBERS, R_WM, R_STAGE0, R_N = R_STAGE0 + LF_STAGE__COUNT };
    redisReply *r[R_N] = {0};
    redisReply **hr = NULL;
    int rc;

    memset(&st, 0, sizeof(st));
    st.stale_after_ms = LF_STATS_STALE_MS;
    lf_cli_init(&cli, argc > 0 ? argv[0] : "stats", lf_stats_usage);
    for (int i = 1; i < argc; i++) {
        int bad = 0;
        const char *v;
        switch (lf_cli_option(&cli, argc, argv, &i)) {
        case LF_CLI_OPT_TAKEN:
            continue;
        case LF_CLI_OPT_HELP:
            return LF_CLI_EXIT_OK;
        case LF_CLI_OPT_ERROR:
            return LF_CLI_EXIT_USAGE;
        default:
            break;
        }
        if ((v = lf_cli_value(&cli, argc, argv, &i, "--stale-after", &bad))) {
            if (lf_duration_parse(v, &st.stale_after_ms) != LF_OK || st.stale_after_ms < 1000)
                return lf_cli_usage_error(&cli,
                                          "--stale-after takes a duration of 1s or more "
                                          "(30s, 2m), not \"%s\"",
                                          v);
        } else if (bad) {
            return LF_CLI_EXIT_USAGE;
        } else {
            return lf_cli_usage_error(&cli, "unexpected argument %s", argv[i]);
        }
    }
    if ((rc = lf_cli_open(&cli))) goto out;

    /* One round trip for the set, the watermarks and the funnel, one for the heartbeats. */
    const char *p = cli.cfg.redis_prefix;
    lf_key_instances(key, sizeof(key), p);
    redisAppendCommand(cli.redis, "SMEMBERS %s", key);
    lf_key_watermarks(st.wm_key, sizeof(st.wm_key), p, cli.cfg.kafka_group, cli.cfg.topic_events);
    redisAppendCommand(cli.redis, "HGETALL %s", st.wm_key);
    for (int s = 0; s < LF_STAGE__COUNT; s++) {
        lf_key_stage(key, sizeof(key), p, (lf_stage_t)s);
        redisAppendCommand(cli.redis, "ZCARD %s", key);
    }
    if ((rc = lf_cli_replies(&cli, r, R_N, "reading the stats"))) goto out;

    st.ninst = r[R_MEMBERS]->elements;
    st.inst = lf_calloc(st.ninst ? st.ninst : 1, sizeof(*st.inst));
    for (size_t i = 0; i < st.ninst; i++)
        lf_cli_reply_str(r[R_MEMBERS]->element[i], st.inst[i].id, sizeof(st.inst[i].id));
    if (st.ninst > 1) qsort(st.inst, st.ninst, sizeof(*st.inst), lf_instance_cmp);
    for (size_t i = 0; i < st.ninst; i++) {
        lf_key_instance(key, sizeof(key), p, st.inst[i].id);
        redisAppendCommand(cli.redis, "HGETALL %s", key);
    }
    hr = lf_calloc(st.ninst ? st.ninst : 1, sizeof(*hr));
    if ((rc = lf_cli_replies(&cli, hr, st.ninst, "HGETALL of the heartbeats"))) goto out;
    for (size_t i = 0; i < st.ninst; i++)
        st.inst[i].hash = hr[i];
    lf_wm_parse(r[R_WM], &st.wm);
    for (int s = 0; s < LF_STAGE__COUNT; s++)
        st.stage_count[s] = r[R_STAGE0 + s]->integer;
    st.now_ms = lf_cli_now_ms();
    lf_stats_judge(&cli, &st);

    if (cli.json) {
        lf_cli_json_print(lf_stats_json(&cli, &st));
    } else {
        lf_stats_print_instances(&st);
        lf_stats_print_wm(&cli, &st);
        lf_stats_print_funnel(&cli, &st);
        lf_stats_print_health(&st);
    }
    fflush(stdout);
    rc = st.verdict;
out:
    for (size_t i = 0; i < st.nproblems; i++)
        lf_free(st.problems[i]);
    lf_free(st.problems);
    if (hr) lf_cli_free_replies(hr, st.ninst);
    lf_free(hr);
    lf_free(st.inst);
    lf_free(st.wm.parts);
    lf_cli_free_replies(r, R_N);
    lf_cli_close(&cli);
    return rc;
}
