/* `leadflow inspect --json`: the lead as one JSON object, values exact (not escaped), the
 * same parts as the text report. */
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli_inspect_int.h"
#include "leadflow/score.h"

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

/* The lead asked for and its score at the time asked for, at now, and as stored. */
static void lf_inspect_json_score(cJSON *o, const lf_model_t *m, const lf_inspect_t *in)
{
    const lf_lead_t *l = &in->lead;
    char buf[256];
    double eng_at = lf_lead_engagement_at(l, in->at_ms, m);
    double eng_now = lf_lead_engagement_at(l, in->now_ms, m);

    cJSON_AddStringToObject(o, "query", in->raw ? in->raw : in->query);
    if (in->raw) cJSON_AddStringToObject(o, "hashed_id", in->query);
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
    cJSON_AddStringToObject(o, "grade", lf_cli_grade(l->fit + eng_at, m));

    cJSON *x = cJSON_AddObjectToObject(o, "now");
    lf_cli_json_time(x, "at", in->now_ms);
    cJSON_AddNumberToObject(x, "score", l->fit + eng_now);
    cJSON_AddNumberToObject(x, "engagement", eng_now);
    cJSON_AddStringToObject(x, "grade", lf_cli_grade(l->fit + eng_now, m));

    x = cJSON_AddObjectToObject(o, "stored");
    cJSON_AddNumberToObject(x, "eng", l->eng);
    lf_cli_json_time(x, "t", l->t_ms);
    cJSON_AddNumberToObject(x, "score", lf_inspect_stored_score(in, buf, sizeof(buf), m));
    cJSON_AddStringToObject(x, "grade", buf);
    cJSON_AddNumberToObject(o, "half_life_ms", m->half_life_ms);
}

/* Stage, counts, first/last seen and touch, the rules versions. */
static void lf_inspect_json_record(cJSON *o, const lf_model_t *m, const lf_inspect_t *in)
{
    const lf_lead_t *l = &in->lead;
    cJSON_AddStringToObject(o, "stage", lf_stage_name(l->stage));
    lf_cli_json_time(o, "stage_at", l->stage_at_ms);
    cJSON_AddNumberToObject(o, "seq", (double)l->seq);
    cJSON_AddNumberToObject(o, "events", (double)l->events);
    lf_cli_json_time(o, "first_seen", l->first_seen_ms);
    lf_cli_json_time(o, "last_seen", l->last_seen_ms);
    cJSON_AddItemToObject(o, "first_touch", lf_json_touch(&l->first_touch));
    cJSON_AddItemToObject(o, "last_touch", lf_json_touch(&l->last_touch));
    cJSON_AddStringToObject(o, "rules_version", l->rules_version);
    if (m->version)
        cJSON_AddStringToObject(o, "loaded_rules_version", m->version);
    else
        cJSON_AddNullToObject(o, "loaded_rules_version");
}

/* The events by kind ("counters", kinds with none left out) and the kept traits ("traits"),
 * as decoded. */
static void lf_inspect_json_fields(cJSON *o, const lf_model_t *m, const lf_lead_t *l)
{
    cJSON *counters = cJSON_AddObjectToObject(o, "counters");
    cJSON *traits = cJSON_AddObjectToObject(o, "traits");
    for (int k = 0; k < LF_KIND__COUNT; k++)
        if (l->counters[k])
            cJSON_AddNumberToObject(counters, lf_kind_name((lf_kind_t)k), (double)l->counters[k]);
    for (int i = 0; i < l->ntraits; i++)
        cJSON_AddStringToObject(traits, lf_inspect_trait_name(m, &l->traits[i]), l->traits[i].val);
}

/* Where the record is and what it holds besides the score: its key, kind and layout, a
 * visitor's TTL and expiry, the write version, applied offsets, remembered messageIds. */
static void lf_inspect_json_storage(cJSON *o, const lf_inspect_t *in)
{
    const lf_lead_t *l = &in->lead;
    cJSON *x = cJSON_AddObjectToObject(o, "record");
    cJSON_AddStringToObject(x, "key", in->key);
    cJSON_AddStringToObject(x, "kind", in->visitor || l->anonymous ? "visitor" : "lead");
    cJSON_AddStringToObject(x, "layout", lf_inspect_layout_name(in));
    if (in->visitor) {
        if (in->pttl_ms >= 0)
            cJSON_AddNumberToObject(x, "ttl_ms", (double)in->pttl_ms);
        else
            cJSON_AddNullToObject(x, "ttl_ms");
    }
    if (l->expires_s) lf_cli_json_time(x, "expires", l->expires_s * 1000);
    cJSON_AddNumberToObject(x, "version", (double)l->version);
    cJSON_AddBoolToObject(o, "visitor_record_left", in->visitor_left);
    cJSON_AddBoolToObject(o, "requalify", l->requalify);
    lf_cli_json_time(o, "requalify_at", l->requalify_at_ms); /* 0 / null: none */
    cJSON *arr = cJSON_AddArrayToObject(o, "offsets");
    for (int i = 0; i < l->nsrc; i++) {
        cJSON *e = cJSON_CreateObject();
        cJSON_AddNumberToObject(e, "partition", l->src[i].partition);
        cJSON_AddNumberToObject(e, "offset", (double)l->src[i].offset);
        cJSON_AddItemToArray(arr, e);
    }
    cJSON_AddNumberToObject(o, "dedup_remembered", l->ndedup);
}

/* The fit rules that hold and the engagement rules with events of their kinds. */
static void lf_inspect_json_rules(cJSON *o, const lf_model_t *m, const lf_lead_t *l)
{
    double fit_sum = 0;
    cJSON *x, *arr = cJSON_AddArrayToObject(o, "fit_rules");
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
}

static void lf_inspect_json_caps(cJSON *o, const lf_model_t *m, const lf_lead_t *l)
{
    cJSON *arr = cJSON_AddArrayToObject(o, "caps");
    for (int i = 0; i < l->ncaps; i++) {
        const lf_cap_use_t *cu = &l->caps[i];
        if (cu->rule >= m->neng) continue;
        const lf_engagement_rule_t *r = &m->eng[cu->rule];
        cJSON *x = cJSON_CreateObject();
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
}

static void lf_inspect_json_history(cJSON *o, const lf_lead_t *l)
{
    cJSON *arr = cJSON_AddArrayToObject(o, "history");
    for (int i = 0; i < l->nhistory; i++) {
        const lf_history_t *h = &l->history[i];
        cJSON *x = cJSON_CreateObject();
        cJSON_AddNumberToObject(x, "seq", (double)h->seq);
        cJSON_AddStringToObject(x, "from", lf_stage_name((lf_stage_t)h->from));
        cJSON_AddStringToObject(x, "to", lf_stage_name((lf_stage_t)h->to));
        cJSON_AddStringToObject(x, "reason", lf_reason_name((lf_reason_t)h->reason));
        lf_cli_json_time(x, "at", h->at_ms);
        cJSON_AddNumberToObject(x, "score", h->score);
        cJSON_AddItemToArray(arr, x);
    }
}

cJSON *lf_inspect_json(lf_cli_t *cli, const lf_inspect_t *in)
{
    const lf_model_t *m = &cli->cfg.model;
    cJSON *o = cJSON_CreateObject();
    lf_inspect_json_score(o, m, in);
    lf_inspect_json_record(o, m, in);
    lf_inspect_json_fields(o, m, &in->lead);
    lf_inspect_json_rules(o, m, &in->lead);
    lf_inspect_json_caps(o, m, &in->lead);
    lf_inspect_json_history(o, &in->lead);
    lf_inspect_json_storage(o, in);
    return o;
}
