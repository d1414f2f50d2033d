/* The back-test report as one JSON object (`--json`). The key names are stable: scripts and
 * the tests read them; docs/backtest-report.md lists them. Counts are numbers, scores full
 * doubles (the text rounds them), stages and reasons their names, times both *_ms and ISO. */
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>

#include "cli_report.h"

static const char *const lf_report_grade_names[LF_REPORT_NGRADES] = {"L1", "L2", "L3"};

static cJSON *lf_report_json_side(const lf_report_sidestat_t *s)
{
    const lf_report_side_t *side = s->side;
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "label", side->label);
    cJSON_AddStringToObject(o, "prefix", side->prefix);
    cJSON_AddStringToObject(o, "rules_version", side->model->version ? side->model->version : "");
    cJSON_AddNumberToObject(o, "leads", (double)s->leads);
    cJSON_AddNumberToObject(o, "only_here", (double)s->only_here);
    cJSON_AddNumberToObject(o, "unreadable", (double)s->unreadable);
    cJSON_AddNumberToObject(o, "visitors", (double)s->visitors);
    cJSON *vs = cJSON_AddArrayToObject(o, "rules_versions");
    for (size_t i = 0; i < s->nversions; i++) {
        cJSON *x = cJSON_CreateObject();
        cJSON_AddStringToObject(x, "version", s->versions[i].version);
        cJSON_AddNumberToObject(x, "leads", (double)s->versions[i].leads);
        cJSON_AddItemToArray(vs, x);
    }
    cJSON_AddNumberToObject(o, "rules_versions_other", (double)s->versions_other);
    cJSON *ps = cJSON_AddArrayToObject(o, "positions");
    for (size_t i = 0; i < s->nwm; i++) {
        const lf_report_wm_t *w = &s->wm[i];
        cJSON *x = cJSON_CreateObject();
        cJSON_AddStringToObject(x, "key", w->key);
        cJSON_AddStringToObject(x, "group", w->group);
        cJSON_AddStringToObject(x, "topic", w->topic);
        cJSON_AddNumberToObject(x, "consumed", (double)w->consumed);
        cJSON_AddNumberToObject(x, "applied", (double)w->applied);
        cJSON *parts = cJSON_AddArrayToObject(x, "partitions");
        for (size_t k = 0; k < w->nparts; k++) {
            cJSON *p = cJSON_CreateObject();
            cJSON_AddNumberToObject(p, "partition", (double)w->parts[k].partition);
            if (w->parts[k].next_offset >= 0)
                cJSON_AddNumberToObject(p, "next_offset", (double)w->parts[k].next_offset);
            else
                cJSON_AddNullToObject(p, "next_offset");
            cJSON_AddItemToArray(parts, p);
        }
        cJSON_AddItemToArray(ps, x);
    }
    return o;
}

static cJSON *lf_report_json_view(const lf_report_view_t *v)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "stage", lf_stage_name(v->stage));
    cJSON_AddStringToObject(o, "grade", lf_report_grade_names[v->grade - 1]);
    cJSON_AddNumberToObject(o, "score", v->score);
    return o;
}

static cJSON *lf_report_json_changed(const lf_report_t *r)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddNumberToObject(o, "leads", (double)r->changed);
    cJSON_AddNumberToObject(o, "stage_changed", (double)r->stage_changed);
    cJSON_AddNumberToObject(o, "grade_changed", (double)r->grade_changed);
    cJSON *st = cJSON_AddArrayToObject(o, "stages");
    for (int f = 0; f < LF_STAGE__COUNT; f++)
        for (int t = 0; t < LF_STAGE__COUNT; t++) {
            if (f == t || !r->stage_pairs[f][t]) continue;
            cJSON *x = cJSON_CreateObject();
            cJSON_AddStringToObject(x, "from", lf_stage_name((lf_stage_t)f));
            cJSON_AddStringToObject(x, "to", lf_stage_name((lf_stage_t)t));
            cJSON_AddNumberToObject(x, "leads", (double)r->stage_pairs[f][t]);
            cJSON_AddItemToArray(st, x);
        }
    cJSON *gr = cJSON_AddArrayToObject(o, "grades");
    for (int f = 0; f < LF_REPORT_NGRADES; f++)
        for (int t = 0; t < LF_REPORT_NGRADES; t++) {
            if (f == t || !r->grade_pairs[f][t]) continue;
            cJSON *x = cJSON_CreateObject();
            cJSON_AddStringToObject(x, "from", lf_report_grade_names[f]);
            cJSON_AddStringToObject(x, "to", lf_report_grade_names[t]);
            cJSON_AddNumberToObject(x, "leads", (double)r->grade_pairs[f][t]);
            cJSON_AddItemToArray(gr, x);
        }
    cJSON *ex = cJSON_AddArrayToObject(o, "examples");
    for (size_t i = 0; i < r->ndiff_ex; i++) {
        const lf_report_diff_ex_t *d = &r->diff_ex[i];
        cJSON *x = cJSON_CreateObject();
        cJSON_AddStringToObject(x, "id", d->id);
        cJSON_AddItemToObject(x, "before", lf_report_json_view(&d->b));
        cJSON_AddItemToObject(x, "after", lf_report_json_view(&d->a));
        cJSON_AddItemToArray(ex, x);
    }
    return o;
}

static cJSON *lf_report_json_dist(const lf_report_sidestat_t *s)
{
    static const char *const names[LF_REPORT_QUANTILES] = {"p10", "p25", "p50",
                                                           "p75", "p90", "p99"};
    const lf_report_scores_t *sc = &s->scores;
    cJSON *o = cJSON_CreateObject();
    cJSON_AddNumberToObject(o, "count", (double)sc->n);
    cJSON_AddNumberToObject(o, "mean", sc->n ? s->score_sum / (double)sc->n : 0);
    for (int q = 0; q < LF_REPORT_QUANTILES; q++)
        cJSON_AddNumberToObject(o, names[q],
                                lf_report_quantile(sc->v, sc->n, lf_report_quantile_pct[q]));
    cJSON_AddNumberToObject(o, "max", sc->n ? sc->v[sc->n - 1] : 0);
    cJSON *g = cJSON_AddObjectToObject(o, "grades");
    for (int k = 0; k < LF_REPORT_NGRADES; k++)
        cJSON_AddNumberToObject(g, lf_report_grade_names[k], (double)s->grades[k]);
    return o;
}

static cJSON *lf_report_json_mqls(const lf_report_t *r)
{
    const lf_report_channels_t *cs = &r->channels;
    cJSON *o = cJSON_CreateObject();
    cJSON_AddNumberToObject(o, "before", (double)r->b.mqls);
    cJSON_AddNumberToObject(o, "after", (double)r->a.mqls);
    cJSON_AddNumberToObject(o, "delta", (double)r->a.mqls - (double)r->b.mqls);
    cJSON_AddNumberToObject(o, "channels_total", (double)cs->n);
    cJSON_AddBoolToObject(o, "channels_bounded", cs->bounded);
    cJSON_AddNumberToObject(o, "other_before", (double)cs->other_before);
    cJSON_AddNumberToObject(o, "other_after", (double)cs->other_after);
    cJSON *arr = cJSON_AddArrayToObject(o, "channels");
    for (size_t i = 0; i < cs->n && i < r->limit; i++) {
        const lf_report_channel_t *c = &cs->rows[i];
        cJSON *x = cJSON_CreateObject();
        cJSON_AddStringToObject(x, "source", c->source[0] ? c->source : "(none)");
        cJSON_AddStringToObject(x, "medium", c->medium[0] ? c->medium : "(none)");
        cJSON_AddStringToObject(x, "campaign", c->campaign[0] ? c->campaign : "(none)");
        cJSON_AddNumberToObject(x, "before", (double)c->before);
        cJSON_AddNumberToObject(x, "after", (double)c->after);
        cJSON_AddNumberToObject(x, "delta", (double)(c->after - c->before));
        cJSON_AddItemToArray(arr, x);
    }
    return o;
}

static cJSON *lf_report_json_move(const lf_report_move_t *m, uint64_t count)
{
    cJSON *x = cJSON_CreateObject();
    cJSON_AddStringToObject(x, "from", lf_stage_name((lf_stage_t)m->from));
    cJSON_AddStringToObject(x, "to", lf_stage_name((lf_stage_t)m->to));
    cJSON_AddStringToObject(x, "reason", lf_reason_name((lf_reason_t)m->reason));
    if (count) cJSON_AddNumberToObject(x, "count", (double)count);
    return x;
}

/* The counts by (from, to, reason) of one direction, in that order. */
static cJSON *lf_report_json_by(const uint64_t *by)
{
    cJSON *arr = cJSON_CreateArray();
    for (int f = 0; f < LF_STAGE__COUNT; f++)
        for (int t = 0; t < LF_STAGE__COUNT; t++)
            for (int why = 0; why < LF_REASON__COUNT; why++) {
                uint64_t n =
                    by[lf_report_move_index((lf_stage_t)f, (lf_stage_t)t, (lf_reason_t)why)];
                lf_report_move_t m = {(uint8_t)f, (uint8_t)t, (uint8_t)why};
                if (n) cJSON_AddItemToArray(arr, lf_report_json_move(&m, n));
            }
    return arr;
}

static cJSON *lf_report_json_transitions(const lf_report_t *r)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddNumberToObject(o, "leads", (double)r->tr_leads);
    cJSON_AddNumberToObject(o, "history_truncated", (double)r->tr_truncated);
    cJSON_AddNumberToObject(o, "history_kept", LF_HISTORY_KEEP);
    cJSON *e = cJSON_AddObjectToObject(o, "would_emit");
    cJSON_AddNumberToObject(e, "count", (double)r->tr_emit);
    cJSON_AddItemToObject(e, "by", lf_report_json_by(r->emit_by));
    cJSON *n = cJSON_AddObjectToObject(o, "would_not_emit");
    cJSON_AddNumberToObject(n, "count", (double)r->tr_not_emit);
    cJSON_AddItemToObject(n, "by", lf_report_json_by(r->not_emit_by));
    cJSON *ex = cJSON_AddArrayToObject(o, "examples");
    for (size_t i = 0; i < r->ntr_ex; i++) {
        const lf_report_tr_ex_t *t = &r->tr_ex[i];
        cJSON *x = cJSON_CreateObject();
        cJSON_AddStringToObject(x, "id", t->id);
        cJSON *we = cJSON_AddArrayToObject(x, "would_emit");
        for (uint8_t k = 0; k < t->nemit; k++)
            cJSON_AddItemToArray(we, lf_report_json_move(&t->emit[k], 0));
        cJSON *wn = cJSON_AddArrayToObject(x, "would_not_emit");
        for (uint8_t k = 0; k < t->nnot; k++)
            cJSON_AddItemToArray(wn, lf_report_json_move(&t->not_emit[k], 0));
        cJSON_AddItemToArray(ex, x);
    }
    return o;
}

void lf_report_print_json(const lf_report_t *r, FILE *out)
{
    cJSON *o = cJSON_CreateObject();
    lf_cli_json_time(o, "at", r->at_ms);
    cJSON_AddNumberToObject(o, "limit", (double)r->limit);
    cJSON_AddItemToObject(o, "before", lf_report_json_side(&r->b));
    cJSON_AddItemToObject(o, "after", lf_report_json_side(&r->a));
    cJSON_AddNumberToObject(o, "both", (double)r->both);
    cJSON_AddItemToObject(o, "changed", lf_report_json_changed(r));
    cJSON *sc = cJSON_AddObjectToObject(o, "scores");
    cJSON_AddItemToObject(sc, "before", lf_report_json_dist(&r->b));
    cJSON_AddItemToObject(sc, "after", lf_report_json_dist(&r->a));
    cJSON_AddItemToObject(o, "mqls", lf_report_json_mqls(r));
    cJSON_AddItemToObject(o, "transitions", lf_report_json_transitions(r));
    char *s = cJSON_PrintUnformatted(o);
    if (s) {
        fputs(s, out);
        fputc('\n', out);
    }
    cJSON_free(s);
    cJSON_Delete(o);
}
