/* A stage transition as published on the transitions topic (docs/contract.md "Transitions out"): a
 * MessagePack map, or JSON when processing.transitions_format is json. */
#ifndef LEADFLOW_TRANSITION_H
#define LEADFLOW_TRANSITION_H

#include <stddef.h>

#include "leadflow/stage.h"

#define LF_TRANSITION_MAX_BYTES 2048

/* "<lead id>:<seq>" into buf. */
int lf_transition_id(const lf_transition_t *t, const char *lead_id, char *buf, size_t cap);

/* Encode into buf (cap >= LF_TRANSITION_MAX_BYTES). Returns the length, or -1. */
int lf_transition_encode(const lf_transition_t *t, const char *lead_id, const char *rules_version,
                         int json, char *buf, size_t cap);

#endif
