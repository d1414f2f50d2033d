/* The error replies of a Redis Cluster node a client acts on (cluster.h): MOVED and ASK, which
 * name the node that serves a slot, and TRYAGAIN and CLUSTERDOWN, which ask for a later retry.
 * Redis writes the first two as "-MOVED <slot> <endpoint>:<port>" (and "-ASK ..."), the
 * endpoint being the node's IP, hostname or, with cluster-preferred-endpoint-type
 * unknown-endpoint, nothing; an IPv6 address comes without brackets, so the port is what
 * follows the last colon. */
#include <string.h>

#include "leadflow/cluster.h"

/* s[0..len) is 1 to 5 decimal digits whose value is at most max: *out. */
static int lf_digits(const char *s, size_t len, unsigned max, unsigned *out)
{
    if (len == 0 || len > 5) return LF_ERR;
    unsigned v = 0;
    for (size_t i = 0; i < len; i++) {
        if (s[i] < '0' || s[i] > '9') return LF_ERR;
        v = v * 10 + (unsigned)(s[i] - '0');
    }
    if (v > max) return LF_ERR;
    *out = v;
    return LF_OK;
}

/* err[0..len) is `word` alone or `word` followed by a space and anything. */
static int lf_first_word(const char *err, size_t len, const char *word)
{
    size_t n = strlen(word);
    return len >= n && memcmp(err, word, n) == 0 && (len == n || err[n] == ' ');
}

/* "<slot> <host>:<port>", the rest of a MOVED or ASK. */
static int lf_redirect_target(const char *s, size_t len, lf_cluster_redirect_t *out)
{
    const char *sp = memchr(s, ' ', len);
    unsigned slot, port;
    if (!sp || lf_digits(s, (size_t)(sp - s), LF_CLUSTER_SLOTS - 1, &slot) != LF_OK) return LF_ERR;
    const char *ep = sp + 1, *end = s + len;
    const char *colon = NULL;
    for (const char *p = ep; p < end; p++) {
        unsigned char c = (unsigned char)*p;
        if (c <= ' ' || c == 0x7f) return LF_ERR; /* blank, control byte, NUL: not a host */
        if (c == ':') colon = p;
    }
    if (!colon || lf_digits(colon + 1, (size_t)(end - colon - 1), 65535, &port) != LF_OK ||
        port == 0)
        return LF_ERR;
    size_t hl = (size_t)(colon - ep);
    if (hl >= LF_CLUSTER_HOST_MAX) return LF_ERR;
    memcpy(out->host, ep, hl);
    out->host[hl] = '\0';
    out->slot = (uint16_t)slot;
    out->port = (uint16_t)port;
    return LF_OK;
}

int lf_cluster_redirect_parse(const char *err, size_t len, lf_cluster_redirect_t *out)
{
    memset(out, 0, sizeof(*out));
    if (!err) return LF_ERR;
    lf_cluster_reply_kind_t kind = LF_CLUSTER_REPLY_OTHER;
    size_t skip = 0;
    if (len > 6 && memcmp(err, "MOVED ", 6) == 0) {
        kind = LF_CLUSTER_MOVED;
        skip = 6;
    } else if (len > 4 && memcmp(err, "ASK ", 4) == 0) {
        kind = LF_CLUSTER_ASK;
        skip = 4;
    } else if (lf_first_word(err, len, "TRYAGAIN")) {
        out->kind = LF_CLUSTER_TRYAGAIN;
        return LF_OK;
    } else if (lf_first_word(err, len, "CLUSTERDOWN")) {
        out->kind = LF_CLUSTER_CLUSTERDOWN;
        return LF_OK;
    }
    if (kind == LF_CLUSTER_REPLY_OTHER ||
        lf_redirect_target(err + skip, len - skip, out) != LF_OK) {
        memset(out, 0, sizeof(*out));
        return LF_ERR;
    }
    out->kind = kind;
    return LF_OK;
}
