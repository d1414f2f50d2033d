/* save_progress on a real Redis: the next offset only moves forward, and an offset's counters
 * are added once however many instances processed it (docs/contract.md "Guarantees": no double
 * count). The scenario: an instance loses a partition after its batch's writes but before its
 * progress save; the new owner reads the next offset before that late save and processes the same
 * offsets again. Lead writes are protected by each lead's version; these counters, of the
 * events no lead write accounted for (dead letters above all), only by the save itself. */
#include <stdlib.h>
#include <string.h>

#include "../unit/test.h"
#include "leadflow/keys.h"
#include "store_test.h"

#define TOPIC "leadflow.events"

/* A field of the progress hash as a number; -1 when absent. */
static long long lf_wm(int32_t part, const char *name)
{
    char key[LF_KEY_MAX], field[64];
    lf_key_watermarks(key, sizeof(key), lf_store_test_cfg.redis_prefix,
                      lf_store_test_cfg.kafka_group, TOPIC);
    if (name)
        snprintf(field, sizeof(field), "%d.%s", (int)part, name);
    else
        snprintf(field, sizeof(field), "%d", (int)part);
    redisReply *r = redisCommand(lf_store_test_redis, "HGET %s %s", key, field);
    long long v = r && r->type == REDIS_REPLY_STRING ? strtoll(r->str, NULL, 10) : -1;
    if (r) freeReplyObject(r);
    return v;
}

static int lf_save(int32_t part, int64_t next, const lf_offset_run_t *runs, size_t n)
{
    lf_progress_t p = {part, next, 0, runs, n};
    lf_err_t err = {0};
    return lf_store_test_store->ops->save_progress(lf_store_test_store, TOPIC, &p, 1,
                                                   "leadflow.stage-transitions", NULL, 0, &err);
}

/* Each outcome adds to its counters, and to "consumed". */
static void test_progress_counts_each_outcome(void)
{
    lf_store_test_flush();
    const lf_offset_run_t runs[] = {{0, 3, LF_OUTCOME_APPLIED},
                                    {3, 2, LF_OUTCOME_FILTERED},
                                    {5, 1, LF_OUTCOME_DUPLICATE},
                                    {7, 2, LF_OUTCOME_DEAD}};
    CHECK_INT(lf_save(4, 10, runs, 4), LF_OK);
    CHECK_INT(lf_wm(4, NULL), 10);
    CHECK_INT(lf_wm(4, "consumed"), 8);
    CHECK_INT(lf_wm(4, "applied"), 5);
    CHECK_INT(lf_wm(4, "filtered"), 2);
    CHECK_INT(lf_wm(4, "duplicates"), 1);
    CHECK_INT(lf_wm(4, "dead"), 2);
    CHECK_INT(lf_wm(3, "consumed"), -1); /* other partitions untouched */
}

/* The old owner saves first; the new owner, which read next offset 0 before that save,
 * counts only what lies past it; a repeated save counts nothing. */
static void test_a_save_behind_the_next_offset_counts_nothing_twice(void)
{
    lf_store_test_flush();
    const lf_offset_run_t old_owner[] = {
        {2, 1, LF_OUTCOME_DEAD}, {5, 1, LF_OUTCOME_DEAD}, {7, 1, LF_OUTCOME_DEAD}};
    CHECK_INT(lf_save(0, 10, old_owner, 3), LF_OK);
    CHECK_INT(lf_wm(0, "dead"), 3);
    const lf_offset_run_t new_owner[] = {{2, 1, LF_OUTCOME_DEAD},
                                         {5, 1, LF_OUTCOME_DEAD},
                                         {7, 1, LF_OUTCOME_DEAD},
                                         {12, 1, LF_OUTCOME_DEAD}};
    CHECK_INT(lf_save(0, 15, new_owner, 4), LF_OK);
    CHECK_INT(lf_wm(0, "dead"), 4);
    CHECK_INT(lf_wm(0, "consumed"), 4);
    CHECK_INT(lf_wm(0, NULL), 15);
    CHECK_INT(lf_save(0, 10, old_owner, 3), LF_OK); /* late and repeated */
    CHECK_INT(lf_wm(0, "dead"), 4);
    CHECK_INT(lf_wm(0, NULL), 15);
}

/* The new owner saves first, part of the way; the old owner's late save counts only its
 * offsets past that, and moves the next offset on; the new owner, going on, counts only
 * offsets past the old owner's. */
static void test_a_late_save_counts_only_past_the_next_offset(void)
{
    lf_store_test_flush();
    const lf_offset_run_t first[] = {{2, 1, LF_OUTCOME_DEAD}, {5, 1, LF_OUTCOME_DEAD}};
    CHECK_INT(lf_save(1, 6, first, 2), LF_OK);
    const lf_offset_run_t late[] = {
        {2, 1, LF_OUTCOME_DEAD}, {5, 1, LF_OUTCOME_DEAD}, {7, 1, LF_OUTCOME_DEAD}};
    CHECK_INT(lf_save(1, 10, late, 3), LF_OK);
    CHECK_INT(lf_wm(1, "dead"), 3);
    CHECK_INT(lf_wm(1, NULL), 10);
    const lf_offset_run_t next[] = {{7, 1, LF_OUTCOME_DEAD}, {11, 1, LF_OUTCOME_DEAD}};
    CHECK_INT(lf_save(1, 12, next, 2), LF_OK);
    CHECK_INT(lf_wm(1, "dead"), 4);
    CHECK_INT(lf_wm(1, "consumed"), 4);
    CHECK_INT(lf_wm(1, NULL), 12);
}

/* A run that straddles the next offset is counted from it on. */
static void test_a_run_across_the_next_offset(void)
{
    lf_store_test_flush();
    CHECK_INT(lf_save(2, 20, NULL, 0), LF_OK);
    const lf_offset_run_t runs[] = {{15, 10, LF_OUTCOME_FILTERED}};
    CHECK_INT(lf_save(2, 25, runs, 1), LF_OK);
    CHECK_INT(lf_wm(2, "filtered"), 5);
    CHECK_INT(lf_wm(2, "applied"), 5);
    CHECK_INT(lf_wm(2, "consumed"), 5);
    CHECK_INT(lf_wm(2, NULL), 25);
}

/* A redelivery inside one batch (the consumer went back): its offsets count once. */
static void test_a_redelivery_in_one_save_counts_once(void)
{
    lf_store_test_flush();
    const lf_offset_run_t runs[] = {{3, 4, LF_OUTCOME_DEAD},
                                    {5, 3, LF_OUTCOME_DEAD},
                                    {4, 1, LF_OUTCOME_DUPLICATE},
                                    {9, 1, LF_OUTCOME_DUPLICATE}};
    CHECK_INT(lf_save(5, 10, runs, 4), LF_OK);
    CHECK_INT(lf_wm(5, "dead"), 5); /* 3..7 */
    CHECK_INT(lf_wm(5, "duplicates"), 1);
    CHECK_INT(lf_wm(5, "consumed"), 6);
}

/* Several partitions in one call, each against its own next offset. */
static void test_partitions_are_counted_apart(void)
{
    lf_store_test_flush();
    const lf_offset_run_t r0[] = {{0, 4, LF_OUTCOME_DEAD}};
    CHECK_INT(lf_save(0, 4, r0, 1), LF_OK);
    const lf_offset_run_t r1[] = {{0, 4, LF_OUTCOME_DUPLICATE}};
    lf_progress_t p[] = {{0, 4, 0, r0, 1}, {1, 4, 0, r1, 1}};
    lf_err_t err = {0};
    CHECK_INT(lf_store_test_store->ops->save_progress(lf_store_test_store, TOPIC, p, 2,
                                                      "leadflow.stage-transitions", NULL, 0, &err),
              LF_OK);
    CHECK_INT(lf_wm(0, "dead"), 4); /* saved already: not again */
    CHECK_INT(lf_wm(1, "duplicates"), 4);
    CHECK_INT(lf_wm(1, "consumed"), 4);
    CHECK_INT(lf_wm(1, NULL), 4);
}

void suite_progress(void)
{
    LF_RUN(test_progress_counts_each_outcome);
    LF_RUN(test_a_save_behind_the_next_offset_counts_nothing_twice);
    LF_RUN(test_a_late_save_counts_only_past_the_next_offset);
    LF_RUN(test_a_run_across_the_next_offset);
    LF_RUN(test_a_redelivery_in_one_save_counts_once);
    LF_RUN(test_partitions_are_counted_apart);
}
