/* Every store-test suite, one line each (X-macro read by tests/store/main.c). */
LF_SUITE(suite_progress)
LF_SUITE(suite_fence)
LF_SUITE(suite_conflict)
LF_SUITE(suite_restore)
LF_SUITE(suite_cmdbuf)
LF_SUITE(suite_indexes)
LF_SUITE(suite_keyslot)
LF_SUITE(suite_cluster_client)
