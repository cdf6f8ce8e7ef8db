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
