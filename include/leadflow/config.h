/* leadflow.yaml: connection settings and the scoring model (docs/contract.md "The rules file").
 *
 * The settings are declared once, in a table in src/core/config_settings.c (key, type,
 * default, help): the loader, the validation and `leadflow check-config` all come from it.
 * src/core/config_int.h maps the loader's other files. */
#ifndef LEADFLOW_CONFIG_H
#define LEADFLOW_CONFIG_H

#include <stdio.h>

#include "leadflow/common.h"
#include "leadflow/event.h"
#include "leadflow/model.h"

/* What the decay sweep's clock follows once the input is caught up. */
typedef enum { LF_IDLE_CLOCK_WALL = 0, LF_IDLE_CLOCK_EVENT = 1 } lf_idle_clock_t;

typedef struct {
    char *key;
    char *value;
} lf_prop_t;

typedef struct {
    /* kafka: */
    char *kafka_brokers;     /* kafka.bootstrap_servers, default "127.0.0.1:9092" */
    char *kafka_group;       /* kafka.group_id, default "leadflow" */
    char *topic_events;      /* kafka.topics.events, default "leadflow.events" */
    char *topic_transitions; /* kafka.topics.transitions, "leadflow.stage-transitions" */
    char *topic_dead_letter; /* kafka.topics.dead_letter, "leadflow.dead-letter" */
    lf_prop_t *kafka_props;  /* kafka.properties: passed to librdkafka as they are */
    size_t nkafka_props;
    /* redis: */
    char *redis_host;     /* redis.host, default "127.0.0.1" */
    int redis_port;       /* redis.port, default 6379 */
    char *redis_password; /* redis.password, default none */
    char *redis_user;     /* redis.user (ACL), default none */
    int redis_db;         /* redis.db, default 0 */
    char *redis_prefix;   /* redis.prefix, default "lf:" */
    int redis_timeout_ms; /* redis.timeout_ms, default 2000 */
    int visitor_ttl_s;    /* redis.visitor_ttl: seconds, default 30 days */
    int alias_ttl_s;      /* redis.alias_ttl: seconds, default 400 days */
    int top_leads;        /* redis.top_leads: lf:top's size, 0 = all */
    /* redis.cluster.nodes: seed nodes "host:port[,host:port...]" of a Redis Cluster; set = the
     * cluster back end (store_cluster.c), redis.host/port are then not used. */
    char *redis_cluster_nodes;
    int redis_wait_replicas;   /* redis.cluster.wait_replicas: WAIT for this many, default 1 */
    int redis_wait_timeout_ms; /* redis.cluster.wait_timeout, default 2 s */
    int redis_read_from;       /* redis.cluster.read_from: primary (0) or replica (1) */
    /* processing: */
    int batch_max_events;        /* processing.batch_max_events, default 5000 */
    int batch_max_ms;            /* processing.batch_max_ms, default 10 */
    int batch_linger_ms;         /* processing.batch_linger_ms, default 0 */
    int max_inflight_events;     /* processing.max_inflight_events, default 100000 */
    int dedup_window;            /* processing.dedup_window: seconds of event time, 24h */
    int cache_leads;             /* processing.cache_leads: leads kept in memory, 200000 */
    int transitions_json;        /* processing.transitions_format: msgpack (0) or json (1) */
    int heartbeat_ttl_s;         /* processing.heartbeat_ttl_s, default 15 */
    int64_t allowed_lateness_ms; /* processing.allowed_lateness, default 15 min */
    int idle_clock;              /* processing.idle_clock: lf_idle_clock_t */
    lf_event_limits_t limits;    /* limits.max_event_bytes, limits.min_timestamp, ... */
    /* log: */
    int log_level;      /* log.level: index in debug, info, warn, error */
    int log_json;       /* log.format: text (0) or json (1) */
    int log_progress_s; /* log.progress_every: seconds, 0 = never */
    /* metrics: */
    char *metrics_listen; /* metrics.listen: "127.0.0.1:9464", NULL = no endpoint */
    char *ids_hmac_key;   /* ids.hmac_key: lead ids stored as HMAC-SHA-256 (id_hash.h) */
    int metrics_stuck_ms; /* metrics.stuck_after, default 30 s */
    /* challenger: */
    char *challenger_rules;  /* challenger.rules: its rules file, NULL = none */
    char *challenger_prefix; /* challenger.prefix, NULL = redis.prefix + "challenger:" */
    int challenger_split;    /* challenger.split: percent of leads it publishes for */
    /* the model: */
    lf_model_t model;
    char *path; /* the file it came from */
    /* What is valid but probably a mistake, in file order, each a line
     * "FILE:LINE:COL: warning: message" (check-config and run print them). */
    char **warnings;
    size_t nwarnings;
    /* Settings the command line set (lf_config_override): a reload keeps them. */
    char **overrides;
    size_t noverrides;
} lf_config_t;

/* Defaults for everything, model empty (a valid minimal configuration). */
void lf_config_defaults(lf_config_t *cfg);

/* Load and validate a rules file. On failure returns LF_ERR, writes every problem to `diag`
 * (one line each, "FILE:LINE:COL: message"; may be NULL) and sets err to the first one. */
int lf_config_load(const char *path, lf_config_t *cfg, FILE *diag, lf_err_t *err);
/* Same from a buffer (name is used in messages). */
int lf_config_load_string(const char *name, const char *yaml, size_t len, lf_config_t *cfg,
                          FILE *diag, lf_err_t *err);
void lf_config_free(lf_config_t *cfg);

/* Set one setting (dotted key, as in the file) from the command line, and remember that it
 * was: a reload of the file keeps it. LF_ERR with a message if the key or value is bad. */
int lf_config_override(lf_config_t *cfg, const char *key, const char *value, lf_err_t *err);

/* The settings outside the model whose values differ between the running configuration and
 * the file read again (overridden ones aside): a reload applies the model only, these wait
 * for a restart. Their keys, comma-separated, into buf; returns how many. */
size_t lf_config_restart_changes(const lf_config_t *running, const lf_config_t *file, char *buf,
                                 size_t cap);

/* The challenger (challenger.*, src/core/config_challenger.c): its rules file's path
 * (relative to cfg's folder; LF_ERR when none is named), its key prefix, its model (loaded
 * from that file; errors to diag), and cfg turned into the challenger's run configuration
 * (its model, its prefix, the group "<group>.challenger"). */
int lf_config_challenger_path(const lf_config_t *cfg, char *buf, size_t cap);
void lf_config_challenger_prefix(const lf_config_t *cfg, char *buf, size_t cap);
int lf_config_challenger_model(const lf_config_t *cfg, lf_model_t *out, FILE *diag, lf_err_t *err);
int lf_config_make_challenger(lf_config_t *cfg, FILE *diag, lf_err_t *err);

/* Whether a kafka.properties entry must never be printed: its name holds password, secret,
 * token, key, pem, credential or jaas (ssl.key.pem, sasl.password, ...), or its value looks
 * like a PEM block. Messages and summaries print "***" instead of its value. */
int lf_config_secret_prop(const char *key, const char *value);

/* One-screen human summary of a loaded configuration (check-config prints it). */
void lf_config_print_summary(const lf_config_t *cfg, FILE *out);

/* "14d", "36h", "90m", "30s", "500ms", or a bare number of seconds, to ms (src/core/duration.c). */
int lf_duration_parse(const char *s, int64_t *out_ms);

#endif
