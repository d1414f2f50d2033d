/* A lead's state as its Redis record (docs/contract.md "Redis keys") and back. Pure: hiredis hands
 * the pipeline the pairs, this turns them into lf_lead_t.
 *
 * A known lead is the hash lf:lead:{<id>}: readable fields stage seq grade score fit eng t
 * (HGET works), then the packed rest (lead_pack.h) in fields p, p2, ... of at most 64 bytes.
 * A visitor is one value, its self-contained packed record: the pair ("p", record) here; the
 * store keeps it as a string with a TTL.
 * Still read (LF_LAYOUT_V1, the layout before, rewritten by the next write): one field per
 * value: first_seen last_seen stage_at events rules_version n.<kind> ft.* lt.* tr.<trait>
 * cap.<rule> (and cap) dw.. (and dd..) anon rq v o h0..h7. */
#ifndef LEADFLOW_LEAD_CODEC_H
#define LEADFLOW_LEAD_CODEC_H

#include "leadflow/argv.h"
#include "leadflow/lead.h"

#define LF_LAYOUT_V1 1
/* Parts of the packed record a reader accepts: 128 x 64 bytes (a record is far smaller:
 * ~100-250 bytes, ~1.9 KB with a full dedup window). */
#define LF_PACK_PARTS_MAX 128

/* Append the lead's record as field, value, field, value ... (values referenced or kept in
 * out's storage). */
void lf_lead_encode(const lf_lead_t *lead, const lf_model_t *m, lf_argv_t *out);

/* Fill *lead (initialised with id first) from its record's pairs (either layout). n = 0 means
 * "not stored": the lead stays new. Unknown fields are ignored (newer versions may add some);
 * traits or capped rules the model no longer has are dropped. LF_ERR with a message for a
 * malformed value. */
int lf_lead_decode(lf_lead_t *lead, lf_str_t id, const lf_str_t *fields, const lf_str_t *values,
                   size_t n, const lf_model_t *m, lf_err_t *err);

/* What turns the stored hash (bf/bv, bn pairs) into `after` (pairs): the pairs of `after`
 * whose value differs or that are new, into `changed`, and the stored fields `after` does
 * not have, into `deleted`. Both are referenced, not copied. The search for each field
 * starts after the last one found: hashes written by lf_lead_encode keep its order, so it
 * usually hits at once. */
void lf_hash_diff(const lf_str_t *bf, const lf_str_t *bv, size_t bn, const lf_argv_t *after,
                  lf_argv_t *changed, lf_argv_t *deleted);

#endif
