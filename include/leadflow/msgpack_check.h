/* A non-allocating walk over MessagePack bytes, before msgpack-c unpacks them.
 *
 * msgpack-c allocates the element array of a container from its declared count before reading
 * the elements, and allows 32 levels of nesting. This walk checks, whatever the bytes are, that
 * the first object:
 *  - declares no length or count beyond the bytes that remain (LF_BAD_NOT_DECODABLE: a header
 *    claiming 4 G elements in a 20-byte value is refused, never a huge allocation);
 *  - nests at most max_depth levels (else LF_BAD_TOO_COMPLEX);
 *  - does not contain the reserved byte 0xc1 (LF_BAD_NOT_DECODABLE);
 *  - has no string (msgpack str) with a NUL byte (LF_BAD_WRONG_TYPE); bin may hold any byte.
 * Used on events (event_msgpack.c) and on the packed lead records read from Redis
 * (lead_pack.c). */
#ifndef LEADFLOW_MSGPACK_CHECK_H
#define LEADFLOW_MSGPACK_CHECK_H

#include <stddef.h>

#include "leadflow/common.h"

/* LF_OK and *used = the first object's size in bytes, or an error (codes above) in err. */
int lf_msgpack_check(const char *buf, size_t len, int max_depth, size_t *used, lf_err_t *err);

#endif
