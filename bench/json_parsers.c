// clang-format off
/* Which JSON parser should leadflow use? Parse + walk one realistic Segment track event.
 *
 * Build and run (from the repo root; not part of the Makefile). jansson and json-c export
 * clashing symbols (json_object, json_object_get, ...), so jansson gets its own binary: the same
 * file built a second time with -DJP_JANSSON.
 *   C="cc -std=c11 -D_GNU_SOURCE -O2"; $C -o /tmp/jp bench/json_parsers.c $(pkg-config --cflags --libs libcjson json-c) -ljemalloc && $C -DJP_JANSSON -o /tmp/jp_jansson bench/json_parsers.c -ljansson -ljemalloc && /tmp/jp && /tmp/jp_jansson
 *
 * "Walk" visits every node and reads every key and scalar (string length, number value), which
 * is what the event decoder does at most. Each parser runs several rounds; the best round is
 * reported, in ns per event. */
// clang-format on
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#ifdef JP_JANSSON
#include <jansson.h>
#else
#include <cjson/cJSON.h>
#include <json-c/json.h>
#endif

static const char EVENT[] =
    "{\"type\":\"track\",\"event\":\"Form Submitted\",\"messageId\":\"ajs-920a8b6591f0d25cc1\","
    "\"anonymousId\":\"3d316d2c-26e8-451f-91be-a0766708c81e\",\"userId\":\"97980cfea0067\","
    "\"timestamp\":\"2019-06-21T17:35:47.404Z\",\"context\":{\"page\":{\"path\":\"/pricing\","
    "\"referrer\":\"https://www.google.com/\",\"url\":\"https://example.com/"
    "pricing?utm_source=google&gclid=EAIaIQob\"},\"campaign\":{\"source\":\"google\",\"medium\":"
    "\"cpc\",\"name\":\"spring_sale\"},\"userAgent\":\"Mozilla/5.0 (Macintosh)\"},"
    "\"properties\":{\"form_id\":\"demo-request\",\"seats\":25}}";

static double now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e9 + ts.tv_nsec;
}

static volatile size_t sink;

#ifdef JP_JANSSON
/*---- jansson ----*/
static size_t walk_jansson(json_t *o)
{
    size_t s = 0;
    if (json_is_object(o)) {
        const char *key;
        json_t *val;
        json_object_foreach(o, key, val)
        {
            s += strlen(key);
            s += walk_jansson(val);
        }
    } else if (json_is_array(o)) {
        size_t i;
        json_t *val;
        json_array_foreach(o, i, val) s += walk_jansson(val);
    } else if (json_is_string(o)) {
        s += json_string_length(o);
    } else if (json_is_number(o)) {
        s += (size_t)json_number_value(o);
    }
    return s;
}

static size_t run_jansson(const char *buf, size_t len)
{
    json_error_t e;
    json_t *root = json_loadb(buf, len, 0, &e);
    if (!root) abort();
    size_t s = walk_jansson(root);
    json_decref(root);
    return s;
}

#else
/*---- cJSON ----*/
static size_t walk_cjson(const cJSON *n)
{
    size_t s = 0;
    for (const cJSON *c = n->child; c; c = c->next) {
        if (c->string) s += strlen(c->string);
        if (cJSON_IsString(c))
            s += strlen(c->valuestring);
        else if (cJSON_IsNumber(c))
            s += (size_t)c->valuedouble;
        else if (cJSON_IsObject(c) || cJSON_IsArray(c))
            s += walk_cjson(c);
    }
    return s;
}

static size_t run_cjson(const char *buf, size_t len)
{
    cJSON *root = cJSON_ParseWithLength(buf, len);
    if (!root) abort();
    size_t s = walk_cjson(root);
    cJSON_Delete(root);
    return s;
}

/*---- json-c ----*/
static size_t walk_jsonc(struct json_object *o)
{
    size_t s = 0;
    if (json_object_is_type(o, json_type_object)) {
        json_object_object_foreach(o, key, val)
        {
            s += strlen(key);
            s += walk_jsonc(val);
        }
    } else if (json_object_is_type(o, json_type_array)) {
        size_t n = json_object_array_length(o);
        for (size_t i = 0; i < n; i++)
            s += walk_jsonc(json_object_array_get_idx(o, i));
    } else if (json_object_is_type(o, json_type_string)) {
        s += (size_t)json_object_get_string_len(o);
    } else if (json_object_is_type(o, json_type_int) || json_object_is_type(o, json_type_double)) {
        s += (size_t)json_object_get_double(o);
    }
    return s;
}

static struct json_tokener *tok;
static size_t run_jsonc(const char *buf, size_t len)
{
    json_tokener_reset(tok);
    struct json_object *root = json_tokener_parse_ex(tok, buf, (int)len);
    if (!root) abort();
    size_t s = walk_jsonc(root);
    json_object_put(root);
    return s;
}

#endif

static void bench(const char *name, size_t (*fn)(const char *, size_t), int iters)
{
    double best = 1e30;
    for (int round = 0; round < 5; round++) {
        double t0 = now_ns();
        size_t s = 0;
        for (int i = 0; i < iters; i++)
            s += fn(EVENT, sizeof(EVENT) - 1);
        double dt = (now_ns() - t0) / iters;
        sink += s;
        if (dt < best) best = dt;
    }
    printf("%-8s %7.0f ns/event  %8.0f events/s\n", name, best, 1e9 / best);
}

int main(int argc, char **argv)
{
    int iters = argc > 1 ? atoi(argv[1]) : 200000;
    printf("event: %zu bytes, %d iterations x 5 rounds, best round\n", sizeof(EVENT) - 1, iters);
#ifdef JP_JANSSON
    bench("jansson", run_jansson, iters);
#else
    tok = json_tokener_new();
    bench("cJSON", run_cjson, iters);
    bench("json-c", run_jsonc, iters);
    json_tokener_free(tok);
#endif
    return 0;
}
