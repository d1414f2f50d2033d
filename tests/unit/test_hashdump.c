/* DUMP payloads of small hashes (src/hashdump.c), against bytes redis-server 7.0 produced. */
#include <stdio.h>
#include <string.h>

#include "leadflow/hashdump.h"
#include "test.h"

static void test_crc64_matches_redis(void)
{
    /* The check value Redis's own crc64 test uses. */
    CHECK(lf_crc64(0, "123456789", 9) == 0xe9c6d914c4b8d9caULL);
    CHECK(lf_crc64(0, "", 0) == 0);
}

/* `HSET g` of these pairs, one by one, then `DUMP g` with rdbcompression off (redis-server
 * 7.0.15): every integer width, a negative 13- and 16-bit one, a leading zero and an
 * out-of-range number that stay strings, a 64-byte value (12-bit string length) and an
 * empty value. */
static const char *const golden_pairs[] = {
    "stage", "lead",
    "seq",   "3",
    "score", "12.5",
    "t",     "1767225600000",
    "neg",   "-5000",
    "n16",   "-30000",
    "n24",   "8000000",
    "n32",   "-2000000000",
    "zero",  "0",
    "lead0", "007",
    "max",   "9223372036854775807",
    "min",   "-9223372036854775808",
    "big",   "9223372036854775808",
    "dd",    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_",
    "e",     ""};
static const unsigned char golden_dump[] =
    "\x10\x40\xf4\xf4\x00\x00\x00\x1e\x00\x85\x73\x74\x61\x67\x65\x06\x84\x6c\x65\x61\x64\x05"
    "\x83\x73\x65\x71\x04\x03\x01\x85\x73\x63\x6f\x72\x65\x06\x84\x31\x32\x2e\x35\x05\x81\x74"
    "\x02\xf4\x00\xa8\xda\x76\x9b\x01\x00\x00\x09\x83\x6e\x65\x67\x04\xf1\x78\xec\x03\x83\x6e"
    "\x31\x36\x04\xf1\xd0\x8a\x03\x83\x6e\x32\x34\x04\xf2\x00\x12\x7a\x04\x83\x6e\x33\x32\x04"
    "\xf3\x00\x6c\xca\x88\x05\x84\x7a\x65\x72\x6f\x05\x00\x01\x85\x6c\x65\x61\x64\x30\x06\x83"
    "\x30\x30\x37\x04\x83\x6d\x61\x78\x04\xf4\xff\xff\xff\xff\xff\xff\xff\x7f\x09\x83\x6d\x69"
    "\x6e\x04\xf4\x00\x00\x00\x00\x00\x00\x00\x80\x09\x83\x62\x69\x67\x04\x93\x39\x32\x32\x33"
    "\x33\x37\x32\x30\x33\x36\x38\x35\x34\x37\x37\x35\x38\x30\x38\x14\x82\x64\x64\x03\xe0\x40"
    "\x41\x42\x43\x44\x45\x46\x47\x48\x49\x4a\x4b\x4c\x4d\x4e\x4f\x50\x51\x52\x53\x54\x55\x56"
    "\x57\x58\x59\x5a\x61\x62\x63\x64\x65\x66\x67\x68\x69\x6a\x6b\x6c\x6d\x6e\x6f\x70\x71\x72"
    "\x73\x74\x75\x76\x77\x78\x79\x7a\x30\x31\x32\x33\x34\x35\x36\x37\x38\x39\x2d\x5f\x42\x81"
    "\x65\x02\x80\x01\xff\x0a\x00\x8a\x01\x84\xf5\x3d\x60\x39\x05";

static size_t build(const char *const *pairs, size_t n, unsigned char *out)
{
    size_t lens[2 * LF_HASHDUMP_MAX_PAIRS + 2];
    for (size_t i = 0; i < n; i++)
        lens[i] = strlen(pairs[i]);
    return lf_hashdump_build(pairs, lens, n, out);
}

static void test_hashdump_matches_redis_dump(void)
{
    size_t n = sizeof(golden_pairs) / sizeof(golden_pairs[0]);
    unsigned char out[1024];
    size_t bytes = 0;
    for (size_t i = 0; i < n; i++)
        bytes += strlen(golden_pairs[i]);
    CHECK(lf_hashdump_bound(n, bytes) <= sizeof(out));
    size_t len = build(golden_pairs, n, out);
    CHECK(len == sizeof(golden_dump) - 1);
    CHECK(len <= lf_hashdump_bound(n, bytes));
    CHECK(len == sizeof(golden_dump) - 1 && !memcmp(out, golden_dump, len));
}

static void test_hashdump_refuses_what_redis_would_not_keep_as_listpack(void)
{
    unsigned char out[4096];
    const char *dup[] = {"a", "1", "b", "2", "a", "3"};
    CHECK(build(dup, 6, out) == 0); /* a field twice: HSET keeps the last, a listpack both */
    const char *odd[] = {"a", "1", "b"};
    CHECK(build(odd, 3, out) == 0);
    CHECK(build(odd, 0, out) == 0);
    char longv[66];
    memset(longv, 'x', 65);
    longv[65] = 0;
    const char *toolong[] = {"a", longv};
    CHECK(build(toolong, 2, out) == 0);
    longv[64] = 0; /* 64 bytes: still a listpack value */
    CHECK(build(toolong, 2, out) > 0);
    /* 128 distinct fields (many sharing a hash slot) pass; the same name as the first, last,
     * fails; so does a repeat of a name that differs from another only in its last byte. */
    static char names[129][16];
    const char *many[258];
    for (int i = 0; i < 128; i++) {
        snprintf(names[i], sizeof(names[i]), "f%d", i);
        many[2 * i] = names[i];
        many[2 * i + 1] = "v";
    }
    CHECK(build(many, 256, out) > 0);
    many[2 * 127] = "f0";
    CHECK(build(many, 256, out) == 0);
    many[2 * 127] = "f12";
    CHECK(build(many, 256, out) == 0);
    many[2 * 127] = "f13x";
    CHECK(build(many, 256, out) > 0);
}

static void test_hashdump_large_listpack_length(void)
{
    /* 128 pairs of 64-byte names and values: a listpack over 16 KiB (32-bit RDB length). */
    static char names[128][65];
    static char value[65];
    const char *argv[256];
    size_t lens[256];
    memset(value, 'v', 64);
    for (int i = 0; i < 128; i++) {
        memset(names[i], '0', 61); /* 61 zeros and the 3-digit index: 64 bytes */
        names[i][61] = (char)('0' + i / 100);
        names[i][62] = (char)('0' + i / 10 % 10);
        names[i][63] = (char)('0' + i % 10);
        names[i][64] = 0;
        argv[2 * i] = names[i];
        lens[2 * i] = strlen(names[i]);
        argv[2 * i + 1] = value;
        lens[2 * i + 1] = 64;
    }
    static unsigned char out[32768];
    size_t len = lf_hashdump_build(argv, lens, 256, out);
    CHECK(len > 16384);
    CHECK(out[0] == 16 && out[1] == 0x80);
    size_t lp = ((size_t)out[2] << 24) | ((size_t)out[3] << 16) | ((size_t)out[4] << 8) | out[5];
    CHECK(lp == len - 6 - 10);
    /* the listpack's own header agrees */
    CHECK(out[6] == (lp & 0xff) && out[7] == ((lp >> 8) & 0xff) && out[10] == 0 && out[11] == 1);
    CHECK(lf_crc64(0, out, len - 8) ==
          ((uint64_t)out[len - 8] | (uint64_t)out[len - 7] << 8 | (uint64_t)out[len - 6] << 16 |
           (uint64_t)out[len - 5] << 24 | (uint64_t)out[len - 4] << 32 |
           (uint64_t)out[len - 3] << 40 | (uint64_t)out[len - 2] << 48 |
           (uint64_t)out[len - 1] << 56));
    const char *too_many[258];
    size_t tl[258];
    memcpy(too_many, argv, sizeof(argv));
    memcpy(tl, lens, sizeof(lens));
    too_many[256] = "x", too_many[257] = "y", tl[256] = tl[257] = 1;
    CHECK(lf_hashdump_build(too_many, tl, 258, out) == 0);
}

void suite_hashdump(void)
{
    LF_RUN(test_crc64_matches_redis);
    LF_RUN(test_hashdump_matches_redis_dump);
    LF_RUN(test_hashdump_refuses_what_redis_would_not_keep_as_listpack);
    LF_RUN(test_hashdump_large_listpack_length);
}
