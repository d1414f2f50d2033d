/* Lead writes of the standalone Redis back end (store.h): optimistic transactions of up to
 * LF_LEADS_PER_TX leads (WATCH, check the versions, MULTI, plain commands, EXEC) on two
 * alternating connections; each lead's hash as RESTORE of a ready-made listpack (hashdump.h)
 * where the server takes it, else HSET/HDEL of what changed. */
#include <hiredis/hiredis.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "leadflow/keys.h"
#include "leadflow/lead_pack.h"
#include "store_redis_int.h"

/* Leads per transaction: big enough to amortise the two round trips, small enough that
 * one EXEC does not block Redis for long and a conflict re-does little. */
#define LF_LEADS_PER_TX 64

/*---- Writing leads: WATCH, check, MULTI ... EXEC -----------------------------------------*/

/* A lead write is computed from the versions it loaded. Round 1 WATCHes every key whose
 * value decides the write (the lead, its alias if it is a visitor, each merged visitor and
 * its alias) and reads those values; leads whose values moved are left out (conflict: the
 * pipeline reloads them). Round 2 sends the others' writes in one MULTI/EXEC: Redis runs it
 * only if no watched key changed in between, so each lead is all-or-nothing with its
 * counters and outbox entries, as a script would do, without a script's per-call cost.
 * The indexes, outboxes and counters of a chunk are written with one command each. */

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

/* The keys a record lives in: a lead's hash; a visitor's record, and the hash it had in the
 * layout before when it was read from there (legacy). */
static void lf_sr_watch_record(lf_store_redis_t *s, lf_argv_t *a, const char *id, int visitor,
                               int legacy)
{
    char key[LF_KEY_MAX];
    const char *p = LF_PREFIX(s);
    size_t idlen = strlen(id);
    if (visitor) lf_argv_add(a, key, (size_t)lf_key_visitor(key, sizeof(key), p, id, idlen));
    if (!visitor || legacy)
        lf_argv_add(a, key, (size_t)lf_key_lead(key, sizeof(key), p, id, idlen));
}

/* Queue the read of a record's write version; returns the number of replies (1 or 2). A
 * lead's version is in its first packed part (or `v` in the layout before): HMGET p v. */
static size_t lf_sr_queue_version(lf_store_redis_t *s, const char *id, int visitor, int legacy)
{
    char key[LF_KEY_MAX];
    const char *p = LF_PREFIX(s);
    size_t idlen = strlen(id);
    if (!visitor) {
        int kl = lf_key_lead(key, sizeof(key), p, id, idlen);
        const char *argv[4] = {"HMGET", key, "p", "v"};
        size_t lens[4] = {5, (size_t)kl, 1, 1};
        lf_sr_append(s, 4, argv, lens);
        return 1;
    }
    int kl = lf_key_visitor(key, sizeof(key), p, id, idlen);
    lf_sr_append_key(s, "GET", key, (size_t)kl, NULL);
    if (!legacy) return 1;
    kl = lf_key_lead(key, sizeof(key), p, id, idlen);
    lf_sr_append_key(s, "HGET", key, (size_t)kl, "v");
    return 2;
}

static uint64_t lf_sr_packed_version(const redisReply *r)
{
    uint64_t v = 0;
    if (r->type != REDIS_REPLY_STRING || lf_lead_pack_version(r->str, r->len, &v) != LF_OK)
        return 0;
    return v;
}

/* The version lf_sr_queue_version asked for, from its replies at r[*k] (advanced). */
static uint64_t lf_sr_read_version(redisReply **r, size_t *k, int visitor, int legacy)
{
    const redisReply *x = r[(*k)++];
    if (!visitor) {
        if (x->type != REDIS_REPLY_ARRAY || x->elements != 2) return 0;
        if (x->element[0]->type == REDIS_REPLY_STRING) return lf_sr_packed_version(x->element[0]);
        return lf_sr_version(x->element[1]);
    }
    uint64_t v = lf_sr_packed_version(x);
    if (legacy) {
        const redisReply *old = r[(*k)++];
        if (x->type == REDIS_REPLY_NIL) v = lf_sr_version(old);
    }
    return v;
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
        const lf_store_write_t *x = &w[i];
        const lf_lead_t *l = x->lead;
        lf_sr_watch_record(s, a, l->id, x->visitor, x->old_layout);
        if (l->anonymous)
            lf_argv_add(a, key, (size_t)lf_key_alias(key, sizeof(key), p, l->id, strlen(l->id)));
        if (l->anonymous && s->node) /* a lead is merging it in (store_cluster_write.c) */
            lf_argv_add(a, key, (size_t)lf_key_merging(key, sizeof(key), p, l->id, strlen(l->id)));
        for (size_t v = 0; !s->node && v < x->nmerged; v++) {
            const char *vid = x->merged_visitors[v];
            lf_sr_watch_record(s, a, vid, 1, lf_sr_merged_legacy(x, v));
            lf_argv_add(a, key, (size_t)lf_key_alias(key, sizeof(key), p, vid, strlen(vid)));
        }
    }
    /* The fence: a flush or a restart between this check and EXEC touches the epoch (or
     * drops the connection), so no lead lands in a Redis that lost data. */
    lf_argv_add(a, key,
                (size_t)lf_sr_shard(s, key, sizeof(key), lf_key_epoch(key, sizeof(key), p)));
    lf_sr_append_argv(s, a, &queued);
    for (size_t i = 0; i < n; i++) {
        const lf_store_write_t *x = &w[i];
        const lf_lead_t *l = x->lead;
        nreads += lf_sr_queue_version(s, l->id, x->visitor, x->old_layout);
        if (l->anonymous) {
            int kl = lf_key_alias(key, sizeof(key), p, l->id, strlen(l->id));
            char mk[LF_KEY_MAX];
            int ml = s->node ? lf_key_merging(mk, sizeof(mk), p, l->id, strlen(l->id)) : 0;
            const char *ex[3] = {"EXISTS", key, mk};
            size_t exl[3] = {6, (size_t)kl, (size_t)ml};
            lf_sr_append(s, s->node ? 3 : 2, ex, exl);
            nreads++;
        }
        for (size_t v = 0; !s->node && v < x->nmerged; v++) {
            const char *vid = x->merged_visitors[v];
            nreads += lf_sr_queue_version(s, vid, 1, lf_sr_merged_legacy(x, v));
            int kl = lf_key_alias(key, sizeof(key), p, vid, strlen(vid));
            lf_sr_append_key(s, "GET", key, (size_t)kl, NULL);
            nreads++;
        }
        if ((i + 1) % LF_FLUSH_EVERY == 0) lf_sr_flush(s);
    }
    /* lf:top's cutoff, the top_leads-th highest key (none while it has fewer members): a
     * lead below it only updates its entry if it has one (lf_sr_queue_top). */
    int top = lf_sr_top_cap(s) > 0 ? lf_sr_top_cap(s) : 1;
    char rank[24];
    int rl = snprintf(rank, sizeof(rank), "%d", -top);
    int kl = lf_sr_shard(s, key, sizeof(key), lf_key_top(key, sizeof(key), p));
    const char *zr[5] = {"ZRANGE", key, rank, rank, "WITHSCORES"};
    size_t zl[5] = {6, (size_t)kl, (size_t)rl, (size_t)rl, 10};
    lf_sr_append(s, 5, zr, zl);
    nreads++;
    kl = lf_sr_shard(s, key, sizeof(key), lf_key_epoch(key, sizeof(key), p));
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
    size_t nreplies;   /* of the round in flight */
    int committing;    /* round 2 sent as MULTI/EXEC (else as UNWATCH) */
    double top_cutoff; /* lf:top's lowest key once full; -inf before */
    const char *shard; /* a cluster node's: the shard suffix of the chunk's slot */
} lf_sr_chunk_t;

static void lf_sr_use_shard(lf_store_redis_t *s, const lf_sr_chunk_t *ch)
{
    if (s->node) snprintf(s->shard, sizeof(s->shard), "%s", ch->shard ? ch->shard : "");
}

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
    /* An error reply is no version: taken as one, the leads would "conflict" for ever. */
    if (lf_sr_reply_errors(r, nreads + 1, "WATCH and check versions", err)) {
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
        ok[i] = lf_sr_read_version(r, &k, x->visitor, x->old_layout) == x->expected_version;
        if (x->lead->anonymous && r[k++]->integer != 0) ok[i] = 0; /* linked meanwhile */
        for (size_t v = 0; !s->node && v < x->nmerged; v++) {
            uint64_t merged = x->merged_versions ? x->merged_versions[v] : 0;
            if (lf_sr_read_version(r, &k, 1, lf_sr_merged_legacy(x, v)) != merged) ok[i] = 0;
            const redisReply *linked = r[k++];
            if (linked->type == REDIS_REPLY_STRING &&
                (linked->len != strlen(x->lead->id) ||
                 memcmp(linked->str, x->lead->id, linked->len) != 0))
                ok[i] = 0; /* another lead took the visitor */
        }
    }
    const redisReply *cut = r[nreads - 1];
    ch->top_cutoff = -INFINITY;
    if (s->base.cfg->top_leads > 0 && cut->type == REDIS_REPLY_ARRAY && cut->elements == 2 &&
        cut->element[1]->type == REDIS_REPLY_STRING)
        ch->top_cutoff = strtod(cut->element[1]->str, NULL);
    lf_sr_free_replies(r, nreads + 1);
    return LF_OK;
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
        lf_sr_queue_chunk(s, ch->w, ch->n, ch->ok, ch->top_cutoff, &nq);
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
int lf_sr_write_leads(lf_store_t *base, lf_store_write_t *w, size_t n, int *results,
                      lf_store_prepare_fn prepare, void *ctx, lf_err_t *err)
{
    return lf_sr_write_chunks((lf_store_redis_t *)base, w, n, results, prepare, ctx, NULL, NULL, 0,
                              err);
}

int lf_sr_write_chunks(lf_store_redis_t *s, lf_store_write_t *w, size_t n, int *results,
                       lf_store_prepare_fn prepare, void *ctx, const size_t *ends,
                       const char *const *shards, size_t nends, lf_err_t *err)
{
    if (n == 0) return LF_OK;
    size_t nch = ends ? nends : (n + LF_LEADS_PER_TX - 1) / LF_LEADS_PER_TX;
    lf_sr_chunk_t *ch = lf_arena_alloc(&s->arena, nch * sizeof(*ch));
    int *ok = lf_arena_alloc(&s->arena, n * sizeof(*ok));
    for (size_t c = 0; c < nch; c++) {
        size_t from = ends ? (c ? ends[c - 1] : 0) : c * LF_LEADS_PER_TX;
        size_t to = ends ? ends[c] : (n - from < LF_LEADS_PER_TX ? n : from + LF_LEADS_PER_TX);
        ch[c].w = w + from;
        ch[c].n = to - from;
        ch[c].ok = ok + from;
        ch[c].results = results + from;
        ch[c].nreplies = 0;
        ch[c].committing = 0;
        ch[c].shard = shards ? shards[c] : NULL;
    }
    int rc = LF_ERR;
    if (lf_sr_use(s, 0, err)) goto done;
    if (prepare) prepare(ctx, w, 0, ch[0].n);
    lf_sr_use_shard(s, &ch[0]);
    ch[0].nreplies = lf_sr_send_check(s, ch[0].w, ch[0].n);
    for (size_t c = 0; c < nch; c++) {
        int mine = (int)(c % 2), other = 1 - mine;
        if (lf_sr_use(s, mine, err) || lf_sr_read_check(s, &ch[c], err)) goto done;
        if (c + 1 < nch) {
            /* Redis runs EXEC(c-1) meanwhile. */
            size_t from = (size_t)(ch[c + 1].w - w);
            if (prepare) prepare(ctx, w, from, from + ch[c + 1].n);
            if (lf_sr_use(s, other, err)) goto done;
            lf_sr_use_shard(s, &ch[c + 1]);
            ch[c + 1].nreplies = lf_sr_send_check(s, ch[c + 1].w, ch[c + 1].n);
        }
        if (lf_sr_use(s, mine, err)) goto done;
        lf_sr_use_shard(s, &ch[c]);
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
