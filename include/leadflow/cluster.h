/* Redis Cluster groundwork (docs/design.md "Redis Cluster: slots and redirections"): the pure
 * layer a cluster store back end routes with. No I/O, no Redis client: the hash slot of a key,
 * the reading of a MOVED / ASK / TRYAGAIN / CLUSTERDOWN error reply, and a slot -> node map
 * built from a CLUSTER SLOTS reply the caller has read into plain structs.
 *
 *   cluster_slot.c      CRC16 and the slot of a key (its hash tag)
 *   cluster_redirect.c  the error replies of a cluster node
 *   cluster_map.c       the slot map */
#ifndef LEADFLOW_CLUSTER_H
#define LEADFLOW_CLUSTER_H

#include <stddef.h>
#include <stdint.h>

#include "leadflow/common.h"

#define LF_CLUSTER_SLOTS 16384
/* A node's host as a reply names it, NUL included: Redis refuses an announced hostname of
 * 256 characters or more, and an IP address is shorter. */
#define LF_CLUSTER_HOST_MAX 256

/*---- Slots (cluster_slot.c) ----*/

/* CRC16-CCITT as Redis Cluster uses it (XMODEM: polynomial 0x1021, initial value 0, no
 * reflection, no final xor). "123456789" -> 0x31c3. */
uint16_t lf_cluster_crc16(const void *data, size_t len);

/* The hash slot of a key of len bytes (binary-safe): CRC16 of its hash tag, or of the whole
 * key when it has none, mod 16384. The tag is what lies between the key's first '{' and the
 * first '}' after it, when that is at least one byte; "{}" (or no '}') means no tag. */
uint16_t lf_cluster_slot(const char *key, size_t len);

/* A hash tag for every slot: tags[k] is the shortest string of [0-9a-z] (by length, then in
 * order) whose slot is k, so that a key "<name>:{tags[k]}" lives in slot k. The per-slot
 * shards of the shared keys take these tags, which puts them in the slot of the leads they
 * index (docs/design.md "Redis Cluster: the write path by slot"). The same on every host and
 * in every version: the enumeration is fixed. */
#define LF_CLUSTER_TAG_MAX 5 /* 4 characters and the NUL cover every slot */
typedef struct {
    char tag[LF_CLUSTER_SLOTS][LF_CLUSTER_TAG_MAX];
} lf_cluster_tags_t;

/* Fill t (80 KiB; about 2 ms). LF_ERR if a slot were left without a tag (it is not). */
int lf_cluster_tags_build(lf_cluster_tags_t *t);

/*---- Redirections (cluster_redirect.c) ----*/

typedef enum {
    LF_CLUSTER_REPLY_OTHER = 0, /* not one of the below (lf_cluster_redirect_parse: LF_ERR) */
    LF_CLUSTER_MOVED,           /* the slot lives on host:port now: update the map, retry */
    LF_CLUSTER_ASK,             /* this one command: ASKING then the command on host:port */
    LF_CLUSTER_TRYAGAIN,        /* multi-key command during a slot's migration: retry later */
    LF_CLUSTER_CLUSTERDOWN,     /* the cluster (or this slot) is not served: retry later */
} lf_cluster_reply_kind_t;

typedef struct {
    lf_cluster_reply_kind_t kind;
    uint16_t slot; /* MOVED, ASK; 0 otherwise */
    uint16_t port; /* MOVED, ASK: 1..65535; 0 otherwise */
    /* MOVED, ASK: the host as sent, NUL-terminated; "" otherwise. An empty host ("MOVED 3999
     * :6380", Redis 7 with cluster-preferred-endpoint-type unknown-endpoint) means the host of
     * the node that sent the reply. "?" (a node told to announce a hostname it has not got) is
     * passed on as it is: lf_cluster_map_moved refuses it. */
    char host[LF_CLUSTER_HOST_MAX];
} lf_cluster_redirect_t;

/* Reads an error reply's text, without the RESP '-' and CRLF (hiredis's reply->str, len =
 * reply->len):
 *   "MOVED <slot> <host>:<port>"  "ASK <slot> <host>:<port>"
 * with single spaces, <slot> 1 to 5 decimal digits up to 16383, <port> 1 to 5 decimal digits
 * from 1 to 65535 after the host's LAST colon (an IPv6 address is sent bare: "::1:6379" is host
 * "::1"), the host empty or up to LF_CLUSTER_HOST_MAX - 1 bytes of no blank, control byte or
 * NUL, and nothing after the port; and
 *   "TRYAGAIN[ <text>]"  "CLUSTERDOWN[ <text>]"
 * (first word exact, case-sensitive, as Redis sends it). LF_OK with *out filled, or LF_ERR for
 * anything else (another error, a malformed or out-of-range redirection) with *out zeroed
 * (kind LF_CLUSTER_REPLY_OTHER). */
int lf_cluster_redirect_parse(const char *err, size_t len, lf_cluster_redirect_t *out);

/*---- The slot map (cluster_map.c) ----*/

#define LF_CLUSTER_NO_NODE 0xffff /* a slot no node serves, in lf_cluster_map_t.slot_node */
#define LF_CLUSTER_NODES_MAX 4096 /* nodes a map holds (primaries and replicas) */

/* One node address of a CLUSTER SLOTS entry, as the caller read it: host NULL or "" for the
 * reply's NULL or empty endpoint (the node the reply came from, on this port). */
typedef struct {
    const char *host; /* NUL-terminated; not kept */
    uint16_t port;
} lf_cluster_addr_t;

/* One CLUSTER SLOTS entry: slots start..end (inclusive) served by primary, with its
 * replicas. */
typedef struct {
    uint16_t start, end;
    lf_cluster_addr_t primary;
    const lf_cluster_addr_t *replicas;
    size_t nreplicas;
} lf_cluster_range_t;

typedef struct {
    char host[LF_CLUSTER_HOST_MAX];
    uint16_t port;
    int32_t primary; /* -1: a primary; else the index of its primary (as CLUSTER SLOTS said) */
} lf_cluster_node_t;

/* slot -> node index in O(1). Nodes are only added (an index stays valid until the next
 * build); a node no slot points at any longer stays in the table. */
typedef struct {
    uint16_t slot_node[LF_CLUSTER_SLOTS]; /* index into nodes, or LF_CLUSTER_NO_NODE */
    lf_cluster_node_t *nodes;
    size_t nnodes, cap;
} lf_cluster_map_t;

/* An empty map: every slot LF_CLUSTER_NO_NODE. lf_cluster_map_free releases the node table
 * (the map can be built again after it). */
void lf_cluster_map_init(lf_cluster_map_t *m);
void lf_cluster_map_free(lf_cluster_map_t *m);

/* Replaces the map by the n ranges. `origin` is the host the CLUSTER SLOTS reply came from:
 * it stands for a NULL or empty host (NULL origin: such a host is an error). LF_ERR, with the
 * map left empty, when a range is reversed or past slot 16383, two ranges overlap, a port is
 * 0, a host is "?" or too long, a replica is its own primary, or the nodes would exceed
 * LF_CLUSTER_NODES_MAX. Nodes are
 * deduplicated by host and port; a slot no range names stays LF_CLUSTER_NO_NODE. */
int lf_cluster_map_build(lf_cluster_map_t *m, const lf_cluster_range_t *ranges, size_t n,
                         const char *origin);

/* The index of the node serving slot (a primary), or LF_ERR when none is known or slot is
 * out of range. */
static inline int lf_cluster_map_lookup(const lf_cluster_map_t *m, uint16_t slot)
{
    if (slot >= LF_CLUSTER_SLOTS || m->slot_node[slot] == LF_CLUSTER_NO_NODE) return LF_ERR;
    return m->slot_node[slot];
}

/* A node by index; NULL when out of range. */
const lf_cluster_node_t *lf_cluster_map_node(const lf_cluster_map_t *m, int index);

/* Applies a MOVED: its slot now points at host:port (found, or added as a primary; a node
 * known as a replica is a primary from now on: a failover). `origin` is the host of the node
 * that sent the MOVED, for an empty host. Returns the node's index, or LF_ERR when r is not a
 * MOVED, its host is "?" or empty with no origin, or the table is full (the map unchanged). */
int lf_cluster_map_moved(lf_cluster_map_t *m, const lf_cluster_redirect_t *r, const char *origin);

#endif
