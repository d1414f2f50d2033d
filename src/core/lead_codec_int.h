/* Inside the lead codec (lead_codec.c: the current layout, lead_codec_v1.c: the one before). */
#ifndef LEADFLOW_LEAD_CODEC_INT_H
#define LEADFLOW_LEAD_CODEC_INT_H

#include "leadflow/lead_codec.h"
#include "leadflow/score.h"

/* A stored value as a C string in buf: LF_ERR when it does not fit. */
int lf_view_cstr(char *buf, size_t cap, lf_str_t v);
/* Stored numbers, read strictly (a view, not a C string). */
int lf_codec_i64(lf_str_t v, int64_t *out);
int lf_codec_double(lf_str_t v, double *out);

/* *l (initialised, exists set) from the pairs of a hash in the layout before packed
 * records; sets l->layout = LF_LAYOUT_V1. */
int lf_lead_decode_v1(lf_lead_t *l, lf_str_t id, const lf_str_t *fields, const lf_str_t *values,
                      size_t n, const lf_model_t *m, lf_err_t *err);

#endif
