/* Hand-built models and events for the pure-logic tests (no decoder, no YAML). */
#ifndef LF_TEST_FIXTURE_H
#define LF_TEST_FIXTURE_H

#include "leadflow/event.h"
#include "leadflow/lead.h"
#include "leadflow/model.h"

#define LF_DAY_MS 86400000LL
#define LF_HOUR_MS 3600000LL

/* A model: half-life 1 day, L1 80 / L2 40, mql enter 60 / exit 45, no rules. Free with
 * lf_test_model_free. */
lf_model_t *lf_test_model(void);
void lf_test_model_free(lf_model_t *m);
/* Add an engagement rule for one kind (NULL = any) with points and an optional cap. */
lf_engagement_rule_t *lf_test_rule(lf_model_t *m, const char *name, const char *kind, double points,
                                   double cap_points, int64_t cap_per_ms);
void lf_test_rule_path(lf_engagement_rule_t *r, const char *prefix);
void lf_test_rule_utm(lf_engagement_rule_t *r, const char *field, const char *value);
void lf_test_rule_prop(lf_engagement_rule_t *r, const char *field, const char *value);
/* A fit rule "trait equals value" (value NULL: present). Also tracks the trait. */
void lf_test_fit(lf_model_t *m, const char *name, const char *trait, const char *value,
                 double points);
void lf_test_require_trait(lf_model_t *m, const char *trait);
void lf_test_bot(lf_model_t *m, const char *ua);

/* An event of a kind for a user (anon may be NULL), at ts. Strings must outlive it. */
lf_event_t lf_test_event(const char *mid, lf_kind_t kind, const char *user, const char *anon,
                         int64_t ts_ms);
/* Add a trait / property (kept in a small static pool; up to 8 each per event). */
void lf_test_event_trait(lf_event_t *ev, const char *key, const char *val);
void lf_test_event_prop(lf_event_t *ev, const char *key, const char *val);

#endif
