/* Redis key names; see include/leadflow/keys.h. */
#include <stdio.h>

#include "leadflow/keys.h"

int lf_key_lead(char *buf, size_t cap, const char *prefix, const char *id, size_t idlen)
{
    return snprintf(buf, cap, "%slead:{%.*s}", prefix, (int)idlen, id);
}

int lf_key_alias(char *buf, size_t cap, const char *prefix, const char *anon, size_t len)
{
    return snprintf(buf, cap, "%salias:{%.*s}", prefix, (int)len, anon);
}

int lf_key_hist(char *buf, size_t cap, const char *prefix, const char *id, size_t idlen)
{
    return snprintf(buf, cap, "%shist:{%.*s}", prefix, (int)idlen, id);
}

int lf_key_top(char *buf, size_t cap, const char *prefix)
{
    return snprintf(buf, cap, "%stop", prefix);
}

int lf_key_stage(char *buf, size_t cap, const char *prefix, lf_stage_t stage)
{
    return snprintf(buf, cap, "%sstage:%s", prefix, lf_stage_name(stage));
}

int lf_key_outbox(char *buf, size_t cap, const char *prefix, const char *topic, int partition)
{
    return snprintf(buf, cap, "%soutbox:%s:%d", prefix, topic, partition);
}

int lf_key_watermarks(char *buf, size_t cap, const char *prefix, const char *group,
                      const char *topic)
{
    return snprintf(buf, cap, "%swm:%s:%s", prefix, group, topic);
}

int lf_key_instance(char *buf, size_t cap, const char *prefix, const char *instance)
{
    return snprintf(buf, cap, "%sops:instance:%s", prefix, instance);
}

int lf_key_instances(char *buf, size_t cap, const char *prefix)
{
    return snprintf(buf, cap, "%sops:instances", prefix);
}
