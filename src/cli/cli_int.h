/* The read-only operator commands (the README's "Commands"): `leadflow inspect`, `leadflow top` and
 * `leadflow stats`. They read the Redis keys of docs/contract.md "Redis keys"
 * (include/leadflow/keys.h) and never write any. Each takes: -c, --config FILE     the rules file
 * (else $LEADFLOW_CONFIG, else ./leadflow.yaml as `leadflow run`): Redis settings, key prefix,
 * consumer group, topic and the model that decays the scores
 *   --redis HOST[:PORT]   connect there instead of the file's redis.host / redis.port
 *   --group ID            the consumer group whose progress to read (stats)
 *   --json                one JSON object on stdout instead of the tables
 *   -h, --help
 * Exit status: 0 done; 1 usage, an unreadable rules file, or (inspect) an unknown lead;
 * 2 Redis unreachable or failing; stats only: 3 no instance running, 4 an instance degraded or
 * its heartbeat stale, 5 conservation broken. 1 is the usage status of every command. */
#ifndef LEADFLOW_CLI_H
#define LEADFLOW_CLI_H

#include <hiredis/hiredis.h>
#include <stdint.h>
#include <stdio.h>

#include "leadflow/cluster_client.h"
#include "leadflow/config.h"

/*---- Shared by the commands in src/cli (cli_common.c)
 * ---------------------------------------------*/

#define LF_CLI_EXIT_OK 0
#define LF_CLI_EXIT_USAGE 1
#define LF_CLI_EXIT_NOTFOUND 1
#define LF_CLI_EXIT_REDIS 2
/* `leadflow stats`: the health verdict (the highest that holds). */
#define LF_CLI_EXIT_NO_INSTANCE 3
#define LF_CLI_EXIT_UNHEALTHY 4
#define LF_CLI_EXIT_CONSERVATION 5

typedef struct {
    const char *cmd;         /* "inspect", ... for messages */
    const char *usage;       /* the command's usage text, printed on -h and usage errors */
    const char *config_path; /* -c, else $LEADFLOW_CONFIG */
    const char *redis_addr;  /* --redis, NULL = the rules file's */
    const char *group;       /* --group, NULL = the rules file's kafka.group_id */
    int json;
    lf_config_t cfg;
    int cfg_loaded;
    redisContext *redis; /* one Redis; NULL on a Redis Cluster */
    lf_cc_t *cc;         /* a Redis Cluster (redis.cluster.nodes); NULL on one Redis */
    /* Set by a command that cannot run on a cluster yet, before lf_cli_open: it then refuses
     * at once with LF_CLI_EXIT_REDIS when redis.cluster.nodes is set. */
    int single_node_only;
    /* The configured redis.prefix; cfg.redis_prefix is the live state's once connected (the
     * one <base>active names after `leadflow replay --switch`, else the same). */
    char base_prefix[256];
} lf_cli_t;

void lf_cli_init(lf_cli_t *cli, const char *cmd, const char *usage);

/* A command's own option that takes a value ("--at TIME" or "--at=TIME"): where it goes. */
typedef struct {
    const char *name;
    const char **value;
} lf_cli_opt_t;

/* Try argv[*i] as a common option, then as one of own[] (ended by {NULL}; own may be NULL),
 * values read by lf_opt_value (common.h): LF_CLI_OPT_TAKEN when it was one (*i moved past its
 * value), LF_CLI_OPT_NONE when not, LF_CLI_OPT_HELP after printing the usage for -h (exit
 * 0), LF_CLI_OPT_ERROR after printing the usage error of a missing value (exit 1). */
#define LF_CLI_OPT_NONE 0
#define LF_CLI_OPT_TAKEN 1
#define LF_CLI_OPT_HELP 2
#define LF_CLI_OPT_ERROR (-1)
int lf_cli_option(lf_cli_t *cli, int argc, char **argv, int *i, const lf_cli_opt_t *own);
/* What a command's argument reader returns when the command is to run; else an exit status. */
#define LF_CLI_GO (-1)

/* Print "leadflow CMD: message" and the usage to stderr; returns LF_CLI_EXIT_USAGE. */
int lf_cli_usage_error(lf_cli_t *cli, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Print "leadflow CMD: message" to stderr. */
void lf_cli_error(lf_cli_t *cli, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* "HOST:PORT", "HOST", "[v6]:PORT" or ":PORT" into host (buf; kept when absent) and port
 * (kept when absent). The port is a number 1..65535 and nothing else. Credentials
 * ("user:pw@host", "redis://...") are refused: they belong in the rules file, not in argv,
 * which every local user can read. 0, or -1 (nothing changed). */
int lf_cli_parse_hostport(const char *addr, char *host, size_t cap, int *port);
/* addr as it may be shown in a message: any credentials before an '@' become "***". */
const char *lf_cli_redact_addr(const char *addr, char *buf, size_t cap);
/* The usage error for a bad --redis value, without echoing a password. */
int lf_cli_bad_redis(lf_cli_t *cli, const char *addr);

/* Load the rules file and connect to Redis: with redis.cluster.nodes set, to the Redis
 * Cluster (cli->cc, its slot map read now; --redis names the seed node), where a command that
 * set single_node_only is refused. 0, or the exit status after a message. */
int lf_cli_open(lf_cli_t *cli);
void lf_cli_close(lf_cli_t *cli);

/* One Redis only (cli->redis): send the n commands queued with redisAppendCommand* and read their n
 * replies into replies[] (one round trip). 0, or LF_CLI_EXIT_REDIS after a message (replies freed).
 */
int lf_cli_replies(lf_cli_t *cli, redisReply **replies, size_t n, const char *what);
void lf_cli_free_replies(redisReply **replies, size_t n);

/* A field of an HGETALL reply (or NULL). */
const redisReply *lf_cli_hash_get(const redisReply *hash, const char *field);
/* Reply strings as numbers; def when absent or not a number. */
int64_t lf_cli_reply_i64(const redisReply *r, int64_t def);
double lf_cli_reply_double(const redisReply *r, double def);
/* Reply string copied into buf ("" when absent). */
const char *lf_cli_reply_str(const redisReply *r, char *buf, size_t cap);

/* v, with what prints as "-0.00" in %.2f made 0. */
double lf_cli_num(double v);
/* "2024-05-01T12:00:00.000Z" or "-" for 0. buf >= 32 bytes. */
const char *lf_cli_fmt_time(int64_t ms, char *buf, size_t cap);
/* 12345678 -> "12,345,678". */
const char *lf_cli_fmt_count(long long v, char *buf, size_t cap);
/* 93784000 -> "1d2h3m4s"; 0 -> "0s"; under a second "250ms". */
const char *lf_cli_fmt_duration(int64_t ms, char *buf, size_t cap);
/* "now", epoch milliseconds or ISO-8601 to epoch ms. 0 or -1. */
int lf_cli_parse_time(const char *s, int64_t *out_ms);

/* "--at TIME" (top, inspect) into *out_ms: 0, or the usage status after the message. */
int lf_cli_parse_at(lf_cli_t *cli, const char *arg, int64_t *out_ms);
/* The grade of a score under the model: "L1", "L2" or "L3". */
const char *lf_cli_grade(double score, const lf_model_t *m);

/* JSON output (cJSON): name_ms (a number) and name (ISO-8601, null for 0) into o; print o
 * on one line to stdout and delete it. */
struct cJSON;
void lf_cli_json_time(struct cJSON *o, const char *name, int64_t ms);
void lf_cli_json_print(struct cJSON *o);

/*---- Routed commands, on one Redis or a Redis Cluster (cli_batch.c) ------------------------*/

/* Commands sent together: on one Redis one pipelined round trip, on a cluster each to the
 * primary of the slot of its key (its second argument), one round trip per node. */
#define LF_CLI_ARGS_MAX 8
typedef struct {
    size_t n, cap;
    lf_cc_cmd_t *cmds; /* slot and, after lf_cli_batch_run, the replies */
    const char **argv; /* cap * LF_CLI_ARGS_MAX */
    size_t *lens;      /* cap * LF_CLI_ARGS_MAX */
    char **mem;        /* per command: its arguments' bytes (copied) */
} lf_cli_batch_t;

/* Queue one command of argc (<= LF_CLI_ARGS_MAX) arguments; lens NULL: NUL-terminated. */
void lf_cli_batch_add(lf_cli_batch_t *b, size_t argc, const char *const *argv, const size_t *lens);
/* Queue one command of NUL-terminated arguments, NULL-ended: ("HGETALL", key, NULL). */
void lf_cli_batch_cmd(lf_cli_batch_t *b, const char *name, ...) __attribute__((sentinel));
/* Run what is queued. 0 with every reply in b->cmds[i].reply (none an error reply), or
 * LF_CLI_EXIT_REDIS after a message naming `what` (replies freed). */
int lf_cli_batch_run(lf_cli_t *cli, lf_cli_batch_t *b, const char *what);
/* The reply of command i, or that reply handed over (the batch no longer frees it). */
static inline redisReply *lf_cli_batch_reply(const lf_cli_batch_t *b, size_t i)
{
    return b->cmds[i].reply;
}
redisReply *lf_cli_batch_take(lf_cli_batch_t *b, size_t i);
/* Empty it for reuse (replies and arguments freed); lf_cli_batch_free releases it all. */
void lf_cli_batch_reset(lf_cli_batch_t *b);
void lf_cli_batch_free(lf_cli_batch_t *b);

/* On a cluster the shared keys are split into one shard per hash slot (keys.h): these say
 * how many shards a key has here (1 on one Redis, LF_CLUSTER_SLOTS on a cluster) and name
 * shard k of key (the key itself on one Redis; "<key>:{t_k}" on a cluster). */
size_t lf_cli_nshards(const lf_cli_t *cli);
int lf_cli_shard_key(const lf_cli_t *cli, char *buf, size_t cap, const char *key, size_t k);
/* The shard of key that holds the entries of the lead whose key is lead_key: the shard of
 * lead_key's slot (the key itself on one Redis). */
int lf_cli_lead_shard_key(const lf_cli_t *cli, char *buf, size_t cap, const char *key,
                          const char *lead_key, size_t lead_len);
/* ZCARD of every shard of a sorted set, summed into *total; per shard into cards
 * (lf_cli_nshards entries) when not NULL. 0, or LF_CLI_EXIT_REDIS after a message. */
int lf_cli_zcard(lf_cli_t *cli, const char *key, long long *total, long long *cards);

/* A hash made of several HGETALL replies: per field the sum of its values when each is an
 * integer, else the first value (hashes[0] first). Fields and values are string replies;
 * free it with lf_cli_hash_merged_free (not freeReplyObject). */
redisReply *lf_cli_hash_merge(redisReply *const *hashes, size_t n);
void lf_cli_hash_merged_free(redisReply *h);

/*---- Scanning keys (cli_common.c) ----*/

/* prefix with SCAN's glob characters escaped, then rest (a glob), into buf. */
void lf_cli_glob(char *buf, size_t cap, const char *prefix, const char *rest);
/* The id of "<prefix>lead:{<id>}" (NUL-terminated into id), or 0 when the key is not one. */
int lf_cli_lead_key_id(const char *prefix, const redisReply *k, char *id, size_t cap);
/* SCAN the keys "<prefix (literal)><rest (a glob)>", count per step, calling fn with each
 * step's array of keys until the scan ends (LF_OK) or fn fails (LF_ERR; a failed SCAN sets
 * err). Every key present for the whole scan is seen at least once. */
int lf_cli_scan(lf_cli_t *cli, const char *prefix, const char *rest, int count,
                int (*fn)(void *ctx, const redisReply *keys, lf_err_t *err), void *ctx,
                lf_err_t *err);

/*---- Live instances (cli_common.c) ----*/

/* A heartbeat older than this: the instance is not running. */
#define LF_CLI_LIVE_MS 10000
/* fn(ctx, i, id, heartbeat hash) for each instance under prefix whose heartbeat is younger
 * than LF_CLI_LIVE_MS and whose state is not "stopped" (i counts them from 0; *n: how many).
 * LF_ERR when Redis failed (message printed). */
int lf_cli_live_instances(lf_cli_t *cli, const char *prefix, size_t *n,
                          void (*fn)(void *ctx, size_t i, const char *id, const redisReply *hb),
                          void *ctx);

/*---- Aligned tables ------------------------------------------------------------------------*/

typedef struct {
    size_t ncols, nrows, cap;
    const char *const *head;
    unsigned right; /* bit i: column i is right-aligned (numbers) */
    char **cells;   /* nrows * ncols, owned */
} lf_table_t;

void lf_table_init(lf_table_t *t, size_t ncols, const char *const *head, unsigned right);
/* Add a row of ncols strings (copied; NULL prints as "-"). */
void lf_table_add(lf_table_t *t, const char *const *row);
void lf_table_print(const lf_table_t *t, FILE *out, int indent);
void lf_table_free(lf_table_t *t);

#endif
