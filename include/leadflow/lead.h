/* One lead's state, and the pure function that applies an event (or the passing of time)
 * to it: dedup, counters, touches, traits, score, stage. No Kafka, no Redis: the pipeline
 * loads a lead, calls these, and stores the result. */
#ifndef LEADFLOW_LEAD_H
#define LEADFLOW_LEAD_H

#include <stdint.h>

#include "leadflow/common.h"
#include "leadflow/event.h"
#include "leadflow/model.h"
#include "leadflow/stage.h"

#define LF_TOUCH_MAX 64     /* touch values (source/medium/campaign) are cut to this */
#define LF_TRAIT_VAL_MAX 64 /* kept trait values are cut to this */
#define LF_LEAD_TRAITS_MAX 16
#define LF_LEAD_CAPS_MAX 16             /* capped rules with a live window per lead */
#define LF_CAP_WINDOWS 4                /* windows remembered per capped rule (late events) */
#define LF_DEDUP_MASK 0xFFFFFFFFFFFFULL /* messageId hashes are compared on 48 bits */
/* Dedup (docs/contract.md "Semantics"): the messageIds applied to a lead whose event time lies
 * within the window (processing.dedup_window, seconds of event time back from the lead's latest
 * event) are remembered, at most LF_DEDUP_MAX of them: past that the oldest are forgotten. The
 * bound keeps the lead's record small: 160 entries over a window of at most 30 days take at
 * most 160 x (6 + 4) bytes packed (lead_pack.c), 25 parts of <= 64 bytes in the hash. */
#define LF_DEDUP_MAX 160
#define LF_DEDUP_WINDOW_MAX_S (30 * 86400)
#define LF_DEDUP_WINDOW_DEFAULT_S 86400
#define LF_TRANSITIONS_MAX 8 /* transitions one event can cause at most */
#define LF_LEAD_SRC_MAX 4    /* source partitions remembered per lead */
#define LF_HISTORY_KEEP 8
#define LF_RULES_VERSION_MAX                                                                       \
    64 /* kept of a stored rules version */ /* stage changes a lead remembers (the newest) */

typedef struct {
    char source[LF_TOUCH_MAX + 1];
    char medium[LF_TOUCH_MAX + 1];
    char campaign[LF_TOUCH_MAX + 1];
    int64_t at_ms; /* 0 = no touch yet */
} lf_touch_t;

/* Points a capped rule granted in recent windows. */
typedef struct {
    uint16_t rule; /* index in model->eng */
    uint8_t n;
    int64_t window[LF_CAP_WINDOWS]; /* k of [kW, (k+1)W) */
    double granted[LF_CAP_WINDOWS];
} lf_cap_use_t;

typedef struct {
    uint16_t idx; /* index in model->tracked_traits */
    char val[LF_TRAIT_VAL_MAX + 1];
    double num;
    uint8_t is_num;
} lf_trait_t;

/* One remembered messageId: its hash and the whole second of its event time (floor). Whole
 * seconds, not ms, so that the stored form (an offset from the lead's t in seconds) reads
 * back to exactly this and a cached lead prunes like a reloaded one. */
typedef struct {
    uint64_t hash; /* & LF_DEDUP_MASK */
    int64_t sec;
} lf_dedup_entry_t;

/* One remembered stage change: the full record, with its trigger, is the transition
 * published to Kafka; the lead keeps its last LF_HISTORY_KEEP for `leadflow inspect`. */
typedef struct {
    uint64_t seq;
    uint8_t from, to, reason; /* lf_stage_t, lf_stage_t, lf_reason_t */
    int64_t at_ms;
    double score; /* at at_ms, rounded to 2 decimals */
} lf_history_t;

typedef struct {
    char id[LF_ID_MAX + 1];
    uint8_t exists;    /* 0 for a lead never seen before */
    uint8_t anonymous; /* known only by an anonymousId so far */
    lf_stage_t stage;
    uint64_t seq; /* transitions so far */
    double fit;
    double eng;   /* engagement at time t */
    int64_t t_ms; /* time of eng */
    int64_t first_seen_ms, last_seen_ms, stage_at_ms;
    uint32_t counters[LF_KIND__COUNT]; /* events applied, by kind (LF_KIND_OTHER = others) */
    uint64_t events;
    lf_touch_t first_touch, last_touch;
    lf_trait_t traits[LF_LEAD_TRAITS_MAX];
    uint8_t ntraits;
    lf_cap_use_t caps[LF_LEAD_CAPS_MAX];
    uint8_t ncaps;
    /* Newest first: sec descending, then hash ascending (one canonical order, so equal
     * sets encode alike whatever order their events arrived in). */
    lf_dedup_entry_t dedup[LF_DEDUP_MAX];
    uint16_t ndedup;
    /* Recycled by sales (rejected, deal lost; model.recycling): back to mql from nurture only
     * once the lead's event time reaches requalify_at_ms (the recycle's event time plus the
     * cooldown, stored absolute so that a later rules file does not move it; 0: none), and,
     * with requalify: below_enter, after the score was seen below mql_enter since the recycle
     * (requalify, cleared on the first event that sees it below). */
    uint8_t requalify;
    int64_t requalify_at_ms;
    /* The last stage changes, oldest first (seq ascending). */
    lf_history_t history[LF_HISTORY_KEEP];
    uint8_t nhistory;
    /* Store bookkeeping (not scoring): the version written last (optimistic concurrency) and
     * the last offset applied per source partition (a replayed offset is skipped). */
    uint64_t version;
    struct {
        int32_t partition;
        int64_t offset;
    } src[LF_LEAD_SRC_MAX];
    uint8_t nsrc;
    /* Where the record was read from (lead_codec.h): 0 the current layout or not stored,
     * LF_LAYOUT_V1 the layout before packed records (rewritten in the current one by the
     * next write). And a visitor's expiry time as last written (unix seconds, 0: none): the
     * lf:funnel bucket that counts it. Neither is scoring state. */
    uint8_t layout;
    int64_t expires_s;
    /* The rules version that wrote it last (as stored; the encoder writes the model's). */
    char rules_version[LF_RULES_VERSION_MAX + 1];
} lf_lead_t;

typedef enum {
    LF_APPLY_APPLIED = 0,
    LF_APPLY_DUPLICATE, /* its messageId was already applied to this lead */
    LF_APPLY_BOT,       /* ignored: a bot user agent */
} lf_apply_result_t;

typedef struct {
    lf_transition_t t[LF_TRANSITIONS_MAX];
    int n;
} lf_transitions_t;

/* A fresh lead with this id (not yet seen). */
void lf_lead_init(lf_lead_t *lead, lf_str_t id);

/* Apply one decoded event to the lead: an event whose messageId the lead remembers is a
 * duplicate; an applied one is remembered while its event time is within dedup_window_s
 * seconds of the lead's latest event time (t). Transitions caused (including a decay exit
 * that happened before the event's time) are appended to *out. */
lf_apply_result_t lf_lead_apply(lf_lead_t *lead, const lf_event_t *ev, const lf_model_t *m,
                                int dedup_window_s, lf_transitions_t *out);

/* Let time pass to now_ms: if the lead is an MQL whose score fell below the exit threshold
 * by then, move it to nurture at the crossing time. Returns the number of transitions. */
int lf_lead_advance(lf_lead_t *lead, int64_t now_ms, const lf_model_t *m, lf_transitions_t *out);

/* Merge a visitor's state into the lead it identified as (docs/contract.md "Semantics" Identity):
 * engagement decay-aligned, t the later of both, counters added, first touch the earlier
 * one, remembered messageIds united and pruned to the window of the merged t. */
void lf_lead_merge_visitor(lf_lead_t *lead, const lf_lead_t *visitor, const lf_model_t *m,
                           int dedup_window_s);

/* Remember a stage change in the lead's history, in seq order, keeping the newest
 * LF_HISTORY_KEEP (a seq already there is replaced). For the codec and the stage machine. */
void lf_lead_history_add(lf_lead_t *lead, const lf_history_t *h);

/* Whether the messageId is among the lead's remembered ones. */
int lf_lead_seen_message(const lf_lead_t *lead, lf_str_t message_id);

/* Remember a messageId hash at an event second, in order; a hash already there is kept
 * once (at the later second). Past LF_DEDUP_MAX the oldest entry goes (possibly this one).
 * For the codec (legacy fields) and the merge; lf_lead_apply remembers on its own. */
void lf_lead_dedup_add(lf_lead_t *lead, uint64_t hash, int64_t sec);

/* The whole second of a time in ms (floor, also before 1970). */
int64_t lf_dedup_sec(int64_t ms);

/* Replay protection: whether (partition, offset) was already applied to the lead, and
 * recording that it now is. */
int lf_lead_offset_applied(const lf_lead_t *lead, int32_t partition, int64_t offset);
void lf_lead_offset_record(lf_lead_t *lead, int32_t partition, int64_t offset);

/* Score components at time now_ms (now_ms >= t_ms decays; earlier returns the stored). */
double lf_lead_engagement_at(const lf_lead_t *lead, int64_t now_ms, const lf_model_t *m);
double lf_lead_score_at(const lf_lead_t *lead, int64_t now_ms, const lf_model_t *m);

/* The event time at which an MQL's score falls below mql_exit, or INT64_MAX if never
 * (engagement 0, or fit alone keeps it above). The index lf:stage:mql is ordered by it. */
int64_t lf_lead_exit_time(const lf_lead_t *lead, const lf_model_t *m);

#endif
