/* `leadflow inspect LEAD [--at TIME]`: one lead as the processor sees it — its score at a
 * time split into fit and decayed engagement, the rules behind both, its stage and history.
 * Read-only: GET lf:alias:{id}, HGETALL lf:lead:{id} (a known lead: readable fields and the
 * packed rest, or the layout before), GET and PTTL lf:v:{id} (a visitor's record), all
 * decoded with lf_lead_decode. This file reads the arguments and the lead; cli_inspect_model.c,
 * _text.c and _json.c report it. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "leadflow/id_hash.h"
#include "leadflow/commands.h"
#include "leadflow/alloc.h"
#include "cli_inspect_int.h"
#include "leadflow/keys.h"

static const char lf_inspect_usage[] =
    "usage: leadflow inspect LEAD_ID [--at TIME] [-c FILE] [--redis HOST:PORT] [--json]\n"
    "  One lead: its score at TIME split into fit and decayed engagement, grade, stage and\n"
    "  since when, the rules behind the score, caps in use, first/last touch and the stage\n"
    "  history, where the record is stored and in which layout. LEAD_ID is a userId, or an\n"
    "  anonymousId (shown: the lead it was linked to, else the visitor's record and TTL).\n"
    "  With ids.hmac_key set, give the raw id (looked up by its hash) or the hash itself.\n"
    "  --at TIME          ISO-8601, epoch milliseconds or \"now\"; default: the lead's last\n"
    "                     event time (scores run on event time)\n"
    "  -c, --config FILE  rules file (default: $LEADFLOW_CONFIG, else ./leadflow.yaml)\n"
    "  --redis HOST:PORT  override the rules file's redis.host / redis.port\n"
    "  --json             one JSON object\n";

/*---- Reading ------------------------------------------------------------------------------*/

/* HGETALL of one lead (routed by its key's slot on a cluster). */
static int lf_inspect_fetch(lf_cli_t *cli, const char *id, redisReply **reply)
{
    char key[LF_KEY_MAX];
    lf_cli_batch_t b = {0};
    lf_key_lead(key, sizeof(key), cli->cfg.redis_prefix, id, strlen(id));
    lf_cli_batch_cmd(&b, "HGETALL", key, NULL);
    int rc = lf_cli_batch_run(cli, &b, "HGETALL of the lead");
    if (!rc) *reply = lf_cli_batch_take(&b, 0);
    lf_cli_batch_free(&b);
    return rc;
}

/* The replies of the first round trip, in this order. */
enum { LF_INS_ALIAS, LF_INS_HASH, LF_INS_VREC, LF_INS_PTTL, LF_INS_N };

/* Resolve the id and read, one round trip (two for a linked visitor): GET of its alias (a
 * visitor that identified is shown as its lead), HGETALL of lf:lead:{id} (a known lead, or a
 * visitor in the layout before), GET and PTTL of lf:v:{id} (a visitor's record). Each key
 * carries the id as its hash tag: on a cluster they are all read from the id's slot. */
static int lf_inspect_load(lf_cli_t *cli, lf_inspect_t *in, char *target, size_t cap)
{
    redisReply *r[LF_INS_N];
    lf_cli_batch_t b = {0};
    char key[LF_KEY_MAX], vkey[LF_KEY_MAX];
    const char *p = cli->cfg.redis_prefix;
    size_t ql = strlen(in->query);
    int rc;
    lf_key_alias(key, sizeof(key), p, in->query, ql);
    lf_cli_batch_cmd(&b, "GET", key, NULL);
    lf_key_lead(in->key, sizeof(in->key), p, in->query, ql);
    lf_cli_batch_cmd(&b, "HGETALL", in->key, NULL);
    lf_key_visitor(vkey, sizeof(vkey), p, in->query, ql);
    lf_cli_batch_cmd(&b, "GET", vkey, NULL);
    lf_cli_batch_cmd(&b, "PTTL", vkey, NULL);
    rc = lf_cli_batch_run(cli, &b, "reading the lead");
    for (int i = 0; !rc && i < LF_INS_N; i++)
        r[i] = lf_cli_batch_take(&b, (size_t)i);
    lf_cli_batch_free(&b);
    if (rc) return rc;

    in->id = in->query;
    in->pttl_ms = -2;
    const redisReply *alias = r[LF_INS_ALIAS], *vrec = r[LF_INS_VREC];
    int has_vrec = vrec->type == REDIS_REPLY_STRING;
    if (alias->type == REDIS_REPLY_STRING && alias->len > 0 &&
        !(alias->len == ql && memcmp(alias->str, in->query, ql) == 0)) {
        lf_cli_reply_str(alias, target, cap);
        in->id = target;
        in->linked = 1;
        in->visitor_left = r[LF_INS_HASH]->elements > 0 || has_vrec;
        lf_cli_free_replies(r, LF_INS_N);
        lf_key_lead(in->key, sizeof(in->key), p, target, strlen(target));
        return lf_inspect_fetch(cli, target, &in->hash);
    }
    in->hash = r[LF_INS_HASH];
    r[LF_INS_HASH] = NULL;
    if (in->hash->elements == 0 && has_vrec) {
        in->visitor = 1;
        in->vrec = r[LF_INS_VREC];
        r[LF_INS_VREC] = NULL;
        in->pttl_ms = r[LF_INS_PTTL]->type == REDIS_REPLY_INTEGER ? r[LF_INS_PTTL]->integer : -2;
        snprintf(in->key, sizeof(in->key), "%s", vkey);
    }
    for (int i = 0; i < LF_INS_N; i++)
        if (r[i]) freeReplyObject(r[i]);
    return 0;
}

/* lf_lead_decode wants string views: the HGETALL pairs of a lead's hash, or the pair ("p",
 * record) of a visitor's. */
static int lf_inspect_decode(lf_cli_t *cli, lf_inspect_t *in, lf_err_t *err)
{
    if (in->visitor) {
        lf_str_t f = {"p", 1}, v = {in->vrec->str, (uint32_t)in->vrec->len};
        return lf_lead_decode(&in->lead, lf_str_from(in->id), &f, &v, 1, &cli->cfg.model, err);
    }
    size_t n = in->hash->elements / 2;
    lf_str_t *f = lf_calloc(n ? n : 1, sizeof(*f)), *v = lf_calloc(n ? n : 1, sizeof(*v));
    for (size_t i = 0; i < n; i++) {
        const redisReply *kf = in->hash->element[2 * i], *kv = in->hash->element[2 * i + 1];
        f[i] = (lf_str_t){kf->str ? kf->str : "", kf->str ? (uint32_t)kf->len : 0};
        v[i] = (lf_str_t){kv->str ? kv->str : "", kv->str ? (uint32_t)kv->len : 0};
    }
    int rc = lf_lead_decode(&in->lead, lf_str_from(in->id), f, v, n, &cli->cfg.model, err);
    lf_free(f);
    lf_free(v);
    return rc;
}

/*---- The command --------------------------------------------------------------------------*/

/* The options and the lead id into *in: LF_CLI_GO, or the exit status after a message. */
static int lf_inspect_args(lf_cli_t *cli, int argc, char **argv, lf_inspect_t *in)
{
    const char *at_arg = NULL;
    const lf_cli_opt_t own[] = {{"--at", &at_arg}, {NULL, NULL}};
    for (int i = 1; i < argc; i++) {
        int o = lf_cli_option(cli, argc, argv, &i, own);
        if (o == LF_CLI_OPT_HELP) return LF_CLI_EXIT_OK;
        if (o == LF_CLI_OPT_ERROR) return LF_CLI_EXIT_USAGE;
        if (o == LF_CLI_OPT_TAKEN) continue;
        if (argv[i][0] == '-' && argv[i][1])
            return lf_cli_usage_error(cli, "unknown option %s", argv[i]);
        if (in->query)
            return lf_cli_usage_error(cli, "one lead at a time (got %s and %s)", in->query,
                                      argv[i]);
        in->query = argv[i];
    }
    if (!in->query || !in->query[0]) return lf_cli_usage_error(cli, "which lead? (LEAD_ID)");
    if (strlen(in->query) > LF_ID_MAX)
        return lf_cli_usage_error(cli, "a lead id is at most %d bytes", LF_ID_MAX);
    if (at_arg) {
        if (lf_cli_parse_at(cli, at_arg, &in->at_ms)) return LF_CLI_EXIT_USAGE;
        in->at_given = 1;
    }
    return LF_CLI_GO;
}

/* Decode the lead read: 0, or LF_CLI_EXIT_NOTFOUND after a message (no record, or one that
 * does not decode). */
static int lf_inspect_check(lf_cli_t *cli, lf_inspect_t *in)
{
    lf_err_t err = {0};
    if (in->hash->elements == 0 && !in->visitor) {
        lf_esc_buf_t e1, e2;
        const char *q = lf_inspect_esc_c(in->query, e1), *id = lf_inspect_esc_c(in->id, e2);
        if (in->linked)
            lf_cli_error(cli, "%s is linked to lead %s, which has no record (%slead:{%s})", q, id,
                         cli->cfg.redis_prefix, id);
        else
            lf_cli_error(cli,
                         "unknown lead %s: no %slead:{%s}, no alias and no visitor "
                         "record %sv:{%s} (a visitor's expires when idle)",
                         q, cli->cfg.redis_prefix, q, cli->cfg.redis_prefix, q);
        return LF_CLI_EXIT_NOTFOUND;
    }
    if (lf_inspect_decode(cli, in, &err) != LF_OK) {
        lf_cli_error(cli, "%s", err.msg);
        return LF_CLI_EXIT_NOTFOUND;
    }
    return 0;
}

int lf_cmd_inspect(int argc, char **argv)
{
    lf_cli_t cli;
    lf_inspect_t in;
    char target[LF_ID_MAX + 1];
    int rc;

    memset(&in, 0, sizeof(in));
    lf_cli_init(&cli, argc > 0 ? argv[0] : "inspect", lf_inspect_usage);
    if ((rc = lf_inspect_args(&cli, argc, argv, &in)) != LF_CLI_GO) return rc;
    if ((rc = lf_cli_open(&cli))) goto out;
    /* Leads are stored under their ids' hashes: look the raw id up by its hash (an id that
     * already is one, copied from a transition or `leadflow top`, as it is). */
    char hashed[LF_ID_HASH_HEX + 1];
    const char *key = cli.cfg.ids_hmac_key;
    if (key && !lf_id_is_hashed(in.query, strlen(in.query)) &&
        lf_id_hash(key, strlen(key), in.query, strlen(in.query), hashed) == LF_OK) {
        in.raw = in.query;
        in.query = hashed;
    }
    if ((rc = lf_inspect_load(&cli, &in, target, sizeof(target)))) goto out;
    if ((rc = lf_inspect_check(&cli, &in))) goto out;
    in.now_ms = lf_wall_ms();
    if (!in.at_given) {
        /* Scores run on event time: the lead's last event, else its last update. */
        in.at_ms = in.lead.last_seen_ms ? in.lead.last_seen_ms : in.lead.t_ms;
        if (!in.at_ms) in.at_ms = in.now_ms;
    }
    if (cli.json)
        lf_cli_json_print(lf_inspect_json(&cli, &in));
    else
        lf_inspect_print(&cli, &in);
    rc = LF_CLI_EXIT_OK;
out:
    if (in.hash) freeReplyObject(in.hash);
    if (in.vrec) freeReplyObject(in.vrec);
    lf_cli_close(&cli);
    return rc;
}
