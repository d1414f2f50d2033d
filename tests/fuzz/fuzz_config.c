/* libFuzzer harness: the rules-file loader (src/core/config_load.c and the config_*.c it calls)
 * from memory, through lf_config_load_string: libyaml's parser, the node tree with anchors and
 * aliases, the settings table, the model parser and the cross checks, then the check-config summary
 * of what loaded. No file is written: the diagnostics go to one /dev/null stream opened once. A
 * refusal must come with a message; a loaded configuration must print and free cleanly
 * (LeakSanitizer checks that every path frees what it took). The first line also goes to
 * lf_duration_parse. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "leadflow/config.h"

#include "fuzz_check.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static FILE *fuzz_null;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    fuzz_null = fopen("/dev/null", "w");
    if (!fuzz_null) {
        perror("fuzz_config: /dev/null");
        abort();
    }
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    lf_config_t cfg;
    lf_err_t err = {0};
    if (size > 65536) return 0;
    /* An exact-size heap copy, not NUL-terminated: the loader must go by the length. */
    char *yaml = malloc(size ? size : 1);
    if (size) memcpy(yaml, data, size);
    memset(&cfg, 0, sizeof(cfg));
    int rc = lf_config_load_string("fuzz.yaml", yaml, size, &cfg, fuzz_null, &err);
    if (rc == LF_OK) {
        lf_config_print_summary(&cfg, fuzz_null);
        FUZZ_CHECK(cfg.redis_prefix && cfg.kafka_brokers && cfg.topic_events);
        lf_config_free(&cfg);
    } else {
        FUZZ_CHECK(rc == LF_ERR);
        FUZZ_CHECK(err.msg[0] != '\0');
    }

    /* lf_duration_parse wants a C string: the first line, up to 63 bytes. */
    char line[64];
    size_t n = 0;
    while (n < size && n < sizeof(line) - 1 && data[n] != '\n')
        n++;
    memcpy(line, data, n);
    line[n] = '\0';
    int64_t ms = 0;
    const char *sign = line + strspn(line, " \t\r\f\v");
    if (lf_duration_parse(line, &ms) == LF_OK) FUZZ_CHECK(*sign == '-' ? ms <= 0 : ms >= 0);
    free(yaml);
    return 0;
}
