/* The outputs of `leadflow gen`: a file of length-prefixed records (or key<TAB>value lines),
 * a Kafka producer that waits for every delivery report, and the --stats JSON summary
 * (see leadflow/gen_writer.h). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <librdkafka/rdkafka.h>

#include "leadflow/alloc.h"
#include "leadflow/common.h"
#include "leadflow/event.h"
#include "leadflow/gen_writer.h"
#include "leadflow/kafka.h"

/*---- File writer --------------------------------------------------------------------------*/

typedef struct {
    FILE *f;
    const char *path;
    int lines;
    char *buf;
} gen_file_t;

static int gen_file_write(lf_gen_writer_t *w, const lf_gen_rec_t *rec, lf_err_t *err)
{
    gen_file_t *fw = w->ctx;
    if (fw->lines) {
        fwrite(rec->key, 1, rec->key_len, fw->f);
        putc('\t', fw->f);
        fwrite(rec->val, 1, rec->val_len, fw->f);
        putc('\n', fw->f);
    } else {
        uint8_t h[4] = {(uint8_t)(rec->key_len >> 24), (uint8_t)(rec->key_len >> 16),
                        (uint8_t)(rec->key_len >> 8), (uint8_t)rec->key_len};
        fwrite(h, 1, 4, fw->f);
        fwrite(rec->key, 1, rec->key_len, fw->f);
        h[0] = (uint8_t)(rec->val_len >> 24);
        h[1] = (uint8_t)(rec->val_len >> 16);
        h[2] = (uint8_t)(rec->val_len >> 8);
        h[3] = (uint8_t)rec->val_len;
        fwrite(h, 1, 4, fw->f);
        fwrite(rec->val, 1, rec->val_len, fw->f);
    }
    if (ferror(fw->f)) {
        lf_err_set(err, 1, "cannot write %s: %s", fw->path, strerror(errno));
        return LF_ERR;
    }
    return LF_OK;
}

static int gen_file_close(lf_gen_writer_t *w, lf_err_t *err)
{
    gen_file_t *fw = w->ctx;
    int bad = fflush(fw->f) != 0 || ferror(fw->f);
    int e = errno;
    if (fw->f != stdout && fclose(fw->f) != 0) bad = 1;
    if (bad) lf_err_set(err, 1, "cannot write %s: %s", fw->path, strerror(e ? e : errno));
    lf_free(fw->buf);
    lf_free(fw);
    lf_free(w);
    return bad ? LF_ERR : LF_OK;
}

lf_gen_writer_t *lf_gen_writer_file(const char *path, int lines, lf_err_t *err)
{
    FILE *f = strcmp(path, "-") == 0 ? stdout : fopen(path, "wb");
    if (!f) {
        lf_err_set(err, 1, "cannot open %s: %s", path, strerror(errno));
        return NULL;
    }
    gen_file_t *fw = lf_calloc(1, sizeof(*fw));
    fw->f = f;
    fw->path = path;
    fw->lines = lines;
    fw->buf = lf_malloc(1 << 20);
    setvbuf(f, fw->buf, _IOFBF, 1 << 20);
    lf_gen_writer_t *w = lf_calloc(1, sizeof(*w));
    w->write = gen_file_write;
    w->close = gen_file_close;
    w->ctx = fw;
    return w;
}

/*---- Kafka writer -------------------------------------------------------------------------*/

typedef struct {
    rd_kafka_t *rk;
    char *topic;
    uint64_t sent, delivered, failed;
    char first_err[256];
    int fatal;
} gen_kafka_t;

/* @locality the thread calling rd_kafka_poll/flush: ours */
static void gen_kafka_dr(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
    (void)rk;
    gen_kafka_t *k = opaque;
    if (!m->err) {
        k->delivered++;
        return;
    }
    if (k->failed++ == 0)
        snprintf(k->first_err, sizeof(k->first_err), "delivery to %s [%d] failed: %s",
                 rd_kafka_topic_name(m->rkt), (int)m->partition, rd_kafka_err2str(m->err));
}

static void gen_kafka_error(rd_kafka_t *rk, int err, const char *reason, void *opaque)
{
    gen_kafka_t *k = opaque;
    if (err == RD_KAFKA_RESP_ERR__FATAL) {
        char buf[200];
        rd_kafka_fatal_error(rk, buf, sizeof(buf));
        k->fatal = 1;
        if (!k->first_err[0]) snprintf(k->first_err, sizeof(k->first_err), "fatal: %s", buf);
    }
    fprintf(stderr, "leadflow gen: kafka: %s\n", reason);
}

static int gen_kafka_write(lf_gen_writer_t *w, const lf_gen_rec_t *rec, lf_err_t *err)
{
    gen_kafka_t *k = w->ctx;
    for (;;) {
        if (k->failed || k->fatal) {
            lf_err_set(err, 1, "%s", k->first_err);
            return LF_ERR;
        }
        rd_kafka_resp_err_t e = rd_kafka_producev(
            k->rk, RD_KAFKA_V_TOPIC(k->topic), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
            RD_KAFKA_V_KEY(rec->key, rec->key_len),
            RD_KAFKA_V_VALUE((void *)rec->val, rec->val_len), RD_KAFKA_V_END);
        if (e == RD_KAFKA_RESP_ERR__QUEUE_FULL) {
            rd_kafka_poll(k->rk, 50); /* back-pressure: wait for deliveries */
            continue;
        }
        if (e) {
            lf_err_set(err, 1, "produce to %s: %s", k->topic, rd_kafka_err2str(e));
            return LF_ERR;
        }
        break;
    }
    if ((++k->sent & 63) == 0) rd_kafka_poll(k->rk, 0);
    return LF_OK;
}

static int gen_kafka_close(lf_gen_writer_t *w, lf_err_t *err)
{
    gen_kafka_t *k = w->ctx;
    /* Every message ends in a delivery report within message.timeout.ms. */
    while (rd_kafka_outq_len(k->rk) > 0 && !k->fatal)
        rd_kafka_flush(k->rk, 1000);
    int rc = LF_OK;
    if (k->failed || k->fatal || k->delivered != k->sent) {
        lf_err_set(err, 1, "%llu of %llu messages not delivered%s%s",
                   (unsigned long long)(k->sent - k->delivered), (unsigned long long)k->sent,
                   k->first_err[0] ? ": " : "", k->first_err);
        rc = LF_ERR;
    }
    rd_kafka_destroy(k->rk);
    lf_free(k->topic);
    lf_free(k);
    lf_free(w);
    return rc;
}

lf_gen_writer_t *lf_gen_writer_kafka(const char *brokers, const char *topic,
                                     const char *const *props, int nprops, lf_err_t *err)
{
    char errstr[512];
    gen_kafka_t *k = lf_calloc(1, sizeof(*k));
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    lf_kafka_route_logs(conf);
    static const char *const defaults[][2] = {
        {"enable.idempotence", "true"},
        {"linger.ms", "50"},
        {"batch.num.messages", "10000"},
        {"reconnect.backoff.max.ms", "1000"},
        /* The mock broker keeps ~5 MiB per partition: zstd makes that ~3x more events
         * (measured: 300k default events over 8 partitions, all kept; lz4 lost 4 %). */
        {"compression.type", "zstd"},
        {"client.id", "leadflow-gen"},
    };
    if (rd_kafka_conf_set(conf, "bootstrap.servers", brokers, errstr, sizeof(errstr)))
        goto conf_err;
    for (size_t i = 0; i < sizeof(defaults) / sizeof(defaults[0]); i++)
        if (rd_kafka_conf_set(conf, defaults[i][0], defaults[i][1], errstr, sizeof(errstr)))
            goto conf_err;
    for (int i = 0; i < nprops; i++) {
        char name[256];
        const char *eq = strchr(props[i], '=');
        if (!eq || eq == props[i] || (size_t)(eq - props[i]) >= sizeof(name)) {
            snprintf(errstr, sizeof(errstr), "expected name=value, got \"%s\"", props[i]);
            goto conf_err;
        }
        memcpy(name, props[i], (size_t)(eq - props[i]));
        name[eq - props[i]] = '\0';
        if (rd_kafka_conf_set(conf, name, eq + 1, errstr, sizeof(errstr))) goto conf_err;
    }
    rd_kafka_conf_set_opaque(conf, k);
    rd_kafka_conf_set_dr_msg_cb(conf, gen_kafka_dr);
    rd_kafka_conf_set_error_cb(conf, gen_kafka_error);
    k->rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof(errstr));
    if (!k->rk) goto conf_err;
    k->topic = lf_strdup(topic);
    lf_gen_writer_t *w = lf_calloc(1, sizeof(*w));
    w->write = gen_kafka_write;
    w->close = gen_kafka_close;
    w->ctx = k;
    return w;
conf_err:
    lf_err_set(err, 1, "kafka producer: %s", errstr);
    rd_kafka_conf_destroy(conf);
    lf_free(k);
    return NULL;
}

/*---- Stats --------------------------------------------------------------------------------*/

int lf_gen_stats_write(const lf_gen_stats_t *st, const lf_gen_opts_t *o, const char *path,
                       lf_err_t *err)
{
    FILE *f = strcmp(path, "-") == 0 ? stdout : fopen(path, "w");
    if (!f) {
        lf_err_set(err, 1, "cannot write %s: %s", path, strerror(errno));
        return LF_ERR;
    }
    fprintf(f, "{\"events\":%llu,\"valid\":%llu,\"duplicates\":%llu,\"bad\":%llu,",
            (unsigned long long)st->events, (unsigned long long)st->valid,
            (unsigned long long)st->duplicates, (unsigned long long)st->bad);
    fprintf(f, "\"bad_by_reason\":{");
    for (int i = 1; i < LF_BAD__COUNT; i++)
        fprintf(f, "%s\"%s\":%llu", i > 1 ? "," : "", lf_bad_name((lf_bad_t)i),
                (unsigned long long)st->bad_by_reason[i]);
    fprintf(f, "},\"leads\":%llu,\"identified\":%llu,\"anonymous_only\":%llu,",
            (unsigned long long)st->leads, (unsigned long long)st->identified,
            (unsigned long long)st->anonymous_only);
    fprintf(f, "\"by_kind\":{");
    int first = 1;
    for (int i = 1; i < LF_KIND__COUNT; i++) {
        if (!st->by_kind[i]) continue;
        fprintf(f, "%s\"%s\":%llu", first ? "" : ",", lf_kind_name((lf_kind_t)i),
                (unsigned long long)st->by_kind[i]);
        first = 0;
    }
    fprintf(f, "},\"bytes\":%llu,\"seed\":%llu,\"format\":\"%s\",\"lead_population\":%llu}\n",
            (unsigned long long)st->bytes, (unsigned long long)o->seed,
            o->format == LF_GEN_JSON ? "json" : "msgpack", (unsigned long long)o->leads);
    int bad = ferror(f);
    if (f != stdout)
        bad |= fclose(f);
    else
        bad |= fflush(f);
    if (bad) {
        lf_err_set(err, 1, "cannot write %s: %s", path, strerror(errno));
        return LF_ERR;
    }
    return LF_OK;
}
