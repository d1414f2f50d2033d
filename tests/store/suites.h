/* Every store-test suite, one line each (X-macro read by tests/store/main.c). */
LF_SUITE(suite_progress)
LF_SUITE(suite_fence)
