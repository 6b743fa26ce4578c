#!/usr/bin/env bash
# `make fuzz` as a user meets it (tools/run-fuzz, in build-fuzz/): on a planted bug it builds,
# fuzzes, finds it, minimizes it and prints the command that keeps it (exit 1); a plug-in it
# cannot load stops it with exit 2 rather than a summary of nothing; fuzz_collectors meets a
# bug that needs a longer trace from an empty corpus (its fresh draws); and with FUZZ_KNOWN it
# goes on past known crashes.
# Usage: run_fuzz_test.sh SOURCE_DIR
set -uo pipefail
cd "$1" || exit 1
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
failures=0
fail() { echo "FAIL: $*"; failures=$((failures + 1)); }

out=$(FUZZ_COLLECTORS=mutant:scan-forgets-restore FUZZ_SECONDS=60 FUZZ_OUT="$tmp/planted" \
      tools/run-fuzz 2>&1)
status=$?
[[ $status -eq 1 ]] || fail "a planted bug: exit $status, expected 1: $out"
grep -q "on mutant:scan-forgets-restore; minimal trace" <<<"$out" || fail "no minimal trace: $out"
grep -q "keep it: build-fuzz/cyclefuzz promote" <<<"$out" || fail "no promote command: $out"
minimal=$(find "$tmp/planted/findings/fuzz_collectors" -name '*.min.trace' | head -1)
[[ -n $minimal ]] && build-fuzz/cyclefuzz replay "$minimal" --collector mutant:scan-forgets-restore \
  --thresholds 9,4,3 >/dev/null
[[ $? -eq 1 ]] || fail "the minimal trace does not fail on replay: $minimal"

# From nothing: libFuzzer's own mutations took some 10^5 executions to meet this mutant
# (docs/collectors.md); with fuzz_collectors' fresh draws it is met within a few hundred.
mkdir -p "$tmp/empty"
CYCLEFUZZ_COLLECTORS=mutant:ephemeron-single-pass build-fuzz/fuzz/fuzz_collectors "$tmp/empty" \
  -seed=1 -runs=3000 -artifact_prefix="$tmp/fresh-" >"$tmp/fresh.log" 2>&1
ls "$tmp"/fresh-crash-* >/dev/null 2>&1 ||
  fail "3000 executions from an empty corpus met no planted bug: $(tail -3 "$tmp/fresh.log")"

# FUZZ_KNOWN: a crash that fails as a known trace does is said, not minimized, and fuzzing goes
# on from the corpus until the time is up; nothing new, exit 0.
# (The known trace is a chain far longer than any stack, so that it overflows in this build
# whatever its frames.)
crasher=mutant:release-recurses-per-object
mkdir -p "$tmp/known"
printf 'build o1 chain 20000\nunroot o1\n' >"$tmp/known/deep-chain.trace"
out=$(FUZZ_COLLECTORS=$crasher FUZZ_SECONDS=20 FUZZ_KNOWN="$tmp/known" FUZZ_OUT="$tmp/known-run" \
      tools/run-fuzz 2>&1)
status=$?
[[ $status -eq 0 ]] || fail "FUZZ_KNOWN with only known crashes: exit $status, expected 0: $out"
grep -q "fuzzing on from the corpus" <<<"$out" || fail "FUZZ_KNOWN: no second round: $out"
grep -q "^  known: crash .* on $crasher: stack-overflow in" <<<"$out" ||
  fail "FUZZ_KNOWN: the known crash was not said: $out"

out=$(FUZZ_PLUGINS="$tmp/missing.so" FUZZ_SECONDS=5 FUZZ_OUT="$tmp/missing" tools/run-fuzz 2>&1)
status=$?
[[ $status -eq 2 ]] || fail "a plug-in that cannot load: exit $status, expected 2: $out"
grep -q "missing.so: no such file" <<<"$out" || fail "the plug-in's problem was not shown: $out"
grep -q "failed without a finding" <<<"$out" || fail "no word that nothing was fuzzed: $out"

[[ $failures -eq 0 ]] && echo "run-fuzz: all checks passed"
exit $((failures > 0))
