/* libFuzzer harness: lf_event_decode, the entry point the processor calls on every Kafka
 * value. Most inputs take the MessagePack front end (the first byte decides; text goes to
 * JSON, see event.c). Every outcome is checked (fuzz_event.h): a decoded event keeps every
 * promise of event.h, a refusal names one of the dead-letter reasons. The raw bytes also go
 * through lf_str_escape, the CLI's guard against ids that would break its tables. */
#include "fuzz_event.h"

static lf_arena_t fuzz_arena;
static lf_event_limits_t fuzz_lim;

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    lf_arena_init(&fuzz_arena, 0);
    lf_event_limits_default(&fuzz_lim);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    lf_event_t ev;
    lf_err_t err = {0};
    lf_arena_reset(&fuzz_arena);
    int rc = lf_event_decode(data, size, &fuzz_lim, &fuzz_arena, &ev, &err);
    fuzz_check_outcome(rc, &ev, &err, &fuzz_lim);
    fuzz_check_escape((lf_str_t){(const char *)data, size > 4096 ? 4096 : (uint32_t)size});
    return 0;
}
