#!/usr/bin/env bash
# What the compiler enforces for the caller, proven by compiling small
# programs against include/trail.h:
# - the f variants are printf-checked: a wrong argument type fails with
#   -Werror=format, a right one compiles;
# - the plain variants take the message as data: a '%' in it draws no
#   warning;
# - TRAIL_MIN_LEVEL compiles lower levels out: their arguments are not even
#   evaluated (the program exits 0 only if the side effect never ran).
#
# ctest: check_compile BUILD_DIR SOURCE_DIR, TRAIL_C_COMPILER in the
# environment.
set -euo pipefail

build="$(cd "${1:?usage: check_compile.sh BUILD_DIR SOURCE_DIR}" && pwd)"
src="$(cd "${2:?usage: check_compile.sh BUILD_DIR SOURCE_DIR}" && pwd)"
cc="${TRAIL_C_COMPILER:-cc}"
lib="${TRAIL_STATIC_LIB:-$build/libtrail.a}"
work="$build/check_compile"
rm -rf "$work"
mkdir -p "$work"
flags=(-std=c11 -Wall -Wextra -Werror -I"$src/include")

cat >"$work/bad_format.c" <<'C'
#include <trail.h>
void f(void) { trail_infof(NULL, "%d items", "not an int"); }
C
if "$cc" "${flags[@]}" -c "$work/bad_format.c" -o "$work/bad.o" 2>"$work/bad.err"; then
  echo "check_compile: a wrong printf argument compiled without error"
  exit 1
fi
grep -q "format" "$work/bad.err" || { cat "$work/bad.err"; exit 1; }

cat >"$work/good_format.c" <<'C'
#include <trail.h>
void f(const char *path, int e) {
  trail_errorf(NULL, "cannot open %s: %d", path, e);
  trail_info(NULL, "100% literal, %s and %n are data");
  trail_info(NULL, "fields", TRAIL_STR("k", "v"), TRAIL_INT("n", 1));
}
C
"$cc" "${flags[@]}" -Wformat=2 -c "$work/good_format.c" -o "$work/good.o"

cat >"$work/min_level.c" <<'C'
#define TRAIL_MIN_LEVEL TRAIL_LEVEL_INFO
#include <trail.h>
static int evaluated;
static int touch(void) { return ++evaluated; }
int main(void) {
  trail_output_set("/dev/null", NULL);
  trail_logger_set_level(NULL, TRAIL_LEVEL_TRACE);
  trail_debug(NULL, "compiled out", TRAIL_INT("x", touch()));
  trail_tracef(NULL, "compiled out %d", touch());
  trail_info(NULL, "kept", TRAIL_INT("x", touch()));
  return evaluated == 1 ? 0 : 1;
}
C
"$cc" "${flags[@]}" "$work/min_level.c" "$lib" $(pkg-config --libs jansson uuid) \
  -pthread ${TRAIL_SANITIZE:+-fsanitize=$TRAIL_SANITIZE} -o "$work/min_level"
"$work/min_level"
echo "check_compile: format checks and TRAIL_MIN_LEVEL hold"
