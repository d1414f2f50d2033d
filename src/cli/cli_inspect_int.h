/* `leadflow inspect` inside: what was read for one lead, and the pieces the text and JSON
 * printers share (cli_inspect_model.c). Internal to src/cli. */
#ifndef LEADFLOW_CLI_INSPECT_INT_H
#define LEADFLOW_CLI_INSPECT_INT_H

#include <hiredis/hiredis.h>
#include <stdint.h>

#include "cli_int.h"
#include "leadflow/event.h"
#include "leadflow/lead.h"
#include "leadflow/lead_codec.h"

/* What was read for one lead. */
typedef struct {
    const char *query; /* the id asked for */
    const char *id;    /* the lead shown: query, or the lead it was linked to */
    int linked;        /* query is an anonymousId linked to id */
    int visitor_left;  /* the linked visitor still has its own hash */
    redisReply *hash;  /* HGETALL */
    lf_lead_t lead;
    int64_t at_ms, now_ms; /* the time asked for, and wall clock */
    int at_given;
} lf_inspect_t;

/*---- What the model says about the lead (cli_inspect_model.c) ------------------------------*/

/* The same test src/core/lead.c makes when it computes fit: every condition on the kept
 * traits. */
int lf_inspect_fit_holds(const lf_lead_t *l, const lf_model_t *m, const lf_fit_rule_t *r);
/* Events the lead has of the rule's kinds (all events for a rule of any kind). A rule may
 * also test path, UTM or properties, so this bounds what it matched, no more. */
uint64_t lf_inspect_rule_events(const lf_lead_t *l, const lf_engagement_rule_t *r);
/* The rule's kinds as "a,b" ("any" for none). */
void lf_inspect_kinds(const lf_engagement_rule_t *r, char *buf, size_t cap);

/* A history field's value, "seq|from|to|reason|at|score" (lead_codec.h). */
typedef struct {
    char seq[24], from[24], to[24], reason[32], at[24], score[40];
} lf_hist_entry_t;

/* The history fields of the hash, oldest first; returns how many (at most LF_HISTORY_KEEP). */
size_t lf_inspect_history(const redisReply *hash, lf_hist_entry_t *out);

/*---- Output ------------------------------------------------------------------------------*/

/* Ids, UTM values and traits come from events: a newline or an escape sequence in one would
 * break the report (or forge lines), so the human output shows them escaped (--json: exact).
 * Each call needs its own buffer. */
typedef char lf_esc_buf_t[LF_ESCAPED_CAP(256)];
const char *lf_inspect_esc(const char *p, size_t n, char *buf);
const char *lf_inspect_esc_c(const char *s, char *buf);

void lf_inspect_print(lf_cli_t *cli, const lf_inspect_t *in);         /* cli_inspect_text.c */
struct cJSON *lf_inspect_json(lf_cli_t *cli, const lf_inspect_t *in); /* cli_inspect_json.c */

#endif
