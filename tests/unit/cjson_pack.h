/* A JSON tree (cJSON) as the MessagePack a careful producer would write: whole numbers as
 * integers (not -0, which only a float can carry), other numbers as float64. Shared by the
 * unit tests of the decoders and the JSON fuzz harness's cross-check. Header-only: each
 * includes it once. */
#ifndef LF_TEST_CJSON_PACK_H
#define LF_TEST_CJSON_PACK_H

#include <cjson/cJSON.h>
#include <math.h>
#include <msgpack.h>
#include <stdint.h>
#include <string.h>

static void lf_test_pack_cjson(msgpack_packer *pk, const cJSON *c)
{
    switch (c->type & 0xFF) {
    case cJSON_False:
        msgpack_pack_false(pk);
        break;
    case cJSON_True:
        msgpack_pack_true(pk);
        break;
    case cJSON_Number: {
        double d = c->valuedouble;
        if (d == floor(d) && fabs(d) < 9e15 && !(d == 0 && signbit(d)))
            msgpack_pack_int64(pk, (int64_t)d);
        else
            msgpack_pack_double(pk, d);
        break;
    }
    case cJSON_String: {
        size_t n = strlen(c->valuestring);
        msgpack_pack_str(pk, n);
        msgpack_pack_str_body(pk, c->valuestring, n);
        break;
    }
    case cJSON_Array:
        msgpack_pack_array(pk, (size_t)cJSON_GetArraySize(c));
        for (const cJSON *e = c->child; e; e = e->next)
            lf_test_pack_cjson(pk, e);
        break;
    case cJSON_Object:
        msgpack_pack_map(pk, (size_t)cJSON_GetArraySize(c));
        for (const cJSON *e = c->child; e; e = e->next) {
            size_t n = strlen(e->string);
            msgpack_pack_str(pk, n);
            msgpack_pack_str_body(pk, e->string, n);
            lf_test_pack_cjson(pk, e);
        }
        break;
    default:
        msgpack_pack_nil(pk);
        break;
    }
}

#endif
