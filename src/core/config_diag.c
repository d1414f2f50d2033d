/* Diagnostics of the rules-file loader: errors and warnings collected with their line and
 * column, then printed in file order as "FILE:LINE:COL: message" (at most LF_CFG_MAX_SHOWN);
 * duplicate names; and "did you mean" for a misspelt key. */
#include <ctype.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "config_int.h"

#define LF_CFG_MAX_SHOWN 100 /* diagnostics printed; the rest are counted */

/* Append a formatted message at line:col to a list of diagnostics (errors or warnings). */
static void lf_diag_push(lf_diag_t **v, size_t *n, size_t *cap, int line, int col, const char *fmt,
                         va_list ap)
{
    char msg[512];
    vsnprintf(msg, sizeof(msg), fmt, ap);
    if (*n == *cap) {
        *cap = *cap ? *cap * 2 : 16;
        *v = lf_realloc(*v, *cap * sizeof(**v));
    }
    lf_diag_t *d = &(*v)[*n];
    d->line = line;
    d->col = col;
    d->seq = (unsigned)(*n)++;
    d->msg = lf_strdup(msg);
}

void lf_cfg_error(lf_loader_t *ld, int line, int col, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    lf_diag_push(&ld->diags, &ld->ndiags, &ld->capdiags, line, col, fmt, ap);
    va_end(ap);
}

/* Kept apart from the errors, which alone make a file invalid. */
void lf_cfg_warn(lf_loader_t *ld, int line, int col, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    lf_diag_push(&ld->warns, &ld->nwarns, &ld->capwarns, line, col, fmt, ap);
    va_end(ap);
}

static int lf_diag_cmp(const void *a, const void *b)
{
    const lf_diag_t *x = a, *y = b;
    if (x->line != y->line) return x->line < y->line ? -1 : 1;
    if (x->col != y->col) return x->col < y->col ? -1 : 1;
    return x->seq < y->seq ? -1 : x->seq > y->seq;
}

/* Print the errors in file order; the first one goes into err. */
void lf_cfg_errors_flush(lf_loader_t *ld, FILE *out, lf_err_t *err)
{
    if (ld->ndiags) qsort(ld->diags, ld->ndiags, sizeof(*ld->diags), lf_diag_cmp);
    for (size_t i = 0; i < ld->ndiags; i++) {
        const lf_diag_t *d = &ld->diags[i];
        char pos[32] = "";
        if (d->line > 0) lf_fmt(pos, sizeof(pos), ":%d:%d", d->line, d->col);
        if (i == 0) lf_err_set(err, LF_ERR, "%s%s: %s", ld->name, pos, d->msg);
        if (out && i < LF_CFG_MAX_SHOWN) fprintf(out, "%s%s: %s\n", ld->name, pos, d->msg);
        lf_free(d->msg);
    }
    if (out && ld->ndiags > LF_CFG_MAX_SHOWN)
        fprintf(out, "%s: %zu more errors not shown\n", ld->name, ld->ndiags - LF_CFG_MAX_SHOWN);
    lf_free(ld->diags);
    ld->diags = NULL;
    ld->ndiags = ld->capdiags = 0;
}

void lf_cfg_warnings_flush(lf_loader_t *ld, int keep)
{
    if (ld->nwarns) qsort(ld->warns, ld->nwarns, sizeof(*ld->warns), lf_diag_cmp);
    for (size_t i = 0; i < ld->nwarns; i++) {
        const lf_diag_t *d = &ld->warns[i];
        if (keep) {
            char line[700], pos[32] = "";
            if (d->line > 0) lf_fmt(pos, sizeof(pos), ":%d:%d", d->line, d->col);
            lf_fmt(line, sizeof(line), "%s%s: warning: %s", ld->name, pos, d->msg);
            lf_strv_add(&ld->cfg->warnings, &ld->cfg->nwarnings, line);
        }
        lf_free(d->msg);
    }
    lf_free(ld->warns);
    ld->warns = NULL;
    ld->nwarns = ld->capwarns = 0;
}

/* By name, then by position: the first of equal names is the one written first. */
static int lf_named_cmp(const void *a, const void *b)
{
    const lf_named_t *x = a, *y = b;
    int c = strcmp(x->name, y->name);
    if (c) return c;
    if (x->node->line != y->node->line) return x->node->line < y->node->line ? -1 : 1;
    return x->node->col < y->node->col ? -1 : x->node->col > y->node->col;
}

void lf_cfg_report_dups(lf_loader_t *ld, lf_named_t *v, size_t n, const char *what)
{
    if (n) qsort(v, n, sizeof(*v), lf_named_cmp);
    for (size_t i = 1, first = 0; i < n; i++) {
        if (strcmp(v[i].name, v[first].name) != 0) {
            first = i;
            continue;
        }
        v[i].repeat = 1;
        LF_ERR_AT(ld, v[i].node, "duplicate %s \"%s\" (first at line %d)", what, v[i].name,
                  v[first].node->line);
    }
}

/* Edit distance (insertions, deletions, substitutions, swaps of neighbours), ignoring case,
 * for "did you mean". */
size_t lf_cfg_edit_distance(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    if (la > 48 || lb > 48) return SIZE_MAX;
    size_t d[49][49];
    for (size_t i = 0; i <= la; i++)
        d[i][0] = i;
    for (size_t j = 0; j <= lb; j++)
        d[0][j] = j;
    for (size_t i = 1; i <= la; i++) {
        for (size_t j = 1; j <= lb; j++) {
            int ca = tolower((unsigned char)a[i - 1]), cb = tolower((unsigned char)b[j - 1]);
            size_t best = d[i - 1][j - 1] + (ca != cb);
            if (d[i - 1][j] + 1 < best) best = d[i - 1][j] + 1;
            if (d[i][j - 1] + 1 < best) best = d[i][j - 1] + 1;
            if (i > 1 && j > 1 && ca == tolower((unsigned char)b[j - 2]) &&
                tolower((unsigned char)a[i - 2]) == cb && d[i - 2][j - 2] + 1 < best)
                best = d[i - 2][j - 2] + 1;
            d[i][j] = best;
        }
    }
    return d[la][lb];
}

/* The nearest candidate to a misspelt word, or NULL when nothing is close. */
const char *lf_cfg_suggest(const char *word, const char *const *cands, size_t n)
{
    const char *best = NULL;
    size_t bestd = SIZE_MAX;
    for (size_t i = 0; i < n; i++) {
        size_t d = lf_cfg_edit_distance(word, cands[i]);
        size_t len = strlen(cands[i]), wl = strlen(word);
        /* A truncated name ("require" for "require_traits") is near too. */
        if (wl >= 4 && wl < len && strncasecmp(word, cands[i], wl) == 0) d = 1;
        size_t limit = len <= 3 ? 1 : len <= 6 ? 2 : 3;
        if (d <= limit && d < bestd) {
            best = cands[i];
            bestd = d;
        }
    }
    return best;
}

void lf_cfg_unknown_key(lf_loader_t *ld, const lf_node_t *key, const char *where,
                        const char *const *cands, size_t n)
{
    const char *s = lf_cfg_suggest(key->str, cands, n);
    char list[256] = "";
    for (size_t i = 0; i < n; i++)
        lf_fmt(list + strlen(list), sizeof(list) - strlen(list), "%s%s", i ? ", " : "", cands[i]);
    if (s)
        LF_ERR_AT(ld, key, "unknown key \"%s\" in %s (did you mean \"%s\"?)", key->str, where, s);
    else
        LF_ERR_AT(ld, key, "unknown key \"%s\" in %s (known: %s)", key->str, where, list);
}
