/* Lead writes of the Redis Cluster back end (store.h; docs/design.md "Redis Cluster: the
 * write path by slot"). A transaction cannot span slots, so a chunk of writes becomes:
 *  1. one unit per slot: the leads of that slot with their shards of lf:top, the stage sets,
 *     lf:funnel, the outbox and the progress counters, checked and committed as on one node
 *     (node stores run them, one primary after another, each pipelined over two connections);
 *     a lead that absorbed visitors records them in <p>absorbed:{<id>} in the same unit;
 *  0. before it, per visitor a lead absorbs (its keys live in the visitor's own slot), a claim:
 *     the visitor is still the version the lead read and no other lead has it; it is marked
 *     as being merged (its own writes conflict until the mark goes), else the lead is read
 *     again, as on one node when a visitor changed;
 *  2. then, per absorbed visitor, a unit that deletes it and the mark and sets its alias; then
 *     the record of step 1 is cleared. A crash between 1 and 2 leaves the visitor, the mark
 *     and the record: the event comes again, the merge is redone without adding the visitor
 *     twice (lf_stored_absorbed), and step 2 completes;
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

/* How long a claim on a visitor holds its own writes back when the merge does not finish (a
 * crash between the units): the event that merges comes again long before. */
#define LF_SCL_CLAIM_MS 60000

/* A merged visitor's unit, in the visitor's slot (`claim`: before the lead's unit, else after
 * it). Both check that the visitor is still the version the lead read (its own events did not
 * land meanwhile), that no other lead linked or is merging it; then the claim marks it as being
 * merged into lead `id` (<p>merging:{anon}: the visitor's own writes conflict while it is
 * there), the clearing deletes it and the mark and sets its alias. *ok = 0 when the check
 * fails (a claim: the lead is read again, as on one node when a visitor changed). */
int lf_scl_visitor_unit(lf_store_cluster_t *s, const char *id, const char *anon, uint64_t version,
                        int claim, int *ok, lf_err_t *err)
{
    const char *p = LF_SCL_PREFIX(s);
    char vk[LF_KEY_MAX], ak[LF_KEY_MAX], mk[LF_KEY_MAX], ttl[32], hold[32];
    size_t al = strlen(anon), idl = strlen(id);
    int vkl = lf_key_visitor(vk, sizeof(vk), p, anon, al);
    int akl = lf_key_alias(ak, sizeof(ak), p, anon, al);
    int mkl = lf_key_merging(mk, sizeof(mk), p, anon, al);
    int tl = snprintf(ttl, sizeof(ttl), "%lld", (long long)s->base.cfg->alias_ttl_s * 1000);
    int hl = snprintf(hold, sizeof(hold), "%d", LF_SCL_CLAIM_MS);
    *ok = 0;
    lf_scl_node_t *node = NULL;
    lf_store_redis_t *st = lf_scl_node_for(s, lf_cluster_slot(vk, (size_t)vkl), &node, err);
    if (!st || lf_sr_connect(st, err) != LF_OK) return LF_ERR;
    for (int tries = 0; tries < 5 && !*ok; tries++) {
        redisReply *r[6];
        const char *watch[4] = {"WATCH", vk, ak, mk}, *gv[2] = {"GET", vk}, *ga[2] = {"GET", ak},
                   *gm[2] = {"GET", mk};
        size_t wl[4] = {5, (size_t)vkl, (size_t)akl, (size_t)mkl}, gvl[2] = {3, (size_t)vkl},
               gal[2] = {3, (size_t)akl}, gml[2] = {3, (size_t)mkl};
        lf_sr_append(st, 4, watch, wl);
        lf_sr_append(st, 2, gv, gvl);
        lf_sr_append(st, 2, ga, gal);
        lf_sr_append(st, 2, gm, gml);
        lf_sr_flush(st);
        if (lf_scl_node_replies(st, 4, r, "merging a visitor", err) != LF_OK) {
            lf_sr_drop_all(st);
            return LF_ERR;
        }
        uint64_t now = 0;
        if (r[1]->type == REDIS_REPLY_STRING) lf_lead_pack_version(r[1]->str, r[1]->len, &now);
        int same = now == version; /* absent: version 0, a visitor not stored */
        for (int i = 2; i < 4; i++)
            if (r[i]->type == REDIS_REPLY_STRING &&
                !(r[i]->len == idl && memcmp(r[i]->str, id, idl) == 0))
                same = 0; /* linked to, or being merged into, another lead */
        for (int i = 0; i < 4; i++)
            freeReplyObject(r[i]);
        if (!same) {
            const char *uw = "UNWATCH";
            size_t uwl = 7;
            lf_sr_append(st, 1, &uw, &uwl);
            if (lf_scl_node_replies(st, 1, r, "UNWATCH", err) != LF_OK) return LF_ERR;
            freeReplyObject(r[0]);
            if (!claim) /* cannot happen while the claim holds: say so if it ever does */
                lf_log("warn", "visitor %s changed while lead %s absorbed it: left as it is", anon,
                       id);
            return LF_OK;
        }
        const char *multi = "MULTI", *exec = "EXEC";
        size_t ml = 5, el = 4;
        const char *set[5] = {"SET", mk, id, "PX", hold}, *del[3] = {"DEL", vk, mk},
                   *link[5] = {"SET", ak, id, "PX", ttl};
        size_t setl[5] = {3, (size_t)mkl, idl, 2, (size_t)hl},
               dl[3] = {3, (size_t)vkl, (size_t)mkl},
               linkl[5] = {3, (size_t)akl, idl, 2, (size_t)tl};
        lf_sr_append(st, 1, &multi, &ml);
        if (claim) {
            lf_sr_append(st, 5, set, setl);
        } else {
            lf_sr_append(st, 3, del, dl);
            lf_sr_append(st, 5, link, linkl);
        }
        lf_sr_append(st, 1, &exec, &el);
        lf_sr_flush(st);
        size_t nr = claim ? 3 : 4;
        if (lf_scl_node_replies(st, nr, r, "merging a visitor", err) != LF_OK) {
            lf_sr_drop_all(st);
            return LF_ERR;
        }
        *ok = r[nr - 1]->type == REDIS_REPLY_ARRAY; /* NIL: it changed meanwhile: look again */
        for (size_t i = 0; i < nr; i++)
            freeReplyObject(r[i]);
        node->wrote = 1;
    }
    if (!*ok || claim) return LF_OK;
    /* The lead's record of it goes (idempotent; it also expires). */
    char bk[LF_KEY_MAX];
    int bkl = lf_key_absorbed(bk, sizeof(bk), p, id, idl);
    const char *hdel[3] = {"HDEL", bk, anon};
    size_t hdl[3] = {4, (size_t)bkl, al};
    redisReply *r = lf_cc_command(s->cc, lf_cluster_slot(bk, (size_t)bkl), 3, hdel, hdl, err);
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
    size_t nord = 0;
    for (size_t i = 0; i < n && rc == LF_OK; i++) {
        results[i] = LF_WRITE_CONFLICT;
        /* Claim the visitors it merges first: one that changed meanwhile makes the lead a
         * conflict (read again), as on one node. */
        int claimed = 1;
        for (size_t v = 0; rc == LF_OK && claimed && v < w[i].nmerged; v++)
            rc = lf_scl_visitor_unit(s, w[i].lead->id, w[i].merged_visitors[v],
                                     w[i].merged_versions ? w[i].merged_versions[v] : 0, 1,
                                     &claimed, err);
        if (rc != LF_OK || !claimed) continue;
        char key[LF_KEY_MAX];
        const char *id = w[i].lead->id;
        int kl = lf_key_lead(key, sizeof(key), LF_SCL_PREFIX(s), id, strlen(id));
        lf_scl_order_t *o = &ord[nord++];
        o->idx = i;
        o->slot = lf_cluster_slot(key, (size_t)kl);
        o->node = lf_cc_primary(s->cc, o->slot, err);
        if (o->node < 0) rc = LF_ERR;
    }
    if (rc == LF_OK) qsort(ord, nord, sizeof(*ord), lf_scl_order_cmp);
    for (size_t from = 0; rc == LF_OK && from < nord;) {
        size_t to = from + 1;
        while (to < nord && ord[to].node == ord[from].node)
            to++;
        rc = lf_scl_write_node(s, w, ord + from, to - from, results, err);
        from = to;
    }
    for (size_t i = 0; rc == LF_OK && i < n; i++) {
        if (results[i] != LF_WRITE_OK) continue;
        int cleared = 0;
        for (size_t v = 0; rc == LF_OK && v < w[i].nmerged; v++)
            rc = lf_scl_visitor_unit(s, w[i].lead->id, w[i].merged_visitors[v],
                                     w[i].merged_versions ? w[i].merged_versions[v] : 0, 0,
                                     &cleared, err);
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
