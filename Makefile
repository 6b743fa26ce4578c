# A thin wrapper over CMake and CTest. Each target installs the Debian packages it needs (when
# run as root; otherwise it prints the apt-get command), configures, builds and runs.
JOBS ?= 2
BUILD ?= build

.PHONY: all test fuzz build tool install properties bench clean

all: test

# The whole suite, built with AddressSanitizer and UndefinedBehaviorSanitizer. Leaves JUnit XML
# in $(BUILD)/junit.xml (one test case per test, every corpus trace included) for CI to show.
# Graphviz is for the command-line test of `cyclefuzz explain --svg`; Chromium for the test of
# its step-through page (`--html`) in a real browser.
test: build
	ctest --test-dir $(BUILD) --output-on-failure -j $(JOBS) --output-junit junit.xml

build:
	tools/ensure-deps build explain browser fuzz runtimes bench
	cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCYCLEFUZZ_SANITIZE=ON -DCYCLEFUZZ_BENCH=ON
	cmake --build $(BUILD) -j $(JOBS)

# The fast tool for users: Release, no sanitizers, no check_invariants() after every op (ask for
# them with --check-invariants). `make install PREFIX=...` installs it with the plug-in header and
# the files a plug-in's build finds them by (find_package(cyclefuzz), pkg-config cyclefuzz-plugin).
TOOL_BUILD ?= build-release
PREFIX ?= /usr/local
tool:
	tools/ensure-deps build runtimes
	cmake -S . -B $(TOOL_BUILD) -DCMAKE_BUILD_TYPE=Release -DCYCLEFUZZ_CHECKED=OFF -DCYCLEFUZZ_TESTS=OFF
	cmake --build $(TOOL_BUILD) -j $(JOBS) --target cyclefuzz

install: tool
	cmake --install $(TOOL_BUILD) --prefix $(PREFIX)

# A long property campaign: make properties RC_PARAMS="max_success=100000 seed=42"
RC_PARAMS ?= max_success=2000 max_size=300
properties: build
	cd $(BUILD)/properties && RC_PARAMS="$(RC_PARAMS)" ./cyclefuzz_properties

# The main job: fuzz every collector for about a minute (FUZZ_SECONDS, FUZZ_JOBS, FUZZ_COLLECTORS,
# FUZZ_THRESHOLDS, FUZZ_OUT, FUZZ_KNOWN: see tools/run-fuzz).
fuzz:
	tools/run-fuzz

# The tables of docs/performance.md, in a Release build without sanitizers or invariant checks
# ($(BENCH_BUILD)): the Google Benchmark suite (collection times come out of bench/vs-cpython,
# beside CPython's), the scale runs, and fuzz_collectors' speed (bench/fuzz-speed builds its own).
BENCH_BUILD ?= build-bench
bench:
	tools/ensure-deps build bench
	cmake -S . -B $(BENCH_BUILD) -DCMAKE_BUILD_TYPE=Release -DCYCLEFUZZ_CHECKED=OFF \
	  -DCYCLEFUZZ_BENCH=ON -DCYCLEFUZZ_TESTS=OFF -DCYCLEFUZZ_RUNTIMES=OFF
	cmake --build $(BENCH_BUILD) -j $(JOBS) --target cyclefuzz cyclefuzz_bench
	$(BENCH_BUILD)/bench/cyclefuzz_bench --benchmark_filter=-^collect/
	bench/vs-cpython --bench $(BENCH_BUILD)/bench/cyclefuzz_bench
	bench/scale $(BENCH_BUILD)/cyclefuzz
	bench/fuzz-speed 15

clean:
	rm -rf build build-*
