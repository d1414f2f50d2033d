/* The scoring law (docs/contract.md "Semantics"): decay, caps, rule matching, fit, grade. Pure
 * functions. */
#ifndef LEADFLOW_SCORE_H
#define LEADFLOW_SCORE_H

#include <stdint.h>

#include "leadflow/event.h"
#include "leadflow/model.h"

/* Decay factor 2^(-dt/h) for dt >= 0; 1 for dt <= 0; never NaN. */
double lf_decay_factor(int64_t dt_ms, double half_life_ms);

/* Add p points at time tau to engagement (e at t): the docs/contract.md "Semantics" update. */
void lf_decay_add(double *e, int64_t *t_ms, double p, int64_t tau_ms, double half_life_ms);

/* lf:top's key for engagement e stored at t (forward decay): e·2^(-(T-t)/h) at any common
 * time T orders leads as this key does, so members need no rewrite as time passes. Positive
 * engagement: LF_RANK_OFFSET + log2(e) + t/h (> 0); zero: 0; negative: the mirror image,
 * -(LF_RANK_OFFSET + log2(-e) + t/h). Finite for every finite e and t >= 0 (log2 of the
 * smallest double is -1074). */
#define LF_RANK_OFFSET 1100.0
double lf_rank_key(double e, int64_t t_ms, double half_life_ms);

/* Whether an engagement rule matches an event. */
int lf_rule_matches(const lf_engagement_rule_t *r, const lf_event_t *ev);

/* Whether a condition holds for a value (NULL = field absent). */
int lf_cond_holds(const lf_cond_t *c, const char *val, size_t len, double num, int is_num);

/* Whether the event's user agent names a bot of the model (filtered before it creates a
 * visitor). */
int lf_model_is_bot(const lf_model_t *m, const lf_event_t *ev);

/* 1, 2 or 3 for L1, L2, L3. */
int lf_grade(double score, const lf_model_t *m);

#endif
