# libFuzzer harnesses (tests/fuzz/fuzz_*.c), included by the Makefile. Built with clang into
# $(BUILD)/fuzz/, each linked with the pure core (src/core/: no librdkafka, no hiredis):
#   make fuzz-build      build every harness
#   make fuzz            run each harness for FUZZ_SECONDS (default 60), one after the other:
#                        the regression inputs first, then fuzzing on a corpus kept in
#                        $(BUILD)/fuzz/corpus/NAME (grown from tests/fuzz/corpus/NAME); a crash
#                        is saved in $(BUILD)/fuzz/crashes/NAME/ and fails the target
#   make fuzz FUZZ_TARGETS="json url" FUZZ_SECONDS=600
# `make test` runs tests/fuzz/smoke.sh: each harness for a few seconds, in a temporary corpus.
# Every variable here starts with FUZZ_ so that none clashes with the Makefile's.

FUZZ_CC      ?= clang
FUZZ_SECONDS ?= 60
FUZZ_ALL     := msgpack json url time config
FUZZ_TARGETS ?= $(FUZZ_ALL)
FUZZ_DIR     := $(BUILD)/fuzz
# UBSan aborts (no recover) so that undefined behaviour is a crash libFuzzer keeps.
FUZZ_SAN     := -fsanitize=address,undefined -fno-sanitize-recover=undefined \
                -fno-omit-frame-pointer
FUZZ_CFLAGS  := $(STD) $(WARN) -O1 -g $(FUZZ_SAN) -fsanitize=fuzzer-no-link -Iinclude -Isrc/core \
                $(shell pkg-config --cflags libcjson msgpack yaml-0.1 2>/dev/null) -MMD -MP

# The core built with clang and the sanitizers, in one archive each harness links.
FUZZ_CORE_OBJ := $(patsubst %.c,$(FUZZ_DIR)/obj/%.o,$(wildcard src/core/*.c))
FUZZ_CORE_LIB := $(FUZZ_DIR)/libleadflow_core.a
FUZZ_LIBS     := -lyaml -lmsgpackc -lcjson -lcrypto -lm

FUZZ_BINS := $(FUZZ_ALL:%=$(FUZZ_DIR)/fuzz_%)

.PHONY: fuzz fuzz-build

fuzz-build: $(FUZZ_BINS)

fuzz: fuzz-build
	@sh tests/fuzz/run.sh $(FUZZ_DIR) $(FUZZ_SECONDS) $(FUZZ_DIR)/corpus $(FUZZ_DIR)/crashes \
	    "$(FUZZ_TARGETS)"

# The shorter stem wins over the Makefile's $(BUILD)/%.o rule.
$(FUZZ_DIR)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -c $< -o $@

$(FUZZ_CORE_LIB): $(FUZZ_CORE_OBJ)
	@rm -f $@
	ar rcs $@ $^

define FUZZ_LINK
$(FUZZ_DIR)/fuzz_$(1): $(FUZZ_DIR)/obj/tests/fuzz/fuzz_$(1).o $(FUZZ_CORE_LIB)
	$$(FUZZ_CC) $$(FUZZ_SAN) -fsanitize=fuzzer -o $$@ $$^ $$(FUZZ_LIBS)
endef
$(foreach h,$(FUZZ_ALL),$(eval $(call FUZZ_LINK,$(h))))

-include $(wildcard $(FUZZ_DIR)/obj/src/core/*.d $(FUZZ_DIR)/obj/tests/fuzz/*.d)
