/* Loading a rules file: read it (at most LF_CFG_MAX_FILE bytes), run the loader's passes
 * over it (config_int.h tells them), then hand over the configuration, or every error in file
 * order and nothing. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "config_int.h"

#define LF_CFG_MAX_FILE (16u << 20) /* a rules file is a few KB; refuse absurd ones */

/* The passes over one document: the tree, the settings (and, inside, the model), then the
 * checks over what they read. */
static void lf_config_passes(lf_loader_t *ld, const char *yaml, size_t len)
{
    const lf_node_t *root = lf_yaml_build(ld, yaml, len);
    if (ld->fatal) return; /* the YAML itself is broken: nothing else to check */
    const lf_node_t *top = lf_yaml_deref(root);
    char buf[80];
    if (top && !lf_yaml_is_null(top) && top->type != LF_N_MAP)
        LF_ERR_AT(ld, top,
                  "the rules file must be a mapping (kafka:, redis:, model:, "
                  "...), not %s",
                  lf_yaml_what(top, buf, sizeof(buf)));
    else if (top && top->type == LF_N_MAP)
        lf_settings_walk(ld, top, "");
    lf_settings_check(ld);
    lf_model_check(ld);
}

int lf_config_load_string(const char *name, const char *yaml, size_t len, lf_config_t *cfg,
                          FILE *diag, lf_err_t *err)
{
    lf_loader_t ld;
    memset(&ld, 0, sizeof(ld));
    ld.name = name ? name : "<string>";
    ld.cfg = cfg;
    lf_arena_init(&ld.arena, 64 * 1024);
    lf_config_defaults(cfg);
    cfg->path = lf_strdup(ld.name);

    if (len > LF_CFG_MAX_FILE)
        lf_cfg_error(&ld, 0, 0, "larger than %u bytes: not a rules file", LF_CFG_MAX_FILE);
    else
        lf_config_passes(&ld, yaml ? yaml : "", yaml ? len : 0);

    int rc = ld.ndiags ? LF_ERR : LF_OK;
    lf_cfg_errors_flush(&ld, diag, err);
    lf_cfg_warnings_flush(&ld, rc == LF_OK);
    lf_arena_free(&ld.arena);
    lf_free(ld.anchors);
    lf_free(ld.names);
    lf_free(ld.trait_at);
    if (rc != LF_OK) lf_config_free(cfg);
    return rc;
}

int lf_config_load(const char *path, lf_config_t *cfg, FILE *diag, lf_err_t *err)
{
    char *buf = NULL;
    size_t len = 0, cap = 0;
    FILE *f = fopen(path, "rb");
    int eno = 0;
    memset(cfg, 0, sizeof(*cfg));
    if (!f) {
        eno = errno;
    } else {
        for (;;) {
            if (len == cap) {
                if (cap > LF_CFG_MAX_FILE) break; /* load_string reports the size */
                cap = cap ? cap * 2 : 16384;
                buf = lf_realloc(buf, cap + 1);
            }
            size_t got = fread(buf + len, 1, cap - len, f);
            len += got;
            if (got == 0) {
                if (ferror(f)) eno = errno ? errno : EIO;
                break;
            }
        }
        fclose(f);
    }
    if (!f || eno) {
        lf_err_set(err, LF_ERR, "%s: cannot read the rules file: %s", path, strerror(eno));
        if (diag) fprintf(diag, "%s: cannot read the rules file: %s\n", path, strerror(eno));
        lf_free(buf);
        return LF_ERR;
    }
    int rc = lf_config_load_string(path, buf, len, cfg, diag, err);
    lf_free(buf);
    return rc;
}
