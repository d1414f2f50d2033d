/* The in-memory lead cache; see include/leadflow/leadcache.h. A chained hash table; each
 * entry is one allocation holding the id, the pairs as lf_str_t arrays and their bytes. */
#include <stdlib.h>
#include <string.h>

#include "leadflow/leadcache.h"

typedef struct lf_lc_entry {
    struct lf_lc_entry *next;
    uint64_t hash;
    size_t n;
    lf_str_t *fields, *values;
    char id[];
} lf_lc_entry_t;

struct lf_leadcache {
    lf_lc_entry_t **buckets;
    size_t nbuckets, size, max;
    uint64_t evict_cursor;
};

lf_leadcache_t *lf_leadcache_new(size_t max_entries)
{
    lf_leadcache_t *c = lf_calloc(1, sizeof(*c));
    c->max = max_entries;
    c->nbuckets = 1024;
    c->buckets = lf_calloc(c->nbuckets, sizeof(*c->buckets));
    return c;
}

void lf_leadcache_clear(lf_leadcache_t *c)
{
    for (size_t i = 0; i < c->nbuckets; i++) {
        lf_lc_entry_t *e = c->buckets[i];
        while (e) {
            lf_lc_entry_t *next = e->next;
            lf_free(e);
            e = next;
        }
        c->buckets[i] = NULL;
    }
    c->size = 0;
}

void lf_leadcache_free(lf_leadcache_t *c)
{
    if (!c) return;
    lf_leadcache_clear(c);
    lf_free(c->buckets);
    lf_free(c);
}

static lf_lc_entry_t **lf_lc_find(lf_leadcache_t *c, const char *id, uint64_t h)
{
    lf_lc_entry_t **pp = &c->buckets[h & (c->nbuckets - 1)];
    while (*pp && ((*pp)->hash != h || strcmp((*pp)->id, id) != 0))
        pp = &(*pp)->next;
    return pp;
}

int lf_leadcache_get(lf_leadcache_t *c, const char *id, const lf_str_t **fields,
                     const lf_str_t **values, size_t *n)
{
    lf_lc_entry_t *e = *lf_lc_find(c, id, lf_hash64(id, strlen(id)));
    if (!e) return 0;
    *fields = e->fields;
    *values = e->values;
    *n = e->n;
    return 1;
}

static void lf_lc_unlink(lf_leadcache_t *c, lf_lc_entry_t **pp)
{
    lf_lc_entry_t *e = *pp;
    *pp = e->next;
    c->size--;
    lf_free(e);
}

void lf_leadcache_drop(lf_leadcache_t *c, const char *id)
{
    lf_lc_entry_t **pp = lf_lc_find(c, id, lf_hash64(id, strlen(id)));
    if (*pp) lf_lc_unlink(c, pp);
}

static void lf_lc_grow(lf_leadcache_t *c)
{
    size_t nb = c->nbuckets * 2;
    lf_lc_entry_t **b = lf_calloc(nb, sizeof(*b));
    for (size_t i = 0; i < c->nbuckets; i++) {
        lf_lc_entry_t *e = c->buckets[i];
        while (e) {
            lf_lc_entry_t *next = e->next;
            e->next = b[e->hash & (nb - 1)];
            b[e->hash & (nb - 1)] = e;
            e = next;
        }
    }
    lf_free(c->buckets);
    c->buckets = b;
    c->nbuckets = nb;
}

/* Evict one entry, walking the buckets round-robin. */
static void lf_lc_evict_one(lf_leadcache_t *c)
{
    for (size_t k = 0; k < c->nbuckets; k++) {
        size_t i = (size_t)(c->evict_cursor++ & (c->nbuckets - 1));
        if (c->buckets[i]) {
            lf_lc_unlink(c, &c->buckets[i]);
            return;
        }
    }
}

void lf_leadcache_put(lf_leadcache_t *c, const char *id, const lf_argv_t *pairs)
{
    if (c->max == 0) return;
    uint64_t h = lf_hash64(id, strlen(id));
    lf_lc_entry_t **pp = lf_lc_find(c, id, h);
    if (*pp) lf_lc_unlink(c, pp);
    size_t n = pairs->n / 2, data = 0, idlen = strlen(id);
    for (size_t i = 0; i < pairs->n; i++)
        data += pairs->lens[i];
    size_t bytes = sizeof(lf_lc_entry_t) + idlen + 1;
    bytes = (bytes + 7) & ~(size_t)7;
    size_t arrays = 2 * n * sizeof(lf_str_t);
    lf_lc_entry_t *e = lf_malloc(bytes + arrays + data);
    memcpy(e->id, id, idlen + 1);
    e->hash = h;
    e->n = n;
    e->fields = (lf_str_t *)((char *)e + bytes);
    e->values = e->fields + n;
    char *p = (char *)(e->values + n);
    for (size_t i = 0; i < n; i++) {
        memcpy(p, pairs->argv[2 * i], pairs->lens[2 * i]);
        e->fields[i] = (lf_str_t){p, (uint32_t)pairs->lens[2 * i]};
        p += pairs->lens[2 * i];
        memcpy(p, pairs->argv[2 * i + 1], pairs->lens[2 * i + 1]);
        e->values[i] = (lf_str_t){p, (uint32_t)pairs->lens[2 * i + 1]};
        p += pairs->lens[2 * i + 1];
    }
    while (c->size >= c->max)
        lf_lc_evict_one(c);
    pp = &c->buckets[h & (c->nbuckets - 1)];
    e->next = *pp;
    *pp = e;
    c->size++;
    if (c->size > c->nbuckets) lf_lc_grow(c);
}
