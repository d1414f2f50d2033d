/* Common types of leadflow: status codes, string views, the error record. */
#ifndef LEADFLOW_COMMON_H
#define LEADFLOW_COMMON_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#define LF_OK 0
#define LF_ERR (-1)

#define LF_VERSION "0.1.0"

/* Ids (messageId, userId, anonymousId, previousId) are at most this long (docs/contract.md "Events
 * in"). */
#define LF_ID_MAX 128

/* A string view: not NUL-terminated, not owned. */
typedef struct {
    const char *ptr;
    uint32_t len;
} lf_str_t;

#define LF_STR_NULL ((lf_str_t){NULL, 0})
#define LF_STR_LIT(s) ((lf_str_t){(s), (uint32_t)(sizeof(s) - 1)})

/* An error a user can act on: a short machine-readable code and a sentence. */
typedef struct {
    int code;
    char msg[256];
} lf_err_t;

void lf_err_set(lf_err_t *err, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* snprintf for messages, where cutting a very long part (a user-supplied name, a list of
 * partitions) is fine: no -Wformat-truncation for what is meant to be cut. */
int lf_fmt(char *buf, size_t cap, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* Inline: called with literals on hot paths (field names of every lead decoded), where the
 * compiler folds the strlen and the length test rejects most candidates. */
static inline int lf_str_eq(lf_str_t a, const char *s)
{
    size_t n = strlen(s);
    return a.len == n && (n == 0 || memcmp(a.ptr, s, n) == 0);
}

static inline int lf_str_has_prefix(lf_str_t a, const char *prefix)
{
    size_t n = strlen(prefix);
    return a.len >= n && (n == 0 || memcmp(a.ptr, prefix, n) == 0);
}

int lf_str_eq_nocase(lf_str_t a, const char *s);
lf_str_t lf_str_from(const char *s);

/* 64-bit FNV-1a: stable across runs and machines (used for dedup and versions). */
uint64_t lf_hash64(const void *data, size_t len);

/* Value of option `name` at argv[*i], as "--name V" or "--name=V"; NULL when argv[*i] is
 * not that option (*i moves past a separate value). Sets *missing when the value is absent. */
const char *lf_opt_value(int argc, char **argv, int *i, const char *name, int *missing);

/* Clocks in ms. Monotonic for every deadline, backoff and interval (a wall clock set back or
 * forward must not shorten or stretch a wait); the wall clock only for times that are stored
 * or shown. */
int64_t lf_now_ms(void);
/* The monotonic clock in microseconds (round trips, for the metrics). */
int64_t lf_now_us(void);
int64_t lf_wall_ms(void);

/* The one strict number reader of options, settings and stored values: the whole of s is one
 * number, an optional sign then digits (lf_parse_u64: no sign), with no blank anywhere (strtoll
 * alone skips leading blanks and stops at the first bad byte). Returns LF_ERR when s is not
 * such a number, overflows, or falls outside [lo, hi]. */
int lf_parse_i64(const char *s, int64_t lo, int64_t hi, int64_t *out);
int lf_parse_u64(const char *s, uint64_t *out);
/* The whole of s is one finite number as strtod reads it (no NaN, no infinity). */
int lf_parse_double(const char *s, double *out);

/* Shortest of %.15g / %.17g that reads back to the same double. Returns length. */
int lf_fmt_double(char *buf, size_t cap, double v);
/* v in decimal, NUL-terminated; buf holds at least 21 bytes. Returns the length. */
size_t lf_fmt_i64(char *buf, long long v);

/* n bytes as 2n lowercase hex digits and a NUL into out (2n + 1 bytes). */
void lf_hex_encode(const unsigned char *in, size_t n, char *out);

#endif
