/* The generator's two byte writers: a MessagePack/JSON encoder that writes one record into a
 * preallocated buffer (no allocation per event; overflow is flagged, not fatal), and a small
 * fixed-size string builder for ids, URLs and timestamps. */
#include "gen_int.h"
#include "leadflow/timeparse.h"

/*---- Encoder ------------------------------------------------------------------------------*/

static void lf_gen_enc_be(lf_gen_enc_t *e, uint64_t v, int bytes)
{
    for (int i = bytes - 1; i >= 0; i--)
        lf_gen_enc_byte(e, (uint8_t)(v >> (8 * i)));
}

void lf_gen_enc_mp_strhdr(lf_gen_enc_t *e, size_t n)
{
    if (n < 32) {
        lf_gen_enc_byte(e, (uint8_t)(0xa0 | n));
    } else if (n < 256) {
        lf_gen_enc_byte(e, 0xd9);
        lf_gen_enc_byte(e, (uint8_t)n);
    } else if (n < 65536) {
        lf_gen_enc_byte(e, 0xda);
        lf_gen_enc_be(e, n, 2);
    } else {
        lf_gen_enc_byte(e, 0xdb);
        lf_gen_enc_be(e, n, 4);
    }
}

static void lf_gen_enc_json_str(lf_gen_enc_t *e, const char *s, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    lf_gen_enc_byte(e, '"');
    size_t start = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c >= 0x20 && c != '"' && c != '\\') continue;
        lf_gen_enc_raw(e, s + start, i - start);
        lf_gen_enc_byte(e, '\\');
        if (c == '"' || c == '\\') {
            lf_gen_enc_byte(e, c);
        } else {
            lf_gen_enc_raw(e, "u00", 3);
            lf_gen_enc_byte(e, (uint8_t)hex[c >> 4]);
            lf_gen_enc_byte(e, (uint8_t)hex[c & 15]);
        }
        start = i + 1;
    }
    lf_gen_enc_raw(e, s + start, n - start);
    lf_gen_enc_byte(e, '"');
}

void lf_gen_enc_str(lf_gen_enc_t *e, const char *s, size_t n)
{
    if (e->json) {
        lf_gen_enc_json_str(e, s, n);
    } else {
        lf_gen_enc_mp_strhdr(e, n);
        lf_gen_enc_raw(e, s, n);
    }
}

void lf_gen_enc_cstr(lf_gen_enc_t *e, const char *s)
{
    lf_gen_enc_str(e, s, strlen(s));
}

void lf_gen_enc_int(lf_gen_enc_t *e, int64_t v)
{
    if (e->json) {
        char tmp[24];
        int i = (int)sizeof(tmp);
        uint64_t u = v < 0 ? (uint64_t)0 - (uint64_t)v : (uint64_t)v;
        do {
            tmp[--i] = (char)('0' + u % 10);
            u /= 10;
        } while (u);
        if (v < 0) tmp[--i] = '-';
        lf_gen_enc_raw(e, tmp + i, sizeof(tmp) - (size_t)i);
        return;
    }
    if (v >= 0) {
        if (v < 128) {
            lf_gen_enc_byte(e, (uint8_t)v);
        } else if (v < 256) {
            lf_gen_enc_byte(e, 0xcc);
            lf_gen_enc_be(e, (uint64_t)v, 1);
        } else if (v < 65536) {
            lf_gen_enc_byte(e, 0xcd);
            lf_gen_enc_be(e, (uint64_t)v, 2);
        } else if (v <= 0xffffffffLL) {
            lf_gen_enc_byte(e, 0xce);
            lf_gen_enc_be(e, (uint64_t)v, 4);
        } else {
            lf_gen_enc_byte(e, 0xcf);
            lf_gen_enc_be(e, (uint64_t)v, 8);
        }
    } else if (v >= -32) {
        lf_gen_enc_byte(e, (uint8_t)(0xe0 | (v + 32)));
    } else {
        lf_gen_enc_byte(e, 0xd3);
        lf_gen_enc_be(e, (uint64_t)v, 8);
    }
}

void lf_gen_enc_bool(lf_gen_enc_t *e, int b)
{
    if (e->json)
        lf_gen_enc_raw(e, b ? "true" : "false", b ? 4 : 5);
    else
        lf_gen_enc_byte(e, b ? 0xc3 : 0xc2);
}

/* Maps: MessagePack gets a one-byte fixmap placeholder, patched with the entry count at the
 * end (widened to map16 in the rare case of more than 15 entries). */
void lf_gen_enc_map_begin(lf_gen_enc_t *e)
{
    if (e->depth >= GEN_DEPTH) {
        e->overflow = 1;
        return;
    }
    e->pos[e->depth] = e->len;
    e->cnt[e->depth] = 0;
    e->depth++;
    lf_gen_enc_byte(e, e->json ? '{' : 0x80);
}

void lf_gen_enc_map_end(lf_gen_enc_t *e)
{
    if (e->depth <= 0 || e->overflow) {
        e->overflow = 1;
        return;
    }
    e->depth--;
    if (e->json) {
        lf_gen_enc_byte(e, '}');
        return;
    }
    size_t pos = e->pos[e->depth];
    uint32_t n = e->cnt[e->depth];
    if (n <= 15) {
        e->buf[pos] = (uint8_t)(0x80 | n);
    } else {
        if (e->len + 2 > e->cap) {
            e->overflow = 1;
            return;
        }
        memmove(e->buf + pos + 3, e->buf + pos + 1, e->len - pos - 1);
        e->buf[pos] = 0xde;
        e->buf[pos + 1] = (uint8_t)(n >> 8);
        e->buf[pos + 2] = (uint8_t)n;
        e->len += 2;
    }
}

void lf_gen_enc_key(lf_gen_enc_t *e, const char *k)
{
    if (e->depth <= 0) {
        e->overflow = 1;
        return;
    }
    if (e->json && e->cnt[e->depth - 1] > 0) lf_gen_enc_byte(e, ',');
    e->cnt[e->depth - 1]++;
    lf_gen_enc_cstr(e, k);
    if (e->json) lf_gen_enc_byte(e, ':');
}

void lf_gen_enc_kv_str(lf_gen_enc_t *e, const char *k, const char *s, size_t n)
{
    lf_gen_enc_key(e, k);
    lf_gen_enc_str(e, s, n);
}

void lf_gen_enc_kv_cstr(lf_gen_enc_t *e, const char *k, const char *s)
{
    lf_gen_enc_key(e, k);
    lf_gen_enc_cstr(e, s);
}

void lf_gen_enc_kv_int(lf_gen_enc_t *e, const char *k, int64_t v)
{
    lf_gen_enc_key(e, k);
    lf_gen_enc_int(e, v);
}

/*---- String builder -----------------------------------------------------------------------*/

void lf_gen_sb_u64(lf_gen_sb_t *sb, uint64_t v, int width)
{
    char tmp[24];
    int i = (int)sizeof(tmp);
    do {
        tmp[--i] = (char)('0' + v % 10);
        v /= 10;
        width--;
    } while (v || width > 0);
    lf_gen_sb_catn(sb, tmp + i, sizeof(tmp) - (size_t)i);
}

void lf_gen_sb_hex(lf_gen_sb_t *sb, uint64_t v, int digits)
{
    static const char hex[] = "0123456789abcdef";
    for (int i = digits - 1; i >= 0; i--)
        lf_gen_sb_ch(sb, hex[(v >> (4 * i)) & 15]);
}

void lf_gen_sb_slug(lf_gen_sb_t *sb, const char *s)
{
    for (; *s; s++)
        if (*s != ' ') lf_gen_sb_ch(sb, (char)(*s >= 'A' && *s <= 'Z' ? *s + 32 : *s));
}

void lf_gen_sb_iso8601(lf_gen_sb_t *sb, int64_t ms, int offset_min)
{
    int64_t local = ms + (int64_t)offset_min * 60000;
    int64_t days = local >= 0 ? local / 86400000 : -((-local + 86399999) / 86400000);
    int64_t rem = local - days * 86400000;
    int64_t y;
    unsigned m, d;
    lf_time_civil_from_days(days, &y, &m, &d);
    lf_gen_sb_u64(sb, (uint64_t)y, 4);
    lf_gen_sb_ch(sb, '-');
    lf_gen_sb_u64(sb, m, 2);
    lf_gen_sb_ch(sb, '-');
    lf_gen_sb_u64(sb, d, 2);
    lf_gen_sb_ch(sb, 'T');
    lf_gen_sb_u64(sb, (uint64_t)(rem / 3600000), 2);
    lf_gen_sb_ch(sb, ':');
    lf_gen_sb_u64(sb, (uint64_t)(rem / 60000 % 60), 2);
    lf_gen_sb_ch(sb, ':');
    lf_gen_sb_u64(sb, (uint64_t)(rem / 1000 % 60), 2);
    lf_gen_sb_ch(sb, '.');
    lf_gen_sb_u64(sb, (uint64_t)(rem % 1000), 3);
    if (offset_min == 0) {
        lf_gen_sb_ch(sb, 'Z');
    } else {
        int a = offset_min < 0 ? -offset_min : offset_min;
        lf_gen_sb_ch(sb, offset_min < 0 ? '-' : '+');
        lf_gen_sb_u64(sb, (uint64_t)(a / 60), 2);
        lf_gen_sb_ch(sb, ':');
        lf_gen_sb_u64(sb, (uint64_t)(a % 60), 2);
    }
}
