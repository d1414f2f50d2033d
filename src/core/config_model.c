/* The model section of leadflow.yaml into lf_model_t: conditions, engagement and fit rules,
 * decay, grades, the MQL thresholds and bots. Whole-model checks come after, in
 * config_model_check.c; src/core/score.c and src/core/stage.c read the result. */
#include <stdint.h>
#include <string.h>
#include <strings.h>

#include "config_int.h"
#include "leadflow/lead.h"
#include "leadflow/stage.h"

/*---- Conditions --------------------------------------------------------------------------*/

/* A trait a lead's state keeps (model.tracked_traits), once, with where it was first named. */
static void lf_track(lf_loader_t *ld, const char *trait, const lf_node_t *at)
{
    lf_model_t *m = &ld->cfg->model;
    for (size_t i = 0; i < m->ntracked_traits; i++)
        if (strcmp(m->tracked_traits[i], trait) == 0) return;
    ld->trait_at = lf_realloc(ld->trait_at, (m->ntracked_traits + 1) * sizeof(*ld->trait_at));
    ld->trait_at[m->ntracked_traits] = at;
    lf_strv_add(&m->tracked_traits, &m->ntracked_traits, trait);
}

static const char *const lf_cond_keys[] = {"equals", "in",  "prefix", "present",
                                           "min",    "max", "not"};

/* One condition's value: "x" (equals), [a, b] (one of), or a map of equals/in, prefix,
 * present, min/max, and not (a flag beside other keys, or alone a condition to negate). */
static void lf_cond_value(lf_loader_t *ld, const lf_node_t *n, const char *ctx, lf_cond_t *c)
{
    const lf_node_t *d = lf_yaml_deref(n);
    if (lf_yaml_is_null(d)) {
        LF_ERR_AT(ld, n,
                  "%s: needs a value, a list of values, or a condition such as "
                  "{present: true}",
                  ctx);
        return;
    }
    if (d->type != LF_N_MAP) {
        c->op = LF_MATCH_EQUALS;
        lf_yaml_string_list(ld, n, ctx, &c->values, &c->nvalues);
        return;
    }
    if (d->n == 0) {
        LF_ERR_AT(ld, n, "%s: an empty condition", ctx);
        return;
    }
    if (d->n == 2 && lf_yaml_deref(d->first)->type == LF_N_SCALAR &&
        strcmp(lf_yaml_deref(d->first)->str, "not") == 0) {
        lf_cond_value(ld, d->first->next, ctx, c);
        c->negate = !c->negate;
        return;
    }
    int has_eq = 0, has_prefix = 0, has_present = 0, has_range = 0, unknown = 0;
    LF_MAP_EACH(d, k, v)
    {
        const lf_node_t *key = lf_yaml_key(ld, k);
        if (!key) continue;
        char sub[192];
        lf_fmt(sub, sizeof(sub), "%s.%s", ctx, key->str);
        if (strcmp(key->str, "equals") == 0 || strcmp(key->str, "in") == 0) {
            has_eq = 1;
            c->op = LF_MATCH_EQUALS;
            lf_yaml_string_list(ld, v, sub, &c->values, &c->nvalues);
        } else if (strcmp(key->str, "prefix") == 0) {
            has_prefix = 1;
            c->op = LF_MATCH_PREFIX;
            lf_yaml_string_list(ld, v, sub, &c->values, &c->nvalues);
        } else if (strcmp(key->str, "present") == 0) {
            int b = 1;
            has_present = 1;
            c->op = LF_MATCH_PRESENT;
            if (lf_yaml_bool(ld, v, sub, &b) == LF_OK && !b) c->negate = !c->negate;
        } else if (strcmp(key->str, "min") == 0 || strcmp(key->str, "max") == 0) {
            double x;
            has_range = 1;
            c->op = LF_MATCH_RANGE;
            if (lf_yaml_number(ld, v, sub, &x) != LF_OK) continue;
            if (key->str[1] == 'i') {
                c->min = x;
                c->has_min = 1;
            } else {
                c->max = x;
                c->has_max = 1;
            }
        } else if (strcmp(key->str, "not") == 0) {
            int b;
            if (lf_yaml_bool(ld, v, sub, &b) == LF_OK && b) c->negate = !c->negate;
        } else {
            unknown++;
            lf_cfg_unknown_key(ld, key, "a condition", lf_cond_keys, LF_NKEYS(lf_cond_keys));
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
 * restricts the field names; with `traits`, each field is a trait a lead keeps. */
static void lf_conds_parse(lf_loader_t *ld, const lf_node_t *n, const char *ctx,
                           const char *const *fields, size_t nfields, int traits, lf_cond_t **out,
                           size_t *nout)
{
    const lf_node_t *map = lf_yaml_map(ld, n, ctx);
    if (!map) return;
    *out = lf_calloc(map->n / 2 + 1, sizeof(**out));
    LF_MAP_EACH(map, k, v)
    {
        const lf_node_t *key = lf_yaml_key(ld, k);
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
                lf_cfg_unknown_key(ld, key, ctx, fields, nfields);
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

/*---- Rules -------------------------------------------------------------------------------*/

static const char *const lf_eng_keys[] = {"name", "description", "kind",   "path_prefix",
                                          "utm",  "properties",  "points", "cap"};
static const char *const lf_fit_keys[] = {"name", "description", "traits", "points"};
static const char *const lf_cap_keys[] = {"points", "per"};
/* UTM fields a rule may test; "name" is Segment's context.campaign.name (= campaign) and
 * click_id any of gclid/msclkid/dclid/fbclid (src/core/score.c reads them the same way). */
static const char *const lf_utm_fields[] = {"source",  "medium", "campaign", "term",
                                            "content", "name",   "click_id"};

/* The rule's name, checked (present, not empty) and remembered for the duplicate check.
 * Returns the node of the name or NULL. */
static const lf_node_t *lf_rule_name(lf_loader_t *ld, const lf_node_t *rule, const char *list,
                                     char **out)
{
    const lf_node_t *at = NULL;
    LF_MAP_EACH(rule, k, v)
    {
        if (lf_yaml_deref(k)->type == LF_N_SCALAR && strcmp(lf_yaml_deref(k)->str, "name") == 0)
            at = v;
    }
    if (!at) {
        LF_ERR_AT(ld, rule, "%s rule without a name", list);
        return NULL;
    }
    char ctx[64];
    lf_fmt(ctx, sizeof(ctx), "%s rule name", list);
    const lf_node_t *d = lf_yaml_deref(at);
    if (d->type == LF_N_SCALAR && (lf_yaml_is_null(d) || !*d->str)) {
        LF_ERR_AT(ld, at, "%s rule with an empty name", list);
        return NULL;
    }
    const char *s = lf_yaml_scalar(ld, at, ctx, "a string");
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
    const lf_node_t *map = lf_yaml_map(ld, n, ctx);
    const lf_node_t *at_points = NULL, *at_per = NULL;
    char sub[160];
    if (!map) {
        if (lf_yaml_is_null(n)) LF_ERR_AT(ld, n, "%s: needs points and per", ctx);
        return;
    }
    LF_MAP_EACH(map, k, v)
    {
        const lf_node_t *key = lf_yaml_key(ld, k);
        if (!key) continue;
        lf_fmt(sub, sizeof(sub), "%s.%s", ctx, key->str);
        if (strcmp(key->str, "points") == 0) {
            at_points = v;
            if (lf_yaml_number(ld, v, sub, &r->cap_points) == LF_OK && r->cap_points <= 0)
                LF_ERR_AT(ld, v, "%s: must be positive", sub);
        } else if (strcmp(key->str, "per") == 0) {
            at_per = v;
            lf_yaml_duration(ld, v, sub, &r->cap_per_ms);
        } else {
            lf_cfg_unknown_key(ld, key, ctx, lf_cap_keys, LF_NKEYS(lf_cap_keys));
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
    const lf_node_t *rule = lf_yaml_deref(n);
    *line = rule->line;
    lf_rule_name(ld, rule, what, name);
    if (*name)
        lf_fmt(ctx, cap, "%s rule \"%s\"", what, *name);
    else
        lf_fmt(ctx, cap, "%s rule at line %d", what, rule->line);
    return rule;
}

/* A key of a rule, with sub = "<ctx>: <key>" for messages; NULL for a key that is not a string
 * (reported) and for the keys every rule takes alike: name (lf_rule_begin read it) and
 * description (only checked to be a string). */
static const lf_node_t *lf_rule_key(lf_loader_t *ld, const lf_node_t *k, const lf_node_t *v,
                                    const char *ctx, char *sub, size_t cap)
{
    const lf_node_t *key = lf_yaml_key(ld, k);
    if (!key) return NULL;
    lf_fmt(sub, cap, "%s: %s", ctx, key->str);
    if (strcmp(key->str, "name") == 0) return NULL;
    if (strcmp(key->str, "description") == 0) {
        lf_yaml_scalar(ld, v, sub, "a string");
        return NULL;
    }
    return key;
}

static void lf_eng_parse(lf_loader_t *ld, const lf_node_t *n, lf_engagement_rule_t *r)
{
    const lf_node_t *at_points = NULL, *at_cap = NULL, *at_kind = NULL;
    char ctx[160], sub[200];
    const lf_node_t *rule =
        lf_rule_begin(ld, n, "engagement", &r->name, &r->line, ctx, sizeof(ctx));
    LF_MAP_EACH(rule, k, v)
    {
        const lf_node_t *key = lf_rule_key(ld, k, v, ctx, sub, sizeof(sub));
        if (!key) continue;
        const char *kn = key->str;
        if (strcmp(kn, "kind") == 0) {
            at_kind = v;
            lf_yaml_string_list(ld, v, sub, &r->kinds, &r->nkinds);
            /* Segment names ("Email Opened") become canonical kinds; others stay as is. */
            for (size_t i = 0; i < r->nkinds; i++) {
                lf_kind_t kind = lf_kind_from_name(lf_str_from(r->kinds[i]));
                if (kind == LF_KIND_OTHER) continue;
                lf_free(r->kinds[i]);
                r->kinds[i] = lf_strdup(lf_kind_name(kind));
            }
        } else if (strcmp(kn, "path_prefix") == 0) {
            size_t before = r->npath_prefixes;
            lf_yaml_string_list(ld, v, sub, &r->path_prefixes, &r->npath_prefixes);
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
            lf_yaml_number(ld, v, sub, &r->points);
        } else if (strcmp(kn, "cap") == 0) {
            at_cap = v;
            lf_cap_parse(ld, v, sub, r);
        } else {
            lf_cfg_unknown_key(ld, key, ctx, lf_eng_keys, LF_NKEYS(lf_eng_keys));
        }
    }
    if (!at_points) LF_ERR_AT(ld, rule, "%s: points is missing", ctx);
    if (at_points && at_cap && r->cap_per_ms > 0 && r->points < 0)
        LF_ERR_AT(ld, at_cap, "%s: a cap limits points granted; this rule's points are negative",
                  ctx);
    if (at_kind) lf_model_warn_kinds(ld, at_kind, ctx, r);
}

static void lf_fit_parse(lf_loader_t *ld, const lf_node_t *n, lf_fit_rule_t *r)
{
    const lf_node_t *at_points = NULL, *at_traits = NULL;
    char ctx[160], sub[200];
    const lf_node_t *rule = lf_rule_begin(ld, n, "fit", &r->name, &r->line, ctx, sizeof(ctx));
    LF_MAP_EACH(rule, k, v)
    {
        const lf_node_t *key = lf_rule_key(ld, k, v, ctx, sub, sizeof(sub));
        if (!key) continue;
        const char *kn = key->str;
        if (strcmp(kn, "traits") == 0) {
            at_traits = v;
            lf_conds_parse(ld, v, sub, NULL, 0, 1, &r->conds, &r->nconds);
        } else if (strcmp(kn, "points") == 0) {
            at_points = v;
            lf_yaml_number(ld, v, sub, &r->points);
        } else {
            lf_cfg_unknown_key(ld, key, ctx, lf_fit_keys, LF_NKEYS(lf_fit_keys));
        }
    }
    if (!at_points) LF_ERR_AT(ld, rule, "%s: points is missing", ctx);
    if (!at_traits)
        LF_ERR_AT(ld, rule, "%s: traits is missing (a fit rule matches on traits)", ctx);
    else if (r->nconds == 0 && lf_yaml_is_null(at_traits))
        LF_ERR_AT(ld, at_traits, "%s: traits is empty", ctx);
}

/* A list of rule maps; each item through parse_one into a slot of *out (item_size bytes). */
static void *lf_rules_parse(lf_loader_t *ld, const lf_node_t *n, const char *ctx, size_t item_size,
                            size_t *count,
                            void (*parse_one)(lf_loader_t *, const lf_node_t *, void *))
{
    const lf_node_t *d = lf_yaml_deref(n);
    char buf[80];
    if (lf_yaml_is_null(d)) return NULL;
    if (d->type != LF_N_SEQ) {
        LF_ERR_AT(ld, n, "%s: expected a list of rules, got %s", ctx,
                  lf_yaml_what(d, buf, sizeof(buf)));
        return NULL;
    }
    if (d->n > UINT16_MAX) {
        LF_ERR_AT(ld, n, "%s: more than %d rules", ctx, UINT16_MAX);
        return NULL;
    }
    char *items = lf_calloc(d->n + 1, item_size);
    for (const lf_node_t *it = d->first; it; it = it->next) {
        if (lf_yaml_deref(it)->type != LF_N_MAP) {
            LF_ERR_AT(ld, it, "%s: expected a rule (a mapping with name, points, ...), got %s", ctx,
                      lf_yaml_what(it, buf, sizeof(buf)));
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

/*---- Recycling ---------------------------------------------------------------------------*/

static const char *const lf_recycle_kind_names[LF_RECYCLE__COUNT] = {"sales_reject", "deal_lost"};
static const char *const lf_recycle_eng_names[] = {"keep", "reset", "scale"};
static const char *const lf_requalify_names[] = {"cooldown", "below_enter"};
static const char *const lf_recycle_keys[] = {"engagement", "factor", "cooldown", "requalify"};

#define LF_RECYCLE_COOLDOWN_MAX_MS (3650 * 86400000LL)

const char *lf_recycle_kind_name(lf_recycle_kind_t k)
{
    return (unsigned)k < LF_RECYCLE__COUNT ? lf_recycle_kind_names[k] : "unknown";
}

const char *lf_recycle_eng_name(lf_recycle_eng_t e)
{
    return (unsigned)e < LF_NKEYS(lf_recycle_eng_names) ? lf_recycle_eng_names[e] : "unknown";
}

const char *lf_requalify_name(lf_requalify_t r)
{
    return (unsigned)r < LF_NKEYS(lf_requalify_names) ? lf_requalify_names[r] : "unknown";
}

/* The defaults (deploy/leadflow.yaml says why): a lead sales turned down starts from zero
 * engagement and may not come back as an MQL for a month (a lost deal: a quarter), however
 * hot it was; after that, new engagement alone brings it back. */
void lf_model_recycling_defaults(lf_model_t *m)
{
    static const int64_t cooldown_days[LF_RECYCLE__COUNT] = {14, 90};
    for (int k = 0; k < LF_RECYCLE__COUNT; k++) {
        lf_recycle_policy_t *p = &m->recycle[k];
        if (p->set) continue;
        p->engagement = LF_RECYCLE_RESET;
        p->factor = 0;
        p->cooldown_ms = cooldown_days[k] * 86400000LL;
        p->requalify = LF_REQUALIFY_COOLDOWN;
    }
}

/* One word of a closed list (an enum's names): its index, or -1 reported at the node. */
static int lf_word_of(lf_loader_t *ld, const lf_node_t *n, const char *ctx,
                      const char *const *words, size_t nwords)
{
    const char *s = lf_yaml_scalar(ld, n, ctx, "a word");
    if (!s) return -1;
    for (size_t i = 0; i < nwords; i++)
        if (strcmp(s, words[i]) == 0) return (int)i;
    char list[128];
    size_t at = 0;
    list[0] = '\0';
    for (size_t i = 0; i < nwords; i++)
        at += (size_t)lf_fmt(list + at, sizeof(list) - at, "%s%s",
                             i ? (i + 1 == nwords ? " or " : ", ") : "", words[i]);
    const char *like = lf_cfg_suggest(s, words, nwords);
    if (like)
        LF_ERR_AT(ld, n, "%s: \"%s\" is not %s (did you mean \"%s\"?)", ctx, s, list, like);
    else
        LF_ERR_AT(ld, n, "%s: \"%s\" is not %s", ctx, s, list);
    return -1;
}

/* A cooldown: a duration, 0 for none; negative or absurd ones are errors. */
static void lf_cooldown_parse(lf_loader_t *ld, const lf_node_t *n, const char *ctx, int64_t *out)
{
    const char *s = lf_yaml_scalar(ld, n, ctx, "a duration");
    int64_t ms;
    if (!s) return;
    if (lf_duration_parse(s, &ms) != LF_OK) {
        LF_ERR_AT(ld, n, "%s: \"%s\" is not a duration (e.g. 30d, 12w, 36h; 0 for none)", ctx, s);
    } else if (ms < 0) {
        LF_ERR_AT(ld, n, "%s: must not be negative, got %s (0: no cooldown)", ctx, s);
    } else if (ms > LF_RECYCLE_COOLDOWN_MAX_MS) {
        LF_ERR_AT(ld, n, "%s: %s is more than 3650d", ctx, s);
    } else {
        *out = ms;
    }
}

/* model.recycling.<kind>: starts from the kind's default, so a key left out keeps it. */
static void lf_recycle_policy_parse(lf_loader_t *ld, const lf_node_t *n, lf_recycle_kind_t kind)
{
    lf_model_t *m = &ld->cfg->model;
    lf_recycle_policy_t *p = &m->recycle[kind];
    char ctx[64], sub[96];
    const lf_node_t *at_factor = NULL, *at_eng = NULL;
    lf_fmt(ctx, sizeof(ctx), "model.recycling.%s", lf_recycle_kind_name(kind));
    lf_model_recycling_defaults(m); /* this kind's and any other not given yet */
    p->set = 1;
    const lf_node_t *map = lf_yaml_map(ld, n, ctx);
    if (!map) return; /* null: the defaults */
    LF_MAP_EACH(map, k, v)
    {
        const lf_node_t *key = lf_yaml_key(ld, k);
        if (!key) continue;
        lf_fmt(sub, sizeof(sub), "%s.%s", ctx, key->str);
        if (strcmp(key->str, "engagement") == 0) {
            int e = lf_word_of(ld, v, sub, lf_recycle_eng_names, LF_NKEYS(lf_recycle_eng_names));
            at_eng = v;
            if (e >= 0) p->engagement = (lf_recycle_eng_t)e;
        } else if (strcmp(key->str, "factor") == 0) {
            double f;
            at_factor = v;
            if (lf_yaml_number(ld, v, sub, &f) != LF_OK) continue;
            if (!(f > 0 && f < 1)) {
                char a[32];
                lf_fmt_double(a, sizeof(a), f);
                LF_ERR_AT(ld, v,
                          "%s: must be between 0 and 1 (exclusive), got %s: 0 is engagement: "
                          "reset, 1 is keep",
                          sub, a);
                continue;
            }
            p->factor = f;
        } else if (strcmp(key->str, "cooldown") == 0) {
            lf_cooldown_parse(ld, v, sub, &p->cooldown_ms);
        } else if (strcmp(key->str, "requalify") == 0) {
            int r = lf_word_of(ld, v, sub, lf_requalify_names, LF_NKEYS(lf_requalify_names));
            if (r >= 0) p->requalify = (lf_requalify_t)r;
        } else {
            lf_cfg_unknown_key(ld, key, ctx, lf_recycle_keys, LF_NKEYS(lf_recycle_keys));
        }
    }
    if (at_factor && p->engagement != LF_RECYCLE_SCALE)
        LF_ERR_AT(ld, at_factor, "%s: factor is only for engagement: scale (engagement is %s)", ctx,
                  lf_recycle_eng_name(p->engagement));
    else if (p->engagement == LF_RECYCLE_SCALE && !at_factor)
        LF_ERR_AT(ld, at_eng ? at_eng : n, "%s: engagement: scale needs a factor (0 < factor < 1)",
                  ctx);
    if (p->engagement != LF_RECYCLE_SCALE) p->factor = 0;
}

static void lf_recycling_parse(lf_loader_t *ld, const lf_node_t *n)
{
    const lf_node_t *map = lf_yaml_map(ld, n, "model.recycling");
    if (!map) return;
    LF_MAP_EACH(map, k, v)
    {
        const lf_node_t *key = lf_yaml_key(ld, k);
        if (!key) continue;
        int kind = -1;
        for (int i = 0; i < LF_RECYCLE__COUNT; i++)
            if (strcmp(key->str, lf_recycle_kind_names[i]) == 0) kind = i;
        lf_kind_t fk = lf_kind_from_name(lf_str_from(key->str));
        if (kind < 0 && fk >= LF_KIND_SALES_ACCEPT && fk <= LF_KIND_DISQUALIFY)
            LF_ERR_AT(ld, k,
                      "model.recycling: %s does not move a lead to nurture; only sales_reject "
                      "and deal_lost recycle it",
                      key->str);
        else if (kind < 0)
            lf_cfg_unknown_key(ld, key, "model.recycling", lf_recycle_kind_names,
                               LF_RECYCLE__COUNT);
        else
            lf_recycle_policy_parse(ld, v, (lf_recycle_kind_t)kind);
    }
}

/*---- Sections ----------------------------------------------------------------------------*/

static const char *const lf_model_keys[] = {"decay",      "grades", "stages",   "bots",
                                            "engagement", "fit",    "recycling"};
static const char *const lf_decay_keys[] = {"half_life"};
static const char *const lf_grade_keys[] = {"L1", "L2"};
static const char *const lf_mql_keys[] = {"enter", "exit", "require_traits"};
static const char *const lf_bots_keys[] = {"user_agents"};

static void lf_stages_parse(lf_loader_t *ld, const lf_node_t *n)
{
    lf_model_t *m = &ld->cfg->model;
    const lf_node_t *map = lf_yaml_map(ld, n, "model.stages");
    if (!map) return;
    LF_MAP_EACH(map, k, v)
    {
        const lf_node_t *key = lf_yaml_key(ld, k);
        if (!key) continue;
        lf_stage_t st;
        if (lf_stage_from_name(key->str, key->len, &st) != LF_OK) {
            const char *cands[LF_STAGE__COUNT];
            for (int i = 0; i < LF_STAGE__COUNT; i++)
                cands[i] = lf_stage_name((lf_stage_t)i);
            const char *s = lf_cfg_suggest(key->str, cands, LF_STAGE__COUNT);
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
        const lf_node_t *mql = lf_yaml_map(ld, v, "model.stages.mql");
        if (!mql) continue;
        LF_MAP_EACH(mql, k2, v2)
        {
            const lf_node_t *key2 = lf_yaml_key(ld, k2);
            if (!key2) continue;
            char ctx[64];
            lf_fmt(ctx, sizeof(ctx), "model.stages.mql.%s", key2->str);
            if (strcmp(key2->str, "enter") == 0) {
                ld->at_enter = v2;
                lf_yaml_number(ld, v2, ctx, &m->mql_enter);
            } else if (strcmp(key2->str, "exit") == 0) {
                ld->at_exit = v2;
                lf_yaml_number(ld, v2, ctx, &m->mql_exit);
            } else if (strcmp(key2->str, "require_traits") == 0) {
                size_t before = m->nmql_required_traits;
                ld->at_require = v2;
                lf_yaml_string_list(ld, v2, ctx, &m->mql_required_traits, &m->nmql_required_traits);
                for (size_t i = before; i < m->nmql_required_traits; i++)
                    lf_track(ld, m->mql_required_traits[i], v2);
            } else {
                lf_cfg_unknown_key(ld, key2, "model.stages.mql", lf_mql_keys,
                                   LF_NKEYS(lf_mql_keys));
            }
        }
    }
}

void lf_model_parse(lf_loader_t *ld, const lf_node_t *n)
{
    lf_model_t *m = &ld->cfg->model;
    const lf_node_t *map = lf_yaml_map(ld, n, "model");
    if (!map) return;
    LF_MAP_EACH(map, k, v)
    {
        const lf_node_t *key = lf_yaml_key(ld, k);
        if (!key) continue;
        const char *kn = key->str;
        if (strcmp(kn, "decay") == 0) {
            const lf_node_t *dm = lf_yaml_map(ld, v, "model.decay");
            if (!dm) continue;
            LF_MAP_EACH(dm, k2, v2)
            {
                const lf_node_t *key2 = lf_yaml_key(ld, k2);
                if (!key2) continue;
                if (strcmp(key2->str, "half_life") != 0) {
                    lf_cfg_unknown_key(ld, key2, "model.decay", lf_decay_keys,
                                       LF_NKEYS(lf_decay_keys));
                    continue;
                }
                int64_t ms;
                ld->at_half_life = v2;
                if (lf_yaml_duration(ld, v2, "model.decay.half_life", &ms) == LF_OK)
                    m->half_life_ms = (double)ms;
            }
        } else if (strcmp(kn, "grades") == 0) {
            const lf_node_t *gm = lf_yaml_map(ld, v, "model.grades");
            if (!gm) continue;
            LF_MAP_EACH(gm, k2, v2)
            {
                const lf_node_t *key2 = lf_yaml_key(ld, k2);
                if (!key2) continue;
                if (strcmp(key2->str, "L1") == 0) {
                    ld->at_l1 = v2;
                    lf_yaml_number(ld, v2, "model.grades.L1", &m->grade_l1);
                } else if (strcmp(key2->str, "L2") == 0) {
                    ld->at_l2 = v2;
                    lf_yaml_number(ld, v2, "model.grades.L2", &m->grade_l2);
                } else {
                    lf_cfg_unknown_key(ld, key2, "model.grades", lf_grade_keys,
                                       LF_NKEYS(lf_grade_keys));
                }
            }
        } else if (strcmp(kn, "stages") == 0) {
            lf_stages_parse(ld, v);
        } else if (strcmp(kn, "bots") == 0) {
            const lf_node_t *bm = lf_yaml_map(ld, v, "model.bots");
            if (!bm) continue;
            LF_MAP_EACH(bm, k2, v2)
            {
                const lf_node_t *key2 = lf_yaml_key(ld, k2);
                if (!key2) continue;
                if (strcmp(key2->str, "user_agents") == 0)
                    lf_yaml_string_list(ld, v2, "model.bots.user_agents", &m->bot_user_agents,
                                        &m->nbot_user_agents);
                else
                    lf_cfg_unknown_key(ld, key2, "model.bots", lf_bots_keys,
                                       LF_NKEYS(lf_bots_keys));
            }
        } else if (strcmp(kn, "engagement") == 0) {
            m->eng = lf_rules_parse(ld, v, "model.engagement", sizeof(*m->eng), &m->neng,
                                    lf_eng_parse_v);
        } else if (strcmp(kn, "fit") == 0) {
            m->fit = lf_rules_parse(ld, v, "model.fit", sizeof(*m->fit), &m->nfit, lf_fit_parse_v);
        } else if (strcmp(kn, "recycling") == 0) {
            lf_recycling_parse(ld, v);
        } else {
            lf_cfg_unknown_key(ld, key, "model", lf_model_keys, LF_NKEYS(lf_model_keys));
        }
    }
}
/*---- Freeing -----------------------------------------------------------------------------*/

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
