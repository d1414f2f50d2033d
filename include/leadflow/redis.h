/* Connecting to Redis as the rules file says (host, port, ACL user/password, db, timeout),
 * with an error a user can act on. */
#ifndef LEADFLOW_REDIS_H
#define LEADFLOW_REDIS_H

#include <hiredis/hiredis.h>

#include "leadflow/common.h"
#include "leadflow/config.h"

/* Connect, AUTH and SELECT. NULL with err set on failure. */
redisContext *lf_redis_connect(const lf_config_t *cfg, lf_err_t *err);
/* The same to another host and port (a node of a Redis Cluster). */
redisContext *lf_redis_connect_to(const lf_config_t *cfg, const char *host, int port,
                                  lf_err_t *err);

/* A reply is usable: not NULL, not an error. Sets err from the context or reply. */
int lf_redis_reply_ok(redisContext *c, redisReply *r, const char *what, lf_err_t *err);

#endif
