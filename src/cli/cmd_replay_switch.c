/* `leadflow replay --switch`: make the rebuilt state the live one. In order:
 *   1. pause the live instances (<live>ctl:pause; each finishes its batch, empties its
 *      outboxes of what was delivered, writes nothing more and says "paused");
 *   2. catch the replay up with their positions (the same run, to the offsets the live
 *      progress holds);
 *   3. give each rebuilt lead the live lead's transition count and history, and where the
 *      new rules put it in another stage, one transition to that stage (reason
 *      rules_switch) in its outbox: what downstream saw continues without a gap and nothing
 *      of the replay's own history is published;
 *   4. carry over what the live outboxes still hold, and the progress under the live group;
 *   5. flip <base>active to the new prefix: one SET, so every reader (leadflow's commands,
 *      and the instances, which restart on it and publish the outboxes) changes at once.
 * Until the flip, giving up (a timeout, an error, SIGTERM) lifts the pause and leaves the
 * live state as it was. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <math.h>
#include <time.h>
#include <unistd.h>

#include "cli_int.h"
#include "cmd_replay_int.h"
#include "leadflow/alloc.h"
#include "leadflow/keys.h"
#include "leadflow/score.h"
#include "leadflow/store.h"
#include "leadflow/writes.h"

#define LF_SWITCH_WAIT_MS 60000
#define LF_SWITCH_CHUNK 500

static void lf_sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

typedef struct {
    const char *want;
    int in, out;
} lf_switch_states_t;

static void lf_switch_state(void *ctx, size_t i, const char *id, const redisReply *hb)
{
    (void)i, (void)id;
    lf_switch_states_t *x = ctx;
    char state[32];
    lf_cli_reply_str(lf_cli_hash_get(hb, "state"), state, sizeof(state));
    if (strcmp(state, x->want) == 0)
        x->in++;
    else
        x->out++;
}

/* How many live instances under prefix are, and are not yet, in state `want`. */
static int lf_switch_count(lf_cli_t *cli, const char *prefix, const char *want, int *in, int *out)
{
    lf_switch_states_t x = {want, 0, 0};
    size_t n;
    int rc = lf_cli_live_instances(cli, prefix, &n, lf_switch_state, &x);
    *in = x.in;
    *out = x.out;
    return rc;
}

static void lf_switch_unpause(lf_cli_t *cli)
{
    redisReply *r = redisCommand(cli->redis, "DEL %sctl:pause", cli->cfg.redis_prefix);
    if (r) freeReplyObject(r);
}

/* 1. Pause the live instances and wait until each says so. */
static int lf_switch_pause(lf_cli_t *cli)
{
    char who[64];
    snprintf(who, sizeof(who), "replay --switch (pid %d)", (int)getpid());
    /* A TTL: a switch that dies before the flip does not leave the live instances paused. */
    redisReply *r =
        redisCommand(cli->redis, "SET %sctl:pause %s EX 900", cli->cfg.redis_prefix, who);
    if (!r || r->type == REDIS_REPLY_ERROR) {
        if (r) freeReplyObject(r);
        lf_cli_error(cli, "cannot set %sctl:pause", cli->cfg.redis_prefix);
        return LF_CLI_EXIT_REDIS;
    }
    freeReplyObject(r);
    int64_t until = lf_now_ms() + LF_SWITCH_WAIT_MS;
    int in = 0, out = 0;
    do {
        lf_sleep_ms(250);
        if (lf_switch_count(cli, cli->cfg.redis_prefix, "paused", &in, &out) != LF_OK) break;
    } while (out > 0 && lf_now_ms() < until);
    if (out > 0) {
        lf_switch_unpause(cli);
        lf_cli_error(cli,
                     "switch: %d live instance(s) did not pause within %d s; nothing was "
                     "switched, they run on",
                     out, LF_SWITCH_WAIT_MS / 1000);
        return 3;
    }
    fprintf(stderr, "switch: %d live instance(s) paused\n", in);
    return 0;
}

/* 2. The live instances' positions: next offset per partition (-1: none), from their
 * progress hash. */
static int lf_switch_positions(lf_cli_t *cli, int64_t *next)
{
    char key[LF_KEY_MAX];
    for (int i = 0; i < LF_MAX_PARTITIONS; i++)
        next[i] = -1;
    lf_key_watermarks(key, sizeof(key), cli->cfg.redis_prefix, cli->cfg.kafka_group,
                      cli->cfg.topic_events);
    redisReply *r = redisCommand(cli->redis, "HGETALL %s", key);
    if (!r || r->type != REDIS_REPLY_ARRAY) {
        if (r) freeReplyObject(r);
        return LF_ERR;
    }
    for (size_t i = 0; i + 1 < r->elements; i += 2) {
        int64_t part, off;
        if (lf_parse_i64(r->element[i]->str, 0, LF_MAX_PARTITIONS - 1, &part) == LF_OK &&
            lf_parse_i64(r->element[i + 1]->str, 0, INT64_MAX, &off) == LF_OK)
            next[part] = off;
    }
    freeReplyObject(r);
    return LF_OK;
}

/*---- 3. The rebuilt leads take the live ones' transition count and history ---------------*/

/* The rebuilt lead n continues the live lead o: o's seq and history, and if the stage
 * differs, one transition o.stage -> n.stage at `at` (reason rules_switch) into tr. */
static void lf_switch_continue(lf_lead_t *n, const lf_lead_t *o, const lf_model_t *m, int64_t at,
                               lf_transitions_t *tr)
{
    lf_stage_t from = o->exists ? o->stage : LF_STAGE_VISITOR;
    n->seq = o->exists ? o->seq : 0;
    n->nhistory = 0;
    for (int i = 0; o->exists && i < o->nhistory; i++)
        lf_lead_history_add(n, &o->history[i]);
    if (from == n->stage) return;
    lf_transition_t *t = &tr->t[tr->n++];
    memset(t, 0, sizeof(*t));
    t->seq = ++n->seq;
    t->from = from;
    t->to = n->stage;
    t->reason = LF_REASON_RULES_SWITCH;
    t->at_ms = at;
    t->fit = n->fit;
    t->engagement = lf_lead_engagement_at(n, at, m);
    t->score = t->fit + t->engagement;
    t->grade = lf_grade(t->score, m);
    lf_history_t h = {t->seq,
                      (uint8_t)from,
                      (uint8_t)n->stage,
                      LF_REASON_RULES_SWITCH,
                      at,
                      round(t->score * 100) / 100};
    lf_lead_history_add(n, &h);
}

/* One chunk of rebuilt leads: load both sides, continue, write. Adds to *moved the leads
 * whose stage changed. */
static int lf_switch_chunk(lf_switch_t *sw, char **ids, size_t n, size_t *moved, lf_err_t *err)
{
    lf_arena_t *a = &sw->arena;
    lf_lead_t *nl = lf_arena_alloc(a, n * sizeof(*nl)), *ol = lf_arena_alloc(a, n * sizeof(*ol));
    lf_lead_t **np = lf_arena_alloc(a, n * sizeof(*np)), **op = lf_arena_alloc(a, n * sizeof(*op));
    lf_stored_hash_t *stored = lf_arena_alloc(a, n * sizeof(*stored));
    for (size_t i = 0; i < n; i++) {
        np[i] = &nl[i];
        op[i] = &ol[i];
    }
    const lf_model_t *m = &sw->shadow_cfg->model;
    if (sw->shadow->ops->load_leads(sw->shadow, (const char *const *)ids, NULL, n, np, m, stored, a,
                                    err) ||
        sw->live->ops->load_leads(sw->live, (const char *const *)ids, NULL, n, op, sw->live_model,
                                  NULL, a, err))
        return LF_ERR;
    lf_store_write_t *w = lf_arena_alloc(a, n * sizeof(*w));
    size_t nw = 0;
    for (size_t i = 0; i < n; i++) {
        lf_lead_t *l = &nl[i];
        if (!l->exists || l->anonymous) continue;
        uint64_t loaded_version = l->version;
        lf_stage_t loaded_stage = l->stage;
        lf_transitions_t tr = {0};
        lf_switch_continue(l, &ol[i], m, sw->at_ms, &tr);
        *moved += (size_t)tr.n;
        lf_writes_loaded_lead(&w[nw++], l, loaded_version, loaded_stage, &stored[i], &tr,
                              sw->shadow_cfg->transitions_json, m, a);
    }
    if (nw == 0) return LF_OK;
    int *results = lf_arena_alloc(a, nw * sizeof(*results));
    if (sw->shadow->ops->write_leads(sw->shadow, w, nw, results, NULL, NULL, err)) return LF_ERR;
    for (size_t k = 0; k < nw; k++)
        if (results[k] != LF_WRITE_OK) {
            lf_err_set(err, LF_ERR, "a rebuilt lead changed while the switch wrote it");
            return LF_ERR;
        }
    return LF_OK;
}

typedef struct {
    lf_switch_t *sw;
    const char *prefix;
    int (*fn)(lf_switch_t *sw, char **ids, size_t n, lf_err_t *err);
} lf_switch_scan_t;

/* One SCAN step of <prefix>lead:*: its lead ids to fn. */
static int lf_switch_scan_step(void *ctx, const redisReply *keys, lf_err_t *err)
{
    lf_switch_scan_t *x = ctx;
    lf_arena_reset(&x->sw->arena);
    char **ids = lf_arena_alloc(&x->sw->arena, (keys->elements + 1) * sizeof(*ids));
    size_t n = 0;
    char id[LF_ID_MAX + 1];
    for (size_t i = 0; i < keys->elements; i++)
        if (lf_cli_lead_key_id(x->prefix, keys->element[i], id, sizeof(id)))
            ids[n++] = lf_arena_strndup(&x->sw->arena, id, strlen(id));
    return n ? x->fn(x->sw, ids, n, err) : LF_OK;
}

/* SCAN <prefix>lead:* a step at a time, calling fn with the ids. */
static int lf_switch_scan(lf_switch_t *sw, const char *prefix,
                          int (*fn)(lf_switch_t *sw, char **ids, size_t n, lf_err_t *err),
                          lf_err_t *err)
{
    lf_switch_scan_t x = {sw, prefix, fn};
    return lf_cli_scan(sw->cli, prefix, "lead:*", LF_SWITCH_CHUNK, lf_switch_scan_step, &x, err);
}

static int lf_switch_merge_chunk(lf_switch_t *sw, char **ids, size_t n, lf_err_t *err)
{
    sw->leads += n;
    return lf_switch_chunk(sw, ids, n, &sw->moved, err);
}

/* Live leads the rebuilt state lacks (their events are gone from the topic). */
static int lf_switch_missing_chunk(lf_switch_t *sw, char **ids, size_t n, lf_err_t *err)
{
    for (size_t i = 0; i < n; i++)
        redisAppendCommand(sw->cli->redis, "EXISTS %slead:{%s}", sw->shadow->prefix, ids[i]);
    for (size_t i = 0; i < n; i++) {
        redisReply *r = NULL;
        if (redisGetReply(sw->cli->redis, (void **)&r) != REDIS_OK || !r) {
            lf_err_set(err, LF_ERR, "EXISTS failed");
            return LF_ERR;
        }
        if (r->type == REDIS_REPLY_INTEGER && r->integer == 0) {
            if (sw->missing == 0)
                snprintf(sw->missing_example, sizeof(sw->missing_example), "%s", ids[i]);
            sw->missing++;
        }
        freeReplyObject(r);
    }
    return LF_OK;
}

/*---- 4. Outboxes and progress --------------------------------------------------------------*/

/* One SCAN step of the live outboxes: each one's entries into the same outbox under the new
 * prefix. */
static int lf_switch_outbox_step(void *ctx, const redisReply *keys, lf_err_t *err)
{
    lf_switch_t *sw = ctx;
    size_t ll = strlen(sw->cli->cfg.redis_prefix);
    for (size_t i = 0; i < keys->elements; i++) {
        const char *k = keys->element[i]->str;
        redisReply *h = redisCommand(sw->cli->redis, "HGETALL %s", k);
        if (!h || h->type != REDIS_REPLY_ARRAY) {
            lf_err_set(err, LF_ERR, "HGETALL %s failed", k);
            if (h) freeReplyObject(h);
            return LF_ERR;
        }
        if (h->elements) {
            size_t argc = h->elements + 2;
            const char **argv = lf_malloc(argc * sizeof(*argv));
            size_t *lens = lf_malloc(argc * sizeof(*lens));
            char key[LF_KEY_MAX];
            int kl = snprintf(key, sizeof(key), "%s%s", sw->shadow->prefix, k + ll);
            argv[0] = "HSET";
            lens[0] = 4;
            argv[1] = key;
            lens[1] = (size_t)kl;
            for (size_t j = 0; j < h->elements; j++) {
                argv[j + 2] = h->element[j]->str;
                lens[j + 2] = h->element[j]->len;
            }
            redisReply *x = redisCommandArgv(sw->cli->redis, (int)argc, argv, lens);
            if (x) freeReplyObject(x);
            sw->carried += h->elements / 2;
            lf_free(argv);
            lf_free(lens);
        }
        freeReplyObject(h);
    }
    return LF_OK;
}

/* What the live outboxes still hold goes to the same outboxes under the new prefix
 * (transition ids are stable: one published twice is the same message). */
static int lf_switch_outboxes(lf_switch_t *sw, lf_err_t *err)
{
    return lf_cli_scan(sw->cli, sw->cli->cfg.redis_prefix, "outbox:*", 1000, lf_switch_outbox_step,
                       sw, err);
}

/* The replay's progress becomes the live group's under the new prefix: the instances start
 * from it. */
static int lf_switch_progress(lf_switch_t *sw, lf_err_t *err)
{
    char from[LF_KEY_MAX], to[LF_KEY_MAX];
    lf_key_watermarks(from, sizeof(from), sw->shadow->prefix, sw->shadow_cfg->kafka_group,
                      sw->cli->cfg.topic_events);
    lf_key_watermarks(to, sizeof(to), sw->shadow->prefix, sw->cli->cfg.kafka_group,
                      sw->cli->cfg.topic_events);
    redisReply *r = redisCommand(sw->cli->redis, "COPY %s %s REPLACE", from, to);
    int ok = r && r->type == REDIS_REPLY_INTEGER && r->integer == 1;
    if (!ok) lf_err_set(err, LF_ERR, "COPY %s %s failed", from, to);
    if (r) freeReplyObject(r);
    return ok ? LF_OK : LF_ERR;
}

/*---- The switch ---------------------------------------------------------------------------*/

/* 5. The flip, then the instances on the new prefix, and their rules versions. */
static int lf_switch_flip(lf_switch_t *sw)
{
    lf_cli_t *cli = sw->cli;
    redisReply *r =
        redisCommand(cli->redis, "SET %sactive %s", cli->base_prefix, sw->shadow->prefix);
    int ok = r && r->type != REDIS_REPLY_ERROR;
    if (r) freeReplyObject(r);
    if (!ok) {
        lf_cli_error(cli, "switch: SET %sactive failed", cli->base_prefix);
        return LF_CLI_EXIT_REDIS;
    }
    r = redisCommand(cli->redis, "HSET %sctl:replay switched_ms %lld switched_from %s",
                     sw->shadow->prefix, (long long)lf_wall_ms(), cli->cfg.redis_prefix);
    if (r) freeReplyObject(r);
    lf_switch_unpause(cli); /* the old prefix's: its instances restart on the new one */
    fprintf(stderr, "switch: %sactive = %s: the live state is the rebuilt one\n", cli->base_prefix,
            sw->shadow->prefix);
    int64_t until = lf_now_ms() + LF_SWITCH_WAIT_MS;
    int in = 0, out = 0;
    do {
        lf_sleep_ms(250);
        lf_switch_count(cli, sw->shadow->prefix, "ok", &in, &out);
    } while ((in < sw->paused || out > 0) && lf_now_ms() < until);
    fprintf(stderr, "switch: %d instance(s) running on %s\n", in, sw->shadow->prefix);
    return 0;
}

int lf_replay_switch(lf_switch_t *sw, int (*catch_up)(void *ctx, const int64_t *next), void *ctx)
{
    lf_cli_t *cli = sw->cli;
    lf_err_t err = {0};
    int64_t next[LF_MAX_PARTITIONS];
    int rc = lf_switch_pause(cli), in, out;
    if (rc) return rc;
    lf_switch_count(cli, cli->cfg.redis_prefix, "paused", &in, &out);
    sw->paused = in;
    if (lf_switch_positions(cli, next) != LF_OK) {
        lf_switch_unpause(cli);
        lf_cli_error(cli, "switch: cannot read the live positions");
        return LF_CLI_EXIT_REDIS;
    }
    if ((rc = catch_up(ctx, next))) {
        lf_switch_unpause(cli);
        lf_cli_error(cli,
                     "switch: the replay did not catch up with the live instances (status "
                     "%d); nothing was switched, they run on",
                     rc);
        return rc;
    }
    if (lf_switch_scan(sw, cli->cfg.redis_prefix, lf_switch_missing_chunk, &err) != LF_OK)
        goto failed;
    if (sw->missing) {
        lf_switch_unpause(cli);
        lf_cli_error(cli,
                     "switch: %zu live lead(s) are not in the rebuilt state (e.g. %s: their "
                     "events are no longer on the topic); nothing was switched",
                     sw->missing, sw->missing_example);
        return 3;
    }
    sw->at_ms = lf_wall_ms();
    if (lf_switch_scan(sw, sw->shadow->prefix, lf_switch_merge_chunk, &err) != LF_OK ||
        lf_switch_outboxes(sw, &err) != LF_OK || lf_switch_progress(sw, &err) != LF_OK)
        goto failed;
    fprintf(stderr,
            "switch: %zu lead(s) continue their live history; %zu move stage under the new rules "
            "(reason rules_switch); %zu undelivered transition(s) carried over\n",
            sw->leads, sw->moved, sw->carried);
    return lf_switch_flip(sw);
failed:
    lf_switch_unpause(cli);
    lf_cli_error(cli, "switch: %s; nothing was switched (the live state is as it was)", err.msg);
    return LF_CLI_EXIT_REDIS;
}
