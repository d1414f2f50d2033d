/* What a reload may and may not change: the command line's overrides of the rules file, and
 * the settings (not the model) that differ between the running configuration and a file
 * read again. The model takes effect at once on a reload; connection and processing
 * settings only at a restart (the consumer, the Redis connection and the batch sizes were
 * made from them). */
#include <string.h>

#include "config_int.h"

int lf_config_override(lf_config_t *cfg, const char *key, const char *value, lf_err_t *err)
{
    const lf_setting_t *s = lf_setting_find(key);
    char why[160];
    if (!s || s->type == LF_SET_PROPS) {
        lf_err_set(err, LF_ERR, "%s is not a setting that can be overridden", key);
        return LF_ERR;
    }
    if (lf_setting_apply(cfg, s, value, 0, why, sizeof(why)) != LF_OK) {
        lf_err_set(err, LF_ERR, "%s: %s", key, why);
        return LF_ERR;
    }
    for (size_t i = 0; i < cfg->noverrides; i++)
        if (strcmp(cfg->overrides[i], key) == 0) return LF_OK;
    lf_strv_add(&cfg->overrides, &cfg->noverrides, key);
    return LF_OK;
}

static int lf_overridden(const lf_config_t *cfg, const char *key)
{
    for (size_t i = 0; i < cfg->noverrides; i++)
        if (strcmp(cfg->overrides[i], key) == 0) return 1;
    return 0;
}

static int lf_str_differs(const char *a, const char *b)
{
    if (!a || !b) return a != b;
    return strcmp(a, b) != 0;
}

static int lf_props_differ(const lf_config_t *a, const lf_config_t *b)
{
    if (a->nkafka_props != b->nkafka_props) return 1;
    for (size_t i = 0; i < a->nkafka_props; i++)
        if (lf_str_differs(a->kafka_props[i].key, b->kafka_props[i].key) ||
            lf_str_differs(a->kafka_props[i].value, b->kafka_props[i].value))
            return 1;
    return 0;
}

static int lf_setting_differs(const lf_config_t *a, const lf_config_t *b, const lf_setting_t *s)
{
    switch (s->type) {
    case LF_SET_STRING: {
        const char *const *pa = (const char *const *)(const void *)((const char *)a + s->off);
        const char *const *pb = (const char *const *)(const void *)((const char *)b + s->off);
        return lf_str_differs(*pa, *pb);
    }
    case LF_SET_PROPS:
        return lf_props_differ(a, b);
    default:
        return lf_setting_load_int(a, s) != lf_setting_load_int(b, s);
    }
}

size_t lf_config_restart_changes(const lf_config_t *running, const lf_config_t *file, char *buf,
                                 size_t cap)
{
    size_t n = 0, len = 0;
    if (cap) buf[0] = '\0';
    for (size_t i = 0; i < LF_NSETTINGS; i++) {
        const lf_setting_t *s = &lf_settings[i];
        /* `version` belongs to the model; an overridden setting keeps the command line's. */
        if (strcmp(s->path, "version") == 0 || lf_overridden(running, s->path)) continue;
        if (!lf_setting_differs(running, file, s)) continue;
        n++;
        if (len < cap) {
            int w = snprintf(buf + len, cap - len, "%s%s", len ? ", " : "", s->path);
            len += w > 0 ? (size_t)w : 0;
        }
    }
    return n;
}
