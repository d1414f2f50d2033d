/* What tests/store/main.c sets up for the store suites: a redis-server of their own, the
 * store opened on it with default settings, and a plain connection to look at it; and the
 * lead writes and looks the write suites share (tests/store/write_fixture.c). */
#ifndef LF_STORE_TEST_H
#define LF_STORE_TEST_H

#include <hiredis/hiredis.h>

#include "leadflow/config.h"
#include "leadflow/store.h"

extern lf_config_t lf_store_test_cfg;
extern lf_store_t *lf_store_test_store;
extern redisContext *lf_store_test_redis;

void lf_store_test_flush(void); /* FLUSHALL: each test starts from an empty server */
/* A free loopback TCP port (bound and released), or -1. */
int lf_store_test_free_port(void);

/*---- Lead writes (write_fixture.c) ----*/

/* A new store handle on the test server (another instance), fenced: it writes under the
 * store epoch. NULL if either step failed. */
lf_store_t *lf_store_test_open(const lf_config_t *cfg);

/* One lead write as the pipeline hands it to write_leads: lead `id` (stage lead, version
 * expected + 1) encoded whole by lf_lead_encode, computed from version `expected` (0: a new
 * lead, nothing stored), with one transition "<id>@<version>/<writer>" into partition 0's
 * outbox and the progress counter "0.applied" + 1. *lead must outlive w; lists in `a`. */
void lf_store_test_write(lf_store_write_t *w, lf_lead_t *lead, const char *id, uint64_t expected,
                         const char *writer, lf_arena_t *a);
/* The same with `whole` holding the given field/value pairs instead of an encoded lead, and
 * no transition: for the hash layout tests. */
void lf_store_test_write_pairs(lf_store_write_t *w, lf_lead_t *lead, const char *id,
                               uint64_t expected, const lf_argv_t *pairs, lf_arena_t *a);

/* A reply to a command on the plain connection, as a number (-1: nil or not a number) or a
 * string ("" for nil; a static buffer). */
long long lf_store_test_int(const char *fmt, ...);
const char *lf_store_test_str(const char *fmt, ...);
/* The hash at `key` holds exactly these field/value pairs (HGETALL: no more, no fewer). */
int lf_store_test_hash_is(const char *key, const lf_argv_t *pairs);
/* Calls of a command since the last CONFIG RESETSTAT (INFO commandstats; "hset"). */
long long lf_store_test_calls(const char *cmd);

#endif
