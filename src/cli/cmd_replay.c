/* `leadflow replay`: rebuild every lead's state under another rules file from the events
 * Kafka still retains, into a shadow key prefix, while the live instances keep serving; then
 * the back-test report (cli_report.h) of the live state against the rebuilt one.
 *
 * The rebuild is `leadflow run` itself (lf_pipeline_run) with the new model, the shadow
 * prefix, a consumer group of its own, no transitions published and no dead letters sent
 * (the live run sent them), stopping once every partition reached the end it had when the
 * replay started. So a replay's state is, field for field, what a fresh run under those
 * rules produces; an interrupted replay resumes from its own progress. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli_int.h"
#include "cli_report.h"
#include "cmd_replay_int.h"
#include "leadflow/alloc.h"
#include "leadflow/commands.h"
#include "leadflow/keys.h"
#include "leadflow/log.h"
#include "leadflow/pipeline.h"

static const char lf_replay_usage[] =
    "usage: leadflow replay -c FILE --rules NEW.yaml [--prefix P] [--fresh] [--from-retained]\n"
    "                       [--json] [--limit N] [--at TIME] [--redis HOST:PORT] [--switch]\n"
    "  Rebuild every lead under the model of NEW.yaml from the events the input topic still\n"
    "  holds, into keys under the prefix P (the live keys are not touched; the live instances\n"
    "  keep running), then print the back-test report: live state against the rebuilt one.\n"
    "  -c, --config FILE   the live rules file: Kafka, Redis, topics, the live prefix and model\n"
    "  --rules FILE        the rules to replay under (only its model section is used)\n"
    "  --prefix P          where the rebuilt state goes (default: redis.prefix + \"replay:\", or\n"
    "                      + \"replay2:\" when that one is live)\n"
    "  --fresh             delete what P holds first (needed when P holds a replay under other\n"
    "                      rules; without it, a replay under the same rules resumes)\n"
    "  --from-retained     accept a topic whose oldest events retention deleted (the rebuilt\n"
    "                      leads then lack them; the report says how many events)\n"
    "  --json              the report as one JSON object (progress still goes to stderr)\n"
    "  --limit N           examples per section of the report (default 20)\n"
    "  --at TIME           evaluate scores at TIME (default now)\n"
    "  --switch            then make the rebuilt state the live one: pause the live instances,\n"
    "                      catch up with them, carry each lead's transition count and history\n"
    "                      over (a lead the new rules put in another stage gets one transition,\n"
    "                      reason rules_switch), and flip <redis.prefix>active to P; the\n"
    "                      instances restart on P with their rules file (put the new rules\n"
    "                      there first). README \"Changing the model\" says how\n"
    "Progress (events, rate, ETA) goes to stderr while it runs.\n"
    "Exit status: 0 done; 1 usage or an invalid rules file; 2 Redis or Kafka failed; 3 the\n"
    "topic's oldest events were deleted by retention (see --from-retained), or stopped.\n";

static volatile sig_atomic_t lf_replay_stop;

static void lf_replay_on_stop(int sig)
{
    (void)sig;
    lf_replay_stop++;
}

typedef struct {
    const char *rules, *prefix, *at, *limit;
    int fresh, from_retained, do_switch;
    int64_t at_ms;
    size_t nlimit;
} lf_replay_args_t;

/*---- Progress ------------------------------------------------------------------------------*/

typedef struct {
    int64_t started, last_line;
    int tty;
} lf_replay_bar_t;

/* @locality the pipeline's thread, from its loop (lf_replay_done), about once a second. */
static void lf_replay_progress(void *ctx, int64_t done, int64_t total)
{
    lf_replay_bar_t *b = ctx;
    int64_t now = lf_now_ms(), el = now - b->started;
    if (!b->tty && now - b->last_line < 5000 && done < total) return;
    b->last_line = now;
    double rate = el > 0 ? (double)done * 1000.0 / (double)el : 0;
    double pct = total > 0 ? 100.0 * (double)done / (double)total : 100.0;
    char eta[32] = "-", d[32], t[32];
    if (rate > 0 && done < total)
        lf_cli_fmt_duration((int64_t)((double)(total - done) / rate * 1000.0), eta, sizeof(eta));
    else if (done >= total)
        snprintf(eta, sizeof(eta), "0s");
    char bar[31];
    int fill = (int)(pct * 30 / 100);
    for (int i = 0; i < 30; i++)
        bar[i] = i < fill ? '#' : '.';
    bar[30] = '\0';
    fprintf(stderr, "%sreplay [%s] %5.1f%%  %s/%s events  %.0f/s  ETA %s%s", b->tty ? "\r" : "",
            bar, pct, lf_cli_fmt_count(done, d, sizeof(d)), lf_cli_fmt_count(total, t, sizeof(t)),
            rate, eta, b->tty ? (done >= total ? "\n" : "") : "\n");
    fflush(stderr);
}

/*---- The shadow prefix ----------------------------------------------------------------------*/

typedef struct {
    lf_cli_t *cli;
    long long deleted;
} lf_unlink_t;

/* UNLINK one SCAN step's keys, counting them. */
static int lf_replay_unlink(void *ctx, const redisReply *keys, lf_err_t *err)
{
    lf_cli_t *cli = ((lf_unlink_t *)ctx)->cli;
    long long *deleted = &((lf_unlink_t *)ctx)->deleted;
    const char **argv = lf_malloc((keys->elements + 1) * sizeof(*argv));
    size_t *lens = lf_malloc((keys->elements + 1) * sizeof(*lens));
    argv[0] = "UNLINK";
    lens[0] = 6;
    for (size_t i = 0; i < keys->elements; i++) {
        argv[i + 1] = keys->element[i]->str;
        lens[i + 1] = keys->element[i]->len;
    }
    redisReply *u = redisCommandArgv(cli->redis, (int)keys->elements + 1, argv, lens);
    int ok = u && u->type == REDIS_REPLY_INTEGER;
    if (ok)
        *deleted += u->integer;
    else
        lf_err_set(err, LF_ERR, "UNLINK failed: %s", u ? u->str : cli->redis->errstr);
    if (u) freeReplyObject(u);
    lf_free(argv);
    lf_free(lens);
    return ok ? LF_OK : LF_ERR;
}

/* Delete every key under prefix (SCAN + UNLINK, a step at a time). */
static int lf_replay_clear(lf_cli_t *cli, const char *prefix, long long *deleted)
{
    lf_err_t err = {0};
    lf_unlink_t u = {cli, 0};
    int rc = lf_cli_scan(cli, prefix, "*", 1000, lf_replay_unlink, &u, &err);
    *deleted = u.deleted;
    if (rc == LF_OK) return 0;
    lf_cli_error(cli, "deleting %s*: %s", prefix, err.msg);
    return LF_CLI_EXIT_REDIS;
}

/* The shadow prefix may hold an earlier replay: under the same rules it is resumed; under
 * others it must be cleared (--fresh). Records what it holds in <P>replay. */
static int lf_replay_claim(lf_cli_t *cli, const lf_replay_args_t *a, const char *version)
{
    char key[LF_KEY_MAX];
    lf_key_control(key, sizeof(key), a->prefix, "replay");
    if (a->fresh) {
        long long n;
        int rc = lf_replay_clear(cli, a->prefix, &n);
        if (rc) return rc;
        fprintf(stderr, "replay: deleted %lld key(s) under %s\n", n, a->prefix);
    }
    redisReply *r = redisCommand(cli->redis, "HGET %s rules_version", key);
    if (!r || r->type == REDIS_REPLY_ERROR) {
        lf_cli_error(cli, "cannot read %s: %s", key, r ? r->str : cli->redis->errstr);
        if (r) freeReplyObject(r);
        return LF_CLI_EXIT_REDIS;
    }
    int other = r->type == REDIS_REPLY_STRING && strcmp(r->str, version) != 0;
    if (other)
        lf_cli_error(cli,
                     "%s holds a replay under rules version %s, not %s: pass --fresh to delete it "
                     "first, or another --prefix",
                     a->prefix, r->str, version);
    else if (r->type == REDIS_REPLY_STRING)
        fprintf(stderr, "replay: resuming the replay under %s in %s\n", version, a->prefix);
    freeReplyObject(r);
    if (other) return LF_CLI_EXIT_USAGE;
    char started[32];
    snprintf(started, sizeof(started), "%lld", (long long)lf_wall_ms());
    r = redisCommand(cli->redis, "HSET %s rules_version %s live_prefix %s started_ms %s", key,
                     version, cli->cfg.redis_prefix, started);
    if (r) freeReplyObject(r);
    return 0;
}

/*---- The command ---------------------------------------------------------------------------*/

static int lf_replay_args(lf_cli_t *cli, int argc, char **argv, lf_replay_args_t *a)
{
    const char *fresh = NULL, *retained = NULL;
    const lf_cli_opt_t own[] = {{"--rules", &a->rules},
                                {"--prefix", &a->prefix},
                                {"--at", &a->at},
                                {"--limit", &a->limit},
                                {NULL, NULL}};
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--fresh") == 0) {
            fresh = argv[i];
            continue;
        }
        if (strcmp(argv[i], "--from-retained") == 0) {
            retained = argv[i];
            continue;
        }
        if (strcmp(argv[i], "--switch") == 0) {
            a->do_switch = 1;
            continue;
        }
        int o = lf_cli_option(cli, argc, argv, &i, own);
        if (o == LF_CLI_OPT_HELP) return LF_CLI_EXIT_OK;
        if (o == LF_CLI_OPT_ERROR) return LF_CLI_EXIT_USAGE;
        if (o == LF_CLI_OPT_NONE) return lf_cli_usage_error(cli, "unexpected argument %s", argv[i]);
    }
    a->fresh = fresh != NULL;
    a->from_retained = retained != NULL;
    if (a->do_switch && a->from_retained)
        return lf_cli_usage_error(cli, "--switch with --from-retained: the rebuilt state lacks "
                                       "the events retention deleted; it cannot become the live "
                                       "one");
    if (!a->rules) return lf_cli_usage_error(cli, "--rules FILE is required (the rules to replay)");
    int64_t v = 20;
    if (a->limit && lf_parse_i64(a->limit, 0, 1000000, &v) != LF_OK)
        return lf_cli_usage_error(cli, "--limit takes a number, not \"%s\"", a->limit);
    a->nlimit = (size_t)v;
    a->at_ms = lf_wall_ms();
    if (a->at) {
        int rc = lf_cli_parse_at(cli, a->at, &a->at_ms);
        if (rc) return rc;
    }
    return LF_CLI_GO;
}

/* The live file's configuration again, with its keys under `prefix`, the consumer group
 * `group` and the command line's Redis. */
static int lf_replay_load(lf_cli_t *cli, const char *prefix, const char *group, lf_config_t *out)
{
    lf_err_t err = {0};
    char port[16];
    if (lf_config_load(cli->cfg.path, out, NULL, &err) != LF_OK) {
        lf_cli_error(cli, "%s", err.msg);
        return LF_CLI_EXIT_USAGE;
    }
    snprintf(port, sizeof(port), "%d", cli->cfg.redis_port);
    if (lf_config_override(out, "redis.prefix", prefix, &err) ||
        lf_config_override(out, "kafka.group_id", group, &err) ||
        lf_config_override(out, "redis.port", port, &err)) {
        lf_cli_error(cli, "%s", err.msg);
        return LF_CLI_EXIT_USAGE;
    }
    if (cli->redis_addr) {
        char host[256];
        snprintf(host, sizeof(host), "%s", cli->cfg.redis_host ? cli->cfg.redis_host : "");
        int p = 0;
        lf_cli_parse_hostport(cli->redis_addr, host, sizeof(host), &p);
        if (host[0]) lf_config_override(out, "redis.host", host, &err);
    }
    return 0;
}

/* The run's configuration: the live file's, with the new model, the shadow prefix and a
 * consumer group of the replay's own. */
static int lf_replay_config(lf_cli_t *cli, const lf_replay_args_t *a, lf_config_t *run,
                            lf_config_t *rules)
{
    lf_err_t err = {0};
    char group[512];
    if (lf_config_load(a->rules, rules, stderr, &err) != LF_OK) {
        lf_cli_error(cli, "%s is not valid (see above)", a->rules);
        return LF_CLI_EXIT_USAGE;
    }
    snprintf(group, sizeof(group), "%s.replay", cli->cfg.kafka_group);
    int rc = lf_replay_load(cli, a->prefix, group, run);
    if (rc) return rc;
    lf_model_t m = run->model;
    run->model = rules->model;
    rules->model = m;
    return 0;
}

/* One run of the replay: to the end each partition has (until_next NULL), or to the live
 * instances' positions (a switch). 0 or the exit status. */
typedef struct {
    lf_cli_t *cli;
    lf_config_t *run;
    lf_run_opts_t opts;
} lf_replay_ctx_t;

static int lf_replay_pass(void *ctx, const int64_t *until_next)
{
    lf_replay_ctx_t *x = ctx;
    x->opts.until_next = until_next;
    int rc = lf_pipeline_run(x->run, &x->opts);
    if (rc == 0 && lf_replay_stop) rc = 3; /* stopped before the end */
    if (rc)
        lf_cli_error(x->cli,
                     "the replay did not finish (status %d; see above). Run it again to "
                     "resume where it stopped",
                     rc);
    return rc;
}

/* --switch: the rebuilt state becomes the live one (cmd_replay_switch.c). */
static int lf_replay_do_switch(lf_replay_ctx_t *x, const char *prefix)
{
    lf_cli_t *cli = x->cli;
    lf_config_t live = {0};
    lf_err_t err = {0};
    int rc = lf_replay_load(cli, cli->cfg.redis_prefix, cli->cfg.kafka_group, &live);
    if (rc) return rc;
    lf_switch_t sw = {.cli = cli, .shadow_cfg = x->run, .live_model = &cli->cfg.model};
    lf_arena_init(&sw.arena, 1 << 20);
    sw.shadow = lf_store_redis_open(x->run, &err);
    sw.live = lf_store_redis_open(&live, &err);
    fprintf(stderr, "switch: %s -> %s\n", cli->cfg.redis_prefix, prefix);
    rc = lf_replay_switch(&sw, lf_replay_pass, x);
    sw.shadow->ops->close(sw.shadow);
    sw.live->ops->close(sw.live);
    lf_arena_free(&sw.arena);
    lf_config_free(&live);
    return rc;
}

static int lf_replay_run(lf_cli_t *cli, const lf_replay_args_t *a)
{
    lf_config_t run = {0}, rules = {0};
    int rc = lf_replay_config(cli, a, &run, &rules);
    if (rc) goto done;
    lf_log_configure(run.log_json, run.log_level);
    const char *version = run.model.version ? run.model.version : "";
    if ((rc = lf_replay_claim(cli, a, version))) goto done;
    fprintf(stderr, "replay: rules version %s into %s (live: %s, rules version %s)\n", version,
            a->prefix, cli->cfg.redis_prefix, cli->cfg.model.version ? cli->cfg.model.version : "");
    lf_replay_bar_t bar = {.started = lf_now_ms(), .tty = isatty(2)};
    char instance[160];
    snprintf(instance, sizeof(instance), "replay-%d", (int)getpid());
    lf_replay_ctx_t x = {.cli = cli, .run = &run};
    x.opts = (lf_run_opts_t){
        .instance = instance,
        .stop = &lf_replay_stop,
        .publish = LF_PUBLISH_NONE,
        .until_caught_up = 1,
        .no_dead_letters = 1,
        .no_metrics = 1, /* the live instances of this host hold metrics.listen's port */
        .allow_partial = a->from_retained,
        .on_progress = lf_replay_progress,
        .progress_ctx = &bar,
    };
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = lf_replay_on_stop;
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
    if ((rc = lf_replay_pass(&x, NULL))) goto done;
    char key[LF_KEY_MAX], fin[32];
    lf_key_control(key, sizeof(key), a->prefix, "replay");
    snprintf(fin, sizeof(fin), "%lld", (long long)lf_wall_ms());
    redisReply *r = redisCommand(cli->redis, "HSET %s finished_ms %s", key, fin);
    if (r) freeReplyObject(r);
    char group[512];
    snprintf(group, sizeof(group), "%s.replay", cli->cfg.kafka_group);
    lf_report_side_t before = {"live", cli->cfg.redis_prefix, &cli->cfg.model, cli->cfg.kafka_group,
                               cli->cfg.topic_events};
    lf_report_side_t after = {"replay", a->prefix, &run.model, group, cli->cfg.topic_events};
    lf_report_opts_t ro = {.at_ms = a->at_ms, .json = cli->json, .limit = a->nlimit};
    lf_err_t err = {0};
    fprintf(stderr, "replay: comparing %s with %s...\n", cli->cfg.redis_prefix, a->prefix);
    if (lf_report_run(cli, &before, &after, &ro, stdout, &err) != LF_OK) {
        lf_cli_error(cli, "the report: %s", err.msg);
        rc = LF_CLI_EXIT_REDIS;
        goto done;
    }
    fflush(stdout);
    if (a->do_switch) rc = lf_replay_do_switch(&x, a->prefix);
done:
    lf_config_free(&run);
    lf_config_free(&rules);
    return rc;
}

int lf_cmd_replay(int argc, char **argv)
{
    lf_cli_t cli;
    lf_replay_args_t a = {0};
    char prefix[LF_KEY_MAX];
    lf_cli_init(&cli, "replay", lf_replay_usage);
    int rc = lf_replay_args(&cli, argc, argv, &a);
    if (rc != LF_CLI_GO) return rc;
    /* It SCANs and rewrites the keys of one Redis (--switch too): on a cluster it refuses. */
    cli.single_node_only = 1;
    if ((rc = lf_cli_open(&cli))) {
        lf_cli_close(&cli);
        return rc;
    }
    if (!a.prefix) {
        /* Two names in turn: after a switch to <base>replay:, the next replay goes to
         * <base>replay2: (and the one after that, with --fresh, back to <base>replay:). */
        snprintf(prefix, sizeof(prefix), "%sreplay:", cli.base_prefix);
        if (strcmp(prefix, cli.cfg.redis_prefix) == 0)
            snprintf(prefix, sizeof(prefix), "%sreplay2:", cli.base_prefix);
        a.prefix = prefix;
    }
    /* --fresh deletes <P>*: P must not be the live prefix or one that starts it. */
    if (!a.prefix[0] || strncmp(cli.cfg.redis_prefix, a.prefix, strlen(a.prefix)) == 0) {
        rc =
            lf_cli_usage_error(&cli, "--prefix %s would hold the live keys (%s...): choose another",
                               a.prefix, cli.cfg.redis_prefix);
    } else {
        rc = lf_replay_run(&cli, &a);
    }
    lf_cli_close(&cli);
    return rc;
}
