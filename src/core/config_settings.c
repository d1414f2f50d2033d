/* The settings table of leadflow.yaml: every connection and processing setting declared once
 * (key path, type, default, range, offset in lf_config_t, help), how a setting's text becomes
 * its value, the defaults, and freeing a configuration. The walk over the file
 * (config_walk.c) and the summary (config_print.c) both read this table. */
#include <inttypes.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "config_int.h"
#include "leadflow/lead.h"
#include "leadflow/timeparse.h"

#define LF_AT(f) offsetof(lf_config_t, f), sizeof(((lf_config_t *)0)->f)

static const char *const lf_transitions_formats[] = {"msgpack", "json", NULL};
static const char *const lf_idle_clocks[] = {"wall", "event", NULL}; /* lf_idle_clock_t */
static const char *const lf_log_levels[] = {"debug", "info", "warn", "error", NULL};
static const char *const lf_log_formats[] = {"text", "json", NULL};
static const char *const lf_read_from[] = {"primary", "replica", NULL};

const lf_setting_t lf_settings[] = {
    {"version", LF_SET_STRING, NULL, LF_AT(model.version), 0, 0, 0, NULL, 0,
     "rules version recorded with every lead update and transition; default: h + a hash of "
     "the model section"},
    {"kafka.bootstrap_servers", LF_SET_STRING, "127.0.0.1:9092", LF_AT(kafka_brokers), 0, 0, 0,
     NULL, 0, "brokers, host:port[,host:port...]"},
    {"kafka.group_id", LF_SET_STRING, "leadflow", LF_AT(kafka_group), 0, 0, 0, NULL, 0,
     "consumer group shared by every instance"},
    {"kafka.topics.events", LF_SET_STRING, "leadflow.events", LF_AT(topic_events), 0, 0, 0, NULL, 0,
     "tracking events in"},
    {"kafka.topics.transitions", LF_SET_STRING, "leadflow.stage-transitions",
     LF_AT(topic_transitions), 0, 0, 0, NULL, 0, "stage transitions out"},
    {"kafka.topics.dead_letter", LF_SET_STRING, "leadflow.dead-letter", LF_AT(topic_dead_letter), 0,
     0, 0, NULL, 0, "bad input, unchanged, with reason headers"},
    {"kafka.properties", LF_SET_PROPS, NULL, LF_AT(kafka_props), 0, 0, 0, NULL, 0,
     "any librdkafka property, passed as is (security.protocol, sasl.*, ssl.*, ...)"},
    {"redis.host", LF_SET_STRING, "127.0.0.1", LF_AT(redis_host), 0, 0, 0, NULL, 0,
     "Redis host (a standalone Redis or a primary; for a Redis Cluster: redis.cluster.nodes)"},
    {"redis.port", LF_SET_INT, "6379", LF_AT(redis_port), 1, 65535, 0, NULL, 0, "Redis port"},
    {"redis.user", LF_SET_STRING, NULL, LF_AT(redis_user), 0, 0, 0, NULL, 0,
     "ACL user; none = default user"},
    {"redis.password", LF_SET_STRING, NULL, LF_AT(redis_password), 0, 0, 0, NULL, 1,
     "AUTH password; none = no AUTH"},
    {"redis.db", LF_SET_INT, "0", LF_AT(redis_db), 0, 1023, 0, NULL, 0,
     "database number (0 on a cluster)"},
    {"redis.prefix", LF_SET_STRING, "lf:", LF_AT(redis_prefix), 0, 0, 0, NULL, 0,
     "prefix of every key"},
    {"redis.timeout_ms", LF_SET_INT, "2000", LF_AT(redis_timeout_ms), 1, 600000, 0, NULL, 0,
     "connect and command timeout, ms"},
    {"redis.visitor_ttl", LF_SET_DURATION, "30d", LF_AT(visitor_ttl_s), 1000, 3650LL * 86400000,
     1000, NULL, 0,
     "an anonymous visitor's record expires after this long without an event (a Redis TTL, "
     "refreshed on each write); a visitor seen again later starts afresh"},
    {"redis.alias_ttl", LF_SET_DURATION, "400d", LF_AT(alias_ttl_s), 1000, 3650LL * 86400000, 1000,
     NULL, 0,
     "the link from an anonymousId to its lead expires after this long unused (refreshed "
     "whenever an event resolves through it)"},
    {"redis.top_leads", LF_SET_INT, "10000", LF_AT(top_leads), 0, 100000000, 0, NULL, 0,
     "lf:top keeps this many of the most engaged known leads (0 = all)"},
    {"redis.cluster.nodes", LF_SET_STRING, NULL, LF_AT(redis_cluster_nodes), 0, 0, 0, NULL, 0,
     "a Redis Cluster's seed nodes, host:port[,host:port...]: any reachable one gives the "
     "slot map; none = a standalone Redis at redis.host"},
    {"redis.cluster.wait_replicas", LF_SET_INT, "1", LF_AT(redis_wait_replicas), 0, 16, 0, NULL, 0,
     "on a Redis Cluster, a batch's writes count as done once this many replicas of each "
     "primary have them (WAIT; at most the replicas the primary has), so a failover loses none "
     "of them"},
    {"redis.cluster.read_from", LF_SET_ENUM, "primary", LF_AT(redis_read_from), 0, 0, 0,
     lf_read_from, 0,
     "where `top`, `stats` and `inspect` read on a Redis Cluster: primary, or replica (READONLY: "
     "spares the primaries, may lag them by the replication delay); `run` always uses the "
     "primaries"},
    {"redis.cluster.wait_timeout", LF_SET_DURATION, "2s", LF_AT(redis_wait_timeout_ms), 1, 600000,
     1, NULL, 0, "how long a write waits for its replicas before it is retried"},
    {"processing.batch_max_events", LF_SET_INT, "5000", LF_AT(batch_max_events), 1, 1000000, 0,
     NULL, 0, "events per batch at most"},
    {"processing.batch_max_ms", LF_SET_INT, "10", LF_AT(batch_max_ms), 1, 60000, 0, NULL, 0,
     "a batch closes after this many ms"},
    {"processing.batch_linger_ms", LF_SET_INT, "0", LF_AT(batch_linger_ms), 0, 60000, 0, NULL, 0,
     "once no event is waiting, wait this long for more before closing a batch"},
    {"processing.max_inflight_events", LF_SET_INT, "100000", LF_AT(max_inflight_events), 1,
     100000000, 0, NULL, 0, "consumed but not yet committed; consumption pauses above"},
    {"processing.cache_leads", LF_SET_INT, "200000", LF_AT(cache_leads), 0, 100000000, 0, NULL, 0,
     "leads kept in memory between batches (0 = read every lead from Redis)"},
    {"processing.dedup_window", LF_SET_DURATION, "24h", LF_AT(dedup_window), 1000,
     LF_DEDUP_WINDOW_MAX_S * 1000LL, 1000, NULL, 0,
     "a messageId seen again is dropped while its event time is within this of the lead's "
     "latest event (at most 160 ids per lead)"},
    {"processing.transitions_format", LF_SET_ENUM, "msgpack", LF_AT(transitions_json), 0, 0, 0,
     lf_transitions_formats, 0, "encoding of published transitions"},
    {"processing.allowed_lateness", LF_SET_DURATION, "15m", LF_AT(allowed_lateness_ms), 0,
     30LL * 86400000, 1, NULL, 0,
     "the decay sweep's clock trails event time (and, once the input is caught up, the wall "
     "clock) by this much, so a late event still counts before a lead is demoted"},
    {"processing.idle_clock", LF_SET_ENUM, "wall", LF_AT(idle_clock), 0, 0, 0, lf_idle_clocks, 0,
     "the decay sweep's clock once the input is caught up: wall (the wall clock minus "
     "allowed_lateness: MQLs cool down on time when no event arrives) or event (the latest "
     "event time: backfills and replays of old events)"},
    {"processing.heartbeat_ttl_s", LF_SET_DURATION, "15s", LF_AT(heartbeat_ttl_s), 1000, 3600000,
     1000, NULL, 0, "TTL of the lf:ops:* heartbeat keys"},
    {"challenger.rules", LF_SET_STRING, NULL, LF_AT(challenger_rules), 0, 0, 0, NULL, 0,
     "a second rules file (its model section), scored live beside this one by `leadflow run "
     "--challenger` into challenger.prefix; relative to this file's folder"},
    {"challenger.prefix", LF_SET_STRING, NULL, LF_AT(challenger_prefix), 0, 0, 0, NULL, 0,
     "key prefix of the challenger's state; default: redis.prefix + \"challenger:\""},
    {"challenger.split", LF_SET_INT, "0", LF_AT(challenger_split), 0, 100, 0, NULL, 0,
     "percent of leads (a stable hash of the lead id) whose transitions the challenger "
     "publishes instead of the rules in force; 0 = the challenger publishes nothing"},
    {"log.level", LF_SET_ENUM, "info", LF_AT(log_level), 0, 0, 0, lf_log_levels, 0,
     "the least level logged: debug, info, warn or error"},
    {"log.format", LF_SET_ENUM, "text", LF_AT(log_json), 0, 0, 0, lf_log_formats, 0,
     "text (a terminal) or json (one object per line: ts, level, msg, fields)"},
    {"log.progress_every", LF_SET_DURATION, "60s", LF_AT(log_progress_s), 0, 86400000, 1000, NULL,
     0, "an info line with the counters and the lag this often; 0 = never"},
    {"metrics.listen", LF_SET_STRING, NULL, LF_AT(metrics_listen), 0, 0, 0, NULL, 0,
     "serve /metrics (Prometheus), /healthz and /readyz on this IPv4-ADDRESS:PORT; none = off "
     "(127.0.0.1:9464 on one host; 0.0.0.0:9464 in a pod)"},
    {"metrics.stuck_after", LF_SET_DURATION, "30s", LF_AT(metrics_stuck_ms), 1000, 3600000, 1, NULL,
     0, "/healthz fails once the processing loop has not turned for this long"},
    {"ids.hmac_key", LF_SET_STRING, NULL, LF_AT(ids_hmac_key), 0, 0, 0, NULL, 1,
     "store and publish every lead under HMAC-SHA-256(key, its id) in hex instead of the id "
     "(keeps e-mail addresses and phone numbers used as ids out of Redis and the topics); at "
     "least 16 bytes, best ${file:PATH}; none = ids as sent. Changing it starts every lead anew"},
    {"limits.max_event_bytes", LF_SET_INT, "32768", LF_AT(limits.max_event_bytes), 256, 64 << 20, 0,
     NULL, 0, "larger events are dead-lettered"},
    {"limits.min_timestamp", LF_SET_TIMESTAMP, "2000-01-01T00:00:00Z", LF_AT(limits.min_ts_ms), 0,
     0, 0, NULL, 0, "earlier event times are dead-lettered"},
    {"limits.max_timestamp", LF_SET_TIMESTAMP, "2100-01-01T00:00:00Z", LF_AT(limits.max_ts_ms), 0,
     0, 0, NULL, 0, "later event times are dead-lettered"},
};

/* The loader keeps one slot per setting (lf_loader_t.where): a setting added here raises
 * LF_NSETTINGS in config_int.h too. */
_Static_assert(sizeof(lf_settings) / sizeof(lf_settings[0]) == LF_NSETTINGS,
               "lf_settings[]: update LF_NSETTINGS in config_int.h");

const lf_setting_t *lf_setting_find(const char *path)
{
    for (size_t i = 0; i < LF_NSETTINGS; i++)
        if (strcmp(lf_settings[i].path, path) == 0) return &lf_settings[i];
    return NULL;
}

static void *lf_setting_ptr(lf_config_t *cfg, const lf_setting_t *s)
{
    return (char *)cfg + s->off;
}

static void lf_setting_store_int(lf_config_t *cfg, const lf_setting_t *s, int64_t v)
{
    void *p = lf_setting_ptr(cfg, s);
    if (s->size == sizeof(int)) {
        int x = (int)v;
        memcpy(p, &x, sizeof(x));
    } else { /* int64_t, or size_t with a non-negative value */
        memcpy(p, &v, sizeof(v));
    }
}

int64_t lf_setting_load_int(const lf_config_t *cfg, const lf_setting_t *s)
{
    const void *p = (const char *)cfg + s->off;
    if (s->size == sizeof(int)) {
        int x;
        memcpy(&x, p, sizeof(x));
        return x;
    }
    int64_t v;
    memcpy(&v, p, sizeof(v));
    return v;
}
/* The parsers of lf_setting_apply, one per type: the value in *v (as lf_setting_store_int
 * stores it), or LF_ERR with the reason in why. A null value comes as text "". */

static int lf_setting_parse_int(const lf_setting_t *s, const char *text, int is_null, int64_t *v,
                                char *why, size_t cap)
{
    if (is_null || lf_parse_i64(text, INT64_MIN, INT64_MAX, v) != LF_OK) {
        lf_fmt(why, cap, "expected an integer, got \"%s\"", text);
        return LF_ERR;
    }
    if (*v < s->min || *v > s->max) {
        lf_fmt(why, cap, "%" PRId64 " is out of range %" PRId64 "..%" PRId64, *v, s->min, s->max);
        return LF_ERR;
    }
    return LF_OK;
}

static int lf_setting_parse_duration(const lf_setting_t *s, const char *text, int is_null,
                                     int64_t *v, char *why, size_t cap)
{
    /* dedup_window was a count of messageIds: a bare number must not become seconds. */
    if (!is_null && s->off == offsetof(lf_config_t, dedup_window) &&
        lf_parse_i64(text, INT64_MIN, INT64_MAX, v) == LF_OK) {
        lf_fmt(why, cap,
               "%s is a bare number: this is now a duration of event time, no longer a "
               "count of messageIds; write it with a unit (e.g. 24h, the default)",
               text);
        return LF_ERR;
    }
    if (is_null || lf_duration_parse(text, v) != LF_OK) {
        lf_fmt(why, cap, "\"%s\" is not a duration (e.g. 15s, 2m, 500ms)", text);
        return LF_ERR;
    }
    if (*v < s->min || *v > s->max || *v % s->unit_ms != 0) {
        lf_fmt(why, cap, "%s must be a whole number of %s between %" PRId64 " and %" PRId64, text,
               s->unit_ms == 1000 ? "seconds" : "ms", s->min / s->unit_ms, s->max / s->unit_ms);
        return LF_ERR;
    }
    *v /= s->unit_ms;
    return LF_OK;
}

static int lf_setting_parse_timestamp(const char *text, int is_null, int64_t *v, char *why,
                                      size_t cap)
{
    if (is_null || lf_time_parse_iso8601(text, strlen(text), v) != LF_OK) {
        lf_fmt(why, cap, "\"%s\" is not an ISO-8601 time (e.g. 2000-01-01T00:00:00Z)", text);
        return LF_ERR;
    }
    return LF_OK;
}

static int lf_setting_parse_enum(const lf_setting_t *s, const char *text, int is_null, int64_t *v,
                                 char *why, size_t cap)
{
    size_t i;
    for (i = 0; s->choices[i]; i++)
        if (!is_null && strcasecmp(text, s->choices[i]) == 0) break;
    if (!s->choices[i]) {
        char list[128] = "";
        for (size_t k = 0; s->choices[k]; k++)
            lf_fmt(list + strlen(list), sizeof(list) - strlen(list), "%s%s", k ? ", " : "",
                   s->choices[k]);
        lf_fmt(why, cap, "\"%s\" is not one of: %s", text, list);
        return LF_ERR;
    }
    *v = (int64_t)i;
    return LF_OK;
}

static int lf_setting_set_string(lf_config_t *cfg, const lf_setting_t *s, const char *text,
                                 int is_null, char *why, size_t cap)
{
    char **p = lf_setting_ptr(cfg, s);
    if (is_null || text[0] == '\0') {
        if (s->def) {
            lf_fmt(why, cap, "must not be empty (default \"%s\")", s->def);
            return LF_ERR;
        }
        lf_free(*p);
        *p = NULL;
        return LF_OK;
    }
    lf_free(*p);
    *p = lf_strdup(text);
    return LF_OK;
}

int lf_setting_apply(lf_config_t *cfg, const lf_setting_t *s, const char *text, int is_null,
                     char *why, size_t cap)
{
    int64_t v = 0;
    int rc = LF_ERR;
    if (is_null) text = ""; /* messages quote a null value as "" */
    switch (s->type) {
    case LF_SET_STRING:
        return lf_setting_set_string(cfg, s, text, is_null, why, cap);
    case LF_SET_INT:
        rc = lf_setting_parse_int(s, text, is_null, &v, why, cap);
        break;
    case LF_SET_DURATION:
        rc = lf_setting_parse_duration(s, text, is_null, &v, why, cap);
        break;
    case LF_SET_TIMESTAMP:
        rc = lf_setting_parse_timestamp(text, is_null, &v, why, cap);
        break;
    case LF_SET_ENUM:
        rc = lf_setting_parse_enum(s, text, is_null, &v, why, cap);
        break;
    case LF_SET_PROPS:
        return LF_ERR; /* a map: see lf_settings_props in config_walk.c */
    }
    if (rc == LF_OK) lf_setting_store_int(cfg, s, v);
    return rc;
}

void lf_setting_props_free(lf_config_t *cfg)
{
    for (size_t i = 0; i < cfg->nkafka_props; i++) {
        lf_free(cfg->kafka_props[i].key);
        lf_free(cfg->kafka_props[i].value);
    }
    lf_free(cfg->kafka_props);
    cfg->kafka_props = NULL;
    cfg->nkafka_props = 0;
}

void lf_config_defaults(lf_config_t *cfg)
{
    char why[160];
    memset(cfg, 0, sizeof(*cfg));
    for (size_t i = 0; i < LF_NSETTINGS; i++) {
        const lf_setting_t *s = &lf_settings[i];
        if (s->def && lf_setting_apply(cfg, s, s->def, 0, why, sizeof(why)) != LF_OK) {
            fprintf(stderr, "leadflow: bad built-in default %s: %s\n", s->path, why);
            abort();
        }
    }
    cfg->model.half_life_ms = 14.0 * 86400000.0;
    cfg->model.grade_l1 = 80;
    cfg->model.grade_l2 = 40;
    cfg->model.mql_enter = 60;
    cfg->model.mql_exit = 45;
}
void lf_config_free(lf_config_t *cfg)
{
    if (!cfg) return;
    for (size_t i = 0; i < LF_NSETTINGS; i++) {
        if (lf_settings[i].type != LF_SET_STRING) continue;
        char **p = lf_setting_ptr(cfg, &lf_settings[i]);
        lf_free(*p);
        *p = NULL;
    }
    lf_setting_props_free(cfg);
    lf_model_free(&cfg->model);
    lf_free(cfg->path);
    lf_strv_free(cfg->warnings, cfg->nwarnings);
    lf_strv_free(cfg->overrides, cfg->noverrides);
    memset(cfg, 0, sizeof(*cfg));
}

/*---- String vectors ----------------------------------------------------------------------*/

void lf_strv_add(char ***v, size_t *n, const char *s)
{
    *v = lf_realloc(*v, (*n + 1) * sizeof(**v));
    (*v)[(*n)++] = lf_strdup(s);
}

void lf_strv_free(char **v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        lf_free(v[i]);
    lf_free(v);
}
