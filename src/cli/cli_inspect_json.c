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
    cJSON_AddStringToObject(o, "grade", lf_cli_grade(l->fit + eng_at, m));

    cJSON *x = cJSON_AddObjectToObject(o, "now");
    lf_cli_json_time(x, "at", in->now_ms);
    cJSON_AddNumberToObject(x, "score", l->fit + eng_now);
    cJSON_AddNumberToObject(x, "engagement", eng_now);
    cJSON_AddStringToObject(x, "grade", lf_cli_grade(l->fit + eng_now, m));

    x = cJSON_AddObjectToObject(o, "stored");
    cJSON_AddNumberToObject(x, "eng", l->eng);
    lf_cli_json_time(x, "t", l->t_ms);
    cJSON_AddNumberToObject(x, "score", lf_cli_reply_double(lf_cli_hash_get(in->hash, "score"), 0));
    cJSON_AddStringToObject(x, "grade",
                            lf_cli_reply_str(lf_cli_hash_get(in->hash, "grade"), buf, sizeof(buf)));
    cJSON_AddNumberToObject(o, "half_life_ms", m->half_life_ms);
}

/* Stage, counts, first/last seen and touch, the rules versions. */
static void lf_inspect_json_record(cJSON *o, const lf_model_t *m, const lf_inspect_t *in)
{
    const lf_lead_t *l = &in->lead;
    char buf[256];
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
}

/* The n.* fields as "counters" (numbers) and the tr.* fields as "traits", prefixes dropped. */
static void lf_inspect_json_fields(cJSON *o, const lf_inspect_t *in)
{
    char buf[256];
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

static void lf_inspect_json_history(cJSON *o, const lf_inspect_t *in)
{
    cJSON *arr = cJSON_AddArrayToObject(o, "history");
    lf_hist_entry_t hist[LF_HISTORY_KEEP];
    size_t nhist = lf_inspect_history(in->hash, hist);
    for (size_t i = 0; i < nhist; i++) {
        const lf_hist_entry_t *h = &hist[i];
        cJSON *x = cJSON_CreateObject();
        cJSON_AddNumberToObject(x, "seq", strtod(h->seq, NULL));
        cJSON_AddStringToObject(x, "from", h->from);
        cJSON_AddStringToObject(x, "to", h->to);
        cJSON_AddStringToObject(x, "reason", h->reason);
        lf_cli_json_time(x, "at", strtoll(h->at, NULL, 10));
        cJSON_AddNumberToObject(x, "score", strtod(h->score, NULL));
        cJSON_AddItemToArray(arr, x);
    }
}

cJSON *lf_inspect_json(lf_cli_t *cli, const lf_inspect_t *in)
{
    const lf_model_t *m = &cli->cfg.model;
    cJSON *o = cJSON_CreateObject();
    lf_inspect_json_score(o, m, in);
    lf_inspect_json_record(o, m, in);
    lf_inspect_json_fields(o, in);
    lf_inspect_json_rules(o, m, &in->lead);
    lf_inspect_json_caps(o, m, &in->lead);
    lf_inspect_json_history(o, in);
    return o;
}
