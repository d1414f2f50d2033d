/* `leadflow run`: the processor. Consumes events (a consumer-group member), decodes, resolves
 * identity, scores and moves stages, writes each lead atomically to the store, publishes
 * transitions, dead-letters bad input, and commits progress only after all of that is
 * durable (docs/contract.md "Guarantees"). One thread: librdkafka's own threads do the network I/O,
 * and its callbacks run on this thread, inside its poll calls (src/pipeline/pipeline_int.h). */
#ifndef LEADFLOW_PIPELINE_H
#define LEADFLOW_PIPELINE_H

#include <signal.h>

#include "leadflow/config.h"

/* Which transitions a run publishes (a replay none; a champion and its challenger split the
 * leads between them: lf_pipeline_publishes). */
typedef enum {
    LF_PUBLISH_ALL = 0,
    LF_PUBLISH_NONE,      /* a replay, or a challenger with no split */
    LF_PUBLISH_SPLIT_OUT, /* the champion: every lead but the challenger's split */
    LF_PUBLISH_SPLIT_IN,  /* the challenger: the leads of its split only */
} lf_publish_t;

typedef struct {
    const char *instance; /* instance id for lf:ops:instance:<id>; default host-pid */
    int exit_idle_ms;     /* > 0: exit once no event arrived for this long (tests, bench) */
    volatile sig_atomic_t *stop;
    /* Set by SIGHUP (in a worker: by the parent's SIGUSR2): the loop reloads the rules file
     * at the next batch boundary (src/pipeline/reload.c) and clears it. */
    volatile sig_atomic_t *reload;
    lf_publish_t publish;
    int split_percent; /* with SPLIT_OUT/SPLIT_IN: leads whose lf_split_bucket is below it */
    /* A replay (`leadflow replay`): consume every partition from where the store's progress
     * is (the beginning of the log for a new prefix) to the end it had when assigned, then
     * return 0. A partition whose log no longer starts at offset 0 (retention deleted its
     * oldest events) stops the run with status 3, unless allow_partial. */
    int until_caught_up;
    int allow_partial;
    /* With until_caught_up: the offset each partition runs to (index: partition; -1: to
     * where it starts), instead of the end it had when assigned (a switch catches up with
     * the live instances' positions). NULL: the ends. */
    const int64_t *until_next;
    /* Bad input is counted but not sent to the dead-letter topic: the live run sends it (a
     * replay, a challenger). */
    int no_dead_letters;
    /* The file a reload reads the model from, when not cfg->path (a challenger's rules). */
    const char *model_path;
    /* Called on the pipeline's thread about once a second with the events consumed so far
     * and the events to consume in all (replay). */
    void (*on_progress)(void *ctx, int64_t done, int64_t total);
    void *progress_ctx;
    /* metrics.listen's port plus this: worker k of `--workers` serves on PORT+k-1, so that
     * every process of a host has an endpoint of its own. */
    int metrics_port_offset;
    /* No metrics endpoint whatever metrics.listen says (`leadflow replay`: a command beside
     * the live instances, which hold the port). */
    int no_metrics;
} lf_run_opts_t;

/* Runs until *stop. Returns 0 after a clean shutdown, non-zero on a fatal error (message on
 * stderr). A reload replaces cfg->model (the rest of cfg stays as it is). */
int lf_pipeline_run(lf_config_t *cfg, const lf_run_opts_t *opts);

/* Whether a run of these options publishes the transitions of this lead. */
int lf_pipeline_publishes(const lf_run_opts_t *opts, const char *lead_id);

/* A lead's place in a challenger split, 0..99: from a hash of its id, the same on every host
 * and in every version. */
int lf_split_bucket(const char *lead_id);

/* The instance id when none is given: "<host>-<pid>". */
void lf_instance_default(char *buf, size_t cap);

#endif
