/* Unit-test runner: runs every suite, prints one line per failure, ends with
 * "N passed, N failed". Usage: test_unit [name-substring] */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "test.h"

int lf_test_failed_now;
static int passed, failed;
static const char *filter;

void lf_test_fail(const char *file, int line, const char *fmt, ...)
{
    va_list ap;
    fprintf(stdout, "  FAIL %s:%d: ", file, line);
    va_start(ap, fmt);
    vfprintf(stdout, fmt, ap);
    va_end(ap);
    fputc('\n', stdout);
    lf_test_failed_now = 1;
}

void lf_test_run(const char *name, void (*fn)(void))
{
    if (filter && !strstr(name, filter)) return;
    lf_test_failed_now = 0;
    fn();
    if (lf_test_failed_now) {
        failed++;
        printf("not ok %s\n", name);
    } else {
        passed++;
        printf("ok %s\n", name);
    }
    fflush(stdout);
}

#define LF_SUITE(s) void s(void);
#include "suites.h"
#undef LF_SUITE

int main(int argc, char **argv)
{
    if (argc > 1) filter = argv[1];
#define LF_SUITE(s) s();
#include "suites.h"
#undef LF_SUITE
    printf("%d passed, %d failed\n", passed, failed);
    return failed ? 1 : 0;
}
