/* Redis Cluster groundwork (cluster.h): CRC16 and hash slots against the Redis Cluster spec's
 * vectors and values a real redis-server's CLUSTER KEYSLOT gave (tests/store/test_keyslot.c
 * compares 10,000 more), leadflow's per-lead keys in one slot, every form of redirection the
 * parser takes and refuses, and the slot map. */
#include <stdint.h>
#include <string.h>

#include "leadflow/alloc.h"
#include "leadflow/cluster.h"
#include "leadflow/keys.h"
#include "test.h"

/* The slot of a C string / of a literal with NUL bytes in it. */
#define SLOT(s) lf_cluster_slot((s), strlen(s))
#define SLOT_LIT(s) lf_cluster_slot((s), sizeof(s) - 1)

/* CRC16/XMODEM a bit at a time, straight from the definition: the table's reference. */
static uint16_t lf_crc16_bitwise(const unsigned char *p, size_t len)
{
    uint16_t crc = 0;
    for (size_t i = 0; i < len; i++) {
        crc ^= (uint16_t)(p[i] << 8);
        for (int b = 0; b < 8; b++)
            crc = (uint16_t)(crc & 0x8000 ? (crc << 1) ^ 0x1021 : crc << 1);
    }
    return crc;
}

/* The spec's check value: CRC16("123456789") = 0x31C3, slot 12739. */
static void test_crc16_check_value(void)
{
    CHECK_INT(lf_cluster_crc16("123456789", 9), 0x31c3);
    CHECK_INT(SLOT("123456789"), 12739);
    CHECK_INT(lf_cluster_crc16("", 0), 0);
    CHECK_INT(lf_cluster_crc16(NULL, 0), 0);
}

/* The table agrees with the bitwise CRC on every single byte, every pair of bytes, and runs of
 * pseudo-random bytes of every length up to 300. */
static void test_crc16_table_matches_the_bitwise_crc(void)
{
    unsigned char b[300];
    for (int i = 0; i < 256; i++) {
        b[0] = (unsigned char)i;
        CHECK_INT(lf_cluster_crc16(b, 1), lf_crc16_bitwise(b, 1));
        for (int j = 0; j < 256; j++) {
            b[1] = (unsigned char)j;
            if (lf_cluster_crc16(b, 2) != lf_crc16_bitwise(b, 2)) CHECK_INT(i * 256 + j, -1);
        }
    }
    uint32_t x = 2463534242u;
    for (size_t i = 0; i < sizeof(b); i++) {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        b[i] = (unsigned char)x;
    }
    for (size_t n = 0; n <= sizeof(b); n++)
        CHECK_INT(lf_cluster_crc16(b, n), lf_crc16_bitwise(b, n));
}

/* Values of the Redis Cluster spec and of CLUSTER KEYSLOT on redis-server 7.0. */
static void test_slots_of_known_keys(void)
{
    CHECK_INT(SLOT("foo"), 12182);
    CHECK_INT(SLOT("bar"), 5061);
    CHECK_INT(SLOT("hello"), 866);
    CHECK_INT(SLOT("key"), 12539);
    CHECK_INT(SLOT("lf:funnel"), 9402);
    CHECK_INT(SLOT("lf:top"), 9643);
}

/* The spec's hash tag examples. */
static void test_hash_tags_of_the_spec(void)
{
    CHECK_INT(SLOT("{user1000}.following"), 3443);
    CHECK_INT(SLOT("{user1000}.followers"), 3443);
    CHECK_INT(SLOT("user1000"), 3443);
    /* "{}" is no tag, the '{' after it is not looked at: the whole key. */
    CHECK_INT(SLOT("foo{}{bar}"), 8363);
    CHECK_INT(SLOT("foo{}{bar}"),
              lf_crc16_bitwise((const unsigned char *)"foo{}{bar}", 10) & 16383);
    /* The first '{', the first '}' after it: the tag is "{bar". */
    CHECK_INT(SLOT("foo{{bar}}zap"), 4015);
    CHECK_INT(SLOT("foo{{bar}}zap"), SLOT("{bar"));
    /* Only the first tag counts. */
    CHECK_INT(SLOT("foo{bar}{zap}"), 5061);
    CHECK_INT(SLOT("foo{bar}{zap}"), SLOT("bar"));
}

/* Braces at the edges: no '}' after the '{', a '}' before it, a '{' last, a one-byte tag. */
static void test_hash_tags_at_the_edges(void)
{
    CHECK_INT(SLOT(""), 0);
    CHECK_INT(lf_cluster_slot(NULL, 0), 0);
    const char *whole[] = {"{", "}", "{}", "}{", "a{", "a{b", "{}}", "{}a}", "}}{", "a}b{c"};
    for (size_t i = 0; i < sizeof(whole) / sizeof(whole[0]); i++) {
        const char *k = whole[i];
        CHECK_INT(SLOT(k), lf_crc16_bitwise((const unsigned char *)k, strlen(k)) & 16383);
    }
    CHECK_INT(SLOT("}{a}"), SLOT("a"));
    CHECK_INT(SLOT("{a}"), SLOT("a"));
    CHECK_INT(SLOT("x{a}"), SLOT("a"));
    CHECK_INT(SLOT("{{}}"), SLOT("{"));
    CHECK_INT(SLOT("{a}}"), SLOT("a"));
    CHECK_INT(SLOT("{a{b}c}"), SLOT("a{b"));
    CHECK_INT(SLOT("{ }"), SLOT(" "));
    /* The tag is taken from within len, not to a NUL or past len. */
    CHECK_INT(lf_cluster_slot("ab{cd}", 4), SLOT("ab{c"));
    CHECK_INT(lf_cluster_slot("ab{cd}", 5), SLOT("ab{cd"));
    CHECK_INT(lf_cluster_slot("ab{cd}", 6), SLOT("cd"));
}

/* Keys are bytes: NUL and 0xff hashed like the rest (values from CLUSTER KEYSLOT). */
static void test_binary_keys(void)
{
    CHECK_INT(SLOT_LIT("a\0b"), 8383);
    CHECK_INT(SLOT_LIT("\xff\0\xff"), 4499);
    CHECK_INT(SLOT_LIT("x{\0\xff}y"), 7920);
    CHECK_INT(SLOT_LIT("x{\0\xff}y"), SLOT_LIT("\0\xff"));
    CHECK(SLOT_LIT("a\0b") != SLOT("a"));
    CHECK_INT(SLOT_LIT("\0{\0}"), SLOT_LIT("\0"));
    CHECK_INT(SLOT_LIT("\0{}\0"), lf_crc16_bitwise((const unsigned char *)"\0{}\0", 4) & 16383);
    CHECK_INT(SLOT_LIT("\xff{\xff\xff}"), SLOT_LIT("\xff\xff"));
}

/* A lead's keys (lead:{id}) and a visitor's (v:{anon}, alias:{anon}) are in one slot, whatever
 * the prefix (with no '{' of its own): the slot of the id up to its first '}' (all of it for an
 * id of no '}', as hashed ids are). */
static void test_a_leads_keys_share_a_slot(void)
{
    static const char *const ids[] = {
        "u-1",
        "a0f3c1d2e4b5a6978877665544332211ffeeddccbbaa99887766554433221100",
        "user@example.com",
        "x",
        "a{b",
        "a}b",
        "{a}",
        "a}}",
    };
    static const char *const prefixes[] = {"lf:", "", "shadow:lf:", "a:b:c:"};
    char k[LF_KEY_MAX];
    for (size_t p = 0; p < sizeof(prefixes) / sizeof(prefixes[0]); p++)
        for (size_t i = 0; i < sizeof(ids) / sizeof(ids[0]); i++) {
            const char *id = ids[i], *close = strchr(id, '}');
            size_t n = strlen(id);
            uint16_t want = lf_cluster_slot(id, close ? (size_t)(close - id) : n);
            int len = lf_key_lead(k, sizeof(k), prefixes[p], id, n);
            CHECK_INT(lf_cluster_slot(k, (size_t)len), want);
            len = lf_key_visitor(k, sizeof(k), prefixes[p], id, n);
            CHECK_INT(lf_cluster_slot(k, (size_t)len), want);
            len = lf_key_alias(k, sizeof(k), prefixes[p], id, n);
            CHECK_INT(lf_cluster_slot(k, (size_t)len), want);
        }
    /* An id of bytes: NUL and 0xff inside the tag. */
    static const char bin[] = "\0id\xff\0";
    int len = lf_key_lead(k, sizeof(k), "lf:", bin, sizeof(bin) - 1);
    CHECK_INT(len, 15);
    CHECK_INT(lf_cluster_slot(k, (size_t)len), lf_cluster_slot(bin, sizeof(bin) - 1));
    len = lf_key_visitor(k, sizeof(k), "lf:", bin, sizeof(bin) - 1);
    CHECK_INT(lf_cluster_slot(k, (size_t)len), lf_cluster_slot(bin, sizeof(bin) - 1));
    /* "lf:lead:{u-1}" is in slot 9520, as is "u-1" (CLUSTER KEYSLOT). */
    CHECK_INT(SLOT("lf:lead:{u-1}"), 9520);
    CHECK_INT(SLOT("u-1"), 9520);
    /* No tag, each key hashed whole in a slot of its own: the empty id (no id: an event's empty
     * string is an absent field) and an id that starts with '}' (a raw id, ids.hmac_key off). */
    CHECK_INT(SLOT("lf:lead:{}"), 15711);
    CHECK_INT(SLOT("lf:alias:{}"), 4461);
    CHECK(SLOT("lf:lead:{}x}") != SLOT("lf:alias:{}x}"));
    /* A prefix with a tag of its own puts every key, shared or per-lead, in its slot. */
    lf_key_lead(k, sizeof(k), "t:{x}:", "u-1", 3);
    CHECK_INT(SLOT(k), SLOT("x"));
    lf_key_funnel(k, sizeof(k), "t:{x}:");
    CHECK_INT(SLOT(k), SLOT("x"));
}

/*---- Redirections ----*/

/* Parses the C string s; the result's code. */
static int lf_parse(const char *s, lf_cluster_redirect_t *r)
{
    return lf_cluster_redirect_parse(s, strlen(s), r);
}

#define CHECK_REDIRECT(s, kind_, slot_, host_, port_)                                              \
    do {                                                                                           \
        lf_cluster_redirect_t r_;                                                                  \
        memset(&r_, 0x5a, sizeof(r_));                                                             \
        CHECK_INT(lf_parse((s), &r_), LF_OK);                                                      \
        CHECK_INT(r_.kind, (kind_));                                                               \
        CHECK_INT(r_.slot, (slot_));                                                               \
        CHECK_STR(r_.host, (host_));                                                               \
        CHECK_INT(r_.port, (port_));                                                               \
    } while (0)

static void test_moved_and_ask_forms(void)
{
    CHECK_REDIRECT("MOVED 3999 127.0.0.1:6381", LF_CLUSTER_MOVED, 3999, "127.0.0.1", 6381);
    CHECK_REDIRECT("ASK 3999 127.0.0.1:6381", LF_CLUSTER_ASK, 3999, "127.0.0.1", 6381);
    CHECK_REDIRECT("MOVED 0 10.0.0.1:1", LF_CLUSTER_MOVED, 0, "10.0.0.1", 1);
    CHECK_REDIRECT("MOVED 16383 10.0.0.1:65535", LF_CLUSTER_MOVED, 16383, "10.0.0.1", 65535);
    CHECK_REDIRECT("ASK 00012 h:06379", LF_CLUSTER_ASK, 12, "h", 6379); /* leading zeros */
    CHECK_REDIRECT("MOVED 12 redis-3.cache.internal:7000", LF_CLUSTER_MOVED, 12,
                   "redis-3.cache.internal", 7000);
    /* IPv6, bare: the port follows the last colon. */
    CHECK_REDIRECT("MOVED 7 ::1:6379", LF_CLUSTER_MOVED, 7, "::1", 6379);
    CHECK_REDIRECT("ASK 7 2001:db8::ff00:42:8329:7000", LF_CLUSTER_ASK, 7, "2001:db8::ff00:42:8329",
                   7000);
    CHECK_REDIRECT("MOVED 7 fe80::1%eth0:7001", LF_CLUSTER_MOVED, 7, "fe80::1%eth0", 7001);
    CHECK_REDIRECT("MOVED 7 [::1]:7001", LF_CLUSTER_MOVED, 7, "[::1]", 7001); /* as sent */
    /* Redis 7, unknown-endpoint: no host, the node that answered. */
    CHECK_REDIRECT("MOVED 3999 :6380", LF_CLUSTER_MOVED, 3999, "", 6380);
    CHECK_REDIRECT("ASK 1 :6380", LF_CLUSTER_ASK, 1, "", 6380);
    /* "?" (a hostname endpoint never set) is passed on; the map refuses it. */
    CHECK_REDIRECT("MOVED 5 ?:6380", LF_CLUSTER_MOVED, 5, "?", 6380);
    /* The longest host, and bytes past len ignored (hiredis's str and len). */
    char buf[400], host[LF_CLUSTER_HOST_MAX];
    memset(host, 'h', sizeof(host) - 1);
    host[sizeof(host) - 1] = '\0';
    snprintf(buf, sizeof(buf), "MOVED 1 %s:2", host);
    CHECK_REDIRECT(buf, LF_CLUSTER_MOVED, 1, host, 2);
    lf_cluster_redirect_t r;
    const char cut[] = "MOVED 3999 127.0.0.1:63819 and more";
    CHECK_INT(lf_cluster_redirect_parse(cut, 25, &r), LF_OK);
    CHECK_INT(r.port, 6381);
    CHECK_INT(lf_cluster_redirect_parse(cut, 26, &r), LF_OK);
    CHECK_INT(r.port, 63819);
}

static void test_retry_later_forms(void)
{
    CHECK_REDIRECT("TRYAGAIN", LF_CLUSTER_TRYAGAIN, 0, "", 0);
    CHECK_REDIRECT("TRYAGAIN Multiple keys request during rehashing of slot", LF_CLUSTER_TRYAGAIN,
                   0, "", 0);
    CHECK_REDIRECT("CLUSTERDOWN", LF_CLUSTER_CLUSTERDOWN, 0, "", 0);
    CHECK_REDIRECT("CLUSTERDOWN The cluster is down", LF_CLUSTER_CLUSTERDOWN, 0, "", 0);
    CHECK_REDIRECT("CLUSTERDOWN Hash slot not served", LF_CLUSTER_CLUSTERDOWN, 0, "", 0);
    CHECK_REDIRECT("CLUSTERDOWN The cluster is down and only accepts read commands",
                   LF_CLUSTER_CLUSTERDOWN, 0, "", 0);
    lf_cluster_redirect_t r;
    CHECK_INT(lf_cluster_redirect_parse("TRYAGAINX", 8, &r), LF_OK); /* by len */
    CHECK_INT(r.kind, LF_CLUSTER_TRYAGAIN);
}

static void test_everything_else_is_refused(void)
{
    static const char *const bad[] = {
        "",
        "ERR unknown command 'FOO'",
        "WRONGTYPE Operation against a key holding the wrong kind of value",
        "MASTERDOWN Link with MASTER is down and replica-serve-stale-data is set to 'no'",
        "LOADING Redis is loading the dataset in memory",
        "CROSSSLOT Keys in request don't hash to the same slot",
        "-MOVED 1 h:1",
        "moved 1 h:1",
        "Moved 1 h:1",
        " MOVED 1 h:1",
        "MOVEDX 1 h:1",
        "MOVED",
        "MOVED ",
        "MOVED 1",
        "MOVED 1 ",
        "MOVED 1 h",
        "MOVED 1 h:",
        "MOVED 1 :",
        "MOVED 1 ::",
        "MOVED 1 h:0",
        "MOVED 1 h:00000",
        "MOVED 1 h:65536",
        "MOVED 1 h:99999",
        "MOVED 1 h:123456",
        "MOVED 1 h:-1",
        "MOVED 1 h:+1",
        "MOVED 1 h:1x",
        "MOVED 1 h:0x10",
        "MOVED 1 h:1 ",
        "MOVED 1 h:1\r\n",
        "MOVED 1 h:1 extra",
        "MOVED 1 h :1",
        "MOVED 1 h\t:1",
        "MOVED 1 h\x7f:1",
        "MOVED 1 h\x01:1",
        "MOVED 16384 h:1",
        "MOVED 65535 h:1",
        "MOVED 99999 h:1",
        "MOVED 000016384 h:1",
        "MOVED 123456 h:1",
        "MOVED -1 h:1",
        "MOVED +1 h:1",
        "MOVED 1a h:1",
        "MOVED 0x1 h:1",
        "MOVED h:1",
        "MOVED  1 h:1",
        "MOVED 1  h:1",
        "MOVED\t1 h:1",
        "ASK",
        "ASK ",
        "ASKING",
        "ASK 1",
        "ASK 1 h",
        "ASK 16384 h:1",
        "ASK 1 h:0",
        "TRYAGAINX",
        "tryagain",
        "TRYAGAIN\tslot",
        "TRY AGAIN",
        "CLUSTERDOWNX",
        "clusterdown The cluster is down",
        "CLUSTER DOWN",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        lf_cluster_redirect_t r;
        memset(&r, 0x5a, sizeof(r));
        if (lf_parse(bad[i], &r) != LF_ERR) {
            lf_test_fail(__FILE__, __LINE__, "accepted \"%s\"", bad[i]);
            return;
        }
        CHECK_INT(r.kind, LF_CLUSTER_REPLY_OTHER); /* *out zeroed */
        CHECK_INT(r.slot, 0);
        CHECK_INT(r.port, 0);
        CHECK_STR(r.host, "");
    }
    lf_cluster_redirect_t r;
    CHECK_INT(lf_cluster_redirect_parse(NULL, 0, &r), LF_ERR);
    /* A NUL inside the host, or anywhere in the target. */
    static const char nul_host[] = "MOVED 1 h\0x:1";
    CHECK_INT(lf_cluster_redirect_parse(nul_host, sizeof(nul_host) - 1, &r), LF_ERR);
    static const char nul_port[] = "MOVED 1 h:1\0";
    CHECK_INT(lf_cluster_redirect_parse(nul_port, sizeof(nul_port) - 1, &r), LF_ERR);
    /* A host one byte too long. */
    char buf[400], host[LF_CLUSTER_HOST_MAX + 1];
    memset(host, 'h', sizeof(host) - 1);
    host[sizeof(host) - 1] = '\0';
    snprintf(buf, sizeof(buf), "MOVED 1 %s:2", host);
    CHECK_INT(lf_parse(buf, &r), LF_ERR);
    CHECK_STR(r.host, "");
    /* Cut by len before the port, or inside "TRYAGAIN". */
    CHECK_INT(lf_cluster_redirect_parse("MOVED 1 h:1", 10, &r), LF_ERR);
    CHECK_INT(lf_cluster_redirect_parse("TRYAGAIN", 7, &r), LF_ERR);
}

/*---- The slot map ----*/

/* Three primaries over the whole range, each with replicas; slots 16000.. unassigned. */
static void test_map_from_cluster_slots(void)
{
    size_t before = lf_alloc_used();
    lf_cluster_map_t *m = lf_malloc(sizeof(*m));
    lf_cluster_map_init(m);
    CHECK_INT(lf_cluster_map_lookup(m, 0), LF_ERR);
    const lf_cluster_addr_t ra[] = {{"10.0.0.4", 7000}, {"10.0.0.5", 7000}};
    const lf_cluster_addr_t rb[] = {{"10.0.0.6", 7000}};
    const lf_cluster_range_t ranges[] = {
        {0, 5460, {"10.0.0.1", 7000}, ra, 2},
        {5461, 10922, {"10.0.0.2", 7000}, rb, 1},
        {10923, 12000, {"", 7002}, NULL, 0},         /* "": the origin */
        {12001, 15999, {"10.0.0.1", 7000}, NULL, 0}, /* a second range of the first */
    };
    CHECK_INT(lf_cluster_map_build(m, ranges, 4, "10.0.0.9"), LF_OK);
    CHECK_INT(m->nnodes, 6);
    int a = lf_cluster_map_lookup(m, 0), b = lf_cluster_map_lookup(m, 5461);
    int c = lf_cluster_map_lookup(m, 12000);
    CHECK_INT(lf_cluster_map_lookup(m, 5460), a);
    CHECK_INT(lf_cluster_map_lookup(m, 10922), b);
    CHECK_INT(lf_cluster_map_lookup(m, 10923), c);
    CHECK_INT(lf_cluster_map_lookup(m, 12001), a);
    CHECK_INT(lf_cluster_map_lookup(m, 15999), a);
    CHECK_INT(lf_cluster_map_lookup(m, 16000), LF_ERR);
    CHECK_INT(lf_cluster_map_lookup(m, 16383), LF_ERR);
    CHECK_INT(lf_cluster_map_lookup(m, 16384), LF_ERR);
    CHECK_INT(lf_cluster_map_lookup(m, 65535), LF_ERR);
    CHECK_STR(lf_cluster_map_node(m, a)->host, "10.0.0.1");
    CHECK_INT(lf_cluster_map_node(m, a)->port, 7000);
    CHECK_INT(lf_cluster_map_node(m, a)->primary, -1);
    CHECK_STR(lf_cluster_map_node(m, b)->host, "10.0.0.2");
    CHECK_STR(lf_cluster_map_node(m, c)->host, "10.0.0.9");
    CHECK_INT(lf_cluster_map_node(m, c)->port, 7002);
    int replicas = 0;
    for (size_t i = 0; i < m->nnodes; i++) {
        const lf_cluster_node_t *n = lf_cluster_map_node(m, (int)i);
        if (n->primary < 0) continue;
        replicas++;
        CHECK_INT(n->primary, strcmp(n->host, "10.0.0.6") == 0 ? b : a);
    }
    CHECK_INT(replicas, 3);
    CHECK(lf_cluster_map_node(m, -1) == NULL);
    CHECK(lf_cluster_map_node(m, 6) == NULL);
    /* A key's node: the slot, then the table. */
    CHECK_INT(lf_cluster_map_lookup(m, SLOT("lf:lead:{u-1}")), b); /* 9520 */
    /* Built again: the old nodes are gone. */
    const lf_cluster_range_t one[] = {{0, 16383, {NULL, 6379}, NULL, 0}};
    CHECK_INT(lf_cluster_map_build(m, one, 1, "127.0.0.1"), LF_OK);
    CHECK_INT(m->nnodes, 1);
    CHECK_INT(lf_cluster_map_lookup(m, 16383), 0);
    CHECK_STR(lf_cluster_map_node(m, 0)->host, "127.0.0.1");
    lf_cluster_map_free(m);
    CHECK_INT(m->nnodes, 0);
    CHECK_INT(lf_cluster_map_lookup(m, 0), LF_ERR);
    lf_free(m);
    CHECK_INT(lf_alloc_used(), before);
}

/* Each bad reply leaves the map empty. */
static void test_map_refuses_a_bad_reply(void)
{
    lf_cluster_map_t *m = lf_malloc(sizeof(*m));
    lf_cluster_map_init(m);
    const lf_cluster_addr_t self[] = {{"10.0.0.1", 7000}};
    const lf_cluster_addr_t unknown[] = {{"?", 7000}};
    char longhost[LF_CLUSTER_HOST_MAX + 1];
    memset(longhost, 'h', sizeof(longhost) - 1);
    longhost[sizeof(longhost) - 1] = '\0';
    const struct {
        lf_cluster_range_t r[2];
        size_t n;
        const char *origin;
    } bad[] = {
        {{{10, 9, {"10.0.0.1", 7000}, NULL, 0}}, 1, "o"},        /* reversed */
        {{{0, 16384, {"10.0.0.1", 7000}, NULL, 0}}, 1, "o"},     /* past the end */
        {{{16384, 16384, {"10.0.0.1", 7000}, NULL, 0}}, 1, "o"}, /* past the end */
        {{{0, 100, {"10.0.0.1", 7000}, NULL, 0},                 /* overlapping */
          {100, 200, {"10.0.0.2", 7000}, NULL, 0}},
         2,
         "o"},
        {{{0, 10, {"10.0.0.1", 0}, NULL, 0}}, 1, "o"},       /* port 0 */
        {{{0, 10, {"?", 7000}, NULL, 0}}, 1, "o"},           /* unknown endpoint */
        {{{0, 10, {longhost, 7000}, NULL, 0}}, 1, "o"},      /* host too long */
        {{{0, 10, {NULL, 7000}, NULL, 0}}, 1, NULL},         /* no origin */
        {{{0, 10, {"", 7000}, NULL, 0}}, 1, NULL},           /* no origin */
        {{{0, 10, {"10.0.0.1", 7000}, self, 1}}, 1, "o"},    /* its own replica */
        {{{0, 10, {"10.0.0.1", 7000}, unknown, 1}}, 1, "o"}, /* a "?" replica */
    };
    const lf_cluster_range_t good[] = {{0, 16383, {"10.0.0.1", 7000}, NULL, 0}};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        CHECK_INT(lf_cluster_map_build(m, good, 1, NULL), LF_OK);
        if (lf_cluster_map_build(m, bad[i].r, bad[i].n, bad[i].origin) != LF_ERR) {
            lf_test_fail(__FILE__, __LINE__, "bad reply %zu accepted", i);
            break;
        }
        CHECK_INT(m->nnodes, 0);
        for (int s = 0; s < LF_CLUSTER_SLOTS; s++)
            if (m->slot_node[s] != LF_CLUSTER_NO_NODE) CHECK_INT(s, -1);
    }
    /* No ranges at all: a valid, empty map. */
    CHECK_INT(lf_cluster_map_build(m, NULL, 0, NULL), LF_OK);
    CHECK_INT(lf_cluster_map_lookup(m, 0), LF_ERR);
    lf_cluster_map_free(m);
    lf_free(m);
}

/* MOVED moves one slot: to a known node, to a new one, to a replica (now a primary), to the
 * host that answered; the rest of the map stays. */
static void test_map_follows_moved(void)
{
    lf_cluster_map_t *m = lf_malloc(sizeof(*m));
    lf_cluster_map_init(m);
    const lf_cluster_addr_t ra[] = {{"10.0.0.3", 7000}};
    const lf_cluster_range_t ranges[] = {
        {0, 8191, {"10.0.0.1", 7000}, ra, 1},
        {8192, 16383, {"10.0.0.2", 7000}, NULL, 0},
    };
    CHECK_INT(lf_cluster_map_build(m, ranges, 2, NULL), LF_OK);
    int a = lf_cluster_map_lookup(m, 0), b = lf_cluster_map_lookup(m, 8192);
    lf_cluster_redirect_t r;
    CHECK_INT(lf_parse("MOVED 100 10.0.0.2:7000", &r), LF_OK);
    CHECK_INT(lf_cluster_map_moved(m, &r, "10.0.0.1"), b);
    CHECK_INT(lf_cluster_map_lookup(m, 100), b);
    CHECK_INT(lf_cluster_map_lookup(m, 99), a);
    CHECK_INT(lf_cluster_map_lookup(m, 101), a);
    CHECK_INT(m->nnodes, 3);
    /* A node not seen before. */
    CHECK_INT(lf_parse("MOVED 16383 10.0.0.7:7001", &r), LF_OK);
    int n = lf_cluster_map_moved(m, &r, NULL);
    CHECK_INT(n, 3);
    CHECK_INT(lf_cluster_map_lookup(m, 16383), 3);
    CHECK_STR(lf_cluster_map_node(m, n)->host, "10.0.0.7");
    CHECK_INT(lf_cluster_map_node(m, n)->port, 7001);
    CHECK_INT(lf_cluster_map_node(m, n)->primary, -1);
    /* The replica after a failover. */
    int rep = -1;
    for (size_t i = 0; i < m->nnodes; i++)
        if (strcmp(m->nodes[i].host, "10.0.0.3") == 0) rep = (int)i;
    CHECK_INT(lf_cluster_map_node(m, rep)->primary, a);
    CHECK_INT(lf_parse("MOVED 5 10.0.0.3:7000", &r), LF_OK);
    CHECK_INT(lf_cluster_map_moved(m, &r, NULL), rep);
    CHECK_INT(lf_cluster_map_node(m, rep)->primary, -1);
    CHECK_INT(lf_cluster_map_lookup(m, 5), rep);
    /* An empty host: the node that answered. */
    CHECK_INT(lf_parse("MOVED 6 :7000", &r), LF_OK);
    CHECK_INT(lf_cluster_map_moved(m, &r, "10.0.0.2"), b);
    CHECK_INT(lf_cluster_map_lookup(m, 6), b);
    /* Refused, the map unchanged: no origin for an empty host, "?", an ASK, a TRYAGAIN. */
    CHECK_INT(lf_cluster_map_moved(m, &r, NULL), LF_ERR);
    CHECK_INT(lf_parse("MOVED 7 ?:7000", &r), LF_OK);
    CHECK_INT(lf_cluster_map_moved(m, &r, "10.0.0.2"), LF_ERR);
    CHECK_INT(lf_parse("ASK 7 10.0.0.2:7000", &r), LF_OK);
    CHECK_INT(lf_cluster_map_moved(m, &r, NULL), LF_ERR);
    CHECK_INT(lf_parse("TRYAGAIN", &r), LF_OK);
    CHECK_INT(lf_cluster_map_moved(m, &r, NULL), LF_ERR);
    CHECK_INT(lf_cluster_map_lookup(m, 7), a);
    CHECK_INT(m->nnodes, 4);
    /* A slot nobody served gets a node. */
    CHECK_INT(lf_cluster_map_build(m, NULL, 0, NULL), LF_OK);
    CHECK_INT(lf_parse("MOVED 42 h:1", &r), LF_OK);
    CHECK_INT(lf_cluster_map_moved(m, &r, NULL), 0);
    CHECK_INT(lf_cluster_map_lookup(m, 42), 0);
    CHECK_INT(lf_cluster_map_lookup(m, 43), LF_ERR);
    lf_cluster_map_free(m);
    lf_free(m);
}

/* The table holds LF_CLUSTER_NODES_MAX nodes; a MOVED to one more is refused. */
static void test_map_node_limit(void)
{
    lf_cluster_map_t *m = lf_malloc(sizeof(*m));
    lf_cluster_map_init(m);
    lf_cluster_redirect_t r = {.kind = LF_CLUSTER_MOVED, .slot = 0};
    for (int i = 0; i < LF_CLUSTER_NODES_MAX; i++) {
        snprintf(r.host, sizeof(r.host), "n%d", i);
        r.port = (uint16_t)(1 + i);
        r.slot = (uint16_t)i;
        if (lf_cluster_map_moved(m, &r, NULL) != i) CHECK_INT(i, -1);
    }
    snprintf(r.host, sizeof(r.host), "one-more");
    r.slot = 9999;
    CHECK_INT(lf_cluster_map_moved(m, &r, NULL), LF_ERR);
    CHECK_INT(lf_cluster_map_lookup(m, 9999), LF_ERR);
    snprintf(r.host, sizeof(r.host), "n7");
    r.port = 8;
    CHECK_INT(lf_cluster_map_moved(m, &r, NULL), 7); /* a known one still can */
    CHECK_INT(lf_cluster_map_lookup(m, 9999), 7);
    lf_cluster_map_free(m);
    lf_free(m);
}

/* Every slot has a tag that lands on it, at most 4 characters of [0-9a-z], the shortest in
 * a fixed order: the same table on every host and in every version. */
static void test_a_tag_for_every_slot(void)
{
    lf_cluster_tags_t *t = lf_malloc(sizeof(*t));
    CHECK_INT(lf_cluster_tags_build(t), LF_OK);
    int longest = 0;
    for (int k = 0; k < LF_CLUSTER_SLOTS; k++) {
        size_t n = strnlen(t->tag[k], LF_CLUSTER_TAG_MAX);
        if (n == 0 || n >= LF_CLUSTER_TAG_MAX ||
            strspn(t->tag[k], "0123456789abcdefghijklmnopqrstuvwxyz") != n) {
            lf_test_fail(__FILE__, __LINE__, "slot %d: tag \"%s\"", k, t->tag[k]);
            break;
        }
        char key[32];
        int kl = snprintf(key, sizeof(key), "lf:top:{%s}", t->tag[k]);
        if (lf_cluster_slot(key, (size_t)kl) != k) {
            lf_test_fail(__FILE__, __LINE__, "slot %d: %s hashes to %u", k, key,
                         lf_cluster_slot(key, (size_t)kl));
            break;
        }
        if ((int)n > longest) longest = (int)n;
    }
    CHECK_INT(longest, 4); /* 36 tags of 1 character, 1104 of 2, 15159 of 3, 85 of 4 */
    /* Pinned: a change of the enumeration would move every shard of a running store. */
    CHECK_STR(t->tag[0], "1bz");
    CHECK_STR(t->tag[12739], "za2");
    CHECK_STR(t->tag[16383], "hia");
    CHECK_STR(t->tag[lf_cluster_slot("0", 1)], "0");
    lf_free(t);
}

void suite_cluster(void)
{
    LF_RUN(test_a_tag_for_every_slot);
    LF_RUN(test_crc16_check_value);
    LF_RUN(test_crc16_table_matches_the_bitwise_crc);
    LF_RUN(test_slots_of_known_keys);
    LF_RUN(test_hash_tags_of_the_spec);
    LF_RUN(test_hash_tags_at_the_edges);
    LF_RUN(test_binary_keys);
    LF_RUN(test_a_leads_keys_share_a_slot);
    LF_RUN(test_moved_and_ask_forms);
    LF_RUN(test_retry_later_forms);
    LF_RUN(test_everything_else_is_refused);
    LF_RUN(test_map_from_cluster_slots);
    LF_RUN(test_map_refuses_a_bad_reply);
    LF_RUN(test_map_follows_moved);
    LF_RUN(test_map_node_limit);
}
