/* The standalone Redis back end of lf_store_t: pipelined reads; lead writes as optimistic
 * transactions (WATCH, check versions, MULTI, plain commands, EXEC); progress in one script. */
#include <hiredis/hiredis.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "leadflow/cmdbuf.h"
#include "leadflow/hashdump.h"
#include "leadflow/keys.h"
#include "leadflow/lead_codec.h"
#include "leadflow/log.h"
#include "leadflow/redis.h"
#include "leadflow/store.h"

/* Leads per transaction: big enough to amortise the two round trips, small enough that
 * one EXEC does not block Redis for long and a conflict re-does little. */
#define LF_LEADS_PER_TX 64

typedef struct {
    lf_store_t base;
    redisContext *c;  /* the connection in use */
    redisContext *c2; /* the other one: lead writes alternate between the two */
    int cur;          /* which of the two s->c is (they swap) */
    lf_cmdbuf_t out;  /* commands formatted for s->c, not yet handed to hiredis */
    lf_arena_t arena;
    lf_argv_t argv;
    /* Lead hashes as RESTORE of a ready-made hash (hashdump.h): 1 yes, -1 no (the server
     * refused the probe: HSET), 0 not probed yet. */
    int restore;
    unsigned char *dump;
    size_t dumpcap;
    /* The store epoch this handle writes under ("" until the first fence). */
    char epoch[LF_EPOCH_MAX];
    /* Persistence: warned about once per process, not at every reconnect. */
    int warned_persistence;
} lf_store_redis_t;

#define LF_PREFIX(s) ((s)->base.cfg->redis_prefix)

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
    /* A key of this probe's own: instances starting together must not read each other's. */
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    int kl = snprintf(key, sizeof(key), "%sprobe:{restore}:%ld:%ld.%09ld", LF_PREFIX(s),
                      (long)getpid(), (long)ts.tv_sec, (long)ts.tv_nsec);
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
static int lf_sr_check_server(lf_store_redis_t *s, lf_err_t *err)
{
    const lf_config_t *cfg = s->base.cfg;
    redisReply *r = redisCommand(s->c, "INFO");
    if (!lf_redis_reply_ok(s->c, r, "INFO", err) || r->type != REDIS_REPLY_STRING) {
        if (r) freeReplyObject(r);
        return LF_ERR;
    }
    char policy[64], aof[8], saves[32];
    lf_sr_info_field(r->str, "maxmemory_policy", policy, sizeof(policy));
    lf_sr_info_field(r->str, "aof_enabled", aof, sizeof(aof));
    lf_sr_info_field(r->str, "rdb_last_save_time", saves, sizeof(saves));
    freeReplyObject(r);
    if (policy[0] && strcmp(policy, "noeviction") != 0) {
        lf_err_set(err, LF_STORE_REFUSED,
                   "Redis at %s:%d has maxmemory-policy %s: it may evict leads and aliases and "
                   "lose them silently. Set `maxmemory-policy noeviction` (redis.conf, or CONFIG "
                   "SET maxmemory-policy noeviction) and size maxmemory for the leads",
                   cfg->redis_host, cfg->redis_port, policy);
        return LF_ERR;
    }
    if (!s->warned_persistence && strcmp(aof, "1") != 0) {
        /* RDB snapshots: only CONFIG tells whether any are scheduled. */
        redisReply *c = redisCommand(s->c, "CONFIG GET save");
        int no_rdb = c && c->type == REDIS_REPLY_ARRAY && c->elements == 2 &&
                     c->element[1]->type == REDIS_REPLY_STRING && c->element[1]->len == 0;
        if (c) freeReplyObject(c);
        s->warned_persistence = 1;
        lf_log("warn",
               "Redis at %s:%d has %s: a restart loses %s, which leadflow then rebuilds "
               "from Kafka only as far as retention allows. Set `appendonly yes` (and "
               "`appendfsync everysec`)",
               cfg->redis_host, cfg->redis_port,
               no_rdb ? "no persistence (appendonly no, save \"\")" : "appendonly no",
               no_rdb ? "every lead" : "the writes since the last snapshot");
    }
    return LF_OK;
}

static int lf_sr_connect(lf_store_redis_t *s, lf_err_t *err)
{
    if (s->c && !s->c->err) return LF_OK;
    if (s->c) redisFree(s->c);
    s->c = lf_redis_connect(s->base.cfg, err);
    if (s->c && lf_sr_check_server(s, err) != LF_OK) {
        redisFree(s->c);
        s->c = NULL;
    }
    if (s->c) lf_sr_probe_restore(s);
    return s->c ? LF_OK : LF_ERR;
}

/* Hand the formatted commands to hiredis (one copy into its output buffer). */
static void lf_sr_push(lf_store_redis_t *s)
{
    if (s->out.len && s->c) redisAppendFormattedCommand(s->c, s->out.buf, s->out.len);
    lf_cmdbuf_reset(&s->out);
}

/* Queue one command on s->c. */
static void lf_sr_append(lf_store_redis_t *s, size_t argc, const char *const *argv,
                         const size_t *lens)
{
    lf_cmdbuf_add(&s->out, argc, argv, lens);
}

/* Queue `CMD key [arg]`. */
static void lf_sr_append_key(lf_store_redis_t *s, const char *cmd, const char *key, size_t kl,
                             const char *arg)
{
    const char *argv[3] = {cmd, key, arg};
    size_t lens[3] = {strlen(cmd), kl, arg ? strlen(arg) : 0};
    lf_sr_append(s, arg ? 3 : 2, argv, lens);
}

/* Make connection `which` (0 or 1) the one in use, connecting it if needed. */
static int lf_sr_use(lf_store_redis_t *s, int which, lf_err_t *err)
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

/* After a failure halfway through the alternating writes: start both afresh. */
static void lf_sr_drop_all(lf_store_redis_t *s)
{
    lf_cmdbuf_reset(&s->out);
    if (s->c) redisFree(s->c);
    if (s->c2) redisFree(s->c2);
    s->c = s->c2 = NULL;
}

/* Send what is queued so far, so Redis works on it while the next commands are built. */
#define LF_FLUSH_EVERY 64
static void lf_sr_flush(lf_store_redis_t *s)
{
    lf_sr_push(s);
    int done = 0;
    while (!done && s->c && !s->c->err)
        if (redisBufferWrite(s->c, &done) != REDIS_OK) break;
}

/* Read n pipelined replies; keep them in replies[] (caller frees) or fail on the first
 * broken one (the connection is then dropped so the next call reconnects). */
static int lf_sr_replies(lf_store_redis_t *s, size_t n, redisReply **replies, const char *what,
                         lf_err_t *err)
{
    int rc = LF_OK;
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
    return rc;
}

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

static int lf_sr_load_leads(lf_store_t *base, const char *const *ids, size_t n,
                            lf_lead_t *const *out, const lf_model_t *m, lf_stored_hash_t *stored,
                            lf_arena_t *arena, lf_err_t *err)
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

static int lf_sr_load_aliases(lf_store_t *base, const char *const *anons, size_t n, char **out,
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

/*---- Writing leads: WATCH, check, MULTI ... EXEC -----------------------------------------*/

/* A lead write is computed from the versions it loaded. Round 1 WATCHes every key whose
 * value decides the write (the lead, its alias if it is a visitor, each merged visitor and
 * its alias) and reads those values; leads whose values moved are left out (conflict: the
 * pipeline reloads them). Round 2 sends the others' writes in one MULTI/EXEC: Redis runs it
 * only if no watched key changed in between, so each lead is all-or-nothing with its
 * counters and outbox entries, as a script would do, without a script's per-call cost.
 * The indexes, outboxes and counters of a chunk are written with one command each. */

static void lf_sr_append_argv(lf_store_redis_t *s, lf_argv_t *a, size_t *queued)
{
    lf_sr_append(s, a->n, a->argv, a->lens);
    lf_argv_reset(a);
    if (++*queued % LF_FLUSH_EVERY == 0) lf_sr_flush(s);
}

static uint64_t lf_sr_version(const redisReply *r)
{
    return r->type == REDIS_REPLY_STRING ? strtoull(r->str, NULL, 10) : 0;
}

static void lf_sr_free_replies(redisReply **r, size_t n)
{
    for (size_t i = 0; i < n; i++)
        freeReplyObject(r[i]);
    lf_free(r);
}

/* Round 1, sent: WATCH and the reads; returns the number of replies to read. */
static size_t lf_sr_send_check(lf_store_redis_t *s, const lf_store_write_t *w, size_t n)
{
    const char *p = LF_PREFIX(s);
    char key[LF_KEY_MAX];
    lf_argv_t *a = &s->argv;
    size_t queued = 0, nreads = 0;
    lf_argv_reset(a);
    lf_argv_adds(a, "WATCH");
    for (size_t i = 0; i < n; i++) {
        const lf_lead_t *l = w[i].lead;
        size_t idlen = strlen(l->id);
        lf_argv_add(a, key, (size_t)lf_key_lead(key, sizeof(key), p, l->id, idlen));
        if (l->anonymous)
            lf_argv_add(a, key, (size_t)lf_key_alias(key, sizeof(key), p, l->id, idlen));
        for (size_t v = 0; v < w[i].nmerged; v++) {
            const char *vid = w[i].merged_visitors[v];
            lf_argv_add(a, key, (size_t)lf_key_lead(key, sizeof(key), p, vid, strlen(vid)));
            lf_argv_add(a, key, (size_t)lf_key_alias(key, sizeof(key), p, vid, strlen(vid)));
        }
    }
    /* The fence: a flush or a restart between this check and EXEC touches the epoch (or
     * drops the connection), so no lead lands in a Redis that lost data. */
    lf_argv_add(a, key, (size_t)lf_key_epoch(key, sizeof(key), p));
    lf_sr_append_argv(s, a, &queued);
    for (size_t i = 0; i < n; i++) {
        const lf_lead_t *l = w[i].lead;
        size_t idlen = strlen(l->id);
        int kl = lf_key_lead(key, sizeof(key), p, l->id, idlen);
        lf_sr_append_key(s, "HGET", key, (size_t)kl, "v");
        nreads++;
        if (l->anonymous) {
            kl = lf_key_alias(key, sizeof(key), p, l->id, idlen);
            lf_sr_append_key(s, "EXISTS", key, (size_t)kl, NULL);
            nreads++;
        }
        for (size_t v = 0; v < w[i].nmerged; v++) {
            const char *vid = w[i].merged_visitors[v];
            kl = lf_key_lead(key, sizeof(key), p, vid, strlen(vid));
            lf_sr_append_key(s, "HGET", key, (size_t)kl, "v");
            kl = lf_key_alias(key, sizeof(key), p, vid, strlen(vid));
            lf_sr_append_key(s, "GET", key, (size_t)kl, NULL);
            nreads += 2;
        }
        if ((i + 1) % LF_FLUSH_EVERY == 0) lf_sr_flush(s);
    }
    int kl = lf_key_epoch(key, sizeof(key), p);
    lf_sr_append_key(s, "GET", key, (size_t)kl, NULL);
    nreads++;
    lf_sr_flush(s);
    return nreads + 1;
}

/* One chunk of the write in flight. */
typedef struct {
    const lf_store_write_t *w;
    size_t n;
    int *ok, *results;
    size_t nreplies; /* of the round in flight */
    int committing;  /* round 2 sent as MULTI/EXEC (else as UNWATCH) */
} lf_sr_chunk_t;

/* Round 1, read: ok[i] = 1 if lead i's write still applies. */
static int lf_sr_read_check(lf_store_redis_t *s, lf_sr_chunk_t *ch, lf_err_t *err)
{
    const lf_store_write_t *w = ch->w;
    size_t n = ch->n;
    int *ok = ch->ok;
    size_t nreads = ch->nreplies - 1;
    redisReply **r = lf_malloc((nreads + 1) * sizeof(*r));
    if (lf_sr_replies(s, nreads + 1, r, "WATCH and check versions", err)) {
        lf_free(r);
        return LF_ERR;
    }
    if (r[0]->type == REDIS_REPLY_ERROR) {
        lf_err_set(err, LF_ERR, "WATCH failed: %.*s", (int)r[0]->len, r[0]->str);
        lf_sr_free_replies(r, nreads + 1);
        return LF_ERR;
    }
    const redisReply *epoch = r[nreads];
    if (s->epoch[0] && !(epoch->type == REDIS_REPLY_STRING && epoch->len == strlen(s->epoch) &&
                         memcmp(epoch->str, s->epoch, epoch->len) == 0)) {
        lf_err_set(err, LF_STORE_LOST, "the store epoch is %.*s, not %s: Redis lost data",
                   epoch->type == REDIS_REPLY_STRING ? (int)epoch->len : 4,
                   epoch->type == REDIS_REPLY_STRING ? epoch->str : "gone", s->epoch);
        lf_sr_free_replies(r, nreads + 1);
        return LF_ERR;
    }
    size_t k = 1;
    for (size_t i = 0; i < n; i++) {
        const lf_store_write_t *x = &w[i];
        ok[i] = lf_sr_version(r[k++]) == x->expected_version;
        if (x->lead->anonymous && r[k++]->integer != 0) ok[i] = 0; /* linked meanwhile */
        for (size_t v = 0; v < x->nmerged; v++) {
            uint64_t merged = x->merged_versions ? x->merged_versions[v] : 0;
            if (lf_sr_version(r[k++]) != merged) ok[i] = 0;
            const redisReply *linked = r[k++];
            if (linked->type == REDIS_REPLY_STRING &&
                (linked->len != strlen(x->lead->id) ||
                 memcmp(linked->str, x->lead->id, linked->len) != 0))
                ok[i] = 0; /* another lead took the visitor */
        }
    }
    lf_sr_free_replies(r, nreads + 1);
    return LF_OK;
}

typedef struct {
    const char *field;
    size_t len;
    long long sum;
} lf_sr_counter_t;

/* Sum the chunk's counter increments per field (few distinct fields: partitions x kinds). */
static size_t lf_sr_sum_counters(const lf_store_write_t *w, size_t n, const int *ok,
                                 lf_sr_counter_t *c, size_t cap)
{
    size_t nc = 0;
    for (size_t i = 0; i < n; i++) {
        const lf_argv_t *x = w[i].counters;
        if (!ok[i] || !x) continue;
        for (size_t j = 0; j + 1 < x->n; j += 2) {
            size_t k = 0;
            while (k < nc && !(c[k].len == x->lens[j] && !memcmp(c[k].field, x->argv[j], c[k].len)))
                k++;
            if (k == nc) {
                if (nc == cap) continue; /* cannot happen: cap is the number of pairs */
                c[nc++] = (lf_sr_counter_t){x->argv[j], x->lens[j], 0};
            }
            c[k].sum += strtoll(x->argv[j + 1], NULL, 10);
        }
    }
    return nc;
}

/* A multi-member command over one key: begin it (returns where the members start), then end
 * it, which queues it only if members were added. */
static size_t lf_sr_begin(lf_argv_t *a, const char *cmd, const char *key, size_t kl)
{
    lf_argv_reset(a);
    lf_argv_adds(a, cmd);
    lf_argv_add(a, key, kl);
    return a->n;
}

static void lf_sr_end(lf_store_redis_t *s, lf_argv_t *a, size_t base, size_t *queued)
{
    if (a->n > base) lf_sr_append_argv(s, a, queued);
    lf_argv_reset(a);
}

/* cmd key list..., queued only if the list is not empty. */
static void lf_sr_queue_key_list(lf_store_redis_t *s, lf_argv_t *a, const char *cmd,
                                 const char *key, size_t kl, const lf_argv_t *list, size_t *queued)
{
    size_t base = lf_sr_begin(a, cmd, key, kl);
    for (size_t j = 0; j < list->n; j++)
        lf_argv_add_ref(a, list->argv[j], list->lens[j]);
    lf_sr_end(s, a, base, queued);
}

static void lf_sr_add_stage_score(lf_argv_t *a, double score)
{
    if (score >= 9.0e15)
        lf_argv_adds(a, "+inf");
    else
        lf_argv_add_double(a, score);
}

/* Round 2: queue MULTI, the writes of the leads with ok[i], EXEC; the number of commands
 * queued between MULTI and EXEC goes to *nq. */
static void lf_sr_queue_chunk(lf_store_redis_t *s, const lf_store_write_t *w, size_t n,
                              const int *ok, size_t *nq)
{
    const lf_config_t *cfg = s->base.cfg;
    const char *p = LF_PREFIX(s);
    char key[LF_KEY_MAX];
    lf_argv_t *a = &s->argv;
    size_t queued = 0;
    lf_argv_reset(a);
    lf_argv_adds(a, "MULTI");
    lf_sr_append_argv(s, a, &queued);
    /* Each lead's own keys. The caller's lists stay alive until the write returns:
     * reference them, don't copy. */
    for (size_t i = 0; i < n; i++) {
        if (!ok[i]) continue;
        const lf_store_write_t *x = &w[i];
        const char *id = x->lead->id;
        size_t idlen = strlen(id);
        int kl = lf_key_lead(key, sizeof(key), p, id, idlen);
        size_t dumped = 0;
        /* The whole hash in one RESTORE REPLACE: for a new lead there is none (the WATCH
         * made sure, and REPLACE cannot fail on one that there is); for a stored one the
         * WATCH proves it is still the one `whole` was computed from. Cheaper for Redis than
         * HSET of the changed fields (measured: 3.6-4.6 against 6.4-10 us per lead; HSET looks each
         * field up in the listpack and moves the rest of it). */
        const lf_argv_t *h = x->whole;
        if (s->restore > 0) {
            size_t bytes = 0;
            for (size_t j = 0; j < h->n; j++)
                bytes += h->lens[j];
            size_t need = lf_hashdump_bound(h->n, bytes);
            if (need > s->dumpcap) {
                lf_free(s->dump);
                s->dumpcap = need * 2;
                s->dump = lf_malloc(s->dumpcap);
            }
            dumped = lf_hashdump_build(h->argv, h->lens, h->n, s->dump);
        }
        if (dumped) {
            lf_argv_adds(a, "RESTORE");
            lf_argv_add(a, key, (size_t)kl);
            lf_argv_add_ref(a, "0", 1);
            lf_argv_add_ref(a, (const char *)s->dump, dumped);
            lf_argv_add_ref(a, "REPLACE", 7);
            lf_sr_append_argv(s, a, &queued);
        } else { /* what changed, and what went */
            lf_argv_t changed, deleted;
            lf_argv_init_scratch(&changed, &s->arena);
            lf_argv_init_scratch(&deleted, &s->arena);
            lf_hash_diff(x->base_fields, x->base_values, x->nbase, h, &changed, &deleted);
            lf_sr_queue_key_list(s, a, "HSET", key, (size_t)kl, &changed, &queued);
            lf_sr_queue_key_list(s, a, "HDEL", key, (size_t)kl, &deleted, &queued);
        }
        for (size_t v = 0; v < x->nmerged; v++) {
            const char *vid = x->merged_visitors[v];
            kl = lf_key_lead(key, sizeof(key), p, vid, strlen(vid));
            lf_argv_adds(a, "DEL");
            lf_argv_add(a, key, (size_t)kl);
            lf_sr_append_argv(s, a, &queued);
            kl = lf_key_alias(key, sizeof(key), p, vid, strlen(vid));
            lf_argv_adds(a, "SET");
            lf_argv_add(a, key, (size_t)kl);
            lf_argv_add_ref(a, id, idlen);
            lf_sr_append_argv(s, a, &queued);
        }
    }
    /* lf:top: every written lead by its time-invariant engagement key; merged visitors
     * leave it. */
    int tkl = lf_key_top(key, sizeof(key), p);
    size_t base = lf_sr_begin(a, "ZADD", key, (size_t)tkl);
    for (size_t i = 0; i < n; i++) {
        if (!ok[i]) continue;
        lf_argv_add_double(a, w[i].top_key);
        lf_argv_add_ref(a, w[i].lead->id, strlen(w[i].lead->id));
    }
    lf_sr_end(s, a, base, &queued);
    base = lf_sr_begin(a, "ZREM", key, (size_t)tkl);
    for (size_t i = 0; i < n; i++)
        for (size_t v = 0; ok[i] && v < w[i].nmerged; v++)
            lf_argv_add_ref(a, w[i].merged_visitors[v], strlen(w[i].merged_visitors[v]));
    lf_sr_end(s, a, base, &queued);
    /* The stage sets: per set, the leads that left it, then those that entered it (a lead
     * leaves one set and enters another, so the order across sets does not matter). */
    for (int st = 0; st < LF_STAGE__COUNT; st++) {
        size_t skl = (size_t)lf_key_stage(key, sizeof(key), p, (lf_stage_t)st);
        base = lf_sr_begin(a, "ZREM", key, skl);
        for (size_t i = 0; i < n; i++) {
            const lf_store_write_t *x = &w[i];
            if (!ok[i]) continue;
            if (x->stage_touched && x->old_exists && (int)x->old_stage == st &&
                x->old_stage != x->lead->stage)
                lf_argv_add_ref(a, x->lead->id, strlen(x->lead->id));
            for (size_t v = 0; v < x->nmerged; v++)
                if ((int)x->merged_stages[v] == st)
                    lf_argv_add_ref(a, x->merged_visitors[v], strlen(x->merged_visitors[v]));
        }
        lf_sr_end(s, a, base, &queued);
        base = lf_sr_begin(a, "ZADD", key, skl);
        for (size_t i = 0; i < n; i++) {
            const lf_store_write_t *x = &w[i];
            if (!ok[i] || !x->stage_touched || (int)x->lead->stage != st) continue;
            lf_sr_add_stage_score(a, x->stage_score);
            lf_argv_add_ref(a, x->lead->id, strlen(x->lead->id));
        }
        lf_sr_end(s, a, base, &queued);
    }
    /* Outboxes: one HSET per partition. */
    for (size_t i = 0; i < n; i++) {
        if (!ok[i] || w[i].trans->n < 3) continue;
        int32_t part = w[i].partition;
        size_t first = 0;
        while (!(ok[first] && w[first].trans->n >= 3 && w[first].partition == part))
            first++;
        if (first != i) continue; /* this partition's HSET was built already */
        lf_argv_adds(a, "HSET");
        lf_argv_add(a, key,
                    (size_t)lf_key_outbox(key, sizeof(key), p, cfg->topic_transitions, part));
        for (size_t j = i; j < n; j++) {
            const lf_argv_t *t = w[j].trans;
            if (!ok[j] || w[j].partition != part) continue;
            for (size_t e = 0; e + 2 < t->n; e += 3) {
                lf_argv_add_ref(a, t->argv[e], t->lens[e]);
                lf_argv_add_ref(a, t->argv[e + 1], t->lens[e + 1]);
            }
        }
        lf_sr_append_argv(s, a, &queued);
    }
    /* Progress counters of the events these writes account for. */
    size_t npairs = 0;
    for (size_t i = 0; i < n; i++)
        if (ok[i] && w[i].counters) npairs += w[i].counters->n / 2;
    lf_sr_counter_t *c = lf_arena_alloc(&s->arena, (npairs + 1) * sizeof(*c));
    size_t nc = lf_sr_sum_counters(w, n, ok, c, npairs);
    int kl = lf_key_watermarks(key, sizeof(key), p, s->base.group, cfg->topic_events);
    for (size_t k = 0; k < nc; k++) {
        lf_argv_adds(a, "HINCRBY");
        lf_argv_add(a, key, (size_t)kl);
        lf_argv_add_ref(a, c[k].field, c[k].len);
        lf_argv_add_i64(a, c[k].sum);
        lf_sr_append_argv(s, a, &queued);
    }
    lf_argv_adds(a, "EXEC");
    lf_sr_append_argv(s, a, &queued);
    *nq = queued - 2;
}

/* Round 2 sent: the transaction, or only UNWATCH when no lead of the chunk still applies. */
static void lf_sr_send_commit(lf_store_redis_t *s, lf_sr_chunk_t *ch)
{
    size_t nok = 0;
    for (size_t i = 0; i < ch->n; i++) {
        nok += ch->ok[i] != 0;
        ch->results[i] = LF_WRITE_CONFLICT; /* until its EXEC succeeds */
    }
    ch->committing = nok > 0;
    if (!ch->committing) {
        const char *unwatch = "UNWATCH";
        size_t unwatch_len = 7;
        lf_sr_append(s, 1, &unwatch, &unwatch_len);
        ch->nreplies = 1;
    } else {
        size_t nq = 0;
        lf_sr_queue_chunk(s, ch->w, ch->n, ch->ok, &nq);
        ch->nreplies = nq + 2;
    }
    lf_sr_flush(s);
}

/* Round 2 read: results[] of the chunk. */
static int lf_sr_finish_chunk(lf_store_redis_t *s, lf_sr_chunk_t *ch, lf_err_t *err)
{
    size_t nr = ch->nreplies;
    redisReply **r = lf_malloc(nr * sizeof(*r));
    if (lf_sr_replies(s, nr, r, "MULTI/EXEC write leads", err)) {
        lf_free(r);
        return LF_ERR;
    }
    const redisReply *last = r[nr - 1];
    int rc = LF_OK;
    if (!ch->committing) {
        if (last->type == REDIS_REPLY_ERROR) {
            lf_err_set(err, LF_ERR, "UNWATCH failed: %.*s", (int)last->len, last->str);
            rc = LF_ERR;
        }
    } else if (last->type == REDIS_REPLY_ARRAY) {
        for (size_t k = 0; k < last->elements && rc == LF_OK; k++)
            if (last->element[k]->type == REDIS_REPLY_ERROR) {
                lf_err_set(err, LF_ERR, "writing leads failed: %.*s", (int)last->element[k]->len,
                           last->element[k]->str);
                rc = LF_ERR;
            }
        for (size_t i = 0; i < ch->n && rc == LF_OK; i++)
            if (ch->ok[i]) ch->results[i] = LF_WRITE_OK;
    } else if (last->type != REDIS_REPLY_NIL) {
        /* EXECABORT: a queued command was refused (its error came back instead of QUEUED). */
        const redisReply *why = last;
        for (size_t k = 1; k + 1 < nr; k++)
            if (r[k]->type == REDIS_REPLY_ERROR) why = r[k];
        lf_err_set(err, LF_ERR, "writing leads failed: %.*s",
                   why->type == REDIS_REPLY_ERROR ? (int)why->len : 16,
                   why->type == REDIS_REPLY_ERROR ? why->str : "unexpected reply");
        rc = LF_ERR;
    } /* NIL: a watched key changed after the check; the chunk's leads are reloaded. */
    lf_sr_free_replies(r, nr);
    return rc;
}

/* Chunks alternate between two connections, so that Redis runs chunk c's EXEC while this
 * process reads chunk c+1's check and builds its transaction. Order of a step c:
 *   read check(c) [conn c%2]; send check(c+1) [other conn, ahead of EXEC(c) on the wire];
 *   build and send MULTI..EXEC(c) [conn c%2]; read the replies of EXEC(c-1) [other conn]. */
static int lf_sr_write_leads(lf_store_t *base, lf_store_write_t *w, size_t n, int *results,
                             lf_store_prepare_fn prepare, void *ctx, lf_err_t *err)
{
    lf_store_redis_t *s = (lf_store_redis_t *)base;
    if (n == 0) return LF_OK;
    size_t nch = (n + LF_LEADS_PER_TX - 1) / LF_LEADS_PER_TX;
    lf_sr_chunk_t *ch = lf_arena_alloc(&s->arena, nch * sizeof(*ch));
    int *ok = lf_arena_alloc(&s->arena, n * sizeof(*ok));
    for (size_t c = 0; c < nch; c++) {
        size_t from = c * LF_LEADS_PER_TX;
        ch[c].w = w + from;
        ch[c].n = n - from < LF_LEADS_PER_TX ? n - from : LF_LEADS_PER_TX;
        ch[c].ok = ok + from;
        ch[c].results = results + from;
        ch[c].nreplies = 0;
        ch[c].committing = 0;
    }
    int rc = LF_ERR;
    if (lf_sr_use(s, 0, err)) goto done;
    if (prepare) prepare(ctx, w, 0, ch[0].n);
    ch[0].nreplies = lf_sr_send_check(s, ch[0].w, ch[0].n);
    for (size_t c = 0; c < nch; c++) {
        int mine = (int)(c % 2), other = 1 - mine;
        if (lf_sr_use(s, mine, err) || lf_sr_read_check(s, &ch[c], err)) goto done;
        if (c + 1 < nch) {
            /* Redis runs EXEC(c-1) meanwhile. */
            size_t from = (size_t)(ch[c + 1].w - w);
            if (prepare) prepare(ctx, w, from, from + ch[c + 1].n);
            if (lf_sr_use(s, other, err)) goto done;
            ch[c + 1].nreplies = lf_sr_send_check(s, ch[c + 1].w, ch[c + 1].n);
        }
        if (lf_sr_use(s, mine, err)) goto done;
        lf_sr_send_commit(s, &ch[c]);
        if (c > 0 && (lf_sr_use(s, other, err) || lf_sr_finish_chunk(s, &ch[c - 1], err)))
            goto done;
    }
    if (lf_sr_use(s, (int)((nch - 1) % 2), err) || lf_sr_finish_chunk(s, &ch[nch - 1], err))
        goto done;
    rc = LF_OK;
done:
    /* A half-read pipeline cannot be resumed. */
    if (rc != LF_OK) lf_sr_drop_all(s);
    lf_argv_reset(&s->argv);
    lf_arena_reset(&s->arena);
    return rc;
}

/* The fence (store.h): the store epoch, created if Redis has none, stamped on the progress
 * hash if it has none; then the positions asked for.
 * KEYS[1] the epoch key, KEYS[2] the progress hash; ARGV[1] a fresh epoch, then field names.
 * Returns {epoch, the progress hash's epoch before this call ('' = none), values ('' = none)}. */
static const char lf_fence_lua[] =
    "local e = redis.call('GET', KEYS[1])\n"
    "if not e then redis.call('SET', KEYS[1], ARGV[1]); e = ARGV[1] end\n"
    "local w = redis.call('HGET', KEYS[2], 'epoch') or ''\n"
    "if w ~= e then redis.call('HSET', KEYS[2], 'epoch', e) end\n"
    "local out = {e, w}\n"
    "for i = 2, #ARGV do out[#out + 1] = redis.call('HGET', KEYS[2], ARGV[i]) or '' end\n"
    "return out\n";

/* 128 random bits in hex: an epoch no other Redis or flush will have. */
static void lf_sr_new_epoch(char *out, size_t cap)
{
    unsigned char b[16];
    FILE *f = fopen("/dev/urandom", "rb");
    size_t got = f ? fread(b, 1, sizeof(b), f) : 0;
    if (f) fclose(f);
    if (got != sizeof(b)) { /* no /dev/urandom: time and pid, still unique enough */
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        uint64_t x = (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec,
                 y = (uint64_t)getpid();
        memcpy(b, &x, 8);
        memcpy(b + 8, &y, 8);
    }
    size_t n = 0;
    for (size_t i = 0; i < sizeof(b) && n + 3 <= cap; i++)
        n += (size_t)snprintf(out + n, cap - n, "%02x", b[i]);
}

static int lf_sr_load_watermarks(lf_store_t *base, const char *topic, const int32_t *parts,
                                 size_t n, int64_t *next, int64_t *max_event_ms, lf_err_t *err)
{
    lf_store_redis_t *s = (lf_store_redis_t *)base;
    if (lf_sr_connect(s, err)) return LF_ERR;
    char key[LF_KEY_MAX], fresh[LF_EPOCH_MAX];
    lf_sr_new_epoch(fresh, sizeof(fresh));
    lf_argv_t *a = &s->argv;
    lf_argv_reset(a);
    lf_argv_adds(a, "EVAL");
    lf_argv_adds(a, lf_fence_lua);
    lf_argv_adds(a, "2");
    lf_argv_add(a, key, (size_t)lf_key_epoch(key, sizeof(key), LF_PREFIX(s)));
    lf_argv_add(a, key,
                (size_t)lf_key_watermarks(key, sizeof(key), LF_PREFIX(s), base->group, topic));
    lf_argv_adds(a, fresh);
    for (size_t i = 0; i < n; i++) {
        lf_argv_add_i64(a, parts[i]);
        lf_argv_add_part_field(a, parts[i], "ts");
    }
    redisReply *r = redisCommandArgv(s->c, (int)a->n, a->argv, a->lens);
    lf_arena_reset(&s->arena);
    int replied = lf_redis_reply_ok(s->c, r, "reading the store epoch and positions", err);
    if (!replied || r->type != REDIS_REPLY_ARRAY || r->elements != 2 + 2 * n) {
        if (replied)
            lf_err_set(err, LF_ERR, "reading the store epoch and positions: unexpected reply");
        if (r) freeReplyObject(r);
        if (s->c && s->c->err) lf_sr_drop_all(s);
        return LF_ERR;
    }
    for (size_t i = 0; i < n; i++) {
        const redisReply *e = r->element[2 + 2 * i], *t = r->element[3 + 2 * i];
        next[i] = e->type == REDIS_REPLY_STRING && e->len ? strtoll(e->str, NULL, 10) : -1;
        max_event_ms[i] = t->type == REDIS_REPLY_STRING && t->len ? strtoll(t->str, NULL, 10) : 0;
    }
    const redisReply *ep = r->element[0], *was = r->element[1];
    char found[LF_EPOCH_MAX];
    snprintf(found, sizeof(found), "%.*s", ep->type == REDIS_REPLY_STRING ? (int)ep->len : 0,
             ep->type == REDIS_REPLY_STRING ? ep->str : "");
    int rc = LF_OK;
    if (s->epoch[0] && strcmp(s->epoch, found) != 0) {
        lf_err_set(err, LF_STORE_LOST,
                   "Redis holds store epoch %s, not %s (this instance's): it was flushed, "
                   "restarted empty or replaced",
                   found, s->epoch);
        rc = LF_STORE_LOST;
    } else if (was->type == REDIS_REPLY_STRING && was->len &&
               (was->len != strlen(found) || memcmp(was->str, found, was->len) != 0)) {
        lf_err_set(err, LF_STORE_LOST,
                   "the progress hash of %s belongs to store epoch %.*s, Redis's is %s: "
                   "Redis lost data (a partial restore?)",
                   topic, (int)was->len, was->str, found);
        rc = LF_STORE_LOST;
    }
    snprintf(s->epoch, sizeof(s->epoch), "%s", found);
    freeReplyObject(r);
    return rc;
}

/* Queue one HDEL per group; returns how many were queued. */
static size_t lf_sr_queue_outbox_deletes(lf_store_redis_t *s, const char *topic,
                                         const lf_outbox_ids_t *groups, size_t n)
{
    char key[LF_KEY_MAX];
    lf_argv_t *a = &s->argv;
    size_t queued = 0;
    for (size_t g = 0; g < n; g++) {
        if (!groups[g].n) continue;
        lf_argv_reset(a);
        lf_argv_adds(a, "HDEL");
        lf_argv_add(
            a, key,
            (size_t)lf_key_outbox(key, sizeof(key), LF_PREFIX(s), topic, groups[g].partition));
        for (size_t i = 0; i < groups[g].n; i++)
            lf_argv_add_ref(a, groups[g].ids[i], strlen(groups[g].ids[i]));
        lf_sr_append(s, a->n, a->argv, a->lens);
        queued++;
    }
    lf_arena_reset(&s->arena);
    return queued;
}

/* Read `n` replies of a pipelined round and check each; frees them. */
static int lf_sr_check_replies(lf_store_redis_t *s, size_t n, const char *what, lf_err_t *err)
{
    redisReply *one[8];
    redisReply **r = n <= 8 ? one : lf_malloc(n * sizeof(*r));
    int ok = 0;
    if (lf_sr_replies(s, n, r, what, err) == LF_OK) { /* on failure it freed what it read */
        ok = 1;
        for (size_t i = 0; i < n; i++) {
            if (ok && !lf_redis_reply_ok(s->c, r[i], what, err)) ok = 0;
            freeReplyObject(r[i]);
        }
    }
    if (r != one) lf_free(r);
    return ok ? LF_OK : LF_ERR;
}

/* Progress: a partition's next offset only moves forward (a late or repeated write from an
 * instance that lost the partition cannot rewind it), and an offset's counters are added
 * only if it is past every offset counted before: at or past the next offset stored before
 * this call, and past the runs before it in this call (runs come in consumption order; one
 * that goes back is a redelivery). So none is counted twice, whichever of two instances that
 * processed it saves first.
 * KEYS[1] the watermark hash; ARGV: the store epoch the caller writes under (its fence: no
 * progress lands in a progress hash of another epoch; '' = none yet), the number of
 * partitions, then per partition: its number,
 * its next offset, its event-time clock, the number of runs and per run: first offset,
 * length, outcome (lf_outcome_t: 1 applied, 2 filtered, 3 duplicate, 4 dead). */
static const char lf_progress_lua[] =
    "local ep = redis.call('HGET', KEYS[1], 'epoch')\n"
    "if ARGV[1] ~= '' and ep ~= ARGV[1] then\n"
    "  return redis.error_reply('LFLOST the progress hash has store epoch ' .. tostring(ep))\n"
    "end\n"
    "local i = 3\n"
    "for p = 1, tonumber(ARGV[2]) do\n"
    "  local part, nxt = ARGV[i], tonumber(ARGV[i + 1])\n"
    "  local cur = tonumber(redis.call('HGET', KEYS[1], part) or '-1')\n"
    "  local ts = tonumber(ARGV[i + 2])\n"
    "  if ts > tonumber(redis.call('HGET', KEYS[1], part .. '.ts') or '0') then\n"
    "    redis.call('HSET', KEYS[1], part .. '.ts', ts)\n"
    "  end\n"
    "  local nr = tonumber(ARGV[i + 3])\n"
    "  i = i + 4\n"
    "  local add, seen = {0, 0, 0, 0}, cur\n"
    "  for r = 1, nr do\n"
    "    local first, n, o = tonumber(ARGV[i]), tonumber(ARGV[i + 1]), tonumber(ARGV[i + 2])\n"
    "    local past = first + n - math.max(first, seen)\n"
    "    if past > 0 then\n"
    "      add[o] = add[o] + past\n"
    "      seen = first + n\n"
    "    end\n"
    "    i = i + 3\n"
    "  end\n"
    "  local counts = {{'consumed', add[1] + add[2] + add[3] + add[4]},\n"
    "                  {'applied', add[1] + add[2]}, {'filtered', add[2]},\n"
    "                  {'duplicates', add[3]}, {'dead', add[4]}}\n"
    "  for _, c in ipairs(counts) do\n"
    "    if c[2] > 0 then redis.call('HINCRBY', KEYS[1], part .. '.' .. c[1], c[2]) end\n"
    "  end\n"
    "  if nxt > cur then redis.call('HSET', KEYS[1], part, nxt) end\n"
    "end\n"
    "return 1\n";

static int lf_sr_save_progress(lf_store_t *base, const char *topic, const lf_progress_t *p,
                               size_t n, const char *outbox_topic, const lf_outbox_ids_t *done,
                               size_t ndone, lf_err_t *err)
{
    lf_store_redis_t *s = (lf_store_redis_t *)base;
    if (n == 0 && ndone == 0) return LF_OK;
    if (lf_sr_connect(s, err)) return LF_ERR;
    size_t queued = lf_sr_queue_outbox_deletes(s, outbox_topic, done, ndone);
    if (n == 0) return queued ? lf_sr_check_replies(s, queued, "HDEL outbox", err) : LF_OK;
    char key[LF_KEY_MAX];
    lf_argv_t *a = &s->argv;
    lf_argv_reset(a);
    lf_argv_adds(a, "EVAL");
    lf_argv_adds(a, lf_progress_lua);
    lf_argv_adds(a, "1");
    lf_argv_add(a, key,
                (size_t)lf_key_watermarks(key, sizeof(key), LF_PREFIX(s), base->group, topic));
    lf_argv_adds(a, s->epoch);
    lf_argv_add_i64(a, (long long)n);
    for (size_t i = 0; i < n; i++) {
        lf_argv_add_i64(a, p[i].partition);
        lf_argv_add_i64(a, (long long)p[i].next_offset);
        lf_argv_add_i64(a, (long long)p[i].max_event_ms);
        lf_argv_add_i64(a, (long long)p[i].nruns);
        for (size_t r = 0; r < p[i].nruns; r++) {
            lf_argv_add_i64(a, (long long)p[i].runs[r].first);
            lf_argv_add_i64(a, (long long)p[i].runs[r].n);
            lf_argv_add_i64(a, (long long)p[i].runs[r].outcome);
        }
    }
    lf_sr_append(s, a->n, a->argv, a->lens);
    lf_arena_reset(&s->arena);
    int rc = lf_sr_check_replies(s, queued + 1, "saving progress", err);
    if (rc != LF_OK && strstr(err->msg, "LFLOST")) err->code = LF_STORE_LOST;
    return rc;
}

void lf_outbox_entries_free(lf_outbox_entry_t *e, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        lf_free(e[i].id);
        lf_free(e[i].payload);
    }
    lf_free(e);
}

static int lf_sr_outbox_load(lf_store_t *base, const char *topic, int32_t part,
                             lf_outbox_entry_t **out, size_t *n, lf_err_t *err)
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

static int lf_sr_outbox_delete(lf_store_t *base, const char *topic, const lf_outbox_ids_t *groups,
                               size_t n, lf_err_t *err)
{
    lf_store_redis_t *s = (lf_store_redis_t *)base;
    if (lf_sr_connect(s, err)) return LF_ERR;
    size_t queued = lf_sr_queue_outbox_deletes(s, topic, groups, n);
    return queued ? lf_sr_check_replies(s, queued, "HDEL outbox", err) : LF_OK;
}

static int lf_sr_heartbeat(lf_store_t *base, const char *instance, const lf_argv_t *fields,
                           int ttl_s, lf_err_t *err)
{
    lf_store_redis_t *s = (lf_store_redis_t *)base;
    if (lf_sr_connect(s, err)) return LF_ERR;
    char key[LF_KEY_MAX], set[LF_KEY_MAX];
    int kl = lf_key_instance(key, sizeof(key), LF_PREFIX(s), instance);
    int sl = lf_key_instances(set, sizeof(set), LF_PREFIX(s));
    lf_argv_t *a = &s->argv;
    lf_argv_reset(a);
    lf_argv_adds(a, "HSET");
    lf_argv_add(a, key, (size_t)kl);
    for (size_t i = 0; i < fields->n; i++)
        lf_argv_add(a, fields->argv[i], fields->lens[i]);
    redisAppendCommandArgv(s->c, (int)a->n, a->argv, a->lens);
    redisAppendCommand(s->c, "EXPIRE %b %d", key, (size_t)kl, ttl_s);
    redisAppendCommand(s->c, "SADD %b %s", set, (size_t)sl, instance);
    lf_arena_reset(&s->arena);
    redisReply *replies[3];
    if (lf_sr_replies(s, 3, replies, "heartbeat", err)) return LF_ERR;
    int ok = 1;
    for (int i = 0; i < 3; i++) {
        if (replies[i]->type == REDIS_REPLY_ERROR)
            ok = lf_redis_reply_ok(s->c, replies[i], "heartbeat", err);
        freeReplyObject(replies[i]);
    }
    return ok ? LF_OK : LF_ERR;
}

static int lf_sr_due_mql(lf_store_t *base, int64_t until_ms, size_t max, char ***ids, size_t *n,
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

static void lf_sr_close(lf_store_t *base)
{
    lf_store_redis_t *s = (lf_store_redis_t *)base;
    lf_sr_drop_all(s);
    lf_cmdbuf_free(&s->out);
    lf_free(s->dump);
    lf_argv_free(&s->argv);
    lf_arena_free(&s->arena);
    lf_free(s);
}

static const lf_store_ops_t lf_store_redis_ops = {
    .name = "redis",
    .load_leads = lf_sr_load_leads,
    .load_aliases = lf_sr_load_aliases,
    .write_leads = lf_sr_write_leads,
    .load_watermarks = lf_sr_load_watermarks,
    .save_progress = lf_sr_save_progress,
    .outbox_load = lf_sr_outbox_load,
    .outbox_delete = lf_sr_outbox_delete,
    .due_mql = lf_sr_due_mql,
    .heartbeat = lf_sr_heartbeat,
    .close = lf_sr_close,
};

lf_store_t *lf_store_redis_open(const lf_config_t *cfg, lf_err_t *err)
{
    lf_store_redis_t *s = lf_calloc(1, sizeof(*s));
    s->base.ops = &lf_store_redis_ops;
    s->base.cfg = cfg;
    s->base.group = cfg->kafka_group;
    lf_arena_init(&s->arena, 64 * 1024);
    lf_argv_init(&s->argv, &s->arena);
    if (lf_sr_connect(s, err)) {
        /* Keep the store: the pipeline retries the connection with backoff. */
    }
    return &s->base;
}
