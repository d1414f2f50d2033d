/* Redis commands formatted into one buffer (the request side of RESP: "*N", then "$len"
 * and the bytes of each argument), handed to hiredis with redisAppendFormattedCommand.
 * hiredis formats each command into a fresh string and copies it again; a batch writes
 * thousands of commands, so this saves a malloc and a copy per command. */
#ifndef LEADFLOW_CMDBUF_H
#define LEADFLOW_CMDBUF_H

#include <stddef.h>

typedef struct {
    char *buf;
    size_t len, cap;
} lf_cmdbuf_t;

/* Append one command of argc arguments (lens[i] bytes each; binary safe). */
void lf_cmdbuf_add(lf_cmdbuf_t *b, size_t argc, const char *const *argv, const size_t *lens);
void lf_cmdbuf_reset(lf_cmdbuf_t *b); /* forget the commands, keep the memory */
void lf_cmdbuf_free(lf_cmdbuf_t *b);

#endif
