/* Checks over the whole model once it is parsed: grade and MQL thresholds in order, rule
 * names unique, the traits a lead keeps within bounds, at most LF_LEAD_CAPS_MAX capped rules;
 * warnings for what is valid but probably a mistake (kinds spelled like a built-in one,
 * points on sales feedback, a required trait nothing names, a model that scores nothing);
 * and the rules version when the file sets none: a hash of the model's canonical text. */
#include <ctype.h>
#include <inttypes.h>
#include <stdint.h>
#include <string.h>
#include <strings.h>

#include "config_int.h"
#include "leadflow/lead.h"

#define LF_CFG_MAX_HASHED (8u << 20) /* canonical model text, after alias expansion */

/*---- Kinds -------------------------------------------------------------------------------*/

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
        size_t d = lf_cfg_edit_distance(kind, name), limit = strlen(name) <= 6 ? 1 : 2;
        if (d <= limit && d < bestd) {
            best = name;
            bestd = d;
        }
    }
    return best;
}

/* Warnings, not errors: a kind as written may be an event of the user's own. */
void lf_model_warn_kinds(lf_loader_t *ld, const lf_node_t *at_kind, const char *ctx,
                         const lf_engagement_rule_t *r)
{
    for (const lf_node_t *it = lf_yaml_strings_first(at_kind); it;
         it = lf_yaml_strings_next(at_kind, it)) {
        const char *kind = lf_yaml_deref(it)->str;
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
/*---- The version: a hash of the model as canonical text ---------------------------------*/

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
    n = lf_yaml_deref(n);
    if (b->over) return;
    if (!n || lf_yaml_is_null(n)) {
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

/*---- Whole-model checks ------------------------------------------------------------------*/

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
        lf_cfg_warn(ld, at ? at->line : 1, at ? at->col : 1,
                    "the model has no engagement and no fit rules: every score stays 0 and no lead "
                    "ever becomes an MQL; add rules under model.engagement and model.fit (see "
                    "deploy/leadflow.yaml)");
    }
    const lf_node_t *req = ld->at_require;
    for (const lf_node_t *it = lf_yaml_strings_first(req); it; it = lf_yaml_strings_next(req, it)) {
        const lf_node_t *t = lf_yaml_deref(it);
        if (lf_trait_known(m, t->str)) continue;
        /* The nearest name it may have meant: a fit rule's trait, else a known one. */
        const char *cands[LF_NKEYS(lf_known_traits) + 64];
        size_t nc = 0;
        for (size_t i = 0; i < m->ntracked_traits && nc < 64; i++)
            if (strcmp(m->tracked_traits[i], t->str) != 0) cands[nc++] = m->tracked_traits[i];
        for (size_t i = 0; i < LF_NKEYS(lf_known_traits); i++)
            cands[nc++] = lf_known_traits[i];
        const char *like = lf_cfg_suggest(t->str, cands, nc);
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

/* Two thresholds in order, lo <= hi (the grades, the MQL exit and enter), when the file sets
 * either: at_lo, at_hi where it did (NULL: the default). */
static void lf_check_order(lf_loader_t *ld, const char *section, const char *lo_name, double lo,
                           const lf_node_t *at_lo, const char *hi_name, double hi,
                           const lf_node_t *at_hi)
{
    char a[32], b[32];
    if (!(lo > hi) || (!at_lo && !at_hi)) return;
    lf_fmt_double(a, sizeof(a), lo);
    lf_fmt_double(b, sizeof(b), hi);
    LF_ERR_AT(ld, at_lo ? at_lo : at_hi, "%s: %s (%s%s) must not be above %s (%s%s)", section,
              lo_name, a, at_lo ? "" : ", the default", hi_name, b, at_hi ? "" : ", the default");
}

void lf_model_check(lf_loader_t *ld)
{
    lf_model_t *m = &ld->cfg->model;
    const lf_node_t *top = ld->model;

    lf_check_order(ld, "model.grades", "L2", m->grade_l2, ld->at_l2, "L1", m->grade_l1, ld->at_l1);
    lf_check_order(ld, "model.stages.mql", "exit", m->mql_exit, ld->at_exit, "enter", m->mql_enter,
                   ld->at_enter);

    /* Rule names are unique across engagement and fit: messages and tools name rules. */
    lf_cfg_report_dups(ld, ld->names, ld->nnames, "rule name");

    /* The traits a lead keeps (lf_track collected them while parsing). */
    if (m->ntracked_traits > LF_LEAD_TRAITS_MAX) {
        const lf_node_t *at = ld->trait_at[LF_LEAD_TRAITS_MAX];
        LF_ERR_AT(ld, at,
                  "model: %zu different traits are named by fit rules and require_traits; a "
                  "lead keeps at most %d (\"%s\" is one too many)",
                  m->ntracked_traits, LF_LEAD_TRAITS_MAX, m->tracked_traits[LF_LEAD_TRAITS_MAX]);
    }
    lf_model_warn(ld);
    lf_model_recycling_defaults(m); /* the kinds model.recycling did not give */
    size_t ncapped = 0;
    for (size_t i = 0; i < m->neng; i++) {
        if (m->eng[i].cap_per_ms > 0 && ++ncapped == LF_LEAD_CAPS_MAX + 1)
            lf_cfg_error(
                ld, m->eng[i].line, 1,
                "engagement rule \"%s\": more than %d rules have a cap (a lead books at most "
                "%d capped rules)",
                m->eng[i].name ? m->eng[i].name : "?", LF_LEAD_CAPS_MAX, LF_LEAD_CAPS_MAX);
    }

    if (!m->version) {
        lf_sbuf_t sb = {0};
        lf_canon(&sb, ld->model);
        if (sb.over) {
            lf_cfg_error(ld, top ? top->line : 1, top ? top->col : 1,
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
