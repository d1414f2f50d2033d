/* A lead's state as the fields of its Redis hash `lf:lead:{<id>}` (CONTRACT §6), readable
 * with HGETALL, and back. Pure: hiredis hands the pipeline the pairs, this turns them into
 * lf_lead_t. Field names:
 *   stage seq grade score fit eng t first_seen last_seen stage_at events rules_version
 *   n.<kind> (event counters, non-zero only)   ft.source ft.medium ft.campaign ft.at
 *   lt.source lt.medium lt.campaign lt.at      tr.<trait> (traits the rules use)
 *   cap (capped rules' windows: "rule:k=granted,k=granted;rule2:...")
 *   dw, dw2, ... (remembered messageIds: 48-bit hash and event second of each, newest
 *   first, compact text; see lead_codec.c)   dd, dd2, ... (the layout before: read only)
 *   anon ("1" for a visitor)   rq ("1": recycled by sales, must requalify)
 *   v (write version)   o (last applied offset per partition: "p:offset,p:offset") */
#ifndef LEADFLOW_LEAD_CODEC_H
#define LEADFLOW_LEAD_CODEC_H

#include "leadflow/argv.h"
#include "leadflow/lead.h"

/* Append every field of the lead as field, value, field, value ... */
void lf_lead_encode(const lf_lead_t *lead, const lf_model_t *m, lf_argv_t *out);

/* Fill *lead (initialised with id first) from HGETALL pairs. n = 0 means "not stored":
 * the lead stays new. Unknown fields are ignored (newer versions may add some); fields of
 * traits or capped rules the model no longer has are dropped. LF_ERR with a message for a
 * malformed value. */
int lf_lead_decode(lf_lead_t *lead, lf_str_t id, const lf_str_t *fields, const lf_str_t *values,
                   size_t n, const lf_model_t *m, lf_err_t *err);

/* Stage history lives in the lead's hash: the last LF_HISTORY_KEEP transitions, transition
 * `seq` in field "h<seq % LF_HISTORY_KEEP>" (a new one overwrites the oldest), each
 * "seq|from|to|reason|at|score" (score to 2 decimals). Short enough (<= 64 bytes) for Redis
 * to keep the hash in its compact encoding; the complete record, with the trigger, is the
 * transition published to Kafka. The encoder never writes these fields: the pipeline adds
 * one to the write of a transition, and keeps the stored ones it does not replace. */
#define LF_HISTORY_KEEP 8
int lf_transition_history_entry(const lf_transition_t *t, char *buf, size_t cap);
/* "h<seq % LF_HISTORY_KEEP>"; returns its length. */
int lf_history_field(uint64_t seq, char *buf, size_t cap);
/* Whether f names a history field. */
int lf_is_history_field(lf_str_t f);

/* What turns the stored hash (bf/bv, bn pairs) into `after` (pairs): the pairs of `after`
 * whose value differs or that are new, into `changed`, and the stored fields `after` does
 * not have, into `deleted`. Both are referenced, not copied. The search for each field
 * starts after the last one found: hashes written by lf_lead_encode keep its order, so it
 * usually hits at once. */
void lf_hash_diff(const lf_str_t *bf, const lf_str_t *bv, size_t bn, const lf_argv_t *after,
                  lf_argv_t *changed, lf_argv_t *deleted);

#endif
