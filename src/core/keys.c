/* Redis key names; see include/leadflow/keys.h. */
#include <stdio.h>
#include <string.h>

#include "leadflow/keys.h"

/* <prefix><kind>{<id>}: built for every lead of every batch, several times; snprintf is
 * most of the cost, so copy. Returns what snprintf would (the full length). */
static int lf_key_tagged(char *buf, size_t cap, const char *prefix, const char *kind,
                         size_t kindlen, const char *id, size_t idlen)
{
    size_t pl = strlen(prefix), n = pl + kindlen + idlen + 2;
    if (n >= cap) return snprintf(buf, cap, "%s%s{%.*s}", prefix, kind, (int)idlen, id);
    memcpy(buf, prefix, pl);
    memcpy(buf + pl, kind, kindlen);
    buf[pl + kindlen] = '{';
    memcpy(buf + pl + kindlen + 1, id, idlen);
    buf[n - 1] = '}';
    buf[n] = '\0';
    return (int)n;
}

int lf_key_lead(char *buf, size_t cap, const char *prefix, const char *id, size_t idlen)
{
    return lf_key_tagged(buf, cap, prefix, "lead:", 5, id, idlen);
}

int lf_key_alias(char *buf, size_t cap, const char *prefix, const char *anon, size_t len)
{
    return lf_key_tagged(buf, cap, prefix, "alias:", 6, anon, len);
}

int lf_key_visitor(char *buf, size_t cap, const char *prefix, const char *anon, size_t len)
{
    return lf_key_tagged(buf, cap, prefix, "v:", 2, anon, len);
}

int lf_key_funnel(char *buf, size_t cap, const char *prefix)
{
    return snprintf(buf, cap, "%sfunnel", prefix);
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

int lf_key_epoch(char *buf, size_t cap, const char *prefix)
{
    return snprintf(buf, cap, "%sepoch", prefix);
}

int lf_key_control(char *buf, size_t cap, const char *prefix, const char *name)
{
    return snprintf(buf, cap, "%sctl:%s", prefix, name);
}

int lf_key_shard(char *buf, size_t cap, int kl, const char *tag)
{
    if (kl < 0 || (size_t)kl >= cap) return kl;
    return kl + snprintf(buf + kl, cap - (size_t)kl, ":{%s}", tag);
}

int lf_key_absorbed(char *buf, size_t cap, const char *prefix, const char *id, size_t idlen)
{
    return lf_key_tagged(buf, cap, prefix, "absorbed:", 9, id, idlen);
}

int lf_key_merging(char *buf, size_t cap, const char *prefix, const char *anon, size_t len)
{
    return lf_key_tagged(buf, cap, prefix, "merging:", 8, anon, len);
}

int lf_key_outbox_slot(char *buf, size_t cap, const char *prefix, const char *topic)
{
    return snprintf(buf, cap, "%soutbox:%s", prefix, topic);
}
