/* The Redis Cluster client (cluster_client.h) against a real cluster this suite starts: six
 * cluster-enabled redis-servers on free loopback ports (each port's +10000 cluster bus port
 * free too), made 3 primaries with a replica each by `redis-cli --cluster create`, with
 * --cluster-node-timeout 2000. Started by the first test that runs (nothing when the name
 * filter leaves none), stopped with its directory at the end of the suite. The tests: the map
 * read from one seed; SET/GET in every slot in one call, each key where CLUSTER SLOTS says; a
 * slot moved by hand behind the client's back (MOVED); a slot half-migrated (ASK); dead and
 * malformed seed lists; a primary killed and its replica promoted; a primary lost with no
 * replica (these two last: they leave nodes down). Direct connections (cct.n[i].c) set up and check
 * what the client is run against. */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <hiredis/hiredis.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "../unit/test.h"
#include "leadflow/alloc.h"
#include "leadflow/cluster.h"
#include "leadflow/cluster_client.h"
#include "leadflow/config.h"
#include "store_test.h"

#define CCT_NODES 6
#define CCT_MASTERS 3

typedef struct {
    pid_t pid; /* 0: not running (never started, or killed by a test) */
    int port;
    char id[48];     /* CLUSTER MYID */
    redisContext *c; /* a direct connection, NULL when the node is down */
} cct_node_t;

static struct {
    int tried, up; /* the cluster was started (once per run), and is ready */
    char dir[64];
    cct_node_t n[CCT_NODES];
} cct;

static void cct_sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/*---- Starting and stopping the cluster ----*/

/* A loopback TCP port nothing listens on (bound and released). */
static int cct_port_free(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0) return 0;
    struct sockaddr_in a = {.sin_family = AF_INET,
                            .sin_port = htons((uint16_t)port),
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    int ok = bind(fd, (struct sockaddr *)&a, sizeof(a)) == 0;
    close(fd);
    return ok;
}

/* A port P in 20000..49999 with P and P + 10000 free and apart from the nodes' ports. */
static int cct_pick_port(void)
{
    for (int attempt = 0; attempt < 500; attempt++) {
        int p = 20000 + (int)(random() % 30000), clash = 0;
        for (int i = 0; i < CCT_NODES; i++)
            if (cct.n[i].port && (abs(cct.n[i].port - p) == 0 || abs(cct.n[i].port - p) == 10000))
                clash = 1;
        if (!clash && cct_port_free(p) && cct_port_free(p + 10000)) return p;
    }
    return -1;
}

static redisReply *cct_vdo(redisContext *c, const char *fmt, va_list ap)
{
    return c ? redisvCommand(c, fmt, ap) : NULL;
}

/* A command on node i's direct connection; the reply (freed by the caller) or NULL. */
static redisReply *cct_do(int i, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static redisReply *cct_do(int i, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    redisReply *r = cct_vdo(cct.n[i].c, fmt, ap);
    va_end(ap);
    return r;
}

/* The reply to a command on node i has `want` in its text (a status, string or error). */
static int cct_says(int i, const char *want, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int cct_says(int i, const char *want, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    redisReply *r = cct_vdo(cct.n[i].c, fmt, ap);
    va_end(ap);
    int ok = r && r->str && strstr(r->str, want) != NULL;
    if (r) freeReplyObject(r);
    return ok;
}

/* redis-server for node i in cct.dir/<port>/, answering PING; LF_OK. */
static int cct_spawn(int i)
{
    cct_node_t *nd = &cct.n[i];
    for (int attempt = 0; attempt < 5; attempt++) {
        int port = cct_pick_port();
        if (port < 0) return LF_ERR;
        char ps[16], dir[128], conf[160];
        snprintf(ps, sizeof(ps), "%d", port);
        snprintf(dir, sizeof(dir), "%s/%d", cct.dir, port);
        snprintf(conf, sizeof(conf), "%s/nodes.conf", dir);
        if (mkdir(dir, 0700) != 0 && errno != EEXIST) return LF_ERR;
        pid_t pid = fork();
        if (pid < 0) return LF_ERR;
        if (pid == 0) {
            if (!freopen("/dev/null", "w", stdout)) _exit(127);
            execlp("redis-server", "redis-server", "--port", ps, "--bind", "127.0.0.1",
                   "--cluster-enabled", "yes", "--cluster-config-file", conf,
                   "--cluster-node-timeout", "2000", "--save", "", "--appendonly", "no",
                   "--repl-diskless-sync-delay", "0", "--repl-ping-replica-period", "1", "--dir",
                   dir, (char *)NULL);
            _exit(127);
        }
        for (int k = 0; k < 200; k++) { /* up to 10 s */
            cct_sleep_ms(50);
            if (waitpid(pid, NULL, WNOHANG) == pid) { /* exited: the port was taken? */
                pid = 0;
                break;
            }
            redisContext *c = redisConnect("127.0.0.1", port);
            redisReply *r = c && !c->err ? redisCommand(c, "PING") : NULL;
            int up = r && r->type == REDIS_REPLY_STATUS;
            if (r) freeReplyObject(r);
            if (up) {
                struct timeval tv = {5, 0};
                redisSetTimeout(c, tv);
                nd->pid = pid;
                nd->port = port;
                nd->c = c;
                return LF_OK;
            }
            if (c) redisFree(c);
        }
        if (pid > 0) {
            kill(pid, SIGKILL);
            waitpid(pid, NULL, 0);
        }
    }
    return LF_ERR;
}

/* `redis-cli --cluster create` of the six, one replica each; its output in cct.dir/create.log
 * (printed when it fails). */
static int cct_create(void)
{
    char log[96];
    snprintf(log, sizeof(log), "%s/create.log", cct.dir);
    char addr[CCT_NODES][32];
    const char *argv[CCT_NODES + 8];
    int a = 0;
    argv[a++] = "redis-cli";
    argv[a++] = "--cluster";
    argv[a++] = "create";
    for (int i = 0; i < CCT_NODES; i++) {
        snprintf(addr[i], sizeof(addr[i]), "127.0.0.1:%d", cct.n[i].port);
        argv[a++] = addr[i];
    }
    argv[a++] = "--cluster-replicas";
    argv[a++] = "1";
    argv[a++] = "--cluster-yes";
    argv[a] = NULL;
    pid_t pid = fork();
    if (pid < 0) return LF_ERR;
    if (pid == 0) {
        int fd = open(log, O_WRONLY | O_CREAT | O_TRUNC, 0600);
        if (fd < 0 || dup2(fd, 1) < 0 || dup2(fd, 2) < 0) _exit(127);
        int devnull = open("/dev/null", O_RDONLY);
        if (devnull >= 0) dup2(devnull, 0);
        execvp("redis-cli", (char *const *)argv);
        _exit(127);
    }
    int status = -1;
    for (int k = 0; k < 600 && waitpid(pid, &status, WNOHANG) != pid; k++) /* up to 30 s */
        cct_sleep_ms(50);
    if (status == -1) {
        kill(pid, SIGKILL);
        waitpid(pid, &status, 0);
    }
    if (WIFEXITED(status) && WEXITSTATUS(status) == 0) return LF_OK;
    printf("  redis-cli --cluster create failed; its output:\n");
    FILE *f = fopen(log, "r");
    char line[512];
    while (f && fgets(line, sizeof(line), f))
        printf("    %s", line);
    if (f) fclose(f);
    return LF_ERR;
}

/* Every node: the cluster ok, its 16384 slots assigned, the six nodes known, a replica's link
 * to its primary up, and its CLUSTER SLOTS naming a replica in every entry (Redis 7 leaves out
 * a replica whose replication offset it has not yet heard of). Up to 20 s. */
static int cct_wait_ready(void)
{
    for (int k = 0; k < 400; k++) {
        int ready = 1;
        for (int i = 0; i < CCT_NODES && ready; i++) {
            redisReply *r = cct_do(i, "CLUSTER INFO");
            ready = r && r->str && strstr(r->str, "cluster_state:ok") &&
                    strstr(r->str, "cluster_slots_ok:16384") &&
                    strstr(r->str, "cluster_known_nodes:6");
            if (r) freeReplyObject(r);
            r = ready ? cct_do(i, "INFO replication") : NULL;
            if (r && r->str && strstr(r->str, "role:slave"))
                ready = strstr(r->str, "master_link_status:up") != NULL;
            if (r) freeReplyObject(r);
            r = ready ? cct_do(i, "CLUSTER SLOTS") : NULL;
            ready = r && r->type == REDIS_REPLY_ARRAY && r->elements > 0;
            for (size_t e = 0; ready && e < r->elements; e++)
                ready = r->element[e]->type == REDIS_REPLY_ARRAY && r->element[e]->elements >= 4;
            if (r) freeReplyObject(r);
        }
        if (ready) return LF_OK;
        cct_sleep_ms(50);
    }
    return LF_ERR;
}

static int cct_rm(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st, (void)flag, (void)ftw;
    return remove(path);
}

static void cct_stop(void)
{
    for (int i = 0; i < CCT_NODES; i++) {
        cct_node_t *nd = &cct.n[i];
        if (nd->c) redisFree(nd->c);
        nd->c = NULL;
        if (nd->pid > 0) {
            kill(nd->pid, SIGTERM);
            waitpid(nd->pid, NULL, 0);
        }
        nd->pid = 0;
    }
    if (cct.dir[0]) nftw(cct.dir, cct_rm, 8, FTW_DEPTH | FTW_PHYS);
    cct.dir[0] = '\0';
    cct.up = 0;
}

/* The cluster, started on the first call; 0 (and a failure reported) when it cannot be. */
static int cct_cluster(void)
{
    if (cct.tried) return cct.up;
    cct.tried = 1;
    int64_t t0 = lf_now_us();
    srandom((unsigned)getpid() ^ (unsigned)time(NULL));
    snprintf(cct.dir, sizeof(cct.dir), "/tmp/lf-cctest-XXXXXX");
    if (!mkdtemp(cct.dir)) {
        cct.dir[0] = '\0';
        lf_test_fail(__FILE__, __LINE__, "mkdtemp: %s", strerror(errno));
        return 0;
    }
    for (int i = 0; i < CCT_NODES; i++)
        if (cct_spawn(i) != LF_OK) {
            lf_test_fail(__FILE__, __LINE__, "cannot start cluster-enabled redis-server %d", i);
            cct_stop();
            return 0;
        }
    if (cct_create() != LF_OK || cct_wait_ready() != LF_OK) {
        lf_test_fail(__FILE__, __LINE__, "the cluster did not come up (cluster_state:ok)");
        cct_stop();
        return 0;
    }
    for (int i = 0; i < CCT_NODES; i++) {
        redisReply *r = cct_do(i, "CLUSTER MYID");
        if (r && r->type == REDIS_REPLY_STRING)
            snprintf(cct.n[i].id, sizeof(cct.n[i].id), "%s", r->str);
        if (r) freeReplyObject(r);
    }
    cct.up = 1;
    printf("  cluster of %d nodes up in %lld ms\n", CCT_NODES,
           (long long)((lf_now_us() - t0) / 1000));
    return 1;
}

/*---- Looking at the cluster directly ----*/

static int cct_by_port(long long port)
{
    for (int i = 0; i < CCT_NODES; i++)
        if (cct.n[i].port == port) return i;
    return -1;
}

/* A running node to ask. */
static int cct_any(void)
{
    for (int i = 0; i < CCT_NODES; i++)
        if (cct.n[i].pid > 0 && cct.n[i].c) return i;
    return -1;
}

/* owner[slot]: the node serving it by CLUSTER SLOTS on node `from` (-1: none); replica_of[i]:
 * the node i replicates (-1: a primary or not listed). LF_OK. */
static int cct_slots(int from, int *owner, int *replica_of)
{
    for (int s = 0; s < LF_CLUSTER_SLOTS; s++)
        owner[s] = -1;
    for (int i = 0; i < CCT_NODES; i++)
        replica_of[i] = -1;
    redisReply *r = cct_do(from, "CLUSTER SLOTS");
    int rc = r && r->type == REDIS_REPLY_ARRAY ? LF_OK : LF_ERR;
    for (size_t e = 0; rc == LF_OK && e < r->elements; e++) {
        redisReply *x = r->element[e];
        if (x->type != REDIS_REPLY_ARRAY || x->elements < 3) {
            rc = LF_ERR;
            break;
        }
        int p = cct_by_port(x->element[2]->element[1]->integer);
        for (long long s = x->element[0]->integer; s <= x->element[1]->integer; s++)
            owner[s] = p;
        for (size_t k = 3; k < x->elements; k++) {
            int q = cct_by_port(x->element[k]->element[1]->integer);
            if (q >= 0) replica_of[q] = p;
        }
    }
    if (r) freeReplyObject(r);
    return rc;
}

/* Node i is a running primary (INFO replication). */
static int cct_is_primary(int i)
{
    return cct.n[i].pid > 0 && cct_says(i, "role:master", "INFO replication");
}

/* The first slot from `from` on that node `node` serves, per owner[]; -1. */
static int cct_slot_of(const int *owner, int node, int from)
{
    for (int s = from; s < LF_CLUSTER_SLOTS; s++)
        if (owner[s] == node) return s;
    return -1;
}

/* MIGRATE up to max keys of slot from src to dst (CLUSTER GETKEYSINSLOT, MIGRATE ... KEYS);
 * how many moved, or -1. */
static int cct_migrate(int src, int dst, int slot, int max)
{
    redisReply *keys = cct_do(src, "CLUSTER GETKEYSINSLOT %d %d", slot, max);
    if (!keys || keys->type != REDIS_REPLY_ARRAY) {
        if (keys) freeReplyObject(keys);
        return -1;
    }
    int moved = (int)keys->elements;
    if (moved > 0) {
        size_t argc = 7 + keys->elements;
        const char **argv = lf_calloc(argc, sizeof(*argv));
        size_t *lens = lf_calloc(argc, sizeof(*lens));
        char port[16];
        snprintf(port, sizeof(port), "%d", cct.n[dst].port);
        const char *head[] = {"MIGRATE", "127.0.0.1", port, "", "0", "5000", "KEYS"};
        for (size_t k = 0; k < 7; k++)
            argv[k] = head[k], lens[k] = strlen(head[k]);
        for (size_t k = 0; k < keys->elements; k++)
            argv[7 + k] = keys->element[k]->str, lens[7 + k] = keys->element[k]->len;
        redisReply *r = redisCommandArgv(cct.n[src].c, (int)argc, argv, lens);
        if (!r || r->type != REDIS_REPLY_STATUS) moved = -1;
        if (r) freeReplyObject(r);
        lf_free(argv);
        lf_free(lens);
    }
    freeReplyObject(keys);
    return moved;
}

/* The first steps of moving a slot: IMPORTING on dst, MIGRATING on src. */
static int cct_begin_move(int src, int dst, int slot)
{
    return cct_says(dst, "OK", "CLUSTER SETSLOT %d IMPORTING %s", slot, cct.n[src].id) &&
                   cct_says(src, "OK", "CLUSTER SETSLOT %d MIGRATING %s", slot, cct.n[dst].id)
               ? LF_OK
               : LF_ERR;
}

/* The last steps: every key of the slot migrated, then SETSLOT NODE dst on dst, src and the
 * other primaries (as redis-cli --cluster reshard does), and every node seeing dst serve it. */
static int cct_end_move(int src, int dst, int slot)
{
    int moved;
    while ((moved = cct_migrate(src, dst, slot, 100)) > 0)
        ;
    if (moved < 0) return LF_ERR;
    if (!cct_says(dst, "OK", "CLUSTER SETSLOT %d NODE %s", slot, cct.n[dst].id) ||
        !cct_says(src, "OK", "CLUSTER SETSLOT %d NODE %s", slot, cct.n[dst].id))
        return LF_ERR;
    for (int i = 0; i < CCT_NODES; i++)
        if (i != src && i != dst && cct_is_primary(i) &&
            !cct_says(i, "OK", "CLUSTER SETSLOT %d NODE %s", slot, cct.n[dst].id))
            return LF_ERR;
    /* The replicas learn it by gossip: wait until every running node's CLUSTER SLOTS agrees. */
    int *owner = lf_malloc(LF_CLUSTER_SLOTS * sizeof(*owner)), rep[CCT_NODES];
    int agreed = 0;
    for (int k = 0; k < 100 && !agreed; k++) {
        agreed = 1;
        for (int i = 0; i < CCT_NODES && agreed; i++)
            if (cct.n[i].pid > 0) agreed = cct_slots(i, owner, rep) == LF_OK && owner[slot] == dst;
        if (!agreed) cct_sleep_ms(50);
    }
    lf_free(owner);
    return agreed ? LF_OK : LF_ERR;
}

/*---- Commands through the client ----*/

/* One SET or GET with its own argument storage. */
typedef struct {
    char key[48], val[48];
    const char *argv[3];
    size_t lens[3];
} cct_op_t;

static void cct_op(cct_op_t *o, lf_cc_cmd_t *c, const char *verb, const char *key, const char *val)
{
    if (key != o->key) snprintf(o->key, sizeof(o->key), "%s", key);
    snprintf(o->val, sizeof(o->val), "%s", val ? val : "");
    o->argv[0] = verb;
    o->argv[1] = o->key;
    o->argv[2] = o->val;
    o->lens[0] = strlen(verb);
    o->lens[1] = strlen(o->key);
    o->lens[2] = strlen(o->val);
    c->slot = lf_cluster_slot(o->key, o->lens[1]);
    c->argc = val ? 3 : 2;
    c->argv = o->argv;
    c->lens = o->lens;
    c->reply = NULL;
}

/* A config for the client with these seeds (cfg->redis_cluster_nodes its own copy). */
static void cct_cfg(lf_config_t *cfg, const char *nodes)
{
    lf_config_defaults(cfg);
    cfg->redis_cluster_nodes = nodes ? lf_strdup(nodes) : NULL;
}

/* "127.0.0.1:P" of node i. */
static const char *cct_addr(int i)
{
    static char buf[4][32];
    static int next;
    char *b = buf[next++ % 4];
    snprintf(b, 32, "127.0.0.1:%d", cct.n[i].port);
    return b;
}

/* The client's map's node for slot, as an index into cct.n (-1: none or unknown). */
static int cct_client_owner(lf_cc_t *cc, int slot)
{
    int node = lf_cluster_map_lookup(lf_cc_map(cc), (uint16_t)slot);
    const lf_cluster_node_t *n = node < 0 ? NULL : lf_cluster_map_node(lf_cc_map(cc), node);
    return n && strcmp(n->host, "127.0.0.1") == 0 ? cct_by_port(n->port) : -1;
}

/* Reply i of a run is the bulk string want (want NULL: nil); -1 for a good one, else i. */
static int cct_reply_is(const lf_cc_cmd_t *c, const char *want)
{
    const redisReply *r = c->reply;
    if (!r) return 0;
    if (!want) return r->type == REDIS_REPLY_NIL;
    return r->type == REDIS_REPLY_STRING && r->len == strlen(want) &&
           memcmp(r->str, want, r->len) == 0;
}

static const char *cct_show(const lf_cc_cmd_t *c)
{
    static char out[128];
    const redisReply *r = c->reply;
    if (!r)
        snprintf(out, sizeof(out), "no reply");
    else if (r->type == REDIS_REPLY_NIL)
        snprintf(out, sizeof(out), "nil");
    else if (r->str)
        snprintf(out, sizeof(out), "type %d \"%.*s\"", r->type, (int)(r->len > 80 ? 80 : r->len),
                 r->str);
    else
        snprintf(out, sizeof(out), "type %d", r->type);
    return out;
}

/*---- The tests ----*/

/* 1. The map from one seed: every slot served, 3 primaries with a replica each, six nodes,
 * and the same owners as CLUSTER SLOTS read directly. */
static void test_cc_map_from_one_seed(void)
{
    if (!cct_cluster()) return;
    lf_config_t cfg;
    cct_cfg(&cfg, cct_addr(3));
    lf_err_t err = {0};
    lf_cc_t *cc = lf_cc_new(&cfg, &err);
    int *owner = lf_malloc(LF_CLUSTER_SLOTS * sizeof(*owner)), rep[CCT_NODES];
    int refreshed = cc ? lf_cc_refresh(cc, &err) : LF_ERR;
    int direct = cct_slots(cct_any(), owner, rep);
    int unserved = 0, differ = 0, prim[8], reps[8];
    size_t np = refreshed == LF_OK ? lf_cc_primaries(cc, prim, 8) : 0;
    for (size_t k = 0; k < np; k++)
        reps[k] = (int)lf_cc_replicas(cc, prim[k]);
    for (int s = 0; refreshed == LF_OK && s < LF_CLUSTER_SLOTS; s++) {
        unserved += lf_cluster_map_lookup(lf_cc_map(cc), (uint16_t)s) < 0;
        differ += cct_client_owner(cc, s) != owner[s];
    }
    size_t nnodes = cc ? lf_cc_map(cc)->nnodes : 0;
    lf_cc_free(cc);
    lf_config_free(&cfg);
    lf_free(owner);
    if (refreshed != LF_OK) lf_test_fail(__FILE__, __LINE__, "lf_cc_refresh: %s", err.msg);
    CHECK_INT(refreshed, LF_OK);
    CHECK_INT(direct, LF_OK);
    CHECK_INT(unserved, 0);
    CHECK_INT(differ, 0);
    CHECK_INT(np, CCT_MASTERS);
    for (size_t k = 0; k < np; k++)
        CHECK_INT(reps[k], 1);
    CHECK_INT(nnodes, CCT_NODES);
}

/* 2. A SET in every one of the 16384 slots in one lf_cc_run, then a GET of each in another:
 * every reply right; and each key is in the slot CLUSTER KEYSLOT says, on the node CLUSTER
 * SLOTS says serves it (EXISTS there on a direct connection). */
static void test_cc_set_get_every_slot(void)
{
    if (!cct_cluster()) return;
    const lf_cluster_tags_t *tags = lf_cc_tags();
    size_t n = LF_CLUSTER_SLOTS;
    cct_op_t *ops = lf_calloc(n, sizeof(*ops));
    lf_cc_cmd_t *cmds = lf_calloc(n, sizeof(*cmds));
    int *owner = lf_malloc(n * sizeof(*owner)), rep[CCT_NODES];
    lf_config_t cfg;
    cct_cfg(&cfg, cct_addr(0));
    lf_err_t err = {0};
    lf_cc_t *cc = lf_cc_new(&cfg, &err);
    char key[48], val[48];
    for (size_t k = 0; k < n; k++) {
        snprintf(key, sizeof(key), "cct2:{%s}", tags->tag[k]);
        snprintf(val, sizeof(val), "v%zu", k);
        cct_op(&ops[k], &cmds[k], "SET", key, val);
    }
    int set = cc ? lf_cc_run(cc, cmds, n, &err) : LF_ERR;
    int set_ok = 0;
    for (size_t k = 0; set == LF_OK && k < n; k++)
        set_ok += cmds[k].reply && cmds[k].reply->type == REDIS_REPLY_STATUS;
    lf_cc_free_replies(cmds, n);
    for (size_t k = 0; k < n; k++)
        cct_op(&ops[k], &cmds[k], "GET", ops[k].key, NULL);
    int get = set == LF_OK ? lf_cc_run(cc, cmds, n, &err) : LF_ERR;
    int get_ok = 0, slot_ok = 0, node_ok = 0, shown = 0;
    for (size_t k = 0; get == LF_OK && k < n; k++) {
        snprintf(val, sizeof(val), "v%zu", k);
        if (cct_reply_is(&cmds[k], val))
            get_ok++;
        else if (shown++ < 5)
            lf_test_fail(__FILE__, __LINE__, "GET %s: %s", ops[k].key, cct_show(&cmds[k]));
    }
    lf_cc_free_replies(cmds, n);
    /* Where the keys are, seen directly: CLUSTER KEYSLOT on one node, EXISTS on the owner. */
    int direct = cct_slots(cct_any(), owner, rep);
    redisContext *any = cct.n[cct_any()].c;
    for (size_t k = 0; direct == LF_OK && k < n; k++)
        redisAppendCommand(any, "CLUSTER KEYSLOT %s", ops[k].key);
    for (size_t k = 0; direct == LF_OK && k < n; k++) {
        redisReply *r = NULL;
        if (redisGetReply(any, (void **)&r) != REDIS_OK || !r) break;
        slot_ok += r->type == REDIS_REPLY_INTEGER && r->integer == (long long)k;
        freeReplyObject(r);
    }
    for (int i = 0; direct == LF_OK && i < CCT_NODES; i++) {
        if (!cct.n[i].c) continue;
        for (size_t k = 0; k < n; k++)
            if (owner[k] == i) redisAppendCommand(cct.n[i].c, "EXISTS %s", ops[k].key);
        for (size_t k = 0; k < n; k++) {
            if (owner[k] != i) continue;
            redisReply *r = NULL;
            if (redisGetReply(cct.n[i].c, (void **)&r) != REDIS_OK || !r) break;
            node_ok += r->type == REDIS_REPLY_INTEGER && r->integer == 1;
            freeReplyObject(r);
        }
    }
    lf_cc_free(cc);
    lf_config_free(&cfg);
    lf_free(owner);
    lf_free(cmds);
    lf_free(ops);
    if (set != LF_OK || get != LF_OK) lf_test_fail(__FILE__, __LINE__, "lf_cc_run: %s", err.msg);
    CHECK_INT(set, LF_OK);
    CHECK_INT(set_ok, n);
    CHECK_INT(get, LF_OK);
    CHECK_INT(get_ok, n);
    CHECK_INT(direct, LF_OK);
    CHECK_INT(slot_ok, n);
    CHECK_INT(node_ok, n);
}

/* 3. MOVED: a slot moved to another primary by hand after the client read its map; GETs of
 * its keys through the client answer right, and the client's map now names the new owner. */
static void test_cc_follows_moved(void)
{
    if (!cct_cluster()) return;
    enum { NK = 8 };
    int *owner = lf_malloc(LF_CLUSTER_SLOTS * sizeof(*owner)), rep[CCT_NODES];
    int src = -1, dst = -1, slot = -1;
    if (cct_slots(cct_any(), owner, rep) == LF_OK) {
        src = owner[1000];
        slot = 1000;
        for (int i = 0; i < CCT_NODES && dst < 0; i++)
            if (i != src && cct_is_primary(i) && cct_slot_of(owner, i, 0) >= 0) dst = i;
    }
    lf_free(owner);
    CHECK(src >= 0 && dst >= 0);
    lf_config_t cfg;
    cct_cfg(&cfg, cct_addr(src));
    lf_err_t err = {0};
    lf_cc_t *cc = lf_cc_new(&cfg, &err);
    CHECK(cc != NULL);
    cct_op_t ops[NK + 1];
    lf_cc_cmd_t cmds[NK + 1];
    char key[48], val[48];
    for (int k = 0; k < NK; k++) {
        snprintf(key, sizeof(key), "cct3:{%s}:%d", lf_cc_tags()->tag[slot], k);
        snprintf(val, sizeof(val), "moved-%d", k);
        cct_op(&ops[k], &cmds[k], "SET", key, val);
    }
    int set = lf_cc_run(cc, cmds, NK, &err);
    lf_cc_free_replies(cmds, NK);
    int before = cct_client_owner(cc, slot);
    int move = set == LF_OK && cct_begin_move(src, dst, slot) == LF_OK &&
               cct_end_move(src, dst, slot) == LF_OK;
    int still = cct_client_owner(cc, slot); /* the client has not looked yet */
    for (int k = 0; k < NK; k++)
        cct_op(&ops[k], &cmds[k], "GET", ops[k].key, NULL);
    /* and a key of some other slot in the same call */
    cct_op(&ops[NK], &cmds[NK], "GET", "cct3:{elsewhere}", NULL);
    int get = move ? lf_cc_run(cc, cmds, NK + 1, &err) : LF_ERR;
    int good = 0;
    for (int k = 0; get == LF_OK && k < NK; k++) {
        snprintf(val, sizeof(val), "moved-%d", k);
        if (cct_reply_is(&cmds[k], val))
            good++;
        else
            lf_test_fail(__FILE__, __LINE__, "GET %s: %s", ops[k].key, cct_show(&cmds[k]));
    }
    int other_nil = get == LF_OK && cct_reply_is(&cmds[NK], NULL);
    lf_cc_free_replies(cmds, NK + 1);
    int after = cct_client_owner(cc, slot);
    lf_cc_free(cc);
    lf_config_free(&cfg);
    if (set != LF_OK || get != LF_OK) lf_test_fail(__FILE__, __LINE__, "lf_cc_run: %s", err.msg);
    CHECK_INT(set, LF_OK);
    CHECK(move);
    CHECK_INT(before, src);
    CHECK_INT(still, src);
    CHECK_INT(get, LF_OK);
    CHECK_INT(good, NK);
    CHECK(other_nil);
    CHECK_INT(after, dst);
}

/* 4. ASK: a slot MIGRATING on its owner and IMPORTING on another primary, only some of its
 * keys migrated. One call GETs a migrated key first, then keys served by the importing node,
 * unmigrated keys and more migrated ones: every reply right (the migrated ones through ASK,
 * ASKING + GET on the importing node). The map still names the owner (ASK changes no map).
 * Then the move is finished, leaving the cluster stable. The client's only seed is the
 * source, so the importing node's connection comes after it. */
static void test_cc_follows_ask(void)
{
    if (!cct_cluster()) return;
    enum { NK = 10, NMOVED = 4, NDST = 20 };
    int *owner = lf_malloc(LF_CLUSTER_SLOTS * sizeof(*owner)), rep[CCT_NODES];
    int src = -1, dst = -1, slot = 2000, dst_slot = -1;
    if (cct_slots(cct_any(), owner, rep) == LF_OK) {
        src = owner[slot];
        for (int i = 0; i < CCT_NODES && dst < 0; i++)
            if (i != src && cct_is_primary(i) && (dst_slot = cct_slot_of(owner, i, 0)) >= 0)
                dst = i;
    }
    lf_free(owner);
    CHECK(src >= 0 && dst >= 0);
    lf_config_t cfg;
    cct_cfg(&cfg, cct_addr(src));
    lf_err_t err = {0};
    lf_cc_t *cc = lf_cc_new(&cfg, &err);
    CHECK(cc != NULL);
    /* The slot's keys and keys on dst, written through the client. */
    cct_op_t ops[NK + NDST];
    lf_cc_cmd_t cmds[NK + NDST];
    char key[48], val[48];
    for (int k = 0; k < NK; k++) {
        snprintf(key, sizeof(key), "cct4:{%s}:%d", lf_cc_tags()->tag[slot], k);
        snprintf(val, sizeof(val), "ask-%d", k);
        cct_op(&ops[k], &cmds[k], "SET", key, val);
    }
    for (int k = 0; k < NDST; k++) {
        snprintf(key, sizeof(key), "cct4:{%s}:dst%d", lf_cc_tags()->tag[dst_slot], k);
        snprintf(val, sizeof(val), "dst-%d", k);
        cct_op(&ops[NK + k], &cmds[NK + k], "SET", key, val);
    }
    int set = lf_cc_run(cc, cmds, NK + NDST, &err);
    lf_cc_free_replies(cmds, NK + NDST);
    /* Half-migrate: keys 0..NMOVED-1 go to dst (MIGRATE ... KEYS of just those). */
    int begun = set == LF_OK && cct_begin_move(src, dst, slot) == LF_OK;
    int migrated = 0;
    for (int k = 0; begun && k < NMOVED; k++) {
        redisReply *r = cct_do(src, "MIGRATE 127.0.0.1 %d %s 0 5000", cct.n[dst].port, ops[k].key);
        migrated += r && r->type == REDIS_REPLY_STATUS;
        if (r) freeReplyObject(r);
    }
    /* Where they are now, directly: the migrated ones on dst (with ASKING), the rest on src. */
    int placed = 0;
    for (int k = 0; begun && k < NK; k++) {
        int on = k < NMOVED ? dst : src;
        if (k < NMOVED) cct_says(on, "OK", "ASKING");
        redisReply *r = cct_do(on, "EXISTS %s", ops[k].key);
        placed += r && r->type == REDIS_REPLY_INTEGER && r->integer == 1;
        if (r) freeReplyObject(r);
    }
    /* One call: a migrated key first, then dst's keys, the others of the slot, interleaved. */
    size_t n = 0;
    int want_k[NK + NDST];
    cct_op(&ops[n], &cmds[n], "GET", ops[0].key, NULL), want_k[n++] = 0;
    for (int k = 0; k < NDST; k++) {
        snprintf(key, sizeof(key), "cct4:{%s}:dst%d", lf_cc_tags()->tag[dst_slot], k);
        cct_op(&ops[n], &cmds[n], "GET", key, NULL), want_k[n++] = NK + k;
        if (k + 1 < NK) {
            snprintf(key, sizeof(key), "cct4:{%s}:%d", lf_cc_tags()->tag[slot], k + 1);
            cct_op(&ops[n], &cmds[n], "GET", key, NULL), want_k[n++] = k + 1;
        }
    }
    int get = begun && migrated == NMOVED ? lf_cc_run(cc, cmds, n, &err) : LF_ERR;
    int good = 0;
    for (size_t i = 0; get == LF_OK && i < n; i++) {
        int k = want_k[i];
        if (k < NK)
            snprintf(val, sizeof(val), "ask-%d", k);
        else
            snprintf(val, sizeof(val), "dst-%d", k - NK);
        if (cct_reply_is(&cmds[i], val))
            good++;
        else
            lf_test_fail(__FILE__, __LINE__, "GET %s (command %zu): %s, expected \"%s\"",
                         ops[i].key, i, cct_show(&cmds[i]), val);
    }
    lf_cc_free_replies(cmds, n);
    /* A migrated key alone (lf_cc_command), and a key of the slot that does not exist
     * anywhere (src sends ASK for it; dst answers nil). */
    const char *argv[2] = {"GET", NULL};
    size_t lens[2] = {3, 0};
    snprintf(key, sizeof(key), "cct4:{%s}:%d", lf_cc_tags()->tag[slot], NMOVED - 1);
    argv[1] = key, lens[1] = strlen(key);
    redisReply *one = get == LF_OK ? lf_cc_command(cc, (uint16_t)slot, 2, argv, lens, &err) : NULL;
    snprintf(val, sizeof(val), "ask-%d", NMOVED - 1);
    int one_ok = one && one->type == REDIS_REPLY_STRING && strcmp(one->str, val) == 0;
    if (one) freeReplyObject(one);
    snprintf(key, sizeof(key), "cct4:{%s}:none", lf_cc_tags()->tag[slot]);
    argv[1] = key, lens[1] = strlen(key);
    redisReply *none = get == LF_OK ? lf_cc_command(cc, (uint16_t)slot, 2, argv, lens, &err) : NULL;
    int none_ok = none && none->type == REDIS_REPLY_NIL;
    if (none) freeReplyObject(none);
    int map_owner = cct_client_owner(cc, slot);
    int finished = begun && cct_end_move(src, dst, slot) == LF_OK;
    lf_cc_free(cc);
    lf_config_free(&cfg);
    if (set != LF_OK || get != LF_OK) lf_test_fail(__FILE__, __LINE__, "lf_cc_run: %s", err.msg);
    CHECK_INT(set, LF_OK);
    CHECK(begun);
    CHECK_INT(migrated, NMOVED);
    CHECK_INT(placed, NK);
    CHECK_INT(get, LF_OK);
    CHECK_INT(good, n);
    CHECK(one_ok);
    CHECK(none_ok);
    CHECK_INT(map_owner, src);
    CHECK(finished);
}

/* 5. Seeds: a dead first seed (the next answers); only dead seeds (LF_ERR at once, naming
 * them); malformed lists refused by lf_cc_new, naming what is wrong. */
static void test_cc_seeds(void)
{
    if (!cct_cluster()) return;
    int dead1 = lf_store_test_free_port(), dead2 = lf_store_test_free_port();
    char list[128];
    snprintf(list, sizeof(list), "127.0.0.1:%d, %s", dead1, cct_addr(cct_any()));
    lf_config_t cfg;
    cct_cfg(&cfg, list);
    lf_err_t err = {0};
    lf_cc_t *cc = lf_cc_new(&cfg, &err);
    const char *argv[2] = {"GET", "cct5:nothing"};
    size_t lens[2] = {3, strlen(argv[1])};
    redisReply *r =
        cc ? lf_cc_command(cc, lf_cluster_slot(argv[1], lens[1]), 2, argv, lens, &err) : NULL;
    int answered = r && r->type == REDIS_REPLY_NIL;
    if (r) freeReplyObject(r);
    lf_cc_free(cc);
    lf_config_free(&cfg);
    if (!answered) lf_test_fail(__FILE__, __LINE__, "first seed dead: %s", err.msg);
    CHECK(answered);

    /* Only dead nodes: an error within the time bound, naming them. */
    snprintf(list, sizeof(list), "127.0.0.1:%d,127.0.0.1:%d", dead1, dead2);
    cct_cfg(&cfg, list);
    memset(&err, 0, sizeof(err));
    cc = lf_cc_new(&cfg, &err);
    int64_t t0 = lf_now_us();
    r = cc ? lf_cc_command(cc, lf_cluster_slot(argv[1], lens[1]), 2, argv, lens, &err) : NULL;
    int64_t ms = (lf_now_us() - t0) / 1000;
    int refreshed = cc ? lf_cc_refresh(cc, &err) : LF_OK;
    if (r) freeReplyObject(r);
    lf_cc_free(cc);
    lf_config_free(&cfg);
    char d1[32], d2[32];
    snprintf(d1, sizeof(d1), "127.0.0.1:%d", dead1);
    snprintf(d2, sizeof(d2), "127.0.0.1:%d", dead2);
    printf("  only dead seeds: %lld ms, \"%s\"\n", (long long)ms, err.msg);
    CHECK(r == NULL);
    CHECK(refreshed != LF_OK);
    CHECK(ms < 6000);
    CHECK(strstr(err.msg, d1) && strstr(err.msg, d2));

    /* Malformed lists: refused, with the item and what a node is. */
    static const struct {
        const char *list, *says;
    } bad[] = {
        {"host", "\"host\" is not host:port"},
        {"host:0", "\"host:0\" is not host:port"},
        {"host:99999", "\"host:99999\" is not host:port"},
        {"host:65536", "\"host:65536\" is not host:port"},
        {"host:", "\"host:\" is not host:port"},
        {":6379", "\":6379\" is not host:port"},
        {"host:12ab", "\"host:12ab\" is not host:port"},
        {"host:-1", "\"host:-1\" is not host:port"},
        {"127.0.0.1:7000,host", "\"host\" is not host:port"},
        {"127.0.0.1:7000,,127.0.0.1:7001", "\"\" is not host:port"},
        {"", "redis.cluster.nodes is empty"},
        {NULL, "redis.cluster.nodes is empty"},
        {" ", "is not host:port"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        cct_cfg(&cfg, bad[i].list);
        memset(&err, 0, sizeof(err));
        cc = lf_cc_new(&cfg, &err);
        int refused = cc == NULL && err.code != 0 && strstr(err.msg, bad[i].says) != NULL;
        if (!refused)
            lf_test_fail(__FILE__, __LINE__, "redis.cluster.nodes \"%s\": %s, \"%s\"",
                         bad[i].list ? bad[i].list : "(null)", cc ? "accepted" : "refused",
                         err.msg);
        lf_cc_free(cc);
        lf_config_free(&cfg);
        if (!refused) return;
    }
}

/* Node i killed by SIGKILL. */
static void cct_kill(int i)
{
    if (cct.n[i].c) redisFree(cct.n[i].c);
    cct.n[i].c = NULL;
    if (cct.n[i].pid > 0) {
        kill(cct.n[i].pid, SIGKILL);
        waitpid(cct.n[i].pid, NULL, 0);
    }
    cct.n[i].pid = 0;
}

/* 6. A primary with a replica killed (SIGKILL) after the client read its map: a GET of its
 * keys waits out the failover (node timeout 2000 ms, then the replica's election: about 4 s
 * here) and answers right; the map then names the promoted replica. redis.timeout_ms 8000
 * (the bound: 8 s) so that a slow election on a loaded host does not fail the test; the time
 * taken is printed. It leaves the killed node down. */
static void test_cc_failover(void)
{
    if (!cct_cluster()) return;
    enum { NK = 30 };
    int *owner = lf_malloc(LF_CLUSTER_SLOTS * sizeof(*owner)), rep[CCT_NODES];
    int victim = -1, heir = -1;
    if (cct_slots(cct_any(), owner, rep) == LF_OK)
        for (int i = 0; i < CCT_NODES && victim < 0; i++)
            if (rep[i] >= 0 && cct.n[i].pid > 0 && cct.n[rep[i]].pid > 0) heir = i, victim = rep[i];
    if (victim < 0) lf_free(owner);
    CHECK(victim >= 0);
    char list[256] = "";
    for (int i = 0; i < CCT_NODES; i++) {
        size_t len = strlen(list);
        snprintf(list + len, sizeof(list) - len, "%s%s", i ? "," : "", cct_addr(i));
    }
    lf_config_t cfg;
    cct_cfg(&cfg, list);
    cfg.redis_timeout_ms = 8000;
    lf_err_t err = {0};
    lf_cc_t *cc = lf_cc_new(&cfg, &err);
    cct_op_t ops[NK];
    lf_cc_cmd_t cmds[NK];
    char key[48], val[48];
    int slots[NK], s = 0;
    for (int k = 0; k < NK; k++) {
        s = cct_slot_of(owner, victim, s) + 1;
        slots[k] = s - 1;
        snprintf(key, sizeof(key), "cct6:{%s}", lf_cc_tags()->tag[slots[k]]);
        snprintf(val, sizeof(val), "fo-%d", k);
        cct_op(&ops[k], &cmds[k], "SET", key, val);
    }
    lf_free(owner);
    int set = cc ? lf_cc_run(cc, cmds, NK, &err) : LF_ERR;
    lf_cc_free_replies(cmds, NK);
    /* The replica has them before the primary dies. */
    redisReply *w = set == LF_OK ? cct_do(victim, "WAIT 1 2000") : NULL;
    int replicated = w && w->type == REDIS_REPLY_INTEGER && w->integer >= 1;
    if (w) freeReplyObject(w);
    CHECK(cc != NULL);
    CHECK_INT(set, LF_OK);
    CHECK(replicated);
    cct_kill(victim);
    int64_t t0 = lf_now_us();
    for (int k = 0; k < NK; k++)
        cct_op(&ops[k], &cmds[k], "GET", ops[k].key, NULL);
    int get = lf_cc_run(cc, cmds, NK, &err);
    int64_t ms = (lf_now_us() - t0) / 1000;
    int good = 0;
    for (int k = 0; get == LF_OK && k < NK; k++) {
        snprintf(val, sizeof(val), "fo-%d", k);
        good += cct_reply_is(&cmds[k], val);
    }
    lf_cc_free_replies(cmds, NK);
    int moved_to_heir = 0;
    for (int k = 0; get == LF_OK && k < NK; k++)
        moved_to_heir += cct_client_owner(cc, slots[k]) == heir;
    lf_cc_free(cc);
    lf_config_free(&cfg);
    printf("  primary killed: the client answered after %lld ms%s%s\n", (long long)ms,
           get == LF_OK ? "" : ": ", get == LF_OK ? "" : err.msg);
    CHECK_INT(get, LF_OK);
    CHECK_INT(good, NK);
    CHECK_INT(moved_to_heir, NK);
}

/* 7. A primary lost with no replica to take over (it and its replicas killed): its slots
 * stay unserved, and lf_cc_run of a key there fails after its bound (the default
 * redis.timeout_ms, 2000: 5 s), not sooner and not much later, saying so; the replies of the
 * call's other commands are freed (NULL). It leaves the cluster down. */
static void test_cc_primary_lost(void)
{
    if (!cct_cluster()) return;
    int *owner = lf_malloc(LF_CLUSTER_SLOTS * sizeof(*owner)), rep[CCT_NODES];
    int gone = -1, slot = -1, other = -1;
    if (cct_slots(cct_any(), owner, rep) == LF_OK) {
        gone = owner[0];
        slot = cct_slot_of(owner, gone, 0);
        for (int s = 0; s < LF_CLUSTER_SLOTS && other < 0; s++)
            if (owner[s] >= 0 && owner[s] != gone) other = s;
    }
    lf_free(owner);
    CHECK(gone >= 0 && slot >= 0 && other >= 0);
    lf_config_t cfg;
    cct_cfg(&cfg, cct_addr(cct_any()));
    lf_err_t err = {0};
    lf_cc_t *cc = lf_cc_new(&cfg, &err);
    int refreshed = cc ? lf_cc_refresh(cc, &err) : LF_ERR;
    for (int i = 0; i < CCT_NODES; i++)
        if (rep[i] == gone) cct_kill(i);
    cct_kill(gone);
    cct_op_t ops[2];
    lf_cc_cmd_t cmds[2];
    char key[48];
    snprintf(key, sizeof(key), "cct7:{%s}", lf_cc_tags()->tag[other]);
    cct_op(&ops[0], &cmds[0], "GET", key, NULL);
    snprintf(key, sizeof(key), "cct7:{%s}", lf_cc_tags()->tag[slot]);
    cct_op(&ops[1], &cmds[1], "GET", key, NULL);
    int64_t t0 = lf_now_us();
    int rc = refreshed == LF_OK ? lf_cc_run(cc, cmds, 2, &err) : LF_OK;
    int64_t ms = (lf_now_us() - t0) / 1000;
    int freed = cmds[0].reply == NULL && cmds[1].reply == NULL;
    lf_cc_free_replies(cmds, 2);
    lf_cc_free(cc);
    lf_config_free(&cfg);
    printf("  primary lost: LF_ERR after %lld ms, \"%s\"\n", (long long)ms, err.msg);
    CHECK_INT(refreshed, LF_OK);
    CHECK_INT(rc, LF_ERR);
    CHECK(ms >= 5000 && ms < 7000);
    CHECK(strstr(err.msg, "1 Redis Cluster command(s) not run within 5000 ms") != NULL);
    CHECK(freed);
}

void suite_cluster_client(void)
{
    LF_RUN(test_cc_map_from_one_seed);
    LF_RUN(test_cc_set_get_every_slot);
    LF_RUN(test_cc_follows_moved);
    LF_RUN(test_cc_follows_ask);
    LF_RUN(test_cc_seeds);
    LF_RUN(test_cc_failover);     /* these two last: they leave nodes down */
    LF_RUN(test_cc_primary_lost); /* and the cluster down */
    if (cct.tried) cct_stop();
}
