/* latency_probe: event-to-transition latency for `make bench`. Independent of leadflow's code.
 *
 * Reads length-prefixed records (the format of `leadflow gen --out FILE`: 4-byte big-endian
 * key length, key, 4-byte big-endian value length, value), produces them to --topic at
 * --rate records/s for --duration seconds, and remembers the send time of every messageId
 * (CLOCK_MONOTONIC, taken right before rd_kafka_producev). A second thread consumes the
 * transitions topic (MessagePack or JSON values) from offset 0 and records the receive time
 * of every transition together with its `trigger`. Latency = receive - send, for the
 * transitions whose trigger this probe sent (transitions of the decay sweep carry no trigger
 * and are not counted; a re-sent duplicate keeps its first send time, and only the first
 * receive of a trigger / messageId is a sample: with --match-key messageId the ~1 % re-sent
 * duplicates of the input arrive again later, and timing that copy from the first send
 * added the distance between the two sends, tens of ms, to the p99.9).
 *
 * Build (bench/run.sh does it):
 *   cc -O2 -pthread -o latency_probe bench/latency_probe.c \
 *      $(pkg-config --cflags --libs rdkafka msgpack)
 *
 * Usage: latency_probe --brokers B --topic T --transitions T2 --input FILE --rate R
 *                      --duration S [--warmup-s S] [--drain-s S] [--linger-ms L]
 *                      [--fetch-wait-ms W] [--samples FILE] [--timeline FILE] [--match-key trigger]
 *                      [-X name=value ...] [-C name=value ...]
 * (-X: producer properties, -C: consumer properties; --match-key messageId with
 * --transitions = --topic measures the broker path alone: produce -> consume of the events
 * themselves; --timeline writes "send time since start (s) <TAB> latency (ms) <TAB>
 * partition received from" per sample, in receive order)
 *
 * Before the clock starts, the producer fetches the metadata of --topic and the consumer's
 * partitions are started. Without that, librdkafka 2.0.2 keeps every message produced to a
 * topic it has no metadata for in its unassigned queue until its 1 s topic scan asks for
 * the metadata: the first ~1 s of records then wait ~1 s, and at 8-20 s per rate that alone
 * was the p99. --warmup-s S produces at the same rate for S seconds before the measured
 * --duration; those records are reported apart (warmup_*), not in the percentiles: the
 * process under test has its own startup (e.g. its output producer's first metadata
 * request, the same 1 s scan). The JSON also reports the first measured second on its own
 * (first_s_*).
 * Prints one JSON object on stdout. */
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <librdkafka/rdkafka.h>
#include <msgpack.h>

static volatile sig_atomic_t stop;
static void on_sig(int s)
{
    (void)s;
    stop = 1;
}

static int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static uint64_t hash_bytes(const void *p, size_t n)
{
    /* FNV-1a 64 + a final mix: plenty for ~10^7 distinct uuids. */
    const unsigned char *s = p;
    uint64_t h = 1469598103934665603ULL;
    for (size_t i = 0; i < n; i++) h = (h ^ s[i]) * 1099511628211ULL;
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdULL;
    h ^= h >> 33;
    return h ? h : 1;
}

/*---- messageId -> send time (only the producer thread writes; read after it is done) ----*/
typedef struct {
    uint64_t key;
    int64_t sent;
    int got; /* received already (set after the run, by the main thread) */
} slot_t;
static slot_t *tab;
static size_t tabcap;

static void tab_put(uint64_t key, int64_t sent)
{
    size_t i = key & (tabcap - 1);
    while (tab[i].key) {
        if (tab[i].key == key) return; /* a re-sent duplicate: keep the first send */
        i = (i + 1) & (tabcap - 1);
    }
    tab[i].key = key;
    tab[i].sent = sent;
}

static slot_t *tab_get(uint64_t key)
{
    size_t i = key & (tabcap - 1);
    while (tab[i].key) {
        if (tab[i].key == key) return &tab[i];
        i = (i + 1) & (tabcap - 1);
    }
    return NULL;
}

/* The messageId of a MessagePack map, found without a full decode: the fixstr key
 * "messageId" followed by a str value. Returns the length or -1. */
static int find_msgid(const unsigned char *v, size_t n, const unsigned char **out)
{
    static const unsigned char key[] = "\xa9messageId";
    const unsigned char *p = memmem(v, n, key, 10);
    if (!p) return -1;
    p += 10;
    const unsigned char *end = v + n;
    if (p >= end) return -1;
    size_t len;
    if ((*p & 0xe0) == 0xa0) {
        len = *p & 0x1f;
        p += 1;
    } else if (*p == 0xd9 && p + 2 <= end) {
        len = p[1];
        p += 2;
    } else if (*p == 0xda && p + 3 <= end) {
        len = ((size_t)p[1] << 8) | p[2];
        p += 3;
    } else {
        return -1;
    }
    if (p + len > end) return -1;
    *out = p;
    return (int)len;
}

/*---- The transitions consumer -------------------------------------------------------------*/
typedef struct {
    uint64_t key; /* hash of the trigger; 0 = no trigger */
    int64_t recv;
    int32_t partition;
} rx_t;

static rx_t *rx;
static size_t nrx, caprx;
static atomic_long rx_total, rx_last_ns;
static atomic_int consumer_stop, consumer_ready;
static const char *match_key = "trigger"; /* --match-key: messageId measures the broker alone */

typedef struct {
    const char *brokers, *topic;
    int fetch_wait_ms;
    const char **props; /* -C name=value */
    int nprops;
} cons_args_t;

static void cset(rd_kafka_conf_t *c, const char *k, const char *v)
{
    char err[512];
    if (rd_kafka_conf_set(c, k, v, err, sizeof(err)) != RD_KAFKA_CONF_OK) {
        fprintf(stderr, "latency_probe: %s=%s: %s\n", k, v, err);
        exit(2);
    }
}

/* Sets "name=value" strings (-X, -C). */
static void cset_list(rd_kafka_conf_t *c, const char **props, int n)
{
    for (int i = 0; i < n; i++) {
        char name[256];
        const char *eq = strchr(props[i], '=');
        if (!eq || (size_t)(eq - props[i]) >= sizeof(name)) {
            fprintf(stderr, "latency_probe: -X/-C need name=value\n");
            exit(2);
        }
        memcpy(name, props[i], (size_t)(eq - props[i]));
        name[eq - props[i]] = 0;
        cset(c, name, eq + 1);
    }
}

static uint64_t trigger_key(const unsigned char *v, size_t n)
{
    if (n && v[0] == '{') {
        char pat[64];
        int pl = snprintf(pat, sizeof(pat), "\"%s\":", match_key);
        const char *p = memmem(v, n, pat, (size_t)pl);
        if (!p) return 0;
        p += pl;
        while (p < (const char *)v + n && *p == ' ') p++;
        if (p >= (const char *)v + n || *p != '"') return 0;
        const char *s = p + 1, *e = memchr(s, '"', (size_t)((const char *)v + n - s));
        return e ? hash_bytes(s, (size_t)(e - s)) : 0;
    }
    msgpack_unpacked up;
    msgpack_unpacked_init(&up);
    size_t off = 0;
    uint64_t key = 0;
    if (msgpack_unpack_next(&up, (const char *)v, n, &off) == MSGPACK_UNPACK_SUCCESS &&
        up.data.type == MSGPACK_OBJECT_MAP) {
        for (uint32_t i = 0; i < up.data.via.map.size; i++) {
            const msgpack_object *k = &up.data.via.map.ptr[i].key;
            const msgpack_object *val = &up.data.via.map.ptr[i].val;
            if (k->type == MSGPACK_OBJECT_STR && k->via.str.size == strlen(match_key) &&
                memcmp(k->via.str.ptr, match_key, k->via.str.size) == 0) {
                if (val->type == MSGPACK_OBJECT_STR)
                    key = hash_bytes(val->via.str.ptr, val->via.str.size);
                break;
            }
        }
    }
    msgpack_unpacked_destroy(&up);
    return key;
}

/* Records one consumed message (the consumer thread only) and destroys it. */
static void rx_add(rd_kafka_message_t *m)
{
    int64_t t = now_ns();
    if (!m->err) {
        if (nrx == caprx) {
            caprx = caprx ? caprx * 2 : 1 << 16;
            rx = realloc(rx, caprx * sizeof(*rx));
            if (!rx) abort();
        }
        rx[nrx].key = trigger_key(m->payload, m->len);
        rx[nrx].recv = t;
        rx[nrx].partition = m->partition;
        nrx++;
        atomic_fetch_add(&rx_total, 1);
        atomic_store(&rx_last_ns, (long)t);
    }
    rd_kafka_message_destroy(m);
}

static void *consumer_main(void *arg)
{
    cons_args_t *a = arg;
    char err[512], buf[32];
    rd_kafka_conf_t *c = rd_kafka_conf_new();
    cset(c, "bootstrap.servers", a->brokers);
    cset(c, "group.id", "bench-latency-probe");
    cset(c, "enable.auto.commit", "false");
    cset(c, "enable.partition.eof", "false");
    snprintf(buf, sizeof(buf), "%d", a->fetch_wait_ms);
    cset(c, "fetch.wait.max.ms", buf);
    cset(c, "client.id", "bench-latency-probe");
    cset_list(c, a->props, a->nprops);
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_CONSUMER, c, err, sizeof(err));
    if (!rk) {
        fprintf(stderr, "latency_probe: consumer: %s\n", err);
        exit(2);
    }
    rd_kafka_poll_set_consumer(rk);
    const struct rd_kafka_metadata *md = NULL;
    rd_kafka_topic_t *rkt = rd_kafka_topic_new(rk, a->topic, NULL);
    if (rd_kafka_metadata(rk, 0, rkt, &md, 10000) || md->topic_cnt != 1 || md->topics[0].err ||
        md->topics[0].partition_cnt == 0) {
        fprintf(stderr, "latency_probe: no metadata for %s\n", a->topic);
        exit(2);
    }
    rd_kafka_topic_partition_list_t *as =
        rd_kafka_topic_partition_list_new(md->topics[0].partition_cnt);
    for (int p = 0; p < md->topics[0].partition_cnt; p++)
        rd_kafka_topic_partition_list_add(as, a->topic, md->topics[0].partitions[p].id)->offset =
            RD_KAFKA_OFFSET_BEGINNING;
    rd_kafka_metadata_destroy(md);
    rd_kafka_topic_destroy(rkt);
    rd_kafka_assign(rk, as);
    rd_kafka_topic_partition_list_destroy(as);
    /* Let the fetcher resolve BEGINNING (ListOffsets) and send its first Fetch. */
    for (int i = 0; i < 4; i++) {
        rd_kafka_message_t *m = rd_kafka_consumer_poll(rk, 25);
        if (m) rx_add(m); /* a record already there: kept like any other */
    }
    atomic_store(&consumer_ready, 1);
    while (!atomic_load(&consumer_stop)) {
        rd_kafka_message_t *m = rd_kafka_consumer_poll(rk, 50);
        if (m) rx_add(m);
    }
    rd_kafka_consumer_close(rk);
    rd_kafka_destroy(rk);
    return NULL;
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return x < y ? -1 : x > y;
}

static double pct(const int64_t *v, size_t n, double q)
{
    if (!n) return -1;
    size_t i = (size_t)(q * (double)(n - 1) + 0.5);
    if (i >= n) i = n - 1;
    return (double)v[i] / 1e6;
}

static int delivered, failed;
static void dr_cb(rd_kafka_t *rk, const rd_kafka_message_t *m, void *o)
{
    (void)rk;
    (void)o;
    if (m->err) failed++;
    else delivered++;
}

int main(int argc, char **argv)
{
    const char *brokers = NULL, *topic = NULL, *trans = NULL, *input = NULL, *samples = NULL,
               *timeline = NULL;
    double rate = 0, duration = 20, drain_s = 15, warmup = 0;
    int linger = 5, fetch_wait = 10;
    const char *props[64], *cprops[64];
    int nprops = 0, ncprops = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!v) {
            fprintf(stderr, "latency_probe: %s needs a value\n", a);
            return 2;
        }
        if (!strcmp(a, "--brokers")) brokers = v;
        else if (!strcmp(a, "--topic")) topic = v;
        else if (!strcmp(a, "--transitions")) trans = v;
        else if (!strcmp(a, "--input")) input = v;
        else if (!strcmp(a, "--rate")) rate = atof(v);
        else if (!strcmp(a, "--duration")) duration = atof(v);
        else if (!strcmp(a, "--warmup-s")) warmup = atof(v);
        else if (!strcmp(a, "--drain-s")) drain_s = atof(v);
        else if (!strcmp(a, "--linger-ms")) linger = atoi(v);
        else if (!strcmp(a, "--fetch-wait-ms")) fetch_wait = atoi(v);
        else if (!strcmp(a, "--samples")) samples = v;
        else if (!strcmp(a, "--timeline")) timeline = v;
        else if (!strcmp(a, "--match-key")) match_key = v;
        else if (!strcmp(a, "-X") && nprops < 64) props[nprops++] = v;
        else if (!strcmp(a, "-C") && ncprops < 64) cprops[ncprops++] = v;
        else {
            fprintf(stderr, "latency_probe: unknown option %s\n", a);
            return 2;
        }
        i++;
    }
    if (!brokers || !topic || !trans || !input || rate <= 0 || duration <= 0 || warmup < 0) {
        fprintf(stderr, "usage: latency_probe --brokers B --topic T --transitions T2 --input FILE "
                        "--rate R --duration S [--warmup-s S] [--drain-s S] [--linger-ms L] "
                        "[--fetch-wait-ms W] [--samples FILE] [--timeline FILE] [-X k=v] "
                        "[-C k=v]\n");
        return 2;
    }
    signal(SIGINT, on_sig);
    signal(SIGTERM, on_sig);

    int fd = open(input, O_RDONLY);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) != 0 || st.st_size < 8) {
        fprintf(stderr, "latency_probe: cannot read %s\n", input);
        return 2;
    }
    const unsigned char *data = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
    if (data == MAP_FAILED) {
        fprintf(stderr, "latency_probe: mmap %s failed\n", input);
        return 2;
    }
    madvise((void *)data, (size_t)st.st_size, MADV_SEQUENTIAL);
    size_t want = (size_t)(rate * (duration + warmup)) + 16;
    tabcap = 1024;
    while (tabcap < want * 2) tabcap *= 2;
    tab = calloc(tabcap, sizeof(*tab));
    if (!tab) abort();

    char err[512], buf[32];
    rd_kafka_conf_t *pc = rd_kafka_conf_new();
    cset(pc, "bootstrap.servers", brokers);
    cset(pc, "enable.idempotence", "true");
    snprintf(buf, sizeof(buf), "%d", linger);
    cset(pc, "linger.ms", buf);
    cset(pc, "compression.type", "zstd");
    cset(pc, "queue.buffering.max.messages", "1000000");
    cset(pc, "client.id", "bench-latency-probe");
    cset_list(pc, props, nprops);
    rd_kafka_conf_set_dr_msg_cb(pc, dr_cb);
    rd_kafka_t *prod = rd_kafka_new(RD_KAFKA_PRODUCER, pc, err, sizeof(err));
    if (!prod) {
        fprintf(stderr, "latency_probe: producer: %s\n", err);
        return 2;
    }

    /* The producer learns the topic's partitions now, not at its 1 s topic scan (see the
     * header comment). */
    {
        rd_kafka_topic_t *rkt = rd_kafka_topic_new(prod, topic, NULL);
        const struct rd_kafka_metadata *md = NULL;
        if (rd_kafka_metadata(prod, 0, rkt, &md, 10000) || md->topic_cnt != 1 ||
            md->topics[0].err || md->topics[0].partition_cnt == 0) {
            fprintf(stderr, "latency_probe: producer: no metadata for %s\n", topic);
            return 2;
        }
        rd_kafka_metadata_destroy(md);
        rd_kafka_topic_destroy(rkt);
    }

    cons_args_t ca = {brokers, trans, fetch_wait, cprops, ncprops};
    pthread_t th;
    pthread_create(&th, NULL, consumer_main, &ca);
    while (!atomic_load(&consumer_ready) && !stop) usleep(1000);

    /* Produce, paced: record i is due at t0 + i/rate. */
    size_t pos = 0, sent = 0, with_id = 0, queue_full = 0;
    int64_t t0 = now_ns(), tm = t0 + (int64_t)(warmup * 1e9), tend = tm + (int64_t)(duration * 1e9);
    double max_behind_ms = 0;
    while (!stop) {
        int64_t t = now_ns();
        if (t >= tend) break;
        size_t due = (size_t)((double)(t - t0) * 1e-9 * rate);
        if (due > sent + 1 && (double)(due - sent) / rate * 1e3 > max_behind_ms)
            max_behind_ms = (double)(due - sent) / rate * 1e3;
        int out_of_input = 0;
        while (sent < due) {
            if (pos + 8 > (size_t)st.st_size) {
                out_of_input = 1;
                break;
            }
            uint32_t kl = (uint32_t)data[pos] << 24 | (uint32_t)data[pos + 1] << 16 |
                          (uint32_t)data[pos + 2] << 8 | data[pos + 3];
            const unsigned char *key = data + pos + 4;
            size_t vp = pos + 4 + kl;
            uint32_t vl = (uint32_t)data[vp] << 24 | (uint32_t)data[vp + 1] << 16 |
                          (uint32_t)data[vp + 2] << 8 | data[vp + 3];
            const unsigned char *val = data + vp + 4;
            const unsigned char *id;
            int idl = find_msgid(val, vl, &id);
            int64_t ts = now_ns();
            rd_kafka_resp_err_t e = rd_kafka_producev(
                prod, RD_KAFKA_V_TOPIC(topic), RD_KAFKA_V_MSGFLAGS(0),
                RD_KAFKA_V_KEY(key, kl), RD_KAFKA_V_VALUE((void *)val, vl), RD_KAFKA_V_END);
            if (e == RD_KAFKA_RESP_ERR__QUEUE_FULL) {
                queue_full++;
                rd_kafka_poll(prod, 1);
                continue;
            }
            if (idl > 0) {
                tab_put(hash_bytes(id, (size_t)idl), ts);
                with_id++;
            }
            pos = vp + 4 + vl;
            sent++;
        }
        if (out_of_input) {
            fprintf(stderr, "latency_probe: input exhausted after %zu records\n", sent);
            break;
        }
        rd_kafka_poll(prod, 0);
        struct timespec sl = {0, 200000};
        nanosleep(&sl, NULL);
    }
    double send_secs = (double)(now_ns() - t0) * 1e-9;
    rd_kafka_flush(prod, 30000);

    /* Drain: wait until no transition arrived for 3 s (or drain_s in all). */
    int64_t drain_end = now_ns() + (int64_t)(drain_s * 1e9);
    while (!stop && now_ns() < drain_end) {
        long last = atomic_load(&rx_last_ns);
        if (last && now_ns() - last > 3000000000LL) break;
        usleep(100000);
    }
    atomic_store(&consumer_stop, 1);
    pthread_join(th, NULL);
    rd_kafka_destroy(prod);

    int64_t *lat = malloc((nrx + 1) * sizeof(*lat));
    int64_t *lat1 = malloc((nrx + 1) * sizeof(*lat1)); /* sent in the first measured second */
    int64_t *latw = malloc((nrx + 1) * sizeof(*latw)); /* sent during the warm-up */
    size_t nlat = 0, nlat1 = 0, nlatw = 0, notrig = 0, unknown = 0, repeated = 0;
    FILE *tl = timeline ? fopen(timeline, "w") : NULL;
    for (size_t i = 0; i < nrx; i++) {
        if (!rx[i].key) {
            notrig++;
            continue;
        }
        slot_t *sl = tab_get(rx[i].key);
        if (!sl) {
            unknown++;
            continue;
        }
        if (sl->got++) {
            repeated++;
            continue;
        }
        int64_t s = sl->sent;
        if (s < tm) latw[nlatw++] = rx[i].recv - s;
        else lat[nlat++] = rx[i].recv - s;
        if (s >= tm && s - tm < 1000000000LL) lat1[nlat1++] = rx[i].recv - s;
        if (tl)
            fprintf(tl, "%.4f\t%.3f\t%d\n", (double)(s - t0) * 1e-9,
                    (double)(rx[i].recv - s) / 1e6, (int)rx[i].partition);
    }
    if (tl) fclose(tl);
    qsort(lat, nlat, sizeof(*lat), cmp_i64);
    qsort(lat1, nlat1, sizeof(*lat1), cmp_i64);
    qsort(latw, nlatw, sizeof(*latw), cmp_i64);
    if (samples) {
        FILE *f = fopen(samples, "w");
        if (f) {
            for (size_t i = 0; i < nlat; i++) fprintf(f, "%.3f\n", (double)lat[i] / 1e6);
            fclose(f);
        }
    }
    double sum = 0;
    for (size_t i = 0; i < nlat; i++) sum += (double)lat[i];
    printf("{\"target_rate\": %.1f, \"sent\": %zu, \"send_seconds\": %.3f, \"achieved_rate\": %.1f, "
           "\"with_message_id\": %zu, \"delivered\": %d, \"delivery_failed\": %d, "
           "\"queue_full\": %zu, \"max_behind_ms\": %.1f, \"transitions\": %zu, "
           "\"no_trigger\": %zu, \"unknown_trigger\": %zu, \"repeated_trigger\": %zu, "
           "\"samples\": %zu, "
           "\"p50_ms\": %.3f, \"p90_ms\": %.3f, \"p99_ms\": %.3f, \"p999_ms\": %.3f, "
           "\"max_ms\": %.3f, \"mean_ms\": %.3f, \"first_s_samples\": %zu, \"first_s_p50_ms\": %.3f, "
           "\"first_s_max_ms\": %.3f, \"warmup_s\": %.1f, \"warmup_samples\": %zu, "
           "\"warmup_p50_ms\": %.3f, \"warmup_max_ms\": %.3f, \"linger_ms\": %d, "
           "\"probe_fetch_wait_ms\": %d}\n",
           rate, sent, send_secs, (double)sent / send_secs, with_id, delivered, failed, queue_full,
           max_behind_ms, nrx, notrig, unknown, repeated, nlat, pct(lat, nlat, 0.5), pct(lat, nlat, 0.9),
           pct(lat, nlat, 0.99), pct(lat, nlat, 0.999), nlat ? (double)lat[nlat - 1] / 1e6 : -1,
           nlat ? sum / (double)nlat / 1e6 : -1, nlat1, pct(lat1, nlat1, 0.5),
           nlat1 ? (double)lat1[nlat1 - 1] / 1e6 : -1, warmup, nlatw, pct(latw, nlatw, 0.5),
           nlatw ? (double)latw[nlatw - 1] / 1e6 : -1, linger, fetch_wait);
    fflush(stdout);
    free(lat);
    free(lat1);
    free(latw);
    munmap((void *)data, (size_t)st.st_size);
    close(fd);
    return nlat ? 0 : 1;
}
