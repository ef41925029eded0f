#!/usr/bin/env bash
# The packaging test: makes the Debian packages with scripts/package (a
# Release build of its own, under BUILD_DIR/check_package/build), checks
# them, installs them into a throwaway root, builds the programs of
# tests/external against that root, runs them, and removes the packages
# again. The machine is not changed: dpkg works on a root and a database of
# its own, and the maintainer scripts' ldconfig is a stand-in that records
# its calls.
#
#   1. the packages: libtrail0, libtrail-dev, trail-tools, and one
#      libtrail-NAME0 + libtrail-NAME-dev pair per adapter built
#   2. contents (dpkg-deb -c): each file in exactly one package, together
#      exactly what `cmake --install` installs (plus each package's
#      copyright file); runtime packages hold only their libtrail*.so.N*;
#      each -dev package its headers, .pc files and CMake files
#   3. control (dpkg-deb -I): version, architecture, maintainer; each
#      runtime package depends on the Debian package of every library its
#      ELF files need (found with dpkg -S); the -dev packages on their
#      runtime package and on the -dev packages of what they link;
#      libtrail0's shlibs file; ldconfig in the runtime packages' postinst
#   4. dpkg --root: installs them all into the throwaway root, with the
#      machine's installed packages as its database (so that every
#      dependency is checked), ldconfig called on configure
#   5. against that root: app.c with pkg-config (trail, trail-static: no
#      libtrail in ldd) and CMake (trail::trail, trail::trail_static),
#      json.c (TRAIL_JSON, trail.pc alone), adapters.c with
#      trail::trail_civetweb + trail::trail_curl and with their .pc files;
#      trail-pretty from the root reads app's line
#   6. dpkg --root -r: every file is gone again
#
# Skipped (77) in sanitizer builds and Debug builds (the packages are their
# own Release build: one optimized build of the suite runs this) and where
# dpkg, dpkg-shlibdeps or file is missing.
#
# ctest: check_package BUILD_DIR SOURCE_DIR, with TRAIL_C_COMPILER,
# TRAIL_CMAKE, TRAIL_SANITIZE and TRAIL_BUILD_TYPE in the environment.
set -euo pipefail

build="$(cd "${1:?usage: check_package.sh BUILD_DIR [SOURCE_DIR]}" && pwd)"
src="$(cd "${2:-$(dirname "${BASH_SOURCE[0]}")/..}" && pwd)"
cc="${TRAIL_C_COMPILER:-cc}"
cmake="${TRAIL_CMAKE:-cmake}"
sanitize="${TRAIL_SANITIZE:-}"
build_type="${TRAIL_BUILD_TYPE:-}"
while read -r var; do unset "$var"; done < <(compgen -e | grep '^TRAIL_' || true)

me=check_package
work="$build/check_package"
ext="$src/tests/external"
# shellcheck source-path=SCRIPTDIR source=external/common.sh
source "$ext/common.sh"

if [[ -n "$sanitize" ]]; then
  echo "$me: skipped in a sanitizer build (the packages are a Release build of their own)"
  exit 77
fi
if [[ "$build_type" == Debug ]]; then
  echo "$me: skipped in a Debug build (the packages are a Release build of their own)"
  exit 77
fi
# dpkg-shlibdeps (dpkg-dev) and file are what CPackDeb needs besides dpkg;
# `scripts/package --deps-only` installs them.
for tool in dpkg dpkg-deb dpkg-shlibdeps file; do
  command -v "$tool" >/dev/null || { echo "$me: skipped: no $tool"; exit 77; }
done
for tool in pkg-config readelf ldd python3 "$cc" "$cmake"; do
  command -v "$tool" >/dev/null || { echo "$me: $tool not found"; exit 1; }
done
# scripts/package runs cmake and cpack from PATH: the ones of this build.
PATH="$(dirname "$cmake"):$PATH"

# The package build is kept between runs (incremental); the rest is not.
mkdir -p "$work"
find "$work" -mindepth 1 -maxdepth 1 ! -name build -exec rm -rf {} +
root="$work/root"
# Whatever happens, the throwaway root goes (it is only files).
trap 'rm -rf "$root"' EXIT
unset LD_LIBRARY_PATH PKG_CONFIG_PATH PKG_CONFIG_LIBDIR PKG_CONFIG_SYSROOT_DIR

version="$(sed -n 's/^#define TRAIL_VERSION_STRING "\(.*\)"$/\1/p' "$src/include/trail.h")"
major="${version%%.*}"
release=1
debver="$version-$release"
arch="$(dpkg --print-architecture)"

# ---------------------------------------------------------------------------
step "scripts/package --no-deps (Release, prefix /usr)"
listed="$(bash "$src/scripts/package" --no-deps --quiet --dir "$work/build" \
  -DCMAKE_C_COMPILER="$cc" -DTRAIL_PACKAGE_RELEASE=$release)" ||
  fail "scripts/package failed"
mapfile -t debs <<<"$listed"
[[ ${#debs[@]} -gt 0 ]] || fail "scripts/package printed no .deb"
pkgbuild="$work/build"
ma="$(sed -n 's/^CMAKE_INSTALL_LIBDIR:[A-Z]*=lib\/\(.*\)$/\1/p' "$pkgbuild/CMakeCache.txt")"
libdir="usr/lib${ma:+/$ma}"

adapters=()
for f in "$pkgbuild"/adapters/*/libtrail-*.so; do
  [[ -e "$f" ]] || continue
  name="$(basename "$f" .so)"
  adapters+=("${name#libtrail-}")
done
has_adapter() { [[ " ${adapters[*]} " == *" $1 "* ]]; }
expected=("libtrail$major" libtrail-dev trail-tools)
runtimes=("libtrail$major") # the packages of shared libraries
for a in "${adapters[@]}"; do
  expected+=("libtrail-$a$major" "libtrail-$a-dev")
  runtimes+=("libtrail-$a$major")
done

declare -A deb_of=()
for d in "${debs[@]}"; do
  [[ -f "$d" ]] || fail "scripts/package printed '$d', which is not a file"
  p="$(dpkg-deb -f "$d" Package)"
  [[ -z "${deb_of[$p]:-}" ]] || fail "two files for package $p"
  deb_of[$p]="$d"
  [[ "$(basename "$d")" == "${p}_${debver}_$arch.deb" ]] ||
    fail "$(basename "$d") is not named ${p}_${debver}_$arch.deb"
done
got="$(printf '%s\n' "${!deb_of[@]}" | LC_ALL=C sort)"
want="$(printf '%s\n' "${expected[@]}" | LC_ALL=C sort)"
[[ "$got" == "$want" ]] || { diff <(echo "$want") <(echo "$got") || true; fail "not the expected packages"; }
echo "${#debs[@]} packages, version $debver, $arch, adapters: ${adapters[*]:-none}"

# ---------------------------------------------------------------------------
step "contents: each file in exactly one package, together all that cmake --install installs"
: >"$work/all.txt"
for p in "${expected[@]}"; do
  # Files and links, without the leading "./" (directories are shared).
  dpkg-deb -c "${deb_of[$p]}" | awk '$1 !~ /^d/ { sub(/^\.\//, "", $6); print $6 }' |
    LC_ALL=C sort >"$work/$p.files"
  sed "s|^|$p |" "$work/$p.files" >>"$work/all.txt"
done
dups="$(awk '{print $2}' "$work/all.txt" | LC_ALL=C sort | uniq -d)"
[[ -z "$dups" ]] || { grep -F -f <(echo "$dups") "$work/all.txt"; fail "files in more than one package"; }
quiet env DESTDIR="$work/plain" "$cmake" --install "$pkgbuild"
(cd "$work/plain" && find . ! -type d | sed 's|^\./||' | LC_ALL=C sort) >"$work/plain.txt"
awk '{print $2}' "$work/all.txt" | grep -v '^usr/share/doc/[^/]*/copyright$' |
  LC_ALL=C sort >"$work/packaged.txt"
diff "$work/plain.txt" "$work/packaged.txt" >"$work/contents.diff" ||
  { cat "$work/contents.diff"; fail "packages and cmake --install differ (< install only, > packages only)"; }

# has_file PACKAGE PATH...: each PATH is in PACKAGE.
has_file() {
  local p="$1" f
  shift
  for f in "$@"; do
    grep -qxF "$f" "$work/$p.files" || fail "$p does not have $f"
  done
}
# only_files PACKAGE REGEX: every file of PACKAGE matches REGEX.
only_files() {
  local extra
  extra="$(grep -Ev "$2" "$work/$1.files" || true)"
  [[ -z "$extra" ]] || { echo "$extra"; fail "$1 has files it should not have"; }
}
for p in "${expected[@]}"; do
  has_file "$p" "usr/share/doc/$p/copyright"
  cmp -s "$src/LICENSE" <(dpkg-deb --fsys-tarfile "${deb_of[$p]}" |
    tar -xO "./usr/share/doc/$p/copyright") || fail "$p: copyright is not LICENSE"
done
runtime_files() { # LIBNAME: what libLIBNAME's runtime package may hold
  echo "^($libdir/lib$1\\.so\\.$major(\\.[0-9.]+)?|usr/share/doc/[^/]*/copyright)\$"
}
has_file "libtrail$major" "$libdir/libtrail.so.$major" "$libdir/libtrail.so.$version"
only_files "libtrail$major" "$(runtime_files trail)"
has_file libtrail-dev usr/include/trail.h usr/include/trail/http.h \
  "$libdir/libtrail.so" "$libdir/libtrail.a" \
  "$libdir/pkgconfig/trail.pc" "$libdir/pkgconfig/trail-static.pc" \
  "$libdir/cmake/trail/trailConfig.cmake" "$libdir/cmake/trail/trailConfigVersion.cmake" \
  "$libdir/cmake/trail/trailTargets.cmake"
only_files libtrail-dev '^(usr/include/|usr/lib/.*/(libtrail\.(so|a)|pkgconfig/trail(-static)?\.pc|cmake/trail/trail(Config|ConfigVersion|Targets)[-a-z]*\.cmake)$|usr/share/doc/)'
has_file trail-tools usr/bin/trail-pretty
grep -qE '^usr/share/man/man1/trail-pretty\.1(\.gz)?$' "$work/trail-tools.files" ||
  fail "trail-tools has no trail-pretty man page"
for a in "${adapters[@]}"; do
  has_file "libtrail-$a$major" "$libdir/libtrail-$a.so.$major"
  only_files "libtrail-$a$major" "$(runtime_files "trail-$a")"
  has_file "libtrail-$a-dev" "usr/include/trail/$a.h" \
    "$libdir/libtrail-$a.so" "$libdir/libtrail-$a.a" \
    "$libdir/pkgconfig/trail-$a.pc" "$libdir/pkgconfig/trail-$a-static.pc" \
    "$libdir/cmake/trail/trail_${a}Targets.cmake"
  # The adapter's header is not in libtrail-dev.
  if grep -qxF "usr/include/trail/$a.h" "$work/libtrail-dev.files"; then
    fail "libtrail-dev has trail/$a.h"
  fi
done
echo "contents: $(wc -l <"$work/all.txt") files, none twice, as cmake --install has them"

# ---------------------------------------------------------------------------
step "control: version, dependencies, shlibs, ldconfig"
# deps_of PACKAGE: its Depends, one alternative group a line, spaces trimmed.
deps_of() {
  dpkg-deb -f "${deb_of[$1]}" Depends | tr ',' '\n' | sed 's/^ *//; s/ *$//'
}
# has_dep PACKAGE DEP: DEP is one of its Depends, exactly ("libtrail0 (= 1)",
# "a | b") or by name with any version ("libc6").
has_dep() {
  local deps
  deps="$(deps_of "$1")"
  grep -qxF "$2" <<<"$deps" && return 0
  if [[ "$2" =~ ^[a-z0-9.+-]+$ ]]; then
    local name="${2//./\\.}"
    grep -qE "^${name//+/\\+} \\(" <<<"$deps" && return 0
  fi
  echo "Depends: $(dpkg-deb -f "${deb_of[$1]}" Depends)"
  fail "$1 does not depend on '$2'"
}
synopses=""
for p in "${expected[@]}"; do
  d="${deb_of[$p]}"
  [[ "$(dpkg-deb -f "$d" Version)" == "$debver" ]] || fail "$p: version is not $debver"
  [[ "$(dpkg-deb -f "$d" Architecture)" == "$arch" ]] || fail "$p: architecture is not $arch"
  [[ -n "$(dpkg-deb -f "$d" Maintainer)" ]] || fail "$p: no maintainer"
  desc="$(dpkg-deb -f "$d" Description)"
  synopses+="${desc%%$'\n'*}"$'\n'
done
[[ -z "$(sort <<<"$synopses" | uniq -d)" ]] || fail "two packages share a synopsis"

# Every library an ELF file of PACKAGE needs (but libtrail's own) comes from
# a Debian package that PACKAGE depends on.
check_shlib_deps() { # PACKAGE
  local p="$1" f lib path owner
  while read -r f; do
    [[ -f "$root/$f" && ! -L "$root/$f" ]] || continue
    [[ "$(file -L "$root/$f")" == *ELF* ]] || continue
    local needed loads
    needed="$(readelf -d "$root/$f" | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p')"
    loads="$(LD_LIBRARY_PATH="$root/$libdir" ldd "$root/$f")"
    for lib in $needed; do
      [[ "$lib" == libtrail* ]] && { has_dep "$p" "libtrail$major"; continue; }
      # "libfoo.so.1 => /path (0x...)", or "/path/ld-linux.so.2 (0x...)"
      path="$(sed -n -e "s|^[[:space:]]*$lib => \\(/[^ ]*\\) .*|\\1|p" \
        -e "s|^[[:space:]]*\\(/[^ ]*/$lib\\) .*|\\1|p" <<<"$loads")"
      [[ -n "$path" ]] || fail "$f: $lib not found by ldd"
      owner=""
      for candidate in "$path" "$(readlink -f "$path")" "${path#/usr}" "/usr$path"; do
        owner="$(dpkg -S "$candidate" 2>/dev/null)" || true
        owner="$(sed -n '1s/[:,].*//p' <<<"$owner")"
        [[ -n "$owner" ]] && break
      done
      [[ -n "$owner" ]] || fail "$f: no Debian package has $path ($lib)"
      has_dep "$p" "$owner"
    done
  done <"$work/$p.files"
}

has_dep libtrail-dev "libtrail$major (= $debver)"
has_dep libtrail-dev libjansson-dev
has_dep libtrail-dev uuid-dev
declare -A dev_deps=(
  [mhd]="libmicrohttpd-dev" [civetweb]="libcivetweb-dev" [evhttp]="libevent-dev"
  [fcgi]="libfcgi-dev" [curl]="libcurl4-gnutls-dev | libcurl4-openssl-dev"
  [journald]="libsystemd-dev" [ulfius]="libulfius-dev;libmicrohttpd-dev")
for a in "${adapters[@]}"; do
  has_dep "libtrail-$a$major" "libtrail$major (>= $version)"
  has_dep "libtrail-$a-dev" "libtrail-$a$major (= $debver)"
  has_dep "libtrail-$a-dev" "libtrail-dev (= $debver)"
  [[ -n "${dev_deps[$a]:-}" ]] || fail "no expected -dev dependency known for the adapter $a"
  IFS=';' read -ra want_deps <<<"${dev_deps[$a]}"
  for dep in "${want_deps[@]}"; do
    has_dep "libtrail-$a-dev" "$dep"
  done
done
for p in "${runtimes[@]}"; do
  shlibs="$(dpkg-deb -I "${deb_of[$p]}" shlibs 2>/dev/null)" || fail "$p has no shlibs file"
  lib="${p%"$major"}"
  [[ "$shlibs" == "$lib $major $p (>= $debver)" ]] || fail "$p: shlibs is '$shlibs'"
  postinst="$(dpkg-deb -I "${deb_of[$p]}" postinst 2>/dev/null)" || fail "$p has no postinst"
  grep -q '^[[:space:]]*ldconfig' <<<"$postinst" || fail "$p: its postinst does not run ldconfig"
done
echo "control: versions, synopses, shlibs, ldconfig and the -dev dependencies are right"

# ---------------------------------------------------------------------------
step "dpkg --root: install all of them into a throwaway root"
admin="$root/var/lib/dpkg"
mkdir -p "$admin/info" "$admin/updates" "$admin/triggers" "$work/shim"
# The database: the machine's installed packages, so that dpkg checks every
# dependency against what is really there (their files are not in the root).
python3 - /var/lib/dpkg/status "$admin/status" <<'EOF'
import sys
out = []
with open(sys.argv[1], encoding="utf-8") as f:
    for para in f.read().split("\n\n"):
        lines = [l for l in para.splitlines() if l]
        if "Status: install ok installed" not in lines:
            continue
        # No pending triggers: dpkg would try to run them here.
        out.append("\n".join(l for l in lines if not l.startswith("Triggers-")))
with open(sys.argv[2], "w", encoding="utf-8") as f:
    f.write("\n\n".join(out) + "\n\n")
EOF
# The maintainer scripts run outside the root (it has no shell); their
# ldconfig is this stand-in, which records that it was called.
cat >"$work/shim/ldconfig" <<EOF
#!/bin/sh
echo "ldconfig \$*" >>"$work/ldconfig.calls"
EOF
chmod +x "$work/shim/ldconfig"
dpkg_root() {
  local force=(--force-script-chrootless)
  [[ $(id -u) -eq 0 ]] || force+=(--force-not-root)
  PATH="$work/shim:$PATH" dpkg --root="$root" --log="$work/dpkg.log" "${force[@]}" "$@"
}
quiet dpkg_root -i "${debs[@]}"
for p in "${expected[@]}"; do
  status="$(dpkg-query --admindir="$admin" -W -f='${Status}' "$p")"
  [[ "$status" == "install ok installed" ]] || fail "$p is '$status' in the root"
done
calls="$(wc -l <"$work/ldconfig.calls" 2>/dev/null || echo 0)"
[[ "$calls" -ge 1 ]] || fail "installing the runtime packages did not run ldconfig"
while read -r f; do
  [[ -e "$root/$f" || -L "$root/$f" ]] || fail "not installed in the root: $f"
done < <(awk '{print $2}' "$work/all.txt" | grep -v '^usr/share/\(doc\|man\)/')
echo "installed into $root, ldconfig called $calls times"

for p in "${runtimes[@]}" trail-tools; do
  check_shlib_deps "$p"
done
echo "every library the packaged ELF files need is in their Depends"

# ---------------------------------------------------------------------------
step "against the root: pkg-config and CMake, shared and static"
rlib="$root/$libdir"
pcr() { PKG_CONFIG_SYSROOT_DIR="$root" PKG_CONFIG_PATH="$rlib/pkgconfig" pkg-config "$@"; }
[[ "$(pcr --modversion trail)" == "$version" ]] || fail "trail.pc in the root is not $version"
grep -qx 'prefix=/usr' "$rlib/pkgconfig/trail.pc" || fail "trail.pc's prefix is not /usr"
# Word splitting of pkg-config's output is intended below.
# shellcheck disable=SC2046
quiet "$cc" -o "$work/app-pc" "$ext/app.c" $(pcr --cflags --libs trail)
run_prog app-pc app "$work/app-pc" "LD_LIBRARY_PATH=$rlib"
# shellcheck disable=SC2046
quiet "$cc" -o "$work/json-pc" "$ext/json.c" $(pcr --cflags --libs trail)
run_prog json-pc json "$work/json-pc" "LD_LIBRARY_PATH=$rlib"
# shellcheck disable=SC2046
quiet "$cc" -o "$work/app-pc-static" "$ext/app.c" $(pcr --cflags --libs trail-static)
no_libtrail app-pc-static "$work/app-pc-static"
run_prog app-pc-static app "$work/app-pc-static"

quiet "$cmake" -S "$ext" -B "$work/cmake" -DCMAKE_PREFIX_PATH="$root/usr" \
  -DCMAKE_C_COMPILER="$cc" -DCMAKE_BUILD_TYPE=Release
grep -q "^trail_DIR:PATH=$rlib/cmake/trail\$" "$work/cmake/CMakeCache.txt" ||
  fail "find_package(trail) did not find the root's package"
quiet "$cmake" --build "$work/cmake"
run_prog app-cmake app "$work/cmake/app" "LD_LIBRARY_PATH=$rlib"
run_prog json-cmake json "$work/cmake/json" "LD_LIBRARY_PATH=$rlib"
no_libtrail app-cmake-static "$work/cmake/app_static"
run_prog app-cmake-static app "$work/cmake/app_static"

if has_adapter civetweb && has_adapter curl; then
  step "against the root: trail::trail_civetweb + trail::trail_curl, trail-civetweb + trail-curl"
  quiet "$cmake" -S "$ext/adapters" -B "$work/cmake-adapters" \
    -DCMAKE_PREFIX_PATH="$root/usr" -DCMAKE_C_COMPILER="$cc" -DCMAKE_BUILD_TYPE=Release
  quiet "$cmake" --build "$work/cmake-adapters" --target adapters
  run_prog adapters-cmake adapters "$work/cmake-adapters/adapters" "LD_LIBRARY_PATH=$rlib"
  # shellcheck disable=SC2046
  quiet "$cc" -o "$work/adapters-pc" "$ext/adapters/adapters.c" \
    $(pcr --cflags --libs trail-civetweb trail-curl)
  run_prog adapters-pc adapters "$work/adapters-pc" "LD_LIBRARY_PATH=$rlib"
fi

step "trail-pretty from the root reads app's line"
NO_COLOR=1 "$root/usr/bin/trail-pretty" <"$work/app-pc.out" >"$work/pretty.out" 2>&1 ||
  { cat "$work/pretty.out"; fail "trail-pretty failed"; }
grep -q 'hello' "$work/pretty.out" || { cat "$work/pretty.out"; fail "trail-pretty did not show the message"; }
cat "$work/pretty.out"

# ---------------------------------------------------------------------------
step "dpkg --root -r: remove them all again"
quiet dpkg_root -r "${expected[@]}"
left="$(cd "$root" && find . ! -type d ! -path './var/lib/dpkg/*' | sed 's|^\./||')"
[[ -z "$left" ]] || { echo "$left"; fail "files left in the root after dpkg -r"; }
rm -rf "$root"

echo "$me: passed (${#debs[@]} packages: contents, dependencies, install, build against" \
  "them, removal)"
