/* The standalone Redis back end of lf_store_t (store.h): the handle and its two connections,
 * what a new connection checks (the server may not evict, RESTORE of a lead hash works),
 * command queueing through one formatted buffer, the heartbeat, and the ops table. Reads,
 * lead writes and progress live beside it (store_redis_int.h lists them). */
#include <hiredis/hiredis.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "leadflow/hashdump.h"
#include "leadflow/keys.h"
#include "leadflow/log.h"
#include "leadflow/redis.h"
#include "store_redis_int.h"

/*---- What a new connection checks --------------------------------------------------------*/

/* Can this server take a hash as RESTORE of our payload? Asked on a scratch key at every
 * new connection (the server behind the address may have been replaced by an older one): a
 * refusal (Redis < 7.0, an ACL without RESTORE, a renamed command) means HSET, so a
 * transaction never holds a command that fails. A lost connection leaves it unknown (HSET). */
static void lf_sr_probe_restore(lf_store_redis_t *s)
{
    int before = s->restore;
    s->restore = 0;
    static const char *const pairs[] = {"probe", "leadflow", "at", "1767225600000", "n", "7"};
    const size_t lens[] = {5, 8, 2, 13, 1, 1};
    unsigned char payload[256];
    char key[LF_KEY_MAX];
    /* A key of this probe's own: instances starting together must not read each other's.
     * Wall clock: part of a name (unique across hosts and restarts), not a deadline. */
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    /* On a cluster node, a tag of a slot it serves: the probe must land on this node. */
    int kl = snprintf(key, sizeof(key), "%sprobe:{%s}:%ld:%ld.%09ld", LF_PREFIX(s),
                      s->node ? s->probe_tag : "restore", (long)getpid(), (long)ts.tv_sec,
                      (long)ts.tv_nsec);
    size_t len = lf_hashdump_build(pairs, lens, 6, payload);
    redisReply *r = redisCommand(s->c, "RESTORE %b 0 %b REPLACE", key, (size_t)kl, payload, len);
    if (!r) return;
    int ok = r->type == REDIS_REPLY_STATUS;
    char why[160];
    snprintf(why, sizeof(why), "%.*s", (int)(r->type == REDIS_REPLY_ERROR ? r->len : 0),
             r->type == REDIS_REPLY_ERROR ? r->str : "");
    freeReplyObject(r);
    if (ok) {
        r = redisCommand(s->c, "HGETALL %b", key, (size_t)kl);
        if (!r) return;
        ok = r->type == REDIS_REPLY_ARRAY && r->elements == 6;
        for (size_t i = 0; ok && i < 6; i++)
            ok = r->element[i]->len == lens[i] && !memcmp(r->element[i]->str, pairs[i], lens[i]);
        freeReplyObject(r);
        if (!ok) snprintf(why, sizeof(why), "the restored hash reads back differently");
        r = redisCommand(s->c, "DEL %b", key, (size_t)kl);
        if (!r) return;
        freeReplyObject(r);
    }
    lf_cluster_redirect_t rd;
    if (!ok && s->node && lf_cluster_redirect_parse(why, strlen(why), &rd) == LF_OK) {
        s->restore = 0; /* the probe's slot is moving: HSET for now, probe again next time */
        return;
    }
    s->restore = ok ? 1 : -1;
    if (!ok && before != -1)
        lf_log("info",
               "Redis refused RESTORE of a lead hash (%s): lead hashes are written with HSET", why);
}

/* The value of `name:` in an INFO reply ("" when absent). */
static void lf_sr_info_field(const char *info, const char *name, char *out, size_t cap)
{
    out[0] = '\0';
    size_t nl = strlen(name);
    for (const char *l = info; l && *l; l = strchr(l, '\n'), l = l ? l + 1 : NULL) {
        if (strncmp(l, name, nl) != 0 || l[nl] != ':') continue;
        size_t n = strcspn(l + nl + 1, "\r\n");
        snprintf(out, cap, "%.*s", (int)n, l + nl + 1);
        return;
    }
}

/* Can this server lose leadflow's keys by itself? Any eviction policy but noeviction may
 * drop a lead or an alias (every policy can once maxmemory is set, the volatile ones take
 * keys with a TTL: aliases): refuse it. No persistence at all: a restart loses everything,
 * which leadflow notices and replays (as far as Kafka's retention allows): warn. Read from
 * INFO, which works where CONFIG is not granted. */
/* The server this handle talks to (a cluster node's own address). */
#define LF_SR_HOST(s) ((s)->node ? (s)->node_host : (s)->base.cfg->redis_host)
#define LF_SR_PORT(s) ((s)->node ? (s)->node_port : (s)->base.cfg->redis_port)

static int lf_sr_check_server(lf_store_redis_t *s, lf_err_t *err)
{
    const lf_config_t *cfg = s->base.cfg;
    redisReply *r = redisCommand(s->c, "INFO");
    if (!lf_redis_reply_ok(s->c, r, "INFO", err) || r->type != REDIS_REPLY_STRING) {
        if (r) freeReplyObject(r);
        return LF_ERR;
    }
    char policy[64], aof[8], saves[32], cluster[8];
    lf_sr_info_field(r->str, "maxmemory_policy", policy, sizeof(policy));
    lf_sr_info_field(r->str, "cluster_enabled", cluster, sizeof(cluster));
    lf_sr_info_field(r->str, "aof_enabled", aof, sizeof(aof));
    lf_sr_info_field(r->str, "rdb_last_save_time", saves, sizeof(saves));
    freeReplyObject(r);
    /* A cluster node answers the first multi-key transaction with CROSSSLOT, and would for
     * ever: say so at once instead of degrading (a cluster back end is not written yet). */
    if (strcmp(cluster, "1") == 0 && !s->node) {
        lf_err_set(err, LF_STORE_REFUSED,
                   "Redis at %s:%d is a Redis Cluster node (cluster_enabled:1): name the cluster's "
                   "nodes in redis.cluster.nodes (\"%s:%d\" will do) instead of redis.host, so "
                   "that leadflow writes it slot by slot; as a standalone Redis its transactions "
                   "would span hash slots, which a cluster refuses (CROSSSLOT)",
                   cfg->redis_host, cfg->redis_port, cfg->redis_host, cfg->redis_port);
        return LF_ERR;
    }
    if (policy[0] && strcmp(policy, "noeviction") != 0) {
        lf_err_set(err, LF_STORE_REFUSED,
                   "Redis at %s:%d has maxmemory-policy %s: it may evict leads and aliases and "
                   "lose them silently. Set `maxmemory-policy noeviction` (redis.conf, or CONFIG "
                   "SET maxmemory-policy noeviction) and size maxmemory for the leads",
                   LF_SR_HOST(s), LF_SR_PORT(s), policy);
        return LF_ERR;
    }
    if (!s->warned_persistence && strcmp(aof, "1") != 0) {
        /* RDB snapshots: only CONFIG tells whether any are scheduled. Not asked as an ACL
         * user: the README's grant leaves CONFIG out (CONFIG GET shows requirepass), and a
         * refused command fills the server's ACL LOG, which operators watch. */
        redisReply *c = cfg->redis_user ? NULL : redisCommand(s->c, "CONFIG GET save");
        int no_rdb = c && c->type == REDIS_REPLY_ARRAY && c->elements == 2 &&
                     c->element[1]->type == REDIS_REPLY_STRING && c->element[1]->len == 0;
        if (c) freeReplyObject(c);
        s->warned_persistence = 1;
        lf_log("warn",
               "Redis at %s:%d has %s: a restart loses %s, which leadflow then rebuilds "
               "from Kafka only as far as retention allows. Set `appendonly yes` (and "
               "`appendfsync everysec`)",
               LF_SR_HOST(s), LF_SR_PORT(s),
               no_rdb ? "no persistence (appendonly no, save \"\")" : "appendonly no",
               no_rdb ? "every lead" : "the writes since the last snapshot");
    }
    return LF_OK;
}

/* Whether Redis may hold records of the layout before packed records (s->legacy): not when
 * `<p>layout` is 2, nor in a Redis with no store epoch yet (nothing was written to it: the
 * marker is set now). In doubt (no reply), yes: it costs a read, never a record. */
static void lf_sr_probe_layout(lf_store_redis_t *s)
{
    char key[LF_KEY_MAX], epoch[LF_KEY_MAX];
    snprintf(key, sizeof(key), "%slayout", LF_PREFIX(s));
    lf_key_epoch(epoch, sizeof(epoch), LF_PREFIX(s));
    s->legacy = 1;
    redisReply *r = redisCommand(s->c, "GET %s", key);
    if (r && r->type == REDIS_REPLY_STRING && r->len == 1 && r->str[0] == '2') s->legacy = 0;
    if (r) freeReplyObject(r);
    if (!s->legacy) return;
    r = redisCommand(s->c, "EXISTS %s", epoch);
    int fresh = r && r->type == REDIS_REPLY_INTEGER && r->integer == 0;
    if (r) freeReplyObject(r);
    if (!fresh) return;
    r = redisCommand(s->c, "SET %s 2", key);
    if (r && r->type == REDIS_REPLY_STATUS) s->legacy = 0;
    if (r) freeReplyObject(r);
}

/*---- Connections and command queueing ---------------------------------------------------*/

/* The prefix of the live state: <configured>active after a switch (`leadflow replay
 * --switch`), else the configured one. Once per handle: a switch while running is noticed by
 * the heartbeat (lf_control_t.active) and the pipeline restarts on a new handle. */
static int lf_sr_resolve_prefix(lf_store_redis_t *s, lf_err_t *err)
{
    if (s->prefix_resolved) return LF_OK;
    const char *base = s->base.cfg->redis_prefix;
    redisReply *r = redisCommand(s->c, "GET %sactive", base);
    if (!lf_redis_reply_ok(s->c, r, "GET of the active prefix", err)) {
        if (r) freeReplyObject(r);
        return LF_ERR;
    }
    if (r->type == REDIS_REPLY_STRING && r->len > 0 && r->len < sizeof(s->prefix)) {
        snprintf(s->prefix, sizeof(s->prefix), "%s", r->str);
        lf_log("info", "the live state is under %s (%sactive, set by `leadflow replay --switch`)",
               s->prefix, base);
    }
    freeReplyObject(r);
    s->prefix_resolved = 1;
    return LF_OK;
}

int lf_sr_connect(lf_store_redis_t *s, lf_err_t *err)
{
    if (s->c && !s->c->err) return LF_OK;
    if (s->c) redisFree(s->c);
    s->c = s->node ? lf_redis_connect_to(s->base.cfg, s->node_host, s->node_port, err)
                   : lf_redis_connect(s->base.cfg, err);
    if (s->c && (lf_sr_check_server(s, err) != LF_OK ||
                 (!s->node && lf_sr_resolve_prefix(s, err) != LF_OK))) {
        redisFree(s->c);
        s->c = NULL;
    }
    if (s->c) lf_sr_probe_restore(s);
    if (s->c && !s->node) lf_sr_probe_layout(s); /* a cluster holds no layout before */
    return s->c ? LF_OK : LF_ERR;
}

void lf_sr_append_argv(lf_store_redis_t *s, lf_argv_t *a, size_t *queued)
{
    lf_sr_append(s, a->n, a->argv, a->lens);
    lf_argv_reset(a);
    if (++*queued % LF_FLUSH_EVERY == 0) lf_sr_flush(s);
}

/* Hand the formatted commands to hiredis (one copy into its output buffer). */
static void lf_sr_push(lf_store_redis_t *s)
{
    if (s->out.len && s->c) redisAppendFormattedCommand(s->c, s->out.buf, s->out.len);
    lf_cmdbuf_reset(&s->out);
}

void lf_sr_append(lf_store_redis_t *s, size_t argc, const char *const *argv, const size_t *lens)
{
    lf_cmdbuf_add(&s->out, argc, argv, lens);
}

void lf_sr_append_key(lf_store_redis_t *s, const char *cmd, const char *key, size_t kl,
                      const char *arg)
{
    const char *argv[3] = {cmd, key, arg};
    size_t lens[3] = {strlen(cmd), kl, arg ? strlen(arg) : 0};
    lf_sr_append(s, arg ? 3 : 2, argv, lens);
}

int lf_sr_use(lf_store_redis_t *s, int which, lf_err_t *err)
{
    if (s->cur != which) {
        lf_sr_push(s);
        redisContext *t = s->c;
        s->c = s->c2;
        s->c2 = t;
        s->cur = which;
    }
    return lf_sr_connect(s, err);
}

void lf_sr_drop_all(lf_store_redis_t *s)
{
    lf_cmdbuf_reset(&s->out);
    if (s->c) redisFree(s->c);
    if (s->c2) redisFree(s->c2);
    s->c = s->c2 = NULL;
}

/* Send what is queued so far, so Redis works on it while the next commands are built. */
void lf_sr_flush(lf_store_redis_t *s)
{
    lf_sr_push(s);
    int done = 0;
    while (!done && s->c && !s->c->err)
        if (redisBufferWrite(s->c, &done) != REDIS_OK) break;
}

int lf_sr_replies(lf_store_redis_t *s, size_t n, redisReply **replies, const char *what,
                  lf_err_t *err)
{
    int rc = LF_OK;
    int64_t t0 = s->base.rtt ? lf_now_us() : 0;
    lf_sr_push(s);
    for (size_t i = 0; i < n; i++) {
        void *r = NULL;
        if (redisGetReply(s->c, &r) != REDIS_OK || !r) {
            lf_redis_reply_ok(s->c, NULL, what, err);
            for (size_t j = 0; j < i; j++)
                freeReplyObject(replies[j]);
            lf_sr_drop_all(s); /* the other connection is likely as dead */
            return LF_ERR;
        }
        replies[i] = r;
    }
    if (s->base.rtt) lf_hist_observe(s->base.rtt, (double)(lf_now_us() - t0) / 1e6);
    return rc;
}

int lf_sr_reply_errors(redisReply *const *replies, size_t n, const char *what, lf_err_t *err)
{
    for (size_t i = 0; i < n; i++)
        if (replies[i]->type == REDIS_REPLY_ERROR) {
            lf_err_set(err, LF_ERR, "%s: Redis answered %.*s", what, (int)replies[i]->len,
                       replies[i]->str);
            return LF_ERR;
        }
    return LF_OK;
}

/*---- The heartbeat, and the handle ------------------------------------------------------*/

/* lf:funnel's visitor buckets whose time has passed count visitors that expired: readers skip
 * them (writes.h); they are deleted here, with the heartbeat, so the hash stays small. Best
 * effort: a failure is tried again at the next heartbeat. */
static void lf_sr_prune_funnel(lf_store_redis_t *s)
{
    char key[LF_KEY_MAX];
    int kl = lf_key_funnel(key, sizeof(key), LF_PREFIX(s));
    redisReply *r = redisCommand(s->c, "HKEYS %b", key, (size_t)kl);
    if (!r || r->type != REDIS_REPLY_ARRAY) {
        if (r) freeReplyObject(r);
        return;
    }
    long long now_s = (long long)(lf_wall_ms() / 1000);
    lf_argv_t *a = &s->argv;
    lf_argv_reset(a);
    lf_argv_adds(a, "HDEL");
    lf_argv_add(a, key, (size_t)kl);
    for (size_t i = 0; i < r->elements; i++) {
        const redisReply *f = r->element[i];
        int64_t at;
        char buf[32];
        if (f->type != REDIS_REPLY_STRING || f->len < 9 || f->len >= 8 + sizeof(buf) ||
            memcmp(f->str, "visitor:", 8) != 0)
            continue;
        memcpy(buf, f->str + 8, f->len - 8);
        buf[f->len - 8] = '\0';
        if (lf_parse_i64(buf, 0, INT64_MAX, &at) == LF_OK && at <= now_s)
            lf_argv_add(a, f->str, f->len);
    }
    freeReplyObject(r);
    if (a->n > 2) {
        r = redisCommandArgv(s->c, (int)a->n, a->argv, a->lens);
        if (r) freeReplyObject(r);
    }
    lf_argv_reset(a);
    lf_arena_reset(&s->arena);
}

/* The reply to GET <p>ctl:reload: its number, 0 when absent (or not a number: nobody but
 * `leadflow reload` writes it). */
static int64_t lf_sr_control_int(const redisReply *r)
{
    int64_t v = 0;
    if (r->type == REDIS_REPLY_STRING && lf_parse_i64(r->str, 0, INT64_MAX, &v) == LF_OK) return v;
    return 0;
}

static int lf_sr_heartbeat(lf_store_t *base, const char *instance, const lf_argv_t *fields,
                           int ttl_s, lf_control_t *ctl, lf_err_t *err)
{
    lf_store_redis_t *s = (lf_store_redis_t *)base;
    if (lf_sr_connect(s, err)) return LF_ERR;
    char key[LF_KEY_MAX], set[LF_KEY_MAX], reload[LF_KEY_MAX], pause[LF_KEY_MAX];
    int kl = lf_key_instance(key, sizeof(key), LF_PREFIX(s), instance);
    int sl = lf_key_instances(set, sizeof(set), LF_PREFIX(s));
    int rl = lf_key_control(reload, sizeof(reload), LF_PREFIX(s), "reload");
    int pl = lf_key_control(pause, sizeof(pause), LF_PREFIX(s), "pause");
    lf_argv_t *a = &s->argv;
    lf_argv_reset(a);
    lf_argv_adds(a, "HSET");
    lf_argv_add(a, key, (size_t)kl);
    for (size_t i = 0; i < fields->n; i++)
        lf_argv_add(a, fields->argv[i], fields->lens[i]);
    redisAppendCommandArgv(s->c, (int)a->n, a->argv, a->lens);
    redisAppendCommand(s->c, "EXPIRE %b %d", key, (size_t)kl, ttl_s);
    redisAppendCommand(s->c, "SADD %b %s", set, (size_t)sl, instance);
    redisAppendCommand(s->c, "GET %b", reload, (size_t)rl);
    redisAppendCommand(s->c, "GET %b", pause, (size_t)pl);
    redisAppendCommand(s->c, "GET %sactive", s->base.cfg->redis_prefix);
    lf_arena_reset(&s->arena);
    redisReply *replies[6];
    if (lf_sr_replies(s, 6, replies, "heartbeat", err)) return LF_ERR;
    int ok = 1;
    for (int i = 0; i < 6; i++) {
        const redisReply *r = replies[i];
        int str = r->type == REDIS_REPLY_STRING;
        if (r->type == REDIS_REPLY_ERROR)
            ok = lf_redis_reply_ok(s->c, replies[i], "heartbeat", err);
        else if (i == 3)
            ctl->reload = lf_sr_control_int(r);
        else if (i == 4)
            snprintf(ctl->pause, sizeof(ctl->pause), "%s", str ? r->str : "");
        else if (i == 5)
            snprintf(ctl->active, sizeof(ctl->active), "%s", str ? r->str : "");
        freeReplyObject(replies[i]);
    }
    if (ok) lf_sr_prune_funnel(s);
    return ok ? LF_OK : LF_ERR;
}

void lf_sr_close(lf_store_redis_t *s)
{
    lf_sr_drop_all(s);
    lf_cmdbuf_free(&s->out);
    lf_free(s->dump);
    lf_argv_free(&s->argv);
    lf_arena_free(&s->arena);
    lf_free(s);
}

static void lf_sr_close_store(lf_store_t *base)
{
    lf_sr_close((lf_store_redis_t *)base);
}

static const lf_store_ops_t lf_store_redis_ops = {
    .load_leads = lf_sr_load_leads,
    .load_aliases = lf_sr_load_aliases,
    .write_leads = lf_sr_write_leads,
    .load_watermarks = lf_sr_load_watermarks,
    .save_progress = lf_sr_save_progress,
    .outbox_load = lf_sr_outbox_load,
    .outbox_delete = lf_sr_outbox_delete,
    .due_mql = lf_sr_due_mql,
    .scan_index = lf_sr_scan_index,
    .heartbeat = lf_sr_heartbeat,
    .close = lf_sr_close_store,
};

lf_store_t *lf_store_redis_open(const lf_config_t *cfg, lf_err_t *err)
{
    lf_store_redis_t *s = lf_calloc(1, sizeof(*s));
    s->base.ops = &lf_store_redis_ops;
    s->base.cfg = cfg;
    s->base.group = cfg->kafka_group;
    snprintf(s->prefix, sizeof(s->prefix), "%s", cfg->redis_prefix);
    s->base.prefix = s->prefix;
    lf_arena_init(&s->arena, 64 * 1024);
    lf_argv_init(&s->argv, &s->arena);
    if (lf_sr_connect(s, err)) {
        /* Keep the store: the pipeline retries the connection with backoff. */
    }
    return &s->base;
}

lf_store_redis_t *lf_sr_open_node(const lf_config_t *cfg, const char *prefix, const char *group,
                                  const char *host, int port, const char *probe_tag)
{
    lf_store_redis_t *s = lf_calloc(1, sizeof(*s));
    s->base.ops = &lf_store_redis_ops;
    s->base.cfg = cfg;
    s->base.group = group;
    snprintf(s->prefix, sizeof(s->prefix), "%s", prefix);
    s->base.prefix = s->prefix;
    s->prefix_resolved = 1;
    s->node = 1;
    snprintf(s->node_host, sizeof(s->node_host), "%s", host);
    s->node_port = port;
    snprintf(s->probe_tag, sizeof(s->probe_tag), "%s", probe_tag);
    lf_arena_init(&s->arena, 64 * 1024);
    lf_argv_init(&s->argv, &s->arena);
    return s;
}

lf_store_t *lf_store_open(const lf_config_t *cfg, lf_err_t *err)
{
    if (cfg->redis_cluster_nodes) return lf_store_cluster_open(cfg, err);
    return lf_store_redis_open(cfg, err);
}

int lf_stored_absorbed(const lf_stored_hash_t *h, const char *anon, uint64_t version)
{
    size_t al = strlen(anon);
    for (size_t i = 0; i < h->nabsorbed; i++)
        if (h->absorbed[i].len == al && memcmp(h->absorbed[i].ptr, anon, al) == 0 &&
            h->absorbed_versions[i] == version)
            return 1;
    return 0;
}
