/* Unit tests of the calendar arithmetic in src/core/timeparse.c that the decoder, the log
 * and the event generator share (lf_time_days_from_civil / lf_time_civil_from_days). */
#include <stdint.h>

#include "leadflow/timeparse.h"
#include "test.h"

static void test_time_civil_known_days(void)
{
    static const struct {
        int64_t days, y;
        unsigned m, d;
    } known[] = {
        {0, 1970, 1, 1},     {-1, 1969, 12, 31},      {11016, 2000, 2, 29}, {11017, 2000, 3, 1},
        {20454, 2026, 1, 1}, {-141427, 1582, 10, 15}, {-719468, 0, 3, 1},   {-719469, 0, 2, 29},
        {84006, 2200, 1, 1}, {47540, 2100, 2, 28},    {47541, 2100, 3, 1},  {-25508, 1900, 3, 1},
    };
    for (size_t i = 0; i < sizeof(known) / sizeof(known[0]); i++) {
        int64_t y;
        unsigned m, d;
        lf_time_civil_from_days(known[i].days, &y, &m, &d);
        CHECK_INT(y, known[i].y);
        CHECK_INT(m, known[i].m);
        CHECK_INT(d, known[i].d);
        CHECK_INT(lf_time_days_from_civil(known[i].y, known[i].m, known[i].d), known[i].days);
    }
}

/* Every day from 1600 to 2400 maps to a valid date and back, and consecutive days are
 * consecutive dates. */
static void test_time_civil_round_trip(void)
{
    int64_t py = 0;
    unsigned pm = 0, pd = 0;
    for (int64_t z = -135140; z <= 157419; z++) {
        int64_t y;
        unsigned m, d;
        lf_time_civil_from_days(z, &y, &m, &d);
        CHECK(m >= 1 && m <= 12 && d >= 1 && d <= 31);
        CHECK_INT(lf_time_days_from_civil(y, m, d), z);
        if (z > -135140)
            CHECK(d == pd + 1 ? (y == py && m == pm)
                              : (d == 1 && (m == pm + 1 || (m == 1 && y == py + 1))));
        py = y;
        pm = m;
        pd = d;
    }
}

static void test_time_format_before_epoch(void)
{
    char buf[32];
    lf_time_format_iso8601(-1, buf, sizeof(buf));
    CHECK_STR(buf, "1969-12-31T23:59:59.999Z");
    lf_time_format_iso8601(951782400000LL, buf, sizeof(buf));
    CHECK_STR(buf, "2000-02-29T00:00:00.000Z");
}

void suite_timeparse(void)
{
    LF_RUN(test_time_civil_known_days);
    LF_RUN(test_time_civil_round_trip);
    LF_RUN(test_time_format_before_epoch);
}
