# The two commands a user needs: `make demo` and `make test`.
# Everything starts from scripts/install-deps (idempotent apt-get).
BUILD_DIR   ?= build
ASAN_DIR    ?= build-asan
JOBS        ?= $(shell nproc)
CMAKE_FLAGS ?=
# ccache keeps rebuilds of unchanged generated and CAF-heavy code cheap.
LAUNCHER    := $(shell command -v ccache >/dev/null 2>&1 && echo -DCMAKE_CXX_COMPILER_LAUNCHER=ccache)

.PHONY: deps configure build test test-asan bench demo format clean

deps:
	@bash scripts/install-deps

$(BUILD_DIR)/build.ninja:
	cmake -S . -B $(BUILD_DIR) -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo $(LAUNCHER) $(CMAKE_FLAGS)

configure: deps $(BUILD_DIR)/build.ninja

build: configure
	cmake --build $(BUILD_DIR) -j $(JOBS)

# Every test, through ctest; then the sanitizer configuration.
test: build
	cd $(BUILD_DIR) && ctest --output-on-failure -j $(JOBS) --timeout 300
	$(MAKE) test-asan

# ASan/UBSan build of the code that parses untrusted input (bus codec,
# config parsing, planner), plus the libFuzzer run of the envelope decoder.
test-asan: deps
	cmake -S . -B $(ASAN_DIR) -G Ninja -DCMAKE_BUILD_TYPE=Debug -DMPS_SANITIZE=ON -DMPS_SANITIZER_SUBSET=ON $(LAUNCHER) $(CMAKE_FLAGS)
	cmake --build $(ASAN_DIR) -j $(JOBS)
	cd $(ASAN_DIR) && ctest --output-on-failure -j $(JOBS) --timeout 300

bench: build
	bash scripts/run-benchmarks $(BUILD_DIR)

demo: build
	bash scripts/demo $(BUILD_DIR)

format:
	find actors bus lib services tests bench -name '*.cpp' -o -name '*.h' | xargs clang-format -i

clean:
	rm -rf $(BUILD_DIR) $(ASAN_DIR)

# The chaos test with the seed, round count and fault kinds you give (ctest
# runs seed 22, 5 rounds, every kind but disk_full): make chaos SEED=7
# ROUNDS=50. A failing round prints its seed, schedule and the event log.
.PHONY: chaos fuzz
SEED   ?= 22
ROUNDS ?= 20
FAULTS ?= all
chaos: configure
	cmake --build $(BUILD_DIR) -j $(JOBS) --target chaos_test
	MPS_CHAOS_SEED=$(SEED) MPS_CHAOS_ROUNDS=$(ROUNDS) MPS_CHAOS_FAULTS=$(FAULTS) $(BUILD_DIR)/bin/chaos_test

# 10^6 inputs (FUZZ_RUNS) of each libFuzzer target under ASan/UBSan: the
# envelope decoder, the plugin config parser, the policy parser (ctest runs
# a short run of each). Crash inputs land in $(BUILD_DIR)/fuzz-artifacts.
FUZZ_RUNS ?= 1000000
fuzz: configure
	cmake --build $(BUILD_DIR) -j $(JOBS) --target fuzz_envelope fuzz_plugin_config fuzz_pool_policy
	mkdir -p $(BUILD_DIR)/fuzz-artifacts
	for f in fuzz_envelope fuzz_plugin_config fuzz_pool_policy; do \
	  echo "== $$f: $(FUZZ_RUNS) inputs"; log=$(BUILD_DIR)/fuzz-artifacts/$$f.log; \
	  /usr/bin/time -f "$$f: %e s wall, %M KiB max RSS" $(BUILD_DIR)/bin/$$f -runs=$(FUZZ_RUNS) \
	    -max_len=2048 -seed=1 -rss_limit_mb=2048 -print_final_stats=1 \
	    -artifact_prefix=$(BUILD_DIR)/fuzz-artifacts/$$f- >$$log 2>&1; rc=$$?; \
	  grep -E '^(#[0-9]+.*DONE|Done|stat::peak_rss_mb|.*s wall)' $$log; \
	  if [ $$rc != 0 ]; then tail -40 $$log; exit 1; fi; \
	done
