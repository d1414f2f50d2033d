/* Redis connections. */
#include <string.h>
#include <sys/time.h>

#include "leadflow/redis.h"

redisContext *lf_redis_connect(const lf_config_t *cfg, lf_err_t *err)
{
    return lf_redis_connect_to(cfg, cfg->redis_host, cfg->redis_port, err);
}

redisContext *lf_redis_connect_to(const lf_config_t *cfg, const char *host, int port, lf_err_t *err)
{
    struct timeval tv = {cfg->redis_timeout_ms / 1000, (cfg->redis_timeout_ms % 1000) * 1000};
    redisContext *c = redisConnectWithTimeout(host, port, tv);
    redisReply *r = NULL;
    if (!c || c->err) {
        lf_err_set(err, LF_ERR, "cannot connect to Redis at %s:%d: %s (is redis-server running?)",
                   host, port, c ? c->errstr : "out of memory");
        goto fail;
    }
    redisSetTimeout(c, tv);
    if (cfg->redis_password && cfg->redis_password[0]) {
        if (cfg->redis_user && cfg->redis_user[0])
            r = redisCommand(c, "AUTH %s %s", cfg->redis_user, cfg->redis_password);
        else
            r = redisCommand(c, "AUTH %s", cfg->redis_password);
        if (!lf_redis_reply_ok(c, r, "AUTH", err)) goto fail;
        freeReplyObject(r);
        r = NULL;
    }
    if (cfg->redis_db && !cfg->redis_cluster_nodes) { /* a cluster has database 0 only */
        r = redisCommand(c, "SELECT %d", cfg->redis_db);
        if (!lf_redis_reply_ok(c, r, "SELECT", err)) goto fail;
        freeReplyObject(r);
    }
    return c;
fail:
    if (r) freeReplyObject(r);
    if (c) redisFree(c);
    return NULL;
}

int lf_redis_reply_ok(redisContext *c, redisReply *r, const char *what, lf_err_t *err)
{
    if (!r) {
        lf_err_set(err, LF_ERR, "Redis %s failed: %s", what,
                   c && c->err ? c->errstr : "no reply (connection lost)");
        return 0;
    }
    if (r->type == REDIS_REPLY_ERROR) {
        lf_err_set(err, LF_ERR, "Redis %s failed: %.*s", what, (int)r->len, r->str);
        return 0;
    }
    return 1;
}
