# leadflow — plain Makefile. `make` builds build/leadflow; `make test` runs every test;
# `make asan` runs them under AddressSanitizer + UBSan; `make deps` installs what is missing.
# The user's CFLAGS/LDFLAGS are kept apart from the project's (FINAL_*).

CC       ?= cc
STD      := -std=c11 -D_GNU_SOURCE
# -Werror in development and CI (WERROR=1, as .ci/run sets it), not in a user's plain `make`:
# a newer compiler's new warning must not break their build.
WARN     := -Wall -Wextra -Wshadow -Wno-missing-field-initializers
ifeq ($(WERROR),1)
WARN     += -Werror
endif
OPT      ?= -O2
DEBUG    ?= -g
BUILD    ?= build
SANITIZE ?=
DEPLIBS  := rdkafka hiredis msgpack yaml-0.1 libcjson libcrypto libmicrohttpd
PKG_CFLAGS := $(shell pkg-config --cflags $(DEPLIBS) 2>/dev/null)
PKG_LIBS   := $(shell pkg-config --libs $(DEPLIBS) 2>/dev/null)
# jemalloc is the allocator of the release build; sanitizers bring their own.
ifeq ($(SANITIZE),)
ALLOC_LIBS := -ljemalloc
else
ALLOC_LIBS :=
endif

FINAL_CFLAGS  = $(STD) $(WARN) $(OPT) $(DEBUG) $(SANITIZE) -Iinclude $(PKG_CFLAGS) -MMD -MP $(CFLAGS)
FINAL_LDFLAGS = $(SANITIZE) $(LDFLAGS)
FINAL_LIBS    = $(PKG_LIBS) $(ALLOC_LIBS) -lpthread -lm -ldl $(LIBS)

# The tree is the data path (docs/design.md opens with the map):
#   src/core/      pure logic: decode, rules model, score, stage, lead, codecs. No Kafka, no
#                  Redis client, no I/O but stderr: libleadflow_core.a, all the unit tests link.
#   src/pipeline/  consume -> identity -> apply -> persist -> publish -> progress -> commit
#   src/store/     the store.h back ends (Redis)
#   src/cli/       one file per command, and main()
#   src/tools/     the event generator and the embedded dev broker
CORE_SRC  := $(wildcard src/core/*.c)
APP_SRC   := $(filter-out src/cli/main.c,$(wildcard src/pipeline/*.c src/store/*.c src/cli/*.c \
                                                    src/tools/*.c))
STORE_LIB_SRC := $(wildcard src/store/*.c)
UNIT_SRC  := $(wildcard tests/unit/*.c)
# The store back end against a real redis-server it starts (test.h's runner shared).
STORE_SRC := $(wildcard tests/store/*.c) tests/unit/runner.c

CORE_OBJ  := $(CORE_SRC:%.c=$(BUILD)/%.o)
APP_OBJ   := $(APP_SRC:%.c=$(BUILD)/%.o)
STORE_LIB_OBJ := $(STORE_LIB_SRC:%.c=$(BUILD)/%.o)
UNIT_OBJ  := $(UNIT_SRC:%.c=$(BUILD)/%.o)
STORE_OBJ := $(STORE_SRC:%.c=$(BUILD)/%.o)
# Libraries the core may use: everything but the Kafka and Redis clients.
CORE_LIBS = $(shell pkg-config --libs msgpack yaml-0.1 libcjson libcrypto 2>/dev/null) \
            $(ALLOC_LIBS) -lm \
            $(LIBS)

.PHONY: all deps test unit asan asan-quick demo bench soak clean format check-format

all: $(BUILD)/leadflow $(BUILD)/test_unit $(BUILD)/test_store

$(BUILD)/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(FINAL_CFLAGS) -c $< -o $@

$(BUILD)/libleadflow_core.a: $(CORE_OBJ)
	@rm -f $@
	ar rcs $@ $^

$(BUILD)/libleadflow.a: $(APP_OBJ)
	@rm -f $@
	ar rcs $@ $^

$(BUILD)/leadflow: $(BUILD)/src/cli/main.o $(BUILD)/libleadflow.a $(BUILD)/libleadflow_core.a
	$(CC) $(FINAL_LDFLAGS) -rdynamic -o $@ $^ $(FINAL_LIBS)

# The unit tests link the core and nothing of Kafka or Redis; the build fails if either
# client's symbol gets into the binary (scripts/check-core.sh).
$(BUILD)/test_unit: $(UNIT_OBJ) $(BUILD)/libleadflow_core.a scripts/check-core.sh
	$(CC) $(FINAL_LDFLAGS) -o $@ $(UNIT_OBJ) $(BUILD)/libleadflow_core.a $(CORE_LIBS)
	@sh scripts/check-core.sh $@ $(BUILD)/libleadflow_core.a || { rm -f $@; exit 1; }

# The store tests link the core and the Redis back end: no Kafka, no dev broker.
$(BUILD)/test_store: $(STORE_OBJ) $(STORE_LIB_OBJ) $(BUILD)/libleadflow_core.a
	$(CC) $(FINAL_LDFLAGS) -o $@ $^ $(shell pkg-config --libs hiredis 2>/dev/null) $(CORE_LIBS)

deps:
	@sh scripts/deps.sh

# The whole suite: unit tests, then integration and fault tests on real redis-server and
# the embedded broker. Last line: "N passed, N failed".
test: deps
	@$(MAKE) --no-print-directory all
	@sh tests/run.sh $(BUILD)

unit: all
	@$(BUILD)/test_unit

asan: deps
	@$(MAKE) --no-print-directory all BUILD=build/asan OPT=-O1 \
	    SANITIZE="-fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined"
	@ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 sh tests/run.sh build/asan

# The sanitizer run CI makes after `make test`: the unit, store and fuzz-smoke tests under
# AddressSanitizer + UBSan (`make asan` runs the whole suite so).
asan-quick: deps
	@$(MAKE) --no-print-directory all BUILD=build/asan OPT=-O1 \
	    SANITIZE="-fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined"
	@ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 \
	    sh tests/run.sh build/asan 'unit\|store\|fuzz'

demo: deps
	@$(MAKE) --no-print-directory all
	@sh scripts/demo.sh $(BUILD)

bench:
	@LF_EXTRA_PKGS="python3-msgpack python3-matplotlib python3-yaml" sh scripts/deps.sh
	@$(MAKE) --no-print-directory all
	@sh bench/run.sh $(BUILD)

soak: deps
	@$(MAKE) --no-print-directory all
	@LF_SOAK=1 sh tests/run.sh $(BUILD)

FORMAT_FILES = $(wildcard src/*/*.c src/*/*.h include/leadflow/*.h tests/unit/*.c tests/unit/*.h \
                          tests/store/*.c tests/store/*.h tests/fuzz/*.c tests/fuzz/*.h)
format:
	clang-format -i $(FORMAT_FILES)

check-format: deps
	clang-format --dry-run --Werror $(FORMAT_FILES)

clean:
	rm -rf build

# libFuzzer harnesses (clang): `make fuzz`, and the smoke run inside `make test`.
-include tests/fuzz/fuzz.mk

-include $(CORE_OBJ:.o=.d) $(APP_OBJ:.o=.d) $(UNIT_OBJ:.o=.d) $(STORE_OBJ:.o=.d) $(BUILD)/src/cli/main.d
