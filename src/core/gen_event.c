/* One generated event: the envelope every event shares (type, messageId, userId/anonymousId,
 * timestamp, as analytics.js / Segment send them), the traits of an identify, and the
 * malformed shapes asked for (missing field, id too long, bad timestamps, too large, not a
 * map). The body of page views and track events is gen_body.c's. */
#include <math.h>

#include "gen_int.h"

/*---- Vocabulary ---------------------------------------------------------------------------*/

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
static const char *const gen_bad_ts[] = {"yesterday", "31/12/2025 10:00", "2026-01-0xT10:00:00Z",
                                         "not-a-date"};

/*---- Identities and traits ----------------------------------------------------------------*/

static void gen_user_id(lf_gen_sb_t *sb, uint32_t lead)
{
    lf_gen_sb_ch(sb, 'u');
    lf_gen_sb_u64(sb, (uint64_t)lead + 1, 6);
}

static void gen_anon_id(lf_gen_sb_t *sb, uint64_t seed, uint32_t lead)
{
    lf_gen_sb_cat(sb, "a-");
    lf_gen_sb_hex(sb, lf_gen_mix(seed, lead, 0xA11), 16);
}

static void gen_uuid(lf_gen_t *g, lf_gen_sb_t *sb)
{
    uint64_t a = lf_gen_rng_next(&g->rng), b = lf_gen_rng_next(&g->rng);
    a = (a & ~0xF000ULL) | 0x4000ULL;                        /* version 4 */
    b = (b & 0x3FFFFFFFFFFFFFFFULL) | 0x8000000000000000ULL; /* variant */
    lf_gen_sb_hex(sb, a >> 32, 8);
    lf_gen_sb_ch(sb, '-');
    lf_gen_sb_hex(sb, a >> 16, 4);
    lf_gen_sb_ch(sb, '-');
    lf_gen_sb_hex(sb, a, 4);
    lf_gen_sb_ch(sb, '-');
    lf_gen_sb_hex(sb, b >> 48, 4);
    lf_gen_sb_ch(sb, '-');
    lf_gen_sb_hex(sb, b, 12);
}

static void gen_traits(lf_gen_t *g, uint32_t lead)
{
    lf_gen_enc_t *e = &g->enc;
    uint64_t h = lf_gen_mix(g->o.seed, lead, 0x7EA175);
    uint64_t h2 = lf_gen_mix(g->o.seed, lead, 0x7EA176);
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
    lf_gen_sb_t *sb = &g->sb;

    lf_gen_enc_key(e, "traits");
    lf_gen_enc_map_begin(e);
    sb->n = 0;
    lf_gen_sb_cat(sb, co);
    lf_gen_sb_ch(sb, ' ');
    lf_gen_sb_cat(sb, kind);
    lf_gen_enc_kv_str(e, "company", sb->b, sb->n);
    sb->n = 0;
    lf_gen_sb_cat(sb, first);
    lf_gen_sb_ch(sb, ' ');
    lf_gen_sb_cat(sb, last);
    lf_gen_enc_kv_str(e, "name", sb->b, sb->n);
    sb->n = 0;
    lf_gen_sb_slug(sb, first);
    lf_gen_sb_ch(sb, '.');
    for (const char *p = last; *p; p++)
        if (*p != '\'') lf_gen_sb_ch(sb, (char)(*p >= 'A' && *p <= 'Z' ? *p + 32 : *p));
    lf_gen_sb_ch(sb, '@');
    lf_gen_sb_slug(sb, co);
    lf_gen_sb_ch(sb, '-');
    lf_gen_sb_slug(sb, kind);
    lf_gen_sb_cat(sb, ".example");
    lf_gen_enc_kv_str(e, "email", sb->b, sb->n);
    if ((h2 & 7) != 0) { /* some profiles lack a phone */
        sb->n = 0;
        if (region[0] == 'E')
            lf_gen_sb_cat(sb, "+44 20 7946 ");
        else if (region[0] == 'N')
            lf_gen_sb_cat(sb, "+1 415 555 ");
        else if (region[0] == 'A')
            lf_gen_sb_cat(sb, "+65 6123 ");
        else
            lf_gen_sb_cat(sb, "+55 11 4000 ");
        lf_gen_sb_u64(sb, (h2 >> 4) % 10000, 4);
        lf_gen_enc_kv_str(e, "phone", sb->b, sb->n);
    }
    lf_gen_enc_kv_cstr(e, "region", region);
    if (((h2 >> 8) & 15) != 0)
        lf_gen_enc_kv_cstr(e, "industry", gen_industries[(h2 >> 12) % ARRAY_LEN(gen_industries)]);
    lf_gen_enc_kv_int(e, "employees", employees);
    lf_gen_enc_kv_cstr(e, "company_tier", tier);
    lf_gen_enc_kv_cstr(e, "title", gen_titles[(h2 >> 24) % ARRAY_LEN(gen_titles)]);
    lf_gen_enc_map_end(e);
}

static const char *gen_track_name(lf_gen_t *g, lf_kind_t k)
{
    switch (k) {
    case LF_KIND_EMAIL_OPEN:
        return lf_gen_rng_chance(&g->rng, 0.8) ? "Email Opened" : "email_open";
    case LF_KIND_EMAIL_CLICK:
        return lf_gen_rng_chance(&g->rng, 0.8) ? "Email Link Clicked" : "email_click";
    default:
        return lf_kind_name(k);
    }
}

/* The timestamp field, per the defect asked for. */
static void gen_timestamp(lf_gen_t *g, const lf_gen_ev_t *ev)
{
    lf_gen_enc_t *e = &g->enc;
    lf_gen_sb_t *sb = &g->sb;
    lf_gen_enc_key(e, "timestamp");
    sb->n = 0;
    if (ev->bad == LF_BAD_TIMESTAMP_UNPARSABLE) {
        lf_gen_enc_cstr(e, GEN_PICK(&g->rng, gen_bad_ts));
        return;
    }
    if (ev->bad == LF_BAD_TIMESTAMP_RANGE) {
        switch (lf_gen_rng_below(&g->rng, 4)) {
        case 0: /* seconds sent as milliseconds: January 1970 */
            lf_gen_enc_int(e, ev->ts / 1000);
            return;
        case 1:
            lf_gen_sb_iso8601(sb, (int64_t)lf_gen_rng_below(&g->rng, 86400000u) * 30, 0);
            break;
        case 2:
            lf_gen_enc_int(e, 7258118400000LL + ev->ts % 31536000000LL); /* 2200 */
            return;
        default:
            lf_gen_sb_iso8601(sb, 7258118400000LL + ev->ts % 31536000000LL, 0);
            break;
        }
        lf_gen_enc_str(e, sb->b, sb->n);
        return;
    }
    uint32_t r = lf_gen_rng_below(&g->rng, 100);
    if (r < 9) {
        lf_gen_enc_int(e, ev->ts);
        return;
    }
    int off = 0;
    if (r < 12) {
        static const int offs[] = {60, -300, 330, 540, -180};
        off = GEN_PICK(&g->rng, offs);
    }
    lf_gen_sb_iso8601(sb, ev->ts, off);
    lf_gen_enc_str(e, sb->b, sb->n);
}

/* "type" (and "event" for a track) and "messageId". */
static void gen_envelope(lf_gen_t *g, const lf_gen_ev_t *ev)
{
    lf_gen_enc_t *e = &g->enc;
    lf_gen_sb_t id;
    lf_kind_t k = ev->kind;
    if (k == LF_KIND_PAGE_VIEW) {
        lf_gen_enc_kv_cstr(e, "type", "page");
    } else if (k == LF_KIND_IDENTIFY) {
        lf_gen_enc_kv_cstr(e, "type", "identify");
    } else if (k == LF_KIND_QR_SCAN && lf_gen_rng_chance(&g->rng, 0.1)) {
        lf_gen_enc_kv_cstr(e, "type", "qr_scan"); /* a kind directly as the type */
    } else {
        lf_gen_enc_kv_cstr(e, "type", "track");
        lf_gen_enc_kv_cstr(e, "event", gen_track_name(g, k));
    }

    id.n = 0;
    gen_uuid(g, &id);
    if (ev->bad != LF_BAD_MISSING_FIELD) lf_gen_enc_kv_str(e, "messageId", id.b, id.n);
}

/* userId and/or anonymousId; the record's key is userId, else anonymousId. */
static void gen_ids(lf_gen_t *g, const lf_gen_ev_t *ev)
{
    lf_gen_enc_t *e = &g->enc;
    lf_gen_sb_t id;
    g->key_len = 0;
    if (ev->user) {
        id.n = 0;
        gen_user_id(&id, ev->lead);
        if (ev->bad == LF_BAD_ID_TOO_LONG) {
            lf_gen_sb_cat(&id, "-legacy-crm-");
            while (id.n < 160)
                lf_gen_sb_hex(&id, lf_gen_rng_next(&g->rng), 16);
        }
        lf_gen_enc_kv_str(e, "userId", id.b, id.n);
        memcpy(g->key, id.b, id.n);
        g->key_len = (uint32_t)id.n;
    }
    if (ev->anon) {
        id.n = 0;
        gen_anon_id(&id, g->o.seed, ev->lead);
        lf_gen_enc_kv_str(e, "anonymousId", id.b, id.n);
        if (!ev->user) {
            memcpy(g->key, id.b, id.n);
            g->key_len = (uint32_t)id.n;
        }
    }
}

/* LF_BAD_TOO_LARGE: an attachment pasted into a form field, GEN_BIG_BYTES of base64. */
static void gen_attachment(lf_gen_t *g)
{
    lf_gen_enc_t *e = &g->enc;
    lf_gen_enc_key(e, "integrations");
    lf_gen_enc_map_begin(e);
    lf_gen_enc_key(e, "attachment");
    if (e->json) {
        lf_gen_enc_byte(e, '"');
    } else {
        lf_gen_enc_mp_strhdr(e, GEN_BIG_BYTES);
    }
    if (e->len + GEN_BIG_BYTES + 2 <= e->cap) {
        static const char b64[] =
            "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
        uint64_t x = lf_gen_rng_next(&g->rng);
        for (size_t i = 0; i < GEN_BIG_BYTES; i++) {
            e->buf[e->len++] = (uint8_t)b64[(x >> (6 * (i % 10))) & 63];
            if (i % 10 == 9) x = x * 6364136223846793005ULL + 1442695040888963407ULL;
        }
    } else {
        e->overflow = 1;
    }
    if (e->json) lf_gen_enc_byte(e, '"');
    lf_gen_enc_map_end(e);
}

void lf_gen_event_build(lf_gen_t *g, const lf_gen_ev_t *ev)
{
    lf_gen_enc_reset(&g->enc);
    lf_gen_enc_map_begin(&g->enc);
    gen_envelope(g, ev);
    gen_ids(g, ev);
    gen_timestamp(g, ev);
    if (ev->kind == LF_KIND_PAGE_VIEW)
        lf_gen_body_page(g);
    else if (ev->kind == LF_KIND_IDENTIFY)
        gen_traits(g, ev->lead);
    else
        lf_gen_body_track(g, ev);
    if (ev->bad == LF_BAD_TOO_LARGE) gen_attachment(g);
    lf_gen_enc_map_end(&g->enc);
}

/* A producer that sends an array of fields. In JSON mode this is a
 * MessagePack array too (a first byte other than '{' means MessagePack, docs/contract.md "Events
 * in"). */
void lf_gen_event_not_a_map(lf_gen_t *g, uint32_t lead)
{
    lf_gen_enc_t *e = &g->enc;
    lf_gen_sb_t id;
    int json = e->json;
    lf_gen_enc_reset(e);
    e->json = 0;
    id.n = 0;
    gen_user_id(&id, lead);
    memcpy(g->key, id.b, id.n);
    g->key_len = (uint32_t)id.n;
    if (lf_gen_rng_chance(&g->rng, 0.5)) {
        lf_gen_enc_byte(e, 0x93); /* [type, userId, timestamp] */
        lf_gen_enc_cstr(e, "page");
        lf_gen_enc_str(e, id.b, id.n);
        lf_gen_enc_int(e, g->t_base);
    } else {
        lf_gen_enc_cstr(e, "page_view"); /* a bare string */
    }
    e->json = json;
}
