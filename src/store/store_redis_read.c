/* Reads of the standalone Redis back end (store.h): leads and aliases, pipelined one command
 * per key; a partition's outbox; the MQL leads due to decay out. */
#include <hiredis/hiredis.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "leadflow/keys.h"
#include "leadflow/lead_codec.h"
#include "leadflow/redis.h"
#include "store_redis_int.h"

/* Fields of a lead hash read at most (a current record has 7 + its packed parts). */
#define LF_SR_FIELDS_MAX 256

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

/* One record's reply (a lead's HGETALL, a visitor's GET) decoded into *out. */
int lf_sr_decode_reply(const redisReply *r, const char *id, lf_lead_t *out, const lf_model_t *m,
                       lf_stored_hash_t *stored, lf_arena_t *arena, lf_err_t *err)
{
    lf_str_t fields[LF_SR_FIELDS_MAX], values[LF_SR_FIELDS_MAX];
    size_t np = 0;
    if (r->type == REDIS_REPLY_STRING) { /* a visitor's record */
        fields[0] = (lf_str_t){"p", 1};
        values[0] = (lf_str_t){r->str, (uint32_t)r->len};
        np = 1;
    } else if (r->type == REDIS_REPLY_ARRAY && r->elements / 2 <= LF_SR_FIELDS_MAX) {
        np = r->elements / 2;
        for (size_t k = 0; k < np; k++) {
            fields[k] = (lf_str_t){r->element[2 * k]->str, (uint32_t)r->element[2 * k]->len};
            values[k] =
                (lf_str_t){r->element[2 * k + 1]->str, (uint32_t)r->element[2 * k + 1]->len};
        }
    } else if (r->type != REDIS_REPLY_NIL) {
        lf_err_set(err, LF_ERR, "lead %s: unexpected reply reading it (type %d)", id, r->type);
        return LF_ERR;
    }
    int rc = lf_lead_decode(out, lf_str_from(id), fields, values, np, m, err);
    if (stored) lf_sr_keep_hash(fields, values, np, arena, &stored[0]);
    return rc;
}

/* A known lead: HGETALL of its hash. A visitor: GET of its record, and where Redis may still
 * hold records of the layout before (s->legacy), HGETALL of the hash a visitor had then,
 * used when the record is not there. */
int lf_sr_load_leads(lf_store_t *base, const char *const *ids, const uint8_t *visitor, size_t n,
                     lf_lead_t *const *out, const lf_model_t *m, lf_stored_hash_t *stored,
                     lf_arena_t *arena, lf_err_t *err)
{
    lf_store_redis_t *s = (lf_store_redis_t *)base;
    if (n == 0) return LF_OK;
    if (lf_sr_connect(s, err)) return LF_ERR;
    char key[LF_KEY_MAX];
    size_t nr = 0;
    for (size_t i = 0; i < n; i++) {
        size_t idlen = strlen(ids[i]);
        int v = visitor && visitor[i];
        if (v) {
            int kl = lf_key_visitor(key, sizeof(key), LF_PREFIX(s), ids[i], idlen);
            lf_sr_append_key(s, "GET", key, (size_t)kl, NULL);
            nr++;
        }
        if (!v || s->legacy) {
            int kl = lf_key_lead(key, sizeof(key), LF_PREFIX(s), ids[i], idlen);
            lf_sr_append_key(s, "HGETALL", key, (size_t)kl, NULL);
            nr++;
        }
        if ((i + 1) % LF_FLUSH_EVERY == 0) lf_sr_flush(s);
    }
    redisReply **r = lf_malloc((nr + 1) * sizeof(*r));
    if (lf_sr_replies(s, nr, r, "reading leads", err)) {
        lf_free(r);
        return LF_ERR;
    }
    int rc = lf_sr_reply_errors(r, nr, "reading leads", err);
    for (size_t i = 0, k = 0; i < n && rc == LF_OK; i++) {
        int v = visitor && visitor[i];
        const redisReply *rec = r[k];
        if (v && s->legacy && rec->type == REDIS_REPLY_NIL) rec = r[k + 1];
        k += v && s->legacy ? 2 : 1;
        if (rc == LF_OK)
            rc = lf_sr_decode_reply(rec, ids[i], out[i], m, stored ? &stored[i] : NULL, arena, err);
    }
    for (size_t k = 0; k < nr; k++)
        freeReplyObject(r[k]);
    lf_free(r);
    return rc;
}

int lf_sr_load_aliases(lf_store_t *base, const char *const *anons, size_t n, char **out,
                       lf_arena_t *arena, lf_err_t *err)
{
    lf_store_redis_t *s = (lf_store_redis_t *)base;
    if (n == 0) return LF_OK;
    if (lf_sr_connect(s, err)) return LF_ERR;
    /* GETEX ... PX: each use keeps the link alive for another alias_ttl. */
    char key[LF_KEY_MAX], ttl[32];
    int tl = snprintf(ttl, sizeof(ttl), "%lld", (long long)s->base.cfg->alias_ttl_s * 1000);
    for (size_t i = 0; i < n; i++) {
        int kl = lf_key_alias(key, sizeof(key), LF_PREFIX(s), anons[i], strlen(anons[i]));
        const char *argv[4] = {"GETEX", key, "PX", ttl};
        size_t lens[4] = {5, (size_t)kl, 2, (size_t)tl};
        lf_sr_append(s, 4, argv, lens);
        if ((i + 1) % LF_FLUSH_EVERY == 0) lf_sr_flush(s);
    }
    redisReply **replies = lf_malloc(n * sizeof(*replies));
    if (lf_sr_replies(s, n, replies, "GETEX aliases", err)) {
        lf_free(replies);
        return LF_ERR;
    }
    int rc = lf_sr_reply_errors(replies, n, "reading aliases (GETEX)", err);
    for (size_t i = 0; i < n; i++) {
        redisReply *r = replies[i];
        out[i] = rc == LF_OK && r->type == REDIS_REPLY_STRING
                     ? lf_arena_strndup(arena, r->str, r->len)
                     : NULL;
        freeReplyObject(r);
    }
    lf_free(replies);
    return rc;
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

int lf_sr_outbox_load(lf_store_t *base, const char *topic, const int32_t *parts, size_t nparts,
                      lf_outbox_entry_t **out, size_t *n, lf_err_t *err)
{
    lf_store_redis_t *s = (lf_store_redis_t *)base;
    *out = NULL;
    *n = 0;
    if (nparts == 0) return LF_OK;
    if (lf_sr_connect(s, err)) return LF_ERR;
    char key[LF_KEY_MAX];
    for (size_t i = 0; i < nparts; i++) {
        int kl = lf_key_outbox(key, sizeof(key), LF_PREFIX(s), topic, parts[i]);
        lf_sr_append_key(s, "HGETALL", key, (size_t)kl, NULL);
    }
    redisReply **r = lf_malloc(nparts * sizeof(*r));
    if (lf_sr_replies(s, nparts, r, "HGETALL outbox", err)) {
        lf_free(r);
        return LF_ERR;
    }
    int rc = lf_sr_reply_errors(r, nparts, "HGETALL outbox", err);
    size_t total = 0;
    for (size_t i = 0; i < nparts; i++)
        total += r[i]->type == REDIS_REPLY_ARRAY ? r[i]->elements / 2 : 0;
    if (rc == LF_OK && total) {
        *out = lf_calloc(total, sizeof(**out));
        for (size_t i = 0; i < nparts; i++)
            for (size_t k = 0; r[i]->type == REDIS_REPLY_ARRAY && k + 1 < r[i]->elements; k += 2) {
                lf_outbox_entry_t *e = &(*out)[(*n)++];
                e->id = lf_strndup(r[i]->element[k]->str, r[i]->element[k]->len);
                e->payload = lf_strndup(r[i]->element[k + 1]->str, r[i]->element[k + 1]->len);
                e->len = r[i]->element[k + 1]->len;
                e->partition = parts[i];
            }
    }
    for (size_t i = 0; i < nparts; i++)
        freeReplyObject(r[i]);
    lf_free(r);
    return rc;
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

int lf_sr_scan_index(lf_store_t *base, lf_store_index_t index, uint64_t *cursor, size_t count,
                     char ***ids, size_t *n, lf_arena_t *arena, lf_err_t *err)
{
    lf_store_redis_t *s = (lf_store_redis_t *)base;
    *ids = NULL;
    *n = 0;
    if (lf_sr_connect(s, err)) return LF_ERR;
    char key[LF_KEY_MAX];
    int kl = index == LF_INDEX_TOP ? lf_key_top(key, sizeof(key), LF_PREFIX(s))
                                   : lf_key_stage(key, sizeof(key), LF_PREFIX(s), LF_STAGE_MQL);
    redisReply *r = redisCommand(s->c, "ZSCAN %b %llu COUNT %d", key, (size_t)kl,
                                 (unsigned long long)*cursor, (int)count);
    if (!lf_redis_reply_ok(s->c, r, "ZSCAN", err) || r->type != REDIS_REPLY_ARRAY ||
        r->elements != 2 || r->element[0]->type != REDIS_REPLY_STRING ||
        r->element[1]->type != REDIS_REPLY_ARRAY) {
        if (r && !err->msg[0]) lf_err_set(err, LF_ERR, "ZSCAN %s: unexpected reply", key);
        if (r) freeReplyObject(r);
        if (s->c && s->c->err) lf_sr_drop_all(s);
        return LF_ERR;
    }
    *cursor = strtoull(r->element[0]->str, NULL, 10);
    const redisReply *m = r->element[1];
    *ids = lf_arena_alloc(arena, (m->elements / 2 + 1) * sizeof(**ids));
    for (size_t i = 0; i + 1 < m->elements; i += 2) /* member, score */
        (*ids)[(*n)++] = lf_arena_strndup(arena, m->element[i]->str, m->element[i]->len);
    freeReplyObject(r);
    return LF_OK;
}
