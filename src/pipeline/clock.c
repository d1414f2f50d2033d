/* The pipeline's clocks: the monotonic one for every deadline, backoff and interval (a wall
 * clock set back or forward must not shorten or stretch a wait), the wall clock only for
 * times that are stored or shown (heartbeat fields, a store loss's time, the idle sweep
 * clock, which compares with event times); and the stop deadline. */
#include <time.h>

#include "pipeline_int.h"

int64_t lf_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t lf_wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

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
