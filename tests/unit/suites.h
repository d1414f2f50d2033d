/* Every unit-test suite, one line each (X-macro read by main.c). */
LF_SUITE(suite_common)
LF_SUITE(suite_event)
LF_SUITE(suite_config)
LF_SUITE(suite_score)
LF_SUITE(suite_stage)
LF_SUITE(suite_lead)
LF_SUITE(suite_gen)
LF_SUITE(suite_lead_codec)
