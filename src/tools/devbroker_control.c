/* The dev broker's control port: a line protocol on 127.0.0.1 (one command per line, one
 * reply line `ok ...` or `err ...` each; `leadflow devbroker --help` lists them) that tests
 * use to inject faults into the mock cluster: brokers down/up, request errors, latency,
 * leadership moves, topics, watermarks and the retention check. Served on the main thread
 * by lf_devbroker_control_poll. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include "devbroker_int.h"
#include "leadflow/alloc.h"

/*---- Arguments ----------------------------------------------------------------------------*/

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
    if (lf_devbroker_parse_int(s, 0, 1000, &v) == LF_OK) {
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
    if (lf_devbroker_parse_int(s, -200, 1000, &v) == LF_OK) {
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
    if (!s || lf_devbroker_parse_int(s, 1, db->opts.brokers, &v)) return LF_ERR;
    *id = v;
    return LF_OK;
}

static int db_partition_count(db_t *db, const char *topic, char *errbuf, size_t cap)
{
    rd_kafka_t *q = lf_devbroker_query_handle(db);
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

/*---- Commands -----------------------------------------------------------------------------*/

/* Each command: argv[0] is its name; writes one reply line (without newline) into out. */

static void db_cmd_ping(db_t *db, int argc, char **argv, char *out, size_t cap)
{
    (void)db, (void)argc, (void)argv;
    snprintf(out, cap, "ok pong");
}

static void db_cmd_help(db_t *db, int argc, char **argv, char *out, size_t cap)
{
    (void)db, (void)argc, (void)argv;
    snprintf(out, cap,
             "ok commands: ping broker-down broker-up request-errors "
             "clear-request-errors rtt leader topic-create watermarks retention");
}

/* broker-down ID | broker-up ID */
static void db_cmd_broker(db_t *db, int argc, char **argv, char *out, size_t cap)
{
    const char *cmd = argv[0];
    int down = cmd[7] == 'd';
    int32_t id;
    if (argc != 2 || db_broker_id(db, argv[1], &id)) {
        snprintf(out, cap, "err usage: %s ID (1..%d)", cmd, db->opts.brokers);
        return;
    }
    rd_kafka_resp_err_t e =
        down ? rd_kafka_mock_broker_set_down(db->mc, id) : rd_kafka_mock_broker_set_up(db->mc, id);
    if (e) {
        snprintf(out, cap, "err %s", rd_kafka_err2str(e));
        return;
    }
    db->brokers_down += down ? 1 : -1;
    if (db->brokers_down < 0) db->brokers_down = 0;
    snprintf(out, cap, "ok broker %d %s", (int)id, down ? "down" : "up");
}

static void db_cmd_request_errors(db_t *db, int argc, char **argv, char *out, size_t cap)
{
    int16_t key;
    rd_kafka_resp_err_t code;
    int cnt;
    if (argc != 4) {
        snprintf(out, cap, "err usage: request-errors APIKEY ERRCODE COUNT");
    } else if (db_parse_apikey(argv[1], &key)) {
        snprintf(out, cap, "err unknown api key \"%s\"", argv[1]);
    } else if (db_parse_errcode(argv[2], &code)) {
        snprintf(out, cap, "err unknown error code \"%s\"", argv[2]);
    } else if (lf_devbroker_parse_int(argv[3], 1, 100000, &cnt)) {
        snprintf(out, cap, "err bad count \"%s\" (1..100000)", argv[3]);
    } else {
        rd_kafka_resp_err_t *errs = lf_malloc(sizeof(*errs) * (size_t)cnt);
        for (int i = 0; i < cnt; i++)
            errs[i] = code;
        rd_kafka_mock_push_request_errors_array(db->mc, key, (size_t)cnt, errs);
        lf_free(errs);
        snprintf(out, cap, "ok %d x %s on api %d", cnt, rd_kafka_err2name(code), (int)key);
    }
}

static void db_cmd_clear_request_errors(db_t *db, int argc, char **argv, char *out, size_t cap)
{
    int16_t key;
    if (argc != 2 || db_parse_apikey(argv[1], &key)) {
        snprintf(out, cap, "err usage: clear-request-errors APIKEY");
        return;
    }
    rd_kafka_mock_clear_request_errors(db->mc, key);
    snprintf(out, cap, "ok cleared api %d", (int)key);
}

static void db_cmd_rtt(db_t *db, int argc, char **argv, char *out, size_t cap)
{
    int32_t id;
    int ms;
    if (argc != 3 || db_broker_id(db, argv[1], &id) ||
        lf_devbroker_parse_int(argv[2], 0, 600000, &ms)) {
        snprintf(out, cap, "err usage: rtt ID MS");
        return;
    }
    rd_kafka_resp_err_t e = rd_kafka_mock_broker_set_rtt(db->mc, id, ms);
    if (e)
        snprintf(out, cap, "err %s", rd_kafka_err2str(e));
    else
        snprintf(out, cap, "ok broker %d rtt %d ms", (int)id, ms);
}

static void db_cmd_leader(db_t *db, int argc, char **argv, char *out, size_t cap)
{
    int32_t id;
    int part;
    if (argc != 4 || lf_devbroker_parse_int(argv[2], 0, 100000, &part) ||
        db_broker_id(db, argv[3], &id)) {
        snprintf(out, cap, "err usage: leader TOPIC PARTITION ID");
        return;
    }
    rd_kafka_resp_err_t e = rd_kafka_mock_partition_set_leader(db->mc, argv[1], part, id);
    if (e)
        snprintf(out, cap, "err %s", rd_kafka_err2str(e));
    else
        snprintf(out, cap, "ok %s [%d] leader %d", argv[1], part, (int)id);
}

static void db_cmd_topic_create(db_t *db, int argc, char **argv, char *out, size_t cap)
{
    int parts;
    char errbuf[256];
    if (argc != 3 || !lf_devbroker_topic_name_ok(argv[1]) ||
        lf_devbroker_parse_int(argv[2], 1, 10000, &parts)) {
        snprintf(out, cap, "err usage: topic-create TOPIC PARTITIONS");
    } else if (lf_devbroker_topic_create(db, argv[1], parts, errbuf, sizeof(errbuf))) {
        snprintf(out, cap, "err %s", errbuf);
    } else {
        snprintf(out, cap, "ok %s %d", argv[1], parts);
    }
}

static void db_cmd_watermarks(db_t *db, int argc, char **argv, char *out, size_t cap)
{
    if (argc != 2) {
        snprintf(out, cap, "err usage: watermarks TOPIC");
        return;
    }
    const char *topic = argv[1];
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
        lf_devbroker_appendf(out, cap, " %d:%lld:%lld", p, (long long)lo, (long long)hi);
    }
}

static void db_cmd_retention(db_t *db, int argc, char **argv, char *out, size_t cap)
{
    (void)argc, (void)argv;
    char list[DB_LINE_MAX * 4] = "";
    int n = lf_devbroker_retention_scan(db, 0, list, sizeof(list));
    snprintf(out, cap, "ok %d", n);
    lf_devbroker_appendf(out, cap, "%s", list);
}

static const struct {
    const char *name;
    void (*run)(db_t *db, int argc, char **argv, char *out, size_t cap);
} db_commands[] = {
    {"ping", db_cmd_ping},
    {"help", db_cmd_help},
    {"broker-down", db_cmd_broker},
    {"broker-up", db_cmd_broker},
    {"request-errors", db_cmd_request_errors},
    {"clear-request-errors", db_cmd_clear_request_errors},
    {"rtt", db_cmd_rtt},
    {"leader", db_cmd_leader},
    {"topic-create", db_cmd_topic_create},
    {"watermarks", db_cmd_watermarks},
    {"retention", db_cmd_retention},
};

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
    for (size_t i = 0; i < sizeof(db_commands) / sizeof(db_commands[0]); i++)
        if (strcmp(argv[0], db_commands[i].name) == 0) {
            db_commands[i].run(db, argc, argv, out, cap);
            return;
        }
    snprintf(out, cap, "err unknown command \"%s\" (try help)", argv[0]);
}

/*---- Control port -------------------------------------------------------------------------*/

int lf_devbroker_control_listen(db_t *db)
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

void lf_devbroker_control_poll(db_t *db, int timeout_ms)
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

void lf_devbroker_control_close(db_t *db)
{
    for (int i = 0; i < DB_MAX_CLIENTS; i++)
        db_client_close(&db->clients[i]);
    if (db->listen_fd >= 0) close(db->listen_fd);
}
