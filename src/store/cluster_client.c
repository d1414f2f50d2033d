/* The Redis Cluster client (cluster_client.h): connections by node address, the slot map from
 * CLUSTER SLOTS, and routed, pipelined commands that follow the cluster's redirections. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "leadflow/alloc.h"
#include "leadflow/cluster_client.h"
#include "leadflow/redis.h"

/* A node address and its connection (NULL: not connected). Kept by address, not by map index:
 * a map read again numbers its nodes anew. */
typedef struct {
    char host[LF_CLUSTER_HOST_MAX];
    uint16_t port;
    redisContext *c;
    int readonly; /* a replica read from: READONLY after connecting */
} lf_cc_link_t;

struct lf_cc {
    const lf_config_t *cfg;
    lf_cc_link_t *links;
    size_t nlinks, caplinks;
    size_t nseeds; /* links[0..nseeds) are the seeds, in the order given */
    lf_cluster_map_t map;
    int have_map;
    int replica_reads;
};

void lf_cc_read_replicas(lf_cc_t *cc, int on)
{
    cc->replica_reads = on;
}

static int lf_cc_link(lf_cc_t *cc, const char *host, uint16_t port)
{
    for (size_t i = 0; i < cc->nlinks; i++)
        if (cc->links[i].port == port && strcmp(cc->links[i].host, host) == 0) return (int)i;
    if (cc->nlinks == cc->caplinks) {
        cc->caplinks = cc->caplinks ? cc->caplinks * 2 : 8;
        cc->links = lf_realloc(cc->links, cc->caplinks * sizeof(*cc->links));
    }
    lf_cc_link_t *l = &cc->links[cc->nlinks];
    memset(l, 0, sizeof(*l));
    snprintf(l->host, sizeof(l->host), "%s", host);
    l->port = port;
    return (int)cc->nlinks++;
}

lf_cc_t *lf_cc_new(const lf_config_t *cfg, lf_err_t *err)
{
    const char *list = cfg->redis_cluster_nodes;
    if (!list || !*list) {
        lf_err_set(err, LF_ERR, "redis.cluster.nodes is empty: name at least one node, host:port");
        return NULL;
    }
    lf_cc_t *cc = lf_calloc(1, sizeof(*cc));
    cc->cfg = cfg;
    lf_cluster_map_init(&cc->map);
    const char *p = list;
    while (*p) {
        size_t n = strcspn(p, ",");
        char item[LF_CLUSTER_HOST_MAX + 8];
        snprintf(item, sizeof(item), "%.*s", (int)(n < sizeof(item) ? n : sizeof(item) - 1), p);
        char *s = item;
        while (*s == ' ')
            s++;
        char *end = s + strlen(s);
        while (end > s && end[-1] == ' ')
            *--end = '\0';
        char *colon = strrchr(s, ':');
        int64_t port = 0;
        if (!colon || colon == s || n >= sizeof(item) ||
            lf_parse_i64(colon + 1, 1, 65535, &port) != LF_OK) {
            lf_err_set(err, LF_ERR,
                       "redis.cluster.nodes: \"%.*s\" is not host:port (a port from 1 to 65535)",
                       (int)(n > 80 ? 80 : n), p);
            lf_cc_free(cc);
            return NULL;
        }
        *colon = '\0';
        lf_cc_link(cc, s, (uint16_t)port);
        p += n;
        if (*p == ',') p++;
    }
    cc->nseeds = cc->nlinks;
    if (!cc->nseeds) {
        lf_err_set(err, LF_ERR, "redis.cluster.nodes names no node");
        lf_cc_free(cc);
        return NULL;
    }
    return cc;
}

void lf_cc_free(lf_cc_t *cc)
{
    if (!cc) return;
    for (size_t i = 0; i < cc->nlinks; i++)
        if (cc->links[i].c) redisFree(cc->links[i].c);
    lf_free(cc->links);
    lf_cluster_map_free(&cc->map);
    lf_free(cc);
}

static redisContext *lf_cc_link_conn(lf_cc_t *cc, int li, lf_err_t *err)
{
    lf_cc_link_t *l = &cc->links[li];
    if (l->c && !l->c->err) return l->c;
    if (l->c) redisFree(l->c);
    l->c = lf_redis_connect_to(cc->cfg, l->host, l->port, err);
    if (l->c && l->readonly) {
        redisReply *r = redisCommand(l->c, "READONLY");
        if (!lf_redis_reply_ok(l->c, r, "READONLY", err)) {
            redisFree(l->c);
            l->c = NULL;
        }
        if (r) freeReplyObject(r);
    }
    return l->c;
}

static void lf_cc_link_drop(lf_cc_t *cc, int li)
{
    if (cc->links[li].c) redisFree(cc->links[li].c);
    cc->links[li].c = NULL;
}

/* The link of map node i. */
static int lf_cc_node_link(lf_cc_t *cc, int node)
{
    const lf_cluster_node_t *n = lf_cluster_map_node(&cc->map, node);
    return n ? lf_cc_link(cc, n->host, n->port) : LF_ERR;
}

redisContext *lf_cc_conn(lf_cc_t *cc, int node, lf_err_t *err)
{
    int li = lf_cc_node_link(cc, node);
    if (li < 0) {
        lf_err_set(err, LF_ERR, "no Redis Cluster node %d in the slot map", node);
        return NULL;
    }
    return lf_cc_link_conn(cc, li, err);
}

void lf_cc_drop(lf_cc_t *cc, int node)
{
    int li = lf_cc_node_link(cc, node);
    if (li >= 0) lf_cc_link_drop(cc, li);
}

/* One address of a CLUSTER SLOTS entry: [host, port, id, ...]. */
static int lf_cc_addr(const redisReply *r, lf_cluster_addr_t *out)
{
    if (r->type != REDIS_REPLY_ARRAY || r->elements < 2 ||
        r->element[1]->type != REDIS_REPLY_INTEGER || r->element[1]->integer < 1 ||
        r->element[1]->integer > 65535)
        return LF_ERR;
    const redisReply *h = r->element[0];
    if (h->type != REDIS_REPLY_STRING && h->type != REDIS_REPLY_NIL) return LF_ERR;
    out->host = h->type == REDIS_REPLY_STRING ? h->str : NULL;
    out->port = (uint16_t)r->element[1]->integer;
    return LF_OK;
}

/* The map from a CLUSTER SLOTS reply of the node at `origin`. */
static int lf_cc_build(lf_cc_t *cc, const redisReply *r, const char *origin, lf_err_t *err)
{
    if (r->type != REDIS_REPLY_ARRAY) {
        lf_err_set(err, LF_ERR, "CLUSTER SLOTS: unexpected reply (type %d)", r->type);
        return LF_ERR;
    }
    size_t n = r->elements, nreps = 0;
    for (size_t i = 0; i < n; i++)
        if (r->element[i]->type == REDIS_REPLY_ARRAY && r->element[i]->elements > 3)
            nreps += r->element[i]->elements - 3;
    lf_cluster_range_t *ranges = lf_calloc(n + 1, sizeof(*ranges));
    lf_cluster_addr_t *reps = lf_calloc(nreps + 1, sizeof(*reps));
    size_t used = 0;
    int rc = LF_OK;
    for (size_t i = 0; i < n && rc == LF_OK; i++) {
        const redisReply *e = r->element[i];
        if (e->type != REDIS_REPLY_ARRAY || e->elements < 3 ||
            e->element[0]->type != REDIS_REPLY_INTEGER ||
            e->element[1]->type != REDIS_REPLY_INTEGER || e->element[0]->integer < 0 ||
            e->element[1]->integer >= LF_CLUSTER_SLOTS ||
            lf_cc_addr(e->element[2], &ranges[i].primary) != LF_OK) {
            lf_err_set(err, LF_ERR, "CLUSTER SLOTS: entry %zu is malformed", i);
            rc = LF_ERR;
            break;
        }
        ranges[i].start = (uint16_t)e->element[0]->integer;
        ranges[i].end = (uint16_t)e->element[1]->integer;
        ranges[i].replicas = reps + used;
        for (size_t k = 3; k < e->elements; k++)
            if (lf_cc_addr(e->element[k], &reps[used]) == LF_OK) {
                used++;
                ranges[i].nreplicas++;
            }
    }
    if (rc == LF_OK && lf_cluster_map_build(&cc->map, ranges, n, origin) != LF_OK) {
        lf_err_set(err, LF_ERR, "CLUSTER SLOTS from %s: the slot map does not hold together",
                   origin);
        rc = LF_ERR;
    }
    lf_free(ranges);
    lf_free(reps);
    return rc;
}

int lf_cc_refresh(lf_cc_t *cc, lf_err_t *err)
{
    /* Ask the nodes of the map first (they know the latest configuration), then the seeds. */
    size_t nask = 0;
    int *ask = lf_malloc((cc->map.nnodes + cc->nseeds + 1) * sizeof(*ask));
    for (size_t i = 0; cc->have_map && i < cc->map.nnodes; i++)
        ask[nask++] = lf_cc_node_link(cc, (int)i);
    for (size_t i = 0; i < cc->nseeds; i++)
        ask[nask++] = (int)i;
    lf_err_t last = {0};
    int rc = LF_ERR;
    for (size_t k = 0; k < nask && rc != LF_OK; k++) {
        int li = ask[k];
        if (li < 0) continue;
        redisContext *c = lf_cc_link_conn(cc, li, &last);
        if (!c) continue;
        redisReply *r = redisCommand(c, "CLUSTER SLOTS");
        char origin[LF_CLUSTER_HOST_MAX];
        snprintf(origin, sizeof(origin), "%s", cc->links[li].host);
        if (!lf_redis_reply_ok(c, r, "CLUSTER SLOTS", &last)) {
            if (c->err) lf_cc_link_drop(cc, li);
        } else if (lf_cc_build(cc, r, origin, &last) == LF_OK) {
            rc = LF_OK;
        }
        if (r) freeReplyObject(r);
    }
    lf_free(ask);
    if (rc == LF_OK) {
        cc->have_map = 1;
        return LF_OK;
    }
    lf_err_set(err, LF_ERR,
               "no Redis Cluster node answered CLUSTER SLOTS (redis.cluster.nodes: %s): %s",
               cc->cfg->redis_cluster_nodes, last.msg[0] ? last.msg : "no node");
    return LF_ERR;
}

const lf_cluster_map_t *lf_cc_map(lf_cc_t *cc)
{
    return &cc->map;
}

int lf_cc_primary(lf_cc_t *cc, uint16_t slot, lf_err_t *err)
{
    if (!cc->have_map && lf_cc_refresh(cc, err) != LF_OK) return LF_ERR;
    int node = lf_cluster_map_lookup(&cc->map, slot);
    if (node < 0) {
        lf_err_set(err, LF_ERR, "the Redis Cluster serves no hash slot %u (CLUSTER SLOTS)",
                   (unsigned)slot);
        return LF_ERR;
    }
    return node;
}

size_t lf_cc_primaries(lf_cc_t *cc, int *out, size_t cap)
{
    size_t n = 0;
    for (size_t i = 0; i < cc->map.nnodes; i++) {
        int serves = 0;
        for (size_t s = 0; s < LF_CLUSTER_SLOTS && !serves; s++)
            serves = cc->map.slot_node[s] == i;
        if (serves && n < cap) out[n++] = (int)i;
    }
    return n;
}

size_t lf_cc_replicas(lf_cc_t *cc, int node)
{
    size_t n = 0;
    for (size_t i = 0; i < cc->map.nnodes; i++)
        n += cc->map.nodes[i].primary == node;
    return n;
}

const lf_cluster_tags_t *lf_cc_tags(void)
{
    static lf_cluster_tags_t tags;
    static int built;
    if (!built) {
        lf_cluster_tags_build(&tags);
        built = 1;
    }
    return &tags;
}

void lf_cc_free_replies(lf_cc_cmd_t *cmds, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (cmds[i].reply) freeReplyObject(cmds[i].reply);
        cmds[i].reply = NULL;
    }
}

static void lf_cc_sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* Per command of a run: where it goes (a link), and whether it needs ASKING first; and where
 * it went this round (sent_to, -1: not sent) with or without ASKING. A reply is read only for
 * a command sent on that link: an ASK read earlier in the round points `link` at another node,
 * whose replies belong to the commands sent there. */
typedef struct {
    int link;
    int asking;
    int pending;
    int sent_to;
    int sent_asking;
} lf_cc_route_t;

/* Send, to one link, the pending commands routed to it; returns how many were sent. */
static size_t lf_cc_send(lf_cc_t *cc, int li, lf_cc_cmd_t *cmds, lf_cc_route_t *rt, size_t n,
                         redisContext *c)
{
    size_t sent = 0;
    for (size_t i = 0; i < n; i++) {
        if (!rt[i].pending || rt[i].link != li) continue;
        if (rt[i].asking) redisAppendCommand(c, "ASKING");
        redisAppendCommandArgv(c, (int)cmds[i].argc, (const char **)cmds[i].argv, cmds[i].lens);
        rt[i].sent_to = li;
        rt[i].sent_asking = rt[i].asking;
        sent++;
    }
    int done = 0;
    while (!done && !c->err)
        if (redisBufferWrite(c, &done) != REDIS_OK) break;
    (void)cc;
    return sent;
}

int lf_cc_run(lf_cc_t *cc, lf_cc_cmd_t *cmds, size_t n, lf_err_t *err)
{
    if (n == 0) return LF_OK;
    if (!cc->have_map && lf_cc_refresh(cc, err) != LF_OK) return LF_ERR;
    int budget = cc->cfg->redis_timeout_ms > 5000 ? cc->cfg->redis_timeout_ms : 5000;
    int64_t deadline = lf_now_us() + (int64_t)budget * 1000;
    lf_cc_route_t *rt = lf_calloc(n, sizeof(*rt));
    for (size_t i = 0; i < n; i++) {
        cmds[i].reply = NULL;
        rt[i].pending = 1;
        rt[i].link = -1;
        rt[i].sent_to = -1;
    }
    lf_err_t why = {0};
    int rc = LF_ERR, wait_ms = 20;
    for (;;) {
        int refresh = 0, pause = 0;
        /* Route what is pending by the map (an ASK keeps the node it named). */
        for (size_t i = 0; i < n; i++) {
            if (!rt[i].pending || rt[i].asking) continue;
            int node = lf_cluster_map_lookup(&cc->map, cmds[i].slot);
            if (node >= 0 && cc->replica_reads)
                for (size_t k = 0; k < cc->map.nnodes; k++)
                    if (cc->map.nodes[k].primary == node) {
                        node = (int)k;
                        break;
                    }
            rt[i].link = node < 0 ? -1 : lf_cc_node_link(cc, node);
            if (node >= 0 && cc->map.nodes[node].primary >= 0 && !cc->links[rt[i].link].readonly) {
                lf_cc_link_drop(cc, rt[i].link); /* connected without READONLY (a seed) */
                cc->links[rt[i].link].readonly = 1;
            }
            if (rt[i].link < 0) {
                refresh = pause = 1;
                lf_err_set(&why, LF_ERR, "hash slot %u is not served", (unsigned)cmds[i].slot);
            }
        }
        /* Every node's commands go out before any reply is read. */
        size_t nl = cc->nlinks;
        uint8_t *used = lf_calloc(nl + 1, 1);
        for (size_t i = 0; i < n; i++)
            if (rt[i].pending && rt[i].link >= 0) used[rt[i].link] = 1;
        for (size_t li = 0; li < nl; li++) {
            if (!used[li]) continue;
            redisContext *c = lf_cc_link_conn(cc, (int)li, &why);
            if (!c) {
                used[li] = 0; /* its commands stay pending: a failover, or a node restarting */
                refresh = pause = 1;
                continue;
            }
            lf_cc_send(cc, (int)li, cmds, rt, n, c);
        }
        for (size_t li = 0; li < nl; li++) {
            if (!used[li]) continue;
            redisContext *c = cc->links[li].c;
            int broken = c == NULL || c->err;
            for (size_t i = 0; i < n; i++) {
                if (!rt[i].pending || rt[i].sent_to != (int)li) continue;
                rt[i].sent_to = -1;
                void *r = NULL;
                if (!broken && rt[i].sent_asking) {
                    if (redisGetReply(c, &r) != REDIS_OK || !r) broken = 1;
                    if (r) freeReplyObject(r);
                    r = NULL;
                }
                if (!broken && (redisGetReply(c, &r) != REDIS_OK || !r)) broken = 1;
                if (broken) { /* the rest of this node's commands: again, after a new map */
                    lf_err_set(&why, LF_ERR, "Redis Cluster node %s:%u: %s", cc->links[li].host,
                               (unsigned)cc->links[li].port,
                               c && c->err ? c->errstr : "connection lost");
                    refresh = pause = 1;
                    rt[i].asking = 0;
                    continue;
                }
                redisReply *rep = r;
                lf_cluster_redirect_t rd;
                if (rep->type != REDIS_REPLY_ERROR ||
                    lf_cluster_redirect_parse(rep->str, rep->len, &rd) != LF_OK) {
                    cmds[i].reply = rep;
                    rt[i].pending = 0;
                    continue;
                }
                lf_err_set(&why, LF_ERR, "Redis Cluster node %s:%u answered %.*s",
                           cc->links[li].host, (unsigned)cc->links[li].port, (int)rep->len,
                           rep->str);
                freeReplyObject(rep);
                rt[i].asking = 0;
                if (rd.kind == LF_CLUSTER_MOVED) {
                    if (lf_cluster_map_moved(&cc->map, &rd, cc->links[li].host) < 0) refresh = 1;
                    refresh = 1; /* one slot moved: others likely did too */
                } else if (rd.kind == LF_CLUSTER_ASK) {
                    rt[i].asking = 1;
                    rt[i].link = lf_cc_link(cc, rd.host[0] ? rd.host : cc->links[li].host, rd.port);
                } else {
                    pause = 1; /* TRYAGAIN, CLUSTERDOWN */
                }
            }
            if (broken) lf_cc_link_drop(cc, (int)li);
        }
        lf_free(used);
        size_t left = 0;
        for (size_t i = 0; i < n; i++)
            left += rt[i].pending;
        if (!left) {
            rc = LF_OK;
            break;
        }
        if (lf_now_us() > deadline) {
            lf_err_set(err, LF_ERR, "%zu Redis Cluster command(s) not run within %d ms: %s", left,
                       budget, why.msg[0] ? why.msg : "no node answered");
            break;
        }
        if (pause) {
            lf_cc_sleep_ms(wait_ms);
            if (wait_ms < 200) wait_ms *= 2;
        }
        if (refresh) lf_cc_refresh(cc, &why);
    }
    lf_free(rt);
    if (rc != LF_OK) lf_cc_free_replies(cmds, n);
    return rc;
}

redisReply *lf_cc_command(lf_cc_t *cc, uint16_t slot, size_t argc, const char *const *argv,
                          const size_t *lens, lf_err_t *err)
{
    lf_cc_cmd_t cmd = {slot, argc, argv, lens, NULL};
    if (lf_cc_run(cc, &cmd, 1, err) != LF_OK) return NULL;
    return cmd.reply;
}
