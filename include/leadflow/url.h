/* URL helpers (src/core/url.c): the query parameters and path of a page URL. */
#ifndef LEADFLOW_URL_H
#define LEADFLOW_URL_H

#include <stddef.h>

#include "leadflow/common.h"

/* Percent-decode `in` ('+' as space in a query) into out (cap
 * bytes); returns the decoded length. */
size_t lf_url_decode(const char *in, size_t len, char *out, size_t cap, int plus_as_space);
/* Find the value of query parameter `name` in url (after '?', before '#'); the raw
 * (still encoded) value into *val. Returns 1 when found. */
int lf_url_query_param(lf_str_t url, const char *name, lf_str_t *val);
/* Several parameters in one pass: vals[k] is the first occurrence of names[k] (raw; ptr NULL
 * when absent, len 0 when present without a value). Returns how many were found. */
size_t lf_url_query_params(lf_str_t url, const char *const *names, size_t nnames, lf_str_t *vals);
/* Path of a URL: "https://x.com/pricing?a=1" -> "/pricing"; a relative "index.html" stays. */
lf_str_t lf_url_path(lf_str_t url);

#endif
