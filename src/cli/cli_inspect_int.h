/* `leadflow inspect` inside: what was read for one lead, and the pieces the text and JSON
 * printers share (cli_inspect_model.c). Internal to src/cli. */
#ifndef LEADFLOW_CLI_INSPECT_INT_H
#define LEADFLOW_CLI_INSPECT_INT_H

#include <hiredis/hiredis.h>
#include <stdint.h>

#include "cli_int.h"
#include "leadflow/event.h"
#include "leadflow/lead.h"
#include "leadflow/keys.h"
#include "leadflow/lead_codec.h"

/* What was read for one lead. */
typedef struct {
    const char *query; /* the id asked for (hashed when ids.hmac_key is set) */
    const char *raw;   /* with ids.hmac_key: the raw id asked for, NULL if given hashed */
    const char *id;    /* the lead shown: query, or the lead it was linked to */
    int linked;        /* query is an anonymousId linked to id */
    int visitor_left;  /* the linked visitor still has its own record (lf:v:{} or a v1 hash) */
    redisReply *hash;  /* HGETALL of lf:lead:{id} (no elements: none) */
    /* A visitor (an anonymousId with no alias and no lf:lead:{} hash): its record, read with
     * GET lf:v:{id}, and that key's PTTL (ms; -1 no TTL, -2 gone). */
    int visitor;
    redisReply *vrec;
    int64_t pttl_ms;
    char key[LF_KEY_MAX]; /* the key the record was read from */
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

/* The name of a kept trait ("?" for an index the model does not have). */
const char *lf_inspect_trait_name(const lf_model_t *m, const lf_trait_t *t);
/* The score and grade as stored: a known lead's readable fields score and grade; a visitor's
 * record has none, so fit + eng and its grade under the loaded rules. grade: >= 8 bytes. */
double lf_inspect_stored_score(const lf_inspect_t *in, char *grade, size_t cap,
                               const lf_model_t *m);
/* Where the record lives and in which layout, for a person: "packed", "v1, rewritten on next
 * write"; and for --json: "packed", "v1". */
const char *lf_inspect_layout_text(const lf_inspect_t *in);
const char *lf_inspect_layout_name(const lf_inspect_t *in);

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
