/* Encoding stage transitions for the transitions topic. */
#include <cjson/cJSON.h>
#include <inttypes.h>
#include <msgpack.h>
#include <stdio.h>
#include <string.h>

#include "leadflow/model.h"
#include "leadflow/transition.h"

/* The challenger numbers a lead's transitions in its own state: what it publishes (a
 * challenger split) has ids of its own, so that a lead moved between the two sides by a
 * change of challenger.split never gets one id with two contents. */
int lf_transition_id(const lf_transition_t *t, const char *lead_id, char *buf, size_t cap)
{
    if (t->model && strcmp(t->model, "challenger") == 0)
        return snprintf(buf, cap, "%s:challenger:%" PRIu64, lead_id, t->seq);
    return snprintf(buf, cap, "%s:%" PRIu64, lead_id, t->seq);
}

typedef struct {
    char *buf;
    size_t cap, len;
    int overflow;
} lf_fixed_buf_t;

static int lf_fixed_write(void *data, const char *p, size_t n)
{
    lf_fixed_buf_t *b = data;
    if (b->len + n > b->cap) {
        b->overflow = 1;
        return -1;
    }
    memcpy(b->buf + b->len, p, n);
    b->len += n;
    return 0;
}

static void lf_pack_str(msgpack_packer *pk, const char *s)
{
    size_t n = strlen(s);
    msgpack_pack_str(pk, n);
    msgpack_pack_str_body(pk, s, n);
}

static const char *lf_grade_name(int grade)
{
    return grade == 1 ? "L1" : grade == 2 ? "L2" : "L3";
}

/* A recycle's fields (which policy of model.recycling applied), after the fields every
 * transition has, in the same order in both encodings; other transitions have none. */
static void lf_transition_json_recycle(cJSON *o, const lf_transition_t *t)
{
    cJSON_AddStringToObject(o, "recycle", lf_recycle_eng_name(t->recycle));
    if (t->recycle == LF_RECYCLE_SCALE)
        cJSON_AddNumberToObject(o, "recycle_factor", t->recycle_factor);
    cJSON_AddStringToObject(o, "requalify", lf_requalify_name(t->requalify));
    cJSON_AddNumberToObject(o, "requalify_at", (double)t->requalify_at_ms);
}

static void lf_transition_pack_recycle(msgpack_packer *pk, const lf_transition_t *t)
{
    lf_pack_str(pk, "recycle");
    lf_pack_str(pk, lf_recycle_eng_name(t->recycle));
    if (t->recycle == LF_RECYCLE_SCALE) {
        lf_pack_str(pk, "recycle_factor");
        msgpack_pack_double(pk, t->recycle_factor);
    }
    lf_pack_str(pk, "requalify");
    lf_pack_str(pk, lf_requalify_name(t->requalify));
    lf_pack_str(pk, "requalify_at");
    msgpack_pack_int64(pk, t->requalify_at_ms);
}

int lf_transition_encode(const lf_transition_t *t, const char *lead_id, const char *rules_version,
                         int json, char *buf, size_t cap)
{
    char id[LF_ID_MAX + 32];
    lf_transition_id(t, lead_id, id, sizeof(id));
    if (json) {
        cJSON *o = cJSON_CreateObject();
        if (!o) return -1;
        cJSON_AddStringToObject(o, "transition_id", id);
        cJSON_AddStringToObject(o, "lead_id", lead_id);
        cJSON_AddNumberToObject(o, "seq", (double)t->seq);
        cJSON_AddStringToObject(o, "from", lf_stage_name(t->from));
        cJSON_AddStringToObject(o, "to", lf_stage_name(t->to));
        cJSON_AddStringToObject(o, "reason", lf_reason_name(t->reason));
        cJSON_AddNumberToObject(o, "score", t->score);
        cJSON_AddNumberToObject(o, "fit", t->fit);
        cJSON_AddNumberToObject(o, "engagement", t->engagement);
        cJSON_AddStringToObject(o, "grade", lf_grade_name(t->grade));
        cJSON_AddNumberToObject(o, "at", (double)t->at_ms);
        if (t->trigger[0])
            cJSON_AddStringToObject(o, "trigger", t->trigger);
        else
            cJSON_AddNullToObject(o, "trigger");
        cJSON_AddStringToObject(o, "rules_version", rules_version ? rules_version : "");
        if (t->recycled) lf_transition_json_recycle(o, t);
        if (t->model) cJSON_AddStringToObject(o, "model", t->model);
        int ok = cJSON_PrintPreallocated(o, buf, (int)cap, 0);
        cJSON_Delete(o);
        return ok ? (int)strlen(buf) : -1;
    }
    lf_fixed_buf_t fb = {buf, cap, 0, 0};
    msgpack_packer pk;
    msgpack_packer_init(&pk, &fb, lf_fixed_write);
    msgpack_pack_map(&pk, 13 + (t->recycled ? 3 + (t->recycle == LF_RECYCLE_SCALE) : 0) +
                              (t->model != NULL));
    lf_pack_str(&pk, "transition_id");
    lf_pack_str(&pk, id);
    lf_pack_str(&pk, "lead_id");
    lf_pack_str(&pk, lead_id);
    lf_pack_str(&pk, "seq");
    msgpack_pack_uint64(&pk, t->seq);
    lf_pack_str(&pk, "from");
    lf_pack_str(&pk, lf_stage_name(t->from));
    lf_pack_str(&pk, "to");
    lf_pack_str(&pk, lf_stage_name(t->to));
    lf_pack_str(&pk, "reason");
    lf_pack_str(&pk, lf_reason_name(t->reason));
    lf_pack_str(&pk, "score");
    msgpack_pack_double(&pk, t->score);
    lf_pack_str(&pk, "fit");
    msgpack_pack_double(&pk, t->fit);
    lf_pack_str(&pk, "engagement");
    msgpack_pack_double(&pk, t->engagement);
    lf_pack_str(&pk, "grade");
    lf_pack_str(&pk, lf_grade_name(t->grade));
    lf_pack_str(&pk, "at");
    msgpack_pack_int64(&pk, t->at_ms);
    lf_pack_str(&pk, "trigger");
    if (t->trigger[0])
        lf_pack_str(&pk, t->trigger);
    else
        msgpack_pack_nil(&pk);
    lf_pack_str(&pk, "rules_version");
    lf_pack_str(&pk, rules_version ? rules_version : "");
    if (t->recycled) lf_transition_pack_recycle(&pk, t);
    if (t->model) {
        lf_pack_str(&pk, "model");
        lf_pack_str(&pk, t->model);
    }
    return fb.overflow ? -1 : (int)fb.len;
}
