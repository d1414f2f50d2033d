/* libFuzzer harness: the JSON front end (lf_event_decode_json, whatever the first byte), its
 * pre-scan and cJSON behind it, with the checks of fuzz_event.h. And a differential check:
 * when the bytes are a JSON document, the same tree packed as MessagePack must decode to the
 * same outcome and the same event (the two front ends share the field logic, and the contract
 * says the formats are equivalent). */
#include <cjson/cJSON.h>
#include <msgpack.h>

#include "event_int.h"
#include "../unit/cjson_pack.h"
#include "fuzz_event.h"

static lf_arena_t fuzz_arena, fuzz_arena2;
static lf_event_limits_t fuzz_lim;

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    lf_arena_init(&fuzz_arena, 0);
    lf_arena_init(&fuzz_arena2, 0);
    lf_event_limits_default(&fuzz_lim);
    return 0;
}

static int sv_same(lf_str_t a, lf_str_t b)
{
    return a.len == b.len && (a.len == 0 || memcmp(a.ptr, b.ptr, a.len) == 0);
}

static int kv_same(const lf_kv_t *a, uint32_t na, const lf_kv_t *b, uint32_t nb)
{
    if (na != nb) return 0;
    for (uint32_t i = 0; i < na; i++)
        if (!sv_same(a[i].key, b[i].key) || !sv_same(a[i].val, b[i].val) ||
            a[i].is_num != b[i].is_num || a[i].num != b[i].num)
            return 0;
    return 1;
}

static void same_event(const lf_event_t *a, const lf_event_t *b)
{
    FUZZ_CHECK(sv_same(a->message_id, b->message_id));
    FUZZ_CHECK(sv_same(a->type, b->type));
    FUZZ_CHECK(sv_same(a->kind_name, b->kind_name));
    FUZZ_CHECK(a->kind == b->kind);
    FUZZ_CHECK(sv_same(a->user_id, b->user_id));
    FUZZ_CHECK(sv_same(a->anonymous_id, b->anonymous_id));
    FUZZ_CHECK(sv_same(a->previous_id, b->previous_id));
    FUZZ_CHECK(a->ts_ms == b->ts_ms);
    FUZZ_CHECK(sv_same(a->url, b->url));
    FUZZ_CHECK(sv_same(a->path, b->path));
    FUZZ_CHECK(sv_same(a->referrer, b->referrer));
    FUZZ_CHECK(sv_same(a->title, b->title));
    FUZZ_CHECK(sv_same(a->user_agent, b->user_agent));
    for (int i = 0; i < LF_UTM__COUNT; i++)
        FUZZ_CHECK(sv_same(a->utm[i], b->utm[i]));
    FUZZ_CHECK(sv_same(a->click_id_name, b->click_id_name));
    FUZZ_CHECK(sv_same(a->click_id, b->click_id));
    FUZZ_CHECK(a->has_campaign == b->has_campaign);
    FUZZ_CHECK(kv_same(a->props, a->nprops, b->props, b->nprops));
    FUZZ_CHECK(kv_same(a->traits, a->ntraits, b->traits, b->ntraits));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    lf_event_t ev, em;
    lf_err_t err = {0}, err2 = {0};
    /* lf_event_decode checks the size before any front end runs */
    if (size > fuzz_lim.max_event_bytes) return 0;
    lf_arena_reset(&fuzz_arena);
    memset(&ev, 0, sizeof(ev)); /* as lf_event_decode does before a front end runs */
    int rc = lf_event_decode_json((const char *)data, size, &fuzz_lim, &fuzz_arena, &ev, &err);
    fuzz_check_outcome(rc, &ev, &err, &fuzz_lim);

    /* Outcomes decided before or by the parser (not JSON, too deep, a NUL that cJSON would
     * cut a string at) have no tree to compare. */
    if (rc != LF_OK && (err.code == LF_BAD_NOT_DECODABLE || err.code == LF_BAD_TOO_COMPLEX ||
                        strstr(err.msg, "NUL")))
        return 0;
    const char *end = NULL;
    cJSON *root = cJSON_ParseWithLengthOpts((const char *)data, size, &end, 0);
    FUZZ_CHECK(root != NULL); /* the front end accepted it as JSON */
    msgpack_sbuffer sb;
    msgpack_packer pk;
    msgpack_sbuffer_init(&sb);
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    lf_test_pack_cjson(&pk, root);
    cJSON_Delete(root);
    lf_arena_reset(&fuzz_arena2);
    memset(&em, 0, sizeof(em));
    int rm = lf_event_decode_msgpack(sb.data, sb.size, &fuzz_lim, &fuzz_arena2, &em, &err2);
    msgpack_sbuffer_destroy(&sb);
    if (rm != rc || (rc != LF_OK && err2.code != err.code)) {
        fprintf(stderr, "JSON: rc %d %s: %s\nMessagePack: rc %d %s: %s\n", rc,
                lf_bad_name((lf_bad_t)err.code), err.msg, rm, lf_bad_name((lf_bad_t)err2.code),
                err2.msg);
        FUZZ_CHECK(!"the two formats disagree");
    }
    if (rc == LF_OK) same_event(&ev, &em);
    return 0;
}
