#!/usr/bin/env bash
# The install test: installs the build into a prefix of its own, then builds
# tests/external/app.c against that install only, three ways, and runs it:
#
#   1. cc app.c $(pkg-config --cflags --libs trail)           libtrail.so
#   2. the same with pkg-config --static, against libtrail.a   no libtrail.so
#   3. a CMake project: find_package(trail) + trail::trail and trail::trail_static
#
# Each run must print exactly one JSON line with the keys of the contract in
# order. Also checks the soname, the installed files and trail.pc's version.
#
# ctest: check_install BUILD_DIR SOURCE_DIR, with TRAIL_C_COMPILER, TRAIL_CMAKE
# and TRAIL_SANITIZE (the build's sanitizers, applied to the app too) in the
# environment.
set -euo pipefail

build="$(cd "${1:?usage: check_install.sh BUILD_DIR [SOURCE_DIR]}" && pwd)"
src="$(cd "${2:-$(dirname "${BASH_SOURCE[0]}")/..}" && pwd)"
cc="${TRAIL_C_COMPILER:-cc}"
cmake="${TRAIL_CMAKE:-cmake}"
sanitize="${TRAIL_SANITIZE:-}"
# Nothing of the caller's TRAIL_* environment may reach the programs run here.
while read -r var; do unset "$var"; done < <(compgen -e | grep '^TRAIL_' || true)

for tool in pkg-config readelf "$cc" "$cmake"; do
  command -v "$tool" >/dev/null || { echo "check_install: $tool not found"; exit 1; }
done
if command -v jq >/dev/null; then
  json_tool=jq
elif command -v python3 >/dev/null; then
  json_tool=python3
else
  echo "check_install: neither jq nor python3 found to read the JSON line"
  exit 1
fi

work="$build/check_install"
rm -rf "$work"
mkdir -p "$work"
prefix="$work/prefix"
app="$src/tests/external/app.c"
san_flags=()
if [[ -n "$sanitize" ]]; then
  san_flags=("-fsanitize=$sanitize" -fno-omit-frame-pointer)
fi

step() { echo "--- $*"; }
fail() { echo "check_install: FAILED: $*"; exit 1; }
# Runs a command quietly; its output is shown only when it fails.
quiet() {
  local log="$work/last.log"
  if ! "$@" >"$log" 2>&1; then
    cat "$log"
    fail "$*"
  fi
}

# The line app.c writes: one JSON object, the contract's keys in order.
check_line() { # label file
  local label="$1" out="$2" lines
  lines="$(wc -l <"$out")"
  [[ "$lines" -eq 1 ]] || { cat "$out"; fail "$label printed $lines lines, not 1"; }
  echo "$label: $(cat "$out")"
  local ok=0
  if [[ "$json_tool" == jq ]]; then
    jq -e '
      (keys_unsorted == ["timestamp", "level", "logger", "message", "service",
                         "k", "n"])
      and (.timestamp | test("^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}[.][0-9]{6}Z$"))
      and .level == "info" and (.logger | type) == "string"
      and .message == "hello" and .service == "external-app"
      and .k == "v" and .n == 42' "$out" >/dev/null || ok=1
  else
    python3 - "$out" <<'EOF' || ok=1
import json, re, sys
with open(sys.argv[1], encoding="utf-8") as f:
    o = json.loads(f.read())
assert list(o) == ["timestamp", "level", "logger", "message", "service", "k", "n"], list(o)
assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z", o["timestamp"]), o
assert o["level"] == "info" and isinstance(o["logger"], str), o
assert o["message"] == "hello" and o["service"] == "external-app", o
assert o["k"] == "v" and o["n"] == 42 and type(o["n"]) is int, o
EOF
  fi
  [[ $ok -eq 0 ]] || fail "$label: the line is not the expected JSON object"
}

# Runs a built program; stdout to a file, stderr shown if it fails.
run_app() { # label program [env...]
  local label="$1" prog="$2"
  shift 2
  local status=0
  env "$@" "$prog" >"$work/$label.out" 2>"$work/$label.err" || status=$?
  if [[ $status -ne 0 ]]; then
    cat "$work/$label.out" "$work/$label.err"
    fail "$label exited with status $status"
  fi
  check_line "$label" "$work/$label.out"
}

step "cmake --install into a fresh prefix"
quiet "$cmake" --install "$build" --prefix "$prefix"
pc="$(find "$prefix" -path '*/pkgconfig/trail.pc' | head -n 1)"
[[ -n "$pc" ]] || fail "no trail.pc under the prefix"
pcdir="$(dirname "$pc")"
libdir="$(dirname "$pcdir")"
export PKG_CONFIG_PATH="$pcdir"
unset PKG_CONFIG_LIBDIR PKG_CONFIG_SYSROOT_DIR

version="$(pkg-config --modversion trail)"
major="${version%%.*}"
header_version="$(sed -n 's/^#define TRAIL_VERSION_STRING "\(.*\)"$/\1/p' "$prefix/include/trail.h")"
[[ "$version" == "$header_version" ]] ||
  fail "trail.pc says $version, the installed trail.h says $header_version"
for f in "$prefix/include/trail.h" "$libdir/libtrail.a" "$libdir/libtrail.so" \
  "$libdir/libtrail.so.$major" "$libdir/libtrail.so.$version" \
  "$libdir/cmake/trail/trailConfig.cmake" \
  "$libdir/cmake/trail/trailConfigVersion.cmake" \
  "$libdir/cmake/trail/trailTargets.cmake"; do
  [[ -e "$f" ]] || fail "not installed: ${f#"$prefix"/}"
done
soname="$(readelf -d "$libdir/libtrail.so" | sed -n 's/.*(SONAME).*\[\(.*\)\]/\1/p')"
[[ "$soname" == "libtrail.so.$major" ]] || fail "soname is '$soname', not libtrail.so.$major"
grep -q "^prefix=$prefix\$" "$pc" || fail "trail.pc does not point into the prefix"
echo "installed trail $version, soname $soname"

step "pkg-config, shared: cc app.c \$(pkg-config --cflags --libs trail)"
# Word splitting of pkg-config's output is intended here and below.
# shellcheck disable=SC2046
quiet "$cc" "${san_flags[@]}" -o "$work/app-pc" "$app" \
  $(pkg-config --cflags --libs trail)
readelf -d "$work/app-pc" | grep -q "NEEDED.*\[libtrail\.so\.$major\]" ||
  fail "app-pc does not need libtrail.so.$major"
run_app app-pc "$work/app-pc" "LD_LIBRARY_PATH=$libdir"

step "pkg-config, static: pkg-config --static --libs trail, against libtrail.a"
# -l:libtrail.a takes the archive even where libtrail.so sits beside it.
# shellcheck disable=SC2046
quiet "$cc" "${san_flags[@]}" -o "$work/app-pc-static" "$app" \
  $(pkg-config --cflags trail) \
  $(pkg-config --static --libs trail | sed 's/-ltrail\b/-l:libtrail.a/')
if readelf -d "$work/app-pc-static" | grep -q 'NEEDED.*libtrail'; then
  fail "app-pc-static still needs libtrail.so"
fi
run_app app-pc-static "$work/app-pc-static"

step "CMake: find_package(trail) with trail::trail and trail::trail_static"
quiet "$cmake" -S "$src/tests/external" -B "$work/cmake" \
  -DCMAKE_PREFIX_PATH="$prefix" -DCMAKE_C_COMPILER="$cc" \
  -DCMAKE_C_FLAGS="${san_flags[*]}" -DCMAKE_BUILD_TYPE=Release
quiet "$cmake" --build "$work/cmake"
run_app app-cmake "$work/cmake/app" "LD_LIBRARY_PATH=$libdir"
if readelf -d "$work/cmake/app_static" | grep -q 'NEEDED.*libtrail'; then
  fail "app_static (trail::trail_static) still needs libtrail.so"
fi
run_app app-cmake-static "$work/cmake/app_static"

echo "check_install: passed (pkg-config shared and static, find_package shared and static)"
