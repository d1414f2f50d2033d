/* Event decoding: JSON and MessagePack front ends, the Segment field logic, timestamps, URLs,
 * kinds, every published Segment fixture, and hostile input. */
#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>
#include <msgpack.h>

#include "leadflow/alloc.h"
#include "leadflow/event.h"
#include "leadflow/timeparse.h"
#include "leadflow/url.h"
#include "cjson_pack.h"
#include "test.h"

#define FIXTURE_DIR "tests/fixtures/segment"

static lf_arena_t arena;

/* Decode from an exact-size heap copy, so AddressSanitizer sees any read past the end. */
static int decode_lim(const void *buf, size_t len, const lf_event_limits_t *lim, lf_event_t *ev,
                      lf_err_t *err)
{
    void *copy = malloc(len ? len : 1);
    if (len) memcpy(copy, buf, len);
    memset(err, 0, sizeof(*err));
    int rc = lf_event_decode(copy, len, lim, &arena, ev, err);
    free(copy);
    return rc;
}

static int decode(const void *buf, size_t len, lf_event_t *ev, lf_err_t *err)
{
    return decode_lim(buf, len, NULL, ev, err);
}

static int decode_s(const char *json, lf_event_t *ev, lf_err_t *err)
{
    return decode(json, strlen(json), ev, err);
}

/*---- JSON -> MessagePack with msgpack_pack_* ------------------------------------------*/

/* The MessagePack form of a JSON text, in sb (caller destroys). 0 if the JSON is invalid. */
static int json_to_msgpack(const char *json, size_t len, msgpack_sbuffer *sb)
{
    cJSON *root = cJSON_ParseWithLength(json, len);
    msgpack_sbuffer_init(sb);
    if (!root) return 0;
    msgpack_packer pk;
    msgpack_packer_init(&pk, sb, msgpack_sbuffer_write);
    lf_test_pack_cjson(&pk, root);
    cJSON_Delete(root);
    return 1;
}

static void pack_s(msgpack_packer *pk, const char *s)
{
    msgpack_pack_str(pk, strlen(s));
    msgpack_pack_str_body(pk, s, strlen(s));
}

/*---- comparing two decoded events -------------------------------------------------------*/

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

/* The name of the first field that differs, or NULL. */
static const char *ev_diff(const lf_event_t *a, const lf_event_t *b)
{
    if (!sv_same(a->message_id, b->message_id)) return "message_id";
    if (!sv_same(a->type, b->type)) return "type";
    if (!sv_same(a->kind_name, b->kind_name)) return "kind_name";
    if (a->kind != b->kind) return "kind";
    if (!sv_same(a->user_id, b->user_id)) return "user_id";
    if (!sv_same(a->anonymous_id, b->anonymous_id)) return "anonymous_id";
    if (!sv_same(a->previous_id, b->previous_id)) return "previous_id";
    if (a->ts_ms != b->ts_ms) return "ts_ms";
    if (!sv_same(a->url, b->url)) return "url";
    if (!sv_same(a->path, b->path)) return "path";
    if (!sv_same(a->referrer, b->referrer)) return "referrer";
    if (!sv_same(a->title, b->title)) return "title";
    if (!sv_same(a->user_agent, b->user_agent)) return "user_agent";
    for (int i = 0; i < LF_UTM__COUNT; i++)
        if (!sv_same(a->utm[i], b->utm[i])) return lf_utm_name((lf_utm_t)i);
    if (!sv_same(a->click_id_name, b->click_id_name)) return "click_id_name";
    if (!sv_same(a->click_id, b->click_id)) return "click_id";
    if (a->has_campaign != b->has_campaign) return "has_campaign";
    if (!kv_same(a->props, a->nprops, b->props, b->nprops)) return "props";
    if (!kv_same(a->traits, a->ntraits, b->traits, b->ntraits)) return "traits";
    return NULL;
}

static void reset(void)
{
    lf_arena_free(&arena);
    lf_arena_init(&arena, 0);
}

static const char RICH[] =
    "{\"type\":\"track\",\"event\":\"Form Submitted\",\"messageId\":\"ajs-920a8b6591f0d25cc1\","
    "\"anonymousId\":\"3d316d2c-26e8-451f-91be-a0766708c81e\",\"userId\":\"97980cfea0067\","
    "\"timestamp\":\"2019-06-21T17:35:47.404+02:00\",\"originalTimestamp\":\"bad\","
    "\"context\":{\"ip\":\"67.160.210.48\",\"page\":{\"path\":\"/pricing\","
    "\"referrer\":\"https://www.google.com/\",\"title\":\"Pricing\",\"url\":\"https://"
    "example.com/pricing?utm_source=google&utm_term=lead+scoring&gclid=EAIaIQob\"},"
    "\"campaign\":{\"source\":\"adwords\",\"medium\":\"cpc\",\"name\":\"spring_sale\"},"
    "\"userAgent\":\"Mozilla/5.0 (Macintosh)\",\"traits\":{\"company\":\"Initech\","
    "\"region\":\"EU\"}},"
    "\"properties\":{\"form_id\":\"demo-request\",\"seats\":25,\"price\":14.99,\"neg\":-3,"
    "\"trial\":true,\"gone\":null,\"list\":[1,2],\"address\":{\"city\":\"Berlin\",\"geo\":{"
    "\"lat\":52.5}}},"
    "\"traits\":{\"company\":\"Initrode\",\"employees\":250}}";

static void test_event_json_msgpack_same(void)
{
    lf_event_t ej, em;
    lf_err_t err;
    msgpack_sbuffer sb;
    reset();
    CHECK(json_to_msgpack(RICH, strlen(RICH), &sb));
    CHECK(sb.data[0] != '{');
    int rj = decode_s(RICH, &ej, &err);
    CHECK_STR(err.msg, "");
    CHECK_INT(rj, LF_OK);
    int rm = decode(sb.data, sb.size, &em, &err);
    msgpack_sbuffer_destroy(&sb);
    CHECK_STR(err.msg, "");
    CHECK_INT(rm, LF_OK);
    const char *d = ev_diff(&ej, &em);
    CHECK_STR(d ? d : "(same)", "(same)");

    /* And the values themselves. */
    CHECK_SV(ej.message_id, "ajs-920a8b6591f0d25cc1");
    CHECK_SV(ej.type, "track");
    CHECK_INT(ej.kind, LF_KIND_FORM_SUBMIT);
    CHECK_SV(ej.kind_name, "form_submit");
    CHECK_SV(ej.user_id, "97980cfea0067");
    CHECK_SV(lf_event_key(&ej), "97980cfea0067");
    CHECK_SV(ej.anonymous_id, "3d316d2c-26e8-451f-91be-a0766708c81e");
    CHECK_INT(ej.previous_id.len, 0);
    CHECK_INT(ej.ts_ms, 1561131347404LL); /* 15:35:47.404Z */
    CHECK_SV(ej.path, "/pricing");
    CHECK_SV(ej.referrer, "https://www.google.com/");
    CHECK_SV(ej.title, "Pricing");
    CHECK_SV(ej.user_agent, "Mozilla/5.0 (Macintosh)");
    CHECK_SV(ej.utm[LF_UTM_SOURCE], "adwords"); /* context.campaign wins over the url */
    CHECK_SV(ej.utm[LF_UTM_MEDIUM], "cpc");
    CHECK_SV(ej.utm[LF_UTM_CAMPAIGN], "spring_sale");
    CHECK_SV(ej.utm[LF_UTM_TERM], "lead scoring"); /* from the url, '+' decoded */
    CHECK_INT(ej.utm[LF_UTM_CONTENT].len, 0);
    CHECK_SV(ej.click_id_name, "gclid");
    CHECK_SV(ej.click_id, "EAIaIQob");
    CHECK_INT(ej.has_campaign, 1);
    /* properties: form_id, seats, price, neg, trial, address.city, address.geo.lat */
    CHECK_INT(ej.nprops, 7);
    const lf_kv_t *kv = lf_event_prop(&ej, "seats");
    CHECK(kv && kv->is_num && kv->num == 25);
    CHECK_SV(kv->val, "25");
    kv = lf_event_prop(&ej, "price");
    CHECK(kv && kv->is_num);
    CHECK_NEAR(kv->num, 14.99, 1e-12);
    CHECK_SV(kv->val, "14.99");
    kv = lf_event_prop(&ej, "neg");
    CHECK(kv && kv->num == -3);
    CHECK_SV(kv->val, "-3");
    kv = lf_event_prop(&ej, "trial");
    CHECK(kv && !kv->is_num);
    CHECK_SV(kv->val, "true");
    kv = lf_event_prop(&ej, "address.geo.lat");
    CHECK(kv && kv->num == 52.5);
    CHECK_SV(lf_event_prop(&ej, "address.city")->val, "Berlin");
    CHECK(lf_event_prop(&ej, "gone") == NULL);
    CHECK(lf_event_prop(&ej, "list") == NULL);
    CHECK(lf_event_prop(&ej, "address") == NULL);
    /* traits: top-level company wins over context.traits company */
    CHECK_INT(ej.ntraits, 3);
    CHECK_SV(lf_event_trait(&ej, "company")->val, "Initrode");
    CHECK_SV(lf_event_trait(&ej, "region")->val, "EU");
    CHECK(lf_event_trait(&ej, "employees")->num == 250);
    /* strings live in the arena, not in the input */
    CHECK(ej.message_id.ptr[ej.message_id.len] == '\0');
}

/* The same event with an integer epoch-ms timestamp: JSON number, msgpack uint, int64 and an
 * integral float64 all decode alike. */
static void test_event_epoch_ms_forms(void)
{
    lf_event_t ev;
    lf_err_t err;
    reset();
    CHECK_INT(decode_s("{\"messageId\":\"m\",\"type\":\"page\",\"userId\":\"u\","
                       "\"timestamp\":1436569200123}",
                       &ev, &err),
              LF_OK);
    CHECK_INT(ev.ts_ms, 1436569200123LL);
    CHECK_INT(ev.kind, LF_KIND_PAGE_VIEW);
    CHECK_SV(ev.kind_name, "page_view");
    for (int form = 0; form < 3; form++) {
        msgpack_sbuffer sb;
        msgpack_packer pk;
        msgpack_sbuffer_init(&sb);
        msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
        msgpack_pack_map(&pk, 4);
        pack_s(&pk, "messageId");
        pack_s(&pk, "m");
        pack_s(&pk, "type");
        pack_s(&pk, "page");
        pack_s(&pk, "userId");
        pack_s(&pk, "u");
        pack_s(&pk, "timestamp");
        if (form == 0) msgpack_pack_uint64(&pk, 1436569200123ULL);
        if (form == 1) msgpack_pack_int64(&pk, 1436569200123LL);
        if (form == 2) msgpack_pack_double(&pk, 1436569200123.0);
        int rc = decode(sb.data, sb.size, &ev, &err);
        msgpack_sbuffer_destroy(&sb);
        CHECK_INT(rc, LF_OK);
        CHECK_INT(ev.ts_ms, 1436569200123LL);
    }
}

/*---- every bad reason --------------------------------------------------------------------*/

#define IDS "\"messageId\":\"m1\",\"userId\":\"u1\""
#define TS "\"timestamp\":\"2015-07-10T23:00:00Z\""

static const struct {
    const char *json;
    lf_bad_t bad;
    const char *msg; /* a substring of err.msg */
} bad_json[] = {
    {"{", LF_BAD_NOT_DECODABLE, "JSON"},
    {"{\"messageId\":}", LF_BAD_NOT_DECODABLE, "JSON"},
    {"{\"messageId\":\"m\"} x", LF_BAD_NOT_DECODABLE, "after the object"},
    {"{\"messageId\":\"m\"}{}", LF_BAD_NOT_DECODABLE, "after the object"},
    {"{\"a\":\"tab\there\"}", LF_BAD_NOT_DECODABLE, "control byte"},
    {"{\"batch\":[{" IDS ",\"type\":\"page\"," TS "}]}", LF_BAD_BATCH_ENVELOPE, "batch"},
    {"{\"type\":\"page\",\"userId\":\"u\"," TS "}", LF_BAD_MISSING_FIELD,
     "missing field messageId"},
    {"{\"messageId\":\"\",\"type\":\"page\",\"userId\":\"u\"," TS "}", LF_BAD_MISSING_FIELD,
     "missing field messageId"},
    {"{" IDS "," TS "}", LF_BAD_MISSING_FIELD, "missing field type"},
    {"{" IDS ",\"type\":null," TS "}", LF_BAD_MISSING_FIELD, "missing field type"},
    {"{" IDS ",\"type\":\"track\"," TS "}", LF_BAD_MISSING_FIELD, "missing field event"},
    {"{" IDS ",\"type\":\"track\",\"event\":\"\"," TS "}", LF_BAD_MISSING_FIELD,
     "missing field event"},
    {"{\"messageId\":\"m\",\"type\":\"page\"," TS "}", LF_BAD_MISSING_FIELD,
     "missing field userId or anonymousId"},
    {"{\"messageId\":\"m\",\"type\":\"page\",\"userId\":null,\"anonymousId\":\"\"," TS "}",
     LF_BAD_MISSING_FIELD, "missing field userId or anonymousId"},
    {"{" IDS ",\"type\":\"alias\"," TS "}", LF_BAD_MISSING_FIELD, "missing field previousId"},
    {"{" IDS ",\"type\":\"page\"}", LF_BAD_MISSING_FIELD, "missing field timestamp"},
    {"{" IDS ",\"type\":\"page\",\"timestamp\":null,\"receivedAt\":\"\"}", LF_BAD_MISSING_FIELD,
     "missing field timestamp"},
    {"{\"messageId\":\"m\",\"type\":\"page\",\"userId\":42," TS "}", LF_BAD_WRONG_TYPE,
     "userId is a number, expected a string"},
    {"{\"messageId\":true,\"type\":\"page\",\"userId\":\"u\"," TS "}", LF_BAD_WRONG_TYPE,
     "messageId is a boolean, expected a string"},
    {"{\"messageId\":\"m\",\"type\":\"page\",\"anonymousId\":{}," TS "}", LF_BAD_WRONG_TYPE,
     "anonymousId is a map, expected a string"},
    {"{" IDS ",\"type\":7," TS "}", LF_BAD_WRONG_TYPE, "type is a number"},
    {"{" IDS ",\"type\":\"track\",\"event\":[\"x\"]," TS "}", LF_BAD_WRONG_TYPE,
     "event is an array"},
    {"{" IDS ",\"type\":\"alias\",\"previousId\":5," TS "}", LF_BAD_WRONG_TYPE,
     "previousId is a number"},
    {"{" IDS ",\"type\":\"page\",\"timestamp\":true}", LF_BAD_WRONG_TYPE, "timestamp is a boolean"},
    {"{" IDS ",\"type\":\"page\",\"originalTimestamp\":[1]}", LF_BAD_WRONG_TYPE,
     "originalTimestamp is an array"},
    {"{\"messageId\":\"m\",\"type\":\"page\",\"userId\":\"a\\u0000b\"," TS "}", LF_BAD_WRONG_TYPE,
     "NUL"},
    {"{\"messageId\":\"m\",\"type\":\"page\",\"userId\":\"caf\xe9\"," TS "}", LF_BAD_WRONG_TYPE,
     "userId is not valid UTF-8"},
    {"{\"messageId\":\"m\\ud800x\",\"type\":\"page\",\"userId\":\"u\"," TS "}",
     LF_BAD_NOT_DECODABLE, "JSON"},
    {"{\"messageId\":\"m\",\"type\":\"page\",\"anonymousId\":\"\xed\xa0\x80\"," TS "}",
     LF_BAD_WRONG_TYPE, "anonymousId is not valid UTF-8"},
    {"{\"messageId\":\"m\",\"type\":\"page\",\"anonymousId\":\"\xc0\xaf\"," TS "}",
     LF_BAD_WRONG_TYPE, "anonymousId is not valid UTF-8"},
    {"{\"messageId\":\"m\",\"type\":\"tr\xffk\",\"userId\":\"u\"," TS "}", LF_BAD_WRONG_TYPE,
     "type is not valid UTF-8"},
    {"{" IDS ",\"type\":\"page\",\"timestamp\":\"2015-2-02T00:30:08.276Z\"}",
     LF_BAD_TIMESTAMP_UNPARSABLE, "timestamp \"2015-2-02T00:30:08.276Z\" is not an ISO-8601"},
    /* timestamp present but bad: no silent fall back to originalTimestamp */
    {"{" IDS ",\"type\":\"page\",\"timestamp\":\"yesterday\","
     "\"originalTimestamp\":\"2015-07-10T23:00:00Z\"}",
     LF_BAD_TIMESTAMP_UNPARSABLE, "timestamp \"yesterday\""},
    {"{" IDS ",\"type\":\"page\",\"originalTimestamp\":\"2020-05-09 23:54:49.209808489 +0000 UTC "
     "m=+70366.298768264\"}",
     LF_BAD_TIMESTAMP_UNPARSABLE,
     "originalTimestamp \"2020-05-09 23:54:49.209808489 +0000 UTC ...\" is not an ISO-8601"},
    {"{" IDS ",\"type\":\"page\",\"timestamp\":1436569200123.5}", LF_BAD_TIMESTAMP_UNPARSABLE,
     "whole epoch milliseconds"},
    {"{" IDS ",\"type\":\"page\",\"timestamp\":\"0001-01-01T00:00:00Z\"}", LF_BAD_TIMESTAMP_RANGE,
     "timestamp 0001-01-01T00:00:00.000Z is outside"},
    {"{" IDS ",\"type\":\"page\",\"receivedAt\":1436569200}", LF_BAD_TIMESTAMP_RANGE,
     "receivedAt 1970-01-17"}, /* epoch seconds, not ms */
    {"{" IDS ",\"type\":\"page\",\"timestamp\":\"2100-01-01T00:00:00.001Z\"}",
     LF_BAD_TIMESTAMP_RANGE, "outside"},
    {"{" IDS ",\"type\":\"page\",\"timestamp\":1e300}", LF_BAD_TIMESTAMP_RANGE, "outside"},
    {"{" IDS ",\"type\":\"page\",\"timestamp\":-1e300}", LF_BAD_TIMESTAMP_RANGE, "outside"},
    {"{\"a\":[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]}", LF_BAD_TOO_COMPLEX, "deeper than 16"},
};

static void test_event_bad_reasons_json(void)
{
    reset();
    for (size_t i = 0; i < sizeof(bad_json) / sizeof(bad_json[0]); i++) {
        lf_event_t ev;
        lf_err_t err;
        int rc = decode_s(bad_json[i].json, &ev, &err);
        if (rc != LF_ERR || err.code != (int)bad_json[i].bad || !strstr(err.msg, bad_json[i].msg)) {
            lf_test_fail(__FILE__, __LINE__, "row %zu %s: rc %d, %s \"%s\", expected %s \"%s\"", i,
                         bad_json[i].json, rc, lf_bad_name((lf_bad_t)err.code), err.msg,
                         lf_bad_name(bad_json[i].bad), bad_json[i].msg);
            return;
        }
    }
}

/* An id of n bytes in field `field` of an otherwise valid event. */
static int decode_with_id(const char *field, size_t n, lf_event_t *ev, lf_err_t *err)
{
    char id[300], json[1400];
    memset(id, 'x', n);
    id[n] = '\0';
    snprintf(json, sizeof(json),
             "{\"messageId\":\"%s\",\"type\":\"alias\",\"userId\":\"%s\",\"anonymousId\":\"%s\","
             "\"previousId\":\"%s\"," TS "}",
             strcmp(field, "messageId") ? "m" : id, strcmp(field, "userId") ? "u" : id,
             strcmp(field, "anonymousId") ? "a" : id, strcmp(field, "previousId") ? "p" : id);
    return decode_s(json, ev, err);
}

static void test_event_id_too_long(void)
{
    static const char *const fields[] = {"messageId", "userId", "anonymousId", "previousId"};
    lf_event_t ev;
    lf_err_t err;
    reset();
    for (int f = 0; f < 4; f++) {
        CHECK_INT(decode_with_id(fields[f], LF_ID_MAX, &ev, &err), LF_OK);
        CHECK_INT(decode_with_id(fields[f], LF_ID_MAX + 1, &ev, &err), LF_ERR);
        CHECK_INT(err.code, LF_BAD_ID_TOO_LONG);
        CHECK_INT(decode_with_id(fields[f], 140, &ev, &err), LF_ERR);
        CHECK_INT(err.code, LF_BAD_ID_TOO_LONG);
        char want[100];
        snprintf(want, sizeof(want), "%s is 140 bytes, the limit is 128", fields[f]);
        CHECK_STR(err.msg, want);
    }
    /* multi-byte UTF-8 counts bytes: 64 x "é" = 128 bytes ok, 65 = 130 bytes too long */
    char json[600], id[200];
    for (int n = 64; n <= 65; n++) {
        id[0] = '\0';
        for (int i = 0; i < n; i++)
            strcat(id, "\xc3\xa9");
        snprintf(json, sizeof(json),
                 "{\"messageId\":\"m\",\"type\":\"page\",\"userId\":\"%s\"," TS "}", id);
        CHECK_INT(decode_s(json, &ev, &err), n == 64 ? LF_OK : LF_ERR);
    }
    CHECK_STR(err.msg, "userId is 130 bytes, the limit is 128");
}

static void test_event_too_large(void)
{
    lf_event_t ev;
    lf_err_t err;
    lf_event_limits_t lim;
    reset();
    lf_event_limits_default(&lim);
    CHECK_INT(lim.max_event_bytes, 32768);
    CHECK_INT(lim.min_ts_ms, 946684800000LL);
    CHECK_INT(lim.max_ts_ms, 4102444800000LL);
    /* A valid event padded to exactly the limit decodes; one byte more is too large, and the
     * size is checked before anything else (the over-size value here is not even valid). */
    size_t n = lim.max_event_bytes;
    char *buf = malloc(n + 1);
    const char *head = "{\"messageId\":\"m\",\"type\":\"page\",\"userId\":\"u\"," TS ",\"pad\":\"";
    size_t hl = strlen(head);
    memcpy(buf, head, hl);
    memset(buf + hl, 'p', n - hl - 2);
    memcpy(buf + n - 2, "\"}", 2);
    CHECK_INT(decode(buf, n, &ev, &err), LF_OK);
    buf[n] = ' ';
    CHECK_INT(decode(buf, n + 1, &ev, &err), LF_ERR);
    CHECK_INT(err.code, LF_BAD_TOO_LARGE);
    CHECK_STR(err.msg, "the event is 32769 bytes, the limit is 32768");
    memset(buf, 0xc1, n + 1);
    CHECK_INT(decode(buf, n + 1, &ev, &err), LF_ERR);
    CHECK_INT(err.code, LF_BAD_TOO_LARGE);
    free(buf);
    lim.max_event_bytes = 10;
    CHECK_INT(decode_lim("{\"a\":\"12345\"}", 13, &lim, &ev, &err), LF_ERR);
    CHECK_INT(err.code, LF_BAD_TOO_LARGE);
    /* custom time range */
    lf_event_limits_default(&lim);
    lim.min_ts_ms = 1436569200000LL;
    const char *e = "{" IDS ",\"type\":\"page\",\"timestamp\":1436569199999}";
    CHECK_INT(decode_lim(e, strlen(e), &lim, &ev, &err), LF_ERR);
    CHECK_INT(err.code, LF_BAD_TIMESTAMP_RANGE);
    e = "{" IDS ",\"type\":\"page\",\"timestamp\":1436569200000}";
    CHECK_INT(decode_lim(e, strlen(e), &lim, &ev, &err), LF_OK);
}

/* Bad MessagePack forms, built with msgpack_pack_*. */
static void test_event_bad_reasons_msgpack(void)
{
    lf_event_t ev;
    lf_err_t err;
    msgpack_sbuffer sb;
    msgpack_packer pk;
    reset();

    /* not a map: an array, a string, an int */
    msgpack_sbuffer_init(&sb);
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    msgpack_pack_array(&pk, 2);
    pack_s(&pk, "messageId");
    pack_s(&pk, "m");
    CHECK_INT(decode(sb.data, sb.size, &ev, &err), LF_ERR);
    CHECK_INT(err.code, LF_BAD_NOT_A_MAP);
    CHECK_STR(err.msg, "the event is an array, expected a map");
    msgpack_sbuffer_clear(&sb);
    pack_s(&pk, "hello");
    CHECK_INT(decode(sb.data, sb.size, &ev, &err), LF_ERR);
    CHECK_INT(err.code, LF_BAD_NOT_A_MAP);
    CHECK_INT(decode("\x05", 1, &ev, &err), LF_ERR);
    CHECK_INT(err.code, LF_BAD_NOT_A_MAP);

    /* A valid event, then trailing garbage. */
    msgpack_sbuffer_clear(&sb);
    msgpack_pack_map(&pk, 4);
    pack_s(&pk, "messageId");
    pack_s(&pk, "m");
    pack_s(&pk, "type");
    pack_s(&pk, "page");
    pack_s(&pk, "userId");
    pack_s(&pk, "u");
    pack_s(&pk, "timestamp");
    pack_s(&pk, "2015-07-10T23:00:00Z");
    CHECK_INT(decode(sb.data, sb.size, &ev, &err), LF_OK);
    msgpack_pack_nil(&pk);
    CHECK_INT(decode(sb.data, sb.size, &ev, &err), LF_ERR);
    CHECK_INT(err.code, LF_BAD_NOT_DECODABLE);
    CHECK(strstr(err.msg, "1 bytes after the first object"));
    /* two events back to back is also trailing data */
    size_t one = sb.size - 1;
    char *two = malloc(2 * one);
    memcpy(two, sb.data, one);
    memcpy(two + one, sb.data, one);
    CHECK_INT(decode(two, 2 * one, &ev, &err), LF_ERR);
    CHECK_INT(err.code, LF_BAD_NOT_DECODABLE);
    free(two);

    /* userId as bin, as an int, with a NUL byte; messageId as a float */
    for (int form = 0; form < 5; form++) {
        msgpack_sbuffer_clear(&sb);
        msgpack_pack_map(&pk, 4);
        pack_s(&pk, "messageId");
        if (form == 4)
            msgpack_pack_double(&pk, 1.5);
        else
            pack_s(&pk, "m");
        pack_s(&pk, "type");
        pack_s(&pk, "page");
        pack_s(&pk, "userId");
        if (form == 0) {
            msgpack_pack_bin(&pk, 3);
            msgpack_pack_bin_body(&pk, "abc", 3);
        } else if (form == 1) {
            msgpack_pack_int(&pk, -42);
        } else if (form == 2) {
            msgpack_pack_str(&pk, 3);
            msgpack_pack_str_body(&pk, "a\0b", 3);
        } else if (form == 3) {
            msgpack_pack_str(&pk, 2);
            msgpack_pack_str_body(&pk, "\xff\xfe", 2);
        } else {
            pack_s(&pk, "u");
        }
        pack_s(&pk, "timestamp");
        pack_s(&pk, "2015-07-10T23:00:00Z");
        CHECK_INT(decode(sb.data, sb.size, &ev, &err), LF_ERR);
        CHECK_INT(err.code, LF_BAD_WRONG_TYPE);
        static const char *const want[] = {
            "userId is binary data, expected a string", "userId is a number, expected a string",
            "NUL", "userId is not valid UTF-8", "messageId is a number, expected a string"};
        CHECK(strstr(err.msg, want[form]));
    }
    /* the timestamp as a non-integral float, as a bool */
    for (int form = 0; form < 2; form++) {
        msgpack_sbuffer_clear(&sb);
        msgpack_pack_map(&pk, 4);
        pack_s(&pk, "messageId");
        pack_s(&pk, "m");
        pack_s(&pk, "type");
        pack_s(&pk, "page");
        pack_s(&pk, "userId");
        pack_s(&pk, "u");
        pack_s(&pk, "timestamp");
        if (form == 0)
            msgpack_pack_double(&pk, 1436569200000.25);
        else
            msgpack_pack_true(&pk);
        CHECK_INT(decode(sb.data, sb.size, &ev, &err), LF_ERR);
        CHECK_INT(err.code, form == 0 ? LF_BAD_TIMESTAMP_UNPARSABLE : LF_BAD_WRONG_TYPE);
    }
    /* batch envelope */
    msgpack_sbuffer_clear(&sb);
    msgpack_pack_map(&pk, 1);
    pack_s(&pk, "batch");
    msgpack_pack_array(&pk, 0);
    CHECK_INT(decode(sb.data, sb.size, &ev, &err), LF_ERR);
    CHECK_INT(err.code, LF_BAD_BATCH_ENVELOPE);
    msgpack_sbuffer_destroy(&sb);

    /* empty input and whitespace only */
    CHECK_INT(decode("", 0, &ev, &err), LF_ERR);
    CHECK_INT(err.code, LF_BAD_NOT_DECODABLE);
    CHECK_INT(decode("  \n", 3, &ev, &err), LF_ERR);
    CHECK_INT(err.code, LF_BAD_NOT_DECODABLE);
}

/* Strings with NUL or bad UTF-8 outside the ids: NUL is refused anywhere (both formats), bad
 * UTF-8 outside ids is kept as sent. Leading whitespace before '{' is JSON. */
static void test_event_string_policy(void)
{
    lf_event_t ev;
    lf_err_t err;
    reset();
    CHECK_INT(decode_s("{" IDS ",\"type\":\"page\"," TS ",\"properties\":{\"x\":\"a\\u0000\"}}",
                       &ev, &err),
              LF_ERR);
    CHECK_INT(err.code, LF_BAD_WRONG_TYPE);
    /* an escaped backslash followed by u0000 is the text \u0000, not a NUL */
    CHECK_INT(decode_s("{" IDS ",\"type\":\"page\"," TS ",\"properties\":{\"x\":\"a\\\\u0000\"}}",
                       &ev, &err),
              LF_OK);
    CHECK_SV(lf_event_prop(&ev, "x")->val, "a\\u0000");
    CHECK_INT(decode_s(" \r\n\t{" IDS ",\"type\":\"page\"," TS
                       ",\"properties\":{\"x\":\"\xff\"}} \n",
                       &ev, &err),
              LF_OK);
    CHECK_SV(lf_event_prop(&ev, "x")->val, "\xff");
    /* type "page" wins over a stray event; type is case-insensitive */
    CHECK_INT(decode_s("{" IDS ",\"type\":\"PAGE\",\"event\":\"Deal Won\"," TS "}", &ev, &err),
              LF_OK);
    CHECK_INT(ev.kind, LF_KIND_PAGE_VIEW);
    /* duplicate keys: the first wins */
    CHECK_INT(decode_s("{" IDS ",\"type\":\"page\",\"type\":\"track\"," TS "}", &ev, &err), LF_OK);
    CHECK_SV(ev.type, "page");
    /* optional fields of the wrong type are ignored */
    CHECK_INT(decode_s("{" IDS ",\"type\":\"page\"," TS ",\"context\":{\"page\":{\"url\":5},"
                       "\"campaign\":[1],\"userAgent\":false,\"traits\":\"x\"},"
                       "\"properties\":null,\"traits\":7}",
                       &ev, &err),
              LF_OK);
    CHECK_INT(ev.url.len + ev.user_agent.len + ev.nprops + ev.ntraits + ev.has_campaign, 0);
    /* userId absent but anonymousId present: the key is the anonymousId */
    CHECK_INT(decode_s("{\"messageId\":\"m\",\"type\":\"page\",\"userId\":\"\","
                       "\"anonymousId\":\"anon-1\"," TS "}",
                       &ev, &err),
              LF_OK);
    CHECK_INT(ev.user_id.len, 0);
    CHECK_SV(lf_event_key(&ev), "anon-1");
}

/*---- timestamps -----------------------------------------------------------------------*/

#define T0 1436569200000LL /* 2015-07-10T23:00:00Z */
#define BAD_TS INT64_MIN

static const struct {
    const char *s;
    int64_t ms; /* BAD_TS: unparsable */
} ts_table[] = {
    {"2015-07-10T23:00:00Z", T0},
    {"2015-07-10T23:00:00z", T0},
    {"2015-07-10t23:00:00Z", T0},
    {"2015-07-10T23:00:00", T0}, /* no offset = UTC */
    {"2015-07-10T23:00:00+00:00", T0},
    {"2015-07-10T23:00:00-00:00", T0},
    {"2015-07-10T23:00:00+02:00", T0 - 7200000},
    {"2015-07-10T23:00:00+0200", T0 - 7200000},
    {"2015-07-10T23:00:00+02", T0 - 7200000},
    {"2015-07-10T23:00:00-07:00", T0 + 25200000},
    {"2015-07-10T23:00:00+05:45", 1436548500000LL},
    {"2015-07-10T23:00:00.500-07:30", 1436596200500LL},
    {"2015-07-10T23:00:00,250Z", T0 + 250},
    /* fractions of 1 to 9 digits (0 digits after '.' is bad, below) */
    {"2015-07-10T23:00:00.9Z", T0 + 900},
    {"2015-07-10T23:00:00.98Z", T0 + 980},
    {"2015-07-10T23:00:00.987Z", T0 + 987},
    {"2015-07-10T23:00:00.9876Z", T0 + 987},
    {"2015-07-10T23:00:00.98765Z", T0 + 987},
    {"2015-07-10T23:00:00.987654Z", T0 + 987},
    {"2015-07-10T23:00:00.9876543Z", T0 + 987},
    {"2015-07-10T23:00:00.98765432Z", T0 + 987},
    {"2015-07-10T23:00:00.987654321Z", T0 + 987},
    {"2015-07-10T23:00:00.000000000000000001Z", T0},
    {"2015-07-10T23:00:00.05+01:00", T0 - 3600000 + 50},
    {"2015-08-04T01:04:24+00:00", 1438650264000LL},
    {"2018-09-05T23:05:25.862826855Z", 1536188725862LL},
    {"2016-02-29T00:00:00Z", 1456704000000LL},
    {"2000-02-29T12:34:56.789Z", 951827696789LL},
    {"1970-01-01T00:00:00Z", 0},
    {"1969-12-31T23:59:59.999Z", -1},
    {"0001-01-01T00:00:00Z", -62135596800000LL},
    {"9999-12-31T23:59:59.999Z", 253402300799999LL},
    /* unparsable */
    {"", BAD_TS},
    {"2015-2-02T00:30:08.276Z", BAD_TS},
    {"2020-05-09 23:54:49.209808489 +0000 UTC m=+70366.298768264", BAD_TS},
    {"2024-09-10T14:38:57.524122374Z[GMT]", BAD_TS},
    {"2015-07-10 23:00:00Z", BAD_TS},
    {"2015-07-10", BAD_TS},
    {"2015-07-10T23:00Z", BAD_TS},
    {"2015-07-10T23:00:00.Z", BAD_TS},
    {"2015-07-10T23:00:00ZZ", BAD_TS},
    {"2015-07-10T23:00:00 Z", BAD_TS},
    {" 2015-07-10T23:00:00Z", BAD_TS},
    {"2015-07-10T23:00:00Z ", BAD_TS},
    {"2015-07-10T23:00:00+2:00", BAD_TS},
    {"2015-07-10T23:00:00+02:0", BAD_TS},
    {"2015-07-10T23:00:00+020", BAD_TS},
    {"2015-07-10T23:00:00+24:00", BAD_TS},
    {"2015-07-10T23:00:00+02:60", BAD_TS},
    {"2015-07-10T23:00:00+", BAD_TS},
    {"2015-07-10T23:00:00.123+", BAD_TS},
    {"2015-13-10T23:00:00Z", BAD_TS},
    {"2015-00-10T23:00:00Z", BAD_TS},
    {"2015-07-00T23:00:00Z", BAD_TS},
    {"2015-07-32T23:00:00Z", BAD_TS},
    {"2015-02-29T00:00:00Z", BAD_TS},
    {"1900-02-29T00:00:00Z", BAD_TS},
    {"2015-04-31T00:00:00Z", BAD_TS},
    {"2015-07-10T24:00:00Z", BAD_TS},
    {"2015-07-10T23:60:00Z", BAD_TS},
    {"2015-07-10T23:00:60Z", BAD_TS},
    {"+2015-07-10T23:00:00Z", BAD_TS},
    {"20150710T230000Z", BAD_TS},
    {"1436569200000", BAD_TS},
    {"2015-07-10T23:00:00Zjunk", BAD_TS},
    {"2015-07-1OT23:00:00Z", BAD_TS},
    {"Fri, 10 Jul 2015 23:00:00 GMT", BAD_TS},
};

static void test_event_timestamp_table(void)
{
    for (size_t i = 0; i < sizeof(ts_table) / sizeof(ts_table[0]); i++) {
        int64_t ms = 12345;
        const char *s = ts_table[i].s;
        /* exact-size copy: the parser must not read past len */
        size_t n = strlen(s);
        char *copy = malloc(n ? n : 1);
        memcpy(copy, s, n);
        int rc = lf_time_parse_iso8601(copy, n, &ms);
        free(copy);
        if (ts_table[i].ms == BAD_TS) {
            if (rc != LF_ERR) {
                lf_test_fail(__FILE__, __LINE__, "\"%s\" parsed as %lld, expected unparsable", s,
                             (long long)ms);
                return;
            }
        } else if (rc != LF_OK || ms != ts_table[i].ms) {
            lf_test_fail(__FILE__, __LINE__, "\"%s\": rc %d ms %lld, expected %lld", s, rc,
                         (long long)ms, (long long)ts_table[i].ms);
            return;
        }
    }
}

static void test_event_timestamp_format(void)
{
    char buf[32];
    static const struct {
        int64_t ms;
        const char *s;
    } rows[] = {
        {0, "1970-01-01T00:00:00.000Z"},
        {-1, "1969-12-31T23:59:59.999Z"},
        {T0 + 7, "2015-07-10T23:00:00.007Z"},
        {951827696789LL, "2000-02-29T12:34:56.789Z"},
        {-62135596800000LL, "0001-01-01T00:00:00.000Z"},
        {253402300799999LL, "9999-12-31T23:59:59.999Z"},
        {4102444800000LL, "2100-01-01T00:00:00.000Z"},
    };
    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
        lf_time_format_iso8601(rows[i].ms, buf, sizeof(buf));
        CHECK_STR(buf, rows[i].s);
        int64_t back;
        CHECK_INT(lf_time_parse_iso8601(buf, strlen(buf), &back), LF_OK);
        CHECK_INT(back, rows[i].ms);
    }
    /* round trip over 400 years, every ~37 hours and some odd ms */
    for (int64_t ms = 946684800000LL; ms < 4102444800000LL; ms += 133333333337LL / 1000) {
        int64_t back;
        lf_time_format_iso8601(ms, buf, sizeof(buf));
        CHECK_INT(lf_time_parse_iso8601(buf, strlen(buf), &back), LF_OK);
        CHECK_INT(back, ms);
    }
}

/* Timestamp choice and range through the decoder. */
static void test_event_timestamp_fields(void)
{
    lf_event_t ev;
    lf_err_t err;
    reset();
    CHECK_INT(decode_s("{" IDS ",\"type\":\"page\",\"receivedAt\":\"2015-07-10T23:00:00.003Z\","
                       "\"originalTimestamp\":\"2015-07-10T23:00:00.002Z\"}",
                       &ev, &err),
              LF_OK);
    CHECK_INT(ev.ts_ms, T0 + 2);
    CHECK_INT(decode_s("{" IDS ",\"type\":\"page\",\"receivedAt\":\"2015-07-10T23:00:00.003Z\","
                       "\"timestamp\":null}",
                       &ev, &err),
              LF_OK);
    CHECK_INT(ev.ts_ms, T0 + 3);
    /* the edges of the default range are inside */
    CHECK_INT(
        decode_s("{" IDS ",\"type\":\"page\",\"timestamp\":\"2000-01-01T00:00:00Z\"}", &ev, &err),
        LF_OK);
    CHECK_INT(decode_s("{" IDS ",\"type\":\"page\",\"timestamp\":4102444800000}", &ev, &err),
              LF_OK);
    CHECK_INT(decode_s("{" IDS ",\"type\":\"page\",\"timestamp\":\"1999-12-31T23:59:59.999Z\"}",
                       &ev, &err),
              LF_ERR);
    CHECK_INT(err.code, LF_BAD_TIMESTAMP_RANGE);
    CHECK_INT(decode_s("{" IDS ",\"type\":\"page\",\"timestamp\":-5}", &ev, &err), LF_ERR);
    CHECK_INT(err.code, LF_BAD_TIMESTAMP_RANGE);
    /* an offset moves a time across the lower edge */
    CHECK_INT(decode_s("{" IDS ",\"type\":\"page\",\"timestamp\":\"2000-01-01T00:30:00+01:00\"}",
                       &ev, &err),
              LF_ERR);
    CHECK_INT(err.code, LF_BAD_TIMESTAMP_RANGE);
}

/*---- URLs and campaign attribution ----------------------------------------------------*/

static const struct {
    const char *url, *search;
    const char *utm[LF_UTM__COUNT]; /* source, medium, campaign, term, content */
    const char *click_name, *click_id, *path;
} url_table[] = {
    {"https://example.com/pricing?utm_source=google&utm_medium=cpc&utm_campaign=spring_sale&utm_"
     "term=lead+scoring&utm_content=ad1&gclid=EAIaIQobChMI3",
     NULL,
     {"google", "cpc", "spring_sale", "lead scoring", "ad1"},
     "gclid",
     "EAIaIQobChMI3",
     "/pricing"},
    {"https://www.example.com/blog/post-1?utm_source=newsletter&utm_medium=email&utm_campaign="
     "2024%20Q1%20Launch",
     NULL,
     {"newsletter", "email", "2024 Q1 Launch", "", ""},
     "",
     "",
     "/blog/post-1"},
    {"https://shop.example.com/?fbclid=IwAR2F4-dbP0l7Mn1IawQQGCINEz7PYXQvwjNwB_6b9nrOo&utm_source="
     "facebook&utm_medium=paid_social",
     NULL,
     {"facebook", "paid_social", "", "", ""},
     "fbclid",
     "IwAR2F4-dbP0l7Mn1IawQQGCINEz7PYXQvwjNwB_6b9nrOo",
     "/"},
    {"https://example.com/landing?msclkid=4b8c9d1e2f3a1b2c3d4e5f6a7b8c9d0e&utm_source=bing&utm_"
     "medium=cpc&utm_campaign=brand",
     NULL,
     {"bing", "cpc", "brand", "", ""},
     "msclkid",
     "4b8c9d1e2f3a1b2c3d4e5f6a7b8c9d0e",
     "/landing"},
    {"https://example.com/demo?dclid=CJGp3a_x4fcCFQ&utm_source=dv360&utm_medium=display",
     NULL,
     {"dv360", "display", "", "", ""},
     "dclid",
     "CJGp3a_x4fcCFQ",
     "/demo"},
    /* UTM only in the fragment: not a query */
    {"https://example.com/app#utm_source=hash&utm_medium=frag",
     NULL,
     {"", "", "", "", ""},
     "",
     "",
     "/app"},
    {"https://example.com/p?utm_source=twitter#section-2&utm_medium=frag",
     NULL,
     {"twitter", "", "", "", ""},
     "",
     "",
     "/p"},
    /* repeated parameter: the first wins */
    {"https://example.com/?utm_source=first&utm_source=second",
     NULL,
     {"first", "", "", "", ""},
     "",
     "",
     "/"},
    {"https://segment.com/academy/", NULL, {"", "", "", "", ""}, "", "", "/academy/"},
    {"http://www.example.com", NULL, {"", "", "", "", ""}, "", "", "/"},
    {"/pricing?utm_source=partner&utm_medium=referral",
     NULL,
     {"partner", "referral", "", "", ""},
     "",
     "",
     "/pricing"},
    {"index.html", NULL, {"", "", "", "", ""}, "", "", "index.html"},
    /* percent-encoded UTF-8; %2B is a literal '+', %26 a literal '&' */
    {"https://example.de/angebote?utm_campaign=fr%C3%BChling%2B2024&utm_source=x%26y",
     NULL,
     {"x&y", "", "fr\xc3\xbchling+2024", "", ""},
     "",
     "",
     "/angebote"},
    /* parameter names are case-insensitive; values are kept as sent */
    {"https://example.com/?UTM_SOURCE=LinkedIn&Utm_Medium=Social",
     NULL,
     {"LinkedIn", "Social", "", "", ""},
     "",
     "",
     "/"},
    /* an HTML-escaped &amp; left in the link */
    {"https://example.com/webinar?utm_source=hubspot&amp;utm_medium=email&amp;utm_campaign="
     "webinar-may",
     NULL,
     {"hubspot", "email", "webinar-may", "", ""},
     "",
     "",
     "/webinar"},
    /* an empty value is absent */
    {"https://example.com/?utm_source=&utm_medium=organic&gclid=",
     NULL,
     {"", "organic", "", "", ""},
     "",
     "",
     "/"},
    /* a '%' without two hex digits stays */
    {"https://example.com/?utm_source=100%25%zz%4",
     NULL,
     {"100%%zz%4", "", "", "", ""},
     "",
     "",
     "/"},
    {"http://user@example.com:8080/a/b/c.html?utm_term=running+shoes%21",
     NULL,
     {"", "", "", "running shoes!", ""},
     "",
     "",
     "/a/b/c.html"},
    {"https://offers.example.com/ebook?utm_campaign=ebook&utm_source=hs_email&utm_medium=email&_"
     "hsenc=p2ANqtz-abc&_hsmi=12345",
     NULL,
     {"hs_email", "email", "ebook", "", ""},
     "",
     "",
     "/ebook"},
    {"https://example.com/?utm_source=Newsletter+March&utm_campaign=a1b2c3d4e5-EMAIL_CAMPAIGN_2024_"
     "03_01&utm_medium=email&utm_term=0_abc-a1b2c3d4e5-123456",
     NULL,
     {"Newsletter March", "email", "a1b2c3d4e5-EMAIL_CAMPAIGN_2024_03_01",
      "0_abc-a1b2c3d4e5-123456", ""},
     "",
     "",
     "/"},
    /* several click ids: gclid, msclkid, dclid, fbclid in that order of preference */
    {"https://example.com/?fbclid=F1&gclid=G1", NULL, {"", "", "", "", ""}, "gclid", "G1", "/"},
    /* an unreplaced ValueTrack placeholder is a value like any other */
    {"https://example.com/x?utm_term={keyword}&utm_source=google",
     NULL,
     {"google", "", "", "{keyword}", ""},
     "",
     "",
     "/x"},
    {"https://example.com/?", NULL, {"", "", "", "", ""}, "", "", "/"},
    {"?utm_source=q", NULL, {"q", "", "", "", ""}, "", "", ""},
    {"//cdn.example.com/a?utm_content=c", NULL, {"", "", "", "", "c"}, "", "", "/a"},
    /* context.page.search adds what the url lacks; the url wins where both have it */
    {"https://example.com/x?utm_source=url",
     "?utm_source=search&utm_medium=s_med&gclid=S1",
     {"url", "s_med", "", "", ""},
     "gclid",
     "S1",
     "/x"},
    {"https://example.com/x", "utm_source=no_question_mark", {"", "", "", "", ""}, "", "", "/x"},
};

static void test_event_url_table(void)
{
    char json[1200];
    lf_event_t ev;
    lf_err_t err;
    reset();
    for (size_t i = 0; i < sizeof(url_table) / sizeof(url_table[0]); i++) {
        char search[300] = "";
        if (url_table[i].search)
            snprintf(search, sizeof(search), ",\"search\":\"%s\"", url_table[i].search);
        snprintf(json, sizeof(json),
                 "{" IDS ",\"type\":\"page\"," TS ",\"context\":{\"page\":{\"url\":\"%s\"%s}}}",
                 url_table[i].url, search);
        if (decode_s(json, &ev, &err) != LF_OK) {
            lf_test_fail(__FILE__, __LINE__, "row %zu: %s", i, err.msg);
            return;
        }
        int any = 0;
        const char *bad = NULL;
        for (int f = 0; f < LF_UTM__COUNT; f++) {
            if (!sv_same(ev.utm[f], lf_str_from(url_table[i].utm[f]))) bad = lf_utm_name(f);
            any |= url_table[i].utm[f][0] != 0;
        }
        if (!sv_same(ev.click_id_name, lf_str_from(url_table[i].click_name))) bad = "click name";
        if (!sv_same(ev.click_id, lf_str_from(url_table[i].click_id))) bad = "click id";
        if (!sv_same(ev.path, lf_str_from(url_table[i].path))) bad = "path";
        if (!sv_same(ev.url, lf_str_from(url_table[i].url))) bad = "url";
        any |= url_table[i].click_id[0] != 0;
        if (ev.has_campaign != any) bad = "has_campaign";
        if (bad) {
            lf_test_fail(__FILE__, __LINE__, "row %zu (%s): %s differs", i, url_table[i].url, bad);
            return;
        }
    }
    CHECK(sizeof(url_table) / sizeof(url_table[0]) >= 15);
}

static void test_event_url_helpers(void)
{
    char out[64];
    lf_str_t v;
    CHECK_INT(lf_url_decode("a+b%20c", 7, out, sizeof(out), 1), 5);
    CHECK(memcmp(out, "a b c", 5) == 0);
    CHECK_INT(lf_url_decode("a+b%20c", 7, out, sizeof(out), 0), 5);
    CHECK(memcmp(out, "a+b c", 5) == 0);
    CHECK_INT(lf_url_decode("%41%4a%4A%", 10, out, sizeof(out), 0), 4);
    CHECK(memcmp(out, "AJJ%", 4) == 0);
    CHECK_INT(lf_url_decode("%00x", 4, out, sizeof(out), 0), 2);
    CHECK(out[0] == 0 && out[1] == 'x');
    CHECK_INT(lf_url_decode("abcdef", 6, out, 3, 0), 3); /* stops at cap */
    CHECK(lf_url_query_param(LF_STR_LIT("https://x/?a=1&b=2&c"), "b", &v));
    CHECK_SV(v, "2");
    CHECK(lf_url_query_param(LF_STR_LIT("https://x/?a=1&b=2&c"), "c", &v));
    CHECK_INT(v.len, 0);
    CHECK(!lf_url_query_param(LF_STR_LIT("https://x/?a=1&b=2&c"), "d", &v));
    CHECK(!lf_url_query_param(LF_STR_LIT("https://x/?ab=1"), "a", &v));
    CHECK(!lf_url_query_param(LF_STR_LIT("https://x/?a=1"), "ab", &v));
    CHECK(lf_url_query_param(LF_STR_LIT("https://x/?x=a=b"), "x", &v));
    CHECK_SV(v, "a=b");
    CHECK(!lf_url_query_param(LF_STR_NULL, "x", &v));
    /* Several names in one pass: each one's first occurrence, whatever the order asked. */
    static const char *const names[] = {"c", "A", "b", "zz"};
    lf_str_t vals[4];
    CHECK_INT(
        lf_url_query_params(LF_STR_LIT("https://x/?a=1&amp;B=2&a=3&c&b=4#&zz=5"), names, 4, vals),
        3);
    CHECK(vals[0].ptr && vals[0].len == 0);
    CHECK_SV(vals[1], "1");
    CHECK_SV(vals[2], "2");
    CHECK(vals[3].ptr == NULL);
    CHECK_INT(lf_url_query_params(LF_STR_LIT("https://x/#?a=1"), names, 4, vals), 0);
    CHECK(vals[1].ptr == NULL);
    CHECK_SV(lf_url_path(LF_STR_LIT("https://x.com/pricing?a=1")), "/pricing");
    CHECK_SV(lf_url_path(LF_STR_LIT("https://x.com#top")), "/");
    CHECK_SV(lf_url_path(LF_STR_LIT("mailto:a@b.c")), "mailto:a@b.c");
    CHECK_INT(lf_url_path(LF_STR_NULL).len, 0);
}

/* context.campaign fills a field even when the url has it; name is the campaign. */
static void test_event_campaign_precedence(void)
{
    lf_event_t ev;
    lf_err_t err;
    reset();
    CHECK_INT(decode_s("{" IDS ",\"type\":\"page\"," TS ",\"context\":{\"campaign\":{\"name\":"
                       "\"ctx_name\",\"source\":\"\",\"medium\":3},\"page\":{\"url\":\"https://a/"
                       "?utm_campaign=url_name&utm_source=url_src&utm_medium=url_med\"}}}",
                       &ev, &err),
              LF_OK);
    CHECK_SV(ev.utm[LF_UTM_CAMPAIGN], "ctx_name");
    CHECK_SV(ev.utm[LF_UTM_SOURCE], "url_src"); /* empty in context: from the url */
    CHECK_SV(ev.utm[LF_UTM_MEDIUM], "url_med"); /* not a string in context: from the url */
    /* page fields: context.page first, else properties; a missing path comes from the url */
    CHECK_INT(decode_s("{" IDS ",\"type\":\"page\"," TS ",\"context\":{\"page\":{\"title\":\"\","
                       "\"referrer\":\"https://r/\"}},\"properties\":{\"title\":\"P title\","
                       "\"referrer\":\"https://other/\",\"url\":\"https://a.com/b/c?utm_medium="
                       "m\"}}",
                       &ev, &err),
              LF_OK);
    CHECK_SV(ev.title, "P title");
    CHECK_SV(ev.referrer, "https://r/");
    CHECK_SV(ev.url, "https://a.com/b/c?utm_medium=m");
    CHECK_SV(ev.path, "/b/c");
    CHECK_SV(ev.utm[LF_UTM_MEDIUM], "m");
    CHECK_INT(ev.has_campaign, 1);
    /* a campaign in properties (not context) is not UTM */
    CHECK_INT(decode_s("{" IDS ",\"type\":\"page\"," TS ",\"properties\":{\"campaign\":{"
                       "\"source\":\"s\"}}}",
                       &ev, &err),
              LF_OK);
    CHECK_INT(ev.has_campaign, 0);
    CHECK_SV(lf_event_prop(&ev, "campaign.source")->val, "s");
}

/*---- kinds -----------------------------------------------------------------------------*/

static void test_event_kind_mapping(void)
{
    static const struct {
        const char *name;
        lf_kind_t kind;
    } rows[] = {
        {"Email Opened", LF_KIND_EMAIL_OPEN},
        {"Email Open", LF_KIND_EMAIL_OPEN},
        {"email opened", LF_KIND_EMAIL_OPEN},
        {"EMAIL_OPEN", LF_KIND_EMAIL_OPEN},
        {"Email Link Clicked", LF_KIND_EMAIL_CLICK},
        {"Email Clicked", LF_KIND_EMAIL_CLICK},
        {"Form Submitted", LF_KIND_FORM_SUBMIT},
        {"Video Playback Started", LF_KIND_VIDEO_VIEW},
        {"Video Content Playing", LF_KIND_VIDEO_VIEW},
        {"Webinar Registered", LF_KIND_EVENT_REGISTER},
        {"Event Registered", LF_KIND_EVENT_REGISTER},
        {"Webinar Attended", LF_KIND_EVENT_ATTEND},
        {"Event Attended", LF_KIND_EVENT_ATTEND},
        {"QR Code Scanned", LF_KIND_QR_SCAN},
        {"Asset Downloaded", LF_KIND_ASSET_DOWNLOAD},
        {"File Downloaded", LF_KIND_ASSET_DOWNLOAD},
        {"Deal Won", LF_KIND_DEAL_WON},
        {"Deal Lost", LF_KIND_DEAL_LOST},
        {"Opportunity Created", LF_KIND_OPPORTUNITY_CREATED},
        {"Lead Disqualified", LF_KIND_DISQUALIFY},
        {"Lead Accepted", LF_KIND_SALES_ACCEPT},
        {"Lead Rejected", LF_KIND_SALES_REJECT},
        {"Lead Qualified", LF_KIND_SALES_QUALIFY},
        {"Page Viewed", LF_KIND_PAGE_VIEW},
        {"utm_click", LF_KIND_UTM_CLICK},
        {"Email Bounced", LF_KIND_OTHER},
        {"Email Opened ", LF_KIND_OTHER},
        {"Email", LF_KIND_OTHER},
        {"Registered", LF_KIND_OTHER},
        {"other", LF_KIND_OTHER},
        {"", LF_KIND_OTHER},
    };
    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
        lf_kind_t k = lf_kind_from_name(lf_str_from(rows[i].name));
        if (k != rows[i].kind) {
            lf_test_fail(__FILE__, __LINE__, "\"%s\" -> %s, expected %s", rows[i].name,
                         lf_kind_name(k), lf_kind_name(rows[i].kind));
            return;
        }
    }
    /* every canonical name maps back to its kind, and names are distinct */
    static const char *const canon[LF_KIND__COUNT] = {
        "other",      "page_view",    "utm_click",      "qr_scan",       "form_submit",
        "email_open", "email_click",  "event_register", "event_attend",  "asset_download",
        "video_view", "sales_accept", "sales_reject",   "sales_qualify", "opportunity_created",
        "deal_won",   "deal_lost",    "disqualify",     "identify",      "alias"};
    for (int k = 0; k < LF_KIND__COUNT; k++) {
        CHECK_STR(lf_kind_name((lf_kind_t)k), canon[k]);
        if (k) CHECK_INT(lf_kind_from_name(lf_str_from(canon[k])), k);
    }
    CHECK_STR(lf_kind_name(LF_KIND__COUNT), "other");
    static const char *const utm[] = {"source", "medium", "campaign", "term", "content"};
    for (int f = 0; f < LF_UTM__COUNT; f++)
        CHECK_STR(lf_utm_name((lf_utm_t)f), utm[f]);
}

static void test_event_kinds_decoded(void)
{
    static const struct {
        const char *type, *event; /* event NULL: none */
        lf_kind_t kind;
        const char *kind_name;
    } rows[] = {
        {"track", "Email Opened", LF_KIND_EMAIL_OPEN, "email_open"},
        {"track", "QR Code Scanned", LF_KIND_QR_SCAN, "qr_scan"},
        {"track", "qr_scan", LF_KIND_QR_SCAN, "qr_scan"},
        {"track", "Song Played", LF_KIND_OTHER, "Song Played"},
        {"track", "identify", LF_KIND_OTHER, "identify"}, /* not an identify */
        {"page", NULL, LF_KIND_PAGE_VIEW, "page_view"},
        {"identify", NULL, LF_KIND_IDENTIFY, "identify"},
        {"qr_scan", NULL, LF_KIND_QR_SCAN, "qr_scan"},
        {"deal_won", "ignored", LF_KIND_DEAL_WON, "deal_won"},
        {"delete", NULL, LF_KIND_OTHER, "delete"},
        {"screen", NULL, LF_KIND_OTHER, "screen"},
    };
    char json[400];
    lf_event_t ev;
    lf_err_t err;
    reset();
    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
        char evpart[100] = "";
        if (rows[i].event) snprintf(evpart, sizeof(evpart), ",\"event\":\"%s\"", rows[i].event);
        snprintf(json, sizeof(json), "{" IDS ",\"type\":\"%s\"%s," TS "}", rows[i].type, evpart);
        CHECK_INT(decode_s(json, &ev, &err), LF_OK);
        CHECK_INT(ev.kind, rows[i].kind);
        CHECK_SV(ev.kind_name, rows[i].kind_name);
        CHECK_SV(ev.type, rows[i].type);
    }
    CHECK_INT(decode_s("{" IDS ",\"type\":\"alias\",\"previousId\":\"old\"," TS "}", &ev, &err),
              LF_OK);
    CHECK_INT(ev.kind, LF_KIND_ALIAS);
    CHECK_SV(ev.previous_id, "old");
    /* previousId is read only for alias */
    CHECK_INT(decode_s("{" IDS ",\"type\":\"page\",\"previousId\":5," TS "}", &ev, &err), LF_OK);
    CHECK_INT(ev.previous_id.len, 0);
}

static void test_event_bad_names(void)
{
    static const char *const want[LF_BAD__COUNT] = {
        "none",           "not_decodable",        "not_a_map",
        "batch_envelope", "missing_field",        "wrong_type",
        "id_too_long",    "timestamp_unparsable", "timestamp_out_of_range",
        "too_large",      "too_complex"};
    for (int i = 0; i < LF_BAD__COUNT; i++)
        CHECK_STR(lf_bad_name((lf_bad_t)i), want[i]);
    CHECK_STR(lf_bad_name(LF_BAD__COUNT), "unknown");
}

/*---- properties and traits ---------------------------------------------------------------*/

static void test_event_props_limits(void)
{
    char *json = malloc(16384);
    size_t n = 0;
    lf_event_t ev;
    lf_err_t err;
    reset();
    n += (size_t)sprintf(json + n, "{" IDS ",\"type\":\"identify\"," TS ",\"properties\":{");
    for (int i = 0; i < 70; i++)
        n += (size_t)sprintf(json + n, "%s\"p%d\":%d", i ? "," : "", i, i);
    n += (size_t)sprintf(json + n, "},\"traits\":{");
    for (int i = 0; i < 60; i++)
        n += (size_t)sprintf(json + n, "%s\"t%d\":\"v%d\"", i ? "," : "", i, i);
    n += (size_t)sprintf(json + n, "},\"context\":{\"traits\":{\"t0\":\"ctx\",\"c1\":1,\"c2\":2,"
                                   "\"c3\":3,\"c4\":4,\"c5\":5,\"c6\":6}}}");
    CHECK_INT(decode(json, n, &ev, &err), LF_OK);
    free(json);
    CHECK_INT(ev.nprops, LF_EVENT_MAX_PROPS);
    CHECK_SV(ev.props[63].key, "p63");
    CHECK(lf_event_prop(&ev, "p64") == NULL);
    CHECK_INT(ev.ntraits, LF_EVENT_MAX_TRAITS);
    CHECK_SV(lf_event_trait(&ev, "t0")->val, "v0"); /* top-level wins */
    CHECK(lf_event_trait(&ev, "c4") != NULL);
    CHECK(lf_event_trait(&ev, "c5") == NULL); /* 60 + c1..c4 = 64 */
    /* a long dotted key beyond 255 bytes is skipped, the rest kept */
    char big[700];
    char k[200];
    memset(k, 'k', 150);
    k[150] = '\0';
    snprintf(big, sizeof(big),
             "{" IDS ",\"type\":\"page\"," TS ",\"properties\":{\"%s\":{\"%s\":1},\"ok\":2}}", k,
             k);
    CHECK_INT(decode_s(big, &ev, &err), LF_OK);
    CHECK_INT(ev.nprops, 1);
    CHECK_SV(ev.props[0].key, "ok");
}

/* Decoding many events into a reset arena allocates nothing new after the first. */
static void test_event_no_alloc_per_event(void)
{
    lf_event_t ev;
    lf_err_t err;
    reset();
    lf_arena_t a;
    lf_arena_init(&a, 64 * 1024);
    CHECK_INT(lf_event_decode(RICH, strlen(RICH), NULL, &a, &ev, &err), LF_OK);
    lf_arena_reset(&a);
    size_t before = lf_alloc_used();
    for (int i = 0; i < 1000; i++) {
        CHECK_INT(lf_event_decode(RICH, strlen(RICH), NULL, &a, &ev, &err), LF_OK);
        if (i % 50 == 49) lf_arena_reset(&a);
    }
    CHECK_INT(lf_alloc_used(), before);
    lf_arena_free(&a);
}

/*---- the published Segment fixtures ---------------------------------------------------------*/

static const struct {
    const char *file;
    lf_bad_t bad;    /* LF_BAD_NONE: decodes */
    const char *msg; /* when bad: a substring of the message */
    /* when it decodes: */
    const char *message_id, *type, *kind_name, *user_id, *anonymous_id, *previous_id, *ts;
    const char *url, *path, *title, *source; /* "" = empty */
    int nprops, ntraits;
} fixtures[] = {
    {"alias-http-api.json", LF_BAD_MISSING_FIELD, "missing field messageId"},
    {"alias-partners-spec.json", LF_BAD_NONE, NULL, "ajs-d45a45c1384424545c2cff67345f25ce", "alias",
     "alias", "507f191e81", "3d316d2c-26e8-451f-91be-a0766708c81e", "97980cfea0067",
     "2019-06-21T17:39:57.031Z", "https://example.com/index.html", "/index.html", "", "", 0, 0},
    {"alias-spec-full.json", LF_BAD_NONE, NULL, "022bb90c-bbac-11e4-8dfc-aa07a5b093db", "alias",
     "alias", "507f191e81", "507f191e810c19729de860ea", "39239-239239-239239-23923",
     "2015-02-23T22:28:55.111Z", "", "", "", "", 0, 0},
    {"alias-spec-minimal.json", LF_BAD_MISSING_FIELD, "missing field messageId"},
    {"alias-webhooks-destination-odd-keys.json", LF_BAD_MISSING_FIELD, "missing field messageId"},
    {"batch-analytics-go-enqueue-alias.json", LF_BAD_BATCH_ENVELOPE, "batch"},
    {"batch-analytics-go-enqueue-page.json", LF_BAD_BATCH_ENVELOPE, "batch"},
    {"batch-analytics-go-timestamp-track.json", LF_BAD_BATCH_ENVELOPE, "batch"},
    {"batch-http-api-nonpadded-dates.json", LF_BAD_BATCH_ENVELOPE, "batch"},
    {"common-fields-spec-example.json", LF_BAD_NONE, NULL, "022bb90c-bbac-11e4-8dfc-aa07a5b093db",
     "track", "Report Submitted", "97980cfea0067", "507f191e810c19729de860ea", "",
     "2015-12-10T04:08:31.905Z", "https://segment.com/academy/", "/academy/", "Analytics Academy",
     "Newsletter", 0, 0},
    /* timestamp is fine, so the Go time.String() in originalTimestamp is never read */
    {"delete-partners-spec-go-time-string.json", LF_BAD_NONE, NULL,
     "delete-reg-6543321::job-2-P0OJ3CTID1", "delete", "delete", "507f191e81", "", "",
     "2020-05-09T23:54:49.209Z", "", "", "", "", 0, 0},
    {"fragment-context-campaign-utm-analyticsjs.txt", LF_BAD_NOT_DECODABLE,
     "neither a JSON object nor MessagePack"},
    {"identify-all-aboard-createdat-offset.json", LF_BAD_MISSING_FIELD, "missing field messageId"},
    {"identify-partners-spec-relative-page-url.json", LF_BAD_NONE, NULL,
     "ajs-18c6f23382e31fad89210c1c022cc068", "identify", "identify", "97980cfea0067",
     "3d316d2c-26e8-451f-91be-a0766708c81e", "", "2019-06-21T16:33:26.158Z", "index.html",
     "index.html", "", "", 0, 4},
    {"identify-spec-full.json", LF_BAD_NONE, NULL, "022bb90c-bbac-11e4-8dfc-aa07a5b093db",
     "identify", "identify", "97980cfea0067", "507f191e810c19729de860ea", "",
     "2015-02-23T22:28:55.111Z", "", "", "", "", 0, 9},
    {"identify-spec-minimal.json", LF_BAD_MISSING_FIELD, "missing field messageId"},
    {"page-best-practices-identify-invalid.txt", LF_BAD_NOT_DECODABLE, "JSON"},
    {"page-partners-spec.json", LF_BAD_NONE, NULL, "ajs-472682d0fbe3250d9e436f18e18d1966", "page",
     "page_view", "97980cfea0067", "3d316d2c-26e8-451f-91be-a0766708c81e", "",
     "2019-06-21T17:36:42.812Z", "https://example.com/index.html", "/index.html", "", "", 6, 0},
    {"page-spec-full.json", LF_BAD_NONE, NULL, "022bb90c-bbac-11e4-8dfc-aa07a5b093db", "page",
     "page_view", "97980cfea0067", "507f191e810c19729de860ea", "", "2015-02-23T22:28:55.111Z",
     "http://www.example.com", "/", "Welcome | Initech", "", 2, 0},
    {"page-spec-minimal.json", LF_BAD_MISSING_FIELD, "missing field messageId"},
    {"page-webhooks-destination.json", LF_BAD_MISSING_FIELD, "missing field messageId"},
    {"track-email-bounced-spec.json", LF_BAD_MISSING_FIELD, "missing field messageId"},
    {"track-email-delivered-spec.json", LF_BAD_MISSING_FIELD, "missing field messageId"},
    {"track-email-link-clicked-spec.json", LF_BAD_MISSING_FIELD, "missing field messageId"},
    {"track-email-marked-as-spam-spec.json", LF_BAD_MISSING_FIELD, "missing field messageId"},
    {"track-email-open-insider-source.json", LF_BAD_NONE, NULL, "api-2HgvQRYmsMWNlgqEuOKQmMWt5Wb",
     "track", "email_open", "", "c1da3de8-b4b7-4cf2-b496-6a271890ff40", "",
     "2022-11-17T21:12:00.335Z", "", "", "", "", 6, 2},
    {"track-email-opened-pixel-api.json", LF_BAD_MISSING_FIELD, "missing field messageId"},
    {"track-email-opened-spec.json", LF_BAD_MISSING_FIELD, "missing field messageId"},
    {"track-email-unsubscribed-spec.json", LF_BAD_MISSING_FIELD, "missing field messageId"},
    {"track-http-api.json", LF_BAD_MISSING_FIELD, "missing field messageId"},
    {"track-mobile-install-attributed-campaign-in-properties.json", LF_BAD_MISSING_FIELD,
     "missing field messageId"},
    {"track-one-creation-source-context-campaign-nanos.json", LF_BAD_MISSING_FIELD,
     "missing field messageId"},
    {"track-partners-spec.json", LF_BAD_NONE, NULL, "ajs-920a8b6591f0d25cc117fb71602a6b17", "track",
     "Registered", "97980cfea0067", "3d316d2c-26e8-451f-91be-a0766708c81e", "",
     "2019-06-21T17:35:47.404Z", "https://example.com/index.html", "/index.html", "", "", 2, 0},
    {"track-protocols-violation-nanos.json", LF_BAD_NONE, NULL,
     "sch-Vir1JNrorwlBmCHrHWuPJekMx5c59T7c", "track", "Violation Generated", "schema-violations",
     "", "", "2018-09-05T23:05:25.862Z", "", "", "", "", 14, 0},
    {"track-spec-context-traits.json", LF_BAD_NONE, NULL, "ajs-f8ca1e4de5024d9430b3928bd8ac6b96",
     "track", "Button Clicked", "AiUGstSDIg", "23adfd82-aa0f-45a7-a756-24f2a7a4c895", "",
     "2015-12-12T19:11:01.249Z", "https://segment.com/academy/", "/academy/", "Analytics Academy",
     "", 1, 1},
    {"track-spec-full.json", LF_BAD_NONE, NULL, "ajs-f8ca1e4de5024d9430b3928bd8ac6b96", "track",
     "Course Clicked", "AiUGstSDIg", "23adfd82-aa0f-45a7-a756-24f2a7a4c895", "",
     "2015-12-12T19:11:01.249Z", "https://segment.com/academy/", "/academy/", "Analytics Academy",
     "", 1, 0},
    {"track-spec-minimal.json", LF_BAD_MISSING_FIELD, "missing field messageId"},
    {"track-webhooks-destination.json", LF_BAD_MISSING_FIELD, "missing field messageId"},
};
#define NFIXTURES (sizeof(fixtures) / sizeof(fixtures[0]))

static char *read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *buf = malloc(n > 0 ? (size_t)n : 1);
    *len = fread(buf, 1, (size_t)n, f);
    fclose(f);
    return buf;
}

/* Check one decoded fixture against its row; returns the differing field or NULL. */
static const char *fixture_diff(size_t i, const lf_event_t *ev)
{
    char ts[32];
    lf_time_format_iso8601(ev->ts_ms, ts, sizeof(ts));
    if (!sv_same(ev->message_id, lf_str_from(fixtures[i].message_id))) return "messageId";
    if (!sv_same(ev->type, lf_str_from(fixtures[i].type))) return "type";
    if (!sv_same(ev->kind_name, lf_str_from(fixtures[i].kind_name))) return "kind_name";
    if (!sv_same(ev->user_id, lf_str_from(fixtures[i].user_id))) return "userId";
    if (!sv_same(ev->anonymous_id, lf_str_from(fixtures[i].anonymous_id))) return "anonymousId";
    if (!sv_same(ev->previous_id, lf_str_from(fixtures[i].previous_id))) return "previousId";
    if (strcmp(ts, fixtures[i].ts) != 0) return "timestamp";
    if (!sv_same(ev->url, lf_str_from(fixtures[i].url))) return "url";
    if (!sv_same(ev->path, lf_str_from(fixtures[i].path))) return "path";
    if (!sv_same(ev->title, lf_str_from(fixtures[i].title))) return "title";
    if (!sv_same(ev->utm[LF_UTM_SOURCE], lf_str_from(fixtures[i].source))) return "utm source";
    if ((int)ev->nprops != fixtures[i].nprops) return "nprops";
    if ((int)ev->ntraits != fixtures[i].ntraits) return "ntraits";
    return NULL;
}

static void test_event_segment_fixtures(void)
{
    char path[512];
    reset();
    /* every file in the directory has a row */
    DIR *d = opendir(FIXTURE_DIR);
    if (!d) {
        lf_test_fail(__FILE__, __LINE__, "fixture directory %s is missing (run from /work/main)",
                     FIXTURE_DIR);
        return;
    }
    struct dirent *de;
    int files = 0;
    while ((de = readdir(d))) {
        if (de->d_name[0] == '.' || strcmp(de->d_name, "README.md") == 0) continue;
        files++;
        size_t i = 0;
        while (i < NFIXTURES && strcmp(fixtures[i].file, de->d_name) != 0)
            i++;
        if (i == NFIXTURES) {
            closedir(d);
            lf_test_fail(__FILE__, __LINE__, "fixture %s has no expectation row", de->d_name);
            return;
        }
    }
    closedir(d);
    CHECK_INT(files, NFIXTURES);
    CHECK_INT(NFIXTURES, 38);

    for (size_t i = 0; i < NFIXTURES; i++) {
        size_t len;
        lf_event_t ev, em;
        lf_err_t err;
        snprintf(path, sizeof(path), "%s/%s", FIXTURE_DIR, fixtures[i].file);
        char *buf = read_file(path, &len);
        if (!buf) {
            lf_test_fail(__FILE__, __LINE__, "cannot read %s", path);
            return;
        }
        int rc = decode(buf, len, &ev, &err);
        const char *bad = NULL;
        if (fixtures[i].bad != LF_BAD_NONE) {
            if (rc != LF_ERR || err.code != (int)fixtures[i].bad ||
                !strstr(err.msg, fixtures[i].msg))
                bad = "outcome";
        } else if (rc != LF_OK) {
            bad = "outcome";
        } else {
            bad = fixture_diff(i, &ev);
        }
        /* The MessagePack form of each valid JSON file has the same outcome and fields. */
        msgpack_sbuffer sb;
        size_t fl = strlen(fixtures[i].file);
        msgpack_sbuffer_init(&sb);
        if (!bad && strcmp(fixtures[i].file + fl - 5, ".json") == 0 &&
            json_to_msgpack(buf, len, &sb)) {
            int rm = decode(sb.data, sb.size, &em, &err);
            if (rm != rc || (rc == LF_ERR && err.code != (int)fixtures[i].bad))
                bad = "msgpack outcome";
            else if (rc == LF_OK && ev_diff(&ev, &em))
                bad = ev_diff(&ev, &em);
        }
        msgpack_sbuffer_destroy(&sb);
        free(buf);
        if (bad) {
            lf_test_fail(__FILE__, __LINE__, "%s: %s differs (rc %d, %s: %s)", fixtures[i].file,
                         bad, rc, lf_bad_name((lf_bad_t)err.code), err.msg);
            return;
        }
    }
}

/* Fixture details the table does not hold. */
static void test_event_segment_fixture_details(void)
{
    size_t len;
    lf_event_t ev;
    lf_err_t err;
    reset();
    char *buf = read_file(FIXTURE_DIR "/common-fields-spec-example.json", &len);
    CHECK(buf);
    CHECK_INT(decode(buf, len, &ev, &err), LF_OK);
    free(buf);
    CHECK_SV(ev.utm[LF_UTM_SOURCE], "Newsletter");
    CHECK_SV(ev.utm[LF_UTM_MEDIUM], "email");
    CHECK_SV(ev.utm[LF_UTM_CAMPAIGN], "TPS Innovation Newsletter");
    CHECK_SV(ev.utm[LF_UTM_TERM], "tps reports");
    CHECK_SV(ev.utm[LF_UTM_CONTENT], "image link");
    CHECK_INT(ev.has_campaign, 1);
    CHECK_INT(ev.kind, LF_KIND_OTHER);
    CHECK(lf_str_has_prefix(ev.user_agent, "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7)"));

    buf = read_file(FIXTURE_DIR "/identify-spec-full.json", &len);
    CHECK(buf);
    CHECK_INT(decode(buf, len, &ev, &err), LF_OK);
    free(buf);
    CHECK_SV(lf_event_trait(&ev, "address.city")->val, "San Francisco");
    CHECK_SV(lf_event_trait(&ev, "address.postalCode")->val, "94103");
    const lf_kv_t *kv = lf_event_trait(&ev, "logins");
    CHECK(kv && kv->is_num && kv->num == 5);
    CHECK_INT(ev.kind, LF_KIND_IDENTIFY);

    buf = read_file(FIXTURE_DIR "/track-email-open-insider-source.json", &len);
    CHECK(buf);
    CHECK_INT(decode(buf, len, &ev, &err), LF_OK);
    free(buf);
    CHECK_INT(ev.kind, LF_KIND_EMAIL_OPEN);
    CHECK_SV(lf_event_trait(&ev, "phone")->val, "6***");
    CHECK_SV(lf_event_key(&ev), "c1da3de8-b4b7-4cf2-b496-6a271890ff40");

    buf = read_file(FIXTURE_DIR "/track-protocols-violation-nanos.json", &len);
    CHECK(buf);
    CHECK_INT(decode(buf, len, &ev, &err), LF_OK);
    free(buf);
    CHECK_SV(lf_event_prop(&ev, "eventTimestamp")->val, "0001-01-01T00:00:00Z");
    CHECK_SV(lf_event_prop(&ev, "appVersion")->val, "");

    /* The batch items decode once taken out of their envelope. */
    buf = read_file(FIXTURE_DIR "/batch-analytics-go-timestamp-track.json", &len);
    CHECK(buf);
    cJSON *root = cJSON_ParseWithLength(buf, len);
    free(buf);
    CHECK(root);
    char *item = cJSON_PrintUnformatted(cJSON_GetArrayItem(cJSON_GetObjectItem(root, "batch"), 0));
    cJSON_Delete(root);
    int rc = decode_s(item, &ev, &err);
    free(item);
    CHECK_INT(rc, LF_OK);
    CHECK_SV(ev.kind_name, "Download");
    CHECK_INT(ev.ts_ms, 1436569200000LL);
    CHECK_SV(lf_event_prop(&ev, "version")->val, "1.1.0");

    /* The HTTP batch: its third item's "2015-2-02T..." timestamp is unparsable. */
    buf = read_file(FIXTURE_DIR "/batch-http-api-nonpadded-dates.json", &len);
    CHECK(buf);
    root = cJSON_ParseWithLength(buf, len);
    free(buf);
    CHECK(root);
    cJSON *third = cJSON_GetArrayItem(cJSON_GetObjectItem(root, "batch"), 2);
    cJSON_AddStringToObject(third, "messageId", "m3");
    item = cJSON_PrintUnformatted(third);
    cJSON_Delete(root);
    rc = decode_s(item, &ev, &err);
    free(item);
    CHECK_INT(rc, LF_ERR);
    CHECK_INT(err.code, LF_BAD_TIMESTAMP_UNPARSABLE);
}

/*---- hostile input ---------------------------------------------------------------------------*/

static int err_ok(int rc, const lf_err_t *err)
{
    return rc == LF_OK ||
           (rc == LF_ERR && err->code > LF_BAD_NONE && err->code < LF_BAD__COUNT && err->msg[0]);
}

static void test_event_hostile_short(void)
{
    lf_event_t ev;
    lf_err_t err;
    unsigned char b[2];
    reset();
    for (int i = 0; i < 256; i++) {
        b[0] = (unsigned char)i;
        int rc = decode(b, 1, &ev, &err);
        if (rc != LF_ERR || !err_ok(rc, &err)) {
            lf_test_fail(__FILE__, __LINE__, "1 byte 0x%02x: rc %d code %d", i, rc, err.code);
            return;
        }
    }
    for (int i = 0; i < 65536; i++) {
        b[0] = (unsigned char)(i >> 8);
        b[1] = (unsigned char)i;
        int rc = decode(b, 2, &ev, &err);
        if (rc != LF_ERR || !err_ok(rc, &err)) {
            lf_test_fail(__FILE__, __LINE__, "2 bytes %02x%02x: rc %d code %d", b[0], b[1], rc,
                         err.code);
            return;
        }
        if (i % 4096 == 0) lf_arena_reset(&arena);
    }
}

static void test_event_hostile_truncations(void)
{
    lf_event_t ev;
    lf_err_t err;
    msgpack_sbuffer sb;
    reset();
    CHECK(json_to_msgpack(RICH, strlen(RICH), &sb));
    const struct {
        const char *buf;
        size_t len;
    } forms[2] = {{RICH, strlen(RICH)}, {sb.data, sb.size}};
    for (int f = 0; f < 2; f++) {
        CHECK_INT(decode(forms[f].buf, forms[f].len, &ev, &err), LF_OK);
        for (size_t n = 0; n < forms[f].len; n++) {
            int rc = decode(forms[f].buf, n, &ev, &err);
            if (rc != LF_ERR || !err_ok(rc, &err)) {
                lf_test_fail(__FILE__, __LINE__, "form %d truncated to %zu: rc %d", f, n, rc);
                msgpack_sbuffer_destroy(&sb);
                return;
            }
            lf_arena_reset(&arena);
        }
    }
    msgpack_sbuffer_destroy(&sb);
}

static uint64_t rng_state = 0x9e3779b97f4a7c15ULL;
static uint64_t rng(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return rng_state;
}

static void test_event_hostile_random(void)
{
    lf_event_t ev;
    lf_err_t err;
    msgpack_sbuffer sb;
    unsigned char buf[1024];
    reset();
    rng_state = 0x9e3779b97f4a7c15ULL;
    /* pure random bytes, and random bytes behind '{' (the JSON path) */
    for (int i = 0; i < 6000; i++) {
        size_t n = (size_t)(rng() % 600);
        for (size_t k = 0; k < n; k++)
            buf[k] = (unsigned char)rng();
        if (i % 3 == 0 && n) buf[0] = '{';
        int rc = decode(buf, n, &ev, &err);
        CHECK(err_ok(rc, &err));
        lf_arena_reset(&arena);
    }
    /* random byte flips in valid events, both forms */
    CHECK(json_to_msgpack(RICH, strlen(RICH), &sb));
    const struct {
        const char *buf;
        size_t len;
    } forms[2] = {{RICH, strlen(RICH)}, {sb.data, sb.size}};
    int ok = 0;
    for (int i = 0; i < 8000; i++) {
        const int f = i & 1;
        memcpy(buf, forms[f].buf, forms[f].len);
        int flips = 1 + (int)(rng() % 4);
        for (int k = 0; k < flips; k++) {
            size_t at = (size_t)(rng() % forms[f].len);
            buf[at] =
                (rng() & 1) ? (unsigned char)rng() : (unsigned char)(buf[at] ^ (1u << (rng() % 8)));
        }
        int rc = decode(buf, forms[f].len, &ev, &err);
        if (!err_ok(rc, &err)) {
            msgpack_sbuffer_destroy(&sb);
            CHECK(err_ok(rc, &err));
        }
        ok += rc == LF_OK;
        lf_arena_reset(&arena);
    }
    msgpack_sbuffer_destroy(&sb);
    CHECK(ok > 0); /* some flips land in values and still decode */
}

static void test_event_hostile_nesting(void)
{
    lf_event_t ev;
    lf_err_t err;
    char json[40000];
    reset();
    /* properties nested so that the whole event is exactly 16 deep: fine; 17: too complex */
    for (int depth = 16; depth <= 17; depth++) {
        size_t n = (size_t)sprintf(json, "{" IDS ",\"type\":\"page\"," TS ",\"properties\":");
        for (int i = 1; i < depth; i++)
            n += (size_t)sprintf(json + n, "{\"k\":");
        n += (size_t)sprintf(json + n, "1");
        for (int i = 0; i < depth; i++)
            json[n++] = '}';
        int rc = decode(json, n, &ev, &err);
        CHECK_INT(rc, depth == 16 ? LF_OK : LF_ERR);
        if (depth == 16) {
            CHECK_INT(ev.nprops, 1);
            CHECK_SV(ev.props[0].key,
                     "k.k.k.k.k.k.k.k.k.k.k.k.k.k.k"); /* 15 levels under the root */
        } else {
            CHECK_INT(err.code, LF_BAD_TOO_COMPLEX);
        }
        /* the same in MessagePack */
        msgpack_sbuffer sb;
        CHECK(json_to_msgpack(json, n, &sb));
        rc = decode(sb.data, sb.size, &ev, &err);
        msgpack_sbuffer_destroy(&sb);
        CHECK_INT(rc, depth == 16 ? LF_OK : LF_ERR);
        if (depth == 17) CHECK_INT(err.code, LF_BAD_TOO_COMPLEX);
    }
    /* very deep: 30000 '[' after '{' (JSON), 30000 fixarray-1 bytes (MessagePack) */
    size_t n = 0;
    json[n++] = '{';
    memcpy(json + n, "\"a\":", 4);
    n += 4;
    memset(json + n, '[', 30000);
    n += 30000;
    CHECK_INT(decode(json, n, &ev, &err), LF_ERR);
    CHECK_INT(err.code, LF_BAD_TOO_COMPLEX);
    memset(json, 0x91, 30000);
    CHECK_INT(decode(json, 30000, &ev, &err), LF_ERR);
    CHECK_INT(err.code, LF_BAD_TOO_COMPLEX);
    memset(json, 0x81, 30000); /* fixmap of 1 nested as keys */
    CHECK_INT(decode(json, 30000, &ev, &err), LF_ERR);
    CHECK_INT(err.code, LF_BAD_TOO_COMPLEX);
}

/* Headers that declare far more than the value holds: refused before any allocation. */
static void test_event_hostile_huge_lengths(void)
{
    static const struct {
        const char *bytes;
        size_t len;
    } rows[] = {
        {"\xdf\xff\xff\xff\xff", 5},                 /* map32 of 4 G entries */
        {"\xdd\xff\xff\xff\xff\x01", 6},             /* array32 */
        {"\xde\xff\xff\xa1\x61", 5},                 /* map16 */
        {"\xdc\xff\xff", 3},                         /* array16 */
        {"\x81\xa1\x61\xdb\xff\xff\xff\xff", 8},     /* {a: str32 of 4 GB} */
        {"\x81\xa1\x61\xda\xff\xff\x61", 7},         /* str16 */
        {"\x81\xa1\x61\xd9\xff\x61", 6},             /* str8 */
        {"\x81\xa1\x61\xc6\xff\xff\xff\xff", 8},     /* bin32 */
        {"\x81\xa1\x61\xc9\xff\xff\xff\xff\x01", 9}, /* ext32 */
        {"\x81\xa1\x61\xc7\xff\x01", 6},             /* ext8 */
        {"\x81\xa1\x61\xdd\x7f\xff\xff\xff", 8},     /* array32 as a value */
        {"\x81\xa1\x61\xdf\x7f\xff\xff\xff\xc0", 9}, /* map32 as a value */
        {"\x81\xa1\x61\xd8\x01", 5},                 /* fixext16, truncated */
        {"\x81\xa1\x61\xcb\x00\x00", 6},             /* float64, truncated */
        {"\x81\xa1\x61\xcf\x00", 5},                 /* uint64, truncated */
        {"\x81\xa1\x61\xc1", 4},                     /* reserved byte */
        {"\x82\xa1\x61\xc0", 4},                     /* fixmap of 2, one given */
        {"\xdb\xff\xff\xff\xff", 5},                 /* top-level str32 */
    };
    lf_event_t ev;
    lf_err_t err;
    reset();
    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
        int rc = decode(rows[i].bytes, rows[i].len, &ev, &err);
        if (rc != LF_ERR || err.code != LF_BAD_NOT_DECODABLE) {
            lf_test_fail(__FILE__, __LINE__, "row %zu: rc %d %s %s", i, rc,
                         lf_bad_name((lf_bad_t)err.code), err.msg);
            return;
        }
        /* container counts are checked against the remaining bytes up front */
        if (i < 4) CHECK(strstr(err.msg, "a count beyond the end"));
        if (i >= 4 && i < 8) CHECK(strstr(err.msg, "a length beyond the end"));
    }
    /* a huge declared length deep inside an otherwise valid event */
    msgpack_sbuffer sb;
    msgpack_packer pk;
    msgpack_sbuffer_init(&sb);
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    msgpack_pack_map(&pk, 5);
    pack_s(&pk, "messageId");
    pack_s(&pk, "m");
    pack_s(&pk, "type");
    pack_s(&pk, "page");
    pack_s(&pk, "userId");
    pack_s(&pk, "u");
    pack_s(&pk, "timestamp");
    pack_s(&pk, "2015-07-10T23:00:00Z");
    pack_s(&pk, "properties");
    msgpack_pack_array(&pk, 0xffffffffu);
    msgpack_pack_nil(&pk);
    int rc = decode(sb.data, sb.size, &ev, &err);
    msgpack_sbuffer_destroy(&sb);
    CHECK_INT(rc, LF_ERR);
    CHECK_INT(err.code, LF_BAD_NOT_DECODABLE);
}

/*---- found by review and by the fuzz harnesses (tests/fuzz/) ------------------------------*/

/* A top-level JSON array, a JSON scalar, a byte order mark or plain text: the message says
 * what the value is, not "N bytes after the first object" (their first byte read as a
 * MessagePack integer). */
static void test_event_not_an_object_says_what(void)
{
    lf_event_t ev;
    lf_err_t err;
    static const struct {
        const char *in;
        lf_bad_t bad;
        const char *msg;
    } rows[] = {
        {"[{" IDS ",\"type\":\"page\"," TS "}]", LF_BAD_NOT_A_MAP, "JSON array"},
        {" \n[]", LF_BAD_NOT_A_MAP, "send one event per message"},
        {"\"just a string\"", LF_BAD_NOT_A_MAP, "JSON string"},
        {"1436569200000", LF_BAD_NOT_A_MAP, "JSON number"},
        {"true", LF_BAD_NOT_A_MAP, "JSON boolean"},
        {"null ", LF_BAD_NOT_A_MAP, "JSON null"},
        {"\xef\xbb\xbf{" IDS ",\"type\":\"page\"," TS "}", LF_BAD_NOT_DECODABLE,
         "UTF-8 byte order mark"},
        {"\xff\xfe{\0", LF_BAD_NOT_DECODABLE, "UTF-16 byte order mark"},
        {"hello world", LF_BAD_NOT_DECODABLE, "neither a JSON object nor MessagePack"},
        {"\"context\": {}", LF_BAD_NOT_DECODABLE, "neither a JSON object nor MessagePack"},
        {"[1, 2", LF_BAD_NOT_DECODABLE, "not valid JSON"},
        {"[1] x", LF_BAD_NOT_DECODABLE, "bytes after the value"},
        {"\x05\x01", LF_BAD_NOT_DECODABLE, "which is not a map"},
    };
    reset();
    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
        size_t n = strlen(rows[i].in) + (rows[i].in[0] == '\xff' ? 2 : 0);
        int rc = decode(rows[i].in, n, &ev, &err);
        if (rc != LF_ERR || err.code != (int)rows[i].bad || !strstr(err.msg, rows[i].msg)) {
            lf_test_fail(__FILE__, __LINE__, "row %zu: rc %d, %s: %s", i, rc,
                         lf_bad_name((lf_bad_t)err.code), err.msg);
            return;
        }
    }
    /* a MessagePack map followed by more bytes keeps its message */
    CHECK_INT(decode("\x80\xc0", 2, &ev, &err), LF_ERR);
    CHECK(strstr(err.msg, "1 bytes after the first object") && !strstr(err.msg, "not a map"));
}

/* NaN and the infinities are no numbers a rule could compare: a property or trait holding one
 * is ignored (MessagePack floats; JSON numbers beyond a double, which cJSON reads as inf). */
static void test_event_nonfinite_numbers_ignored(void)
{
    lf_event_t ev;
    lf_err_t err;
    msgpack_sbuffer sb;
    msgpack_packer pk;
    reset();
    msgpack_sbuffer_init(&sb);
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    msgpack_pack_map(&pk, 6);
    pack_s(&pk, "messageId");
    pack_s(&pk, "m");
    pack_s(&pk, "type");
    pack_s(&pk, "page");
    pack_s(&pk, "userId");
    pack_s(&pk, "u");
    pack_s(&pk, "timestamp");
    msgpack_pack_int64(&pk, 1436569200000LL);
    pack_s(&pk, "properties");
    msgpack_pack_map(&pk, 5);
    pack_s(&pk, "nan");
    msgpack_pack_float(&pk, NAN);
    pack_s(&pk, "inf");
    msgpack_pack_double(&pk, INFINITY);
    pack_s(&pk, "ninf");
    msgpack_pack_double(&pk, -INFINITY);
    pack_s(&pk, "nested");
    msgpack_pack_map(&pk, 1);
    pack_s(&pk, "nan");
    msgpack_pack_double(&pk, -NAN);
    pack_s(&pk, "price");
    msgpack_pack_double(&pk, 14.5);
    pack_s(&pk, "traits");
    msgpack_pack_map(&pk, 2);
    pack_s(&pk, "employees");
    msgpack_pack_double(&pk, NAN);
    pack_s(&pk, "company");
    pack_s(&pk, "Initech");
    int rc = decode(sb.data, sb.size, &ev, &err);
    msgpack_sbuffer_destroy(&sb);
    CHECK_STR(err.msg, "");
    CHECK_INT(rc, LF_OK);
    CHECK_INT(ev.nprops, 1);
    CHECK_SV(ev.props[0].key, "price");
    CHECK(ev.props[0].is_num && ev.props[0].num == 14.5);
    CHECK_INT(ev.ntraits, 1);
    CHECK_SV(ev.traits[0].key, "company");

    CHECK_INT(decode_s("{" IDS ",\"type\":\"page\"," TS ",\"properties\":{\"big\":1e999,"
                       "\"small\":-1e999,\"ok\":1e308},\"traits\":{\"employees\":1E400}}",
                       &ev, &err),
              LF_OK);
    CHECK_INT(ev.nprops, 1);
    CHECK_SV(ev.props[0].key, "ok");
    CHECK_INT(ev.ntraits, 0);
}

/* fuzz_json found: a whole number from 10^15 up read "1.43656920000025e+15" in JSON (every
 * JSON number is a double) and "1436569200000250" as a MessagePack integer, so one trait
 * had two text forms. Regression input: tests/fuzz/regressions/json/. */
static void test_event_whole_numbers_same_text_in_both_formats(void)
{
    lf_event_t ev, em;
    lf_err_t err;
    msgpack_sbuffer sb;
    static const char *const json =
        "{\"messageId\":\"-1\",\"type\":\"e\",\"anonymousId\":\"1\",\"timestamp\":"
        "\"2015-07-10T23:00:00\",\"traits\":{\"s\":1436569200000250}}";
    reset();
    CHECK_INT(decode_s(json, &ev, &err), LF_OK);
    CHECK(json_to_msgpack(json, strlen(json), &sb)); /* packs 1436569200000250 as an int64 */
    int rm = decode(sb.data, sb.size, &em, &err);
    msgpack_sbuffer_destroy(&sb);
    CHECK_INT(rm, LF_OK);
    CHECK_SV(ev.traits[0].val, "1436569200000250");
    CHECK_SV(em.traits[0].val, "1436569200000250");
    CHECK(ev.traits[0].num == em.traits[0].num);

    CHECK_INT(decode_s("{" IDS ",\"type\":\"page\"," TS ",\"properties\":{\"a\":1e15,\"b\":1e17,"
                       "\"c\":-9e18,\"d\":1e19,\"e\":2.5,\"f\":-0,\"g\":1e300,\"h\":25}}",
                       &ev, &err),
              LF_OK);
    CHECK_SV(lf_event_prop(&ev, "a")->val, "1000000000000000");
    CHECK_SV(lf_event_prop(&ev, "b")->val, "100000000000000000");
    CHECK_SV(lf_event_prop(&ev, "c")->val, "-9000000000000000000");
    CHECK_SV(lf_event_prop(&ev, "d")->val, "1e+19"); /* beyond int64: the double's form */
    CHECK_SV(lf_event_prop(&ev, "e")->val, "2.5");
    CHECK_SV(lf_event_prop(&ev, "f")->val, "-0");
    CHECK_SV(lf_event_prop(&ev, "g")->val, "1e+300");
    CHECK_SV(lf_event_prop(&ev, "h")->val, "25");
}

/* lf_str_escape: what `top` and `inspect` print for ids and other event text. */
static void test_event_escape_for_terminal(void)
{
    char buf[LF_ESCAPED_CAP(64)];
    static const struct {
        const char *in, *out;
    } rows[] = {
        {"", ""},
        {"u000001", "u000001"},
        {"DOMAIN\\user", "DOMAIN\\user"}, /* a backslash stays: ids are copied from tables */
        {"caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80", "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80"},
        {"a\nb\rc\td", "a\\nb\\rc\\td"},
        {"u1\n2  lead  999.00", "u1\\n2  lead  999.00"},
        {"\x1b[2J\x1b[31mred", "\\x1b[2J\\x1b[31mred"},
        {"\x01\x7f", "\\x01\\x7f"},
        {"bad \xff\xfe utf8 \xc3", "bad \\xff\\xfe utf8 \\xc3"},
        {"\xc0\xaf overlong, \xed\xa0\x80 surrogate",
         "\\xc0\\xaf overlong, \\xed\\xa0\\x80 surrogate"},
        {"c1 \xc2\x85 \xc2\x9b", "c1 \\u0085 \\u009b"},
        {"bidi \xe2\x80\xae\x65vil\xe2\x81\xa6", "bidi \\u202e"
                                                 "evil\\u2066"},
    };
    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
        const char *got = lf_str_escape(lf_str_from(rows[i].in), buf, sizeof(buf));
        if (got != buf || strcmp(buf, rows[i].out) != 0) {
            lf_test_fail(__FILE__, __LINE__, "row %zu: \"%s\", expected \"%s\"", i, buf,
                         rows[i].out);
            return;
        }
    }
    /* cut short: always terminated, within cap, ending in "...", never inside an escape */
    char small[12];
    CHECK_STR(lf_str_escape(lf_str_from("abcdefghijklmnop"), small, sizeof(small)), "abcdefgh...");
    CHECK_STR(lf_str_escape(lf_str_from("abcdefghijk"), small, sizeof(small)), "abcdefghijk");
    CHECK_STR(lf_str_escape(lf_str_from("abcdef\n\n\n"), small, sizeof(small)), "abcdef\\n...");
    CHECK_STR(lf_str_escape(lf_str_from("\n\n\n\n\n\n"), small, sizeof(small)), "\\n\\n\\n\\n...");
    char tiny[2];
    CHECK_STR(lf_str_escape(lf_str_from("\n"), tiny, sizeof(tiny)), ".");
    /* the worst case fits LF_ESCAPED_CAP */
    char worst_in[LF_ID_MAX], worst[LF_ESCAPED_CAP(LF_ID_MAX)];
    memset(worst_in, 0x01, sizeof(worst_in));
    lf_str_escape((lf_str_t){worst_in, LF_ID_MAX}, worst, sizeof(worst));
    CHECK_INT(strlen(worst), 4 * LF_ID_MAX);
    CHECK(strstr(worst, "...") == NULL);
}

void suite_event(void)
{
    LF_RUN(test_event_json_msgpack_same);
    LF_RUN(test_event_epoch_ms_forms);
    LF_RUN(test_event_bad_reasons_json);
    LF_RUN(test_event_bad_reasons_msgpack);
    LF_RUN(test_event_id_too_long);
    LF_RUN(test_event_too_large);
    LF_RUN(test_event_string_policy);
    LF_RUN(test_event_bad_names);
    LF_RUN(test_event_timestamp_table);
    LF_RUN(test_event_timestamp_format);
    LF_RUN(test_event_timestamp_fields);
    LF_RUN(test_event_url_table);
    LF_RUN(test_event_url_helpers);
    LF_RUN(test_event_campaign_precedence);
    LF_RUN(test_event_kind_mapping);
    LF_RUN(test_event_kinds_decoded);
    LF_RUN(test_event_props_limits);
    LF_RUN(test_event_no_alloc_per_event);
    LF_RUN(test_event_segment_fixtures);
    LF_RUN(test_event_segment_fixture_details);
    LF_RUN(test_event_hostile_short);
    LF_RUN(test_event_hostile_truncations);
    LF_RUN(test_event_hostile_random);
    LF_RUN(test_event_hostile_nesting);
    LF_RUN(test_event_hostile_huge_lengths);
    LF_RUN(test_event_not_an_object_says_what);
    LF_RUN(test_event_nonfinite_numbers_ignored);
    LF_RUN(test_event_whole_numbers_same_text_in_both_formats);
    LF_RUN(test_event_escape_for_terminal);
    lf_arena_free(&arena);
}
