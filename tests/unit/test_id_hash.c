/* Pseudonymous ids (id_hash.h): HMAC-SHA-256 against RFC 4231's test vectors, the shape of a
 * hashed id, and an event's ids replaced, the rest untouched. */
#include <string.h>

#include "leadflow/alloc.h"
#include "leadflow/event.h"
#include "leadflow/id_hash.h"
#include "test.h"

static void test_hmac_sha256_rfc4231(void)
{
    char out[LF_ID_HASH_HEX + 1];
    /* RFC 4231 test case 2. */
    CHECK_INT(lf_id_hash("Jefe", 4, "what do ya want for nothing?", 28, out), LF_OK);
    CHECK_STR(out, "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
    /* Test case 1: key 20 x 0x0b, "Hi There". */
    char key[20];
    memset(key, 0x0b, sizeof(key));
    CHECK_INT(lf_id_hash(key, sizeof(key), "Hi There", 8, out), LF_OK);
    CHECK_STR(out, "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7");
    /* Binary ids (a NUL inside) are hashed whole. */
    char a[LF_ID_HASH_HEX + 1], b[LF_ID_HASH_HEX + 1];
    CHECK_INT(lf_id_hash("0123456789abcdef", 16, "a\0b", 3, a), LF_OK);
    CHECK_INT(lf_id_hash("0123456789abcdef", 16, "a", 1, b), LF_OK);
    CHECK(strcmp(a, b) != 0);
}

/* The keyed hasher (key set once) gives what the one-shot HMAC gives, id after id. */
static void test_hasher_equals_one_shot(void)
{
    char a[LF_ID_HASH_HEX + 1], b[LF_ID_HASH_HEX + 1];
    lf_id_hasher_t *h = lf_id_hasher_new("Jefe", 4);
    CHECK(h != NULL);
    CHECK_INT(lf_id_hasher_hash(h, "what do ya want for nothing?", 28, a), LF_OK);
    CHECK_STR(a, "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
    const char *ids[] = {"", "a", "ana@example.com", "+1-555-0100", "x\0y"};
    size_t lens[] = {0, 1, 15, 11, 3};
    for (int round = 0; round < 2; round++)
        for (size_t i = 0; i < sizeof(ids) / sizeof(ids[0]); i++) {
            CHECK_INT(lf_id_hasher_hash(h, ids[i], lens[i], a), LF_OK);
            CHECK_INT(lf_id_hash("Jefe", 4, ids[i], lens[i], b), LF_OK);
            CHECK_STR(a, b);
        }
    lf_id_hasher_free(h);
    lf_id_hasher_free(NULL);
}

static void test_hashed_id_shape(void)
{
    char out[LF_ID_HASH_HEX + 1];
    lf_id_hash("0123456789abcdef", 16, "ana@example.com", 15, out);
    CHECK(lf_id_is_hashed(out, strlen(out)));
    CHECK(!lf_id_is_hashed("ana@example.com", 15));
    out[3] = 'A'; /* uppercase: not ours */
    CHECK(!lf_id_is_hashed(out, strlen(out)));
    CHECK(!lf_id_is_hashed(out, 63));
}

static void test_event_ids_replaced(void)
{
    const char *json = "{\"type\":\"alias\",\"messageId\":\"m1\",\"userId\":\"ana@example.com\","
                       "\"previousId\":\"+1-555-0100\",\"anonymousId\":\"anon-7\","
                       "\"timestamp\":\"2026-03-01T00:00:00Z\",\"traits\":{\"company\":\"Acme\","
                       "\"email\":\"ana@example.com\",\"phone\":5550100}}";
    lf_arena_t arena;
    lf_arena_init(&arena, 4096);
    lf_event_t ev;
    lf_err_t err = {0};
    lf_event_limits_t lim;
    lf_event_limits_default(&lim);
    CHECK_INT(lf_event_decode(json, strlen(json), &lim, &arena, &ev, &err), LF_OK);
    const char *key = "a key of sixteen+";
    lf_id_hasher_t *h = lf_id_hasher_new(key, strlen(key));
    CHECK(h != NULL);
    CHECK_INT(lf_event_hash_ids(&ev, h, &arena), LF_OK);
    char want[LF_ID_HASH_HEX + 1];
    lf_id_hash(key, strlen(key), "ana@example.com", 15, want);
    CHECK_SV(ev.user_id, want);
    lf_id_hash(key, strlen(key), "+1-555-0100", 11, want);
    CHECK_SV(ev.previous_id, want);
    lf_id_hash(key, strlen(key), "anon-7", 6, want);
    CHECK_SV(ev.anonymous_id, want);
    CHECK_SV(ev.message_id, "m1"); /* not an id of a person */
    /* The contact traits hashed too (a number as its text), the others as sent. */
    const lf_kv_t *t = lf_event_trait(&ev, "email");
    lf_id_hash(key, strlen(key), "ana@example.com", 15, want);
    CHECK(t != NULL && !t->is_num);
    CHECK_SV(t->val, want);
    t = lf_event_trait(&ev, "phone");
    lf_id_hash(key, strlen(key), "5550100", 7, want);
    CHECK(t != NULL && !t->is_num);
    CHECK_SV(t->val, want);
    t = lf_event_trait(&ev, "company");
    CHECK(t != NULL);
    CHECK_SV(t->val, "Acme");
    /* Absent ids stay absent. */
    const char *page = "{\"type\":\"page\",\"messageId\":\"m2\",\"anonymousId\":\"anon-8\","
                       "\"timestamp\":\"2026-03-01T00:00:00Z\"}";
    CHECK_INT(lf_event_decode(page, strlen(page), &lim, &arena, &ev, &err), LF_OK);
    CHECK_INT(lf_event_hash_ids(&ev, h, &arena), LF_OK);
    CHECK_INT((int)ev.user_id.len, 0);
    CHECK_INT((int)ev.anonymous_id.len, LF_ID_HASH_HEX);
    lf_id_hasher_free(h);
    lf_arena_free(&arena);
}

void suite_id_hash(void)
{
    LF_RUN(test_hmac_sha256_rfc4231);
    LF_RUN(test_hasher_equals_one_shot);
    LF_RUN(test_hashed_id_shape);
    LF_RUN(test_event_ids_replaced);
}
