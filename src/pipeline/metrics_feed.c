/* The pipeline's side of the metrics endpoint: its numbers gathered at the end of a turn of
 * the loop and handed to the HTTP thread (metrics_http.c), at most 4 times a second. */
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "pipeline_int.h"

/* Resident set size from /proc/self/statm (pages), 0 if unreadable. */
static int64_t lf_resident_bytes(void)
{
    long pages = 0, resident = 0;
    FILE *f = fopen("/proc/self/statm", "r");
    if (!f) return 0;
    if (fscanf(f, "%ld %ld", &pages, &resident) != 2) resident = 0;
    fclose(f);
    return (int64_t)resident * sysconf(_SC_PAGESIZE);
}

void lf_metrics_step(lf_pipe_t *p)
{
    int64_t now = lf_now_ms();
    p->last_loop_mono = now;
    if (!p->msrv || now - p->metrics_pub_ms < 250) return;
    p->metrics_pub_ms = now;
    lf_metrics_t *m = &p->metrics;
    snprintf(m->instance, sizeof(m->instance), "%s", p->instance);
    snprintf(m->rules_version, sizeof(m->rules_version), "%s",
             p->cfg->model.version ? p->cfg->model.version : "");
    snprintf(m->state, sizeof(m->state), "%s", lf_state_name(p->state));
    m->events_in = p->events_in;
    m->applied = p->applied;
    m->duplicates = p->duplicates;
    m->filtered = p->filtered;
    m->dead = p->dead;
    m->outbox_depth = p->pubs.n + p->sent.n;
    m->resident_bytes = lf_resident_bytes();
    m->started_s = (double)p->started_ms / 1000.0;
    m->last_loop_s = (double)lf_wall_ms() / 1000.0;
    m->nparts = lf_partition_lags(p, m->part, m->lag, LF_METRICS_PARTS);
    int ready =
        p->assignment && p->assignment->cnt > 0 && !p->positions_pending && p->state == LF_STATE_OK;
    const char *why = ready                                       ? ""
                      : p->state != LF_STATE_OK                   ? p->reason
                      : !p->assignment || p->assignment->cnt == 0 ? "no partition assigned"
                                                                  : "reading start positions";
    lf_metrics_publish(p->msrv, m, now, ready, why);
}
