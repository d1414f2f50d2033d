/* consume_only: the input side's limit for `make bench`. A plain librdkafka consumer that
 * reads every message of a topic from offset 0 and decodes each value with msgpack-c
 * (msgpack_unpack_next, then a walk of the top-level map to find `messageId`), nothing else:
 * no Redis, no scoring, no producing. Independent of leadflow's code on purpose.
 *
 * Build (bench/run.sh does it):
 *   cc -O2 -o consume_only bench/consume_only.c $(pkg-config --cflags --libs rdkafka msgpack)
 *
 * Usage: consume_only --brokers B --topic T --expect N [--group G] [--timeout-s S]
 *                     [-X name=value ...]
 * Consumer settings are those leadflow uses (fetch.wait.max.ms=100,
 * queued.max.messages.kbytes=65536, no auto commit); -X overrides them.
 * Prints one JSON object on stdout: events, seconds (first message to last), eps,
 * decode_errors, keys (total top-level keys seen), msgid_bytes (a checksum of the walk). */
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <librdkafka/rdkafka.h>
#include <msgpack.h>

static volatile sig_atomic_t stop;
static void on_sig(int s)
{
    (void)s;
    stop = 1;
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static void set(rd_kafka_conf_t *c, const char *k, const char *v)
{
    char err[512];
    if (rd_kafka_conf_set(c, k, v, err, sizeof(err)) != RD_KAFKA_CONF_OK) {
        fprintf(stderr, "consume_only: %s=%s: %s\n", k, v, err);
        exit(2);
    }
}

int main(int argc, char **argv)
{
    const char *brokers = NULL, *topic = NULL, *group = "bench-consume-only";
    long long expect = 0;
    double timeout_s = 300;
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    set(conf, "enable.auto.commit", "false");
    set(conf, "enable.auto.offset.store", "false");
    set(conf, "auto.offset.reset", "error");
    set(conf, "enable.partition.eof", "false");
    set(conf, "fetch.wait.max.ms", "100");
    set(conf, "queued.max.messages.kbytes", "65536");
    set(conf, "client.id", "bench-consume-only");
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!v) {
            fprintf(stderr, "consume_only: %s needs a value\n", a);
            return 2;
        }
        if (!strcmp(a, "--brokers")) brokers = v;
        else if (!strcmp(a, "--topic")) topic = v;
        else if (!strcmp(a, "--expect")) expect = atoll(v);
        else if (!strcmp(a, "--group")) group = v;
        else if (!strcmp(a, "--timeout-s")) timeout_s = atof(v);
        else if (!strcmp(a, "-X")) {
            char name[256];
            const char *eq = strchr(v, '=');
            if (!eq || (size_t)(eq - v) >= sizeof(name)) {
                fprintf(stderr, "consume_only: -X needs name=value\n");
                return 2;
            }
            memcpy(name, v, (size_t)(eq - v));
            name[eq - v] = 0;
            set(conf, name, eq + 1);
        } else {
            fprintf(stderr, "consume_only: unknown option %s\n", a);
            return 2;
        }
        i++;
    }
    if (!brokers || !topic || expect <= 0) {
        fprintf(stderr, "usage: consume_only --brokers B --topic T --expect N [--group G] "
                        "[--timeout-s S] [-X k=v]\n");
        return 2;
    }
    set(conf, "bootstrap.servers", brokers);
    set(conf, "group.id", group);
    signal(SIGINT, on_sig);
    signal(SIGTERM, on_sig);

    char err[512];
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, err, sizeof(err));
    if (!rk) {
        fprintf(stderr, "consume_only: %s\n", err);
        return 2;
    }
    rd_kafka_poll_set_consumer(rk);

    /* Every partition of the topic, explicitly from offset 0 (no group join to wait for). */
    const struct rd_kafka_metadata *md = NULL;
    rd_kafka_topic_t *rkt = rd_kafka_topic_new(rk, topic, NULL);
    if (rd_kafka_metadata(rk, 0, rkt, &md, 10000) != RD_KAFKA_RESP_ERR_NO_ERROR ||
        md->topic_cnt != 1 || md->topics[0].err) {
        fprintf(stderr, "consume_only: no metadata for %s\n", topic);
        return 2;
    }
    int nparts = md->topics[0].partition_cnt;
    rd_kafka_topic_partition_list_t *as = rd_kafka_topic_partition_list_new(nparts);
    for (int p = 0; p < nparts; p++)
        rd_kafka_topic_partition_list_add(as, topic, md->topics[0].partitions[p].id)->offset = 0;
    rd_kafka_metadata_destroy(md);
    rd_kafka_topic_destroy(rkt);
    if (rd_kafka_assign(rk, as)) {
        fprintf(stderr, "consume_only: assign failed\n");
        return 2;
    }
    rd_kafka_topic_partition_list_destroy(as);

    msgpack_unpacked up;
    msgpack_unpacked_init(&up);
    long long n = 0, bad = 0, keys = 0, errors = 0;
    uint64_t check = 0;
    double t_first = 0, t_last = 0, t_start = now_s();
    while (!stop && n < expect) {
        if (now_s() - t_start > timeout_s) {
            fprintf(stderr, "consume_only: timeout after %lld of %lld messages\n", n, expect);
            break;
        }
        rd_kafka_message_t *m = rd_kafka_consumer_poll(rk, 100);
        if (!m) continue;
        if (m->err) {
            if (errors++ < 10)
                fprintf(stderr, "consume_only: consumer error: %s\n", rd_kafka_message_errstr(m));
            if (m->err == RD_KAFKA_RESP_ERR__AUTO_OFFSET_RESET) {
                fprintf(stderr, "consume_only: input lost to retention\n");
                rd_kafka_message_destroy(m);
                break;
            }
            rd_kafka_message_destroy(m);
            continue;
        }
        if (n == 0) t_first = now_s();
        size_t off = 0;
        if (msgpack_unpack_next(&up, m->payload, m->len, &off) != MSGPACK_UNPACK_SUCCESS ||
            up.data.type != MSGPACK_OBJECT_MAP) {
            bad++;
        } else {
            const msgpack_object_map *map = &up.data.via.map;
            keys += map->size;
            for (uint32_t k = 0; k < map->size; k++) {
                const msgpack_object *key = &map->ptr[k].key, *val = &map->ptr[k].val;
                if (key->type == MSGPACK_OBJECT_STR && key->via.str.size == 9 &&
                    memcmp(key->via.str.ptr, "messageId", 9) == 0 &&
                    val->type == MSGPACK_OBJECT_STR) {
                    check += val->via.str.size + (uint8_t)val->via.str.ptr[0];
                    break;
                }
            }
        }
        n++;
        t_last = now_s();
        rd_kafka_message_destroy(m);
    }
    msgpack_unpacked_destroy(&up);
    double secs = t_last - t_first;
    printf("{\"events\": %lld, \"seconds\": %.6f, \"eps\": %.1f, \"decode_errors\": %lld, "
           "\"keys\": %lld, \"check\": %" PRIu64 ", \"complete\": %s}\n",
           n, secs, secs > 0 ? (double)(n - 1) / secs : 0.0, bad, keys, check,
           n >= expect ? "true" : "false");
    fflush(stdout);
    rd_kafka_consumer_close(rk);
    rd_kafka_destroy(rk);
    return n >= expect ? 0 : 1;
}
