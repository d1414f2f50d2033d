/* `leadflow run -c leadflow.yaml`: load the rules file, install signal handlers, run. */
#include <getopt.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "leadflow/commands.h"
#include "leadflow/alloc.h"
#include "cli_int.h"
#include "leadflow/config.h"
#include "leadflow/log.h"
#include "leadflow/pipeline.h"
#include "leadflow/workers.h"

static volatile sig_atomic_t lf_stop, lf_reload;

/* First SIGTERM/SIGINT: finish the batch, commit, leave the group. A second: give up
 * waiting (nothing uncommitted is lost: it is redelivered). */
static void lf_on_stop(int sig)
{
    (void)sig;
    lf_stop++;
}

static void lf_on_hup(int sig)
{
    (void)sig;
    lf_reload = 1;
}

static const char lf_run_usage[] =
    "usage: leadflow run [-c FILE] [--instance ID] [--workers N] [--exit-idle-ms N]\n"
    "  -c, --config FILE     rules file (default: $LEADFLOW_CONFIG, else leadflow.yaml)\n"
    "  --instance ID         instance id shown by `leadflow stats` (default host-pid)\n"
    "  --workers N           N worker processes, each a member of the consumer group\n"
    "                        (instances ID-1 .. ID-N): one per core (default 1)\n"
    "  --exit-idle-ms N      exit once no event arrived for N ms (tests, benchmarks)\n"
    "  --brokers LIST        override kafka.bootstrap_servers\n"
    "  --redis HOST:PORT     override redis.host and redis.port (the password stays in the\n"
    "                        rules file)\n"
    "  --group ID            override kafka.group_id\n"
    "  --metrics-listen ADDR:PORT  override metrics.listen (\"none\": off), e.g. for a\n"
    "                        challenger on the champion's host; with --workers N, worker k\n"
    "                        serves on PORT+k-1\n"
    "  --challenger          run the challenger named by the rules file (challenger.rules):\n"
    "                        its model, into challenger.prefix, as group <group_id>.challenger;\n"
    "                        it publishes the transitions of the challenger.split leads only\n"
    "                        (none without a split) and sends no dead letters\n"
    "SIGTERM/SIGINT: finish the batch in flight, commit, leave the group, exit 0\n"
    "(with --workers: each worker does; if one fails, the others are stopped and its\n"
    "exit status is leadflow's).\n"
    "Exit status: 0 stopped by a signal or idle; 1 usage or an invalid rules file; 2 Redis or\n"
    "Kafka failed for good; 3 stopped because input or state was lost (the log says what);\n"
    "with --workers, the failed worker's status (137 for a SIGKILL).\n";

/* What the command line says. */
typedef struct {
    const char *path, *brokers, *redis, *group, *metrics_listen;
    int workers, challenger;
    char model_path[4096]; /* --challenger: its rules file (a reload reads it) */
    char host[256];        /* --redis: the host ("" when absent) and port (0 when absent) */
    int port;
} lf_run_args_t;

static const struct option lf_run_longopts[] = {
    {"config", required_argument, NULL, 'c'},
    {"instance", required_argument, NULL, 'i'},
    {"exit-idle-ms", required_argument, NULL, 'x'},
    {"brokers", required_argument, NULL, 'b'},
    {"redis", required_argument, NULL, 'r'},
    {"group", required_argument, NULL, 'g'},
    {"workers", required_argument, NULL, 'w'},
    {"challenger", no_argument, NULL, 'C'},
    {"metrics-listen", required_argument, NULL, 'm'},
    {"help", no_argument, NULL, 'h'},
    {NULL, 0, NULL, 0},
};

/* One option (getopt's ch, its optarg) into a and opts: LF_CLI_GO, or the exit status. */
static int lf_run_option(lf_cli_t *cli, int ch, char **argv, lf_run_args_t *a, lf_run_opts_t *opts)
{
    int64_t v;
    switch (ch) {
    case 'c':
        a->path = optarg;
        break;
    case 'i':
        if (!optarg[0]) return lf_cli_usage_error(cli, "--instance needs a non-empty id");
        opts->instance = optarg;
        break;
    case 'x':
        if (lf_parse_i64(optarg, 0, INT_MAX, &v) != LF_OK)
            return lf_cli_usage_error(cli, "--exit-idle-ms takes milliseconds, not \"%s\"", optarg);
        opts->exit_idle_ms = (int)v;
        break;
    case 'b':
        a->brokers = optarg;
        break;
    case 'r':
        a->redis = optarg;
        break;
    case 'g':
        a->group = optarg;
        break;
    case 'w':
        if (lf_parse_i64(optarg, 1, LF_WORKERS_MAX, &v) != LF_OK)
            return lf_cli_usage_error(cli, "--workers takes 1..%d, not \"%s\"", LF_WORKERS_MAX,
                                      optarg);
        a->workers = (int)v;
        break;
    case 'C':
        a->challenger = 1;
        break;
    case 'm':
        a->metrics_listen = optarg;
        break;
    case 'h':
        fputs(lf_run_usage, stdout);
        return LF_CLI_EXIT_OK;
    case ':':
        return lf_cli_usage_error(cli, "%s needs a value", argv[optind - 1]);
    default:
        return lf_cli_usage_error(cli, "unknown option %s", argv[optind - 1]);
    }
    return LF_CLI_GO;
}

/* The command line into a and opts, checked before the rules file is read (a usage error is
 * one whatever the file says): LF_CLI_GO, or the exit status after a message. The --redis
 * port is read by lf_cli_parse_hostport: a number 1..65535 (lf_parse_i64), nothing else. */
static int lf_run_args(lf_cli_t *cli, int argc, char **argv, lf_run_args_t *a, lf_run_opts_t *opts)
{
    int ch, rc;
    optind = 1;
    opterr = 0; /* our messages, not getopt's */
    while ((ch = getopt_long(argc, argv, ":c:h", lf_run_longopts, NULL)) != -1)
        if ((rc = lf_run_option(cli, ch, argv, a, opts)) != LF_CLI_GO) return rc;
    if (optind < argc)
        return lf_cli_usage_error(cli, "unexpected argument %s (the rules file is -c FILE)",
                                  argv[optind]);
    if (a->redis && lf_cli_parse_hostport(a->redis, a->host, sizeof(a->host), &a->port) != LF_OK)
        return lf_cli_bad_redis(cli, a->redis);
    if (a->brokers && (!a->brokers[0] || strchr(a->brokers, '@')))
        return lf_cli_usage_error(cli, "--brokers takes HOST:PORT[,HOST:PORT...]; credentials "
                                       "belong in the rules file's kafka.properties");
    return LF_CLI_GO;
}

/* The command line's overrides of the rules file. */
static void lf_run_override(lf_config_t *cfg, const lf_run_args_t *a)
{
    lf_err_t err;
    char port[16];
    /* Checked by lf_run_args already: these cannot fail. */
    if (a->brokers) lf_config_override(cfg, "kafka.bootstrap_servers", a->brokers, &err);
    if (a->group) lf_config_override(cfg, "kafka.group_id", a->group, &err);
    if (a->metrics_listen)
        lf_config_override(cfg, "metrics.listen",
                           strcmp(a->metrics_listen, "none") == 0 ? "" : a->metrics_listen, &err);
    if (a->redis) {
        if (a->host[0]) lf_config_override(cfg, "redis.host", a->host, &err);
        snprintf(port, sizeof(port), "%d", a->port);
        if (a->port) lf_config_override(cfg, "redis.port", port, &err);
    }
}

/* The champion and its challenger split the leads' transitions between them
 * (challenger.split); --challenger makes this process the challenger. LF_CLI_GO, or the exit
 * status after a message. */
static int lf_run_roles(lf_config_t *cfg, lf_run_args_t *a, lf_run_opts_t *opts)
{
    lf_err_t err = {0};
    if (!a->challenger) {
        if (cfg->challenger_split > 0) {
            opts->publish = LF_PUBLISH_SPLIT_OUT;
            opts->split_percent = cfg->challenger_split;
        }
        return LF_CLI_GO;
    }
    if (lf_config_challenger_path(cfg, a->model_path, sizeof(a->model_path)) != LF_OK) {
        fprintf(stderr, "leadflow run: --challenger: %s names no challenger.rules\n", a->path);
        return LF_CLI_EXIT_USAGE;
    }
    if (lf_config_make_challenger(cfg, stderr, &err) != LF_OK) {
        fprintf(stderr, "leadflow run: --challenger: %s\n", err.msg);
        return LF_CLI_EXIT_USAGE;
    }
    opts->model_path = a->model_path;
    opts->no_dead_letters = 1;
    opts->publish = cfg->challenger_split > 0 ? LF_PUBLISH_SPLIT_IN : LF_PUBLISH_NONE;
    opts->split_percent = cfg->challenger_split;
    lf_log("info", "challenger: rules version %s from %s into %s (publishes %s)",
           cfg->model.version ? cfg->model.version : "", a->model_path, cfg->redis_prefix,
           cfg->challenger_split > 0 ? "the transitions of its split" : "nothing");
    return LF_CLI_GO;
}

static void lf_run_signals(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = lf_on_stop;
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    sa.sa_handler = lf_on_hup;
    sigaction(SIGHUP, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
}

int lf_cmd_run(int argc, char **argv)
{
    lf_run_opts_t opts = {0};
    lf_run_args_t a = {.path = getenv("LEADFLOW_CONFIG"), .workers = 1};
    lf_cli_t cli; /* for the messages: the same usage errors as every command */
    lf_config_t cfg;
    lf_err_t err = {0};
    int rc;
    opts.stop = &lf_stop;
    opts.reload = &lf_reload;
    lf_cli_init(&cli, "run", lf_run_usage);
    if ((rc = lf_run_args(&cli, argc, argv, &a, &opts)) != LF_CLI_GO) return rc;
    if (!a.path) a.path = "leadflow.yaml";
    if (lf_config_load(a.path, &cfg, stderr, &err) != LF_OK) {
        fprintf(stderr, "leadflow run: %s is not valid (see above; `leadflow check-config %s`)\n",
                a.path, a.path);
        return LF_CLI_EXIT_USAGE;
    }
    lf_log_configure(cfg.log_json, cfg.log_level);
    for (size_t i = 0; i < cfg.nwarnings; i++)
        lf_log("warn", "%s", cfg.warnings[i]);
    lf_run_override(&cfg, &a);
    if ((rc = lf_run_roles(&cfg, &a, &opts)) != LF_CLI_GO) {
        lf_config_free(&cfg);
        return rc;
    }
    lf_run_signals();
    rc = a.workers > 1 ? lf_workers_run(&cfg, &opts, a.workers) : lf_pipeline_run(&cfg, &opts);
    lf_config_free(&cfg);
    return rc;
}
