/* The stage order and the moves sales feedback causes (docs/contract.md, §4). Score-driven moves
 * (lead/nurture <-> mql) are decided in lead.c, which knows the score. */
#include <string.h>

#include "leadflow/event.h"
#include "leadflow/stage.h"

static const char *const lf_stage_names[LF_STAGE__COUNT] = {
    "visitor", "lead", "mql", "sal", "sql", "opportunity", "customer", "nurture", "disqualified",
};

static const char *const lf_reason_names[LF_REASON__COUNT] = {
    "identify",   "first_seen",  "score_threshold", "score_decay",
    "score_drop", "sales_event", "rules_switch",
};

const char *lf_stage_name(lf_stage_t s)
{
    return (unsigned)s < LF_STAGE__COUNT ? lf_stage_names[s] : "unknown";
}

int lf_stage_from_name(const char *name, size_t len, lf_stage_t *out)
{
    for (int i = 0; i < LF_STAGE__COUNT; i++) {
        if (strlen(lf_stage_names[i]) == len && memcmp(lf_stage_names[i], name, len) == 0) {
            *out = (lf_stage_t)i;
            return LF_OK;
        }
    }
    return LF_ERR;
}

const char *lf_reason_name(lf_reason_t r)
{
    return (unsigned)r < LF_REASON__COUNT ? lf_reason_names[r] : "unknown";
}

int lf_stage_move_allowed(lf_stage_t from, lf_stage_t to)
{
    if (from == to || from == LF_STAGE_DISQUALIFIED) return 0;
    if (to == LF_STAGE_DISQUALIFIED) return 1;
    if (to == LF_STAGE_NURTURE)
        /* Recycled: cooled down, rejected by sales or a lost deal. Customers stay customers. */
        return from >= LF_STAGE_LEAD && from <= LF_STAGE_OPPORTUNITY;
    if (to == LF_STAGE_VISITOR) return 0;
    /* From nurture a lead may come back at mql or beyond. */
    if (from == LF_STAGE_NURTURE) return to >= LF_STAGE_MQL && to <= LF_STAGE_CUSTOMER;
    return to > from; /* forward only */
}

int lf_stage_sales_move(lf_stage_t from, int kind, lf_stage_t *to)
{
    lf_stage_t target;
    switch (kind) {
    case LF_KIND_SALES_ACCEPT:
        target = LF_STAGE_SAL;
        break;
    case LF_KIND_SALES_QUALIFY:
        target = LF_STAGE_SQL;
        break;
    case LF_KIND_OPPORTUNITY_CREATED:
        target = LF_STAGE_OPPORTUNITY;
        break;
    case LF_KIND_DEAL_WON:
        target = LF_STAGE_CUSTOMER;
        break;
    case LF_KIND_SALES_REJECT:
        target = LF_STAGE_NURTURE;
        break;
    case LF_KIND_DEAL_LOST:
        target = LF_STAGE_NURTURE;
        break;
    case LF_KIND_DISQUALIFY:
        target = LF_STAGE_DISQUALIFIED;
        break;
    default:
        return 0;
    }
    /* Sales work with known leads, not anonymous visitors. */
    if (from == LF_STAGE_VISITOR) return 0;
    /* A rejection or a lost deal only recycles leads sales were working on. */
    if (target == LF_STAGE_NURTURE && from == LF_STAGE_LEAD) return 0;
    if (!lf_stage_move_allowed(from, target)) return 0;
    *to = target;
    return 1;
}
