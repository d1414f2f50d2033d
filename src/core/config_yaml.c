/* The YAML tree of a rules file and its typed readers. libyaml's event parser builds a small
 * tree of nodes in the loader's arena that remembers the line and column of everything,
 * resolves aliases and marks repeated keys; the readers (lf_yaml_scalar, lf_yaml_number, ...)
 * take a node as a given type or report at its position what it is instead. */
#include <stdint.h>
#include <string.h>
#include <strings.h>

#include <yaml.h>

#include "config_int.h"

#define LF_CFG_MAX_DEPTH 64 /* YAML nesting */

/* true/yes/on, false/no/off (conditions' present: and not:). */
static int lf_parse_bool(const char *s, int *out)
{
    static const char *const yes[] = {"true", "yes", "on"}, *const no[] = {"false", "no", "off"};
    for (int i = 0; i < 3; i++) {
        if (strcasecmp(s, yes[i]) == 0) return *out = 1, LF_OK;
        if (strcasecmp(s, no[i]) == 0) return *out = 0, LF_OK;
    }
    return LF_ERR;
}
const lf_node_t *lf_yaml_deref(const lf_node_t *n)
{
    return n && n->type == LF_N_ALIAS ? n->target : n;
}

int lf_yaml_is_null(const lf_node_t *n)
{
    n = lf_yaml_deref(n);
    if (!n) return 1;
    if (n->type != LF_N_SCALAR || !n->plain) return 0;
    return n->len == 0 || strcmp(n->str, "~") == 0 || strcmp(n->str, "null") == 0 ||
           strcmp(n->str, "Null") == 0 || strcmp(n->str, "NULL") == 0;
}

const char *lf_yaml_what(const lf_node_t *n, char *buf, size_t cap)
{
    n = lf_yaml_deref(n);
    if (lf_yaml_is_null(n)) return "nothing";
    if (n->type == LF_N_MAP) return "a mapping";
    if (n->type == LF_N_SEQ) return "a list";
    if (lf_config_secret_prop(NULL, n->str)) return "a PEM block (not shown)"; /* key material */
    lf_fmt(buf, cap, "\"%.60s%s\"", n->str, n->len > 60 ? "..." : "");
    return buf;
}

static lf_node_t *lf_node_new(lf_loader_t *ld, lf_node_type_t type, const yaml_mark_t *mark)
{
    lf_node_t *n = lf_arena_alloc(&ld->arena, sizeof(*n));
    memset(n, 0, sizeof(*n));
    n->type = type;
    n->line = (int)mark->line + 1;
    n->col = (int)mark->column + 1;
    return n;
}

static void lf_anchor_add(lf_loader_t *ld, const char *name, const lf_node_t *n)
{
    ld->anchors = lf_realloc(ld->anchors, (ld->nanchors + 1) * sizeof(*ld->anchors));
    ld->anchors[ld->nanchors].name = name;
    ld->anchors[ld->nanchors].node = n;
    ld->nanchors++;
}

static const char *lf_arena_str(lf_loader_t *ld, const unsigned char *s)
{
    return s ? lf_arena_strndup(&ld->arena, (const char *)s, strlen((const char *)s)) : NULL;
}

/* YAML forbids a key twice in one map; readers disagree on which wins. Report each repeat
 * and mark it, so the walkers read the first one only. */
static void lf_map_check_dups(lf_loader_t *ld, lf_node_t *map)
{
    size_t nkeys = 0;
    lf_named_t *keys = lf_calloc(map->n / 2 + 1, sizeof(*keys));
    for (lf_node_t *k = map->first; k && k->next; k = k->next->next) {
        const lf_node_t *d = lf_yaml_deref(k);
        if (d && d->type == LF_N_SCALAR) {
            keys[nkeys].name = d->str;
            keys[nkeys++].node = k;
        }
    }
    lf_cfg_report_dups(ld, keys, nkeys, "key");
    for (size_t i = 0; i < nkeys; i++)
        if (keys[i].repeat) ((lf_node_t *)keys[i].node)->dup = 1; /* a key of map: ours */
    lf_free(keys);
}

static void lf_yaml_error(lf_loader_t *ld, const yaml_parser_t *p, const char *buf, size_t len)
{
    int line = (int)p->problem_mark.line + 1, col = (int)p->problem_mark.column + 1;
    if (p->error == YAML_READER_ERROR) {
        /* Reader errors (bad UTF-8, control characters) carry an offset, not a mark. */
        line = 1;
        col = 1;
        for (size_t i = 0; i < p->problem_offset && i < len; i++) {
            if (buf[i] == '\n') {
                line++;
                col = 1;
            } else {
                col++;
            }
        }
    }
    const char *problem = p->problem ? p->problem : "cannot parse";
    if (p->context)
        lf_cfg_error(ld, line, col, "YAML syntax error: %s %s (line %d, column %d)", problem,
                     p->context, (int)p->context_mark.line + 1, (int)p->context_mark.column + 1);
    else
        lf_cfg_error(ld, line, col, "YAML syntax error: %s", problem);
}

/* One build of the tree: the containers still open, and the root. */
typedef struct {
    lf_loader_t *ld;
    lf_node_t *stack[LF_CFG_MAX_DEPTH], *root;
    int depth, done, docs;
} lf_yaml_builder_t;

static lf_node_t *lf_yaml_on_scalar(lf_loader_t *ld, const yaml_event_t *ev)
{
    lf_node_t *n = lf_node_new(ld, LF_N_SCALAR, &ev->start_mark);
    n->len = ev->data.scalar.length;
    n->str = lf_arena_strndup(&ld->arena, (const char *)ev->data.scalar.value, n->len);
    n->plain = ev->data.scalar.style == YAML_PLAIN_SCALAR_STYLE && !ev->data.scalar.tag;
    if (memchr(n->str, '\0', n->len)) LF_ERR_AT(ld, n, "a value holds a NUL character");
    const char *anchor = lf_arena_str(ld, ev->data.scalar.anchor);
    if (anchor) lf_anchor_add(ld, anchor, n);
    return n;
}

static lf_node_t *lf_yaml_on_alias(lf_loader_t *ld, const yaml_event_t *ev)
{
    const char *name = (const char *)ev->data.alias.anchor;
    lf_node_t *n = lf_node_new(ld, LF_N_ALIAS, &ev->start_mark);
    for (size_t i = ld->nanchors; i-- > 0;) {
        if (strcmp(ld->anchors[i].name, name) == 0) {
            n->target = ld->anchors[i].node;
            break;
        }
    }
    if (!n->target) {
        LF_ERR_AT(ld, n, "alias *%s names no anchor defined before it", name);
        /* Keep the tree well-formed: a null scalar stands in. */
        n->type = LF_N_SCALAR;
        n->str = "";
        n->plain = 1;
    }
    return n;
}

/* A new node goes under the innermost open container (or becomes the root); a container
 * stays open until its end event. */
static void lf_yaml_attach(lf_yaml_builder_t *b, lf_node_t *n)
{
    if (b->depth > 0) {
        lf_node_t *parent = b->stack[b->depth - 1];
        if (parent->last)
            parent->last->next = n;
        else
            parent->first = n;
        parent->last = n;
        parent->n++;
    } else if (!b->root) {
        b->root = n;
    }
    if (n->type != LF_N_MAP && n->type != LF_N_SEQ) return;
    if (b->depth == LF_CFG_MAX_DEPTH) {
        LF_ERR_AT(b->ld, n, "nesting deeper than %d levels", LF_CFG_MAX_DEPTH);
        b->ld->fatal = 1;
        b->done = 1;
    } else {
        b->stack[b->depth++] = n;
    }
}

/* One event of libyaml's parser into the tree. */
static void lf_yaml_on_event(lf_yaml_builder_t *b, const yaml_event_t *ev)
{
    lf_loader_t *ld = b->ld;
    lf_node_t *n = NULL;
    switch (ev->type) {
    case YAML_STREAM_END_EVENT:
        b->done = 1;
        break;
    case YAML_DOCUMENT_START_EVENT:
        if (++b->docs > 1) {
            lf_cfg_error(ld, (int)ev->start_mark.line + 1, (int)ev->start_mark.column + 1,
                         "a second YAML document: the rules file holds exactly one");
            b->done = 1;
        }
        break;
    case YAML_SCALAR_EVENT:
        n = lf_yaml_on_scalar(ld, ev);
        break;
    case YAML_SEQUENCE_START_EVENT:
    case YAML_MAPPING_START_EVENT: {
        int map = ev->type == YAML_MAPPING_START_EVENT;
        n = lf_node_new(ld, map ? LF_N_MAP : LF_N_SEQ, &ev->start_mark);
        /* Registered at the end: an alias inside its own anchor would loop. */
        n->anchor =
            lf_arena_str(ld, map ? ev->data.mapping_start.anchor : ev->data.sequence_start.anchor);
        break;
    }
    case YAML_SEQUENCE_END_EVENT:
    case YAML_MAPPING_END_EVENT: {
        lf_node_t *c = b->stack[--b->depth];
        if (c->type == LF_N_MAP) lf_map_check_dups(ld, c);
        if (c->anchor) lf_anchor_add(ld, c->anchor, c);
        break;
    }
    case YAML_ALIAS_EVENT:
        n = lf_yaml_on_alias(ld, ev);
        break;
    default:
        break;
    }
    if (n) lf_yaml_attach(b, n);
}

/* Built with libyaml's event parser, first document only. */
const lf_node_t *lf_yaml_build(lf_loader_t *ld, const char *buf, size_t len)
{
    yaml_parser_t p;
    yaml_event_t ev;
    lf_yaml_builder_t b;
    memset(&b, 0, sizeof(b));
    b.ld = ld;
    if (!yaml_parser_initialize(&p)) {
        lf_cfg_error(ld, 0, 0, "cannot initialise the YAML parser");
        ld->fatal = 1;
        return NULL;
    }
    yaml_parser_set_input_string(&p, (const unsigned char *)buf, len);
    while (!b.done) {
        if (!yaml_parser_parse(&p, &ev)) {
            lf_yaml_error(ld, &p, buf, len);
            ld->fatal = 1;
            break;
        }
        lf_yaml_on_event(&b, &ev);
        yaml_event_delete(&ev);
    }
    yaml_parser_delete(&p);
    return ld->fatal ? NULL : b.root;
}

const lf_node_t *lf_yaml_key(lf_loader_t *ld, const lf_node_t *k)
{
    const lf_node_t *d = lf_yaml_deref(k);
    if (d->type != LF_N_SCALAR) {
        LF_ERR_AT(ld, k, "a key must be a plain string, not %s",
                  d->type == LF_N_MAP ? "a mapping" : "a list");
        return NULL;
    }
    return d;
}

const char *lf_yaml_scalar(lf_loader_t *ld, const lf_node_t *n, const char *ctx, const char *expect)
{
    const lf_node_t *d = lf_yaml_deref(n);
    char buf[80];
    if (d->type != LF_N_SCALAR || lf_yaml_is_null(d)) {
        LF_ERR_AT(ld, n, "%s: expected %s, got %s", ctx, expect, lf_yaml_what(d, buf, sizeof(buf)));
        return NULL;
    }
    return d->str;
}

/* The end of lf_yaml_number and lf_yaml_bool: s is the scalar (NULL: reported already), ok
 * whether it parsed as `expect`. */
static int lf_yaml_parsed(lf_loader_t *ld, const lf_node_t *n, const char *ctx, const char *expect,
                          const char *s, int ok)
{
    if (!s) return LF_ERR;
    if (!ok) {
        LF_ERR_AT(ld, n, "%s: expected %s, got \"%s\"", ctx, expect, s);
        return LF_ERR;
    }
    return LF_OK;
}

int lf_yaml_number(lf_loader_t *ld, const lf_node_t *n, const char *ctx, double *out)
{
    const char *s = lf_yaml_scalar(ld, n, ctx, "a number");
    return lf_yaml_parsed(ld, n, ctx, "a number", s, s && lf_parse_double(s, out) == LF_OK);
}

int lf_yaml_bool(lf_loader_t *ld, const lf_node_t *n, const char *ctx, int *out)
{
    const char *s = lf_yaml_scalar(ld, n, ctx, "true or false");
    return lf_yaml_parsed(ld, n, ctx, "true or false", s, s && lf_parse_bool(s, out) == LF_OK);
}

int lf_yaml_duration(lf_loader_t *ld, const lf_node_t *n, const char *ctx, int64_t *out)
{
    const char *s = lf_yaml_scalar(ld, n, ctx, "a duration");
    if (!s) return LF_ERR;
    if (lf_duration_parse(s, out) != LF_OK) {
        LF_ERR_AT(ld, n, "%s: \"%s\" is not a duration (e.g. 14d, 36h, 90m, 30s, 500ms)", ctx, s);
        return LF_ERR;
    }
    if (*out <= 0) {
        LF_ERR_AT(ld, n, "%s: must be positive, got %s", ctx, s);
        return LF_ERR;
    }
    return LF_OK;
}

void lf_yaml_string_list(lf_loader_t *ld, const lf_node_t *n, const char *ctx, char ***v,
                         size_t *nv)
{
    const lf_node_t *d = lf_yaml_deref(n);
    char buf[80];
    if (d->type == LF_N_SEQ) {
        if (d->n == 0) LF_ERR_AT(ld, n, "%s: the list is empty", ctx);
        for (const lf_node_t *it = d->first; it; it = it->next) {
            const char *s = lf_yaml_scalar(ld, it, ctx, "a string");
            if (s && !*s) LF_ERR_AT(ld, it, "%s: an empty string", ctx);
            if (s && *s) lf_strv_add(v, nv, s);
        }
        return;
    }
    if (d->type != LF_N_SCALAR || lf_yaml_is_null(d)) {
        LF_ERR_AT(ld, n, "%s: expected a string or a list of strings, got %s", ctx,
                  lf_yaml_what(d, buf, sizeof(buf)));
        return;
    }
    if (!*d->str)
        LF_ERR_AT(ld, n, "%s: an empty string", ctx);
    else
        lf_strv_add(v, nv, d->str);
}

const lf_node_t *lf_yaml_map(lf_loader_t *ld, const lf_node_t *n, const char *ctx)
{
    const lf_node_t *d = lf_yaml_deref(n);
    char buf[80];
    if (lf_yaml_is_null(d)) return NULL;
    if (d->type != LF_N_MAP) {
        LF_ERR_AT(ld, n, "%s: expected a mapping, got %s", ctx, lf_yaml_what(d, buf, sizeof(buf)));
        return NULL;
    }
    return d;
}

/* A non-empty string, as lf_yaml_string_list keeps it. */
static int lf_yaml_is_text(const lf_node_t *n)
{
    const lf_node_t *d = lf_yaml_deref(n);
    return d->type == LF_N_SCALAR && !lf_yaml_is_null(d) && *d->str;
}

static const lf_node_t *lf_yaml_text_from(const lf_node_t *it)
{
    while (it && !lf_yaml_is_text(it))
        it = it->next;
    return it;
}

const lf_node_t *lf_yaml_strings_first(const lf_node_t *n)
{
    const lf_node_t *d = lf_yaml_deref(n);
    if (!d) return NULL;
    if (d->type == LF_N_SCALAR) return lf_yaml_is_text(n) ? n : NULL;
    return d->type == LF_N_SEQ ? lf_yaml_text_from(d->first) : NULL;
}

const lf_node_t *lf_yaml_strings_next(const lf_node_t *n, const lf_node_t *it)
{
    /* A lone scalar is the whole list: its next is the next key of its map. */
    return lf_yaml_deref(n)->type == LF_N_SEQ ? lf_yaml_text_from(it->next) : NULL;
}
