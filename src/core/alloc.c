/* Allocation wrappers and the bump arena. The release build links jemalloc, which replaces
 * malloc. The wrappers end the process with a message when memory runs out, and count live
 * bytes (lf_alloc_used) so the unit tests can show a hot path allocates nothing. */
#include <malloc.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "leadflow/alloc.h"

static atomic_size_t lf_bytes_used;

static void *lf_oom(size_t n)
{
    fprintf(stderr, "leadflow: out of memory allocating %zu bytes\n", n);
    abort();
}

void *lf_malloc(size_t n)
{
    void *p = malloc(n ? n : 1);
    if (!p) return lf_oom(n);
    atomic_fetch_add(&lf_bytes_used, malloc_usable_size(p));
    return p;
}

void *lf_calloc(size_t count, size_t n)
{
    void *p = calloc(count ? count : 1, n ? n : 1);
    if (!p) return lf_oom(count * n);
    atomic_fetch_add(&lf_bytes_used, malloc_usable_size(p));
    return p;
}

void *lf_realloc(void *p, size_t n)
{
    size_t old = p ? malloc_usable_size(p) : 0;
    void *q = realloc(p, n ? n : 1);
    if (!q) return lf_oom(n);
    atomic_fetch_sub(&lf_bytes_used, old);
    atomic_fetch_add(&lf_bytes_used, malloc_usable_size(q));
    return q;
}

void lf_free(void *p)
{
    if (!p) return;
    atomic_fetch_sub(&lf_bytes_used, malloc_usable_size(p));
    free(p);
}

char *lf_strndup(const char *s, size_t n)
{
    char *d = lf_malloc(n + 1);
    memcpy(d, s, n);
    d[n] = '\0';
    return d;
}

char *lf_strdup(const char *s)
{
    return lf_strndup(s, strlen(s));
}

size_t lf_alloc_used(void)
{
    return atomic_load(&lf_bytes_used);
}

/*---- Arena ---------------------------------------------------------------------------*/

struct lf_arena_chunk {
    lf_arena_chunk_t *next;
    size_t size, used;
    _Alignas(8) unsigned char data[];
};

void lf_arena_init(lf_arena_t *a, size_t chunk_size)
{
    a->head = NULL;
    a->spare = NULL;
    a->chunk_size = chunk_size ? chunk_size : 64 * 1024;
    a->total = 0;
}

void *lf_arena_alloc(lf_arena_t *a, size_t n)
{
    n = (n + 7) & ~(size_t)7;
    lf_arena_chunk_t *c = a->head;
    if (!c || c->size - c->used < n) {
        if (n <= a->chunk_size && a->spare) {
            c = a->spare;
            a->spare = c->next;
        } else {
            size_t size = n > a->chunk_size ? n : a->chunk_size;
            c = lf_malloc(sizeof(*c) + size);
            c->size = size;
        }
        c->used = 0;
        c->next = a->head;
        a->head = c;
    }
    void *p = c->data + c->used;
    c->used += n;
    a->total += n;
    return p;
}

char *lf_arena_strndup(lf_arena_t *a, const char *s, size_t n)
{
    char *d = lf_arena_alloc(a, n + 1);
    if (n) memcpy(d, s, n);
    d[n] = '\0';
    return d;
}

void lf_arena_reset(lf_arena_t *a)
{
    /* Keep the standard chunks for the next round: a steady stream of batches then
     * allocates nothing (no malloc, no fresh pages to fault in). Oversized ones go. */
    lf_arena_chunk_t *c = a->head;
    while (c) {
        lf_arena_chunk_t *next = c->next;
        if (c->size == a->chunk_size) {
            c->next = a->spare;
            a->spare = c;
        } else {
            lf_free(c);
        }
        c = next;
    }
    a->head = NULL;
    a->total = 0;
}

void lf_arena_free(lf_arena_t *a)
{
    lf_arena_chunk_t *lists[2] = {a->head, a->spare};
    for (int i = 0; i < 2; i++) {
        lf_arena_chunk_t *c = lists[i];
        while (c) {
            lf_arena_chunk_t *next = c->next;
            lf_free(c);
            c = next;
        }
    }
    a->head = NULL;
    a->spare = NULL;
    a->total = 0;
}
