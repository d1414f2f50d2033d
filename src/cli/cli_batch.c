/* Routed commands for the read-only commands (cli_int.h "Routed commands"): the same code
 * reads one Redis or a Redis Cluster. On a cluster a command goes to the primary of its key's
 * slot (lf_cc_run: pipelined per node, MOVED/ASK followed), and a shared key is read as its
 * LF_CLUSTER_SLOTS shards (keys.h), merged here. */
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "leadflow/alloc.h"
#include "leadflow/keys.h"
#include "leadflow/redis.h"
#include "cli_int.h"

/*---- The batch ----------------------------------------------------------------------------*/

void lf_cli_batch_add(lf_cli_batch_t *b, size_t argc, const char *const *argv, const size_t *lens)
{
    size_t l[LF_CLI_ARGS_MAX], total = 0;
    if (argc > LF_CLI_ARGS_MAX) argc = LF_CLI_ARGS_MAX; /* callers stay well below */
    if (b->n == b->cap) {
        b->cap = b->cap ? b->cap * 2 : 16;
        b->cmds = lf_realloc(b->cmds, b->cap * sizeof(*b->cmds));
        b->argv = lf_realloc(b->argv, b->cap * LF_CLI_ARGS_MAX * sizeof(*b->argv));
        b->lens = lf_realloc(b->lens, b->cap * LF_CLI_ARGS_MAX * sizeof(*b->lens));
        b->mem = lf_realloc(b->mem, b->cap * sizeof(*b->mem));
    }
    for (size_t a = 0; a < argc; a++)
        total += l[a] = lens ? lens[a] : strlen(argv[a]);
    /* One copy of all the arguments: the caller's buffers are usually reused per command. */
    char *m = lf_malloc(total + argc + 1), *o = m;
    const char **av = b->argv + b->n * LF_CLI_ARGS_MAX;
    size_t *al = b->lens + b->n * LF_CLI_ARGS_MAX;
    for (size_t a = 0; a < argc; a++) {
        memcpy(o, argv[a], l[a]);
        o[l[a]] = '\0';
        av[a] = o;
        al[a] = l[a];
        o += l[a] + 1;
    }
    lf_cc_cmd_t *c = &b->cmds[b->n];
    memset(c, 0, sizeof(*c));
    c->argc = argc;
    c->slot = argc > 1 ? lf_cluster_slot(av[1], al[1]) : 0;
    b->mem[b->n++] = m;
}

void lf_cli_batch_cmd(lf_cli_batch_t *b, const char *name, ...)
{
    const char *argv[LF_CLI_ARGS_MAX];
    size_t argc = 0;
    va_list ap;
    argv[argc++] = name;
    va_start(ap, name);
    for (const char *a; argc < LF_CLI_ARGS_MAX && (a = va_arg(ap, const char *));)
        argv[argc++] = a;
    va_end(ap);
    lf_cli_batch_add(b, argc, argv, NULL);
}

/* The argument arrays move when the batch grows: pointed at just before a run. */
static void lf_cli_batch_bind(lf_cli_batch_t *b)
{
    for (size_t i = 0; i < b->n; i++) {
        b->cmds[i].argv = b->argv + i * LF_CLI_ARGS_MAX;
        b->cmds[i].lens = b->lens + i * LF_CLI_ARGS_MAX;
        b->cmds[i].reply = NULL;
    }
}

int lf_cli_batch_run(lf_cli_t *cli, lf_cli_batch_t *b, const char *what)
{
    lf_err_t err = {0};
    if (!b->n) return 0;
    lf_cli_batch_bind(b);
    if (!cli->cc) {
        redisReply **r = lf_calloc(b->n, sizeof(*r));
        for (size_t i = 0; i < b->n; i++)
            redisAppendCommandArgv(cli->redis, (int)b->cmds[i].argc, b->argv + i * LF_CLI_ARGS_MAX,
                                   b->cmds[i].lens);
        int rc = lf_cli_replies(cli, r, b->n, what);
        for (size_t i = 0; !rc && i < b->n; i++)
            b->cmds[i].reply = r[i];
        lf_free(r);
        return rc;
    }
    if (lf_cc_run(cli->cc, b->cmds, b->n, &err) != LF_OK) {
        lf_cli_error(cli, "Redis %s failed: %s (redis.cluster.nodes: %s)", what, err.msg,
                     cli->cfg.redis_cluster_nodes);
        return LF_CLI_EXIT_REDIS;
    }
    for (size_t i = 0; i < b->n; i++) {
        const redisReply *r = b->cmds[i].reply;
        if (r && r->type != REDIS_REPLY_ERROR) continue;
        lf_cli_error(cli, "Redis %s failed: %.*s (key %s, redis.cluster.nodes: %s)", what,
                     r ? (int)r->len : 8, r ? r->str : "no reply",
                     b->cmds[i].argc > 1 ? b->cmds[i].argv[1] : "-", cli->cfg.redis_cluster_nodes);
        lf_cc_free_replies(b->cmds, b->n);
        return LF_CLI_EXIT_REDIS;
    }
    return 0;
}

redisReply *lf_cli_batch_take(lf_cli_batch_t *b, size_t i)
{
    redisReply *r = b->cmds[i].reply;
    b->cmds[i].reply = NULL;
    return r;
}

void lf_cli_batch_reset(lf_cli_batch_t *b)
{
    for (size_t i = 0; i < b->n; i++) {
        if (b->cmds[i].reply) freeReplyObject(b->cmds[i].reply);
        lf_free(b->mem[i]);
    }
    b->n = 0;
}

void lf_cli_batch_free(lf_cli_batch_t *b)
{
    lf_cli_batch_reset(b);
    lf_free(b->cmds);
    lf_free(b->argv);
    lf_free(b->lens);
    lf_free(b->mem);
    memset(b, 0, sizeof(*b));
}

/*---- Shards -------------------------------------------------------------------------------*/

size_t lf_cli_nshards(const lf_cli_t *cli)
{
    return cli->cc ? LF_CLUSTER_SLOTS : 1;
}

int lf_cli_shard_key(const lf_cli_t *cli, char *buf, size_t cap, const char *key, size_t k)
{
    int kl = snprintf(buf, cap, "%s", key);
    if (kl < 0 || (size_t)kl >= cap) return LF_ERR;
    if (!cli->cc) return kl;
    return lf_key_shard(buf, cap, kl, lf_cc_tags()->tag[k % LF_CLUSTER_SLOTS]);
}

int lf_cli_lead_shard_key(const lf_cli_t *cli, char *buf, size_t cap, const char *key,
                          const char *lead_key, size_t lead_len)
{
    return lf_cli_shard_key(cli, buf, cap, key, lf_cluster_slot(lead_key, lead_len));
}

int lf_cli_zcard(lf_cli_t *cli, const char *key, long long *total, long long *cards)
{
    lf_cli_batch_t b = {0};
    char k[LF_KEY_MAX];
    size_t n = lf_cli_nshards(cli);
    for (size_t s = 0; s < n; s++) {
        lf_cli_shard_key(cli, k, sizeof(k), key, s);
        lf_cli_batch_cmd(&b, "ZCARD", k, NULL);
    }
    int rc = lf_cli_batch_run(cli, &b, "ZCARD");
    *total = 0;
    for (size_t s = 0; !rc && s < n; s++) {
        long long c = lf_cli_batch_reply(&b, s)->integer;
        *total += c;
        if (cards) cards[s] = c;
    }
    lf_cli_batch_free(&b);
    return rc;
}

/*---- Merged hashes ------------------------------------------------------------------------*/

typedef struct {
    const redisReply *f, *v;
    size_t from; /* the hash it came from, then its place there: ties keep the first */
} lf_cli_pair_t;

static int lf_cli_pair_cmp(const void *a, const void *b)
{
    const lf_cli_pair_t *x = a, *y = b;
    size_t n = x->f->len < y->f->len ? x->f->len : y->f->len;
    int c = memcmp(x->f->str, y->f->str, n);
    if (c) return c;
    if (x->f->len != y->f->len) return x->f->len < y->f->len ? -1 : 1;
    return (x->from > y->from) - (x->from < y->from);
}

/* The value as an integer: 1 when it is one (a counter), 0 when not. */
static int lf_cli_int_value(const redisReply *v, long long *out)
{
    char buf[32], *end;
    if (v->type == REDIS_REPLY_INTEGER) {
        *out = v->integer;
        return 1;
    }
    if (v->type != REDIS_REPLY_STRING || !v->len || v->len >= sizeof(buf)) return 0;
    memcpy(buf, v->str, v->len);
    buf[v->len] = '\0';
    *out = strtoll(buf, &end, 10);
    return *end == '\0';
}

static redisReply *lf_cli_str_reply(const char *s, size_t len)
{
    redisReply *r = lf_calloc(1, sizeof(*r));
    r->type = REDIS_REPLY_STRING;
    r->str = lf_malloc(len + 1);
    memcpy(r->str, s, len);
    r->str[len] = '\0';
    r->len = len;
    return r;
}

redisReply *lf_cli_hash_merge(redisReply *const *hashes, size_t n)
{
    size_t np = 0, cap = 0;
    for (size_t h = 0; h < n; h++)
        if (hashes[h] && hashes[h]->type == REDIS_REPLY_ARRAY) cap += hashes[h]->elements / 2;
    lf_cli_pair_t *p = lf_calloc(cap ? cap : 1, sizeof(*p));
    for (size_t h = 0; h < n; h++) {
        if (!hashes[h] || hashes[h]->type != REDIS_REPLY_ARRAY) continue;
        for (size_t i = 0; i + 1 < hashes[h]->elements; i += 2) {
            const redisReply *f = hashes[h]->element[i];
            if (f->type != REDIS_REPLY_STRING) continue;
            p[np] = (lf_cli_pair_t){f, hashes[h]->element[i + 1], np};
            np++;
        }
    }
    if (np > 1) qsort(p, np, sizeof(*p), lf_cli_pair_cmp);
    redisReply *out = lf_calloc(1, sizeof(*out));
    out->type = REDIS_REPLY_ARRAY;
    out->element = lf_calloc(2 * np + 1, sizeof(*out->element));
    for (size_t i = 0; i < np;) {
        size_t j = i + 1;
        while (j < np && p[j].f->len == p[i].f->len &&
               memcmp(p[j].f->str, p[i].f->str, p[i].f->len) == 0)
            j++;
        long long sum = 0, v = 0;
        int ints = 1;
        for (size_t k = i; k < j && ints; k++) {
            ints = lf_cli_int_value(p[k].v, &v);
            sum += v;
        }
        out->element[out->elements++] = lf_cli_str_reply(p[i].f->str, p[i].f->len);
        if (ints) {
            char num[32];
            int nl = snprintf(num, sizeof(num), "%lld", sum);
            out->element[out->elements++] = lf_cli_str_reply(num, (size_t)nl);
        } else if (p[i].v->type == REDIS_REPLY_STRING) {
            out->element[out->elements++] = lf_cli_str_reply(p[i].v->str, p[i].v->len);
        } else {
            out->element[out->elements++] = lf_cli_str_reply("", 0);
        }
        i = j;
    }
    lf_free(p);
    return out;
}

void lf_cli_hash_merged_free(redisReply *h)
{
    if (!h) return;
    for (size_t i = 0; i < h->elements; i++) {
        lf_free(h->element[i]->str);
        lf_free(h->element[i]);
    }
    lf_free(h->element);
    lf_free(h);
}
