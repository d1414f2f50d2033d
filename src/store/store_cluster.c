/* The Redis Cluster back end (store.h): its handle, the node stores that run each primary's
 * lead transactions, WAIT for the replicas, the heartbeat, and the ops table. */
#include <stdio.h>
#include <string.h>

#include "leadflow/keys.h"
#include "leadflow/log.h"
#include "store_cluster_int.h"

/* How often the heartbeat reads the slot map again. */
#define LF_SCL_MAP_EVERY_MS 5000

/* Commands per lf_cc_run when every shard of a key is read: bounds the memory of a round. */
#define LF_SCL_BLOCK 2048

void lf_scl_shard(char *buf, size_t cap, uint16_t slot)
{
    snprintf(buf, cap, ":{%s}", lf_cc_tags()->tag[slot]);
}

int lf_scl_retryable(const lf_err_t *err)
{
    static const char *const words[] = {"MOVED",       "ASK",        "TRYAGAIN",
                                        "CLUSTERDOWN", "not served", "connection",
                                        "Connection",  "no reply",   "answered CLUSTER"};
    for (size_t i = 0; i < sizeof(words) / sizeof(words[0]); i++)
        if (strstr(err->msg, words[i])) return 1;
    return 0;
}

lf_store_redis_t *lf_scl_node_for(lf_store_cluster_t *s, uint16_t slot, lf_scl_node_t **node,
                                  lf_err_t *err)
{
    int ni = lf_cc_primary(s->cc, slot, err);
    if (ni < 0) return NULL;
    const lf_cluster_node_t *n = lf_cluster_map_node(lf_cc_map(s->cc), ni);
    for (size_t i = 0; i < s->nnodes; i++)
        if (s->nodes[i].port == n->port && strcmp(s->nodes[i].host, n->host) == 0) {
            lf_scl_node_t *x = &s->nodes[i];
            snprintf(x->st->epoch, sizeof(x->st->epoch), "%s", s->epoch);
            if (node) *node = x;
            return x->st;
        }
    if (s->nnodes == s->capnodes) {
        s->capnodes = s->capnodes ? s->capnodes * 2 : 8;
        s->nodes = lf_realloc(s->nodes, s->capnodes * sizeof(*s->nodes));
    }
    lf_scl_node_t *x = &s->nodes[s->nnodes++];
    memset(x, 0, sizeof(*x));
    snprintf(x->host, sizeof(x->host), "%s", n->host);
    x->port = n->port;
    x->st = lf_sr_open_node(s->base.cfg, s->prefix, s->base.group, n->host, n->port,
                            lf_cc_tags()->tag[slot]);
    x->st->base.rtt = s->base.rtt;
    snprintf(x->st->epoch, sizeof(x->st->epoch), "%s", s->epoch);
    if (node) *node = x;
    return x->st;
}

/* WAIT on one connection: how many replicas have its writes (-1: no answer). */
static long long lf_scl_wait_conn(redisContext *c, int want, int timeout_ms)
{
    redisReply *r = redisCommand(c, "WAIT %d %d", want, timeout_ms);
    long long got = r && r->type == REDIS_REPLY_INTEGER ? r->integer : -1;
    if (r) freeReplyObject(r);
    return got;
}

int lf_scl_wait(lf_store_cluster_t *s, lf_err_t *err)
{
    const lf_config_t *cfg = s->base.cfg;
    int rc = LF_OK;
    for (size_t i = 0; i < s->nnodes; i++) {
        lf_scl_node_t *x = &s->nodes[i];
        if (!x->wrote) continue;
        x->wrote = 0;
        if (cfg->redis_wait_replicas <= 0 || rc != LF_OK) continue;
        /* At most the replicas the map shows (a failed one is left out of CLUSTER SLOTS). */
        int want = cfg->redis_wait_replicas;
        const lf_cluster_map_t *m = lf_cc_map(s->cc);
        for (size_t k = 0; k < m->nnodes; k++)
            if (m->nodes[k].port == x->port && strcmp(m->nodes[k].host, x->host) == 0) {
                size_t have = lf_cc_replicas(s->cc, (int)k);
                if ((size_t)want > have) want = (int)have;
            }
        if (want <= 0) continue;
        redisContext *conns[2] = {x->st->c, x->st->c2};
        for (int j = 0; j < 2 && rc == LF_OK; j++) {
            if (!conns[j]) continue;
            long long got = lf_scl_wait_conn(conns[j], want, cfg->redis_wait_timeout_ms);
            if (got >= want) continue;
            lf_err_set(err, LF_ERR,
                       "writes on Redis Cluster primary %s:%d reached %lld of %d replica(s) "
                       "within %d ms (redis.cluster.wait_replicas; connection lost)",
                       x->host, x->port, got < 0 ? 0 : got, want, cfg->redis_wait_timeout_ms);
            rc = LF_ERR;
        }
        if (rc != LF_OK) lf_sr_drop_all(x->st);
    }
    if (rc != LF_OK) {
        lf_err_t ignored = {0};
        lf_cc_refresh(s->cc, &ignored);
    }
    return rc;
}

int lf_scl_each_shard(lf_store_cluster_t *s, const char *key, size_t kl, lf_scl_build_fn build,
                      lf_scl_reply_fn each, void *ctx, lf_err_t *err)
{
    lf_arena_t a;
    lf_arena_init(&a, 256 * 1024);
    lf_cc_cmd_t *cmds = lf_malloc(LF_SCL_BLOCK * sizeof(*cmds));
    int rc = LF_OK;
    for (uint32_t from = 0; from < LF_CLUSTER_SLOTS && rc == LF_OK; from += LF_SCL_BLOCK) {
        lf_arena_reset(&a);
        size_t n = 0;
        for (uint32_t k = from; k < from + LF_SCL_BLOCK && k < LF_CLUSTER_SLOTS; k++) {
            char *sk = lf_arena_alloc(&a, kl + LF_CLUSTER_TAG_MAX + 4);
            memcpy(sk, key, kl);
            lf_scl_shard(sk + kl, LF_CLUSTER_TAG_MAX + 4, (uint16_t)k);
            lf_argv_t cmd;
            lf_argv_init_scratch(&cmd, &a);
            build(ctx, (uint16_t)k, sk, strlen(sk), &cmd);
            cmds[n++] =
                (lf_cc_cmd_t){(uint16_t)k, cmd.n, (const char *const *)cmd.argv, cmd.lens, NULL};
        }
        if (lf_cc_run(s->cc, cmds, n, err) != LF_OK) {
            rc = LF_ERR;
            break;
        }
        for (size_t i = 0; i < n && rc == LF_OK; i++)
            rc = each(ctx, cmds[i].slot, cmds[i].reply, err);
        lf_cc_free_replies(cmds, n);
    }
    lf_free(cmds);
    lf_arena_free(&a);
    return rc;
}

/*---- The heartbeat -----------------------------------------------------------------------*/

static int64_t lf_scl_control_int(const redisReply *r)
{
    int64_t v = 0;
    if (r->type == REDIS_REPLY_STRING && lf_parse_i64(r->str, 0, INT64_MAX, &v) == LF_OK) return v;
    return 0;
}

/* lf:funnel's visitor buckets whose time has passed are dropped (their visitors expired), as
 * on one Redis with each heartbeat; here a few shards per heartbeat, in turn. */
#define LF_SCL_PRUNE_SLOTS 64

static void lf_scl_prune_funnel(lf_store_cluster_t *s)
{
    char key[LF_KEY_MAX];
    int kl = lf_key_funnel(key, sizeof(key), LF_SCL_PREFIX(s));
    lf_arena_t *a = &s->arena;
    lf_cc_cmd_t cmds[LF_SCL_PRUNE_SLOTS];
    size_t n = 0;
    for (; n < LF_SCL_PRUNE_SLOTS; n++) {
        uint16_t slot = (uint16_t)((s->prune_next + n) % LF_CLUSTER_SLOTS);
        char *sk = lf_arena_alloc(a, (size_t)kl + LF_CLUSTER_TAG_MAX + 4);
        memcpy(sk, key, (size_t)kl);
        lf_scl_shard(sk + kl, LF_CLUSTER_TAG_MAX + 4, slot);
        lf_argv_t c;
        lf_argv_init_scratch(&c, a);
        lf_argv_adds(&c, "HKEYS");
        lf_argv_adds(&c, sk);
        cmds[n] = (lf_cc_cmd_t){slot, c.n, (const char *const *)c.argv, c.lens, NULL};
    }
    lf_err_t err = {0};
    if (lf_cc_run(s->cc, cmds, n, &err) != LF_OK) {
        lf_arena_reset(a);
        return; /* tried again with the next heartbeat */
    }
    s->prune_next = (s->prune_next + n) % LF_CLUSTER_SLOTS;
    long long now_s = (long long)(lf_wall_ms() / 1000);
    lf_cc_cmd_t dels[LF_SCL_PRUNE_SLOTS];
    size_t nd = 0;
    for (size_t i = 0; i < n; i++) {
        const redisReply *r = cmds[i].reply;
        lf_argv_t d;
        lf_argv_init_scratch(&d, a);
        lf_argv_adds(&d, "HDEL");
        lf_argv_add_ref(&d, cmds[i].argv[1], cmds[i].lens[1]);
        for (size_t k = 0; r->type == REDIS_REPLY_ARRAY && k < r->elements; k++) {
            const redisReply *f = r->element[k];
            char buf[32];
            int64_t at;
            if (f->type != REDIS_REPLY_STRING || f->len < 9 || f->len >= 8 + sizeof(buf) ||
                memcmp(f->str, "visitor:", 8) != 0)
                continue;
            memcpy(buf, f->str + 8, f->len - 8);
            buf[f->len - 8] = '\0';
            if (lf_parse_i64(buf, 0, INT64_MAX, &at) == LF_OK && at <= now_s)
                lf_argv_add(&d, f->str, f->len);
        }
        if (d.n > 2)
            dels[nd++] =
                (lf_cc_cmd_t){cmds[i].slot, d.n, (const char *const *)d.argv, d.lens, NULL};
    }
    if (nd && lf_cc_run(s->cc, dels, nd, &err) == LF_OK) lf_cc_free_replies(dels, nd);
    lf_cc_free_replies(cmds, n);
    lf_arena_reset(a);
}

/* The heartbeat's keys are single keys, each in the slot of its name. */
static int lf_scl_heartbeat(lf_store_t *base, const char *instance, const lf_argv_t *fields,
                            int ttl_s, lf_control_t *ctl, lf_err_t *err)
{
    lf_store_cluster_t *s = (lf_store_cluster_t *)base;
    char key[LF_KEY_MAX], set[LF_KEY_MAX], reload[LF_KEY_MAX], pause[LF_KEY_MAX],
        active[LF_KEY_MAX], ttl[24];
    int kl = lf_key_instance(key, sizeof(key), LF_SCL_PREFIX(s), instance);
    int sl = lf_key_instances(set, sizeof(set), LF_SCL_PREFIX(s));
    int rl = lf_key_control(reload, sizeof(reload), LF_SCL_PREFIX(s), "reload");
    int pl = lf_key_control(pause, sizeof(pause), LF_SCL_PREFIX(s), "pause");
    int al = snprintf(active, sizeof(active), "%sactive", base->cfg->redis_prefix);
    int tl = snprintf(ttl, sizeof(ttl), "%d", ttl_s);
    lf_argv_t *a = &s->argv;
    lf_argv_reset(a);
    lf_argv_adds(a, "HSET");
    lf_argv_add(a, key, (size_t)kl);
    for (size_t i = 0; i < fields->n; i++)
        lf_argv_add(a, fields->argv[i], fields->lens[i]);
    const char *ex[3] = {"EXPIRE", key, ttl}, *sa[3] = {"SADD", set, instance},
               *g1[2] = {"GET", reload}, *g2[2] = {"GET", pause}, *g3[2] = {"GET", active};
    size_t exl[3] = {6, (size_t)kl, (size_t)tl}, sal[3] = {4, (size_t)sl, strlen(instance)},
           g1l[2] = {3, (size_t)rl}, g2l[2] = {3, (size_t)pl}, g3l[2] = {3, (size_t)al};
    uint16_t ks = lf_cluster_slot(key, (size_t)kl);
    lf_cc_cmd_t cmds[6] = {
        {ks, a->n, (const char *const *)a->argv, a->lens, NULL},
        {ks, 3, ex, exl, NULL},
        {lf_cluster_slot(set, (size_t)sl), 3, sa, sal, NULL},
        {lf_cluster_slot(reload, (size_t)rl), 2, g1, g1l, NULL},
        {lf_cluster_slot(pause, (size_t)pl), 2, g2, g2l, NULL},
        {lf_cluster_slot(active, (size_t)al), 2, g3, g3l, NULL},
    };
    int rc = lf_cc_run(s->cc, cmds, 6, err);
    for (int i = 0; rc == LF_OK && i < 6; i++)
        if (cmds[i].reply->type == REDIS_REPLY_ERROR) {
            lf_err_set(err, LF_ERR, "heartbeat: Redis answered %.*s", (int)cmds[i].reply->len,
                       cmds[i].reply->str);
            rc = LF_ERR;
        }
    if (rc == LF_OK) {
        const redisReply *r3 = cmds[3].reply, *r4 = cmds[4].reply, *r5 = cmds[5].reply;
        ctl->reload = lf_scl_control_int(r3);
        snprintf(ctl->pause, sizeof(ctl->pause), "%.*s",
                 r4->type == REDIS_REPLY_STRING ? (int)r4->len : 0,
                 r4->type == REDIS_REPLY_STRING ? r4->str : "");
        snprintf(ctl->active, sizeof(ctl->active), "%.*s",
                 r5->type == REDIS_REPLY_STRING ? (int)r5->len : 0,
                 r5->type == REDIS_REPLY_STRING ? r5->str : "");
    }
    lf_cc_free_replies(cmds, 6);
    lf_argv_reset(a);
    lf_arena_reset(&s->arena);
    if (rc == LF_OK) lf_scl_prune_funnel(s);
    /* The map is read again now and then, besides on every redirection: a replica that joined
     * or caught up (CLUSTER SLOTS lists it once it has replicated something) counts for WAIT. */
    if (rc == LF_OK && lf_now_ms() - s->map_read_ms > LF_SCL_MAP_EVERY_MS) {
        lf_err_t ignored = {0};
        lf_cc_refresh(s->cc, &ignored);
        s->map_read_ms = lf_now_ms();
    }
    return rc;
}

static void lf_scl_close(lf_store_t *base)
{
    lf_store_cluster_t *s = (lf_store_cluster_t *)base;
    for (size_t i = 0; i < s->nnodes; i++)
        lf_sr_close(s->nodes[i].st);
    lf_free(s->nodes);
    lf_cc_free(s->cc);
    lf_argv_free(&s->argv);
    lf_arena_free(&s->arena);
    lf_free(s);
}

static const lf_store_ops_t lf_store_cluster_ops = {
    .load_leads = lf_scl_load_leads,
    .load_aliases = lf_scl_load_aliases,
    .write_leads = lf_scl_write_leads,
    .load_watermarks = lf_scl_load_watermarks,
    .save_progress = lf_scl_save_progress,
    .outbox_load = lf_scl_outbox_load,
    .outbox_delete = lf_scl_outbox_delete,
    .due_mql = lf_scl_due_mql,
    .scan_index = lf_scl_scan_index,
    .heartbeat = lf_scl_heartbeat,
    .close = lf_scl_close,
};

lf_store_t *lf_store_cluster_open(const lf_config_t *cfg, lf_err_t *err)
{
    lf_cc_t *cc = lf_cc_new(cfg, err);
    if (!cc) return NULL;
    lf_store_cluster_t *s = lf_calloc(1, sizeof(*s));
    s->base.ops = &lf_store_cluster_ops;
    s->base.cfg = cfg;
    s->base.group = cfg->kafka_group;
    snprintf(s->prefix, sizeof(s->prefix), "%s", cfg->redis_prefix);
    s->base.prefix = s->prefix;
    s->cc = cc;
    lf_arena_init(&s->arena, 64 * 1024);
    lf_argv_init(&s->argv, &s->arena);
    lf_cc_tags();
    lf_err_t first = {0};
    if (lf_cc_refresh(cc, &first) != LF_OK) /* retried by the next call, like a standalone's */
        lf_log("warn", "%s", first.msg);
    return &s->base;
}
