/* One pair of allocation wrappers (jemalloc underneath, bytes counted), and a bump arena
 * for per-batch data so the hot path does not call malloc per event. */
#ifndef LEADFLOW_ALLOC_H
#define LEADFLOW_ALLOC_H

#include <stddef.h>
#include <stdint.h>

void *lf_malloc(size_t n);
void *lf_calloc(size_t count, size_t n);
void *lf_realloc(void *p, size_t n);
void lf_free(void *p);
char *lf_strdup(const char *s);
char *lf_strndup(const char *s, size_t n);
/* Bytes currently allocated through these wrappers (the unit tests' allocation checks). */
size_t lf_alloc_used(void);

typedef struct lf_arena_chunk lf_arena_chunk_t;
typedef struct {
    lf_arena_chunk_t *head;
    lf_arena_chunk_t *spare; /* standard chunks kept by lf_arena_reset for the next round */
    size_t chunk_size;
    size_t total;
} lf_arena_t;

void lf_arena_init(lf_arena_t *a, size_t chunk_size);
/* 8-byte aligned memory valid until lf_arena_reset or lf_arena_free; NULL only on OOM. */
void *lf_arena_alloc(lf_arena_t *a, size_t n);
char *lf_arena_strndup(lf_arena_t *a, const char *s, size_t n);
/* Forget everything allocated but keep the first chunk for reuse. */
void lf_arena_reset(lf_arena_t *a);
void lf_arena_free(lf_arena_t *a);

#endif
