/* Internal to the Redis Cluster back end of lf_store_t (store.h; docs/design.md "Redis
 * Cluster: the write path by slot"). The client (cluster_client.h) routes reads and idempotent
 * writes; each primary also gets a node store (store_redis_int.h, node mode) that runs the
 * lead transactions of the slots it serves, one slot per transaction, with the slot's shards.
 *   store_cluster.c           the handle, node stores, WAIT, the heartbeat, the ops table
 *   store_cluster_read.c      leads, aliases, outboxes, the MQLs due, index scans (all shards)
 *   store_cluster_write.c     lead units by slot, then the merged visitors' units
 *   store_cluster_progress.c  the per-slot epochs, start positions, progress, outbox deletes */
#ifndef LEADFLOW_STORE_CLUSTER_INT_H
#define LEADFLOW_STORE_CLUSTER_INT_H

#include "leadflow/cluster_client.h"
#include "store_redis_int.h"

typedef struct {
    char host[LF_CLUSTER_HOST_MAX];
    int port;
    lf_store_redis_t *st;
    int wrote; /* since the last WAIT */
} lf_scl_node_t;

typedef struct {
    lf_store_t base;
    lf_cc_t *cc;
    lf_scl_node_t *nodes;
    size_t nnodes, capnodes;
    char prefix[256];
    /* The store epoch every slot's <p>epoch:{t_k} holds ("" until the first fence), and
     * whether every slot was checked against it since the start or the last loss. */
    char epoch[LF_EPOCH_MAX];
    int epochs_checked;
    uint32_t prune_next; /* the next lf:funnel shard the heartbeat prunes */
    int64_t map_read_ms; /* monotonic: the slot map was last read (the heartbeat rereads) */
    lf_arena_t arena;
    lf_argv_t argv;
} lf_store_cluster_t;

#define LF_SCL_PREFIX(s) ((s)->prefix)

/* The node store of the primary serving slot (created on first use); NULL with err. */
lf_store_redis_t *lf_scl_node_for(lf_store_cluster_t *s, uint16_t slot, lf_scl_node_t **node,
                                  lf_err_t *err);
/* WAIT on every node store written since the last call, for as many replicas as the rules
 * ask (at most the primary's): LF_ERR when fewer acknowledged in time. */
int lf_scl_wait(lf_store_cluster_t *s, lf_err_t *err);
/* Whether err says the cluster moved (a redirection, a slot not served, a node gone): the map
 * is read again and the step retried. */
int lf_scl_retryable(const lf_err_t *err);
/* ":{<tag>}" of slot k into buf. */
void lf_scl_shard(char *buf, size_t cap, uint16_t slot);
/* key (kl bytes) followed by slot's shard suffix, NUL-terminated, in arena a. */
char *lf_scl_shard_key(lf_arena_t *a, const char *key, size_t kl, uint16_t slot);
/* A routed command of the arguments in `argv` (kept by the caller until it is run). */
static inline lf_cc_cmd_t lf_scl_cmd(uint16_t slot, const lf_argv_t *argv)
{
    return (lf_cc_cmd_t){slot, argv->n, (const char *const *)argv->argv, argv->lens, NULL};
}
/* Run the same command on every slot's shard of a key (name + ":{t_k}"): fill(ctx, k, argv)
 * builds each (its key first after the command name is set by the caller); replies are
 * handed to each(ctx, k, reply). Pipelined per node over all 16384 slots, in blocks. */
typedef void (*lf_scl_build_fn)(void *ctx, uint16_t slot, const char *key, size_t kl, lf_argv_t *a);
typedef int (*lf_scl_reply_fn)(void *ctx, uint16_t slot, const redisReply *r, lf_err_t *err);
int lf_scl_each_shard(lf_store_cluster_t *s, const char *key, size_t kl, lf_scl_build_fn build,
                      lf_scl_reply_fn each, void *ctx, lf_err_t *err);

int lf_scl_load_leads(lf_store_t *base, const char *const *ids, const uint8_t *visitor, size_t n,
                      lf_lead_t *const *out, const lf_model_t *m, lf_stored_hash_t *stored,
                      lf_arena_t *arena, lf_err_t *err);
int lf_scl_load_aliases(lf_store_t *base, const char *const *anons, size_t n, char **out,
                        lf_arena_t *arena, lf_err_t *err);
int lf_scl_outbox_load(lf_store_t *base, const char *topic, const int32_t *parts, size_t nparts,
                       lf_outbox_entry_t **out, size_t *n, lf_err_t *err);
int lf_scl_due_mql(lf_store_t *base, int64_t until_ms, size_t max, char ***ids, size_t *n,
                   lf_arena_t *arena, lf_err_t *err);
int lf_scl_scan_index(lf_store_t *base, lf_store_index_t index, uint64_t *cursor, size_t count,
                      char ***ids, size_t *n, lf_arena_t *arena, lf_err_t *err);
/* A merged visitor's unit in its own slot (store_cluster_write.c): the claim before the
 * lead's unit, or the clearing after it; *ok = 0 when the visitor is not as expected. */
int lf_scl_visitor_unit(lf_store_cluster_t *s, const char *id, const char *anon, uint64_t version,
                        int claim, int *ok, lf_err_t *err);
int lf_scl_write_leads(lf_store_t *base, lf_store_write_t *w, size_t n, int *results,
                       lf_store_prepare_fn prepare, void *ctx, lf_err_t *err);
int lf_scl_load_watermarks(lf_store_t *base, const char *topic, const int32_t *parts, size_t n,
                           int64_t *next, int64_t *max_event_ms, lf_err_t *err);
int lf_scl_save_progress(lf_store_t *base, const char *topic, const lf_progress_t *p, size_t n,
                         const char *outbox_topic, const lf_outbox_ids_t *done, size_t ndone,
                         lf_err_t *err);
int lf_scl_outbox_delete(lf_store_t *base, const char *topic, const lf_outbox_ids_t *groups,
                         size_t n, lf_err_t *err);

#endif
