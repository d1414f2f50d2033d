/* Shared by the event harnesses (fuzz_msgpack.c, fuzz_json.c): what every decode must hold,
 * whatever the bytes. A broken invariant aborts, so libFuzzer keeps the input as a crash. */
#ifndef LF_FUZZ_EVENT_H
#define LF_FUZZ_EVENT_H

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "leadflow/alloc.h"
#include "leadflow/event.h"

#include "fuzz_check.h"

/* Every byte of s is read (AddressSanitizer sees a view into freed or foreign memory). */
static unsigned fuzz_touch(lf_str_t s)
{
    unsigned sum = 0;
    FUZZ_CHECK(s.len == 0 || s.ptr != NULL);
    for (uint32_t i = 0; i < s.len; i++)
        sum += (unsigned char)s.ptr[i];
    return sum;
}

static int fuzz_utf8_ok(lf_str_t s)
{
    /* The ids must be what event.c promises: valid UTF-8 without NUL. A small independent
     * check (mbrtowc would depend on the locale). */
    const unsigned char *p = (const unsigned char *)s.ptr;
    uint32_t i = 0;
    while (i < s.len) {
        unsigned c = p[i], cp, need;
        if (c == 0) return 0;
        if (c < 0x80) {
            i++;
            continue;
        }
        if ((c & 0xe0) == 0xc0)
            need = 1, cp = c & 0x1f;
        else if ((c & 0xf0) == 0xe0)
            need = 2, cp = c & 0x0f;
        else if ((c & 0xf8) == 0xf0)
            need = 3, cp = c & 0x07;
        else
            return 0;
        if (s.len - i - 1 < need) return 0;
        for (unsigned k = 1; k <= need; k++) {
            if ((p[i + k] & 0xc0) != 0x80) return 0;
            cp = (cp << 6) | (p[i + k] & 0x3f);
        }
        static const unsigned min[4] = {0, 0x80, 0x800, 0x10000};
        if (cp < min[need] || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return 0;
        i += need + 1;
    }
    return 1;
}

/* lf_str_escape's promise: no control byte, no DEL, nothing past cap, and text without
 * anything to escape comes back as it was. */
static void fuzz_check_escape(lf_str_t s)
{
    char buf[LF_ESCAPED_CAP(64)], small[16];
    lf_str_t head = {s.ptr, s.len < 64 ? s.len : 64};
    lf_str_escape(head, buf, sizeof(buf));
    size_t n = strlen(buf);
    FUZZ_CHECK(n < sizeof(buf));
    int plain = 1;
    for (uint32_t i = 0; i < head.len; i++) {
        unsigned char c = (unsigned char)head.ptr[i];
        if (c < 0x20 || c >= 0x7f) plain = 0;
    }
    for (size_t i = 0; i < n; i++)
        FUZZ_CHECK((unsigned char)buf[i] >= 0x20 && (unsigned char)buf[i] != 0x7f);
    FUZZ_CHECK(fuzz_utf8_ok((lf_str_t){buf, (uint32_t)n})); /* bad bytes came out as \xHH */
    if (plain) FUZZ_CHECK(n == head.len && (n == 0 || memcmp(buf, head.ptr, n) == 0));
    lf_str_escape(head, small, sizeof(small)); /* cut short: still terminated, in bounds */
    FUZZ_CHECK(strlen(small) < sizeof(small));
}

static void fuzz_check_id(lf_str_t id, int required)
{
    if (required) FUZZ_CHECK(id.len > 0);
    FUZZ_CHECK(id.len <= LF_ID_MAX);
    if (id.len) FUZZ_CHECK(fuzz_utf8_ok(id));
}

static void fuzz_check_kv(const lf_kv_t *kv, uint32_t n, uint32_t max)
{
    FUZZ_CHECK(n <= max);
    FUZZ_CHECK(n == 0 || kv != NULL);
    for (uint32_t i = 0; i < n; i++) {
        FUZZ_CHECK(kv[i].key.len < 256);
        fuzz_touch(kv[i].key);
        fuzz_touch(kv[i].val);
        fuzz_check_escape(kv[i].val);
        /* NaN and infinities are no numbers a rule can compare (event.c drops them) */
        if (kv[i].is_num) FUZZ_CHECK(isfinite(kv[i].num));
    }
}

/* The outcome of one decode. */
static void fuzz_check_outcome(int rc, const lf_event_t *ev, const lf_err_t *err,
                               const lf_event_limits_t *lim)
{
    if (rc != LF_OK) {
        FUZZ_CHECK(rc == LF_ERR);
        FUZZ_CHECK(err->code > LF_BAD_NONE && err->code < LF_BAD__COUNT);
        FUZZ_CHECK(err->msg[0] != '\0');
        FUZZ_CHECK(strcmp(lf_bad_name((lf_bad_t)err->code), "unknown") != 0);
        return;
    }
    fuzz_check_id(ev->message_id, 1);
    fuzz_check_id(ev->user_id, 0);
    fuzz_check_id(ev->anonymous_id, 0);
    fuzz_check_id(ev->previous_id, ev->kind == LF_KIND_ALIAS);
    fuzz_check_id(lf_event_key(ev), 1);
    FUZZ_CHECK(ev->type.len > 0 && ev->kind_name.len > 0);
    FUZZ_CHECK((unsigned)ev->kind < LF_KIND__COUNT);
    FUZZ_CHECK(ev->ts_ms >= lim->min_ts_ms && ev->ts_ms <= lim->max_ts_ms);
    fuzz_touch(ev->type);
    fuzz_touch(ev->kind_name);
    fuzz_touch(ev->url);
    fuzz_touch(ev->path);
    fuzz_touch(ev->referrer);
    fuzz_touch(ev->title);
    fuzz_touch(ev->user_agent);
    fuzz_touch(ev->click_id_name);
    fuzz_touch(ev->click_id);
    int camp = ev->click_id.len != 0;
    for (int i = 0; i < LF_UTM__COUNT; i++) {
        fuzz_touch(ev->utm[i]);
        fuzz_check_escape(ev->utm[i]);
        if (ev->utm[i].len) camp = 1;
    }
    FUZZ_CHECK(ev->has_campaign == camp);
    fuzz_check_escape(ev->message_id);
    fuzz_check_escape(lf_event_key(ev));
    fuzz_check_kv(ev->props, ev->nprops, LF_EVENT_MAX_PROPS);
    fuzz_check_kv(ev->traits, ev->ntraits, LF_EVENT_MAX_TRAITS);
}

#endif
