#!/usr/bin/env bash
# The install test: installs the build into a prefix of its own, then builds
# the programs of tests/external against that install only, and runs them,
# the ways README.md's install section gives:
#
#   1. cc app.c $(pkg-config --cflags --libs trail)             libtrail.so,
#      run with LD_LIBRARY_PATH, and again linked with -Wl,-rpath,LIBDIR
#      and run without it (ldd: libtrail.so.0 from LIBDIR)
#   2. cc json.c $(pkg-config --cflags --libs trail): TRAIL_JSON() with a
#      jansson value, jansson from trail.pc's Requires alone; features.c:
#      TRAIL_MSGF, TRAIL_STRF, TRAIL_ERRNO, TRAIL_DURATION_MS, process fields,
#      request-scoped buffering, a rotating file and reopening on a signal
#   3. cc app.c $(pkg-config --cflags --libs trail-static)      libtrail.a:
#      neither NEEDED nor ldd shows a libtrail
#   4. a CMake project: find_package(trail) with trail::trail (app and json)
#      and trail::trail_static
#   5. when civetweb's and libcurl's adapters are built: adapters.c, which
#      calls civetweb and libcurl itself, linked with trail::trail_civetweb
#      and trail::trail_curl only (tests/external/adapters), with
#      `pkg-config --libs trail-civetweb trail-curl`, and statically with
#      the -static targets and .pc files
#   6. the README's ldconfig advice: the libdir of a /usr/local install is
#      one that ldconfig reads (a note, not a failure, where it is not)
#
# Each program's output is checked by tests/external/check_lines.py. Also
# checks the soname, the installed files and trail.pc's version.
#
# ctest: check_install BUILD_DIR SOURCE_DIR, with TRAIL_C_COMPILER, TRAIL_CMAKE
# and TRAIL_SANITIZE (the build's sanitizers, applied to the programs too) in
# the environment.
set -euo pipefail

build="$(cd "${1:?usage: check_install.sh BUILD_DIR [SOURCE_DIR]}" && pwd)"
src="$(cd "${2:-$(dirname "${BASH_SOURCE[0]}")/..}" && pwd)"
cc="${TRAIL_C_COMPILER:-cc}"
cmake="${TRAIL_CMAKE:-cmake}"
sanitize="${TRAIL_SANITIZE:-}"
# Nothing of the caller's TRAIL_* environment may reach the programs run here.
while read -r var; do unset "$var"; done < <(compgen -e | grep '^TRAIL_' || true)

me=check_install
work="$build/check_install"
ext="$src/tests/external"
# shellcheck source-path=SCRIPTDIR source=external/common.sh
source "$ext/common.sh"

for tool in pkg-config readelf ldd python3 "$cc" "$cmake"; do
  command -v "$tool" >/dev/null || { echo "$me: $tool not found"; exit 1; }
done

rm -rf "$work"
mkdir -p "$work"
prefix="$work/prefix"
san_flags=()
if [[ -n "$sanitize" ]]; then
  san_flags=("-fsanitize=$sanitize" -fno-omit-frame-pointer)
fi
unset LD_LIBRARY_PATH

step "cmake --install into a fresh prefix"
quiet "$cmake" --install "$build" --prefix "$prefix"
pc="$(find "$prefix" -path '*/pkgconfig/trail.pc' | head -n 1)"
[[ -n "$pc" ]] || fail "no trail.pc under the prefix"
pcdir="$(dirname "$pc")"
libdir="$(dirname "$pcdir")"
cmakedir="$libdir/cmake/trail"
export PKG_CONFIG_PATH="$pcdir"
unset PKG_CONFIG_LIBDIR PKG_CONFIG_SYSROOT_DIR

version="$(pkg-config --modversion trail)"
major="${version%%.*}"
header_version="$(sed -n 's/^#define TRAIL_VERSION_STRING "\(.*\)"$/\1/p' "$prefix/include/trail.h")"
[[ "$version" == "$header_version" ]] ||
  fail "trail.pc says $version, the installed trail.h says $header_version"
for f in "$prefix/include/trail.h" "$libdir/libtrail.a" "$libdir/libtrail.so" \
  "$libdir/libtrail.so.$major" "$libdir/libtrail.so.$version" \
  "$pcdir/trail-static.pc" \
  "$cmakedir/trailConfig.cmake" "$cmakedir/trailConfigVersion.cmake" \
  "$cmakedir/trailTargets.cmake"; do
  [[ -e "$f" ]] || fail "not installed: ${f#"$prefix"/}"
done
# Each adapter built: its libraries, header, .pc files and CMake targets.
adapters=()
for f in "$build"/adapters/*/libtrail-*.so; do
  [[ -e "$f" ]] || continue
  name="$(basename "$f" .so)"
  name="${name#libtrail-}"
  adapters+=("$name")
  for g in "$libdir/libtrail-$name.so.$major" "$libdir/libtrail-$name.a" \
    "$prefix/include/trail/$name.h" "$pcdir/trail-$name.pc" \
    "$pcdir/trail-$name-static.pc" "$cmakedir/trail_${name}Targets.cmake"; do
    [[ -e "$g" ]] || fail "not installed: ${g#"$prefix"/}"
  done
done
soname="$(readelf -d "$libdir/libtrail.so" | sed -n 's/.*(SONAME).*\[\(.*\)\]/\1/p')"
[[ "$soname" == "libtrail.so.$major" ]] || fail "soname is '$soname', not libtrail.so.$major"
grep -q "^prefix=$prefix\$" "$pc" || fail "trail.pc does not point into the prefix"
grep -q '^Requires: jansson$' "$pc" || fail "trail.pc does not require jansson"
echo "installed trail $version, soname $soname, adapters: ${adapters[*]:-none}"
has_adapter() { [[ " ${adapters[*]} " == *" $1 "* ]]; }

step "pkg-config, shared: cc app.c \$(pkg-config --cflags --libs trail)"
# Word splitting of pkg-config's output is intended here and below.
# shellcheck disable=SC2046
quiet "$cc" "${san_flags[@]}" -o "$work/app-pc" "$ext/app.c" \
  $(pkg-config --cflags --libs trail)
# (Outputs are kept before grep -q reads them: with pipefail, a writer that
# grep -q's early exit kills with SIGPIPE would fail the pipeline.)
needed="$(readelf -d "$work/app-pc")"
grep -q "NEEDED.*\[libtrail\.so\.$major\]" <<<"$needed" ||
  fail "app-pc does not need libtrail.so.$major"
run_prog app-pc app "$work/app-pc" "LD_LIBRARY_PATH=$libdir"

step "pkg-config, shared, with -Wl,-rpath,$libdir: runs without LD_LIBRARY_PATH"
# shellcheck disable=SC2046
quiet "$cc" "${san_flags[@]}" -o "$work/app-rpath" "$ext/app.c" \
  $(pkg-config --cflags --libs trail) "-Wl,-rpath,$libdir"
loads="$(ldd "$work/app-rpath")"
grep -qF "libtrail.so.$major => $libdir/libtrail.so.$major " <<<"$loads" ||
  { echo "$loads"; fail "app-rpath does not load libtrail.so.$major from $libdir"; }
run_prog app-rpath app "$work/app-rpath" -u LD_LIBRARY_PATH

step "TRAIL_JSON: cc json.c \$(pkg-config --cflags --libs trail), jansson through trail.pc"
# shellcheck disable=SC2046
quiet "$cc" "${san_flags[@]}" -o "$work/json-pc" "$ext/json.c" \
  $(pkg-config --cflags --libs trail)
run_prog json-pc json "$work/json-pc" "LD_LIBRARY_PATH=$libdir"

step "what users asked for: cc features.c \$(pkg-config --cflags --libs trail)"
# shellcheck disable=SC2046
quiet "$cc" "${san_flags[@]}" -o "$work/features-pc" "$ext/features.c" \
  $(pkg-config --cflags --libs trail)
mkdir -p "$work/features-files"
run_prog features-pc features "$work/features-pc" "LD_LIBRARY_PATH=$libdir" \
  "TRAIL_TEST_FEATURES_DIR=$work/features-files"

step "pkg-config, static: cc app.c \$(pkg-config --cflags --libs trail-static)"
# shellcheck disable=SC2046
quiet "$cc" "${san_flags[@]}" -o "$work/app-pc-static" "$ext/app.c" \
  $(pkg-config --cflags --libs trail-static)
no_libtrail app-pc-static "$work/app-pc-static"
run_prog app-pc-static app "$work/app-pc-static"

step "CMake: find_package(trail) with trail::trail and trail::trail_static"
quiet "$cmake" -S "$ext" -B "$work/cmake" \
  -DCMAKE_PREFIX_PATH="$prefix" -DCMAKE_C_COMPILER="$cc" \
  -DCMAKE_C_FLAGS="${san_flags[*]}" -DCMAKE_BUILD_TYPE=Release
quiet "$cmake" --build "$work/cmake"
run_prog app-cmake app "$work/cmake/app" "LD_LIBRARY_PATH=$libdir"
run_prog json-cmake json "$work/cmake/json" "LD_LIBRARY_PATH=$libdir"
no_libtrail app-cmake-static "$work/cmake/app_static"
run_prog app-cmake-static app "$work/cmake/app_static"

adapters_checked=""
if has_adapter civetweb && has_adapter curl; then
  adapters_checked="; civetweb and curl adapters"
  step "CMake: trail::trail_civetweb and trail::trail_curl only, and their -static targets"
  quiet "$cmake" -S "$ext/adapters" -B "$work/cmake-adapters" \
    -DCMAKE_PREFIX_PATH="$prefix" -DCMAKE_C_COMPILER="$cc" \
    -DCMAKE_C_FLAGS="${san_flags[*]}" -DCMAKE_BUILD_TYPE=Release
  quiet "$cmake" --build "$work/cmake-adapters"
  run_prog adapters-cmake adapters "$work/cmake-adapters/adapters" \
    "LD_LIBRARY_PATH=$libdir"
  no_libtrail adapters-cmake-static "$work/cmake-adapters/adapters_static"
  run_prog adapters-cmake-static adapters "$work/cmake-adapters/adapters_static"

  step "pkg-config: trail-civetweb trail-curl, and trail-civetweb-static trail-curl-static"
  # shellcheck disable=SC2046
  quiet "$cc" "${san_flags[@]}" -o "$work/adapters-pc" "$ext/adapters/adapters.c" \
    $(pkg-config --cflags --libs trail-civetweb trail-curl)
  run_prog adapters-pc adapters "$work/adapters-pc" "LD_LIBRARY_PATH=$libdir"
  # shellcheck disable=SC2046
  quiet "$cc" "${san_flags[@]}" -o "$work/adapters-pc-static" \
    "$ext/adapters/adapters.c" \
    $(pkg-config --cflags --libs trail-civetweb-static trail-curl-static)
  no_libtrail adapters-pc-static "$work/adapters-pc-static"
  run_prog adapters-pc-static adapters "$work/adapters-pc-static"
else
  step "adapters: skipped (civetweb's or libcurl's adapter is not built)"
fi

step "ldconfig: does it read the libdir of an install to /usr/local?"
local_libdir="/usr/local/${libdir#"$prefix"/}"
ldconfig_dirs="$(ldconfig -v -N -X 2>/dev/null || true)"
if grep -q "^$local_libdir:" <<<"$ldconfig_dirs"; then
  echo "yes: $local_libdir is among ldconfig's directories"
else
  echo "note: $local_libdir is not among ldconfig's directories here;" \
    "after an install to /usr/local, add it to /etc/ld.so.conf.d/ before ldconfig"
fi

echo "$me: passed (pkg-config shared, rpath, TRAIL_JSON and static; find_package" \
  "shared, TRAIL_JSON and static$adapters_checked)"
