/* Lead writes and looks for the store write suites (store_test.h): writes built as the
 * pipeline builds them (lf_lead_encode for the hash), and what Redis holds afterwards read
 * on the tests' plain connection. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "leadflow/lead_codec.h"
#include "store_test.h"

lf_store_t *lf_store_test_open(const lf_config_t *cfg)
{
    lf_err_t err = {0};
    lf_store_t *s = lf_store_redis_open(cfg, &err);
    const int32_t part = 0;
    int64_t next, ts;
    if (s && s->ops->load_watermarks(s, "leadflow.events", &part, 1, &next, &ts, &err) == LF_OK)
        return s;
    fprintf(stdout, "  cannot open a store handle: %s\n", err.msg);
    if (s) s->ops->close(s);
    return NULL;
}

/* What every test write shares: the lead, its stage bookkeeping, the counter. */
static void lf_write_base(lf_store_write_t *w, lf_lead_t *lead, const char *id, uint64_t expected,
                          lf_arena_t *a)
{
    lf_lead_init(lead, lf_str_from(id));
    lead->exists = 1;
    lead->stage = LF_STAGE_MQL; /* a stage with a set (lf:stage:mql) */
    lead->version = expected + 1;
    *w = (lf_store_write_t){.lead = lead, .expected_version = expected};
    w->old_stage = LF_STAGE_MQL;
    w->ranked = 1;
    w->old_exists = expected > 0;
    w->stage_touched = expected == 0;
    w->stage_score = 1000.0 + (double)expected;
    w->top_key = (double)lead->version;
    w->whole = lf_arena_alloc(a, sizeof(*w->whole));
    lf_argv_init_scratch(w->whole, a);
    w->trans = lf_arena_alloc(a, sizeof(*w->trans));
    lf_argv_init_scratch(w->trans, a);
    w->counters = lf_arena_alloc(a, sizeof(*w->counters));
    lf_argv_init_scratch(w->counters, a);
    lf_argv_adds(w->counters, "0.applied");
    lf_argv_adds(w->counters, "1");
}

void lf_store_test_write(lf_store_write_t *w, lf_lead_t *lead, const char *id, uint64_t expected,
                         const char *writer, lf_arena_t *a)
{
    lf_write_base(w, lead, id, expected, a);
    lf_lead_encode(lead, &lf_store_test_cfg.model, w->whole);
    lf_argv_addf(w->trans, "%s@%llu/%s", id, (unsigned long long)lead->version, writer);
    lf_argv_addf(w->trans, "{\"lead\":\"%s\",\"by\":\"%s\"}", id, writer);
}

void lf_store_test_write_pairs(lf_store_write_t *w, lf_lead_t *lead, const char *id,
                               uint64_t expected, const lf_argv_t *pairs, lf_arena_t *a)
{
    lf_write_base(w, lead, id, expected, a);
    for (size_t i = 0; i < pairs->n; i++)
        lf_argv_add(w->whole, pairs->argv[i], pairs->lens[i]);
}

static redisReply *lf_vcommand(const char *fmt, va_list ap)
{
    return redisvCommand(lf_store_test_redis, fmt, ap);
}

long long lf_store_test_int(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    redisReply *r = lf_vcommand(fmt, ap);
    va_end(ap);
    long long v = -1;
    if (r && r->type == REDIS_REPLY_INTEGER) v = r->integer;
    if (r && r->type == REDIS_REPLY_STRING) v = strtoll(r->str, NULL, 10);
    if (r) freeReplyObject(r);
    return v;
}

const char *lf_store_test_str(const char *fmt, ...)
{
    static char buf[512];
    va_list ap;
    va_start(ap, fmt);
    redisReply *r = lf_vcommand(fmt, ap);
    va_end(ap);
    buf[0] = '\0';
    if (r && (r->type == REDIS_REPLY_STRING || r->type == REDIS_REPLY_STATUS))
        snprintf(buf, sizeof(buf), "%.*s", (int)r->len, r->str);
    if (r) freeReplyObject(r);
    return buf;
}

/* Fields are unique on both sides: as many pairs, each found with its value, is equality. */
int lf_store_test_hash_is(const char *key, const lf_argv_t *pairs)
{
    redisReply *r = redisCommand(lf_store_test_redis, "HGETALL %s", key);
    int same = r && r->type == REDIS_REPLY_ARRAY && r->elements == pairs->n;
    for (size_t i = 0; same && i + 1 < pairs->n; i += 2) {
        int found = 0;
        for (size_t k = 0; !found && k + 1 < r->elements; k += 2)
            found = r->element[k]->len == pairs->lens[i] &&
                    !memcmp(r->element[k]->str, pairs->argv[i], pairs->lens[i]) &&
                    r->element[k + 1]->len == pairs->lens[i + 1] &&
                    !memcmp(r->element[k + 1]->str, pairs->argv[i + 1], pairs->lens[i + 1]);
        same = found;
    }
    if (!same)
        fprintf(stdout, "  %s holds %zu strings, not the %zu written (or other values)\n", key,
                r && r->type == REDIS_REPLY_ARRAY ? r->elements : 0, pairs->n);
    if (r) freeReplyObject(r);
    return same;
}

long long lf_store_test_calls(const char *cmd)
{
    redisReply *r = redisCommand(lf_store_test_redis, "INFO commandstats");
    char want[64];
    int wl = snprintf(want, sizeof(want), "cmdstat_%s:calls=", cmd);
    long long calls = 0;
    const char *at = r && r->type == REDIS_REPLY_STRING ? strstr(r->str, want) : NULL;
    if (at) calls = strtoll(at + wl, NULL, 10);
    if (r) freeReplyObject(r);
    return calls;
}
