/* What `leadflow replay` and the challenger need of a run: which leads' transitions it
 * publishes, and (replay) the end it runs to: every assigned partition from where the store's
 * progress is to the high watermark it had when assigned, refusing a log that retention has
 * cut unless told to take what is left, with a progress report about once a second. */
#include <inttypes.h>
#include <string.h>

#include "leadflow/log.h"
#include "pipeline_int.h"

int lf_split_bucket(const char *lead_id)
{
    return (int)(lf_hash64(lead_id, strlen(lead_id)) % 100);
}

int lf_pipeline_publishes(const lf_run_opts_t *opts, const char *lead_id)
{
    switch (opts->publish) {
    case LF_PUBLISH_ALL:
        return 1;
    case LF_PUBLISH_NONE:
        return 0;
    case LF_PUBLISH_SPLIT_OUT:
        return lf_split_bucket(lead_id) >= opts->split_percent;
    case LF_PUBLISH_SPLIT_IN:
        return lf_split_bucket(lead_id) < opts->split_percent;
    }
    return 1;
}

int lf_pipeline_to_publish(const lf_run_opts_t *opts, const char *lead_id, lf_transitions_t *tr)
{
    const char *model = opts->publish == LF_PUBLISH_SPLIT_OUT  ? "champion"
                        : opts->publish == LF_PUBLISH_SPLIT_IN ? "challenger"
                                                               : NULL;
    for (int k = 0; k < tr->n; k++)
        tr->t[k].model = model;
    return tr->n > 0 && lf_pipeline_publishes(opts, lead_id);
}

int lf_replay_targets(lf_pipe_t *p, const int32_t *ids, const int64_t *next, int n)
{
    if (!p->opts->until_caught_up) return LF_OK;
    for (int i = 0; i < n; i++) {
        int32_t part = ids[i];
        int64_t lo = -1, hi = -1;
        if (part < 0 || part >= LF_MAX_PARTITIONS) continue;
        rd_kafka_resp_err_t e = rd_kafka_query_watermark_offsets(p->consumer, p->cfg->topic_events,
                                                                 part, &lo, &hi, 10000);
        if (e) {
            snprintf(p->fatal_msg, sizeof(p->fatal_msg),
                     "replay: cannot read the offsets of %s [%d]: %s", p->cfg->topic_events, part,
                     rd_kafka_err2str(e));
            p->fatal_rc = 2;
            return LF_ERR;
        }
        /* A prefix with no progress starts at the log's start: if that is not offset 0,
         * retention deleted the oldest events, and the rebuilt state would lack them. */
        if (next[i] < 0 && lo > 0 && !p->opts->allow_partial) {
            snprintf(p->fatal_msg, sizeof(p->fatal_msg),
                     "replay: %s [%d] now starts at offset %" PRId64
                     ": retention deleted the %" PRId64
                     " oldest events, so a replay would rebuild the leads from part of their "
                     "history. Keep the topic's retention longer than its history (retention.ms "
                     "= -1), or pass --from-retained to rebuild from what is left (the report "
                     "then says so)",
                     p->cfg->topic_events, part, lo, lo);
            p->fatal_rc = 3;
            return LF_ERR;
        }
        if (next[i] < 0 && lo > 0)
            lf_log("warn",
                   "replay: %s [%d] starts at offset %" PRId64 ": its %" PRId64
                   " oldest events were deleted by retention and are not in the rebuilt "
                   "state (--from-retained)",
                   p->cfg->topic_events, part, lo, lo);
        p->until_start[part] = next[i] >= 0 ? next[i] : lo;
        p->until_end[part] = hi;
        if (p->opts->until_next) {
            int64_t want = p->opts->until_next[part];
            p->until_end[part] = want < p->until_start[part] ? p->until_start[part] : want;
        }
    }
    p->until_known = 1;
    return LF_OK;
}

/* Consumed so far and to consume in all, over the assigned partitions. */
static void lf_replay_count(const lf_pipe_t *p, int64_t *done, int64_t *total)
{
    *done = *total = 0;
    for (int i = 0; p->assignment && i < p->assignment->cnt; i++) {
        int32_t part = p->assignment->elems[i].partition;
        if (part < 0 || part >= LF_MAX_PARTITIONS) continue;
        int64_t at = p->part_next[part] >= 0 ? p->part_next[part] : p->until_start[part];
        if (at > p->until_end[part]) at = p->until_end[part];
        *done += at - p->until_start[part];
        *total += p->until_end[part] - p->until_start[part];
    }
}

int lf_replay_done(lf_pipe_t *p)
{
    if (!p->opts->until_caught_up || !p->until_known || p->positions_pending || !p->assignment)
        return 0;
    int64_t now = lf_now_ms(), done, total;
    lf_replay_count(p, &done, &total);
    if (p->opts->on_progress && (now - p->progress_ms >= 1000 || done == total)) {
        p->progress_ms = now;
        p->opts->on_progress(p->opts->progress_ctx, done, total);
    }
    if (done < total) return 0;
    /* Caught up: the decay sweep a live run does next (on the wall clock, the input being
     * caught up) is part of the state a run produces, so it runs to its end here too. */
    lf_err_t err = {0};
    do {
        p->swept_due = 0;
        if (lf_sweep(p, &err) != LF_OK) {
            lf_set_state(p, LF_STATE_DEGRADED, err.msg);
            return 0; /* tried again at the next turn */
        }
    } while (p->swept_due > 0 && !lf_must_quit(p));
    return 1;
}
