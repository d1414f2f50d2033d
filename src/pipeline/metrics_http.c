/* The metrics endpoint (metrics.listen): /metrics in Prometheus text format, /healthz (the
 * loop turned within metrics.stuck_after) and /readyz (partitions assigned, Redis answering),
 * served by libmicrohttpd's own thread. The pipeline's thread hands it a copy of its
 * numbers (lf_metrics_publish, at most 4 times a second) under a mutex; requests read that
 * copy, so a slow scrape never holds the pipeline. */
#include <arpa/inet.h>
#include <inttypes.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "leadflow/alloc.h"
#include "leadflow/log.h"
#include "pipeline_int.h"

struct lf_metrics_server {
    struct MHD_Daemon *d;
    pthread_mutex_t mu;
    lf_metrics_t snap;
    int64_t last_loop_mono, stuck_ms;
    int ready;
    char not_ready[200];
};

/* @locality libmicrohttpd's thread. */
static enum MHD_Result lf_reply(struct MHD_Connection *c, unsigned status, const char *type,
                                char *body, size_t len, enum MHD_ResponseMemoryMode mode)
{
    struct MHD_Response *r = MHD_create_response_from_buffer(len, body, mode);
    if (!r) return MHD_NO;
    MHD_add_response_header(r, "Content-Type", type);
    enum MHD_Result ok = MHD_queue_response(c, status, r);
    MHD_destroy_response(r);
    return ok;
}

/* @locality libmicrohttpd's thread, one request at a time (MHD_USE_INTERNAL_POLLING_THREAD). */
static enum MHD_Result lf_metrics_handle(void *cls, struct MHD_Connection *c, const char *url,
                                         const char *method, const char *version,
                                         const char *upload, size_t *upload_len, void **state)
{
    (void)version, (void)upload, (void)upload_len, (void)state;
    lf_metrics_server_t *s = cls;
    char msg[256];
    if (strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0) {
        snprintf(msg, sizeof(msg), "GET only\n");
        return lf_reply(c, MHD_HTTP_METHOD_NOT_ALLOWED, "text/plain", msg, strlen(msg),
                        MHD_RESPMEM_MUST_COPY);
    }
    pthread_mutex_lock(&s->mu);
    if (strcmp(url, "/metrics") == 0) {
        char *buf = NULL;
        size_t cap = 0, len = lf_metrics_render(&s->snap, &buf, &cap);
        pthread_mutex_unlock(&s->mu);
        enum MHD_Result ok = lf_reply(c, MHD_HTTP_OK, "text/plain; version=0.0.4; charset=utf-8",
                                      buf, len, MHD_RESPMEM_MUST_COPY);
        lf_free(buf);
        return ok;
    }
    unsigned status = MHD_HTTP_OK;
    if (strcmp(url, "/healthz") == 0) {
        int64_t idle = lf_now_ms() - s->last_loop_mono;
        if (s->last_loop_mono && idle > s->stuck_ms) {
            status = MHD_HTTP_SERVICE_UNAVAILABLE;
            snprintf(msg, sizeof(msg), "stuck: the processing loop last turned %lld ms ago\n",
                     (long long)idle);
        } else {
            snprintf(msg, sizeof(msg), "ok\n");
        }
    } else if (strcmp(url, "/readyz") == 0) {
        status = s->ready ? MHD_HTTP_OK : MHD_HTTP_SERVICE_UNAVAILABLE;
        snprintf(msg, sizeof(msg), "%s\n", s->ready ? "ready" : s->not_ready);
    } else {
        status = MHD_HTTP_NOT_FOUND;
        snprintf(msg, sizeof(msg), "not found: /metrics, /healthz, /readyz\n");
    }
    pthread_mutex_unlock(&s->mu);
    return lf_reply(c, status, "text/plain; charset=utf-8", msg, strlen(msg),
                    MHD_RESPMEM_MUST_COPY);
}

/* libmicrohttpd's own messages (a failed bind, a broken connection), through leadflow's
 * logger: a JSON log stays JSON. @locality libmicrohttpd's thread, or the caller's at start. */
static void lf_mhd_log(void *cls, const char *fmt, va_list ap)
{
    (void)cls;
    char msg[512];
    vsnprintf(msg, sizeof(msg), fmt, ap);
    size_t n = strlen(msg);
    while (n && (msg[n - 1] == '\n' || msg[n - 1] == '\r'))
        msg[--n] = '\0';
    const char *fields[] = {"component", "libmicrohttpd"};
    lf_log_fields("warn", fields, 2, "%s", msg);
}

lf_metrics_server_t *lf_metrics_start(const char *listen, int port_offset, int stuck_ms,
                                      lf_err_t *err)
{
    char host[256];
    const char *colon = strrchr(listen, ':');
    struct sockaddr_in sa;
    memset(&sa, 0, sizeof(sa));
    sa.sin_family = AF_INET;
    int64_t port = -1;
    if (colon) snprintf(host, sizeof(host), "%.*s", (int)(colon - listen), listen);
    if (!colon || lf_parse_i64(colon + 1, 1, 65535, &port) != LF_OK ||
        inet_pton(AF_INET, host[0] ? host : "0.0.0.0", &sa.sin_addr) != 1) {
        lf_err_set(err, LF_ERR, "metrics.listen: \"%s\" is not IPv4-ADDRESS:PORT", listen);
        return NULL;
    }
    if (port + port_offset > 65535) {
        lf_err_set(err, LF_ERR, "metrics.listen: port %" PRId64 " + worker %d is beyond 65535",
                   port, port_offset + 1);
        return NULL;
    }
    port += port_offset;
    char where[300];
    snprintf(where, sizeof(where), "%s:%" PRId64, host[0] ? host : "0.0.0.0", port);
    sa.sin_port = htons((uint16_t)port);
    lf_metrics_server_t *s = lf_calloc(1, sizeof(*s));
    pthread_mutex_init(&s->mu, NULL);
    lf_metrics_init(&s->snap);
    s->stuck_ms = stuck_ms;
    snprintf(s->not_ready, sizeof(s->not_ready), "starting");
    s->d = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ERROR_LOG, 0, NULL, NULL,
                            lf_metrics_handle, s, MHD_OPTION_EXTERNAL_LOGGER, lf_mhd_log, NULL,
                            MHD_OPTION_SOCK_ADDR, &sa, MHD_OPTION_CONNECTION_TIMEOUT, 10u,
                            MHD_OPTION_END);
    if (!s->d) {
        lf_err_set(err, LF_ERR, "metrics.listen: cannot listen on %s (in use?)", where);
        pthread_mutex_destroy(&s->mu);
        lf_free(s);
        return NULL;
    }
    lf_log("info", "metrics on http://%s/metrics (also /healthz, /readyz)", where);
    return s;
}

void lf_metrics_publish(lf_metrics_server_t *s, const lf_metrics_t *m, int64_t last_loop_mono,
                        int ready, const char *not_ready)
{
    if (!s) return;
    pthread_mutex_lock(&s->mu);
    s->snap = *m;
    s->last_loop_mono = last_loop_mono;
    s->ready = ready;
    snprintf(s->not_ready, sizeof(s->not_ready), "%s", not_ready);
    pthread_mutex_unlock(&s->mu);
}

void lf_metrics_stop(lf_metrics_server_t *s)
{
    if (!s) return;
    MHD_stop_daemon(s->d);
    pthread_mutex_destroy(&s->mu);
    lf_free(s);
}
