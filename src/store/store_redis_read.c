/* Reads of the standalone Redis back end (store.h): leads and aliases, pipelined one command
 * per key; a partition's outbox; the MQL leads due to decay out. */
#include <hiredis/hiredis.h>
#include <string.h>

#include "leadflow/keys.h"
#include "leadflow/lead_codec.h"
#include "leadflow/redis.h"
#include "store_redis_int.h"

/* One `CMD key` per id (the key named by keyfn), pipelined; the n replies (caller frees
 * each and the array), or NULL with err set. */
typedef int (*lf_keyfn_t)(char *buf, size_t cap, const char *prefix, const char *id, size_t len);
static redisReply **lf_sr_per_key(lf_store_redis_t *s, const char *cmd, lf_keyfn_t keyfn,
                                  const char *const *ids, size_t n, lf_err_t *err)
{
    char key[LF_KEY_MAX];
    for (size_t i = 0; i < n; i++) {
        int kl = keyfn(key, sizeof(key), LF_PREFIX(s), ids[i], strlen(ids[i]));
        const char *argv[2] = {cmd, key};
        size_t lens[2] = {strlen(cmd), (size_t)kl};
        lf_sr_append(s, 2, argv, lens);
        if ((i + 1) % LF_FLUSH_EVERY == 0) lf_sr_flush(s);
    }
    redisReply **replies = lf_malloc(n * sizeof(*replies));
    if (lf_sr_replies(s, n, replies, cmd, err)) {
        lf_free(replies);
        return NULL;
    }
    return replies;
}

/* The pairs of an HGETALL reply, copied into the arena (the reply is freed). */
static void lf_sr_keep_hash(const lf_str_t *fields, const lf_str_t *values, size_t np,
                            lf_arena_t *a, lf_stored_hash_t *out)
{
    size_t bytes = 0;
    for (size_t k = 0; k < np; k++)
        bytes += fields[k].len + values[k].len;
    lf_str_t *f = lf_arena_alloc(a, (2 * np + 1) * sizeof(*f));
    char *d = lf_arena_alloc(a, bytes + 1);
    for (size_t k = 0; k < 2 * np; k++) {
        const lf_str_t *src = k < np ? &fields[k] : &values[k - np];
        memcpy(d, src->ptr, src->len);
        f[k] = (lf_str_t){d, src->len};
        d += src->len;
    }
    *out = (lf_stored_hash_t){f, f + np, np};
}

int lf_sr_load_leads(lf_store_t *base, const char *const *ids, size_t n, lf_lead_t *const *out,
                     const lf_model_t *m, lf_stored_hash_t *stored, lf_arena_t *arena,
                     lf_err_t *err)
{
    lf_store_redis_t *s = (lf_store_redis_t *)base;
    if (n == 0) return LF_OK;
    if (lf_sr_connect(s, err)) return LF_ERR;
    redisReply **replies = lf_sr_per_key(s, "HGETALL", lf_key_lead, ids, n, err);
    if (!replies) return LF_ERR;
    int rc = LF_OK;
    lf_str_t fields[256], values[256];
    for (size_t i = 0; i < n; i++) {
        redisReply *r = replies[i];
        if (rc == LF_OK && (r->type != REDIS_REPLY_ARRAY || r->elements / 2 > 256)) {
            lf_err_set(err, LF_ERR, "lead %s: unexpected reply to HGETALL (type %d)", ids[i],
                       r->type);
            rc = LF_ERR;
        }
        if (rc == LF_OK) {
            size_t np = r->elements / 2;
            for (size_t k = 0; k < np; k++) {
                fields[k] = (lf_str_t){r->element[2 * k]->str, (uint32_t)r->element[2 * k]->len};
                values[k] =
                    (lf_str_t){r->element[2 * k + 1]->str, (uint32_t)r->element[2 * k + 1]->len};
            }
            rc = lf_lead_decode(out[i], lf_str_from(ids[i]), fields, values, np, m, err);
            if (stored) lf_sr_keep_hash(fields, values, np, arena, &stored[i]);
        }
        freeReplyObject(r);
    }
    lf_free(replies);
    return rc;
}

int lf_sr_load_aliases(lf_store_t *base, const char *const *anons, size_t n, char **out,
                       lf_arena_t *arena, lf_err_t *err)
{
    lf_store_redis_t *s = (lf_store_redis_t *)base;
    if (n == 0) return LF_OK;
    if (lf_sr_connect(s, err)) return LF_ERR;
    redisReply **replies = lf_sr_per_key(s, "GET", lf_key_alias, anons, n, err);
    if (!replies) return LF_ERR;
    for (size_t i = 0; i < n; i++) {
        redisReply *r = replies[i];
        out[i] = r->type == REDIS_REPLY_STRING ? lf_arena_strndup(arena, r->str, r->len) : NULL;
        freeReplyObject(r);
    }
    lf_free(replies);
    return LF_OK;
}

/*---- Outboxes and the decay sweep's MQLs -----------------------------------------------*/

void lf_outbox_entries_free(lf_outbox_entry_t *e, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        lf_free(e[i].id);
        lf_free(e[i].payload);
    }
    lf_free(e);
}

int lf_sr_outbox_load(lf_store_t *base, const char *topic, int32_t part, lf_outbox_entry_t **out,
                      size_t *n, lf_err_t *err)
{
    lf_store_redis_t *s = (lf_store_redis_t *)base;
    *out = NULL;
    *n = 0;
    if (lf_sr_connect(s, err)) return LF_ERR;
    char key[LF_KEY_MAX];
    int kl = lf_key_outbox(key, sizeof(key), LF_PREFIX(s), topic, part);
    redisReply *r = redisCommand(s->c, "HGETALL %b", key, (size_t)kl);
    if (!lf_redis_reply_ok(s->c, r, "HGETALL outbox", err) || r->type != REDIS_REPLY_ARRAY) {
        if (r) freeReplyObject(r);
        return LF_ERR;
    }
    size_t np = r->elements / 2;
    if (np) {
        *out = lf_calloc(np, sizeof(**out));
        for (size_t i = 0; i < np; i++) {
            (*out)[i].id = lf_strndup(r->element[2 * i]->str, r->element[2 * i]->len);
            (*out)[i].payload = lf_strndup(r->element[2 * i + 1]->str, r->element[2 * i + 1]->len);
            (*out)[i].len = r->element[2 * i + 1]->len;
        }
    }
    *n = np;
    freeReplyObject(r);
    return LF_OK;
}

int lf_sr_due_mql(lf_store_t *base, int64_t until_ms, size_t max, char ***ids, size_t *n,
                  lf_arena_t *arena, lf_err_t *err)
{
    lf_store_redis_t *s = (lf_store_redis_t *)base;
    *ids = NULL;
    *n = 0;
    if (lf_sr_connect(s, err)) return LF_ERR;
    char key[LF_KEY_MAX];
    int kl = lf_key_stage(key, sizeof(key), LF_PREFIX(s), LF_STAGE_MQL);
    redisReply *r = redisCommand(s->c, "ZRANGEBYSCORE %b -inf %lld LIMIT 0 %d", key, (size_t)kl,
                                 (long long)until_ms, (int)max);
    if (!lf_redis_reply_ok(s->c, r, "ZRANGEBYSCORE mql", err) || r->type != REDIS_REPLY_ARRAY) {
        if (r) freeReplyObject(r);
        if (s->c && s->c->err) lf_sr_drop_all(s);
        return LF_ERR;
    }
    *ids = lf_arena_alloc(arena, (r->elements + 1) * sizeof(**ids));
    for (size_t i = 0; i < r->elements; i++)
        (*ids)[i] = lf_arena_strndup(arena, r->element[i]->str, r->element[i]->len);
    *n = r->elements;
    freeReplyObject(r);
    return LF_OK;
}
