/* leadflow: one binary, a subcommand each (the README's "Commands"). Every command exits 1 on a
 * usage error (LF_CLI_EXIT_USAGE), as the README says: one status for a wrong call, whatever the
 * command. */
#include <stdio.h>
#include <string.h>

#include "cli_int.h"
#include "leadflow/commands.h"
#include "leadflow/common.h"
#include "leadflow/config.h"
#include "leadflow/gen.h"
#include "leadflow/pipeline.h"

typedef struct {
    const char *name;
    int (*fn)(int argc, char **argv);
    const char *help;
} lf_command_t;

static const lf_command_t lf_commands[] = {
    {"run", lf_cmd_run, "the processor: Kafka events in, Redis state, transitions out"},
    {"devbroker", lf_cmd_devbroker, "an embedded Kafka for development and tests (in memory)"},
    {"gen", lf_cmd_gen, "a realistic synthetic event stream"},
    {"inspect", lf_cmd_inspect, "one lead: score split, rules, stage history, touches"},
    {"top", lf_cmd_top, "the live leaderboard"},
    {"stats", lf_cmd_stats, "instances, lag, counters, conservation, the funnel"},
    {"compare", lf_cmd_compare, "the back-test report between two lead states (two prefixes)"},
    {"check-config", lf_cmd_check_config, "validate a rules file and summarise its model"},
    {"reload", lf_cmd_reload, "ask every running instance to reload its rules file"},
    {"replay", lf_cmd_replay, "rebuild every lead under other rules into a shadow prefix; report"},
};

static void lf_usage(FILE *out)
{
    fprintf(out,
            "leadflow %s — B2B lead scoring on Kafka and Redis\n\nusage: leadflow COMMAND "
            "[options]   (leadflow COMMAND --help for its options)\n\n",
            LF_VERSION);
    for (size_t i = 0; i < sizeof(lf_commands) / sizeof(lf_commands[0]); i++)
        fprintf(out, "  %-13s %s\n", lf_commands[i].name, lf_commands[i].help);
    fprintf(out, "  %-13s %s\n", "version", "print the version");
    fprintf(out,
            "\nExit status: 0 done; 1 a usage error or an invalid rules file (every command);\n"
            "2 Redis or Kafka unreachable or failing; `leadflow COMMAND --help` for more.\n");
}

int main(int argc, char **argv)
{
    if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 ||
        strcmp(argv[1], "help") == 0) {
        lf_usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? LF_CLI_EXIT_USAGE : LF_CLI_EXIT_OK;
    }
    if (strcmp(argv[1], "version") == 0 || strcmp(argv[1], "--version") == 0) {
        printf("leadflow %s\n", LF_VERSION);
        return 0;
    }
    for (size_t i = 0; i < sizeof(lf_commands) / sizeof(lf_commands[0]); i++)
        if (strcmp(argv[1], lf_commands[i].name) == 0) return lf_commands[i].fn(argc - 1, argv + 1);
    fprintf(stderr, "leadflow: unknown command '%s'\n\n", argv[1]);
    lf_usage(stderr);
    return LF_CLI_EXIT_USAGE;
}
