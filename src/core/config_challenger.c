/* The live challenger (docs/contract.md "The rules file"): a second rules file named by
 * challenger.rules, scored on the same stream by `leadflow run --challenger` into a key prefix of
 * its own. What its run configuration is, made from the file in force: connections and processing
 * from that file, the model from the challenger's, another prefix and consumer group. */
#include <stdio.h>
#include <string.h>

#include "config_int.h"

int lf_config_challenger_path(const lf_config_t *cfg, char *buf, size_t cap)
{
    const char *rel = cfg->challenger_rules;
    if (!rel || !rel[0]) return LF_ERR;
    const char *slash = cfg->path ? strrchr(cfg->path, '/') : NULL;
    if (rel[0] == '/' || !slash)
        snprintf(buf, cap, "%s", rel);
    else
        snprintf(buf, cap, "%.*s/%s", (int)(slash - cfg->path), cfg->path, rel);
    return LF_OK;
}

void lf_config_challenger_prefix(const lf_config_t *cfg, char *buf, size_t cap)
{
    if (cfg->challenger_prefix && cfg->challenger_prefix[0])
        snprintf(buf, cap, "%s", cfg->challenger_prefix);
    else
        snprintf(buf, cap, "%schallenger:", cfg->redis_prefix ? cfg->redis_prefix : "lf:");
}

int lf_config_challenger_model(const lf_config_t *cfg, lf_model_t *out, FILE *diag, lf_err_t *err)
{
    char path[4096];
    lf_config_t c;
    memset(out, 0, sizeof(*out));
    if (lf_config_challenger_path(cfg, path, sizeof(path)) != LF_OK) {
        lf_err_set(err, LF_ERR, "%s names no challenger (challenger.rules)",
                   cfg->path ? cfg->path : "the rules file");
        return LF_ERR;
    }
    if (lf_config_load(path, &c, diag, err) != LF_OK) return LF_ERR;
    *out = c.model;
    memset(&c.model, 0, sizeof(c.model));
    lf_config_free(&c);
    return LF_OK;
}

int lf_config_make_challenger(lf_config_t *cfg, FILE *diag, lf_err_t *err)
{
    lf_model_t m;
    char prefix[512], group[512];
    if (lf_config_challenger_model(cfg, &m, diag, err) != LF_OK) return LF_ERR;
    lf_model_free(&cfg->model);
    cfg->model = m;
    lf_config_challenger_prefix(cfg, prefix, sizeof(prefix));
    snprintf(group, sizeof(group), "%s.challenger", cfg->kafka_group);
    if (lf_config_override(cfg, "redis.prefix", prefix, err) != LF_OK ||
        lf_config_override(cfg, "kafka.group_id", group, err) != LF_OK)
        return LF_ERR;
    return LF_OK;
}
