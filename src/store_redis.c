/* The standalone Redis back end of lf_store_t: pipelined reads, one atomic Lua call per
 * lead write (EVALSHA, reloaded on NOSCRIPT), progress in a MULTI/EXEC. */
#include <hiredis/hiredis.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "leadflow/keys.h"
#include "leadflow/lead_codec.h"
#include "leadflow/redis.h"
#include "leadflow/store.h"

/* Writes up to LF_LEADS_PER_CALL leads in one call; each lead is all-or-nothing.
 * KEYS: 1 lf:top, 2 the watermark hash (progress counters), then per lead: its hash, its old
 *       stage set, its new stage set, its history, its partition's outbox, the alias key of
 *       its own id, and per merged visitor: the visitor's hash, its alias key, its stage set.
 * ARGV: 1 number of leads, 2 history cap, then per lead: expected version, lead id, top
 *       score, stage score ("-": leave the stage sets alone), "1" for an anonymous visitor
 *       (refused once its alias exists: another instance linked it), the number of merged
 *       visitors and their (id, version merged) pairs (refused if a visitor changed since,
 *       or its alias points elsewhere: the lead is then reloaded and merged again),
 *       number of field/value args and the pairs, number of fields to delete and their
 *       names, number of transitions and (transition_id, payload, history entry) triples,
 *       number of counter args and (field, increment) pairs.
 * Returns one integer per lead: 1 written, -1 its stored version was not the expected one
 * (nothing of it written). The counters of the written leads are added once per call. */
static const char lf_write_lead_lua[] =
    "local nl = tonumber(ARGV[1])\n"
    "local hcap = tonumber(ARGV[2])\n"
    "local i, k = 3, 3\n"
    "local res, inc = {}, {}\n"
    "for l = 1, nl do\n"
    "  local ver, id, top, sscore = ARGV[i], ARGV[i + 1], ARGV[i + 2], ARGV[i + 3]\n"
    "  local anon, nv = ARGV[i + 4], tonumber(ARGV[i + 5])\n"
    "  i = i + 6\n"
    "  local kh, kold, knew = KEYS[k], KEYS[k + 1], KEYS[k + 2]\n"
    "  local khist, kout, kalias = KEYS[k + 3], KEYS[k + 4], KEYS[k + 5]\n"
    "  local ok = (redis.call('HGET', kh, 'v') or '0') == ver\n"
    "  if ok and anon == '1' and redis.call('EXISTS', kalias) == 1 then ok = false end\n"
    "  local vids, vk = {}, k + 6\n"
    "  for v = 1, nv do\n"
    "    vids[v] = ARGV[i]\n"
    "    if ok and (redis.call('HGET', KEYS[vk], 'v') or '0') ~= ARGV[i + 1] then ok = false end\n"
    "    local linked = ok and redis.call('GET', KEYS[vk + 1])\n"
    "    if linked and linked ~= id then ok = false end\n"
    "    i = i + 2\n"
    "    vk = vk + 3\n"
    "  end\n"
    "  local nf = tonumber(ARGV[i])\n"
    "  if ok and nf > 0 then redis.call('HSET', kh, unpack(ARGV, i + 1, i + nf)) end\n"
    "  i = i + nf + 1\n"
    "  local nd = tonumber(ARGV[i])\n"
    "  if ok and nd > 0 then redis.call('HDEL', kh, unpack(ARGV, i + 1, i + nd)) end\n"
    "  i = i + nd + 1\n"
    "  if ok then\n"
    "    redis.call('ZADD', KEYS[1], top, id)\n"
    "    if sscore ~= '-' then\n"
    "      if kold ~= knew then redis.call('ZREM', kold, id) end\n"
    "      redis.call('ZADD', knew, sscore, id)\n"
    "    end\n"
    "  end\n"
    "  local nt = tonumber(ARGV[i])\n"
    "  i = i + 1\n"
    "  for t = 1, nt do\n"
    "    if ok then\n"
    "      redis.call('HSET', kout, ARGV[i], ARGV[i + 1])\n"
    "      redis.call('RPUSH', khist, ARGV[i + 2])\n"
    "    end\n"
    "    i = i + 3\n"
    "  end\n"
    "  if ok and nt > 0 then redis.call('LTRIM', khist, -hcap, -1) end\n"
    "  local nc = tonumber(ARGV[i])\n"
    "  i = i + 1\n"
    "  for c = 1, nc, 2 do\n"
    "    if ok then inc[ARGV[i]] = (inc[ARGV[i]] or 0) + tonumber(ARGV[i + 1]) end\n"
    "    i = i + 2\n"
    "  end\n"
    "  k = k + 6\n"
    "  for v = 1, nv do\n"
    "    if ok then\n"
    "      redis.call('DEL', KEYS[k])\n"
    "      redis.call('ZREM', KEYS[1], vids[v])\n"
    "      redis.call('ZREM', KEYS[k + 2], vids[v])\n"
    "      redis.call('SET', KEYS[k + 1], id)\n"
    "    end\n"
    "    k = k + 3\n"
    "  end\n"
    "  res[l] = ok and 1 or -1\n"
    "end\n"
    "for f, n in pairs(inc) do redis.call('HINCRBY', KEYS[2], f, n) end\n"
    "return res\n";

/* Leads per script call: amortises the call's own cost without blocking Redis for long. */
#define LF_LEADS_PER_CALL 64

typedef struct {
    lf_store_t base;
    redisContext *c;
    char sha[41];
    lf_arena_t arena;
    lf_argv_t argv;
    int history_cap;
} lf_store_redis_t;

#define LF_PREFIX(s) ((s)->base.cfg->redis_prefix)

static int lf_sr_connect(lf_store_redis_t *s, lf_err_t *err)
{
    if (s->c && !s->c->err) return LF_OK;
    if (s->c) redisFree(s->c);
    s->c = lf_redis_connect(s->base.cfg, err);
    if (!s->c) return LF_ERR;
    redisReply *r = redisCommand(s->c, "SCRIPT LOAD %s", lf_write_lead_lua);
    if (!lf_redis_reply_ok(s->c, r, "SCRIPT LOAD", err) || r->type != REDIS_REPLY_STRING) {
        if (r) freeReplyObject(r);
        redisFree(s->c);
        s->c = NULL;
        return LF_ERR;
    }
    snprintf(s->sha, sizeof(s->sha), "%s", r->str);
    freeReplyObject(r);
    return LF_OK;
}

/* Send what is queued so far, so Redis works on it while the next commands are built. */
#define LF_FLUSH_EVERY 64
static void lf_sr_flush(lf_store_redis_t *s)
{
    int done = 0;
    while (!done && s->c && !s->c->err)
        if (redisBufferWrite(s->c, &done) != REDIS_OK) break;
}

/* Read n pipelined replies; keep them in replies[] (caller frees) or fail on the first
 * broken one (the connection is then dropped so the next call reconnects). */
static int lf_sr_replies(lf_store_redis_t *s, size_t n, redisReply **replies, const char *what,
                         lf_err_t *err)
{
    int rc = LF_OK;
    for (size_t i = 0; i < n; i++) {
        void *r = NULL;
        if (redisGetReply(s->c, &r) != REDIS_OK || !r) {
            lf_redis_reply_ok(s->c, NULL, what, err);
            for (size_t j = 0; j < i; j++)
                freeReplyObject(replies[j]);
            redisFree(s->c);
            s->c = NULL;
            return LF_ERR;
        }
        replies[i] = r;
    }
    return rc;
}

/* One `CMD key` per id (the key named by keyfn), pipelined; the n replies (caller frees
 * each and the array), or NULL with err set. */
typedef int (*lf_keyfn_t)(char *buf, size_t cap, const char *prefix, const char *id, size_t len);
static redisReply **lf_sr_per_key(lf_store_redis_t *s, const char *cmd, lf_keyfn_t keyfn,
                                  const char *const *ids, size_t n, lf_err_t *err)
{
    char key[LF_KEY_MAX];
    for (size_t i = 0; i < n; i++) {
        int kl = keyfn(key, sizeof(key), LF_PREFIX(s), ids[i], strlen(ids[i]));
        const char *argv[2] = {cmd, key};
        size_t lens[2] = {strlen(cmd), (size_t)kl};
        redisAppendCommandArgv(s->c, 2, argv, lens);
        if ((i + 1) % LF_FLUSH_EVERY == 0) lf_sr_flush(s);
    }
    redisReply **replies = lf_malloc(n * sizeof(*replies));
    if (lf_sr_replies(s, n, replies, cmd, err)) {
        lf_free(replies);
        return NULL;
    }
    return replies;
}

static int lf_sr_load_leads(lf_store_t *base, const char *const *ids, size_t n,
                            lf_lead_t *const *out, const lf_model_t *m, lf_err_t *err)
{
    lf_store_redis_t *s = (lf_store_redis_t *)base;
    if (n == 0) return LF_OK;
    if (lf_sr_connect(s, err)) return LF_ERR;
    redisReply **replies = lf_sr_per_key(s, "HGETALL", lf_key_lead, ids, n, err);
    if (!replies) return LF_ERR;
    int rc = LF_OK;
    lf_str_t fields[256], values[256];
    for (size_t i = 0; i < n; i++) {
        redisReply *r = replies[i];
        if (rc == LF_OK && (r->type != REDIS_REPLY_ARRAY || r->elements / 2 > 256)) {
            lf_err_set(err, LF_ERR, "lead %s: unexpected reply to HGETALL (type %d)", ids[i],
                       r->type);
            rc = LF_ERR;
        }
        if (rc == LF_OK) {
            size_t np = r->elements / 2;
            for (size_t k = 0; k < np; k++) {
                fields[k] = (lf_str_t){r->element[2 * k]->str, (uint32_t)r->element[2 * k]->len};
                values[k] =
                    (lf_str_t){r->element[2 * k + 1]->str, (uint32_t)r->element[2 * k + 1]->len};
            }
            rc = lf_lead_decode(out[i], lf_str_from(ids[i]), fields, values, np, m, err);
        }
        freeReplyObject(r);
    }
    lf_free(replies);
    return rc;
}

static int lf_sr_load_aliases(lf_store_t *base, const char *const *anons, size_t n, char **out,
                              lf_arena_t *arena, lf_err_t *err)
{
    lf_store_redis_t *s = (lf_store_redis_t *)base;
    if (n == 0) return LF_OK;
    if (lf_sr_connect(s, err)) return LF_ERR;
    redisReply **replies = lf_sr_per_key(s, "GET", lf_key_alias, anons, n, err);
    if (!replies) return LF_ERR;
    for (size_t i = 0; i < n; i++) {
        redisReply *r = replies[i];
        out[i] = r->type == REDIS_REPLY_STRING ? lf_arena_strndup(arena, r->str, r->len) : NULL;
        freeReplyObject(r);
    }
    lf_free(replies);
    return LF_OK;
}

/* One lead's keys and arguments, appended to the call being built. */
static void lf_sr_add_lead(lf_store_redis_t *s, const lf_store_write_t *w, lf_argv_t *keys,
                           lf_argv_t *args)
{
    const char *p = LF_PREFIX(s);
    const lf_lead_t *l = w->lead;
    size_t idlen = strlen(l->id);
    char key[LF_KEY_MAX];
    lf_argv_add(keys, key, (size_t)lf_key_lead(key, sizeof(key), p, l->id, idlen));
    lf_argv_add(keys, key,
                (size_t)lf_key_stage(key, sizeof(key), p, w->old_exists ? w->old_stage : l->stage));
    lf_argv_add(keys, key, (size_t)lf_key_stage(key, sizeof(key), p, l->stage));
    lf_argv_add(keys, key, (size_t)lf_key_hist(key, sizeof(key), p, l->id, idlen));
    lf_argv_add(
        keys, key,
        (size_t)lf_key_outbox(key, sizeof(key), p, s->base.cfg->topic_transitions, w->partition));
    lf_argv_add(keys, key, (size_t)lf_key_alias(key, sizeof(key), p, l->id, idlen));
    for (size_t i = 0; i < w->nmerged; i++) {
        const char *v = w->merged_visitors[i];
        lf_argv_add(keys, key, (size_t)lf_key_lead(key, sizeof(key), p, v, strlen(v)));
        lf_argv_add(keys, key, (size_t)lf_key_alias(key, sizeof(key), p, v, strlen(v)));
        lf_argv_add(keys, key, (size_t)lf_key_stage(key, sizeof(key), p, w->merged_stages[i]));
    }
    lf_argv_add_i64(args, (long long)w->expected_version);
    lf_argv_add_ref(args, l->id, idlen);
    lf_argv_add_double(args, l->fit + l->eng);
    if (!w->stage_touched)
        lf_argv_adds(args, "-");
    else if (w->stage_score >= 9.0e15)
        lf_argv_adds(args, "+inf");
    else
        lf_argv_add_double(args, w->stage_score);
    lf_argv_adds(args, l->anonymous ? "1" : "0");
    lf_argv_add_i64(args, (long long)w->nmerged);
    for (size_t i = 0; i < w->nmerged; i++) {
        lf_argv_add_ref(args, w->merged_visitors[i], strlen(w->merged_visitors[i]));
        lf_argv_add_i64(args, (long long)(w->merged_versions ? w->merged_versions[i] : 0));
    }
    /* The caller's lists stay alive until the write returns: reference, don't copy. */
    lf_argv_add_i64(args, (long long)w->fields->n);
    for (size_t i = 0; i < w->fields->n; i++)
        lf_argv_add_ref(args, w->fields->argv[i], w->fields->lens[i]);
    size_t nd = w->deleted ? w->deleted->n : 0;
    lf_argv_add_i64(args, (long long)nd);
    for (size_t i = 0; i < nd; i++)
        lf_argv_add_ref(args, w->deleted->argv[i], w->deleted->lens[i]);
    lf_argv_add_i64(args, (long long)(w->trans->n / 3));
    for (size_t i = 0; i < w->trans->n; i++)
        lf_argv_add_ref(args, w->trans->argv[i], w->trans->lens[i]);
    size_t nc = w->counters ? w->counters->n : 0;
    lf_argv_add_i64(args, (long long)nc);
    for (size_t i = 0; i < nc; i++)
        lf_argv_add_ref(args, w->counters->argv[i], w->counters->lens[i]);
}

/* Queue one EVALSHA for leads [from, to). */
static void lf_sr_append_call(lf_store_redis_t *s, const lf_store_write_t *w, size_t from,
                              size_t to)
{
    const char *p = LF_PREFIX(s);
    char key[LF_KEY_MAX];
    lf_argv_t keys, args;
    lf_argv_init_scratch(&keys, &s->arena);
    lf_argv_init_scratch(&args, &s->arena);
    lf_argv_add(&keys, key, (size_t)lf_key_top(key, sizeof(key), p));
    lf_argv_add(
        &keys, key,
        (size_t)lf_key_watermarks(key, sizeof(key), p, s->base.group, s->base.cfg->topic_events));
    lf_argv_add_i64(&args, (long long)(to - from));
    lf_argv_add_i64(&args, s->history_cap);
    for (size_t i = from; i < to; i++)
        lf_sr_add_lead(s, &w[i], &keys, &args);
    lf_argv_t *a = &s->argv;
    lf_argv_reset(a);
    lf_argv_adds(a, "EVALSHA");
    lf_argv_adds(a, s->sha);
    lf_argv_add_i64(a, (long long)keys.n);
    for (size_t i = 0; i < keys.n; i++)
        lf_argv_add_ref(a, keys.argv[i], keys.lens[i]);
    for (size_t i = 0; i < args.n; i++)
        lf_argv_add_ref(a, args.argv[i], args.lens[i]);
    redisAppendCommandArgv(s->c, (int)a->n, a->argv, a->lens);
}

static int lf_sr_write_leads(lf_store_t *base, const lf_store_write_t *w, size_t n, int *results,
                             lf_err_t *err)
{
    lf_store_redis_t *s = (lf_store_redis_t *)base;
    if (n == 0) return LF_OK;
    if (lf_sr_connect(s, err)) return LF_ERR;
    size_t ncalls = (n + LF_LEADS_PER_CALL - 1) / LF_LEADS_PER_CALL;
    for (int attempt = 0; attempt < 2; attempt++) {
        for (size_t c = 0; c < ncalls; c++) {
            size_t from = c * LF_LEADS_PER_CALL;
            size_t to = from + LF_LEADS_PER_CALL < n ? from + LF_LEADS_PER_CALL : n;
            lf_sr_append_call(s, w, from, to);
            lf_arena_reset(&s->arena);
            lf_sr_flush(s); /* Redis runs this call while the next one is built */
        }
        redisReply **replies = lf_malloc(ncalls * sizeof(*replies));
        if (lf_sr_replies(s, ncalls, replies, "EVALSHA write-leads", err)) {
            lf_free(replies);
            return LF_ERR;
        }
        int noscript = 0, rc = LF_OK;
        for (size_t c = 0; c < ncalls; c++) {
            redisReply *r = replies[c];
            size_t from = c * LF_LEADS_PER_CALL;
            size_t cnt = (from + LF_LEADS_PER_CALL < n ? LF_LEADS_PER_CALL : n - from);
            if (r->type == REDIS_REPLY_ARRAY && r->elements == cnt) {
                for (size_t j = 0; j < cnt; j++)
                    results[from + j] =
                        r->element[j]->type == REDIS_REPLY_INTEGER && r->element[j]->integer == 1
                            ? LF_WRITE_OK
                            : LF_WRITE_CONFLICT;
            } else if (r->type == REDIS_REPLY_ERROR && strncmp(r->str, "NOSCRIPT", 8) == 0) {
                noscript = 1;
                for (size_t j = 0; j < cnt; j++)
                    results[from + j] = LF_WRITE_CONFLICT;
            } else {
                lf_err_set(err, LF_ERR, "writing leads failed: %.*s",
                           r->type == REDIS_REPLY_ERROR ? (int)r->len : 16,
                           r->type == REDIS_REPLY_ERROR ? r->str : "unexpected reply");
                rc = LF_ERR;
            }
            freeReplyObject(r);
        }
        lf_free(replies);
        if (rc != LF_OK) return rc;
        if (!noscript) return LF_OK;
        /* The script cache was flushed (restart without persistence, SCRIPT FLUSH): load it
         * again. Writes that did go through now report a conflict and are reloaded. */
        redisFree(s->c);
        s->c = NULL;
        if (lf_sr_connect(s, err)) return LF_ERR;
    }
    lf_err_set(err, LF_ERR, "Redis keeps answering NOSCRIPT for the write-leads script");
    return LF_ERR;
}

static int lf_sr_load_watermarks(lf_store_t *base, const char *topic, const int32_t *parts,
                                 size_t n, int64_t *next, lf_err_t *err)
{
    lf_store_redis_t *s = (lf_store_redis_t *)base;
    if (lf_sr_connect(s, err)) return LF_ERR;
    char key[LF_KEY_MAX];
    lf_argv_t *a = &s->argv;
    lf_argv_reset(a);
    lf_argv_adds(a, "HMGET");
    lf_argv_add(a, key,
                (size_t)lf_key_watermarks(key, sizeof(key), LF_PREFIX(s), base->group, topic));
    for (size_t i = 0; i < n; i++)
        lf_argv_add_i64(a, parts[i]);
    redisReply *r = redisCommandArgv(s->c, (int)a->n, a->argv, a->lens);
    lf_arena_reset(&s->arena);
    if (!lf_redis_reply_ok(s->c, r, "HMGET watermarks", err) || r->type != REDIS_REPLY_ARRAY ||
        r->elements != n) {
        if (r) freeReplyObject(r);
        if (s->c && s->c->err) {
            redisFree(s->c);
            s->c = NULL;
        }
        return LF_ERR;
    }
    for (size_t i = 0; i < n; i++) {
        redisReply *e = r->element[i];
        next[i] = e->type == REDIS_REPLY_STRING ? strtoll(e->str, NULL, 10) : -1;
    }
    freeReplyObject(r);
    return LF_OK;
}

/* Progress: a partition's next offset only moves forward (a late or repeated write from an
 * instance that lost the partition cannot rewind it); counters are added.
 * KEYS[1] the watermark hash; ARGV: number of partitions, then per partition: its number,
 * its next offset, the number of counter args and (field, increment) pairs. */
static const char lf_progress_lua[] =
    "local i = 2\n"
    "for p = 1, tonumber(ARGV[1]) do\n"
    "  local part, nxt = ARGV[i], tonumber(ARGV[i + 1])\n"
    "  local cur = tonumber(redis.call('HGET', KEYS[1], part) or '-1')\n"
    "  if nxt > cur then redis.call('HSET', KEYS[1], part, nxt) end\n"
    "  local nc = tonumber(ARGV[i + 2])\n"
    "  i = i + 3\n"
    "  for c = 1, nc, 2 do\n"
    "    redis.call('HINCRBY', KEYS[1], ARGV[i], ARGV[i + 1])\n"
    "    i = i + 2\n"
    "  end\n"
    "end\n"
    "return 1\n";

static int lf_sr_save_progress(lf_store_t *base, const char *topic, const lf_progress_t *p,
                               size_t n, lf_err_t *err)
{
    lf_store_redis_t *s = (lf_store_redis_t *)base;
    if (n == 0) return LF_OK;
    if (lf_sr_connect(s, err)) return LF_ERR;
    char key[LF_KEY_MAX];
    lf_argv_t *a = &s->argv;
    lf_argv_reset(a);
    lf_argv_adds(a, "EVAL");
    lf_argv_adds(a, lf_progress_lua);
    lf_argv_adds(a, "1");
    lf_argv_add(a, key,
                (size_t)lf_key_watermarks(key, sizeof(key), LF_PREFIX(s), base->group, topic));
    lf_argv_add_i64(a, (long long)n);
    for (size_t i = 0; i < n; i++) {
        const struct {
            const char *name;
            int64_t v;
        } counters[] = {{"consumed", p[i].consumed},     {"applied", p[i].applied},
                        {"duplicates", p[i].duplicates}, {"dead", p[i].dead},
                        {"filtered", p[i].filtered},     {"transitions", p[i].transitions}};
        lf_argv_add_i64(a, p[i].partition);
        lf_argv_add_i64(a, (long long)p[i].next_offset);
        size_t nc_at = a->n;
        lf_argv_add_i64(a, 0);
        long long nc = 0;
        for (size_t k = 0; k < sizeof(counters) / sizeof(counters[0]); k++) {
            if (!counters[k].v) continue;
            lf_argv_addf(a, "%d.%s", (int)p[i].partition, counters[k].name);
            lf_argv_add_i64(a, (long long)counters[k].v);
            nc += 2;
        }
        lf_argv_set_i64(a, nc_at, nc);
    }
    redisReply *r = redisCommandArgv(s->c, (int)a->n, a->argv, a->lens);
    lf_arena_reset(&s->arena);
    int ok = lf_redis_reply_ok(s->c, r, "saving progress", err);
    if (r) freeReplyObject(r);
    if (!ok && s->c && s->c->err) {
        redisFree(s->c);
        s->c = NULL;
    }
    return ok ? LF_OK : LF_ERR;
}

void lf_outbox_entries_free(lf_outbox_entry_t *e, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        lf_free(e[i].id);
        lf_free(e[i].payload);
    }
    lf_free(e);
}

static int lf_sr_outbox_load(lf_store_t *base, const char *topic, int32_t part,
                             lf_outbox_entry_t **out, size_t *n, lf_err_t *err)
{
    lf_store_redis_t *s = (lf_store_redis_t *)base;
    *out = NULL;
    *n = 0;
    if (lf_sr_connect(s, err)) return LF_ERR;
    char key[LF_KEY_MAX];
    int kl = lf_key_outbox(key, sizeof(key), LF_PREFIX(s), topic, part);
    redisReply *r = redisCommand(s->c, "HGETALL %b", key, (size_t)kl);
    if (!lf_redis_reply_ok(s->c, r, "HGETALL outbox", err) || r->type != REDIS_REPLY_ARRAY) {
        if (r) freeReplyObject(r);
        return LF_ERR;
    }
    size_t np = r->elements / 2;
    if (np) {
        *out = lf_calloc(np, sizeof(**out));
        for (size_t i = 0; i < np; i++) {
            (*out)[i].id = lf_strndup(r->element[2 * i]->str, r->element[2 * i]->len);
            (*out)[i].payload = lf_strndup(r->element[2 * i + 1]->str, r->element[2 * i + 1]->len);
            (*out)[i].len = r->element[2 * i + 1]->len;
        }
    }
    *n = np;
    freeReplyObject(r);
    return LF_OK;
}

static int lf_sr_outbox_delete(lf_store_t *base, const char *topic, int32_t part,
                               const char *const *ids, size_t n, lf_err_t *err)
{
    lf_store_redis_t *s = (lf_store_redis_t *)base;
    if (n == 0) return LF_OK;
    if (lf_sr_connect(s, err)) return LF_ERR;
    char key[LF_KEY_MAX];
    lf_argv_t *a = &s->argv;
    lf_argv_reset(a);
    lf_argv_adds(a, "HDEL");
    lf_argv_add(a, key, (size_t)lf_key_outbox(key, sizeof(key), LF_PREFIX(s), topic, part));
    for (size_t i = 0; i < n; i++)
        lf_argv_adds(a, ids[i]);
    redisReply *r = redisCommandArgv(s->c, (int)a->n, a->argv, a->lens);
    lf_arena_reset(&s->arena);
    int ok = lf_redis_reply_ok(s->c, r, "HDEL outbox", err);
    if (r) freeReplyObject(r);
    return ok ? LF_OK : LF_ERR;
}

static int lf_sr_heartbeat(lf_store_t *base, const char *instance, const lf_argv_t *fields,
                           int ttl_s, lf_err_t *err)
{
    lf_store_redis_t *s = (lf_store_redis_t *)base;
    if (lf_sr_connect(s, err)) return LF_ERR;
    char key[LF_KEY_MAX], set[LF_KEY_MAX];
    int kl = lf_key_instance(key, sizeof(key), LF_PREFIX(s), instance);
    int sl = lf_key_instances(set, sizeof(set), LF_PREFIX(s));
    lf_argv_t *a = &s->argv;
    lf_argv_reset(a);
    lf_argv_adds(a, "HSET");
    lf_argv_add(a, key, (size_t)kl);
    for (size_t i = 0; i < fields->n; i++)
        lf_argv_add(a, fields->argv[i], fields->lens[i]);
    redisAppendCommandArgv(s->c, (int)a->n, a->argv, a->lens);
    redisAppendCommand(s->c, "EXPIRE %b %d", key, (size_t)kl, ttl_s);
    redisAppendCommand(s->c, "SADD %b %s", set, (size_t)sl, instance);
    lf_arena_reset(&s->arena);
    redisReply *replies[3];
    if (lf_sr_replies(s, 3, replies, "heartbeat", err)) return LF_ERR;
    int ok = 1;
    for (int i = 0; i < 3; i++) {
        if (replies[i]->type == REDIS_REPLY_ERROR)
            ok = lf_redis_reply_ok(s->c, replies[i], "heartbeat", err);
        freeReplyObject(replies[i]);
    }
    return ok ? LF_OK : LF_ERR;
}

static int lf_sr_due_mql(lf_store_t *base, int64_t until_ms, size_t max, char ***ids, size_t *n,
                         lf_arena_t *arena, lf_err_t *err)
{
    lf_store_redis_t *s = (lf_store_redis_t *)base;
    *ids = NULL;
    *n = 0;
    if (lf_sr_connect(s, err)) return LF_ERR;
    char key[LF_KEY_MAX];
    int kl = lf_key_stage(key, sizeof(key), LF_PREFIX(s), LF_STAGE_MQL);
    redisReply *r = redisCommand(s->c, "ZRANGEBYSCORE %b -inf %lld LIMIT 0 %d", key, (size_t)kl,
                                 (long long)until_ms, (int)max);
    if (!lf_redis_reply_ok(s->c, r, "ZRANGEBYSCORE mql", err) || r->type != REDIS_REPLY_ARRAY) {
        if (r) freeReplyObject(r);
        if (s->c && s->c->err) {
            redisFree(s->c);
            s->c = NULL;
        }
        return LF_ERR;
    }
    *ids = lf_arena_alloc(arena, (r->elements + 1) * sizeof(**ids));
    for (size_t i = 0; i < r->elements; i++)
        (*ids)[i] = lf_arena_strndup(arena, r->element[i]->str, r->element[i]->len);
    *n = r->elements;
    freeReplyObject(r);
    return LF_OK;
}

static void lf_sr_close(lf_store_t *base)
{
    lf_store_redis_t *s = (lf_store_redis_t *)base;
    if (s->c) redisFree(s->c);
    lf_argv_free(&s->argv);
    lf_arena_free(&s->arena);
    lf_free(s);
}

static const lf_store_ops_t lf_store_redis_ops = {
    .name = "redis",
    .load_leads = lf_sr_load_leads,
    .load_aliases = lf_sr_load_aliases,
    .write_leads = lf_sr_write_leads,
    .load_watermarks = lf_sr_load_watermarks,
    .save_progress = lf_sr_save_progress,
    .outbox_load = lf_sr_outbox_load,
    .outbox_delete = lf_sr_outbox_delete,
    .due_mql = lf_sr_due_mql,
    .heartbeat = lf_sr_heartbeat,
    .close = lf_sr_close,
};

lf_store_t *lf_store_redis_open(const lf_config_t *cfg, lf_err_t *err)
{
    lf_store_redis_t *s = lf_calloc(1, sizeof(*s));
    s->base.ops = &lf_store_redis_ops;
    s->base.cfg = cfg;
    s->base.group = cfg->kafka_group;
    s->history_cap = 20;
    lf_arena_init(&s->arena, 64 * 1024);
    lf_argv_init(&s->argv, &s->arena);
    if (lf_sr_connect(s, err)) {
        /* Keep the store: the pipeline retries the connection with backoff. */
    }
    return &s->base;
}
