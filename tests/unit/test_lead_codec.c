/* The lead <-> Redis hash codec: every field survives a round trip, including the remembered
 * messageIds with their event seconds, caps, traits and touches; values stay compact (<= 64
 * bytes, few fields) even for the most ids a lead may remember; the layout before (dd, dd2)
 * still reads; malformed values are refused. */
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

/* The dedup fields' text, "dw" then "dw2", ... concatenated; the number of fields. */
static int lf_dedup_text(const lf_argv_t *a, char *text, size_t cap)
{
    int nf = 0;
    text[0] = '\0';
    for (int k = 1; k <= 64; k++) {
        char name[8];
        snprintf(name, sizeof(name), k == 1 ? "dw" : "dw%d", k);
        int found = 0;
        for (size_t i = 0; i + 1 < a->n; i += 2) {
            if (a->lens[i] != strlen(name) || memcmp(a->argv[i], name, a->lens[i])) continue;
            size_t n = strlen(text);
            if (n + a->lens[i + 1] < cap) {
                memcpy(text + n, a->argv[i + 1], a->lens[i + 1]);
                text[n + a->lens[i + 1]] = '\0';
            }
            found = 1;
        }
        if (!found) break;
        nf++;
    }
    return nf;
}

/* Every value fits Redis's compact hash encoding (<= 64 bytes), and the text is safe to
 * read as a string (base64url). Caps are one field per rule. The layout before (one "cap"
 * field) still reads. */
static void test_codec_compact_fields(void)
{
    lf_model_t *m = lf_codec_model();
    lf_arena_t arena;
    lf_argv_t a;
    lf_lead_t l = lf_encoded_busy_lead(m, &arena, &a);
    int caps = 0;
    char old_cap[256] = "";
    for (size_t i = 0; i + 1 < a.n; i += 2) {
        CHECK(a.lens[i + 1] <= 64);
        if (a.lens[i] > 4 && !memcmp(a.argv[i], "cap.", 4)) {
            caps++;
            snprintf(old_cap + strlen(old_cap), sizeof(old_cap) - strlen(old_cap), "%s%.*s:%.*s",
                     old_cap[0] ? ";" : "", (int)a.lens[i] - 4, a.argv[i] + 4, (int)a.lens[i + 1],
                     a.argv[i + 1]);
        }
        CHECK(!(a.lens[i] >= 2 && !memcmp(a.argv[i], "dd", 2))); /* the old layout: not written */
    }
    /* 25 ids an hour apart: 4-character deltas (3,600 s) except the first (0): 25 * 8 + 1 +
     * 24 * 3 = 273 characters, 5 fields. */
    char text[4096];
    CHECK_INT(lf_dedup_text(&a, text, sizeof(text)), 5);
    CHECK_INT(strlen(text), 273);
    for (const char *c = text; *c; c++)
        CHECK(strchr("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_", *c));
    CHECK_INT(caps, l.ncaps);
    lf_str_t f[1] = {lf_str_from("cap")};
    lf_str_t v[1] = {lf_str_from(old_cap)};
    lf_lead_t back;
    lf_err_t err;
    CHECK_INT(lf_lead_decode(&back, lf_str_from("u42"), f, v, 1, m, &err), LF_OK);
    CHECK_INT(back.ncaps, l.ncaps);
    for (int i = 0; i < l.ncaps; i++) {
        CHECK_INT(back.caps[i].rule, l.caps[i].rule);
        CHECK_INT(back.caps[i].n, l.caps[i].n);
    }
    lf_argv_free(&a);
    lf_arena_free(&arena);
    lf_test_model_free(m);
}

/* A typical lead (one event) pays one short field; the most a lead can remember
 * (LF_DEDUP_MAX ids spread to make every delta as long as possible within the longest
 * window) takes 1,836 characters in 29 fields of <= 64 bytes, and reads back exactly. */
static void test_codec_dedup_sizes(void)
{
    lf_model_t *m = lf_codec_model();
    lf_arena_t arena;
    lf_arena_init(&arena, 4096);
    lf_argv_t a;
    lf_argv_init(&a, &arena);
    char text[4096];
    lf_lead_t l;
    lf_lead_init(&l, lf_str_from("u1"));
    lf_transitions_t out = {0};
    lf_event_t ev =
        lf_test_event("5f0c8a9e-3b5d-4c1e-9a7b-2d4e6f8a0b1c", LF_KIND_PAGE_VIEW, "u1", NULL, T0);
    lf_lead_apply(&l, &ev, m, WINDOW_S, &out);
    lf_lead_encode(&l, m, &a);
    CHECK_INT(lf_dedup_text(&a, text, sizeof(text)), 1);
    CHECK_INT(strlen(text), 9);

    /* The worst case: 76 deltas of 32,768 s (4 characters) and 84 of 1,024 s (3). */
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
    CHECK_INT(lf_dedup_text(&a, text, sizeof(text)), 29);
    CHECK_INT(strlen(text), 1836);
    for (size_t i = 0; i + 1 < a.n; i += 2)
        CHECK(a.lens[i + 1] <= 64);
    /* With every other field a lead can have, the hash stays under Redis's 128 fields. */
    CHECK(a.n / 2 + LF_KIND__COUNT + 8 + LF_LEAD_TRAITS_MAX + LF_LEAD_CAPS_MAX + 8 < 128);
    lf_lead_t back;
    CHECK_INT(lf_decode_argv(&back, "u1", &a, m), LF_OK);
    CHECK_INT(back.ndedup, LF_DEDUP_MAX);
    for (int i = 0; i < LF_DEDUP_MAX; i++) {
        CHECK(back.dedup[i].hash == l.dedup[i].hash);
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
    char text[4096];
    CHECK_INT(lf_dedup_text(&a, text, sizeof(text)), 3); /* 16 * 9 characters */
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

static void test_history_fields(void)
{
    /* A realistic worst case (longest stage names and reason, a 4-digit score) stays within
     * Redis's 64-byte limit for the compact hash encoding. */
    lf_transition_t t;
    memset(&t, 0, sizeof(t));
    t.seq = 999;
    t.from = LF_STAGE_OPPORTUNITY;
    t.to = LF_STAGE_DISQUALIFIED;
    t.reason = LF_REASON_SALES_EVENT;
    t.at_ms = 1767225600123;
    t.score = 1234.5678;
    snprintf(t.trigger, sizeof(t.trigger), "%s", "5f0c8a9e-3b5d-4c1e-9a7b-2d4e6f8a0b1c");
    char buf[128];
    int n = lf_transition_history_entry(&t, buf, sizeof(buf));
    CHECK_STR(buf, "999|opportunity|disqualified|sales_event|1767225600123|1234.57");
    CHECK(n <= 64);
    /* Field per seq, rotating over LF_HISTORY_KEEP slots. */
    char f[8];
    lf_history_field(1, f, sizeof(f));
    CHECK_STR(f, "h1");
    lf_history_field(LF_HISTORY_KEEP + 3, f, sizeof(f));
    CHECK_STR(f, "h3");
    CHECK(lf_is_history_field(lf_str_from("h0")));
    CHECK(lf_is_history_field(lf_str_from("h7")));
    CHECK(!lf_is_history_field(lf_str_from("h8")));
    CHECK(!lf_is_history_field(lf_str_from("hx")));
    CHECK(!lf_is_history_field(lf_str_from("h10")));
    CHECK(!lf_is_history_field(lf_str_from("stage")));
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

void suite_lead_codec(void)
{
    LF_RUN(test_hash_diff);
    LF_RUN(test_codec_round_trip);
    LF_RUN(test_history_fields);
    LF_RUN(test_codec_compact_fields);
    LF_RUN(test_codec_dedup_sizes);
    LF_RUN(test_codec_reads_legacy_dd);
    LF_RUN(test_codec_dedup_reload_equals_memory);
    LF_RUN(test_codec_refuses_malformed);
}
