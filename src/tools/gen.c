/* `leadflow gen`: a realistic, reproducible synthetic event stream (see gen.h).
 *
 * One pseudo-random stream (xoshiro256**, seeded from --seed) drives every decision in a
 * fixed order, so the same seed and options give the same bytes. Per-lead attributes
 * (anonymous id, company, name, region, ...) are hashed from the seed and the lead's index,
 * so they do not depend on the order in which leads appear.
 *
 * The hot path writes each event straight into one preallocated buffer with a small
 * MessagePack/JSON encoder; nothing is allocated per event. */
#include <errno.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <librdkafka/rdkafka.h>

#include "leadflow/commands.h"
#include "leadflow/alloc.h"
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

/*---- Random numbers ----------------------------------------------------------------------*/

typedef struct {
    uint64_t s[4];
} gen_rng_t;

static uint64_t gen_splitmix(uint64_t *x)
{
    uint64_t z = (*x += 0x9E3779B97F4A7C15ULL);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
}

/* A stable hash of (seed, a, b): per-lead attributes. */
static uint64_t gen_mix(uint64_t seed, uint64_t a, uint64_t b)
{
    uint64_t x = seed ^ (a * 0xD1B54A32D192ED03ULL) ^ (b * 0x8CB92BA72F3D8DD7ULL);
    gen_splitmix(&x);
    return gen_splitmix(&x);
}

static void gen_rng_seed(gen_rng_t *r, uint64_t seed)
{
    uint64_t x = seed;
    for (int i = 0; i < 4; i++)
        r->s[i] = gen_splitmix(&x);
}

static inline uint64_t gen_rotl(uint64_t x, int k)
{
    return (x << k) | (x >> (64 - k));
}

static inline uint64_t gen_next(gen_rng_t *r)
{
    uint64_t *s = r->s;
    uint64_t out = gen_rotl(s[1] * 5, 7) * 9;
    uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = gen_rotl(s[3], 45);
    return out;
}

static inline double gen_unit(gen_rng_t *r)
{
    return (double)(gen_next(r) >> 11) * 0x1.0p-53;
}

/* Uniform in [0, n), n < 2^32. */
static inline uint32_t gen_below(gen_rng_t *r, uint32_t n)
{
    return (uint32_t)(((gen_next(r) >> 32) * (uint64_t)n) >> 32);
}

static inline int gen_chance(gen_rng_t *r, double p)
{
    return gen_unit(r) < p;
}

#define GEN_PICK(r, arr) ((arr)[gen_below((r), (uint32_t)ARRAY_LEN(arr))])

/*---- Encoder: MessagePack or JSON into one buffer ----------------------------------------*/

typedef struct {
    uint8_t *buf;
    size_t len, cap;
    int json;
    int depth;
    int overflow;
    size_t pos[GEN_DEPTH];
    uint32_t cnt[GEN_DEPTH];
} gen_enc_t;

static void enc_reset(gen_enc_t *e)
{
    e->len = 0;
    e->depth = 0;
    e->overflow = 0;
}

static inline void enc_raw(gen_enc_t *e, const void *p, size_t n)
{
    if (e->len + n > e->cap) {
        e->overflow = 1;
        return;
    }
    memcpy(e->buf + e->len, p, n);
    e->len += n;
}

static inline void enc_byte(gen_enc_t *e, uint8_t b)
{
    if (e->len >= e->cap) {
        e->overflow = 1;
        return;
    }
    e->buf[e->len++] = b;
}

static void enc_be(gen_enc_t *e, uint64_t v, int bytes)
{
    for (int i = bytes - 1; i >= 0; i--)
        enc_byte(e, (uint8_t)(v >> (8 * i)));
}

static void enc_mp_strhdr(gen_enc_t *e, size_t n)
{
    if (n < 32) {
        enc_byte(e, (uint8_t)(0xa0 | n));
    } else if (n < 256) {
        enc_byte(e, 0xd9);
        enc_byte(e, (uint8_t)n);
    } else if (n < 65536) {
        enc_byte(e, 0xda);
        enc_be(e, n, 2);
    } else {
        enc_byte(e, 0xdb);
        enc_be(e, n, 4);
    }
}

static void enc_json_str(gen_enc_t *e, const char *s, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    enc_byte(e, '"');
    size_t start = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c >= 0x20 && c != '"' && c != '\\') continue;
        enc_raw(e, s + start, i - start);
        enc_byte(e, '\\');
        if (c == '"' || c == '\\') {
            enc_byte(e, c);
        } else {
            enc_raw(e, "u00", 3);
            enc_byte(e, (uint8_t)hex[c >> 4]);
            enc_byte(e, (uint8_t)hex[c & 15]);
        }
        start = i + 1;
    }
    enc_raw(e, s + start, n - start);
    enc_byte(e, '"');
}

static void enc_str(gen_enc_t *e, const char *s, size_t n)
{
    if (e->json) {
        enc_json_str(e, s, n);
    } else {
        enc_mp_strhdr(e, n);
        enc_raw(e, s, n);
    }
}

static void enc_cstr(gen_enc_t *e, const char *s)
{
    enc_str(e, s, strlen(s));
}

static void enc_int(gen_enc_t *e, int64_t v)
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
        enc_raw(e, tmp + i, sizeof(tmp) - (size_t)i);
        return;
    }
    if (v >= 0) {
        if (v < 128) {
            enc_byte(e, (uint8_t)v);
        } else if (v < 256) {
            enc_byte(e, 0xcc);
            enc_be(e, (uint64_t)v, 1);
        } else if (v < 65536) {
            enc_byte(e, 0xcd);
            enc_be(e, (uint64_t)v, 2);
        } else if (v <= 0xffffffffLL) {
            enc_byte(e, 0xce);
            enc_be(e, (uint64_t)v, 4);
        } else {
            enc_byte(e, 0xcf);
            enc_be(e, (uint64_t)v, 8);
        }
    } else if (v >= -32) {
        enc_byte(e, (uint8_t)(0xe0 | (v + 32)));
    } else {
        enc_byte(e, 0xd3);
        enc_be(e, (uint64_t)v, 8);
    }
}

static void enc_bool(gen_enc_t *e, int b)
{
    if (e->json)
        enc_raw(e, b ? "true" : "false", b ? 4 : 5);
    else
        enc_byte(e, b ? 0xc3 : 0xc2);
}

/* Maps: MessagePack gets a one-byte fixmap placeholder, patched with the entry count at the
 * end (widened to map16 in the rare case of more than 15 entries). */
static void enc_map_begin(gen_enc_t *e)
{
    if (e->depth >= GEN_DEPTH) {
        e->overflow = 1;
        return;
    }
    e->pos[e->depth] = e->len;
    e->cnt[e->depth] = 0;
    e->depth++;
    enc_byte(e, e->json ? '{' : 0x80);
}

static void enc_map_end(gen_enc_t *e)
{
    if (e->depth <= 0 || e->overflow) {
        e->overflow = 1;
        return;
    }
    e->depth--;
    if (e->json) {
        enc_byte(e, '}');
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

static void enc_key(gen_enc_t *e, const char *k)
{
    if (e->depth <= 0) {
        e->overflow = 1;
        return;
    }
    if (e->json && e->cnt[e->depth - 1] > 0) enc_byte(e, ',');
    e->cnt[e->depth - 1]++;
    enc_cstr(e, k);
    if (e->json) enc_byte(e, ':');
}

static void enc_kv_str(gen_enc_t *e, const char *k, const char *s, size_t n)
{
    enc_key(e, k);
    enc_str(e, s, n);
}

static void enc_kv_cstr(gen_enc_t *e, const char *k, const char *s)
{
    enc_key(e, k);
    enc_cstr(e, s);
}

static void enc_kv_int(gen_enc_t *e, const char *k, int64_t v)
{
    enc_key(e, k);
    enc_int(e, v);
}

/*---- Small string builder ----------------------------------------------------------------*/

typedef struct {
    char b[GEN_SB_CAP];
    size_t n;
} gen_sb_t;

static inline void sb_catn(gen_sb_t *sb, const char *s, size_t n)
{
    if (n > sizeof(sb->b) - sb->n) n = sizeof(sb->b) - sb->n;
    memcpy(sb->b + sb->n, s, n);
    sb->n += n;
}

static inline void sb_cat(gen_sb_t *sb, const char *s)
{
    sb_catn(sb, s, strlen(s));
}

static inline void sb_ch(gen_sb_t *sb, char c)
{
    if (sb->n < sizeof(sb->b)) sb->b[sb->n++] = c;
}

/* Decimal, zero-padded to at least `width` digits. */
static void sb_u64(gen_sb_t *sb, uint64_t v, int width)
{
    char tmp[24];
    int i = (int)sizeof(tmp);
    do {
        tmp[--i] = (char)('0' + v % 10);
        v /= 10;
        width--;
    } while (v || width > 0);
    sb_catn(sb, tmp + i, sizeof(tmp) - (size_t)i);
}

static void sb_hex(gen_sb_t *sb, uint64_t v, int digits)
{
    static const char hex[] = "0123456789abcdef";
    for (int i = digits - 1; i >= 0; i--)
        sb_ch(sb, hex[(v >> (4 * i)) & 15]);
}

/* A name as a lowercase word: "Pied Piper" -> "piedpiper". */
static void sb_slug(gen_sb_t *sb, const char *s)
{
    for (; *s; s++)
        if (*s != ' ') sb_ch(sb, (char)(*s >= 'A' && *s <= 'Z' ? *s + 32 : *s));
}

/* "2026-01-03T12:34:56.789Z", or with an offset ("+01:00") the same instant in local time. */
static void sb_iso8601(gen_sb_t *sb, int64_t ms, int offset_min)
{
    int64_t local = ms + (int64_t)offset_min * 60000;
    int64_t days = local >= 0 ? local / 86400000 : -((-local + 86399999) / 86400000);
    int64_t rem = local - days * 86400000;
    /* civil_from_days (H. Hinnant) */
    int64_t z = days + 719468;
    int64_t era = (z >= 0 ? z : z - 146096) / 146097;
    int64_t doe = z - era * 146097;
    int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    int64_t y = yoe + era * 400;
    int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    int64_t mp = (5 * doy + 2) / 153;
    int64_t d = doy - (153 * mp + 2) / 5 + 1;
    int64_t m = mp < 10 ? mp + 3 : mp - 9;
    if (m <= 2) y++;
    sb_u64(sb, (uint64_t)y, 4);
    sb_ch(sb, '-');
    sb_u64(sb, (uint64_t)m, 2);
    sb_ch(sb, '-');
    sb_u64(sb, (uint64_t)d, 2);
    sb_ch(sb, 'T');
    sb_u64(sb, (uint64_t)(rem / 3600000), 2);
    sb_ch(sb, ':');
    sb_u64(sb, (uint64_t)(rem / 60000 % 60), 2);
    sb_ch(sb, ':');
    sb_u64(sb, (uint64_t)(rem / 1000 % 60), 2);
    sb_ch(sb, '.');
    sb_u64(sb, (uint64_t)(rem % 1000), 3);
    if (offset_min == 0) {
        sb_ch(sb, 'Z');
    } else {
        int a = offset_min < 0 ? -offset_min : offset_min;
        sb_ch(sb, offset_min < 0 ? '-' : '+');
        sb_u64(sb, (uint64_t)(a / 60), 2);
        sb_ch(sb, ':');
        sb_u64(sb, (uint64_t)(a % 60), 2);
    }
}

/*---- Vocabulary --------------------------------------------------------------------------*/

static const char *const gen_companies[] = {
    "Northwind", "Globex",  "Initech",    "Umbrella", "Stark",           "Wayne",
    "Acme",      "Hooli",   "Vandelay",   "Soylent",  "Tyrell",          "Cyberdyne",
    "Wonka",     "Oscorp",  "Pied Piper", "Aperture", "Massive Dynamic", "Blue Sun",
    "Monarch",   "Contoso", "Fabrikam",   "Tailspin", "Litware",         "Adatum"};
static const char *const gen_company_kinds[] = {"Labs",  "Systems",  "Logistics", "Health",
                                                "Bank",  "Retail",   "Energy",    "Software",
                                                "Foods", "Robotics", "Insurance", "Media"};
static const char *const gen_first[] = {
    "Anna",  "Ben",  "Carla",  "David", "Elif",  "Farid", "Grace", "Hiro", "Ines",
    "Jonas", "Kofi", "Lena",   "Mateo", "Nadia", "Oskar", "Priya", "Rosa", "Sven",
    "Tariq", "Uma",  "Victor", "Wei",   "Yara",  "Zoe",   "Lucia", "Omar"};
static const char *const gen_last[] = {
    "Schmidt", "Okafor", "Rossi",  "Nguyen", "Kowalski", "Garcia",  "Dubois",
    "Tanaka",  "Silva",  "Murphy", "Jensen", "Haddad",   "Ivanova", "Costa",
    "Fischer", "Ahmed",  "Larsen", "Moreau", "Novak",    "Patel",   "O'Brien"};
static const char *const gen_regions[] = {"EMEA", "EMEA", "EMEA", "NA",   "NA",
                                          "NA",   "APAC", "APAC", "LATAM"};
static const char *const gen_industries[] = {
    "Software",  "Financial Services", "Healthcare", "Manufacturing", "Retail",
    "Education", "Logistics",          "Energy",     "Media",         "Public Sector"};
static const char *const gen_titles[] = {"VP Marketing",
                                         "Head of Data",
                                         "CTO",
                                         "Marketing Operations Manager",
                                         "Data Engineer",
                                         "CFO",
                                         "Director of Demand Generation",
                                         "RevOps Lead",
                                         "Software Engineer",
                                         "Student",
                                         "Head of Growth",
                                         "IT Manager",
                                         "CEO",
                                         "Analyst"};
static const char *const gen_blog[] = {"zero-trust-for-midsize-teams",
                                       "state-of-revops-2026",
                                       "how-we-cut-etl-costs",
                                       "intent-data-101",
                                       "pipeline-hygiene-checklist",
                                       "what-is-an-mql",
                                       "abm-playbook",
                                       "streaming-vs-batch",
                                       "lead-scoring-models"};
static const char *const gen_products[] = {"analytics", "connectors", "governance", "ai-assistant",
                                           "integrations"};
static const char *const gen_docs[] = {"getting-started", "api", "sdk/python",
                                       "security",        "sso", "connectors/kafka"};
static const char *const gen_campaigns[] = {"q1-launch",    "webinar-data-mesh",   "retargeting-eu",
                                            "brand-search", "partner-summit-2026", "ebook-revops",
                                            "nurture-q1"};
static const char *const gen_referrers[] = {"https://www.google.com/", "https://www.linkedin.com/",
                                            "https://news.ycombinator.com/",
                                            "https://www.bing.com/"};
static const char *const gen_agents[] = {
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) Chrome/120.0",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_2) Safari/605.1.15",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_2 like Mac OS X) Mobile/15E148",
    "Mozilla/5.0 (X11; Linux x86_64; rv:121.0) Firefox/121.0"};
static const char *const gen_conferences[] = {"SaaStr Europa 2026", "Web Summit 2026",
                                              "RevOps Summit London", "Data Council Austin"};
static const char *const gen_qr[] = {"booth-B12", "booth-A03", "session-S07-keynote",
                                     "session-S14-workshop", "flyer-2026-q1"};
static const char *const gen_forms[] = {"demo-request", "contact",    "newsletter",
                                        "whitepaper",   "newsletter", "whitepaper"};
static const char *const gen_assets[] = {"whitepaper-zero-trust.pdf", "ebook-revops-2026.pdf",
                                         "case-study-globex.pdf", "datasheet-connectors.pdf"};
static const char *const gen_videos[] = {"product-tour", "customer-story-hooli",
                                         "webinar-data-mesh-recording", "demo-ai-assistant"};
static const char *const gen_webinars[] = {"Webinar: Data Mesh in Practice",
                                           "Roundtable: RevOps 2026",
                                           "Workshop: Streaming Lead Scoring"};
static const char *const gen_bad_ts[] = {"yesterday", "31/12/2025 10:00", "2026-01-0xT10:00:00Z",
                                         "not-a-date"};
static const char *const gen_reject_reasons[] = {"no budget", "bad timing", "not a fit",
                                                 "already a customer"};
static const char *const gen_dq_reasons[] = {"student", "competitor", "spam", "job seeker"};

/*---- Generator state ---------------------------------------------------------------------*/

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
} gen_lead_t;

typedef struct {
    uint32_t klen, vlen;
    lf_kind_t kind;
} gen_slot_t;

typedef struct {
    lf_gen_opts_t o;
    gen_rng_t rng;
    gen_lead_t *leads;
    double *cdf;    /* Zipf cumulative weights by rank */
    uint32_t *perm; /* rank -> lead index */
    gen_enc_t enc;
    char key[GEN_KEY_CAP];
    uint32_t key_len;
    uint8_t *ring; /* GEN_RING slots of key+value bytes */
    gen_slot_t slots[GEN_RING];
    uint32_t ring_n, ring_head;
    lf_gen_stats_t *st;
    lf_gen_writer_t *w;
    int64_t t_base;
    gen_sb_t sb; /* scratch */
} gen_t;

/* What one event looks like before it is encoded. */
typedef struct {
    uint32_t lead;
    int user; /* carries userId */
    int anon; /* carries anonymousId */
    lf_kind_t kind;
    int64_t ts;
    lf_bad_t bad; /* the defect to build in, LF_BAD_NONE for none */
} gen_ev_t;

static volatile sig_atomic_t gen_stop;

/*---- Identities and traits ---------------------------------------------------------------*/

static void sb_user_id(gen_sb_t *sb, uint32_t lead)
{
    sb_ch(sb, 'u');
    sb_u64(sb, (uint64_t)lead + 1, 6);
}

static void sb_anon_id(gen_sb_t *sb, uint64_t seed, uint32_t lead)
{
    sb_cat(sb, "a-");
    sb_hex(sb, gen_mix(seed, lead, 0xA11), 16);
}

static void gen_uuid(gen_t *g, gen_sb_t *sb)
{
    uint64_t a = gen_next(&g->rng), b = gen_next(&g->rng);
    a = (a & ~0xF000ULL) | 0x4000ULL;                        /* version 4 */
    b = (b & 0x3FFFFFFFFFFFFFFFULL) | 0x8000000000000000ULL; /* variant */
    sb_hex(sb, a >> 32, 8);
    sb_ch(sb, '-');
    sb_hex(sb, a >> 16, 4);
    sb_ch(sb, '-');
    sb_hex(sb, a, 4);
    sb_ch(sb, '-');
    sb_hex(sb, b >> 48, 4);
    sb_ch(sb, '-');
    sb_hex(sb, b, 12);
}

static void gen_traits(gen_t *g, uint32_t lead)
{
    gen_enc_t *e = &g->enc;
    uint64_t h = gen_mix(g->o.seed, lead, 0x7EA175);
    uint64_t h2 = gen_mix(g->o.seed, lead, 0x7EA176);
    const char *co = gen_companies[h % ARRAY_LEN(gen_companies)];
    const char *kind = gen_company_kinds[(h >> 8) % ARRAY_LEN(gen_company_kinds)];
    const char *first = gen_first[(h >> 16) % ARRAY_LEN(gen_first)];
    const char *last = gen_last[(h >> 24) % ARRAY_LEN(gen_last)];
    const char *region = gen_regions[(h >> 32) % ARRAY_LEN(gen_regions)];
    /* employees: between 5 and 200,000, log scale, most companies small */
    double u = (double)(h2 >> 11) * 0x1.0p-53;
    u *= u;
    int64_t employees = (int64_t)exp(log(5.0) + u * (log(200000.0) - log(5.0)));
    const char *tier = employees < 200     ? "smb"
                       : employees < 2000  ? "mid_market"
                       : employees < 20000 ? "enterprise"
                                           : "strategic";
    gen_sb_t *sb = &g->sb;

    enc_key(e, "traits");
    enc_map_begin(e);
    sb->n = 0;
    sb_cat(sb, co);
    sb_ch(sb, ' ');
    sb_cat(sb, kind);
    enc_kv_str(e, "company", sb->b, sb->n);
    sb->n = 0;
    sb_cat(sb, first);
    sb_ch(sb, ' ');
    sb_cat(sb, last);
    enc_kv_str(e, "name", sb->b, sb->n);
    sb->n = 0;
    sb_slug(sb, first);
    sb_ch(sb, '.');
    for (const char *p = last; *p; p++)
        if (*p != '\'') sb_ch(sb, (char)(*p >= 'A' && *p <= 'Z' ? *p + 32 : *p));
    sb_ch(sb, '@');
    sb_slug(sb, co);
    sb_ch(sb, '-');
    sb_slug(sb, kind);
    sb_cat(sb, ".example");
    enc_kv_str(e, "email", sb->b, sb->n);
    if ((h2 & 7) != 0) { /* some profiles lack a phone */
        sb->n = 0;
        if (region[0] == 'E')
            sb_cat(sb, "+44 20 7946 ");
        else if (region[0] == 'N')
            sb_cat(sb, "+1 415 555 ");
        else if (region[0] == 'A')
            sb_cat(sb, "+65 6123 ");
        else
            sb_cat(sb, "+55 11 4000 ");
        sb_u64(sb, (h2 >> 4) % 10000, 4);
        enc_kv_str(e, "phone", sb->b, sb->n);
    }
    enc_kv_cstr(e, "region", region);
    if (((h2 >> 8) & 15) != 0)
        enc_kv_cstr(e, "industry", gen_industries[(h2 >> 12) % ARRAY_LEN(gen_industries)]);
    enc_kv_int(e, "employees", employees);
    enc_kv_cstr(e, "company_tier", tier);
    enc_kv_cstr(e, "title", gen_titles[(h2 >> 24) % ARRAY_LEN(gen_titles)]);
    enc_map_end(e);
}

/*---- Event bodies ------------------------------------------------------------------------*/

/* A page of the site: path into *path_out (static string or g->sb-built), title. */
typedef struct {
    char path[160];
    size_t path_len;
    const char *title;
} gen_page_t;

static void gen_pick_page(gen_t *g, gen_page_t *p)
{
    gen_sb_t sb;
    sb.n = 0;
    uint32_t r = gen_below(&g->rng, 100);
    if (r < 15) {
        sb_ch(&sb, '/');
        p->title = "Acme Cloud - the data platform for revenue teams";
    } else if (r < 45) {
        sb_cat(&sb, "/blog/");
        sb_cat(&sb, GEN_PICK(&g->rng, gen_blog));
        p->title = "Blog | Acme Cloud";
    } else if (r < 55) {
        sb_cat(&sb, "/pricing");
        p->title = "Pricing | Acme Cloud";
    } else if (r < 75) {
        sb_cat(&sb, "/product/");
        sb_cat(&sb, GEN_PICK(&g->rng, gen_products));
        p->title = "Product | Acme Cloud";
    } else if (r < 80) {
        sb_cat(&sb, "/careers");
        p->title = "Careers | Acme Cloud";
    } else {
        sb_cat(&sb, "/docs/");
        sb_cat(&sb, GEN_PICK(&g->rng, gen_docs));
        p->title = "Docs | Acme Cloud";
    }
    memcpy(p->path, sb.b, sb.n);
    p->path_len = sb.n;
}

typedef struct {
    const char *source, *medium, *campaign;
    int click; /* 0 none, 1 gclid, 2 fbclid */
} gen_utm_t;

static void gen_pick_utm(gen_t *g, gen_utm_t *u)
{
    uint32_t r = gen_below(&g->rng, 100);
    u->click = 0;
    if (r < 35) {
        u->source = "google";
        u->medium = "cpc";
        u->campaign = gen_chance(&g->rng, 0.6) ? "brand-search" : "retargeting-eu";
        if (gen_chance(&g->rng, 0.7)) u->click = 1;
    } else if (r < 65) {
        u->source = "linkedin";
        u->medium = gen_chance(&g->rng, 0.5) ? "social" : "cpc";
        u->campaign = GEN_PICK(&g->rng, gen_campaigns);
        if (gen_chance(&g->rng, 0.1)) u->click = 2;
    } else if (r < 85) {
        u->source = "newsletter";
        u->medium = "email";
        u->campaign = gen_chance(&g->rng, 0.5) ? "nurture-q1" : "ebook-revops";
    } else {
        u->source = "partner";
        u->medium = "referral";
        u->campaign = "partner-summit-2026";
        if (gen_chance(&g->rng, 0.2)) u->click = 2;
    }
}

/* GEN_SITE + path [+ ?utm_...] into sb. */
static void gen_url(gen_t *g, gen_sb_t *sb, const char *path, size_t path_len, const gen_utm_t *u)
{
    sb->n = 0;
    sb_cat(sb, GEN_SITE);
    sb_catn(sb, path, path_len);
    if (!u) return;
    sb_cat(sb, "?utm_source=");
    sb_cat(sb, u->source);
    sb_cat(sb, "&utm_medium=");
    sb_cat(sb, u->medium);
    sb_cat(sb, "&utm_campaign=");
    sb_cat(sb, u->campaign);
    if (u->click) {
        sb_cat(sb, u->click == 1 ? "&gclid=" : "&fbclid=");
        sb_cat(sb, u->click == 1 ? "Cj0KCQiA" : "IwAR");
        sb_hex(sb, gen_next(&g->rng), 16);
    }
}

static void gen_campaign_map(gen_enc_t *e, const gen_utm_t *u)
{
    enc_key(e, "campaign");
    enc_map_begin(e);
    enc_kv_cstr(e, "source", u->source);
    enc_kv_cstr(e, "medium", u->medium);
    enc_kv_cstr(e, "name", u->campaign);
    enc_map_end(e);
}

/* A page view: the page fields in context.page (as analytics.js sends them) or, for some
 * server-side sources, in properties. */
static void gen_body_page(gen_t *g)
{
    gen_enc_t *e = &g->enc;
    gen_page_t page;
    gen_utm_t utm;
    gen_pick_page(g, &page);
    int has_utm = gen_chance(&g->rng, 0.25);
    if (has_utm) gen_pick_utm(g, &utm);
    int explicit_campaign = has_utm ? gen_chance(&g->rng, 0.4) : gen_chance(&g->rng, 0.03);
    if (explicit_campaign && !has_utm) gen_pick_utm(g, &utm);
    const char *referrer = gen_below(&g->rng, 3) ? GEN_PICK(&g->rng, gen_referrers) : NULL;
    int in_props = gen_chance(&g->rng, 0.3);
    const char *agent = gen_chance(&g->rng, 0.5) ? GEN_PICK(&g->rng, gen_agents) : NULL;
    gen_url(g, &g->sb, page.path, page.path_len, has_utm ? &utm : NULL);

    if (in_props) {
        enc_key(e, "properties");
        enc_map_begin(e);
    } else {
        enc_key(e, "context");
        enc_map_begin(e);
        enc_key(e, "page");
        enc_map_begin(e);
    }
    enc_kv_str(e, "path", page.path, page.path_len);
    if (referrer) enc_kv_cstr(e, "referrer", referrer);
    enc_kv_cstr(e, "title", page.title);
    enc_kv_str(e, "url", g->sb.b, g->sb.n);
    enc_map_end(e);
    if (in_props && (agent || explicit_campaign)) {
        enc_key(e, "context");
        enc_map_begin(e);
    }
    if (agent) enc_kv_cstr(e, "userAgent", agent);
    if (explicit_campaign) gen_campaign_map(e, &utm);
    if (!in_props || agent || explicit_campaign) enc_map_end(e);
}

static void gen_body_track(gen_t *g, const gen_ev_t *ev)
{
    gen_enc_t *e = &g->enc;
    gen_utm_t utm;
    switch (ev->kind) {
    case LF_KIND_QR_SCAN:
        enc_key(e, "properties");
        enc_map_begin(e);
        enc_kv_cstr(e, "qr", GEN_PICK(&g->rng, gen_qr));
        enc_kv_cstr(e, "event", GEN_PICK(&g->rng, gen_conferences));
        enc_map_end(e);
        enc_key(e, "context");
        enc_map_begin(e);
        enc_key(e, "app");
        enc_map_begin(e);
        enc_kv_cstr(e, "name", "BoothScanner");
        enc_kv_cstr(e, "version", "3.2.1");
        enc_map_end(e);
        enc_map_end(e);
        break;
    case LF_KIND_FORM_SUBMIT: {
        const char *form = GEN_PICK(&g->rng, gen_forms);
        enc_key(e, "properties");
        enc_map_begin(e);
        enc_kv_cstr(e, "form_id", form);
        enc_map_end(e);
        const char *path = form[0] == 'd' ? "/pricing" : "/contact";
        gen_url(g, &g->sb, path, strlen(path), NULL);
        enc_key(e, "context");
        enc_map_begin(e);
        enc_key(e, "page");
        enc_map_begin(e);
        enc_kv_str(e, "url", g->sb.b, g->sb.n);
        enc_map_end(e);
        enc_map_end(e);
        break;
    }
    case LF_KIND_EMAIL_OPEN:
    case LF_KIND_EMAIL_CLICK: {
        const char *camp = gen_chance(&g->rng, 0.6) ? "nurture-q1" : "webinar-data-mesh";
        gen_sb_t *sb = &g->sb;
        sb->n = 0;
        sb_cat(sb, "em-");
        sb_cat(sb, camp);
        sb_ch(sb, '-');
        sb_u64(sb, 1 + gen_below(&g->rng, 6), 1);
        enc_key(e, "properties");
        enc_map_begin(e);
        enc_kv_str(e, "email_id", sb->b, sb->n);
        enc_kv_cstr(e, "campaign_name", camp);
        if (ev->kind == LF_KIND_EMAIL_CLICK) {
            gen_page_t page;
            gen_pick_page(g, &page);
            utm = (gen_utm_t){"newsletter", "email", camp, 0};
            gen_url(g, sb, page.path, page.path_len, &utm);
            enc_kv_str(e, "link_url", sb->b, sb->n);
        }
        enc_map_end(e);
        enc_key(e, "context");
        enc_map_begin(e);
        utm = (gen_utm_t){"newsletter", "email", camp, 0};
        gen_campaign_map(e, &utm);
        enc_map_end(e);
        break;
    }
    case LF_KIND_EVENT_REGISTER:
    case LF_KIND_EVENT_ATTEND: {
        uint32_t w = (uint32_t)(gen_mix(g->o.seed, ev->lead, 0xE7) % ARRAY_LEN(gen_webinars));
        enc_key(e, "properties");
        enc_map_begin(e);
        enc_kv_cstr(e, "event_name", gen_webinars[w]);
        enc_kv_int(e, "event_id", 3100 + w);
        if (ev->kind == LF_KIND_EVENT_ATTEND) enc_kv_int(e, "minutes", 5 + gen_below(&g->rng, 55));
        enc_map_end(e);
        break;
    }
    case LF_KIND_ASSET_DOWNLOAD:
        enc_key(e, "properties");
        enc_map_begin(e);
        enc_kv_cstr(e, "asset", GEN_PICK(&g->rng, gen_assets));
        enc_kv_cstr(e, "asset_type", gen_chance(&g->rng, 0.5) ? "whitepaper" : "ebook");
        enc_map_end(e);
        break;
    case LF_KIND_VIDEO_VIEW:
        enc_key(e, "properties");
        enc_map_begin(e);
        enc_kv_cstr(e, "video_id", GEN_PICK(&g->rng, gen_videos));
        enc_kv_int(e, "percent", 25 * (1 + gen_below(&g->rng, 4)));
        enc_key(e, "muted");
        enc_bool(e, gen_chance(&g->rng, 0.3));
        enc_map_end(e);
        break;
    case LF_KIND_UTM_CLICK: {
        gen_page_t page;
        gen_pick_page(g, &page);
        gen_pick_utm(g, &utm);
        gen_url(g, &g->sb, page.path, page.path_len, &utm);
        enc_key(e, "properties");
        enc_map_begin(e);
        enc_kv_str(e, "url", g->sb.b, g->sb.n);
        enc_map_end(e);
        break;
    }
    case LF_KIND_SALES_ACCEPT:
    case LF_KIND_SALES_QUALIFY:
    case LF_KIND_OPPORTUNITY_CREATED:
    case LF_KIND_DEAL_WON:
    case LF_KIND_DEAL_LOST:
    case LF_KIND_SALES_REJECT:
    case LF_KIND_DISQUALIFY: {
        gen_sb_t *sb = &g->sb;
        sb->n = 0;
        sb_cat(sb, "sdr-");
        sb_u64(sb, gen_mix(g->o.seed, ev->lead, 0x5D) % 24 + 1, 2);
        enc_key(e, "properties");
        enc_map_begin(e);
        enc_kv_str(e, "owner", sb->b, sb->n);
        if (ev->kind == LF_KIND_SALES_REJECT)
            enc_kv_cstr(e, "reason", GEN_PICK(&g->rng, gen_reject_reasons));
        else if (ev->kind == LF_KIND_DISQUALIFY)
            enc_kv_cstr(e, "reason", GEN_PICK(&g->rng, gen_dq_reasons));
        else if (ev->kind == LF_KIND_OPPORTUNITY_CREATED || ev->kind == LF_KIND_DEAL_WON ||
                 ev->kind == LF_KIND_DEAL_LOST) {
            enc_kv_int(e, "amount", 1000 * (12 + (int64_t)(gen_mix(g->o.seed, ev->lead, 9) % 240)));
            enc_kv_cstr(e, "currency", "EUR");
        }
        enc_map_end(e);
        enc_key(e, "context");
        enc_map_begin(e);
        enc_key(e, "library");
        enc_map_begin(e);
        enc_kv_cstr(e, "name", "crm-sync");
        enc_kv_cstr(e, "version", "1.4.0");
        enc_map_end(e);
        enc_map_end(e);
        break;
    }
    default:
        break;
    }
}

/*---- Building one event ------------------------------------------------------------------*/

static const char *gen_track_name(gen_t *g, lf_kind_t k)
{
    switch (k) {
    case LF_KIND_EMAIL_OPEN:
        return gen_chance(&g->rng, 0.8) ? "Email Opened" : "email_open";
    case LF_KIND_EMAIL_CLICK:
        return gen_chance(&g->rng, 0.8) ? "Email Link Clicked" : "email_click";
    default:
        return lf_kind_name(k);
    }
}

/* The timestamp field, per the defect asked for. */
static void gen_timestamp(gen_t *g, const gen_ev_t *ev)
{
    gen_enc_t *e = &g->enc;
    gen_sb_t *sb = &g->sb;
    enc_key(e, "timestamp");
    sb->n = 0;
    if (ev->bad == LF_BAD_TIMESTAMP_UNPARSABLE) {
        enc_cstr(e, GEN_PICK(&g->rng, gen_bad_ts));
        return;
    }
    if (ev->bad == LF_BAD_TIMESTAMP_RANGE) {
        switch (gen_below(&g->rng, 4)) {
        case 0: /* seconds sent as milliseconds: January 1970 */
            enc_int(e, ev->ts / 1000);
            return;
        case 1:
            sb_iso8601(sb, (int64_t)gen_below(&g->rng, 86400000u) * 30, 0);
            break;
        case 2:
            enc_int(e, 7258118400000LL + ev->ts % 31536000000LL); /* 2200 */
            return;
        default:
            sb_iso8601(sb, 7258118400000LL + ev->ts % 31536000000LL, 0);
            break;
        }
        enc_str(e, sb->b, sb->n);
        return;
    }
    uint32_t r = gen_below(&g->rng, 100);
    if (r < 9) {
        enc_int(e, ev->ts);
        return;
    }
    int off = 0;
    if (r < 12) {
        static const int offs[] = {60, -300, 330, 540, -180};
        off = GEN_PICK(&g->rng, offs);
    }
    sb_iso8601(sb, ev->ts, off);
    enc_str(e, sb->b, sb->n);
}

/* Encodes ev into g->enc and its key into g->key. */
static void gen_build(gen_t *g, const gen_ev_t *ev)
{
    gen_enc_t *e = &g->enc;
    gen_sb_t id;
    enc_reset(e);
    enc_map_begin(e);

    lf_kind_t k = ev->kind;
    if (k == LF_KIND_PAGE_VIEW) {
        enc_kv_cstr(e, "type", "page");
    } else if (k == LF_KIND_IDENTIFY) {
        enc_kv_cstr(e, "type", "identify");
    } else if (k == LF_KIND_QR_SCAN && gen_chance(&g->rng, 0.1)) {
        enc_kv_cstr(e, "type", "qr_scan"); /* a kind directly as the type */
    } else {
        enc_kv_cstr(e, "type", "track");
        enc_kv_cstr(e, "event", gen_track_name(g, k));
    }

    id.n = 0;
    gen_uuid(g, &id);
    if (ev->bad != LF_BAD_MISSING_FIELD) enc_kv_str(e, "messageId", id.b, id.n);

    /* ids; the key is userId, else anonymousId */
    g->key_len = 0;
    if (ev->user) {
        id.n = 0;
        sb_user_id(&id, ev->lead);
        if (ev->bad == LF_BAD_ID_TOO_LONG) {
            sb_cat(&id, "-legacy-crm-");
            while (id.n < 160)
                sb_hex(&id, gen_next(&g->rng), 16);
        }
        enc_kv_str(e, "userId", id.b, id.n);
        memcpy(g->key, id.b, id.n);
        g->key_len = (uint32_t)id.n;
    }
    if (ev->anon) {
        id.n = 0;
        sb_anon_id(&id, g->o.seed, ev->lead);
        enc_kv_str(e, "anonymousId", id.b, id.n);
        if (!ev->user) {
            memcpy(g->key, id.b, id.n);
            g->key_len = (uint32_t)id.n;
        }
    }
    gen_timestamp(g, ev);

    if (k == LF_KIND_PAGE_VIEW)
        gen_body_page(g);
    else if (k == LF_KIND_IDENTIFY)
        gen_traits(g, ev->lead);
    else
        gen_body_track(g, ev);

    if (ev->bad == LF_BAD_TOO_LARGE) {
        /* an attachment pasted into a form field */
        enc_key(e, "integrations");
        enc_map_begin(e);
        enc_key(e, "attachment");
        if (e->json) {
            enc_byte(e, '"');
        } else {
            enc_mp_strhdr(e, GEN_BIG_BYTES);
        }
        if (e->len + GEN_BIG_BYTES + 2 <= e->cap) {
            static const char b64[] =
                "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
            uint64_t x = gen_next(&g->rng);
            for (size_t i = 0; i < GEN_BIG_BYTES; i++) {
                e->buf[e->len++] = (uint8_t)b64[(x >> (6 * (i % 10))) & 63];
                if (i % 10 == 9) x = x * 6364136223846793005ULL + 1442695040888963407ULL;
            }
        } else {
            e->overflow = 1;
        }
        if (e->json) enc_byte(e, '"');
        enc_map_end(e);
    }
    enc_map_end(e);
}

/* Top level not a map: a producer that sends an array of fields. In JSON mode this is a
 * MessagePack array too (a first byte other than '{' means MessagePack, CONTRACT §2). */
static void gen_build_not_a_map(gen_t *g, uint32_t lead)
{
    gen_enc_t *e = &g->enc;
    gen_sb_t id;
    int json = e->json;
    enc_reset(e);
    e->json = 0;
    id.n = 0;
    sb_user_id(&id, lead);
    memcpy(g->key, id.b, id.n);
    g->key_len = (uint32_t)id.n;
    if (gen_chance(&g->rng, 0.5)) {
        enc_byte(e, 0x93); /* [type, userId, timestamp] */
        enc_cstr(e, "page");
        enc_str(e, id.b, id.n);
        enc_int(e, g->t_base);
    } else {
        enc_cstr(e, "page_view"); /* a bare string */
    }
    e->json = json;
}

/*---- Lead behaviour ----------------------------------------------------------------------*/

static uint32_t gen_pick_lead(gen_t *g)
{
    double u = gen_unit(&g->rng) * g->cdf[g->o.leads - 1];
    uint64_t lo = 0, hi = g->o.leads - 1;
    while (lo < hi) {
        uint64_t mid = (lo + hi) / 2;
        if (g->cdf[mid] < u)
            lo = mid + 1;
        else
            hi = mid;
    }
    return g->perm[lo];
}

/* Event time: the stream's clock plus jitter; a few events arrive seconds to minutes late. */
static int64_t gen_event_time(gen_t *g)
{
    uint32_t r = gen_below(&g->rng, 1000);
    if (r < 960) return g->t_base + gen_below(&g->rng, 3000);
    if (r < 990) return g->t_base - 5000 - gen_below(&g->rng, 55000);
    return g->t_base - 60000 - gen_below(&g->rng, 540000);
}

static lf_kind_t gen_next_sales(gen_t *g, gen_lead_t *l)
{
    uint32_t r = gen_below(&g->rng, 100);
    switch (l->sales) {
    case SALES_NONE:
        if (r < 80) {
            l->sales = SALES_ACCEPTED;
            return LF_KIND_SALES_ACCEPT;
        }
        l->sales = SALES_DONE;
        return r < 95 ? LF_KIND_SALES_REJECT : LF_KIND_DISQUALIFY;
    case SALES_ACCEPTED:
        if (r < 75) {
            l->sales = SALES_QUALIFIED;
            return LF_KIND_SALES_QUALIFY;
        }
        l->sales = SALES_DONE;
        return LF_KIND_SALES_REJECT;
    case SALES_QUALIFIED:
        l->sales = SALES_OPPORTUNITY;
        return LF_KIND_OPPORTUNITY_CREATED;
    default:
        l->sales = SALES_DONE;
        return r < 45 ? LF_KIND_DEAL_WON : LF_KIND_DEAL_LOST;
    }
}

/* What a known lead does next. */
static lf_kind_t gen_known_kind(gen_t *g, gen_lead_t *l)
{
    if (l->nev >= 15 && l->sales != SALES_DONE && gen_chance(&g->rng, 0.04))
        return gen_next_sales(g, l);
    uint32_t r = gen_below(&g->rng, 100);
    if (r < 42) return LF_KIND_PAGE_VIEW;
    if (r < 54) return LF_KIND_EMAIL_OPEN;
    if (r < 61) return LF_KIND_EMAIL_CLICK;
    if (r < 66) return LF_KIND_FORM_SUBMIT;
    if (r < 72) return LF_KIND_ASSET_DOWNLOAD;
    if (r < 78) return LF_KIND_VIDEO_VIEW;
    if (r < 82) {
        l->flags |= GL_REGISTERED;
        return LF_KIND_EVENT_REGISTER;
    }
    if (r < 85) return (l->flags & GL_REGISTERED) ? LF_KIND_EVENT_ATTEND : LF_KIND_PAGE_VIEW;
    if (r < 89) return LF_KIND_QR_SCAN;
    if (r < 91) return LF_KIND_UTM_CLICK;
    if (r < 93) return LF_KIND_IDENTIFY; /* profile update */
    return LF_KIND_PAGE_VIEW;
}

static lf_kind_t gen_anon_kind(gen_t *g)
{
    uint32_t r = gen_below(&g->rng, 100);
    if (r < 80) return LF_KIND_PAGE_VIEW;
    if (r < 86) return LF_KIND_VIDEO_VIEW;
    if (r < 90) return LF_KIND_ASSET_DOWNLOAD;
    if (r < 96) return LF_KIND_QR_SCAN;
    return LF_KIND_UTM_CLICK;
}

/* Decides the next valid event of a lead and advances its state. */
static void gen_plan_valid(gen_t *g, uint32_t lead, gen_ev_t *ev)
{
    gen_lead_t *l = &g->leads[lead];
    ev->lead = lead;
    ev->bad = LF_BAD_NONE;
    ev->ts = gen_event_time(g);
    if (!(l->flags & GL_STARTED)) {
        l->flags |= GL_STARTED;
        if (l->flags & GL_ANON_FIRST) l->anon_left = (uint8_t)(1 + gen_below(&g->rng, 5));
    }
    if (!(l->flags & GL_IDENTIFIED)) {
        if ((l->flags & GL_ANON_FIRST) && l->anon_left > 0) {
            l->anon_left--;
            ev->user = 0;
            ev->anon = 1;
            ev->kind = gen_anon_kind(g);
            return;
        }
        /* the identify: with the visitor's anonymousId when it was seen anonymously */
        l->flags |= GL_IDENTIFIED;
        ev->user = 1;
        ev->anon = (l->flags & GL_ANON_FIRST) != 0;
        ev->kind = LF_KIND_IDENTIFY;
        return;
    }
    ev->user = 1;
    /* browsers keep sending the anonymousId after identify */
    ev->anon = (l->flags & GL_ANON_FIRST) && gen_chance(&g->rng, 0.5);
    ev->kind = gen_known_kind(g, l);
    if (ev->kind >= LF_KIND_SALES_ACCEPT && ev->kind <= LF_KIND_DISQUALIFY) ev->anon = 0;
}

/* A malformed event for some lead; the lead's state does not move. */
static lf_bad_t gen_plan_bad(gen_t *g, gen_ev_t *ev)
{
    uint32_t lead = gen_pick_lead(g);
    gen_lead_t *l = &g->leads[lead];
    ev->lead = lead;
    ev->ts = gen_event_time(g);
    ev->user = (l->flags & GL_IDENTIFIED) || !(l->flags & GL_ANON_FIRST);
    ev->anon = !ev->user;
    ev->kind = LF_KIND_PAGE_VIEW;
    uint32_t r = gen_below(&g->rng, 100);
    if (r < 20) return LF_BAD_NOT_DECODABLE; /* truncated */
    if (r < 30) return LF_BAD_NOT_A_MAP;
    if (r < 50) return LF_BAD_MISSING_FIELD;
    if (r < 60) {
        ev->user = 1;
        return LF_BAD_ID_TOO_LONG;
    }
    if (r < 75) return LF_BAD_TIMESTAMP_UNPARSABLE;
    if (r < 90) return LF_BAD_TIMESTAMP_RANGE;
    return LF_BAD_TOO_LARGE;
}

/*---- The run -----------------------------------------------------------------------------*/

static int gen_emit(gen_t *g, const char *key, uint32_t klen, const uint8_t *val, uint32_t vlen,
                    lf_bad_t bad, int dup, lf_kind_t kind, lf_err_t *err)
{
    lf_gen_rec_t rec = {key, klen, val, vlen, bad, dup, kind};
    g->st->events++;
    g->st->bytes += klen + vlen;
    return g->w->write(g->w, &rec, err);
}

static void gen_ring_push(gen_t *g, lf_kind_t kind)
{
    if (g->key_len + g->enc.len > GEN_RING_SLOT) return;
    uint32_t i = g->ring_head;
    uint8_t *p = g->ring + (size_t)i * GEN_RING_SLOT;
    memcpy(p, g->key, g->key_len);
    memcpy(p + g->key_len, g->enc.buf, g->enc.len);
    g->slots[i] = (gen_slot_t){g->key_len, (uint32_t)g->enc.len, kind};
    g->ring_head = (i + 1) % GEN_RING;
    if (g->ring_n < GEN_RING) g->ring_n++;
}

static int gen_check_opts(const lf_gen_opts_t *o, lf_err_t *err)
{
    if (o->leads < 1 || o->leads > 100000000) {
        lf_err_set(err, 1, "--leads must be between 1 and 100000000");
        return LF_ERR;
    }
    if (!(o->dup_rate >= 0 && o->bad_rate >= 0 && o->anon_rate >= 0 && o->anon_rate <= 1 &&
          o->dup_rate + o->bad_rate <= 1)) {
        lf_err_set(err, 1, "rates must be in [0, 1] and --dup-rate + --bad-rate <= 1");
        return LF_ERR;
    }
    if (!(o->span_days > 0 && o->span_days <= 3650) || !(o->zipf >= 0 && o->zipf <= 10) ||
        !(o->rate_eps >= 0)) {
        lf_err_set(err, 1, "--span-days must be in (0, 3650], --zipf in [0, 10], --rate >= 0");
        return LF_ERR;
    }
    if (o->start_ms < 946684800000LL || o->start_ms > 4102444800000LL - 3650LL * 86400000) {
        lf_err_set(err, 1, "--start-ms must be an epoch-ms time between 2000 and 2090");
        return LF_ERR;
    }
    return LF_OK;
}

void lf_gen_opts_default(lf_gen_opts_t *o)
{
    memset(o, 0, sizeof(*o));
    o->leads = 10000;
    o->events = 100000;
    o->seed = 1;
    o->format = LF_GEN_MSGPACK;
    o->dup_rate = 0.01;
    o->bad_rate = 0.005;
    o->anon_rate = 0.3;
    o->rate_eps = 0;
    o->start_ms = 1767225600000LL;
    o->span_days = 30;
    o->zipf = 0.9;
}

static double gen_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static void gen_pace(const lf_gen_opts_t *o, uint64_t i, double t0)
{
    double target = t0 + (double)i / o->rate_eps;
    double now = gen_now();
    if (now >= target) return;
    double d = target - now;
    struct timespec ts = {(time_t)d, (long)((d - (double)(time_t)d) * 1e9)};
    nanosleep(&ts, NULL);
}

int lf_gen_run(const lf_gen_opts_t *o, lf_gen_writer_t *w, lf_gen_stats_t *st, lf_err_t *err)
{
    int rc = LF_ERR;
    if (gen_check_opts(o, err)) return LF_ERR;
    gen_t *g = lf_calloc(1, sizeof(*g));
    g->o = *o;
    g->st = st;
    g->w = w;
    memset(st, 0, sizeof(*st));
    gen_rng_seed(&g->rng, o->seed);
    g->leads = lf_calloc(o->leads, sizeof(*g->leads));
    g->cdf = lf_malloc(o->leads * sizeof(*g->cdf));
    g->perm = lf_malloc(o->leads * sizeof(*g->perm));
    g->enc.buf = lf_malloc(GEN_VAL_CAP);
    g->enc.cap = GEN_VAL_CAP;
    g->enc.json = o->format == LF_GEN_JSON;
    g->ring = lf_malloc((size_t)GEN_RING * GEN_RING_SLOT);

    /* Zipf weights by rank; which lead holds which rank is a seeded shuffle. */
    double sum = 0;
    for (uint64_t k = 0; k < o->leads; k++) {
        sum += pow((double)(k + 1), -o->zipf);
        g->cdf[k] = sum;
        g->perm[k] = (uint32_t)k;
    }
    for (uint64_t k = o->leads - 1; k > 0; k--) {
        uint32_t j = (uint32_t)(gen_next(&g->rng) % (k + 1));
        uint32_t t = g->perm[k];
        g->perm[k] = g->perm[j];
        g->perm[j] = t;
    }
    for (uint64_t k = 0; k < o->leads; k++)
        if ((double)(gen_mix(o->seed, k, 0xA0) >> 11) * 0x1.0p-53 < o->anon_rate)
            g->leads[k].flags |= GL_ANON_FIRST;

    double span_ms = o->span_days * 86400000.0;
    double t0 = gen_now();
    for (uint64_t i = 0; i < o->events; i++) {
        if (gen_stop) {
            lf_err_set(err, 2, "interrupted after %llu events", (unsigned long long)i);
            goto done;
        }
        if (o->rate_eps > 0) gen_pace(o, i, t0);
        g->t_base = o->start_ms + (int64_t)(span_ms * (double)i / (double)o->events);
        double r = gen_unit(&g->rng);
        gen_ev_t ev;
        if (r < o->bad_rate) {
            ev.bad = gen_plan_bad(g, &ev);
            if (ev.bad == LF_BAD_NOT_A_MAP) {
                gen_build_not_a_map(g, ev.lead);
            } else {
                lf_bad_t build = ev.bad == LF_BAD_NOT_DECODABLE ? LF_BAD_NONE : ev.bad;
                lf_bad_t reason = ev.bad;
                ev.bad = build;
                gen_build(g, &ev);
                ev.bad = reason;
                if (reason == LF_BAD_NOT_DECODABLE) /* cut off in transit */
                    g->enc.len = g->enc.len / 4 + gen_below(&g->rng, (uint32_t)g->enc.len / 2);
            }
            if (g->enc.overflow) goto overflow;
            st->bad++;
            st->bad_by_reason[ev.bad]++;
            if (gen_emit(g, g->key, g->key_len, g->enc.buf, (uint32_t)g->enc.len, ev.bad, 0,
                         LF_KIND_OTHER, err))
                goto done;
        } else if (r < o->bad_rate + o->dup_rate && g->ring_n > 0) {
            uint32_t back = gen_below(&g->rng, g->ring_n);
            uint32_t s = (g->ring_head + GEN_RING - 1 - back) % GEN_RING;
            const uint8_t *p = g->ring + (size_t)s * GEN_RING_SLOT;
            st->duplicates++;
            if (gen_emit(g, (const char *)p, g->slots[s].klen, p + g->slots[s].klen,
                         g->slots[s].vlen, LF_BAD_NONE, 1, g->slots[s].kind, err))
                goto done;
        } else {
            uint32_t lead = gen_pick_lead(g);
            gen_plan_valid(g, lead, &ev);
            gen_build(g, &ev);
            if (g->enc.overflow) goto overflow;
            gen_lead_t *l = &g->leads[lead];
            l->nev++;
            if (!(l->flags & GL_SEEN)) {
                l->flags |= GL_SEEN;
                st->leads++;
            }
            st->valid++;
            st->by_kind[ev.kind]++;
            gen_ring_push(g, ev.kind);
            if (gen_emit(g, g->key, g->key_len, g->enc.buf, (uint32_t)g->enc.len, LF_BAD_NONE, 0,
                         ev.kind, err))
                goto done;
        }
    }
    rc = LF_OK;
    goto done;
overflow:
    lf_err_set(err, 1, "internal error: event larger than %d bytes", GEN_VAL_CAP);
done:
    for (uint64_t k = 0; k < o->leads; k++) {
        if (!(g->leads[k].flags & GL_SEEN)) continue;
        if (g->leads[k].flags & GL_IDENTIFIED)
            st->identified++;
        else
            st->anonymous_only++;
    }
    lf_free(g->ring);
    lf_free(g->enc.buf);
    lf_free(g->perm);
    lf_free(g->cdf);
    lf_free(g->leads);
    lf_free(g);
    return rc;
}

/*---- Stats -------------------------------------------------------------------------------*/

int lf_gen_stats_write(const lf_gen_stats_t *st, const lf_gen_opts_t *o, const char *path,
                       lf_err_t *err)
{
    FILE *f = strcmp(path, "-") == 0 ? stdout : fopen(path, "w");
    if (!f) {
        lf_err_set(err, 1, "cannot write %s: %s", path, strerror(errno));
        return LF_ERR;
    }
    fprintf(f, "{\"events\":%llu,\"valid\":%llu,\"duplicates\":%llu,\"bad\":%llu,",
            (unsigned long long)st->events, (unsigned long long)st->valid,
            (unsigned long long)st->duplicates, (unsigned long long)st->bad);
    fprintf(f, "\"bad_by_reason\":{");
    for (int i = 1; i < LF_BAD__COUNT; i++)
        fprintf(f, "%s\"%s\":%llu", i > 1 ? "," : "", lf_bad_name((lf_bad_t)i),
                (unsigned long long)st->bad_by_reason[i]);
    fprintf(f, "},\"leads\":%llu,\"identified\":%llu,\"anonymous_only\":%llu,",
            (unsigned long long)st->leads, (unsigned long long)st->identified,
            (unsigned long long)st->anonymous_only);
    fprintf(f, "\"by_kind\":{");
    int first = 1;
    for (int i = 1; i < LF_KIND__COUNT; i++) {
        if (!st->by_kind[i]) continue;
        fprintf(f, "%s\"%s\":%llu", first ? "" : ",", lf_kind_name((lf_kind_t)i),
                (unsigned long long)st->by_kind[i]);
        first = 0;
    }
    fprintf(f, "},\"bytes\":%llu,\"seed\":%llu,\"format\":\"%s\",\"lead_population\":%llu}\n",
            (unsigned long long)st->bytes, (unsigned long long)o->seed,
            o->format == LF_GEN_JSON ? "json" : "msgpack", (unsigned long long)o->leads);
    int bad = ferror(f);
    if (f != stdout)
        bad |= fclose(f);
    else
        bad |= fflush(f);
    if (bad) {
        lf_err_set(err, 1, "cannot write %s: %s", path, strerror(errno));
        return LF_ERR;
    }
    return LF_OK;
}

/*---- File writer -------------------------------------------------------------------------*/

typedef struct {
    FILE *f;
    const char *path;
    int lines;
    char *buf;
} gen_file_t;

static int gen_file_write(lf_gen_writer_t *w, const lf_gen_rec_t *rec, lf_err_t *err)
{
    gen_file_t *fw = w->ctx;
    if (fw->lines) {
        fwrite(rec->key, 1, rec->key_len, fw->f);
        putc('\t', fw->f);
        fwrite(rec->val, 1, rec->val_len, fw->f);
        putc('\n', fw->f);
    } else {
        uint8_t h[4] = {(uint8_t)(rec->key_len >> 24), (uint8_t)(rec->key_len >> 16),
                        (uint8_t)(rec->key_len >> 8), (uint8_t)rec->key_len};
        fwrite(h, 1, 4, fw->f);
        fwrite(rec->key, 1, rec->key_len, fw->f);
        h[0] = (uint8_t)(rec->val_len >> 24);
        h[1] = (uint8_t)(rec->val_len >> 16);
        h[2] = (uint8_t)(rec->val_len >> 8);
        h[3] = (uint8_t)rec->val_len;
        fwrite(h, 1, 4, fw->f);
        fwrite(rec->val, 1, rec->val_len, fw->f);
    }
    if (ferror(fw->f)) {
        lf_err_set(err, 1, "cannot write %s: %s", fw->path, strerror(errno));
        return LF_ERR;
    }
    return LF_OK;
}

static int gen_file_close(lf_gen_writer_t *w, lf_err_t *err)
{
    gen_file_t *fw = w->ctx;
    int bad = fflush(fw->f) != 0 || ferror(fw->f);
    int e = errno;
    if (fw->f != stdout && fclose(fw->f) != 0) bad = 1;
    if (bad) lf_err_set(err, 1, "cannot write %s: %s", fw->path, strerror(e ? e : errno));
    lf_free(fw->buf);
    lf_free(fw);
    lf_free(w);
    return bad ? LF_ERR : LF_OK;
}

lf_gen_writer_t *lf_gen_writer_file(const char *path, int lines, lf_err_t *err)
{
    FILE *f = strcmp(path, "-") == 0 ? stdout : fopen(path, "wb");
    if (!f) {
        lf_err_set(err, 1, "cannot open %s: %s", path, strerror(errno));
        return NULL;
    }
    gen_file_t *fw = lf_calloc(1, sizeof(*fw));
    fw->f = f;
    fw->path = path;
    fw->lines = lines;
    fw->buf = lf_malloc(1 << 20);
    setvbuf(f, fw->buf, _IOFBF, 1 << 20);
    lf_gen_writer_t *w = lf_calloc(1, sizeof(*w));
    w->write = gen_file_write;
    w->close = gen_file_close;
    w->ctx = fw;
    return w;
}

/*---- Kafka writer ------------------------------------------------------------------------*/

typedef struct {
    rd_kafka_t *rk;
    char *topic;
    uint64_t sent, delivered, failed;
    char first_err[256];
    int fatal;
} gen_kafka_t;

/* @locality the thread calling rd_kafka_poll/flush: ours */
static void gen_kafka_dr(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
    (void)rk;
    gen_kafka_t *k = opaque;
    if (!m->err) {
        k->delivered++;
        return;
    }
    if (k->failed++ == 0)
        snprintf(k->first_err, sizeof(k->first_err), "delivery to %s [%d] failed: %s",
                 rd_kafka_topic_name(m->rkt), (int)m->partition, rd_kafka_err2str(m->err));
}

static void gen_kafka_error(rd_kafka_t *rk, int err, const char *reason, void *opaque)
{
    gen_kafka_t *k = opaque;
    if (err == RD_KAFKA_RESP_ERR__FATAL) {
        char buf[200];
        rd_kafka_fatal_error(rk, buf, sizeof(buf));
        k->fatal = 1;
        if (!k->first_err[0]) snprintf(k->first_err, sizeof(k->first_err), "fatal: %s", buf);
    }
    fprintf(stderr, "leadflow gen: kafka: %s\n", reason);
}

static int gen_kafka_write(lf_gen_writer_t *w, const lf_gen_rec_t *rec, lf_err_t *err)
{
    gen_kafka_t *k = w->ctx;
    for (;;) {
        if (k->failed || k->fatal) {
            lf_err_set(err, 1, "%s", k->first_err);
            return LF_ERR;
        }
        rd_kafka_resp_err_t e = rd_kafka_producev(
            k->rk, RD_KAFKA_V_TOPIC(k->topic), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
            RD_KAFKA_V_KEY(rec->key, rec->key_len),
            RD_KAFKA_V_VALUE((void *)rec->val, rec->val_len), RD_KAFKA_V_END);
        if (e == RD_KAFKA_RESP_ERR__QUEUE_FULL) {
            rd_kafka_poll(k->rk, 50); /* back-pressure: wait for deliveries */
            continue;
        }
        if (e) {
            lf_err_set(err, 1, "produce to %s: %s", k->topic, rd_kafka_err2str(e));
            return LF_ERR;
        }
        break;
    }
    if ((++k->sent & 63) == 0) rd_kafka_poll(k->rk, 0);
    return LF_OK;
}

static int gen_kafka_close(lf_gen_writer_t *w, lf_err_t *err)
{
    gen_kafka_t *k = w->ctx;
    /* Every message ends in a delivery report within message.timeout.ms. */
    while (rd_kafka_outq_len(k->rk) > 0 && !k->fatal)
        rd_kafka_flush(k->rk, 1000);
    int rc = LF_OK;
    if (k->failed || k->fatal || k->delivered != k->sent) {
        lf_err_set(err, 1, "%llu of %llu messages not delivered%s%s",
                   (unsigned long long)(k->sent - k->delivered), (unsigned long long)k->sent,
                   k->first_err[0] ? ": " : "", k->first_err);
        rc = LF_ERR;
    }
    rd_kafka_destroy(k->rk);
    lf_free(k->topic);
    lf_free(k);
    lf_free(w);
    return rc;
}

lf_gen_writer_t *lf_gen_writer_kafka(const char *brokers, const char *topic,
                                     const char *const *props, int nprops, lf_err_t *err)
{
    char errstr[512];
    gen_kafka_t *k = lf_calloc(1, sizeof(*k));
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    static const char *const defaults[][2] = {
        {"enable.idempotence", "true"},
        {"linger.ms", "50"},
        {"batch.num.messages", "10000"},
        {"reconnect.backoff.max.ms", "1000"},
        /* The mock broker keeps ~5 MiB per partition: zstd makes that ~3x more events
         * (measured: 300k default events over 8 partitions, all kept; lz4 lost 4 %). */
        {"compression.type", "zstd"},
        {"client.id", "leadflow-gen"},
    };
    if (rd_kafka_conf_set(conf, "bootstrap.servers", brokers, errstr, sizeof(errstr)))
        goto conf_err;
    for (size_t i = 0; i < ARRAY_LEN(defaults); i++)
        if (rd_kafka_conf_set(conf, defaults[i][0], defaults[i][1], errstr, sizeof(errstr)))
            goto conf_err;
    for (int i = 0; i < nprops; i++) {
        char name[256];
        const char *eq = strchr(props[i], '=');
        if (!eq || eq == props[i] || (size_t)(eq - props[i]) >= sizeof(name)) {
            snprintf(errstr, sizeof(errstr), "expected name=value, got \"%s\"", props[i]);
            goto conf_err;
        }
        memcpy(name, props[i], (size_t)(eq - props[i]));
        name[eq - props[i]] = '\0';
        if (rd_kafka_conf_set(conf, name, eq + 1, errstr, sizeof(errstr))) goto conf_err;
    }
    rd_kafka_conf_set_opaque(conf, k);
    rd_kafka_conf_set_dr_msg_cb(conf, gen_kafka_dr);
    rd_kafka_conf_set_error_cb(conf, gen_kafka_error);
    k->rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof(errstr));
    if (!k->rk) goto conf_err;
    k->topic = lf_strdup(topic);
    lf_gen_writer_t *w = lf_calloc(1, sizeof(*w));
    w->write = gen_kafka_write;
    w->close = gen_kafka_close;
    w->ctx = k;
    return w;
conf_err:
    lf_err_set(err, 1, "kafka producer: %s", errstr);
    rd_kafka_conf_destroy(conf);
    lf_free(k);
    return NULL;
}

/*---- The subcommand ----------------------------------------------------------------------*/

static const char gen_help[] =
    "usage: leadflow gen [options] (--out FILE | --brokers B [--topic T])\n"
    "\n"
    "A realistic synthetic event stream (CONTRACT section 2): B2B leads with Zipf-skewed\n"
    "activity, anonymous visitors who later identify, UTM-tagged page views, QR scans, forms,\n"
    "e-mails, events, downloads, videos and sales feedback, plus duplicates and malformed\n"
    "events. The same seed and options give a byte-identical stream.\n"
    "\n"
    "  --leads N        lead population (default 10000)\n"
    "  --events N       records to emit, duplicates and bad ones included (default 100000)\n"
    "  --seed S         default 1\n"
    "  --format F       msgpack (default) or json\n"
    "  --dup-rate R     share of records re-sending an earlier event, same messageId (0.01)\n"
    "  --bad-rate R     share of malformed records (0.005): truncated, not a map, missing\n"
    "                   messageId, userId too long, unparsable or absurd timestamp, 40 KiB\n"
    "  --anon-rate R    share of leads first seen anonymously who later identify (0.3)\n"
    "  --rate EPS       target records per second; 0 = as fast as possible (default)\n"
    "  --start-ms T     event time of the first record, epoch ms (default 1767225600000 =\n"
    "                   2026-01-01T00:00:00Z)\n"
    "  --span-days D    event time spread (default 30)\n"
    "  --zipf S         activity skew exponent (default 0.9)\n"
    "output (one of):\n"
    "  --out FILE       length-prefixed records: 4-byte big-endian key length, key, 4-byte\n"
    "                   big-endian value length, value; \"-\" = stdout\n"
    "  --lines          with --out: `key<TAB>value<LF>` per record instead (for --format json\n"
    "                   piped into `kcat -P -K '\\t'`)\n"
    "  --brokers B      produce to Kafka, key = userId else anonymousId (idempotent,\n"
    "                   linger.ms=50, batch.num.messages=10000, compression.type=zstd);\n"
    "                   waits for every delivery report, exits 1 if one failed\n"
    "  --topic T        default leadflow.events\n"
    "  -X name=value    extra librdkafka producer property (repeatable)\n"
    "  --stats FILE     write a JSON summary (events, valid, duplicates, bad, bad_by_reason,\n"
    "                   leads, identified, anonymous_only, by_kind, bytes)\n"
    "  --quiet          no summary line on stderr\n";

static void gen_on_signal(int sig)
{
    (void)sig;
    gen_stop = 1;
}

int lf_cmd_gen(int argc, char **argv)
{
    lf_gen_opts_t o;
    lf_gen_stats_t st;
    lf_err_t err = {0, ""};
    const char *out = NULL, *brokers = NULL, *topic = "leadflow.events", *stats = NULL;
    const char **props = lf_calloc((size_t)argc + 1, sizeof(*props));
    int nprops = 0, lines = 0, quiet = 0, rc = 1; /* usage errors: 1, as every command */
    lf_gen_writer_t *w = NULL;
    lf_gen_opts_default(&o);

    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v;
        int missing = 0, bad = 0;
        uint64_t u;
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            fputs(gen_help, stdout);
            rc = 0;
            goto done;
        } else if (strcmp(a, "--lines") == 0) {
            lines = 1;
        } else if (strcmp(a, "--quiet") == 0 || strcmp(a, "-q") == 0) {
            quiet = 1;
        } else if ((v = lf_opt_value(argc, argv, &i, "--leads", &missing))) {
            bad = lf_parse_u64(v, &o.leads);
        } else if ((v = lf_opt_value(argc, argv, &i, "--events", &missing))) {
            bad = lf_parse_u64(v, &o.events);
        } else if ((v = lf_opt_value(argc, argv, &i, "--seed", &missing))) {
            bad = lf_parse_u64(v, &o.seed);
        } else if ((v = lf_opt_value(argc, argv, &i, "--format", &missing))) {
            if (strcmp(v, "msgpack") == 0)
                o.format = LF_GEN_MSGPACK;
            else if (strcmp(v, "json") == 0)
                o.format = LF_GEN_JSON;
            else
                bad = 1;
        } else if ((v = lf_opt_value(argc, argv, &i, "--dup-rate", &missing))) {
            bad = lf_parse_double(v, &o.dup_rate);
        } else if ((v = lf_opt_value(argc, argv, &i, "--bad-rate", &missing))) {
            bad = lf_parse_double(v, &o.bad_rate);
        } else if ((v = lf_opt_value(argc, argv, &i, "--anon-rate", &missing))) {
            bad = lf_parse_double(v, &o.anon_rate);
        } else if ((v = lf_opt_value(argc, argv, &i, "--rate", &missing))) {
            bad = lf_parse_double(v, &o.rate_eps);
        } else if ((v = lf_opt_value(argc, argv, &i, "--start-ms", &missing))) {
            bad = lf_parse_u64(v, &u);
            o.start_ms = (int64_t)u;
        } else if ((v = lf_opt_value(argc, argv, &i, "--span-days", &missing))) {
            bad = lf_parse_double(v, &o.span_days);
        } else if ((v = lf_opt_value(argc, argv, &i, "--zipf", &missing))) {
            bad = lf_parse_double(v, &o.zipf);
        } else if ((v = lf_opt_value(argc, argv, &i, "--out", &missing))) {
            out = v;
        } else if ((v = lf_opt_value(argc, argv, &i, "--brokers", &missing))) {
            brokers = v;
        } else if ((v = lf_opt_value(argc, argv, &i, "--topic", &missing))) {
            topic = v;
        } else if ((v = lf_opt_value(argc, argv, &i, "--stats", &missing))) {
            stats = v;
        } else if ((v = lf_opt_value(argc, argv, &i, "-X", &missing))) {
            props[nprops++] = v;
        } else if (!missing) {
            fprintf(stderr, "leadflow gen: unknown option %s (try --help)\n", a);
            goto done;
        }
        if (missing) {
            fprintf(stderr, "leadflow gen: option %s needs a value\n", a);
            goto done;
        }
        if (bad) {
            fprintf(stderr, "leadflow gen: bad value \"%s\" for %s\n", v, a);
            goto done;
        }
    }
    if (!out == !brokers) {
        fprintf(stderr, "leadflow gen: give exactly one of --out FILE and --brokers B\n");
        goto done;
    }
    if (lines && !out) {
        fprintf(stderr, "leadflow gen: --lines needs --out\n");
        goto done;
    }
    if (gen_check_opts(&o, &err)) {
        fprintf(stderr, "leadflow gen: %s\n", err.msg);
        goto done;
    }

    rc = 1;
    w = out ? lf_gen_writer_file(out, lines, &err)
            : lf_gen_writer_kafka(brokers, topic, props, nprops, &err);
    if (!w) {
        fprintf(stderr, "leadflow gen: %s\n", err.msg);
        goto done;
    }
    struct sigaction sa, old_int, old_term;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = gen_on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, &old_int);
    sigaction(SIGTERM, &sa, &old_term);

    double t0 = gen_now();
    int run_rc = lf_gen_run(&o, w, &st, &err);
    lf_err_t cerr = {0, ""};
    int close_rc = w->close(w, &cerr);
    double dt = gen_now() - t0;
    sigaction(SIGINT, &old_int, NULL);
    sigaction(SIGTERM, &old_term, NULL);

    if (run_rc) fprintf(stderr, "leadflow gen: %s\n", err.msg);
    if (close_rc && (!run_rc || strcmp(cerr.msg, err.msg) != 0))
        fprintf(stderr, "leadflow gen: %s\n", cerr.msg);
    if (stats && lf_gen_stats_write(&st, &o, stats, &err)) {
        fprintf(stderr, "leadflow gen: %s\n", err.msg);
        close_rc = LF_ERR;
    }
    if (!quiet)
        fprintf(stderr,
                "leadflow gen: %llu events (%llu valid, %llu duplicates, %llu bad) for %llu "
                "leads, %.1f MB %s in %.2f s (%.0f events/s) -> %s%s%s\n",
                (unsigned long long)st.events, (unsigned long long)st.valid,
                (unsigned long long)st.duplicates, (unsigned long long)st.bad,
                (unsigned long long)st.leads, (double)st.bytes / 1e6,
                o.format == LF_GEN_JSON ? "json" : "msgpack", dt,
                dt > 0 ? (double)st.events / dt : 0.0, out ? out : brokers, out ? "" : "/",
                out ? "" : topic);
    rc = run_rc || close_rc ? (gen_stop ? 130 : 1) : 0;
done:
    lf_free(props);
    return rc;
}
