/* Lead writes of the Redis Cluster back end (store.h; docs/design.md "Redis Cluster: the
 * write path by slot"). A transaction cannot span slots, so a chunk of writes becomes:
 *  1. one unit per slot: the leads of that slot with their shards of lf:top, the stage sets,
 *     lf:funnel, the outbox and the progress counters, checked and committed as on one node
 *     (node stores run them, one primary after another, each pipelined over two connections);
 *     a lead that absorbed visitors records them in <p>absorbed:{<id>} in the same unit;
 *  2. then, per absorbed visitor (its keys live in the visitor's own slot), a unit that checks
 *     the visitor is still the version absorbed and no other lead took it, deletes it and
 *     sets its alias; then the record of step 1 is cleared. A crash between 1 and 2 leaves
 *     the visitor and the record: the event comes again, the merge is redone without adding
 *     the visitor twice (lf_stored_absorbed), and step 2 completes;
 *  3. WAIT until the replicas hold the writes (redis.cluster.wait_replicas), so that a
 *     failover does not take back what progress and published transitions rely on. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "leadflow/keys.h"
#include "leadflow/lead_pack.h"
#include "leadflow/log.h"
#include "store_cluster_int.h"

typedef struct {
    size_t idx;
    uint16_t slot;
    int node;
} lf_scl_order_t;

static int lf_scl_order_cmp(const void *a, const void *b)
{
    const lf_scl_order_t *x = a, *y = b;
    if (x->node != y->node) return x->node < y->node ? -1 : 1;
    if (x->slot != y->slot) return x->slot < y->slot ? -1 : 1;
    return x->idx < y->idx ? -1 : x->idx > y->idx;
}

/* The lead units of the writes of one primary: ord[0..n) (sorted by slot). */
static int lf_scl_write_node(lf_store_cluster_t *s, lf_store_write_t *w, const lf_scl_order_t *ord,
                             size_t n, int *results, lf_err_t *err)
{
    lf_scl_node_t *node = NULL;
    lf_store_redis_t *st = lf_scl_node_for(s, ord[0].slot, &node, err);
    if (!st) return LF_ERR;
    lf_store_write_t *gw = lf_malloc(n * sizeof(*gw));
    int *gres = lf_malloc(n * sizeof(*gres));
    size_t *ends = lf_malloc(n * sizeof(*ends));
    char(*tags)[LF_CLUSTER_TAG_MAX + 4] = lf_malloc(n * sizeof(*tags));
    const char **shards = lf_malloc(n * sizeof(*shards));
    size_t nends = 0;
    for (size_t i = 0; i < n; i++) {
        gw[i] = w[ord[i].idx];
        if (i + 1 == n || ord[i + 1].slot != ord[i].slot) {
            lf_scl_shard(tags[nends], sizeof(tags[nends]), ord[i].slot);
            shards[nends] = tags[nends];
            ends[nends++] = i + 1;
        }
    }
    node->wrote = 1;
    int rc = lf_sr_write_chunks(st, gw, n, gres, NULL, NULL, ends, shards, nends, err);
    for (size_t i = 0; rc == LF_OK && i < n; i++)
        results[ord[i].idx] = gres[i];
    lf_free(gw);
    lf_free(gres);
    lf_free(ends);
    lf_free(tags);
    lf_free(shards);
    return rc;
}

/* Read n replies of what was queued on st, checking none is an error. */
static int lf_scl_node_replies(lf_store_redis_t *st, size_t n, redisReply **r, const char *what,
                               lf_err_t *err)
{
    if (lf_sr_replies(st, n, r, what, err) != LF_OK) return LF_ERR;
    if (lf_sr_reply_errors(r, n, what, err) == LF_OK) return LF_OK;
    for (size_t i = 0; i < n; i++)
        freeReplyObject(r[i]);
    return LF_ERR;
}

/* Step 2 for visitor `anon` absorbed by lead `id` at `version`. */
static int lf_scl_clear_visitor(lf_store_cluster_t *s, const char *id, const char *anon,
                                uint64_t version, lf_err_t *err)
{
    const char *p = LF_SCL_PREFIX(s);
    char vk[LF_KEY_MAX], ak[LF_KEY_MAX], ttl[32];
    size_t al = strlen(anon), idl = strlen(id);
    int vkl = lf_key_visitor(vk, sizeof(vk), p, anon, al);
    int akl = lf_key_alias(ak, sizeof(ak), p, anon, al);
    int tl = snprintf(ttl, sizeof(ttl), "%lld", (long long)s->base.cfg->alias_ttl_s * 1000);
    lf_scl_node_t *node = NULL;
    lf_store_redis_t *st = lf_scl_node_for(s, lf_cluster_slot(vk, (size_t)vkl), &node, err);
    if (!st || lf_sr_connect(st, err) != LF_OK) return LF_ERR;
    for (int tries = 0; tries < 5; tries++) {
        redisReply *r[6];
        const char *watch[3] = {"WATCH", vk, ak}, *gv[2] = {"GET", vk}, *ga[2] = {"GET", ak};
        size_t wl[3] = {5, (size_t)vkl, (size_t)akl}, gvl[2] = {3, (size_t)vkl},
               gal[2] = {3, (size_t)akl};
        lf_sr_append(st, 3, watch, wl);
        lf_sr_append(st, 2, gv, gvl);
        lf_sr_append(st, 2, ga, gal);
        lf_sr_flush(st);
        if (lf_scl_node_replies(st, 3, r, "clearing a merged visitor", err) != LF_OK) {
            lf_sr_drop_all(st);
            return LF_ERR;
        }
        uint64_t now = 0;
        if (r[1]->type == REDIS_REPLY_STRING) lf_lead_pack_version(r[1]->str, r[1]->len, &now);
        int gone = r[1]->type == REDIS_REPLY_NIL;
        int other = r[2]->type == REDIS_REPLY_STRING &&
                    !(r[2]->len == idl && memcmp(r[2]->str, id, idl) == 0);
        for (int i = 0; i < 3; i++)
            freeReplyObject(r[i]);
        if ((!gone && now != version) || other) {
            /* Its own events landed after the lead read it, or another lead linked it first:
             * it stays a visitor of its own (the lead keeps what it absorbed). */
            const char *uw = "UNWATCH";
            size_t uwl = 7;
            lf_sr_append(st, 1, &uw, &uwl);
            if (lf_scl_node_replies(st, 1, r, "UNWATCH", err) != LF_OK) return LF_ERR;
            freeReplyObject(r[0]);
            lf_log("warn", "visitor %s changed after lead %s absorbed it: left as it is", anon, id);
            break;
        }
        const char *multi = "MULTI", *exec = "EXEC";
        size_t ml = 5, el = 4;
        const char *del[2] = {"DEL", vk}, *set[5] = {"SET", ak, id, "PX", ttl};
        size_t dl[2] = {3, (size_t)vkl}, sl[5] = {3, (size_t)akl, idl, 2, (size_t)tl};
        lf_sr_append(st, 1, &multi, &ml);
        lf_sr_append(st, 2, del, dl);
        lf_sr_append(st, 5, set, sl);
        lf_sr_append(st, 1, &exec, &el);
        lf_sr_flush(st);
        if (lf_scl_node_replies(st, 4, r, "clearing a merged visitor", err) != LF_OK) {
            lf_sr_drop_all(st);
            return LF_ERR;
        }
        int done = r[3]->type == REDIS_REPLY_ARRAY;
        for (int i = 0; i < 4; i++)
            freeReplyObject(r[i]);
        node->wrote = 1;
        if (done) break; /* NIL: the visitor or its alias changed meanwhile: look again */
    }
    /* The lead's record of it goes (idempotent; it also expires). */
    char bk[LF_KEY_MAX];
    int bkl = lf_key_absorbed(bk, sizeof(bk), p, id, idl);
    const char *hdel[3] = {"HDEL", bk, anon};
    size_t hl[3] = {4, (size_t)bkl, al};
    redisReply *r = lf_cc_command(s->cc, lf_cluster_slot(bk, (size_t)bkl), 3, hdel, hl, err);
    if (!r) return LF_ERR;
    freeReplyObject(r);
    return LF_OK;
}

int lf_scl_write_leads(lf_store_t *base, lf_store_write_t *w, size_t n, int *results,
                       lf_store_prepare_fn prepare, void *ctx, lf_err_t *err)
{
    lf_store_cluster_t *s = (lf_store_cluster_t *)base;
    if (n == 0) return LF_OK;
    if (prepare) prepare(ctx, w, 0, n);
    lf_scl_order_t *ord = lf_malloc(n * sizeof(*ord));
    int rc = LF_OK;
    for (size_t i = 0; i < n && rc == LF_OK; i++) {
        char key[LF_KEY_MAX];
        const char *id = w[i].lead->id;
        int kl = lf_key_lead(key, sizeof(key), LF_SCL_PREFIX(s), id, strlen(id));
        ord[i].idx = i;
        ord[i].slot = lf_cluster_slot(key, (size_t)kl);
        ord[i].node = lf_cc_primary(s->cc, ord[i].slot, err);
        if (ord[i].node < 0) rc = LF_ERR;
        results[i] = LF_WRITE_CONFLICT;
    }
    if (rc == LF_OK) qsort(ord, n, sizeof(*ord), lf_scl_order_cmp);
    for (size_t from = 0; rc == LF_OK && from < n;) {
        size_t to = from + 1;
        while (to < n && ord[to].node == ord[from].node)
            to++;
        rc = lf_scl_write_node(s, w, ord + from, to - from, results, err);
        from = to;
    }
    for (size_t i = 0; rc == LF_OK && i < n; i++) {
        if (results[i] != LF_WRITE_OK) continue;
        for (size_t v = 0; rc == LF_OK && v < w[i].nmerged; v++)
            rc = lf_scl_clear_visitor(s, w[i].lead->id, w[i].merged_visitors[v],
                                      w[i].merged_versions ? w[i].merged_versions[v] : 0, err);
    }
    if (rc == LF_OK) rc = lf_scl_wait(s, err);
    lf_free(ord);
    if (rc != LF_OK && err->code == LF_STORE_LOST) s->epochs_checked = 0;
    if (rc != LF_OK && lf_scl_retryable(err)) {
        lf_err_t ignored = {0};
        lf_cc_refresh(s->cc, &ignored);
    }
    return rc;
}
