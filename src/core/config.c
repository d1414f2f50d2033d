/* The rules file, leadflow.yaml (CONTRACT §3): connection settings and the scoring model.
 *
 * Loading happens in three passes over one document:
 *   1. libyaml's event parser builds a small tree of nodes (in an arena) that remembers the
 *      line and column of everything, resolves aliases and marks duplicate keys;
 *   2. the settings (kafka, redis, processing, limits, version) are read by walking the tree
 *      against ONE table, lf_settings[]: key path, type, default, offset in lf_config_t, help.
 *      Defaults, unknown-key detection ("did you mean"), type checks, ranges and the summary
 *      that `leadflow check-config` prints all come from that table;
 *   3. the model section has its own parser (rules are lists of structured maps, not scalar
 *      settings), then cross-field checks run over the result.
 *
 * Every problem is collected, never just the first: they are sorted by position and printed
 * as "FILE:LINE:COL: message", so one run of check-config shows everything to fix. */
#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <yaml.h>

#include "leadflow/alloc.h"
#include "leadflow/config.h"
#include "leadflow/lead.h"
#include "leadflow/stage.h"
#include "leadflow/timeparse.h"

#define LF_CFG_MAX_FILE (16u << 20)  /* a rules file is a few KB; refuse absurd ones */
#define LF_CFG_MAX_DEPTH 64          /* YAML nesting */
#define LF_CFG_MAX_SHOWN 100         /* diagnostics printed; the rest are counted */
#define LF_CFG_MAX_VERSION 64        /* rules_version is stored with every lead update */
#define LF_CFG_MAX_HASHED (8u << 20) /* canonical model text, after alias expansion */

/*---- The settings table ------------------------------------------------------------------*/

typedef enum {
    LF_SET_STRING,    /* char *; NULL default = optional */
    LF_SET_INT,       /* int (or size_t / int64_t by the field's size), in [min, max] */
    LF_SET_BOOL,      /* int 0/1: true/false, yes/no, on/off */
    LF_SET_DURATION,  /* "15s", "2m", bare seconds; stored in units of unit_ms, in [min, max] ms */
    LF_SET_TIMESTAMP, /* ISO-8601, stored as int64_t epoch ms */
    LF_SET_ENUM,      /* int: index in choices[] */
    LF_SET_PROPS,     /* map of scalars: lf_prop_t array (kafka.properties), count follows it */
} lf_set_type_t;

typedef struct {
    const char *path; /* dotted key path in the file */
    lf_set_type_t type;
    const char *def; /* the default, written as in the file; NULL = none */
    size_t off, size;
    int64_t min, max, unit_ms;
    const char *const *choices; /* LF_SET_ENUM: NULL-terminated */
    int secret;                 /* never printed */
    const char *help;
} lf_setting_t;

#define LF_AT(f) offsetof(lf_config_t, f), sizeof(((lf_config_t *)0)->f)

static const char *const lf_transitions_formats[] = {"msgpack", "json", NULL};
static const char *const lf_idle_clocks[] = {"wall", "event", NULL}; /* lf_idle_clock_t */

static const lf_setting_t lf_settings[] = {
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
     "Redis (or one Redis Cluster node) host"},
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
    {"limits.max_event_bytes", LF_SET_INT, "32768", LF_AT(limits.max_event_bytes), 256, 64 << 20, 0,
     NULL, 0, "larger events are dead-lettered"},
    {"limits.min_timestamp", LF_SET_TIMESTAMP, "2000-01-01T00:00:00Z", LF_AT(limits.min_ts_ms), 0,
     0, 0, NULL, 0, "earlier event times are dead-lettered"},
    {"limits.max_timestamp", LF_SET_TIMESTAMP, "2100-01-01T00:00:00Z", LF_AT(limits.max_ts_ms), 0,
     0, 0, NULL, 0, "later event times are dead-lettered"},
};

#define LF_NSETTINGS (sizeof(lf_settings) / sizeof(lf_settings[0]))

static const lf_setting_t *lf_setting_find(const char *path)
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

static int64_t lf_setting_load_int(const lf_config_t *cfg, const lf_setting_t *s)
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

static int lf_parse_bool(const char *s, int *out)
{
    static const char *const yes[] = {"true", "yes", "on"}, *const no[] = {"false", "no", "off"};
    for (int i = 0; i < 3; i++) {
        if (strcasecmp(s, yes[i]) == 0) return *out = 1, LF_OK;
        if (strcasecmp(s, no[i]) == 0) return *out = 0, LF_OK;
    }
    return LF_ERR;
}

/* Parse the text of one scalar setting and store it. Returns LF_OK, or LF_ERR with a reason
 * (completing "<path>: ...") in why. The defaults go through here too. */
static int lf_setting_apply(lf_config_t *cfg, const lf_setting_t *s, const char *text, int is_null,
                            char *why, size_t cap)
{
    int64_t v = 0;
    switch (s->type) {
    case LF_SET_STRING: {
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
    case LF_SET_INT:
        if (is_null || lf_parse_i64(text, INT64_MIN, INT64_MAX, &v) != LF_OK) {
            lf_fmt(why, cap, "expected an integer, got \"%s\"", is_null ? "" : text);
            return LF_ERR;
        }
        if (v < s->min || v > s->max) {
            lf_fmt(why, cap, "%" PRId64 " is out of range %" PRId64 "..%" PRId64, v, s->min,
                   s->max);
            return LF_ERR;
        }
        break;
    case LF_SET_BOOL: {
        int b;
        if (is_null || lf_parse_bool(text, &b) != LF_OK) {
            lf_fmt(why, cap, "expected true or false, got \"%s\"", is_null ? "" : text);
            return LF_ERR;
        }
        v = b;
        break;
    }
    case LF_SET_DURATION:
        /* dedup_window was a count of messageIds: a bare number must not become seconds. */
        if (!is_null && s->off == offsetof(lf_config_t, dedup_window) &&
            lf_parse_i64(text, INT64_MIN, INT64_MAX, &v) == LF_OK) {
            lf_fmt(why, cap,
                   "%s is a bare number: this is now a duration of event time, no longer a "
                   "count of messageIds; write it with a unit (e.g. 24h, the default)",
                   text);
            return LF_ERR;
        }
        if (is_null || lf_duration_parse(text, &v) != LF_OK) {
            lf_fmt(why, cap, "\"%s\" is not a duration (e.g. 15s, 2m, 500ms)", is_null ? "" : text);
            return LF_ERR;
        }
        if (v < s->min || v > s->max || v % s->unit_ms != 0) {
            lf_fmt(why, cap, "%s must be a whole number of %s between %" PRId64 " and %" PRId64,
                   text, s->unit_ms == 1000 ? "seconds" : "ms", s->min / s->unit_ms,
                   s->max / s->unit_ms);
            return LF_ERR;
        }
        v /= s->unit_ms;
        break;
    case LF_SET_TIMESTAMP:
        if (is_null || lf_time_parse_iso8601(text, strlen(text), &v) != LF_OK) {
            lf_fmt(why, cap, "\"%s\" is not an ISO-8601 time (e.g. 2000-01-01T00:00:00Z)",
                   is_null ? "" : text);
            return LF_ERR;
        }
        break;
    case LF_SET_ENUM: {
        size_t i;
        for (i = 0; s->choices[i]; i++)
            if (!is_null && strcasecmp(text, s->choices[i]) == 0) break;
        if (!s->choices[i]) {
            char list[128] = "";
            for (size_t k = 0; s->choices[k]; k++)
                lf_fmt(list + strlen(list), sizeof(list) - strlen(list), "%s%s", k ? ", " : "",
                       s->choices[k]);
            lf_fmt(why, cap, "\"%s\" is not one of: %s", is_null ? "" : text, list);
            return LF_ERR;
        }
        v = (int64_t)i;
        break;
    }
    case LF_SET_PROPS:
        return LF_ERR; /* a map: see lf_settings_props */
    }
    lf_setting_store_int(cfg, s, v);
    return LF_OK;
}

static void lf_props_free(lf_config_t *cfg)
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

static void lf_strv_free(char **v, size_t n);

void lf_config_free(lf_config_t *cfg)
{
    if (!cfg) return;
    for (size_t i = 0; i < LF_NSETTINGS; i++) {
        if (lf_settings[i].type != LF_SET_STRING) continue;
        char **p = lf_setting_ptr(cfg, &lf_settings[i]);
        lf_free(*p);
        *p = NULL;
    }
    lf_props_free(cfg);
    lf_model_free(&cfg->model);
    lf_free(cfg->path);
    lf_strv_free(cfg->warnings, cfg->nwarnings);
    memset(cfg, 0, sizeof(*cfg));
}

static void lf_strv_free(char **v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        lf_free(v[i]);
    lf_free(v);
}

static void lf_conds_free(lf_cond_t *c, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        lf_free(c[i].field);
        lf_strv_free(c[i].values, c[i].nvalues);
    }
    lf_free(c);
}

void lf_model_free(lf_model_t *m)
{
    if (!m) return;
    lf_free(m->version);
    lf_strv_free(m->mql_required_traits, m->nmql_required_traits);
    for (size_t i = 0; i < m->neng; i++) {
        lf_engagement_rule_t *r = &m->eng[i];
        lf_free(r->name);
        lf_strv_free(r->kinds, r->nkinds);
        lf_strv_free(r->path_prefixes, r->npath_prefixes);
        lf_conds_free(r->utm, r->nutm);
        lf_conds_free(r->props, r->nprops);
    }
    lf_free(m->eng);
    for (size_t i = 0; i < m->nfit; i++) {
        lf_free(m->fit[i].name);
        lf_conds_free(m->fit[i].conds, m->fit[i].nconds);
    }
    lf_free(m->fit);
    lf_strv_free(m->tracked_traits, m->ntracked_traits);
    lf_strv_free(m->bot_user_agents, m->nbot_user_agents);
    memset(m, 0, sizeof(*m));
}

/*---- Durations ---------------------------------------------------------------------------*/

/* "14d", "36h", "90m", "30s", "500ms", "1w", compounds like "1h30m", fractions ("1.5h"), a
 * leading '-' (so callers can say "must be positive" rather than "not a duration"), or a bare
 * number of seconds. */
int lf_duration_parse(const char *s, int64_t *out_ms)
{
    static const struct {
        const char *unit;
        double ms;
    } units[] = {{"ms", 1}, {"s", 1e3}, {"m", 6e4}, {"h", 3.6e6}, {"d", 8.64e7}, {"w", 6.048e8}};
    if (!s) return LF_ERR;
    while (isspace((unsigned char)*s))
        s++;
    int neg = 0;
    if (*s == '-' || *s == '+') neg = *s++ == '-';
    double total = 0;
    int parts = 0;
    for (;;) {
        while (isspace((unsigned char)*s))
            s++;
        if (*s == '\0') break;
        if (!isdigit((unsigned char)*s) && *s != '.') return LF_ERR;
        const char *num = s;
        while (isdigit((unsigned char)*s))
            s++;
        if (*s == '.') {
            s++;
            while (isdigit((unsigned char)*s))
                s++;
        }
        if (s - num == 1 && *num == '.') return LF_ERR;
        double v = strtod(num, NULL);
        while (isspace((unsigned char)*s))
            s++;
        size_t k, ulen = 0;
        for (k = 0; k < sizeof(units) / sizeof(units[0]); k++) {
            ulen = strlen(units[k].unit);
            if (strncmp(s, units[k].unit, ulen) == 0 && !isalpha((unsigned char)s[ulen])) break;
        }
        if (k == sizeof(units) / sizeof(units[0])) {
            /* A bare number of seconds, only on its own. */
            if (parts > 0 || *s != '\0') return LF_ERR;
            total = v * 1e3;
            parts++;
            break;
        }
        s += ulen;
        total += v * units[k].ms;
        parts++;
    }
    if (parts == 0 || !(total < 9.2e18)) return LF_ERR;
    int64_t ms = (int64_t)llround(total);
    *out_ms = neg ? -ms : ms;
    return LF_OK;
}

/* The largest unit that divides ms exactly: 1209600000 -> "14d". */
static void lf_duration_format(int64_t ms, char *buf, size_t cap)
{
    static const struct {
        const char *unit;
        int64_t ms;
    } units[] = {{"d", 86400000}, {"h", 3600000}, {"m", 60000}, {"s", 1000}};
    for (size_t k = 0; k < sizeof(units) / sizeof(units[0]); k++) {
        if (ms != 0 && ms % units[k].ms == 0) {
            lf_fmt(buf, cap, "%" PRId64 "%s", ms / units[k].ms, units[k].unit);
            return;
        }
    }
    lf_fmt(buf, cap, "%" PRId64 "ms", ms);
}

/*---- Diagnostics -------------------------------------------------------------------------*/

typedef struct {
    int line, col; /* 0 = no position (the file itself) */
    unsigned seq;
    char *msg;
} lf_diag_t;

typedef enum { LF_N_SCALAR, LF_N_MAP, LF_N_SEQ, LF_N_ALIAS } lf_node_type_t;

/* A node of the YAML tree. Containers keep their children as a list; a map's children
 * alternate key, value. */
typedef struct lf_node {
    lf_node_type_t type;
    int line, col;   /* 1-based */
    const char *str; /* scalar text, NUL-terminated */
    size_t len;
    int plain; /* a plain (unquoted) scalar: may be null, a number, a bool */
    int dup;   /* a map key seen before in the same map: its pair is ignored */
    size_t n;  /* children */
    struct lf_node *first, *last, *next;
    const struct lf_node *target; /* alias */
    const char *anchor;           /* registered when the node is complete */
} lf_node_t;

typedef struct {
    const char *name;
    const lf_node_t *node;
} lf_anchor_t;

typedef struct {
    const char *name;
    const lf_node_t *node;
} lf_named_t;

typedef struct {
    const char *name; /* for messages */
    lf_config_t *cfg;
    lf_arena_t arena;
    lf_diag_t *diags;
    size_t ndiags, capdiags;
    int fatal; /* the YAML could not be parsed: nothing else to check */
    lf_anchor_t *anchors;
    size_t nanchors;
    const lf_node_t *where[LF_NSETTINGS]; /* node that set each setting */
    const lf_node_t *model;
    const lf_node_t *at_half_life, *at_l1, *at_l2, *at_enter, *at_exit;
    lf_named_t *names; /* rule names, for duplicates */
    size_t nnames;
    const lf_node_t **trait_at;  /* where each tracked trait was first named */
    const lf_node_t *at_require; /* model.stages.mql.require_traits */
    const lf_node_t *at_model;   /* the key "model" */
    lf_diag_t *warns;            /* valid but probably a mistake: cfg->warnings on success */
    size_t nwarns, capwarns;
} lf_loader_t;

/* Append a formatted message at line:col to a list of diagnostics (errors or warnings). */
static void lf_diag_push(lf_diag_t **v, size_t *n, size_t *cap, int line, int col, const char *fmt,
                         va_list ap)
{
    char msg[512];
    vsnprintf(msg, sizeof(msg), fmt, ap);
    if (*n == *cap) {
        *cap = *cap ? *cap * 2 : 16;
        *v = lf_realloc(*v, *cap * sizeof(**v));
    }
    lf_diag_t *d = &(*v)[*n];
    d->line = line;
    d->col = col;
    d->seq = (unsigned)(*n)++;
    d->msg = lf_strdup(msg);
}

static void lf_diag(lf_loader_t *ld, int line, int col, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static void lf_diag(lf_loader_t *ld, int line, int col, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    lf_diag_push(&ld->diags, &ld->ndiags, &ld->capdiags, line, col, fmt, ap);
    va_end(ap);
}

#define LF_ERR_AT(ld, node, ...) lf_diag((ld), (node)->line, (node)->col, __VA_ARGS__)

/* A warning: kept apart from the errors, which alone make a file invalid. */
static void lf_warn(lf_loader_t *ld, int line, int col, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static void lf_warn(lf_loader_t *ld, int line, int col, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    lf_diag_push(&ld->warns, &ld->nwarns, &ld->capwarns, line, col, fmt, ap);
    va_end(ap);
}

#define LF_WARN_AT(ld, node, ...) lf_warn((ld), (node)->line, (node)->col, __VA_ARGS__)

static int lf_diag_cmp(const void *a, const void *b)
{
    const lf_diag_t *x = a, *y = b;
    if (x->line != y->line) return x->line < y->line ? -1 : 1;
    if (x->col != y->col) return x->col < y->col ? -1 : 1;
    return x->seq < y->seq ? -1 : x->seq > y->seq;
}

/* Print the diagnostics in file order; the first one goes into err. */
static void lf_diag_flush(lf_loader_t *ld, FILE *out, lf_err_t *err)
{
    if (ld->ndiags) qsort(ld->diags, ld->ndiags, sizeof(*ld->diags), lf_diag_cmp);
    for (size_t i = 0; i < ld->ndiags; i++) {
        const lf_diag_t *d = &ld->diags[i];
        char pos[32] = "";
        if (d->line > 0) lf_fmt(pos, sizeof(pos), ":%d:%d", d->line, d->col);
        if (i == 0) lf_err_set(err, LF_ERR, "%s%s: %s", ld->name, pos, d->msg);
        if (out && i < LF_CFG_MAX_SHOWN) fprintf(out, "%s%s: %s\n", ld->name, pos, d->msg);
        lf_free(d->msg);
    }
    if (out && ld->ndiags > LF_CFG_MAX_SHOWN)
        fprintf(out, "%s: %zu more errors not shown\n", ld->name, ld->ndiags - LF_CFG_MAX_SHOWN);
    lf_free(ld->diags);
    ld->diags = NULL;
    ld->ndiags = ld->capdiags = 0;
}

/* Edit distance (insertions, deletions, substitutions, swaps of neighbours), ignoring case,
 * for "did you mean". */
static size_t lf_edit_distance(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    if (la > 48 || lb > 48) return SIZE_MAX;
    size_t d[49][49];
    for (size_t i = 0; i <= la; i++)
        d[i][0] = i;
    for (size_t j = 0; j <= lb; j++)
        d[0][j] = j;
    for (size_t i = 1; i <= la; i++) {
        for (size_t j = 1; j <= lb; j++) {
            int ca = tolower((unsigned char)a[i - 1]), cb = tolower((unsigned char)b[j - 1]);
            size_t best = d[i - 1][j - 1] + (ca != cb);
            if (d[i - 1][j] + 1 < best) best = d[i - 1][j] + 1;
            if (d[i][j - 1] + 1 < best) best = d[i][j - 1] + 1;
            if (i > 1 && j > 1 && ca == tolower((unsigned char)b[j - 2]) &&
                tolower((unsigned char)a[i - 2]) == cb && d[i - 2][j - 2] + 1 < best)
                best = d[i - 2][j - 2] + 1;
            d[i][j] = best;
        }
    }
    return d[la][lb];
}

/* The nearest candidate to a misspelt word, or NULL when nothing is close. */
static const char *lf_suggest(const char *word, const char *const *cands, size_t n)
{
    const char *best = NULL;
    size_t bestd = SIZE_MAX;
    for (size_t i = 0; i < n; i++) {
        size_t d = lf_edit_distance(word, cands[i]);
        size_t len = strlen(cands[i]), wl = strlen(word);
        /* A truncated name ("require" for "require_traits") is near too. */
        if (wl >= 4 && wl < len && strncasecmp(word, cands[i], wl) == 0) d = 1;
        size_t limit = len <= 3 ? 1 : len <= 6 ? 2 : 3;
        if (d <= limit && d < bestd) {
            best = cands[i];
            bestd = d;
        }
    }
    return best;
}

static void lf_unknown_key(lf_loader_t *ld, const lf_node_t *key, const char *where,
                           const char *const *cands, size_t n)
{
    const char *s = lf_suggest(key->str, cands, n);
    char list[256] = "";
    for (size_t i = 0; i < n; i++)
        lf_fmt(list + strlen(list), sizeof(list) - strlen(list), "%s%s", i ? ", " : "", cands[i]);
    if (s)
        LF_ERR_AT(ld, key, "unknown key \"%s\" in %s (did you mean \"%s\"?)", key->str, where, s);
    else
        LF_ERR_AT(ld, key, "unknown key \"%s\" in %s (known: %s)", key->str, where, list);
}

/*---- YAML tree ---------------------------------------------------------------------------*/

static const lf_node_t *lf_deref(const lf_node_t *n)
{
    return n && n->type == LF_N_ALIAS ? n->target : n;
}

static int lf_is_null(const lf_node_t *n)
{
    n = lf_deref(n);
    if (!n) return 1;
    if (n->type != LF_N_SCALAR || !n->plain) return 0;
    return n->len == 0 || strcmp(n->str, "~") == 0 || strcmp(n->str, "null") == 0 ||
           strcmp(n->str, "Null") == 0 || strcmp(n->str, "NULL") == 0;
}

/* "a mapping", "a list", "nothing", or the scalar quoted: for "expected X, got Y". */
static const char *lf_what(const lf_node_t *n, char *buf, size_t cap)
{
    n = lf_deref(n);
    if (lf_is_null(n)) return "nothing";
    if (n->type == LF_N_MAP) return "a mapping";
    if (n->type == LF_N_SEQ) return "a list";
    if (lf_config_secret_prop(NULL, n->str)) return "a PEM block (not shown)"; /* key material */
    lf_fmt(buf, cap, "\"%.60s%s\"", n->str, n->len > 60 ? "..." : "");
    return buf;
}

static lf_node_t *lf_node_new(lf_loader_t *ld, lf_node_type_t type, const yaml_mark_t *mark)
{
    lf_node_t *n = lf_arena_alloc(&ld->arena, sizeof(*n));
    memset(n, 0, sizeof(*n));
    n->type = type;
    n->line = (int)mark->line + 1;
    n->col = (int)mark->column + 1;
    return n;
}

static void lf_anchor_add(lf_loader_t *ld, const char *name, const lf_node_t *n)
{
    ld->anchors = lf_realloc(ld->anchors, (ld->nanchors + 1) * sizeof(*ld->anchors));
    ld->anchors[ld->nanchors].name = name;
    ld->anchors[ld->nanchors].node = n;
    ld->nanchors++;
}

static const char *lf_arena_str(lf_loader_t *ld, const unsigned char *s)
{
    return s ? lf_arena_strndup(&ld->arena, (const char *)s, strlen((const char *)s)) : NULL;
}

static int lf_key_cmp(const void *a, const void *b)
{
    const lf_node_t *x = lf_deref(*(const lf_node_t *const *)a);
    const lf_node_t *y = lf_deref(*(const lf_node_t *const *)b);
    int c = strcmp(x->str, y->str);
    if (c) return c;
    const lf_node_t *xo = *(const lf_node_t *const *)a, *yo = *(const lf_node_t *const *)b;
    if (xo->line != yo->line) return xo->line < yo->line ? -1 : 1;
    return xo->col < yo->col ? -1 : xo->col > yo->col;
}

/* YAML forbids a key twice in one map; readers disagree on which wins. Report each repeat
 * and mark it, so the walkers read the first one only. */
static void lf_map_check_dups(lf_loader_t *ld, lf_node_t *map)
{
    size_t nkeys = 0;
    lf_node_t **keys = lf_malloc((map->n / 2 + 1) * sizeof(*keys));
    for (lf_node_t *k = map->first; k && k->next; k = k->next->next) {
        const lf_node_t *d = lf_deref(k);
        if (d && d->type == LF_N_SCALAR) keys[nkeys++] = k;
    }
    qsort(keys, nkeys, sizeof(*keys), lf_key_cmp);
    for (size_t i = 1; i < nkeys; i++) {
        size_t first = i - 1;
        while (first > 0 && keys[first]->dup)
            first--;
        if (strcmp(lf_deref(keys[i])->str, lf_deref(keys[i - 1])->str) == 0) {
            keys[i]->dup = 1;
            LF_ERR_AT(ld, keys[i], "duplicate key \"%s\" (first at line %d)",
                      lf_deref(keys[i])->str, keys[first]->line);
        }
    }
    lf_free(keys);
}

static void lf_yaml_error(lf_loader_t *ld, const yaml_parser_t *p, const char *buf, size_t len)
{
    int line = (int)p->problem_mark.line + 1, col = (int)p->problem_mark.column + 1;
    if (p->error == YAML_READER_ERROR) {
        /* Reader errors (bad UTF-8, control characters) carry an offset, not a mark. */
        line = 1;
        col = 1;
        for (size_t i = 0; i < p->problem_offset && i < len; i++) {
            if (buf[i] == '\n') {
                line++;
                col = 1;
            } else {
                col++;
            }
        }
    }
    const char *problem = p->problem ? p->problem : "cannot parse";
    if (p->context)
        lf_diag(ld, line, col, "YAML syntax error: %s %s (line %d, column %d)", problem, p->context,
                (int)p->context_mark.line + 1, (int)p->context_mark.column + 1);
    else
        lf_diag(ld, line, col, "YAML syntax error: %s", problem);
}

/* Build the tree of the first document with libyaml's event parser. NULL for an empty file;
 * ld->fatal when the YAML itself is broken. */
static lf_node_t *lf_yaml_build(lf_loader_t *ld, const char *buf, size_t len)
{
    yaml_parser_t p;
    yaml_event_t ev;
    lf_node_t *stack[LF_CFG_MAX_DEPTH], *root = NULL;
    int depth = 0, done = 0, docs = 0;

    if (!yaml_parser_initialize(&p)) {
        lf_diag(ld, 0, 0, "cannot initialise the YAML parser");
        ld->fatal = 1;
        return NULL;
    }
    yaml_parser_set_input_string(&p, (const unsigned char *)buf, len);
    while (!done) {
        if (!yaml_parser_parse(&p, &ev)) {
            lf_yaml_error(ld, &p, buf, len);
            ld->fatal = 1;
            break;
        }
        lf_node_t *n = NULL;
        const char *anchor = NULL;
        switch (ev.type) {
        case YAML_STREAM_END_EVENT:
            done = 1;
            break;
        case YAML_DOCUMENT_START_EVENT:
            if (++docs > 1) {
                lf_diag(ld, (int)ev.start_mark.line + 1, (int)ev.start_mark.column + 1,
                        "a second YAML document: the rules file holds exactly one");
                done = 1;
            }
            break;
        case YAML_SCALAR_EVENT:
            n = lf_node_new(ld, LF_N_SCALAR, &ev.start_mark);
            n->len = ev.data.scalar.length;
            n->str = lf_arena_strndup(&ld->arena, (const char *)ev.data.scalar.value, n->len);
            n->plain = ev.data.scalar.style == YAML_PLAIN_SCALAR_STYLE && !ev.data.scalar.tag;
            if (memchr(n->str, '\0', n->len)) LF_ERR_AT(ld, n, "a value holds a NUL character");
            anchor = lf_arena_str(ld, ev.data.scalar.anchor);
            if (anchor) lf_anchor_add(ld, anchor, n);
            break;
        case YAML_SEQUENCE_START_EVENT:
        case YAML_MAPPING_START_EVENT:
            n = lf_node_new(ld, ev.type == YAML_MAPPING_START_EVENT ? LF_N_MAP : LF_N_SEQ,
                            &ev.start_mark);
            /* Registered at the end: an alias inside its own anchor would loop. */
            n->anchor = lf_arena_str(ld, ev.type == YAML_MAPPING_START_EVENT
                                             ? ev.data.mapping_start.anchor
                                             : ev.data.sequence_start.anchor);
            break;
        case YAML_SEQUENCE_END_EVENT:
        case YAML_MAPPING_END_EVENT: {
            lf_node_t *c = stack[--depth];
            if (c->type == LF_N_MAP) lf_map_check_dups(ld, c);
            if (c->anchor) lf_anchor_add(ld, c->anchor, c);
            break;
        }
        case YAML_ALIAS_EVENT: {
            const char *name = (const char *)ev.data.alias.anchor;
            n = lf_node_new(ld, LF_N_ALIAS, &ev.start_mark);
            for (size_t i = ld->nanchors; i-- > 0;) {
                if (strcmp(ld->anchors[i].name, name) == 0) {
                    n->target = ld->anchors[i].node;
                    break;
                }
            }
            if (!n->target) {
                LF_ERR_AT(ld, n, "alias *%s names no anchor defined before it", name);
                /* Keep the tree well-formed: a null scalar stands in. */
                n->type = LF_N_SCALAR;
                n->str = "";
                n->plain = 1;
            }
            break;
        }
        default:
            break;
        }
        if (n) {
            if (depth > 0) {
                lf_node_t *parent = stack[depth - 1];
                if (parent->last)
                    parent->last->next = n;
                else
                    parent->first = n;
                parent->last = n;
                parent->n++;
            } else if (!root) {
                root = n;
            }
            if (n->type == LF_N_MAP || n->type == LF_N_SEQ) {
                if (depth == LF_CFG_MAX_DEPTH) {
                    LF_ERR_AT(ld, n, "nesting deeper than %d levels", LF_CFG_MAX_DEPTH);
                    ld->fatal = 1;
                    done = 1;
                } else {
                    stack[depth++] = n;
                }
            }
        }
        yaml_event_delete(&ev);
    }
    yaml_parser_delete(&p);
    return ld->fatal ? NULL : root;
}

/* Iterate a map's pairs, skipping repeated keys. */
#define LF_MAP_EACH(map, k, v)                                                                     \
    for (const lf_node_t *k = (map)->first, *v = k ? k->next : NULL; k && v;                       \
         k = v->next, v = k ? k->next : NULL)                                                      \
        if (!k->dup)

/* The text of a map key, or NULL (reported) when the key is not a scalar. */
static const lf_node_t *lf_key(lf_loader_t *ld, const lf_node_t *k)
{
    const lf_node_t *d = lf_deref(k);
    if (d->type != LF_N_SCALAR) {
        LF_ERR_AT(ld, k, "a key must be a plain string, not %s",
                  d->type == LF_N_MAP ? "a mapping" : "a list");
        return NULL;
    }
    return d;
}

/* A scalar's text, or NULL after reporting "ctx: expected <expect>, got ...". */
static const char *lf_scalar(lf_loader_t *ld, const lf_node_t *n, const char *ctx,
                             const char *expect)
{
    const lf_node_t *d = lf_deref(n);
    char buf[80];
    if (d->type != LF_N_SCALAR || lf_is_null(d)) {
        LF_ERR_AT(ld, n, "%s: expected %s, got %s", ctx, expect, lf_what(d, buf, sizeof(buf)));
        return NULL;
    }
    return d->str;
}

static int lf_number(lf_loader_t *ld, const lf_node_t *n, const char *ctx, double *out)
{
    const char *s = lf_scalar(ld, n, ctx, "a number");
    if (!s) return LF_ERR;
    if (lf_parse_double(s, out) != LF_OK) {
        LF_ERR_AT(ld, n, "%s: expected a number, got \"%s\"", ctx, s);
        return LF_ERR;
    }
    return LF_OK;
}

static int lf_bool(lf_loader_t *ld, const lf_node_t *n, const char *ctx, int *out)
{
    const char *s = lf_scalar(ld, n, ctx, "true or false");
    if (!s) return LF_ERR;
    if (lf_parse_bool(s, out) != LF_OK) {
        LF_ERR_AT(ld, n, "%s: expected true or false, got \"%s\"", ctx, s);
        return LF_ERR;
    }
    return LF_OK;
}

/* A positive duration in ms. */
static int lf_duration(lf_loader_t *ld, const lf_node_t *n, const char *ctx, int64_t *out)
{
    const char *s = lf_scalar(ld, n, ctx, "a duration");
    if (!s) return LF_ERR;
    if (lf_duration_parse(s, out) != LF_OK) {
        LF_ERR_AT(ld, n, "%s: \"%s\" is not a duration (e.g. 14d, 36h, 90m, 30s, 500ms)", ctx, s);
        return LF_ERR;
    }
    if (*out <= 0) {
        LF_ERR_AT(ld, n, "%s: must be positive, got %s", ctx, s);
        return LF_ERR;
    }
    return LF_OK;
}

static void lf_strv_add(char ***v, size_t *n, const char *s)
{
    *v = lf_realloc(*v, (*n + 1) * sizeof(**v));
    (*v)[(*n)++] = lf_strdup(s);
}

/* A string or a list of strings, appended to *v. Empty strings are errors. */
static void lf_string_list(lf_loader_t *ld, const lf_node_t *n, const char *ctx, char ***v,
                           size_t *nv)
{
    const lf_node_t *d = lf_deref(n);
    char buf[80];
    if (d->type == LF_N_SEQ) {
        if (d->n == 0) LF_ERR_AT(ld, n, "%s: the list is empty", ctx);
        for (const lf_node_t *it = d->first; it; it = it->next) {
            const char *s = lf_scalar(ld, it, ctx, "a string");
            if (s && !*s) LF_ERR_AT(ld, it, "%s: an empty string", ctx);
            if (s && *s) lf_strv_add(v, nv, s);
        }
        return;
    }
    if (d->type != LF_N_SCALAR || lf_is_null(d)) {
        LF_ERR_AT(ld, n, "%s: expected a string or a list of strings, got %s", ctx,
                  lf_what(d, buf, sizeof(buf)));
        return;
    }
    if (!*d->str)
        LF_ERR_AT(ld, n, "%s: an empty string", ctx);
    else
        lf_strv_add(v, nv, d->str);
}

/* A mapping (NULL returned, nothing reported, for null: an empty section), or NULL after
 * reporting what it was instead. */
static const lf_node_t *lf_map(lf_loader_t *ld, const lf_node_t *n, const char *ctx)
{
    const lf_node_t *d = lf_deref(n);
    char buf[80];
    if (lf_is_null(d)) return NULL;
    if (d->type != LF_N_MAP) {
        LF_ERR_AT(ld, n, "%s: expected a mapping, got %s", ctx, lf_what(d, buf, sizeof(buf)));
        return NULL;
    }
    return d;
}

/*---- Settings: walk the tree against the table -------------------------------------------*/

static void lf_settings_props(lf_loader_t *ld, const lf_node_t *n, const lf_setting_t *s)
{
    lf_config_t *cfg = ld->cfg;
    const lf_node_t *map = lf_map(ld, n, s->path);
    lf_props_free(cfg);
    if (!map) return;
    cfg->kafka_props = lf_calloc(map->n / 2 + 1, sizeof(*cfg->kafka_props));
    LF_MAP_EACH(map, k, v)
    {
        const lf_node_t *key = lf_key(ld, k);
        if (!key) continue;
        char ctx[160];
        lf_fmt(ctx, sizeof(ctx), "%s.%s", s->path, key->str);
        const char *val = lf_scalar(ld, v, ctx, "a value (librdkafka takes strings)");
        if (!val) continue;
        if (!*key->str) {
            LF_ERR_AT(ld, k, "%s: an empty property name", s->path);
            continue;
        }
        lf_prop_t *p = &cfg->kafka_props[cfg->nkafka_props++];
        p->key = lf_strdup(key->str);
        p->value = lf_strdup(val);
    }
}

static void lf_settings_set(lf_loader_t *ld, const lf_setting_t *s, const lf_node_t *v)
{
    ld->where[s - lf_settings] = v;
    if (s->type == LF_SET_PROPS) {
        lf_settings_props(ld, v, s);
        return;
    }
    const lf_node_t *d = lf_deref(v);
    char why[200], buf[80];
    if (d->type != LF_N_SCALAR) {
        static const char *const expect[] = {"a string",   "an integer",       "true or false",
                                             "a duration", "an ISO-8601 time", "a name"};
        LF_ERR_AT(ld, v, "%s: expected %s, got %s", s->path, expect[s->type],
                  lf_what(d, buf, sizeof(buf)));
        return;
    }
    if (lf_setting_apply(ld->cfg, s, d->str, lf_is_null(d), why, sizeof(why)) != LF_OK) {
        const char *hint = NULL;
        if (s->type == LF_SET_ENUM) {
            size_t nc = 0;
            while (s->choices[nc])
                nc++;
            hint = lf_suggest(d->str, s->choices, nc);
        }
        if (hint)
            LF_ERR_AT(ld, v, "%s: %s (did you mean \"%s\"?)", s->path, why, hint);
        else
            LF_ERR_AT(ld, v, "%s: %s", s->path, why);
    }
}

static void lf_model_parse(lf_loader_t *ld, const lf_node_t *n);

/* Walk one map of settings whose key path is `prefix` ("" at the top): a key is a setting of
 * the table, a section some settings are under, or (at the top) the model. */
static void lf_settings_walk(lf_loader_t *ld, const lf_node_t *map, const char *prefix)
{
    LF_MAP_EACH(map, k, v)
    {
        const lf_node_t *key = lf_key(ld, k);
        if (!key) continue;
        char path[128];
        int plen = lf_fmt(path, sizeof(path), "%s%s%s", prefix, *prefix ? "." : "", key->str);
        if (!*prefix && strcmp(key->str, "model") == 0) {
            ld->model = lf_deref(v);
            ld->at_model = k;
            lf_model_parse(ld, v);
            continue;
        }
        const lf_setting_t *s =
            plen < (int)sizeof(path) && !strchr(key->str, '.') ? lf_setting_find(path) : NULL;
        if (s) {
            lf_settings_set(ld, s, v);
            continue;
        }
        int section = 0;
        for (size_t i = 0; i < LF_NSETTINGS && !section && plen < (int)sizeof(path) - 1; i++)
            section = strncmp(lf_settings[i].path, path, (size_t)plen) == 0 &&
                      lf_settings[i].path[plen] == '.';
        if (section && !strchr(key->str, '.')) {
            const lf_node_t *sub = lf_map(ld, v, path);
            if (sub) lf_settings_walk(ld, sub, path);
            continue;
        }
        /* Unknown: suggest among the names at this level. */
        const char *cands[LF_NSETTINGS + 1];
        char names[LF_NSETTINGS + 1][48];
        size_t nc = 0, pl = strlen(prefix);
        for (size_t i = 0; i < LF_NSETTINGS; i++) {
            const char *p = lf_settings[i].path;
            if (pl && (strncmp(p, prefix, pl) != 0 || p[pl] != '.')) continue;
            const char *rest = pl ? p + pl + 1 : p;
            size_t rl = strcspn(rest, ".");
            if (rl >= sizeof(names[0])) continue;
            int seen = 0;
            for (size_t j = 0; j < nc && !seen; j++)
                seen = strlen(cands[j]) == rl && strncmp(cands[j], rest, rl) == 0;
            if (seen) continue;
            memcpy(names[nc], rest, rl);
            names[nc][rl] = '\0';
            cands[nc] = names[nc];
            nc++;
        }
        if (!pl) cands[nc++] = "model";
        lf_unknown_key(ld, key, pl ? prefix : "the file", cands, nc);
    }
}

/* Checks that involve more than one setting. */
static void lf_settings_check(lf_loader_t *ld)
{
    const lf_config_t *cfg = ld->cfg;
    if (cfg->limits.min_ts_ms >= cfg->limits.max_ts_ms) {
        const lf_setting_t *mx = lf_setting_find("limits.max_timestamp");
        const lf_setting_t *mn = lf_setting_find("limits.min_timestamp");
        const lf_node_t *at =
            ld->where[mx - lf_settings] ? ld->where[mx - lf_settings] : ld->where[mn - lf_settings];
        if (at) LF_ERR_AT(ld, at, "limits: max_timestamp must be after min_timestamp");
    }
    /* A URL or credentials in redis.host would be echoed by every connection error. */
    const lf_setting_t *rh = lf_setting_find("redis.host");
    const lf_node_t *rhat = ld->where[rh - lf_settings];
    if (rhat && cfg->redis_host && strpbrk(cfg->redis_host, "@/ \t"))
        LF_ERR_AT(ld, rhat,
                  "redis.host: a host name or address, not a URL or credentials; put the "
                  "password in redis.password (and the ACL user in redis.user)");
    const lf_setting_t *kb = lf_setting_find("kafka.bootstrap_servers");
    const lf_node_t *kbat = ld->where[kb - lf_settings];
    if (kbat && cfg->kafka_brokers && strchr(cfg->kafka_brokers, '@'))
        LF_ERR_AT(ld, kbat,
                  "kafka.bootstrap_servers: host:port[,host:port...], not credentials; put them "
                  "in kafka.properties (sasl.username, sasl.password)");
    const lf_setting_t *ver = lf_setting_find("version");
    const lf_node_t *vat = ld->where[ver - lf_settings];
    if (vat && cfg->model.version) {
        if (strlen(cfg->model.version) > LF_CFG_MAX_VERSION)
            LF_ERR_AT(ld, vat, "version: longer than %d characters", LF_CFG_MAX_VERSION);
        for (const char *c = cfg->model.version; *c; c++) {
            if ((unsigned char)*c < 0x20 || *c == 0x7f) {
                LF_ERR_AT(ld, vat, "version: holds a control character");
                break;
            }
        }
    }
}

/*---- Model: conditions ---------------------------------------------------------------------*/

static const char *const lf_cond_keys[] = {"equals", "in",  "prefix", "present",
                                           "min",    "max", "not"};

/* One condition's value: "x" (equals), [a, b] (one of), or a map of equals/in, prefix,
 * present, min/max, and not (a flag beside other keys, or alone a condition to negate). */
static void lf_cond_value(lf_loader_t *ld, const lf_node_t *n, const char *ctx, lf_cond_t *c)
{
    const lf_node_t *d = lf_deref(n);
    if (lf_is_null(d)) {
        LF_ERR_AT(ld, n,
                  "%s: needs a value, a list of values, or a condition such as "
                  "{present: true}",
                  ctx);
        return;
    }
    if (d->type != LF_N_MAP) {
        c->op = LF_MATCH_EQUALS;
        lf_string_list(ld, n, ctx, &c->values, &c->nvalues);
        return;
    }
    if (d->n == 0) {
        LF_ERR_AT(ld, n, "%s: an empty condition", ctx);
        return;
    }
    if (d->n == 2 && lf_deref(d->first)->type == LF_N_SCALAR &&
        strcmp(lf_deref(d->first)->str, "not") == 0) {
        lf_cond_value(ld, d->first->next, ctx, c);
        c->negate = !c->negate;
        return;
    }
    int has_eq = 0, has_prefix = 0, has_present = 0, has_range = 0, unknown = 0;
    LF_MAP_EACH(d, k, v)
    {
        const lf_node_t *key = lf_key(ld, k);
        if (!key) continue;
        char sub[192];
        lf_fmt(sub, sizeof(sub), "%s.%s", ctx, key->str);
        if (strcmp(key->str, "equals") == 0 || strcmp(key->str, "in") == 0) {
            has_eq = 1;
            c->op = LF_MATCH_EQUALS;
            lf_string_list(ld, v, sub, &c->values, &c->nvalues);
        } else if (strcmp(key->str, "prefix") == 0) {
            has_prefix = 1;
            c->op = LF_MATCH_PREFIX;
            lf_string_list(ld, v, sub, &c->values, &c->nvalues);
        } else if (strcmp(key->str, "present") == 0) {
            int b = 1;
            has_present = 1;
            c->op = LF_MATCH_PRESENT;
            if (lf_bool(ld, v, sub, &b) == LF_OK && !b) c->negate = !c->negate;
        } else if (strcmp(key->str, "min") == 0 || strcmp(key->str, "max") == 0) {
            double x;
            has_range = 1;
            c->op = LF_MATCH_RANGE;
            if (lf_number(ld, v, sub, &x) != LF_OK) continue;
            if (key->str[1] == 'i') {
                c->min = x;
                c->has_min = 1;
            } else {
                c->max = x;
                c->has_max = 1;
            }
        } else if (strcmp(key->str, "not") == 0) {
            int b;
            if (lf_bool(ld, v, sub, &b) == LF_OK && b) c->negate = !c->negate;
        } else {
            unknown++;
            lf_unknown_key(ld, key, "a condition", lf_cond_keys,
                           sizeof(lf_cond_keys) / sizeof(lf_cond_keys[0]));
        }
    }
    int nops = has_eq + has_prefix + has_present + has_range;
    if (nops > 1)
        LF_ERR_AT(ld, n, "%s: a condition takes one of equals/in, prefix, present, min/max", ctx);
    else if (nops == 0 && !unknown)
        LF_ERR_AT(ld, n, "%s: a condition needs equals/in, prefix, present, min or max", ctx);
    if (has_range && c->has_min && c->has_max && c->min >= c->max)
        LF_ERR_AT(ld, n, "%s: min (%g) must be below max (%g); max is exclusive", ctx, c->min,
                  c->max);
}

/* A map of field -> condition into an array of lf_cond_t. `fields` (may be NULL = any name)
 * restricts the field names. */
static void lf_track(lf_loader_t *ld, const char *trait, const lf_node_t *at);

static void lf_conds_parse(lf_loader_t *ld, const lf_node_t *n, const char *ctx,
                           const char *const *fields, size_t nfields, int traits, lf_cond_t **out,
                           size_t *nout)
{
    const lf_node_t *map = lf_map(ld, n, ctx);
    if (!map) return;
    *out = lf_calloc(map->n / 2 + 1, sizeof(**out));
    LF_MAP_EACH(map, k, v)
    {
        const lf_node_t *key = lf_key(ld, k);
        if (!key) continue;
        const char *field = key->str;
        if (!*field) {
            LF_ERR_AT(ld, k, "%s: an empty field name", ctx);
            continue;
        }
        if (fields) {
            size_t i;
            for (i = 0; i < nfields; i++)
                if (strcasecmp(field, fields[i]) == 0) break;
            if (i == nfields) {
                lf_unknown_key(ld, key, ctx, fields, nfields);
                continue;
            }
            field = fields[i];
        }
        char sub[192];
        lf_fmt(sub, sizeof(sub), "%s.%s", ctx, field);
        lf_cond_t *c = &(*out)[(*nout)++];
        c->field = lf_strdup(field);
        if (traits) lf_track(ld, field, k);
        lf_cond_value(ld, v, sub, c);
    }
}

/*---- Model: rules --------------------------------------------------------------------------*/

static const char *const lf_eng_keys[] = {"name", "description", "kind",   "path_prefix",
                                          "utm",  "properties",  "points", "cap"};
static const char *const lf_fit_keys[] = {"name", "description", "traits", "points"};
static const char *const lf_cap_keys[] = {"points", "per"};
/* UTM fields a rule may test; "name" is Segment's context.campaign.name (= campaign) and
 * click_id any of gclid/msclkid/dclid/fbclid (src/score.c reads them the same way). */
static const char *const lf_utm_fields[] = {"source",  "medium", "campaign", "term",
                                            "content", "name",   "click_id"};

#define LF_NKEYS(a) (sizeof(a) / sizeof((a)[0]))

/* The rule's name, checked (present, not empty) and remembered for the duplicate check.
 * Returns the node of the name or NULL. */
static const lf_node_t *lf_rule_name(lf_loader_t *ld, const lf_node_t *rule, const char *list,
                                     char **out)
{
    const lf_node_t *at = NULL;
    LF_MAP_EACH(rule, k, v)
    {
        if (lf_deref(k)->type == LF_N_SCALAR && strcmp(lf_deref(k)->str, "name") == 0) at = v;
    }
    if (!at) {
        LF_ERR_AT(ld, rule, "%s rule without a name", list);
        return NULL;
    }
    char ctx[64];
    lf_fmt(ctx, sizeof(ctx), "%s rule name", list);
    const lf_node_t *d = lf_deref(at);
    if (d->type == LF_N_SCALAR && (lf_is_null(d) || !*d->str)) {
        LF_ERR_AT(ld, at, "%s rule with an empty name", list);
        return NULL;
    }
    const char *s = lf_scalar(ld, at, ctx, "a string");
    if (!s) return NULL;
    *out = lf_strdup(s);
    ld->names = lf_realloc(ld->names, (ld->nnames + 1) * sizeof(*ld->names));
    ld->names[ld->nnames].name = *out;
    ld->names[ld->nnames].node = at;
    ld->nnames++;
    return at;
}

static void lf_cap_parse(lf_loader_t *ld, const lf_node_t *n, const char *ctx,
                         lf_engagement_rule_t *r)
{
    const lf_node_t *map = lf_map(ld, n, ctx);
    const lf_node_t *at_points = NULL, *at_per = NULL;
    char sub[160];
    if (!map) {
        if (lf_is_null(n)) LF_ERR_AT(ld, n, "%s: needs points and per", ctx);
        return;
    }
    LF_MAP_EACH(map, k, v)
    {
        const lf_node_t *key = lf_key(ld, k);
        if (!key) continue;
        lf_fmt(sub, sizeof(sub), "%s.%s", ctx, key->str);
        if (strcmp(key->str, "points") == 0) {
            at_points = v;
            if (lf_number(ld, v, sub, &r->cap_points) == LF_OK && r->cap_points <= 0)
                LF_ERR_AT(ld, v, "%s: must be positive", sub);
        } else if (strcmp(key->str, "per") == 0) {
            at_per = v;
            lf_duration(ld, v, sub, &r->cap_per_ms);
        } else {
            lf_unknown_key(ld, key, ctx, lf_cap_keys, LF_NKEYS(lf_cap_keys));
        }
    }
    if (!at_points || !at_per)
        LF_ERR_AT(ld, n,
                  "%s: needs both points and per (e.g. {points: 30, per: 1d}); %s is "
                  "missing",
                  ctx, !at_points ? "points" : "per");
    if (!at_points || !at_per || r->cap_per_ms <= 0 || r->cap_points <= 0) {
        r->cap_points = 0; /* an incomplete cap is no cap */
        r->cap_per_ms = 0;
    }
}

/* The start of every rule: its node, line and name, and the words messages use for it
 * ("fit rule \"x\"", or "fit rule at line 12" while it has no name). */
static const lf_node_t *lf_rule_begin(lf_loader_t *ld, const lf_node_t *n, const char *what,
                                      char **name, int *line, char *ctx, size_t cap)
{
    const lf_node_t *rule = lf_deref(n);
    *line = rule->line;
    lf_rule_name(ld, rule, what, name);
    if (*name)
        lf_fmt(ctx, cap, "%s rule \"%s\"", what, *name);
    else
        lf_fmt(ctx, cap, "%s rule at line %d", what, rule->line);
    return rule;
}

/* A kind as written that no built-in name gives, but spelled like one: "form-submit",
 * "Form_Submitted", "pageview", "from_submit". The built-in kind it resembles, or NULL. */
static const char *lf_kind_lookalike(const char *kind)
{
    char v[64], bare[64], b2[64];
    size_t n = strlen(kind), o = 0;
    if (n >= sizeof(v)) return NULL;
    /* Other separators: as the canonical names write them, then as Segment's names do. */
    static const char seps[] = {'_', ' '};
    for (size_t s = 0; s < sizeof(seps); s++) {
        for (size_t i = 0; i <= n; i++)
            v[i] = kind[i] == '-' || kind[i] == '.' || kind[i] == ' ' || kind[i] == '_' ? seps[s]
                                                                                        : kind[i];
        lf_kind_t k = lf_kind_from_name(lf_str_from(v));
        if (k != LF_KIND_OTHER) return lf_kind_name(k);
    }
    /* No separators at all ("pageview"), or a typo. */
    for (size_t i = 0; i < n; i++)
        if (isalnum((unsigned char)kind[i])) bare[o++] = (char)tolower((unsigned char)kind[i]);
    bare[o] = '\0';
    const char *best = NULL;
    size_t bestd = SIZE_MAX;
    for (int k = 1; k < LF_KIND__COUNT; k++) {
        const char *name = lf_kind_name((lf_kind_t)k);
        size_t m = 0;
        for (size_t i = 0; name[i] && m + 1 < sizeof(b2); i++)
            if (name[i] != '_') b2[m++] = name[i];
        b2[m] = '\0';
        if (o && strcmp(bare, b2) == 0) return name;
        /* A typo is a letter or two; custom kinds are often near a built-in in more. */
        size_t d = lf_edit_distance(kind, name), limit = strlen(name) <= 6 ? 1 : 2;
        if (d <= limit && d < bestd) {
            best = name;
            bestd = d;
        }
    }
    return best;
}

/* What a rule's kinds say that is valid but probably a mistake (warnings, not errors). */
static void lf_eng_warn(lf_loader_t *ld, const lf_node_t *at_kind, const char *ctx,
                        const lf_engagement_rule_t *r)
{
    const lf_node_t *d = lf_deref(at_kind);
    const lf_node_t *one = d->type == LF_N_SCALAR ? at_kind : NULL;
    if (!one && d->type != LF_N_SEQ) return;
    for (const lf_node_t *it = one ? one : d->first; it; it = one ? NULL : it->next) {
        const lf_node_t *kn = lf_deref(it);
        if (kn->type != LF_N_SCALAR || lf_is_null(kn) || !*kn->str) continue;
        const char *kind = kn->str;
        lf_kind_t k = lf_kind_from_name(lf_str_from(kind));
        if (k >= LF_KIND_SALES_ACCEPT && k <= LF_KIND_DISQUALIFY) {
            if (r->points > 0) {
                char p[32];
                lf_fmt_double(p, sizeof(p), r->points);
                LF_WARN_AT(ld, it,
                           "%s: +%s points on %s, a sales feedback kind: it moves the stage by "
                           "itself, and points make a CRM decision count as the lead's own "
                           "engagement (score, grade, MQL); drop the points, or make them "
                           "negative to cool a turned-down lead",
                           ctx, p, lf_kind_name(k));
            }
            continue;
        }
        if (k != LF_KIND_OTHER) continue;
        if (strcasecmp(kind, "page") == 0) {
            LF_WARN_AT(ld, it,
                       "%s: kind \"%s\" is Segment's call type; page calls arrive as kind "
                       "page_view, so this matches only a track event named \"%s\": write "
                       "page_view",
                       ctx, kind, kind);
        } else if (strcasecmp(kind, "track") == 0) {
            LF_WARN_AT(ld, it,
                       "%s: kind \"%s\" is Segment's call type; a track call's kind is its "
                       "event name (\"Form Submitted\" arrives as form_submit): name that kind",
                       ctx, kind);
        } else if (strcasecmp(kind, "other") == 0) {
            LF_WARN_AT(ld, it,
                       "%s: kind \"other\" is not a catch-all: it matches only events named "
                       "\"other\"; leave kind out to match every kind",
                       ctx);
        } else {
            const char *like = lf_kind_lookalike(kind);
            if (like)
                LF_WARN_AT(ld, it,
                           "%s: kind \"%s\" is not the built-in %s: events sent as %s or "
                           "under its Segment name arrive as %s, and only a custom event named "
                           "exactly \"%s\" would match; write %s (ignore this if \"%s\" is an "
                           "event of your own)",
                           ctx, kind, like, like, like, kind, like, kind);
        }
    }
}

static void lf_eng_parse(lf_loader_t *ld, const lf_node_t *n, lf_engagement_rule_t *r)
{
    const lf_node_t *at_points = NULL, *at_cap = NULL, *at_kind = NULL;
    char ctx[160], sub[200];
    const lf_node_t *rule =
        lf_rule_begin(ld, n, "engagement", &r->name, &r->line, ctx, sizeof(ctx));
    LF_MAP_EACH(rule, k, v)
    {
        const lf_node_t *key = lf_key(ld, k);
        if (!key) continue;
        const char *kn = key->str;
        lf_fmt(sub, sizeof(sub), "%s: %s", ctx, kn);
        if (strcmp(kn, "name") == 0) {
            /* done above */
        } else if (strcmp(kn, "description") == 0) {
            lf_scalar(ld, v, sub, "a string");
        } else if (strcmp(kn, "kind") == 0) {
            at_kind = v;
            lf_string_list(ld, v, sub, &r->kinds, &r->nkinds);
            /* Segment names ("Email Opened") become canonical kinds; others stay as is. */
            for (size_t i = 0; i < r->nkinds; i++) {
                lf_kind_t kind = lf_kind_from_name(lf_str_from(r->kinds[i]));
                if (kind == LF_KIND_OTHER) continue;
                lf_free(r->kinds[i]);
                r->kinds[i] = lf_strdup(lf_kind_name(kind));
            }
        } else if (strcmp(kn, "path_prefix") == 0) {
            size_t before = r->npath_prefixes;
            lf_string_list(ld, v, sub, &r->path_prefixes, &r->npath_prefixes);
            for (size_t i = before; i < r->npath_prefixes; i++)
                if (r->path_prefixes[i][0] != '/')
                    LF_ERR_AT(ld, v, "%s: \"%s\" must start with \"/\" (a URL path)", sub,
                              r->path_prefixes[i]);
        } else if (strcmp(kn, "utm") == 0) {
            lf_conds_parse(ld, v, sub, lf_utm_fields, LF_NKEYS(lf_utm_fields), 0, &r->utm,
                           &r->nutm);
        } else if (strcmp(kn, "properties") == 0) {
            lf_conds_parse(ld, v, sub, NULL, 0, 0, &r->props, &r->nprops);
        } else if (strcmp(kn, "points") == 0) {
            at_points = v;
            lf_number(ld, v, sub, &r->points);
        } else if (strcmp(kn, "cap") == 0) {
            at_cap = v;
            lf_cap_parse(ld, v, sub, r);
        } else {
            lf_unknown_key(ld, key, ctx, lf_eng_keys, LF_NKEYS(lf_eng_keys));
        }
    }
    if (!at_points) LF_ERR_AT(ld, rule, "%s: points is missing", ctx);
    if (at_points && at_cap && r->cap_per_ms > 0 && r->points < 0)
        LF_ERR_AT(ld, at_cap, "%s: a cap limits points granted; this rule's points are negative",
                  ctx);
    if (at_kind) lf_eng_warn(ld, at_kind, ctx, r);
}

static void lf_fit_parse(lf_loader_t *ld, const lf_node_t *n, lf_fit_rule_t *r)
{
    const lf_node_t *at_points = NULL, *at_traits = NULL;
    char ctx[160], sub[200];
    const lf_node_t *rule = lf_rule_begin(ld, n, "fit", &r->name, &r->line, ctx, sizeof(ctx));
    LF_MAP_EACH(rule, k, v)
    {
        const lf_node_t *key = lf_key(ld, k);
        if (!key) continue;
        const char *kn = key->str;
        lf_fmt(sub, sizeof(sub), "%s: %s", ctx, kn);
        if (strcmp(kn, "name") == 0) {
        } else if (strcmp(kn, "description") == 0) {
            lf_scalar(ld, v, sub, "a string");
        } else if (strcmp(kn, "traits") == 0) {
            at_traits = v;
            lf_conds_parse(ld, v, sub, NULL, 0, 1, &r->conds, &r->nconds);
        } else if (strcmp(kn, "points") == 0) {
            at_points = v;
            lf_number(ld, v, sub, &r->points);
        } else {
            lf_unknown_key(ld, key, ctx, lf_fit_keys, LF_NKEYS(lf_fit_keys));
        }
    }
    if (!at_points) LF_ERR_AT(ld, rule, "%s: points is missing", ctx);
    if (!at_traits)
        LF_ERR_AT(ld, rule, "%s: traits is missing (a fit rule matches on traits)", ctx);
    else if (r->nconds == 0 && lf_is_null(at_traits))
        LF_ERR_AT(ld, at_traits, "%s: traits is empty", ctx);
}

/* A list of rule maps; each item through parse_one into a slot of *out (item_size bytes). */
static void *lf_rules_parse(lf_loader_t *ld, const lf_node_t *n, const char *ctx, size_t item_size,
                            size_t *count,
                            void (*parse_one)(lf_loader_t *, const lf_node_t *, void *))
{
    const lf_node_t *d = lf_deref(n);
    char buf[80];
    if (lf_is_null(d)) return NULL;
    if (d->type != LF_N_SEQ) {
        LF_ERR_AT(ld, n, "%s: expected a list of rules, got %s", ctx, lf_what(d, buf, sizeof(buf)));
        return NULL;
    }
    if (d->n > UINT16_MAX) {
        LF_ERR_AT(ld, n, "%s: more than %d rules", ctx, UINT16_MAX);
        return NULL;
    }
    char *items = lf_calloc(d->n + 1, item_size);
    for (const lf_node_t *it = d->first; it; it = it->next) {
        if (lf_deref(it)->type != LF_N_MAP) {
            LF_ERR_AT(ld, it, "%s: expected a rule (a mapping with name, points, ...), got %s", ctx,
                      lf_what(it, buf, sizeof(buf)));
            continue;
        }
        parse_one(ld, it, items + *count * item_size);
        (*count)++;
    }
    return items;
}

static void lf_eng_parse_v(lf_loader_t *ld, const lf_node_t *n, void *r)
{
    lf_eng_parse(ld, n, r);
}

static void lf_fit_parse_v(lf_loader_t *ld, const lf_node_t *n, void *r)
{
    lf_fit_parse(ld, n, r);
}

/*---- Model: sections -----------------------------------------------------------------------*/

static const char *const lf_model_keys[] = {"decay", "grades",     "stages",
                                            "bots",  "engagement", "fit"};
static const char *const lf_decay_keys[] = {"half_life"};
static const char *const lf_grade_keys[] = {"L1", "L2"};
static const char *const lf_mql_keys[] = {"enter", "exit", "require_traits"};
static const char *const lf_bots_keys[] = {"user_agents"};

static void lf_stages_parse(lf_loader_t *ld, const lf_node_t *n)
{
    lf_model_t *m = &ld->cfg->model;
    const lf_node_t *map = lf_map(ld, n, "model.stages");
    if (!map) return;
    LF_MAP_EACH(map, k, v)
    {
        const lf_node_t *key = lf_key(ld, k);
        if (!key) continue;
        lf_stage_t st;
        if (lf_stage_from_name(key->str, key->len, &st) != LF_OK) {
            const char *cands[LF_STAGE__COUNT];
            for (int i = 0; i < LF_STAGE__COUNT; i++)
                cands[i] = lf_stage_name((lf_stage_t)i);
            const char *s = lf_suggest(key->str, cands, LF_STAGE__COUNT);
            if (s)
                LF_ERR_AT(ld, k, "unknown stage \"%s\" in model.stages (did you mean \"%s\"?)",
                          key->str, s);
            else
                LF_ERR_AT(ld, k,
                          "unknown stage \"%s\" in model.stages (stages: visitor, lead, "
                          "mql, sal, sql, opportunity, customer, nurture, disqualified)",
                          key->str);
            continue;
        }
        if (st != LF_STAGE_MQL) {
            LF_ERR_AT(ld, k,
                      "stage \"%s\" has no score thresholds: only mql is entered and left "
                      "by score (sales feedback events move the others)",
                      key->str);
            continue;
        }
        const lf_node_t *mql = lf_map(ld, v, "model.stages.mql");
        if (!mql) continue;
        LF_MAP_EACH(mql, k2, v2)
        {
            const lf_node_t *key2 = lf_key(ld, k2);
            if (!key2) continue;
            char ctx[64];
            lf_fmt(ctx, sizeof(ctx), "model.stages.mql.%s", key2->str);
            if (strcmp(key2->str, "enter") == 0) {
                ld->at_enter = v2;
                lf_number(ld, v2, ctx, &m->mql_enter);
            } else if (strcmp(key2->str, "exit") == 0) {
                ld->at_exit = v2;
                lf_number(ld, v2, ctx, &m->mql_exit);
            } else if (strcmp(key2->str, "require_traits") == 0) {
                size_t before = m->nmql_required_traits;
                ld->at_require = v2;
                lf_string_list(ld, v2, ctx, &m->mql_required_traits, &m->nmql_required_traits);
                for (size_t i = before; i < m->nmql_required_traits; i++)
                    lf_track(ld, m->mql_required_traits[i], v2);
            } else {
                lf_unknown_key(ld, key2, "model.stages.mql", lf_mql_keys, LF_NKEYS(lf_mql_keys));
            }
        }
    }
}

static void lf_model_parse(lf_loader_t *ld, const lf_node_t *n)
{
    lf_model_t *m = &ld->cfg->model;
    const lf_node_t *map = lf_map(ld, n, "model");
    if (!map) return;
    LF_MAP_EACH(map, k, v)
    {
        const lf_node_t *key = lf_key(ld, k);
        if (!key) continue;
        const char *kn = key->str;
        if (strcmp(kn, "decay") == 0) {
            const lf_node_t *dm = lf_map(ld, v, "model.decay");
            if (!dm) continue;
            LF_MAP_EACH(dm, k2, v2)
            {
                const lf_node_t *key2 = lf_key(ld, k2);
                if (!key2) continue;
                if (strcmp(key2->str, "half_life") != 0) {
                    lf_unknown_key(ld, key2, "model.decay", lf_decay_keys, 1);
                    continue;
                }
                int64_t ms;
                ld->at_half_life = v2;
                if (lf_duration(ld, v2, "model.decay.half_life", &ms) == LF_OK)
                    m->half_life_ms = (double)ms;
            }
        } else if (strcmp(kn, "grades") == 0) {
            const lf_node_t *gm = lf_map(ld, v, "model.grades");
            if (!gm) continue;
            LF_MAP_EACH(gm, k2, v2)
            {
                const lf_node_t *key2 = lf_key(ld, k2);
                if (!key2) continue;
                if (strcmp(key2->str, "L1") == 0) {
                    ld->at_l1 = v2;
                    lf_number(ld, v2, "model.grades.L1", &m->grade_l1);
                } else if (strcmp(key2->str, "L2") == 0) {
                    ld->at_l2 = v2;
                    lf_number(ld, v2, "model.grades.L2", &m->grade_l2);
                } else {
                    lf_unknown_key(ld, key2, "model.grades", lf_grade_keys, 2);
                }
            }
        } else if (strcmp(kn, "stages") == 0) {
            lf_stages_parse(ld, v);
        } else if (strcmp(kn, "bots") == 0) {
            const lf_node_t *bm = lf_map(ld, v, "model.bots");
            if (!bm) continue;
            LF_MAP_EACH(bm, k2, v2)
            {
                const lf_node_t *key2 = lf_key(ld, k2);
                if (!key2) continue;
                if (strcmp(key2->str, "user_agents") == 0)
                    lf_string_list(ld, v2, "model.bots.user_agents", &m->bot_user_agents,
                                   &m->nbot_user_agents);
                else
                    lf_unknown_key(ld, key2, "model.bots", lf_bots_keys, 1);
            }
        } else if (strcmp(kn, "engagement") == 0) {
            m->eng = lf_rules_parse(ld, v, "model.engagement", sizeof(*m->eng), &m->neng,
                                    lf_eng_parse_v);
        } else if (strcmp(kn, "fit") == 0) {
            m->fit = lf_rules_parse(ld, v, "model.fit", sizeof(*m->fit), &m->nfit, lf_fit_parse_v);
        } else {
            lf_unknown_key(ld, key, "model", lf_model_keys, LF_NKEYS(lf_model_keys));
        }
    }
}

/*---- Model: whole-model checks and the version -------------------------------------------*/

static void lf_track(lf_loader_t *ld, const char *trait, const lf_node_t *at)
{
    lf_model_t *m = &ld->cfg->model;
    for (size_t i = 0; i < m->ntracked_traits; i++)
        if (strcmp(m->tracked_traits[i], trait) == 0) return;
    ld->trait_at = lf_realloc(ld->trait_at, (m->ntracked_traits + 1) * sizeof(*ld->trait_at));
    ld->trait_at[m->ntracked_traits] = at;
    lf_strv_add(&m->tracked_traits, &m->ntracked_traits, trait);
}

static int lf_named_cmp(const void *a, const void *b)
{
    const lf_named_t *x = a, *y = b;
    int c = strcmp(x->name, y->name);
    if (c) return c;
    if (x->node->line != y->node->line) return x->node->line < y->node->line ? -1 : 1;
    return x->node->col < y->node->col ? -1 : x->node->col > y->node->col;
}

/* Append the model as compact canonical text (JSON-like: comments, layout and quoting do
 * not show, aliases are expanded) so the version changes only when the model does. */
typedef struct {
    char *buf;
    size_t len, cap;
    int over;
} lf_sbuf_t;

static void lf_sbuf_put(lf_sbuf_t *b, const char *s, size_t n)
{
    if (b->over || b->len + n > LF_CFG_MAX_HASHED) {
        b->over = 1;
        return;
    }
    if (b->len + n + 1 > b->cap) {
        while (b->len + n + 1 > b->cap)
            b->cap = b->cap ? b->cap * 2 : 4096;
        b->buf = lf_realloc(b->buf, b->cap);
    }
    memcpy(b->buf + b->len, s, n);
    b->len += n;
}

static void lf_canon(lf_sbuf_t *b, const lf_node_t *n)
{
    n = lf_deref(n);
    if (b->over) return;
    if (!n || lf_is_null(n)) {
        lf_sbuf_put(b, "null", 4);
    } else if (n->type == LF_N_SCALAR) {
        lf_sbuf_put(b, "\"", 1);
        for (size_t i = 0; i < n->len; i++) {
            char esc[8];
            unsigned char c = (unsigned char)n->str[i];
            if (c == '"' || c == '\\') {
                esc[0] = '\\';
                esc[1] = (char)c;
                lf_sbuf_put(b, esc, 2);
            } else if (c < 0x20) {
                lf_fmt(esc, sizeof(esc), "\\u%04x", c);
                lf_sbuf_put(b, esc, 6);
            } else {
                lf_sbuf_put(b, (const char *)&n->str[i], 1);
            }
        }
        lf_sbuf_put(b, "\"", 1);
    } else {
        int map = n->type == LF_N_MAP;
        lf_sbuf_put(b, map ? "{" : "[", 1);
        size_t i = 0;
        for (const lf_node_t *c = n->first; c && !b->over; c = c->next, i++) {
            if (i) lf_sbuf_put(b, map && (i & 1) ? ":" : ",", 1);
            lf_canon(b, c);
        }
        lf_sbuf_put(b, map ? "}" : "]", 1);
    }
}

/* Traits events carry without a rule naming them: Segment's reserved identify traits and the
 * contract's profile fields. A required trait outside these and the fit rules is likely a typo. */
static const char *const lf_known_traits[] = {
    "address",   "age",         "avatar",    "birthday",  "company",   "company_tier",
    "createdAt", "description", "email",     "employees", "firstName", "first_name",
    "gender",    "id",          "industry",  "lastName",  "last_name", "name",
    "phone",     "region",      "seniority", "title",     "username",  "website",
    "country",   "city",        "state",     "role",      "plan",      "account",
};

static int lf_trait_known(const lf_model_t *m, const char *trait)
{
    /* Nested maps arrive as dotted keys: "address.city", "company.name". */
    size_t stem = strcspn(trait, ".");
    for (size_t i = 0; i < LF_NKEYS(lf_known_traits); i++)
        if (strcmp(trait, lf_known_traits[i]) == 0 ||
            (trait[stem] && strlen(lf_known_traits[i]) == stem &&
             strncmp(trait, lf_known_traits[i], stem) == 0))
            return 1;
    for (size_t i = 0; i < m->nfit; i++)
        for (size_t j = 0; j < m->fit[i].nconds; j++)
            if (strcmp(m->fit[i].conds[j].field, trait) == 0) return 1;
    return 0;
}

/* Valid but probably a mistake: a model that scores nothing, a required trait nothing names. */
static void lf_model_warn(lf_loader_t *ld)
{
    const lf_model_t *m = &ld->cfg->model;
    if (!m->neng && !m->nfit) {
        const lf_node_t *at = ld->at_model;
        lf_warn(ld, at ? at->line : 1, at ? at->col : 1,
                "the model has no engagement and no fit rules: every score stays 0 and no lead "
                "ever becomes an MQL; add rules under model.engagement and model.fit (see "
                "deploy/leadflow.yaml)");
    }
    const lf_node_t *req = lf_deref(ld->at_require);
    if (!req) return;
    const lf_node_t *one = req->type == LF_N_SCALAR ? ld->at_require : NULL;
    if (!one && req->type != LF_N_SEQ) return;
    for (const lf_node_t *it = one ? one : req->first; it; it = one ? NULL : it->next) {
        const lf_node_t *t = lf_deref(it);
        if (t->type != LF_N_SCALAR || lf_is_null(t) || !*t->str || lf_trait_known(m, t->str))
            continue;
        /* The nearest name it may have meant: a fit rule's trait, else a known one. */
        const char *cands[LF_NKEYS(lf_known_traits) + 64];
        size_t nc = 0;
        for (size_t i = 0; i < m->ntracked_traits && nc < 64; i++)
            if (strcmp(m->tracked_traits[i], t->str) != 0) cands[nc++] = m->tracked_traits[i];
        for (size_t i = 0; i < LF_NKEYS(lf_known_traits); i++)
            cands[nc++] = lf_known_traits[i];
        const char *like = lf_suggest(t->str, cands, nc);
        char hint[96] = "";
        if (like) lf_fmt(hint, sizeof(hint), " (did you mean \"%s\"?)", like);
        LF_WARN_AT(ld, it,
                   "model.stages.mql.require_traits: no fit rule names \"%s\" and it is not a "
                   "trait events usually carry%s; names match exactly, so if no identify sends "
                   "it no lead ever becomes an MQL: check the spelling against your events' "
                   "traits",
                   t->str, hint);
    }
}

static void lf_model_check(lf_loader_t *ld)
{
    lf_model_t *m = &ld->cfg->model;
    const lf_node_t *top = ld->model;
    char a[32], b[32];

    if (m->grade_l2 > m->grade_l1 && (ld->at_l1 || ld->at_l2)) {
        lf_fmt_double(a, sizeof(a), m->grade_l2);
        lf_fmt_double(b, sizeof(b), m->grade_l1);
        const lf_node_t *at = ld->at_l2 ? ld->at_l2 : ld->at_l1;
        LF_ERR_AT(ld, at, "model.grades: L2 (%s%s) must not be above L1 (%s%s)", a,
                  ld->at_l2 ? "" : ", the default", b, ld->at_l1 ? "" : ", the default");
    }
    if (m->mql_exit > m->mql_enter && (ld->at_enter || ld->at_exit)) {
        lf_fmt_double(a, sizeof(a), m->mql_exit);
        lf_fmt_double(b, sizeof(b), m->mql_enter);
        const lf_node_t *at = ld->at_exit ? ld->at_exit : ld->at_enter;
        LF_ERR_AT(ld, at, "model.stages.mql: exit (%s%s) must not be above enter (%s%s)", a,
                  ld->at_exit ? "" : ", the default", b, ld->at_enter ? "" : ", the default");
    }

    /* Rule names are unique across engagement and fit: messages and tools name rules. */
    if (ld->nnames) qsort(ld->names, ld->nnames, sizeof(*ld->names), lf_named_cmp);
    for (size_t i = 1; i < ld->nnames; i++) {
        size_t first = i - 1;
        while (first > 0 && strcmp(ld->names[first - 1].name, ld->names[i].name) == 0)
            first--;
        if (strcmp(ld->names[i].name, ld->names[first].name) == 0)
            LF_ERR_AT(ld, ld->names[i].node, "duplicate rule name \"%s\" (first at line %d)",
                      ld->names[i].name, ld->names[first].node->line);
    }

    /* The traits a lead keeps (lf_track collected them while parsing). */
    if (m->ntracked_traits > LF_LEAD_TRAITS_MAX) {
        const lf_node_t *at = ld->trait_at[LF_LEAD_TRAITS_MAX];
        LF_ERR_AT(ld, at,
                  "model: %zu different traits are named by fit rules and require_traits; a "
                  "lead keeps at most %d (\"%s\" is one too many)",
                  m->ntracked_traits, LF_LEAD_TRAITS_MAX, m->tracked_traits[LF_LEAD_TRAITS_MAX]);
    }
    lf_model_warn(ld);
    size_t ncapped = 0;
    for (size_t i = 0; i < m->neng; i++) {
        if (m->eng[i].cap_per_ms > 0 && ++ncapped == LF_LEAD_CAPS_MAX + 1)
            lf_diag(ld, m->eng[i].line, 1,
                    "engagement rule \"%s\": more than %d rules have a cap (a lead books at most "
                    "%d capped rules)",
                    m->eng[i].name ? m->eng[i].name : "?", LF_LEAD_CAPS_MAX, LF_LEAD_CAPS_MAX);
    }

    if (!m->version) {
        lf_sbuf_t sb = {0};
        lf_canon(&sb, ld->model);
        if (sb.over) {
            lf_diag(ld, top ? top->line : 1, top ? top->col : 1,
                    "model: larger than %u bytes once aliases are expanded; set version: "
                    "explicitly or simplify it",
                    LF_CFG_MAX_HASHED);
        } else {
            char v[16];
            uint64_t h = lf_hash64(sb.buf ? sb.buf : "", sb.len);
            lf_fmt(v, sizeof(v), "h%012" PRIx64, h >> 16);
            m->version = lf_strdup(v);
        }
        lf_free(sb.buf);
    }
}

/*---- Loading -------------------------------------------------------------------------------*/

int lf_config_load_string(const char *name, const char *yaml, size_t len, lf_config_t *cfg,
                          FILE *diag, lf_err_t *err)
{
    lf_loader_t ld;
    memset(&ld, 0, sizeof(ld));
    ld.name = name ? name : "<string>";
    ld.cfg = cfg;
    lf_arena_init(&ld.arena, 64 * 1024);
    lf_config_defaults(cfg);
    cfg->path = lf_strdup(ld.name);

    if (len > LF_CFG_MAX_FILE) {
        lf_diag(&ld, 0, 0, "larger than %u bytes: not a rules file", LF_CFG_MAX_FILE);
    } else {
        const lf_node_t *root = lf_yaml_build(&ld, yaml ? yaml : "", yaml ? len : 0);
        if (!ld.fatal) {
            const lf_node_t *top = lf_deref(root);
            char buf[80];
            if (top && !lf_is_null(top) && top->type != LF_N_MAP)
                LF_ERR_AT(&ld, top,
                          "the rules file must be a mapping (kafka:, redis:, model:, "
                          "...), not %s",
                          lf_what(top, buf, sizeof(buf)));
            else if (top && top->type == LF_N_MAP)
                lf_settings_walk(&ld, top, "");
            lf_settings_check(&ld);
            lf_model_check(&ld);
        }
    }

    int rc = ld.ndiags ? LF_ERR : LF_OK;
    lf_diag_flush(&ld, diag, err);
    if (ld.nwarns) qsort(ld.warns, ld.nwarns, sizeof(*ld.warns), lf_diag_cmp);
    for (size_t i = 0; i < ld.nwarns; i++) {
        if (rc == LF_OK) {
            char line[700], pos[32] = "";
            if (ld.warns[i].line > 0)
                lf_fmt(pos, sizeof(pos), ":%d:%d", ld.warns[i].line, ld.warns[i].col);
            lf_fmt(line, sizeof(line), "%s%s: warning: %s", ld.name, pos, ld.warns[i].msg);
            lf_strv_add(&cfg->warnings, &cfg->nwarnings, line);
        }
        lf_free(ld.warns[i].msg);
    }
    lf_free(ld.warns);
    lf_arena_free(&ld.arena);
    lf_free(ld.anchors);
    lf_free(ld.names);
    lf_free(ld.trait_at);
    if (rc != LF_OK) lf_config_free(cfg);
    return rc;
}

int lf_config_load(const char *path, lf_config_t *cfg, FILE *diag, lf_err_t *err)
{
    char *buf = NULL;
    size_t len = 0, cap = 0;
    FILE *f = fopen(path, "rb");
    int eno = 0;
    memset(cfg, 0, sizeof(*cfg));
    if (!f) {
        eno = errno;
    } else {
        for (;;) {
            if (len == cap) {
                if (cap > LF_CFG_MAX_FILE) break; /* load_string reports the size */
                cap = cap ? cap * 2 : 16384;
                buf = lf_realloc(buf, cap + 1);
            }
            size_t got = fread(buf + len, 1, cap - len, f);
            len += got;
            if (got == 0) {
                if (ferror(f)) eno = errno ? errno : EIO;
                break;
            }
        }
        fclose(f);
    }
    if (!f || eno) {
        lf_err_set(err, LF_ERR, "%s: cannot read the rules file: %s", path, strerror(eno));
        if (diag) fprintf(diag, "%s: cannot read the rules file: %s\n", path, strerror(eno));
        lf_free(buf);
        return LF_ERR;
    }
    int rc = lf_config_load_string(path, buf, len, cfg, diag, err);
    lf_free(buf);
    return rc;
}

/*---- Summary -------------------------------------------------------------------------------*/

#define LF_SUM_LABEL 12  /* width of the label column */
#define LF_SUM_WIDTH 100 /* wrap lines here */

/* printf into buf at *n, never past cap (the result is cut, *n stays < cap). */
static void lf_append(char *buf, size_t cap, size_t *n, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static void lf_append(char *buf, size_t cap, size_t *n, const char *fmt, ...)
{
    va_list ap;
    if (*n + 1 >= cap) return;
    va_start(ap, fmt);
    int r = vsnprintf(buf + *n, cap - *n, fmt, ap);
    va_end(ap);
    if (r > 0) *n = *n + (size_t)r < cap ? *n + (size_t)r : cap - 1;
}

/* Words on a line after a label, wrapped under the first word. */
typedef struct {
    FILE *out;
    int col, indent;
} lf_wrap_t;

static void lf_wrap_start(lf_wrap_t *w, FILE *out, const char *label, int indent)
{
    w->out = out;
    w->indent = indent;
    w->col = fprintf(out, "%-*s", indent, label);
}

static void lf_wrap_word(lf_wrap_t *w, const char *word)
{
    int n = (int)strlen(word);
    if (w->col > w->indent && w->col + 1 + n > LF_SUM_WIDTH) {
        fprintf(w->out, "\n%*s", w->indent, "");
        w->col = w->indent;
    } else if (w->col > w->indent) {
        fputc(' ', w->out);
        w->col++;
    }
    w->col += fprintf(w->out, "%s", word);
}

static void lf_wrap_end(lf_wrap_t *w)
{
    fputc('\n', w->out);
}

int lf_config_secret_prop(const char *key, const char *value)
{
    /* Over-masking a file path (ssl.key.location) costs nothing; printing a key costs a lot. */
    static const char *const words[] = {"password",   "passwd", "secret",
                                        "token",      "key",    "pem",
                                        "credential", "jaas",   "oauthbearer.config"};
    for (size_t i = 0; key && i < sizeof(words) / sizeof(words[0]); i++)
        if (strcasestr(key, words[i])) return 1;
    return value && (strstr(value, "-----BEGIN") || strstr(value, "PRIVATE KEY"));
}

static void lf_setting_format(const lf_config_t *cfg, const lf_setting_t *s, char *buf, size_t cap)
{
    size_t n = 0;
    int64_t v =
        s->type == LF_SET_STRING || s->type == LF_SET_PROPS ? 0 : lf_setting_load_int(cfg, s);
    buf[0] = '\0';
    switch (s->type) {
    case LF_SET_STRING: {
        const char *str = *(char *const *)((const char *)cfg + s->off);
        lf_append(buf, cap, &n, "%s", !str ? "(none)" : s->secret ? "***" : str);
        break;
    }
    case LF_SET_INT:
        lf_append(buf, cap, &n, "%" PRId64, v);
        break;
    case LF_SET_BOOL:
        lf_append(buf, cap, &n, "%s", v ? "true" : "false");
        break;
    case LF_SET_DURATION:
        lf_duration_format(v * s->unit_ms, buf, cap);
        break;
    case LF_SET_TIMESTAMP:
        lf_time_format_iso8601(v, buf, cap);
        break;
    case LF_SET_ENUM:
        lf_append(buf, cap, &n, "%s", s->choices[v]);
        break;
    case LF_SET_PROPS:
        break; /* one word per property: see lf_config_print_summary */
    }
}

static void lf_cond_format(const lf_cond_t *c, const char *prefix, char *buf, size_t cap)
{
    char a[32], b[32];
    size_t n = 0;
    buf[0] = '\0';
    lf_append(buf, cap, &n, "%s%s%s", c->negate ? "not:" : "", prefix, c->field);
    switch (c->op) {
    case LF_MATCH_PRESENT:
        lf_append(buf, cap, &n, "?");
        return;
    case LF_MATCH_RANGE:
        lf_fmt_double(a, sizeof(a), c->min);
        lf_fmt_double(b, sizeof(b), c->max);
        if (c->has_min && c->has_max)
            lf_append(buf, cap, &n, "=[%s,%s)", a, b);
        else
            lf_append(buf, cap, &n, "%s%s", c->has_min ? ">=" : "<", c->has_min ? a : b);
        return;
    case LF_MATCH_EQUALS:
    case LF_MATCH_PREFIX:
        lf_append(buf, cap, &n, "%s", c->op == LF_MATCH_PREFIX ? "^=" : "=");
        for (size_t i = 0; i < c->nvalues; i++)
            lf_append(buf, cap, &n, "%s%s", i ? "|" : "", c->values[i]);
        return;
    }
}

static void lf_list_format(const char *label, char *const *v, size_t nv, char *buf, size_t cap)
{
    size_t n = 0;
    buf[0] = '\0';
    lf_append(buf, cap, &n, "%s", label);
    for (size_t i = 0; i < nv; i++)
        lf_append(buf, cap, &n, "%s%s", i ? "|" : "", v[i]);
}

/* "  name                 +10   " then the rule's conditions as wrapped words. */
static void lf_rule_start(lf_wrap_t *w, FILE *out, const char *name, double points)
{
    char label[96], p[32];
    lf_fmt_double(p, sizeof(p), points);
    lf_fmt(label, sizeof(label), "  %-22.22s %s%s", name ? name : "?", points >= 0 ? "+" : "", p);
    lf_wrap_start(w, out, label, 32);
}

/* The one-screen summary check-config prints: settings from the table, then the model with
 * one line per rule ("x^=a" prefix, "x=a|b" one of, "x?" present, "not:" negation). */
void lf_config_print_summary(const lf_config_t *cfg, FILE *out)
{
    static const char *const sections[] = {"kafka", "redis", "processing", "limits"};
    const lf_model_t *m = &cfg->model;
    char buf[512], a[32], b[32];
    lf_wrap_t w;

    char warned[48] = "";
    if (cfg->nwarnings)
        lf_fmt(warned, sizeof(warned), " with %zu warning%s", cfg->nwarnings,
               cfg->nwarnings == 1 ? "" : "s");
    fprintf(out, "%s: valid%s; rules version %s\n", cfg->path ? cfg->path : "(defaults)", warned,
            m->version ? m->version : "(none)");
    for (size_t k = 0; k < sizeof(sections) / sizeof(sections[0]); k++) {
        size_t sl = strlen(sections[k]);
        lf_wrap_start(&w, out, sections[k], LF_SUM_LABEL);
        for (size_t i = 0; i < LF_NSETTINGS; i++) {
            const lf_setting_t *s = &lf_settings[i];
            if (strncmp(s->path, sections[k], sl) != 0 || s->path[sl] != '.') continue;
            if (s->type == LF_SET_PROPS) {
                for (size_t j = 0; j < cfg->nkafka_props; j++) {
                    const lf_prop_t *p = &cfg->kafka_props[j];
                    lf_fmt(buf, sizeof(buf), "%s=%s", p->key,
                           lf_config_secret_prop(p->key, p->value) ? "***" : p->value);
                    lf_wrap_word(&w, buf);
                }
                continue;
            }
            char val[400];
            lf_setting_format(cfg, s, val, sizeof(val));
            lf_fmt(buf, sizeof(buf), "%s=%s", s->path + sl + 1, val);
            lf_wrap_word(&w, buf);
        }
        lf_wrap_end(&w);
    }

    lf_wrap_start(&w, out, "model", LF_SUM_LABEL);
    lf_duration_format((int64_t)m->half_life_ms, a, sizeof(a));
    lf_fmt(buf, sizeof(buf), "half_life=%s", a);
    lf_wrap_word(&w, buf);
    lf_fmt_double(a, sizeof(a), m->grade_l1);
    lf_fmt_double(b, sizeof(b), m->grade_l2);
    lf_fmt(buf, sizeof(buf), "L1>=%s L2>=%s", a, b);
    lf_wrap_word(&w, buf);
    lf_fmt_double(a, sizeof(a), m->mql_enter);
    lf_fmt_double(b, sizeof(b), m->mql_exit);
    lf_fmt(buf, sizeof(buf), "mql.enter>=%s mql.exit<%s", a, b);
    lf_wrap_word(&w, buf);
    if (m->nmql_required_traits) {
        lf_list_format("mql.requires=", m->mql_required_traits, m->nmql_required_traits, buf,
                       sizeof(buf));
        lf_wrap_word(&w, buf);
    }
    lf_wrap_end(&w);

    fprintf(out, "engagement  %zu rule%s\n", m->neng, m->neng == 1 ? "" : "s");
    for (size_t i = 0; i < m->neng; i++) {
        const lf_engagement_rule_t *r = &m->eng[i];
        lf_rule_start(&w, out, r->name, r->points);
        if (r->nkinds)
            lf_list_format("kind=", r->kinds, r->nkinds, buf, sizeof(buf));
        else
            lf_fmt(buf, sizeof(buf), "kind=any");
        lf_wrap_word(&w, buf);
        if (r->npath_prefixes) {
            lf_list_format("path^=", r->path_prefixes, r->npath_prefixes, buf, sizeof(buf));
            lf_wrap_word(&w, buf);
        }
        for (size_t j = 0; j < r->nutm; j++) {
            lf_cond_format(&r->utm[j], "utm.", buf, sizeof(buf));
            lf_wrap_word(&w, buf);
        }
        for (size_t j = 0; j < r->nprops; j++) {
            lf_cond_format(&r->props[j], "", buf, sizeof(buf));
            lf_wrap_word(&w, buf);
        }
        if (r->cap_per_ms > 0) {
            lf_fmt_double(a, sizeof(a), r->cap_points);
            lf_duration_format(r->cap_per_ms, b, sizeof(b));
            lf_fmt(buf, sizeof(buf), "cap=%s/%s", a, b);
            lf_wrap_word(&w, buf);
        }
        lf_wrap_end(&w);
    }

    double fit_max = 0;
    for (size_t i = 0; i < m->nfit; i++)
        if (m->fit[i].points > 0) fit_max += m->fit[i].points;
    lf_fmt_double(a, sizeof(a), fit_max);
    fprintf(out, "fit         %zu rule%s, positive points sum to +%s\n", m->nfit,
            m->nfit == 1 ? "" : "s", a);
    for (size_t i = 0; i < m->nfit; i++) {
        const lf_fit_rule_t *r = &m->fit[i];
        lf_rule_start(&w, out, r->name, r->points);
        for (size_t j = 0; j < r->nconds; j++) {
            lf_cond_format(&r->conds[j], "", buf, sizeof(buf));
            lf_wrap_word(&w, buf);
        }
        lf_wrap_end(&w);
    }

    lf_wrap_start(&w, out, "traits", LF_SUM_LABEL);
    if (!m->ntracked_traits) lf_wrap_word(&w, "(none)");
    for (size_t i = 0; i < m->ntracked_traits; i++)
        lf_wrap_word(&w, m->tracked_traits[i]);
    lf_wrap_end(&w);
    lf_wrap_start(&w, out, "bots", LF_SUM_LABEL);
    if (!m->nbot_user_agents) lf_wrap_word(&w, "(none)");
    for (size_t i = 0; i < m->nbot_user_agents; i++)
        lf_wrap_word(&w, m->bot_user_agents[i]);
    lf_wrap_end(&w);
}
