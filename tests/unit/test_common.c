/* Common helpers and the arena. */
#include <stdlib.h>

#include "leadflow/alloc.h"
#include "leadflow/common.h"
#include "test.h"

static void test_fmt_double_round_trips(void)
{
    double vals[] = {0,
                     1,
                     -1,
                     0.1,
                     1.0 / 3,
                     123456.789,
                     1e-300,
                     1.7976931348623157e308,
                     19.999999999999996,
                     60.0,
                     44.99999999999999};
    for (size_t i = 0; i < sizeof(vals) / sizeof(vals[0]); i++) {
        char buf[40];
        lf_fmt_double(buf, sizeof(buf), vals[i]);
        CHECK(strtod(buf, NULL) == vals[i]);
    }
    char buf[40];
    lf_fmt_double(buf, sizeof(buf), 0.1);
    CHECK_STR(buf, "0.1");
}

static void test_hash64_is_stable(void)
{
    /* FNV-1a 64 reference values: dedup hashes stored in Redis must never change. */
    CHECK(lf_hash64("", 0) == 0xcbf29ce484222325ULL);
    CHECK(lf_hash64("a", 1) == 0xaf63dc4c8601ec8cULL);
    CHECK(lf_hash64("foobar", 6) == 0x85944171f73967e8ULL);
}

static void test_arena_alignment_and_reuse(void)
{
    lf_arena_t a;
    lf_arena_init(&a, 128);
    for (int i = 0; i < 100; i++) {
        char *p = lf_arena_alloc(&a, (size_t)(i % 13) + 1);
        CHECK(((uintptr_t)p & 7) == 0);
        memset(p, 'x', (size_t)(i % 13) + 1);
    }
    char *big = lf_arena_alloc(&a, 10000);
    memset(big, 0, 10000);
    lf_arena_reset(&a);
    CHECK_INT(a.total, 0);
    char *s = lf_arena_strndup(&a, "hello world", 5);
    CHECK_STR(s, "hello");
    lf_arena_free(&a);
}

static void test_str_helpers(void)
{
    lf_str_t s = lf_str_from("Email Opened");
    CHECK(lf_str_eq(s, "Email Opened"));
    CHECK(!lf_str_eq(s, "email opened"));
    CHECK(lf_str_eq_nocase(s, "email opened"));
    CHECK(lf_str_has_prefix(s, "Email"));
    CHECK(!lf_str_has_prefix(s, "Emails"));
}

void suite_common(void)
{
    LF_RUN(test_fmt_double_round_trips);
    LF_RUN(test_hash64_is_stable);
    LF_RUN(test_arena_alignment_and_reuse);
    LF_RUN(test_str_helpers);
}
