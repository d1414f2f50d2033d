/* The leads an instance has written, kept in memory in their encoded form (the field/value
 * pairs of their Redis hash) with the version written, so a batch need not read them back
 * from Redis. Safe because every write checks the version: a lead changed elsewhere makes
 * the write fail, the entry is dropped and the lead is read again. Bounded: past `max`
 * entries, arbitrary entries are evicted (they are only a copy). */
#ifndef LEADFLOW_LEADCACHE_H
#define LEADFLOW_LEADCACHE_H

#include <stddef.h>
#include <stdint.h>

#include "leadflow/alloc.h"
#include "leadflow/argv.h"
#include "leadflow/common.h"

typedef struct lf_leadcache lf_leadcache_t;

lf_leadcache_t *lf_leadcache_new(size_t max_entries);
void lf_leadcache_free(lf_leadcache_t *c);
void lf_leadcache_clear(lf_leadcache_t *c);

/* Found: fills *fields and *values (n pairs, pointing into the cache, valid until the next
 * put/drop/clear) and returns 1. */
int lf_leadcache_get(lf_leadcache_t *c, const char *id, const lf_str_t **fields,
                     const lf_str_t **values, size_t *n);
/* Store the lead's full field list (pairs in argv). */
void lf_leadcache_put(lf_leadcache_t *c, const char *id, const lf_argv_t *pairs);
void lf_leadcache_drop(lf_leadcache_t *c, const char *id);

#endif
