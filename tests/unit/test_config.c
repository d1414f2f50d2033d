/* The rules file: the settings table, the model parser, every error with its line. Runs from
 * the repository root (it reads deploy/leadflow.yaml and tests/unit/data/). */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "leadflow/alloc.h"
#include "leadflow/config.h"
#include "test.h"

/* The diagnostics of the last load_yaml / load_file. */
static char diag_text[32768];
static lf_err_t diag_err;

/* Close the memstream, keep its text in diag_text. */
static int capture_end(FILE *f, char **buf, int rc)
{
    fclose(f);
    snprintf(diag_text, sizeof(diag_text), "%s", *buf ? *buf : "");
    free(*buf); /* open_memstream's buffer is libc's */
    return rc;
}

/* Load inline YAML as "t.yaml". */
static int load_yaml(const char *yaml, lf_config_t *cfg)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    memset(&diag_err, 0, sizeof(diag_err));
    int rc = lf_config_load_string("t.yaml", yaml, strlen(yaml), cfg, f, &diag_err);
    return capture_end(f, &buf, rc);
}

static int load_file(const char *path, lf_config_t *cfg)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    memset(&diag_err, 0, sizeof(diag_err));
    int rc = lf_config_load(path, cfg, f, &diag_err);
    return capture_end(f, &buf, rc);
}

/* What check-config prints for cfg (lf_config_print_summary); the caller frees it. */
static char *summary_of(const lf_config_t *cfg)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    lf_config_print_summary(cfg, f);
    fclose(f);
    return buf;
}

static int diag_lines(void)
{
    int n = 0;
    for (const char *p = diag_text; *p; p++)
        n += *p == '\n';
    return n;
}

/* Whether a diagnostic line starts with "<file>:<line>:" and contains `what`. */
static int has_diag(const char *file, int line, const char *what)
{
    char prefix[256];
    snprintf(prefix, sizeof(prefix), "%s:%d:", file, line);
    for (const char *p = diag_text; *p;) {
        const char *eol = strchr(p, '\n');
        size_t n = eol ? (size_t)(eol - p) : strlen(p);
        char one[1024];
        snprintf(one, sizeof(one), "%.*s", (int)n, p);
        if (strncmp(one, prefix, strlen(prefix)) == 0 && strstr(one, what)) return 1;
        p += n + (eol ? 1 : 0);
    }
    return 0;
}

static const lf_engagement_rule_t *eng_rule(const lf_model_t *m, const char *name)
{
    for (size_t i = 0; i < m->neng; i++)
        if (strcmp(m->eng[i].name, name) == 0) return &m->eng[i];
    return NULL;
}

static const lf_fit_rule_t *fit_rule(const lf_model_t *m, const char *name)
{
    for (size_t i = 0; i < m->nfit; i++)
        if (strcmp(m->fit[i].name, name) == 0) return &m->fit[i];
    return NULL;
}

static int tracked(const lf_model_t *m, const char *trait)
{
    for (size_t i = 0; i < m->ntracked_traits; i++)
        if (strcmp(m->tracked_traits[i], trait) == 0) return 1;
    return 0;
}

/*---- Defaults and durations -----------------------------------------------------------------*/

static void test_config_defaults(void)
{
    lf_config_t cfg;
    lf_config_defaults(&cfg);
    CHECK_STR(cfg.kafka_brokers, "127.0.0.1:9092");
    CHECK_STR(cfg.kafka_group, "leadflow");
    CHECK_STR(cfg.topic_events, "leadflow.events");
    CHECK_STR(cfg.topic_transitions, "leadflow.stage-transitions");
    CHECK_STR(cfg.topic_dead_letter, "leadflow.dead-letter");
    CHECK_INT(cfg.nkafka_props, 0);
    CHECK_STR(cfg.redis_host, "127.0.0.1");
    CHECK_INT(cfg.redis_port, 6379);
    CHECK(cfg.redis_password == NULL);
    CHECK(cfg.redis_user == NULL);
    CHECK_INT(cfg.redis_db, 0);
    CHECK_STR(cfg.redis_prefix, "lf:");
    CHECK_INT(cfg.redis_timeout_ms, 2000);
    CHECK_INT(cfg.batch_max_events, 5000);
    CHECK_INT(cfg.batch_max_ms, 10);
    CHECK_INT(cfg.max_inflight_events, 100000);
    CHECK_INT(cfg.dedup_window, 86400); /* 24h of event time, in seconds */
    CHECK_INT(cfg.transitions_json, 0);
    CHECK_INT(cfg.heartbeat_ttl_s, 15);
    CHECK_INT(cfg.limits.max_event_bytes, 32768);
    CHECK_INT(cfg.limits.min_ts_ms, 946684800000LL);  /* 2000-01-01 */
    CHECK_INT(cfg.limits.max_ts_ms, 4102444800000LL); /* 2100-01-01 */
    CHECK_NEAR(cfg.model.half_life_ms, 14 * 86400000.0, 0);
    CHECK_NEAR(cfg.model.grade_l1, 80, 0);
    CHECK_NEAR(cfg.model.grade_l2, 40, 0);
    CHECK_NEAR(cfg.model.mql_enter, 60, 0);
    CHECK_NEAR(cfg.model.mql_exit, 45, 0);
    CHECK_INT(cfg.model.neng, 0);
    lf_config_free(&cfg);
    lf_config_free(&cfg); /* idempotent */
}

/* An empty file is a valid minimal configuration: every default, a hashed version. */
static void test_config_empty_file(void)
{
    lf_config_t cfg;
    CHECK_INT(load_yaml("", &cfg), LF_OK);
    CHECK_STR(diag_text, "");
    CHECK_INT(cfg.redis_port, 6379);
    CHECK_STR(cfg.path, "t.yaml");
    CHECK(cfg.model.version != NULL);
    CHECK_INT(strlen(cfg.model.version), 13);
    CHECK(cfg.model.version[0] == 'h');
    CHECK(strspn(cfg.model.version + 1, "0123456789abcdef") == 12);
    lf_config_free(&cfg);

    CHECK_INT(load_yaml("# only a comment\n", &cfg), LF_OK);
    CHECK_INT(cfg.model.neng, 0);
    lf_config_free(&cfg);
}

static void test_config_durations(void)
{
    static const struct {
        const char *s;
        int64_t ms;
    } ok[] = {
        {"14d", 14 * 86400000LL},
        {"36h", 36 * 3600000LL},
        {"90m", 90 * 60000LL},
        {"30s", 30000},
        {"500ms", 500},
        {"1w", 7 * 86400000LL},
        {"45", 45000},
        {"0.5", 500},
        {"1.5h", 5400000},
        {"1h30m", 5400000},
        {"1d 12h", 129600000},
        {" 2d ", 2 * 86400000LL},
        {"0", 0},
        {"-1d", -86400000LL},
        {"250 ms", 250},
    };
    static const char *const bad[] = {"",   "d",    "ms",     "14x",  "1d2", "abc", "1..5s",
                                      ".s", "1e3s", "5 days", "--1s", "1s-", "14D"};
    for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
        int64_t ms = -12345;
        if (lf_duration_parse(ok[i].s, &ms) != LF_OK || ms != ok[i].ms)
            lf_test_fail(__FILE__, __LINE__,
                         "lf_duration_parse(\"%s\") = %" PRId64 ", expected %" PRId64, ok[i].s, ms,
                         ok[i].ms);
    }
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        int64_t ms;
        if (lf_duration_parse(bad[i], &ms) != LF_ERR)
            lf_test_fail(__FILE__, __LINE__, "lf_duration_parse(\"%s\") accepted", bad[i]);
    }
    int64_t ms;
    CHECK_INT(lf_duration_parse(NULL, &ms), LF_ERR);
}

/*---- The example file ------------------------------------------------------------------------*/

/* deploy/leadflow.yaml's settings and thresholds. */
static void check_deploy_settings(const lf_config_t *cfg)
{
    const lf_model_t *m = &cfg->model;
    CHECK_STR(cfg->path, "deploy/leadflow.yaml");
    CHECK_STR(m->version, "2026-11-b2b-1");
    CHECK(strstr(cfg->kafka_brokers, "kafka-1.internal:9092") != NULL);
    CHECK_STR(cfg->kafka_group, "leadflow");
    CHECK_STR(cfg->topic_transitions, "leadflow.stage-transitions");
    CHECK_INT(cfg->nkafka_props, 2);
    CHECK_STR(cfg->kafka_props[1].key, "session.timeout.ms");
    CHECK_STR(cfg->kafka_props[1].value, "10000");
    CHECK_INT(cfg->redis_port, 6379);
    CHECK_STR(cfg->redis_prefix, "lf:");
    CHECK_INT(cfg->heartbeat_ttl_s, 15);
    CHECK_INT(cfg->limits.min_ts_ms, 1420070400000LL); /* 2015-01-01 */

    CHECK_NEAR(m->half_life_ms, 14 * 86400000.0, 0);
    CHECK_NEAR(m->grade_l1, 80, 0);
    CHECK_NEAR(m->grade_l2, 40, 0);
    CHECK_NEAR(m->mql_enter, 60, 0);
    CHECK_NEAR(m->mql_exit, 45, 0);
    CHECK_INT(m->nmql_required_traits, 2);
    CHECK_STR(m->mql_required_traits[0], "company");
    /* The recycling block writes the defaults out. */
    for (int k = 0; k < LF_RECYCLE__COUNT; k++) {
        CHECK_INT(m->recycle[k].set, 1);
        CHECK_INT(m->recycle[k].engagement, LF_RECYCLE_RESET);
        CHECK_INT(m->recycle[k].requalify, LF_REQUALIFY_COOLDOWN);
    }
    CHECK_INT(m->recycle[LF_RECYCLE_SALES_REJECT].cooldown_ms, 14 * 86400000LL);
    CHECK_INT(m->recycle[LF_RECYCLE_DEAL_LOST].cooldown_ms, 90 * 86400000LL);
}

/* deploy/leadflow.yaml's rules, tracked traits and bots. */
static void check_deploy_rules(const lf_model_t *m)
{
    const lf_engagement_rule_t *r = eng_rule(m, "pricing_page");
    CHECK(r != NULL);
    CHECK_NEAR(r->points, 10, 0);
    CHECK_INT(r->nkinds, 1);
    CHECK_STR(r->kinds[0], "page_view");
    CHECK_INT(r->npath_prefixes, 2);
    CHECK_STR(r->path_prefixes[0], "/pricing");
    CHECK_NEAR(r->cap_points, 30, 0);
    CHECK_INT(r->cap_per_ms, 86400000);
    CHECK(r->line > 100);

    /* Demo requests are worth more than blog views; the blog is capped per day. */
    const lf_engagement_rule_t *demo = eng_rule(m, "demo_request");
    const lf_engagement_rule_t *blog = eng_rule(m, "blog_view");
    CHECK(demo && blog);
    CHECK(demo->points > blog->points);
    CHECK_INT(blog->cap_per_ms, 86400000);
    CHECK_INT(demo->nprops, 1);
    CHECK_STR(demo->props[0].field, "form_id");
    CHECK_INT(demo->props[0].op, LF_MATCH_EQUALS);
    CHECK_INT(demo->props[0].nvalues, 2);

    r = eng_rule(m, "linkedin_ads_click");
    CHECK(r != NULL);
    CHECK_INT(r->nutm, 2);
    CHECK_STR(r->utm[0].field, "source");
    CHECK_STR(r->utm[0].values[0], "linkedin");
    CHECK_INT(r->utm[1].nvalues, 2);

    r = eng_rule(m, "email_open"); /* written as Segment's "Email Opened" */
    CHECK(r != NULL);
    CHECK_STR(r->kinds[0], "email_open");
    CHECK_INT(r->cap_per_ms, 7 * 86400000LL);

    r = eng_rule(m, "careers_page");
    CHECK(r != NULL);
    CHECK(r->points < 0);
    CHECK(eng_rule(m, "unsubscribe")->points < 0);

    r = eng_rule(m, "conference_qr_scan");
    CHECK(r != NULL);
    CHECK_STR(r->kinds[0], "qr_scan");
    CHECK_INT(r->props[0].op, LF_MATCH_PREFIX);

    r = eng_rule(m, "google_ads_click");
    CHECK(r != NULL);
    CHECK_INT(r->nutm, 3);
    CHECK_INT(r->utm[2].op, LF_MATCH_PREFIX);
    CHECK_INT(r->utm[2].negate, 1);

    const lf_fit_rule_t *f = fit_rule(m, "enterprise_tier");
    CHECK(f != NULL);
    CHECK_NEAR(f->points, 25, 0);
    CHECK_INT(f->nconds, 1);
    CHECK_STR(f->conds[0].field, "company_tier");
    f = fit_rule(m, "large_company");
    CHECK(f != NULL);
    CHECK_INT(f->conds[0].op, LF_MATCH_RANGE);
    CHECK(f->conds[0].has_min && !f->conds[0].has_max);
    CHECK_NEAR(f->conds[0].min, 1000, 0);
    f = fit_rule(m, "has_phone");
    CHECK(f != NULL);
    CHECK_INT(f->conds[0].op, LF_MATCH_PRESENT);
    CHECK_INT(f->conds[0].negate, 0);

    const char *traits[] = {"company",   "email",     "company_tier", "region", "industry",
                            "employees", "seniority", "title",        "phone"};
    CHECK_INT(m->ntracked_traits, sizeof(traits) / sizeof(traits[0]));
    for (size_t i = 0; i < sizeof(traits) / sizeof(traits[0]); i++)
        CHECK(tracked(m, traits[i]));
    CHECK(m->nbot_user_agents >= 4);
    CHECK_STR(m->bot_user_agents[0], "bot");
}

static void test_config_deploy_file(void)
{
    lf_config_t cfg;
    int rc = load_file("deploy/leadflow.yaml", &cfg);
    if (rc != LF_OK) printf("%s", diag_text);
    CHECK_INT(rc, LF_OK);
    if (rc != LF_OK) return;
    check_deploy_settings(&cfg);
    check_deploy_rules(&cfg.model);
    lf_config_free(&cfg);
}

/*---- Errors ----------------------------------------------------------------------------------*/

/* Each bad input must be reported on the right line, with a message that says what is wrong
 * (line 0: a valid input). */
static const struct {
    const char *yaml;
    int line;
    const char *what;
} error_cases[] = {
    {"redis:\n  host: a\n  prot: 1\n", 3, "unknown key \"prot\" in redis (did you mean \"port\"?)"},
    {"kafka:\n  topics: {event: x}\n", 2, "did you mean \"events\""},
    {"modle:\n  decay: {half_life: 1d}\n", 1, "did you mean \"model\""},
    {"model:\n  grades: {L1: 80, l2: 20}\n", 2, "did you mean \"L2\""},
    {"redis:\n  port: 70000\n", 2, "redis.port: 70000 is out of range 1..65535"},
    {"redis:\n  port: 0\n", 2, "out of range"},
    {"redis:\n  port: http\n", 2, "redis.port: expected an integer"},
    {"redis:\n  port: [1]\n", 2, "redis.port: expected an integer, got a list"},
    {"kafka: localhost:9092\n", 1, "kafka: expected a mapping"},
    {"kafka:\n  group_id: {a: b}\n", 2, "kafka.group_id: expected a string, got a mapping"},
    {"kafka:\n  group_id: \"\"\n", 2, "must not be empty"},
    {"processing:\n  transitions_format: avro\n", 2, "not one of: msgpack, json"},
    {"processing:\n  transitions_format: jsno\n", 2, "did you mean \"json\""},
    {"processing:\n  dedup_window: 65\n", 2, "is a bare number"},
    {"processing:\n  dedup_window: 31d\n", 2, "processing.dedup_window"},
    {"processing:\n  heartbeat_ttl_s: soon\n", 2, "not a duration"},
    {"limits:\n  min_timestamp: yesterday\n", 2, "not an ISO-8601 time"},
    {"limits:\n  min_timestamp: \"2050-01-01T00:00:00Z\"\n  max_timestamp: "
     "\"2040-01-01T00:00:00Z\"\n",
     3, "max_timestamp must be after min_timestamp"},
    {"model:\n  decay:\n    half_life: 0\n", 3, "half_life: must be positive"},
    {"model:\n  decay:\n    half_life: -2d\n", 3, "half_life: must be positive"},
    {"model:\n  decay:\n    half_life: fortnight\n", 3, "is not a duration"},
    {"model:\n  stages:\n    mql: {enter: 50, exit: 60}\n", 3,
     "exit (60) must not be above enter (50)"},
    {"model:\n  stages:\n    mql:\n      enter: 30\n", 4,
     "exit (45, the default) must not be above enter (30)"},
    {"model:\n  grades:\n    L1: 50\n    L2: 70\n", 4, "L2 (70) must not be above L1 (50)"},
    {"model:\n  grades:\n    L1: 30\n", 3, "L2 (40, the default) must not be above L1 (30)"},
    {"model:\n  grades: {L1: high}\n", 2, "model.grades.L1: expected a number"},
    {"model:\n  stages:\n    mlq: {enter: 50}\n", 3,
     "unknown stage \"mlq\" in model.stages (did you mean \"mql\"?)"},
    {"model:\n  stages:\n    hot: {enter: 50}\n", 3, "unknown stage \"hot\""},
    {"model:\n  stages:\n    sql: {enter: 90}\n", 3, "stage \"sql\" has no score thresholds"},
    {"model:\n  stages:\n    mql: {enter: 50, exit: 40, require: [a]}\n", 3,
     "did you mean \"require_traits\""},
    {"model:\n  engagement:\n    - name: a\n      points: 1\n      cap: {points: 5}\n", 5,
     "cap: needs both points and per"},
    {"model:\n  engagement:\n    - name: a\n      points: 1\n      cap: {per: 1d}\n", 5,
     "points is missing"},
    {"model:\n  engagement:\n    - name: a\n      points: 1\n      cap: {points: 5, per: "
     "daily}\n",
     5, "cap.per: \"daily\" is not a duration"},
    {"model:\n  engagement:\n    - name: a\n      points: 1\n      cap: {points: 5, per: "
     "0s}\n",
     5, "cap.per: must be positive"},
    {"model:\n  engagement:\n    - name: a\n      points: 1\n      cap: {points: 0, per: "
     "1d}\n",
     5, "cap.points: must be positive"},
    {"model:\n  engagement:\n    - name: a\n      points: -5\n      cap: {points: 5, per: "
     "1d}\n",
     5, "this rule's points are negative"},
    {"model:\n  engagement:\n    - name: a\n      points: 1\n      cap: 5\n", 5,
     "cap: expected a mapping"},
    {"model:\n  engagement:\n    - name: a\n      kind: page_view\n", 3, "points is missing"},
    {"model:\n  engagement:\n    - name: a\n      points: many\n", 4,
     "points: expected a number, got \"many\""},
    {"model:\n  engagement:\n    - name: \"\"\n      points: 1\n", 3, "with an empty name"},
    {"model:\n  engagement:\n    - name:\n      points: 1\n", 3, "with an empty name"},
    {"model:\n  engagement:\n    - kind: qr_scan\n      points: 1\n", 3, "without a name"},
    {"model:\n  engagement:\n    - {name: a, points: 1}\n    - {name: b, points: 1}\n    - "
     "{name: a, points: 2}\n",
     5, "duplicate rule name \"a\" (first at line 3)"},
    {"model:\n  engagement:\n    - {name: a, points: 1}\n  fit:\n    - {name: a, points: 1, "
     "traits: {x: y}}\n",
     5, "duplicate rule name \"a\""},
    {"model:\n  engagement:\n    - {name: a, points: 1, pionts: 2}\n", 3,
     "unknown key \"pionts\" in engagement rule \"a\" (did you mean \"points\"?)"},
    {"model:\n  engagement:\n    - {name: a, points: 1, path_prefix: pricing}\n", 3,
     "must start with \"/\""},
    {"model:\n  engagement:\n    - {name: a, points: 1, utm: {sauce: x}}\n", 3,
     "did you mean \"source\""},
    {"model:\n  engagement:\n    - {name: a, points: 1, kind: {x: 1}}\n", 3,
     "kind: expected a string or a list of strings, got a mapping"},
    {"model:\n  engagement:\n    - {name: a, points: 1, properties: {x: {prefix: a, min: "
     "1}}}\n",
     3, "a condition takes one of"},
    {"model:\n  engagement:\n    - {name: a, points: 1, properties: {x: {min: 5, max: 5}}}\n", 3,
     "min (5) must be below max (5)"},
    {"model:\n  engagement:\n    - {name: a, points: 1, properties: {x: {}}}\n", 3,
     "an empty condition"},
    {"model:\n  engagement:\n    - {name: a, points: 1, properties: {x: {present: maybe}}}\n", 3,
     "expected true or false"},
    {"model:\n  engagement:\n    - {name: a, points: 1, properties: {x: {starts: a}}}\n", 3,
     "unknown key \"starts\" in a condition"},
    {"model:\n  engagement:\n    - {name: a, points: 1, properties: {x: {not: true}}, "
     "properties: {}}\n",
     3, "duplicate key \"properties\""},
    {"model:\n  engagement:\n    - just a string\n", 3, "expected a rule"},
    {"model:\n  engagement: {name: a}\n", 2, "expected a list of rules, got a mapping"},
    {"model:\n  fit:\n    - {name: f, points: 1}\n", 3, "traits is missing"},
    {"model:\n  fit:\n    - {name: f, traits: {tier: a}}\n", 3, "points is missing"},
    {"model:\n  bots:\n    user_agents: []\n", 3, "the list is empty"},
    {"model:\n  bots: [bot]\n", 2, "model.bots: expected a mapping"},
    {"model:\n  engagment: []\n", 2, "did you mean \"engagement\""},
    {"version: \"\"\nmodel: {}\n", 0, ""}, /* empty version = the hash: fine */
    {"redis: {port: 1}\nredis: {port: 2}\n", 2, "duplicate key \"redis\" (first at line 1)"},
    {"kafka:\n  properties:\n    acks: [1, 2]\n", 3, "kafka.properties.acks: expected a value"},
    {"kafka:\n  properties: [acks]\n", 2, "kafka.properties: expected a mapping"},
    {"- a\n- b\n", 1, "must be a mapping"},
    {"model:\n  bots: *nowhere\n", 2, "names no anchor"},
    {"a: b\n---\nc: d\n", 2, "a second YAML document"},
    {"redis:\n  host: [a\n  port: 1\n", 3, "YAML syntax error"},
    {"redis:\n\thost: a\n", 2, "YAML syntax error"},
    {"model:\n  grades: {L1: 80 L2: 40}\n", 2, "YAML syntax error"},
};

static void test_config_errors_each(void)
{
    for (size_t i = 0; i < sizeof(error_cases) / sizeof(error_cases[0]); i++) {
        lf_config_t cfg;
        int rc = load_yaml(error_cases[i].yaml, &cfg);
        if (error_cases[i].line == 0) {
            if (rc != LF_OK)
                lf_test_fail(__FILE__, __LINE__, "case %zu: rejected:\n%s", i, diag_text);
            lf_config_free(&cfg);
            continue;
        }
        if (rc != LF_ERR || !has_diag("t.yaml", error_cases[i].line, error_cases[i].what))
            lf_test_fail(__FILE__, __LINE__, "case %zu: expected t.yaml:%d: ...%s..., got:\n%s", i,
                         error_cases[i].line, error_cases[i].what, diag_text);
        /* A failed load leaves nothing to free, and freeing again is harmless. */
        CHECK(cfg.kafka_brokers == NULL && cfg.model.eng == NULL);
        lf_config_free(&cfg);
    }
}

static void test_config_three_mistakes(void)
{
    lf_config_t cfg;
    const char *path = "tests/unit/data/three_mistakes.yaml";
    CHECK_INT(load_file(path, &cfg), LF_ERR);
    CHECK_INT(diag_lines(), 3);
    CHECK(has_diag(path, 5, "unknown key \"prot\""));
    CHECK(has_diag(path, 9, "points: expected a number"));
    CHECK(has_diag(path, 14, "exit (55) must not be above enter (50)"));
    /* In file order, with columns; err holds the first. */
    CHECK(strncmp(diag_text, "tests/unit/data/three_mistakes.yaml:5:3: ", 41) == 0);
    CHECK_INT(diag_err.code, LF_ERR);
    CHECK(strstr(diag_err.msg, ":5:3: unknown key") != NULL);
}

static void test_config_file_not_found(void)
{
    lf_config_t cfg;
    CHECK_INT(load_file("tests/unit/data/no-such-file.yaml", &cfg), LF_ERR);
    CHECK(strstr(diag_text, "tests/unit/data/no-such-file.yaml") != NULL);
    CHECK(strstr(diag_text, "No such file") != NULL);
    CHECK(strstr(diag_err.msg, "no-such-file.yaml") != NULL);
    lf_config_free(&cfg);
    /* A directory is not a file either. */
    CHECK_INT(load_file("tests/unit/data", &cfg), LF_ERR);
    CHECK(strstr(diag_text, "tests/unit/data: cannot read") != NULL);
}

static void test_config_yaml_syntax(void)
{
    lf_config_t cfg;
    CHECK_INT(load_yaml("redis:\n  host: a\n port: 1\n", &cfg), LF_ERR);
    CHECK_INT(diag_lines(), 1);
    CHECK(strstr(diag_text, "t.yaml:3:") != NULL);
    CHECK(strstr(diag_text, "YAML syntax error: ") != NULL);
    /* libyaml's own words come through. */
    CHECK_INT(load_yaml("a: 'unterminated\n", &cfg), LF_ERR);
    CHECK(strstr(diag_text, "quoted scalar") != NULL);
    /* Not UTF-8 / control bytes. */
    CHECK_INT(load_yaml("a: b\nc: \x01\n", &cfg), LF_ERR);
    CHECK(strstr(diag_text, "t.yaml:2:4: YAML syntax error") != NULL);
}

/*---- Features --------------------------------------------------------------------------------*/

static void test_config_kafka_properties(void)
{
    lf_config_t cfg;
    int rc = load_yaml("kafka:\n"
                       "  properties:\n"
                       "    security.protocol: SASL_SSL\n"
                       "    sasl.mechanisms: SCRAM-SHA-512\n"
                       "    sasl.password: \"s3cr:t\"\n"
                       "    queue.buffering.max.ms: 5\n"
                       "    enable.idempotence: true\n",
                       &cfg);
    CHECK_INT(rc, LF_OK);
    CHECK_INT(cfg.nkafka_props, 5);
    CHECK_STR(cfg.kafka_props[0].key, "security.protocol");
    CHECK_STR(cfg.kafka_props[0].value, "SASL_SSL");
    CHECK_STR(cfg.kafka_props[2].value, "s3cr:t");
    CHECK_STR(cfg.kafka_props[3].key, "queue.buffering.max.ms");
    CHECK_STR(cfg.kafka_props[3].value, "5");
    CHECK_STR(cfg.kafka_props[4].value, "true");
    CHECK_STR(cfg.kafka_brokers, "127.0.0.1:9092"); /* the rest keeps its defaults */
    lf_config_free(&cfg);
}

/* The nine properties conditions of test_config_load_string_inline's rule, in order. */
static void check_inline_props(const lf_cond_t *c)
{
    CHECK_STR(c[0].field, "form.id");
    CHECK_INT(c[0].op, LF_MATCH_EQUALS);
    CHECK_INT(c[0].nvalues, 1);
    CHECK_STR(c[0].values[0], "demo");
    CHECK_INT(c[1].op, LF_MATCH_PREFIX);
    CHECK_STR(c[1].values[0], "booth-");
    CHECK_INT(c[2].op, LF_MATCH_RANGE);
    CHECK(c[2].has_min && c[2].has_max);
    CHECK_NEAR(c[2].min, 1, 0);
    CHECK_NEAR(c[2].max, 10, 0);
    CHECK_INT(c[3].op, LF_MATCH_EQUALS);
    CHECK_INT(c[3].nvalues, 2);
    CHECK_INT(c[4].op, LF_MATCH_PRESENT);
    CHECK_INT(c[4].negate, 0);
    CHECK_INT(c[5].op, LF_MATCH_PRESENT);
    CHECK_INT(c[5].negate, 1);
    CHECK_INT(c[6].op, LF_MATCH_EQUALS);
    CHECK_INT(c[6].negate, 1);
    CHECK_STR(c[6].values[0], "free");
    CHECK_INT(c[7].negate, 1);
    CHECK_STR(c[7].values[0], "a");
    CHECK_INT(c[8].op, LF_MATCH_RANGE);
    CHECK(!c[8].has_min && c[8].has_max);
    CHECK_INT(c[8].negate, 1);
}

static void test_config_load_string_inline(void)
{
    lf_config_t cfg;
    int rc = load_yaml("version: v7\n"
                       "redis: {host: redis.internal, port: 6380, password: pw, db: 2}\n"
                       "processing: {transitions_format: JSON, heartbeat_ttl_s: 1m}\n"
                       "model:\n"
                       "  decay: {half_life: 36h}\n"
                       "  engagement:\n"
                       "    - name: r\n"
                       "      kind: [page_view, Email Opened, custom_kind]\n"
                       "      path_prefix: /pricing\n"
                       "      utm: {Source: linkedin, medium: [cpc, paid_social], name: spring}\n"
                       "      properties:\n"
                       "        form.id: demo\n"
                       "        qr: {prefix: booth-}\n"
                       "        seats: {min: 1, max: 10}\n"
                       "        plan: {in: [pro, enterprise]}\n"
                       "        gclid: {present: true}\n"
                       "        ref: {present: false}\n"
                       "        tier: {not: free}\n"
                       "        tier2: {equals: a, not: true}\n"
                       "        n: {not: {max: 3}}\n"
                       "      points: -2.5\n"
                       "  fit:\n"
                       "    - name: f\n"
                       "      traits: {employees: {max: 50}, company: {present: true}}\n"
                       "      points: 4\n",
                       &cfg);
    if (rc != LF_OK) printf("%s", diag_text);
    CHECK_INT(rc, LF_OK);
    CHECK_STR(cfg.model.version, "v7");
    CHECK_STR(cfg.redis_host, "redis.internal");
    CHECK_INT(cfg.redis_port, 6380);
    CHECK_STR(cfg.redis_password, "pw");
    CHECK_INT(cfg.redis_db, 2);
    CHECK_INT(cfg.transitions_json, 1);
    CHECK_INT(cfg.heartbeat_ttl_s, 60);
    CHECK_NEAR(cfg.model.half_life_ms, 36 * 3600000.0, 0);
    const lf_engagement_rule_t *r = &cfg.model.eng[0];
    CHECK_INT(cfg.model.neng, 1);
    CHECK_INT(r->line, 7);
    CHECK_NEAR(r->points, -2.5, 0);
    CHECK_INT(r->nkinds, 3);
    CHECK_STR(r->kinds[1], "email_open");
    CHECK_STR(r->kinds[2], "custom_kind");
    CHECK_INT(r->cap_per_ms, 0);
    CHECK_INT(r->nutm, 3);
    CHECK_STR(r->utm[0].field, "source"); /* case of the field name normalized */
    CHECK_STR(r->utm[2].field, "name");
    CHECK_INT(r->nprops, 9);
    check_inline_props(r->props);
    const lf_fit_rule_t *f = &cfg.model.fit[0];
    CHECK_INT(f->nconds, 2);
    CHECK_INT(f->line, 23);
    CHECK(f->conds[0].has_max && !f->conds[0].has_min);
    CHECK_INT(cfg.model.ntracked_traits, 2);
    lf_config_free(&cfg);
}

static void test_config_tracked_traits(void)
{
    lf_config_t cfg;
    int rc = load_yaml("model:\n"
                       "  stages: {mql: {require_traits: [company, phone]}}\n"
                       "  fit:\n"
                       "    - {name: a, points: 1, traits: {company: {present: true}}}\n"
                       "    - {name: b, points: 1, traits: {tier: x, region: EU}}\n"
                       "    - {name: c, points: 1, traits: {tier: y}}\n",
                       &cfg);
    CHECK_INT(rc, LF_OK);
    CHECK_INT(cfg.model.ntracked_traits, 4); /* company, phone, tier, region: deduplicated */
    CHECK(tracked(&cfg.model, "company") && tracked(&cfg.model, "phone"));
    CHECK(tracked(&cfg.model, "tier") && tracked(&cfg.model, "region"));
    lf_config_free(&cfg);

    /* A lead keeps at most LF_LEAD_TRAITS_MAX traits: the 17th is an error on its line. */
    char yaml[4096] = "model:\n  fit:\n";
    for (int i = 0; i < 17; i++)
        snprintf(yaml + strlen(yaml), sizeof(yaml) - strlen(yaml),
                 "    - {name: r%d, points: 1, traits: {t%d: x}}\n", i, i);
    CHECK_INT(load_yaml(yaml, &cfg), LF_ERR);
    CHECK(has_diag("t.yaml", 19, "a lead keeps at most 16 (\"t16\" is one too many)"));
}

static void test_config_too_many_caps(void)
{
    char yaml[4096] = "model:\n  engagement:\n";
    lf_config_t cfg;
    for (int i = 0; i < 17; i++)
        snprintf(yaml + strlen(yaml), sizeof(yaml) - strlen(yaml),
                 "    - {name: r%d, points: 1, cap: {points: 2, per: 1d}}\n", i);
    CHECK_INT(load_yaml(yaml, &cfg), LF_ERR);
    CHECK(has_diag("t.yaml", 19, "more than 16 rules have a cap"));
}

static void test_config_version_hash(void)
{
    lf_config_t a, b;
    const char *m1 = "model:\n  engagement:\n    - {name: a, kind: page_view, points: 1}\n";
    const char *m1_again = "# reformatted, commented, other settings changed\n"
                           "redis: {port: 6390}\n"
                           "model:   # the model\n"
                           "  engagement:\n"
                           "    - name: \"a\"\n"
                           "      kind: page_view # same\n"
                           "      points: 1\n";
    const char *m2 = "model:\n  engagement:\n    - {name: a, kind: page_view, points: 2}\n";
    CHECK_INT(load_yaml(m1, &a), LF_OK);
    CHECK_INT(load_yaml(m1_again, &b), LF_OK);
    CHECK_STR(a.model.version, b.model.version);
    lf_config_free(&b);
    CHECK_INT(load_yaml(m2, &b), LF_OK);
    CHECK(strcmp(a.model.version, b.model.version) != 0);
    lf_config_free(&b);

    /* The documented form: "h" + 12 hex digits of FNV-1a over the canonical model text. */
    const char *canon =
        "{\"engagement\":[{\"name\":\"a\",\"kind\":\"page_view\",\"points\":\"1\"}]}";
    char want[16];
    snprintf(want, sizeof(want), "h%012" PRIx64, lf_hash64(canon, strlen(canon)) >> 16);
    CHECK_STR(a.model.version, want);
    lf_config_free(&a);

    /* An explicit version wins. */
    CHECK_INT(load_yaml("version: 2026-q4\nmodel: {}\n", &a), LF_OK);
    CHECK_STR(a.model.version, "2026-q4");
    lf_config_free(&a);
}

static void test_config_aliases(void)
{
    lf_config_t cfg;
    int rc = load_yaml("model:\n"
                       "  bots: {user_agents: &bots [bot, spider]}\n"
                       "  engagement:\n"
                       "    - {name: a, points: 1, kind: &k [qr_scan, form_submit]}\n"
                       "    - {name: b, points: 2, kind: *k}\n",
                       &cfg);
    CHECK_INT(rc, LF_OK);
    CHECK_INT(cfg.model.eng[1].nkinds, 2);
    CHECK_STR(cfg.model.eng[1].kinds[1], "form_submit");
    lf_config_free(&cfg);
    /* An anchor cannot contain itself. */
    CHECK_INT(load_yaml("model: &m {bots: {user_agents: *m}}\n", &cfg), LF_ERR);
    CHECK(strstr(diag_text, "names no anchor") != NULL);
}

/* Inputs a fuzzer would try: deep nesting, an alias bomb, a huge key, junk. */
static void test_config_hostile(void)
{
    lf_config_t cfg;
    char deep[512];
    memset(deep, '[', 300);
    deep[300] = '\0';
    CHECK_INT(load_yaml(deep, &cfg), LF_ERR);
    CHECK(strstr(diag_text, "nesting deeper") || strstr(diag_text, "YAML syntax error"));

    const char *bomb = "model:\n"
                       "  a: &a [x, x, x, x, x, x, x, x, x, x]\n"
                       "  b: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a, *a]\n"
                       "  c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b, *b]\n"
                       "  d: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c, *c]\n"
                       "  e: &e [*d, *d, *d, *d, *d, *d, *d, *d, *d, *d]\n"
                       "  f: &f [*e, *e, *e, *e, *e, *e, *e, *e, *e, *e]\n"
                       "  g: &g [*f, *f, *f, *f, *f, *f, *f, *f, *f, *f]\n"
                       "  h: &h [*g, *g, *g, *g, *g, *g, *g, *g, *g, *g]\n"
                       "  i: &i [*h, *h, *h, *h, *h, *h, *h, *h, *h, *h]\n";
    CHECK_INT(load_yaml(bomb, &cfg), LF_ERR);
    CHECK(strstr(diag_text, "once aliases are expanded") != NULL);

    char key[300];
    memset(key, 'k', 250);
    snprintf(key + 250, sizeof(key) - 250, ": 1\n");
    CHECK_INT(load_yaml(key, &cfg), LF_ERR);
    CHECK(strstr(diag_text, "unknown key") != NULL);

    static const char junk[] = "\xff\xfe\x00\x01garbage";
    CHECK_INT(lf_config_load_string("j", junk, sizeof(junk), &cfg, NULL, NULL), LF_ERR);
    CHECK_INT(load_yaml("just a scalar\n", &cfg), LF_ERR);
    CHECK(has_diag("t.yaml", 1, "must be a mapping"));
}

static void test_config_summary(void)
{
    lf_config_t cfg;
    CHECK_INT(load_yaml("redis: {password: hunter2}\n"
                        "kafka: {properties: {sasl.password: swordfish, client.id: lf}}\n"
                        "model:\n"
                        "  engagement:\n"
                        "    - {name: pricing, kind: page_view, path_prefix: /pricing, points: "
                        "10, cap: {points: 30, per: 1d}}\n"
                        "  fit:\n"
                        "    - {name: big, traits: {employees: {min: 1000}}, points: 10}\n",
                        &cfg),
              LF_OK);
    char *buf = summary_of(&cfg);
    CHECK(strstr(buf, "t.yaml: valid; rules version h") != NULL);
    CHECK(strstr(buf, "port=6379") != NULL);
    CHECK(strstr(buf, "client.id=lf") != NULL);
    CHECK(strstr(buf, "pricing") && strstr(buf, "cap=30/1d"));
    CHECK(strstr(buf, "employees>=1000") != NULL);
    CHECK(strstr(buf, "hunter2") == NULL); /* secrets never printed */
    CHECK(strstr(buf, "swordfish") == NULL);
    int lines = 0;
    for (const char *c = buf; *c; c++)
        lines += *c == '\n';
    CHECK(lines < 25);
    free(buf);
    lf_config_free(&cfg);
}

/*---- Recycling ---------------------------------------------------------------------------------*/

/* model.recycling: the defaults when absent, a kind given alone (the other keeps its default,
 * keys left out theirs), every value, the summary's lines, the version follows it. */
static void test_config_recycling(void)
{
    lf_config_t cfg;
    CHECK_INT(load_yaml("model: {}\n", &cfg), LF_OK);
    const lf_recycle_policy_t *r = &cfg.model.recycle[LF_RECYCLE_SALES_REJECT];
    const lf_recycle_policy_t *d = &cfg.model.recycle[LF_RECYCLE_DEAL_LOST];
    CHECK_INT(r->engagement, LF_RECYCLE_RESET);
    CHECK_INT(r->cooldown_ms, 14 * 86400000LL);
    CHECK_INT(r->requalify, LF_REQUALIFY_COOLDOWN);
    CHECK_INT(d->engagement, LF_RECYCLE_RESET);
    CHECK_INT(d->cooldown_ms, 90 * 86400000LL);
    char v0[64];
    snprintf(v0, sizeof(v0), "%s", cfg.model.version);
    lf_config_free(&cfg);

    CHECK_INT(load_yaml("model:\n"
                        "  recycling:\n"
                        "    sales_reject:\n"
                        "      engagement: scale\n"
                        "      factor: 0.5\n"
                        "      cooldown: 14d\n"
                        "      requalify: below_enter\n",
                        &cfg),
              LF_OK);
    CHECK_INT(r->engagement, LF_RECYCLE_SCALE);
    CHECK_NEAR(r->factor, 0.5, 0);
    CHECK_INT(r->cooldown_ms, 14 * 86400000LL);
    CHECK_INT(r->requalify, LF_REQUALIFY_BELOW_ENTER);
    CHECK_INT(d->engagement, LF_RECYCLE_RESET); /* not given: the default */
    CHECK_INT(d->cooldown_ms, 90 * 86400000LL);
    CHECK(strcmp(cfg.model.version, v0) != 0); /* the policy is part of the model */
    char *buf = summary_of(&cfg);
    CHECK(strstr(buf, "recycling   sales_reject: engagement=scale x0.5 cooldown=14d "
                      "requalify=below_enter\n") != NULL);
    CHECK(strstr(buf, "deal_lost: engagement=reset cooldown=90d requalify=cooldown\n") != NULL);
    free(buf);
    lf_config_free(&cfg);

    /* Keys left out keep the kind's default; 0 is no cooldown; keep needs no factor. */
    CHECK_INT(load_yaml("model:\n"
                        "  recycling:\n"
                        "    deal_lost: {engagement: keep, cooldown: 0}\n"
                        "    sales_reject: {cooldown: 7d}\n",
                        &cfg),
              LF_OK);
    CHECK_INT(d->engagement, LF_RECYCLE_KEEP);
    CHECK_INT(d->cooldown_ms, 0);
    CHECK_INT(d->requalify, LF_REQUALIFY_COOLDOWN);
    CHECK_INT(r->engagement, LF_RECYCLE_RESET);
    CHECK_INT(r->cooldown_ms, 7 * 86400000LL);
    lf_config_free(&cfg);
}

/* Every invalid value is an error at its line and column. */
static void test_config_recycling_errors(void)
{
    lf_config_t cfg;
    CHECK_INT(load_yaml("model:\n"                 /* 1 */
                        "  recycling:\n"           /* 2 */
                        "    sales_reject:\n"      /* 3 */
                        "      engagement: zero\n" /* 4 */
                        "      factr: 0.5\n"       /* 5 */
                        "      cooldown: -1d\n"    /* 6 */
                        "      requalify: never\n" /* 7 */
                        "    deal_lost:\n"         /* 8 */
                        "      engagement: keep\n" /* 9 */
                        "      factor: 0.5\n"      /* 10 */
                        "    deal_won: {}\n"       /* 11 */
                        "    sales_rejct: {}\n"    /* 12 */
                        "    sales_reject: {}\n",  /* 13: a repeated key */
                        &cfg),
              LF_ERR);
    CHECK(has_diag("t.yaml", 4,
                   "4:19: model.recycling.sales_reject.engagement: \"zero\" is not "
                   "keep, reset or scale"));
    CHECK(has_diag("t.yaml", 5,
                   "unknown key \"factr\" in model.recycling.sales_reject (did you "
                   "mean \"factor\"?)"));
    CHECK(has_diag("t.yaml", 6, "cooldown: must not be negative"));
    CHECK(has_diag("t.yaml", 7, "requalify: \"never\" is not cooldown or below_enter"));
    CHECK(has_diag("t.yaml", 10, "factor is only for engagement: scale"));
    CHECK(has_diag("t.yaml", 11, "deal_won does not move a lead to nurture"));
    CHECK(has_diag("t.yaml", 12, "unknown key \"sales_rejct\" in model.recycling"));
    CHECK(has_diag("t.yaml", 13, "duplicate"));

    CHECK_INT(load_yaml("model:\n"
                        "  recycling:\n"
                        "    sales_reject: {engagement: scale}\n"
                        "    deal_lost: {engagement: scale, factor: 1}\n",
                        &cfg),
              LF_ERR);
    CHECK(has_diag("t.yaml", 3, "engagement: scale needs a factor"));
    CHECK(has_diag("t.yaml", 4, "factor: must be between 0 and 1"));
    CHECK_INT(load_yaml("model: {recycling: {deal_lost: {engagement: scale, factor: 0}}}\n", &cfg),
              LF_ERR);
    CHECK(has_diag("t.yaml", 1, "factor: must be between 0 and 1"));
    CHECK_INT(load_yaml("model: {recycling: {deal_lost: {cooldown: soon}}}\n", &cfg), LF_ERR);
    CHECK(has_diag("t.yaml", 1, "cooldown: \"soon\" is not a duration"));
    CHECK_INT(load_yaml("model: {recycling: [sales_reject]}\n", &cfg), LF_ERR);
    CHECK(has_diag("t.yaml", 1, "model.recycling: expected a mapping"));
}

/*---- Warnings: valid, but probably a mistake --------------------------------------------------*/

/* Whether a warning of cfg is on `line` and contains `what`. */
static int has_warning(const lf_config_t *cfg, int line, const char *what)
{
    char prefix[64];
    snprintf(prefix, sizeof(prefix), "t.yaml:%d:", line);
    for (size_t i = 0; i < cfg->nwarnings; i++)
        if (strncmp(cfg->warnings[i], prefix, strlen(prefix)) == 0 &&
            strstr(cfg->warnings[i], ": warning: ") && strstr(cfg->warnings[i], what))
            return 1;
    return 0;
}

static void dump_warnings(const lf_config_t *cfg)
{
    for (size_t i = 0; i < cfg->nwarnings; i++)
        printf("    %s\n", cfg->warnings[i]);
}

static void test_config_warn_kinds(void)
{
    lf_config_t cfg;
    int rc = load_yaml("model:\n"                                           /* 1 */
                       "  engagement:\n"                                    /* 2 */
                       "    - {name: a, kind: form-submit, points: 1}\n"    /* 3 */
                       "    - {name: b, kind: pageview, points: 1}\n"       /* 4 */
                       "    - {name: c, kind: Form_Submitted, points: 1}\n" /* 5 */
                       "    - {name: d, kind: page, points: 1}\n"           /* 6 */
                       "    - {name: e, kind: track, points: 1}\n"          /* 7 */
                       "    - {name: f, kind: other, points: 1}\n"          /* 8 */
                       "    - {name: g, kind: from_submit, points: 1}\n"    /* 9 */
                       "    - name: h\n"                                    /* 10 */
                       "      kind:\n"                                      /* 11 */
                       "        - email_click\n"                            /* 12 */
                       "        - Email-Opened\n"                           /* 13 */
                       "      points: 1\n"                                  /* 14 */
                       "    - {name: i, kind: sales_accept, points: 20}\n"  /* 15 */
                       "    - {name: j, kind: Lead Rejected, points: 5}\n"  /* 16 */
                       /* Fine: built-in names in any spelling the decoder maps, custom kinds,
                        * negative points on sales feedback. */
                       "    - {name: k, kind: [form_submit, Form Submitted, FORM_SUBMIT], "
                       "points: 1}\n" /* 17 */
                       "    - {name: l, kind: [Unsubscribed, email_unsubscribe, trial_started, "
                       "screen], points: -5}\n"                             /* 18 */
                       "    - {name: m, kind: sales_reject, points: -30}\n" /* 19 */
                       "    - {name: n, points: 1}\n",                      /* 20 */
                       &cfg);
    if (rc != LF_OK) printf("%s", diag_text);
    CHECK_INT(rc, LF_OK);
    CHECK_STR(diag_text, ""); /* warnings are not errors: nothing on the diagnostics stream */
    if (cfg.nwarnings != 10) dump_warnings(&cfg);
    CHECK(has_warning(&cfg, 3, "kind \"form-submit\" is not the built-in form_submit"));
    CHECK(has_warning(&cfg, 3, "write form_submit"));
    CHECK(has_warning(&cfg, 4, "\"pageview\" is not the built-in page_view"));
    CHECK(has_warning(&cfg, 5, "\"Form_Submitted\" is not the built-in form_submit"));
    CHECK(has_warning(&cfg, 6, "page calls arrive as kind page_view"));
    CHECK(has_warning(&cfg, 7, "a track call's kind is its event name"));
    CHECK(has_warning(&cfg, 8, "not a catch-all"));
    CHECK(has_warning(&cfg, 9, "\"from_submit\" is not the built-in form_submit"));
    CHECK(has_warning(&cfg, 13, "\"Email-Opened\" is not the built-in email_open"));
    CHECK(has_warning(&cfg, 15, "+20 points on sales_accept, a sales feedback kind"));
    CHECK(has_warning(&cfg, 16, "+5 points on sales_reject"));
    CHECK_INT(cfg.nwarnings, 10);
    /* In file order, with the column of the kind. */
    CHECK(strncmp(cfg.warnings[0], "t.yaml:3:23: warning: engagement rule \"a\": ", 43) == 0);
    lf_config_free(&cfg);
    CHECK(cfg.warnings == NULL && cfg.nwarnings == 0);
}

static void test_config_warn_model(void)
{
    lf_config_t cfg;
    /* An empty model: no rules at all. */
    CHECK_INT(load_yaml("", &cfg), LF_OK);
    CHECK_INT(cfg.nwarnings, 1);
    CHECK(has_warning(&cfg, 1, "no engagement and no fit rules"));
    lf_config_free(&cfg);
    CHECK_INT(load_yaml("redis: {port: 6380}\n"
                        "model:\n"
                        "  decay: {half_life: 7d}\n"
                        "  engagement: []\n",
                        &cfg),
              LF_OK);
    CHECK(has_warning(&cfg, 2, "no engagement and no fit rules"));
    lf_config_free(&cfg);

    /* Required traits: named by a fit rule, or carried by identify calls as a rule; else a
     * likely typo, with the nearest name. */
    int rc = load_yaml("model:\n"
                       "  stages:\n"
                       "    mql:\n"
                       "      require_traits:\n"
                       "        - company\n"       /* 5: known */
                       "        - email\n"         /* 6: known */
                       "        - compnay\n"       /* 7: typo */
                       "        - segment_score\n" /* 8: a fit rule names it */
                       "        - address.city\n"  /* 9: a nested known trait */
                       "        - Email\n"         /* 10: names match exactly */
                       "        - cost_center\n"   /* 11: nothing names it */
                       "  fit:\n"
                       "    - {name: scored, traits: {segment_score: {min: 5}}, points: 5}\n",
                       &cfg);
    if (rc != LF_OK) printf("%s", diag_text);
    CHECK_INT(rc, LF_OK);
    if (cfg.nwarnings != 3) dump_warnings(&cfg);
    CHECK_INT(cfg.nwarnings, 3);
    CHECK(has_warning(&cfg, 7, "no fit rule names \"compnay\""));
    CHECK(has_warning(&cfg, 7, "did you mean \"company\"?"));
    CHECK(has_warning(&cfg, 10, "no fit rule names \"Email\""));
    CHECK(has_warning(&cfg, 10, "did you mean \"email\"?"));
    CHECK(has_warning(&cfg, 11, "no fit rule names \"cost_center\""));
    lf_config_free(&cfg);

    /* The example file is clean; a file with errors reports no warnings (errors first). */
    CHECK_INT(load_file("deploy/leadflow.yaml", &cfg), LF_OK);
    if (cfg.nwarnings) dump_warnings(&cfg);
    CHECK_INT(cfg.nwarnings, 0);
    lf_config_free(&cfg);
    CHECK_INT(load_yaml("model:\n  engagement:\n    - {name: a, kind: pageview}\n", &cfg), LF_ERR);
    CHECK(strstr(diag_text, "warning") == NULL);
    CHECK(cfg.warnings == NULL);
}

/*---- Secrets ----------------------------------------------------------------------------------*/

#define PEM_BODY "MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQC7VJTUt9Us8cKj"

static void test_config_secret_props(void)
{
    CHECK(lf_config_secret_prop("sasl.password", "x"));
    CHECK(lf_config_secret_prop("ssl.key.password", "x"));
    CHECK(lf_config_secret_prop("ssl.key.pem", "x"));
    CHECK(lf_config_secret_prop("ssl.certificate.pem", "x"));
    CHECK(lf_config_secret_prop("sasl.oauthbearer.client.secret", "x"));
    CHECK(lf_config_secret_prop("sasl.oauthbearer.config", "clientSecret=x"));
    CHECK(lf_config_secret_prop("SASL.PASSWORD", "x"));
    CHECK(lf_config_secret_prop("ssl_ca", "-----BEGIN CERTIFICATE-----\nMII\n"));
    CHECK(!lf_config_secret_prop("security.protocol", "SASL_SSL"));
    CHECK(!lf_config_secret_prop("sasl.username", "leadflow"));
    CHECK(!lf_config_secret_prop("client.id", "lf"));

    lf_config_t cfg;
    CHECK_INT(load_yaml("redis: {password: hunter2, user: lf}\n"
                        "kafka:\n"
                        "  properties:\n"
                        "    security.protocol: SSL\n"
                        "    ssl.key.password: swordfish\n"
                        "    sasl.oauthbearer.client.secret: tr0ub4dor\n"
                        "    ssl.key.pem: |\n"
                        "      -----BEGIN PRIVATE KEY-----\n"
                        "      " PEM_BODY "\n"
                        "      -----END PRIVATE KEY-----\n"
                        "    innocent.name: |\n"
                        "      -----BEGIN CERTIFICATE-----\n"
                        "      " PEM_BODY "\n"
                        "      -----END CERTIFICATE-----\n"
                        "model:\n  fit: [{name: a, traits: {x: {present: true}}, points: 1}]\n",
                        &cfg),
              LF_OK);
    char *buf = summary_of(&cfg);
    CHECK(strstr(buf, "security.protocol=SSL") != NULL);
    CHECK(strstr(buf, "ssl.key.pem=***") != NULL);
    CHECK(strstr(buf, "innocent.name=***") != NULL);
    CHECK(strstr(buf, "user=lf") != NULL);
    CHECK(strstr(buf, "hunter2") == NULL);
    CHECK(strstr(buf, "swordfish") == NULL);
    CHECK(strstr(buf, "tr0ub4dor") == NULL);
    CHECK(strstr(buf, PEM_BODY) == NULL);
    CHECK(strstr(buf, "BEGIN") == NULL);
    free(buf);
    lf_config_free(&cfg);

    /* Errors never quote key material or a password given as a host. */
    CHECK_INT(load_yaml("kafka: \"-----BEGIN PRIVATE KEY-----\\n" PEM_BODY "\"\n", &cfg), LF_ERR);
    CHECK(strstr(diag_text, "kafka: expected a mapping, got a PEM block") != NULL);
    CHECK(strstr(diag_text, PEM_BODY) == NULL);
    CHECK_INT(load_yaml("redis:\n  host: \"lf:hunter2@redis.internal\"\n", &cfg), LF_ERR);
    CHECK(has_diag("t.yaml", 2, "redis.host: a host name or address, not a URL"));
    CHECK(strstr(diag_text, "hunter2") == NULL);
    CHECK_INT(load_yaml("redis: {host: \"redis://:hunter2@r:6379/0\"}\n", &cfg), LF_ERR);
    CHECK(strstr(diag_text, "hunter2") == NULL);
    CHECK_INT(load_yaml("kafka: {bootstrap_servers: \"lf:hunter2@k1:9092\"}\n", &cfg), LF_ERR);
    CHECK(has_diag("t.yaml", 1, "kafka.bootstrap_servers: host:port[,host:port...], not "));
    CHECK(strstr(diag_text, "hunter2") == NULL);
}

/* ${env:NAME} and ${file:PATH} values: resolved at load, in settings and Kafka properties;
 * every error names the reference and never a value. */
static void test_config_secret_refs(void)
{
    char path[] = "/tmp/lf-test-secret-XXXXXX";
    int fd = mkstemp(path);
    CHECK(fd >= 0);
    FILE *sf = fdopen(fd, "w");
    fputs("fil3Secret\n", sf); /* the newline of `echo secret > file` is not part of it */
    fclose(sf);
    setenv("LF_TEST_REDIS_PW", "env5ecret", 1);
    setenv("LF_TEST_PORT", "6390", 1);
    unsetenv("LF_TEST_UNSET");

    char yaml[1024];
    snprintf(yaml, sizeof(yaml),
             "redis: {password: \"${env:LF_TEST_REDIS_PW}\", port: \"${env:LF_TEST_PORT}\","
             " user: \"$${literal}\"}\n"
             "kafka:\n  properties:\n    sasl.password: \"${file:%s}\"\n"
             "model:\n  fit: [{name: a, traits: {x: {present: true}}, points: 1}]\n",
             path);
    lf_config_t cfg;
    CHECK_INT(load_yaml(yaml, &cfg), LF_OK);
    CHECK_STR(cfg.redis_password, "env5ecret");
    CHECK_INT(cfg.redis_port, 6390);
    CHECK_STR(cfg.redis_user, "${literal}");
    CHECK_INT((int)cfg.nkafka_props, 1);
    CHECK_STR(cfg.kafka_props[0].value, "fil3Secret");
    lf_config_free(&cfg);

    /* Unset variable, missing file, malformed reference: one error each, with its line. */
    CHECK_INT(load_yaml("redis:\n  password: ${env:LF_TEST_UNSET}\n"
                        "kafka:\n  properties:\n    sasl.password: ${file:/nonexistent/pw}\n"
                        "    ssl.key.password: ${vault:x}\n",
                        &cfg),
              LF_ERR);
    CHECK(has_diag("t.yaml", 2, "redis.password: environment variable LF_TEST_UNSET is not set"));
    CHECK(has_diag("t.yaml", 5, "kafka.properties.sasl.password: cannot read /nonexistent/pw"));
    CHECK(has_diag("t.yaml", 6, "must be ${env:NAME} or ${file:PATH}"));
    CHECK_INT(diag_lines(), 3);

    /* A resolved value that is not valid: the reference is named, a secret's value is not. */
    setenv("LF_TEST_PORT", "sixty", 1);
    CHECK_INT(load_yaml("redis: {port: \"${env:LF_TEST_PORT}\"}\n", &cfg), LF_ERR);
    CHECK(has_diag("t.yaml", 1, "redis.port: the value of ${env:LF_TEST_PORT} is not valid"));
    setenv("LF_TEST_REDIS_PW", "", 1);
    CHECK_INT(load_yaml("redis: {host: \"${env:LF_TEST_REDIS_PW}\"}\n", &cfg), LF_ERR);
    CHECK(has_diag("t.yaml", 1, "redis.host: the value of ${env:LF_TEST_REDIS_PW} is not valid"));
    CHECK(strstr(diag_text, "fil3Secret") == NULL && strstr(diag_text, "env5ecret") == NULL);

    /* A file with a NUL byte, or of more than 1 MiB, is refused. */
    sf = fopen(path, "wb");
    fwrite("a\0b", 1, 3, sf);
    fclose(sf);
    snprintf(yaml, sizeof(yaml), "redis: {password: \"${file:%s}\"}\n", path);
    CHECK_INT(load_yaml(yaml, &cfg), LF_ERR);
    CHECK(has_diag("t.yaml", 1, "holds a NUL byte"));
    sf = fopen(path, "wb");
    for (int i = 0; i < 1100; i++) {
        static char kib[1024];
        fwrite(kib + 1, 1, sizeof(kib) - 1, sf);
        fputc('x', sf);
    }
    fclose(sf);
    CHECK_INT(load_yaml(yaml, &cfg), LF_ERR);
    CHECK(has_diag("t.yaml", 1, "larger than 1048576 bytes"));
    /* ids.hmac_key: a secret (never printed), at least 16 bytes; email and phone are then
     * stored hashed, so a fit rule may only test their presence. */
    CHECK_INT(load_yaml("ids: {hmac_key: 0123456789abcdef0123}\n"
                        "model:\n  fit:\n    - {name: biz, traits: {email: {prefix: [a]}}, "
                        "points: 1}\n    - {name: reach, traits: {phone: {present: true}}, "
                        "points: 1}\n",
                        &cfg),
              LF_ERR);
    CHECK(has_diag("t.yaml", 1, "fit rule \"biz\" (line 4) tests the value of trait email"));
    CHECK_INT(diag_lines(), 1);
    CHECK_INT(load_yaml("ids: {hmac_key: short-key}\n", &cfg), LF_ERR);
    CHECK(has_diag("t.yaml", 1, "ids.hmac_key: shorter than 16 bytes"));
    CHECK(strstr(diag_text, "short-key") == NULL);
    CHECK_INT(load_yaml("ids: {hmac_key: 0123456789abcdef0123}\n"
                        "model:\n  fit: [{name: a, traits: {x: {present: true}}, points: 1}]\n",
                        &cfg),
              LF_OK);
    char *sum = summary_of(&cfg);
    CHECK(strstr(sum, "hmac_key=***") != NULL && strstr(sum, "0123456789abcdef0123") == NULL);
    free(sum);
    lf_config_free(&cfg);
    unlink(path);
    unsetenv("LF_TEST_REDIS_PW");
    unsetenv("LF_TEST_PORT");
}

void suite_config(void)
{
    LF_RUN(test_config_defaults);
    LF_RUN(test_config_empty_file);
    LF_RUN(test_config_durations);
    LF_RUN(test_config_deploy_file);
    LF_RUN(test_config_errors_each);
    LF_RUN(test_config_three_mistakes);
    LF_RUN(test_config_file_not_found);
    LF_RUN(test_config_yaml_syntax);
    LF_RUN(test_config_kafka_properties);
    LF_RUN(test_config_load_string_inline);
    LF_RUN(test_config_tracked_traits);
    LF_RUN(test_config_too_many_caps);
    LF_RUN(test_config_version_hash);
    LF_RUN(test_config_aliases);
    LF_RUN(test_config_hostile);
    LF_RUN(test_config_summary);
    LF_RUN(test_config_recycling);
    LF_RUN(test_config_recycling_errors);
    LF_RUN(test_config_warn_kinds);
    LF_RUN(test_config_warn_model);
    LF_RUN(test_config_secret_props);
    LF_RUN(test_config_secret_refs);
}
