/* How a lead's hash is written, on a real Redis: RESTORE of a ready-made listpack where the
 * hash is one Redis would keep as a listpack (hashdump.h: at most LF_HASHDUMP_MAX_PAIRS
 * pairs, no field or value over LF_HASHDUMP_MAX_VALUE bytes), HSET (and HDEL of what went)
 * beyond that, and HSET when the server refuses RESTORE: found by the probe of a new
 * connection, or by a transaction that aborted on it (the write fails, nothing is written,
 * the connection is made again and probes). Either way HGETALL returns exactly the pairs
 * written. Which command wrote is read from INFO commandstats. */
#include <stdio.h>
#include <string.h>

#include "../unit/test.h"
#include "leadflow/hashdump.h"
#include "store_test.h"

#define KEY "lf:lead:{h-1}"

/* "v" (the version the write makes) and `npairs - 1` more pairs, the one at `long_at` (if
 * below npairs) with a value of `long_len` bytes. */
static void lf_pairs(lf_argv_t *a, uint64_t version, size_t npairs, size_t long_at, size_t long_len)
{
    char f[32], big[256];
    memset(big, 'y', sizeof(big));
    lf_argv_adds(a, "v");
    lf_argv_add_i64(a, (long long)version);
    for (size_t i = 1; i < npairs; i++) {
        snprintf(f, sizeof(f), "f%zu", i);
        lf_argv_adds(a, f);
        if (i == long_at)
            lf_argv_add(a, big, long_len);
        else
            lf_argv_add_i64(a, (long long)(i * 7));
    }
}

/* Write lead h-1 from version `expected` with `pairs` on handle s, from `base` (the hash
 * stored before: field/value pairs, NULL = none); the RESTORE and HSET calls it made. */
static int lf_write_hash(lf_store_t *s, uint64_t expected, const lf_argv_t *pairs,
                         const lf_argv_t *base, long long *restores, long long *hsets,
                         lf_err_t *err)
{
    lf_arena_t ar;
    lf_arena_init(&ar, 64 * 1024);
    lf_lead_t *lead = lf_calloc(1, sizeof(*lead));
    lf_store_write_t w;
    lf_store_test_write_pairs(&w, lead, "h-1", expected, pairs, &ar);
    size_t nb = base ? base->n / 2 : 0;
    lf_str_t *bf = lf_arena_alloc(&ar, (2 * nb + 1) * sizeof(*bf));
    for (size_t i = 0; i < nb; i++) {
        bf[i] = (lf_str_t){base->argv[2 * i], (uint32_t)base->lens[2 * i]};
        bf[nb + i] = (lf_str_t){base->argv[2 * i + 1], (uint32_t)base->lens[2 * i + 1]};
    }
    w.base_fields = bf;
    w.base_values = bf + nb;
    w.nbase = nb;
    lf_store_test_str("CONFIG RESETSTAT");
    int res = 0;
    memset(err, 0, sizeof(*err));
    int rc = s->ops->write_leads(s, &w, 1, &res, NULL, NULL, err);
    *restores = lf_store_test_calls("restore");
    *hsets = lf_store_test_calls("hset");
    lf_free(lead);
    lf_arena_free(&ar);
    return rc == LF_OK && res == LF_WRITE_OK ? LF_OK : LF_ERR;
}

/* At the listpack limits: RESTORE; one pair or one byte past them: HSET. */
static void test_a_listpack_hash_is_restored_a_bigger_one_hset(void)
{
    static const struct {
        size_t npairs, long_len;
        int restored;
    } cases[] = {
        {26, 8, 1},
        {LF_HASHDUMP_MAX_PAIRS, 8, 1},
        {LF_HASHDUMP_MAX_PAIRS + 1, 8, 0},
        {26, LF_HASHDUMP_MAX_VALUE, 1},
        {26, LF_HASHDUMP_MAX_VALUE + 1, 0},
    };
    lf_store_test_flush();
    lf_store_t *s = lf_store_test_open(&lf_store_test_cfg);
    CHECK(s != NULL);
    lf_arena_t ar;
    lf_arena_init(&ar, 64 * 1024);
    for (size_t c = 0; c < sizeof(cases) / sizeof(cases[0]); c++) {
        lf_store_test_int("DEL %s", KEY); /* not FLUSHALL: the store epoch stays */
        lf_argv_t pairs;
        lf_argv_init_scratch(&pairs, &ar);
        lf_pairs(&pairs, 1, cases[c].npairs, 5, cases[c].long_len);
        long long restores, hsets;
        lf_err_t err;
        CHECK_INT(lf_write_hash(s, 0, &pairs, NULL, &restores, &hsets, &err), LF_OK);
        CHECK_INT(restores, cases[c].restored);
        CHECK_INT(hsets, !cases[c].restored);
        CHECK(lf_store_test_hash_is(KEY, &pairs));
        if (cases[c].restored) /* the listpack hashdump built, as Redis would build it */
            CHECK_STR(lf_store_test_str("OBJECT ENCODING %s", KEY), "listpack");
    }
    lf_arena_free(&ar);
    s->ops->close(s);
}

/* A stored hash beyond a listpack, updated: HSET of what changed, HDEL of what went. */
static void test_an_update_beyond_a_listpack_sets_and_deletes_fields(void)
{
    lf_store_test_flush();
    lf_store_t *s = lf_store_test_open(&lf_store_test_cfg);
    CHECK(s != NULL);
    lf_arena_t ar;
    lf_arena_init(&ar, 64 * 1024);
    lf_argv_t before, after;
    lf_argv_init_scratch(&before, &ar);
    lf_argv_init_scratch(&after, &ar);
    lf_pairs(&before, 1, LF_HASHDUMP_MAX_PAIRS + 3, 5, 8);
    long long restores, hsets;
    lf_err_t err;
    CHECK_INT(lf_write_hash(s, 0, &before, NULL, &restores, &hsets, &err), LF_OK);
    /* Version 2: f5 changed, the last field gone. */
    lf_pairs(&after, 2, LF_HASHDUMP_MAX_PAIRS + 2, 5, 70);
    CHECK_INT(lf_write_hash(s, 1, &after, &before, &restores, &hsets, &err), LF_OK);
    CHECK_INT(restores, 0);
    CHECK_INT(hsets, 1);
    CHECK_INT(lf_store_test_calls("hdel"), 1);
    CHECK(lf_store_test_hash_is(KEY, &after));
    lf_arena_free(&ar);
    s->ops->close(s);
}

/* A user of the test server with password "pw", allowed everything; then RESTORE taken
 * from it (at once, or once it is connected). */
static void lf_acl_user(const char *name)
{
    redisReply *r =
        redisCommand(lf_store_test_redis, "ACL SETUSER %s reset on >pw ~* &* +@all", name);
    if (r) freeReplyObject(r);
}

static void lf_acl_no_restore(const char *name)
{
    redisReply *r = redisCommand(lf_store_test_redis, "ACL SETUSER %s -restore", name);
    if (r) freeReplyObject(r);
}

/* On an empty server, a store handle logged in as a new ACL user `user` (password "pw"; no
 * RESTORE if `no_restore`) through cfg, a copy of the test settings (the strings shared: not
 * freed), and the pairs of a small lead hash in ar. */
static lf_store_t *lf_open_as(lf_config_t *cfg, char *user, int no_restore, lf_arena_t *ar,
                              lf_argv_t *pairs)
{
    static char pw[] = "pw";
    lf_store_test_flush();
    lf_acl_user(user);
    if (no_restore) lf_acl_no_restore(user);
    *cfg = lf_store_test_cfg;
    cfg->redis_user = user;
    cfg->redis_password = pw;
    lf_arena_init(ar, 64 * 1024);
    lf_argv_init_scratch(pairs, ar);
    lf_pairs(pairs, 1, 26, 5, 8);
    return lf_store_test_open(cfg);
}

static void lf_close_as(lf_store_t *s, const char *user, lf_arena_t *ar)
{
    lf_arena_free(ar);
    s->ops->close(s);
    lf_store_test_str("ACL DELUSER %s", user);
}

/* A new lead h-1 written with `pairs` by one HSET and no RESTORE, and HGETALL returns them. */
static int lf_written_by_hset(lf_store_t *s, const lf_argv_t *pairs)
{
    long long restores, hsets;
    lf_err_t err;
    return lf_write_hash(s, 0, pairs, NULL, &restores, &hsets, &err) == LF_OK && restores == 0 &&
           hsets == 1 && lf_store_test_hash_is(KEY, pairs);
}

/* The probe of a new connection finds RESTORE refused (an ACL without it): HSET. */
static void test_restore_refused_at_connect_means_hset(void)
{
    char user[] = "lf-norestore";
    lf_config_t cfg;
    lf_arena_t ar;
    lf_argv_t pairs;
    lf_store_t *s = lf_open_as(&cfg, user, 1, &ar, &pairs);
    CHECK(s != NULL);
    CHECK(lf_written_by_hset(s, &pairs));
    lf_close_as(s, user, &ar);
}

/* RESTORE refused after the probe found it allowed: the transaction aborts (the write fails,
 * naming the refusal, nothing written); the next write connects again, probes, and HSETs. */
static void test_restore_refused_later_aborts_then_hset(void)
{
    char user[] = "lf-late";
    lf_config_t cfg;
    lf_arena_t ar;
    lf_argv_t pairs;
    lf_store_t *s = lf_open_as(&cfg, user, 0, &ar, &pairs);
    CHECK(s != NULL);
    lf_acl_no_restore(user);
    long long restores, hsets;
    lf_err_t err;
    CHECK_INT(lf_write_hash(s, 0, &pairs, NULL, &restores, &hsets, &err), LF_ERR);
    CHECK(strstr(err.msg, "writing leads failed") != NULL);
    CHECK(strstr(err.msg, "restore") != NULL || strstr(err.msg, "RESTORE") != NULL);
    CHECK_INT(lf_store_test_int("EXISTS %s", KEY), 0);
    CHECK_INT(lf_store_test_int("EXISTS lf:top"), 0);
    CHECK(lf_written_by_hset(s, &pairs));
    lf_close_as(s, user, &ar);
}

void suite_restore(void)
{
    LF_RUN(test_a_listpack_hash_is_restored_a_bigger_one_hset);
    LF_RUN(test_an_update_beyond_a_listpack_sets_and_deletes_fields);
    LF_RUN(test_restore_refused_at_connect_means_hset);
    LF_RUN(test_restore_refused_later_aborts_then_hset);
}
