/* JSON front end: cJSON (measured fastest of cJSON, json-c and jansson, bench/json_parsers.md)
 * behind the generic tree of event_int.h.
 *
 * Before cJSON sees the bytes, one linear pre-scan:
 *  - nesting deeper than LF_EVENT_MAX_DEPTH -> LF_BAD_TOO_COMPLEX (cJSON itself would go 1000
 *    levels deep, recursively);
 *  - an unterminated string or a raw control byte (< 0x20, including NUL) inside a string ->
 *    LF_BAD_NOT_DECODABLE (invalid JSON; cJSON would accept control bytes);
 *  - the escape \u0000 anywhere -> LF_BAD_WRONG_TYPE. cJSON stores strings NUL-terminated
 *    without a length, so a NUL would silently cut a value short ("user\u0000x" would become
 *    "user"); since it cannot tell which field held it, the whole event is refused. The
 *    MessagePack front end refuses a NUL byte in any string the same way, so both formats
 *    agree.
 * After parsing, anything but whitespace after the object is LF_BAD_NOT_DECODABLE, and a
 * value that is JSON but not an object (an array of events, a string) is LF_BAD_NOT_A_MAP
 * with a message that says which. */
#include <string.h>

#include <cjson/cJSON.h>

#include "event_int.h"

static void cj_get(const void *node, lf_val_t *v)
{
    const cJSON *c = node;
    memset(v, 0, sizeof(*v));
    switch (c->type & 0xFF) {
    case cJSON_False:
        v->t = LF_VT_BOOL;
        break;
    case cJSON_True:
        v->t = LF_VT_BOOL;
        v->b = 1;
        break;
    case cJSON_NULL:
        v->t = LF_VT_NULL;
        break;
    case cJSON_Number:
        v->t = LF_VT_FLOAT;
        v->d = c->valuedouble;
        break;
    case cJSON_String:
        v->t = LF_VT_STR;
        v->s.ptr = c->valuestring ? c->valuestring : "";
        v->s.len = c->valuestring ? (uint32_t)strlen(c->valuestring) : 0;
        break;
    case cJSON_Array:
        v->t = LF_VT_ARRAY;
        break;
    case cJSON_Object:
        v->t = LF_VT_MAP;
        break;
    default:
        v->t = LF_VT_OTHER;
        break;
    }
}

static int cj_next(const void *map, uintptr_t *it, lf_str_t *key, const void **child)
{
    const cJSON *c = *it ? ((const cJSON *)*it)->next : ((const cJSON *)map)->child;
    while (c && !c->string)
        c = c->next;
    *it = (uintptr_t)c;
    if (!c) return 0;
    key->ptr = c->string;
    key->len = (uint32_t)strlen(c->string);
    *child = c;
    return 1;
}

static const lf_tree_ops_t cj_ops = {cj_get, cj_next};

static int prescan(const unsigned char *b, size_t len, lf_err_t *err)
{
    int depth = 0;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = b[i];
        if (c == '"') {
            for (i++; i < len && b[i] != '"'; i++) {
                if (b[i] < 0x20) {
                    lf_err_set(err, LF_BAD_NOT_DECODABLE,
                               "not valid JSON: a control byte 0x%02x inside a string", b[i]);
                    return LF_ERR;
                }
                if (b[i] == '\\') {
                    if (i + 5 < len && b[i + 1] == 'u' && memcmp(b + i + 2, "0000", 4) == 0) {
                        lf_err_set(err, LF_BAD_WRONG_TYPE,
                                   "a string contains \\u0000 (NUL), which is not accepted");
                        return LF_ERR;
                    }
                    i++;
                }
            }
            if (i >= len) {
                lf_err_set(err, LF_BAD_NOT_DECODABLE, "not valid JSON: unterminated string");
                return LF_ERR;
            }
        } else if (c == '{' || c == '[') {
            if (++depth > LF_EVENT_MAX_DEPTH) {
                lf_err_set(err, LF_BAD_TOO_COMPLEX, "nesting is deeper than %d levels",
                           LF_EVENT_MAX_DEPTH);
                return LF_ERR;
            }
        } else if (c == '}' || c == ']') {
            depth--;
        }
    }
    return LF_OK;
}

/* Not valid JSON at byte `at`: the message, which for text that does not even start like an
 * event names both formats (it was not meant as MessagePack either). */
static int json_fail(const unsigned char *b, size_t len, size_t at, const char *what, lf_err_t *err)
{
    size_t i = 0;
    while (i < len && (b[i] == ' ' || b[i] == '\t' || b[i] == '\r' || b[i] == '\n'))
        i++;
    if (i < len && b[i] != '{' && b[i] != '[')
        lf_err_set(err, LF_BAD_NOT_DECODABLE,
                   "neither a JSON object nor MessagePack: the value is text that does not start "
                   "with '{' (not valid JSON: %s at byte %zu)",
                   what, at);
    else
        lf_err_set(err, LF_BAD_NOT_DECODABLE, "not valid JSON: %s at byte %zu", what, at);
    return LF_ERR;
}

int lf_event_decode_json(const char *buf, size_t len, const lf_event_limits_t *lim,
                         lf_arena_t *arena, lf_event_t *ev, lf_err_t *err)
{
    const unsigned char *b = (const unsigned char *)buf;
    const char *end = NULL;
    if (prescan(b, len, err) != LF_OK) return LF_ERR;
    cJSON *root = cJSON_ParseWithLengthOpts(buf, len, &end, 0);
    if (!root)
        return json_fail(b, len,
                         end && end >= buf && end <= buf + len ? (size_t)(end - buf) : (size_t)0,
                         "a syntax error", err);
    size_t off = end && end >= buf && end <= buf + len ? (size_t)(end - buf) : len;
    while (off < len && (b[off] == ' ' || b[off] == '\t' || b[off] == '\r' || b[off] == '\n'))
        off++;
    int rc;
    if (off != len) {
        rc = json_fail(b, len, off,
                       cJSON_IsObject(root) ? "bytes after the object" : "bytes after the value",
                       err);
    } else if (cJSON_IsArray(root)) {
        lf_err_set(err, LF_BAD_NOT_A_MAP,
                   "the value is a JSON array, expected one event as a JSON object {...}: send "
                   "one event per message");
        rc = LF_ERR;
    } else if (!cJSON_IsObject(root)) {
        lf_err_set(err, LF_BAD_NOT_A_MAP,
                   "the value is a JSON %s, expected one event as a JSON object {...}",
                   cJSON_IsString(root)   ? "string"
                   : cJSON_IsNumber(root) ? "number"
                   : cJSON_IsBool(root)   ? "boolean"
                                          : "null");
        rc = LF_ERR;
    } else {
        rc = lf_event_extract(&cj_ops, root, lim, arena, ev, err);
    }
    cJSON_Delete(root);
    return rc;
}
