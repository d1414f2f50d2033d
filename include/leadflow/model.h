/* The scoring model: what leadflow.yaml's rules become once loaded (src/core/config_model.c builds
 * it, src/core/score.c and src/core/stage.c read it). Plain data; no Kafka, no Redis. */
#ifndef LEADFLOW_MODEL_H
#define LEADFLOW_MODEL_H

#include <stddef.h>
#include <stdint.h>

typedef enum {
    LF_MATCH_EQUALS = 0, /* value equals one of values[] (case-insensitive); 1 value = equals */
    LF_MATCH_PRESENT,    /* the field is present and not empty */
    LF_MATCH_RANGE,      /* numeric, min <= v < max (either bound optional) */
    LF_MATCH_PREFIX,     /* value starts with one of values[] */
} lf_match_op_t;

/* One condition on a named field: a property ("qr", "form.id"), a UTM field ("source"),
 * or a trait ("company_tier"). */
typedef struct {
    char *field;
    lf_match_op_t op;
    char **values;
    size_t nvalues;
    double min, max;
    uint8_t has_min, has_max;
    int negate; /* `not: true`: the condition holds when the match fails */
} lf_cond_t;

/* Engagement rule: every rule that matches an event adds its points (docs/contract.md). */
typedef struct {
    char *name;
    char **kinds; /* canonical kind names; none = any kind */
    size_t nkinds;
    char **path_prefixes; /* any of; none = any path */
    size_t npath_prefixes;
    lf_cond_t *utm; /* all must hold */
    size_t nutm;
    lf_cond_t *props; /* all must hold */
    size_t nprops;
    double points;      /* may be negative */
    double cap_points;  /* with cap_per_ms > 0: at most this many points per window */
    int64_t cap_per_ms; /* 0 = no cap */
    int line;           /* in the rules file, for messages */
} lf_engagement_rule_t;

/* Fit rule: adds its points once when all conditions on the lead's traits hold. */
typedef struct {
    char *name;
    lf_cond_t *conds;
    size_t nconds;
    double points;
    int line;
} lf_fit_rule_t;

/* Recycling (docs/contract.md "The rules file"): what a sales move to nurture does to the lead. One
 * policy per recycling kind; the model's recycle[] is indexed by lf_recycle_kind_t. */
typedef enum {
    LF_RECYCLE_SALES_REJECT = 0, /* sales_reject: mql/sal/sql/opportunity -> nurture */
    LF_RECYCLE_DEAL_LOST,        /* deal_lost */
    LF_RECYCLE__COUNT
} lf_recycle_kind_t;

typedef enum {
    LF_RECYCLE_KEEP = 0, /* engagement unchanged */
    LF_RECYCLE_RESET,    /* engagement 0 */
    LF_RECYCLE_SCALE,    /* engagement x factor */
} lf_recycle_eng_t;

typedef enum {
    LF_REQUALIFY_COOLDOWN = 0, /* back to mql once the cooldown is over */
    LF_REQUALIFY_BELOW_ENTER,  /* ... and the score was seen below mql.enter since the recycle */
} lf_requalify_t;

typedef struct {
    lf_recycle_eng_t engagement;
    double factor;       /* LF_RECYCLE_SCALE: 0 < factor < 1 */
    int64_t cooldown_ms; /* no return to mql for this long after the recycle; 0 = none */
    lf_requalify_t requalify;
    uint8_t set; /* given in the rules file; else lf_model_recycling_defaults fills it */
} lf_recycle_policy_t;

typedef struct {
    char *version;       /* rules_version: `version:` from the file, else a content hash */
    double half_life_ms; /* engagement decay half-life */
    double grade_l1;     /* score >= grade_l1 -> L1 */
    double grade_l2;     /* score >= grade_l2 -> L2, else L3 */
    double mql_enter;    /* lead/nurture -> mql when score >= mql_enter (and required traits) */
    double mql_exit;     /* mql -> nurture when score < mql_exit; mql_exit <= mql_enter */
    char **mql_required_traits;
    size_t nmql_required_traits;
    lf_engagement_rule_t *eng;
    size_t neng;
    lf_fit_rule_t *fit;
    size_t nfit;
    /* Every trait a fit rule or mql_required_traits names, deduplicated: the only traits a
     * lead's state keeps (src/core/config_model.c fills it). */
    char **tracked_traits;
    size_t ntracked_traits;
    /* User-agent substrings (case-insensitive) of bots whose events are ignored. */
    char **bot_user_agents;
    size_t nbot_user_agents;
    lf_recycle_policy_t recycle[LF_RECYCLE__COUNT];
} lf_model_t;

void lf_model_free(lf_model_t *m);

/* Fill the policies the rules file did not give with the defaults a B2B team expects:
 * engagement reset, requalify after the cooldown, 30 days for a rejection, 90 for a lost deal
 * (deploy/leadflow.yaml explains them). A model built by hand (all zero) keeps its engagement
 * and requalifies at once until this is called. */
void lf_model_recycling_defaults(lf_model_t *m);

const char *lf_recycle_kind_name(lf_recycle_kind_t k); /* "sales_reject", "deal_lost" */
const char *lf_recycle_eng_name(lf_recycle_eng_t e);   /* "keep", "reset", "scale" */
const char *lf_requalify_name(lf_requalify_t r);       /* "cooldown", "below_enter" */

#endif
