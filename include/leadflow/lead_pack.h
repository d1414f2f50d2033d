/* The packed part of a lead's record (docs/contract.md "Redis keys"): every field of lf_lead_t that
 * no other program reads with HGET, in one MessagePack array; docs/redis-layout.md has the table.
 *
 * A known lead's hash keeps stage seq score grade fit eng t readable and holds the packed
 * bytes cut into fields p, p2, p3 ... of at most LF_PACK_PART bytes (lead_codec.c); a visitor
 * is a string key holding a self-contained packed record (with its stage, seq, fit, eng and
 * t, which a lead keeps readable).
 *
 * Versioning: element 0 is the format (LF_PACK_FORMAT). A reader takes every format up to its
 * own and refuses a newer one with a message; elements a newer writer appends at the end are
 * ignored by an older reader, so adding one does not change the format, changing the meaning
 * of one does. */
#ifndef LEADFLOW_LEAD_PACK_H
#define LEADFLOW_LEAD_PACK_H

#include <stddef.h>
#include <stdint.h>

#include "leadflow/argv.h"
#include "leadflow/lead.h"

#define LF_PACK_FORMAT 2
/* Parts of at most 64 bytes: Redis keeps a hash whose values are all <= 64 bytes (and which
 * has <= 128 fields) in its compact encoding, a listpack, ~4x smaller than a hashtable. */
#define LF_PACK_PART 64

/* Append the lead's packed record to out (one value, copied). self_contained: also the
 * fields a lead keeps readable (a visitor's record). */
void lf_lead_pack(const lf_lead_t *l, const lf_model_t *m, int self_contained, lf_argv_t *out);

/* Fill the packed fields of *l from buf (l's readable fields, when the record is not
 * self-contained, already decoded: the record's times are relative to t). LF_ERR with a
 * message for bytes that are not a packed record of a format this version reads. Traits
 * and capped rules the model no longer has are dropped. */
int lf_lead_unpack(lf_lead_t *l, const char *buf, size_t len, const lf_model_t *m, lf_err_t *err);

/* The write version of a packed record from its first bytes (the first part is enough):
 * LF_OK, or LF_ERR when they do not start a packed record. */
int lf_lead_pack_version(const char *buf, size_t len, uint64_t *version);

#endif
