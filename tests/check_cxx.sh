#!/usr/bin/env bash
# trail from C++, with g++ and clang++, at -std=c++17 and -std=c++20
# -pedantic, -Wall -Wextra -Werror:
# - every public header compiles in a translation unit of its own (a header
#   whose server library's header is not installed is skipped, as in C);
# - tests/cxx/plain.c, every logging macro and field type, is built as C
#   (gcc for g++, clang for clang++: __LINE__ of a macro call spanning lines
#   is the compiler's choice) and as C++; the C++ lines must equal the C
#   lines field by field, "timestamp" aside, and its disabled levels must
#   not evaluate their arguments;
# - tests/cxx/min_level.c: TRAIL_MIN_LEVEL compiles lower levels out;
# - a non-field argument fails to compile, naming trail_infof();
# - tests/cxx/civetweb.cpp serves one request through the civetweb adapter
#   and its access line is checked (when the adapter was built).
# Under a sanitizer, libtrail is built with one compiler's runtime: the
# other compiler's programs are compiled but not linked.
#
# ctest: check_cxx BUILD_DIR SOURCE_DIR; TRAIL_STATIC_LIB, TRAIL_C_COMPILER,
# TRAIL_SANITIZE, TRAIL_CIVETWEB_LIBS and TRAIL_CIVETWEB_INCLUDE_DIR in the
# environment.
set -euo pipefail

build="$(cd "${1:?usage: check_cxx.sh BUILD_DIR SOURCE_DIR}" && pwd)"
src="$(cd "${2:?usage: check_cxx.sh BUILD_DIR SOURCE_DIR}" && pwd)"
lib="${TRAIL_STATIC_LIB:-$build/libtrail.a}"
cxxdir="$src/tests/cxx"
work="$build/check_cxx"
rm -rf "$work"
mkdir -p "$work"

modes=("-std=c++17" "-std=c++20 -pedantic")
warn=(-Wall -Wextra -Werror -I"$src/include")
san=(${TRAIL_SANITIZE:+-fsanitize=$TRAIL_SANITIZE})
read -r -a libs <<<"$(pkg-config --libs jansson uuid) -pthread -lm"
rid="cxx-civetweb-1" # the request id tests/cxx/civetweb.cpp sends

not_field="trail: a field argument is not a trail_field; for printf-style arguments use trail_infof()"

fail() {
  echo "check_cxx: FAILED: $*"
  exit 1
}
skip() {
  echo "check_cxx: skipped: $*"
  exit 77
}
command -v python3 >/dev/null || skip "python3 is not installed"
command -v pkg-config >/dev/null || skip "pkg-config is not installed"

# The C++ compilers present, each with the C compiler of its family.
families=()
command -v g++ >/dev/null && command -v gcc >/dev/null && families+=("gcc g++")
command -v clang++ >/dev/null && command -v clang >/dev/null &&
  families+=("clang clang++")
[[ ${#families[@]} -gt 0 ]] || skip "neither g++ nor clang++ is installed"
if [[ ${#families[@]} -lt 2 ]]; then
  echo "check_cxx: note: only ${families[0]#* } is installed"
fi

# The family whose programs link: all of them, except under a sanitizer.
built_by=""
if [[ -n "${TRAIL_SANITIZE:-}" ]]; then
  built_by=gcc
  "${TRAIL_C_COMPILER:-cc}" --version | grep -qi clang && built_by=clang
fi
tag() { # "-std=c++20 -pedantic" -> c++20
  local t="${1%% *}"
  echo "${t#-std=}"
}
links() { [[ -z "$built_by" || "$1" == "$built_by" ]]; }

# The cflags of the server libraries the adapter headers include.
dep_cflags=()
for mod in libmicrohttpd libevent libcurl libulfius libsystemd fcgi; do
  if pkg-config --exists "$mod"; then
    read -r -a f <<<"$(pkg-config --cflags "$mod")"
    dep_cflags+=("${f[@]}")
  fi
done
[[ -n "${TRAIL_CIVETWEB_INCLUDE_DIR:-}" ]] &&
  dep_cflags+=(-I"$TRAIL_CIVETWEB_INCLUDE_DIR")

check_headers() { # CC CXX
  local h name tu
  for h in "$src/include/trail.h" "$src/include/trail"/*.h; do
    name="${h#"$src/include/"}"
    tu="$work/header_${name//\//_}"
    tu="${tu%.h}"
    printf '#include <%s>\n' "$name" >"$tu.c"
    cp "$tu.c" "$tu.cpp"
    if ! "$1" -std=c11 -fsyntax-only "${warn[@]}" "${dep_cflags[@]}" \
      "$tu.c" 2>/dev/null; then
      echo "check_cxx: note: $name skipped: it does not compile as C here" \
        "(its server library's header is missing)"
      continue
    fi
    for mode in "${modes[@]}"; do
      # shellcheck disable=SC2086
      "$2" $mode -fsyntax-only "${warn[@]}" "${dep_cflags[@]}" "$tu.cpp"
    done
  done
}

check_plain() { # CC CXX
  local out="$work/plain_$1"
  "$1" -std=c11 -pedantic "${warn[@]}" "${san[@]}" "$cxxdir/plain.c" \
    "$lib" "${libs[@]}" -o "$out"
  "$out" >"$out.jsonl" || fail "plain.c built by $1 exited $?"
  for mode in "${modes[@]}"; do
    out="$work/plain_$2_$(tag "$mode")"
    # shellcheck disable=SC2086
    "$2" $mode "${warn[@]}" "${san[@]}" -x c++ "$cxxdir/plain.c" -x none \
      "$lib" "${libs[@]}" -o "$out"
    "$out" >"$out.jsonl" || fail "plain.c built by $2 $mode exited $?"
    echo -n "check_cxx: $2 $mode: "
    python3 "$cxxdir/compare.py" "$work/plain_$1.jsonl" "$out.jsonl"
    # shellcheck disable=SC2086
    "$2" $mode "${warn[@]}" "${san[@]}" -DTRAIL_MIN_LEVEL=TRAIL_LEVEL_INFO \
      -x c++ "$cxxdir/min_level.c" -x none "$lib" "${libs[@]}" \
      -o "$work/min_level"
    "$work/min_level" ||
      fail "$2 $mode: TRAIL_MIN_LEVEL let a compiled-out call run"
  done
}

# Compiles only (no link): for the family whose sanitizer runtime is not
# the one libtrail was built with.
compile_plain() { # CXX
  for mode in "${modes[@]}"; do
    # shellcheck disable=SC2086
    "$1" $mode "${warn[@]}" -x c++ -c "$cxxdir/plain.c" -o "$work/plain.o"
    # shellcheck disable=SC2086
    "$1" $mode "${warn[@]}" -DTRAIL_MIN_LEVEL=TRAIL_LEVEL_INFO -x c++ -c \
      "$cxxdir/min_level.c" -o "$work/min_level.o"
  done
  echo "check_cxx: $1: compiled only (libtrail has another sanitizer runtime)"
}

check_not_field() { # CXX
  cat >"$work/not_field.cpp" <<'CXX'
#include <trail.h>
void f(const char *name) { trail_info(nullptr, "hello %s", name); }
CXX
  for mode in "${modes[@]}"; do
    # shellcheck disable=SC2086
    if "$1" $mode "${warn[@]}" -c "$work/not_field.cpp" -o "$work/nf.o" \
      2>"$work/not_field.err"; then
      fail "$1 $mode: a printf argument compiled as a field"
    fi
    grep -qF "$not_field" "$work/not_field.err" || {
      cat "$work/not_field.err"
      fail "$1 $mode: the error does not say \"$not_field\""
    }
  done
}

check_civetweb() { # CXX
  local out
  for mode in "${modes[@]}"; do
    out="$work/civetweb_$1_$(tag "$mode")"
    # shellcheck disable=SC2086
    "$1" $mode "${warn[@]}" "${san[@]}" "${dep_cflags[@]}" \
      "$cxxdir/civetweb.cpp" $TRAIL_CIVETWEB_LIBS "$lib" "${libs[@]}" -o "$out"
    "$out" >"$out.jsonl" || fail "civetweb.cpp built by $1 $mode exited $?"
    echo -n "check_cxx: $1 $mode civetweb: "
    python3 "$cxxdir/check_access.py" "$out.jsonl" "$rid"
  done
}

for fam in "${families[@]}"; do
  read -r cc cxx <<<"$fam"
  check_headers "$cc" "$cxx"
  check_not_field "$cxx"
  if links "$cc"; then
    check_plain "$cc" "$cxx"
    if [[ -n "${TRAIL_CIVETWEB_LIBS:-}" ]]; then
      check_civetweb "$cxx"
    else
      echo "check_cxx: note: the civetweb adapter was not built: not run"
    fi
  else
    compile_plain "$cxx"
  fi
done
echo "check_cxx: the headers and macros work from C++"
