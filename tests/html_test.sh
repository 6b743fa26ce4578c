#!/usr/bin/env bash
# `cyclefuzz explain --html` in a real browser: headless Chromium loads the page and prints the
# document its script left, which must have a step per op up to the violation, open at the
# violation, mark it, and move to the step its address names.
# Usage: html_test.sh CYCLEFUZZ
set -euo pipefail
cyclefuzz=$1
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

chromium=$(command -v chromium || true)
[[ -n $chromium ]] || { echo "no chromium: tools/ensure-deps browser installs it" >&2; exit 1; }

# A ScanBlack that forgets to restore counts leaves o4's count wrong at the collection (op 6).
trace=$work/t.trace
printf 'new o0\nlink o0 o0\nnew o4\nunlink o0 o0\nlink o0 o4\ncollect\nunroot o4\n' > "$trace"
status=0
"$cyclefuzz" explain "$trace" --collector mutant:scan-forgets-restore --html "$work/page.html" || status=$?
[[ $status -eq 1 ]] || { echo "explain --html: exit $status, expected 1 (a violation drawn)"; exit 1; }
ops=$(grep -cv '^\s*\(#\|$\)' "$trace")

render() {  # render URL: the document after the page's script ran
  "$chromium" --headless --no-sandbox --disable-gpu --disable-quic --no-first-run \
    --disable-background-networking --disable-component-update --disable-sync \
    --user-data-dir="$work/profile" --virtual-time-budget=2000 --dump-dom "$1" 2> "$work/chromium.log"
}

fail() { echo "FAIL: $*"; exit 1; }
dom=$(render "file://$work/page.html")
steps=$(grep -o '<body[^>]*data-steps="[0-9]*"' <<< "$dom" | grep -o '[0-9]*"$' | tr -d '"')
current=$(grep -o '<body[^>]*data-current="[0-9]*"' <<< "$dom" | grep -o '[0-9]*"$' | tr -d '"')
frames=$(grep -o '<figure class="frame"' <<< "$dom" | wc -l)
violations=$(grep -o '<figure class="frame" data-op="[0-9]*" data-violation=' <<< "$dom" | wc -l)
[[ -n $current ]] || fail "the script did not run: no data-current on the body"
[[ $steps -ge 1 && $frames -eq $steps ]] || fail "data-steps=$steps, $frames frames"
[[ $violations -eq 1 ]] || fail "$violations frames marked as the violation, expected 1"
[[ $current -eq $steps ]] || fail "opened at step $current, not at the violation ($steps)"
grep -q "step $steps of $steps: after op $steps - mutant:scan-forgets-restore: wrong bookkeeping" <<< "$dom" ||
  fail "the status line does not name the violation"
grep -q '<li class="violation[^"]*">' <<< "$dom" || fail "the violation's op is not marked in the trace"
grep -q '<li class="[^"]*current' <<< "$dom" || fail "no op is marked current"
[[ $(grep -c '<svg' <<< "$dom") -eq $steps ]] || fail "not one picture per step"
[[ $steps -le $ops ]] || fail "$steps steps for $ops ops"

dom=$(render "file://$work/page.html#step=1")
grep -q '<body[^>]*data-current="1"' <<< "$dom" || fail "#step=1 did not show the first step"
grep -q "step 1 of $steps: after op 1" <<< "$dom" || fail "the status line does not follow the step"
echo "html: $steps steps, opened at the violation, #step=1 moves to the first"
