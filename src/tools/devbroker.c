/* `leadflow devbroker`: an embedded Kafka for development and tests on librdkafka's mock
 * cluster.
 *
 * librdkafka 2.0.2 has no way to choose the mock brokers' ports: each mock broker binds
 * 127.0.0.1 port 0 and advertises whatever the kernel picked. Tests and demos need a fixed,
 * known address, so this file interposes bind(): while lf_devbroker_arm() has armed it (only
 * around rd_kafka_mock_cluster_new), a port-0 AF_INET bind is rewritten to the next fixed
 * port; every other bind goes straight to the C library's. The binary is linked with
 * -rdynamic so that librdkafka's call to bind() resolves to the one defined here.
 *
 * Everything runs on the main thread except the mock cluster itself (one librdkafka thread
 * serves all brokers). The main thread polls the optional control port, runs the retention
 * check, and waits for SIGINT/SIGTERM. */
#include <arpa/inet.h>
#include <ctype.h>
#include <dlfcn.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>

#include "leadflow/commands.h"
#include "leadflow/alloc.h"
#include "leadflow/common.h"

#define DB_MAX_TOPICS 64
#define DB_MAX_CLIENTS 8
#define DB_LINE_MAX 1024
#define DB_QUERY_TIMEOUT_MS 2000
#define DB_RETENTION_EVERY_MS 1000

/*---- bind() interposer ------------------------------------------------------------------*/

typedef int (*db_bind_fn)(int, const struct sockaddr *, socklen_t);

/* Armed state. next_port is 0 when disarmed; the counters tell the caller what happened. */
static atomic_int db_next_port;
static atomic_int db_bind_left;  /* how many more binds may be rewritten */
static atomic_int db_bind_errno; /* errno of the first failed rewritten bind, else 0 */
static atomic_int db_bind_failed_port;
static atomic_int db_bind_done; /* rewritten binds that succeeded */

static db_bind_fn db_real_bind(void)
{
    static _Atomic(db_bind_fn) real;
    db_bind_fn fn = atomic_load(&real);
    if (!fn) {
        union {
            void *obj;
            db_bind_fn fn;
        } u;
        u.obj = dlsym(RTLD_NEXT, "bind");
        fn = u.fn;
        atomic_store(&real, fn);
    }
    return fn;
}

/* The process-wide bind(). Forwards unchanged unless armed and the call is an AF_INET bind to
 * port 0, which is what rd_kafka_mock_cluster_new does for every broker. SO_REUSEADDR is set
 * on rewritten sockets so that a devbroker restarted on the same port is not refused because
 * of connections left in TIME_WAIT (a port with a live listener is still refused). */
int bind(int fd, const struct sockaddr *addr, socklen_t len)
{
    db_bind_fn real = db_real_bind();
    if (!real) {
        errno = ENOSYS;
        return -1;
    }
    int port = atomic_load(&db_next_port);
    if (port > 0 && addr && addr->sa_family == AF_INET && len >= sizeof(struct sockaddr_in)) {
        struct sockaddr_in sin;
        memcpy(&sin, addr, sizeof(sin));
        if (sin.sin_port == 0 && atomic_fetch_sub(&db_bind_left, 1) > 0) {
            int one = 1;
            (void)setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
            sin.sin_port = htons((uint16_t)port);
            int rc = real(fd, (const struct sockaddr *)&sin, sizeof(sin));
            if (rc == 0) {
                atomic_fetch_add(&db_bind_done, 1);
                atomic_store(&db_next_port, port + 1);
                return 0;
            }
            if (atomic_load(&db_bind_errno) == 0) {
                atomic_store(&db_bind_failed_port, port);
                atomic_store(&db_bind_errno, errno ? errno : EADDRINUSE);
            }
            /* Fall back to the port-0 bind the mock asked for: librdkafka 2.0.2 aborts on an
             * assertion when a mock broker cannot bind. The caller sees the recorded error,
             * destroys the cluster cleanly and reports the port. */
            atomic_store(&db_bind_left, 0);
            atomic_store(&db_next_port, 0);
        }
    }
    return real(fd, addr, len);
}

static void db_bind_arm(int first_port, int count)
{
    atomic_store(&db_bind_errno, 0);
    atomic_store(&db_bind_failed_port, 0);
    atomic_store(&db_bind_done, 0);
    atomic_store(&db_bind_left, count);
    atomic_store(&db_next_port, first_port);
}

static void db_bind_disarm(void)
{
    atomic_store(&db_next_port, 0);
    atomic_store(&db_bind_left, 0);
}

/*---- Options -----------------------------------------------------------------------------*/

typedef struct {
    int port; /* first broker's port; 0 = any free port */
    int partitions;
    int brokers;
    int control_port; /* -1 = off, 0 = any free port */
    int retention_check;
    int verbose;
    const char *topics[DB_MAX_TOPICS];
    int ntopics;
    char *topics_buf; /* owns the strings of --topics */
} db_opts_t;

static const char db_help[] =
    "usage: leadflow devbroker [options]\n"
    "\n"
    "An embedded Kafka for development and tests, built on librdkafka's mock cluster.\n"
    "NOT FOR PRODUCTION. Prints one line `bootstrap.servers=127.0.0.1:PORT[,...]` on stdout\n"
    "once ready, then runs until SIGINT or SIGTERM (exit 0).\n"
    "\n"
    "options:\n"
    "  --port P            first broker's port on 127.0.0.1 (default 9092); broker i listens\n"
    "                      on P+i-1; 0 = pick free ports. A port in use is an error (exit 1).\n"
    "  --brokers B         number of brokers (default 1)\n"
    "  --partitions N      partitions of every created topic (default 8)\n"
    "  --topics a,b,c      topics to create besides leadflow.events,\n"
    "                      leadflow.stage-transitions and leadflow.dead-letter\n"
    "  --control-port C    accept line commands on 127.0.0.1:C (default off; 0 = a free\n"
    "                      port, printed on stderr as `control=127.0.0.1:C`)\n"
    "  --retention-check   every second compare each created partition's low watermark\n"
    "                      with 0; warn on stderr when the mock dropped old messages, and\n"
    "                      exit 3 at shutdown if it ever did\n"
    "  --verbose           show librdkafka's mock cluster logs on stderr\n"
    "  --help              this text\n"
    "\n"
    "control commands (one per line; each gets one reply line `ok ...` or `err ...`):\n"
    "  ping\n"
    "  broker-down ID | broker-up ID         take broker ID (1..B) down or up\n"
    "  request-errors APIKEY ERRCODE COUNT   the next COUNT requests of APIKEY fail with\n"
    "                                        ERRCODE (numbers or names: Produce, Fetch,\n"
    "                                        OffsetCommit, Heartbeat, JoinGroup, ...;\n"
    "                                        REQUEST_TIMED_OUT, NOT_LEADER_FOR_PARTITION, ...)\n"
    "  clear-request-errors APIKEY\n"
    "  rtt ID MS                             add MS of latency to broker ID\n"
    "  leader TOPIC PARTITION ID             move a partition's leadership\n"
    "  topic-create TOPIC PARTITIONS\n"
    "  watermarks TOPIC                      reply `ok TOPIC P:LOW:HIGH ...`\n"
    "  retention                             reply `ok N [TOPIC:P:LOW ...]`: partitions of\n"
    "                                        created topics whose oldest messages were dropped\n"
    "\n"
    "known limits of the mock cluster (librdkafka 2.0.2):\n"
    "  - in memory only: everything is lost when it exits;\n"
    "  - each partition keeps about 5 MiB / 100,000 message sets; the oldest are dropped\n"
    "    silently (see --retention-check); one hot key fills one partition first;\n"
    "  - TxnOffsetCommit is acknowledged but not stored; aborted data stays visible;\n"
    "  - the idempotent producer is not deduplicated: a retried batch is stored twice;\n"
    "  - OffsetCommit during a rebalance is rejected (REBALANCE_IN_PROGRESS);\n"
    "  - taking a broker down never moves partition leadership (use `leader`);\n"
    "  - all brokers share one thread; fetch returns one message set per partition and\n"
    "    slows down as the log grows; the replication factor is ignored.\n";

static int db_parse_int(const char *s, long lo, long hi, int *out)
{
    int64_t v;
    if (lf_parse_i64(s, lo, hi, &v) != LF_OK) return LF_ERR;
    *out = (int)v;
    return LF_OK;
}

static int db_topic_name_ok(const char *t)
{
    size_t n = strlen(t);
    if (n == 0 || n > 249) return 0;
    for (size_t i = 0; i < n; i++)
        if (!isalnum((unsigned char)t[i]) && t[i] != '.' && t[i] != '_' && t[i] != '-') return 0;
    return 1;
}

static int db_add_topic(db_opts_t *o, const char *t)
{
    for (int i = 0; i < o->ntopics; i++)
        if (strcmp(o->topics[i], t) == 0) return LF_OK;
    if (!db_topic_name_ok(t)) {
        fprintf(stderr, "leadflow devbroker: invalid topic name \"%s\"\n", t);
        return LF_ERR;
    }
    if (o->ntopics >= DB_MAX_TOPICS) {
        fprintf(stderr, "leadflow devbroker: too many topics (max %d)\n", DB_MAX_TOPICS);
        return LF_ERR;
    }
    o->topics[o->ntopics++] = t;
    return LF_OK;
}

/* Returns LF_OK, LF_ERR (usage error, message printed), or 1 when --help was printed. */
static int db_parse_args(int argc, char **argv, db_opts_t *o)
{
    memset(o, 0, sizeof(*o));
    o->port = 9092;
    o->partitions = 8;
    o->brokers = 1;
    o->control_port = -1;
    db_add_topic(o, "leadflow.events");
    db_add_topic(o, "leadflow.stage-transitions");
    db_add_topic(o, "leadflow.dead-letter");

    for (int i = 1; i < argc; i++) {
        int missing = 0;
        const char *v;
        const char *a = argv[i];
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            fputs(db_help, stdout);
            return 1;
        } else if (strcmp(a, "--verbose") == 0 || strcmp(a, "-v") == 0) {
            o->verbose = 1;
        } else if (strcmp(a, "--retention-check") == 0) {
            o->retention_check = 1;
        } else if ((v = lf_opt_value(argc, argv, &i, "--port", &missing))) {
            if (db_parse_int(v, 0, 65535, &o->port)) goto bad;
        } else if ((v = lf_opt_value(argc, argv, &i, "--partitions", &missing))) {
            if (db_parse_int(v, 1, 10000, &o->partitions)) goto bad;
        } else if ((v = lf_opt_value(argc, argv, &i, "--brokers", &missing))) {
            if (db_parse_int(v, 1, 64, &o->brokers)) goto bad;
        } else if ((v = lf_opt_value(argc, argv, &i, "--control-port", &missing))) {
            if (db_parse_int(v, 0, 65535, &o->control_port)) goto bad;
        } else if ((v = lf_opt_value(argc, argv, &i, "--topics", &missing))) {
            lf_free(o->topics_buf);
            o->topics_buf = lf_strdup(v);
            char *save = NULL;
            for (char *t = strtok_r(o->topics_buf, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
                while (*t == ' ')
                    t++;
                if (*t && db_add_topic(o, t)) return LF_ERR;
            }
        } else {
            if (missing)
                fprintf(stderr, "leadflow devbroker: option %s needs a value\n", a);
            else
                fprintf(stderr, "leadflow devbroker: unknown option %s (try --help)\n", a);
            return LF_ERR;
        }
        if (missing) {
            fprintf(stderr, "leadflow devbroker: option %s needs a value\n", a);
            return LF_ERR;
        }
        continue;
    bad:
        fprintf(stderr, "leadflow devbroker: bad value \"%s\" for %s\n", v, a);
        return LF_ERR;
    }
    if (o->port > 0 && o->port + o->brokers - 1 > 65535) {
        fprintf(stderr, "leadflow devbroker: ports %d..%d do not fit below 65536\n", o->port,
                o->port + o->brokers - 1);
        return LF_ERR;
    }
    return LF_OK;
}

/*---- The broker --------------------------------------------------------------------------*/

typedef struct {
    char topic[256];
    int partitions;
    int64_t *low_seen; /* per partition: the highest low watermark reported so far */
} db_topic_t;

typedef struct {
    int fd;
    size_t len;
    char buf[DB_LINE_MAX];
} db_client_t;

typedef struct {
    db_opts_t opts;
    rd_kafka_t *rk; /* owns the mock cluster */
    rd_kafka_mock_cluster_t *mc;
    rd_kafka_t *qrk; /* query handle (watermarks, metadata), created on first use */
    char bootstraps[1024];
    db_topic_t topics[DB_MAX_TOPICS];
    int ntopics;
    int brokers_down;
    int retention_lost; /* partitions that ever lost their oldest messages */
    int listen_fd;
    db_client_t clients[DB_MAX_CLIENTS];
} db_t;

static volatile sig_atomic_t db_stop;

static void db_on_signal(int sig)
{
    (void)sig;
    db_stop = 1;
}

static void db_log_cb(const rd_kafka_t *rk, int level, const char *fac, const char *buf)
{
    db_opts_t *o = rd_kafka_opaque(rk);
    if (o && o->verbose) fprintf(stderr, "devbroker: %d %s: %s\n", level, fac, buf);
}

static void db_error_cb(rd_kafka_t *rk, int err, const char *reason, void *opaque)
{
    (void)rk;
    db_opts_t *o = opaque;
    if (o && o->verbose)
        fprintf(stderr, "devbroker: error %s: %s\n", rd_kafka_err2name((rd_kafka_resp_err_t)err),
                reason);
}

static rd_kafka_conf_t *db_conf_new(db_opts_t *o)
{
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    char errstr[256];
    rd_kafka_conf_set_opaque(conf, o);
    rd_kafka_conf_set_log_cb(conf, db_log_cb);
    rd_kafka_conf_set_error_cb(conf, db_error_cb);
    if (o->verbose) rd_kafka_conf_set(conf, "debug", "mock", errstr, sizeof(errstr));
    /* The mock brokers' sockets take their options from this client's configuration
     * (rd_kafka_transport_post_connect_setup). With Nagle on, a response written while the
     * previous one on the same connection is not yet acknowledged waited for the client's
     * delayed ACK: ~40 ms on Linux loopback, seen as ProduceResponse rtt 41.9 ms next to
     * 0.07 ms ones whenever a producer had two requests in flight. */
    rd_kafka_conf_set(conf, "socket.nagle.disable", "true", errstr, sizeof(errstr));
    return conf;
}

static int db_topic_create(db_t *db, const char *topic, int partitions, char *errbuf, size_t cap)
{
    for (int i = 0; i < db->ntopics; i++)
        if (strcmp(db->topics[i].topic, topic) == 0) {
            snprintf(errbuf, cap, "topic %s exists", topic);
            return LF_ERR;
        }
    if (db->ntopics >= DB_MAX_TOPICS) {
        snprintf(errbuf, cap, "too many topics (max %d)", DB_MAX_TOPICS);
        return LF_ERR;
    }
    rd_kafka_resp_err_t e = rd_kafka_mock_topic_create(db->mc, topic, partitions, 1);
    if (e) {
        snprintf(errbuf, cap, "cannot create topic %s: %s", topic, rd_kafka_err2str(e));
        return LF_ERR;
    }
    db_topic_t *t = &db->topics[db->ntopics++];
    snprintf(t->topic, sizeof(t->topic), "%s", topic);
    t->partitions = partitions;
    t->low_seen = lf_calloc((size_t)partitions, sizeof(*t->low_seen));
    return LF_OK;
}

/* The query handle: an ordinary client of the mock, used for metadata and watermarks. It
 * never creates topics. */
static rd_kafka_t *db_query_handle(db_t *db)
{
    if (db->qrk) return db->qrk;
    rd_kafka_conf_t *conf = db_conf_new(&db->opts);
    char errstr[512];
    if (rd_kafka_conf_set(conf, "bootstrap.servers", db->bootstraps, errstr, sizeof(errstr)) ||
        rd_kafka_conf_set(conf, "allow.auto.create.topics", "false", errstr, sizeof(errstr)) ||
        rd_kafka_conf_set(conf, "reconnect.backoff.max.ms", "1000", errstr, sizeof(errstr))) {
        rd_kafka_conf_destroy(conf);
        return NULL;
    }
    db->qrk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof(errstr));
    if (!db->qrk) rd_kafka_conf_destroy(conf);
    return db->qrk;
}

/* Partition count of `topic` as the cluster reports it; -1 with a message when unknown. Asks
 * for all topics: the mock auto-creates any topic named in a Metadata request, whatever
 * allow.auto.create.topics says. */
static int db_partition_count(db_t *db, const char *topic, char *errbuf, size_t cap)
{
    rd_kafka_t *q = db_query_handle(db);
    if (!q) {
        snprintf(errbuf, cap, "cannot create a query client");
        return -1;
    }
    const struct rd_kafka_metadata *md = NULL;
    rd_kafka_resp_err_t e = rd_kafka_metadata(q, 1, NULL, &md, DB_QUERY_TIMEOUT_MS);
    int n = -1;
    if (e) {
        snprintf(errbuf, cap, "metadata: %s", rd_kafka_err2str(e));
        return -1;
    }
    for (int i = 0; i < md->topic_cnt; i++)
        if (strcmp(md->topics[i].topic, topic) == 0) {
            if (md->topics[i].err)
                snprintf(errbuf, cap, "topic %s: %s", topic, rd_kafka_err2str(md->topics[i].err));
            else
                n = md->topics[i].partition_cnt;
            break;
        }
    if (n < 0 && !errbuf[0]) snprintf(errbuf, cap, "unknown topic %s", topic);
    rd_kafka_metadata_destroy(md);
    return n;
}

/*---- Control commands --------------------------------------------------------------------*/

static const struct {
    const char *name;
    int16_t key;
} db_apikeys[] = {
    {"Produce", 0},
    {"Fetch", 1},
    {"ListOffsets", 2},
    {"Metadata", 3},
    {"OffsetCommit", 8},
    {"OffsetFetch", 9},
    {"FindCoordinator", 10},
    {"JoinGroup", 11},
    {"Heartbeat", 12},
    {"LeaveGroup", 13},
    {"SyncGroup", 14},
    {"DescribeGroups", 15},
    {"ListGroups", 16},
    {"SaslHandshake", 17},
    {"ApiVersions", 18},
    {"CreateTopics", 19},
    {"DeleteTopics", 20},
    {"DeleteRecords", 21},
    {"InitProducerId", 22},
    {"OffsetForLeaderEpoch", 23},
    {"AddPartitionsToTxn", 24},
    {"AddOffsetsToTxn", 25},
    {"EndTxn", 26},
    {"TxnOffsetCommit", 28},
    {"DescribeConfigs", 32},
    {"AlterConfigs", 33},
    {"CreatePartitions", 37},
    {"DeleteGroups", 42},
};

static int db_parse_apikey(const char *s, int16_t *out)
{
    int v;
    if (db_parse_int(s, 0, 1000, &v) == LF_OK) {
        *out = (int16_t)v;
        return LF_OK;
    }
    for (size_t i = 0; i < sizeof(db_apikeys) / sizeof(db_apikeys[0]); i++)
        if (strcasecmp(s, db_apikeys[i].name) == 0) {
            *out = db_apikeys[i].key;
            return LF_OK;
        }
    return LF_ERR;
}

/* An error code by number or by name, with or without the RD_KAFKA_RESP_ERR_ prefix. The
 * Kafka 2.x name NOT_LEADER_OR_FOLLOWER is accepted for NOT_LEADER_FOR_PARTITION. */
static int db_parse_errcode(const char *s, rd_kafka_resp_err_t *out)
{
    int v;
    if (db_parse_int(s, -200, 1000, &v) == LF_OK) {
        *out = (rd_kafka_resp_err_t)v;
        return LF_OK;
    }
    if (strncasecmp(s, "RD_KAFKA_RESP_ERR_", 18) == 0) s += 18;
    if (strcasecmp(s, "NOT_LEADER_OR_FOLLOWER") == 0) s = "NOT_LEADER_FOR_PARTITION";
    const struct rd_kafka_err_desc *d;
    size_t n;
    rd_kafka_get_err_descs(&d, &n);
    for (size_t i = 0; i < n; i++)
        if (d[i].name && strcasecmp(d[i].name, s) == 0) {
            *out = d[i].code;
            return LF_OK;
        }
    return LF_ERR;
}

static int db_broker_id(db_t *db, const char *s, int32_t *id)
{
    int v;
    if (!s || db_parse_int(s, 1, db->opts.brokers, &v)) return LF_ERR;
    *id = v;
    return LF_OK;
}

/* Appends to a reply buffer; keeps it NUL-terminated and never overflows. */
static void db_appendf(char *buf, size_t cap, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void db_appendf(char *buf, size_t cap, const char *fmt, ...)
{
    size_t n = strlen(buf);
    if (n + 1 >= cap) return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf + n, cap - n, fmt, ap);
    va_end(ap);
}

static void db_cmd_watermarks(db_t *db, const char *topic, char *out, size_t cap)
{
    char errbuf[256] = "";
    int n = db_partition_count(db, topic, errbuf, sizeof(errbuf));
    if (n < 0) {
        snprintf(out, cap, "err %s", errbuf);
        return;
    }
    snprintf(out, cap, "ok %s", topic);
    for (int p = 0; p < n; p++) {
        int64_t lo = -1, hi = -1;
        rd_kafka_resp_err_t e =
            rd_kafka_query_watermark_offsets(db->qrk, topic, p, &lo, &hi, DB_QUERY_TIMEOUT_MS);
        if (e) {
            snprintf(out, cap, "err %s [%d]: %s", topic, p, rd_kafka_err2str(e));
            return;
        }
        db_appendf(out, cap, " %d:%lld:%lld", p, (long long)lo, (long long)hi);
    }
}

/* Checks every created topic's low watermarks. Returns how many partitions have lost their
 * oldest messages; when `warn`, prints a warning for each new loss. */
static int db_retention_scan(db_t *db, int warn, char *out, size_t cap)
{
    int lost = 0;
    if (!db_query_handle(db)) return 0;
    for (int i = 0; i < db->ntopics; i++) {
        db_topic_t *t = &db->topics[i];
        for (int p = 0; p < t->partitions; p++) {
            int64_t lo = 0, hi = 0;
            if (rd_kafka_query_watermark_offsets(db->qrk, t->topic, p, &lo, &hi,
                                                 DB_QUERY_TIMEOUT_MS))
                lo = t->low_seen[p];
            if (lo > t->low_seen[p]) {
                if (warn && t->low_seen[p] == 0) /* once per partition */
                    fprintf(stderr,
                            "leadflow devbroker: WARNING: %s [%d] dropped its oldest "
                            "messages (low watermark now %lld, high %lld): the mock keeps "
                            "about 5 MiB / 100,000 message sets per partition\n",
                            t->topic, p, (long long)lo, (long long)hi);
                if (t->low_seen[p] == 0) db->retention_lost++;
                t->low_seen[p] = lo;
            }
            if (t->low_seen[p] > 0) {
                lost++;
                if (out)
                    db_appendf(out, cap, " %s:%d:%lld", t->topic, p, (long long)t->low_seen[p]);
            }
        }
    }
    return lost;
}

/* Runs one control line; writes one reply line (without newline) into out. */
static void db_control_exec(db_t *db, char *line, char *out, size_t cap)
{
    char *argv[8];
    int argc = 0;
    char *save = NULL;
    for (char *t = strtok_r(line, " \t\r", &save); t && argc < 8;
         t = strtok_r(NULL, " \t\r", &save))
        argv[argc++] = t;
    out[0] = '\0';
    if (argc == 0) {
        snprintf(out, cap, "err empty command");
        return;
    }
    const char *cmd = argv[0];
    int32_t id;
    rd_kafka_resp_err_t e;

    if (strcmp(cmd, "ping") == 0) {
        snprintf(out, cap, "ok pong");
    } else if (strcmp(cmd, "help") == 0) {
        snprintf(out, cap,
                 "ok commands: ping broker-down broker-up request-errors "
                 "clear-request-errors rtt leader topic-create watermarks retention");
    } else if (strcmp(cmd, "broker-down") == 0 || strcmp(cmd, "broker-up") == 0) {
        int down = cmd[7] == 'd';
        if (argc != 2 || db_broker_id(db, argv[1], &id)) {
            snprintf(out, cap, "err usage: %s ID (1..%d)", cmd, db->opts.brokers);
            return;
        }
        e = down ? rd_kafka_mock_broker_set_down(db->mc, id)
                 : rd_kafka_mock_broker_set_up(db->mc, id);
        if (e) {
            snprintf(out, cap, "err %s", rd_kafka_err2str(e));
            return;
        }
        db->brokers_down += down ? 1 : -1;
        if (db->brokers_down < 0) db->brokers_down = 0;
        snprintf(out, cap, "ok broker %d %s", (int)id, down ? "down" : "up");
    } else if (strcmp(cmd, "request-errors") == 0) {
        int16_t key;
        rd_kafka_resp_err_t code;
        int cnt;
        if (argc != 4) {
            snprintf(out, cap, "err usage: request-errors APIKEY ERRCODE COUNT");
        } else if (db_parse_apikey(argv[1], &key)) {
            snprintf(out, cap, "err unknown api key \"%s\"", argv[1]);
        } else if (db_parse_errcode(argv[2], &code)) {
            snprintf(out, cap, "err unknown error code \"%s\"", argv[2]);
        } else if (db_parse_int(argv[3], 1, 100000, &cnt)) {
            snprintf(out, cap, "err bad count \"%s\" (1..100000)", argv[3]);
        } else {
            rd_kafka_resp_err_t *errs = lf_malloc(sizeof(*errs) * (size_t)cnt);
            for (int i = 0; i < cnt; i++)
                errs[i] = code;
            rd_kafka_mock_push_request_errors_array(db->mc, key, (size_t)cnt, errs);
            lf_free(errs);
            snprintf(out, cap, "ok %d x %s on api %d", cnt, rd_kafka_err2name(code), (int)key);
        }
    } else if (strcmp(cmd, "clear-request-errors") == 0) {
        int16_t key;
        if (argc != 2 || db_parse_apikey(argv[1], &key)) {
            snprintf(out, cap, "err usage: clear-request-errors APIKEY");
            return;
        }
        rd_kafka_mock_clear_request_errors(db->mc, key);
        snprintf(out, cap, "ok cleared api %d", (int)key);
    } else if (strcmp(cmd, "rtt") == 0) {
        int ms;
        if (argc != 3 || db_broker_id(db, argv[1], &id) || db_parse_int(argv[2], 0, 600000, &ms)) {
            snprintf(out, cap, "err usage: rtt ID MS");
            return;
        }
        e = rd_kafka_mock_broker_set_rtt(db->mc, id, ms);
        if (e)
            snprintf(out, cap, "err %s", rd_kafka_err2str(e));
        else
            snprintf(out, cap, "ok broker %d rtt %d ms", (int)id, ms);
    } else if (strcmp(cmd, "leader") == 0) {
        int part;
        if (argc != 4 || db_parse_int(argv[2], 0, 100000, &part) ||
            db_broker_id(db, argv[3], &id)) {
            snprintf(out, cap, "err usage: leader TOPIC PARTITION ID");
            return;
        }
        e = rd_kafka_mock_partition_set_leader(db->mc, argv[1], part, id);
        if (e)
            snprintf(out, cap, "err %s", rd_kafka_err2str(e));
        else
            snprintf(out, cap, "ok %s [%d] leader %d", argv[1], part, (int)id);
    } else if (strcmp(cmd, "topic-create") == 0) {
        int parts;
        char errbuf[256];
        if (argc != 3 || !db_topic_name_ok(argv[1]) || db_parse_int(argv[2], 1, 10000, &parts)) {
            snprintf(out, cap, "err usage: topic-create TOPIC PARTITIONS");
        } else if (db_topic_create(db, argv[1], parts, errbuf, sizeof(errbuf))) {
            snprintf(out, cap, "err %s", errbuf);
        } else {
            snprintf(out, cap, "ok %s %d", argv[1], parts);
        }
    } else if (strcmp(cmd, "watermarks") == 0) {
        if (argc != 2) {
            snprintf(out, cap, "err usage: watermarks TOPIC");
            return;
        }
        db_cmd_watermarks(db, argv[1], out, cap);
    } else if (strcmp(cmd, "retention") == 0) {
        char list[DB_LINE_MAX * 4] = "";
        int n = db_retention_scan(db, 0, list, sizeof(list));
        snprintf(out, cap, "ok %d", n);
        db_appendf(out, cap, "%s", list);
    } else {
        snprintf(out, cap, "err unknown command \"%s\" (try help)", cmd);
    }
}

/*---- Control port ------------------------------------------------------------------------*/

static int db_control_listen(db_t *db)
{
    struct sockaddr_in sin = {.sin_family = AF_INET};
    socklen_t len = sizeof(sin);
    int one = 1;
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    sin.sin_port = htons((uint16_t)db->opts.control_port);
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) goto err;
    (void)setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (bind(fd, (struct sockaddr *)&sin, sizeof(sin)) < 0) goto err;
    if (listen(fd, 8) < 0) goto err;
    if (getsockname(fd, (struct sockaddr *)&sin, &len) < 0) goto err;
    db->listen_fd = fd;
    if (db->opts.control_port == 0 || db->opts.verbose)
        fprintf(stderr, "control=127.0.0.1:%d\n", ntohs(sin.sin_port));
    return LF_OK;
err:
    fprintf(stderr, "leadflow devbroker: cannot listen on control port 127.0.0.1:%d: %s\n",
            db->opts.control_port, strerror(errno));
    if (fd >= 0) close(fd);
    return LF_ERR;
}

static void db_client_close(db_client_t *c)
{
    if (c->fd >= 0) close(c->fd);
    c->fd = -1;
    c->len = 0;
}

static void db_client_reply(db_client_t *c, const char *reply)
{
    size_t n = strlen(reply);
    char nl = '\n';
    /* Replies are short; a client that does not read them is dropped. */
    if (send(c->fd, reply, n, MSG_NOSIGNAL) != (ssize_t)n || send(c->fd, &nl, 1, MSG_NOSIGNAL) != 1)
        db_client_close(c);
}

static void db_client_read(db_t *db, db_client_t *c)
{
    ssize_t r = recv(c->fd, c->buf + c->len, sizeof(c->buf) - c->len, 0);
    if (r <= 0) {
        db_client_close(c);
        return;
    }
    c->len += (size_t)r;
    for (;;) {
        char *nl = memchr(c->buf, '\n', c->len);
        if (!nl) break;
        *nl = '\0';
        char reply[DB_LINE_MAX * 4];
        db_control_exec(db, c->buf, reply, sizeof(reply));
        if (db->opts.verbose) fprintf(stderr, "devbroker: control: %s\n", reply);
        size_t used = (size_t)(nl - c->buf) + 1;
        memmove(c->buf, nl + 1, c->len - used);
        c->len -= used;
        db_client_reply(c, reply);
        if (c->fd < 0) return;
    }
    if (c->len == sizeof(c->buf)) {
        db_client_reply(c, "err line too long");
        db_client_close(c);
    }
}

/* Waits up to timeout_ms for control traffic and serves it. */
static void db_control_poll(db_t *db, int timeout_ms)
{
    struct pollfd pfd[DB_MAX_CLIENTS + 1];
    int map[DB_MAX_CLIENTS + 1];
    int n = 0;
    if (db->listen_fd >= 0) {
        pfd[n] = (struct pollfd){.fd = db->listen_fd, .events = POLLIN};
        map[n++] = -1;
    }
    for (int i = 0; i < DB_MAX_CLIENTS; i++)
        if (db->clients[i].fd >= 0) {
            pfd[n] = (struct pollfd){.fd = db->clients[i].fd, .events = POLLIN};
            map[n++] = i;
        }
    if (poll(pfd, (nfds_t)n, timeout_ms) <= 0) return;
    for (int k = 0; k < n; k++) {
        if (!(pfd[k].revents & (POLLIN | POLLHUP | POLLERR))) continue;
        if (map[k] >= 0) {
            db_client_read(db, &db->clients[map[k]]);
            continue;
        }
        int fd = accept4(db->listen_fd, NULL, NULL, SOCK_CLOEXEC);
        if (fd < 0) continue;
        int slot = -1;
        for (int i = 0; i < DB_MAX_CLIENTS && slot < 0; i++)
            if (db->clients[i].fd < 0) slot = i;
        if (slot < 0) {
            static const char busy[] = "err too many control connections\n";
            (void)send(fd, busy, sizeof(busy) - 1, MSG_NOSIGNAL);
            close(fd);
            continue;
        }
        db->clients[slot].fd = fd;
        db->clients[slot].len = 0;
    }
}

/*---- Main --------------------------------------------------------------------------------*/

static int64_t db_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int db_start_cluster(db_t *db)
{
    char errstr[512];
    rd_kafka_conf_t *conf = db_conf_new(&db->opts);
    db->rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof(errstr));
    if (!db->rk) {
        rd_kafka_conf_destroy(conf);
        fprintf(stderr, "leadflow devbroker: cannot create the mock's client: %s\n", errstr);
        return LF_ERR;
    }
    if (db->opts.port > 0) db_bind_arm(db->opts.port, db->opts.brokers);
    db->mc = rd_kafka_mock_cluster_new(db->rk, db->opts.brokers);
    db_bind_disarm();
    int bind_err = atomic_load(&db_bind_errno);
    if (db->opts.port > 0 && (bind_err || atomic_load(&db_bind_done) != db->opts.brokers)) {
        int port = atomic_load(&db_bind_failed_port);
        if (bind_err)
            fprintf(stderr,
                    "leadflow devbroker: cannot listen on 127.0.0.1:%d: %s (is another "
                    "devbroker or Kafka running? choose another --port)\n",
                    port, strerror(bind_err));
        else
            fprintf(stderr,
                    "leadflow devbroker: the mock cluster did not bind the expected ports "
                    "%d..%d (bound %d of %d); is the binary linked with -rdynamic?\n",
                    db->opts.port, db->opts.port + db->opts.brokers - 1, atomic_load(&db_bind_done),
                    db->opts.brokers);
        return LF_ERR;
    }
    if (!db->mc) {
        fprintf(stderr, "leadflow devbroker: cannot create the mock cluster\n");
        return LF_ERR;
    }
    snprintf(db->bootstraps, sizeof(db->bootstraps), "%s",
             rd_kafka_mock_cluster_bootstraps(db->mc));
    for (int i = 0; i < db->opts.ntopics; i++) {
        char errbuf[256];
        if (db_topic_create(db, db->opts.topics[i], db->opts.partitions, errbuf, sizeof(errbuf))) {
            fprintf(stderr, "leadflow devbroker: %s\n", errbuf);
            return LF_ERR;
        }
    }
    return LF_OK;
}

static void db_destroy(db_t *db)
{
    for (int i = 0; i < DB_MAX_CLIENTS; i++)
        db_client_close(&db->clients[i]);
    if (db->listen_fd >= 0) close(db->listen_fd);
    if (db->qrk) rd_kafka_destroy(db->qrk);
    if (db->mc) rd_kafka_mock_cluster_destroy(db->mc);
    if (db->rk) rd_kafka_destroy(db->rk);
    for (int i = 0; i < db->ntopics; i++)
        lf_free(db->topics[i].low_seen);
    lf_free(db->opts.topics_buf);
}

int lf_cmd_devbroker(int argc, char **argv)
{
    db_t *db = lf_calloc(1, sizeof(*db));
    int rc = 1;
    db->listen_fd = -1;
    for (int i = 0; i < DB_MAX_CLIENTS; i++)
        db->clients[i].fd = -1;

    int prc = db_parse_args(argc, argv, &db->opts);
    if (prc != LF_OK) {
        rc = prc == 1 ? 0 : 1; /* usage errors: 1, as every command */
        goto done;
    }

    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = db_on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);

    if (db_start_cluster(db)) goto done;
    if (db->opts.control_port >= 0 && db_control_listen(db)) goto done;

    printf("bootstrap.servers=%s\n", db->bootstraps);
    fflush(stdout);

    int64_t next_check = db_now_ms() + DB_RETENTION_EVERY_MS;
    while (!db_stop) {
        db_control_poll(db, 200);
        rd_kafka_poll(db->rk, 0);
        if (db->qrk) rd_kafka_poll(db->qrk, 0);
        if (db->opts.retention_check && db->brokers_down == 0 && db_now_ms() >= next_check) {
            db_retention_scan(db, 1, NULL, 0);
            next_check = db_now_ms() + DB_RETENTION_EVERY_MS;
        }
    }
    rc = 0;
    if (db->opts.retention_check) {
        db_retention_scan(db, 1, NULL, 0);
        if (db->retention_lost) {
            fprintf(stderr,
                    "leadflow devbroker: %d partition(s) lost their oldest messages; exit 3\n",
                    db->retention_lost);
            rc = 3;
        }
    }
done:
    db_destroy(db);
    lf_free(db);
    return rc;
}
