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

static void lf_replace(char **field, const char *value)
{
    lf_free(*field);
    *field = lf_strdup(value);
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
    "SIGTERM/SIGINT: finish the batch in flight, commit, leave the group, exit 0\n"
    "(with --workers: each worker does; if one fails, the others are stopped and its\n"
    "exit status is leadflow's).\n"
    "Exit status: 0 stopped by a signal or idle; 1 usage or an invalid rules file; 2 Redis or\n"
    "Kafka failed for good; 3 stopped because input or state was lost (the log says what);\n"
    "with --workers, the failed worker's status (137 for a SIGKILL).\n";

int lf_cmd_run(int argc, char **argv)
{
    const char *path = getenv("LEADFLOW_CONFIG");
    lf_run_opts_t opts = {0};
    lf_cli_t cli; /* for the messages: the same usage errors as every command */
    opts.stop = &lf_stop;
    opts.reload = &lf_reload;
    lf_cli_init(&cli, "run", lf_run_usage);
    static const struct option longopts[] = {
        {"config", required_argument, NULL, 'c'},
        {"instance", required_argument, NULL, 'i'},
        {"exit-idle-ms", required_argument, NULL, 'x'},
        {"brokers", required_argument, NULL, 'b'},
        {"redis", required_argument, NULL, 'r'},
        {"group", required_argument, NULL, 'g'},
        {"workers", required_argument, NULL, 'w'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *brokers = NULL, *redis = NULL, *group = NULL;
    int ch, workers = 1;
    int64_t v;
    optind = 1;
    opterr = 0; /* our messages, not getopt's */
    while ((ch = getopt_long(argc, argv, ":c:h", longopts, NULL)) != -1) {
        switch (ch) {
        case 'c':
            path = optarg;
            break;
        case 'i':
            if (!optarg[0]) return lf_cli_usage_error(&cli, "--instance needs a non-empty id");
            opts.instance = optarg;
            break;
        case 'x':
            if (lf_parse_i64(optarg, 0, INT_MAX, &v) != LF_OK)
                return lf_cli_usage_error(&cli, "--exit-idle-ms takes milliseconds, not \"%s\"",
                                          optarg);
            opts.exit_idle_ms = (int)v;
            break;
        case 'b':
            brokers = optarg;
            break;
        case 'r':
            redis = optarg;
            break;
        case 'g':
            group = optarg;
            break;
        case 'w':
            if (lf_parse_i64(optarg, 1, LF_WORKERS_MAX, &v) != LF_OK)
                return lf_cli_usage_error(&cli, "--workers takes 1..%d, not \"%s\"", LF_WORKERS_MAX,
                                          optarg);
            workers = (int)v;
            break;
        case 'h':
            fputs(lf_run_usage, stdout);
            return LF_CLI_EXIT_OK;
        case ':':
            return lf_cli_usage_error(&cli, "%s needs a value", argv[optind - 1]);
        default:
            return lf_cli_usage_error(&cli, "unknown option %s", argv[optind - 1]);
        }
    }
    if (optind < argc)
        return lf_cli_usage_error(&cli, "unexpected argument %s (the rules file is -c FILE)",
                                  argv[optind]);
    /* Checked before the rules file is read: a usage error is one whatever the file says. */
    char host[256] = "";
    int port = 0;
    if (redis && lf_cli_parse_hostport(redis, host, sizeof(host), &port) != LF_OK)
        return lf_cli_bad_redis(&cli, redis);
    if (brokers && (!brokers[0] || strchr(brokers, '@')))
        return lf_cli_usage_error(&cli, "--brokers takes HOST:PORT[,HOST:PORT...]; credentials "
                                        "belong in the rules file's kafka.properties");
    if (!path) path = "leadflow.yaml";
    lf_config_t cfg;
    lf_err_t err = {0};
    if (lf_config_load(path, &cfg, stderr, &err) != LF_OK) {
        fprintf(stderr, "leadflow run: %s is not valid (see above; `leadflow check-config %s`)\n",
                path, path);
        return LF_CLI_EXIT_USAGE;
    }
    for (size_t i = 0; i < cfg.nwarnings; i++)
        lf_log("warn", "%s", cfg.warnings[i]);
    if (brokers) lf_replace(&cfg.kafka_brokers, brokers);
    if (group) lf_replace(&cfg.kafka_group, group);
    if (redis) {
        if (host[0]) lf_replace(&cfg.redis_host, host);
        if (port) cfg.redis_port = port;
    }
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = lf_on_stop;
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    sa.sa_handler = lf_on_hup;
    sigaction(SIGHUP, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
    int rc = workers > 1 ? lf_workers_run(&cfg, &opts, workers) : lf_pipeline_run(&cfg, &opts);
    lf_config_free(&cfg);
    return rc;
}
