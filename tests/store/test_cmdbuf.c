/* lf_cmdbuf_add (cmdbuf.h) formats commands byte for byte as hiredis's own formatter does: the
 * store hands its buffer to hiredis as ready-made commands. Here, not in the unit tests,
 * because it links hiredis (the unit tests link only the core). */
#include <hiredis/hiredis.h>
#include <string.h>

#include "../unit/test.h"
#include "leadflow/cmdbuf.h"

static void test_cmdbuf_matches_hiredis(void)
{
    /* Byte for byte what hiredis formats, including empty and binary arguments. */
    const char *argv[] = {"HSET", "lf:lead:{u-1}", "stage", "", "dd", "a\r\nb\0c"};
    size_t lens[] = {4, 13, 5, 0, 2, 6};
    lf_cmdbuf_t b = {0};
    lf_cmdbuf_add(&b, 6, argv, lens);
    lf_cmdbuf_add(&b, 2, argv, lens);
    char *want1 = NULL, *want2 = NULL;
    long long n1 = redisFormatCommandArgv(&want1, 6, argv, lens);
    long long n2 = redisFormatCommandArgv(&want2, 2, argv, lens);
    CHECK_INT((long long)b.len, n1 + n2);
    CHECK(b.len == (size_t)(n1 + n2) && memcmp(b.buf, want1, (size_t)n1) == 0 &&
          memcmp(b.buf + n1, want2, (size_t)n2) == 0);
    /* Growth past the first allocation keeps what was there. */
    char big[10000];
    memset(big, 'x', sizeof(big));
    const char *bargv[] = {"SET", "k", big};
    size_t blens[] = {3, 1, sizeof(big)};
    lf_cmdbuf_reset(&b);
    lf_cmdbuf_add(&b, 3, bargv, blens);
    char *want3 = NULL;
    long long n3 = redisFormatCommandArgv(&want3, 3, bargv, blens);
    CHECK(b.len == (size_t)n3 && memcmp(b.buf, want3, (size_t)n3) == 0);
    redisFreeCommand(want1);
    redisFreeCommand(want2);
    redisFreeCommand(want3);
    lf_cmdbuf_free(&b);
}

void suite_cmdbuf(void)
{
    LF_RUN(test_cmdbuf_matches_hiredis);
}
