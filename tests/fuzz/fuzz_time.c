/* libFuzzer harness: the ISO-8601 parser and formatter (src/timeparse.c). Arbitrary bytes go
 * to lf_time_parse_iso8601; an accepted time must format and parse back to the same
 * millisecond, and with no offset the formatted date and time of day must be the ones written.
 * The first 8 bytes, as any int64, go to lf_time_format_iso8601 (UBSan watches the
 * arithmetic near INT64_MIN/MAX); what it prints for years 0..9999 must parse back. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "leadflow/timeparse.h"

#include "fuzz_check.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* 0000-01-01T00:00:00Z and 9999-12-31T23:59:59.999Z: the years the parser can read. */
#define MIN_MS (-62167219200000LL)
#define MAX_MS 253402300799999LL

static void round_trip(int64_t ms)
{
    char buf[64];
    int64_t back = 0;
    lf_time_format_iso8601(ms, buf, sizeof(buf));
    FUZZ_CHECK(strlen(buf) < sizeof(buf));
    if (ms < MIN_MS || ms > MAX_MS) return;
    FUZZ_CHECK(strlen(buf) == 24);
    FUZZ_CHECK(lf_time_parse_iso8601(buf, strlen(buf), &back) == LF_OK);
    FUZZ_CHECK(back == ms);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 256) return 0;
    /* An exact-size heap copy: AddressSanitizer sees a read one past the end. */
    char *s = malloc(size ? size : 1);
    if (size) memcpy(s, data, size);
    int64_t ms = 0;
    if (lf_time_parse_iso8601(size ? s : "", size, &ms) == LF_OK) {
        FUZZ_CHECK(size >= 19);
        /* an offset is at most 23:59, so the result is within a day of the years 0..9999 */
        FUZZ_CHECK(ms >= MIN_MS - 86400000LL && ms <= MAX_MS + 86400000LL);
        round_trip(ms);
        /* No offset (nothing after the seconds and fraction but an optional Z): the fields
         * come back as written. */
        size_t p = 19;
        if (p < size && (s[p] == '.' || s[p] == ','))
            for (p++; p < size && s[p] >= '0' && s[p] <= '9'; p++)
                ;
        if (p == size || (p + 1 == size && (s[p] == 'Z' || s[p] == 'z'))) {
            char buf[64];
            lf_time_format_iso8601(ms, buf, sizeof(buf));
            FUZZ_CHECK(memcmp(buf, s, 10) == 0);          /* YYYY-MM-DD */
            FUZZ_CHECK(memcmp(buf + 11, s + 11, 8) == 0); /* HH:MM:SS */
        }
    }
    if (size >= 8) {
        uint64_t u;
        memcpy(&u, data, 8);
        round_trip((int64_t)u);
    }
    free(s);
    return 0;
}
