/* Round 2 of a lead write of the standalone Redis back end (store.h): the commands between
 * MULTI and EXEC for the leads of a chunk whose check passed (store_redis_write.c runs the
 * rounds): each lead's record, lf:top, the stage sets, the outboxes, the progress counters
 * and lf:funnel. */
#include <hiredis/hiredis.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "leadflow/hashdump.h"
#include "leadflow/keys.h"
#include "leadflow/lead_codec.h"
#include "leadflow/writes.h"
#include "store_redis_int.h"

typedef struct {
    const char *field;
    size_t len;
    long long sum;
} lf_sr_counter_t;

/* Sum the chunk's increments per field (few distinct fields: partitions x kinds, stages):
 * of the progress counters, or (funnel) of lf:funnel. */
static size_t lf_sr_sum_counters(const lf_store_write_t *w, size_t n, const int *ok, int funnel,
                                 lf_sr_counter_t *c, size_t cap)
{
    size_t nc = 0;
    for (size_t i = 0; i < n; i++) {
        const lf_argv_t *x = funnel ? w[i].funnel : w[i].counters;
        if (!ok[i] || !x) continue;
        for (size_t j = 0; j + 1 < x->n; j += 2) {
            size_t k = 0;
            while (k < nc && !(c[k].len == x->lens[j] && !memcmp(c[k].field, x->argv[j], c[k].len)))
                k++;
            if (k == nc) {
                if (nc == cap) continue; /* cannot happen: cap is the number of pairs */
                c[nc++] = (lf_sr_counter_t){x->argv[j], x->lens[j], 0};
            }
            c[k].sum += strtoll(x->argv[j + 1], NULL, 10);
        }
    }
    return nc;
}

/* A multi-member command over one key: begin it (returns where the members start), then end
 * it, which queues it only if members were added. */
static size_t lf_sr_begin(lf_argv_t *a, const char *cmd, const char *key, size_t kl)
{
    lf_argv_reset(a);
    lf_argv_adds(a, cmd);
    lf_argv_add(a, key, kl);
    return a->n;
}

static void lf_sr_end(lf_store_redis_t *s, lf_argv_t *a, size_t base, size_t *queued)
{
    if (a->n > base) lf_sr_append_argv(s, a, queued);
    lf_argv_reset(a);
}

/* cmd key list..., queued only if the list is not empty. */
static void lf_sr_queue_key_list(lf_store_redis_t *s, lf_argv_t *a, const char *cmd,
                                 const char *key, size_t kl, const lf_argv_t *list, size_t *queued)
{
    size_t base = lf_sr_begin(a, cmd, key, kl);
    for (size_t j = 0; j < list->n; j++)
        lf_argv_add_ref(a, list->argv[j], list->lens[j]);
    lf_sr_end(s, a, base, queued);
}

static void lf_sr_add_stage_score(lf_argv_t *a, double score)
{
    if (score >= 9.0e15)
        lf_argv_adds(a, "+inf");
    else
        lf_argv_add_double(a, score);
}

/* The DUMP payload of hash h in s->dump, or 0 when it cannot be one (hashdump.h). */
static size_t lf_sr_dump_hash(lf_store_redis_t *s, const lf_argv_t *h)
{
    size_t bytes = 0;
    for (size_t j = 0; j < h->n; j++)
        bytes += h->lens[j];
    size_t need = lf_hashdump_bound(h->n, bytes);
    if (need > s->dumpcap) {
        lf_free(s->dump);
        s->dumpcap = need * 2;
        s->dump = lf_malloc(s->dumpcap);
    }
    return lf_hashdump_build(h->argv, h->lens, h->n, s->dump);
}

/* A lead's hash: the whole hash in one RESTORE REPLACE: for a new lead there is none (the
 * WATCH made sure, and REPLACE cannot fail on one that there is); for a stored one the WATCH
 * proves it is still the one `whole` was computed from. Cheaper for Redis than HSET of the
 * changed fields (measured: 3.6-4.6 against 6.4-10 us per lead; HSET looks each field up in
 * the listpack and moves the rest of it). Else (refused by the server, or a hash that is no
 * listpack) HSET of what changed and HDEL of what went. */
static void lf_sr_queue_hash(lf_store_redis_t *s, const lf_store_write_t *x, const char *key,
                             size_t kl, size_t *queued)
{
    lf_argv_t *a = &s->argv;
    const lf_argv_t *h = x->whole;
    size_t dumped = s->restore > 0 ? lf_sr_dump_hash(s, h) : 0;
    if (dumped) {
        lf_argv_adds(a, "RESTORE");
        lf_argv_add(a, key, kl);
        lf_argv_add_ref(a, "0", 1);
        lf_argv_add_ref(a, (const char *)s->dump, dumped);
        lf_argv_add_ref(a, "REPLACE", 7);
        lf_sr_append_argv(s, a, queued);
        return;
    }
    lf_argv_t changed, deleted;
    lf_argv_init_scratch(&changed, &s->arena);
    lf_argv_init_scratch(&deleted, &s->arena);
    lf_hash_diff(x->base_fields, x->base_values, x->nbase, h, &changed, &deleted);
    lf_sr_queue_key_list(s, a, "HSET", key, kl, &changed, queued);
    lf_sr_queue_key_list(s, a, "HDEL", key, kl, &deleted, queued);
}

/* Each lead's own keys: its record (a visitor's with its expiry); each visitor merged into it
 * goes, its alias names the lead (for alias_ttl). Records read from the layout before leave
 * their old key. The caller's lists stay alive until the write returns: reference them. */
static void lf_sr_queue_lead(lf_store_redis_t *s, const lf_store_write_t *x, size_t *queued)
{
    const char *p = LF_PREFIX(s);
    char key[LF_KEY_MAX], old[LF_KEY_MAX], num[32];
    lf_argv_t *a = &s->argv;
    const char *id = x->lead->id;
    size_t idlen = strlen(id);
    if (x->visitor) {
        int kl = lf_key_visitor(key, sizeof(key), p, id, idlen);
        lf_argv_adds(a, "SET");
        lf_argv_add(a, key, (size_t)kl);
        lf_argv_add_ref(a, x->whole->argv[1], x->whole->lens[1]);
        lf_argv_add_ref(a, "PXAT", 4);
        lf_argv_add_i64(a, (long long)x->expires_ms);
        lf_sr_append_argv(s, a, queued);
        if (x->old_layout) {
            lf_argv_adds(a, "DEL");
            lf_argv_add(a, old, (size_t)lf_key_lead(old, sizeof(old), p, id, idlen));
            lf_sr_append_argv(s, a, queued);
        }
    } else {
        int kl = lf_key_lead(key, sizeof(key), p, id, idlen);
        lf_sr_queue_hash(s, x, key, (size_t)kl, queued);
    }
    if (s->node && x->nmerged) {
        /* Its merged visitors live in other slots: the cluster back end clears them after this
         * unit; until then this record says which visitor versions the lead holds, so that a
         * merge redone after a crash in between is not counted twice. */
        char ak[LF_KEY_MAX];
        int akl = lf_key_absorbed(ak, sizeof(ak), p, id, idlen);
        lf_argv_adds(a, "HSET");
        lf_argv_add(a, ak, (size_t)akl);
        for (size_t v = 0; v < x->nmerged; v++) {
            lf_argv_add_ref(a, x->merged_visitors[v], strlen(x->merged_visitors[v]));
            lf_argv_add_i64(a, (long long)(x->merged_versions ? x->merged_versions[v] : 0));
        }
        lf_sr_append_argv(s, a, queued);
        lf_argv_adds(a, "PEXPIRE");
        lf_argv_add(a, ak, (size_t)akl);
        lf_argv_add_i64(a, (long long)s->base.cfg->visitor_ttl_s * 1000);
        lf_sr_append_argv(s, a, queued);
        return;
    }
    int nl = snprintf(num, sizeof(num), "%lld", (long long)s->base.cfg->alias_ttl_s * 1000);
    for (size_t v = 0; v < x->nmerged; v++) {
        const char *vid = x->merged_visitors[v];
        size_t vl = strlen(vid);
        lf_argv_adds(a, "DEL");
        lf_argv_add(a, key, (size_t)lf_key_visitor(key, sizeof(key), p, vid, vl));
        if (lf_sr_merged_legacy(x, v))
            lf_argv_add(a, key, (size_t)lf_key_lead(key, sizeof(key), p, vid, vl));
        lf_sr_append_argv(s, a, queued);
        lf_argv_adds(a, "SET");
        lf_argv_add(a, key, (size_t)lf_key_alias(key, sizeof(key), p, vid, vl));
        lf_argv_add_ref(a, id, idlen);
        lf_argv_add_ref(a, "PX", 2);
        lf_argv_add(a, num, (size_t)nl);
        lf_sr_append_argv(s, a, queued);
    }
}

/* lf:top: the written known leads by their time-invariant engagement key, then trimmed to
 * the top_leads highest; visitors of the layout before (which were ranked) leave it. A lead
 * whose key is below the cutoff (the lowest key of a full lf:top, read by the check) would be
 * trimmed at once: it only updates an entry it has (ZADD XX: its key went down), which costs
 * Redis a lookup instead of a skiplist insert and removal. Keys only go up with new events,
 * so a lead below the cutoff does not belong in the top; a cutoff that moved since the check
 * costs a trimmed insert (it rose) or a lead missing until its next write (it fell: only when
 * entries are removed, by the cleanup of the layout before). */
static void lf_sr_queue_top(lf_store_redis_t *s, const lf_store_write_t *w, size_t n, const int *ok,
                            double cutoff, size_t *queued)
{
    char key[LF_KEY_MAX];
    lf_argv_t *a = &s->argv;
    int tkl = lf_sr_shard(s, key, sizeof(key), lf_key_top(key, sizeof(key), LF_PREFIX(s)));
    int added = 0;
    for (int xx = 0; xx < 2; xx++) {
        size_t base = lf_sr_begin(a, "ZADD", key, (size_t)tkl);
        if (xx) lf_argv_add_ref(a, "XX", 2);
        size_t first = a->n;
        for (size_t i = 0; i < n; i++) {
            if (!ok[i] || !w[i].ranked || (w[i].top_key < cutoff) != xx) continue;
            lf_argv_add_double(a, w[i].top_key);
            lf_argv_add_ref(a, w[i].lead->id, strlen(w[i].lead->id));
        }
        if (!xx) added = a->n > first;
        if (a->n == first) a->n = base; /* no member: nothing to send */
        lf_sr_end(s, a, base, queued);
    }
    size_t base;
    base = lf_sr_begin(a, "ZREM", key, (size_t)tkl);
    for (size_t i = 0; i < n; i++) {
        if (!ok[i]) continue;
        if (w[i].visitor && w[i].old_layout)
            lf_argv_add_ref(a, w[i].lead->id, strlen(w[i].lead->id));
        for (size_t v = 0; v < w[i].nmerged; v++)
            if (lf_sr_merged_legacy(&w[i], v))
                lf_argv_add_ref(a, w[i].merged_visitors[v], strlen(w[i].merged_visitors[v]));
    }
    lf_sr_end(s, a, base, queued);
    int top = lf_sr_top_cap(s);
    if (added && top > 0) {
        base = lf_sr_begin(a, "ZREMRANGEBYRANK", key, (size_t)tkl);
        lf_argv_add_ref(a, "0", 1);
        lf_argv_add_i64(a, -(long long)top - 1);
        lf_sr_end(s, a, base, queued);
    }
}

/* Whether lead x leaves lf:stage:<st>: the sales-active sets when its stage changes; a lead
 * of the layout before (when every stage had a set) also the set of a stage that has none
 * now. */
static int lf_sr_leaves_stage(const lf_store_write_t *x, int st)
{
    if (!x->old_exists || (int)x->old_stage != st) return 0;
    int indexed = lf_writes_stage_indexed((lf_stage_t)st);
    if (x->old_stage != x->lead->stage) return indexed || x->old_layout;
    return x->old_layout && !indexed;
}

/* The stage sets: per set, the leads that left it, then those that entered it (a lead
 * leaves one set and enters another, so the order across sets does not matter). */
static void lf_sr_queue_stages(lf_store_redis_t *s, const lf_store_write_t *w, size_t n,
                               const int *ok, size_t *queued)
{
    char key[LF_KEY_MAX];
    lf_argv_t *a = &s->argv;
    for (int st = 0; st < LF_STAGE__COUNT; st++) {
        size_t skl = (size_t)lf_sr_shard(
            s, key, sizeof(key), lf_key_stage(key, sizeof(key), LF_PREFIX(s), (lf_stage_t)st));
        size_t base = lf_sr_begin(a, "ZREM", key, skl);
        for (size_t i = 0; i < n; i++) {
            const lf_store_write_t *x = &w[i];
            if (!ok[i]) continue;
            if (lf_sr_leaves_stage(x, st)) lf_argv_add_ref(a, x->lead->id, strlen(x->lead->id));
            for (size_t v = 0; v < x->nmerged; v++)
                if (lf_sr_merged_legacy(x, v) && (int)x->merged_stages[v] == st)
                    lf_argv_add_ref(a, x->merged_visitors[v], strlen(x->merged_visitors[v]));
        }
        lf_sr_end(s, a, base, queued);
        if (!lf_writes_stage_indexed((lf_stage_t)st)) continue;
        base = lf_sr_begin(a, "ZADD", key, skl);
        for (size_t i = 0; i < n; i++) {
            const lf_store_write_t *x = &w[i];
            if (!ok[i] || !x->stage_touched || (int)x->lead->stage != st) continue;
            lf_sr_add_stage_score(a, x->stage_score);
            lf_argv_add_ref(a, x->lead->id, strlen(x->lead->id));
        }
        lf_sr_end(s, a, base, queued);
    }
}

/* A cluster node's outbox shard: one HSET of the chunk's transitions, each field the
 * partition and the transition id ("<partition>:<transition_id>"). */
static void lf_sr_queue_outbox_shard(lf_store_redis_t *s, const lf_store_write_t *w, size_t n,
                                     const int *ok, size_t *queued)
{
    char key[LF_KEY_MAX];
    lf_argv_t *a = &s->argv;
    int kl = lf_key_outbox_slot(key, sizeof(key), LF_PREFIX(s), s->base.cfg->topic_transitions);
    size_t base = lf_sr_begin(a, "HSET", key, (size_t)lf_sr_shard(s, key, sizeof(key), kl));
    for (size_t i = 0; i < n; i++) {
        const lf_argv_t *t = w[i].trans;
        if (!ok[i]) continue;
        for (size_t e = 0; e + 1 < t->n; e += 2) {
            lf_argv_addf(a, "%d:%.*s", (int)w[i].partition, (int)t->lens[e], t->argv[e]);
            lf_argv_add_ref(a, t->argv[e + 1], t->lens[e + 1]);
        }
    }
    lf_sr_end(s, a, base, queued);
}

/* Outboxes: one HSET per partition, in the order of each partition's first lead. */
static void lf_sr_queue_outboxes(lf_store_redis_t *s, const lf_store_write_t *w, size_t n,
                                 const int *ok, size_t *queued)
{
    char key[LF_KEY_MAX];
    lf_argv_t *a = &s->argv;
    if (s->node) {
        lf_sr_queue_outbox_shard(s, w, n, ok, queued);
        return;
    }
    for (size_t i = 0; i < n; i++) {
        if (!ok[i] || w[i].trans->n < 2) continue;
        int32_t part = w[i].partition;
        size_t first = 0;
        while (!(ok[first] && w[first].trans->n >= 2 && w[first].partition == part))
            first++;
        if (first != i) continue; /* this partition's HSET was built already */
        lf_argv_adds(a, "HSET");
        lf_argv_add(a, key,
                    (size_t)lf_key_outbox(key, sizeof(key), LF_PREFIX(s),
                                          s->base.cfg->topic_transitions, part));
        for (size_t j = i; j < n; j++) {
            const lf_argv_t *t = w[j].trans;
            if (!ok[j] || w[j].partition != part) continue;
            for (size_t e = 0; e + 1 < t->n; e += 2) {
                lf_argv_add_ref(a, t->argv[e], t->lens[e]);
                lf_argv_add_ref(a, t->argv[e + 1], t->lens[e + 1]);
            }
        }
        lf_sr_append_argv(s, a, queued);
    }
}

/* Increments summed over the chunk, one HINCRBY per field: the progress counters of the
 * events these writes account for, and (funnel) lf:funnel's. */
static void lf_sr_queue_counters(lf_store_redis_t *s, const lf_store_write_t *w, size_t n,
                                 const int *ok, int funnel, size_t *queued)
{
    const lf_config_t *cfg = s->base.cfg;
    char key[LF_KEY_MAX];
    lf_argv_t *a = &s->argv;
    size_t npairs = 0;
    for (size_t i = 0; i < n; i++) {
        const lf_argv_t *x = funnel ? w[i].funnel : w[i].counters;
        if (ok[i] && x) npairs += x->n / 2;
    }
    lf_sr_counter_t *c = lf_arena_alloc(&s->arena, (npairs + 1) * sizeof(*c));
    size_t nc = lf_sr_sum_counters(w, n, ok, funnel, c, npairs);
    int kl = funnel ? lf_key_funnel(key, sizeof(key), LF_PREFIX(s))
                    : lf_key_watermarks(key, sizeof(key), LF_PREFIX(s), s->base.group,
                                        cfg->topic_events);
    kl = lf_sr_shard(s, key, sizeof(key), kl);
    for (size_t k = 0; k < nc; k++) {
        if (c[k].sum == 0) continue;
        lf_argv_adds(a, "HINCRBY");
        lf_argv_add(a, key, (size_t)kl);
        lf_argv_add_ref(a, c[k].field, c[k].len);
        lf_argv_add_i64(a, c[k].sum);
        lf_sr_append_argv(s, a, queued);
    }
}

/* Round 2: queue MULTI, the writes of the leads with ok[i], EXEC; the number of commands
 * queued between MULTI and EXEC goes to *nq. */
void lf_sr_queue_chunk(lf_store_redis_t *s, const lf_store_write_t *w, size_t n, const int *ok,
                       double top_cutoff, size_t *nq)
{
    lf_argv_t *a = &s->argv;
    size_t queued = 0;
    lf_argv_reset(a);
    lf_argv_adds(a, "MULTI");
    lf_sr_append_argv(s, a, &queued);
    for (size_t i = 0; i < n; i++)
        if (ok[i]) lf_sr_queue_lead(s, &w[i], &queued);
    lf_sr_queue_top(s, w, n, ok, top_cutoff, &queued);
    lf_sr_queue_stages(s, w, n, ok, &queued);
    lf_sr_queue_outboxes(s, w, n, ok, &queued);
    lf_sr_queue_counters(s, w, n, ok, 0, &queued);
    lf_sr_queue_counters(s, w, n, ok, 1, &queued);
    lf_argv_adds(a, "EXEC");
    lf_sr_append_argv(s, a, &queued);
    *nq = queued - 2;
}
