/* `leadflow devbroker`: an embedded Kafka for development and tests on librdkafka's mock
 * cluster. This file holds the options, the cluster (created with fixed ports through
 * devbroker_bind.c), its topics, the query client and the retention check, and the command's
 * loop: the main thread polls the optional control port (devbroker_control.c), runs the
 * retention check, and waits for SIGINT/SIGTERM. */
#include <ctype.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "devbroker_int.h"
#include "leadflow/alloc.h"
#include "leadflow/commands.h"
#include "leadflow/common.h"

/*---- Options -----------------------------------------------------------------------------*/

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

int lf_devbroker_parse_int(const char *s, long lo, long hi, int *out)
{
    int64_t v;
    if (lf_parse_i64(s, lo, hi, &v) != LF_OK) return LF_ERR;
    *out = (int)v;
    return LF_OK;
}

int lf_devbroker_topic_name_ok(const char *t)
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
    if (!lf_devbroker_topic_name_ok(t)) {
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
            if (lf_devbroker_parse_int(v, 0, 65535, &o->port)) goto bad;
        } else if ((v = lf_opt_value(argc, argv, &i, "--partitions", &missing))) {
            if (lf_devbroker_parse_int(v, 1, 10000, &o->partitions)) goto bad;
        } else if ((v = lf_opt_value(argc, argv, &i, "--brokers", &missing))) {
            if (lf_devbroker_parse_int(v, 1, 64, &o->brokers)) goto bad;
        } else if ((v = lf_opt_value(argc, argv, &i, "--control-port", &missing))) {
            if (lf_devbroker_parse_int(v, 0, 65535, &o->control_port)) goto bad;
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

/*---- The cluster --------------------------------------------------------------------------*/

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

int lf_devbroker_topic_create(db_t *db, const char *topic, int partitions, char *errbuf, size_t cap)
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
rd_kafka_t *lf_devbroker_query_handle(db_t *db)
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

void lf_devbroker_appendf(char *buf, size_t cap, const char *fmt, ...)
{
    size_t n = strlen(buf);
    if (n + 1 >= cap) return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf + n, cap - n, fmt, ap);
    va_end(ap);
}

int lf_devbroker_retention_scan(db_t *db, int warn, char *out, size_t cap)
{
    int lost = 0;
    if (!lf_devbroker_query_handle(db)) return 0;
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
                    lf_devbroker_appendf(out, cap, " %s:%d:%lld", t->topic, p,
                                         (long long)t->low_seen[p]);
            }
        }
    }
    return lost;
}

/*---- Main --------------------------------------------------------------------------------*/

static volatile sig_atomic_t db_stop;

static void db_on_signal(int sig)
{
    (void)sig;
    db_stop = 1;
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
    if (db->opts.port > 0) lf_devbroker_bind_arm(db->opts.port, db->opts.brokers);
    db->mc = rd_kafka_mock_cluster_new(db->rk, db->opts.brokers);
    lf_devbroker_bind_disarm();
    lf_devbroker_bind_result_t bound;
    lf_devbroker_bind_result(&bound);
    int bind_err = bound.err;
    if (db->opts.port > 0 && (bind_err || bound.done != db->opts.brokers)) {
        int port = bound.failed_port;
        if (bind_err)
            fprintf(stderr,
                    "leadflow devbroker: cannot listen on 127.0.0.1:%d: %s (is another "
                    "devbroker or Kafka running? choose another --port)\n",
                    port, strerror(bind_err));
        else
            fprintf(stderr,
                    "leadflow devbroker: the mock cluster did not bind the expected ports "
                    "%d..%d (bound %d of %d); is the binary linked with -rdynamic?\n",
                    db->opts.port, db->opts.port + db->opts.brokers - 1, bound.done,
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
        if (lf_devbroker_topic_create(db, db->opts.topics[i], db->opts.partitions, errbuf,
                                      sizeof(errbuf))) {
            fprintf(stderr, "leadflow devbroker: %s\n", errbuf);
            return LF_ERR;
        }
    }
    return LF_OK;
}

static void db_destroy(db_t *db)
{
    lf_devbroker_control_close(db);
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
    if (db->opts.control_port >= 0 && lf_devbroker_control_listen(db)) goto done;

    printf("bootstrap.servers=%s\n", db->bootstraps);
    fflush(stdout);

    int64_t next_check = lf_now_ms() + DB_RETENTION_EVERY_MS;
    while (!db_stop) {
        lf_devbroker_control_poll(db, 200);
        rd_kafka_poll(db->rk, 0);
        if (db->qrk) rd_kafka_poll(db->qrk, 0);
        if (db->opts.retention_check && db->brokers_down == 0 && lf_now_ms() >= next_check) {
            lf_devbroker_retention_scan(db, 1, NULL, 0);
            next_check = lf_now_ms() + DB_RETENTION_EVERY_MS;
        }
    }
    rc = 0;
    if (db->opts.retention_check) {
        lf_devbroker_retention_scan(db, 1, NULL, 0);
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
