/* `leadflow reload`: ask every running instance to reload its rules file, through Redis
 * (INCR <p>ctl:reload; each instance reads it with its heartbeat, once a second), so that it
 * reaches instances on every host and in every pod, then wait until each live instance says
 * how its reload went (reload_gen, reload_result and rules_version in its heartbeat). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli_int.h"
#include "leadflow/cluster_client.h"
#include "leadflow/alloc.h"
#include "leadflow/commands.h"
#include "leadflow/keys.h"

static const char lf_reload_usage[] =
    "usage: leadflow reload [-c FILE] [--redis HOST:PORT] [--wait DURATION]\n"
    "  Ask every running instance (all hosts: through Redis) to reload its rules file at its\n"
    "  next batch boundary, and wait until each one says how it went. SIGHUP to one process\n"
    "  does the same for that process (and its workers).\n"
    "  -c, --config FILE   rules file naming Redis and the key prefix (default:\n"
    "                      $LEADFLOW_CONFIG, else ./leadflow.yaml); each instance reloads its\n"
    "                      own copy of its own file\n"
    "  --redis HOST:PORT   override the rules file's redis.host / redis.port\n"
    "  --wait DURATION     wait at most this long for the answers (default 30s; 0: do not wait)\n"
    "Exit status: 0 every live instance reloaded; 1 usage or an unreadable rules file; 2 Redis\n"
    "unreachable; 3 an instance refused its file (the old rules stay in force there) or did\n"
    "not answer in time; 4 no instance is running.\n";

typedef struct {
    char id[128];
    int done;
    char result[320], rules[128];
} lf_reload_inst_t;

typedef struct {
    lf_reload_inst_t *inst;
    size_t cap;
    int64_t gen;
} lf_reload_poll_t;

static void lf_reload_one(void *ctx, size_t i, const char *id, const redisReply *hb)
{
    lf_reload_poll_t *x = ctx;
    if (i >= x->cap) {
        x->cap = x->cap ? 2 * x->cap : 16;
        x->inst = lf_realloc(x->inst, x->cap * sizeof(*x->inst));
    }
    lf_reload_inst_t *r = &x->inst[i];
    memset(r, 0, sizeof(*r));
    snprintf(r->id, sizeof(r->id), "%s", id);
    r->done = lf_cli_reply_i64(lf_cli_hash_get(hb, "reload_gen"), 0) >= x->gen;
    lf_cli_reply_str(lf_cli_hash_get(hb, "reload_result"), r->result, sizeof(r->result));
    lf_cli_reply_str(lf_cli_hash_get(hb, "rules_version"), r->rules, sizeof(r->rules));
}

/* The live instances, their answers to reload `gen`. Returns 0, or the exit status. */
static int lf_reload_poll(lf_cli_t *cli, int64_t gen, lf_reload_inst_t **inst, size_t *n)
{
    lf_reload_poll_t x = {*inst, 0, gen};
    int rc = lf_cli_live_instances(cli, cli->cfg.redis_prefix, n, lf_reload_one, &x);
    *inst = x.inst;
    return rc == LF_OK ? 0 : LF_CLI_EXIT_REDIS;
}

static int lf_reload_all_done(const lf_reload_inst_t *inst, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!inst[i].done) return 0;
    return 1;
}

/* One line per instance; the exit status the answers make. */
static int lf_reload_report(const lf_reload_inst_t *inst, size_t n)
{
    int rc = LF_CLI_EXIT_OK;
    for (size_t i = 0; i < n; i++) {
        const lf_reload_inst_t *x = &inst[i];
        int ok = x->done && strncmp(x->result, "ok", 2) == 0;
        printf("  %-30s %s  rules_version %s\n", x->id,
               !x->done       ? "no answer yet"
               : x->result[0] ? x->result
                              : "?",
               x->rules[0] ? x->rules : "-");
        if (!ok) rc = 3;
    }
    return rc;
}

static int lf_reload_run(lf_cli_t *cli, int64_t wait_ms)
{
    char key[LF_KEY_MAX];
    lf_reload_inst_t *inst = NULL;
    size_t n = 0;
    lf_cli_batch_t b = {0};
    int rc = lf_reload_poll(cli, INT64_MAX, &inst, &n);
    if (rc) goto done;
    lf_key_control(key, sizeof(key), cli->cfg.redis_prefix, "reload");
    /* Routed by its own slot on a cluster. An INCR the cluster client sends again after a
     * failover may count twice: harmless, instances reload when the counter grows. */
    lf_cli_batch_cmd(&b, "INCR", key, NULL);
    if (lf_cli_batch_run(cli, &b, "INCR of the reload key")) {
        rc = LF_CLI_EXIT_REDIS;
        goto done;
    }
    const redisReply *r = lf_cli_batch_reply(&b, 0);
    int64_t gen = r->type == REDIS_REPLY_INTEGER ? r->integer : 0;
    printf("reload #%lld asked (%s) of %zu running instance%s\n", (long long)gen, key, n,
           n == 1 ? "" : "s");
    if (n == 0) {
        printf("no instance is running: each one reads its rules file when it starts\n");
        rc = 4;
        goto done;
    }
    if (wait_ms == 0) goto done;
    int64_t until = lf_now_ms() + wait_ms;
    do {
        struct timespec ts = {0, 250 * 1000000L};
        nanosleep(&ts, NULL);
        if ((rc = lf_reload_poll(cli, gen, &inst, &n))) goto done;
    } while (!lf_reload_all_done(inst, n) && lf_now_ms() < until);
    rc = lf_reload_report(inst, n);
    if (rc) fprintf(stderr, "leadflow reload: not every instance reloaded (see above)\n");
done:
    lf_cli_batch_free(&b);
    lf_free(inst);
    return rc;
}

int lf_cmd_reload(int argc, char **argv)
{
    lf_cli_t cli;
    const char *wait = NULL;
    int64_t wait_ms = 30000;
    const lf_cli_opt_t own[] = {{"--wait", &wait}, {NULL, NULL}};
    lf_cli_init(&cli, "reload", lf_reload_usage);
    for (int i = 1; i < argc; i++) {
        int o = lf_cli_option(&cli, argc, argv, &i, own);
        if (o == LF_CLI_OPT_HELP) return LF_CLI_EXIT_OK;
        if (o == LF_CLI_OPT_ERROR) return LF_CLI_EXIT_USAGE;
        if (o == LF_CLI_OPT_NONE)
            return lf_cli_usage_error(&cli, "unexpected argument %s", argv[i]);
    }
    if (wait && (lf_duration_parse(wait, &wait_ms) != LF_OK || wait_ms < 0))
        return lf_cli_usage_error(&cli, "--wait takes a duration (30s, 2m, 0), not \"%s\"", wait);
    int rc = lf_cli_open(&cli);
    if (!rc && cli.cc) lf_cc_read_replicas(cli.cc, 0); /* it writes: the primaries */
    if (!rc) rc = lf_reload_run(&cli, wait_ms);
    lf_cli_close(&cli);
    return rc;
}
