/* Inside the rules-file loader (leadflow.yaml, docs/contract.md "The rules file"): what its files
 * share.
 *
 * Loading happens in three passes over one document:
 *   1. config_yaml.c: libyaml's event parser builds a small tree of nodes (in an arena) that
 *      remembers the line and column of everything, resolves aliases and marks duplicate keys;
 *      typed readers (lf_yaml_scalar, lf_yaml_number, ...) read it and report what is wrong;
 *   2. config_walk.c: the settings (kafka, redis, processing, limits, version) are read by
 *      walking the tree against ONE table, lf_settings[] in config_settings.c: key path, type,
 *      default, offset in lf_config_t, help. Defaults, unknown-key detection ("did you mean"),
 *      type checks, ranges and the summary that `leadflow check-config` prints
 *      (config_print.c) all come from that table;
 *   3. config_model.c: the model section has its own parser (rules are lists of structured
 *      maps, not scalar settings), then config_model_check.c runs the cross-field checks over
 *      the result and derives the rules version.
 *
 * Every problem is collected, never just the first (config_diag.c): they are sorted by position
 * and printed as "FILE:LINE:COL: message", so one run of check-config shows everything to fix.
 * config_load.c runs the passes. */
#ifndef LEADFLOW_CONFIG_INT_H
#define LEADFLOW_CONFIG_INT_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "leadflow/alloc.h"
#include "leadflow/config.h"

#define LF_NKEYS(a) (sizeof(a) / sizeof((a)[0]))

/*---- The settings table (config_settings.c) ----------------------------------------------*/

typedef enum {
    LF_SET_STRING,    /* char *; NULL default = optional */
    LF_SET_INT,       /* int (or size_t / int64_t by the field's size), in [min, max] */
    LF_SET_DURATION,  /* "15s", "2m", bare seconds; stored in units of unit_ms, in [min, max] ms */
    LF_SET_TIMESTAMP, /* ISO-8601, stored as int64_t epoch ms */
    LF_SET_ENUM,      /* int: index in choices[] */
    LF_SET_PROPS,     /* map of scalars: lf_prop_t array (kafka.properties), count follows it */
} lf_set_type_t;

typedef struct {
    const char *path; /* dotted key path in the file */
    lf_set_type_t type;
    const char *def; /* the default, written as in the file; NULL = none */
    size_t off, size;
    int64_t min, max, unit_ms;
    const char *const *choices; /* LF_SET_ENUM: NULL-terminated */
    int secret;                 /* never printed */
    const char *help;
} lf_setting_t;

#define LF_NSETTINGS 43 /* entries of lf_settings[]: a static assert there keeps this true */

extern const lf_setting_t lf_settings[LF_NSETTINGS];

const lf_setting_t *lf_setting_find(const char *path);
/* Parse the text of one scalar setting and store it. Returns LF_OK, or LF_ERR with a reason
 * (completing "<path>: ...") in why. The defaults go through here too. */
int lf_setting_apply(lf_config_t *cfg, const lf_setting_t *s, const char *text, int is_null,
                     char *why, size_t cap);
/* The stored value of an integer-like setting (INT, DURATION in unit_ms, TIMESTAMP, ENUM). */
int64_t lf_setting_load_int(const lf_config_t *cfg, const lf_setting_t *s);
void lf_setting_props_free(lf_config_t *cfg);

/* A value written ${env:NAME} or ${file:PATH} (relative to the rules file's folder), resolved:
 * *out a new string, or NULL when text is an ordinary value; $${ stands for a literal ${.
 * LF_ERR with the reason in why, which names the reference, never a value (config_ref.c). */
int lf_config_ref_resolve(const char *text, const char *rules_path, char **out, char *why,
                          size_t cap);

/* A vector of n strings, each its own lf_strdup copy. */
void lf_strv_add(char ***v, size_t *n, const char *s);
void lf_strv_free(char **v, size_t n);

/* The largest unit that divides ms exactly: 1209600000 -> "14d" (duration.c). */
void lf_duration_format(int64_t ms, char *buf, size_t cap);

/*---- The YAML tree (config_yaml.c) -------------------------------------------------------*/

typedef enum { LF_N_SCALAR, LF_N_MAP, LF_N_SEQ, LF_N_ALIAS } lf_node_type_t;

/* A node of the YAML tree. Containers keep their children as a list; a map's children
 * alternate key, value. */
typedef struct lf_node {
    lf_node_type_t type;
    int line, col;   /* 1-based */
    const char *str; /* scalar text, NUL-terminated */
    size_t len;
    int plain; /* a plain (unquoted) scalar: may be null, a number, a bool */
    int dup;   /* a map key seen before in the same map: its pair is ignored */
    size_t n;  /* children */
    struct lf_node *first, *last, *next;
    const struct lf_node *target; /* alias */
    const char *anchor;           /* registered when the node is complete */
} lf_node_t;

/* Iterate a map's pairs, skipping repeated keys. */
#define LF_MAP_EACH(map, k, v)                                                                     \
    for (const lf_node_t *k = (map)->first, *v = k ? k->next : NULL; k && v;                       \
         k = v->next, v = k ? k->next : NULL)                                                      \
        if (!k->dup)

/*---- The loader: one load's state, shared by the passes ----------------------------------*/

typedef struct {
    int line, col; /* 0 = no position (the file itself) */
    unsigned seq;
    char *msg;
} lf_diag_t;

typedef struct {
    const char *name;
    const lf_node_t *node;
} lf_anchor_t;

/* A name and where it stands: map keys and rule names, for the duplicate checks. */
typedef struct {
    const char *name;
    const lf_node_t *node;
    int repeat; /* set by lf_cfg_report_dups: a name seen before */
} lf_named_t;

typedef struct {
    const char *name; /* for messages */
    lf_config_t *cfg;
    lf_arena_t arena;
    lf_diag_t *diags;
    size_t ndiags, capdiags;
    int fatal; /* the YAML could not be parsed: nothing else to check */
    lf_anchor_t *anchors;
    size_t nanchors;
    const lf_node_t *where[LF_NSETTINGS]; /* node that set each setting */
    const lf_node_t *model;
    const lf_node_t *at_half_life, *at_l1, *at_l2, *at_enter, *at_exit;
    lf_named_t *names; /* rule names, for duplicates */
    size_t nnames;
    const lf_node_t **trait_at;  /* where each tracked trait was first named */
    const lf_node_t *at_require; /* model.stages.mql.require_traits */
    const lf_node_t *at_model;   /* the key "model" */
    lf_diag_t *warns;            /* valid but probably a mistake: cfg->warnings on success */
    size_t nwarns, capwarns;
} lf_loader_t;

/*---- Diagnostics (config_diag.c) ---------------------------------------------------------*/

/* An error at line:col; any error makes the file invalid. */
void lf_cfg_error(lf_loader_t *ld, int line, int col, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* A warning: kept apart from the errors, which alone make a file invalid. */
void lf_cfg_warn(lf_loader_t *ld, int line, int col, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

#define LF_ERR_AT(ld, node, ...) lf_cfg_error((ld), (node)->line, (node)->col, __VA_ARGS__)
#define LF_WARN_AT(ld, node, ...) lf_cfg_warn((ld), (node)->line, (node)->col, __VA_ARGS__)

/* Print the errors in file order (the first one goes into err) and free them. */
void lf_cfg_errors_flush(lf_loader_t *ld, FILE *out, lf_err_t *err);
/* Sort the warnings in file order, hand them to ld->cfg->warnings when keep, free them. */
void lf_cfg_warnings_flush(lf_loader_t *ld, int keep);
/* Sort v[] by name and position, and report each repeated name as
 * "duplicate <what> "x" (first at line N)" and mark it repeat. */
void lf_cfg_report_dups(lf_loader_t *ld, lf_named_t *v, size_t n, const char *what);

/* Edit distance ignoring case (SIZE_MAX for words over 48 characters). */
size_t lf_cfg_edit_distance(const char *a, const char *b);
/* The nearest candidate to a misspelt word, or NULL when nothing is close. */
const char *lf_cfg_suggest(const char *word, const char *const *cands, size_t n);
/* "unknown key "x" in <where>" with a "did you mean" or the list of known keys. */
void lf_cfg_unknown_key(lf_loader_t *ld, const lf_node_t *key, const char *where,
                        const char *const *cands, size_t n);

/*---- Reading the tree (config_yaml.c) ----------------------------------------------------*/

/* The tree of the first document. NULL for an empty file; ld->fatal when the YAML itself is
 * broken. */
const lf_node_t *lf_yaml_build(lf_loader_t *ld, const char *buf, size_t len);
/* An alias's target; any other node itself. */
const lf_node_t *lf_yaml_deref(const lf_node_t *n);
/* Whether a node is YAML's null (empty, ~, null, Null, NULL, unquoted), or absent. */
int lf_yaml_is_null(const lf_node_t *n);
/* "a mapping", "a list", "nothing", or the scalar quoted: for "expected X, got Y". */
const char *lf_yaml_what(const lf_node_t *n, char *buf, size_t cap);

/* The readers below report "ctx: expected ..., got ..." at the node when it is not what they
 * read, and return NULL or LF_ERR then. */

/* The text of a map key (NULL when the key is not a scalar). */
const lf_node_t *lf_yaml_key(lf_loader_t *ld, const lf_node_t *k);
/* A scalar's text (not null). */
const char *lf_yaml_scalar(lf_loader_t *ld, const lf_node_t *n, const char *ctx,
                           const char *expect);
int lf_yaml_number(lf_loader_t *ld, const lf_node_t *n, const char *ctx, double *out);
int lf_yaml_bool(lf_loader_t *ld, const lf_node_t *n, const char *ctx, int *out);
/* A positive duration in ms. */
int lf_yaml_duration(lf_loader_t *ld, const lf_node_t *n, const char *ctx, int64_t *out);
/* A string or a list of strings, appended to *v. Empty strings are errors. */
void lf_yaml_string_list(lf_loader_t *ld, const lf_node_t *n, const char *ctx, char ***v,
                         size_t *nv);
/* A mapping; NULL, nothing reported, for null (an empty section). */
const lf_node_t *lf_yaml_map(lf_loader_t *ld, const lf_node_t *n, const char *ctx);
/* The non-empty strings of a node lf_yaml_string_list read (n may be NULL), each as written
 * (for its position; lf_yaml_deref(it)->str is the text), reporting nothing:
 *   for (const lf_node_t *it = lf_yaml_strings_first(n); it; it = lf_yaml_strings_next(n, it))
 */
const lf_node_t *lf_yaml_strings_first(const lf_node_t *n);
const lf_node_t *lf_yaml_strings_next(const lf_node_t *n, const lf_node_t *it);

/*---- The passes --------------------------------------------------------------------------*/

/* Walk one map of settings whose key path is `prefix` ("" at the top): config_walk.c. */
void lf_settings_walk(lf_loader_t *ld, const lf_node_t *map, const char *prefix);
/* Checks that involve more than one setting: config_walk.c. */
void lf_settings_check(lf_loader_t *ld);
/* The model section into ld->cfg->model: config_model.c. */
void lf_model_parse(lf_loader_t *ld, const lf_node_t *n);
/* What a rule's kinds say that is valid but probably a mistake: config_model_check.c. */
void lf_model_warn_kinds(lf_loader_t *ld, const lf_node_t *at_kind, const char *ctx,
                         const lf_engagement_rule_t *r);
/* Whole-model checks, warnings, and the version when the file sets none:
 * config_model_check.c. */
void lf_model_check(lf_loader_t *ld);

#endif
