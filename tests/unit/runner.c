/* The test runner behind test.h: one "ok"/"not ok" line per test, a line per failed check,
 * and "N passed, N failed" last (lf_test_summary). Shared by test_unit and test_store. */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "test.h"

int lf_test_failed_now;
static int passed, failed;
static const char *filter;

void lf_test_filter(const char *name_substring)
{
    filter = name_substring;
}

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

int lf_test_summary(void)
{
    printf("%d passed, %d failed\n", passed, failed);
    return failed ? 1 : 0;
}
