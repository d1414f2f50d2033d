/* The event generator's insides (src/core/gen_*.c), shared by its files and by nothing else:
 * the random stream, the record encoder, the string builder, the generator's state and the
 * steps one file offers the next. The public face is include/leadflow/gen.h.
 *
 *   gen_encode.c  MessagePack/JSON encoder and the small string builder
 *   gen_event.c   one event: the envelope (type, ids, timestamp), traits, malformed shapes
 *   gen_body.c    the body of page views and track events (pages, UTM links, campaigns)
 *   gen_model.c   lead behaviour: who acts next (Zipf), what they do, how leads progress
 *   gen_run.c     options, the run loop, duplicates ring, pacing, counting */
#ifndef LEADFLOW_GEN_INT_H
#define LEADFLOW_GEN_INT_H

#include <stdint.h>
#include <string.h>

#include "leadflow/common.h"
#include "leadflow/event.h"
#include "leadflow/gen.h"

#define GEN_VAL_CAP (64 * 1024) /* largest value: the 40 KiB "too large" event + slack */
#define GEN_BIG_BYTES (40 * 1024)
#define GEN_KEY_CAP 512
#define GEN_SB_CAP 1024
#define GEN_DEPTH 8
#define GEN_RING 128 /* recent events a duplicate may re-send */
#define GEN_RING_SLOT 1024
#define GEN_SITE "https://www.acmecloud.example"

#define ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

/*---- Random numbers: xoshiro256**, seeded by splitmix64 -----------------------------------*/

typedef struct {
    uint64_t s[4];
} lf_gen_rng_t;

static inline uint64_t lf_gen_splitmix(uint64_t *x)
{
    uint64_t z = (*x += 0x9E3779B97F4A7C15ULL);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
}

/* A stable hash of (seed, a, b): per-lead attributes. */
static inline uint64_t lf_gen_mix(uint64_t seed, uint64_t a, uint64_t b)
{
    uint64_t x = seed ^ (a * 0xD1B54A32D192ED03ULL) ^ (b * 0x8CB92BA72F3D8DD7ULL);
    lf_gen_splitmix(&x);
    return lf_gen_splitmix(&x);
}

static inline void lf_gen_rng_seed(lf_gen_rng_t *r, uint64_t seed)
{
    uint64_t x = seed;
    for (int i = 0; i < 4; i++)
        r->s[i] = lf_gen_splitmix(&x);
}

static inline uint64_t lf_gen_rotl(uint64_t x, int k)
{
    return (x << k) | (x >> (64 - k));
}

static inline uint64_t lf_gen_rng_next(lf_gen_rng_t *r)
{
    uint64_t *s = r->s;
    uint64_t out = lf_gen_rotl(s[1] * 5, 7) * 9;
    uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = lf_gen_rotl(s[3], 45);
    return out;
}

static inline double lf_gen_rng_unit(lf_gen_rng_t *r)
{
    return (double)(lf_gen_rng_next(r) >> 11) * 0x1.0p-53;
}

/* Uniform in [0, n), n < 2^32. */
static inline uint32_t lf_gen_rng_below(lf_gen_rng_t *r, uint32_t n)
{
    return (uint32_t)(((lf_gen_rng_next(r) >> 32) * (uint64_t)n) >> 32);
}

static inline int lf_gen_rng_chance(lf_gen_rng_t *r, double p)
{
    return lf_gen_rng_unit(r) < p;
}

#define GEN_PICK(r, arr) ((arr)[lf_gen_rng_below((r), (uint32_t)ARRAY_LEN(arr))])

/*---- Encoder: MessagePack or JSON into one buffer (gen_encode.c) --------------------------*/

typedef struct {
    uint8_t *buf;
    size_t len, cap;
    int json;
    int depth;
    int overflow;
    size_t pos[GEN_DEPTH];
    uint32_t cnt[GEN_DEPTH];
} lf_gen_enc_t;

static inline void lf_gen_enc_reset(lf_gen_enc_t *e)
{
    e->len = 0;
    e->depth = 0;
    e->overflow = 0;
}

static inline void lf_gen_enc_raw(lf_gen_enc_t *e, const void *p, size_t n)
{
    if (e->len + n > e->cap) {
        e->overflow = 1;
        return;
    }
    memcpy(e->buf + e->len, p, n);
    e->len += n;
}

static inline void lf_gen_enc_byte(lf_gen_enc_t *e, uint8_t b)
{
    if (e->len >= e->cap) {
        e->overflow = 1;
        return;
    }
    e->buf[e->len++] = b;
}

void lf_gen_enc_mp_strhdr(lf_gen_enc_t *e, size_t n);
void lf_gen_enc_str(lf_gen_enc_t *e, const char *s, size_t n);
void lf_gen_enc_cstr(lf_gen_enc_t *e, const char *s);
void lf_gen_enc_int(lf_gen_enc_t *e, int64_t v);
void lf_gen_enc_bool(lf_gen_enc_t *e, int b);
/* Maps nest up to GEN_DEPTH; every value inside one follows a lf_gen_enc_key. */
void lf_gen_enc_map_begin(lf_gen_enc_t *e);
void lf_gen_enc_map_end(lf_gen_enc_t *e);
void lf_gen_enc_key(lf_gen_enc_t *e, const char *k);
void lf_gen_enc_kv_str(lf_gen_enc_t *e, const char *k, const char *s, size_t n);
void lf_gen_enc_kv_cstr(lf_gen_enc_t *e, const char *k, const char *s);
void lf_gen_enc_kv_int(lf_gen_enc_t *e, const char *k, int64_t v);

/*---- Small string builder (gen_encode.c): silently truncates at GEN_SB_CAP ----------------*/

typedef struct {
    char b[GEN_SB_CAP];
    size_t n;
} lf_gen_sb_t;

static inline void lf_gen_sb_catn(lf_gen_sb_t *sb, const char *s, size_t n)
{
    if (n > sizeof(sb->b) - sb->n) n = sizeof(sb->b) - sb->n;
    memcpy(sb->b + sb->n, s, n);
    sb->n += n;
}

static inline void lf_gen_sb_cat(lf_gen_sb_t *sb, const char *s)
{
    lf_gen_sb_catn(sb, s, strlen(s));
}

static inline void lf_gen_sb_ch(lf_gen_sb_t *sb, char c)
{
    if (sb->n < sizeof(sb->b)) sb->b[sb->n++] = c;
}

/* Decimal, zero-padded to at least `width` digits. */
void lf_gen_sb_u64(lf_gen_sb_t *sb, uint64_t v, int width);
void lf_gen_sb_hex(lf_gen_sb_t *sb, uint64_t v, int digits);
/* A name as a lowercase word: "Pied Piper" -> "piedpiper". */
void lf_gen_sb_slug(lf_gen_sb_t *sb, const char *s);
/* "2026-01-03T12:34:56.789Z", or with an offset ("+01:00") the same instant in local time. */
void lf_gen_sb_iso8601(lf_gen_sb_t *sb, int64_t ms, int offset_min);

/*---- Generator state ----------------------------------------------------------------------*/

enum {
    GL_SEEN = 1,       /* appeared in a valid event */
    GL_ANON_FIRST = 2, /* first seen as an anonymous visitor */
    GL_IDENTIFIED = 4, /* its identify was sent */
    GL_REGISTERED = 8, /* registered for an event (so may attend) */
    GL_STARTED = 16,   /* anon_left was decided */
};

enum { SALES_NONE, SALES_ACCEPTED, SALES_QUALIFIED, SALES_OPPORTUNITY, SALES_DONE };

typedef struct {
    uint32_t nev; /* valid events sent */
    uint8_t flags;
    uint8_t anon_left; /* anonymous events still to send before identifying */
    uint8_t sales;
} lf_gen_lead_t;

typedef struct {
    uint32_t klen, vlen;
    lf_kind_t kind;
} lf_gen_slot_t;

typedef struct {
    lf_gen_opts_t o;
    lf_gen_rng_t rng;
    lf_gen_lead_t *leads;
    double *cdf;    /* Zipf cumulative weights by rank */
    uint32_t *perm; /* rank -> lead index */
    lf_gen_enc_t enc;
    char key[GEN_KEY_CAP];
    uint32_t key_len;
    uint8_t *ring; /* GEN_RING slots of key+value bytes */
    lf_gen_slot_t slots[GEN_RING];
    uint32_t ring_n, ring_head;
    lf_gen_stats_t *st;
    lf_gen_writer_t *w;
    int64_t t_base;
    lf_gen_sb_t sb; /* scratch */
} lf_gen_t;

/* What one event looks like before it is encoded. */
typedef struct {
    uint32_t lead;
    int user; /* carries userId */
    int anon; /* carries anonymousId */
    lf_kind_t kind;
    int64_t ts;
    lf_bad_t bad; /* the defect to build in, LF_BAD_NONE for none */
} lf_gen_ev_t;

/*---- Steps ----------------------------------------------------------------------------------*/

/* gen_event.c: encodes ev into g->enc and its key into g->key. */
void lf_gen_event_build(lf_gen_t *g, const lf_gen_ev_t *ev);
/* gen_event.c: a top level that is not a map (LF_BAD_NOT_A_MAP) for `lead`. */
void lf_gen_event_not_a_map(lf_gen_t *g, uint32_t lead);
/* gen_body.c: the body of a page view / of a track event, into g->enc's open map. */
void lf_gen_body_page(lf_gen_t *g);
void lf_gen_body_track(lf_gen_t *g, const lf_gen_ev_t *ev);
/* gen_model.c: Zipf weights and ranks, anonymous-first leads (g->leads, cdf, perm allocated). */
void lf_gen_model_init(lf_gen_t *g);
uint32_t lf_gen_model_pick_lead(lf_gen_t *g);
/* Decides the next valid event of a lead and advances its state. */
void lf_gen_model_plan_valid(lf_gen_t *g, uint32_t lead, lf_gen_ev_t *ev);
/* A malformed event for some lead (returns the defect); the lead's state does not move. */
lf_bad_t lf_gen_model_plan_bad(lf_gen_t *g, lf_gen_ev_t *ev);

#endif
