/* Values kept out of the rules file: a setting or a Kafka property written as ${env:NAME} or
 * ${file:PATH} takes its value from the environment or from a file when the file is loaded
 * (and again at each reload), so that credentials come from a Kubernetes Secret, systemd's
 * LoadCredential= or a Docker secret and the rules file can be shared. A message about a
 * reference names the reference, never the value it stands for. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config_int.h"

#define LF_REF_MAX_FILE (1u << 20) /* a PEM bundle fits; a mistaken path to a log does not */

static int lf_ref_env_name_ok(const char *s, size_t n)
{
    if (n == 0 || (s[0] >= '0' && s[0] <= '9')) return 0;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
              c == '_'))
            return 0;
    }
    return 1;
}

static int lf_ref_env(const char *name, char **out, char *why, size_t cap)
{
    const char *v = getenv(name);
    if (!v) {
        lf_fmt(why, cap, "environment variable %s is not set (the value is ${env:%s})", name, name);
        return LF_ERR;
    }
    *out = lf_strdup(v);
    return LF_OK;
}

/* A relative path is taken from the rules file's folder, as challenger.rules is. */
static int lf_ref_file(const char *path, const char *rules_path, char **out, char *why, size_t cap)
{
    char full[4096];
    const char *slash = rules_path ? strrchr(rules_path, '/') : NULL;
    if (path[0] == '/' || !slash)
        lf_fmt(full, sizeof(full), "%s", path);
    else
        lf_fmt(full, sizeof(full), "%.*s/%s", (int)(slash - rules_path), rules_path, path);
    int rc = LF_ERR;
    char *buf = NULL;
    FILE *f = fopen(full, "rb");
    if (!f) {
        lf_fmt(why, cap, "cannot read %s (the value is ${file:%s}): %s", full, path,
               strerror(errno));
        goto cleanup;
    }
    buf = lf_malloc(LF_REF_MAX_FILE + 1);
    size_t n = fread(buf, 1, LF_REF_MAX_FILE + 1, f);
    if (ferror(f)) {
        lf_fmt(why, cap, "cannot read %s (the value is ${file:%s}): %s", full, path,
               strerror(errno));
        goto cleanup;
    }
    if (n > LF_REF_MAX_FILE) {
        lf_fmt(why, cap, "%s is larger than %u bytes: not a credential file (${file:%s})", full,
               LF_REF_MAX_FILE, path);
        goto cleanup;
    }
    if (memchr(buf, '\0', n)) {
        lf_fmt(why, cap, "%s holds a NUL byte: not a text value (${file:%s})", full, path);
        goto cleanup;
    }
    /* `echo secret > file` and Kubernetes Secrets made from such files end in a newline. */
    if (n && buf[n - 1] == '\n') n--;
    if (n && buf[n - 1] == '\r') n--;
    buf[n] = '\0';
    *out = buf;
    buf = NULL;
    rc = LF_OK;
cleanup:
    if (f) fclose(f);
    lf_free(buf);
    return rc;
}

int lf_config_ref_resolve(const char *text, const char *rules_path, char **out, char *why,
                          size_t cap)
{
    *out = NULL;
    if (!text || text[0] != '$') return LF_OK;
    if (strncmp(text, "$${", 3) == 0) { /* a literal value that starts with ${ */
        *out = lf_strdup(text + 1);
        return LF_OK;
    }
    if (strncmp(text, "${", 2) != 0) return LF_OK;
    size_t len = strlen(text);
    const char *body = text + 2;
    size_t blen = len >= 3 && text[len - 1] == '}' ? len - 3 : 0;
    if (blen > 4 && strncmp(body, "env:", 4) == 0) {
        char name[256];
        if (blen - 4 >= sizeof(name) || !lf_ref_env_name_ok(body + 4, blen - 4)) {
            lf_fmt(why, cap, "${env:...} needs a variable name of letters, digits and _");
            return LF_ERR;
        }
        memcpy(name, body + 4, blen - 4);
        name[blen - 4] = '\0';
        return lf_ref_env(name, out, why, cap);
    }
    if (blen > 5 && strncmp(body, "file:", 5) == 0) {
        char path[2048];
        if (blen - 5 >= sizeof(path)) {
            lf_fmt(why, cap, "${file:...}: the path is too long");
            return LF_ERR;
        }
        memcpy(path, body + 5, blen - 5);
        path[blen - 5] = '\0';
        return lf_ref_file(path, rules_path, out, why, cap);
    }
    lf_fmt(why, cap,
           "a value starting with ${ must be ${env:NAME} or ${file:PATH} (write $${ for a "
           "literal ${)");
    return LF_ERR;
}
