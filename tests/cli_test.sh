#!/usr/bin/env bash
# The command line as a user meets it: exit codes, messages, gen's determinism, JSON, pictures.
# Usage: cli_test.sh CYCLEFUZZ SOURCE_DIR
set -uo pipefail
cyclefuzz=$1
src=$2
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
failures=0
fail() { echo "FAIL: $*"; failures=$((failures + 1)); }

# expect STATUS COMMAND...: runs COMMAND, checks its exit status, keeps its output in $out.
expect() {
  local want=$1; shift
  out=$("$@" 2>&1); local got=$?
  [[ $got -eq $want ]] || fail "'$*' exited $got, expected $want: $out"
}

# A passing corpus replays with exit 0 and a verdict table.
expect 0 "$cyclefuzz" replay "$src/corpus/scenarios"
grep -q '^generational .* pass$' <<<"$out" || fail "no verdict table: $out"

# A collector corrupted by a nested collection from a finalizer: the replay fails (a
# use-after-free under AddressSanitizer, else a double free), never passes.
"$cyclefuzz" replay "$src/corpus/scenarios/finalizer-asks-for-a-collection.trace" \
  --collector mutant:nested-collection-in-release >"$tmp/nested.out" 2>&1
[[ $? -ne 0 ]] || fail "the nested-collection mutant passed: $(cat "$tmp/nested.out")"

# Bad input: exit 2, file:line: problem.
printf 'new a\nlink a b\n' >"$tmp/bad.trace"
expect 2 "$cyclefuzz" replay "$tmp/bad.trace"
grep -qF "$tmp/bad.trace:2: unknown object 'b'" <<<"$out" || fail "bad message: $out"
expect 2 "$cyclefuzz" replay "$src/corpus/scenarios/self-loop.trace" --collector no-such
grep -q "unknown collector 'no-such'" <<<"$out" || fail "bad message: $out"
expect 2 "$cyclefuzz" replay "$tmp/missing.trace"
expect 2 "$cyclefuzz" replay --no-such-option x
expect 2 "$cyclefuzz" replay "$src/corpus/scenarios/self-loop.trace" --thresholds 1,2

# gen: the same seed gives the same valid trace, which replays cleanly.
"$cyclefuzz" gen --ops 400 --seed 9 >"$tmp/a.trace" || fail "gen failed"
"$cyclefuzz" gen --ops 400 --seed 9 -o "$tmp/b.trace" || fail "gen -o failed"
cmp -s "$tmp/a.trace" "$tmp/b.trace" || fail "gen is not deterministic"
[[ $(grep -vc '^#' "$tmp/a.trace") -eq 400 ]] || fail "gen did not write 400 ops"
expect 0 "$cyclefuzz" replay "$tmp/a.trace" --thresholds 5,3,2
# --max-build: larger builds, said in the header; an input decodes to the same trace under it.
"$cyclefuzz" gen --ops 2000 --seed 3 --max-build 50000 -o "$tmp/large.trace" ||
  fail "gen --max-build failed"
grep -q '^# cyclefuzz gen --ops 2000 --seed 3 --max-build 50000$' "$tmp/large.trace" ||
  fail "gen --max-build is not in the header"
[[ $(grep '^build ' "$tmp/large.trace" | awk '$4 > 1000' | wc -l) -gt 0 ]] ||
  fail "gen --max-build 50000 made no build past the default's 1000"
"$cyclefuzz" encode "$tmp/large.trace" --max-build 50000 -o "$tmp/large.bin" || fail "encode failed"
"$cyclefuzz" decode "$tmp/large.bin" --max-build 50000 -o "$tmp/large-again.trace" ||
  fail "decode failed"
diff <(grep -v '^#' "$tmp/large.trace") <(grep -v '^#' "$tmp/large-again.trace") >/dev/null ||
  fail "decode --max-build does not give back the trace encode --max-build took"
expect 2 "$cyclefuzz" gen --max-build 1

# JSON: parses, and lists frees per op for every collector.
expect 0 "$cyclefuzz" replay --json "$src/corpus/scenarios/two-cycle.trace"
python3 - "$out" <<'PY' || fail "bad JSON report"
import json, sys
r = json.loads(sys.argv[1])
t = r["traces"][0]
assert r["version"] == 1 and t["ops"] == 7 and t["violations"] == []
for c in t["collectors"]:
    assert c["verdict"] == "pass" and len(c["frees"]) == 7, c
    assert sorted(c["frees"][6]) == ["a", "b"], c
PY

# decode / encode: a trace survives the trip through fuzzer bytes.
expect 0 "$cyclefuzz" encode "$src/corpus/scenarios/nested-cycles.trace" -o "$tmp/n.bin"
expect 0 "$cyclefuzz" decode "$tmp/n.bin" -o "$tmp/n.trace"
diff <(grep -v '^#' "$tmp/n.trace" | cut -d' ' -f1) \
     <(grep -v '^ *#' "$src/corpus/scenarios/nested-cycles.trace" | sed 's/#.*//' | awk 'NF' | awk '{print $1}') \
  >/dev/null || fail "decode(encode(t)) lost ops"
expect 2 "$cyclefuzz" decode "$tmp/none.bin"
expect 2 "$cyclefuzz" encode "$tmp/bad.trace"
# A trace that no input stands for (the generator makes nothing while 256 objects are reachable)
# is refused with its line, not encoded as something else.
printf 'build s chain 300\nnew x\n' >"$tmp/past-the-cap.trace"
expect 2 "$cyclefuzz" encode "$tmp/past-the-cap.trace" -o "$tmp/fb.bin"
said=$("$cyclefuzz" encode "$tmp/past-the-cap.trace" 2>&1 >/dev/null || true)
[[ $said == *"past-the-cap.trace:2: no fuzzer input stands for this op"* ]] ||
  fail "encode did not say which op no input stands for: $said"

# minimize: a failing generated trace shrinks to a few ops that still fail; a passing one is refused.
"$cyclefuzz" gen --ops 300 --seed 1 >"$tmp/long.trace"
expect 1 "$cyclefuzz" minimize "$tmp/long.trace" --collector mutant:scan-forgets-restore -o "$tmp/min.trace"
[[ $(grep -vc '^#' "$tmp/min.trace") -le 10 ]] || fail "minimize left $(grep -vc '^#' "$tmp/min.trace") ops"
expect 1 "$cyclefuzz" replay "$tmp/min.trace" --collector mutant:scan-forgets-restore
expect 2 "$cyclefuzz" minimize "$src/corpus/scenarios/two-cycle.trace"

# promote: into a corpus directory, with the comment first; refuses to overwrite.
mkdir -p "$tmp/regressions"
expect 0 "$cyclefuzz" promote "$tmp/min.trace" --name scan-bug --caught "ScanBlack forgot counts" --corpus "$tmp/regressions"
[[ $(head -1 "$tmp/regressions/scan-bug.trace") == "# ScanBlack forgot counts" ]] || fail "promote header"
expect 0 "$cyclefuzz" replay "$tmp/regressions/scan-bug.trace"
expect 2 "$cyclefuzz" promote "$tmp/min.trace" --name scan-bug --caught x --corpus "$tmp/regressions"
expect 2 "$cyclefuzz" promote "$tmp/min.trace" --name "Bad Name" --caught x --corpus "$tmp/regressions"

# explain: draws the heap at an op as SVG, PNG or DOT text.
two="$src/corpus/scenarios/two-cycle.trace"
expect 0 "$cyclefuzz" explain "$two" --at 4 --svg "$tmp/two.svg"
grep -q '<svg' "$tmp/two.svg" 2>/dev/null || fail "explain --svg drew no SVG: $out"
grep -q "wrote $tmp/two.svg: mark-sweep: the heap after op 4" <<<"$out" || fail "bad summary: $out"
expect 0 "$cyclefuzz" explain "$two" --collector generational --thresholds 5,3,2 --png "$tmp/two.png"
[[ $(head -c 4 "$tmp/two.png" 2>/dev/null | tail -c 3) == PNG ]] || fail "explain --png drew no PNG"
expect 0 "$cyclefuzz" explain "$two" --collector trial-deletion --at 5 --dot "$tmp/two.dot"
grep -q '^digraph' "$tmp/two.dot" || fail "explain --dot wrote no DOT"
grep -q '^o1\[fillcolor=white, label="b\\nrc 2\\n"' "$tmp/two.dot" ||
  fail "b is not drawn live with its count: $(cat "$tmp/two.dot")"
# Objects named like DOT keywords still make a picture dot accepts.
printf 'new node\nnew graph\nnew Edge\nlink node graph\nlink graph Edge\n' >"$tmp/keywords.trace"
expect 0 "$cyclefuzz" explain "$tmp/keywords.trace" --svg "$tmp/keywords.svg"

# explain: bad input is exit 2 with a message, never a crash.
expect 2 "$cyclefuzz" explain "$tmp/missing.trace" --svg "$tmp/x.svg"
grep -q "missing.trace" <<<"$out" || fail "bad message: $out"
expect 2 "$cyclefuzz" explain "$two" --at 99 --svg "$tmp/x.svg"
grep -q -- "--at 99: .* has only 7 ops" <<<"$out" || fail "bad message: $out"
expect 2 "$cyclefuzz" explain "$two" --at 0 --svg "$tmp/x.svg"
expect 2 "$cyclefuzz" explain "$two" --at x --svg "$tmp/x.svg"
expect 2 "$cyclefuzz" explain "$two" --collector no-such --svg "$tmp/x.svg"
grep -q "unknown collector 'no-such'" <<<"$out" || fail "bad message: $out"
expect 2 "$cyclefuzz" explain "$two"
expect 2 "$cyclefuzz" explain "$two" --svg "$tmp/x.svg" --dot "$tmp/x.dot"
mkdir "$tmp/no-dot"
expect 2 env PATH="$tmp/no-dot" "$cyclefuzz" explain "$two" --svg "$tmp/x.svg"
grep -q "'dot' is not installed" <<<"$out" || fail "bad message: $out"
expect 2 "$cyclefuzz" explain "$two" --svg "$tmp/no-such-dir/x.svg"
grep -q "dot could not draw" <<<"$out" || fail "bad message: $out"
expect 2 "$cyclefuzz" explain "$two" --dot "$tmp/no-such-dir/x.dot"
grep -q "cannot write" <<<"$out" || fail "bad message: $out"
[[ ! -e "$tmp/x.svg" && ! -e "$tmp/x.dot" ]] || fail "explain wrote a picture on bad input"

# Progress is for terminals: off one, stderr stays empty.
"$cyclefuzz" replay "$src/corpus" >/dev/null 2>"$tmp/stderr"
[[ ! -s "$tmp/stderr" ]] || fail "replay wrote to stderr off a terminal: $(cat "$tmp/stderr")"

# Help works and exits 0.
expect 0 "$cyclefuzz" --help
expect 0 "$cyclefuzz" replay --help
expect 0 "$cyclefuzz" explain --help

# check --seconds alone runs until the time is up (not the 1,000 traces of --runs' default), and
# says the time as people write it.
expect 0 "$cyclefuzz" check --collector mark-sweep --seconds 3 --max-ops 1 -o "$tmp/check"
grep -q 'for 3 s$' <<<"$out" || fail "check --seconds: the budget reads oddly: $out"
traces=$(grep -o 'no violation in [0-9]* traces' <<<"$out" | grep -o '[0-9]*')
[[ ${traces:-0} -gt 1000 ]] || fail "check --seconds 3 stopped after ${traces:-?} traces: $out"
expect 0 "$cyclefuzz" check --collector mark-sweep --seconds 60 --runs 20 -o "$tmp/check"
grep -q 'no violation in 20 traces' <<<"$out" || fail "check --runs 20 --seconds 60: $out"

# check --known: a trace failing as a known trace does is counted and the run goes on, to a
# failure of another signature; --keep-going writes each new signature once; a bad known trace is
# bad input.
mutant=mutant:sweep-skips-last-object
expect 1 "$cyclefuzz" check --collector $mutant --runs 300 -o "$tmp/first"
first=$(sed -n 's/^  \(.* on mutant:.*\)$/\1/p' <<<"$out" | head -1)
[[ -n $first ]] || fail "check printed no signature: $out"
expect 1 "$cyclefuzz" check --collector $mutant --runs 300 --known "$tmp/first" -o "$tmp/past"
grep -qF "known, met in" <<<"$out" || fail "check --known counted nothing known: $out"
next=$(sed -n 's/^  \(.* on mutant:.*\)$/\1/p' <<<"$out" | head -1)
[[ -n $next && $next != "$first" ]] || fail "check --known stopped at the known '$first': $out"
expect 1 "$cyclefuzz" check --collector $mutant --runs 60 --keep-going -o "$tmp/all"
found=$(grep -c '^found ' <<<"$out")
written=$(ls "$tmp/all" | wc -l)
distinct=$(sed -n 's/^  \(.* on mutant:.*\)$/\1/p' <<<"$out" | sort -u | wc -l)
[[ $found -gt 1 && $written -eq $found && $distinct -eq $found ]] ||
  fail "check --keep-going: $found found, $written written, $distinct signatures: $out"
# minimize --known: a trace failing as a known one does is said, not minimized (exit 3).
expect 3 "$cyclefuzz" minimize "$(ls "$tmp"/first/*.trace)" --collector $mutant --known "$tmp/first"
grep -qF "known: $first" <<<"$out" || fail "minimize --known: $out"
expect 1 "$cyclefuzz" minimize "$(ls "$tmp"/past/*.trace)" --collector $mutant \
  --known "$tmp/first" -o "$tmp/min.trace"
grep -qF "# signature: $next" "$tmp/min.trace" || fail "minimize --known: $(cat "$tmp/min.trace")"
expect 2 "$cyclefuzz" check --collector $mutant --runs 3 --known "$tmp/bad.trace"
grep -qF "$tmp/bad.trace:2: unknown object 'b'" <<<"$out" || fail "check --known bad: $out"

[[ $failures -eq 0 ]] && echo "cli: all checks passed"
exit $((failures > 0))
