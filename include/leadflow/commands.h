/* The entry points of `leadflow <command>`, one per command (src/cli/main.c dispatches). Each
 * takes the arguments after the command name (argv[0] is the command) and returns the process
 * exit status: 0 success, 1 usage, others as the command's --help says. */
#ifndef LEADFLOW_COMMANDS_H
#define LEADFLOW_COMMANDS_H

int lf_cmd_run(int argc, char **argv);          /* src/cli/cmd_run.c */
int lf_cmd_check_config(int argc, char **argv); /* src/cli/cmd_check_config.c */
int lf_cmd_inspect(int argc, char **argv);      /* src/cli/cli_inspect.c */
int lf_cmd_top(int argc, char **argv);          /* src/cli/cli_top.c */
int lf_cmd_stats(int argc, char **argv);        /* src/cli/cli_stats.c */
int lf_cmd_reload(int argc, char **argv);       /* src/cli/cmd_reload.c */
int lf_cmd_replay(int argc, char **argv);       /* src/cli/cmd_replay.c */
int lf_cmd_compare(int argc, char **argv);      /* src/cli/cmd_compare.c */
int lf_cmd_gen(int argc, char **argv);          /* src/tools/cmd_gen.c */
int lf_cmd_devbroker(int argc, char **argv);    /* src/tools/devbroker.c */

#endif
