#!/usr/bin/env bash
# Who tests the tester: `cyclefuzz check` with a fixed seed and a bounded number of runs must
# detect every mutant, and every correct collector must pass the very same runs (a runtime may
# fail them only as one of its recorded findings does, corpus/findings/). Then `replay`
# must report every mutant's minimal counterexample and `explain` draw it - as a picture and as a
# step-through page - without a fault of their own: each exits 1 (a violation or a crash reported
# or drawn; explain writes the file). In the sanitized build a fault of the front end itself (a
# heap-use-after-free while drawing, say, or a mutant's crash taking the report down) would end it
# with the sanitizers' status instead, which is set apart here (a collector's own crash happens
# in a child process and is reported).
# Usage: selftest.sh CYCLEFUZZ
set -uo pipefail
cyclefuzz=$1
findings=$(dirname "$0")/../corpus/findings
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
# (1000 runs: with map entries in the distribution, seed 1 meets nested-collection-in-release's
# crash at its 526th trace, where it met it before the 500th.)
runs=1000
budget=(--seed 1 --max-ops 1000)
failures=0
export ASAN_OPTIONS=${ASAN_OPTIONS:+$ASAN_OPTIONS:}exitcode=86
export UBSAN_OPTIONS=${UBSAN_OPTIONS:+$UBSAN_OPTIONS:}exitcode=86

# explain COLLECTOR TRACE FLAG EXTENSION DIR: draws it, and says what went wrong if explain did.
explain() {
  local drawn=$5/drawn.$4
  "$cyclefuzz" explain "$2" --collector "$1" "$3" "$drawn" > "$5/explain.log" 2>&1
  local status=$?
  if [[ $status -ne 1 || ! -s $drawn ]]; then
    echo "  FAIL: explain $3 exit $status (expected 1, a picture of the violation); its output:"
    sed 's/^/    /' "$5/explain.log" | tail -20
    return 1
  fi
}

# replay COLLECTOR TRACE DIR: reports it, and says what went wrong if replay did.
replay() {
  "$cyclefuzz" replay "$2" --collector "$1" > "$3/replay.log" 2>&1
  local status=$?
  if [[ $status -ne 1 ]]; then
    echo "  FAIL: replay exit $status (expected 1, the violation or crash reported); its output:"
    sed 's/^/    /' "$3/replay.log" | tail -20
    return 1
  fi
}

# correct RUNS NAME...: one check of these correct collectors together (the same runs, generated
# and checked once), on the first RUNS of the budget's runs, which must pass; a runtime alone may
# fail them only as one of its recorded findings does (corpus/findings/, FINDINGS.md: `check
# --known` goes on past them).
correct() {
  local runs=$1 dir=$out/correct-$2 collectors=() known=() output status
  shift
  for name in "$@"; do collectors+=(--collector "$name"); done
  [[ $# -eq 1 ]] && known=(--known "$findings")
  output=$("$cyclefuzz" check "${collectors[@]}" "${known[@]}" "${budget[@]}" --runs "$runs" \
             -o "$dir" 2>/dev/null)
  status=$?
  local result
  result=$(grep -v '^cyclefuzz check' <<<"$output" | head -1)
  printf '%-45s %-8s %s\n' "$*" passes "$result"
  [[ $status -eq 0 ]] || { echo "  FAIL: exit $status, expected 0"; return 1; }
}

# mutant NAME: check catches it, then replay reports and explain draws what check found.
mutant() {
  local name=$1 dir=$out/${1//:/-} result status trace failures=0
  mkdir -p "$dir"
  result=$("$cyclefuzz" check --collector "$name" --runs "$runs" "${budget[@]}" -o "$dir/found" \
             2>/dev/null | head -1)
  status=${PIPESTATUS[0]}
  printf '%-45s %-8s %s\n' "$name" caught "$result"
  [[ $status -eq 1 ]] || { echo "  FAIL: exit $status, expected 1"; return 1; }
  trace=$(ls "$dir"/found/*.trace | head -1)
  replay "$name" "$trace" "$dir" || failures=$((failures + 1))
  explain "$name" "$trace" --svg svg "$dir" || failures=$((failures + 1))
  explain "$name" "$trace" --html html "$dir" || failures=$((failures + 1))
  return $((failures > 0))
}

# One job per core (each check is one process): the built-in collectors together, each runtime
# alone, each mutant. A runtime passes the first 100 runs: a runtime's run can cost ten times
# the built-ins' (the ten runtimes' 300 took 162 s here, CPython's 56 s of it), and
# tests/runtimes_test.cpp checks 400 generated traces on each, the runtime/ replays its
# regressions. Every job's lines go to its own log, printed in order at the end.
mapfile -t builtins < <("$cyclefuzz" collectors | grep -o '^[a-z][a-z0-9-]*  (default)' |
                        cut -d' ' -f1)
mapfile -t runtimes < <("$cyclefuzz" collectors | grep -o '^[a-z][a-z0-9.-]*$')
mapfile -t mutants < <("$cyclefuzz" collectors | grep -o '^mutant:[a-z0-9-]*')
logs=()
for job in "$runs ${builtins[*]}" "${runtimes[@]/#/100 }" "${mutants[@]}"; do
  while [[ $(jobs -rp | wc -l) -ge $(nproc) ]]; do wait -n; done
  log=$out/${job//[: ]/-}.log
  # (A job's words: the runs and collectors of one correct check, or one mutant.)
  # shellcheck disable=SC2086
  { if [[ $job == mutant:* ]]; then mutant "$job"; else correct $job; fi; echo "status $?"; } \
    > "$log" 2>&1 &
  logs+=("$log")
done
wait

printf '%-45s %-8s %s\n' collector expected result
for log in "${logs[@]}"; do
  grep -v '^status ' "$log"
  grep -q '^status 0$' "$log" || failures=$((failures + 1))
done

[[ $failures -eq 0 ]] && echo "selftest: every mutant caught, replayed and drawn, every correct collector passes"
exit $((failures > 0))
