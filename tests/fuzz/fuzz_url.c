/* libFuzzer harness: the URL helpers behind UTM attribution (src/url.c) on arbitrary bytes:
 * the query parameters (one pass for the nine campaign names, and one name at a time, which
 * must agree), the path, and percent-decoding into buffers of every size. Views must point
 * into the input; decoding must stay within its buffer and never grow the text. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "leadflow/url.h"

#include "fuzz_check.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char *const names[] = {"utm_source", "utm_medium",  "utm_campaign",
                                    "utm_term",   "utm_content", "gclid",
                                    "msclkid",    "dclid",       "fbclid"};
#define NNAMES (sizeof(names) / sizeof(names[0]))

static int within(lf_str_t v, const char *s, size_t n)
{
    return v.ptr >= s && v.ptr <= s + n && v.len <= (size_t)(s + n - v.ptr);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 65536) return 0;
    /* An exact-size heap copy: AddressSanitizer sees a read one past the end. */
    char *s = malloc(size ? size : 1);
    if (size) memcpy(s, data, size);
    lf_str_t url = {size ? s : NULL, (uint32_t)size};

    lf_str_t vals[NNAMES];
    size_t found = lf_url_query_params(url, names, NNAMES, vals), count = 0;
    for (size_t k = 0; k < NNAMES; k++) {
        lf_str_t one;
        int got = lf_url_query_param(url, names[k], &one);
        FUZZ_CHECK(got == (vals[k].ptr != NULL));
        if (!vals[k].ptr) continue;
        count++;
        FUZZ_CHECK(within(vals[k], s, size));
        FUZZ_CHECK(one.ptr == vals[k].ptr && one.len == vals[k].len);
        /* a value ends at '&' or '#' */
        FUZZ_CHECK(!memchr(vals[k].ptr, '&', vals[k].len) &&
                   !memchr(vals[k].ptr, '#', vals[k].len));
    }
    FUZZ_CHECK(found == count);

    lf_str_t path = lf_url_path(url);
    if (path.len) {
        FUZZ_CHECK(within(path, s, size) || (path.len == 1 && path.ptr[0] == '/'));
        FUZZ_CHECK(!memchr(path.ptr, '?', path.len) && !memchr(path.ptr, '#', path.len));
    }

    /* Decoding: never longer than the input, never past cap; plain text comes back as is. */
    char *out = malloc(size ? size : 1);
    for (int plus = 0; plus < 2; plus++) {
        size_t n = lf_url_decode(s, size, out, size, plus);
        FUZZ_CHECK(n <= size);
        if (!memchr(s, '%', size) && (!plus || !memchr(s, '+', size)))
            FUZZ_CHECK(n == size && (size == 0 || memcmp(out, s, size) == 0));
        size_t cap = size / 2;
        char *small = malloc(cap ? cap : 1);
        size_t m = lf_url_decode(s, size, small, cap, plus);
        FUZZ_CHECK(m <= cap && m <= n);
        FUZZ_CHECK(m == 0 || memcmp(small, out, m) == 0); /* a prefix of the whole */
        free(small);
    }
    free(out);
    free(s);
    return 0;
}
