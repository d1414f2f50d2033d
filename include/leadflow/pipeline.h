/* `leadflow run`: the processor. Consumes events (a consumer-group member), decodes, resolves
 * identity, scores and moves stages, writes each lead atomically to the store, publishes
 * transitions, dead-letters bad input, and commits progress only after all of that is
 * durable (CONTRACT §7). One thread: librdkafka's own threads do the network I/O, and its
 * callbacks run on this thread, inside its poll calls (src/pipeline/pipeline_int.h). */
#ifndef LEADFLOW_PIPELINE_H
#define LEADFLOW_PIPELINE_H

#include <signal.h>

#include "leadflow/config.h"

typedef struct {
    const char *instance; /* instance id for lf:ops:instance:<id>; default host-pid */
    int exit_idle_ms;     /* > 0: exit once no event arrived for this long (tests, bench) */
    volatile sig_atomic_t *stop;
    /* Set by SIGHUP (in a worker: by the parent's SIGUSR2): the loop reloads the rules file
     * at the next batch boundary (src/pipeline/reload.c) and clears it. */
    volatile sig_atomic_t *reload;
} lf_run_opts_t;

/* Runs until *stop. Returns 0 after a clean shutdown, non-zero on a fatal error (message on
 * stderr). A reload replaces cfg->model (the rest of cfg stays as it is). */
int lf_pipeline_run(lf_config_t *cfg, const lf_run_opts_t *opts);

/* The instance id when none is given: "<host>-<pid>". */
void lf_instance_default(char *buf, size_t cap);

#endif
