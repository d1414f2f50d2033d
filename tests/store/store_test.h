/* What tests/store/main.c sets up for the store suites: a redis-server of their own, the
 * store opened on it with default settings, and a plain connection to look at it. */
#ifndef LF_STORE_TEST_H
#define LF_STORE_TEST_H

#include <hiredis/hiredis.h>

#include "leadflow/config.h"
#include "leadflow/store.h"

extern lf_config_t lf_store_test_cfg;
extern lf_store_t *lf_store_test_store;
extern redisContext *lf_store_test_redis;

void lf_store_test_flush(void); /* FLUSHALL: each test starts from an empty server */

#endif
