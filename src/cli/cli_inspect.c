/* `leadflow inspect LEAD [--at TIME]`: one lead as the processor sees it — its score at a
 * time split into fit and decayed engagement, the rules behind both, its stage and history.
 * Read-only: GET lf:alias:{id}, HGETALL lf:lead:{id} (stage history included). This file
 * reads the arguments and the lead; cli_inspect_model.c, _text.c and _json.c report it. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "leadflow/commands.h"
#include "leadflow/alloc.h"
#include "cli_inspect_int.h"
#include "leadflow/keys.h"

static const char lf_inspect_usage[] =
    "usage: leadflow inspect LEAD_ID [--at TIME] [-c FILE] [--redis HOST:PORT] [--json]\n"
    "  One lead: its score at TIME split into fit and decayed engagement, grade, stage and\n"
    "  since when, the rules behind the score, caps in use, first/last touch and the stage\n"
    "  history. LEAD_ID is a userId, or an anonymousId (shown: the lead it was linked to).\n"
    "  --at TIME          ISO-8601, epoch milliseconds or \"now\"; default: the lead's last\n"
    "                     event time (scores run on event time)\n"
    "  -c, --config FILE  rules file (default: $LEADFLOW_CONFIG, else ./leadflow.yaml)\n"
    "  --redis HOST:PORT  override the rules file's redis.host / redis.port\n"
    "  --json             one JSON object\n";

/*---- Reading ------------------------------------------------------------------------------*/

/* HGETALL of one lead. */
static int lf_inspect_fetch(lf_cli_t *cli, const char *id, redisReply **reply)
{
    char key[LF_KEY_MAX];
    lf_key_lead(key, sizeof(key), cli->cfg.redis_prefix, id, strlen(id));
    redisAppendCommand(cli->redis, "HGETALL %s", key);
    return lf_cli_replies(cli, reply, 1, "HGETALL of the lead");
}

/* Resolve the id (alias first: a visitor that identified is shown as its lead) and read. */
static int lf_inspect_load(lf_cli_t *cli, lf_inspect_t *in, char *target, size_t cap)
{
    redisReply *r[2];
    char key[LF_KEY_MAX];
    const char *p = cli->cfg.redis_prefix;
    int rc;
    lf_key_alias(key, sizeof(key), p, in->query, strlen(in->query));
    redisAppendCommand(cli->redis, "GET %s", key);
    lf_key_lead(key, sizeof(key), p, in->query, strlen(in->query));
    redisAppendCommand(cli->redis, "HGETALL %s", key);
    if ((rc = lf_cli_replies(cli, r, 2, "reading the lead"))) return rc;

    in->id = in->query;
    if (r[0]->type == REDIS_REPLY_STRING && r[0]->len > 0 &&
        !(r[0]->len == strlen(in->query) && memcmp(r[0]->str, in->query, r[0]->len) == 0)) {
        lf_cli_reply_str(r[0], target, cap);
        in->id = target;
        in->linked = 1;
        in->visitor_left = r[1]->elements > 0;
        lf_cli_free_replies(r, 2);
        return lf_inspect_fetch(cli, target, &in->hash);
    }
    freeReplyObject(r[0]);
    in->hash = r[1];
    return 0;
}

/* lf_lead_decode wants string views of the HGETALL pairs. */
static int lf_inspect_decode(lf_cli_t *cli, lf_inspect_t *in, lf_err_t *err)
{
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
    if (in->hash->elements == 0) {
        lf_esc_buf_t e1, e2;
        const char *q = lf_inspect_esc_c(in->query, e1), *id = lf_inspect_esc_c(in->id, e2);
        if (in->linked)
            lf_cli_error(cli, "%s is linked to lead %s, which has no record (%slead:{%s})", q, id,
                         cli->cfg.redis_prefix, id);
        else
            lf_cli_error(cli, "unknown lead %s: no %slead:{%s} and no alias", q,
                         cli->cfg.redis_prefix, q);
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
    lf_cli_close(&cli);
    return rc;
}
