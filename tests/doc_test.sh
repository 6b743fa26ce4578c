#!/usr/bin/env bash
# The doc test: the command blocks of README.md and docs/*.md run against the build, so that the
# documentation cannot drift from the tool.
# Usage: doc_test.sh CYCLEFUZZ SOURCE_DIR [EXAMPLE_PLUGIN]
#
# Markers: an HTML comment on the line just before a fence (invisible when the page is rendered).
#   <!-- run -->                 run this ```sh block; every command must exit 0
#   <!-- run exit=1 -->          ... its last command must exit 1 (the others 0)
#   <!-- run needs=cc -->        ... only if this exists: cc (a C compiler, $CC), dot (Graphviz),
#                                plugin (EXAMPLE_PLUGIN was given); otherwise it is skipped
#   <!-- not run: REASON -->     a ```sh block that is shown, not run (make, runtimes, long runs)
#   <!-- file NAME -->           write this block to NAME (blocks of one NAME are appended)
# Every ```sh block that names cyclefuzz must carry `run` or `not run`, so that a new command is
# a decision.
#
# Each page runs in a directory of its own, blocks in page order (files and outputs carry from one
# block to the next), laid out as the root of the checkout: corpus/, the plug-in header and the
# C example are copied there, build/cyclefuzz is the binary under test (as is `cyclefuzz` on the
# PATH), and build/examples/plugin-c/rc_with_backup_trace.so is EXAMPLE_PLUGIN. A command is a
# line, with its `\` continuations; each runs in its own bash, with pipefail.
set -uo pipefail
shopt -s nullglob
cyclefuzz=$(realpath "$1")
src=$(realpath "$2")
plugin=${3:+$(realpath "$3")}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

mkdir -p "$work/bin"
ln -s "$cyclefuzz" "$work/bin/cyclefuzz"
# `cc` in a block is the build's C compiler when CMake says which (resolved before the PATH
# changes, so that the wrapper never finds itself).
if [[ -n ${CC:-} ]] && compiler=$(command -v "$CC"); then
  printf '#!/bin/sh\nexec %q "$@"\n' "$compiler" > "$work/bin/cc"
  chmod +x "$work/bin/cc"
fi
export PATH="$work/bin:$PATH"

have() {
  case $1 in
    cc) command -v cc >/dev/null ;;
    dot) command -v dot >/dev/null ;;
    plugin) [[ -n $plugin ]] ;;
    *) return 1 ;;
  esac
}

# A fresh directory laid out as the root of the checkout.
page_root() {
  local dir=$1
  mkdir -p "$dir/build/examples/plugin-c" "$dir/collectors/plugin" "$dir/examples/plugin-c"
  cp -r "$src/corpus" "$dir/corpus"
  cp "$src/collectors/plugin/cyclefuzz_plugin.h" "$dir/collectors/plugin/"
  cp "$src/examples/plugin-c/"*.c "$dir/examples/plugin-c/"
  ln -s "$cyclefuzz" "$dir/build/cyclefuzz"
  [[ -n $plugin ]] && ln -s "$plugin" "$dir/build/examples/plugin-c/rc_with_backup_trace.so"
  return 0
}

# Splits a page into its marked blocks: one file per block, named by its order, whose first line
# is "LINE MARKER..." and whose rest is the block. An unmarked ```sh block that names cyclefuzz
# fails the page.
split_page() {
  awk -v out="$2" -v page="$3" '
    function flush() { close(file) }
    /^<!-- .* -->$/ && !in_block { marker = substr($0, 6, length($0) - 9); marker_line = NR; next }
    /^```/ && !in_block {
      in_block = 1; lang = substr($0, 4)
      if (marker_line == NR - 1 && marker != "") {
        n++; file = sprintf("%s/%03d", out, n); keep = 1
        print NR + 1, marker > file
      } else {
        keep = 0; fence_line = NR; names_tool = 0
      }
      marker = ""; next
    }
    /^```/ && in_block {
      in_block = 0
      if (keep) flush()
      if (!keep && lang == "sh" && names_tool) {
        printf "FAIL %s:%d: a ```sh block that names cyclefuzz without <!-- run --> or <!-- not run: ... -->\n", page, fence_line
        unmarked++
      }
      next
    }
    in_block && keep { print > file }
    in_block && /cyclefuzz/ { names_tool = 1 }
    END { exit unmarked > 0 }
  ' "$1"
}

failures=0 ran=0 skipped=0
start=$SECONDS
for page in "$src/README.md" "$src"/docs/*.md; do
  name=${page#"$src/"}
  dir="$work/pages/$name.d"
  blocks="$work/blocks/$name.d"
  mkdir -p "$dir" "$blocks"
  page_root "$dir"
  split_page "$page" "$blocks" "$name" || failures=$((failures + 1))
  for block in "$blocks"/*; do
    [[ -e $block ]] || continue
    read -r line kind rest < "$block"
    body=$(tail -n +2 "$block")
    case $kind in
      file)
        printf '%s\n' "$body" >> "$dir/$rest"
        continue ;;
      not) continue ;;
      run) ;;
      *)
        echo "FAIL $name:$line: unknown marker '$kind $rest'"
        failures=$((failures + 1)); continue ;;
    esac
    want=0 missing=""
    for word in $rest; do
      case $word in
        exit=*) want=${word#exit=} ;;
        needs=*) have "${word#needs=}" || missing=${word#needs=} ;;
        *) echo "FAIL $name:$line: unknown word '$word' in the marker"; failures=$((failures + 1)) ;;
      esac
    done
    if [[ -n $missing ]]; then
      echo "skip $name:$line (needs $missing)"
      skipped=$((skipped + 1)); continue
    fi
    # Commands: lines joined at trailing backslashes; comment-only and blank lines dropped.
    mapfile -t commands < <(printf '%s\n' "$body" |
      awk '/\\$/ { acc = acc substr($0, 1, length($0) - 1) " "; next }
           { acc = acc $0; if (acc !~ /^[ \t]*(#|$)/) print acc; acc = "" }')
    block_start=$SECONDS
    last=$((${#commands[@]} - 1))
    ok=1
    for i in "${!commands[@]}"; do
      expected=0
      [[ $i -eq $last ]] && expected=$want
      output=$(cd "$dir" && timeout 60 bash -o pipefail -c "${commands[$i]}" 2>&1)
      status=$?
      if [[ $status -ne $expected ]]; then
        echo "FAIL $name:$line: exit $status, expected $expected: ${commands[$i]}"
        printf '%s\n' "$output" | tail -20 | sed 's/^/    /'
        ok=0; break
      fi
    done
    ran=$((ran + 1))
    if [[ $ok -eq 1 ]]; then
      echo "ok   $name:$line (${#commands[@]} commands, exit $want, $((SECONDS - block_start)) s)"
    else
      failures=$((failures + 1))
    fi
  done
done

echo "doc test: $ran blocks run, $skipped skipped, $failures failures, $((SECONDS - start)) s"
exit $((failures > 0))
