/* lf_lead_t <-> its Redis record (docs/contract.md "Redis keys"). See
 * include/leadflow/lead_codec.h; the packed part is lead_pack.c, the layout before it
 * lead_codec_v1.c. */
#include <stdio.h>
#include <string.h>

#include "lead_codec_int.h"
#include "leadflow/lead_pack.h"

/*---- Encoding --------------------------------------------------------------------------*/

static void lf_put(lf_argv_t *out, const char *field, const char *val)
{
    lf_argv_add_ref(out, field, strlen(field));
    lf_argv_add_ref(out, val, strlen(val));
}

static void lf_put_i64(lf_argv_t *out, const char *field, long long v)
{
    lf_argv_add_ref(out, field, strlen(field));
    lf_argv_add_i64(out, v);
}

static void lf_put_double(lf_argv_t *out, const char *field, double v)
{
    lf_argv_add_ref(out, field, strlen(field));
    lf_argv_add_double(out, v);
}

/* "p", "p2", "p3", ...: part k (0-based) of the packed bytes. */
static const char *lf_part_name(size_t k, char *buf, size_t cap)
{
    if (k == 0) return "p";
    snprintf(buf, cap, "p%zu", k + 1);
    return buf;
}

void lf_lead_encode(const lf_lead_t *l, const lf_model_t *m, lf_argv_t *out)
{
    if (l->anonymous) { /* a visitor: one self-contained value */
        lf_argv_add_ref(out, "p", 1);
        lf_lead_pack(l, m, 1, out);
        return;
    }
    static const char *const grades[] = {"L1", "L1", "L2", "L3"};
    double score = l->fit + l->eng;
    lf_put(out, "stage", lf_stage_name(l->stage));
    lf_put_i64(out, "seq", (long long)l->seq);
    lf_put(out, "grade", grades[lf_grade(score, m)]);
    lf_put_double(out, "score", score);
    lf_put_double(out, "fit", l->fit);
    lf_put_double(out, "eng", l->eng);
    lf_put_i64(out, "t", l->t_ms);
    /* Packed at the end of the list, then cut into parts in place. */
    size_t at = out->n;
    lf_lead_pack(l, m, 0, out);
    const char *bytes = out->argv[at];
    size_t len = out->lens[at];
    out->n = at; /* the value stays in the list's storage; the parts reference it */
    for (size_t k = 0, from = 0; from < len; k++, from += LF_PACK_PART) {
        char name[24];
        const char *f = lf_part_name(k, name, sizeof(name));
        if (k == 0)
            lf_argv_add_ref(out, f, 1);
        else
            lf_argv_adds(out, f);
        lf_argv_add_ref(out, bytes + from, len - from < LF_PACK_PART ? len - from : LF_PACK_PART);
    }
}

/*---- Decoding --------------------------------------------------------------------------*/

/* k for field "p<k+1>" (k >= 1), 0 for "p", -1 for any other. */
static int lf_part_index(lf_str_t f)
{
    if (f.len < 1 || f.ptr[0] != 'p') return -1;
    if (f.len == 1) return 0;
    if (f.len > 4 || f.ptr[1] < '1' || f.ptr[1] > '9') return -1;
    int k = 0;
    for (uint32_t i = 1; i < f.len; i++) {
        if (f.ptr[i] < '0' || f.ptr[i] > '9') return -1;
        k = k * 10 + (f.ptr[i] - '0');
    }
    return k >= 2 ? k - 1 : -1;
}

static int lf_malformed(lf_err_t *err, lf_str_t id, lf_str_t f, lf_str_t v)
{
    lf_err_set(err, LF_ERR, "lead %.*s: field %.*s has a malformed value \"%.*s\"", (int)id.len,
               id.ptr, (int)f.len, f.ptr, (int)(v.len > 40 ? 40 : v.len), v.ptr);
    return LF_ERR;
}

/* The readable fields of a lead's hash. */
static int lf_decode_readable(lf_lead_t *l, lf_str_t f, lf_str_t v)
{
    int64_t x;
    if (lf_str_eq(f, "stage")) return lf_stage_from_name(v.ptr, v.len, &l->stage);
    if (lf_str_eq(f, "seq")) {
        if (lf_codec_i64(v, &x) || x < 0) return LF_ERR;
        l->seq = (uint64_t)x;
        return LF_OK;
    }
    if (lf_str_eq(f, "fit")) return lf_codec_double(v, &l->fit);
    if (lf_str_eq(f, "eng")) return lf_codec_double(v, &l->eng);
    if (lf_str_eq(f, "t")) return lf_codec_i64(v, &l->t_ms);
    return LF_OK; /* score, grade: derived; others: a newer version's */
}

int lf_lead_decode(lf_lead_t *l, lf_str_t id, const lf_str_t *fields, const lf_str_t *values,
                   size_t n, const lf_model_t *m, lf_err_t *err)
{
    lf_lead_init(l, id);
    if (n == 0) return LF_OK;
    l->exists = 1;
    lf_str_t parts[LF_PACK_PARTS_MAX] = {{0}};
    int nparts = 0;
    for (size_t i = 0; i < n; i++) {
        int k = lf_part_index(fields[i]);
        if (k < 0 || k >= LF_PACK_PARTS_MAX) continue;
        parts[k] = values[i];
        if (k + 1 > nparts) nparts = k + 1;
    }
    if (!nparts) return lf_lead_decode_v1(l, id, fields, values, n, m, err);
    for (size_t i = 0; i < n; i++)
        if (lf_decode_readable(l, fields[i], values[i]) != LF_OK)
            return lf_malformed(err, id, fields[i], values[i]);
    size_t len = 0;
    for (int k = 0; k < nparts; k++) {
        if (!parts[k].ptr) {
            lf_err_set(err, LF_ERR, "lead %.*s: packed part %d of %d is missing", (int)id.len,
                       id.ptr, k + 1, nparts);
            return LF_ERR;
        }
        len += parts[k].len;
    }
    const char *bytes = parts[0].ptr;
    char *joined = NULL;
    if (nparts > 1) {
        joined = lf_malloc(len + 1);
        for (int k = 0, at = 0; k < nparts; at += (int)parts[k].len, k++)
            memcpy(joined + at, parts[k].ptr, parts[k].len);
        bytes = joined;
    }
    lf_err_t perr;
    int rc = lf_lead_unpack(l, bytes, len, m, &perr);
    lf_free(joined);
    if (rc != LF_OK) lf_err_set(err, LF_ERR, "lead %.*s: %s", (int)id.len, id.ptr, perr.msg);
    return rc;
}

void lf_hash_diff(const lf_str_t *bf, const lf_str_t *bv, size_t bn, const lf_argv_t *after,
                  lf_argv_t *changed, lf_argv_t *deleted)
{
    size_t j = 0;
    uint8_t seen_small[256];
    uint8_t *seen = bn <= sizeof(seen_small) ? seen_small : lf_calloc(bn, 1);
    memset(seen, 0, bn <= sizeof(seen_small) ? bn : 0);
    for (size_t i = 0; i + 1 < after->n; i += 2) {
        lf_str_t f = {after->argv[i], (uint32_t)after->lens[i]};
        lf_str_t v = {after->argv[i + 1], (uint32_t)after->lens[i + 1]};
        size_t k = bn;
        for (size_t t = 0; t < bn; t++) {
            size_t c = (j + t) % bn;
            if (bf[c].len == f.len && memcmp(bf[c].ptr, f.ptr, f.len) == 0) {
                k = c;
                break;
            }
        }
        if (k < bn) {
            seen[k] = 1;
            j = k + 1;
            if (bv[k].len == v.len && memcmp(bv[k].ptr, v.ptr, v.len) == 0) continue;
        }
        lf_argv_add_ref(changed, f.ptr, f.len);
        lf_argv_add_ref(changed, v.ptr, v.len);
    }
    for (size_t k = 0; k < bn; k++)
        if (!seen[k]) lf_argv_add_ref(deleted, bf[k].ptr, bf[k].len);
    if (seen != seen_small) lf_free(seen);
}
