/* The slot map of a Redis Cluster (cluster.h): a 16384-entry table of node indices, built from
 * a CLUSTER SLOTS reply and kept current by MOVED redirections. */
#include <string.h>

#include "leadflow/alloc.h"
#include "leadflow/cluster.h"

void lf_cluster_map_init(lf_cluster_map_t *m)
{
    memset(m->slot_node, 0xff, sizeof(m->slot_node)); /* LF_CLUSTER_NO_NODE */
    m->nodes = NULL;
    m->nnodes = m->cap = 0;
}

void lf_cluster_map_free(lf_cluster_map_t *m)
{
    lf_free(m->nodes);
    lf_cluster_map_init(m);
}

const lf_cluster_node_t *lf_cluster_map_node(const lf_cluster_map_t *m, int index)
{
    return index >= 0 && (size_t)index < m->nnodes ? &m->nodes[index] : NULL;
}

/* The host a reply's endpoint stands for: origin for NULL or "", NULL when unusable. */
static const char *lf_endpoint(const char *host, const char *origin)
{
    if (!host || !*host) host = origin;
    if (!host || strcmp(host, "?") == 0 || strlen(host) >= LF_CLUSTER_HOST_MAX) return NULL;
    return host;
}

/* The index of host:port, added (as a primary) when new; LF_ERR when the table is full. */
static int lf_node_index(lf_cluster_map_t *m, const char *host, uint16_t port)
{
    for (size_t i = 0; i < m->nnodes; i++)
        if (m->nodes[i].port == port && strcmp(m->nodes[i].host, host) == 0) return (int)i;
    if (m->nnodes >= LF_CLUSTER_NODES_MAX) return LF_ERR;
    if (m->nnodes == m->cap) {
        size_t cap = m->cap ? m->cap * 2 : 8;
        m->nodes = lf_realloc(m->nodes, cap * sizeof(*m->nodes)); /* aborts on OOM */
        m->cap = cap;
    }
    lf_cluster_node_t *n = &m->nodes[m->nnodes];
    memset(n, 0, sizeof(*n));
    memcpy(n->host, host, strlen(host) + 1); /* lf_endpoint checked the length */
    n->port = port;
    n->primary = -1;
    return (int)m->nnodes++;
}

/* The node of an address, added when new; LF_ERR for an unusable one. */
static int lf_addr_index(lf_cluster_map_t *m, const lf_cluster_addr_t *a, const char *origin)
{
    const char *host = lf_endpoint(a->host, origin);
    if (!host || a->port == 0) return LF_ERR;
    return lf_node_index(m, host, a->port);
}

int lf_cluster_map_build(lf_cluster_map_t *m, const lf_cluster_range_t *ranges, size_t n,
                         const char *origin)
{
    memset(m->slot_node, 0xff, sizeof(m->slot_node));
    m->nnodes = 0;
    for (size_t r = 0; r < n; r++) {
        const lf_cluster_range_t *g = &ranges[r];
        if (g->start > g->end || g->end >= LF_CLUSTER_SLOTS) goto fail;
        int p = lf_addr_index(m, &g->primary, origin);
        if (p < 0) goto fail;
        for (size_t i = 0; i < g->nreplicas; i++) {
            int q = lf_addr_index(m, &g->replicas[i], origin);
            if (q < 0 || q == p) goto fail;
            m->nodes[q].primary = p;
        }
        for (unsigned s = g->start; s <= g->end; s++) {
            if (m->slot_node[s] != LF_CLUSTER_NO_NODE) goto fail; /* overlapping ranges */
            m->slot_node[s] = (uint16_t)p;
        }
    }
    /* A node named as a replica in one entry and as a primary in another: the primary wins
     * (CLUSTER SLOTS does not say so of one node; a map half-way through a failover might). */
    for (size_t s = 0; s < LF_CLUSTER_SLOTS; s++)
        if (m->slot_node[s] != LF_CLUSTER_NO_NODE) m->nodes[m->slot_node[s]].primary = -1;
    return LF_OK;
fail:
    memset(m->slot_node, 0xff, sizeof(m->slot_node));
    m->nnodes = 0;
    return LF_ERR;
}

int lf_cluster_map_moved(lf_cluster_map_t *m, const lf_cluster_redirect_t *r, const char *origin)
{
    if (r->kind != LF_CLUSTER_MOVED || r->slot >= LF_CLUSTER_SLOTS || r->port == 0) return LF_ERR;
    const char *host = lf_endpoint(r->host, origin);
    if (!host) return LF_ERR;
    int i = lf_node_index(m, host, r->port);
    if (i < 0) return LF_ERR;
    m->nodes[i].primary = -1;
    m->slot_node[r->slot] = (uint16_t)i;
    return i;
}
