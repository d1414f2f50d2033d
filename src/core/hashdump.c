/* DUMP payloads of small hashes. See include/leadflow/hashdump.h; the byte layouts follow
 * Redis 7.0's listpack.c (entries) and rdb.c / cluster.c (the RDB wrapping). */
#include <string.h>

#include "leadflow/hashdump.h"

#define LF_RDB_TYPE_HASH_LISTPACK 16
#define LF_CRC64_POLY 0x95ac9329ac4bc9b5ULL /* Jones, reflected */

/* Slicing by 8 (eight bytes per step, 16 KiB of tables): the CRC covers every byte of every
 * new lead's hash, and the byte-at-a-time loop was 5 % of leadflow's CPU. */
static uint64_t lf_crc64_table[8][256];
static int lf_crc64_ready;

static void lf_crc64_init(void)
{
    for (int i = 0; i < 256; i++) {
        uint64_t c = (uint64_t)i;
        for (int k = 0; k < 8; k++)
            c = (c & 1) ? (c >> 1) ^ LF_CRC64_POLY : c >> 1;
        lf_crc64_table[0][i] = c;
    }
    for (int i = 0; i < 256; i++)
        for (int t = 1; t < 8; t++) {
            uint64_t c = lf_crc64_table[t - 1][i];
            lf_crc64_table[t][i] = (c >> 8) ^ lf_crc64_table[0][c & 0xff];
        }
    lf_crc64_ready = 1;
}

uint64_t lf_crc64(uint64_t crc, const void *data, size_t len)
{
    if (!lf_crc64_ready) lf_crc64_init();
    const unsigned char *p = data;
    const uint64_t(*t)[256] = lf_crc64_table;
    for (; len >= 8; len -= 8, p += 8) {
        uint64_t w = 0;
        for (int k = 0; k < 8; k++) /* little-endian load, whatever the host */
            w |= (uint64_t)p[k] << (8 * k);
        crc ^= w;
        crc = t[7][crc & 0xff] ^ t[6][(crc >> 8) & 0xff] ^ t[5][(crc >> 16) & 0xff] ^
              t[4][(crc >> 24) & 0xff] ^ t[3][(crc >> 32) & 0xff] ^ t[2][(crc >> 40) & 0xff] ^
              t[1][(crc >> 48) & 0xff] ^ t[0][crc >> 56];
    }
    for (; len; len--, p++)
        crc = t[0][(crc ^ *p) & 0xff] ^ (crc >> 8);
    return crc;
}

/* Redis stores a string that is the canonical form of an int64 as an integer
 * (lpStringToInt64: no sign but '-', no leading zero, at most 20 characters). */
static int lf_lp_int(const char *s, size_t len, int64_t *v)
{
    if (len == 0 || len > 20) return 0;
    if (len == 1 && s[0] == '0') {
        *v = 0;
        return 1;
    }
    size_t i = 0;
    int neg = s[0] == '-';
    if (neg) i = 1;
    if (i >= len || s[i] < '1' || s[i] > '9') return 0;
    uint64_t u = 0;
    for (; i < len; i++) {
        if (s[i] < '0' || s[i] > '9') return 0;
        uint64_t d = (uint64_t)(s[i] - '0');
        if (u > (UINT64_MAX - d) / 10) return 0;
        u = u * 10 + d;
    }
    if (neg) {
        if (u > (uint64_t)INT64_MAX + 1) return 0;
        *v = u == (uint64_t)INT64_MAX + 1 ? INT64_MIN : -(int64_t)u;
    } else {
        if (u > (uint64_t)INT64_MAX) return 0;
        *v = (int64_t)u;
    }
    return 1;
}

static size_t lf_put_le(unsigned char *p, uint64_t v, int bytes)
{
    for (int i = 0; i < bytes; i++)
        p[i] = (unsigned char)(v >> (8 * i));
    return (size_t)bytes;
}

/* One listpack entry (encoding, data, back length) at p; returns its size. */
static size_t lf_lp_entry(unsigned char *p, const char *s, size_t len)
{
    size_t n = 0;
    int64_t v;
    if (lf_lp_int(s, len, &v)) {
        if (v >= 0 && v <= 127) {
            p[n++] = (unsigned char)v;
        } else if (v >= -4096 && v <= 4095) {
            uint64_t u = v < 0 ? (uint64_t)((1 << 13) + v) : (uint64_t)v;
            p[n++] = (unsigned char)((u >> 8) | 0xc0);
            p[n++] = (unsigned char)(u & 0xff);
        } else if (v >= -32768 && v <= 32767) {
            p[n++] = 0xf1;
            n += lf_put_le(p + n, (uint64_t)v, 2);
        } else if (v >= -8388608 && v <= 8388607) {
            p[n++] = 0xf2;
            n += lf_put_le(p + n, (uint64_t)v, 3);
        } else if (v >= INT32_MIN && v <= INT32_MAX) {
            p[n++] = 0xf3;
            n += lf_put_le(p + n, (uint64_t)v, 4);
        } else {
            p[n++] = 0xf4;
            n += lf_put_le(p + n, (uint64_t)v, 8);
        }
    } else {
        if (len < 64) {
            p[n++] = (unsigned char)(0x80 | len);
        } else if (len < 4096) {
            p[n++] = (unsigned char)((len >> 8) | 0xe0);
            p[n++] = (unsigned char)(len & 0xff);
        } else {
            p[n++] = 0xf0;
            n += lf_put_le(p + n, len, 4);
        }
        memcpy(p + n, s, len);
        n += len;
    }
    /* Back length: the entry's size so far, 7 bits a byte, most significant first. */
    if (n <= 127) {
        p[n] = (unsigned char)n;
        return n + 1;
    }
    p[n] = (unsigned char)(n >> 7);
    p[n + 1] = (unsigned char)((n & 127) | 128);
    return n + 2; /* entries here are < 16383 bytes */
}

size_t lf_hashdump_bound(size_t n, size_t bytes)
{
    /* type + RDB length + listpack header/end + per entry (encoding 5, back length 2) +
     * RDB version + CRC */
    return 1 + 5 + 7 + n * 7 + bytes + 2 + 8;
}

/* Whether a field (argv[0, 2, ..]) is named twice: open addressing over a table twice the
 * largest number of pairs (comparing every pair with every other was half of building a
 * lead's payload). */
static int lf_field_repeats(const char *const *argv, const size_t *lens, size_t n)
{
    uint8_t slot[2 * LF_HASHDUMP_MAX_PAIRS]; /* pair index + 1; 0 = free */
    memset(slot, 0, sizeof(slot));
    for (size_t i = 0; i < n; i += 2) {
        uint32_t h = 2166136261u; /* FNV-1a */
        for (size_t k = 0; k < lens[i]; k++)
            h = (h ^ (unsigned char)argv[i][k]) * 16777619u;
        for (h %= sizeof(slot);; h = (h + 1) % sizeof(slot)) {
            if (!slot[h]) {
                slot[h] = (uint8_t)(i / 2 + 1);
                break;
            }
            size_t j = 2 * (size_t)(slot[h] - 1);
            if (lens[j] == lens[i] && !memcmp(argv[j], argv[i], lens[i])) return 1;
        }
    }
    return 0;
}

size_t lf_hashdump_build(const char *const *argv, const size_t *lens, size_t n, unsigned char *out)
{
    if (n == 0 || n % 2 || n / 2 > LF_HASHDUMP_MAX_PAIRS) return 0;
    for (size_t i = 0; i < n; i++)
        if (lens[i] > LF_HASHDUMP_MAX_VALUE) return 0;
    if (lf_field_repeats(argv, lens, n)) return 0; /* HSET would keep the last; a listpack cannot */
    /* The listpack goes after a 5-byte RDB length (moved down once its size is known). */
    unsigned char *lp = out + 1 + 5;
    size_t len = 6;
    for (size_t i = 0; i < n; i++)
        len += lf_lp_entry(lp + len, argv[i], lens[i]);
    lp[len++] = 0xff;
    lf_put_le(lp, len, 4);
    lf_put_le(lp + 4, n, 2); /* n <= 256 < 65535 */
    out[0] = LF_RDB_TYPE_HASH_LISTPACK;
    size_t hdr;
    if (len < 64) {
        out[1] = (unsigned char)len;
        hdr = 1;
    } else if (len < 16384) {
        out[1] = (unsigned char)(((len >> 8) & 0xff) | 0x40);
        out[2] = (unsigned char)(len & 0xff);
        hdr = 2;
    } else {
        out[1] = 0x80;
        for (int i = 0; i < 4; i++)
            out[2 + i] = (unsigned char)(len >> (24 - 8 * i));
        hdr = 5;
    }
    if (hdr != 5) memmove(out + 1 + hdr, lp, len);
    size_t total = 1 + hdr + len;
    total += lf_put_le(out + total, LF_HASHDUMP_RDB_VERSION, 2);
    uint64_t crc = lf_crc64(0, out, total);
    total += lf_put_le(out + total, crc, 8);
    return total;
}
