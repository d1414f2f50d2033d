/* Internal to the standalone Redis back end of lf_store_t (store.h): the handle, the
 * connection plumbing every part of it uses, and the operations each part implements.
 *   store_redis.c           the handle and its two connections, the server checks and the
 *                           RESTORE probe, command queueing, the heartbeat, the ops table
 *   store_redis_read.c      pipelined reads: leads, aliases, an outbox, the MQLs due to decay
 *   store_redis_write.c     lead writes: WATCH and check, then MULTI..EXEC, chunk by chunk
 *   store_redis_commit.c    what one MULTI..EXEC holds (RESTORE or HSET, SET PXAT, indexes)
 *   store_redis_progress.c  the epoch fence and start positions, progress, outbox deletes */
#ifndef LEADFLOW_STORE_REDIS_INT_H
#define LEADFLOW_STORE_REDIS_INT_H

#include <hiredis/hiredis.h>

#include <string.h>

#include "leadflow/cluster.h"
#include "leadflow/cmdbuf.h"
#include "leadflow/store.h"

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
    /* Redis may hold records of the layout before packed records (LF_LAYOUT_V1): a visitor
     * not found as a record is also looked for as the hash it had then. 0 once `<p>layout`
     * says 2 (set by the first instance on a fresh Redis). */
    int legacy;
    /* Persistence: warned about once per process, not at every reconnect. */
    int warned_persistence;
    /* The key prefix in use (base.prefix points here): the configured one, or the one
     * <configured>active names, read once at the first connection (lf_sr_resolve_prefix). */
    char prefix[256];
    int prefix_resolved;
    /* A node of a Redis Cluster (store_cluster.c drives it): connects to node_host:node_port,
     * keeps the prefix it was given, and names the shared keys by the shard in `shard`
     * (":{<tag>}" of the slot the chunk in hand lives in); merged visitors (another slot) are
     * left to the cluster back end, the lead's unit records them in <p>absorbed:{<id>}. */
    int node;
    char node_host[256];
    int node_port;
    char shard[LF_CLUSTER_TAG_MAX + 4];
    char probe_tag[LF_CLUSTER_TAG_MAX];
} lf_store_redis_t;

/* A shared key's name for the chunk in hand: as built, or its shard on a cluster node. */
static inline int lf_sr_shard(const lf_store_redis_t *s, char *key, size_t cap, int kl)
{
    if (!s->node || kl < 0 || (size_t)kl + strlen(s->shard) >= cap) return kl;
    memcpy(key + kl, s->shard, strlen(s->shard) + 1);
    return kl + (int)strlen(s->shard);
}

/* lf:top's size: per shard on a cluster, enough that the best n of all shards' best n is
 * the best n overall unless one slot holds far more than its share of the top leads (the
 * expected share is top_leads / 16384; 16 more make the miss a ~1e-9 event per slot). */
static inline int lf_sr_top_cap(const lf_store_redis_t *s)
{
    int top = s->base.cfg->top_leads;
    if (!s->node || top <= 0) return top;
    int share = top / LF_CLUSTER_SLOTS + 16;
    return share < top ? share : top;
}

/* A cluster node's store for host:port (not connected yet). */
lf_store_redis_t *lf_sr_open_node(const lf_config_t *cfg, const char *prefix, const char *group,
                                  const char *host, int port, const char *probe_tag);
void lf_sr_close(lf_store_redis_t *s);

#define LF_PREFIX(s) ((s)->prefix)

/* Commands queued between two sends: Redis works on them while the next are built. */
#define LF_FLUSH_EVERY 64

/*---- Connection plumbing (store_redis.c) ----*/

/* Connect s->c if it is not (connect, check the server, probe RESTORE). */
int lf_sr_connect(lf_store_redis_t *s, lf_err_t *err);
/* Make connection `which` (0 or 1) the one in use, connecting it if needed. */
int lf_sr_use(lf_store_redis_t *s, int which, lf_err_t *err);
/* After a failure halfway through a pipeline: drop both connections (the next call
 * reconnects) and what was queued. */
void lf_sr_drop_all(lf_store_redis_t *s);
/* Queue one command on s->c (formatted, not sent). */
void lf_sr_append(lf_store_redis_t *s, size_t argc, const char *const *argv, const size_t *lens);
/* Queue `CMD key [arg]`. */
void lf_sr_append_key(lf_store_redis_t *s, const char *cmd, const char *key, size_t kl,
                      const char *arg);
/* Queue the command in `a` (then emptied); every LF_FLUSH_EVERY commands counted in
 * *queued, send what is queued. */
void lf_sr_append_argv(lf_store_redis_t *s, lf_argv_t *a, size_t *queued);
/* Send what is queued so far. */
void lf_sr_flush(lf_store_redis_t *s);
/* Read n pipelined replies into replies[] (caller frees), or fail on the first broken one
 * (both connections are then dropped). */
int lf_sr_replies(lf_store_redis_t *s, size_t n, redisReply **replies, const char *what,
                  lf_err_t *err);
/* Whether replies[0..n) hold an error reply (NOPERM from an ACL that lacks a command,
 * WRONGTYPE from a foreign key under the prefix, ...): LF_ERR with "what: <Redis's words>" in
 * err. A read that took an error for "not there" would corrupt state silently. */
int lf_sr_reply_errors(redisReply *const *replies, size_t n, const char *what, lf_err_t *err);

/* The fence script (store_redis_progress.c): KEYS[1] an epoch key, KEYS[2] a progress hash;
 * ARGV[1] a fresh epoch, then field names. A new random store epoch into out (hex). */
extern const char lf_sr_fence_lua[];
/* The fence script's reply r (n positions asked, its shape checked by the caller): the
 * positions into next / max_event_ms, the epoch Redis holds into found; LF_STORE_LOST (err
 * says why, naming `where`) when it is not `mine` (this handle's, "" = none yet) or the
 * progress hash of `topic` was stamped with another. */
int lf_sr_fence_judge(const redisReply *r, size_t n, const char *mine, const char *topic,
                      const char *where, int64_t *next, int64_t *max_event_ms,
                      char found[LF_EPOCH_MAX], lf_err_t *err);
void lf_sr_new_epoch(char *out, size_t cap);
/* Whether a field of lf:funnel is a visitor bucket ("visitor:<unix s>") at or before now_s:
 * its visitors expired, the field can go. */
int lf_sr_funnel_expired(const char *field, size_t len, long long now_s);

/*---- The operations (store.h), by part ----*/

int lf_sr_load_leads(lf_store_t *base, const char *const *ids, const uint8_t *visitor, size_t n,
                     lf_lead_t *const *out, const lf_model_t *m, lf_stored_hash_t *stored,
                     lf_arena_t *arena, lf_err_t *err);
int lf_sr_load_aliases(lf_store_t *base, const char *const *anons, size_t n, char **out,
                       lf_arena_t *arena, lf_err_t *err);
int lf_sr_outbox_load(lf_store_t *base, const char *topic, const int32_t *parts, size_t nparts,
                      lf_outbox_entry_t **out, size_t *n, lf_err_t *err);
int lf_sr_scan_index(lf_store_t *base, lf_store_index_t index, uint64_t *cursor, size_t count,
                     char ***ids, size_t *n, lf_arena_t *arena, lf_err_t *err);
int lf_sr_due_mql(lf_store_t *base, int64_t until_ms, size_t max, char ***ids, size_t *n,
                  lf_arena_t *arena, lf_err_t *err);

/* Whether visitor v merged into write x was read from the layout before packed records. */
static inline int lf_sr_merged_legacy(const lf_store_write_t *x, size_t v)
{
    return x->merged_layouts && x->merged_layouts[v];
}
/* Round 2 of a lead write (store_redis_commit.c): MULTI, the writes of the leads with ok[i],
 * EXEC; the number of commands between MULTI and EXEC goes to *nq. top_cutoff: lf:top's
 * lowest key when full (-inf: not full). */
void lf_sr_queue_chunk(lf_store_redis_t *s, const lf_store_write_t *w, size_t n, const int *ok,
                       double top_cutoff, size_t *nq);
int lf_sr_write_leads(lf_store_t *base, lf_store_write_t *w, size_t n, int *results,
                      lf_store_prepare_fn prepare, void *ctx, lf_err_t *err);
/* The same with the chunks given: chunk c is w[ends[c-1] .. ends[c]) (ends NULL: chunks of
 * LF_LEADS_PER_TX), in the shard shards[c] (a cluster node: the chunk's slot, ":{tag}"). */
int lf_sr_write_chunks(lf_store_redis_t *s, lf_store_write_t *w, size_t n, int *results,
                       lf_store_prepare_fn prepare, void *ctx, const size_t *ends,
                       const char *const *shards, size_t nends, lf_err_t *err);
/* One record's reply (a lead's HGETALL, a visitor's GET) decoded into *out (store_redis_read.c);
 * with `stored`, its pairs copied into arena. */
int lf_sr_decode_reply(const redisReply *r, const char *id, lf_lead_t *out, const lf_model_t *m,
                       lf_stored_hash_t *stored, lf_arena_t *arena, lf_err_t *err);

int lf_sr_load_watermarks(lf_store_t *base, const char *topic, const int32_t *parts, size_t n,
                          int64_t *next, int64_t *max_event_ms, lf_err_t *err);
int lf_sr_save_progress(lf_store_t *base, const char *topic, const lf_progress_t *p, size_t n,
                        const char *outbox_topic, const lf_outbox_ids_t *done, size_t ndone,
                        lf_err_t *err);
int lf_sr_outbox_delete(lf_store_t *base, const char *topic, const lf_outbox_ids_t *groups,
                        size_t n, lf_err_t *err);

#endif
