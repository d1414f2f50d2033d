/* The processor's metrics, as numbers and as Prometheus text (exposition format 0.0.4). Pure:
 * the pipeline fills a snapshot on its thread and hands a copy to the HTTP thread
 * (src/pipeline/metrics_http.c), which renders it with lf_metrics_render. */
#ifndef LEADFLOW_METRICS_H
#define LEADFLOW_METRICS_H

#include <stddef.h>
#include <stdint.h>

#include "leadflow/event.h"
#include "leadflow/stage.h"

#define LF_HIST_MAX 16
#define LF_METRICS_PARTS 256

/* A cumulative histogram: counts[i] observations <= bounds[i], counts[nb] all (+Inf). */
typedef struct {
    double bounds[LF_HIST_MAX];
    uint64_t counts[LF_HIST_MAX + 1];
    size_t nb;
    double sum;
} lf_hist_t;

void lf_hist_init(lf_hist_t *h, const double *bounds, size_t nb);
void lf_hist_observe(lf_hist_t *h, double v);

typedef struct {
    char instance[128], rules_version[128], state[16];
    uint64_t events_in, applied, duplicates, filtered, dead;
    uint64_t dead_by_reason[LF_BAD__COUNT];
    uint64_t transitions[LF_STAGE__COUNT][LF_STAGE__COUNT]; /* [from][to] */
    lf_hist_t batch_events, batch_seconds, redis_seconds, transition_seconds;
    int nparts;
    int32_t part[LF_METRICS_PARTS];
    int64_t lag[LF_METRICS_PARTS];
    uint64_t outbox_depth, cache_hits, cache_misses;
    int64_t resident_bytes;
    double started_s;   /* unix time */
    double last_loop_s; /* unix time of the loop's last turn */
} lf_metrics_t;

/* Every histogram with its buckets, everything else zero. */
void lf_metrics_init(lf_metrics_t *m);

/* n stage pairs (from, to) of transitions published: into m->transitions. */
void lf_metrics_moves(lf_metrics_t *m, const uint8_t (*moves)[2], size_t n);

/* The text of m into *buf (grown with lf_realloc; *cap its size). Returns the length. */
size_t lf_metrics_render(const lf_metrics_t *m, char **buf, size_t *cap);

#endif
