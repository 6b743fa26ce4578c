#!/usr/bin/env bash
# Who tests the tester: `cyclefuzz check` with a fixed seed and a bounded number of runs must
# detect every mutant, and every correct collector must pass the very same runs.
# Usage: selftest.sh CYCLEFUZZ
set -uo pipefail
cyclefuzz=$1
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
budget=(--runs 500 --seed 1 --max-ops 1000 -o "$out")
failures=0

printf '%-45s %-8s %s\n' collector expected result
while read -r name; do
  result=$("$cyclefuzz" check --collector "$name" "${budget[@]}" 2>/dev/null | head -1)
  status=${PIPESTATUS[0]}
  case $name in
    mutant:*) want=1 ;;
    *) want=0 ;;
  esac
  printf '%-45s %-8s %s\n' "$name" "$([[ $want -eq 1 ]] && echo caught || echo passes)" "$result"
  [[ $status -eq $want ]] || { echo "  FAIL: exit $status, expected $want"; failures=$((failures + 1)); }
done < <("$cyclefuzz" collectors | grep -o '^[a-z][a-z0-9:-]*')

[[ $failures -eq 0 ]] && echo "selftest: every mutant caught, every correct collector passes"
exit $((failures > 0))
