/* What the read-only commands share: the common options, loading the rules file, the Redis
 * connection and pipelined replies, number and time formatting, aligned tables. */
#include <cjson/cJSON.h>
#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "leadflow/keys.h"
#include "leadflow/alloc.h"
#include "cli_int.h"
#include "leadflow/event.h"
#include "leadflow/timeparse.h"
#include "leadflow/redis.h"
#include "leadflow/score.h"

/*---- Options ------------------------------------------------------------------------------*/

void lf_cli_init(lf_cli_t *cli, const char *cmd, const char *usage)
{
    memset(cli, 0, sizeof(*cli));
    cli->cmd = cmd;
    cli->usage = usage;
}

static void lf_cli_verror(const lf_cli_t *cli, const char *fmt, va_list ap)
{
    fprintf(stderr, "leadflow %s: ", cli->cmd);
    vfprintf(stderr, fmt, ap);
}

void lf_cli_error(lf_cli_t *cli, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    lf_cli_verror(cli, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
}

int lf_cli_usage_error(lf_cli_t *cli, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    lf_cli_verror(cli, fmt, ap);
    va_end(ap);
    /* The usage line only; --help has the rest. */
    const char *nl = strchr(cli->usage, '\n');
    fprintf(stderr, "\n%.*s\n", nl ? (int)(nl - cli->usage) : (int)strlen(cli->usage), cli->usage);
    return LF_CLI_EXIT_USAGE;
}

/* The common option at argv[*i], or one of own[]: its value is stored. 1 taken, 0 not, -1 a
 * value missing (*name set to the option's name). */
static int lf_cli_take(lf_cli_t *cli, int argc, char **argv, int *i, const lf_cli_opt_t *own,
                       const char **name)
{
    const struct {
        const char *name;
        const char **value;
    } common[] = {{"-c", &cli->config_path},
                  {"--config", &cli->config_path},
                  {"--redis", &cli->redis_addr},
                  {"--group", &cli->group}};
    const char *v;
    int missing = 0;
    for (size_t k = 0; k < sizeof(common) / sizeof(common[0]); k++) {
        *name = common[k].name;
        if ((v = lf_opt_value(argc, argv, i, *name, &missing))) *common[k].value = v;
        if (v || missing) return v ? 1 : -1;
    }
    for (size_t k = 0; own && own[k].name; k++) {
        *name = own[k].name;
        if ((v = lf_opt_value(argc, argv, i, *name, &missing))) *own[k].value = v;
        if (v || missing) return v ? 1 : -1;
    }
    return 0;
}

int lf_cli_option(lf_cli_t *cli, int argc, char **argv, int *i, const lf_cli_opt_t *own)
{
    const char *a = argv[*i], *name = NULL;
    if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
        fputs(cli->usage, stdout);
        return LF_CLI_OPT_HELP;
    }
    if (strcmp(a, "--json") == 0) {
        cli->json = 1;
        return LF_CLI_OPT_TAKEN;
    }
    switch (lf_cli_take(cli, argc, argv, i, own, &name)) {
    case 1:
        return LF_CLI_OPT_TAKEN;
    case -1:
        lf_cli_usage_error(cli, "%s needs a value", name);
        return LF_CLI_OPT_ERROR;
    default:
        return LF_CLI_OPT_NONE;
    }
}

/*---- Opening: the rules file, then Redis --------------------------------------------------*/

int lf_cli_parse_hostport(const char *addr, char *host, size_t cap, int *port)
{
    const char *colon = NULL, *end;
    size_t hl;
    int64_t p = 0;
    /* Credentials or a URL: refused, so they are never echoed or used from argv. */
    if (!addr || !addr[0] || strchr(addr, '@') || strchr(addr, '/')) return LF_ERR;
    for (const char *c = addr; *c; c++)
        if (isspace((unsigned char)*c) || iscntrl((unsigned char)*c)) return LF_ERR;
    if (addr[0] == '[') {
        end = strchr(addr, ']');
        if (!end) return LF_ERR;
        hl = (size_t)(end - addr - 1);
        addr++;
        colon = end[1] == ':' ? end + 1 : NULL;
        if (!colon && end[1]) return LF_ERR;
    } else {
        colon = strrchr(addr, ':');
        if (colon && strchr(addr, ':') != colon) colon = NULL; /* a bare IPv6 address */
        hl = colon ? (size_t)(colon - addr) : strlen(addr);
    }
    if (hl >= cap) return LF_ERR;
    if (colon && lf_parse_i64(colon + 1, 1, 65535, &p) != LF_OK) return LF_ERR;
    if (!colon && !hl) return LF_ERR;
    if (colon) *port = (int)p;
    if (hl) {
        memcpy(host, addr, hl);
        host[hl] = '\0';
    }
    return LF_OK;
}

const char *lf_cli_redact_addr(const char *addr, char *buf, size_t cap)
{
    const char *at = addr ? strrchr(addr, '@') : NULL;
    if (!addr) addr = "";
    if (!at) {
        snprintf(buf, cap, "%s", addr);
        return buf;
    }
    const char *scheme = strstr(addr, "://");
    int keep = scheme && scheme < at ? (int)(scheme + 3 - addr) : 0;
    snprintf(buf, cap, "%.*s***%s", keep, addr, at);
    return buf;
}

int lf_cli_bad_redis(lf_cli_t *cli, const char *addr)
{
    char shown[300];
    lf_cli_redact_addr(addr, shown, sizeof(shown));
    if (addr && (strchr(addr, '@') || strstr(addr, "://")))
        return lf_cli_usage_error(cli,
                                  "--redis takes HOST:PORT, not a URL or credentials (\"%s\"): "
                                  "put the password in the rules file (redis.password, "
                                  "redis.user), where `ps` cannot show it",
                                  shown);
    return lf_cli_usage_error(
        cli, "--redis takes HOST:PORT with a port from 1 to 65535, not \"%s\"", shown);
}

/* After a switch (`leadflow replay --switch`) the live state is under the prefix
 * <redis.prefix>active names: every command reads it there. */
static int lf_cli_resolve_prefix(lf_cli_t *cli)
{
    char key[LF_KEY_MAX];
    lf_cli_batch_t b = {0};
    snprintf(cli->base_prefix, sizeof(cli->base_prefix), "%s", cli->cfg.redis_prefix);
    snprintf(key, sizeof(key), "%sactive", cli->base_prefix);
    lf_cli_batch_cmd(&b, "GET", key, NULL);
    int rc = lf_cli_batch_run(cli, &b, "GET of the active prefix");
    const redisReply *r = rc ? NULL : lf_cli_batch_reply(&b, 0);
    if (r && r->type == REDIS_REPLY_STRING && r->len > 0 && r->len < sizeof(cli->base_prefix)) {
        lf_free(cli->cfg.redis_prefix);
        cli->cfg.redis_prefix = lf_strdup(r->str);
    }
    lf_cli_batch_free(&b);
    return rc;
}

/* redis.cluster.nodes is set: a cluster client, its slot map read now, so that a cluster no
 * node of which answers is reported here, once. --redis names the one seed node to ask. */
static int lf_cli_open_cluster(lf_cli_t *cli)
{
    lf_err_t err = {0};
    char *saved = cli->cfg.redis_cluster_nodes;
    char shown[300];
    if (cli->single_node_only) {
        lf_cli_error(cli,
                     "`leadflow %s` is not supported on a Redis Cluster yet (redis.cluster.nodes "
                     "is set): it scans the keys of one Redis; top, stats, inspect and reload "
                     "work on a cluster",
                     cli->cmd);
        return LF_CLI_EXIT_REDIS;
    }
    if (cli->redis_addr) {
        char host[256] = "";
        int port = 0;
        if (lf_cli_parse_hostport(cli->redis_addr, host, sizeof(host), &port) != LF_OK ||
            !host[0] || !port)
            return lf_cli_usage_error(cli,
                                      "--redis takes HOST:PORT (a node of the Redis Cluster), "
                                      "not \"%s\"",
                                      lf_cli_redact_addr(cli->redis_addr, shown, sizeof(shown)));
        cli->cfg.redis_cluster_nodes = (char *)cli->redis_addr;
    }
    cli->cc = lf_cc_new(&cli->cfg, &err);
    int ok = cli->cc && lf_cc_refresh(cli->cc, &err) == LF_OK;
    if (!ok) {
        lf_cli_error(cli,
                     "%s; check that the cluster is up and that redis.cluster.nodes in the "
                     "rules file names its nodes (or name one with --redis HOST:PORT)",
                     err.msg);
        cli->cfg.redis_cluster_nodes = saved;
        return LF_CLI_EXIT_REDIS;
    }
    /* The read-only commands may read replicas (redis.cluster.read_from: replica). */
    lf_cc_read_replicas(cli->cc, cli->cfg.redis_read_from == 1);
    if (cli->redis_addr) {
        /* The client keeps cfg: the seed stays named for its messages. */
        cli->cfg.redis_cluster_nodes = lf_strdup(cli->redis_addr);
        lf_free(saved);
    }
    return lf_cli_resolve_prefix(cli);
}

int lf_cli_open(lf_cli_t *cli)
{
    lf_err_t err = {0};
    const char *path = cli->config_path;
    if (!path || !path[0]) path = getenv("LEADFLOW_CONFIG");
    if ((!path || !path[0]) && access("leadflow.yaml", R_OK) == 0) path = "leadflow.yaml";
    if (!path || !path[0])
        return lf_cli_usage_error(cli, "no rules file: pass -c FILE or set LEADFLOW_CONFIG");
    if (lf_config_load(path, &cli->cfg, NULL, &err) != LF_OK) {
        if (access(path, R_OK) == 0)
            lf_cli_error(cli, "%s (`leadflow check-config %s` lists every problem)", err.msg, path);
        else
            lf_cli_error(cli, "%s", err.msg);
        return LF_CLI_EXIT_USAGE;
    }
    cli->cfg_loaded = 1;
    if (cli->group) {
        lf_free(cli->cfg.kafka_group);
        cli->cfg.kafka_group = lf_strdup(cli->group);
    }
    if (cli->cfg.redis_cluster_nodes && cli->cfg.redis_cluster_nodes[0])
        return lf_cli_open_cluster(cli);

    /* --redis replaces host and port for this connection only; the strings stay owned by
     * the configuration, so it is put back as it was. */
    char host[256];
    char *saved_host = cli->cfg.redis_host;
    int saved_port = cli->cfg.redis_port;
    if (cli->redis_addr) {
        snprintf(host, sizeof(host), "%s", saved_host ? saved_host : "127.0.0.1");
        if (lf_cli_parse_hostport(cli->redis_addr, host, sizeof(host), &cli->cfg.redis_port) !=
            LF_OK)
            return lf_cli_bad_redis(cli, cli->redis_addr);
        cli->cfg.redis_host = host;
    }
    cli->redis = lf_redis_connect(&cli->cfg, &err);
    cli->cfg.redis_host = saved_host;
    if (!cli->redis) {
        lf_cli_error(cli, "%s", err.msg);
        cli->cfg.redis_port = saved_port;
        return LF_CLI_EXIT_REDIS;
    }
    return lf_cli_resolve_prefix(cli);
}

void lf_cli_close(lf_cli_t *cli)
{
    if (cli->redis) redisFree(cli->redis);
    cli->redis = NULL;
    lf_cc_free(cli->cc);
    cli->cc = NULL;
    if (cli->cfg_loaded) lf_config_free(&cli->cfg);
    cli->cfg_loaded = 0;
}

/*---- Replies ------------------------------------------------------------------------------*/

void lf_cli_free_replies(redisReply **replies, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (replies[i]) freeReplyObject(replies[i]);
        replies[i] = NULL;
    }
}

int lf_cli_replies(lf_cli_t *cli, redisReply **replies, size_t n, const char *what)
{
    lf_err_t err = {0};
    memset(replies, 0, n * sizeof(*replies));
    for (size_t i = 0; i < n; i++) {
        void *r = NULL;
        if (redisGetReply(cli->redis, &r) != REDIS_OK) r = NULL;
        replies[i] = r;
        if (!lf_redis_reply_ok(cli->redis, replies[i], what, &err)) {
            lf_cli_error(cli, "%s (Redis at %s:%d)", err.msg,
                         cli->redis_addr ? cli->redis_addr : cli->cfg.redis_host,
                         cli->cfg.redis_port);
            /* A broken connection has no more replies to read; an error reply leaves the
             * rest queued, which does not matter: the command ends here. */
            lf_cli_free_replies(replies, i + 1);
            return LF_CLI_EXIT_REDIS;
        }
    }
    return 0;
}

const redisReply *lf_cli_hash_get(const redisReply *hash, const char *field)
{
    if (!hash || hash->type != REDIS_REPLY_ARRAY) return NULL;
    size_t n = strlen(field);
    for (size_t i = 0; i + 1 < hash->elements; i += 2) {
        const redisReply *f = hash->element[i];
        if (f->type == REDIS_REPLY_STRING && f->len == n && memcmp(f->str, field, n) == 0)
            return hash->element[i + 1];
    }
    return NULL;
}

int64_t lf_cli_reply_i64(const redisReply *r, int64_t def)
{
    char buf[32], *end;
    if (!r) return def;
    if (r->type == REDIS_REPLY_INTEGER) return r->integer;
    if (r->type != REDIS_REPLY_STRING || r->len == 0 || r->len >= sizeof(buf)) return def;
    memcpy(buf, r->str, r->len);
    buf[r->len] = '\0';
    errno = 0;
    long long v = strtoll(buf, &end, 10);
    if (errno || *end) {
        /* Counters are integers, but accept "12.0" from a writer that formats doubles. */
        double d = strtod(buf, &end);
        return *end || d != d ? def : (int64_t)d;
    }
    return v;
}

double lf_cli_reply_double(const redisReply *r, double def)
{
    char buf[64], *end;
    if (!r) return def;
    if (r->type == REDIS_REPLY_INTEGER) return (double)r->integer;
    if (r->type != REDIS_REPLY_STRING || r->len == 0 || r->len >= sizeof(buf)) return def;
    memcpy(buf, r->str, r->len);
    buf[r->len] = '\0';
    double v = strtod(buf, &end);
    return *end || v != v ? def : v;
}

const char *lf_cli_reply_str(const redisReply *r, char *buf, size_t cap)
{
    buf[0] = '\0';
    if (r && r->type == REDIS_REPLY_STRING)
        snprintf(buf, cap, "%.*s", (int)(r->len < cap ? r->len : cap - 1), r->str);
    else if (r && r->type == REDIS_REPLY_INTEGER)
        snprintf(buf, cap, "%lld", (long long)r->integer);
    return buf;
}

/*---- Formatting ---------------------------------------------------------------------------*/

double lf_cli_num(double v)
{
    return v > -0.005 && v < 0.005 ? 0.0 : v;
}

const char *lf_cli_fmt_time(int64_t ms, char *buf, size_t cap)
{
    if (ms == 0)
        snprintf(buf, cap, "-");
    else
        lf_time_format_iso8601(ms, buf, cap);
    return buf;
}

const char *lf_cli_fmt_count(long long v, char *buf, size_t cap)
{
    char digits[32];
    unsigned long long mag = v < 0 ? 0ULL - (unsigned long long)v : (unsigned long long)v;
    int n = snprintf(digits, sizeof(digits), "%llu", mag);
    size_t o = 0;
    if (v < 0 && o + 1 < cap) buf[o++] = '-';
    for (int i = 0; i < n && o + 1 < cap; i++) {
        if (i && (n - i) % 3 == 0 && o + 1 < cap) buf[o++] = ',';
        if (o + 1 < cap) buf[o++] = digits[i];
    }
    buf[o] = '\0';
    return buf;
}

const char *lf_cli_fmt_duration(int64_t ms, char *buf, size_t cap)
{
    static const struct {
        const char *unit;
        int64_t ms;
    } units[] = {{"d", 86400000}, {"h", 3600000}, {"m", 60000}, {"s", 1000}};
    size_t o = 0;
    if (ms < 0) {
        snprintf(buf, cap, "-");
        return buf;
    }
    if (ms < 1000) {
        snprintf(buf, cap, "%" PRId64 "ms", ms);
        return buf;
    }
    buf[0] = '\0';
    /* The two largest units are precise enough for a person: "3d4h", "2m5s". */
    int shown = 0;
    for (size_t i = 0; i < sizeof(units) / sizeof(units[0]) && shown < 2; i++) {
        int64_t q = ms / units[i].ms;
        if (!q && !shown) continue;
        ms -= q * units[i].ms;
        if (q && o < cap)
            o += (size_t)snprintf(buf + o, cap - o, "%" PRId64 "%s", q, units[i].unit);
        shown++;
    }
    return buf;
}

int lf_cli_parse_time(const char *s, int64_t *out_ms)
{
    if (strcmp(s, "now") == 0) {
        *out_ms = lf_wall_ms();
        return LF_OK;
    }
    size_t n = strlen(s), i = 0;
    while (i < n && isdigit((unsigned char)s[i]))
        i++;
    if (n && i == n) return lf_parse_i64(s, INT64_MIN, INT64_MAX, out_ms);
    return lf_time_parse_iso8601(s, n, out_ms);
}

int lf_cli_parse_at(lf_cli_t *cli, const char *arg, int64_t *out_ms)
{
    if (lf_cli_parse_time(arg, out_ms) == LF_OK) return 0;
    return lf_cli_usage_error(cli, "--at wants ISO-8601, epoch ms or \"now\", not \"%s\"", arg);
}

const char *lf_cli_grade(double score, const lf_model_t *m)
{
    static const char *const names[] = {"L1", "L1", "L2", "L3"};
    return names[lf_grade(score, m)];
}

void lf_cli_json_time(cJSON *o, const char *name, int64_t ms)
{
    char key[64], buf[40];
    snprintf(key, sizeof(key), "%s_ms", name);
    cJSON_AddNumberToObject(o, key, (double)ms);
    if (ms)
        cJSON_AddStringToObject(o, name, lf_cli_fmt_time(ms, buf, sizeof(buf)));
    else
        cJSON_AddNullToObject(o, name);
}

void lf_cli_json_print(cJSON *o)
{
    char *s = cJSON_PrintUnformatted(o);
    if (s) puts(s);
    cJSON_free(s);
    cJSON_Delete(o);
}

/*---- Tables -------------------------------------------------------------------------------*/

void lf_table_init(lf_table_t *t, size_t ncols, const char *const *head, unsigned right)
{
    memset(t, 0, sizeof(*t));
    t->ncols = ncols;
    t->head = head;
    t->right = right;
}

void lf_table_add(lf_table_t *t, const char *const *row)
{
    if (t->nrows == t->cap) {
        t->cap = t->cap ? t->cap * 2 : 16;
        t->cells = lf_realloc(t->cells, t->cap * t->ncols * sizeof(*t->cells));
    }
    for (size_t c = 0; c < t->ncols; c++)
        t->cells[t->nrows * t->ncols + c] = lf_strdup(row[c] ? row[c] : "-");
    t->nrows++;
}

static void lf_table_row(const lf_table_t *t, FILE *out, int indent, const size_t *w,
                         const char *const *row)
{
    size_t ncols = t->ncols;
    while (ncols > 1 && !row[ncols - 1][0])
        ncols--; /* no trailing blanks */
    fprintf(out, "%*s", indent, "");
    for (size_t c = 0; c < ncols; c++) {
        int last = c + 1 == ncols;
        if (t->right & (1u << c))
            fprintf(out, "%*s", (int)w[c], row[c]);
        else if (last)
            fputs(row[c], out);
        else
            fprintf(out, "%-*s", (int)w[c], row[c]);
        if (!last) fputs("  ", out);
    }
    fputc('\n', out);
}

void lf_table_print(const lf_table_t *t, FILE *out, int indent)
{
    size_t w[32] = {0};
    size_t ncols = t->ncols < 32 ? t->ncols : 32;
    for (size_t c = 0; c < ncols; c++) {
        w[c] = strlen(t->head[c]);
        for (size_t r = 0; r < t->nrows; r++) {
            size_t l = strlen(t->cells[r * t->ncols + c]);
            if (l > w[c]) w[c] = l;
        }
    }
    lf_table_row(t, out, indent, w, t->head);
    for (size_t r = 0; r < t->nrows; r++)
        lf_table_row(t, out, indent, w, (const char *const *)&t->cells[r * t->ncols]);
}

void lf_table_free(lf_table_t *t)
{
    for (size_t i = 0; i < t->nrows * t->ncols; i++)
        lf_free(t->cells[i]);
    lf_free(t->cells);
    memset(t, 0, sizeof(*t));
}

/*---- Scanning keys ------------------------------------------------------------------------*/

/* A prefix as a SCAN MATCH pattern's literal part: glob characters escaped. */
void lf_cli_glob(char *buf, size_t cap, const char *prefix, const char *rest)
{
    size_t o = 0;
    for (const char *p = prefix; *p && o + 3 < cap; p++) {
        if (strchr("*?[]\\", *p)) buf[o++] = '\\';
        buf[o++] = *p;
    }
    snprintf(buf + o, cap - o, "%s", rest);
}

/* The id of "<prefix>lead:{<id>}" (NUL-terminated into id), or 0 when the key is not one. */
int lf_cli_lead_key_id(const char *prefix, const redisReply *k, char *id, size_t cap)
{
    size_t pl = strlen(prefix);
    if (k->type != REDIS_REPLY_STRING || k->len < pl + 7) return 0;
    if (memcmp(k->str, prefix, pl) != 0 || memcmp(k->str + pl, "lead:{", 6) != 0 ||
        k->str[k->len - 1] != '}')
        return 0;
    size_t n = k->len - pl - 7;
    if (n >= cap || n > LF_ID_MAX || memchr(k->str + pl + 6, '\0', n)) return 0;
    memcpy(id, k->str + pl + 6, n);
    id[n] = '\0';
    return 1;
}

int lf_cli_scan(lf_cli_t *cli, const char *prefix, const char *rest, int count,
                int (*fn)(void *ctx, const redisReply *keys, lf_err_t *err), void *ctx,
                lf_err_t *err)
{
    char pattern[1024], cursor[32] = "0";
    lf_cli_glob(pattern, sizeof(pattern), prefix, rest);
    do {
        redisReply *r =
            redisCommand(cli->redis, "SCAN %s MATCH %s COUNT %d", cursor, pattern, count);
        if (!r || r->type != REDIS_REPLY_ARRAY || r->elements != 2 ||
            r->element[0]->type != REDIS_REPLY_STRING || r->element[1]->type != REDIS_REPLY_ARRAY) {
            lf_err_set(err, LF_ERR, "SCAN of %s failed: %s", pattern,
                       r && r->type == REDIS_REPLY_ERROR ? r->str : cli->redis->errstr);
            if (r) freeReplyObject(r);
            return LF_ERR;
        }
        snprintf(cursor, sizeof(cursor), "%s", r->element[0]->str);
        int rc = r->element[1]->elements ? fn(ctx, r->element[1], err) : LF_OK;
        freeReplyObject(r);
        if (rc != LF_OK) return LF_ERR;
    } while (strcmp(cursor, "0") != 0);
    return LF_OK;
}

/*---- Live instances -------------------------------------------------------------------------*/

int lf_cli_live_instances(lf_cli_t *cli, const char *prefix, size_t *n,
                          void (*fn)(void *ctx, size_t i, const char *id, const redisReply *hb),
                          void *ctx)
{
    char key[LF_KEY_MAX];
    lf_cli_batch_t b = {0}, hb = {0};
    *n = 0;
    lf_key_instances(key, sizeof(key), prefix);
    lf_cli_batch_cmd(&b, "SMEMBERS", key, NULL);
    if (lf_cli_batch_run(cli, &b, "SMEMBERS of the instances")) {
        lf_cli_batch_free(&b);
        return LF_ERR;
    }
    const redisReply *members = lf_cli_batch_reply(&b, 0);
    size_t m = members->elements;
    for (size_t i = 0; i < m; i++) {
        lf_key_instance(key, sizeof(key), prefix, members->element[i]->str);
        lf_cli_batch_cmd(&hb, "HGETALL", key, NULL);
    }
    int rc = lf_cli_batch_run(cli, &hb, "HGETALL of the heartbeats") ? LF_ERR : LF_OK;
    int64_t now = lf_wall_ms();
    for (size_t i = 0; rc == LF_OK && i < m; i++) {
        char state[32];
        const redisReply *h = lf_cli_batch_reply(&hb, i);
        int64_t beat = lf_cli_reply_i64(lf_cli_hash_get(h, "heartbeat_ms"), 0);
        lf_cli_reply_str(lf_cli_hash_get(h, "state"), state, sizeof(state));
        if (now - beat > LF_CLI_LIVE_MS || strcmp(state, "stopped") == 0) continue;
        fn(ctx, (*n)++, members->element[i]->str, h);
    }
    lf_cli_batch_free(&hb);
    lf_cli_batch_free(&b);
    return rc;
}
