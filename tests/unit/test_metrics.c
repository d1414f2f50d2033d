/* The Prometheus text of the metrics: counters, cumulative histogram buckets, the families
 * present even when empty, label values escaped. (promtool checks a real scrape in
 * tests/integration/test_metrics.py.) */
#include <string.h>

#include "leadflow/alloc.h"
#include "leadflow/metrics.h"
#include "test.h"

static int has_line(const char *text, const char *line)
{
    size_t n = strlen(line);
    for (const char *p = text; (p = strstr(p, line)) != NULL; p += n)
        if ((p == text || p[-1] == '\n') && (p[n] == '\n' || p[n] == '\0')) return 1;
    return 0;
}

static void test_metrics_render(void)
{
    lf_metrics_t m;
    lf_metrics_init(&m);
    snprintf(m.instance, sizeof(m.instance), "host-1");
    snprintf(m.rules_version, sizeof(m.rules_version), "v\"2\\\nx");
    snprintf(m.state, sizeof(m.state), "ok");
    m.events_in = 12;
    m.dead_by_reason[LF_BAD_NOT_DECODABLE] = 3;
    m.transitions[LF_STAGE_VISITOR][LF_STAGE_LEAD] = 5;
    lf_hist_observe(&m.batch_events, 7);    /* le 10 and up */
    lf_hist_observe(&m.batch_events, 2000); /* le 5000 and up */
    m.nparts = 1;
    m.part[0] = 3;
    m.lag[0] = 42;
    char *buf = NULL;
    size_t cap = 0, len = lf_metrics_render(&m, &buf, &cap);
    CHECK(len > 0 && len == strlen(buf));
    CHECK(has_line(buf, "leadflow_events_in_total 12"));
    CHECK(has_line(buf, "# TYPE leadflow_events_in_total counter"));
    CHECK(has_line(buf, "leadflow_events_dead_lettered_total{reason=\"not_decodable\"} 3"));
    CHECK(has_line(buf, "leadflow_transitions_total{from=\"visitor\",to=\"lead\"} 5"));
    CHECK(!strstr(buf, "to=\"mql\"")); /* pairs never seen are left out */
    CHECK(has_line(buf, "leadflow_batch_events_bucket{le=\"1\"} 0"));
    CHECK(has_line(buf, "leadflow_batch_events_bucket{le=\"10\"} 1"));
    CHECK(has_line(buf, "leadflow_batch_events_bucket{le=\"1000\"} 1"));
    CHECK(has_line(buf, "leadflow_batch_events_bucket{le=\"5000\"} 2"));
    CHECK(has_line(buf, "leadflow_batch_events_bucket{le=\"+Inf\"} 2"));
    CHECK(has_line(buf, "leadflow_batch_events_count 2"));
    CHECK(has_line(buf, "leadflow_batch_events_sum 2007"));
    CHECK(has_line(buf, "# TYPE leadflow_redis_roundtrip_seconds histogram"));
    CHECK(has_line(buf, "leadflow_consumer_lag{partition=\"3\"} 42"));
    CHECK(has_line(buf, "leadflow_up 1"));
    /* The quote, the backslash and the newline of the rules version, escaped. */
    CHECK(strstr(buf, "rules_version=\"v\\\"2\\\\\\nx\"") != NULL);
    lf_free(buf);
}

void suite_metrics(void)
{
    LF_RUN(test_metrics_render);
}
