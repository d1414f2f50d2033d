/* The unit-test runner's few macros. A test is a `static void test_x(void)`; a suite file
 * ends with `void suite_x(void) { LF_RUN(test_x); ... }`, listed in tests/unit/main.c. */
#ifndef LF_TEST_H
#define LF_TEST_H

#include <math.h>
#include <stdio.h>
#include <string.h>

extern int lf_test_failed_now;
void lf_test_run(const char *name, void (*fn)(void));
void lf_test_filter(const char *name_substring); /* run only the tests whose name has it */
int lf_test_summary(void);                       /* prints "N passed, N failed"; exit status */
void lf_test_fail(const char *file, int line, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#define LF_RUN(fn) lf_test_run(#fn, fn)

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            lf_test_fail(__FILE__, __LINE__, "CHECK(%s)", #cond);                                  \
            return;                                                                                \
        }                                                                                          \
    } while (0)

#define CHECK_INT(a, b)                                                                            \
    do {                                                                                           \
        long long a_ = (long long)(a), b_ = (long long)(b);                                        \
        if (a_ != b_) {                                                                            \
            lf_test_fail(__FILE__, __LINE__, "%s == %lld, expected %s == %lld", #a, a_, #b, b_);   \
            return;                                                                                \
        }                                                                                          \
    } while (0)

#define CHECK_STR(a, b)                                                                            \
    do {                                                                                           \
        const char *a_ = (a), *b_ = (b);                                                           \
        if (!a_ || !b_ || strcmp(a_, b_) != 0) {                                                   \
            lf_test_fail(__FILE__, __LINE__, "%s == \"%s\", expected \"%s\"", #a,                  \
                         a_ ? a_ : "(null)", b_ ? b_ : "(null)");                                  \
            return;                                                                                \
        }                                                                                          \
    } while (0)

/* A string view equals a C string. */
#define CHECK_SV(sv, s)                                                                            \
    do {                                                                                           \
        lf_str_t sv_ = (sv);                                                                       \
        const char *s_ = (s);                                                                      \
        if (sv_.len != strlen(s_) || (sv_.len && memcmp(sv_.ptr, s_, sv_.len) != 0)) {             \
            lf_test_fail(__FILE__, __LINE__, "%s == \"%.*s\", expected \"%s\"", #sv, (int)sv_.len, \
                         sv_.ptr ? sv_.ptr : "", s_);                                              \
            return;                                                                                \
        }                                                                                          \
    } while (0)

/* Relative (or, near zero, absolute) tolerance. */
#define CHECK_NEAR(a, b, rel)                                                                      \
    do {                                                                                           \
        double a_ = (a), b_ = (b);                                                                 \
        double tol_ = (rel) * (fabs(b_) > 1.0 ? fabs(b_) : 1.0);                                   \
        if (!(fabs(a_ - b_) <= tol_)) {                                                            \
            lf_test_fail(__FILE__, __LINE__, "%s == %.17g, expected %.17g (tol %g)", #a, a_, b_,   \
                         tol_);                                                                    \
            return;                                                                                \
        }                                                                                          \
    } while (0)

#endif
