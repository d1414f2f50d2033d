/* The dev broker's insides, shared by its files (src/tools/devbroker*.c) and nothing else:
 *
 *   devbroker.c          options, the mock cluster, its topics and retention check, the command
 *   devbroker_bind.c     the bind() interposer that gives the mock brokers fixed ports
 *   devbroker_control.c  the control port (line protocol) and its commands
 *
 * Everything runs on the main thread except the mock cluster itself (one librdkafka thread
 * serves all brokers). */
#ifndef LEADFLOW_DEVBROKER_INT_H
#define LEADFLOW_DEVBROKER_INT_H

#include <stddef.h>
#include <stdint.h>

#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>

#include "leadflow/common.h"

#define DB_MAX_TOPICS 64
#define DB_MAX_CLIENTS 8
#define DB_LINE_MAX 1024
#define DB_QUERY_TIMEOUT_MS 2000
#define DB_RETENTION_EVERY_MS 1000

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

/*---- devbroker_bind.c ---------------------------------------------------------------------*/

/* Rewrites the next `count` port-0 AF_INET binds to first_port, first_port + 1, ... */
void lf_devbroker_bind_arm(int first_port, int count);
void lf_devbroker_bind_disarm(void);

typedef struct {
    int err;         /* errno of the first failed rewritten bind, else 0 */
    int failed_port; /* the port it was for */
    int done;        /* rewritten binds that succeeded */
} lf_devbroker_bind_result_t;

/* What the binds since the last lf_devbroker_bind_arm did. */
void lf_devbroker_bind_result(lf_devbroker_bind_result_t *r);

/*---- devbroker.c ----------------------------------------------------------------------------*/

/* A decimal in [lo, hi] (lf_parse_i64), LF_ERR otherwise. */
int lf_devbroker_parse_int(const char *s, long lo, long hi, int *out);
/* Kafka's topic name rule: 1..249 of [A-Za-z0-9._-]. */
int lf_devbroker_topic_name_ok(const char *t);
int lf_devbroker_topic_create(db_t *db, const char *topic, int partitions, char *errbuf,
                              size_t cap);
/* The query client (metadata, watermarks), created on first use; NULL when it cannot be. */
rd_kafka_t *lf_devbroker_query_handle(db_t *db);
/* Checks every created topic's low watermarks. Returns how many partitions have lost their
 * oldest messages, listed into out (" TOPIC:P:LOW" each) when out is not NULL; when `warn`,
 * prints a warning for each new loss. */
int lf_devbroker_retention_scan(db_t *db, int warn, char *out, size_t cap);
/* Appends to a reply buffer; keeps it NUL-terminated and never overflows. */
void lf_devbroker_appendf(char *buf, size_t cap, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/*---- devbroker_control.c --------------------------------------------------------------------*/

/* Listens on 127.0.0.1:opts.control_port (0: any, printed on stderr). */
int lf_devbroker_control_listen(db_t *db);
/* Waits up to timeout_ms for control traffic and serves it. */
void lf_devbroker_control_poll(db_t *db, int timeout_ms);
/* Closes the control connections and the listening socket. */
void lf_devbroker_control_close(db_t *db);

#endif
