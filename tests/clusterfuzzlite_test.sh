#!/usr/bin/env bash
# Runs .clusterfuzzlite/build.sh as ClusterFuzzLite would, but without Docker: the build contract's
# variables are set to local values (clang-14 and libFuzzer; no optimisation and no sanitizer, so
# that the build is quick: what the contract asks of build.sh does not depend on them, and the test
# of `make fuzz` builds the same sources with AddressSanitizer and UBSan). Checks that every fuzzer
# is built with $CFLAGS' coverage instrumentation, and that it, its seed corpus and its dictionary
# land in $OUT, and that each fuzzer runs on its seeds.
# Usage: clusterfuzzlite_test.sh SOURCE_DIR
set -euo pipefail
src=$1
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
export CC=clang-14 CXX=clang++-14
export CFLAGS="-O0 -fsanitize=fuzzer-no-link"
export CXXFLAGS="$CFLAGS"
export LIB_FUZZING_ENGINE="-fsanitize=fuzzer"
export OUT=$work/out WORK=$work/work
mkdir -p "$OUT" "$WORK"
unset MAKEFLAGS MFLAGS MAKELEVEL
bash "$src/.clusterfuzzlite/build.sh" >"$work/build.log" 2>&1 || { tail -40 "$work/build.log"; exit 1; }

status=0
for fuzzer in fuzz_collectors fuzz_trace_parser; do
  [[ -x $OUT/$fuzzer ]] || { echo "FAIL: $OUT/$fuzzer missing"; status=1; continue; }
  [[ -s $OUT/${fuzzer}_seed_corpus.zip ]] || { echo "FAIL: ${fuzzer}_seed_corpus.zip missing"; status=1; }
  mkdir -p "$work/seeds/$fuzzer"
  unzip -q "$OUT/${fuzzer}_seed_corpus.zip" -d "$work/seeds/$fuzzer"
  seeds=$(find "$work/seeds/$fuzzer" -type f | wc -l)
  [[ $seeds -ge 5 ]] || { echo "FAIL: only $seeds seeds for $fuzzer"; status=1; }
  dict_flag=()
  [[ -f $OUT/$fuzzer.dict ]] && dict_flag=(-dict="$OUT/$fuzzer.dict")
  if ! "$OUT/$fuzzer" "${dict_flag[@]}" -runs=2000 "$work/seeds/$fuzzer" >"$work/$fuzzer.log" 2>&1; then
    tail -20 "$work/$fuzzer.log"; echo "FAIL: $fuzzer did not run cleanly"; status=1
  fi
  grep -q "Done 2000 runs" "$work/$fuzzer.log" || { echo "FAIL: $fuzzer did not finish its runs"; status=1; }
  grep -q "inline 8-bit counters" "$work/$fuzzer.log" ||
    { echo "FAIL: $fuzzer has no coverage counters: \$CFLAGS did not reach its sources"; status=1; }
done
[[ -f $OUT/fuzz_trace_parser.dict ]] || { echo "FAIL: fuzz_trace_parser.dict missing"; status=1; }
[[ $status -eq 0 ]] && echo "clusterfuzzlite: build.sh put 2 fuzzers, seed corpora and a dictionary in \$OUT; both run"
exit $status
