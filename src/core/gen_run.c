/* The run: options and their defaults, the loop that draws each record (malformed,
 * duplicate or valid) from one seeded stream, the ring of recent records a duplicate
 * re-sends, pacing to a target rate, and the counts (lf_gen_stats_t). */
#include <math.h>
#include <signal.h>
#include <time.h>

#include "gen_int.h"
#include "leadflow/alloc.h"

static volatile sig_atomic_t gen_stop;

void lf_gen_interrupt(void)
{
    gen_stop = 1;
}

int lf_gen_interrupted(void)
{
    return gen_stop != 0;
}

int lf_gen_opts_check(const lf_gen_opts_t *o, lf_err_t *err)
{
    if (o->leads < 1 || o->leads > 100000000) {
        lf_err_set(err, 1, "--leads must be between 1 and 100000000");
        return LF_ERR;
    }
    if (!(o->dup_rate >= 0 && o->bad_rate >= 0 && o->anon_rate >= 0 && o->anon_rate <= 1 &&
          o->dup_rate + o->bad_rate <= 1)) {
        lf_err_set(err, 1, "rates must be in [0, 1] and --dup-rate + --bad-rate <= 1");
        return LF_ERR;
    }
    if (!(o->span_days > 0 && o->span_days <= 3650) || !(o->zipf >= 0 && o->zipf <= 10) ||
        !(o->rate_eps >= 0)) {
        lf_err_set(err, 1, "--span-days must be in (0, 3650], --zipf in [0, 10], --rate >= 0");
        return LF_ERR;
    }
    if (o->start_ms < 946684800000LL || o->start_ms > 4102444800000LL - 3650LL * 86400000) {
        lf_err_set(err, 1, "--start-ms must be an epoch-ms time between 2000 and 2090");
        return LF_ERR;
    }
    return LF_OK;
}

void lf_gen_opts_default(lf_gen_opts_t *o)
{
    memset(o, 0, sizeof(*o));
    o->leads = 10000;
    o->events = 100000;
    o->seed = 1;
    o->format = LF_GEN_MSGPACK;
    o->dup_rate = 0.01;
    o->bad_rate = 0.005;
    o->anon_rate = 0.3;
    o->rate_eps = 0;
    o->start_ms = 1767225600000LL;
    o->span_days = 30;
    o->zipf = 0.9;
}

double lf_gen_clock(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static void gen_pace(const lf_gen_opts_t *o, uint64_t i, double t0)
{
    double target = t0 + (double)i / o->rate_eps;
    double now = lf_gen_clock();
    if (now >= target) return;
    double d = target - now;
    struct timespec ts = {(time_t)d, (long)((d - (double)(time_t)d) * 1e9)};
    nanosleep(&ts, NULL);
}

static int gen_emit(lf_gen_t *g, const char *key, uint32_t klen, const uint8_t *val, uint32_t vlen,
                    lf_bad_t bad, int dup, lf_kind_t kind, lf_err_t *err)
{
    lf_gen_rec_t rec = {key, klen, val, vlen, bad, dup, kind};
    g->st->events++;
    g->st->bytes += klen + vlen;
    return g->w->write(g->w, &rec, err);
}

static void gen_ring_push(lf_gen_t *g, lf_kind_t kind)
{
    if (g->key_len + g->enc.len > GEN_RING_SLOT) return;
    uint32_t i = g->ring_head;
    uint8_t *p = g->ring + (size_t)i * GEN_RING_SLOT;
    memcpy(p, g->key, g->key_len);
    memcpy(p + g->key_len, g->enc.buf, g->enc.len);
    g->slots[i] = (lf_gen_slot_t){g->key_len, (uint32_t)g->enc.len, kind};
    g->ring_head = (i + 1) % GEN_RING;
    if (g->ring_n < GEN_RING) g->ring_n++;
}

static int gen_overflow(lf_err_t *err)
{
    lf_err_set(err, 1, "internal error: event larger than %d bytes", GEN_VAL_CAP);
    return LF_ERR;
}

/* A malformed record: built as a valid event with the defect in, or truncated after. */
static int gen_step_bad(lf_gen_t *g, lf_err_t *err)
{
    lf_gen_ev_t ev;
    ev.bad = lf_gen_model_plan_bad(g, &ev);
    if (ev.bad == LF_BAD_NOT_A_MAP) {
        lf_gen_event_not_a_map(g, ev.lead);
    } else {
        lf_bad_t reason = ev.bad;
        ev.bad = reason == LF_BAD_NOT_DECODABLE ? LF_BAD_NONE : reason;
        lf_gen_event_build(g, &ev);
        ev.bad = reason;
        if (reason == LF_BAD_NOT_DECODABLE) /* cut off in transit */
            g->enc.len = g->enc.len / 4 + lf_gen_rng_below(&g->rng, (uint32_t)g->enc.len / 2);
    }
    if (g->enc.overflow) return gen_overflow(err);
    g->st->bad++;
    g->st->bad_by_reason[ev.bad]++;
    return gen_emit(g, g->key, g->key_len, g->enc.buf, (uint32_t)g->enc.len, ev.bad, 0,
                    LF_KIND_OTHER, err);
}

/* A re-sending of one of the last GEN_RING valid records, byte for byte. */
static int gen_step_dup(lf_gen_t *g, lf_err_t *err)
{
    uint32_t back = lf_gen_rng_below(&g->rng, g->ring_n);
    uint32_t s = (g->ring_head + GEN_RING - 1 - back) % GEN_RING;
    const uint8_t *p = g->ring + (size_t)s * GEN_RING_SLOT;
    g->st->duplicates++;
    return gen_emit(g, (const char *)p, g->slots[s].klen, p + g->slots[s].klen, g->slots[s].vlen,
                    LF_BAD_NONE, 1, g->slots[s].kind, err);
}

static int gen_step_valid(lf_gen_t *g, lf_err_t *err)
{
    lf_gen_ev_t ev;
    uint32_t lead = lf_gen_model_pick_lead(g);
    lf_gen_model_plan_valid(g, lead, &ev);
    lf_gen_event_build(g, &ev);
    if (g->enc.overflow) return gen_overflow(err);
    lf_gen_lead_t *l = &g->leads[lead];
    l->nev++;
    if (!(l->flags & GL_SEEN)) {
        l->flags |= GL_SEEN;
        g->st->leads++;
    }
    g->st->valid++;
    g->st->by_kind[ev.kind]++;
    gen_ring_push(g, ev.kind);
    return gen_emit(g, g->key, g->key_len, g->enc.buf, (uint32_t)g->enc.len, LF_BAD_NONE, 0,
                    ev.kind, err);
}

static lf_gen_t *gen_new(const lf_gen_opts_t *o, lf_gen_writer_t *w, lf_gen_stats_t *st)
{
    lf_gen_t *g = lf_calloc(1, sizeof(*g));
    g->o = *o;
    g->st = st;
    g->w = w;
    lf_gen_rng_seed(&g->rng, o->seed);
    g->leads = lf_calloc(o->leads, sizeof(*g->leads));
    g->cdf = lf_malloc(o->leads * sizeof(*g->cdf));
    g->perm = lf_malloc(o->leads * sizeof(*g->perm));
    g->enc.buf = lf_malloc(GEN_VAL_CAP);
    g->enc.cap = GEN_VAL_CAP;
    g->enc.json = o->format == LF_GEN_JSON;
    g->ring = lf_malloc((size_t)GEN_RING * GEN_RING_SLOT);
    lf_gen_model_init(g);
    return g;
}

/* Counts the people seen (identified or anonymous only) and frees g. */
static void gen_finish(lf_gen_t *g)
{
    for (uint64_t k = 0; k < g->o.leads; k++) {
        if (!(g->leads[k].flags & GL_SEEN)) continue;
        if (g->leads[k].flags & GL_IDENTIFIED)
            g->st->identified++;
        else
            g->st->anonymous_only++;
    }
    lf_free(g->ring);
    lf_free(g->enc.buf);
    lf_free(g->perm);
    lf_free(g->cdf);
    lf_free(g->leads);
    lf_free(g);
}

int lf_gen_run(const lf_gen_opts_t *o, lf_gen_writer_t *w, lf_gen_stats_t *st, lf_err_t *err)
{
    int rc = LF_OK;
    if (lf_gen_opts_check(o, err)) return LF_ERR;
    memset(st, 0, sizeof(*st));
    lf_gen_t *g = gen_new(o, w, st);
    double span_ms = o->span_days * 86400000.0;
    double t0 = lf_gen_clock();
    for (uint64_t i = 0; i < o->events && rc == LF_OK; i++) {
        if (gen_stop) {
            lf_err_set(err, 2, "interrupted after %llu events", (unsigned long long)i);
            rc = LF_ERR;
            break;
        }
        if (o->rate_eps > 0) gen_pace(o, i, t0);
        g->t_base = o->start_ms + (int64_t)(span_ms * (double)i / (double)o->events);
        double r = lf_gen_rng_unit(&g->rng);
        if (r < o->bad_rate)
            rc = gen_step_bad(g, err);
        else if (r < o->bad_rate + o->dup_rate && g->ring_n > 0)
            rc = gen_step_dup(g, err);
        else
            rc = gen_step_valid(g, err);
    }
    gen_finish(g);
    return rc;
}
