/* FUZZ_CHECK: an invariant of a harness. A broken one aborts, so libFuzzer keeps the input as
 * a crash (with the condition printed). */
#ifndef LF_FUZZ_CHECK_H
#define LF_FUZZ_CHECK_H

#include <stdio.h>
#include <stdlib.h>

#define FUZZ_CHECK(cond)                                                                           \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "%s:%d: invariant broken: %s\n", __FILE__, __LINE__, #cond);           \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

#endif
