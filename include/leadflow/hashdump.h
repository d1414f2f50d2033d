/* A lead's hash as one `RESTORE key 0 <payload> REPLACE` instead of an HSET of its ~26
 * fields (a new lead) or of the ~10 that changed (a stored one).
 *
 * Redis builds a small hash as a listpack, and HSET looks every field up in it before
 * appending: creating an n-field hash costs O(n^2) there, plus a string object per
 * argument. Measured on redis-server 7.0 (2-core VM, pipelined, server CPU per key): a
 * 27-field HSET of a new key 11.0 us, RESTORE of the same hash 2.8 us; updates of stored
 * leads (live path) 6.4-10 us per HSET, 3.6-4.6 us per RESTORE REPLACE. The payload is what
 * DUMP returns for such a hash: the listpack (the same bytes Redis would build), wrapped as
 * an RDB value (type 16, "hash as listpack", Redis >= 7.0), the RDB version and a CRC-64.
 *
 * Servers that cannot take it (older than 7.0, RESTORE denied by an ACL, renamed) are found
 * by a probe when the connection is made (store_redis.c); leadflow then writes HSET. */
#ifndef LEADFLOW_HASHDUMP_H
#define LEADFLOW_HASHDUMP_H

#include <stddef.h>
#include <stdint.h>

/* RDB version written in the footer: 7.0's. Newer servers load older versions. */
#define LF_HASHDUMP_RDB_VERSION 10
/* Redis's defaults for a listpack hash (hash-max-listpack-entries / -value): a hash beyond
 * them is not built (the caller writes HSET, as Redis would store it as a hash table). */
#define LF_HASHDUMP_MAX_PAIRS 128
#define LF_HASHDUMP_MAX_VALUE 64

/* Redis's CRC-64 (Jones polynomial, reflected, as in its crc64.c). */
uint64_t lf_crc64(uint64_t crc, const void *data, size_t len);

/* Upper bound of the payload size for n strings of `bytes` bytes in all. */
size_t lf_hashdump_bound(size_t n, size_t bytes);

/* The DUMP payload of the hash whose field/value pairs are argv[0..n) (n even), into out
 * (at least lf_hashdump_bound bytes). Returns its length, or 0 when the hash cannot be
 * dumped as a listpack: no pairs, more than LF_HASHDUMP_MAX_PAIRS, a field or value longer
 * than LF_HASHDUMP_MAX_VALUE, or a field named twice. */
size_t lf_hashdump_build(const char *const *argv, const size_t *lens, size_t n, unsigned char *out);

#endif
