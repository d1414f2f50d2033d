/* The lead <-> Redis hash codec: every field survives a round trip, including the remembered
 * messageIds with their event seconds, caps, traits and touches; values stay compact (<= 64
 * bytes, few fields) even for the most ids a lead may remember; the layouts before (one field
 * per value with h0..h7, cap, dw.., and the older dd..) still read, and the next write has
 * none of their fields; malformed values are refused. test_lead_pack.c has the packed record
 * field by field. */
#include "fixture.h"
#include "leadflow/argv.h"
#include "leadflow/lead_codec.h"
#include "test.h"

#define T0 1767225600000LL
#define WINDOW_S 86400

static lf_lead_t lf_busy_lead(lf_model_t *m)
{
    lf_lead_t l;
    lf_lead_init(&l, lf_str_from("u42"));
    lf_transitions_t out = {0};
    for (int i = 0; i < 40; i++) { /* an hour apart: the last 25 are within 24 h */
        char mid[16];
        snprintf(mid, sizeof(mid), "m%d", i);
        lf_event_t ev = lf_test_event(mid, i % 3 ? LF_KIND_PAGE_VIEW : LF_KIND_FORM_SUBMIT, "u42",
                                      NULL, T0 + i * LF_HOUR_MS);
        ev.path = lf_str_from("/pricing");
        if (i == 3) {
            ev.utm[LF_UTM_SOURCE] = lf_str_from("linkedin");
            ev.utm[LF_UTM_CAMPAIGN] = lf_str_from("q1 launch");
            ev.has_campaign = 1;
        }
        if (i == 5) lf_test_event_trait(&ev, "company_tier", "enterprise");
        lf_lead_apply(&l, &ev, m, WINDOW_S, &out);
        lf_lead_offset_record(&l, i % 2, 1000 + i);
    }
    l.version = 7;
    return l;
}

static lf_model_t *lf_codec_model(void)
{
    lf_model_t *m = lf_test_model();
    lf_test_rule(m, "form", "form_submit", 30, 0, 0);
    lf_test_rule(m, "views", "page_view", 4, 10, LF_DAY_MS);
    lf_test_fit(m, "ent", "company_tier", "enterprise", 20);
    return m;
}

static int lf_decode_argv(lf_lead_t *out, const char *id, const lf_argv_t *a, const lf_model_t *m)
{
    lf_str_t f[128], v[128];
    size_t n = a->n / 2;
    for (size_t i = 0; i < n; i++) {
        f[i] = (lf_str_t){a->argv[2 * i], (uint32_t)a->lens[2 * i]};
        v[i] = (lf_str_t){a->argv[2 * i + 1], (uint32_t)a->lens[2 * i + 1]};
    }
    lf_err_t err;
    return lf_lead_decode(out, lf_str_from(id), f, v, n, m, &err);
}

/* The busy lead of the codec model, and its encoding in *a (arena-backed). */
static lf_lead_t lf_encoded_busy_lead(lf_model_t *m, lf_arena_t *arena, lf_argv_t *a)
{
    lf_lead_t l = lf_busy_lead(m);
    lf_arena_init(arena, 4096);
    lf_argv_init(a, arena);
    lf_lead_encode(&l, m, a);
    return l;
}

static void test_codec_round_trip(void)
{
    lf_model_t *m = lf_codec_model();
    lf_arena_t arena;
    lf_argv_t a;
    lf_lead_t l = lf_encoded_busy_lead(m, &arena, &a);
    lf_lead_t back;
    CHECK_INT(lf_decode_argv(&back, "u42", &a, m), LF_OK);
    CHECK_STR(back.id, "u42");
    CHECK_INT(back.stage, l.stage);
    CHECK_INT(back.seq, l.seq);
    CHECK(back.eng == l.eng); /* exact: shortest round-trip formatting */
    CHECK(back.fit == l.fit);
    CHECK_INT(back.t_ms, l.t_ms);
    CHECK_INT(back.first_seen_ms, l.first_seen_ms);
    CHECK_INT(back.last_seen_ms, l.last_seen_ms);
    CHECK_INT(back.stage_at_ms, l.stage_at_ms);
    CHECK_INT(back.events, 40);
    CHECK_INT(back.counters[LF_KIND_PAGE_VIEW], l.counters[LF_KIND_PAGE_VIEW]);
    CHECK_INT(back.counters[LF_KIND_FORM_SUBMIT], l.counters[LF_KIND_FORM_SUBMIT]);
    CHECK_STR(back.first_touch.source, "linkedin");
    CHECK_STR(back.first_touch.campaign, "q1 launch");
    CHECK_INT(back.ntraits, 1);
    CHECK_STR(back.traits[0].val, "enterprise");
    CHECK_INT(back.version, 7);
    CHECK_INT(back.nsrc, 2);
    CHECK(lf_lead_offset_applied(&back, 1, 1039));
    CHECK(!lf_lead_offset_applied(&back, 1, 1041));
    CHECK_INT(back.ncaps, l.ncaps);
    /* The ids of the last 24 h of event time, with their seconds, in order. */
    CHECK_INT(back.ndedup, 25);
    CHECK_INT(back.ndedup, l.ndedup);
    for (int i = 0; i < l.ndedup; i++) {
        CHECK(back.dedup[i].hash == l.dedup[i].hash);
        CHECK_INT(back.dedup[i].sec, l.dedup[i].sec);
    }
    CHECK(lf_lead_seen_message(&back, lf_str_from("m39")));
    CHECK(lf_lead_seen_message(&back, lf_str_from("m15")));
    CHECK(!lf_lead_seen_message(&back, lf_str_from("m14")));
    /* The decoded lead prunes like the one in memory: an event 2 h later forgets m15, m16. */
    lf_transitions_t out = {0};
    lf_event_t ev = lf_test_event("new", LF_KIND_OTHER, "u42", NULL, T0 + 41 * LF_HOUR_MS);
    lf_lead_apply(&back, &ev, m, WINDOW_S, &out);
    lf_lead_apply(&l, &ev, m, WINDOW_S, &out);
    CHECK(!lf_lead_seen_message(&back, lf_str_from("m16")));
    CHECK(lf_lead_seen_message(&back, lf_str_from("m17")));
    CHECK_INT(back.ndedup, l.ndedup);
    /* Encoding the decoded lead gives the same pairs: the cache and diffs rely on it. */
    lf_lead_t again;
    CHECK_INT(lf_decode_argv(&again, "u42", &a, m), LF_OK);
    lf_argv_t b;
    lf_argv_init(&b, &arena);
    lf_lead_encode(&again, m, &b);
    CHECK_INT(b.n, a.n);
    for (size_t i = 0; i < a.n; i++) {
        CHECK_INT(b.lens[i], a.lens[i]);
        CHECK(memcmp(a.argv[i], b.argv[i], a.lens[i]) == 0);
    }
    lf_argv_free(&a);
    lf_argv_free(&b);
    lf_arena_free(&arena);
    lf_test_model_free(m);
}

/* Fields of the layout before (one per value) that the current one never writes. */
static int lf_is_v1_field(const char *f, size_t n)
{
    if (n == 2 && f[0] == 'h' && f[1] >= '0' && f[1] <= '9') return 1;
    if (n >= 2 && (!memcmp(f, "dw", 2) || !memcmp(f, "dd", 2))) return 1;
    if (memchr(f, '.', n)) return 1; /* n.<kind>, ft.*, lt.*, tr.*, cap.<rule> */
    static const char *const v1[] = {
        "cap",    "o",        "v",          "anon",      "rq",
        "events", "stage_at", "first_seen", "last_seen", "rules_version"};
    for (size_t i = 0; i < sizeof(v1) / sizeof(v1[0]); i++)
        if (n == strlen(v1[i]) && !memcmp(f, v1[i], n)) return 1;
    return 0;
}

/* The fields: the readable seven, then p, p2, ... (their number returned), nothing else;
 * every value <= 64 bytes (Redis's compact hash encoding). */
static int lf_check_layout(const lf_argv_t *a)
{
    static const char *const readable[] = {"stage", "seq", "grade", "score", "fit", "eng", "t"};
    if (a->n < 16) return -1;
    for (size_t i = 0; i < 7; i++)
        if (a->lens[2 * i] != strlen(readable[i]) ||
            memcmp(a->argv[2 * i], readable[i], a->lens[2 * i]))
            return -1;
    int parts = 0;
    for (size_t i = 14; i + 1 < a->n; i += 2) {
        char want[8];
        snprintf(want, sizeof(want), parts ? "p%d" : "p", parts + 1);
        if (a->lens[i] != strlen(want) || memcmp(a->argv[i], want, a->lens[i])) return -1;
        if (a->lens[i + 1] > 64 || lf_is_v1_field(a->argv[i], a->lens[i])) return -1;
        parts++;
    }
    for (size_t i = 1; i < a->n; i += 2)
        if (a->lens[i] > 64) return -1;
    return parts;
}

/* Every value fits Redis's compact hash encoding (<= 64 bytes); the fields are the readable
 * ones and the packed parts, none of the layout before. The layout before's one "cap" field
 * still reads. */
static void test_codec_compact_fields(void)
{
    lf_model_t *m = lf_codec_model();
    lf_arena_t arena;
    lf_argv_t a;
    lf_lead_t l = lf_encoded_busy_lead(m, &arena, &a);
    CHECK(lf_check_layout(&a) >= 1);
    CHECK(l.ncaps >= 1);
    char old_cap[512] = "";
    for (int i = 0; i < l.ncaps; i++) {
        size_t n = strlen(old_cap);
        snprintf(old_cap + n, sizeof(old_cap) - n, "%s%s:", i ? ";" : "",
                 m->eng[l.caps[i].rule].name);
        for (int w = 0; w < l.caps[i].n; w++) {
            n = strlen(old_cap);
            snprintf(old_cap + n, sizeof(old_cap) - n, "%s%lld=%.17g", w ? "," : "",
                     (long long)l.caps[i].window[w], l.caps[i].granted[w]);
        }
    }
    lf_str_t f[1] = {lf_str_from("cap")};
    lf_str_t v[1] = {lf_str_from(old_cap)};
    lf_lead_t back;
    lf_err_t err;
    CHECK_INT(lf_lead_decode(&back, lf_str_from("u42"), f, v, 1, m, &err), LF_OK);
    CHECK_INT(back.layout, LF_LAYOUT_V1);
    CHECK_INT(back.ncaps, l.ncaps);
    for (int i = 0; i < l.ncaps; i++) {
        CHECK_INT(back.caps[i].rule, l.caps[i].rule);
        CHECK_INT(back.caps[i].n, l.caps[i].n);
        for (int w = 0; w < l.caps[i].n; w++) {
            CHECK_INT(back.caps[i].window[w], l.caps[i].window[w]);
            CHECK(back.caps[i].granted[w] == l.caps[i].granted[w]);
        }
    }
    lf_argv_free(&a);
    lf_arena_free(&arena);
    lf_test_model_free(m);
}

/* A typical lead (one event) is the readable fields and one short part; the most a lead can
 * remember (LF_DEDUP_MAX ids spread to make every delta as long as possible within the
 * longest window) stays in parts of <= 64 bytes, well under Redis's 128 fields, and reads
 * back exactly. */
static void test_codec_dedup_sizes(void)
{
    lf_model_t *m = lf_codec_model();
    lf_arena_t arena;
    lf_arena_init(&arena, 4096);
    lf_argv_t a;
    lf_argv_init(&a, &arena);
    lf_lead_t l;
    lf_lead_init(&l, lf_str_from("u1"));
    lf_transitions_t out = {0};
    lf_event_t ev =
        lf_test_event("5f0c8a9e-3b5d-4c1e-9a7b-2d4e6f8a0b1c", LF_KIND_PAGE_VIEW, "u1", NULL, T0);
    lf_lead_apply(&l, &ev, m, WINDOW_S, &out);
    lf_lead_encode(&l, m, &a);
    CHECK_INT(lf_check_layout(&a), 1);

    /* The worst case: 76 deltas of 32,768 s and 84 of 1,024 s. */
    lf_lead_init(&l, lf_str_from("u1"));
    l.exists = 1;
    l.t_ms = T0 + 999;
    int64_t sec = lf_dedup_sec(l.t_ms);
    for (int i = 0; i < LF_DEDUP_MAX; i++) {
        sec -= i < 76 ? 32768 : 1024;
        lf_lead_dedup_add(&l, lf_hash64(&i, sizeof(i)), sec);
    }
    CHECK(lf_dedup_sec(l.t_ms) - sec <= LF_DEDUP_WINDOW_MAX_S);
    CHECK_INT(l.ndedup, LF_DEDUP_MAX);
    lf_argv_reset(&a);
    lf_lead_encode(&l, m, &a);
    int parts = lf_check_layout(&a);
    /* 160 entries of a 3-byte varint and a 6-byte hash: ~1.44 KB, ~23 parts. */
    CHECK(parts >= 20 && parts <= 30);
    CHECK(a.n / 2 < 64);
    lf_lead_t back;
    CHECK_INT(lf_decode_argv(&back, "u1", &a, m), LF_OK);
    CHECK_INT(back.ndedup, LF_DEDUP_MAX);
    for (int i = 0; i < LF_DEDUP_MAX; i++) {
        CHECK(back.dedup[i].hash == (l.dedup[i].hash & LF_DEDUP_MASK));
        CHECK_INT(back.dedup[i].sec, l.dedup[i].sec);
    }
    lf_argv_free(&a);
    lf_arena_free(&arena);
    lf_test_model_free(m);
}

/* The layout before (a ring of 8-character hashes in "dd", "dd2", no times) reads as ids at
 * the lead's t: repeats are still dropped, the ids are pruned like any, and the next write
 * has "dw" only. */
static void test_codec_reads_legacy_dd(void)
{
    lf_model_t *m = lf_codec_model();
    static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    char dd[2][8 * 8 + 1];
    for (int i = 0; i < 16; i++) {
        char mid[16];
        snprintf(mid, sizeof(mid), "m%d", i);
        uint64_t h = lf_hash64(mid, strlen(mid)) & LF_DEDUP_MASK;
        for (int k = 7; k >= 0; k--)
            dd[i / 8][(i % 8) * 8 + (7 - k)] = b64[(h >> (6 * k)) & 63];
    }
    dd[0][64] = dd[1][64] = '\0';
    lf_str_t f[3] = {lf_str_from("dd2"), lf_str_from("t"), lf_str_from("dd")};
    lf_str_t v[3] = {lf_str_from(dd[1]), lf_str_from("1767225600500"), lf_str_from(dd[0])};
    lf_lead_t l;
    lf_err_t err = {0};
    CHECK_INT(lf_lead_decode(&l, lf_str_from("u1"), f, v, 3, m, &err), LF_OK);
    CHECK_INT(l.ndedup, 16);
    CHECK(lf_lead_seen_message(&l, lf_str_from("m0")));
    CHECK(lf_lead_seen_message(&l, lf_str_from("m15")));
    for (int i = 0; i < l.ndedup; i++)
        CHECK_INT(l.dedup[i].sec, T0 / 1000);
    lf_transitions_t out = {0};
    lf_event_t again = lf_test_event("m3", LF_KIND_OTHER, "u1", NULL, T0 + LF_HOUR_MS);
    CHECK_INT(lf_lead_apply(&l, &again, m, WINDOW_S, &out), LF_APPLY_DUPLICATE);
    lf_arena_t arena;
    lf_arena_init(&arena, 4096);
    lf_argv_t a;
    lf_argv_init(&a, &arena);
    lf_lead_encode(&l, m, &a);
    CHECK(lf_check_layout(&a) >= 1); /* no dd.. or dw.. any more: packed parts */
    lf_lead_t back;
    CHECK_INT(lf_decode_argv(&back, "u1", &a, m), LF_OK);
    CHECK_INT(back.ndedup, 16);
    lf_event_t later = lf_test_event("n", LF_KIND_OTHER, "u1", NULL, T0 + LF_DAY_MS + 1000);
    lf_lead_apply(&back, &later, m, WINDOW_S, &out);
    CHECK_INT(back.ndedup, 1);
    CHECK(!lf_lead_seen_message(&back, lf_str_from("m3")));
    lf_argv_free(&a);
    lf_arena_free(&arena);
    lf_test_model_free(m);
}

/* A lead kept in memory and one encoded and decoded after every event (as the cache and a
 * reload do) decide every duplicate alike and encode alike: random times over a few days,
 * out of order, with repeats near and far. */
static void test_codec_dedup_reload_equals_memory(void)
{
    lf_model_t *m = lf_codec_model();
    lf_arena_t arena;
    lf_arena_init(&arena, 4096);
    lf_lead_t mem, disk;
    lf_lead_init(&mem, lf_str_from("u7"));
    uint64_t rng = 42;
    char mids[400][16];
    int64_t times[400];
    for (int i = 0; i < 400; i++) {
        rng = rng * 6364136223846793005ULL + 1442695040888963407ULL;
        int r = (int)(rng >> 33);
        int pick = i;
        if (i > 10 && r % 5 == 0) pick = (r / 5) % i; /* a repeat of an earlier one */
        if (pick == i) {
            snprintf(mids[i], sizeof(mids[i]), "r%d", i);
            times[i] = T0 + (int64_t)(i * 900000LL) - (r % 7 == 0 ? (r % 40) * LF_HOUR_MS : 0);
        } else {
            memcpy(mids[i], mids[pick], sizeof(mids[i]));
            times[i] = times[pick];
        }
        lf_argv_t a;
        lf_argv_init(&a, &arena);
        lf_lead_encode(&mem, m, &a);
        if (i == 0) {
            lf_lead_init(&disk, lf_str_from("u7"));
        } else {
            CHECK_INT(lf_decode_argv(&disk, "u7", &a, m), LF_OK);
        }
        lf_event_t ev =
            lf_test_event(mids[i], i % 3 ? LF_KIND_PAGE_VIEW : LF_KIND_OTHER, "u7", NULL, times[i]);
        ev.path = lf_str_from("/pricing");
        lf_transitions_t out = {0};
        int rm = lf_lead_apply(&mem, &ev, m, WINDOW_S, &out);
        out.n = 0;
        int rd = lf_lead_apply(&disk, &ev, m, WINDOW_S, &out);
        CHECK_INT(rd, rm);
        CHECK_INT(disk.ndedup, mem.ndedup);
        CHECK_INT(disk.t_ms, mem.t_ms);
        lf_argv_free(&a);
    }
    lf_argv_t a, b;
    lf_argv_init(&a, &arena);
    lf_argv_init(&b, &arena);
    lf_lead_encode(&mem, m, &a);
    lf_lead_encode(&disk, m, &b);
    CHECK_INT(b.n, a.n);
    for (size_t i = 0; i < a.n; i++)
        CHECK(a.lens[i] == b.lens[i] && memcmp(a.argv[i], b.argv[i], a.lens[i]) == 0);
    lf_argv_free(&a);
    lf_argv_free(&b);
    lf_arena_free(&arena);
    lf_test_model_free(m);
}

static void test_codec_refuses_malformed(void)
{
    lf_model_t *m = lf_codec_model();
    const char *bad[][2] = {{"seq", "x1"},           {"eng", "nan"},        {"t", ""},
                            {"dd", "abc"},           {"dd", "********"},    {"o", "3-17"},
                            {"cap", "views:nope"},   {"stage", "promoted"}, {"dd2", "abc"},
                            {"dw", "AABCDEFG"},      {"dw", "A*BCDEFGH"},   {"dw", "g"},
                            {"dw", "AABCDEFGHgggg"}, {"dw2", "AABCDEFGH"}};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        lf_str_t f = lf_str_from(bad[i][0]), v = lf_str_from(bad[i][1]);
        lf_lead_t l;
        lf_err_t err = {0};
        if (lf_lead_decode(&l, lf_str_from("u1"), &f, &v, 1, m, &err) != LF_ERR) {
            lf_test_fail(__FILE__, __LINE__, "field %s=\"%s\" was accepted", bad[i][0], bad[i][1]);
            break;
        }
        CHECK(strstr(err.msg, bad[i][0][1] == 'w' ? "dw" : bad[i][0]) != NULL);
    }
    /* Unknown fields (a newer version's) and traits the model dropped are ignored. */
    lf_str_t f[2] = {lf_str_from("future_field"), lf_str_from("tr.shoe_size")};
    lf_str_t v[2] = {lf_str_from("1"), lf_str_from("44")};
    lf_lead_t l;
    lf_err_t err;
    CHECK_INT(lf_lead_decode(&l, lf_str_from("u1"), f, v, 2, m, &err), LF_OK);
    CHECK(l.exists);
    CHECK_INT(l.ntraits, 0);
    lf_test_model_free(m);
}

/* The layout before kept the last stage changes in h<seq % 8> = "seq|from|to|reason|at|score":
 * they decode into lead->history in seq order (whatever the field order), the next write has
 * no h-field and the history in its packed part; a malformed entry is refused. */
static void test_codec_v1_history_into_lead(void)
{
    lf_model_t *m = lf_codec_model();
    lf_str_t f[12], v[12];
    size_t n = 0;
    f[n] = lf_str_from("stage");
    v[n++] = lf_str_from("sal");
    f[n] = lf_str_from("seq");
    v[n++] = lf_str_from("10");
    f[n] = lf_str_from("t");
    v[n++] = lf_str_from("1767225600500");
    /* Seqs 3..10 in slots h3..h7, h0..h2 (seq 9 in h1, 10 in h2), listed out of order. */
    static char entries[8][96];
    static const char *const names[8] = {"h2", "h0", "h1", "h7", "h3", "h6", "h4", "h5"};
    static const int seqs[8] = {10, 8, 9, 7, 3, 6, 4, 5};
    for (int i = 0; i < 8; i++) {
        snprintf(entries[i], sizeof(entries[i]), "%d|%s|%s|%s|%lld|%d.25", seqs[i],
                 seqs[i] % 2 ? "mql" : "nurture",
                 seqs[i] == 10 ? "sal"
                 : seqs[i] % 2 ? "nurture"
                               : "mql",
                 seqs[i] == 10 ? "sales_event"
                 : seqs[i] % 2 ? "score_decay"
                               : "score_threshold",
                 (long long)(T0 + seqs[i] * 1000), 40 + seqs[i]);
        f[n] = lf_str_from(names[i]);
        v[n++] = lf_str_from(entries[i]);
    }
    lf_lead_t l;
    lf_err_t err = {0};
    CHECK_INT(lf_lead_decode(&l, lf_str_from("u1"), f, v, n, m, &err), LF_OK);
    CHECK_INT(l.layout, LF_LAYOUT_V1);
    CHECK_INT(l.nhistory, 8);
    for (int i = 0; i < 8; i++) {
        CHECK_INT(l.history[i].seq, 3 + i);
        CHECK_INT(l.history[i].at_ms, T0 + (3 + i) * 1000);
        CHECK(l.history[i].score == 40 + (3 + i) + 0.25);
    }
    CHECK_INT(l.history[7].from, LF_STAGE_NURTURE);
    CHECK_INT(l.history[7].to, LF_STAGE_SAL);
    CHECK_INT(l.history[7].reason, LF_REASON_SALES_EVENT);
    CHECK_INT(l.history[0].from, LF_STAGE_MQL);
    CHECK_INT(l.history[0].to, LF_STAGE_NURTURE);
    CHECK_INT(l.history[0].reason, LF_REASON_SCORE_DECAY);
    /* The next write: the current layout, the history packed. */
    lf_arena_t arena;
    lf_arena_init(&arena, 4096);
    lf_argv_t a;
    lf_argv_init(&a, &arena);
    lf_lead_encode(&l, m, &a);
    CHECK(lf_check_layout(&a) >= 1);
    lf_lead_t back;
    CHECK_INT(lf_decode_argv(&back, "u1", &a, m), LF_OK);
    CHECK_INT(back.layout, 0);
    CHECK_INT(back.nhistory, 8);
    for (int i = 0; i < 8; i++) {
        CHECK(back.history[i].seq == l.history[i].seq && back.history[i].to == l.history[i].to);
        CHECK(back.history[i].at_ms == l.history[i].at_ms);
        CHECK(back.history[i].score == l.history[i].score);
    }
    /* Malformed entries. */
    static const char *const bad[] = {
        "1|lead|mql",         "x|lead|mql|identify|0|1",   "1|lead|boss|identify|0|1",
        "1|lead|mql|why|0|1", "1|lead|mql|identify|0|abc", "0|lead|mql|identify|0|1"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        lf_str_t bf = lf_str_from("h1"), bv = lf_str_from(bad[i]);
        if (lf_lead_decode(&back, lf_str_from("u1"), &bf, &bv, 1, m, &err) != LF_ERR) {
            lf_test_fail(__FILE__, __LINE__, "h1=\"%s\" was accepted", bad[i]);
            break;
        }
        CHECK(strstr(err.msg, "h1") != NULL);
    }
    lf_argv_free(&a);
    lf_arena_free(&arena);
    lf_test_model_free(m);
}

/* Malformed readable fields of the current layout are refused too, naming the field; a
 * packed part that is not a record is refused with the lead's id. */
static void test_codec_refuses_malformed_current(void)
{
    lf_model_t *m = lf_codec_model();
    lf_arena_t arena;
    lf_argv_t a;
    lf_encoded_busy_lead(m, &arena, &a);
    static const char *const fields[] = {"seq", "eng", "t", "stage", "fit"};
    static const char *const values[] = {"-3", "nan", "12x", "promoted", ""};
    for (size_t k = 0; k < 5; k++) {
        lf_str_t f[128], v[128];
        size_t n = a.n / 2;
        for (size_t i = 0; i < n; i++) {
            f[i] = (lf_str_t){a.argv[2 * i], (uint32_t)a.lens[2 * i]};
            v[i] = (lf_str_t){a.argv[2 * i + 1], (uint32_t)a.lens[2 * i + 1]};
            if (lf_str_eq(f[i], fields[k])) v[i] = lf_str_from(values[k]);
        }
        lf_lead_t l;
        lf_err_t err = {0};
        if (lf_lead_decode(&l, lf_str_from("u42"), f, v, n, m, &err) != LF_ERR) {
            lf_test_fail(__FILE__, __LINE__, "%s=\"%s\" was accepted", fields[k], values[k]);
            break;
        }
        CHECK(strstr(err.msg, fields[k]) != NULL);
    }
    lf_str_t f = lf_str_from("p"), v = lf_str_from("not a record");
    lf_lead_t l;
    lf_err_t err = {0};
    CHECK_INT(lf_lead_decode(&l, lf_str_from("u42"), &f, &v, 1, m, &err), LF_ERR);
    CHECK(strstr(err.msg, "u42") != NULL);
    lf_argv_free(&a);
    lf_arena_free(&arena);
    lf_test_model_free(m);
}

/* The HSET/HDEL fallback's difference: changed and new pairs, dropped fields; nothing for
 * an unchanged one, whatever the order. */
static void test_hash_diff(void)
{
    lf_arena_t a;
    lf_arena_init(&a, 1024);
    lf_str_t bf[] = {lf_str_from("stage"), lf_str_from("score"), lf_str_from("h1"),
                     lf_str_from("x.note"), lf_str_from("events")};
    lf_str_t bv[] = {lf_str_from("lead"), lf_str_from("13"), lf_str_from("1|visitor|lead"),
                     lf_str_from("hi"), lf_str_from("1")};
    lf_argv_t after, changed, deleted;
    lf_argv_init_scratch(&after, &a);
    lf_argv_init_scratch(&changed, &a);
    lf_argv_init_scratch(&deleted, &a);
    const char *pairs[] = {"events", "2",           "stage", "lead", "score",
                           "14",     "n.page_view", "1",     "h1",   "1|visitor|lead"};
    for (size_t i = 0; i < sizeof(pairs) / sizeof(pairs[0]); i++)
        lf_argv_add_ref(&after, pairs[i], strlen(pairs[i]));
    lf_hash_diff(bf, bv, 5, &after, &changed, &deleted);
    CHECK(changed.n == 6);
    const char *want[] = {"events", "2", "score", "14", "n.page_view", "1"};
    for (size_t i = 0; i < 6 && i < changed.n; i++)
        CHECK(changed.lens[i] == strlen(want[i]) &&
              !memcmp(changed.argv[i], want[i], changed.lens[i]));
    CHECK(deleted.n == 1 && deleted.lens[0] == 6 && !memcmp(deleted.argv[0], "x.note", 6));
    /* No base: everything is new. */
    lf_argv_reset(&changed);
    lf_argv_reset(&deleted);
    lf_hash_diff(NULL, NULL, 0, &after, &changed, &deleted);
    CHECK(changed.n == after.n && deleted.n == 0);
    lf_arena_free(&a);
}

/* The HSET/HDEL fallback between records of the current layout: a record that shrinks by
 * packed parts has the stale ones deleted (a left-over p3 would be joined to the new record
 * and make it unreadable); a record rewritten from the layout before loses every old field.
 * The stored hash with the difference applied decodes to the new lead. */
static void test_hash_diff_between_layouts(void)
{
    lf_model_t *m = lf_codec_model();
    lf_arena_t arena;
    lf_argv_t big;
    lf_lead_t l = lf_encoded_busy_lead(m, &arena, &big); /* 25 ids: several parts */
    int nbig = lf_check_layout(&big);
    CHECK(nbig >= 3);
    lf_lead_t small = l;
    small.ndedup = 1;
    small.version++;
    lf_argv_t after, changed, deleted;
    lf_argv_init_scratch(&after, &arena);
    lf_argv_init_scratch(&changed, &arena);
    lf_argv_init_scratch(&deleted, &arena);
    lf_lead_encode(&small, m, &after);
    int nsmall = lf_check_layout(&after);
    CHECK(nsmall < nbig);
    lf_str_t bf[128], bv[128];
    size_t bn = big.n / 2;
    for (size_t i = 0; i < bn; i++) {
        bf[i] = (lf_str_t){big.argv[2 * i], (uint32_t)big.lens[2 * i]};
        bv[i] = (lf_str_t){big.argv[2 * i + 1], (uint32_t)big.lens[2 * i + 1]};
    }
    lf_hash_diff(bf, bv, bn, &after, &changed, &deleted);
    CHECK_INT(deleted.n, (size_t)(nbig - nsmall));
    /* Apply: the stored fields not deleted, with the changed values, plus the new ones. */
    lf_str_t f[128], v[128];
    size_t n = 0;
    for (size_t i = 0; i < bn; i++) {
        int gone = 0;
        for (size_t d = 0; d < deleted.n; d++)
            gone |= deleted.lens[d] == bf[i].len && !memcmp(deleted.argv[d], bf[i].ptr, bf[i].len);
        if (gone) continue;
        f[n] = bf[i];
        v[n] = bv[i];
        for (size_t c = 0; c + 1 < changed.n; c += 2)
            if (changed.lens[c] == bf[i].len && !memcmp(changed.argv[c], bf[i].ptr, bf[i].len))
                v[n] = (lf_str_t){changed.argv[c + 1], (uint32_t)changed.lens[c + 1]};
        n++;
    }
    for (size_t c = 0; c + 1 < changed.n; c += 2) {
        int known = 0;
        for (size_t i = 0; i < bn; i++)
            known |= changed.lens[c] == bf[i].len && !memcmp(changed.argv[c], bf[i].ptr, bf[i].len);
        if (known) continue;
        f[n] = (lf_str_t){changed.argv[c], (uint32_t)changed.lens[c]};
        v[n++] = (lf_str_t){changed.argv[c + 1], (uint32_t)changed.lens[c + 1]};
    }
    lf_lead_t back;
    lf_err_t err = {0};
    CHECK_INT(lf_lead_decode(&back, lf_str_from("u42"), f, v, n, m, &err), LF_OK);
    CHECK_INT(back.ndedup, 1);
    CHECK_INT(back.version, small.version);
    /* From the layout before: every old field deleted. */
    lf_str_t of[] = {lf_str_from("stage"),       lf_str_from("h3"),        lf_str_from("dw"),
                     lf_str_from("n.page_view"), lf_str_from("cap.views"), lf_str_from("v")};
    lf_str_t ov[] = {lf_str_from("lead"), lf_str_from("x"), lf_str_from("x"),
                     lf_str_from("1"),    lf_str_from("x"), lf_str_from("3")};
    lf_argv_reset(&changed);
    lf_argv_reset(&deleted);
    lf_hash_diff(of, ov, 6, &after, &changed, &deleted);
    CHECK_INT(deleted.n, 5);
    CHECK_INT(changed.n, after.n - (lf_str_eq(ov[0], lf_stage_name(small.stage)) ? 2 : 0));
    lf_argv_free(&big);
    lf_arena_free(&arena);
    lf_test_model_free(m);
}

void suite_lead_codec(void)
{
    LF_RUN(test_hash_diff_between_layouts);
    LF_RUN(test_hash_diff);
    LF_RUN(test_codec_round_trip);
    LF_RUN(test_codec_v1_history_into_lead);
    LF_RUN(test_codec_compact_fields);
    LF_RUN(test_codec_dedup_sizes);
    LF_RUN(test_codec_reads_legacy_dd);
    LF_RUN(test_codec_dedup_reload_equals_memory);
    LF_RUN(test_codec_refuses_malformed);
    LF_RUN(test_codec_refuses_malformed_current);
}
