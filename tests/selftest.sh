#!/usr/bin/env bash
# Who tests the tester: `cyclefuzz check` with a fixed seed and a bounded number of runs must
# detect every mutant, and every correct collector must pass the very same runs. Then `replay`
# must report every mutant's minimal counterexample and `explain` draw it - as a picture and as a
# step-through page - without a fault of their own: each exits 1 (a violation or a crash reported
# or drawn; explain writes the file). In the sanitized build a fault of the front end itself (a
# heap-use-after-free while drawing, say, or a mutant's crash taking the report down) would end it
# with the sanitizers' status instead, which is set apart here (a collector's own crash happens
# in a child process and is reported).
# Usage: selftest.sh CYCLEFUZZ
set -uo pipefail
cyclefuzz=$1
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
# (1000 runs: with map entries in the distribution, seed 1 meets nested-collection-in-release's
# crash at its 526th trace, where it met it before the 500th.)
budget=(--runs 1000 --seed 1 --max-ops 1000)
failures=0
export ASAN_OPTIONS=${ASAN_OPTIONS:+$ASAN_OPTIONS:}exitcode=86
export UBSAN_OPTIONS=${UBSAN_OPTIONS:+$UBSAN_OPTIONS:}exitcode=86

# explain COLLECTOR TRACE FLAG EXTENSION: draws it, and says what went wrong if explain did.
explain() {
  local drawn=$out/drawn.$4
  rm -f "$drawn"
  "$cyclefuzz" explain "$2" --collector "$1" "$3" "$drawn" > "$out/explain.log" 2>&1
  local status=$?
  if [[ $status -ne 1 || ! -s $drawn ]]; then
    echo "  FAIL: explain $3 exit $status (expected 1, a picture of the violation); its output:"
    sed 's/^/    /' "$out/explain.log" | tail -20
    return 1
  fi
}

# replay COLLECTOR TRACE: reports it, and says what went wrong if replay did.
replay() {
  "$cyclefuzz" replay "$2" --collector "$1" > "$out/replay.log" 2>&1
  local status=$?
  if [[ $status -ne 1 ]]; then
    echo "  FAIL: replay exit $status (expected 1, the violation or crash reported); its output:"
    sed 's/^/    /' "$out/replay.log" | tail -20
    return 1
  fi
}

printf '%-45s %-8s %s\n' collector expected result
# The correct collectors together, in one check (the same runs, generated and checked once).
correct=()
while read -r name; do correct+=(--collector "$name"); done < <(
  "$cyclefuzz" collectors | grep -o '^[a-z][a-z0-9-]*' | grep -v '^mutant')
result=$("$cyclefuzz" check "${correct[@]}" "${budget[@]}" -o "$out/correct" 2>/dev/null | head -2 |
         tail -1)
status=${PIPESTATUS[0]}
printf '%-45s %-8s %s\n' "the correct collectors" passes "$result"
[[ $status -eq 0 ]] || { echo "  FAIL: exit $status, expected 0"; failures=$((failures + 1)); }
while read -r name; do
  dir=$out/${name//:/-}
  result=$("$cyclefuzz" check --collector "$name" "${budget[@]}" -o "$dir" 2>/dev/null | head -1)
  status=${PIPESTATUS[0]}
  printf '%-45s %-8s %s\n' "$name" caught "$result"
  [[ $status -eq 1 ]] || { echo "  FAIL: exit $status, expected 1"; failures=$((failures + 1)); }
  if [[ $status -eq 1 ]]; then
    trace=$(ls "$dir"/*.trace | head -1)
    replay "$name" "$trace" || failures=$((failures + 1))
    explain "$name" "$trace" --svg svg || failures=$((failures + 1))
    explain "$name" "$trace" --html html || failures=$((failures + 1))
  fi
done < <("$cyclefuzz" collectors | grep -o '^mutant:[a-z0-9-]*')

[[ $failures -eq 0 ]] && echo "selftest: every mutant caught, replayed and drawn, every correct collector passes"
exit $((failures > 0))
