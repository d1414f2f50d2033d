/* `leadflow inspect LEAD [--at TIME]`: one lead as the processor sees it — its score at a
 * time split into fit and decayed engagement, the rules behind both, its stage and history.
 * Read-only: GET lf:alias:{id}, HGETALL lf:lead:{id} (stage history included). */
#include <cjson/cJSON.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "leadflow/commands.h"
#include "leadflow/alloc.h"
#include "cli_int.h"
#include "leadflow/event.h"
#include "leadflow/keys.h"
#include "leadflow/lead.h"
#include "leadflow/lead_codec.h"
#include "leadflow/score.h"

static const char lf_inspect_usage[] =
    "usage: leadflow inspect LEAD_ID [--at TIME] [-c FILE] [--redis HOST:PORT] [--json]\n"
    "  One lead: its score at TIME split into fit and decayed engagement, grade, stage and\n"
    "  since when, the rules behind the score, caps in use, first/last touch and the stage\n"
    "  history. LEAD_ID is a userId, or an anonymousId (shown: the lead it was linked to).\n"
    "  --at TIME          ISO-8601, epoch milliseconds or \"now\"; default: the lead's last\n"
    "                     event time (scores run on event time)\n"
    "  -c, --config FILE  rules file (default: $LEADFLOW_CONFIG, else ./leadflow.yaml)\n"
    "  --redis HOST:PORT  override the rules file's redis.host / redis.port\n"
    "  --json             one JSON object\n";

/* What was read for one lead. */
typedef struct {
    const char *query; /* the id asked for */
    const char *id;    /* the lead shown: query, or the lead it was linked to */
    int linked;        /* query is an anonymousId linked to id */
    int visitor_left;  /* the linked visitor still has its own hash */
    redisReply *hash;  /* HGETALL */
    lf_lead_t lead;
    int64_t at_ms, now_ms; /* the time asked for, and wall clock */
    int at_given;
} lf_inspect_t;

static const char *const lf_grade_names[] = {"L1", "L1", "L2", "L3"};

/*---- Reading ------------------------------------------------------------------------------*/

/* HGETALL of one lead. */
static int lf_inspect_fetch(lf_cli_t *cli, const char *id, redisReply **reply)
{
    char key[LF_KEY_MAX];
    lf_key_lead(key, sizeof(key), cli->cfg.redis_prefix, id, strlen(id));
    redisAppendCommand(cli->redis, "HGETALL %s", key);
    return lf_cli_replies(cli, reply, 1, "HGETALL of the lead");
}

/* Resolve the id (alias first: a visitor that identified is shown as its lead) and read. */
static int lf_inspect_load(lf_cli_t *cli, lf_inspect_t *in, char *target, size_t cap)
{
    redisReply *r[2];
    char key[LF_KEY_MAX];
    const char *p = cli->cfg.redis_prefix;
    int rc;
    lf_key_alias(key, sizeof(key), p, in->query, strlen(in->query));
    redisAppendCommand(cli->redis, "GET %s", key);
    lf_key_lead(key, sizeof(key), p, in->query, strlen(in->query));
    redisAppendCommand(cli->redis, "HGETALL %s", key);
    if ((rc = lf_cli_replies(cli, r, 2, "reading the lead"))) return rc;

    in->id = in->query;
    if (r[0]->type == REDIS_REPLY_STRING && r[0]->len > 0 &&
        !(r[0]->len == strlen(in->query) && memcmp(r[0]->str, in->query, r[0]->len) == 0)) {
        lf_cli_reply_str(r[0], target, cap);
        in->id = target;
        in->linked = 1;
        in->visitor_left = r[1]->elements > 0;
        lf_cli_free_replies(r, 2);
        return lf_inspect_fetch(cli, target, &in->hash);
    }
    freeReplyObject(r[0]);
    in->hash = r[1];
    return 0;
}

/* lf_lead_decode wants string views of the HGETALL pairs. */
static int lf_inspect_decode(lf_cli_t *cli, lf_inspect_t *in, lf_err_t *err)
{
    size_t n = in->hash->elements / 2;
    lf_str_t *f = lf_calloc(n ? n : 1, sizeof(*f)), *v = lf_calloc(n ? n : 1, sizeof(*v));
    for (size_t i = 0; i < n; i++) {
        const redisReply *kf = in->hash->element[2 * i], *kv = in->hash->element[2 * i + 1];
        f[i] = (lf_str_t){kf->str ? kf->str : "", kf->str ? (uint32_t)kf->len : 0};
        v[i] = (lf_str_t){kv->str ? kv->str : "", kv->str ? (uint32_t)kv->len : 0};
    }
    int rc = lf_lead_decode(&in->lead, lf_str_from(in->id), f, v, n, &cli->cfg.model, err);
    lf_free(f);
    lf_free(v);
    return rc;
}

/*---- What the model says about the lead ---------------------------------------------------*/

static const lf_trait_t *lf_inspect_trait(const lf_lead_t *l, const lf_model_t *m, const char *name)
{
    for (int i = 0; i < l->ntraits; i++)
        if (l->traits[i].idx < m->ntracked_traits &&
            strcmp(m->tracked_traits[l->traits[i].idx], name) == 0)
            return &l->traits[i];
    return NULL;
}

/* The same test src/lead.c makes when it computes fit: every condition on the kept traits. */
static int lf_inspect_fit_holds(const lf_lead_t *l, const lf_model_t *m, const lf_fit_rule_t *r)
{
    for (size_t i = 0; i < r->nconds; i++) {
        const lf_cond_t *c = &r->conds[i];
        const lf_trait_t *tr = lf_inspect_trait(l, m, c->field);
        if (!lf_cond_holds(c, tr && tr->val[0] ? tr->val : NULL, tr ? strlen(tr->val) : 0,
                           tr ? tr->num : 0, tr ? tr->is_num : 0))
            return 0;
    }
    return 1;
}

/* Events the lead has of the rule's kinds (all events for a rule of any kind). A rule may
 * also test path, UTM or properties, so this bounds what it matched, no more. */
static uint64_t lf_inspect_rule_events(const lf_lead_t *l, const lf_engagement_rule_t *r)
{
    if (r->nkinds == 0) return l->events;
    uint64_t n = 0;
    for (size_t i = 0; i < r->nkinds; i++)
        n += l->counters[lf_kind_from_name(lf_str_from(r->kinds[i]))];
    return n;
}

static void lf_inspect_kinds(const lf_engagement_rule_t *r, char *buf, size_t cap)
{
    size_t o = 0;
    buf[0] = '\0';
    if (r->nkinds == 0) snprintf(buf, cap, "any");
    for (size_t i = 0; i < r->nkinds && o < cap; i++)
        o += (size_t)snprintf(buf + o, cap - o, "%s%s", i ? "," : "", r->kinds[i]);
}

/* A history field's value, "seq|from|to|reason|at|score" (lead_codec.h). */
typedef struct {
    char seq[24], from[24], to[24], reason[32], at[24], score[40];
} lf_hist_entry_t;

static int lf_inspect_hist_parse(const redisReply *e, lf_hist_entry_t *h)
{
    char *fields[6] = {h->seq, h->from, h->to, h->reason, h->at, h->score};
    size_t caps[6] = {sizeof(h->seq),    sizeof(h->from), sizeof(h->to),
                      sizeof(h->reason), sizeof(h->at),   sizeof(h->score)};
    const char *p = e->str, *end = e->str + e->len;
    if (e->type != REDIS_REPLY_STRING) return LF_ERR;
    for (int i = 0; i < 6; i++) {
        const char *bar = i < 5 ? memchr(p, '|', (size_t)(end - p)) : end;
        if (!bar) return LF_ERR;
        size_t n = (size_t)(bar - p) < caps[i] - 1 ? (size_t)(bar - p) : caps[i] - 1;
        memcpy(fields[i], p, n);
        fields[i][n] = '\0';
        p = bar < end ? bar + 1 : end;
    }
    return LF_OK;
}

static int lf_hist_cmp(const void *x, const void *y)
{
    unsigned long long a = strtoull(((const lf_hist_entry_t *)x)->seq, NULL, 10);
    unsigned long long b = strtoull(((const lf_hist_entry_t *)y)->seq, NULL, 10);
    return a < b ? -1 : a > b;
}

/* The history fields of the hash, oldest first; returns how many (at most LF_HISTORY_KEEP). */
static size_t lf_inspect_history(const redisReply *hash, lf_hist_entry_t *out)
{
    size_t n = 0;
    for (size_t i = 0; i + 1 < hash->elements && n < LF_HISTORY_KEEP; i += 2) {
        const redisReply *f = hash->element[i];
        if (f->type != REDIS_REPLY_STRING ||
            !lf_is_history_field((lf_str_t){f->str, (uint32_t)f->len}))
            continue;
        if (lf_inspect_hist_parse(hash->element[i + 1], &out[n]) == LF_OK) n++;
    }
    qsort(out, n, sizeof(*out), lf_hist_cmp);
    return n;
}

/*---- Human output -------------------------------------------------------------------------*/

/* Ids, UTM values and traits come from events: a newline or an escape sequence in one would
 * break the report (or forge lines), so the human output shows them escaped (--json: exact).
 * Each call needs its own buffer. */
typedef char lf_esc_buf_t[LF_ESCAPED_CAP(256)];

static const char *lf_esc(const char *p, size_t n, char *buf)
{
    return lf_str_escape((lf_str_t){p, (uint32_t)n}, buf, sizeof(lf_esc_buf_t));
}

static const char *lf_esc_c(const char *s, char *buf)
{
    return lf_esc(s, strlen(s), buf);
}

#define LF_KV(label, ...)                                                                          \
    do {                                                                                           \
        printf("  %-13s", label);                                                                  \
        printf(__VA_ARGS__);                                                                       \
        putchar('\n');                                                                             \
    } while (0)

static void lf_inspect_touch_line(const char *label, const lf_touch_t *t)
{
    char at[40];
    lf_esc_buf_t e1, e2, e3;
    if (!t->at_ms) {
        LF_KV(label, "-");
        return;
    }
    LF_KV(label, "source %s, medium %s, campaign %s, at %s",
          t->source[0] ? lf_esc_c(t->source, e1) : "-",
          t->medium[0] ? lf_esc_c(t->medium, e2) : "-",
          t->campaign[0] ? lf_esc_c(t->campaign, e3) : "-",
          lf_cli_fmt_time(t->at_ms, at, sizeof(at)));
}

static void lf_inspect_print(lf_cli_t *cli, const lf_inspect_t *in)
{
    const lf_model_t *m = &cli->cfg.model;
    const lf_lead_t *l = &in->lead;
    char a[64], b[64], c[64], d[64];
    char version[128];
    lf_esc_buf_t e1, e2;

    double eng_at = lf_lead_engagement_at(l, in->at_ms, m);
    double eng_now = lf_lead_engagement_at(l, in->now_ms, m);

    printf("lead %s%s\n", lf_esc_c(in->id, e1),
           l->anonymous ? " (a visitor: anonymousId, not linked yet)" : "");
    if (in->linked)
        printf("  %s is an anonymousId linked to this lead%s\n", lf_esc_c(in->query, e1),
               in->visitor_left ? " (its visitor record still exists)" : "");
    LF_KV("score", "%.2f = fit %.2f + engagement %.2f, at %s (%s)", lf_cli_num(l->fit + eng_at),
          lf_cli_num(l->fit), lf_cli_num(eng_at), lf_cli_fmt_time(in->at_ms, a, sizeof(a)),
          in->at_given ? "--at" : "last event time");
    if (in->at_ms < l->t_ms)
        LF_KV("", "(before its last engagement update at %s: engagement as of then)",
              lf_cli_fmt_time(l->t_ms, a, sizeof(a)));
    LF_KV("grade", "%s", lf_grade_names[lf_grade(l->fit + eng_at, m)]);
    LF_KV("at now", "%.2f = fit %.2f + engagement %.2f, grade %s, at %s (wall clock)",
          lf_cli_num(l->fit + eng_now), lf_cli_num(l->fit), lf_cli_num(eng_now),
          lf_grade_names[lf_grade(l->fit + eng_now, m)], lf_cli_fmt_time(in->now_ms, a, sizeof(a)));
    LF_KV("stored", "engagement %.2f at %s; half-life %s", lf_cli_num(l->eng),
          lf_cli_fmt_time(l->t_ms, a, sizeof(a)),
          lf_cli_fmt_duration((int64_t)m->half_life_ms, b, sizeof(b)));
    LF_KV("stage", "%s since %s (seq %" PRIu64 ")", lf_stage_name(l->stage),
          lf_cli_fmt_time(l->stage_at_ms, a, sizeof(a)), l->seq);
    LF_KV("events", "%s", lf_cli_fmt_count((long long)l->events, a, sizeof(a)));
    LF_KV("first seen", "%s", lf_cli_fmt_time(l->first_seen_ms, a, sizeof(a)));
    LF_KV("last seen", "%s", lf_cli_fmt_time(l->last_seen_ms, a, sizeof(a)));
    lf_inspect_touch_line("first touch", &l->first_touch);
    lf_inspect_touch_line("last touch", &l->last_touch);
    lf_cli_reply_str(lf_cli_hash_get(in->hash, "rules_version"), version, sizeof(version));
    if (m->version && strcmp(version, m->version) != 0)
        LF_KV("rules", "%s (the rules file loaded here is %s)", version[0] ? version : "-",
              m->version);
    else
        LF_KV("rules", "%s", version[0] ? version : "-");

    /* Traits: every tr.* field, also those the loaded rules no longer use. */
    int any = 0;
    for (size_t i = 0; i + 1 < in->hash->elements; i += 2) {
        const redisReply *f = in->hash->element[i], *v = in->hash->element[i + 1];
        if (f->len < 4 || memcmp(f->str, "tr.", 3) != 0) continue;
        if (!any++) printf("\ntraits\n");
        printf("  %-13s%s\n", lf_esc(f->str + 3, f->len - 3, e1),
               v->str ? lf_esc(v->str, v->len, e2) : "");
    }

    /* Fit. */
    double fit_sum = 0;
    lf_table_t t;
    static const char *const fit_head[] = {"RULE", "POINTS"};
    lf_table_init(&t, 2, fit_head, 1u << 1);
    for (size_t i = 0; i < m->nfit; i++) {
        if (!lf_inspect_fit_holds(l, m, &m->fit[i])) continue;
        fit_sum += m->fit[i].points;
        snprintf(a, sizeof(a), "%g", m->fit[i].points);
        lf_table_add(&t, (const char *const[]){m->fit[i].name, a});
    }
    printf("\nfit rules that hold (fit %.2f)\n", lf_cli_num(l->fit));
    if (t.nrows)
        lf_table_print(&t, stdout, 2);
    else
        printf("  none\n");
    if (fit_sum != l->fit)
        printf("  note: these add up to %.2f under the loaded rules; the stored fit is from the "
               "rules of its last update\n",
               fit_sum);
    lf_table_free(&t);

    /* Engagement. */
    static const char *const eng_head[] = {"RULE", "KINDS", "EVENTS", "POINTS", "CAP"};
    lf_table_init(&t, 5, eng_head, (1u << 2) | (1u << 3));
    for (size_t i = 0; i < m->neng; i++) {
        const lf_engagement_rule_t *r = &m->eng[i];
        uint64_t n = lf_inspect_rule_events(l, r);
        if (!n) continue;
        char kinds[256];
        lf_inspect_kinds(r, kinds, sizeof(kinds));
        lf_cli_fmt_count((long long)n, a, sizeof(a));
        snprintf(b, sizeof(b), "%g", r->points);
        if (r->cap_per_ms > 0)
            snprintf(c, sizeof(c), "%g per %s", r->cap_points,
                     lf_cli_fmt_duration(r->cap_per_ms, d, sizeof(d)));
        else
            snprintf(c, sizeof(c), "-");
        lf_table_add(&t, (const char *const[]){r->name, kinds, a, b, c});
    }
    printf("\nengagement rules with events of their kinds (engagement %.2f at %s)\n",
           lf_cli_num(eng_at), lf_cli_fmt_time(in->at_ms, a, sizeof(a)));
    if (t.nrows)
        lf_table_print(&t, stdout, 2);
    else
        printf("  none\n");
    lf_table_free(&t);

    /* Counters: the n.* fields as stored. */
    any = 0;
    for (size_t i = 0; i + 1 < in->hash->elements; i += 2) {
        const redisReply *f = in->hash->element[i], *v = in->hash->element[i + 1];
        if (f->len < 3 || memcmp(f->str, "n.", 2) != 0) continue;
        printf("%s%s %s", any++ ? ", " : "\nevents by kind\n  ", lf_esc(f->str + 2, f->len - 2, e1),
               v->str ? lf_esc(v->str, v->len, e2) : "");
    }
    if (any) putchar('\n');

    /* Caps. */
    static const char *const cap_head[] = {"RULE", "WINDOW START", "GRANTED", "CAP"};
    lf_table_init(&t, 4, cap_head, 1u << 2);
    for (int i = 0; i < l->ncaps; i++) {
        const lf_cap_use_t *cu = &l->caps[i];
        if (cu->rule >= m->neng) continue;
        const lf_engagement_rule_t *r = &m->eng[cu->rule];
        snprintf(c, sizeof(c), "%g per %s", r->cap_points,
                 lf_cli_fmt_duration(r->cap_per_ms, d, sizeof(d)));
        for (int w = 0; w < cu->n; w++) {
            lf_cli_fmt_time(cu->window[w] * r->cap_per_ms, a, sizeof(a));
            snprintf(b, sizeof(b), "%g", cu->granted[w]);
            lf_table_add(&t, (const char *const[]){r->name, a, b, c});
        }
    }
    if (t.nrows) {
        printf("\ncaps in use\n");
        lf_table_print(&t, stdout, 2);
    }
    lf_table_free(&t);

    /* History. */
    static const char *const hist_head[] = {"SEQ", "AT", "FROM", "TO", "REASON", "SCORE"};
    lf_table_init(&t, 6, hist_head, (1u << 0) | (1u << 5));
    lf_hist_entry_t hist[LF_HISTORY_KEEP];
    size_t nhist = lf_inspect_history(in->hash, hist);
    for (size_t i = 0; i < nhist; i++) {
        const lf_hist_entry_t *h = &hist[i];
        char score[40];
        int64_t at = strtoll(h->at, NULL, 10);
        snprintf(score, sizeof(score), "%.2f", lf_cli_num(strtod(h->score, NULL)));
        lf_table_add(&t, (const char *const[]){h->seq, lf_cli_fmt_time(at, a, sizeof(a)), h->from,
                                               h->to, h->reason, score});
    }
    printf("\nstage history\n");
    if (t.nrows)
        lf_table_print(&t, stdout, 2);
    else
        printf("  none\n");
    lf_table_free(&t);
}

/*---- JSON output --------------------------------------------------------------------------*/

static cJSON *lf_json_touch(const lf_touch_t *t)
{
    if (!t->at_ms) return cJSON_CreateNull();
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "source", t->source);
    cJSON_AddStringToObject(o, "medium", t->medium);
    cJSON_AddStringToObject(o, "campaign", t->campaign);
    lf_cli_json_time(o, "at", t->at_ms);
    return o;
}

static cJSON *lf_inspect_json(lf_cli_t *cli, const lf_inspect_t *in)
{
    const lf_model_t *m = &cli->cfg.model;
    const lf_lead_t *l = &in->lead;
    char buf[256];
    cJSON *o = cJSON_CreateObject(), *x, *arr;

    double eng_at = lf_lead_engagement_at(l, in->at_ms, m);
    double eng_now = lf_lead_engagement_at(l, in->now_ms, m);

    cJSON_AddStringToObject(o, "query", in->query);
    cJSON_AddStringToObject(o, "id", in->id);
    if (in->linked)
        cJSON_AddStringToObject(o, "linked_from", in->query);
    else
        cJSON_AddNullToObject(o, "linked_from");
    cJSON_AddBoolToObject(o, "anonymous", l->anonymous);
    lf_cli_json_time(o, "at", in->at_ms);
    cJSON_AddStringToObject(o, "at_source", in->at_given ? "option" : "last_seen");
    cJSON_AddNumberToObject(o, "score", l->fit + eng_at);
    cJSON_AddNumberToObject(o, "fit", l->fit);
    cJSON_AddNumberToObject(o, "engagement", eng_at);
    cJSON_AddStringToObject(o, "grade", lf_grade_names[lf_grade(l->fit + eng_at, m)]);

    x = cJSON_AddObjectToObject(o, "now");
    lf_cli_json_time(x, "at", in->now_ms);
    cJSON_AddNumberToObject(x, "score", l->fit + eng_now);
    cJSON_AddNumberToObject(x, "engagement", eng_now);
    cJSON_AddStringToObject(x, "grade", lf_grade_names[lf_grade(l->fit + eng_now, m)]);

    x = cJSON_AddObjectToObject(o, "stored");
    cJSON_AddNumberToObject(x, "eng", l->eng);
    lf_cli_json_time(x, "t", l->t_ms);
    cJSON_AddNumberToObject(x, "score", lf_cli_reply_double(lf_cli_hash_get(in->hash, "score"), 0));
    cJSON_AddStringToObject(x, "grade",
                            lf_cli_reply_str(lf_cli_hash_get(in->hash, "grade"), buf, sizeof(buf)));
    cJSON_AddNumberToObject(o, "half_life_ms", m->half_life_ms);

    cJSON_AddStringToObject(o, "stage", lf_stage_name(l->stage));
    lf_cli_json_time(o, "stage_at", l->stage_at_ms);
    cJSON_AddNumberToObject(o, "seq", (double)l->seq);
    cJSON_AddNumberToObject(o, "events", (double)l->events);
    lf_cli_json_time(o, "first_seen", l->first_seen_ms);
    lf_cli_json_time(o, "last_seen", l->last_seen_ms);
    cJSON_AddItemToObject(o, "first_touch", lf_json_touch(&l->first_touch));
    cJSON_AddItemToObject(o, "last_touch", lf_json_touch(&l->last_touch));
    cJSON_AddStringToObject(
        o, "rules_version",
        lf_cli_reply_str(lf_cli_hash_get(in->hash, "rules_version"), buf, sizeof(buf)));
    if (m->version)
        cJSON_AddStringToObject(o, "loaded_rules_version", m->version);
    else
        cJSON_AddNullToObject(o, "loaded_rules_version");

    cJSON *counters = cJSON_AddObjectToObject(o, "counters");
    cJSON *traits = cJSON_AddObjectToObject(o, "traits");
    for (size_t i = 0; i + 1 < in->hash->elements; i += 2) {
        const redisReply *f = in->hash->element[i], *v = in->hash->element[i + 1];
        if (f->len > 2 && memcmp(f->str, "n.", 2) == 0) {
            snprintf(buf, sizeof(buf), "%.*s", (int)f->len - 2, f->str + 2);
            cJSON_AddNumberToObject(counters, buf, (double)lf_cli_reply_i64(v, 0));
        } else if (f->len > 3 && memcmp(f->str, "tr.", 3) == 0) {
            char val[256];
            snprintf(buf, sizeof(buf), "%.*s", (int)f->len - 3, f->str + 3);
            cJSON_AddStringToObject(traits, buf, lf_cli_reply_str(v, val, sizeof(val)));
        }
    }

    double fit_sum = 0;
    arr = cJSON_AddArrayToObject(o, "fit_rules");
    for (size_t i = 0; i < m->nfit; i++) {
        if (!lf_inspect_fit_holds(l, m, &m->fit[i])) continue;
        fit_sum += m->fit[i].points;
        x = cJSON_CreateObject();
        cJSON_AddStringToObject(x, "name", m->fit[i].name);
        cJSON_AddNumberToObject(x, "points", m->fit[i].points);
        cJSON_AddItemToArray(arr, x);
    }
    cJSON_AddNumberToObject(o, "fit_rules_sum", fit_sum);

    arr = cJSON_AddArrayToObject(o, "engagement_rules");
    for (size_t i = 0; i < m->neng; i++) {
        const lf_engagement_rule_t *r = &m->eng[i];
        uint64_t n = lf_inspect_rule_events(l, r);
        if (!n) continue;
        x = cJSON_CreateObject();
        cJSON_AddStringToObject(x, "name", r->name);
        cJSON *kinds = cJSON_AddArrayToObject(x, "kinds");
        for (size_t k = 0; k < r->nkinds; k++)
            cJSON_AddItemToArray(kinds, cJSON_CreateString(r->kinds[k]));
        cJSON_AddNumberToObject(x, "events", (double)n);
        cJSON_AddNumberToObject(x, "points", r->points);
        if (r->cap_per_ms > 0) {
            cJSON_AddNumberToObject(x, "cap_points", r->cap_points);
            cJSON_AddNumberToObject(x, "cap_per_ms", (double)r->cap_per_ms);
        }
        cJSON_AddItemToArray(arr, x);
    }

    arr = cJSON_AddArrayToObject(o, "caps");
    for (int i = 0; i < l->ncaps; i++) {
        const lf_cap_use_t *cu = &l->caps[i];
        if (cu->rule >= m->neng) continue;
        const lf_engagement_rule_t *r = &m->eng[cu->rule];
        x = cJSON_CreateObject();
        cJSON_AddStringToObject(x, "rule", r->name);
        cJSON_AddNumberToObject(x, "cap_points", r->cap_points);
        cJSON_AddNumberToObject(x, "cap_per_ms", (double)r->cap_per_ms);
        cJSON *wins = cJSON_AddArrayToObject(x, "windows");
        for (int w = 0; w < cu->n; w++) {
            cJSON *wo = cJSON_CreateObject();
            lf_cli_json_time(wo, "start", cu->window[w] * r->cap_per_ms);
            cJSON_AddNumberToObject(wo, "granted", cu->granted[w]);
            cJSON_AddItemToArray(wins, wo);
        }
        cJSON_AddItemToArray(arr, x);
    }

    arr = cJSON_AddArrayToObject(o, "history");
    lf_hist_entry_t hist[LF_HISTORY_KEEP];
    size_t nhist = lf_inspect_history(in->hash, hist);
    for (size_t i = 0; i < nhist; i++) {
        const lf_hist_entry_t *h = &hist[i];
        x = cJSON_CreateObject();
        cJSON_AddNumberToObject(x, "seq", strtod(h->seq, NULL));
        cJSON_AddStringToObject(x, "from", h->from);
        cJSON_AddStringToObject(x, "to", h->to);
        cJSON_AddStringToObject(x, "reason", h->reason);
        lf_cli_json_time(x, "at", strtoll(h->at, NULL, 10));
        cJSON_AddNumberToObject(x, "score", strtod(h->score, NULL));
        cJSON_AddItemToArray(arr, x);
    }
    return o;
}

/*---- The command --------------------------------------------------------------------------*/

int lf_cmd_inspect(int argc, char **argv)
{
    lf_cli_t cli;
    lf_inspect_t in;
    char target[LF_ID_MAX + 1];
    const char *at_arg = NULL;
    lf_err_t err = {0};
    int rc;

    memset(&in, 0, sizeof(in));
    lf_cli_init(&cli, argc > 0 ? argv[0] : "inspect", lf_inspect_usage);
    for (int i = 1; i < argc; i++) {
        int bad = 0;
        const char *v;
        switch (lf_cli_option(&cli, argc, argv, &i)) {
        case LF_CLI_OPT_TAKEN:
            continue;
        case LF_CLI_OPT_HELP:
            return LF_CLI_EXIT_OK;
        case LF_CLI_OPT_ERROR:
            return LF_CLI_EXIT_USAGE;
        default:
            break;
        }
        if ((v = lf_cli_value(&cli, argc, argv, &i, "--at", &bad)))
            at_arg = v;
        else if (bad)
            return LF_CLI_EXIT_USAGE;
        else if (argv[i][0] == '-' && argv[i][1])
            return lf_cli_usage_error(&cli, "unknown option %s", argv[i]);
        else if (in.query)
            return lf_cli_usage_error(&cli, "one lead at a time (got %s and %s)", in.query,
                                      argv[i]);
        else
            in.query = argv[i];
    }
    if (!in.query || !in.query[0]) return lf_cli_usage_error(&cli, "which lead? (LEAD_ID)");
    if (strlen(in.query) > LF_ID_MAX)
        return lf_cli_usage_error(&cli, "a lead id is at most %d bytes", LF_ID_MAX);
    if (at_arg) {
        if (lf_cli_parse_time(at_arg, &in.at_ms) != LF_OK)
            return lf_cli_usage_error(&cli, "--at wants ISO-8601, epoch ms or \"now\", not \"%s\"",
                                      at_arg);
        in.at_given = 1;
    }

    if ((rc = lf_cli_open(&cli))) goto out;
    if ((rc = lf_inspect_load(&cli, &in, target, sizeof(target)))) goto out;

    if (in.hash->elements == 0) {
        lf_esc_buf_t e1, e2;
        const char *q = lf_esc_c(in.query, e1), *id = lf_esc_c(in.id, e2);
        if (in.linked)
            lf_cli_error(&cli, "%s is linked to lead %s, which has no record (%slead:{%s})", q, id,
                         cli.cfg.redis_prefix, id);
        else
            lf_cli_error(&cli, "unknown lead %s: no %slead:{%s} and no alias", q,
                         cli.cfg.redis_prefix, q);
        rc = LF_CLI_EXIT_NOTFOUND;
        goto out;
    }
    if (lf_inspect_decode(&cli, &in, &err) != LF_OK) {
        lf_cli_error(&cli, "%s", err.msg);
        rc = LF_CLI_EXIT_NOTFOUND;
        goto out;
    }
    in.now_ms = lf_cli_now_ms();
    if (!in.at_given) {
        in.at_ms = in.lead.last_seen_ms ? in.lead.last_seen_ms : in.lead.t_ms;
        if (!in.at_ms) in.at_ms = in.now_ms;
    }

    if (cli.json)
        lf_cli_json_print(lf_inspect_json(&cli, &in));
    else
        lf_inspect_print(&cli, &in);
    rc = LF_CLI_EXIT_OK;
out:
    if (in.hash) freeReplyObject(in.hash);
    lf_cli_close(&cli);
    return rc;
}
