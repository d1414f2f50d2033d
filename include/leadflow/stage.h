/* The lifecycle stages (docs/contract.md, §4) and the transitions between them. */
#ifndef LEADFLOW_STAGE_H
#define LEADFLOW_STAGE_H

#include <stdint.h>

#include "leadflow/common.h"

typedef enum {
    LF_STAGE_VISITOR = 0,
    LF_STAGE_LEAD,
    LF_STAGE_MQL,
    LF_STAGE_SAL,
    LF_STAGE_SQL,
    LF_STAGE_OPPORTUNITY,
    LF_STAGE_CUSTOMER,
    LF_STAGE_NURTURE,
    LF_STAGE_DISQUALIFIED,
    LF_STAGE__COUNT
} lf_stage_t;

const char *lf_stage_name(lf_stage_t s);
/* LF_OK and *out for a stage name ("mql"), else LF_ERR. */
int lf_stage_from_name(const char *name, size_t len, lf_stage_t *out);

typedef enum {
    LF_REASON_IDENTIFY = 0, /* visitor -> lead: an identify (or first event with a userId) */
    LF_REASON_FIRST_SEEN,   /* a new lead known by userId from its first event */
    LF_REASON_SCORE_THRESHOLD,
    LF_REASON_SCORE_DECAY, /* the score decayed below the exit threshold (time, not event) */
    LF_REASON_SCORE_DROP,  /* a negative-points event took it below the exit threshold */
    LF_REASON_SALES_EVENT,
    LF_REASON_RULES_SWITCH, /* `leadflow replay --switch`: the new rules put the lead here */
    LF_REASON__COUNT
} lf_reason_t;

const char *lf_reason_name(lf_reason_t r); /* "identify", "score_threshold", ... */

/* A stage change, as published on the transitions topic (docs/contract.md "Transitions out"). */
typedef struct {
    uint64_t seq; /* 1, 2, 3... per lead */
    lf_stage_t from, to;
    lf_reason_t reason;
    double score, fit, engagement;
    int grade;                   /* 1, 2, 3 for L1, L2, L3 */
    int64_t at_ms;               /* event time of the change */
    char trigger[LF_ID_MAX + 1]; /* the messageId that caused it; "" for decay */
    /* With a challenger split: which model published it ("champion", "challenger"); NULL
     * (not encoded) otherwise. Set by the pipeline, not by the stage machine. */
    const char *model;
    /* A recycle (a sales move to nurture) says which policy of model.recycling applied; the
     * other transitions leave these 0 and encode as before. */
    uint8_t recycled;        /* 1: this transition is a recycle */
    uint8_t recycle;         /* lf_recycle_eng_t (model.h): keep, reset, scale */
    uint8_t requalify;       /* lf_requalify_t: cooldown, below_enter */
    double recycle_factor;   /* with scale */
    int64_t requalify_at_ms; /* back to mql no earlier than this (event time) */
} lf_transition_t;

/* Whether the sales feedback kind moves a lead from `from`, and where to. Forward moves only,
 * except to nurture and disqualified. Returns 1 and sets *to when it moves. */
int lf_stage_sales_move(lf_stage_t from, int kind, lf_stage_t *to);

/* Whether `from -> to` is ever allowed (the stage order; nurture and disqualified aside). */
int lf_stage_move_allowed(lf_stage_t from, lf_stage_t to);

#endif
