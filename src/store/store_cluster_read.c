/* Reads of the Redis Cluster back end (store.h): leads (with the visitors they absorbed whose
 * own keys are not cleared yet) and aliases, routed by slot and pipelined per node; a
 * partition's outbox, the MQLs due and index scans, over every slot's shard. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "leadflow/keys.h"
#include "leadflow/lead_codec.h"
#include "leadflow/lead_pack.h"
#include "leadflow/log.h"
#include "store_cluster_int.h"

/* The visitors a lead absorbed (HGETALL <p>absorbed:{id}) into the stored hash. */
static void lf_scl_keep_absorbed(const redisReply *r, lf_stored_hash_t *out, lf_arena_t *arena)
{
    if (r->type != REDIS_REPLY_ARRAY || r->elements < 2) return;
    size_t np = r->elements / 2;
    lf_str_t *anon = lf_arena_alloc(arena, np * sizeof(*anon));
    uint64_t *ver = lf_arena_alloc(arena, np * sizeof(*ver));
    for (size_t k = 0; k < np; k++) {
        const redisReply *f = r->element[2 * k], *v = r->element[2 * k + 1];
        anon[k] = (lf_str_t){lf_arena_strndup(arena, f->str, f->len), (uint32_t)f->len};
        ver[k] = v->type == REDIS_REPLY_STRING ? strtoull(v->str, NULL, 10) : 0;
    }
    out->absorbed = anon;
    out->absorbed_versions = ver;
    out->nabsorbed = np;
}

int lf_scl_load_leads(lf_store_t *base, const char *const *ids, const uint8_t *visitor, size_t n,
                      lf_lead_t *const *out, const lf_model_t *m, lf_stored_hash_t *stored,
                      lf_arena_t *arena, lf_err_t *err)
{
    lf_store_cluster_t *s = (lf_store_cluster_t *)base;
    if (n == 0) return LF_OK;
    lf_arena_t *a = &s->arena;
    lf_cc_cmd_t *cmds = lf_malloc(2 * n * sizeof(*cmds));
    size_t nc = 0;
    for (size_t i = 0; i < n; i++) {
        size_t idlen = strlen(ids[i]);
        char *key = lf_arena_alloc(a, LF_KEY_MAX);
        int v = visitor && visitor[i];
        int kl = v ? lf_key_visitor(key, LF_KEY_MAX, LF_SCL_PREFIX(s), ids[i], idlen)
                   : lf_key_lead(key, LF_KEY_MAX, LF_SCL_PREFIX(s), ids[i], idlen);
        uint16_t slot = lf_cluster_slot(key, (size_t)kl);
        lf_argv_t c;
        lf_argv_init_scratch(&c, a);
        lf_argv_adds(&c, v ? "GET" : "HGETALL");
        lf_argv_add_ref(&c, key, (size_t)kl);
        cmds[nc++] = lf_scl_cmd(slot, &c);
        if (v) continue;
        char *ak = lf_arena_alloc(a, LF_KEY_MAX);
        int akl = lf_key_absorbed(ak, LF_KEY_MAX, LF_SCL_PREFIX(s), ids[i], idlen);
        lf_argv_t h;
        lf_argv_init_scratch(&h, a);
        lf_argv_adds(&h, "HGETALL");
        lf_argv_add_ref(&h, ak, (size_t)akl);
        cmds[nc++] = lf_scl_cmd(slot, &h);
    }
    int rc = lf_cc_run(s->cc, cmds, nc, err);
    for (size_t k = 0; rc == LF_OK && k < nc; k++)
        if (cmds[k].reply->type == REDIS_REPLY_ERROR) {
            lf_err_set(err, LF_ERR, "reading leads: Redis answered %.*s", (int)cmds[k].reply->len,
                       cmds[k].reply->str);
            rc = LF_ERR;
        }
    for (size_t i = 0, k = 0; rc == LF_OK && i < n; i++) {
        int v = visitor && visitor[i];
        rc = lf_sr_decode_reply(cmds[k].reply, ids[i], out[i], m, stored ? &stored[i] : NULL, arena,
                                err);
        if (!v && stored && rc == LF_OK) lf_scl_keep_absorbed(cmds[k + 1].reply, &stored[i], arena);
        k += v ? 1 : 2;
    }
    lf_cc_free_replies(cmds, nc);
    lf_free(cmds);
    lf_arena_reset(a);
    return rc;
}

/* A visitor left claimed after its lead absorbed it (a write stopped between the lead's unit
 * and the visitor's): the lead's record names the visitor version it holds, the visitor still
 * has that version. Its clearing is finished here, at the first read of the anonymous id, so
 * that the id resolves to the lead: its events then count for the lead (which recognises those
 * it absorbed) and are not applied again to the stale visitor. Returns 1 when it did. */
static int lf_scl_finish_merge(lf_store_cluster_t *s, const char *anon, const char *lead,
                               lf_err_t *err)
{
    const char *p = LF_SCL_PREFIX(s);
    char vk[LF_KEY_MAX], bk[LF_KEY_MAX];
    size_t al = strlen(anon);
    int vkl = lf_key_visitor(vk, sizeof(vk), p, anon, al);
    int bkl = lf_key_absorbed(bk, sizeof(bk), p, lead, strlen(lead));
    const char *gv[2] = {"GET", vk}, *hb[3] = {"HGET", bk, anon};
    size_t gvl[2] = {3, (size_t)vkl}, hbl[3] = {4, (size_t)bkl, al};
    lf_cc_cmd_t cmds[2] = {{lf_cluster_slot(vk, (size_t)vkl), 2, gv, gvl, NULL},
                           {lf_cluster_slot(bk, (size_t)bkl), 3, hb, hbl, NULL}};
    if (lf_cc_run(s->cc, cmds, 2, err) != LF_OK) return LF_ERR;
    uint64_t now = 0, absorbed = 0;
    int have = cmds[1].reply->type == REDIS_REPLY_STRING;
    if (cmds[0].reply->type == REDIS_REPLY_STRING)
        lf_lead_pack_version(cmds[0].reply->str, cmds[0].reply->len, &now);
    if (have) absorbed = strtoull(cmds[1].reply->str, NULL, 10);
    lf_cc_free_replies(cmds, 2);
    if (!have || absorbed != now) return 0; /* claimed, not absorbed yet: the merge is redone */
    int ok = 0;
    if (lf_scl_visitor_unit(s, lead, anon, now, 0, &ok, err) != LF_OK) return LF_ERR;
    if (ok) lf_log("info", "visitor %s: its merge into lead %s finished", anon, lead);
    return ok;
}

int lf_scl_load_aliases(lf_store_t *base, const char *const *anons, size_t n, char **out,
                        lf_arena_t *arena, lf_err_t *err)
{
    lf_store_cluster_t *s = (lf_store_cluster_t *)base;
    if (n == 0) return LF_OK;
    lf_arena_t *a = &s->arena;
    char ttl[32];
    int tl = snprintf(ttl, sizeof(ttl), "%lld", (long long)base->cfg->alias_ttl_s * 1000);
    /* Per id: GETEX of its alias, and GET of the mark of a merge in progress (same slot). */
    lf_cc_cmd_t *cmds = lf_malloc(2 * n * sizeof(*cmds));
    for (size_t i = 0; i < n; i++) {
        char *key = lf_arena_alloc(a, LF_KEY_MAX), *mk = lf_arena_alloc(a, LF_KEY_MAX);
        size_t al = strlen(anons[i]);
        int kl = lf_key_alias(key, LF_KEY_MAX, LF_SCL_PREFIX(s), anons[i], al);
        int ml = lf_key_merging(mk, LF_KEY_MAX, LF_SCL_PREFIX(s), anons[i], al);
        uint16_t slot = lf_cluster_slot(key, (size_t)kl);
        lf_argv_t c, m;
        lf_argv_init_scratch(&c, a);
        lf_argv_adds(&c, "GETEX");
        lf_argv_add_ref(&c, key, (size_t)kl);
        lf_argv_add_ref(&c, "PX", 2);
        lf_argv_add_ref(&c, ttl, (size_t)tl);
        lf_argv_init_scratch(&m, a);
        lf_argv_adds(&m, "GET");
        lf_argv_add_ref(&m, mk, (size_t)ml);
        cmds[2 * i] = lf_scl_cmd(slot, &c);
        cmds[2 * i + 1] = lf_scl_cmd(slot, &m);
    }
    int rc = lf_cc_run(s->cc, cmds, 2 * n, err);
    for (size_t i = 0; rc == LF_OK && i < n; i++) {
        const redisReply *r = cmds[2 * i].reply, *mark = cmds[2 * i + 1].reply;
        if (r->type == REDIS_REPLY_ERROR || mark->type == REDIS_REPLY_ERROR) {
            const redisReply *e = r->type == REDIS_REPLY_ERROR ? r : mark;
            lf_err_set(err, LF_ERR, "reading aliases (GETEX): Redis answered %.*s", (int)e->len,
                       e->str);
            rc = LF_ERR;
            break;
        }
        out[i] = r->type == REDIS_REPLY_STRING ? lf_arena_strndup(arena, r->str, r->len) : NULL;
        if (out[i] || mark->type != REDIS_REPLY_STRING) continue;
        char *lead = lf_arena_strndup(arena, mark->str, mark->len);
        int done = lf_scl_finish_merge(s, anons[i], lead, err);
        if (done < 0) rc = LF_ERR;
        if (done > 0) out[i] = lead;
    }
    lf_cc_free_replies(cmds, 2 * n);
    lf_free(cmds);
    lf_arena_reset(a);
    return rc;
}

/*---- Over every shard --------------------------------------------------------------------*/

typedef struct {
    lf_outbox_entry_t *e;
    size_t n, cap;
    const int32_t *parts;
    size_t nparts;
} lf_scl_outbox_t;

static void lf_scl_build_hgetall(void *ctx, uint16_t slot, const char *key, size_t kl, lf_argv_t *a)
{
    (void)ctx;
    (void)slot;
    lf_argv_adds(a, "HGETALL");
    lf_argv_add_ref(a, key, kl);
}

static int lf_scl_reply_error(const redisReply *r, const char *what, lf_err_t *err)
{
    if (r->type != REDIS_REPLY_ERROR) return 0;
    lf_err_set(err, LF_ERR, "%s: Redis answered %.*s", what, (int)r->len, r->str);
    return 1;
}

/* An outbox shard's entries of the partitions asked for ("<partition>:<transition_id>"). */
static int lf_scl_take_outbox(void *ctx, uint16_t slot, const redisReply *r, lf_err_t *err)
{
    (void)slot;
    lf_scl_outbox_t *o = ctx;
    if (lf_scl_reply_error(r, "HGETALL outbox", err)) return LF_ERR;
    for (size_t i = 0; r->type == REDIS_REPLY_ARRAY && i + 1 < r->elements; i += 2) {
        const redisReply *f = r->element[i];
        size_t d = 0;
        int64_t part = 0;
        while (d < f->len && d < 10 && f->str[d] >= '0' && f->str[d] <= '9')
            part = part * 10 + (f->str[d++] - '0');
        if (d == 0 || d >= f->len || f->str[d] != ':') continue; /* not an entry of ours */
        int wanted = 0;
        for (size_t k = 0; k < o->nparts && !wanted; k++)
            wanted = o->parts[k] == part;
        if (!wanted) continue;
        if (o->n == o->cap) {
            o->cap = o->cap ? o->cap * 2 : 64;
            o->e = lf_realloc(o->e, o->cap * sizeof(*o->e));
        }
        lf_outbox_entry_t *x = &o->e[o->n++];
        x->id = lf_strndup(f->str + d + 1, f->len - d - 1);
        x->payload = lf_strndup(r->element[i + 1]->str, r->element[i + 1]->len);
        x->len = r->element[i + 1]->len;
        x->partition = (int32_t)part;
    }
    return LF_OK;
}

/* Every slot's outbox shard, once, whatever the number of partitions asked for. */
int lf_scl_outbox_load(lf_store_t *base, const char *topic, const int32_t *parts, size_t nparts,
                       lf_outbox_entry_t **out, size_t *n, lf_err_t *err)
{
    lf_store_cluster_t *s = (lf_store_cluster_t *)base;
    *out = NULL;
    *n = 0;
    if (nparts == 0) return LF_OK;
    char key[LF_KEY_MAX];
    int kl = lf_key_outbox_slot(key, sizeof(key), LF_SCL_PREFIX(s), topic);
    lf_scl_outbox_t o = {NULL, 0, 0, parts, nparts};
    int rc =
        lf_scl_each_shard(s, key, (size_t)kl, lf_scl_build_hgetall, lf_scl_take_outbox, &o, err);
    if (rc != LF_OK) {
        lf_outbox_entries_free(o.e, o.n);
        return rc;
    }
    *out = o.e;
    *n = o.n;
    return LF_OK;
}

/* The ids of many shard replies, into an arena list. */
typedef struct {
    char **ids;
    size_t n, cap, max;
    lf_arena_t *arena;
    long long until;
    int pairs; /* member, score pairs (WITHSCORES) */
} lf_scl_ids_t;

static void lf_scl_ids_add(lf_scl_ids_t *x, const char *s, size_t len)
{
    if (x->n == x->cap) {
        size_t cap = x->cap ? x->cap * 2 : 256;
        char **grown = lf_arena_alloc(x->arena, (cap + 1) * sizeof(*grown));
        if (x->n) memcpy(grown, x->ids, x->n * sizeof(*grown));
        x->ids = grown;
        x->cap = cap;
    }
    x->ids[x->n++] = lf_arena_strndup(x->arena, s, len);
}

static void lf_scl_build_due(void *ctx, uint16_t slot, const char *key, size_t kl, lf_argv_t *a)
{
    (void)slot;
    const lf_scl_ids_t *x = ctx;
    lf_argv_adds(a, "ZRANGEBYSCORE");
    lf_argv_add_ref(a, key, kl);
    lf_argv_adds(a, "-inf");
    lf_argv_add_i64(a, x->until);
    lf_argv_adds(a, "LIMIT");
    lf_argv_adds(a, "0");
    lf_argv_add_i64(a, (long long)x->max);
}

static int lf_scl_take_ids(void *ctx, uint16_t slot, const redisReply *r, lf_err_t *err)
{
    (void)slot;
    lf_scl_ids_t *x = ctx;
    if (lf_scl_reply_error(r, "reading an index shard", err)) return LF_ERR;
    size_t step = x->pairs ? 2 : 1;
    for (size_t i = 0; r->type == REDIS_REPLY_ARRAY && i < r->elements && x->n < x->max; i += step)
        lf_scl_ids_add(x, r->element[i]->str, r->element[i]->len);
    return LF_OK;
}

/* Every shard of lf:stage:mql asked for its due members (up to max each): one sweep reads
 * 16384 small ranges, pipelined per node (bench/cluster_shards.py measures it). */
int lf_scl_due_mql(lf_store_t *base, int64_t until_ms, size_t max, char ***ids, size_t *n,
                   lf_arena_t *arena, lf_err_t *err)
{
    lf_store_cluster_t *s = (lf_store_cluster_t *)base;
    char key[LF_KEY_MAX];
    int kl = lf_key_stage(key, sizeof(key), LF_SCL_PREFIX(s), LF_STAGE_MQL);
    lf_scl_ids_t x = {NULL, 0, 0, max, arena, (long long)until_ms, 0};
    int rc = lf_scl_each_shard(s, key, (size_t)kl, lf_scl_build_due, lf_scl_take_ids, &x, err);
    *ids = x.ids;
    *n = rc == LF_OK ? x.n : 0;
    return rc;
}

/* A scan over an index's shards, a block of slots per step: *cursor is the next slot + 1
 * (0: start, and 0 again when done). A shard is small (lf:top's is capped; a stage's holds
 * its slot's share), so each is read whole. */
#define LF_SCL_SCAN_SLOTS 256

int lf_scl_scan_index(lf_store_t *base, lf_store_index_t index, uint64_t *cursor, size_t count,
                      char ***ids, size_t *n, lf_arena_t *arena, lf_err_t *err)
{
    lf_store_cluster_t *s = (lf_store_cluster_t *)base;
    (void)count;
    *ids = NULL;
    *n = 0;
    uint64_t from = *cursor ? *cursor - 1 : 0;
    if (from >= LF_CLUSTER_SLOTS) {
        *cursor = 0;
        return LF_OK;
    }
    char key[LF_KEY_MAX];
    int kl = index == LF_INDEX_TOP ? lf_key_top(key, sizeof(key), LF_SCL_PREFIX(s))
                                   : lf_key_stage(key, sizeof(key), LF_SCL_PREFIX(s), LF_STAGE_MQL);
    lf_arena_t *a = &s->arena;
    lf_cc_cmd_t cmds[LF_SCL_SCAN_SLOTS];
    size_t nc = 0;
    for (uint64_t k = from; k < from + LF_SCL_SCAN_SLOTS && k < LF_CLUSTER_SLOTS; k++) {
        char *sk = lf_scl_shard_key(a, key, (size_t)kl, (uint16_t)k);
        lf_argv_t c;
        lf_argv_init_scratch(&c, a);
        lf_argv_adds(&c, "ZRANGE");
        lf_argv_adds(&c, sk);
        lf_argv_adds(&c, "0");
        lf_argv_adds(&c, "-1");
        cmds[nc++] = lf_scl_cmd((uint16_t)k, &c);
    }
    lf_scl_ids_t x = {NULL, 0, 0, (size_t)-1, arena, 0, 0};
    int rc = lf_cc_run(s->cc, cmds, nc, err);
    for (size_t i = 0; rc == LF_OK && i < nc; i++)
        rc = lf_scl_take_ids(&x, cmds[i].slot, cmds[i].reply, err);
    if (rc == LF_OK) lf_cc_free_replies(cmds, nc);
    lf_arena_reset(a);
    if (rc != LF_OK) return LF_ERR;
    *ids = x.ids;
    *n = x.n;
    uint64_t next = from + nc;
    *cursor = next >= LF_CLUSTER_SLOTS ? 0 : next + 1;
    return LF_OK;
}
