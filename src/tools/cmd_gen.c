/* The `leadflow gen` command: reads the options, opens the writer (a file or Kafka, see
 * leadflow/gen_writer.h), runs the pure generator (leadflow/gen.h) until done or SIGINT/
 * SIGTERM, and reports. Exit 0, 1 on a usage or run error, 130 when interrupted. */
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include "leadflow/alloc.h"
#include "leadflow/commands.h"
#include "leadflow/common.h"
#include "leadflow/gen.h"
#include "leadflow/gen_writer.h"

static const char gen_help[] =
    "usage: leadflow gen [options] (--out FILE | --brokers B [--topic T])\n"
    "\n"
    "A realistic synthetic event stream (docs/contract.md, Events in): B2B leads with Zipf-skewed\n"
    "activity, anonymous visitors who later identify, UTM-tagged page views, QR scans, forms,\n"
    "e-mails, events, downloads, videos and sales feedback, plus duplicates and malformed\n"
    "events. The same seed and options give a byte-identical stream.\n"
    "\n"
    "  --leads N        lead population (default 10000)\n"
    "  --events N       records to emit, duplicates and bad ones included (default 100000)\n"
    "  --seed S         default 1\n"
    "  --format F       msgpack (default) or json\n"
    "  --dup-rate R     share of records re-sending an earlier event, same messageId (0.01)\n"
    "  --bad-rate R     share of malformed records (0.005): truncated, not a map, missing\n"
    "                   messageId, userId too long, unparsable or absurd timestamp, 40 KiB\n"
    "  --anon-rate R    share of leads first seen anonymously who later identify (0.3)\n"
    "  --rate EPS       target records per second; 0 = as fast as possible (default)\n"
    "  --start-ms T     event time of the first record, epoch ms (default 1767225600000 =\n"
    "                   2026-01-01T00:00:00Z)\n"
    "  --span-days D    event time spread (default 30)\n"
    "  --zipf S         activity skew exponent (default 0.9)\n"
    "output (one of):\n"
    "  --out FILE       length-prefixed records: 4-byte big-endian key length, key, 4-byte\n"
    "                   big-endian value length, value; \"-\" = stdout\n"
    "  --lines          with --out: `key<TAB>value<LF>` per record instead (for --format json\n"
    "                   piped into `kcat -P -K '\\t'`)\n"
    "  --brokers B      produce to Kafka, key = userId else anonymousId (idempotent,\n"
    "                   linger.ms=50, batch.num.messages=10000, compression.type=zstd);\n"
    "                   waits for every delivery report, exits 1 if one failed\n"
    "  --topic T        default leadflow.events\n"
    "  -X name=value    extra librdkafka producer property (repeatable)\n"
    "  --stats FILE     write a JSON summary (events, valid, duplicates, bad, bad_by_reason,\n"
    "                   leads, identified, anonymous_only, by_kind, bytes)\n"
    "  --quiet          no summary line on stderr\n";

/* What the command line asks for besides the generator's options. */
typedef struct {
    lf_gen_opts_t o;
    const char *out, *brokers, *topic, *stats;
    const char **props; /* -X name=value */
    int nprops, lines, quiet;
} gen_args_t;

static void gen_on_signal(int sig)
{
    (void)sig;
    lf_gen_interrupt();
}

/* One option with a value (argv[*i], maybe taking argv[*i + 1]). 1 when it is one of ours
 * (*bad set when its value is not valid), 0 when unknown or its value is missing. */
static int gen_arg_value(gen_args_t *a, int argc, char **argv, int *i, int *missing, int *bad,
                         const char **v)
{
    lf_gen_opts_t *o = &a->o;
    uint64_t u;
    if ((*v = lf_opt_value(argc, argv, i, "--leads", missing))) {
        *bad = lf_parse_u64(*v, &o->leads);
    } else if ((*v = lf_opt_value(argc, argv, i, "--events", missing))) {
        *bad = lf_parse_u64(*v, &o->events);
    } else if ((*v = lf_opt_value(argc, argv, i, "--seed", missing))) {
        *bad = lf_parse_u64(*v, &o->seed);
    } else if ((*v = lf_opt_value(argc, argv, i, "--format", missing))) {
        if (strcmp(*v, "msgpack") == 0)
            o->format = LF_GEN_MSGPACK;
        else if (strcmp(*v, "json") == 0)
            o->format = LF_GEN_JSON;
        else
            *bad = 1;
    } else if ((*v = lf_opt_value(argc, argv, i, "--dup-rate", missing))) {
        *bad = lf_parse_double(*v, &o->dup_rate);
    } else if ((*v = lf_opt_value(argc, argv, i, "--bad-rate", missing))) {
        *bad = lf_parse_double(*v, &o->bad_rate);
    } else if ((*v = lf_opt_value(argc, argv, i, "--anon-rate", missing))) {
        *bad = lf_parse_double(*v, &o->anon_rate);
    } else if ((*v = lf_opt_value(argc, argv, i, "--rate", missing))) {
        *bad = lf_parse_double(*v, &o->rate_eps);
    } else if ((*v = lf_opt_value(argc, argv, i, "--start-ms", missing))) {
        *bad = lf_parse_u64(*v, &u);
        o->start_ms = (int64_t)u;
    } else if ((*v = lf_opt_value(argc, argv, i, "--span-days", missing))) {
        *bad = lf_parse_double(*v, &o->span_days);
    } else if ((*v = lf_opt_value(argc, argv, i, "--zipf", missing))) {
        *bad = lf_parse_double(*v, &o->zipf);
    } else if ((*v = lf_opt_value(argc, argv, i, "--out", missing))) {
        a->out = *v;
    } else if ((*v = lf_opt_value(argc, argv, i, "--brokers", missing))) {
        a->brokers = *v;
    } else if ((*v = lf_opt_value(argc, argv, i, "--topic", missing))) {
        a->topic = *v;
    } else if ((*v = lf_opt_value(argc, argv, i, "--stats", missing))) {
        a->stats = *v;
    } else if ((*v = lf_opt_value(argc, argv, i, "-X", missing))) {
        a->props[a->nprops++] = *v;
    } else {
        return 0;
    }
    return 1;
}

/* 0: run; 1: a usage error (reported); 2: --help (printed). */
static int gen_parse_args(gen_args_t *a, int argc, char **argv)
{
    for (int i = 1; i < argc; i++) {
        const char *arg = argv[i], *v = NULL;
        int missing = 0, bad = 0;
        if (strcmp(arg, "--help") == 0 || strcmp(arg, "-h") == 0) {
            fputs(gen_help, stdout);
            return 2;
        } else if (strcmp(arg, "--lines") == 0) {
            a->lines = 1;
        } else if (strcmp(arg, "--quiet") == 0 || strcmp(arg, "-q") == 0) {
            a->quiet = 1;
        } else if (!gen_arg_value(a, argc, argv, &i, &missing, &bad, &v) && !missing) {
            fprintf(stderr, "leadflow gen: unknown option %s (try --help)\n", arg);
            return 1;
        }
        if (missing) {
            fprintf(stderr, "leadflow gen: option %s needs a value\n", arg);
            return 1;
        }
        if (bad) {
            fprintf(stderr, "leadflow gen: bad value \"%s\" for %s\n", v, arg);
            return 1;
        }
    }
    return 0;
}

/* The combination of options, after each was read. */
static int gen_check_args(const gen_args_t *a)
{
    lf_err_t err = {0, ""};
    if (!a->out == !a->brokers) {
        fprintf(stderr, "leadflow gen: give exactly one of --out FILE and --brokers B\n");
        return 1;
    }
    if (a->lines && !a->out) {
        fprintf(stderr, "leadflow gen: --lines needs --out\n");
        return 1;
    }
    if (lf_gen_opts_check(&a->o, &err)) {
        fprintf(stderr, "leadflow gen: %s\n", err.msg);
        return 1;
    }
    return 0;
}

static void gen_report(const gen_args_t *a, const lf_gen_stats_t *st, double dt)
{
    fprintf(stderr,
            "leadflow gen: %llu events (%llu valid, %llu duplicates, %llu bad) for %llu "
            "leads, %.1f MB %s in %.2f s (%.0f events/s) -> %s%s%s\n",
            (unsigned long long)st->events, (unsigned long long)st->valid,
            (unsigned long long)st->duplicates, (unsigned long long)st->bad,
            (unsigned long long)st->leads, (double)st->bytes / 1e6,
            a->o.format == LF_GEN_JSON ? "json" : "msgpack", dt,
            dt > 0 ? (double)st->events / dt : 0.0, a->out ? a->out : a->brokers, a->out ? "" : "/",
            a->out ? "" : a->topic);
}

/* Opens the writer, runs the generator into it with SIGINT/SIGTERM asking it to stop,
 * closes the writer and reports. The exit code. */
static int gen_execute(const gen_args_t *a)
{
    lf_gen_stats_t st;
    lf_err_t err = {0, ""}, cerr = {0, ""};
    lf_gen_writer_t *w = a->out
                             ? lf_gen_writer_file(a->out, a->lines, &err)
                             : lf_gen_writer_kafka(a->brokers, a->topic, a->props, a->nprops, &err);
    if (!w) {
        fprintf(stderr, "leadflow gen: %s\n", err.msg);
        return 1;
    }
    struct sigaction sa, old_int, old_term;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = gen_on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, &old_int);
    sigaction(SIGTERM, &sa, &old_term);

    double t0 = lf_gen_clock();
    int run_rc = lf_gen_run(&a->o, w, &st, &err);
    int close_rc = w->close(w, &cerr);
    double dt = lf_gen_clock() - t0;
    sigaction(SIGINT, &old_int, NULL);
    sigaction(SIGTERM, &old_term, NULL);

    if (run_rc) fprintf(stderr, "leadflow gen: %s\n", err.msg);
    if (close_rc && (!run_rc || strcmp(cerr.msg, err.msg) != 0))
        fprintf(stderr, "leadflow gen: %s\n", cerr.msg);
    if (a->stats && lf_gen_stats_write(&st, &a->o, a->stats, &err)) {
        fprintf(stderr, "leadflow gen: %s\n", err.msg);
        close_rc = LF_ERR;
    }
    if (!a->quiet) gen_report(a, &st, dt);
    return run_rc || close_rc ? (lf_gen_interrupted() ? 130 : 1) : 0;
}

int lf_cmd_gen(int argc, char **argv)
{
    gen_args_t a = {.topic = "leadflow.events"};
    lf_gen_opts_default(&a.o);
    a.props = lf_calloc((size_t)argc + 1, sizeof(*a.props));
    int rc = gen_parse_args(&a, argc, argv); /* usage errors: 1, as every command */
    if (rc == 0)
        rc = gen_check_args(&a) ? 1 : gen_execute(&a);
    else if (rc == 2) /* --help */
        rc = 0;
    lf_free(a.props);
    return rc;
}
