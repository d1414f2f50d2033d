/* Common helpers and the arena. */
#include <limits.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "leadflow/alloc.h"
#include "leadflow/argv.h"
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
    /* The integer fast path prints exactly what %.15g prints. */
    double ints[] = {0, 1, -1, 60, -45, 123456789012345.0, -99999999999999.0, 1e15, -0.0};
    for (size_t i = 0; i < sizeof(ints) / sizeof(ints[0]); i++) {
        char want[40];
        snprintf(want, sizeof(want), "%.15g", ints[i]);
        lf_fmt_double(buf, sizeof(buf), ints[i]);
        CHECK_STR(buf, want);
    }
}

/* What lf_fmt_double promises: %.15g when that reads back as the value, else %.17g. */
static int fmt_double_reference(char *buf, size_t cap, double v)
{
    int n = snprintf(buf, cap, "%.15g", v);
    if (n > 0 && (size_t)n < cap && strtod(buf, NULL) == v) return n;
    return snprintf(buf, cap, "%.17g", v);
}

static void test_fmt_double_matches_printf(void)
{
    /* Edges of the fast path: rounding carries into a new digit, the switch between fixed
     * and scientific notation, 15 digits that read back and 15 that do not, subnormals. */
    double edges[] = {99999999999999.99,
                      9.9999999999999995e22,
                      0.0001,
                      0.00012345678901234567,
                      0.000099999999999999991,
                      123456789012345.67,
                      1e15 + 0.5,
                      -0.1,
                      2.5,
                      2.675,
                      1e-300,
                      4.9e-324,
                      -2.2250738585072014e-308,
                      1.7976931348623157e308,
                      14.958906991730736,
                      44.99999999999999,
                      0.30000000000000004};
    char got[40], want[40];
    for (size_t i = 0; i < sizeof(edges) / sizeof(edges[0]); i++) {
        lf_fmt_double(got, sizeof(got), edges[i]);
        fmt_double_reference(want, sizeof(want), edges[i]);
        CHECK_STR(got, want);
    }
    /* And 200,000 values of every kind: any bit pattern, ratios, decayed scores, powers of
     * two over a wide range. */
    uint64_t s = 88172645463325252ULL;
    for (long i = 0; i < 200000; i++) {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        double v;
        switch (i % 4) {
        case 0:
            memcpy(&v, &s, sizeof(v));
            break;
        case 1:
            v = (double)(s % 100000) / (double)(1 + (s >> 20) % 1000);
            break;
        case 2:
            v = (double)(s % 2000) * exp(-(double)((s >> 11) % 100000) / 30000.0);
            break;
        default:
            v = ldexp((double)(s >> 11), (int)((s >> 3) % 120) - 100);
        }
        if (!isfinite(v)) continue;
        lf_fmt_double(got, sizeof(got), v);
        fmt_double_reference(want, sizeof(want), v);
        CHECK_STR(got, want);
    }
}

static void test_fmt_i64_matches_printf(void)
{
    long long vals[] = {0, 7, -7, 10, 1767225600000LL, LLONG_MAX, LLONG_MIN, -1000000};
    for (size_t i = 0; i < sizeof(vals) / sizeof(vals[0]); i++) {
        char want[32], got[32];
        snprintf(want, sizeof(want), "%lld", vals[i]);
        size_t n = lf_fmt_i64(got, vals[i]);
        CHECK_STR(got, want);
        CHECK_INT(n, strlen(want));
    }
}

static void test_part_field_matches_printf(void)
{
    /* "<partition>.<counter>" of lf:wm:..., formatted without printf on every lead write. */
    lf_arena_t a;
    lf_arena_init(&a, 256);
    lf_argv_t v;
    lf_argv_init_scratch(&v, &a);
    const int32_t parts[] = {0, 7, 63, 4095, -1, INT32_MAX};
    char long_name[80];
    memset(long_name, 'x', sizeof(long_name) - 1);
    long_name[sizeof(long_name) - 1] = '\0';
    const char *names[] = {"consumed", "transitions", long_name};
    for (size_t i = 0; i < sizeof(parts) / sizeof(parts[0]); i++)
        for (size_t k = 0; k < 3; k++) {
            char want[128];
            snprintf(want, sizeof(want), "%d.%s", (int)parts[i], names[k]);
            lf_argv_add_part_field(&v, parts[i], names[k]);
            CHECK_INT(v.lens[v.n - 1], strlen(want));
            CHECK(memcmp(v.argv[v.n - 1], want, strlen(want)) == 0);
        }
    lf_arena_free(&a);
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
    /* A reset keeps the standard chunks: the next round reuses them instead of allocating. */
    size_t used = lf_alloc_used();
    for (int i = 0; i < 100; i++)
        lf_arena_alloc(&a, 64);
    lf_arena_reset(&a);
    size_t after_first = lf_alloc_used();
    for (int round = 0; round < 5; round++) {
        for (int i = 0; i < 100; i++)
            memset(lf_arena_alloc(&a, 64), 'y', 64);
        lf_arena_reset(&a);
    }
    CHECK(lf_alloc_used() == after_first);
    CHECK(after_first >= used);
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

/* One strict reader for options, settings and stored numbers (config, codec, gen, devbroker,
 * the CLI's ports): the whole string or nothing. */
static void test_parse_numbers_are_strict(void)
{
    int64_t i = 7;
    uint64_t u = 7;
    double d = 7;
    CHECK_INT(lf_parse_i64("42", 0, 100, &i), LF_OK);
    CHECK_INT(i, 42);
    CHECK_INT(lf_parse_i64("-5", -10, 10, &i), LF_OK);
    CHECK_INT(i, -5);
    CHECK_INT(lf_parse_i64("+5", -10, 10, &i), LF_OK);
    CHECK_INT(lf_parse_i64("99999", 1, 65535, &i), LF_ERR); /* --redis h:99999 */
    CHECK_INT(lf_parse_i64("0", 1, 65535, &i), LF_ERR);
    static const char *const bad[] = {"",    " 5",  "5 ", "5x",  "0x10",
                                      "--5", "+-5", "-",  "1e3", "99999999999999999999"};
    for (size_t k = 0; k < sizeof(bad) / sizeof(bad[0]); k++) {
        i = 7;
        CHECK_INT(lf_parse_i64(bad[k], INT64_MIN, INT64_MAX, &i), LF_ERR);
        CHECK_INT(i, 7);
    }
    CHECK_INT(lf_parse_i64(NULL, 0, 1, &i), LF_ERR);
    CHECK_INT(lf_parse_u64("18446744073709551615", &u), LF_OK);
    CHECK(u == UINT64_MAX);
    CHECK_INT(lf_parse_u64("-1", &u), LF_ERR);
    CHECK_INT(lf_parse_u64("18446744073709551616", &u), LF_ERR);
    CHECK_INT(lf_parse_u64(" 1", &u), LF_ERR);
    CHECK_INT(lf_parse_double("2.5e1", &d), LF_OK);
    CHECK(d == 25.0);
    CHECK_INT(lf_parse_double("-0.125", &d), LF_OK);
    CHECK(d == -0.125);
    static const char *const badd[] = {"", " 1", "1 ", "nan", "inf", "-inf", "1e999", "1.2.3", "x"};
    for (size_t k = 0; k < sizeof(badd) / sizeof(badd[0]); k++) {
        d = 7;
        CHECK_INT(lf_parse_double(badd[k], &d), LF_ERR);
        CHECK(d == 7);
    }
}

void suite_common(void)
{
    LF_RUN(test_fmt_double_round_trips);
    LF_RUN(test_fmt_double_matches_printf);
    LF_RUN(test_fmt_i64_matches_printf);
    LF_RUN(test_part_field_matches_printf);
    LF_RUN(test_hash64_is_stable);
    LF_RUN(test_arena_alignment_and_reuse);
    LF_RUN(test_str_helpers);
    LF_RUN(test_parse_numbers_are_strict);
}
