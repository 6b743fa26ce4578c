# A thin wrapper over CMake and CTest. Each target installs the Debian packages it needs (when
# run as root; otherwise it prints the apt-get command), configures, builds and runs.
JOBS ?= 2
BUILD ?= build

.PHONY: all test fuzz build clean

all: test

# The whole suite, built with AddressSanitizer and UndefinedBehaviorSanitizer.
test: build
	ctest --test-dir $(BUILD) --output-on-failure -j $(JOBS)

build:
	tools/ensure-deps build runtimes
	cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCYCLEFUZZ_SANITIZE=ON
	cmake --build $(BUILD) -j $(JOBS)

# Placeholder until the fuzzing issue (#4) lands: the fuzz targets do not exist yet.
fuzz:
	@echo "make fuzz: the libFuzzer targets are not built yet (issue 4); run 'make test'."

clean:
	rm -rf build build-*
