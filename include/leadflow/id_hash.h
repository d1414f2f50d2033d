/* Pseudonymous lead ids (ids.hmac_key): every id an event names (userId, anonymousId, an
 * alias's previousId) replaced by HMAC-SHA-256(key, id) in lowercase hex before anything is
 * stored or published, so that e-mail addresses and phone numbers used as ids stay out of
 * Redis and the transitions topic. The same key gives the same id on every host and in every
 * version; whoever holds the key can compute a lead's id from the raw one
 * (`leadflow inspect` does). */
#ifndef LEADFLOW_ID_HASH_H
#define LEADFLOW_ID_HASH_H

#include <stddef.h>

#include "leadflow/common.h"
#include "leadflow/event.h"

#define LF_ID_HASH_HEX 64     /* SHA-256: 32 bytes, 64 hex digits */
#define LF_ID_HASH_MIN_KEY 16 /* bytes: a shorter key can be guessed */

/* The hashed id of raw (idlen bytes) into out (LF_ID_HASH_HEX + 1 bytes, NUL-terminated). */
int lf_id_hash(const char *key, size_t keylen, const char *raw, size_t idlen, char *out);

/* The same with the key set up once (OpenSSL's HMAC state, re-initialised per id): what
 * `leadflow run` uses, a fraction of lf_id_hash's cost, which sets the key up for each id
 * (bench/id_hash_cost.c). One per thread. */
typedef struct lf_id_hasher lf_id_hasher_t;
lf_id_hasher_t *lf_id_hasher_new(const char *key, size_t keylen);
int lf_id_hasher_hash(lf_id_hasher_t *h, const char *raw, size_t idlen, char *out);
void lf_id_hasher_free(lf_id_hasher_t *h);

/* Whether s is what lf_id_hash makes: exactly 64 lowercase hex digits. */
int lf_id_is_hashed(const char *s, size_t len);

/* Whether a trait holds contact data that ids.hmac_key stores hashed too: Segment's reserved
 * `email` and `phone` traits. A fit rule can then only test their presence. */
int lf_id_hashed_trait(const char *key, size_t len);

/* Replace the event's userId, anonymousId and previousId (those present), and the values of
 * its email and phone traits, by their hashes, allocated in arena. */
int lf_event_hash_ids(lf_event_t *ev, lf_id_hasher_t *h, lf_arena_t *arena);

#endif
