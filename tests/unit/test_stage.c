/* The stage order: every allowed and every forbidden move, and the sales feedback moves. */
#include "leadflow/event.h"
#include "leadflow/stage.h"
#include "test.h"

/* Rows: from; columns: to; in enum order
 * visitor lead mql sal sql opportunity customer nurture disqualified. */
static const char *const lf_expected_moves[LF_STAGE__COUNT] = {
    /* visitor      */ ".YYYYYY.Y",
    /* lead         */ "..YYYYYYY",
    /* mql          */ "...YYYYYY",
    /* sal          */ "....YYYYY",
    /* sql          */ ".....YYYY",
    /* opportunity  */ "......YYY",
    /* customer     */ "........Y",
    /* nurture      */ "..YYYYY.Y",
    /* disqualified */ ".........",
};

static void test_every_move_allowed_or_forbidden(void)
{
    for (int f = 0; f < LF_STAGE__COUNT; f++) {
        for (int t = 0; t < LF_STAGE__COUNT; t++) {
            int want = lf_expected_moves[f][t] == 'Y';
            int got = lf_stage_move_allowed((lf_stage_t)f, (lf_stage_t)t);
            if (want != got) {
                lf_test_fail(__FILE__, __LINE__, "%s -> %s: allowed=%d, expected %d",
                             lf_stage_name((lf_stage_t)f), lf_stage_name((lf_stage_t)t), got, want);
                return;
            }
        }
    }
}

static void test_stage_names_round_trip(void)
{
    for (int s = 0; s < LF_STAGE__COUNT; s++) {
        const char *n = lf_stage_name((lf_stage_t)s);
        lf_stage_t back;
        CHECK_INT(lf_stage_from_name(n, strlen(n), &back), LF_OK);
        CHECK_INT(back, s);
    }
    lf_stage_t x;
    CHECK_INT(lf_stage_from_name("MQL", 3, &x), LF_ERR);
    CHECK_STR(lf_reason_name(LF_REASON_SCORE_DECAY), "score_decay");
    CHECK_STR(lf_reason_name(LF_REASON_SALES_EVENT), "sales_event");
}

static int lf_move(lf_stage_t from, lf_kind_t kind, lf_stage_t *to)
{
    return lf_stage_sales_move(from, (int)kind, to);
}

static void test_sales_moves(void)
{
    lf_stage_t to;
    CHECK(lf_move(LF_STAGE_MQL, LF_KIND_SALES_ACCEPT, &to) && to == LF_STAGE_SAL);
    CHECK(lf_move(LF_STAGE_LEAD, LF_KIND_SALES_ACCEPT, &to) && to == LF_STAGE_SAL);
    CHECK(lf_move(LF_STAGE_SAL, LF_KIND_SALES_QUALIFY, &to) && to == LF_STAGE_SQL);
    CHECK(lf_move(LF_STAGE_MQL, LF_KIND_SALES_QUALIFY, &to) && to == LF_STAGE_SQL); /* skip */
    CHECK(lf_move(LF_STAGE_SQL, LF_KIND_OPPORTUNITY_CREATED, &to) && to == LF_STAGE_OPPORTUNITY);
    CHECK(lf_move(LF_STAGE_OPPORTUNITY, LF_KIND_DEAL_WON, &to) && to == LF_STAGE_CUSTOMER);
    CHECK(lf_move(LF_STAGE_OPPORTUNITY, LF_KIND_DEAL_LOST, &to) && to == LF_STAGE_NURTURE);
    CHECK(lf_move(LF_STAGE_SAL, LF_KIND_SALES_REJECT, &to) && to == LF_STAGE_NURTURE);
    CHECK(lf_move(LF_STAGE_MQL, LF_KIND_SALES_REJECT, &to) && to == LF_STAGE_NURTURE);
    CHECK(lf_move(LF_STAGE_CUSTOMER, LF_KIND_DISQUALIFY, &to) && to == LF_STAGE_DISQUALIFIED);
    CHECK(lf_move(LF_STAGE_NURTURE, LF_KIND_SALES_ACCEPT, &to) && to == LF_STAGE_SAL);
    /* Forbidden: backwards, terminal, anonymous, not a sales kind. */
    CHECK(!lf_move(LF_STAGE_SQL, LF_KIND_SALES_ACCEPT, &to));
    CHECK(!lf_move(LF_STAGE_CUSTOMER, LF_KIND_DEAL_LOST, &to));
    CHECK(!lf_move(LF_STAGE_CUSTOMER, LF_KIND_SALES_QUALIFY, &to));
    CHECK(!lf_move(LF_STAGE_DISQUALIFIED, LF_KIND_SALES_ACCEPT, &to));
    CHECK(!lf_move(LF_STAGE_DISQUALIFIED, LF_KIND_DISQUALIFY, &to));
    CHECK(!lf_move(LF_STAGE_VISITOR, LF_KIND_SALES_ACCEPT, &to));
    CHECK(!lf_move(LF_STAGE_LEAD, LF_KIND_SALES_REJECT, &to)); /* not being worked yet */
    CHECK(!lf_move(LF_STAGE_NURTURE, LF_KIND_DEAL_LOST, &to)); /* already nurture */
    CHECK(!lf_move(LF_STAGE_MQL, LF_KIND_PAGE_VIEW, &to));
    CHECK(!lf_move(LF_STAGE_MQL, LF_KIND_OTHER, &to));
}

void suite_stage(void)
{
    LF_RUN(test_every_move_allowed_or_forbidden);
    LF_RUN(test_stage_names_round_trip);
    LF_RUN(test_sales_moves);
}
