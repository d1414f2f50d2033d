/* Names of leadflow's Redis keys (docs/contract.md "Redis keys"), all under the configured prefix
 * (default "lf:"). Per-lead keys carry the lead id as a Redis Cluster hash tag. <p>lead:{<id>}
 * hash: a known lead (lead_codec.h): readable fields and the packed rest, its recent stage history
 * included <p>v:{<anonymousId>}        string with a TTL: an anonymous visitor's packed record
 *   <p>alias:{<anonymousId>}    string with a TTL: the lead id the visitor was linked to
 *   <p>top                      sorted set: the most engaged known leads, by lf_rank_key
 *   <p>stage:<stage>            sorted set, sales-active stages only (mql sal sql
 *                               opportunity): score = entry time, except mql: the time its
 *                               score decays below the exit threshold
 *   <p>funnel                   hash: leads per stage, visitors per expiry time (writes.h)
 *   <p>outbox:<topic>:<part>    hash: transition_id -> encoded transition, not yet delivered
 *   <p>wm:<group>:<topic>       hash: "<part>" -> next offset to consume; "<part>.consumed",
 *                               ".applied", ".duplicates", ".dead", ".filtered", ".transitions"
 *   <p>ops:instance:<id>        hash with TTL: one running instance's heartbeat
 *   <p>ops:instances            set: instance ids (stale ones have no heartbeat key)
 *   <p>ctl:reload               string: a counter `leadflow reload` increments; every running
 *                               instance reloads its rules file when it grows
 *
 * On a Redis Cluster (redis.cluster.nodes) the shared keys a lead write touches are split into
 * one shard per hash slot k, named with the slot's tag t_k (cluster.h lf_cluster_tags_build) so
 * that a lead and its shards share a slot (docs/design.md "Redis Cluster: the write path by
 * slot"): <p>top:{t_k}, <p>stage:<stage>:{t_k}, <p>funnel:{t_k}, <p>outbox:<topic>:{t_k} (every
 * partition's transitions of the slot, fields "<partition>:<transition_id>": a new owner reads
 * 16384 shards whatever the number of partitions),
 * <p>wm:<group>:<topic>:{t_k} (the counters of lead writes; next offsets and the other counters
 * stay in <p>wm:<group>:<topic>), <p>epoch:{t_k}; and
 *   <p>absorbed:{<id>}          hash: anonymousId -> visitor version, visitors merged into lead
 *                               <id> whose own keys (another slot) are not cleared yet
 *   <p>merging:{<anonymousId>}  string with a short TTL: the lead a visitor is being merged
 *                               into; the visitor's own writes wait until it is gone */
#ifndef LEADFLOW_KEYS_H
#define LEADFLOW_KEYS_H

#include <stddef.h>

#include "leadflow/stage.h"

#define LF_KEY_MAX 512

int lf_key_lead(char *buf, size_t cap, const char *prefix, const char *id, size_t idlen);
int lf_key_alias(char *buf, size_t cap, const char *prefix, const char *anon, size_t len);
int lf_key_visitor(char *buf, size_t cap, const char *prefix, const char *anon, size_t len);
int lf_key_funnel(char *buf, size_t cap, const char *prefix);
int lf_key_top(char *buf, size_t cap, const char *prefix);
int lf_key_stage(char *buf, size_t cap, const char *prefix, lf_stage_t stage);
int lf_key_outbox(char *buf, size_t cap, const char *prefix, const char *topic, int partition);
int lf_key_watermarks(char *buf, size_t cap, const char *prefix, const char *group,
                      const char *topic);
int lf_key_instance(char *buf, size_t cap, const char *prefix, const char *instance);
int lf_key_instances(char *buf, size_t cap, const char *prefix);
/* <prefix>ctl:<name>: a control key (store.h lf_control_t). */
int lf_key_control(char *buf, size_t cap, const char *prefix, const char *name);
/* <prefix>epoch: the store epoch (store.h). */
int lf_key_epoch(char *buf, size_t cap, const char *prefix);
/* Appends ":{<tag>}" to the key of kl bytes in buf: its shard for a slot's tag (cluster). */
int lf_key_shard(char *buf, size_t cap, int kl, const char *tag);
int lf_key_absorbed(char *buf, size_t cap, const char *prefix, const char *id, size_t idlen);
int lf_key_merging(char *buf, size_t cap, const char *prefix, const char *anon, size_t len);
/* <prefix>outbox:<topic>, the name a Redis Cluster's outbox shards (one per slot, every
 * partition's entries in it, fields "<partition>:<transition_id>") are built from. */
int lf_key_outbox_slot(char *buf, size_t cap, const char *prefix, const char *topic);

#endif
