/* Redis key names (keys.h, docs/contract.md "Redis keys"): each builder's name under a prefix, the
 * lead id as a hash tag, and what a buffer too small gets (snprintf's contract: the full length
 * back, a cut, terminated name in the buffer), on both sides of the tagged keys' fast path. */
#include <string.h>

#include "leadflow/cluster.h"
#include "leadflow/keys.h"
#include "test.h"

/* The builder's call returns the length of the name `want`, and wrote it into k. */
#define CHECK_KEY(call, want)                                                                      \
    do {                                                                                           \
        CHECK_INT(call, (long long)strlen(want));                                                  \
        CHECK_STR(k, want);                                                                        \
    } while (0)

static void test_every_key_name(void)
{
    char k[LF_KEY_MAX];
    CHECK_KEY(lf_key_lead(k, sizeof(k), "lf:", "u-1", 3), "lf:lead:{u-1}");
    CHECK_KEY(lf_key_alias(k, sizeof(k), "lf:", "a-9", 3), "lf:alias:{a-9}");
    CHECK_KEY(lf_key_top(k, sizeof(k), "lf:"), "lf:top");
    CHECK_KEY(lf_key_stage(k, sizeof(k), "lf:", LF_STAGE_MQL), "lf:stage:mql");
    CHECK_KEY(lf_key_outbox(k, sizeof(k), "lf:", "leadflow.stage-transitions", 3),
              "lf:outbox:leadflow.stage-transitions:3");
    CHECK_KEY(lf_key_watermarks(k, sizeof(k), "lf:", "leadflow", "leadflow.events"),
              "lf:wm:leadflow:leadflow.events");
    CHECK_KEY(lf_key_instance(k, sizeof(k), "lf:", "host-1:42"), "lf:ops:instance:host-1:42");
    CHECK_KEY(lf_key_instances(k, sizeof(k), "lf:"), "lf:ops:instances");
    CHECK_KEY(lf_key_epoch(k, sizeof(k), "lf:"), "lf:epoch");
}

/* Each stage has its set; any prefix, the empty one too. */
static void test_stage_keys_and_prefixes(void)
{
    static const char *const names[LF_STAGE__COUNT] = {"visitor",  "lead",    "mql",
                                                       "sal",      "sql",     "opportunity",
                                                       "customer", "nurture", "disqualified"};
    char k[LF_KEY_MAX], want[64];
    for (int st = 0; st < LF_STAGE__COUNT; st++) {
        snprintf(want, sizeof(want), "t:{x}:stage:%s", names[st]);
        CHECK_KEY(lf_key_stage(k, sizeof(k), "t:{x}:", (lf_stage_t)st), want);
    }
    CHECK_KEY(lf_key_lead(k, sizeof(k), "", "u", 1), "lead:{u}");
    CHECK_KEY(lf_key_outbox(k, sizeof(k), "", "t", -1), "outbox:t:-1");
}

/* The id is taken by its length, not to its NUL; nothing in it is escaped (an id with
 * braces makes a key Redis Cluster hashes by its first {...}: ids are not checked here). */
static void test_tagged_keys_take_the_id_as_given(void)
{
    char k[LF_KEY_MAX];
    CHECK_KEY(lf_key_lead(k, sizeof(k), "lf:", "u-12345", 3), "lf:lead:{u-1}");
    CHECK_KEY(lf_key_lead(k, sizeof(k), "lf:", "", 0), "lf:lead:{}");
    CHECK_KEY(lf_key_alias(k, sizeof(k), "lf:", "a{b}c d", 7), "lf:alias:{a{b}c d}");
    char id[LF_ID_MAX + 1];
    memset(id, 'i', LF_ID_MAX);
    id[LF_ID_MAX] = '\0';
    CHECK_INT(lf_key_lead(k, sizeof(k), "lf:", id, LF_ID_MAX), 10 + LF_ID_MAX);
    CHECK_INT(k[9 + LF_ID_MAX], '}');
    CHECK_INT(k[10 + LF_ID_MAX], '\0');
}

/* A buffer one byte short of a tagged key takes the snprintf path: the full length back, the
 * name cut and terminated; a buffer of exactly the length plus the NUL takes the copy. */
static void test_a_short_buffer_gets_a_cut_name_and_the_full_length(void)
{
    char k[16];
    memset(k, '#', sizeof(k));
    CHECK_INT(lf_key_lead(k, 14, "lf:", "u-1", 3), 13); /* "lf:lead:{u-1}" + NUL: fits */
    CHECK_STR(k, "lf:lead:{u-1}");
    CHECK_INT(k[14], '#');
    memset(k, '#', sizeof(k));
    CHECK_INT(lf_key_lead(k, 13, "lf:", "u-1", 3), 13);
    CHECK_STR(k, "lf:lead:{u-1");
    CHECK_INT(k[13], '#');
    CHECK_INT(lf_key_alias(k, 4, "lf:", "a", 1), 12);
    CHECK_STR(k, "lf:");
    CHECK_INT(lf_key_alias(k, 1, "lf:", "a", 1), 12);
    CHECK_STR(k, "");
    CHECK_INT(lf_key_watermarks(k, 8, "lf:", "g", "t"), 9);
    CHECK_STR(k, "lf:wm:g");
    CHECK_INT(lf_key_epoch(k, 3, "lf:"), 8);
    CHECK_STR(k, "lf");
}

/* The Redis Cluster names: a shard is the key and ":{tag}", in the slot of the tag; the keys
 * of a merge in progress take the id as hash tag, as the lead's and the visitor's do. */
static void test_cluster_shard_and_merge_keys(void)
{
    char k[64];
    int kl = lf_key_top(k, sizeof(k), "lf:");
    CHECK_INT(lf_key_shard(k, sizeof(k), kl, "1bz"), 12);
    CHECK_STR(k, "lf:top:{1bz}");
    CHECK_INT(lf_cluster_slot(k, 12), 0);
    kl = lf_key_outbox_slot(k, sizeof(k), "lf:", "t");
    CHECK_INT(lf_key_shard(k, sizeof(k), kl, "hia"), 17);
    CHECK_STR(k, "lf:outbox:t:{hia}");
    CHECK_INT(lf_cluster_slot(k, 17), 16383);
    CHECK_INT(lf_key_absorbed(k, sizeof(k), "lf:", "u-1", 3), 17);
    CHECK_STR(k, "lf:absorbed:{u-1}");
    CHECK_INT(lf_key_merging(k, sizeof(k), "lf:", "a-1", 3), 16);
    CHECK_STR(k, "lf:merging:{a-1}");
    char v[64];
    int vl = lf_key_visitor(v, sizeof(v), "lf:", "a-1", 3);
    CHECK_INT(lf_cluster_slot(k, 16), lf_cluster_slot(v, (size_t)vl)); /* the visitor's slot */
    /* As snprintf: a shard that does not fit gives the full length back, the name cut. */
    kl = lf_key_top(k, 8, "lf:");
    CHECK_INT(lf_key_shard(k, 8, kl, "1bz"), 12);
    CHECK_STR(k, "lf:top:");
}

void suite_keys(void)
{
    LF_RUN(test_every_key_name);
    LF_RUN(test_stage_keys_and_prefixes);
    LF_RUN(test_tagged_keys_take_the_id_as_given);
    LF_RUN(test_a_short_buffer_gets_a_cut_name_and_the_full_length);
    LF_RUN(test_cluster_shard_and_merge_keys);
}
