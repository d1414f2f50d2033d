/* Unit-test runner: runs every suite, prints one line per failure, ends with
 * "N passed, N failed". Usage: test_unit [name-substring] */
#include "test.h"

#define LF_SUITE(s) void s(void);
#include "suites.h"
#undef LF_SUITE

int main(int argc, char **argv)
{
    if (argc > 1) lf_test_filter(argv[1]);
#define LF_SUITE(s) s();
#include "suites.h"
#undef LF_SUITE
    return lf_test_summary();
}
