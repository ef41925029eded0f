#!/usr/bin/env bash
# The ABI check (after jansson's check-exports). Four lists must be the same:
#
#   1. the symbols libtrail.so really exports (nm -D, kinds T D B R),
#   2. tests/exports.txt, checked in, sorted,
#   3. the global names of lib/trail.map, the linker's version script,
#   4. the names declared TRAIL_API in the public headers.
#
# Adding a public function therefore means: declare it TRAIL_API, then run
# `bash tests/check_exports.sh --update` to rewrite exports.txt and trail.map,
# and commit both. Anything exported by mistake (a trail__ helper that lost
# its hiding, a global without `static`) shows up here as a diff.
#
# ctest: check_exports BUILD_DIR SOURCE_DIR, with TRAIL_SHARED_LIB and
# TRAIL_EXPORT_HEADERS (':'-separated) in the environment.
set -euo pipefail

# The TRAIL_API names of the given headers, sorted: comments and preprocessor
# lines removed; a function's name is the identifier before its first '(',
# a variable's the last identifier of its declaration.
header_names() {
  perl -0777 -ne '
    s{/\*.*?\*/}{ }gs;
    s{//[^\n]*}{}g;
    s{^[ \t]*#(?:[^\n]*\\\n)*[^\n]*}{}gm;
    while (/\bTRAIL_API\b([^;{]*)/g) {
      my $d = $1;
      if ($d =~ /([A-Za-z_]\w*)\s*\(/) { print "$1\n"; next; }
      $d =~ s/\[[^\]]*\]//g;
      $d =~ s/=.*//s;
      print "$1\n" if $d =~ /([A-Za-z_]\w*)\s*$/;
    }' "$@" | LC_ALL=C sort -u
}

# The names between "global:" and "local:" of a version script.
map_names() {
  perl -0777 -ne '
    s{/\*.*?\*/}{ }gs;
    s{#[^\n]*}{}g;
    while (/global:(.*?)local:/gs) {
      for my $n (split /;/, $1) { $n =~ s/\s+//g; print "$n\n" if length $n; }
    }' "$1" | LC_ALL=C sort -u
}

write_map() {
  cat <<'EOF'
/*
 * The symbols libtrail.so exports, and nothing else (local: *). Generated
 * from the TRAIL_API declarations by `bash tests/check_exports.sh --update`;
 * tests/exports.txt holds the same list and the check_exports test compares
 * both with the built library.
 *
 * TRAIL_0 is the version node of the 0.x series. Once 1.0 is out, names
 * added in a minor release go into a new node (TRAIL_1.1 { ... } TRAIL_1;)
 * and no name ever leaves an existing one.
 */
TRAIL_0 {
  global:
EOF
  sed 's/^/    /; s/$/;/'
  cat <<'EOF'
  local:
    *;
};
EOF
}

src_default="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

if [[ "${1:-}" == "--update" ]]; then
  src="${2:-$src_default}"
  headers=("$src/include/trail.h")
  [[ -f "$src/include/trail/http.h" ]] && headers+=("$src/include/trail/http.h")
  header_names "${headers[@]}" >"$src/tests/exports.txt"
  write_map <"$src/tests/exports.txt" >"$src/lib/trail.map"
  echo "wrote tests/exports.txt and lib/trail.map ($(wc -l <"$src/tests/exports.txt") names)"
  exit 0
fi

build="${1:?usage: check_exports.sh BUILD_DIR [SOURCE_DIR] | --update [SOURCE_DIR]}"
src="${2:-$src_default}"
lib="${TRAIL_SHARED_LIB:-$build/libtrail.so}"
IFS=: read -r -a headers <<<"${TRAIL_EXPORT_HEADERS:-$src/include/trail.h}"

for tool in nm perl diff; do
  command -v "$tool" >/dev/null || { echo "check_exports: $tool not found"; exit 1; }
done
[[ -f "$lib" ]] || { echo "check_exports: no library at $lib"; exit 1; }

tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT

# Symbol versions (name@@TRAIL_0) are cut off; the version node itself is an
# absolute symbol (kind A) and so not kept.
nm -D --defined-only "$lib" |
  awk 'NF >= 3 && $2 ~ /^[TDBR]$/ { print $3 }' |
  sed 's/@.*//' | LC_ALL=C sort -u >"$tmp/library"
LC_ALL=C sort -u "$src/tests/exports.txt" >"$tmp/expected"
map_names "$src/lib/trail.map" >"$tmp/map"
header_names "${headers[@]}" >"$tmp/headers"

status=0
compare() { # label file
  if ! diff -u --label tests/exports.txt --label "$1" "$tmp/expected" "$2"; then
    echo "check_exports: $1 differs from tests/exports.txt (lines + are only in $1)"
    status=1
  fi
}
if ! cmp -s "$src/tests/exports.txt" "$tmp/expected"; then
  echo "check_exports: tests/exports.txt is not sorted (LC_ALL=C sort -u)"
  status=1
fi
compare "TRAIL_API names in the headers" "$tmp/headers"
compare "lib/trail.map" "$tmp/map"
compare "the exports of $(basename "$lib")" "$tmp/library"

if [[ $status -ne 0 ]]; then
  echo "check_exports: FAILED (after changing the API: bash tests/check_exports.sh --update)"
  exit 1
fi
echo "check_exports: $(wc -l <"$tmp/expected") symbols, all four lists agree"
