/* Decoding one tracking event (docs/contract.md "Events in") from MessagePack or JSON into
 * lf_event_t.
 *
 * Every string in a decoded event lives in the caller's arena, so the input buffer can be
 * released right after decoding and no per-event malloc happens. Nothing here knows Kafka
 * or Redis. */
#ifndef LEADFLOW_EVENT_H
#define LEADFLOW_EVENT_H

#include "leadflow/alloc.h"
#include "leadflow/common.h"

/* Why an event is bad. Each becomes the dead-letter header `lf.reason` (lf_bad_name). */
typedef enum {
    LF_BAD_NONE = 0,
    LF_BAD_NOT_DECODABLE,  /* neither valid MessagePack nor valid JSON */
    LF_BAD_NOT_A_MAP,      /* decodes, but the top level is not a map/object */
    LF_BAD_BATCH_ENVELOPE, /* a Segment {"batch": [...]} envelope: one event per message */
    LF_BAD_MISSING_FIELD,  /* messageId, type, event (for track), both ids, a timestamp */
    LF_BAD_WRONG_TYPE,     /* a field of the wrong type (e.g. userId a number) */
    LF_BAD_ID_TOO_LONG,    /* messageId/userId/anonymousId/previousId over LF_ID_MAX bytes */
    LF_BAD_TIMESTAMP_UNPARSABLE,
    LF_BAD_TIMESTAMP_RANGE, /* "timestamp_out_of_range": outside [min_ts, max_ts] */
    LF_BAD_TOO_LARGE,       /* the value is over limits.max_event_bytes */
    LF_BAD_TOO_COMPLEX,     /* nesting deeper than LF_EVENT_MAX_DEPTH */
    LF_BAD__COUNT
} lf_bad_t;

const char *lf_bad_name(lf_bad_t reason); /* "not_decodable", "missing_field", ... */

/* The built-in kinds (docs/contract.md "Events in"). Any other kind decodes as LF_KIND_OTHER with
 * its name. */
typedef enum {
    LF_KIND_OTHER = 0,
    LF_KIND_PAGE_VIEW,
    LF_KIND_UTM_CLICK,
    LF_KIND_QR_SCAN,
    LF_KIND_FORM_SUBMIT,
    LF_KIND_EMAIL_OPEN,
    LF_KIND_EMAIL_CLICK,
    LF_KIND_EVENT_REGISTER,
    LF_KIND_EVENT_ATTEND,
    LF_KIND_ASSET_DOWNLOAD,
    LF_KIND_VIDEO_VIEW,
    LF_KIND_SALES_ACCEPT,
    LF_KIND_SALES_REJECT,
    LF_KIND_SALES_QUALIFY,
    LF_KIND_OPPORTUNITY_CREATED,
    LF_KIND_DEAL_WON,
    LF_KIND_DEAL_LOST,
    LF_KIND_DISQUALIFY,
    LF_KIND_IDENTIFY,
    LF_KIND_ALIAS,
    LF_KIND__COUNT
} lf_kind_t;

const char *lf_kind_name(lf_kind_t kind); /* "page_view", ...; "other" for LF_KIND_OTHER */
/* Built-in kind for a name: the canonical name ("qr_scan") or a Segment standard event name
 * ("Email Opened", "Email Link Clicked", "Form Submitted", ...), compared case-insensitively.
 * LF_KIND_OTHER when it is neither. */
lf_kind_t lf_kind_from_name(lf_str_t name);

/* Campaign (UTM) fields, in this order. */
typedef enum {
    LF_UTM_SOURCE = 0,
    LF_UTM_MEDIUM,
    LF_UTM_CAMPAIGN, /* utm_campaign / context.campaign.name */
    LF_UTM_TERM,
    LF_UTM_CONTENT,
    LF_UTM__COUNT
} lf_utm_t;

const char *lf_utm_name(lf_utm_t f); /* "source", "medium", "campaign", "term", "content" */

/* A flattened scalar property or trait: nested maps become dotted keys ("address.city");
 * numbers and booleans keep their text form in `val` and, for numbers, `num`. */
typedef struct {
    lf_str_t key;
    lf_str_t val;
    double num;
    uint8_t is_num;
} lf_kv_t;

#define LF_EVENT_MAX_DEPTH 16  /* deeper nesting is LF_BAD_TOO_COMPLEX */
#define LF_EVENT_MAX_PROPS 64  /* properties beyond this are ignored (not an error) */
#define LF_EVENT_MAX_TRAITS 64 /* same for traits (top-level traits + context.traits) */

typedef struct {
    lf_str_t message_id;
    lf_str_t type;      /* as sent: "page", "track", "identify", "alias", or a kind */
    lf_str_t kind_name; /* canonical kind name when built in, else the name as sent */
    lf_kind_t kind;
    lf_str_t user_id; /* empty when absent (or JSON null) */
    lf_str_t anonymous_id;
    lf_str_t previous_id; /* alias only */
    int64_t ts_ms;        /* event time, UTC epoch milliseconds */

    lf_str_t url, path, referrer, title, user_agent; /* context.page.* / properties.* */
    lf_str_t utm[LF_UTM__COUNT]; /* context.campaign first, then utm_* from the url query */
    lf_str_t click_id_name;      /* "gclid", "msclkid", "dclid" or "fbclid", when present */
    lf_str_t click_id;
    uint8_t has_campaign; /* any utm field or click id present */

    lf_kv_t *props;
    uint32_t nprops;
    lf_kv_t *traits;
    uint32_t ntraits;
} lf_event_t;

typedef struct {
    size_t max_event_bytes; /* default 32768 */
    int64_t min_ts_ms;      /* default 2000-01-01T00:00:00Z */
    int64_t max_ts_ms;      /* default 2100-01-01T00:00:00Z */
} lf_event_limits_t;

void lf_event_limits_default(lf_event_limits_t *lim);

/* Decode one message value. A value whose first non-space byte is '{' is JSON, anything else
 * MessagePack. On success returns LF_OK and fills *ev (strings in *arena). On bad input
 * returns LF_ERR with err->code = an lf_bad_t and err->msg a sentence naming the field.
 * Never reads outside [buf, buf+len), whatever the bytes. */
int lf_event_decode(const void *buf, size_t len, const lf_event_limits_t *lim, lf_arena_t *arena,
                    lf_event_t *ev, lf_err_t *err);

/* An event-supplied string (an id, a UTM value, a trait) made safe for a terminal table or a
 * log line, which a newline or an escape sequence in it would break or forge: control bytes
 * become \n, \r, \t or \xHH, bytes that are not UTF-8 \xHH, C1 controls and bidi overrides
 * \uHHHH; everything else (a backslash included, so ids stay copyable) is kept. At most cap-1
 * bytes and a NUL go into buf (LF_ESCAPED_CAP(n) is enough for n bytes); a longer result is
 * cut and ends in "...". Returns buf. */
#define LF_ESCAPED_CAP(n) (4 * (size_t)(n) + 1)
const char *lf_str_escape(lf_str_t s, char *buf, size_t cap);

/* The lead key of an event: userId, else anonymousId. */
lf_str_t lf_event_key(const lf_event_t *ev);

/* Property lookup by (dotted) key; NULL if absent. */
const lf_kv_t *lf_event_prop(const lf_event_t *ev, const char *key);
const lf_kv_t *lf_event_trait(const lf_event_t *ev, const char *key);

#endif
