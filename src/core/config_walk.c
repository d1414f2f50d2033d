/* The settings pass of the loader: walk the tree's kafka, redis, processing and limits
 * sections (and version) against the settings table, store each value, report unknown keys
 * with "did you mean", then the checks that involve more than one setting. The model section
 * is handed to config_model.c. */
#include <stdint.h>
#include <string.h>

#include "config_int.h"
#include "leadflow/id_hash.h"

#define LF_CFG_MAX_VERSION 64 /* rules_version is stored with every lead update */

static void lf_settings_props(lf_loader_t *ld, const lf_node_t *n, const lf_setting_t *s)
{
    lf_config_t *cfg = ld->cfg;
    const lf_node_t *map = lf_yaml_map(ld, n, s->path);
    lf_setting_props_free(cfg);
    if (!map) return;
    cfg->kafka_props = lf_calloc(map->n / 2 + 1, sizeof(*cfg->kafka_props));
    LF_MAP_EACH(map, k, v)
    {
        const lf_node_t *key = lf_yaml_key(ld, k);
        if (!key) continue;
        char ctx[160];
        lf_fmt(ctx, sizeof(ctx), "%s.%s", s->path, key->str);
        const char *val = lf_yaml_scalar(ld, v, ctx, "a value (librdkafka takes strings)");
        if (!val) continue;
        if (!*key->str) {
            LF_ERR_AT(ld, k, "%s: an empty property name", s->path);
            continue;
        }
        char why[300], *resolved = NULL;
        if (lf_config_ref_resolve(val, cfg->path, &resolved, why, sizeof(why)) != LF_OK) {
            LF_ERR_AT(ld, v, "%s: %s", ctx, why);
            continue;
        }
        lf_prop_t *p = &cfg->kafka_props[cfg->nkafka_props++];
        p->key = lf_strdup(key->str);
        p->value = resolved ? resolved : lf_strdup(val);
    }
}

static void lf_settings_set(lf_loader_t *ld, const lf_setting_t *s, const lf_node_t *v)
{
    ld->where[s - lf_settings] = v;
    if (s->type == LF_SET_PROPS) {
        lf_settings_props(ld, v, s);
        return;
    }
    const lf_node_t *d = lf_yaml_deref(v);
    char why[200], buf[80];
    if (d->type != LF_N_SCALAR) {
        static const char *const expect[] = {
            [LF_SET_STRING] = "a string",     [LF_SET_INT] = "an integer",
            [LF_SET_DURATION] = "a duration", [LF_SET_TIMESTAMP] = "an ISO-8601 time",
            [LF_SET_ENUM] = "a name",
        };
        LF_ERR_AT(ld, v, "%s: expected %s, got %s", s->path, expect[s->type],
                  lf_yaml_what(d, buf, sizeof(buf)));
        return;
    }
    char *resolved = NULL;
    if (!lf_yaml_is_null(d) &&
        lf_config_ref_resolve(d->str, ld->cfg->path, &resolved, why, sizeof(why)) != LF_OK) {
        LF_ERR_AT(ld, v, "%s: %s", s->path, why);
        return;
    }
    if (resolved) {
        /* The reason may quote the value: name the reference instead. */
        if (lf_setting_apply(ld->cfg, s, resolved, 0, why, sizeof(why)) != LF_OK)
            LF_ERR_AT(ld, v, "%s: the value of %s is not valid%s%s", s->path, d->str,
                      s->secret ? "" : ": ", s->secret ? "" : why);
        lf_free(resolved);
        return;
    }
    if (lf_setting_apply(ld->cfg, s, d->str, lf_yaml_is_null(d), why, sizeof(why)) != LF_OK) {
        const char *hint = NULL;
        if (s->type == LF_SET_ENUM) {
            size_t nc = 0;
            while (s->choices[nc])
                nc++;
            hint = lf_cfg_suggest(d->str, s->choices, nc);
        }
        if (hint)
            LF_ERR_AT(ld, v, "%s: %s (did you mean \"%s\"?)", s->path, why, hint);
        else
            LF_ERR_AT(ld, v, "%s: %s", s->path, why);
    }
}

/* A key is a setting of the table, a section some settings are under, or (at the top) the
 * model. */
void lf_settings_walk(lf_loader_t *ld, const lf_node_t *map, const char *prefix)
{
    LF_MAP_EACH(map, k, v)
    {
        const lf_node_t *key = lf_yaml_key(ld, k);
        if (!key) continue;
        char path[128];
        int plen = lf_fmt(path, sizeof(path), "%s%s%s", prefix, *prefix ? "." : "", key->str);
        if (!*prefix && strcmp(key->str, "model") == 0) {
            ld->model = lf_yaml_deref(v);
            ld->at_model = k;
            lf_model_parse(ld, v);
            continue;
        }
        const lf_setting_t *s =
            plen < (int)sizeof(path) && !strchr(key->str, '.') ? lf_setting_find(path) : NULL;
        if (s) {
            lf_settings_set(ld, s, v);
            continue;
        }
        int section = 0;
        for (size_t i = 0; i < LF_NSETTINGS && !section && plen < (int)sizeof(path) - 1; i++)
            section = strncmp(lf_settings[i].path, path, (size_t)plen) == 0 &&
                      lf_settings[i].path[plen] == '.';
        if (section && !strchr(key->str, '.')) {
            const lf_node_t *sub = lf_yaml_map(ld, v, path);
            if (sub) lf_settings_walk(ld, sub, path);
            continue;
        }
        /* Unknown: suggest among the names at this level. */
        const char *cands[LF_NSETTINGS + 1];
        char names[LF_NSETTINGS + 1][48];
        size_t nc = 0, pl = strlen(prefix);
        for (size_t i = 0; i < LF_NSETTINGS; i++) {
            const char *p = lf_settings[i].path;
            if (pl && (strncmp(p, prefix, pl) != 0 || p[pl] != '.')) continue;
            const char *rest = pl ? p + pl + 1 : p;
            size_t rl = strcspn(rest, ".");
            if (rl >= sizeof(names[0])) continue;
            int seen = 0;
            for (size_t j = 0; j < nc && !seen; j++)
                seen = strlen(cands[j]) == rl && strncmp(cands[j], rest, rl) == 0;
            if (seen) continue;
            memcpy(names[nc], rest, rl);
            names[nc][rl] = '\0';
            cands[nc] = names[nc];
            nc++;
        }
        if (!pl) cands[nc++] = "model";
        lf_cfg_unknown_key(ld, key, pl ? prefix : "the file", cands, nc);
    }
}

/* Where the file set a setting of the table, or NULL (left at its default). */
static const lf_node_t *lf_settings_where(const lf_loader_t *ld, const char *path)
{
    return ld->where[lf_setting_find(path) - lf_settings];
}

void lf_settings_check(lf_loader_t *ld)
{
    const lf_config_t *cfg = ld->cfg;
    if (cfg->limits.min_ts_ms >= cfg->limits.max_ts_ms) {
        const lf_node_t *at = lf_settings_where(ld, "limits.max_timestamp");
        if (!at) at = lf_settings_where(ld, "limits.min_timestamp");
        if (at) LF_ERR_AT(ld, at, "limits: max_timestamp must be after min_timestamp");
    }
    /* A URL or credentials in redis.host would be echoed by every connection error. */
    const lf_node_t *rhat = lf_settings_where(ld, "redis.host");
    if (rhat && cfg->redis_host && strpbrk(cfg->redis_host, "@/ \t"))
        LF_ERR_AT(ld, rhat,
                  "redis.host: a host name or address, not a URL or credentials; put the "
                  "password in redis.password (and the ACL user in redis.user)");
    const lf_node_t *kbat = lf_settings_where(ld, "kafka.bootstrap_servers");
    if (kbat && cfg->kafka_brokers && strchr(cfg->kafka_brokers, '@'))
        LF_ERR_AT(ld, kbat,
                  "kafka.bootstrap_servers: host:port[,host:port...], not credentials; put them "
                  "in kafka.properties (sasl.username, sasl.password)");
    const lf_node_t *hat = lf_settings_where(ld, "ids.hmac_key");
    if (hat && cfg->ids_hmac_key && strlen(cfg->ids_hmac_key) < LF_ID_HASH_MIN_KEY)
        LF_ERR_AT(ld, hat,
                  "ids.hmac_key: shorter than %d bytes (a short key can be guessed): e.g. "
                  "`openssl rand -hex 32 > id-key` and hmac_key: ${file:id-key}",
                  LF_ID_HASH_MIN_KEY);
    /* Their values are stored hashed: only their presence can be tested. */
    for (size_t i = 0; hat && cfg->ids_hmac_key && i < cfg->model.nfit; i++)
        for (size_t c = 0; c < cfg->model.fit[i].nconds; c++) {
            const lf_cond_t *k = &cfg->model.fit[i].conds[c];
            if (k->op != LF_MATCH_PRESENT && lf_id_hashed_trait(k->field, strlen(k->field)))
                LF_ERR_AT(ld, hat,
                          "ids.hmac_key: fit rule \"%s\" (line %d) tests the value of trait %s, "
                          "which is stored hashed with ids.hmac_key: only `present: true` can "
                          "test it",
                          cfg->model.fit[i].name, cfg->model.fit[i].line, k->field);
        }
    const lf_node_t *sat = lf_settings_where(ld, "challenger.split");
    if (sat && cfg->challenger_split > 0 && !cfg->challenger_rules)
        LF_ERR_AT(ld, sat,
                  "challenger.split: needs challenger.rules (the challenger's rules file)");
    const lf_node_t *pat = lf_settings_where(ld, "challenger.prefix");
    if (pat && cfg->challenger_prefix && cfg->redis_prefix &&
        strncmp(cfg->redis_prefix, cfg->challenger_prefix, strlen(cfg->challenger_prefix)) == 0)
        LF_ERR_AT(ld, pat, "challenger.prefix: must differ from redis.prefix and not begin it");
    const lf_node_t *vat = lf_settings_where(ld, "version");
    if (vat && cfg->model.version) {
        if (strlen(cfg->model.version) > LF_CFG_MAX_VERSION)
            LF_ERR_AT(ld, vat, "version: longer than %d characters", LF_CFG_MAX_VERSION);
        for (const char *c = cfg->model.version; *c; c++) {
            if ((unsigned char)*c < 0x20 || *c == 0x7f) {
                LF_ERR_AT(ld, vat, "version: holds a control character");
                break;
            }
        }
    }
}
