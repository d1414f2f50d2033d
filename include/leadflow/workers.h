/* `leadflow run --workers N`: N pipelines in child processes, each its own member of the
 * consumer group (instance "<id>-<k>"), so one machine's cores share the partitions the way
 * N separate instances would. Nothing is shared between them but the group and Redis: the
 * guarantees are those of N instances (docs/contract.md "Guarantees"). */
#ifndef LEADFLOW_WORKERS_H
#define LEADFLOW_WORKERS_H

#include "leadflow/config.h"
#include "leadflow/pipeline.h"

#define LF_WORKERS_MAX 64

/* Forks n workers running lf_pipeline_run and waits for them. *opts->stop (SIGTERM/SIGINT)
 * is passed on to every live worker (as SIGUSR1: a worker ignores SIGTERM and SIGINT, so a
 * signal to the whole process group counts once), once per signal received. A worker that exits
 * with a non-zero status or dies of a signal stops the others (a supervisor restarts the whole
 * instance): its status is returned, 128 + the signal number for a signal. Returns 0 once
 * every worker exited 0. */
int lf_workers_run(lf_config_t *cfg, const lf_run_opts_t *opts, int n);

#endif
