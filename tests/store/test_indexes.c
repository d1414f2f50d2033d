/* The indexes of a lead write on a real redis-server: lf:top keeps the top_leads highest keys
 * (trimmed in the write; a lead below a full set's cutoff only updates an entry it has), a
 * visitor is a string with its expiry and no index entry, and lf:funnel changes in the same
 * transaction. */
#include <stdio.h>
#include <string.h>

#include "leadflow/alloc.h"
#include "store_test.h"
#include "../unit/test.h"
#include "leadflow/lead_codec.h"

/* Write leads ids[0..n) (new, or at the given versions) with lf:top keys keys[]. */
static void lf_write_ranked(lf_store_t *s, const char *const *ids, const double *keys,
                            const uint64_t *versions, size_t n)
{
    lf_arena_t ar;
    lf_arena_init(&ar, 64 * 1024);
    lf_lead_t *leads = lf_calloc(n, sizeof(*leads));
    lf_store_write_t *w = lf_calloc(n, sizeof(*w));
    int *res = lf_calloc(n, sizeof(*res));
    for (size_t i = 0; i < n; i++) {
        lf_store_test_write(&w[i], &leads[i], ids[i], versions ? versions[i] : 0, "T", &ar);
        w[i].top_key = keys[i];
    }
    lf_err_t err = {0};
    CHECK_INT(s->ops->write_leads(s, w, n, res, NULL, NULL, &err), LF_OK);
    for (size_t i = 0; i < n; i++)
        CHECK_INT(res[i], LF_WRITE_OK);
    lf_free(res);
    lf_free(w);
    lf_free(leads);
    lf_arena_free(&ar);
}

static void test_top_is_trimmed_and_below_the_cutoff_only_updates(void)
{
    lf_store_test_flush();
    lf_config_t cfg = lf_store_test_cfg;
    cfg.top_leads = 3;
    lf_store_t *s = lf_store_test_open(&cfg);
    CHECK(s != NULL);
    const char *ids[] = {"a", "b", "c", "d", "e"};
    const double keys[] = {5, 1, 4, 2, 3};
    lf_write_ranked(s, ids, keys, NULL, 5);
    /* Trimmed in the write: the three highest. */
    CHECK_INT(lf_store_test_int("ZCARD lf:top"), 3);
    CHECK_INT(lf_store_test_int("ZSCORE lf:top a"), 5);
    CHECK_INT(lf_store_test_int("ZSCORE lf:top c"), 4);
    CHECK_INT(lf_store_test_int("ZSCORE lf:top e"), 3);
    /* Full, cutoff 3: a new lead below it is not inserted. */
    const char *low[] = {"f"};
    const double lowk[] = {2.5};
    lf_write_ranked(s, low, lowk, NULL, 1);
    CHECK_INT(lf_store_test_int("ZCARD lf:top"), 3);
    CHECK_INT(lf_store_test_int("ZSCORE lf:top f"), -1);
    /* A ranked lead whose key went below the cutoff: its entry is updated, not left high. */
    const char *down[] = {"a"};
    const double downk[] = {0.5};
    const uint64_t v1[] = {1};
    lf_write_ranked(s, down, downk, v1, 1);
    CHECK_INT(lf_store_test_int("ZCARD lf:top"), 3);
    CHECK(lf_store_test_int("ZSCORE lf:top a") == 0); /* 0.5, read as an integer */
    /* A lead above the cutoff gets in, the lowest leaves. */
    const char *up[] = {"b"};
    const double upk[] = {9};
    lf_write_ranked(s, up, upk, v1, 1);
    CHECK_INT(lf_store_test_int("ZCARD lf:top"), 3);
    CHECK_INT(lf_store_test_int("ZSCORE lf:top b"), 9);
    CHECK_INT(lf_store_test_int("ZSCORE lf:top a"), -1);
    s->ops->close(s);
}

/* A visitor: SET with its expiry, in no index; its funnel change lands with it. */
static void test_a_visitor_is_a_string_with_its_expiry(void)
{
    lf_store_test_flush();
    lf_store_t *s = lf_store_test_open(&lf_store_test_cfg);
    CHECK(s != NULL);
    lf_arena_t ar;
    lf_arena_init(&ar, 16 * 1024);
    lf_lead_t lead;
    lf_store_write_t w;
    lf_store_test_write(&w, &lead, "anon-1", 0, "T", &ar);
    lead.anonymous = 1;
    lead.stage = LF_STAGE_VISITOR;
    w.visitor = 1;
    w.ranked = 0;
    w.expires_ms = (lf_wall_ms() / 1000 + 3600) * 1000;
    lf_argv_reset(w.whole);
    lf_lead_encode(&lead, &lf_store_test_cfg.model, w.whole);
    w.funnel = lf_arena_alloc(&ar, sizeof(*w.funnel));
    lf_argv_init_scratch(w.funnel, &ar);
    lf_argv_adds(w.funnel, "visitor:123");
    lf_argv_adds(w.funnel, "1");
    int res = 0;
    lf_err_t err = {0};
    CHECK_INT(s->ops->write_leads(s, &w, 1, &res, NULL, NULL, &err), LF_OK);
    CHECK_INT(res, LF_WRITE_OK);
    CHECK_INT(lf_store_test_int("EXISTS lf:v:{anon-1}"), 1);
    CHECK_INT(lf_store_test_int("EXISTS lf:lead:{anon-1}"), 0);
    long long ttl = lf_store_test_int("TTL lf:v:{anon-1}");
    CHECK(ttl > 3500 && ttl <= 3600);
    CHECK_INT(lf_store_test_int("ZCARD lf:top"), 0);
    CHECK_INT(lf_store_test_int("HGET lf:funnel visitor:123"), 1);
    /* Read back as a visitor. */
    lf_lead_t back;
    const char *id = "anon-1";
    lf_lead_t *const out[1] = {&back};
    const uint8_t vis[1] = {1};
    CHECK_INT(s->ops->load_leads(s, &id, vis, 1, out, &lf_store_test_cfg.model, NULL, &ar, &err),
              LF_OK);
    CHECK(back.exists && back.anonymous && back.version == 1);
    lf_arena_free(&ar);
    s->ops->close(s);
}

void suite_indexes(void)
{
    LF_RUN(test_top_is_trimmed_and_below_the_cutoff_only_updates);
    LF_RUN(test_a_visitor_is_a_string_with_its_expiry);
}
