/* `leadflow stats`: the report for a person. The instances (a table, then what does not fit
 * in it), the consumer group's progress per partition with the conservation check, the stage
 * funnel with its conversion ratios, and the verdict last. */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "cli_stats_int.h"

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

/*---- Instances ----------------------------------------------------------------------------*/

/* "instances: 2 live, 1 stale", or that none runs. */
static void lf_stats_print_count(const lf_stats_t *st)
{
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
}

/* The counters summed into the table's total row. */
static const char *const lf_stats_summed[] = {"events_in", "applied", "duplicates", "dead_lettered",
                                              "transitions_out"};

static void lf_stats_instance_row(const lf_stats_t *st, const lf_instance_t *inst, lf_table_t *t)
{
    const redisReply *h = inst->hash;
    char state[64], up[32], lag[32], in[32], ap[32], dup[32], dead[32], tr[32], rate[32];
    char rules[96], commit[48], reload[32];
    lf_cli_reply_str(lf_cli_hash_get(h, "state"), state, sizeof(state));
    lf_cli_fmt_duration(lf_cli_reply_i64(lf_cli_hash_get(h, "uptime_s"), 0) * 1000, up, sizeof(up));
    snprintf(rate, sizeof(rate), "%.1f",
             lf_cli_reply_double(lf_cli_hash_get(h, "events_per_s"), 0));
    lf_cli_reply_str(lf_cli_hash_get(h, "rules_version"), rules, sizeof(rules));
    /* A refused reload: the rules in force are not the file's. */
    lf_cli_reply_str(lf_cli_hash_get(h, "reload_result"), reload, sizeof(reload));
    if (strncmp(reload, "refused", 7) == 0 && strlen(rules) < 64)
        strcat(rules, " (reload refused)");
    if (inst->stale) snprintf(state, sizeof(state), "stale");
    const char *row[12] = {
        inst->id,
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
    lf_table_add(t, row);
}

/* The table of the instances with a heartbeat (and a total row for several); rows printed. */
static size_t lf_stats_print_table(const lf_stats_t *st)
{
    static const char *const head[] = {"INSTANCE", "STATE",   "UPTIME", "LAG",
                                       "IN",       "APPLIED", "DUP",    "DEAD",
                                       "TRANS",    "EV/S",    "RULES",  "LAST COMMIT"};
    lf_table_t t;
    int64_t sum[5] = {0};
    lf_table_init(&t, 12, head, 0x3FCu); /* UPTIME .. EV/S */
    for (size_t i = 0; i < st->ninst; i++) {
        const redisReply *h = st->inst[i].hash;
        if (!h->elements) continue;
        lf_stats_instance_row(st, &st->inst[i], &t);
        for (int k = 0; k < 5; k++)
            sum[k] += lf_cli_reply_i64(lf_cli_hash_get(h, lf_stats_summed[k]), 0);
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
    return shown;
}

/* What does not fit in the table: where it runs, its partitions, why it is degraded. */
static void lf_stats_print_detail(const lf_stats_t *st, const lf_instance_t *inst)
{
    const redisReply *h = inst->hash;
    char host[128], pid[24], ver[64], parts[512], state[64], reason[256], hb[48], start[40];
    char loss[512], lim[32];
    lf_cli_reply_str(lf_cli_hash_get(h, "host"), host, sizeof(host));
    lf_cli_reply_str(lf_cli_hash_get(h, "pid"), pid, sizeof(pid));
    lf_cli_reply_str(lf_cli_hash_get(h, "version"), ver, sizeof(ver));
    lf_cli_reply_str(lf_cli_hash_get(h, "partitions"), parts, sizeof(parts));
    lf_cli_reply_str(lf_cli_hash_get(h, "state"), state, sizeof(state));
    lf_cli_reply_str(lf_cli_hash_get(h, "reason"), reason, sizeof(reason));
    printf("  %s: host %s, pid %s, version %s, started %s, heartbeat %s\n", inst->id,
           host[0] ? host : "-", pid[0] ? pid : "-", ver[0] ? ver : "-",
           lf_cli_fmt_time(lf_cli_reply_i64(lf_cli_hash_get(h, "started_ms"), 0), start,
                           sizeof(start)),
           lf_age(st->now_ms, lf_cli_reply_i64(lf_cli_hash_get(h, "heartbeat_ms"), 0), hb,
                  sizeof(hb)));
    printf("    partitions %s\n", parts[0] ? parts : "none");
    if (strcmp(state, "ok") != 0 && !inst->stopped && (state[0] || reason[0]))
        printf("    %s: %s\n", state[0] ? state : "state", reason[0] ? reason : "no reason given");
    if (inst->stale)
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

static void lf_stats_print_instances(const lf_stats_t *st)
{
    lf_stats_print_count(st);
    if (lf_stats_print_table(st)) putchar('\n');
    for (size_t i = 0; i < st->ninst; i++)
        if (st->inst[i].hash->elements) lf_stats_print_detail(st, &st->inst[i]);
    if (st->ninst > st->npresent) {
        printf("  expired (in the set, heartbeat key gone: stopped or dead):");
        for (size_t i = 0; i < st->ninst; i++)
            if (!st->inst[i].hash->elements) printf(" %s", st->inst[i].id);
        printf("\n");
    }
}

/*---- Progress, funnel, verdict ------------------------------------------------------------*/

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
                                               lf_stats_wm_diff(p) ? "MISMATCH" : "ok"});
    }
    lf_table_print(&t, stdout, 2);
    lf_table_free(&t);

    const lf_wm_part_t *tot = &wm->total;
    int64_t diff = lf_stats_wm_diff(tot);
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
        if (lf_stats_wm_diff(&wm->parts[i]))
            printf("  partition %ld: consumed - (applied + duplicates + dead) = %" PRId64 "\n",
                   wm->parts[i].partition, lf_stats_wm_diff(&wm->parts[i]));
}

static void lf_stats_print_funnel(const lf_cli_t *cli, const lf_stats_t *st)
{
    static const char *const head[] = {"STAGE", "LEADS"};
    char n[32], a[32], b[32];
    lf_table_t t;
    (void)cli;
    printf("\nfunnel (%s)\n", st->funnel_key);
    lf_table_init(&t, 2, head, 1u << 1);
    for (int s = 0; s < LF_STAGE__COUNT; s++) {
        lf_cli_fmt_count(st->stage_count[s], n, sizeof(n));
        lf_table_add(&t, (const char *const[]){lf_stage_name((lf_stage_t)s), n});
    }
    lf_table_print(&t, stdout, 2);
    lf_table_free(&t);
    if (st->visitor_buckets_live)
        printf("  visitors: those whose record has not expired (%zu expiry bucket%s; the next "
               "ends %s)\n",
               st->visitor_buckets_live, st->visitor_buckets_live == 1 ? "" : "s",
               lf_cli_fmt_time(st->visitor_next_expiry_s * 1000, a, sizeof(a)));
    if (st->visitors_expired)
        printf("  (%s visitor records expired, counted in %zu past bucket%s)\n",
               lf_cli_fmt_count(st->visitors_expired, b, sizeof(b)), st->visitor_buckets_expired,
               st->visitor_buckets_expired == 1 ? "" : "s");

    static const char *const chead[] = {"STEP", "RATE", "REACHED", "OF"};
    lf_table_init(&t, 4, chead, (1u << 1) | (1u << 2) | (1u << 3));
    for (int i = 0; i + 1 < LF_NFUNNEL_STEPS; i++) {
        lf_stage_t from = lf_stats_funnel_steps[i], to = lf_stats_funnel_steps[i + 1];
        long long den = lf_stats_funnel_reached(st->stage_count, from);
        long long num = lf_stats_funnel_reached(st->stage_count, to);
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

void lf_stats_print(const lf_cli_t *cli, const lf_stats_t *st)
{
    lf_stats_print_instances(st);
    lf_stats_print_wm(cli, st);
    lf_stats_print_funnel(cli, st);
    lf_stats_print_health(st);
}
