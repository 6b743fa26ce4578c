#!/bin/bash -eu
# The ClusterFuzzLite / OSS-Fuzz build contract: compile with $CC/$CXX and $CFLAGS/$CXXFLAGS
# (which carry the sanitizer and coverage flags), link fuzzers with $LIB_FUZZING_ENGINE, and put in
# $OUT each fuzzer, its seed corpus (<fuzzer>_seed_corpus.zip) and its dictionary (<fuzzer>.dict).
# tests/clusterfuzzlite_test.sh runs this script outside Docker with local values.
cd "$(dirname "${BASH_SOURCE[0]}")/.."
build="${WORK:-/tmp}/cyclefuzz-clusterfuzzlite"

# Without the real runtimes (CPython, Lua, PHP, Duktape, mruby, Nim): Debian packages the fuzzing
# image lacks.
# Build type None: $CFLAGS alone set the optimisation (-O1 under OSS-Fuzz, which also compiles
# faster than -O3) and assertions stay on, as a fuzzing build wants them.
cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=None \
  -DCMAKE_C_COMPILER="$CC" -DCMAKE_CXX_COMPILER="$CXX" \
  -DCMAKE_C_FLAGS="$CFLAGS" -DCMAKE_CXX_FLAGS="$CXXFLAGS" \
  -DCYCLEFUZZ_FUZZ=ON -DCYCLEFUZZ_FUZZ_INSTRUMENT=OFF -DCYCLEFUZZ_SANITIZE=OFF \
  -DCYCLEFUZZ_TESTS=OFF -DCYCLEFUZZ_RUNTIMES=OFF -DCYCLEFUZZ_FUZZ_ENGINE="$LIB_FUZZING_ENGINE"
cmake --build "$build" -j "$(nproc)" --target fuzz_collectors fuzz_trace_parser fuzz_seeds

# fuzz-targets.txt: one line per fuzzer, "name seed-directory [dictionary]" (fuzz/CMakeLists.txt).
while read -r name seeds dict; do
  cp "$build/fuzz/$name" "$OUT/"
  rm -f "$OUT/${name}_seed_corpus.zip"
  (cd "$seeds" && find . -type f ! -name '*.stamp' -print | zip -q -j "$OUT/${name}_seed_corpus.zip" -@)
  if [[ -n "${dict:-}" ]]; then cp "$dict" "$OUT/$name.dict"; fi
done <"$build/fuzz-targets.txt"
