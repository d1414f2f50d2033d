/* lf_cluster_slot (cluster.h) against Redis's own CLUSTER KEYSLOT, on a redis-server of this
 * test's own started with --cluster-enabled yes (its port, and a temporary directory for its
 * cluster-config-file; CLUSTER KEYSLOT answers with no slot assigned): 10,000 keys, every one
 * in the same slot on both sides. The keys: every arrangement of '{', '}' and other bytes in 7
 * positions, leadflow's key names (keys.h) under several prefixes for ids of every kind, and
 * pseudo-random binary keys rich in NUL, 0xff and braces. Sent with hiredis's binary-safe %b,
 * pipelined. */
#include <arpa/inet.h>
#include <dirent.h>
#include <hiredis/hiredis.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "../unit/test.h"
#include "leadflow/cluster.h"
#include "leadflow/keys.h"
#include "store_test.h"

#define LF_KS_KEYS 10000
#define LF_KS_BATCH 500

typedef struct {
    char key[LF_KEY_MAX];
    size_t len;
} lf_ks_key_t;

/* A cluster-enabled redis-server in dir, on a free loopback port. */
typedef struct {
    pid_t pid;
    int port;
    char dir[64];
    redisContext *c;
} lf_ks_server_t;

/* Stops the server and removes its directory and what it wrote there (nodes.conf). */
static void lf_ks_stop(lf_ks_server_t *s)
{
    if (s->c) redisFree(s->c);
    s->c = NULL;
    if (s->pid > 0) {
        kill(s->pid, SIGTERM);
        waitpid(s->pid, NULL, 0);
        s->pid = 0;
    }
    if (!s->dir[0]) return;
    DIR *d = opendir(s->dir);
    if (d) {
        struct dirent *e;
        char path[sizeof(s->dir) + 300];
        while ((e = readdir(d))) {
            if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0) continue;
            snprintf(path, sizeof(path), "%s/%s", s->dir, e->d_name);
            unlink(path);
        }
        closedir(d);
    }
    rmdir(s->dir);
    s->dir[0] = '\0';
}

/* LF_OK with s->c connected to a cluster-enabled redis-server answering PING. */
static int lf_ks_start(lf_ks_server_t *s)
{
    memset(s, 0, sizeof(*s));
    snprintf(s->dir, sizeof(s->dir), "/tmp/lf-keyslot-XXXXXX");
    if (!mkdtemp(s->dir)) {
        s->dir[0] = '\0';
        return LF_ERR;
    }
    char conf[sizeof(s->dir) + 16];
    snprintf(conf, sizeof(conf), "%s/nodes.conf", s->dir);
    for (int attempt = 0; attempt < 5; attempt++) {
        int port = lf_store_test_free_port();
        if (port < 0) return LF_ERR;
        char ps[16];
        snprintf(ps, sizeof(ps), "%d", port);
        pid_t pid = fork();
        if (pid < 0) return LF_ERR;
        if (pid == 0) {
            if (!freopen("/dev/null", "w", stdout)) _exit(127);
            execlp("redis-server", "redis-server", "--port", ps, "--bind", "127.0.0.1", "--save",
                   "", "--appendonly", "no", "--dir", s->dir, "--cluster-enabled", "yes",
                   "--cluster-config-file", conf, (char *)NULL);
            _exit(127);
        }
        s->pid = pid;
        for (int i = 0; i < 200; i++) { /* up to 10 s */
            struct timespec ts = {0, 50 * 1000 * 1000};
            nanosleep(&ts, NULL);
            int status;
            if (waitpid(pid, &status, WNOHANG) == pid) { /* exited: port taken? */
                s->pid = 0;
                break;
            }
            redisContext *c = redisConnect("127.0.0.1", port);
            redisReply *r = c && !c->err ? redisCommand(c, "PING") : NULL;
            int up = r && r->type == REDIS_REPLY_STATUS;
            if (r) freeReplyObject(r);
            if (up) {
                s->c = c;
                s->port = port;
                return LF_OK;
            }
            if (c) redisFree(c);
        }
        if (s->pid > 0) {
            kill(s->pid, SIGKILL);
            waitpid(s->pid, NULL, 0);
            s->pid = 0;
        }
    }
    return LF_ERR;
}

/* xorshift64*: the same keys on every run. */
static uint64_t lf_ks_rand(uint64_t *x)
{
    *x ^= *x >> 12;
    *x ^= *x << 25;
    *x ^= *x >> 27;
    return *x * 2685821657736338717ull;
}

/* One byte of a random key: NUL, 0xff, '{' and '}' an eighth of the time each. */
static char lf_ks_byte(uint64_t *x)
{
    uint64_t v = lf_ks_rand(x);
    static const char special[] = {'\0', (char)0xff, '{', '}'};
    return (v & 7) < 4 ? special[v & 3] : (char)(v >> 8);
}

/* An id of one of several kinds: hex (as ids.hmac_key makes them), text, binary, with braces. */
static size_t lf_ks_id(uint64_t *x, char *id, size_t cap)
{
    uint64_t kind = lf_ks_rand(x) % 5;
    size_t n = 0;
    if (kind == 0) { /* 64 hex digits */
        for (; n < 64 && n < cap; n++)
            id[n] = "0123456789abcdef"[lf_ks_rand(x) & 15];
    } else if (kind == 1) { /* a user id or e-mail address */
        n = (size_t)snprintf(id, cap, "user%llu@example.com",
                             (unsigned long long)(lf_ks_rand(x) % 1000000));
    } else if (kind == 2) { /* an anonymous id like a UUID */
        n = (size_t)snprintf(id, cap, "%08llx-%04llx-4%03llx-a%03llx-%012llx",
                             (unsigned long long)(lf_ks_rand(x) & 0xffffffffu),
                             (unsigned long long)(lf_ks_rand(x) & 0xffff),
                             (unsigned long long)(lf_ks_rand(x) & 0xfff),
                             (unsigned long long)(lf_ks_rand(x) & 0xfff),
                             (unsigned long long)(lf_ks_rand(x) & 0xffffffffffffull));
    } else { /* binary, braces included, 1 to LF_ID_MAX bytes */
        size_t len = 1 + (size_t)(lf_ks_rand(x) % (kind == 3 ? 16 : LF_ID_MAX));
        for (; n < len && n < cap; n++)
            id[n] = lf_ks_byte(x);
    }
    return n;
}

/* keys[n] is what `call` (a keys.h builder writing keys[n].key) made; n moves on. */
#define LF_KS_ADD(call)                                                                            \
    do {                                                                                           \
        int len_ = (call);                                                                         \
        keys[n].len = (size_t)len_;                                                                \
        n++;                                                                                       \
    } while (0)

/* Fills keys[0..LF_KS_KEYS). */
static void lf_ks_make_keys(lf_ks_key_t *keys)
{
    size_t n = 0;
    /* Every string of 7 positions, each '{', '}' or a byte of its own ('a' + position, or NUL
     * at position 3): 3^7 = 2187 keys, braces in every position and order. */
    for (int code = 0; code < 2187; code++) {
        int c = code;
        for (int p = 0; p < 7; p++, c /= 3)
            keys[n].key[p] = c % 3 == 0 ? '{' : c % 3 == 1 ? '}' : p == 3 ? '\0' : (char)('a' + p);
        keys[n++].len = 7;
    }
    /* leadflow's key names: a lead's and a visitor's keys for 800 ids, under 4 prefixes, and
     * the shared keys under each prefix. */
    static const char *const prefixes[] = {"lf:", "", "shadow:{lf}:", "}{:"};
    uint64_t x = 0x9e3779b97f4a7c15ull;
    char id[LF_ID_MAX];
    for (int i = 0; i < 800; i++) {
        const char *prefix = prefixes[i % 4];
        size_t idlen = lf_ks_id(&x, id, sizeof(id));
        LF_KS_ADD(lf_key_lead(keys[n].key, LF_KEY_MAX, prefix, id, idlen));
        LF_KS_ADD(lf_key_visitor(keys[n].key, LF_KEY_MAX, prefix, id, idlen));
        LF_KS_ADD(lf_key_alias(keys[n].key, LF_KEY_MAX, prefix, id, idlen));
    }
    for (size_t p = 0; p < sizeof(prefixes) / sizeof(prefixes[0]); p++) {
        const char *pre = prefixes[p];
        for (int st = 0; st < LF_STAGE__COUNT; st++)
            LF_KS_ADD(lf_key_stage(keys[n].key, LF_KEY_MAX, pre, (lf_stage_t)st));
        LF_KS_ADD(lf_key_funnel(keys[n].key, LF_KEY_MAX, pre));
        LF_KS_ADD(lf_key_top(keys[n].key, LF_KEY_MAX, pre));
        LF_KS_ADD(lf_key_epoch(keys[n].key, LF_KEY_MAX, pre));
        LF_KS_ADD(lf_key_instances(keys[n].key, LF_KEY_MAX, pre));
        LF_KS_ADD(lf_key_instance(keys[n].key, LF_KEY_MAX, pre, "host-1:42"));
        LF_KS_ADD(lf_key_control(keys[n].key, LF_KEY_MAX, pre, "reload"));
        for (int part = 0; part < 8; part++)
            LF_KS_ADD(
                lf_key_outbox(keys[n].key, LF_KEY_MAX, pre, "leadflow.stage-transitions", part));
        LF_KS_ADD(lf_key_watermarks(keys[n].key, LF_KEY_MAX, pre, "leadflow", "leadflow.events"));
    }
    /* The rest: random binary keys of 0 to 48 bytes. */
    while (n < LF_KS_KEYS) {
        size_t len = (size_t)(lf_ks_rand(&x) % 49);
        for (size_t i = 0; i < len; i++)
            keys[n].key[i] = lf_ks_byte(&x);
        keys[n++].len = len;
    }
}

/* The key as C escapes, for a failure's message. */
static const char *lf_ks_show(const lf_ks_key_t *k)
{
    static char out[LF_KEY_MAX * 4 + 1];
    size_t o = 0;
    for (size_t i = 0; i < k->len && o + 5 < sizeof(out); i++) {
        unsigned char c = (unsigned char)k->key[i];
        if (c >= 0x20 && c < 0x7f && c != '\\')
            out[o++] = (char)c;
        else
            o += (size_t)snprintf(out + o, sizeof(out) - o, "\\x%02x", c);
    }
    out[o] = '\0';
    return out;
}

static void test_our_slots_are_cluster_keyslot(void)
{
    lf_ks_key_t *keys = calloc(LF_KS_KEYS, sizeof(*keys));
    lf_ks_server_t s = {0};
    if (!keys || lf_ks_start(&s) != LF_OK) {
        free(keys);
        lf_ks_stop(&s);
        lf_test_fail(__FILE__, __LINE__, "cannot start a cluster-enabled redis-server");
        return;
    }
    lf_ks_make_keys(keys);
    /* The sample has what it is meant to: empty keys, NUL and 0xff bytes, tagged keys. */
    int empty = 0, nul = 0, ff = 0, tagged = 0;
    for (size_t i = 0; i < LF_KS_KEYS; i++) {
        empty += keys[i].len == 0;
        nul += memchr(keys[i].key, '\0', keys[i].len) != NULL;
        ff += memchr(keys[i].key, 0xff, keys[i].len) != NULL;
        tagged += lf_cluster_slot(keys[i].key, keys[i].len) !=
                  (lf_cluster_crc16(keys[i].key, keys[i].len) & (LF_CLUSTER_SLOTS - 1));
    }
    int checked = 0, wrong = 0;
    for (size_t b = 0; b < LF_KS_KEYS && !s.c->err; b += LF_KS_BATCH) {
        size_t end = b + LF_KS_BATCH < LF_KS_KEYS ? b + LF_KS_BATCH : LF_KS_KEYS;
        for (size_t i = b; i < end; i++)
            redisAppendCommand(s.c, "CLUSTER KEYSLOT %b", keys[i].key, keys[i].len);
        for (size_t i = b; i < end; i++) {
            redisReply *r = NULL;
            if (redisGetReply(s.c, (void **)&r) != REDIS_OK || !r) break;
            long long want = r->type == REDIS_REPLY_INTEGER ? r->integer : -1;
            freeReplyObject(r);
            uint16_t got = lf_cluster_slot(keys[i].key, keys[i].len);
            checked++;
            if (got != want && wrong++ < 5)
                lf_test_fail(__FILE__, __LINE__, "key \"%s\" (%zu bytes): slot %u, Redis says %lld",
                             lf_ks_show(&keys[i]), keys[i].len, got, want);
        }
    }
    const char *err = s.c->err ? s.c->errstr : "";
    char errbuf[128];
    snprintf(errbuf, sizeof(errbuf), "%s", err);
    lf_ks_stop(&s);
    free(keys);
    if (errbuf[0]) lf_test_fail(__FILE__, __LINE__, "connection: %s", errbuf);
    CHECK_INT(wrong, 0);
    CHECK_INT(checked, LF_KS_KEYS);
    CHECK(empty > 0 && nul > 1000 && ff > 1000 && tagged > 1000);
    printf("  %d keys, Redis agrees on each (%d empty, %d with NUL, %d with 0xff, %d hashed by "
           "a tag)\n",
           checked, empty, nul, ff, tagged);
}

/* The per-slot tags (lf_cluster_tags_build): Redis puts "{tag}" of slot k in slot k, for
 * all 16384. */
static void test_every_slot_tag_is_in_its_slot(void)
{
    lf_cluster_tags_t *t = calloc(1, sizeof(*t));
    lf_ks_server_t s = {0};
    if (!t || lf_cluster_tags_build(t) != LF_OK || lf_ks_start(&s) != LF_OK) {
        free(t);
        lf_ks_stop(&s);
        lf_test_fail(__FILE__, __LINE__,
                     "cannot build the tags or start a cluster-enabled "
                     "redis-server");
        return;
    }
    int checked = 0, wrong = 0;
    for (int b = 0; b < LF_CLUSTER_SLOTS && !s.c->err; b += LF_KS_BATCH) {
        int end = b + LF_KS_BATCH < LF_CLUSTER_SLOTS ? b + LF_KS_BATCH : LF_CLUSTER_SLOTS;
        for (int k = b; k < end; k++)
            redisAppendCommand(s.c, "CLUSTER KEYSLOT lf:top:{%s}", t->tag[k]);
        for (int k = b; k < end; k++) {
            redisReply *r = NULL;
            if (redisGetReply(s.c, (void **)&r) != REDIS_OK || !r) break;
            long long want = r->type == REDIS_REPLY_INTEGER ? r->integer : -1;
            freeReplyObject(r);
            checked++;
            if (want != k && wrong++ < 5)
                lf_test_fail(__FILE__, __LINE__, "tag \"%s\" of slot %d: Redis says %lld",
                             t->tag[k], k, want);
        }
    }
    lf_ks_stop(&s);
    free(t);
    CHECK_INT(wrong, 0);
    CHECK_INT(checked, LF_CLUSTER_SLOTS);
}

void suite_keyslot(void)
{
    LF_RUN(test_our_slots_are_cluster_keyslot);
    LF_RUN(test_every_slot_tag_is_in_its_slot);
}
