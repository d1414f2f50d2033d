/* Reading a lead stored in the layout before packed records (LF_LAYOUT_V1): one hash field
 * per value (first_seen, n.<kind>, ft.source, tr.<trait>, cap.<rule>, dw.., o, v, h0..h7,
 * ...), and the older forms it still read (cap, dd..). The next write stores the lead in the
 * current layout (lead_codec.c). */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lead_codec_int.h"

static const char lf_b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/* Remembered messageIds, as that layout wrote them: each entry is the seconds back from the
 * previous entry (from the lead's t for the first) as a base64url varint of 5 bits per
 * character, low bits first ('A'..'f' end it, 'g'..'_' carry a continuation bit), then the
 * 48-bit hash in 8 characters; the text cut into fields "dw", "dw2", ... of 64 characters. */
#define LF_DEDUP_FIELD_CHARS 64
#define LF_DEDUP_FIELDS 32
#define LF_DEDUP_TEXT_MAX (LF_DEDUP_FIELDS * LF_DEDUP_FIELD_CHARS)
#define LF_DEDUP_VARINT_MAX 13         /* 65 bits */
#define LF_DEDUP_DELTA_MAX (1LL << 53) /* seconds; more is a corrupt value */

/* The layout before (a ring of the last N ids, no times): "dd", "dd2", ..., 8 ids of 8
 * characters per field, oldest first. Still read, as entries at the lead's t. */
#define LF_LEGACY_DD_FIELDS 8
#define LF_LEGACY_DD_MAX 64

/* k-1 for field "<p0><p1><k>" (k = 2..max), 0 for "<p0><p1>" itself, -1 for any other. */
static int lf_part_field_index(lf_str_t f, char p0, char p1, int max)
{
    if (f.len < 2 || f.len > 4 || f.ptr[0] != p0 || f.ptr[1] != p1) return -1;
    if (f.len == 2) return 0;
    int k = 0;
    for (uint32_t i = 2; i < f.len; i++) {
        if (f.ptr[i] < '0' || f.ptr[i] > '9') return -1;
        k = k * 10 + (f.ptr[i] - '0');
    }
    return k >= 2 && k <= max && f.ptr[2] != '0' ? k - 1 : -1;
}

/* A stored value as a C string in buf (the readers below want one): LF_ERR when it does not
 * fit. */
int lf_view_cstr(char *buf, size_t cap, lf_str_t v)
{
    if (v.len >= cap) return LF_ERR;
    memcpy(buf, v.ptr, v.len);
    buf[v.len] = '\0';
    return LF_OK;
}

/* A stored number: the field value is a view, the strict reader wants a C string. */
int lf_codec_i64(lf_str_t v, int64_t *out)
{
    char buf[32];
    if (v.len == 0 || lf_view_cstr(buf, sizeof(buf), v) != LF_OK) return LF_ERR;
    return lf_parse_i64(buf, INT64_MIN, INT64_MAX, out);
}

int lf_codec_double(lf_str_t v, double *out)
{
    char buf[64];
    if (v.len == 0 || lf_view_cstr(buf, sizeof(buf), v) != LF_OK) return LF_ERR;
    return lf_parse_double(buf, out);
}

static void lf_copy_val(char *dst, size_t cap, lf_str_t v)
{
    size_t n = v.len < cap - 1 ? v.len : cap - 1;
    if (n) memcpy(dst, v.ptr, n);
    dst[n] = '\0';
}

static int lf_decode_touch(lf_touch_t *t, lf_str_t sub, lf_str_t v)
{
    int64_t x;
    if (lf_str_eq(sub, "source"))
        lf_copy_val(t->source, sizeof(t->source), v);
    else if (lf_str_eq(sub, "medium"))
        lf_copy_val(t->medium, sizeof(t->medium), v);
    else if (lf_str_eq(sub, "campaign"))
        lf_copy_val(t->campaign, sizeof(t->campaign), v);
    else if (lf_str_eq(sub, "at")) {
        if (lf_codec_i64(v, &x)) return LF_ERR;
        t->at_ms = x;
    }
    return LF_OK;
}

static int lf_rule_index(const lf_model_t *m, const char *name, size_t len)
{
    for (size_t i = 0; i < m->neng; i++)
        if (strlen(m->eng[i].name) == len && memcmp(m->eng[i].name, name, len) == 0) return (int)i;
    return -1;
}

/* "window=granted,..." of capped rule idx (a rule the model no longer caps is dropped). */
static int lf_decode_cap_windows(lf_lead_t *l, int idx, char *list, const lf_model_t *m)
{
    if (idx < 0 || m->eng[idx].cap_per_ms <= 0 || l->ncaps >= LF_LEAD_CAPS_MAX) return LF_OK;
    lf_cap_use_t *c = &l->caps[l->ncaps++];
    memset(c, 0, sizeof(*c));
    c->rule = (uint16_t)idx;
    char *save = NULL;
    for (char *w = strtok_r(list, ",", &save); w; w = strtok_r(NULL, ",", &save)) {
        char *eq = strchr(w, '=');
        if (!eq || c->n >= LF_CAP_WINDOWS) return LF_ERR;
        char *end;
        c->window[c->n] = strtoll(w, &end, 10);
        if (end != eq) return LF_ERR;
        c->granted[c->n] = strtod(eq + 1, &end);
        if (*end) return LF_ERR;
        c->n++;
    }
    return LF_OK;
}

/* "cap.<rule>" = "window=granted,...". */
static int lf_decode_cap_field(lf_lead_t *l, lf_str_t f, lf_str_t v, const lf_model_t *m)
{
    char buf[1024];
    if (lf_view_cstr(buf, sizeof(buf), v) != LF_OK) return LF_ERR;
    return lf_decode_cap_windows(l, lf_rule_index(m, f.ptr + 4, f.len - 4), buf, m);
}

/* The layout before per-rule fields: "cap" = "rule:window=granted,...;rule:...". Still read
 * (the next write replaces it with cap.<rule> fields). */
static int lf_decode_caps(lf_lead_t *l, lf_str_t v, const lf_model_t *m)
{
    char buf[1024];
    if (lf_view_cstr(buf, sizeof(buf), v) != LF_OK) return LF_ERR;
    char *save1 = NULL;
    for (char *rule = strtok_r(buf, ";", &save1); rule; rule = strtok_r(NULL, ";", &save1)) {
        char *colon = strrchr(rule, ':');
        if (!colon) return LF_ERR;
        int idx = lf_rule_index(m, rule, (size_t)(colon - rule));
        if (lf_decode_cap_windows(l, idx, colon + 1, m)) return LF_ERR;
    }
    return LF_OK;
}

static int lf_b64_value(char c)
{
    const char *at = c ? memchr(lf_b64, c, 64) : NULL;
    return at ? (int)(at - lf_b64) : -1;
}

/* The text of "dw", "dw2", ... (see lf_put_dedup); entries past LF_DEDUP_MAX, the oldest,
 * are dropped. */
static int lf_decode_dedup(lf_lead_t *l, const char *text, size_t len)
{
    int64_t prev = lf_dedup_sec(l->t_ms);
    size_t i = 0;
    while (i < len) {
        uint64_t delta = 0;
        int d, shift = 0;
        do {
            if (i >= len || shift >= 5 * LF_DEDUP_VARINT_MAX || (d = lf_b64_value(text[i++])) < 0)
                return LF_ERR;
            if (shift < 64) delta |= (uint64_t)(d & 31) << shift;
            shift += 5;
        } while (d & 32);
        if (delta > (uint64_t)LF_DEDUP_DELTA_MAX || i + 8 > len) return LF_ERR;
        uint64_t h = 0;
        for (int k = 0; k < 8; k++) {
            if ((d = lf_b64_value(text[i++])) < 0) return LF_ERR;
            h = (h << 6) | (uint64_t)d;
        }
        prev -= (int64_t)delta;
        if (l->ndedup < LF_DEDUP_MAX) {
            /* Stored in order by the encoder: appended as they are. */
            l->dedup[l->ndedup].hash = h;
            l->dedup[l->ndedup].sec = prev;
            l->ndedup++;
        }
    }
    return LF_OK;
}

/* The layout before: ids of 8 characters, no times; they count as events at the lead's t. */
static int lf_decode_legacy_dedup(lf_lead_t *l, const char *text, size_t len)
{
    if (len % 8) return LF_ERR;
    int64_t sec = lf_dedup_sec(l->t_ms);
    for (size_t i = 0; i < len; i += 8) {
        uint64_t h = 0;
        for (size_t k = 0; k < 8; k++) {
            int d = lf_b64_value(text[i + k]);
            if (d < 0) return LF_ERR;
            h = (h << 6) | (uint64_t)d;
        }
        lf_lead_dedup_add(l, h, sec);
    }
    return LF_OK;
}

/* Parts "<name>", "<name>2", ... concatenated into buf; a part missing before the last one
 * present is a broken value. Returns the length, or -1 (and the last part's number). */
static long lf_join_parts(const lf_str_t *parts, int nparts, char *buf, size_t cap, int *last)
{
    size_t n = 0;
    *last = 0;
    for (int k = 0; k < nparts; k++)
        if (parts[k].len) *last = k + 1;
    for (int k = 0; k < *last; k++) {
        if (!parts[k].len || parts[k].len > cap - n) return -1;
        memcpy(buf + n, parts[k].ptr, parts[k].len);
        n += parts[k].len;
    }
    return (long)n;
}

/* The error for a dedup field group (dw.. or dd..) that does not decode. */
static int lf_dedup_malformed(lf_err_t *err, lf_str_t id, const char *name, int last,
                              const char *text, long n)
{
    lf_err_set(err, LF_ERR, "lead %.*s: fields %s..%s%d have a malformed value \"%.*s\"",
               (int)id.len, id.ptr, name, name, last,
               (int)(n > 40  ? 40
                     : n < 0 ? 0
                             : n),
               text);
    return LF_ERR;
}

static int lf_decode_dedup_fields(lf_lead_t *l, lf_str_t id, const lf_str_t *dw, const lf_str_t *dd,
                                  lf_err_t *err)
{
    char text[LF_DEDUP_TEXT_MAX];
    int last;
    long n = lf_join_parts(dw, LF_DEDUP_FIELDS, text, sizeof(text), &last);
    if (n < 0 || lf_decode_dedup(l, text, (size_t)n) != LF_OK)
        return lf_dedup_malformed(err, id, "dw", last, text, n);
    n = lf_join_parts(dd, LF_LEGACY_DD_FIELDS, text, LF_LEGACY_DD_MAX * 8, &last);
    if (n < 0 || lf_decode_legacy_dedup(l, text, (size_t)n) != LF_OK)
        return lf_dedup_malformed(err, id, "dd", last, text, n);
    return LF_OK;
}

static int lf_decode_offsets(lf_lead_t *l, lf_str_t v)
{
    char buf[256];
    if (lf_view_cstr(buf, sizeof(buf), v) != LF_OK) return LF_ERR;
    char *save = NULL;
    for (char *p = strtok_r(buf, ",", &save); p; p = strtok_r(NULL, ",", &save)) {
        char *colon = strchr(p, ':'), *end;
        if (!colon) return LF_ERR;
        long part = strtol(p, &end, 10);
        if (end != colon) return LF_ERR;
        long long off = strtoll(colon + 1, &end, 10);
        if (*end) return LF_ERR;
        lf_lead_offset_record(l, (int32_t)part, off);
    }
    return LF_OK;
}

/* A stage history field "h<seq % 8>" = "seq|from|to|reason|at|score". */
static int lf_decode_history_entry(lf_lead_t *l, lf_str_t v)
{
    char buf[128], *save = NULL, *part[6];
    if (lf_view_cstr(buf, sizeof(buf), v) != LF_OK) return LF_ERR;
    int n = 0;
    for (char *p = strtok_r(buf, "|", &save); p && n < 6; p = strtok_r(NULL, "|", &save))
        part[n++] = p;
    lf_stage_t from, to;
    int64_t seq, at;
    double score;
    if (n != 6 || lf_parse_i64(part[0], 1, INT64_MAX, &seq) ||
        lf_stage_from_name(part[1], strlen(part[1]), &from) ||
        lf_stage_from_name(part[2], strlen(part[2]), &to) ||
        lf_parse_i64(part[4], INT64_MIN, INT64_MAX, &at) || lf_parse_double(part[5], &score))
        return LF_ERR;
    int reason = -1;
    for (int r = 0; r < LF_REASON__COUNT; r++)
        if (!strcmp(part[3], lf_reason_name((lf_reason_t)r))) reason = r;
    if (reason < 0) return LF_ERR;
    lf_history_t h = {(uint64_t)seq, (uint8_t)from, (uint8_t)to, (uint8_t)reason, at, score};
    lf_lead_history_add(l, &h);
    return LF_OK;
}

/* One stored field into *l (the dedup parts into dw / dd, decoded once all are read). LF_ERR
 * when its value is malformed; a field this version does not know is skipped. */
static int lf_decode_field(lf_lead_t *l, lf_str_t f, lf_str_t v, const lf_model_t *m, lf_str_t *dw,
                           lf_str_t *dd)
{
    int64_t x = 0;
    int rc = LF_OK, part;
    if (lf_str_eq(f, "stage"))
        rc = lf_stage_from_name(v.ptr, v.len, &l->stage);
    else if (lf_str_eq(f, "seq")) {
        rc = lf_codec_i64(v, &x);
        l->seq = (uint64_t)x;
    } else if (lf_str_eq(f, "fit"))
        rc = lf_codec_double(v, &l->fit);
    else if (lf_str_eq(f, "eng"))
        rc = lf_codec_double(v, &l->eng);
    else if (lf_str_eq(f, "t"))
        rc = lf_codec_i64(v, &l->t_ms);
    else if (lf_str_eq(f, "first_seen"))
        rc = lf_codec_i64(v, &l->first_seen_ms);
    else if (lf_str_eq(f, "last_seen"))
        rc = lf_codec_i64(v, &l->last_seen_ms);
    else if (lf_str_eq(f, "stage_at"))
        rc = lf_codec_i64(v, &l->stage_at_ms);
    else if (lf_str_eq(f, "events")) {
        rc = lf_codec_i64(v, &x);
        l->events = (uint64_t)x;
    } else if (lf_str_eq(f, "v")) {
        rc = lf_codec_i64(v, &x);
        l->version = (uint64_t)x;
    } else if (lf_str_eq(f, "anon"))
        l->anonymous = lf_str_eq(v, "1");
    else if (lf_str_eq(f, "rules_version"))
        lf_copy_val(l->rules_version, sizeof(l->rules_version), v);
    else if (lf_str_eq(f, "rq"))
        l->requalify = lf_str_eq(v, "1");
    else if (lf_str_eq(f, "cap"))
        rc = lf_decode_caps(l, v, m);
    else if (lf_str_has_prefix(f, "cap."))
        rc = lf_decode_cap_field(l, f, v, m);
    else if ((part = lf_part_field_index(f, 'd', 'w', LF_DEDUP_FIELDS)) >= 0)
        dw[part] = v;
    else if ((part = lf_part_field_index(f, 'd', 'd', LF_LEGACY_DD_FIELDS)) >= 0)
        dd[part] = v;
    else if (lf_str_eq(f, "o"))
        rc = lf_decode_offsets(l, v);
    else if (f.len == 2 && f.ptr[0] == 'h' && f.ptr[1] >= '0' && f.ptr[1] <= '7')
        rc = lf_decode_history_entry(l, v);
    else if (lf_str_has_prefix(f, "n.")) {
        lf_str_t kname = {f.ptr + 2, f.len - 2};
        lf_kind_t k = lf_kind_from_name(kname);
        rc = lf_codec_i64(v, &x);
        if (rc == LF_OK && (k != LF_KIND_OTHER || lf_str_eq(kname, "other")))
            l->counters[k] = (uint32_t)x;
    } else if (lf_str_has_prefix(f, "ft.")) {
        rc = lf_decode_touch(&l->first_touch, (lf_str_t){f.ptr + 3, f.len - 3}, v);
    } else if (lf_str_has_prefix(f, "lt.")) {
        rc = lf_decode_touch(&l->last_touch, (lf_str_t){f.ptr + 3, f.len - 3}, v);
    } else if (lf_str_has_prefix(f, "tr.")) {
        lf_str_t name = {f.ptr + 3, f.len - 3};
        for (size_t k = 0; k < m->ntracked_traits; k++) {
            if (!lf_str_eq(name, m->tracked_traits[k]) || l->ntraits >= LF_LEAD_TRAITS_MAX)
                continue;
            lf_trait_t *tr = &l->traits[l->ntraits++];
            tr->idx = (uint16_t)k;
            lf_copy_val(tr->val, sizeof(tr->val), v);
            tr->is_num = lf_codec_double(v, &tr->num) == LF_OK;
            break;
        }
    }
    return rc;
}

int lf_lead_decode_v1(lf_lead_t *l, lf_str_t id, const lf_str_t *fields, const lf_str_t *values,
                      size_t n, const lf_model_t *m, lf_err_t *err)
{
    l->layout = LF_LAYOUT_V1;
    lf_str_t dw[LF_DEDUP_FIELDS] = {{0}};     /* "dw", "dw2", ... in order */
    lf_str_t dd[LF_LEGACY_DD_FIELDS] = {{0}}; /* the layout before: "dd", "dd2", ... */
    for (size_t i = 0; i < n; i++) {
        lf_str_t f = fields[i], v = values[i];
        if (lf_decode_field(l, f, v, m, dw, dd) != LF_OK) {
            lf_err_set(err, LF_ERR, "lead %.*s: field %.*s has a malformed value \"%.*s\"",
                       (int)id.len, id.ptr, (int)f.len, f.ptr, (int)(v.len > 40 ? 40 : v.len),
                       v.ptr);
            return LF_ERR;
        }
    }
    /* After the loop: the entries are times relative to t. */
    return lf_decode_dedup_fields(l, id, dw, dd, err);
}
