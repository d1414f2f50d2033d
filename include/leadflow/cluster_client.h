/* A small Redis Cluster client on hiredis (Debian's hiredis has none): the slot map read
 * with CLUSTER SLOTS from any reachable node, one connection per node, and commands routed by
 * slot, pipelined per node, following MOVED (the map is updated, then read again) and ASK
 * (ASKING, then the command, on the node named), waiting out TRYAGAIN and CLUSTERDOWN and a
 * node that went away (a failover) for a bounded time. The pure part (slots, the reading of
 * redirections, the map) is cluster.h; docs/design.md "Redis Cluster: slots and
 * redirections". Used by the cluster store back end and by the commands that read a cluster
 * (top, stats, inspect). Not thread-safe: one per thread. */
#ifndef LEADFLOW_CLUSTER_CLIENT_H
#define LEADFLOW_CLUSTER_CLIENT_H

#include <hiredis/hiredis.h>
#include <stddef.h>
#include <stdint.h>

#include "leadflow/cluster.h"
#include "leadflow/common.h"
#include "leadflow/config.h"

typedef struct lf_cc lf_cc_t;

/* A client for the cluster cfg->redis_cluster_nodes names ("host:port[,host:port...]"); no
 * I/O yet (the first call reads the map). NULL with err set when the list does not parse. */
lf_cc_t *lf_cc_new(const lf_config_t *cfg, lf_err_t *err);
void lf_cc_free(lf_cc_t *cc);

/* Send what lf_cc_run runs to a replica of the slot's primary where it has one (READONLY on
 * that connection): for read-only commands that may lag the primary a little. */
void lf_cc_read_replicas(lf_cc_t *cc, int on);

/* Read the slot map again (CLUSTER SLOTS from a known node, else from a seed). LF_ERR when
 * no node answers or the map leaves a slot unserved (the cluster is not ready). */
int lf_cc_refresh(lf_cc_t *cc, lf_err_t *err);

/* The map as last read (lf_cc_refresh first if it was never read). */
const lf_cluster_map_t *lf_cc_map(lf_cc_t *cc);

/* The primary serving slot: its node index, reading the map first if needed; LF_ERR. */
int lf_cc_primary(lf_cc_t *cc, uint16_t slot, lf_err_t *err);

/* The connection to node i, connected (AUTH as the rules say) if it is not; NULL with err.
 * After an I/O error on it, lf_cc_drop closes it (the next call reconnects). */
redisContext *lf_cc_conn(lf_cc_t *cc, int node, lf_err_t *err);
void lf_cc_drop(lf_cc_t *cc, int node);

/* The primaries serving at least one slot, in node order: their indexes into out (at most
 * cap); returns how many. */
size_t lf_cc_primaries(lf_cc_t *cc, int *out, size_t cap);

/* How many replicas node i has in the map (CLUSTER SLOTS leaves failed replicas out). */
size_t lf_cc_replicas(lf_cc_t *cc, int node);

/* The per-slot hash tags (cluster.h lf_cluster_tags_build), built once per process. */
const lf_cluster_tags_t *lf_cc_tags(void);

/* One routed command: its slot, its arguments (kept by the caller until lf_cc_run returns),
 * and the reply (NULL until run; freed by the caller with freeReplyObject). */
typedef struct {
    uint16_t slot;
    size_t argc;
    const char *const *argv;
    const size_t *lens;
    redisReply *reply;
} lf_cc_cmd_t;

/* Run n commands, each on the primary of its slot: pipelined per node, every node's commands
 * sent before any reply is read. A command answered with MOVED or ASK is sent again where the
 * answer says; with TRYAGAIN or CLUSTERDOWN, or when its node went away, again after a short
 * wait and a new map, until the rules' redis.timeout_ms has passed since the call began (at
 * least 5 s: a failover takes the cluster's node timeout and an election). A command may so
 * run twice: use it for reads and idempotent writes only. Other error replies (WRONGTYPE,
 * NOPERM, ...) are returned as replies. LF_ERR when a command could not be run in time; the
 * replies read so far are then freed. */
int lf_cc_run(lf_cc_t *cc, lf_cc_cmd_t *cmds, size_t n, lf_err_t *err);

/* One command (lf_cc_run of one); the reply, or NULL with err. */
redisReply *lf_cc_command(lf_cc_t *cc, uint16_t slot, size_t argc, const char *const *argv,
                          const size_t *lens, lf_err_t *err);

/* Free the replies of cmds[0..n) and set them NULL. */
void lf_cc_free_replies(lf_cc_cmd_t *cmds, size_t n);

#endif
