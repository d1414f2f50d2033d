/* Hot reload of the rules file (docs/contract.md "The rules file"): asked by SIGHUP, or by
 * `leadflow reload` through Redis (<p>ctl:reload, read with each heartbeat) so that it reaches
 * instances on every host. Done between batches: the batch before is stored under the rules before,
 * the next one under the new rules, and no event is read twice or skipped (the consumer is not
 * touched). A file that does not load is refused with its errors logged, and the rules in
 * force stay. Only the model changes: connection and processing settings changed in the file
 * are named in a warning and wait for a restart. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "leadflow/log.h"
#include "pipeline_int.h"

/* Each line the loader wrote (one problem per line), logged at `level`; the first kept. */
static void lf_reload_log_lines(const char *text, const char *level, char *first, size_t cap)
{
    const char *s = text;
    while (s && *s) {
        const char *e = strchr(s, '\n');
        size_t len = e ? (size_t)(e - s) : strlen(s);
        if (len) {
            lf_log(level, "reload: %.*s", (int)len, s);
            if (first && !first[0]) snprintf(first, cap, "%.*s", (int)len, s);
        }
        s = e ? e + 1 : NULL;
    }
}

/* Whether the rules decide index scores differently: lf:stage:mql's (the decay-exit time)
 * always may; lf:top's keys only with another half-life. */
static int lf_reload_half_life_changed(const lf_model_t *a, const lf_model_t *b)
{
    return a->half_life_ms != b->half_life_ms;
}

static void lf_reload_apply(lf_pipe_t *p, lf_config_t *next, const char *why)
{
    lf_config_t *cfg = p->cfg_live;
    char changed[512];
    const char *before = cfg->model.version ? cfg->model.version : "";
    const char *after = next->model.version ? next->model.version : "";
    for (size_t i = 0; i < next->nwarnings; i++)
        lf_log("warn", "reload: %s", next->warnings[i]);
    if (!p->opts->model_path && lf_config_restart_changes(cfg, next, changed, sizeof(changed)))
        lf_log("warn",
               "reload: %s changed in %s: only the scoring model is reloaded; these take effect "
               "at the next restart",
               changed, cfg->path ? cfg->path : "the rules file");
    p->reindex_top = lf_reload_half_life_changed(&cfg->model, &next->model);
    lf_log("info", "reload (%s): rules version %s -> %s, in force from the next batch", why, before,
           after);
    /* The model moves; everything else stays as it was started. The old model goes with
     * next. Nothing holds a decoded lead across batches (the cache keeps stored records,
     * decoded with the model of the moment), but the cache is emptied all the same: its
     * records are re-read, as after a rebalance. */
    lf_model_t old = cfg->model;
    cfg->model = next->model;
    next->model = old;
    lf_leadcache_clear(p->cache);
    p->reindex_pending = 1;
    p->reindex_cursor = 0;
    snprintf(p->reload_result, sizeof(p->reload_result), "ok: %s -> %s", before, after);
}

void lf_reload_model(lf_config_t *cfg, const lf_run_opts_t *opts)
{
    lf_config_t next;
    lf_err_t err = {0};
    const char *path = opts->model_path ? opts->model_path : cfg->path;
    if (!path) return;
    if (lf_config_load(path, &next, NULL, &err) != LF_OK) {
        lf_log("error", "restart: %s; rules version %s stays in force", err.msg,
               cfg->model.version ? cfg->model.version : "");
        return;
    }
    lf_log("info", "restart: rules version %s from %s",
           next.model.version ? next.model.version : "", path);
    lf_model_t old = cfg->model;
    cfg->model = next.model;
    next.model = old;
    lf_config_free(&next);
}

/* Reload now (why: "SIGHUP", "leadflow reload #3"). */
static void lf_reload(lf_pipe_t *p, const char *why)
{
    lf_config_t next;
    lf_err_t err = {0};
    char *diag = NULL;
    size_t diaglen = 0;
    FILE *d = open_memstream(&diag, &diaglen);
    const char *path = p->opts->model_path ? p->opts->model_path
                       : p->cfg_live->path ? p->cfg_live->path
                                           : "leadflow.yaml";
    int rc = lf_config_load(path, &next, d, &err);
    if (d) fclose(d);
    p->reload_ms = lf_wall_ms();
    if (rc != LF_OK) {
        char first[200] = "";
        lf_reload_log_lines(diag, "error", first, sizeof(first));
        lf_log("error", "reload (%s) refused: %s is not valid; rules version %s stays in force",
               why, path, p->cfg->model.version ? p->cfg->model.version : "");
        snprintf(p->reload_result, sizeof(p->reload_result), "refused: %s",
                 first[0] ? first : err.msg);
    } else {
        lf_reload_apply(p, &next, why);
        lf_config_free(&next);
    }
    free(diag);
}

void lf_reload_check(lf_pipe_t *p)
{
    const lf_run_opts_t *opts = p->opts;
    char why[64];
    if (opts->reload && *opts->reload) {
        *opts->reload = 0;
        lf_reload(p, "SIGHUP");
    }
    /* The first generation read is the baseline: the file was read at start. */
    if (p->ctl.reload > p->reload_seen) {
        int64_t gen = p->ctl.reload;
        int first = p->reload_seen < 0;
        p->reload_seen = gen;
        if (!first) {
            snprintf(why, sizeof(why), "leadflow reload #%lld", (long long)gen);
            lf_reload(p, why);
        }
    }
}
