/* `leadflow run -c leadflow.yaml`: load the rules file, install signal handlers, run. */
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "leadflow/alloc.h"
#include "leadflow/config.h"
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

/* "host:port" over the rules file's Redis settings. */
static int lf_override_redis(lf_config_t *cfg, const char *hostport)
{
    const char *colon = strrchr(hostport, ':');
    if (!colon || atoi(colon + 1) <= 0) return LF_ERR;
    lf_free(cfg->redis_host);
    cfg->redis_host = lf_strndup(hostport, (size_t)(colon - hostport));
    cfg->redis_port = atoi(colon + 1);
    return LF_OK;
}

static void lf_run_usage(FILE *out)
{
    fprintf(out,
            "usage: leadflow run [-c FILE] [--instance ID] [--workers N] [--exit-idle-ms N]\n"
            "  -c, --config FILE     rules file (default: $LEADFLOW_CONFIG, else leadflow.yaml)\n"
            "  --instance ID         instance id shown by `leadflow stats` (default host-pid)\n"
            "  --workers N           N worker processes, each a member of the consumer group\n"
            "                        (instances ID-1 .. ID-N): one per core (default 1)\n"
            "  --exit-idle-ms N      exit once no event arrived for N ms (tests, benchmarks)\n"
            "  --brokers LIST        override kafka.bootstrap_servers\n"
            "  --redis HOST:PORT     override redis.host and redis.port\n"
            "  --group ID            override kafka.group_id\n"
            "SIGTERM/SIGINT: finish the batch in flight, commit, leave the group, exit 0\n"
            "(with --workers: each worker does; if one fails, the others are stopped and its\n"
            "exit status is leadflow's).\n");
}

int lf_cmd_run(int argc, char **argv)
{
    const char *path = getenv("LEADFLOW_CONFIG");
    lf_run_opts_t opts = {0};
    opts.stop = &lf_stop;
    opts.reload = &lf_reload;
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
    optind = 1;
    while ((ch = getopt_long(argc, argv, "c:h", longopts, NULL)) != -1) {
        switch (ch) {
        case 'c':
            path = optarg;
            break;
        case 'i':
            opts.instance = optarg;
            break;
        case 'x':
            opts.exit_idle_ms = atoi(optarg);
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
        case 'w': {
            char *end;
            long v = strtol(optarg, &end, 10);
            if (*optarg == '\0' || *end != '\0' || v < 1 || v > LF_WORKERS_MAX) {
                fprintf(stderr, "leadflow run: --workers takes 1..%d, got '%s'\n", LF_WORKERS_MAX,
                        optarg);
                return 2;
            }
            workers = (int)v;
            break;
        }
        case 'h':
            lf_run_usage(stdout);
            return 0;
        default:
            lf_run_usage(stderr);
            return 2;
        }
    }
    if (!path) path = "leadflow.yaml";
    lf_config_t cfg;
    lf_err_t err = {0};
    if (lf_config_load(path, &cfg, stderr, &err) != LF_OK) {
        fprintf(stderr, "leadflow run: %s is not valid (see above; `leadflow check-config %s`)\n",
                path, path);
        return 2;
    }
    if (brokers) lf_replace(&cfg.kafka_brokers, brokers);
    if (group) lf_replace(&cfg.kafka_group, group);
    if (redis && lf_override_redis(&cfg, redis) != LF_OK) {
        fprintf(stderr, "leadflow run: --redis takes HOST:PORT, got '%s'\n", redis);
        lf_config_free(&cfg);
        return 2;
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
