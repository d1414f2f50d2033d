/* `leadflow compare`: the back-test report (cli_report.h) between two lead states in one
 * Redis: the "before" (by default the rules file's redis.prefix, scored by its model) and the
 * "after" (--after-prefix, scored by --after-rules: a replay's shadow state or a live
 * challenger's). Read-only. Exit status: 0 done; 1 usage or a rules file that does not load;
 * 2 Redis unreachable or failing. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli_report.h"
#include "leadflow/alloc.h"
#include "leadflow/commands.h"
#include "leadflow/config.h"

static const char lf_compare_usage[] =
    "usage: leadflow compare [-c FILE] [--after-prefix P] [--after-rules FILE2] [--before-prefix "
    "P]\n"
    "                        [--before-rules FILE] [--at TIME] [--limit N] [--redis HOST:PORT]\n"
    "                        [--json]\n"
    "  The back-test report between two lead states of one Redis, each scored by its own\n"
    "  rules: leads whose stage or grade differ, the score distributions, MQLs per\n"
    "  first-touch channel, and the stage transitions one model emitted and the other would\n"
    "  not. README \"Comparing models\" tells how to read it.\n"
    "  -c, --config FILE      rules file (default: $LEADFLOW_CONFIG, else ./leadflow.yaml):\n"
    "                         Redis, and the before side's prefix and model\n"
    "  --before-prefix P      the before side's key prefix (default: redis.prefix of -c)\n"
    "  --before-rules FILE    the before side's rules (default: the model of -c)\n"
    "  --after-prefix P       the after side's key prefix (a replay's or a challenger's);\n"
    "                         default: the challenger the rules file names (challenger.prefix,\n"
    "                         scored by challenger.rules)\n"
    "  --after-rules FILE     the after side's rules (default: the challenger's with the\n"
    "                         default prefix, else the before side's)\n"
    "  --at TIME              evaluate scores and grades at ISO-8601, epoch ms or \"now\"\n"
    "                         (the default)\n"
    "  --limit N              examples and channel rows per section (default 20, at most\n"
    "                         10000)\n"
    "  --redis HOST:PORT      override the rules file's redis.host / redis.port\n"
    "  --json                 one JSON object (keys: docs/backtest-report.md)\n"
    "Exit status: 0 done; 1 usage or a rules file that does not load; 2 Redis unreachable.\n";

typedef struct {
    const char *before_prefix, *before_rules, *after_prefix, *after_rules, *at, *limit;
    int64_t at_ms;
    size_t nlimit;
} lf_compare_args_t;

static int lf_compare_args(lf_cli_t *cli, int argc, char **argv, lf_compare_args_t *a)
{
    const lf_cli_opt_t own[] = {{"--before-prefix", &a->before_prefix},
                                {"--before-rules", &a->before_rules},
                                {"--after-prefix", &a->after_prefix},
                                {"--after-rules", &a->after_rules},
                                {"--at", &a->at},
                                {"--limit", &a->limit},
                                {NULL, NULL}};
    int64_t n;
    for (int i = 1; i < argc; i++) {
        int o = lf_cli_option(cli, argc, argv, &i, own);
        if (o == LF_CLI_OPT_HELP) return LF_CLI_EXIT_OK;
        if (o == LF_CLI_OPT_ERROR) return LF_CLI_EXIT_USAGE;
        if (o == LF_CLI_OPT_NONE) return lf_cli_usage_error(cli, "unexpected argument %s", argv[i]);
    }
    if (a->limit) {
        if (lf_parse_i64(a->limit, 1, LF_REPORT_LIMIT_MAX, &n) != LF_OK)
            return lf_cli_usage_error(cli, "--limit wants a number from 1 to %d, not \"%s\"",
                                      LF_REPORT_LIMIT_MAX, a->limit);
        a->nlimit = (size_t)n;
    }
    if (a->at) {
        if (lf_cli_parse_at(cli, a->at, &a->at_ms)) return LF_CLI_EXIT_USAGE;
    } else {
        a->at_ms = lf_wall_ms();
    }
    for (int k = 0; k < 2; k++) {
        const char *p = k ? a->after_prefix : a->before_prefix;
        if (p && !p[0]) return lf_cli_usage_error(cli, "an empty key prefix");
    }
    return LF_CLI_GO;
}

/* A side's rules file, loaded: 0, or the usage status after the message. */
static int lf_compare_load(lf_cli_t *cli, const char *path, lf_config_t *cfg)
{
    lf_err_t err = {0};
    if (lf_config_load(path, cfg, NULL, &err) == LF_OK) return 0;
    lf_cli_error(cli, "%s (`leadflow check-config %s` lists every problem)", err.msg, path);
    return LF_CLI_EXIT_USAGE;
}

/* Whether the rules file loads and names no challenger (one that does not load is
 * lf_cli_open's to report). */
static int lf_compare_names_no_challenger(const lf_cli_t *cli)
{
    lf_config_t cfg;
    lf_err_t err = {0};
    const char *path =
        cli->config_path && cli->config_path[0] ? cli->config_path : getenv("LEADFLOW_CONFIG");
    if (!path || !path[0]) path = "leadflow.yaml";
    if (lf_config_load(path, &cfg, NULL, &err) != LF_OK) return 0;
    int none = cfg.challenger_rules == NULL;
    lf_config_free(&cfg);
    return none;
}

int lf_cmd_compare(int argc, char **argv)
{
    lf_cli_t cli;
    lf_compare_args_t a;
    lf_config_t before_cfg, after_cfg;
    int have_before = 0, have_after = 0, rc;
    lf_err_t err = {0};

    memset(&a, 0, sizeof(a));
    lf_cli_init(&cli, argc > 0 ? argv[0] : "compare", lf_compare_usage);
    if ((rc = lf_compare_args(&cli, argc, argv, &a)) != LF_CLI_GO) return rc;
    /* Every rules file is read before Redis is: a typo is a usage error, whatever Redis is. */
    if (a.before_rules && (rc = lf_compare_load(&cli, a.before_rules, &before_cfg))) return rc;
    have_before = a.before_rules != NULL;
    if (a.after_rules && (rc = lf_compare_load(&cli, a.after_rules, &after_cfg))) goto out;
    have_after = a.after_rules != NULL;
    /* No --after-prefix and no challenger in the rules file: a usage error, before Redis. */
    if (!a.after_prefix && lf_compare_names_no_challenger(&cli)) {
        rc = lf_cli_usage_error(&cli, "what to compare with? --after-prefix P (and "
                                      "--after-rules FILE when its rules differ), or name a "
                                      "challenger in the rules file (challenger.rules)");
        goto out;
    }
    /* It SCANs the leads of one Redis (cli_report.c): on a cluster it refuses. */
    cli.single_node_only = 1;
    if ((rc = lf_cli_open(&cli))) goto out;
    /* No --after-prefix: the live challenger the rules file names. */
    char chal_prefix[512];
    const char *after_label = "after", *before_label = "before";
    if (!a.after_prefix) {
        if (!cli.cfg.challenger_rules) {
            rc = lf_cli_usage_error(&cli, "what to compare with? --after-prefix P (and "
                                          "--after-rules FILE when its rules differ), or name a "
                                          "challenger in the rules file (challenger.rules)");
            goto out;
        }
        lf_config_challenger_prefix(&cli.cfg, chal_prefix, sizeof(chal_prefix));
        a.after_prefix = chal_prefix;
        after_label = "challenger";
        before_label = "live";
        if (!have_after) {
            lf_config_defaults(&after_cfg);
            if (lf_config_challenger_model(&cli.cfg, &after_cfg.model, stderr, &err) != LF_OK) {
                lf_cli_error(&cli, "the challenger's rules: %s", err.msg);
                lf_config_free(&after_cfg);
                rc = LF_CLI_EXIT_USAGE;
                goto out;
            }
            have_after = 1;
        }
    }

    lf_report_side_t before = {before_label,
                               a.before_prefix ? a.before_prefix : cli.cfg.redis_prefix,
                               have_before ? &before_cfg.model : &cli.cfg.model, NULL, NULL};
    lf_report_side_t after = {after_label, a.after_prefix,
                              have_after ? &after_cfg.model : before.model, NULL, NULL};
    lf_report_opts_t opts = {a.at_ms, cli.json, a.nlimit, 0, NULL, NULL};
    if (lf_report_run(&cli, &before, &after, &opts, stdout, &err) != LF_OK) {
        lf_cli_error(&cli, "%s (Redis at %s:%d)", err.msg,
                     cli.redis_addr ? cli.redis_addr : cli.cfg.redis_host, cli.cfg.redis_port);
        rc = LF_CLI_EXIT_REDIS;
        goto out;
    }
    rc = LF_CLI_EXIT_OK;
out:
    if (have_before) lf_config_free(&before_cfg);
    if (have_after) lf_config_free(&after_cfg);
    lf_cli_close(&cli);
    return rc;
}
