/* See include/leadflow/metrics.h. Names follow Prometheus's conventions: a leadflow_ prefix,
 * _total for counters, base units (seconds, bytes). */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "leadflow/alloc.h"
#include "leadflow/metrics.h"

void lf_hist_init(lf_hist_t *h, const double *bounds, size_t nb)
{
    memset(h, 0, sizeof(*h));
    h->nb = nb < LF_HIST_MAX ? nb : LF_HIST_MAX;
    memcpy(h->bounds, bounds, h->nb * sizeof(*bounds));
}

void lf_hist_observe(lf_hist_t *h, double v)
{
    for (size_t i = 0; i < h->nb; i++)
        if (v <= h->bounds[i]) h->counts[i]++;
    h->counts[h->nb]++;
    h->sum += v;
}

void lf_metrics_init(lf_metrics_t *m)
{
    static const double events[] = {1, 10, 50, 100, 500, 1000, 5000, 10000};
    static const double seconds[] = {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
                                     0.1,    0.25,  0.5,    1,     2.5,  5,     10};
    static const double latency[] = {0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5,
                                     1,     2.5,  5,     10,   30,  60};
    memset(m, 0, sizeof(*m));
    lf_hist_init(&m->batch_events, events, sizeof(events) / sizeof(*events));
    lf_hist_init(&m->batch_seconds, seconds, sizeof(seconds) / sizeof(*seconds));
    lf_hist_init(&m->redis_seconds, seconds, sizeof(seconds) / sizeof(*seconds));
    lf_hist_init(&m->transition_seconds, latency, sizeof(latency) / sizeof(*latency));
}

void lf_metrics_moves(lf_metrics_t *m, const uint8_t (*moves)[2], size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (moves[i][0] < LF_STAGE__COUNT && moves[i][1] < LF_STAGE__COUNT)
            m->transitions[moves[i][0]][moves[i][1]]++;
}

typedef struct {
    char **buf;
    size_t *cap, len;
} lf_out_t;

static void lf_out(lf_out_t *o, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void lf_out(lf_out_t *o, const char *fmt, ...)
{
    for (;;) {
        va_list ap;
        va_start(ap, fmt);
        size_t room = *o->cap - o->len;
        int n = vsnprintf(*o->buf + o->len, room, fmt, ap);
        va_end(ap);
        if (n < 0) return;
        if ((size_t)n < room) {
            o->len += (size_t)n;
            return;
        }
        *o->cap = *o->cap * 2 + (size_t)n + 1;
        *o->buf = lf_realloc(*o->buf, *o->cap);
    }
}

/* A label value with \, " and newline escaped (the format's rule). */
static const char *lf_label(const char *s, char *buf, size_t cap)
{
    size_t n = 0;
    for (; *s && n + 3 < cap; s++) {
        if (*s == '\\' || *s == '"') buf[n++] = '\\';
        if (*s == '\n') {
            buf[n++] = '\\';
            buf[n++] = 'n';
            continue;
        }
        buf[n++] = *s;
    }
    buf[n] = '\0';
    return buf;
}

static void lf_head(lf_out_t *o, const char *name, const char *type, const char *help)
{
    lf_out(o, "# HELP leadflow_%s %s\n# TYPE leadflow_%s %s\n", name, help, name, type);
}

static void lf_counter(lf_out_t *o, const char *name, const char *help, uint64_t v)
{
    lf_head(o, name, "counter", help);
    lf_out(o, "leadflow_%s %llu\n", name, (unsigned long long)v);
}

static void lf_hist(lf_out_t *o, const char *name, const char *help, const lf_hist_t *h)
{
    lf_head(o, name, "histogram", help);
    for (size_t i = 0; i < h->nb; i++)
        lf_out(o, "leadflow_%s_bucket{le=\"%g\"} %llu\n", name, h->bounds[i],
               (unsigned long long)h->counts[i]);
    lf_out(o, "leadflow_%s_bucket{le=\"+Inf\"} %llu\n", name, (unsigned long long)h->counts[h->nb]);
    lf_out(o, "leadflow_%s_sum %.9g\nleadflow_%s_count %llu\n", name, h->sum, name,
           (unsigned long long)h->counts[h->nb]);
}

static void lf_render_events(lf_out_t *o, const lf_metrics_t *m)
{
    lf_counter(o, "events_in_total", "Events consumed from the input topic.", m->events_in);
    lf_counter(o, "events_applied_total", "Events applied to a lead (bots included).", m->applied);
    lf_counter(o, "events_duplicate_total", "Events whose messageId or offset was already applied.",
               m->duplicates);
    lf_counter(o, "events_filtered_total", "Events of bots, applied with no effect.", m->filtered);
    lf_head(o, "events_dead_lettered_total", "counter",
            "Events sent to the dead-letter topic, by reason.");
    for (int r = 0; r < LF_BAD__COUNT; r++)
        lf_out(o, "leadflow_events_dead_lettered_total{reason=\"%s\"} %llu\n",
               lf_bad_name((lf_bad_t)r), (unsigned long long)m->dead_by_reason[r]);
    lf_head(o, "transitions_total", "counter", "Stage transitions published, by stage pair.");
    for (int f = 0; f < LF_STAGE__COUNT; f++)
        for (int t = 0; t < LF_STAGE__COUNT; t++)
            if (m->transitions[f][t])
                lf_out(o, "leadflow_transitions_total{from=\"%s\",to=\"%s\"} %llu\n",
                       lf_stage_name((lf_stage_t)f), lf_stage_name((lf_stage_t)t),
                       (unsigned long long)m->transitions[f][t]);
}

size_t lf_metrics_render(const lf_metrics_t *m, char **buf, size_t *cap)
{
    char a[300], b[300];
    if (!*buf || *cap < 4096) {
        *cap = 16384;
        *buf = lf_realloc(*buf, *cap);
    }
    lf_out_t o = {buf, cap, 0};
    lf_head(&o, "info", "gauge", "The instance and the rules version in force (always 1).");
    lf_out(&o, "leadflow_info{instance_id=\"%s\",rules_version=\"%s\",version=\"%s\"} 1\n",
           lf_label(m->instance, a, sizeof(a)), lf_label(m->rules_version, b, sizeof(b)),
           LF_VERSION);
    lf_head(&o, "up", "gauge", "1 while the state is ok, 0 while degraded or paused.");
    lf_out(&o, "leadflow_up %d\n", strcmp(m->state, "ok") == 0);
    lf_render_events(&o, m);
    lf_hist(&o, "batch_events", "Events per batch.", &m->batch_events);
    lf_hist(&o, "batch_seconds", "Time a batch took from decode to commit.", &m->batch_seconds);
    lf_hist(&o, "redis_roundtrip_seconds", "Redis round trips of the write path.",
            &m->redis_seconds);
    lf_hist(&o, "event_to_transition_seconds",
            "From an event's arrival in the batch to its transition's hand-over to Kafka.",
            &m->transition_seconds);
    lf_head(&o, "consumer_lag", "gauge", "Messages behind the high watermark, per partition.");
    for (int i = 0; i < m->nparts; i++)
        lf_out(&o, "leadflow_consumer_lag{partition=\"%d\"} %lld\n", m->part[i],
               (long long)m->lag[i]);
    lf_head(&o, "outbox_depth", "gauge", "Transitions written but not yet known delivered.");
    lf_out(&o, "leadflow_outbox_depth %llu\n", (unsigned long long)m->outbox_depth);
    lf_counter(&o, "lead_cache_hits_total", "Leads found in the in-memory cache.", m->cache_hits);
    lf_counter(&o, "lead_cache_misses_total", "Leads read from Redis.", m->cache_misses);
    lf_head(&o, "process_resident_memory_bytes", "gauge", "Resident set size.");
    lf_out(&o, "leadflow_process_resident_memory_bytes %lld\n", (long long)m->resident_bytes);
    lf_head(&o, "process_start_time_seconds", "gauge", "Start time, unix seconds.");
    lf_out(&o, "leadflow_process_start_time_seconds %.3f\n", m->started_s);
    lf_head(&o, "last_loop_time_seconds", "gauge",
            "The processing loop's last turn, unix seconds.");
    lf_out(&o, "leadflow_last_loop_time_seconds %.3f\n", m->last_loop_s);
    return o.len;
}
