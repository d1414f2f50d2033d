/* Progress in the standalone Redis back end (store.h): the store epoch and the fence on it
 * (a Redis that lost data is noticed before leadflow writes to it), the start positions of
 * partitions, and each batch's progress (next offsets, event-time clocks, the counters of
 * the events no lead write accounted for) written by one script after the delivered outbox
 * entries are forgotten. */
#include <hiredis/hiredis.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "leadflow/keys.h"
#include "leadflow/redis.h"
#include "store_redis_int.h"

/*---- The store epoch and start positions -------------------------------------------------*/

/* The fence (store.h): the store epoch, created if Redis has none, stamped on the progress
 * hash if it has none; then the positions asked for.
 * KEYS[1] the epoch key, KEYS[2] the progress hash; ARGV[1] a fresh epoch, then field names.
 * Returns {epoch, the progress hash's epoch before this call ('' = none), values ('' = none)}. */
const char lf_sr_fence_lua[] =
    "local e = redis.call('GET', KEYS[1])\n"
    "if not e then redis.call('SET', KEYS[1], ARGV[1]); e = ARGV[1] end\n"
    "local w = redis.call('HGET', KEYS[2], 'epoch') or ''\n"
    "if w ~= e then redis.call('HSET', KEYS[2], 'epoch', e) end\n"
    "local out = {e, w}\n"
    "for i = 2, #ARGV do out[#out + 1] = redis.call('HGET', KEYS[2], ARGV[i]) or '' end\n"
    "return out\n";

/* 128 random bits in hex: an epoch no other Redis or flush will have. */
void lf_sr_new_epoch(char *out, size_t cap)
{
    unsigned char b[16];
    FILE *f = fopen("/dev/urandom", "rb");
    size_t got = f ? fread(b, 1, sizeof(b), f) : 0;
    if (f) fclose(f);
    if (got != sizeof(b)) { /* no /dev/urandom: time and pid, still unique enough (wall clock:
                             * an id unique across restarts, not a deadline) */
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        uint64_t x = (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec,
                 y = (uint64_t)getpid();
        memcpy(b, &x, 8);
        memcpy(b + 8, &y, 8);
    }
    size_t n = 0;
    for (size_t i = 0; i < sizeof(b) && n + 3 <= cap; i++)
        n += (size_t)snprintf(out + n, cap - n, "%02x", b[i]);
}

int lf_sr_load_watermarks(lf_store_t *base, const char *topic, const int32_t *parts, size_t n,
                          int64_t *next, int64_t *max_event_ms, lf_err_t *err)
{
    lf_store_redis_t *s = (lf_store_redis_t *)base;
    if (lf_sr_connect(s, err)) return LF_ERR;
    char key[LF_KEY_MAX], fresh[LF_EPOCH_MAX];
    lf_sr_new_epoch(fresh, sizeof(fresh));
    lf_argv_t *a = &s->argv;
    lf_argv_reset(a);
    lf_argv_adds(a, "EVAL");
    lf_argv_adds(a, lf_sr_fence_lua);
    lf_argv_adds(a, "2");
    lf_argv_add(a, key, (size_t)lf_key_epoch(key, sizeof(key), LF_PREFIX(s)));
    lf_argv_add(a, key,
                (size_t)lf_key_watermarks(key, sizeof(key), LF_PREFIX(s), base->group, topic));
    lf_argv_adds(a, fresh);
    for (size_t i = 0; i < n; i++) {
        lf_argv_add_i64(a, parts[i]);
        lf_argv_add_part_field(a, parts[i], "ts");
    }
    redisReply *r = redisCommandArgv(s->c, (int)a->n, a->argv, a->lens);
    lf_arena_reset(&s->arena);
    int replied = lf_redis_reply_ok(s->c, r, "reading the store epoch and positions", err);
    if (!replied || r->type != REDIS_REPLY_ARRAY || r->elements != 2 + 2 * n) {
        if (replied)
            lf_err_set(err, LF_ERR, "reading the store epoch and positions: unexpected reply");
        if (r) freeReplyObject(r);
        if (s->c && s->c->err) lf_sr_drop_all(s);
        return LF_ERR;
    }
    char found[LF_EPOCH_MAX];
    int rc = lf_sr_fence_judge(r, n, s->epoch, topic, "Redis", next, max_event_ms, found, err);
    snprintf(s->epoch, sizeof(s->epoch), "%s", found);
    freeReplyObject(r);
    return rc;
}

int lf_sr_fence_judge(const redisReply *r, size_t n, const char *mine, const char *topic,
                      const char *where, int64_t *next, int64_t *max_event_ms,
                      char found[LF_EPOCH_MAX], lf_err_t *err)
{
    for (size_t i = 0; i < n; i++) {
        const redisReply *e = r->element[2 + 2 * i], *t = r->element[3 + 2 * i];
        next[i] = e->type == REDIS_REPLY_STRING && e->len ? strtoll(e->str, NULL, 10) : -1;
        max_event_ms[i] = t->type == REDIS_REPLY_STRING && t->len ? strtoll(t->str, NULL, 10) : 0;
    }
    const redisReply *ep = r->element[0], *was = r->element[1];
    snprintf(found, LF_EPOCH_MAX, "%.*s", ep->type == REDIS_REPLY_STRING ? (int)ep->len : 0,
             ep->type == REDIS_REPLY_STRING ? ep->str : "");
    if (mine[0] && strcmp(mine, found) != 0) {
        lf_err_set(err, LF_STORE_LOST,
                   "%s holds store epoch %s, not %s (this instance's): it was flushed, "
                   "restarted empty or replaced",
                   where, found, mine);
        return LF_STORE_LOST;
    }
    if (was->type == REDIS_REPLY_STRING && was->len &&
        (was->len != strlen(found) || memcmp(was->str, found, was->len) != 0)) {
        lf_err_set(err, LF_STORE_LOST,
                   "the progress hash of %s belongs to store epoch %.*s, %s's is %s: it lost "
                   "data (a partial restore?)",
                   topic, (int)was->len, was->str, where, found);
        return LF_STORE_LOST;
    }
    return LF_OK;
}

/*---- Progress, and forgetting delivered outbox entries -----------------------------------*/

/* Queue one HDEL per group; returns how many were queued. */
static size_t lf_sr_queue_outbox_deletes(lf_store_redis_t *s, const char *topic,
                                         const lf_outbox_ids_t *groups, size_t n)
{
    char key[LF_KEY_MAX];
    lf_argv_t *a = &s->argv;
    size_t queued = 0;
    for (size_t g = 0; g < n; g++) {
        if (!groups[g].n) continue;
        lf_argv_reset(a);
        lf_argv_adds(a, "HDEL");
        lf_argv_add(
            a, key,
            (size_t)lf_key_outbox(key, sizeof(key), LF_PREFIX(s), topic, groups[g].partition));
        for (size_t i = 0; i < groups[g].n; i++)
            lf_argv_add_ref(a, groups[g].ids[i], strlen(groups[g].ids[i]));
        lf_sr_append(s, a->n, a->argv, a->lens);
        queued++;
    }
    lf_arena_reset(&s->arena);
    return queued;
}

/* Read `n` replies of a pipelined round and check each; frees them. */
static int lf_sr_check_replies(lf_store_redis_t *s, size_t n, const char *what, lf_err_t *err)
{
    redisReply *one[8];
    redisReply **r = n <= 8 ? one : lf_malloc(n * sizeof(*r));
    int ok = 0;
    if (lf_sr_replies(s, n, r, what, err) == LF_OK) { /* on failure it freed what it read */
        ok = 1;
        for (size_t i = 0; i < n; i++) {
            if (ok && !lf_redis_reply_ok(s->c, r[i], what, err)) ok = 0;
            freeReplyObject(r[i]);
        }
    }
    if (r != one) lf_free(r);
    return ok ? LF_OK : LF_ERR;
}

/* Progress: a partition's next offset only moves forward (a late or repeated write from an
 * instance that lost the partition cannot rewind it), and an offset's counters are added
 * only if it is past every offset counted before: at or past the next offset stored before
 * this call, and past the runs before it in this call (runs come in consumption order; one
 * that goes back is a redelivery). So none is counted twice, whichever of two instances that
 * processed it saves first.
 * KEYS[1] the watermark hash; ARGV: the store epoch the caller writes under (its fence: no
 * progress lands in a progress hash of another epoch; '' = none yet), the number of
 * partitions, then per partition: its number,
 * its next offset, its event-time clock, the number of runs and per run: first offset,
 * length, outcome (lf_outcome_t: 1 applied, 2 filtered, 3 duplicate, 4 dead). */
static const char lf_progress_lua[] =
    "local ep = redis.call('HGET', KEYS[1], 'epoch')\n"
    "if ARGV[1] ~= '' and ep ~= ARGV[1] then\n"
    "  return redis.error_reply('LFLOST the progress hash has store epoch ' .. tostring(ep))\n"
    "end\n"
    "local i = 3\n"
    "for p = 1, tonumber(ARGV[2]) do\n"
    "  local part, nxt = ARGV[i], tonumber(ARGV[i + 1])\n"
    "  local cur = tonumber(redis.call('HGET', KEYS[1], part) or '-1')\n"
    "  local ts = tonumber(ARGV[i + 2])\n"
    "  if ts > tonumber(redis.call('HGET', KEYS[1], part .. '.ts') or '0') then\n"
    "    redis.call('HSET', KEYS[1], part .. '.ts', ts)\n"
    "  end\n"
    "  local nr = tonumber(ARGV[i + 3])\n"
    "  i = i + 4\n"
    "  local add, seen = {0, 0, 0, 0}, cur\n"
    "  for r = 1, nr do\n"
    "    local first, n, o = tonumber(ARGV[i]), tonumber(ARGV[i + 1]), tonumber(ARGV[i + 2])\n"
    "    local past = first + n - math.max(first, seen)\n"
    "    if past > 0 then\n"
    "      add[o] = add[o] + past\n"
    "      seen = first + n\n"
    "    end\n"
    "    i = i + 3\n"
    "  end\n"
    "  local counts = {{'consumed', add[1] + add[2] + add[3] + add[4]},\n"
    "                  {'applied', add[1] + add[2]}, {'filtered', add[2]},\n"
    "                  {'duplicates', add[3]}, {'dead', add[4]}}\n"
    "  for _, c in ipairs(counts) do\n"
    "    if c[2] > 0 then redis.call('HINCRBY', KEYS[1], part .. '.' .. c[1], c[2]) end\n"
    "  end\n"
    "  if nxt > cur then redis.call('HSET', KEYS[1], part, nxt) end\n"
    "end\n"
    "return 1\n";

int lf_sr_save_progress(lf_store_t *base, const char *topic, const lf_progress_t *p, size_t n,
                        const char *outbox_topic, const lf_outbox_ids_t *done, size_t ndone,
                        lf_err_t *err)
{
    lf_store_redis_t *s = (lf_store_redis_t *)base;
    if (n == 0 && ndone == 0) return LF_OK;
    if (lf_sr_connect(s, err)) return LF_ERR;
    size_t queued = lf_sr_queue_outbox_deletes(s, outbox_topic, done, ndone);
    if (n == 0) return queued ? lf_sr_check_replies(s, queued, "HDEL outbox", err) : LF_OK;
    char key[LF_KEY_MAX];
    lf_argv_t *a = &s->argv;
    lf_argv_reset(a);
    lf_argv_adds(a, "EVAL");
    lf_argv_adds(a, lf_progress_lua);
    lf_argv_adds(a, "1");
    lf_argv_add(a, key,
                (size_t)lf_key_watermarks(key, sizeof(key), LF_PREFIX(s), base->group, topic));
    lf_argv_adds(a, s->epoch);
    lf_argv_add_i64(a, (long long)n);
    for (size_t i = 0; i < n; i++) {
        lf_argv_add_i64(a, p[i].partition);
        lf_argv_add_i64(a, (long long)p[i].next_offset);
        lf_argv_add_i64(a, (long long)p[i].max_event_ms);
        lf_argv_add_i64(a, (long long)p[i].nruns);
        for (size_t r = 0; r < p[i].nruns; r++) {
            lf_argv_add_i64(a, (long long)p[i].runs[r].first);
            lf_argv_add_i64(a, (long long)p[i].runs[r].n);
            lf_argv_add_i64(a, (long long)p[i].runs[r].outcome);
        }
    }
    lf_sr_append(s, a->n, a->argv, a->lens);
    lf_arena_reset(&s->arena);
    int rc = lf_sr_check_replies(s, queued + 1, "saving progress", err);
    if (rc != LF_OK && strstr(err->msg, "LFLOST")) err->code = LF_STORE_LOST;
    return rc;
}

int lf_sr_outbox_delete(lf_store_t *base, const char *topic, const lf_outbox_ids_t *groups,
                        size_t n, lf_err_t *err)
{
    lf_store_redis_t *s = (lf_store_redis_t *)base;
    if (lf_sr_connect(s, err)) return LF_ERR;
    size_t queued = lf_sr_queue_outbox_deletes(s, topic, groups, n);
    return queued ? lf_sr_check_replies(s, queued, "HDEL outbox", err) : LF_OK;
}
