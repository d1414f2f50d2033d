/* The back-test report as text: five sections, each a heading and aligned tables. Scores
 * rounded to 2 decimals; ids and touch values escaped (they come from events: a newline in
 * one must not forge a row). --json has the exact values. */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "cli_report.h"
#include "leadflow/event.h"

static const char *const lf_report_grade_names[LF_REPORT_NGRADES] = {"L1", "L2", "L3"};

static const char *lf_report_count(uint64_t v, char *buf, size_t cap)
{
    return lf_cli_fmt_count((long long)v, buf, cap);
}

static const char *lf_report_esc(const char *s, char *buf, size_t cap)
{
    return lf_str_escape(lf_str_from(s), buf, cap);
}

/*---- 1. The sides -------------------------------------------------------------------------*/

static void lf_report_text_versions(const lf_report_sidestat_t *s, FILE *out)
{
    char a[32], v[LF_ESCAPED_CAP(LF_RULES_VERSION_MAX)];
    fprintf(out, "  %s leads by rules_version:", s->side->label);
    if (!s->nversions) fputs(" none", out);
    for (size_t i = 0; i < s->nversions; i++)
        fprintf(out, "%s %s %s", i ? "," : "",
                s->versions[i].version[0] ? lf_report_esc(s->versions[i].version, v, sizeof(v))
                                          : "(none)",
                lf_report_count(s->versions[i].leads, a, sizeof(a)));
    if (s->versions_other)
        fprintf(out, ", other versions %s", lf_report_count(s->versions_other, a, sizeof(a)));
    fputc('\n', out);
}

static void lf_report_text_positions(const lf_report_sidestat_t *s, FILE *out)
{
    char a[32];
    if (!s->nwm) {
        fprintf(out, "  %s stream position: none recorded under %s\n", s->side->label,
                s->side->prefix);
        return;
    }
    for (size_t i = 0; i < s->nwm; i++) {
        const lf_report_wm_t *w = &s->wm[i];
        fprintf(out, "  %s stream position: group %s, topic %s, consumed %s:", s->side->label,
                w->group, w->topic[0] ? w->topic : "?",
                lf_report_count((uint64_t)w->consumed, a, sizeof(a)));
        for (size_t k = 0; k < w->nparts; k++) {
            if (w->parts[k].next_offset >= 0)
                fprintf(out, " p%ld@%" PRId64, w->parts[k].partition, w->parts[k].next_offset);
            else
                fprintf(out, " p%ld@-", w->parts[k].partition);
        }
        fputc('\n', out);
    }
}

static void lf_report_text_header(const lf_report_t *r, FILE *out)
{
    static const char *const head[] = {"", "BEFORE", "AFTER"};
    const lf_report_sidestat_t *s[2] = {&r->b, &r->a};
    char t[40], c[2][32];
    lf_table_t tb;
    fprintf(out, "back-test report: scores and grades at %s\n",
            lf_cli_fmt_time(r->at_ms, t, sizeof(t)));
    lf_table_init(&tb, 3, head, 0);
    lf_table_add(&tb, (const char *const[]){"label", s[0]->side->label, s[1]->side->label});
    lf_table_add(&tb, (const char *const[]){"prefix", s[0]->side->prefix, s[1]->side->prefix});
    lf_table_add(&tb, (const char *const[]){"rules", s[0]->side->model->version,
                                            s[1]->side->model->version});
#define LF_ROW(name, field)                                                                        \
    lf_table_add(&tb,                                                                              \
                 (const char *const[]){name, lf_report_count(s[0]->field, c[0], sizeof(c[0])),     \
                                       lf_report_count(s[1]->field, c[1], sizeof(c[1]))})
    LF_ROW("leads", leads);
    LF_ROW("only here", only_here);
    LF_ROW("visitors", visitors);
    LF_ROW("unreadable", unreadable);
#undef LF_ROW
    lf_table_print(&tb, out, 2);
    lf_table_free(&tb);
    for (int i = 0; i < 2; i++)
        lf_report_text_versions(s[i], out);
    for (int i = 0; i < 2; i++)
        lf_report_text_positions(s[i], out);
    fprintf(out, "  leads on both sides: %s\n", lf_report_count(r->both, c[0], sizeof(c[0])));
}

/*---- 2. Stage and grade differences -------------------------------------------------------*/

static void lf_report_text_changed(const lf_report_t *r, FILE *out)
{
    static const char *const spair[] = {"STAGE BEFORE", "STAGE AFTER", "LEADS"};
    static const char *const gpair[] = {"GRADE BEFORE", "GRADE AFTER", "LEADS"};
    static const char *const exh[] = {"LEAD",        "STAGE BEFORE", "STAGE AFTER", "GRADE BEFORE",
                                      "GRADE AFTER", "SCORE BEFORE", "SCORE AFTER"};
    char a[32], b[32], c[32], g[32];
    lf_table_t t;
    fprintf(out, "\nstage or grade differs: %s of %s leads on both sides (stage %s, grade %s)\n",
            lf_report_count(r->changed, a, sizeof(a)), lf_report_count(r->both, b, sizeof(b)),
            lf_report_count(r->stage_changed, c, sizeof(c)),
            lf_report_count(r->grade_changed, g, sizeof(g)));
    if (!r->changed) return;
    if (r->stage_changed) {
        lf_table_init(&t, 3, spair, 1u << 2);
        for (int f = 0; f < LF_STAGE__COUNT; f++)
            for (int to = 0; to < LF_STAGE__COUNT; to++)
                if (f != to && r->stage_pairs[f][to])
                    lf_table_add(&t,
                                 (const char *const[]){
                                     lf_stage_name((lf_stage_t)f), lf_stage_name((lf_stage_t)to),
                                     lf_report_count(r->stage_pairs[f][to], a, sizeof(a))});
        lf_table_print(&t, out, 2);
        lf_table_free(&t);
    }
    if (r->grade_changed) {
        lf_table_init(&t, 3, gpair, 1u << 2);
        for (int f = 0; f < LF_REPORT_NGRADES; f++)
            for (int to = 0; to < LF_REPORT_NGRADES; to++)
                if (f != to && r->grade_pairs[f][to])
                    lf_table_add(&t, (const char *const[]){
                                         lf_report_grade_names[f], lf_report_grade_names[to],
                                         lf_report_count(r->grade_pairs[f][to], a, sizeof(a))});
        lf_table_print(&t, out, 2);
        lf_table_free(&t);
    }
    fprintf(out, "  examples (the largest score change first): %zu of %s\n", r->ndiff_ex,
            lf_report_count(r->changed, a, sizeof(a)));
    lf_table_init(&t, 7, exh, (1u << 5) | (1u << 6));
    for (size_t i = 0; i < r->ndiff_ex; i++) {
        const lf_report_diff_ex_t *d = &r->diff_ex[i];
        char id[LF_ESCAPED_CAP(LF_ID_MAX)], sb[32], sa[32];
        snprintf(sb, sizeof(sb), "%.2f", lf_cli_num(d->b.score));
        snprintf(sa, sizeof(sa), "%.2f", lf_cli_num(d->a.score));
        lf_table_add(&t, (const char *const[]){lf_report_esc(d->id, id, sizeof(id)),
                                               lf_stage_name(d->b.stage), lf_stage_name(d->a.stage),
                                               lf_report_grade_names[d->b.grade - 1],
                                               lf_report_grade_names[d->a.grade - 1], sb, sa});
    }
    lf_table_print(&t, out, 2);
    lf_table_free(&t);
}

/*---- 3. Score distribution ----------------------------------------------------------------*/

static void lf_report_text_scores(const lf_report_t *r, FILE *out)
{
    static const char *const head[] = {"",    "COUNT", "MEAN", "P10", "P25", "P50", "P75",
                                       "P90", "P99",   "MAX",  "L1",  "L2",  "L3"};
    const lf_report_sidestat_t *s[2] = {&r->b, &r->a};
    lf_table_t t;
    fputs("\nscore distribution\n", out);
    lf_table_init(&t, 13, head, 0x1FFEu);
    for (int i = 0; i < 2; i++) {
        const lf_report_scores_t *sc = &s[i]->scores;
        char cells[12][32];
        const char *row[13];
        row[0] = s[i]->side->label;
        lf_report_count(sc->n, cells[0], sizeof(cells[0]));
        snprintf(cells[1], sizeof(cells[1]), "%.2f",
                 lf_cli_num(sc->n ? s[i]->score_sum / (double)sc->n : 0));
        for (int q = 0; q < LF_REPORT_QUANTILES; q++)
            snprintf(cells[2 + q], sizeof(cells[2 + q]), "%.2f",
                     lf_cli_num(lf_report_quantile(sc->v, sc->n, lf_report_quantile_pct[q])));
        snprintf(cells[8], sizeof(cells[8]), "%.2f", lf_cli_num(sc->n ? sc->v[sc->n - 1] : 0));
        for (int k = 0; k < LF_REPORT_NGRADES; k++)
            lf_report_count(s[i]->grades[k], cells[9 + k], sizeof(cells[9 + k]));
        for (int k = 0; k < 12; k++)
            row[k + 1] = cells[k];
        lf_table_add(&t, row);
    }
    lf_table_print(&t, out, 2);
    lf_table_free(&t);
}

/*---- 4. MQLs per channel ------------------------------------------------------------------*/

static void lf_report_text_mqls(const lf_report_t *r, FILE *out)
{
    static const char *const head[] = {"SOURCE", "MEDIUM", "CAMPAIGN", "BEFORE", "AFTER", "DELTA"};
    const lf_report_channels_t *cs = &r->channels;
    char a[32], b[32];
    lf_table_t t;
    fprintf(out, "\nMQLs per channel (first touch): before %s, after %s, delta %+lld\n",
            lf_report_count(r->b.mqls, a, sizeof(a)), lf_report_count(r->a.mqls, b, sizeof(b)),
            (long long)r->a.mqls - (long long)r->b.mqls);
    if (!cs->n) return;
    lf_table_init(&t, 6, head, (1u << 3) | (1u << 4) | (1u << 5));
    for (size_t i = 0; i < cs->n && i < r->limit; i++) {
        const lf_report_channel_t *c = &cs->rows[i];
        char s[LF_ESCAPED_CAP(LF_TOUCH_MAX)], m[LF_ESCAPED_CAP(LF_TOUCH_MAX)],
            k[LF_ESCAPED_CAP(LF_TOUCH_MAX)], nb[32], na[32], d[32];
        snprintf(nb, sizeof(nb), "%lld", c->before);
        snprintf(na, sizeof(na), "%lld", c->after);
        snprintf(d, sizeof(d), "%+lld", c->after - c->before);
        lf_table_add(&t, (const char *const[]){
                             c->source[0] ? lf_report_esc(c->source, s, sizeof(s)) : "(none)",
                             c->medium[0] ? lf_report_esc(c->medium, m, sizeof(m)) : "(none)",
                             c->campaign[0] ? lf_report_esc(c->campaign, k, sizeof(k)) : "(none)",
                             nb, na, d});
    }
    lf_table_print(&t, out, 2);
    lf_table_free(&t);
    if (cs->n > r->limit)
        fprintf(out, "  (%zu of %zu channels shown: the largest changes)\n", r->limit, cs->n);
    if (cs->bounded)
        fprintf(out,
                "  (more than %d channels: the rest counted together, before %lld, after %lld)\n",
                LF_REPORT_CHANNELS_MAX, cs->other_before, cs->other_after);
}

/*---- 5. Transitions that differ -----------------------------------------------------------*/

static void lf_report_text_by(const uint64_t *by, FILE *out)
{
    static const char *const head[] = {"FROM", "TO", "REASON", "COUNT"};
    char a[32];
    lf_table_t t;
    lf_table_init(&t, 4, head, 1u << 3);
    for (int f = 0; f < LF_STAGE__COUNT; f++)
        for (int to = 0; to < LF_STAGE__COUNT; to++)
            for (int why = 0; why < LF_REASON__COUNT; why++) {
                uint64_t n =
                    by[lf_report_move_index((lf_stage_t)f, (lf_stage_t)to, (lf_reason_t)why)];
                if (n)
                    lf_table_add(&t, (const char *const[]){lf_stage_name((lf_stage_t)f),
                                                           lf_stage_name((lf_stage_t)to),
                                                           lf_reason_name((lf_reason_t)why),
                                                           lf_report_count(n, a, sizeof(a))});
            }
    lf_table_print(&t, out, 4);
    lf_table_free(&t);
}

static void lf_report_text_moves(const lf_report_move_t *m, size_t n, char *buf, size_t cap)
{
    size_t o = 0;
    buf[0] = '\0';
    for (size_t i = 0; i < n && o < cap; i++)
        o += (size_t)snprintf(
            buf + o, cap - o, "%s%s->%s (%s)", i ? ", " : "", lf_stage_name((lf_stage_t)m[i].from),
            lf_stage_name((lf_stage_t)m[i].to), lf_reason_name((lf_reason_t)m[i].reason));
}

static void lf_report_text_transitions(const lf_report_t *r, FILE *out)
{
    static const char *const head[] = {"LEAD", "WOULD EMIT", "WOULD NOT"};
    char a[32], b[32], c[32];
    lf_table_t t;
    fprintf(out,
            "\ntransitions that differ: %s leads (kept stage histories compared as "
            "(from, to, reason))\n",
            lf_report_count(r->tr_leads, a, sizeof(a)));
    fprintf(out, "  would emit, were not emitted: %s\n", lf_report_count(r->tr_emit, b, sizeof(b)));
    if (r->tr_emit) lf_report_text_by(r->emit_by, out);
    fprintf(out, "  were emitted, would not be: %s\n",
            lf_report_count(r->tr_not_emit, c, sizeof(c)));
    if (r->tr_not_emit) lf_report_text_by(r->not_emit_by, out);
    if (r->ntr_ex) {
        fprintf(out, "  examples (by id): %zu of %s\n", r->ntr_ex,
                lf_report_count(r->tr_leads, a, sizeof(a)));
        lf_table_init(&t, 3, head, 0);
        for (size_t i = 0; i < r->ntr_ex; i++) {
            const lf_report_tr_ex_t *x = &r->tr_ex[i];
            char id[LF_ESCAPED_CAP(LF_ID_MAX)], we[512], wn[512];
            lf_report_text_moves(x->emit, x->nemit, we, sizeof(we));
            lf_report_text_moves(x->not_emit, x->nnot, wn, sizeof(wn));
            lf_table_add(&t, (const char *const[]){lf_report_esc(x->id, id, sizeof(id)),
                                                   we[0] ? we : "-", wn[0] ? wn : "-"});
        }
        lf_table_print(&t, out, 2);
        lf_table_free(&t);
    }
    if (r->tr_truncated)
        fprintf(out,
                "  history truncated: %s leads not compared (more stage changes than the %d "
                "newest a lead keeps)\n",
                lf_report_count(r->tr_truncated, a, sizeof(a)), LF_HISTORY_KEEP);
}

void lf_report_print_text(const lf_report_t *r, FILE *out)
{
    lf_report_text_header(r, out);
    lf_report_text_changed(r, out);
    lf_report_text_scores(r, out);
    lf_report_text_mqls(r, out);
    lf_report_text_transitions(r, out);
}
