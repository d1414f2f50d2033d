/* `leadflow stats --json`: one object with the verdict ("health"), the instances with every
 * heartbeat field typed, the progress per partition with the conservation check, and the
 * funnel. Values exact, not escaped. */
#include <cjson/cJSON.h>
#include <stdio.h>

#include "cli_stats_int.h"

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
    {"reload_gen", LF_F_INT},    /* the last `leadflow reload` it answered */
    {"reload_result", LF_F_STR}, /* "ok: a -> b" or "refused: <first error>"; "": none yet */
    {"reload_ms", LF_F_INT},     /* when (SIGHUP too) */
    {"last_commit_ms", LF_F_INT},
    {"heartbeat_ms", LF_F_INT},
    {"store_loss", LF_F_STR},    /* what Redis lost and what leadflow did; empty: nothing */
    {"store_loss_ms", LF_F_INT}, /* when */
};
#define LF_NINSTANCE_FIELDS (sizeof(lf_instance_fields) / sizeof(lf_instance_fields[0]))

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
        cJSON_AddNumberToObject(x, lf_stats_wm_counters[k], (double)p->c[k]);
    cJSON_AddBoolToObject(x, "ok", lf_stats_wm_diff(p) == 0);
    return x;
}

static void lf_stats_json_health(cJSON *o, const lf_stats_t *st)
{
    static const char *const verdicts[] = {"ok",          "",          "",
                                           "no_instance", "unhealthy", "conservation"};
    cJSON *x = cJSON_AddObjectToObject(o, "health");
    cJSON_AddBoolToObject(x, "ok", st->verdict == 0);
    cJSON_AddStringToObject(x, "verdict", verdicts[st->verdict]);
    cJSON_AddNumberToObject(x, "exit_status", st->verdict);
    cJSON_AddNumberToObject(x, "live_instances", (double)st->nlive);
    cJSON_AddNumberToObject(x, "stale_after_ms", (double)st->stale_after_ms);
    cJSON *arr = cJSON_AddArrayToObject(x, "problems");
    for (size_t i = 0; i < st->nproblems; i++)
        cJSON_AddItemToArray(arr, cJSON_CreateString(st->problems[i]));
}

/* One instance with a heartbeat: every field of lf_instance_fields typed, then the verdict's
 * view of it. */
static cJSON *lf_stats_json_instance(const lf_stats_t *st, const lf_instance_t *in)
{
    const redisReply *h = in->hash;
    char buf[512];
    cJSON *x = cJSON_CreateObject();
    cJSON_AddStringToObject(x, "id", in->id);
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
    cJSON_AddBoolToObject(x, "live", !in->stopped && !in->stale);
    cJSON_AddBoolToObject(x, "heartbeat_stale", in->stale);
    cJSON_AddBoolToObject(x, "degraded", in->degraded);
    return x;
}

static void lf_stats_json_instances(cJSON *o, const lf_stats_t *st)
{
    cJSON *arr = cJSON_AddArrayToObject(o, "instances");
    cJSON *stale = cJSON_CreateArray();
    for (size_t i = 0; i < st->ninst; i++) {
        if (!st->inst[i].hash->elements)
            cJSON_AddItemToArray(stale, cJSON_CreateString(st->inst[i].id));
        else
            cJSON_AddItemToArray(arr, lf_stats_json_instance(st, &st->inst[i]));
    }
    /* Ids in the set whose heartbeat key expired (the name predates "heartbeat_stale"). */
    cJSON_AddItemToObject(o, "stale_instances", stale);
}

static void lf_stats_json_progress(cJSON *o, const lf_cli_t *cli, const lf_stats_t *st)
{
    cJSON *x = cJSON_AddObjectToObject(o, "progress");
    cJSON_AddStringToObject(x, "key", st->wm_key);
    cJSON_AddStringToObject(x, "group", cli->cfg.kafka_group);
    cJSON_AddStringToObject(x, "topic", cli->cfg.topic_events);
    cJSON *arr = cJSON_AddArrayToObject(x, "partitions");
    for (size_t i = 0; i < st->wm.n; i++)
        cJSON_AddItemToArray(arr, lf_wm_part_json(&st->wm.parts[i], 0));
    cJSON_AddItemToObject(x, "totals", lf_wm_part_json(&st->wm.total, 1));
    cJSON *cons = cJSON_AddObjectToObject(x, "conservation");
    cJSON_AddBoolToObject(cons, "ok", lf_stats_wm_diff(&st->wm.total) == 0);
    cJSON_AddNumberToObject(cons, "consumed", (double)st->wm.total.c[LF_WM_CONSUMED]);
    cJSON_AddNumberToObject(cons, "applied", (double)st->wm.total.c[LF_WM_APPLIED]);
    cJSON_AddNumberToObject(cons, "duplicates", (double)st->wm.total.c[LF_WM_DUP]);
    cJSON_AddNumberToObject(cons, "dead", (double)st->wm.total.c[LF_WM_DEAD]);
    cJSON_AddNumberToObject(cons, "difference", (double)lf_stats_wm_diff(&st->wm.total));
    cJSON *bad = cJSON_AddArrayToObject(cons, "mismatched_partitions");
    for (size_t i = 0; i < st->wm.n; i++)
        if (lf_stats_wm_diff(&st->wm.parts[i]))
            cJSON_AddItemToArray(bad, cJSON_CreateNumber((double)st->wm.parts[i].partition));
}

static void lf_stats_json_funnel(cJSON *o, const lf_stats_t *st)
{
    cJSON *x = cJSON_AddObjectToObject(o, "funnel");
    cJSON_AddStringToObject(x, "key", st->funnel_key);
    cJSON *stages = cJSON_AddObjectToObject(x, "stages");
    for (int s = 0; s < LF_STAGE__COUNT; s++)
        cJSON_AddNumberToObject(stages, lf_stage_name((lf_stage_t)s), (double)st->stage_count[s]);
    cJSON *v = cJSON_AddObjectToObject(x, "visitors");
    cJSON_AddNumberToObject(v, "live", (double)st->stage_count[LF_STAGE_VISITOR]);
    cJSON_AddNumberToObject(v, "live_buckets", (double)st->visitor_buckets_live);
    if (st->visitor_next_expiry_s)
        lf_cli_json_time(v, "next_expiry", st->visitor_next_expiry_s * 1000);
    else
        cJSON_AddNullToObject(v, "next_expiry");
    cJSON_AddNumberToObject(v, "expired", (double)st->visitors_expired);
    cJSON_AddNumberToObject(v, "expired_buckets", (double)st->visitor_buckets_expired);
    cJSON *arr = cJSON_AddArrayToObject(x, "conversion");
    for (int i = 0; i + 1 < LF_NFUNNEL_STEPS; i++) {
        lf_stage_t from = lf_stats_funnel_steps[i], to = lf_stats_funnel_steps[i + 1];
        long long den = lf_stats_funnel_reached(st->stage_count, from);
        long long num = lf_stats_funnel_reached(st->stage_count, to);
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
}

cJSON *lf_stats_json(const lf_cli_t *cli, const lf_stats_t *st)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "prefix", cli->cfg.redis_prefix);
    lf_cli_json_time(o, "now", st->now_ms);
    lf_stats_json_health(o, st);
    lf_stats_json_instances(o, st);
    lf_stats_json_progress(o, cli, st);
    lf_stats_json_funnel(o, st);
    return o;
}
