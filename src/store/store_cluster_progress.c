/* Progress in the Redis Cluster back end (store.h): the store epoch in every slot (a node that
 * came back empty, or a replica promoted without some slots' keys, is noticed by the slots it
 * lost), the start positions, progress and the delivered outbox entries. docs/design.md
 * "Redis Cluster: the write path by slot", point 6. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "leadflow/keys.h"
#include "leadflow/log.h"
#include "store_cluster_int.h"

/* Every slot's epoch, as read. */
typedef struct {
    char (*val)[LF_EPOCH_MAX]; /* "" = none */
    const char *set;           /* SET: this value (NULL: GET) */
    int nx;
    int skip; /* a slot left out of a SET (the anchor, set last): -1 none */
} lf_scl_epochs_t;

static void lf_scl_build_epoch(void *ctx, uint16_t slot, const char *key, size_t kl, lf_argv_t *a)
{
    const lf_scl_epochs_t *x = ctx;
    int set = x->set && (int)slot != x->skip;
    lf_argv_adds(a, set ? "SET" : "EXISTS");
    lf_argv_add_ref(a, key, kl);
    if (set) lf_argv_adds(a, x->set);
    if (set && x->nx) lf_argv_adds(a, "NX");
    if (!x->set) a->argv[0] = "GET", a->lens[0] = 3;
}

static int lf_scl_take_epoch(void *ctx, uint16_t slot, const redisReply *r, lf_err_t *err)
{
    lf_scl_epochs_t *x = ctx;
    if (r->type == REDIS_REPLY_ERROR) {
        lf_err_set(err, LF_ERR, "the store epoch of slot %u: Redis answered %.*s", (unsigned)slot,
                   (int)r->len, r->str);
        return LF_ERR;
    }
    if (!x->set)
        snprintf(x->val[slot], LF_EPOCH_MAX, "%.*s",
                 r->type == REDIS_REPLY_STRING ? (int)r->len : 0,
                 r->type == REDIS_REPLY_STRING ? r->str : "");
    return LF_OK;
}

static int lf_scl_epochs(lf_store_cluster_t *s, lf_scl_epochs_t *x, lf_err_t *err)
{
    char key[LF_KEY_MAX];
    int kl = lf_key_epoch(key, sizeof(key), LF_SCL_PREFIX(s));
    return lf_scl_each_shard(s, key, (size_t)kl, lf_scl_build_epoch, lf_scl_take_epoch, x, err);
}

/* The progress hash's next offsets go (its counters stay): every partition replays from the
 * start, which rebuilds the leads of the slots that lost them (the others recognise their
 * events). */
static int lf_scl_forget_positions(lf_store_cluster_t *s, const char *wm, size_t wl, uint16_t slot,
                                   lf_err_t *err)
{
    const char *hk[2] = {"HKEYS", wm};
    size_t hkl[2] = {5, wl};
    redisReply *r = lf_cc_command(s->cc, slot, 2, hk, hkl, err);
    if (!r) return LF_ERR;
    lf_argv_t *a = &s->argv;
    lf_argv_reset(a);
    lf_argv_adds(a, "HDEL");
    lf_argv_add(a, wm, wl);
    for (size_t i = 0; r->type == REDIS_REPLY_ARRAY && i < r->elements; i++) {
        const redisReply *f = r->element[i];
        if (f->len && strspn(f->str, "0123456789") == f->len) lf_argv_add(a, f->str, f->len);
    }
    freeReplyObject(r);
    int rc = LF_OK;
    if (a->n > 2) {
        r = lf_cc_command(s->cc, slot, a->n, (const char *const *)a->argv, a->lens, err);
        if (!r) rc = LF_ERR;
        if (r) freeReplyObject(r);
    }
    lf_argv_reset(a);
    lf_arena_reset(&s->arena);
    return rc;
}

/* A key of the anchor slot: "<p>epoch:<what>{<tag>}" ("" what: the anchor itself). */
static int lf_scl_anchor_key(const lf_store_cluster_t *s, char *buf, size_t cap, const char *what,
                             uint16_t wslot)
{
    int kl = lf_key_epoch(buf, cap, LF_SCL_PREFIX(s));
    return kl + snprintf(buf + kl, cap - (size_t)kl, ":%s{%s}", what, lf_cc_tags()->tag[wslot]);
}

/* One command on the anchor slot; the reply's string into out ("" none), or LF_ERR. */
static int lf_scl_anchor_cmd(lf_store_cluster_t *s, uint16_t wslot, size_t argc,
                             const char *const *argv, char *out, size_t cap, lf_err_t *err)
{
    size_t lens[6];
    for (size_t i = 0; i < argc; i++)
        lens[i] = strlen(argv[i]);
    redisReply *r = lf_cc_command(s->cc, wslot, argc, argv, lens, err);
    if (!r) return LF_ERR;
    int rc = LF_OK;
    if (r->type == REDIS_REPLY_ERROR) {
        lf_err_set(err, LF_ERR, "the store epoch: Redis answered %.*s", (int)r->len, r->str);
        rc = LF_ERR;
    }
    if (out)
        snprintf(out, cap, "%.*s", r->type == REDIS_REPLY_STRING ? (int)r->len : 0,
                 r->type == REDIS_REPLY_STRING ? r->str : "");
    freeReplyObject(r);
    return rc;
}

/* Every slot gets `e` (the anchor last, so that it names an epoch only once every slot holds
 * it); nx: only where none is (creating). */
static int lf_scl_stamp(lf_store_cluster_t *s, const char *e, int nx, uint16_t wslot, lf_err_t *err)
{
    lf_scl_epochs_t put = {NULL, e, nx, wslot};
    if (lf_scl_epochs(s, &put, err) != LF_OK) return LF_ERR;
    char ak[LF_KEY_MAX];
    lf_scl_anchor_key(s, ak, sizeof(ak), "", wslot);
    const char *set[4] = {"SET", ak, e, "NX"};
    return lf_scl_anchor_cmd(s, wslot, nx ? 4 : 3, set, NULL, 0, err);
}

/* Every slot's epoch against the one of the progress hash's slot (the anchor, written last):
 *  - anchor set, every slot the same: the store as it was;
 *  - no anchor, and every other slot empty or holding the value proposed in the anchor slot
 *    (<p>epoch:new:{t}, SET NX by the first instance): a new store, or one being created by an
 *    instance starting at the same time: finish creating it (SET NX everywhere);
 *  - anything else: slots lost their data. One instance (<p>epoch:recover:{t}, SET NX with a
 *    TTL) gives every slot a new epoch (an instance still writing under the old one fails its
 *    check and replays too) and makes the progress hash forget its next offsets: every
 *    partition replays from the start. Returns LF_OK, LF_STORE_LOST (err says what), or LF_ERR
 *    (another instance is recovering: again later). */
static int lf_scl_check_epochs(lf_store_cluster_t *s, const char *wm, size_t wl, uint16_t wslot,
                               lf_err_t *err)
{
    lf_scl_epochs_t x = {lf_calloc(LF_CLUSTER_SLOTS, LF_EPOCH_MAX), NULL, 0, -1};
    char nk[LF_KEY_MAX], rk[LF_KEY_MAX], proposed[LF_EPOCH_MAX] = "", fresh[LF_EPOCH_MAX];
    lf_scl_anchor_key(s, nk, sizeof(nk), "new:", wslot);
    lf_scl_anchor_key(s, rk, sizeof(rk), "recover:", wslot);
    const char *getp[2] = {"GET", nk};
    /* The slots first, the proposal after: a slot seen stamped means its proposal is seen. */
    int rc = lf_scl_epochs(s, &x, err);
    if (rc == LF_OK) rc = lf_scl_anchor_cmd(s, wslot, 2, getp, proposed, sizeof(proposed), err);
    const char *anchor = x.val[wslot];
    size_t none = 0, other = 0, odd = 0;
    for (size_t k = 0; rc == LF_OK && k < LF_CLUSTER_SLOTS; k++) {
        if (k == wslot) continue;
        none += x.val[k][0] == '\0';
        other += x.val[k][0] && anchor[0] && strcmp(x.val[k], anchor) != 0;
        odd += x.val[k][0] && !anchor[0] && strcmp(x.val[k], proposed) != 0;
    }
    lf_sr_new_epoch(fresh, sizeof(fresh));
    if (rc == LF_OK && anchor[0] && !none && !other) {
        snprintf(s->epoch, sizeof(s->epoch), "%s", anchor);
    } else if (rc == LF_OK && !anchor[0] && !odd && (proposed[0] || none == LF_CLUSTER_SLOTS - 1)) {
        const char *setp[6] = {"SET", nk, fresh, "NX", "PX", "600000"};
        rc = lf_scl_anchor_cmd(s, wslot, 6, setp, NULL, 0, err);
        if (rc == LF_OK) rc = lf_scl_anchor_cmd(s, wslot, 2, getp, proposed, sizeof(proposed), err);
        if (rc == LF_OK && !proposed[0]) {
            lf_err_set(err, LF_ERR, "creating the store epoch: the proposal vanished");
            rc = LF_ERR;
        }
        if (rc == LF_OK) rc = lf_scl_stamp(s, proposed, 1, wslot, err);
        char ak[LF_KEY_MAX], got[LF_EPOCH_MAX] = "";
        lf_scl_anchor_key(s, ak, sizeof(ak), "", wslot);
        const char *geta[2] = {"GET", ak};
        if (rc == LF_OK) rc = lf_scl_anchor_cmd(s, wslot, 2, geta, got, sizeof(got), err);
        if (rc == LF_OK) snprintf(s->epoch, sizeof(s->epoch), "%s", got);
    } else if (rc == LF_OK) {
        const char *lock[6] = {"SET", rk, fresh, "NX", "PX", "60000"};
        char holder[LF_EPOCH_MAX] = "";
        const char *getr[2] = {"GET", rk};
        rc = lf_scl_anchor_cmd(s, wslot, 6, lock, NULL, 0, err);
        if (rc == LF_OK) rc = lf_scl_anchor_cmd(s, wslot, 2, getr, holder, sizeof(holder), err);
        if (rc == LF_OK && strcmp(holder, fresh) != 0) {
            lf_err_set(err, LF_ERR,
                       "Redis Cluster slots lost their data; another instance is giving the store "
                       "a new epoch (%s): waiting for it",
                       holder);
            rc = LF_ERR;
        } else if (rc == LF_OK) {
            lf_log("error",
                   "%zu of %d hash slots of the Redis Cluster hold no store epoch and %zu another "
                   "one (slot %u of the progress hash: %s): a primary restarted empty, or a "
                   "replica without some writes was promoted. New epoch %s; every partition "
                   "replays from the start",
                   none + !anchor[0], LF_CLUSTER_SLOTS, other + odd, (unsigned)wslot,
                   anchor[0] ? anchor : "none", fresh);
            rc = lf_scl_stamp(s, fresh, 0, wslot, err);
            if (rc == LF_OK) rc = lf_scl_forget_positions(s, wm, wl, wslot, err);
            if (rc == LF_OK) {
                snprintf(s->epoch, sizeof(s->epoch), "%s", fresh);
                lf_err_set(err, LF_STORE_LOST,
                           "%zu of %d hash slots of the Redis Cluster lost their data: replaying "
                           "every partition from the start",
                           none + other + odd + !anchor[0], LF_CLUSTER_SLOTS);
                rc = LF_STORE_LOST;
            }
        }
    }
    lf_free(x.val);
    if (rc != LF_ERR) s->epochs_checked = 1;
    return rc;
}

int lf_scl_load_watermarks(lf_store_t *base, const char *topic, const int32_t *parts, size_t n,
                           int64_t *next, int64_t *max_event_ms, lf_err_t *err)
{
    lf_store_cluster_t *s = (lf_store_cluster_t *)base;
    char wm[LF_KEY_MAX], ek[LF_KEY_MAX], fresh[LF_EPOCH_MAX];
    int wl = lf_key_watermarks(wm, sizeof(wm), LF_SCL_PREFIX(s), base->group, topic);
    uint16_t wslot = lf_cluster_slot(wm, (size_t)wl);
    int lost = 0;
    char lost_msg[sizeof(err->msg)] = "";
    char had[LF_EPOCH_MAX];
    snprintf(had, sizeof(had), "%s", s->epoch);
    if (!s->epochs_checked) {
        int rc = lf_scl_check_epochs(s, wm, (size_t)wl, wslot, err);
        if (rc == LF_ERR) return LF_ERR;
        if (rc == LF_STORE_LOST) {
            lost = 1;
            snprintf(lost_msg, sizeof(lost_msg), "%s", err->msg);
        }
    }
    int ekl = lf_key_epoch(ek, sizeof(ek), LF_SCL_PREFIX(s));
    ekl += snprintf(ek + ekl, sizeof(ek) - (size_t)ekl, ":{%s}", lf_cc_tags()->tag[wslot]);
    lf_sr_new_epoch(fresh, sizeof(fresh));
    lf_argv_t *a = &s->argv;
    lf_argv_reset(a);
    lf_argv_adds(a, "EVAL");
    lf_argv_adds(a, lf_sr_fence_lua);
    lf_argv_adds(a, "2");
    lf_argv_add(a, ek, (size_t)ekl);
    lf_argv_add(a, wm, (size_t)wl);
    lf_argv_adds(a, fresh);
    for (size_t i = 0; i < n; i++) {
        lf_argv_add_i64(a, parts[i]);
        lf_argv_add_part_field(a, parts[i], "ts");
    }
    redisReply *r = lf_cc_command(s->cc, wslot, a->n, (const char *const *)a->argv, a->lens, err);
    lf_argv_reset(a);
    lf_arena_reset(&s->arena);
    if (r && (r->type != REDIS_REPLY_ARRAY || r->elements != 2 + 2 * n)) {
        lf_err_set(err, LF_ERR, "reading the store epoch and positions: %s",
                   r->type == REDIS_REPLY_ERROR ? r->str : "unexpected reply");
        freeReplyObject(r);
        r = NULL;
    }
    if (!r) return LF_ERR;
    char found[LF_EPOCH_MAX];
    int rc =
        lf_sr_fence_judge(r, n, had, topic, "the Redis Cluster", next, max_event_ms, found, err);
    if (lost) {
        lf_err_set(err, LF_STORE_LOST, "%s", lost_msg);
        rc = LF_STORE_LOST;
    } else if (rc == LF_STORE_LOST && had[0] && strcmp(had, found) != 0) {
        s->epochs_checked = 0; /* every slot is looked at again with the next fence */
    }
    snprintf(s->epoch, sizeof(s->epoch), "%s", found);
    for (size_t i = 0; i < s->nnodes; i++)
        snprintf(s->nodes[i].st->epoch, sizeof(s->nodes[i].st->epoch), "%s", s->epoch);
    freeReplyObject(r);
    return rc;
}

/*---- Outbox deletes and progress ---------------------------------------------------------*/

/* The lead a transition id names: "<lead>:<seq>" or "<lead>:challenger:<seq>". Both readings
 * are returned when the second could be right (a lead id may end in ":challenger"). */
static size_t lf_scl_transition_leads(const char *id, size_t len, size_t out[2])
{
    size_t n = 0;
    const char *colon = memrchr(id, ':', len);
    if (!colon) return 0;
    size_t lead = (size_t)(colon - id);
    out[n++] = lead;
    static const char ch[] = ":challenger";
    if (lead >= sizeof(ch) - 1 && memcmp(id + lead - (sizeof(ch) - 1), ch, sizeof(ch) - 1) == 0)
        out[n++] = lead - (sizeof(ch) - 1);
    return n;
}

static int lf_scl_delete_outbox(lf_store_cluster_t *s, const char *topic,
                                const lf_outbox_ids_t *groups, size_t n, lf_err_t *err)
{
    size_t total = 0;
    for (size_t g = 0; g < n; g++)
        total += groups[g].n * 2;
    if (!total) return LF_OK;
    lf_arena_t *a = &s->arena;
    lf_cc_cmd_t *cmds = lf_malloc(total * sizeof(*cmds));
    size_t nc = 0;
    for (size_t g = 0; g < n; g++) {
        char ob[LF_KEY_MAX];
        int obl = lf_key_outbox_slot(ob, sizeof(ob), LF_SCL_PREFIX(s), topic);
        for (size_t i = 0; i < groups[g].n; i++) {
            const char *id = groups[g].ids[i];
            size_t lens[2];
            size_t nl = lf_scl_transition_leads(id, strlen(id), lens);
            for (size_t k = 0; k < nl; k++) {
                char lk[LF_KEY_MAX];
                int lkl = lf_key_lead(lk, sizeof(lk), LF_SCL_PREFIX(s), id, lens[k]);
                uint16_t slot = lf_cluster_slot(lk, (size_t)lkl);
                char *key = lf_scl_shard_key(a, ob, (size_t)obl, slot);
                lf_argv_t c;
                lf_argv_init_scratch(&c, a);
                lf_argv_adds(&c, "HDEL");
                lf_argv_adds(&c, key);
                lf_argv_addf(&c, "%d:%s", (int)groups[g].partition, id);
                cmds[nc++] = lf_scl_cmd(slot, &c);
            }
        }
    }
    int rc = lf_cc_run(s->cc, cmds, nc, err);
    for (size_t i = 0; rc == LF_OK && i < nc; i++)
        if (cmds[i].reply->type == REDIS_REPLY_ERROR) {
            lf_err_set(err, LF_ERR, "HDEL outbox: Redis answered %.*s", (int)cmds[i].reply->len,
                       cmds[i].reply->str);
            rc = LF_ERR;
        }
    lf_cc_free_replies(cmds, nc);
    lf_free(cmds);
    lf_arena_reset(a);
    return rc;
}

int lf_scl_outbox_delete(lf_store_t *base, const char *topic, const lf_outbox_ids_t *groups,
                         size_t n, lf_err_t *err)
{
    return lf_scl_delete_outbox((lf_store_cluster_t *)base, topic, groups, n, err);
}

/* The outbox entries first (a crash in between republishes, never loses), then the progress
 * script on the primary of the progress hash's slot, and WAIT for its replicas. */
int lf_scl_save_progress(lf_store_t *base, const char *topic, const lf_progress_t *p, size_t n,
                         const char *outbox_topic, const lf_outbox_ids_t *done, size_t ndone,
                         lf_err_t *err)
{
    lf_store_cluster_t *s = (lf_store_cluster_t *)base;
    if (lf_scl_delete_outbox(s, outbox_topic, done, ndone, err) != LF_OK) return LF_ERR;
    if (n == 0) return LF_OK;
    char wm[LF_KEY_MAX];
    int wl = lf_key_watermarks(wm, sizeof(wm), LF_SCL_PREFIX(s), base->group, topic);
    lf_scl_node_t *node = NULL;
    lf_store_redis_t *st = lf_scl_node_for(s, lf_cluster_slot(wm, (size_t)wl), &node, err);
    if (!st) return LF_ERR;
    node->wrote = 1;
    int rc = st->base.ops->save_progress(&st->base, topic, p, n, outbox_topic, NULL, 0, err);
    if (rc == LF_OK) rc = lf_scl_wait(s, err);
    if (rc != LF_OK && err->code == LF_STORE_LOST) s->epochs_checked = 0;
    if (rc != LF_OK && lf_scl_retryable(err)) {
        lf_err_t ignored = {0};
        lf_cc_refresh(s->cc, &ignored);
    }
    return rc;
}
