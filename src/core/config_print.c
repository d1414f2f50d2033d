/* What `leadflow check-config` prints of a loaded configuration: one screen, settings from
 * the table (secrets as "***"), then the model with one line per rule. */
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "config_int.h"
#include "leadflow/timeparse.h"

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

/*---- Values as the summary writes them ---------------------------------------------------*/

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
        break; /* one word per property: see lf_print_settings */
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

/*---- The summary -------------------------------------------------------------------------*/

/* One line per section of the table ("kafka", ...): key=value words, secrets as "***". */
static void lf_print_settings(const lf_config_t *cfg, FILE *out)
{
    static const char *const sections[] = {"kafka", "redis",   "processing", "limits",
                                           "log",   "metrics", "challenger", "ids"};
    char buf[512], val[400];
    lf_wrap_t w;
    for (size_t k = 0; k < LF_NKEYS(sections); k++) {
        size_t sl = strlen(sections[k]);
        /* The challenger's line only when there is one. */
        if (strcmp(sections[k], "challenger") == 0 && !cfg->challenger_rules) continue;
        if (strcmp(sections[k], "metrics") == 0 && !cfg->metrics_listen) continue;
        if (strcmp(sections[k], "ids") == 0 && !cfg->ids_hmac_key) continue;
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
            lf_setting_format(cfg, s, val, sizeof(val));
            lf_fmt(buf, sizeof(buf), "%s=%s", s->path + sl + 1, val);
            lf_wrap_word(&w, buf);
        }
        lf_wrap_end(&w);
    }
}

/* Decay, grades and the MQL thresholds. */
static void lf_print_thresholds(const lf_model_t *m, FILE *out)
{
    char buf[512], a[32], b[32];
    lf_wrap_t w;
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
}

/* One line per recycling kind: "sales_reject: engagement=reset cooldown=30d requalify=...". */
static void lf_print_recycling(const lf_model_t *m, FILE *out)
{
    char buf[128], a[32];
    lf_wrap_t w;
    for (int k = 0; k < LF_RECYCLE__COUNT; k++) {
        const lf_recycle_policy_t *p = &m->recycle[k];
        lf_wrap_start(&w, out, k == 0 ? "recycling" : "", LF_SUM_LABEL);
        lf_fmt(buf, sizeof(buf), "%s:", lf_recycle_kind_name((lf_recycle_kind_t)k));
        lf_wrap_word(&w, buf);
        if (p->engagement == LF_RECYCLE_SCALE) {
            lf_fmt_double(a, sizeof(a), p->factor);
            lf_fmt(buf, sizeof(buf), "engagement=scale x%s", a);
        } else {
            lf_fmt(buf, sizeof(buf), "engagement=%s", lf_recycle_eng_name(p->engagement));
        }
        lf_wrap_word(&w, buf);
        if (p->cooldown_ms > 0)
            lf_duration_format(p->cooldown_ms, a, sizeof(a));
        else
            lf_fmt(a, sizeof(a), "none");
        lf_fmt(buf, sizeof(buf), "cooldown=%s", a);
        lf_wrap_word(&w, buf);
        lf_fmt(buf, sizeof(buf), "requalify=%s", lf_requalify_name(p->requalify));
        lf_wrap_word(&w, buf);
        lf_wrap_end(&w);
    }
}

static void lf_print_engagement(const lf_model_t *m, FILE *out)
{
    char buf[512], a[32], b[32];
    lf_wrap_t w;
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
}

static void lf_print_fit(const lf_model_t *m, FILE *out)
{
    char buf[512], a[32];
    lf_wrap_t w;
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
}

/* A label, then the words of v, or "(none)". */
static void lf_print_words(FILE *out, const char *label, char *const *v, size_t n)
{
    lf_wrap_t w;
    lf_wrap_start(&w, out, label, LF_SUM_LABEL);
    if (!n) lf_wrap_word(&w, "(none)");
    for (size_t i = 0; i < n; i++)
        lf_wrap_word(&w, v[i]);
    lf_wrap_end(&w);
}

/* The one-screen summary check-config prints: settings from the table, then the model with
 * one line per rule ("x^=a" prefix, "x=a|b" one of, "x?" present, "not:" negation). */
void lf_config_print_summary(const lf_config_t *cfg, FILE *out)
{
    const lf_model_t *m = &cfg->model;
    char warned[48] = "";
    if (cfg->nwarnings)
        lf_fmt(warned, sizeof(warned), " with %zu warning%s", cfg->nwarnings,
               cfg->nwarnings == 1 ? "" : "s");
    fprintf(out, "%s: valid%s; rules version %s\n", cfg->path ? cfg->path : "(defaults)", warned,
            m->version ? m->version : "(none)");
    lf_print_settings(cfg, out);
    lf_print_thresholds(m, out);
    lf_print_recycling(m, out);
    lf_print_engagement(m, out);
    lf_print_fit(m, out);
    lf_print_words(out, "traits", m->tracked_traits, m->ntracked_traits);
    lf_print_words(out, "bots", m->bot_user_agents, m->nbot_user_agents);
}
