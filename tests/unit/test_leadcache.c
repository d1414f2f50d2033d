/* The lead cache (leadcache.h): what is put comes back byte for byte (a copy, not the
 * caller's memory), a put replaces, drop and clear forget, and past max entries some are
 * evicted but never the one just put, and a replacement evicts nothing. Sizes are observed
 * through lf_leadcache_get only. */
#include "leadflow/argv.h"
#include "leadflow/leadcache.h"
#include "test.h"

/* A lead's pairs: "stage" <stage>, "seq" <seq>, plus `extra` fields "f<i>" "v<i>". */
static void lf_lc_pairs(lf_argv_t *a, lf_arena_t *arena, const char *stage, int seq, int extra)
{
    lf_argv_init_scratch(a, arena);
    lf_argv_adds(a, "stage");
    lf_argv_adds(a, stage);
    lf_argv_adds(a, "seq");
    lf_argv_add_i64(a, seq);
    for (int i = 0; i < extra; i++) {
        lf_argv_addf(a, "f%d", i);
        lf_argv_addf(a, "v%d", i);
    }
}

/* The cached pairs of id equal a's (n pairs, each field and value byte for byte). */
static int lf_lc_same(lf_leadcache_t *c, const char *id, const lf_argv_t *a)
{
    const lf_str_t *f, *v;
    size_t n;
    if (!lf_leadcache_get(c, id, &f, &v, &n) || n != a->n / 2) return 0;
    for (size_t i = 0; i < n; i++)
        if (f[i].len != a->lens[2 * i] || v[i].len != a->lens[2 * i + 1] ||
            memcmp(f[i].ptr, a->argv[2 * i], f[i].len) != 0 ||
            memcmp(v[i].ptr, a->argv[2 * i + 1], v[i].len) != 0)
            return 0;
    return 1;
}

static int lf_lc_has(lf_leadcache_t *c, const char *id)
{
    const lf_str_t *f, *v;
    size_t n;
    return lf_leadcache_get(c, id, &f, &v, &n);
}

/* Each test's cache (max entries given) and two leads' pairs: a has extra fields, b none. */
typedef struct {
    lf_arena_t arena;
    lf_argv_t a, b;
    lf_leadcache_t *c;
} lf_lc_fix_t;

static void lf_lc_setup(lf_lc_fix_t *x, size_t max)
{
    lf_arena_init(&x->arena, 4096);
    lf_lc_pairs(&x->a, &x->arena, "mql", 3, 5);
    lf_lc_pairs(&x->b, &x->arena, "lead", 1, 0);
    x->c = lf_leadcache_new(max);
}

static void lf_lc_teardown(lf_lc_fix_t *x)
{
    lf_leadcache_free(x->c);
    lf_arena_free(&x->arena);
}

static void test_leadcache_put_get(void)
{
    lf_lc_fix_t x;
    lf_lc_setup(&x, 100);
    CHECK(!lf_lc_has(x.c, "u1"));
    lf_leadcache_put(x.c, "u1", &x.a);
    lf_leadcache_put(x.c, "u2", &x.b);
    CHECK(lf_lc_same(x.c, "u1", &x.a));
    CHECK(lf_lc_same(x.c, "u2", &x.b));
    CHECK(!lf_lc_has(x.c, "u3"));
    CHECK(!lf_lc_has(x.c, "u"));   /* a prefix is another id */
    CHECK(!lf_lc_has(x.c, "u1 ")); /* and so is a longer one */
    lf_lc_teardown(&x);
}

/* The cache keeps its own copy: the caller's buffers may change or go after the put. */
static void test_leadcache_copies(void)
{
    lf_arena_t arena;
    lf_argv_t a;
    char field[] = "tr.company", value[] = "acme\0inc"; /* a NUL inside a value */
    char id[] = "lead-7";
    lf_arena_init(&arena, 4096);
    lf_argv_init_scratch(&a, &arena);
    lf_argv_add_ref(&a, field, sizeof(field) - 1);
    lf_argv_add_ref(&a, value, sizeof(value) - 1);
    lf_argv_add_ref(&a, "empty", 5);
    lf_argv_add_ref(&a, "", 0);
    lf_leadcache_t *c = lf_leadcache_new(10);
    lf_leadcache_put(c, id, &a);
    memset(field, 'x', sizeof(field) - 1);
    memset(value, 'y', sizeof(value) - 1);
    memcpy(id, "lead-8", 6);
    const lf_str_t *f, *v;
    size_t n;
    CHECK(!lf_lc_has(c, id));
    CHECK(lf_leadcache_get(c, "lead-7", &f, &v, &n));
    CHECK_INT(n, 2);
    CHECK_SV(f[0], "tr.company");
    CHECK_INT(v[0].len, 8);
    CHECK(memcmp(v[0].ptr, "acme\0inc", 8) == 0);
    CHECK_SV(f[1], "empty");
    CHECK_INT(v[1].len, 0);
    lf_leadcache_free(c);
    lf_arena_free(&arena);
}

/* A second put of an id replaces the first: only the new pairs are found. */
static void test_leadcache_replace(void)
{
    lf_lc_fix_t x;
    lf_lc_setup(&x, 10);
    lf_leadcache_put(x.c, "u1", &x.a);
    lf_leadcache_put(x.c, "u1", &x.b);
    CHECK(lf_lc_same(x.c, "u1", &x.b));
    CHECK(!lf_lc_same(x.c, "u1", &x.a));
    lf_leadcache_put(x.c, "u1", &x.a);
    CHECK(lf_lc_same(x.c, "u1", &x.a));
    lf_lc_teardown(&x);
}

static void test_leadcache_drop_clear(void)
{
    lf_lc_fix_t x;
    lf_lc_setup(&x, 10);
    lf_leadcache_put(x.c, "u1", &x.a);
    lf_leadcache_put(x.c, "u2", &x.a);
    lf_leadcache_drop(x.c, "u1");
    lf_leadcache_drop(x.c, "nobody"); /* not there: nothing happens */
    CHECK(!lf_lc_has(x.c, "u1"));
    CHECK(lf_lc_same(x.c, "u2", &x.a));
    lf_leadcache_clear(x.c);
    CHECK(!lf_lc_has(x.c, "u2"));
    lf_leadcache_put(x.c, "u1", &x.a); /* usable after a clear */
    CHECK(lf_lc_same(x.c, "u1", &x.a));
    lf_leadcache_free(NULL);
    lf_lc_teardown(&x);
}

/* Past max entries some are evicted: never more than max found, and never the one just put;
 * the survivors are intact. */
static void test_leadcache_bound(void)
{
    lf_lc_fix_t x;
    char id[32];
    lf_lc_setup(&x, 5);
    for (int i = 0; i < 40; i++) {
        snprintf(id, sizeof(id), "u%d", i);
        lf_leadcache_put(x.c, id, &x.a);
        CHECK(lf_lc_same(x.c, id, &x.a));
        int found = 0;
        for (int k = 0; k <= i; k++) {
            snprintf(id, sizeof(id), "u%d", k);
            found += lf_lc_has(x.c, id);
        }
        CHECK_INT(found, i < 5 ? i + 1 : 5);
    }
    lf_leadcache_free(x.c);

    /* No room at all: nothing is kept. */
    x.c = lf_leadcache_new(0);
    lf_leadcache_put(x.c, "u1", &x.a);
    CHECK(!lf_lc_has(x.c, "u1"));
    lf_lc_teardown(&x);
}

/* Replacing an entry of a full cache evicts nothing else. */
static void test_leadcache_replace_full(void)
{
    lf_lc_fix_t x;
    lf_lc_setup(&x, 2);
    lf_leadcache_put(x.c, "u1", &x.a);
    lf_leadcache_put(x.c, "u2", &x.a);
    for (int i = 0; i < 10; i++)
        lf_leadcache_put(x.c, i % 2 ? "u1" : "u2", i % 3 ? &x.a : &x.b);
    CHECK(lf_lc_same(x.c, "u1", &x.b)); /* i = 9 */
    CHECK(lf_lc_same(x.c, "u2", &x.a)); /* i = 8 */
    lf_lc_teardown(&x);
}

/* Many entries (the table grows): every one found with its own pairs; no bytes leak. */
static void test_leadcache_many(void)
{
    lf_arena_t arena;
    char id[32];
    size_t before = lf_alloc_used();
    lf_arena_init(&arena, 1 << 16);
    lf_leadcache_t *c = lf_leadcache_new(100000);
    for (int i = 0; i < 5000; i++) {
        lf_argv_t a;
        snprintf(id, sizeof(id), "lead-%d", i);
        lf_lc_pairs(&a, &arena, i % 2 ? "mql" : "lead", i, i % 7);
        lf_leadcache_put(c, id, &a);
    }
    for (int i = 0; i < 5000; i++) {
        lf_argv_t a;
        snprintf(id, sizeof(id), "lead-%d", i);
        lf_lc_pairs(&a, &arena, i % 2 ? "mql" : "lead", i, i % 7);
        CHECK(lf_lc_same(c, id, &a));
    }
    lf_leadcache_free(c);
    lf_arena_free(&arena);
    CHECK_INT(lf_alloc_used(), before);
}

void suite_leadcache(void)
{
    LF_RUN(test_leadcache_put_get);
    LF_RUN(test_leadcache_copies);
    LF_RUN(test_leadcache_replace);
    LF_RUN(test_leadcache_drop_clear);
    LF_RUN(test_leadcache_bound);
    LF_RUN(test_leadcache_replace_full);
    LF_RUN(test_leadcache_many);
}
