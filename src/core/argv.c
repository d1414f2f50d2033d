/* Argument lists for Redis commands, backed by an arena. */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "leadflow/argv.h"
#include "leadflow/common.h"

void lf_argv_init(lf_argv_t *a, lf_arena_t *arena)
{
    memset(a, 0, sizeof(*a));
    a->arena = arena;
}

void lf_argv_init_scratch(lf_argv_t *a, lf_arena_t *arena)
{
    lf_argv_init(a, arena);
    a->scratch = 1;
}

void lf_argv_reset(lf_argv_t *a)
{
    a->n = 0;
}

void lf_argv_free(lf_argv_t *a)
{
    if (!a->scratch) {
        lf_free(a->argv);
        lf_free(a->lens);
    }
    memset(a, 0, sizeof(*a));
}

static void lf_argv_push(lf_argv_t *a, const char *p, size_t len)
{
    if (a->n == a->cap) {
        size_t cap = a->cap ? a->cap * 2 : 64;
        if (a->scratch) {
            const char **argv = lf_arena_alloc(a->arena, cap * sizeof(*argv));
            size_t *lens = lf_arena_alloc(a->arena, cap * sizeof(*lens));
            if (a->n) {
                memcpy(argv, a->argv, a->n * sizeof(*argv));
                memcpy(lens, a->lens, a->n * sizeof(*lens));
            }
            a->argv = argv;
            a->lens = lens;
        } else {
            a->argv = lf_realloc(a->argv, cap * sizeof(*a->argv));
            a->lens = lf_realloc(a->lens, cap * sizeof(*a->lens));
        }
        a->cap = cap;
    }
    a->argv[a->n] = p;
    a->lens[a->n] = len;
    a->n++;
}

void lf_argv_add_ref(lf_argv_t *a, const char *s, size_t len)
{
    lf_argv_push(a, s ? s : "", s ? len : 0);
}

void lf_argv_add(lf_argv_t *a, const char *s, size_t len)
{
    lf_argv_push(a, lf_arena_strndup(a->arena, s ? s : "", s ? len : 0), s ? len : 0);
}

void lf_argv_adds(lf_argv_t *a, const char *s)
{
    lf_argv_add(a, s, s ? strlen(s) : 0);
}

void lf_argv_addf(lf_argv_t *a, const char *fmt, ...)
{
    char buf[512];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(buf, sizeof(buf), fmt, ap);
    va_end(ap);
    if (n < 0) n = 0;
    if ((size_t)n >= sizeof(buf)) {
        char *big = lf_arena_alloc(a->arena, (size_t)n + 1);
        va_start(ap, fmt);
        vsnprintf(big, (size_t)n + 1, fmt, ap);
        va_end(ap);
        lf_argv_push(a, big, (size_t)n);
        return;
    }
    lf_argv_add(a, buf, (size_t)n);
}

void lf_argv_add_concat(lf_argv_t *a, const char *x, const char *y)
{
    char buf[256];
    size_t lx = strlen(x), ly = strlen(y);
    if (lx + ly > sizeof(buf)) {
        lf_argv_addf(a, "%s%s", x, y);
        return;
    }
    memcpy(buf, x, lx);
    memcpy(buf + lx, y, ly);
    lf_argv_add(a, buf, lx + ly);
}

void lf_argv_add_part_field(lf_argv_t *a, int32_t partition, const char *name)
{
    char part[24];
    size_t n = lf_fmt_i64(part, partition);
    part[n++] = '.';
    part[n] = '\0';
    lf_argv_add_concat(a, part, name);
}

void lf_argv_add_i64(lf_argv_t *a, long long v)
{
    char buf[24];
    size_t n = lf_fmt_i64(buf, v);
    lf_argv_add(a, buf, n);
}

void lf_argv_add_double(lf_argv_t *a, double v)
{
    char buf[40];
    int n = lf_fmt_double(buf, sizeof(buf), v);
    lf_argv_add(a, buf, (size_t)n);
}
