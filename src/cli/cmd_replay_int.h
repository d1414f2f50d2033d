/* Internal to `leadflow replay` (cmd_replay.c, cmd_replay_switch.c): the switch. */
#ifndef LEADFLOW_CMD_REPLAY_INT_H
#define LEADFLOW_CMD_REPLAY_INT_H

#include <stdint.h>

#include "cli_int.h"
#include "leadflow/alloc.h"
#include "leadflow/store.h"

typedef struct {
    lf_cli_t *cli;                 /* Redis, the live prefix (cfg.redis_prefix) and the base one */
    lf_store_t *shadow, *live;     /* store handles on the rebuilt and the live prefix */
    const lf_config_t *shadow_cfg; /* the replay's run: its model, prefix and group */
    const lf_model_t *live_model;  /* decodes the live records */
    lf_arena_t arena;
    int64_t at_ms; /* wall clock: the time of the switch's transitions */
    int paused;    /* live instances that paused */
    size_t leads, moved, carried, missing;
    char missing_example[256];
} lf_switch_t;

/* The switch, once the replay has caught up with the end it had (cmd_replay_switch.c says
 * how). catch_up(ctx, next) runs the replay on to the live positions (next[partition], -1:
 * none) and returns 0 or an exit status. Returns 0 or the exit status after a message. */
int lf_replay_switch(lf_switch_t *sw, int (*catch_up)(void *ctx, const int64_t *next), void *ctx);

#endif
