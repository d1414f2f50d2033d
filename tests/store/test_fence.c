/* The store fence on a real Redis (docs/contract.md "Guarantees", "A Redis that lost data is
 * noticed"): the store epoch is created once and stamped on the progress hash; a flush is noticed
 * by the next fence (LF_STORE_LOST) and by a progress save that comes before it (refused, nothing
 * written); a progress hash of another epoch is a loss; a server that may evict keys is
 * refused at connect. Each test opens a store handle of its own: the epoch is per handle. */
#include <stdlib.h>
#include <string.h>

#include "../unit/test.h"
#include "leadflow/keys.h"
#include "store_test.h"

#define TOPIC "leadflow.events"

/* A new handle (an instance of its own); connection errors show in its first call. */
static lf_store_t *lf_open(void)
{
    lf_err_t err = {0};
    return lf_store_redis_open(&lf_store_test_cfg, &err);
}

static int lf_fence(lf_store_t *s, int64_t *next, lf_err_t *err)
{
    const int32_t parts[] = {0, 1};
    int64_t ts[2];
    memset(err, 0, sizeof(*err));
    return s->ops->load_watermarks(s, TOPIC, parts, 2, next, ts, err);
}

static void lf_cmd(const char *cmd)
{
    redisReply *r = redisCommand(lf_store_test_redis, cmd);
    CHECK(r && r->type != REDIS_REPLY_ERROR);
    if (r) freeReplyObject(r);
}

static char *lf_get(const char *fmt, const char *a)
{
    static char buf[128];
    redisReply *r = redisCommand(lf_store_test_redis, fmt, a);
    buf[0] = '\0';
    if (r && r->type == REDIS_REPLY_STRING) snprintf(buf, sizeof(buf), "%s", r->str);
    if (r) freeReplyObject(r);
    return buf;
}

static const char *lf_wm_key(void)
{
    static char key[LF_KEY_MAX];
    lf_key_watermarks(key, sizeof(key), lf_store_test_cfg.redis_prefix,
                      lf_store_test_cfg.kafka_group, TOPIC);
    return key;
}

static int lf_save(lf_store_t *s, int64_t next, lf_err_t *err)
{
    const lf_offset_run_t runs[] = {{next - 1, 1, LF_OUTCOME_DEAD}};
    lf_progress_t p = {0, next, 0, runs, 1};
    memset(err, 0, sizeof(*err));
    return s->ops->save_progress(s, TOPIC, &p, 1, "leadflow.stage-transitions", NULL, 0, err);
}

/* The first fence creates the epoch (a 32-digit hex id) and stamps the progress hash. */
static void test_fence_creates_the_epoch_once(void)
{
    lf_store_test_flush();
    lf_store_t *s = lf_open();
    int64_t next[2];
    lf_err_t err;
    CHECK_INT(lf_fence(s, next, &err), LF_OK);
    CHECK_INT(next[0], -1);
    char epoch[64];
    snprintf(epoch, sizeof(epoch), "%s", lf_get("GET %s", "lf:epoch"));
    CHECK_INT((long long)strlen(epoch), 32);
    CHECK_STR(lf_get("HGET %s epoch", lf_wm_key()), epoch);
    /* Another instance's handle adopts it; this one finds it unchanged. */
    lf_store_t *other = lf_open();
    CHECK_INT(lf_fence(other, next, &err), LF_OK);
    CHECK_INT(lf_fence(s, next, &err), LF_OK);
    CHECK_STR(lf_get("GET %s", "lf:epoch"), epoch);
    CHECK_INT(lf_save(s, 5, &err), LF_OK);
    CHECK_INT(lf_fence(s, next, &err), LF_OK);
    CHECK_INT(next[0], 5);
    other->ops->close(other);
    s->ops->close(s);
}

/* FLUSHALL: the next fence says so, with what it found, and adopts the new epoch. */
static void test_a_flush_is_a_loss(void)
{
    lf_store_test_flush();
    lf_store_t *s = lf_open();
    int64_t next[2];
    lf_err_t err;
    CHECK_INT(lf_fence(s, next, &err), LF_OK);
    CHECK_INT(lf_save(s, 9, &err), LF_OK);
    lf_store_test_flush();
    CHECK_INT(lf_fence(s, next, &err), LF_STORE_LOST);
    CHECK_INT(err.code, LF_STORE_LOST);
    CHECK(strstr(err.msg, "flushed") != NULL);
    CHECK_INT(next[0], -1); /* what Redis still holds: nothing */
    CHECK_INT(lf_fence(s, next, &err), LF_OK);
    s->ops->close(s);
}

/* A progress save that comes after a flush but before the next fence writes nothing. */
static void test_progress_after_a_flush_is_refused(void)
{
    lf_store_test_flush();
    lf_store_t *s = lf_open();
    int64_t next[2];
    lf_err_t err;
    CHECK_INT(lf_fence(s, next, &err), LF_OK);
    CHECK_INT(lf_save(s, 3, &err), LF_OK);
    lf_store_test_flush();
    CHECK_INT(lf_save(s, 7, &err), LF_ERR);
    CHECK_INT(err.code, LF_STORE_LOST);
    CHECK_STR(lf_get("HGET %s 0", lf_wm_key()), ""); /* not recreated by the late save */
    s->ops->close(s);
}

/* A progress hash stamped with another epoch than Redis's (a partial restore): a loss. */
static void test_a_progress_hash_of_another_epoch_is_a_loss(void)
{
    lf_store_test_flush();
    lf_store_t *s = lf_open();
    int64_t next[2];
    lf_err_t err;
    CHECK_INT(lf_fence(s, next, &err), LF_OK);
    redisReply *r = redisCommand(lf_store_test_redis, "HSET %s epoch %s", lf_wm_key(),
                                 "0123456789abcdef0123456789abcdef");
    if (r) freeReplyObject(r);
    lf_store_t *fresh = lf_open(); /* even a handle that knew nothing before */
    CHECK_INT(lf_fence(fresh, next, &err), LF_STORE_LOST);
    CHECK(strstr(err.msg, "0123456789abcdef0123456789abcdef") != NULL);
    CHECK_INT(lf_fence(fresh, next, &err), LF_OK); /* restamped */
    fresh->ops->close(fresh);
    s->ops->close(s);
}

/* A server that may evict keys is refused at connect, naming the setting. */
static void test_an_evicting_server_is_refused(void)
{
    static const char *const policies[] = {"allkeys-lru", "volatile-lru", "allkeys-random"};
    for (size_t i = 0; i < sizeof(policies) / sizeof(policies[0]); i++) {
        redisReply *r =
            redisCommand(lf_store_test_redis, "CONFIG SET maxmemory-policy %s", policies[i]);
        CHECK(r && r->type == REDIS_REPLY_STATUS);
        if (r) freeReplyObject(r);
        lf_err_t err = {0};
        lf_store_t *s = lf_store_redis_open(&lf_store_test_cfg, &err);
        CHECK_INT(err.code, LF_STORE_REFUSED);
        CHECK(strstr(err.msg, policies[i]) != NULL);
        CHECK(strstr(err.msg, "noeviction") != NULL);
        int64_t next[2];
        CHECK_INT(lf_fence(s, next, &err), LF_ERR); /* and it stays refused */
        s->ops->close(s);
    }
    lf_cmd("CONFIG SET maxmemory-policy noeviction");
    lf_store_t *s = lf_open();
    s->ops->close(s);
}

void suite_fence(void)
{
    LF_RUN(test_fence_creates_the_epoch_once);
    LF_RUN(test_a_flush_is_a_loss);
    LF_RUN(test_progress_after_a_flush_is_refused);
    LF_RUN(test_a_progress_hash_of_another_epoch_is_a_loss);
    LF_RUN(test_an_evicting_server_is_refused);
}
