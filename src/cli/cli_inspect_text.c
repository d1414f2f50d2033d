/* `leadflow inspect`: the report for a person. The score and its parts, the lead's record,
 * its traits, the rules behind the score, events by kind, caps in use and the stage history,
 * in that order, all from the decoded record (either layout); values from events are shown
 * escaped. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli_inspect_int.h"
#include "leadflow/score.h"

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
          t->source[0] ? lf_inspect_esc_c(t->source, e1) : "-",
          t->medium[0] ? lf_inspect_esc_c(t->medium, e2) : "-",
          t->campaign[0] ? lf_inspect_esc_c(t->campaign, e3) : "-",
          lf_cli_fmt_time(t->at_ms, at, sizeof(at)));
}

/* The lead, its score at the time asked for and at now, what is stored. */
static void lf_inspect_print_score(const lf_model_t *m, const lf_inspect_t *in)
{
    const lf_lead_t *l = &in->lead;
    char a[64], b[64];
    lf_esc_buf_t e1;
    double eng_at = lf_lead_engagement_at(l, in->at_ms, m);
    double eng_now = lf_lead_engagement_at(l, in->now_ms, m);

    printf("lead %s%s\n", lf_inspect_esc_c(in->id, e1),
           in->visitor || l->anonymous ? " (a visitor: anonymousId, not linked yet)" : "");
    if (in->raw) printf("  the id of %s under ids.hmac_key\n", lf_inspect_esc_c(in->raw, e1));
    if (in->linked)
        printf("  %s is an anonymousId linked to this lead%s\n", lf_inspect_esc_c(in->query, e1),
               in->visitor_left ? " (its visitor record still exists)" : "");
    LF_KV("score", "%.2f = fit %.2f + engagement %.2f, at %s (%s)", lf_cli_num(l->fit + eng_at),
          lf_cli_num(l->fit), lf_cli_num(eng_at), lf_cli_fmt_time(in->at_ms, a, sizeof(a)),
          in->at_given ? "--at" : "last event time");
    if (in->at_ms < l->t_ms)
        LF_KV("", "(before its last engagement update at %s: engagement as of then)",
              lf_cli_fmt_time(l->t_ms, a, sizeof(a)));
    LF_KV("grade", "%s", lf_cli_grade(l->fit + eng_at, m));
    LF_KV("at now", "%.2f = fit %.2f + engagement %.2f, grade %s, at %s (wall clock)",
          lf_cli_num(l->fit + eng_now), lf_cli_num(l->fit), lf_cli_num(eng_now),
          lf_cli_grade(l->fit + eng_now, m), lf_cli_fmt_time(in->now_ms, a, sizeof(a)));
    LF_KV("stored", "engagement %.2f at %s; half-life %s", lf_cli_num(l->eng),
          lf_cli_fmt_time(l->t_ms, a, sizeof(a)),
          lf_cli_fmt_duration((int64_t)m->half_life_ms, b, sizeof(b)));
}

/* Where the record is stored: its key and layout; a visitor's TTL. */
static void lf_inspect_print_storage(const lf_inspect_t *in)
{
    const lf_lead_t *l = &in->lead;
    char a[64], b[64];
    lf_esc_buf_t e1;
    const char *key = lf_inspect_esc_c(in->key, e1);
    if (!in->visitor) {
        LF_KV("record", "%s, %s (write version %" PRIu64 ")", key, lf_inspect_layout_text(in),
              l->version);
        return;
    }
    if (in->pttl_ms >= 0)
        LF_KV("record", "%s, %s (write version %" PRIu64 "), expires in %s (%s)", key,
              lf_inspect_layout_text(in), l->version,
              lf_cli_fmt_duration(in->pttl_ms, a, sizeof(a)),
              lf_cli_fmt_time(in->now_ms + in->pttl_ms, b, sizeof(b)));
    else
        LF_KV("record", "%s, %s (write version %" PRIu64 "), no TTL", key,
              lf_inspect_layout_text(in), l->version);
}

/* Stage, counts, first/last seen and touch, the rules version. */
static void lf_inspect_print_record(const lf_model_t *m, const lf_inspect_t *in)
{
    const lf_lead_t *l = &in->lead;
    char a[64];
    const char *version = l->rules_version;
    LF_KV("stage", "%s since %s (seq %" PRIu64 ")", lf_stage_name(l->stage),
          lf_cli_fmt_time(l->stage_at_ms, a, sizeof(a)), l->seq);
    if (l->requalify_at_ms || l->requalify) /* recycled by sales (model.recycling) */
        LF_KV("requalify", "%s%s%s", l->requalify_at_ms ? "back to mql not before " : "",
              l->requalify_at_ms ? lf_cli_fmt_time(l->requalify_at_ms, a, sizeof(a)) : "",
              l->requalify ? (l->requalify_at_ms ? ", once its score was seen below mql.enter"
                                                 : "once its score was seen below mql.enter")
                           : "");
    LF_KV("events", "%s", lf_cli_fmt_count((long long)l->events, a, sizeof(a)));
    LF_KV("first seen", "%s", lf_cli_fmt_time(l->first_seen_ms, a, sizeof(a)));
    LF_KV("last seen", "%s", lf_cli_fmt_time(l->last_seen_ms, a, sizeof(a)));
    lf_inspect_touch_line("first touch", &l->first_touch);
    lf_inspect_touch_line("last touch", &l->last_touch);
    if (m->version && version[0] && strcmp(version, m->version) != 0)
        LF_KV("rules", "%s (the rules file loaded here is %s)", version[0] ? version : "-",
              m->version);
    else
        LF_KV("rules", "%s", version[0] ? version : "-");
    if (l->nsrc) {
        char offs[256];
        size_t o = 0;
        offs[0] = '\0';
        for (int i = 0; i < l->nsrc && o < sizeof(offs); i++)
            o += (size_t)snprintf(offs + o, sizeof(offs) - o, "%s%d@%" PRId64, i ? ", " : "",
                                  (int)l->src[i].partition, l->src[i].offset);
        LF_KV("offsets", "%s (partition@offset last applied)", offs);
    }
    if (l->ndedup) LF_KV("dedup", "%u messageIds remembered", (unsigned)l->ndedup);
    lf_inspect_print_storage(in);
}

/* Traits: the kept ones, as decoded (traits the loaded rules no longer track are dropped by
 * the decoder and are gone from the record at its next write). */
static void lf_inspect_print_traits(const lf_model_t *m, const lf_lead_t *l)
{
    lf_esc_buf_t e1, e2;
    for (int i = 0; i < l->ntraits; i++) {
        if (!i) printf("\ntraits\n");
        printf("  %-13s%s\n", lf_inspect_esc_c(lf_inspect_trait_name(m, &l->traits[i]), e1),
               lf_inspect_esc_c(l->traits[i].val, e2));
    }
}

/* A table, or "none" when it has no row; freed. */
static void lf_inspect_print_table(lf_table_t *t)
{
    if (t->nrows)
        lf_table_print(t, stdout, 2);
    else
        printf("  none\n");
    lf_table_free(t);
}

static void lf_inspect_print_fit(const lf_model_t *m, const lf_lead_t *l)
{
    static const char *const head[] = {"RULE", "POINTS"};
    double fit_sum = 0;
    char a[64];
    lf_table_t t;
    lf_table_init(&t, 2, head, 1u << 1);
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
}

static void lf_inspect_print_engagement(const lf_model_t *m, const lf_inspect_t *in)
{
    static const char *const head[] = {"RULE", "KINDS", "EVENTS", "POINTS", "CAP"};
    const lf_lead_t *l = &in->lead;
    char a[64], b[64], c[64], d[64];
    lf_table_t t;
    lf_table_init(&t, 5, head, (1u << 2) | (1u << 3));
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
           lf_cli_num(lf_lead_engagement_at(l, in->at_ms, m)),
           lf_cli_fmt_time(in->at_ms, a, sizeof(a)));
    lf_inspect_print_table(&t);
}

/* Counters: events by kind, kinds with none left out. */
static void lf_inspect_print_counters(const lf_lead_t *l)
{
    int any = 0;
    for (int k = 0; k < LF_KIND__COUNT; k++) {
        if (!l->counters[k]) continue;
        printf("%s%s %u", any++ ? ", " : "\nevents by kind\n  ", lf_kind_name((lf_kind_t)k),
               (unsigned)l->counters[k]);
    }
    if (any) putchar('\n');
}

static void lf_inspect_print_caps(const lf_model_t *m, const lf_lead_t *l)
{
    static const char *const head[] = {"RULE", "WINDOW START", "GRANTED", "CAP"};
    char a[64], b[64], c[64], d[64];
    lf_table_t t;
    lf_table_init(&t, 4, head, 1u << 2);
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
}

static void lf_inspect_print_history(const lf_lead_t *l)
{
    static const char *const head[] = {"SEQ", "AT", "FROM", "TO", "REASON", "SCORE"};
    char a[64], seq[24], score[40];
    lf_table_t t;
    lf_table_init(&t, 6, head, (1u << 0) | (1u << 5));
    for (int i = 0; i < l->nhistory; i++) {
        const lf_history_t *h = &l->history[i];
        snprintf(seq, sizeof(seq), "%" PRIu64, h->seq);
        snprintf(score, sizeof(score), "%.2f", lf_cli_num(h->score));
        lf_table_add(&t, (const char *const[]){seq, lf_cli_fmt_time(h->at_ms, a, sizeof(a)),
                                               lf_stage_name((lf_stage_t)h->from),
                                               lf_stage_name((lf_stage_t)h->to),
                                               lf_reason_name((lf_reason_t)h->reason), score});
    }
    printf("\nstage history\n");
    lf_inspect_print_table(&t);
}

void lf_inspect_print(lf_cli_t *cli, const lf_inspect_t *in)
{
    const lf_model_t *m = &cli->cfg.model;
    lf_inspect_print_score(m, in);
    lf_inspect_print_record(m, in);
    lf_inspect_print_traits(m, &in->lead);
    lf_inspect_print_fit(m, &in->lead);
    lf_inspect_print_engagement(m, in);
    lf_inspect_print_counters(&in->lead);
    lf_inspect_print_caps(m, &in->lead);
    lf_inspect_print_history(&in->lead);
}
