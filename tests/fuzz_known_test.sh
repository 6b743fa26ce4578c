#!/usr/bin/env bash
# fuzz_collectors with CYCLEFUZZ_KNOWN: an input that fails only as a known trace does is no
# finding (the target returns instead of aborting); one that fails another way still is; a bad
# CYCLEFUZZ_KNOWN is bad input. Runs the replay build of the target (fuzz/replay_main.cpp).
# Usage: fuzz_known_test.sh FUZZ_COLLECTORS CYCLEFUZZ
set -uo pipefail
fuzzer=$1
cyclefuzz=$2
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
failures=0
fail() { echo "FAIL: $*"; failures=$((failures + 1)); }
export CYCLEFUZZ_COLLECTORS=mutant:sweep-skips-last-object

printf 'new a\nlink a a\nunroot a\ncollect\n' >"$tmp/count.trace"                     # wrong count
printf 'new a\nnew b\nlink a b\nlink b a\nunroot a\nunroot b\ncollect\n' >"$tmp/free.trace"
"$cyclefuzz" encode "$tmp/count.trace" -o "$tmp/input" || fail "encode failed"

"$fuzzer" "$tmp/input" >"$tmp/out" 2>&1 && fail "the failing input passed: $(cat "$tmp/out")"
CYCLEFUZZ_KNOWN=$tmp/count.trace "$fuzzer" "$tmp/input" >"$tmp/out" 2>&1 ||
  fail "a known failure was a finding: $(cat "$tmp/out")"
CYCLEFUZZ_KNOWN=$tmp/free.trace "$fuzzer" "$tmp/input" >"$tmp/out" 2>&1 &&
  fail "a failure of another signature passed as known: $(cat "$tmp/out")"
CYCLEFUZZ_KNOWN=$tmp/missing.trace "$fuzzer" "$tmp/input" >"$tmp/out" 2>&1
status=$?
[[ $status -eq 2 ]] && grep -q "CYCLEFUZZ_KNOWN: .*missing.trace" "$tmp/out" ||
  fail "a bad CYCLEFUZZ_KNOWN exited $status: $(cat "$tmp/out")"

[[ $failures -eq 0 ]] && echo "fuzz_known: all checks passed"
[[ $failures -eq 0 ]]
