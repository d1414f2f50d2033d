/* `leadflow stats`: how the processor is doing, from Redis alone. Three parts:
 *   instances   lf:ops:instances and each one's heartbeat hash lf:ops:instance:<id>;
 *   progress    lf:wm:<group>:<topic>: per partition the next offset and the counters, and
 *               the conservation check consumed = applied + duplicates + dead-lettered;
 *   funnel      HGETALL lf:funnel: leads per stage, and the live visitors, the sum of the
 *               buckets "visitor:<unix s>" (visitors whose record expires then) still ahead
 *               of the wall clock; with conversion ratios.
 * Read-only: an instance id whose heartbeat key expired is reported, not removed.
 * The exit status is the verdict, for scripts and probes: 0 healthy; 3 no instance running;
 * 4 an instance degraded, or its heartbeat stale (written more than --stale-after ago: the
 * process is stuck or cut off from Redis, though its key has not expired yet); 5 the
 * conservation check fails. When several hold, the highest. 1 usage, 2 Redis unreadable. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "leadflow/commands.h"
#include "leadflow/alloc.h"
#include "cli_stats_int.h"
#include "leadflow/config.h"

static const char lf_stats_usage[] =
    "usage: leadflow stats [-c FILE] [--redis HOST:PORT] [--group ID] [--stale-after DURATION] "
    "[--json]\n"
    "  The running instances (state, uptime, partitions, lag, counters, rate, rules version,\n"
    "  last commit, what Redis lost), the consumer group's progress per partition with the\n"
    "  conservation check consumed = applied + duplicates + dead-lettered, the stage funnel\n"
    "  (lf:funnel: leads per stage, visitors whose record has not expired),\n"
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

/*---- Reading ------------------------------------------------------------------------------*/

static int lf_instance_cmp(const void *a, const void *b)
{
    return strcmp(((const lf_instance_t *)a)->id, ((const lf_instance_t *)b)->id);
}

/* The replies of the first round trip, in this order; then, on a cluster, the shards of the
 * watermarks and of the funnel (lf_cli_nshards of each). */
enum { LF_STATS_R_MEMBERS, LF_STATS_R_WM, LF_STATS_R_FUNNEL, LF_STATS_R_N };

/* One round trip for the set, the watermarks and the funnel. On a cluster the counters of
 * lead writes are in the watermarks' shards and the funnel is all shards: each is read whole
 * and merged into one hash, summed per field (*wm, *funnel: lf_cli_hash_merged_free). */
static int lf_stats_read_first(lf_cli_t *cli, lf_stats_t *st, lf_cli_batch_t *b, redisReply **wm,
                               redisReply **funnel)
{
    char key[LF_KEY_MAX];
    const char *p = cli->cfg.redis_prefix;
    size_t ns = cli->cc ? lf_cli_nshards(cli) : 0;
    lf_key_instances(key, sizeof(key), p);
    lf_cli_batch_cmd(b, "SMEMBERS", key, NULL);
    lf_key_watermarks(st->wm_key, sizeof(st->wm_key), p, cli->cfg.kafka_group,
                      cli->cfg.topic_events);
    lf_cli_batch_cmd(b, "HGETALL", st->wm_key, NULL);
    lf_key_funnel(st->funnel_key, sizeof(st->funnel_key), p);
    lf_cli_batch_cmd(b, "HGETALL", st->funnel_key, NULL);
    for (size_t k = 0; k < ns; k++) {
        lf_cli_shard_key(cli, key, sizeof(key), st->wm_key, k);
        lf_cli_batch_cmd(b, "HGETALL", key, NULL);
    }
    for (size_t k = 0; k < ns; k++) {
        lf_cli_shard_key(cli, key, sizeof(key), st->funnel_key, k);
        lf_cli_batch_cmd(b, "HGETALL", key, NULL);
    }
    int rc = lf_cli_batch_run(cli, b, "reading the stats");
    if (rc) return rc;
    /* The unsharded hash first: its next offsets and other fields are not summed with
     * anything. The unsharded funnel is empty on a cluster; read all the same. */
    redisReply **h = lf_calloc(ns + 1, sizeof(*h));
    h[0] = lf_cli_batch_reply(b, LF_STATS_R_WM);
    for (size_t k = 0; k < ns; k++)
        h[k + 1] = lf_cli_batch_reply(b, LF_STATS_R_N + k);
    *wm = lf_cli_hash_merge(h, ns + 1);
    h[0] = lf_cli_batch_reply(b, LF_STATS_R_FUNNEL);
    for (size_t k = 0; k < ns; k++)
        h[k + 1] = lf_cli_batch_reply(b, LF_STATS_R_N + ns + k);
    *funnel = lf_cli_hash_merge(h, ns + 1);
    lf_free(h);
    return 0;
}

/* The instances of the set, by id, and one round trip for their heartbeats. */
static int lf_stats_read_instances(lf_cli_t *cli, lf_stats_t *st, const redisReply *members)
{
    char key[LF_KEY_MAX];
    lf_cli_batch_t b = {0};
    int rc;
    st->ninst = members->elements;
    st->inst = lf_calloc(st->ninst ? st->ninst : 1, sizeof(*st->inst));
    for (size_t i = 0; i < st->ninst; i++)
        lf_cli_reply_str(members->element[i], st->inst[i].id, sizeof(st->inst[i].id));
    if (st->ninst > 1) qsort(st->inst, st->ninst, sizeof(*st->inst), lf_instance_cmp);
    for (size_t i = 0; i < st->ninst; i++) {
        lf_key_instance(key, sizeof(key), cli->cfg.redis_prefix, st->inst[i].id);
        lf_cli_batch_cmd(&b, "HGETALL", key, NULL);
    }
    if ((rc = lf_cli_batch_run(cli, &b, "HGETALL of the heartbeats")) == 0)
        for (size_t i = 0; i < st->ninst; i++)
            st->inst[i].hash = lf_cli_batch_take(&b, i);
    lf_cli_batch_free(&b);
    return rc;
}

/* Everything stats shows, read, parsed and judged. */
static int lf_stats_read(lf_cli_t *cli, lf_stats_t *st)
{
    lf_cli_batch_t b = {0};
    redisReply *wm = NULL, *funnel = NULL;
    int rc;
    if ((rc = lf_stats_read_first(cli, st, &b, &wm, &funnel)) == 0 &&
        (rc = lf_stats_read_instances(cli, st, lf_cli_batch_reply(&b, LF_STATS_R_MEMBERS))) == 0) {
        lf_stats_wm_parse(wm, &st->wm);
        st->now_ms = lf_wall_ms();
        lf_stats_funnel_parse(funnel, st);
        lf_stats_judge(cli, st);
    }
    lf_cli_hash_merged_free(wm);
    lf_cli_hash_merged_free(funnel);
    lf_cli_batch_free(&b);
    return rc;
}

static void lf_stats_free(lf_stats_t *st)
{
    for (size_t i = 0; i < st->nproblems; i++)
        lf_free(st->problems[i]);
    lf_free(st->problems);
    for (size_t i = 0; i < st->ninst; i++)
        if (st->inst[i].hash) freeReplyObject(st->inst[i].hash);
    lf_free(st->inst);
    lf_free(st->wm.parts);
}

/*---- The command --------------------------------------------------------------------------*/

/* The options into cli and st: LF_CLI_GO, or the exit status after a message. --stale-after
 * is checked where it stands, so the first bad argument is the one reported. */
static int lf_stats_args(lf_cli_t *cli, int argc, char **argv, lf_stats_t *st)
{
    const char *stale = NULL, *checked = NULL;
    const lf_cli_opt_t own[] = {{"--stale-after", &stale}, {NULL, NULL}};
    for (int i = 1; i < argc; i++) {
        int o = lf_cli_option(cli, argc, argv, &i, own);
        if (o == LF_CLI_OPT_HELP) return LF_CLI_EXIT_OK;
        if (o == LF_CLI_OPT_ERROR) return LF_CLI_EXIT_USAGE;
        if (o == LF_CLI_OPT_NONE) return lf_cli_usage_error(cli, "unexpected argument %s", argv[i]);
        if (stale == checked) continue;
        checked = stale;
        if (lf_duration_parse(stale, &st->stale_after_ms) != LF_OK || st->stale_after_ms < 1000)
            return lf_cli_usage_error(cli,
                                      "--stale-after takes a duration of 1s or more "
                                      "(30s, 2m), not \"%s\"",
                                      stale);
    }
    return LF_CLI_GO;
}

int lf_cmd_stats(int argc, char **argv)
{
    lf_cli_t cli;
    lf_stats_t st;
    int rc;

    memset(&st, 0, sizeof(st));
    st.stale_after_ms = LF_STATS_STALE_MS;
    lf_cli_init(&cli, argc > 0 ? argv[0] : "stats", lf_stats_usage);
    if ((rc = lf_stats_args(&cli, argc, argv, &st)) != LF_CLI_GO) return rc;
    if ((rc = lf_cli_open(&cli)) == 0 && (rc = lf_stats_read(&cli, &st)) == 0) {
        if (cli.json)
            lf_cli_json_print(lf_stats_json(&cli, &st));
        else
            lf_stats_print(&cli, &st);
        fflush(stdout);
        rc = st.verdict;
    }
    lf_stats_free(&st);
    lf_cli_close(&cli);
    return rc;
}
