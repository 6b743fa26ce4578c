#!/usr/bin/env bash
# cmake --install, as a plug-in author meets it: the tool, the header, and a build of the example
# plug-in outside this tree that finds them - through find_package(cyclefuzz) and through
# pkg-config - and is then tested by the installed tool.
# Usage: install_test.sh BUILD_DIR SOURCE_DIR
set -euo pipefail
build=$1
src=$2
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
fail() { echo "FAIL: $*"; exit 1; }

prefix=$work/prefix
cmake --install "$build" --prefix "$prefix" > "$work/install.log"
for f in bin/cyclefuzz include/cyclefuzz/cyclefuzz_plugin.h lib/cmake/cyclefuzz/cyclefuzzConfig.cmake \
         lib/cmake/cyclefuzz/cyclefuzzConfigVersion.cmake share/pkgconfig/cyclefuzz-plugin.pc; do
  [[ -e $prefix/$f ]] || fail "cmake --install left out $f"
done

# The example plug-in as an author's own project: it includes the installed header.
mkdir -p "$work/author"
sed 's|#include "collectors/plugin/cyclefuzz_plugin.h"|#include <cyclefuzz/cyclefuzz_plugin.h>|' \
  "$src/examples/plugin-c/rc_with_backup_trace.c" > "$work/author/my_collector.c"
grep -q '<cyclefuzz/cyclefuzz_plugin.h>' "$work/author/my_collector.c" || fail "the example's include moved"
cat > "$work/author/CMakeLists.txt" <<'CMAKE'
cmake_minimum_required(VERSION 3.22)
project(my_collector C)
find_package(cyclefuzz 0.1 REQUIRED)
add_library(my_collector MODULE my_collector.c)
target_link_libraries(my_collector PRIVATE cyclefuzz::plugin)
set_target_properties(my_collector PROPERTIES PREFIX "" C_STANDARD 11)
add_custom_target(check_plugin COMMAND ${CYCLEFUZZ_EXECUTABLE} check --runs 50
                  --plugin $<TARGET_FILE:my_collector>)
CMAKE
cmake -S "$work/author" -B "$work/author/build" -DCMAKE_PREFIX_PATH="$prefix" > "$work/author.log" ||
  { cat "$work/author.log"; fail "find_package(cyclefuzz) failed"; }
cmake --build "$work/author/build" --target check_plugin > "$work/check.log" 2>&1 ||
  { tail -20 "$work/check.log"; fail "the author's build or its check failed"; }
grep -q 'no violation in 50 traces' "$work/check.log" || fail "no check output: $(tail -5 "$work/check.log")"

# The same through pkg-config.
flags=$(PKG_CONFIG_PATH=$prefix/share/pkgconfig pkg-config --cflags cyclefuzz-plugin) ||
  fail "pkg-config does not find cyclefuzz-plugin"
cc $flags -std=c11 -shared -fPIC -o "$work/by-pkg-config.so" "$work/author/my_collector.c" ||
  fail "cc with pkg-config's flags ($flags) failed"
"$prefix/bin/cyclefuzz" replay "$src/corpus/scenarios" --plugin "$work/by-pkg-config.so" > "$work/replay.log" ||
  fail "the installed tool does not pass the example: $(tail -5 "$work/replay.log")"
echo "install: tool, header, find_package(cyclefuzz) and pkg-config all serve a plug-in's build"
