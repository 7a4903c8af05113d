# Thin wrapper over CMake. Every target installs its own apt dependencies first (idempotent).
BUILD_DIR ?= build
JOBS ?= 2
CMAKE_FLAGS ?=

.PHONY: all deps build test demo bench sanitize fuzz format install clean

all: build

deps:
	@scripts/install-deps.sh build

$(BUILD_DIR)/CMakeCache.txt:
	@cmake -S . -B $(BUILD_DIR) -DCMAKE_BUILD_TYPE=RelWithDebInfo $(CMAKE_FLAGS) >/dev/null

build: deps $(BUILD_DIR)/CMakeCache.txt
	@cmake --build $(BUILD_DIR) -j$(JOBS) -- --no-print-directory

test: build
	@ctest --test-dir $(BUILD_DIR) -j$(JOBS) --output-on-failure

demo: build
	@scripts/demo.sh $(BUILD_DIR)

# All benchmarks, or one: make bench BENCH=verify
bench:
	@scripts/install-deps.sh build bench
	@cmake -S . -B build-bench -DCMAKE_BUILD_TYPE=Release >/dev/null
	@cmake --build build-bench -j$(JOBS) -- --no-print-directory
	@scripts/bench.sh build-bench $(BENCH)

# The whole suite under AddressSanitizer + UndefinedBehaviorSanitizer.
sanitize: deps
	@cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=Debug -DCLOISTER_SANITIZE=ON >/dev/null
	@cmake --build build-asan -j$(JOBS) -- --no-print-directory
	@ctest --test-dir build-asan -j$(JOBS) --output-on-failure

# libFuzzer binaries (clang); runs each over its seed corpus with a per-input timeout and an RSS
# limit. With FUZZ_SECONDS=N (and optionally FUZZ_TARGETS="fuzz_igvm fuzz_ovmf") also a campaign:
# every target fuzzes N seconds, new coverage is merged into its in-tree corpus, and a table of
# executions is printed (scripts/fuzz-campaign.sh). FUZZ_CPU=1 pins the campaign to one core;
# FUZZ_RUNS=N also stops each target after N executions; FUZZ_DETECT_LEAKS=0 skips libFuzzer's
# per-input leak check (the corpus replay still checks).
FUZZ_SECONDS ?=
FUZZ_TARGETS ?=
fuzz:
	@scripts/install-deps.sh build fuzz
	@CC=clang CXX=clang++ cmake -S . -B build-fuzz -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCLOISTER_FUZZ=ON >/dev/null
	@cmake --build build-fuzz -j$(JOBS) -- --no-print-directory
	@ctest --test-dir build-fuzz -j$(JOBS) -L fuzz --output-on-failure
	@if [ -n "$(FUZZ_SECONDS)" ]; then scripts/fuzz-campaign.sh build-fuzz $(FUZZ_SECONDS) $(FUZZ_TARGETS); fi

format:
	@git ls-files '*.cc' '*.c' '*.h' | xargs clang-format -i

install: build
	@cmake --install $(BUILD_DIR)

clean:
	@rm -rf $(BUILD_DIR) build-bench build-asan build-fuzz
