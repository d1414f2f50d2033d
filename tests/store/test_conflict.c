/* Write conflicts on a real Redis (docs/contract.md "Guarantees": a lead's write checks the version
 * it was computed from). Two ways another writer gets in between, both reported per lead as
 * LF_WRITE_CONFLICT with nothing of the lead written (not its hash, index entries, outbox
 * entry or counters), and a retry after re-reading the lead succeeds:
 *  - the stored version moved before the write's check (round 1: the lead is left out);
 *  - a WATCHed key changed after the check, before EXEC (round 2: EXEC aborts the chunk). */
#include <stdlib.h>
#include <string.h>

#include "../unit/test.h"
#include "leadflow/keys.h"
#include "store_test.h"

#define OUTBOX "lf:outbox:leadflow.stage-transitions:0"

static const char *lf_wm_key(void)
{
    static char key[LF_KEY_MAX];
    lf_key_watermarks(key, sizeof(key), lf_store_test_cfg.redis_prefix,
                      lf_store_test_cfg.kafka_group, lf_store_test_cfg.topic_events);
    return key;
}

/* The stored version of lead `id`, read back through the store (what the pipeline does
 * after a conflict). */
static uint64_t lf_reload(lf_store_t *s, const char *id)
{
    lf_lead_t *lead = lf_calloc(1, sizeof(*lead));
    lf_lead_init(lead, lf_str_from(id));
    lf_lead_t *const out[1] = {lead};
    lf_arena_t a;
    lf_arena_init(&a, 4096);
    lf_err_t err = {0};
    uint64_t v = 0;
    if (s->ops->load_leads(s, &id, NULL, 1, out, &lf_store_test_cfg.model, NULL, &a, &err) == LF_OK)
        v = lead->version;
    lf_arena_free(&a);
    lf_free(lead);
    return v;
}

static int lf_write(lf_store_t *s, lf_store_write_t *w, size_t n, int *results)
{
    lf_err_t err = {0};
    int rc = s->ops->write_leads(s, w, n, results, NULL, NULL, &err);
    if (rc != LF_OK) printf("  write_leads: %s\n", err.msg);
    return rc;
}

/* One lead write (store_test.h) of `id` from version `expected` by `writer`, alone: its
 * result, or 0 when the call failed. */
static int lf_write_one(lf_store_t *s, lf_store_write_t *w, lf_lead_t *lead, const char *id,
                        uint64_t expected, const char *writer, lf_arena_t *ar)
{
    int res = 0;
    lf_store_test_write(w, lead, id, expected, writer, ar);
    return lf_write(s, w, 1, &res) == LF_OK ? res : 0;
}

/* Writer A computed u-1's write from version 1; writer B wrote version 2 meanwhile. A's
 * write is a conflict, alone (round 2 is only UNWATCH) and beside a lead that still applies
 * (that one is written); after re-reading, A's retry lands. */
static void test_a_stale_version_is_a_conflict(void)
{
    lf_store_test_flush();
    lf_store_t *a = lf_store_test_open(&lf_store_test_cfg);
    lf_store_t *b = lf_store_test_open(&lf_store_test_cfg);
    CHECK(a && b);
    lf_arena_t ar;
    lf_arena_init(&ar, 64 * 1024);
    lf_lead_t *leads = lf_calloc(4, sizeof(*leads));
    lf_store_write_t w[2];
    int res[2];
    CHECK_INT(lf_write_one(a, w, &leads[0], "u-1", 0, "A", &ar), LF_WRITE_OK);
    CHECK_INT(lf_write_one(b, w, &leads[1], "u-1", 1, "B", &ar), LF_WRITE_OK);
    /* A, from the version it read (1). */
    CHECK_INT(lf_write_one(a, w, &leads[2], "u-1", 1, "A", &ar), LF_WRITE_CONFLICT);
    lf_store_test_write(&w[1], &leads[3], "u-2", 0, "A", &ar);
    CHECK_INT(lf_write(a, w, 2, res), LF_OK);
    CHECK_INT(res[0], LF_WRITE_CONFLICT);
    CHECK_INT(res[1], LF_WRITE_OK);
    /* Of A's stale write nothing: B's version, B's outbox entry, three counts (A's first
     * write, B's, u-2). */
    CHECK_INT(lf_reload(a, "u-1"), 2);
    CHECK_INT(lf_store_test_int("HEXISTS %s %s", OUTBOX, "u-1@2/B"), 1);
    CHECK_INT(lf_store_test_int("HEXISTS %s %s", OUTBOX, "u-1@2/A"), 0);
    CHECK_INT(lf_store_test_int("HLEN %s", OUTBOX), 3);
    CHECK_INT(lf_store_test_int("HGET %s 0.applied", lf_wm_key()), 3);
    CHECK_INT(lf_store_test_int("ZSCORE lf:top u-1"), 2);
    CHECK_INT(lf_store_test_int("ZSCORE lf:top u-2"), 1);
    /* The retry, from what Redis holds now. */
    uint64_t v = lf_reload(a, "u-1");
    CHECK_INT(v, 2);
    CHECK_INT(lf_write_one(a, w, &leads[2], "u-1", v, "A", &ar), LF_WRITE_OK);
    CHECK(lf_store_test_hash_is("lf:lead:{u-1}", w[0].whole));
    CHECK_INT(lf_reload(a, "u-1"), 3);
    CHECK_INT(lf_store_test_int("HEXISTS %s %s", OUTBOX, "u-1@3/A"), 1);
    CHECK_INT(lf_store_test_int("HGET %s 0.applied", lf_wm_key()), 4);
    lf_free(leads);
    lf_arena_free(&ar);
    a->ops->close(a);
    b->ops->close(b);
}

/* The other writer, between chunk 0's check and its EXEC. write_leads reads chunk c's check,
 * then prepares chunk c+1 (store_redis_write.c, lf_sr_write_leads), then sends chunk c's
 * MULTI..EXEC: so `prepare` of chunk 1 runs inside chunk 0's window. */
typedef struct {
    size_t from_seen;
    int injected;
} lf_inject_t;

static void lf_inject(void *ctx, lf_store_write_t *w, size_t from, size_t to)
{
    (void)w;
    (void)to;
    lf_inject_t *in = ctx;
    if (from == 0 || in->injected) return;
    in->from_seen = from;
    redisReply *r = redisCommand(lf_store_test_redis, "HSET lf:lead:{w-0} v 7");
    in->injected = r && r->type == REDIS_REPLY_INTEGER;
    if (r) freeReplyObject(r);
}

#define LF_CHUNK 64 /* LF_LEADS_PER_TX */

/* 65 new leads: two chunks. w-0 is written by another writer after chunk 0's check: EXEC
 * aborts and chunk 0 writes nothing (all 64 leads conflict), chunk 1 lands; re-read, the
 * retry of chunk 0 lands. */
static void test_a_watched_key_changed_before_exec_aborts_the_chunk(void)
{
    lf_store_test_flush();
    lf_store_t *s = lf_store_test_open(&lf_store_test_cfg);
    CHECK(s != NULL);
    lf_arena_t ar;
    lf_arena_init(&ar, 256 * 1024);
    const size_t n = LF_CHUNK + 1;
    lf_lead_t *leads = lf_calloc(n, sizeof(*leads));
    lf_store_write_t *w = lf_calloc(n, sizeof(*w));
    int *res = lf_calloc(n, sizeof(*res));
    char id[32];
    for (size_t i = 0; i < n; i++) {
        snprintf(id, sizeof(id), "w-%zu", i);
        lf_store_test_write(&w[i], &leads[i], id, 0, "A", &ar);
    }
    lf_inject_t in = {0};
    lf_err_t err = {0};
    CHECK_INT(s->ops->write_leads(s, w, n, res, lf_inject, &in, &err), LF_OK);
    CHECK_INT(in.injected, 1);
    CHECK_INT(in.from_seen, LF_CHUNK);
    for (size_t i = 0; i < LF_CHUNK; i++)
        CHECK_INT(res[i], LF_WRITE_CONFLICT);
    CHECK_INT(res[LF_CHUNK], LF_WRITE_OK);
    /* Nothing of chunk 0: w-0 is the other writer's alone, no other lead, index entry,
     * outbox entry or count. */
    CHECK_INT(lf_store_test_int("HLEN lf:lead:{w-0}"), 1);
    CHECK_INT(lf_store_test_int("EXISTS lf:lead:{w-1} lf:lead:{w-63}"), 0);
    CHECK_INT(lf_store_test_int("ZCARD lf:top"), 1);
    CHECK_INT(lf_store_test_int("ZCARD lf:stage:mql"), 1);
    CHECK_INT(lf_store_test_int("HLEN %s", OUTBOX), 1);
    CHECK_INT(lf_store_test_int("HGET %s 0.applied", lf_wm_key()), 1);
    /* The retry: w-0 re-read (version 7), the rest as they were. */
    uint64_t v = lf_reload(s, "w-0");
    CHECK_INT(v, 7);
    lf_store_test_write(&w[0], &leads[0], "w-0", v, "A", &ar);
    CHECK_INT(s->ops->write_leads(s, w, LF_CHUNK, res, NULL, NULL, &err), LF_OK);
    for (size_t i = 0; i < LF_CHUNK; i++)
        CHECK_INT(res[i], LF_WRITE_OK);
    CHECK(lf_store_test_hash_is("lf:lead:{w-0}", w[0].whole));
    CHECK(lf_store_test_hash_is("lf:lead:{w-63}", w[63].whole));
    CHECK_INT(lf_store_test_int("ZCARD lf:top"), n);
    CHECK_INT(lf_store_test_int("HLEN %s", OUTBOX), n);
    CHECK_INT(lf_store_test_int("HGET %s 0.applied", lf_wm_key()), n);
    lf_free(res);
    lf_free(w);
    lf_free(leads);
    lf_arena_free(&ar);
    s->ops->close(s);
}

void suite_conflict(void)
{
    LF_RUN(test_a_stale_version_is_a_conflict);
    LF_RUN(test_a_watched_key_changed_before_exec_aborts_the_chunk);
}
