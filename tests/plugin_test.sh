#!/usr/bin/env bash
# The plug-in ABI as a user meets it: the C example passes replay and check through --plugin;
# every kind of bad plug-in gets a clear message; a crashing plug-in is reported with the trace
# that crashed it, not by taking the report down.
# Usage: plugin_test.sh CYCLEFUZZ SOURCE_DIR EXAMPLE_PLUGIN BAD_PLUGIN_DIR
set -uo pipefail
cyclefuzz=$1 src=$2 example=$3 bad=$4
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
failures=0
fail() { echo "FAIL: $*"; failures=$((failures + 1)); }
expect() {  # expect STATUS PATTERN COMMAND...: exit status and a line of output
  local want=$1 pattern=$2; shift 2
  out=$("$@" 2>&1); local got=$?
  [[ $got -eq $want ]] || fail "'$*' exited $got, expected $want: $out"
  grep -qF -- "$pattern" <<<"$out" || fail "'$*' did not say '$pattern': $out"
}

# The example, through every front end that takes --plugin.
expect 0 "plugin:rc-with-backup-trace" "$cyclefuzz" replay "$src/corpus" --plugin "$example"
expect 0 "no violation" "$cyclefuzz" check --plugin "$example" --runs 300 --seed 3 -o "$tmp"
expect 0 '"name": "plugin:rc-with-backup-trace"' "$cyclefuzz" replay --json \
  "$src/corpus/scenarios/two-cycle.trace" --plugin "$example" --collector mark-sweep
"$cyclefuzz" gen --ops 300 --seed 4 >"$tmp/long.trace"
expect 2 "every selected collector passes" "$cyclefuzz" minimize "$tmp/long.trace" --plugin "$example"

# Bad plug-ins: each a clear message and exit 2.
expect 2 "missing.so: no such file" "$cyclefuzz" replay "$src/corpus" --plugin "$tmp/missing.so"
echo "not a library" >"$tmp/text.so"
expect 2 "not a loadable shared library" "$cyclefuzz" replay "$src/corpus" --plugin "$tmp/text.so"
expect 2 "exports no cyclefuzz_plugin()" "$cyclefuzz" replay "$src/corpus" --plugin "$bad/bad_no_entry_point.so"
expect 2 "plug-in ABI version 999, but cyclefuzz speaks 1 to 3" "$cyclefuzz" replay "$src/corpus" --plugin "$bad/bad_abi.so"
expect 2 "its 'link' function is NULL" "$cyclefuzz" replay "$src/corpus" --plugin "$bad/bad_null_link.so"
expect 2 "create() returned NULL" "$cyclefuzz" check --plugin "$bad/bad_null_create.so"
expect 2 "collect_count is 7 (0 to 2)" "$cyclefuzz" replay "$src/corpus" --plugin "$bad/bad_collect_count.so"
expect 2 "it has a 'freeze' function but no 'unfreeze'" "$cyclefuzz" replay "$src/corpus" \
  --plugin "$bad/bad_freeze_only.so"
expect 2 "it has a 'weak_ref' function but no 'deref'" "$cyclefuzz" replay "$src/corpus" \
  --plugin "$bad/bad_weak_ref_only.so"
expect 2 "it has a 'weak_held_by' function but no 'weak_ref'" "$cyclefuzz" replay "$src/corpus" \
  --plugin "$bad/bad_held_without_weak.so"
expect 2 "it has a 'set_entry' function but no 'remove_entry'" "$cyclefuzz" replay "$src/corpus" \
  --plugin "$bad/bad_set_entry_only.so"

# One object of a garbage cycle reported freed while the other, not yet, still refers to it: a
# premature free, unless the plug-in says its frees are finalizations.
printf 'new a\nnew b\nlink a b\nlink b a\nunroot a\nunroot b\nnew c\n' >"$tmp/two-cycle.trace"
expect 1 "premature free" "$cyclefuzz" replay "$tmp/two-cycle.trace" \
  --plugin "$bad/bad_frees_one_of_a_cycle.so"
expect 0 "pass" "$cyclefuzz" replay "$tmp/two-cycle.trace" \
  --plugin "$bad/bad_finalizes_one_of_a_cycle.so"

# The example declares finalizers and weak references (version 2): its finalizer resurrects the
# cycle, which survives the collection, keeps its weak reference, and goes after `release`.
cat >"$tmp/resurrect.trace" <<'TRACE'
new a
link a a
weak wa a
finalizer a resurrect
unroot a
collect
deref wa
release
collect
deref wa
TRACE
expect 0 "pass" "$cyclefuzz" replay "$tmp/resurrect.trace" --plugin "$example" --collector mark-sweep \
  --json
python3 - "$out" <<'PY' || fail "the example's finalizer did not resurrect its object: $out"
import json, sys
report = json.loads(sys.argv[1])["traces"][0]
frees = next(c for c in report["collectors"] if c["name"] == "plugin:rc-with-backup-trace")["frees"]
assert frees[5] == [] and frees[8] == ["a"], frees
PY

# A plug-in built against version 1 of the header still loads (it frees nothing: fine until a
# collection, then a leak).
printf 'new a\nlink a a\nunroot a\n' >"$tmp/cycle.trace"
expect 0 "plugin:bad" "$cyclefuzz" replay "$tmp/cycle.trace" --plugin "$bad/bad_v1.so"
echo collect >>"$tmp/cycle.trace"
expect 1 "leak" "$cyclefuzz" replay "$tmp/cycle.trace" --plugin "$bad/bad_v1.so"

# The example declares freeze (version 2): the frozen cycle survives the first collection and
# goes with the one after unfreeze - and cyclefuzz checked it, since the plug-in said it freezes.
expect 0 "pass" "$cyclefuzz" replay "$src/corpus/scenarios/freeze-keeps-garbage.trace" \
  --plugin "$example" --collector mark-sweep --json
python3 - "$out" <<'PY' || fail "the example's freeze did not keep the frozen cycle: $out"
import json, sys
report = json.loads(sys.argv[1])["traces"][0]
frees = next(c for c in report["collectors"] if c["name"] == "plugin:rc-with-backup-trace")["frees"]
first = next(i for i, names in enumerate(frees) if "d" in names)  # the first collect
assert "a" not in frees[first] and any("a" in names for names in frees[first + 1:]), frees
PY

# A free the plug-in had no business reporting: a violation, exit 1.
expect 1 "double free" "$cyclefuzz" replay "$src/corpus/scenarios/two-cycle.trace" --plugin "$bad/bad_frees_unknown.so"

# A crash: reported with the op and the trace up to it; the built-ins' report still comes out.
expect 1 "plugin:bad: crash" "$cyclefuzz" replay "$src/corpus/scenarios/two-cycle.trace" \
  --plugin "$bad/bad_crashes.so" --collector mark-sweep
grep -q "during op 3 (line 4: link a b)" <<<"$out" || fail "crash not pinned to its op: $out"
grep -q "^mark-sweep .* pass$" <<<"$out" || fail "the built-in's verdict was lost: $out"
expect 1 "crash" "$cyclefuzz" check --plugin "$bad/bad_crashes.so" --runs 50 -o "$tmp"
# The commands check prints for a plug-in's finding run as printed: they choose it by its file.
for what in "replay:" "draw it:"; do
  command=$(grep "^$what" <<<"$out" | sed "s/^$what *cyclefuzz //")
  [[ $command == *"--plugin $bad/bad_crashes.so"* ]] || fail "check printed '$what $command'"
  (cd "$tmp" && eval "\"\$cyclefuzz\" $command" >/dev/null 2>&1)
  [[ $? -eq 1 ]] || fail "'$what' as check printed it did not reproduce the crash: $command"
done

[[ $failures -eq 0 ]] && echo "plugins: all checks passed"
exit $((failures > 0))
