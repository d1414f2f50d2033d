/* The pipeline's stop deadline. Its clocks are common.h's: lf_now_ms (monotonic) for every
 * deadline, backoff and interval, lf_wall_ms only for times that are stored or shown
 * (heartbeat fields, a store loss's time, the idle sweep clock, which compares with event
 * times). */
#include "pipeline_int.h"

/* Give up waiting? After a second stop signal at once; after the first one, once the batch
 * in flight had LF_STOP_GRACE_MS to finish (Redis or Kafka may be away for good). */
int lf_must_quit(lf_pipe_t *p)
{
    if (!*p->opts->stop) return 0;
    if (*p->opts->stop > 1) return 1;
    int64_t now = lf_now_ms();
    if (!p->stop_deadline) p->stop_deadline = now + LF_STOP_GRACE_MS;
    return now >= p->stop_deadline;
}
