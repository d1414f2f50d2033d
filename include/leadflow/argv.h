/* A growing list of (pointer, length) arguments whose bytes live in an arena: how Redis
 * commands are assembled without a malloc per argument (redisAppendCommandArgv takes it). */
#ifndef LEADFLOW_ARGV_H
#define LEADFLOW_ARGV_H

#include <stddef.h>

#include "leadflow/alloc.h"

typedef struct {
    const char **argv;
    size_t *lens;
    size_t n, cap;
    lf_arena_t *arena;
    int scratch; /* the arrays live in the arena too: nothing to free */
} lf_argv_t;

/* A list whose arrays are reused across resets (free it with lf_argv_free). */
void lf_argv_init(lf_argv_t *a, lf_arena_t *arena);
/* A short-lived list: everything in the arena, gone with its reset; no lf_argv_free. */
void lf_argv_init_scratch(lf_argv_t *a, lf_arena_t *arena);
void lf_argv_reset(lf_argv_t *a); /* forget the arguments, keep the arrays */
void lf_argv_free(lf_argv_t *a);
/* Adds s without copying: it must outlive the list's use. */
void lf_argv_add_ref(lf_argv_t *a, const char *s, size_t len);
/* Copies s into the arena. */
void lf_argv_add(lf_argv_t *a, const char *s, size_t len);
void lf_argv_adds(lf_argv_t *a, const char *s);
void lf_argv_addf(lf_argv_t *a, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void lf_argv_add_i64(lf_argv_t *a, long long v);
/* "<x><y>" copied into the list (field names built per lead write: no printf). */
void lf_argv_add_concat(lf_argv_t *a, const char *x, const char *y);
/* "<partition>.<name>": a progress counter's field in lf:wm:... (per lead write: no printf). */
void lf_argv_add_part_field(lf_argv_t *a, int32_t partition, const char *name);
void lf_argv_add_double(lf_argv_t *a, double v);

#endif
