/* `leadflow check-config FILE`: validate a rules file without connecting to anything.
 *
 * Every problem goes to stderr as "FILE:LINE:COL: message" (the format editors and CI
 * annotate), then a count; exit 1. A valid file prints its warnings (what is valid but
 * probably a mistake) to stderr as "FILE:LINE:COL: warning: message" and a one-screen summary
 * of what the processor would run with to stdout; exit 0. Secrets are never printed. Usage
 * errors exit 1, as for every command. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "leadflow/commands.h"
#include "leadflow/alloc.h"
#include "cli_int.h"
#include "leadflow/config.h"

static void lf_check_config_usage(FILE *out)
{
    fprintf(out, "usage: leadflow check-config [-q] FILE\n"
                 "  Validate a rules file (leadflow.yaml); '-' reads standard input.\n"
                 "  Prints every error as FILE:LINE:COL: message and exits 1, or prints the\n"
                 "  warnings (FILE:LINE:COL: warning: message; valid, but probably a mistake)\n"
                 "  and a summary of the configuration and exits 0. Secrets are shown as ***.\n"
                 "  -q  no summary: only the exit status, the errors and the warnings\n"
                 "Exit status: 0 valid (warnings or not), 1 invalid, unreadable, or a usage "
                 "error.\n");
}

/* Standard input into a buffer (lf_free it). */
static char *lf_read_stdin(size_t *len)
{
    size_t cap = 16384, got;
    char *buf = lf_malloc(cap);
    *len = 0;
    while ((got = fread(buf + *len, 1, cap - *len, stdin)) > 0) {
        *len += got;
        if (*len == cap) buf = lf_realloc(buf, cap *= 2);
    }
    return buf;
}

/* argv[0] is the command's name ("check-config"); the arguments follow it. */
int lf_cmd_check_config(int argc, char **argv)
{
    const char *path = NULL;
    int quiet = 0;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) {
            lf_check_config_usage(stdout);
            return 0;
        } else if (strcmp(argv[i], "-q") == 0 || strcmp(argv[i], "--quiet") == 0) {
            quiet = 1;
        } else if (argv[i][0] == '-' && argv[i][1] != '\0') {
            fprintf(stderr, "leadflow check-config: unknown option %s\n", argv[i]);
            lf_check_config_usage(stderr);
            return LF_CLI_EXIT_USAGE;
        } else if (path) {
            fprintf(stderr, "leadflow check-config: one file at a time (%s and %s)\n", path,
                    argv[i]);
            return LF_CLI_EXIT_USAGE;
        } else {
            path = argv[i];
        }
    }
    if (!path) {
        fprintf(stderr, "leadflow check-config: which file? (FILE, or - for standard input)\n");
        lf_check_config_usage(stderr);
        return LF_CLI_EXIT_USAGE;
    }

    /* Collect the messages to count them; print them all, then the count. */
    char *msgs = NULL;
    size_t msglen = 0;
    FILE *diag = open_memstream(&msgs, &msglen);
    if (!diag) diag = stderr;
    lf_config_t cfg;
    lf_err_t err = {0};
    int rc;
    if (strcmp(path, "-") == 0) {
        size_t len;
        char *buf = lf_read_stdin(&len);
        rc = lf_config_load_string("<stdin>", buf, len, &cfg, diag, &err);
        lf_free(buf);
    } else {
        rc = lf_config_load(path, &cfg, diag, &err);
    }
    if (diag != stderr) {
        fclose(diag);
        int n = 0;
        for (size_t i = 0; i < msglen; i++)
            n += msgs[i] == '\n';
        fputs(msgs, stderr);
        if (rc != LF_OK)
            fprintf(stderr, "leadflow check-config: %d problem%s in %s\n", n, n == 1 ? "" : "s",
                    strcmp(path, "-") == 0 ? "<stdin>" : path);
        free(msgs); /* open_memstream's buffer comes from libc's malloc */
    }
    if (rc != LF_OK) return 1;
    /* The challenger's file is checked too: `run --challenger` would refuse it. */
    if (cfg.challenger_rules) {
        lf_model_t m;
        if (lf_config_challenger_model(&cfg, &m, stderr, &err) != LF_OK) {
            fprintf(stderr, "leadflow check-config: challenger.rules: %s\n", err.msg);
            lf_config_free(&cfg);
            return 1;
        }
        lf_model_free(&m);
    }
    for (size_t i = 0; i < cfg.nwarnings; i++)
        fprintf(stderr, "%s\n", cfg.warnings[i]);
    if (cfg.nwarnings)
        fprintf(stderr, "leadflow check-config: %zu warning%s (valid, but check them)\n",
                cfg.nwarnings, cfg.nwarnings == 1 ? "" : "s");
    if (!quiet) lf_config_print_summary(&cfg, stdout);
    lf_config_free(&cfg);
    return 0;
}
