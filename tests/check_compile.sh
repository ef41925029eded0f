#!/usr/bin/env bash
# What the compiler enforces for the caller, proven by compiling small
# programs against include/trail.h:
# - the f variants are printf-checked: a wrong argument type fails with
#   -Werror=format, a right one compiles;
# - the plain variants take the message as data: a '%' in it draws no
#   warning;
# - TRAIL_MIN_LEVEL compiles lower levels out: their arguments are not even
#   evaluated (the program exits 0 only if the side effect never ran);
# - a field argument that is not a trail_field (printf arguments given to
#   trail_info) fails to compile with a message naming the f variant, and
#   correct calls, up to 40 fields, compile at -pedantic; with the C
#   compiler of the build, and with gcc and clang when installed;
# - every public header compiles alone as C99 and as C11 at -pedantic
#   (an adapter's header where its server's header is installed), and
#   trail_http_request has the same alignment in both.
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

# TRAIL_MSGF and TRAIL_STRF are printf-checked the same way.
for use in 'trail_info(NULL, TRAIL_MSGF("%d items", "not an int"))' \
  'trail_info(NULL, "m", TRAIL_STRF("k", "%s", 42))'; do
  printf '#include <trail.h>\nvoid f(void) { %s; }\n' "$use" >"$work/bad_msgf.c"
  if "$cc" "${flags[@]}" -c "$work/bad_msgf.c" -o "$work/bad.o" 2>"$work/bad.err"; then
    echo "check_compile: a wrong printf argument to TRAIL_MSGF/TRAIL_STRF compiled: $use"
    exit 1
  fi
  grep -q "format" "$work/bad.err" || { cat "$work/bad.err"; exit 1; }
done

cat >"$work/good_format.c" <<'C'
#include <trail.h>
void f(const char *path, int e) {
  trail_errorf(NULL, "cannot open %s: %d", path, e);
  trail_info(NULL, "100% literal, %s and %n are data");
  trail_info(NULL, "fields", TRAIL_STR("k", "v"), TRAIL_INT("n", 1));
  trail_warn(NULL, TRAIL_MSGF("order %d", e), TRAIL_STRF("p", "%s/x", path));
}
C
"$cc" "${flags[@]}" -Wformat=2 -c "$work/good_format.c" -o "$work/good.o"

# One message per mistake: compile must fail and stderr must say it.
expect_not_field() { # COMPILER NAME ADVICE SOURCE
  printf '#include <trail.h>\n%s\n' "$4" >"$work/$2.c"
  if "$1" "${flags[@]}" -pedantic -c "$work/$2.c" -o "$work/$2.o" \
    2>"$work/$2.err"; then
    echo "check_compile: $1: $2 compiled, a non-field argument unnoticed"
    exit 1
  fi
  local want="trail: a field argument is not a trail_field; for printf-style arguments $3"
  grep -qF "$want" "$work/$2.err" || {
    cat "$work/$2.err"
    echo "check_compile: $1: $2: no message \"$want\""
    exit 1
  }
}

# Calls with every field kind, no fields and 40 fields: no warning.
{
  echo '#include <trail.h>'
  echo 'void f(const trail_field *p, const char *s, trail_ctx *cx) {'
  echo '  const trail_field made = TRAIL_BOOL("b", 1);'
  echo '  trail_info(NULL, "none");'
  echo '  trail_warn(NULL, "kinds", TRAIL_STR("s", s), TRAIL_STRN("n", s, 1),'
  echo '             TRAIL_INT("i", -1), TRAIL_UINT("u", 1u),'
  echo '             TRAIL_DOUBLE("d", 0.5), TRAIL_JSON("j", NULL), *p, made);'
  echo '  trail_ctx_error(cx, NULL, "ctx", made);'
  printf '  trail_debug(NULL, "forty"'
  for i in $(seq 1 40); do printf ', TRAIL_INT("k%d", %d)' "$i" "$i"; done
  echo ');'
  echo '}'
} >"$work/good_fields.c"

compilers=("$cc")
for other in gcc clang; do
  command -v "$other" >/dev/null && [[ "$other" != "$(basename "$cc")" ]] &&
    compilers+=("$other")
done
for c in "${compilers[@]}"; do
  "$c" "${flags[@]}" -pedantic -c "$work/good_fields.c" -o "$work/good_fields.o"
  expect_not_field "$c" printf_args "use trail_infof()" \
    'void f(const char *name) { trail_info(NULL, "hello %s", name); }'
  expect_not_field "$c" int_arg "use trail_warnf()" \
    'void f(int n) { trail_warn(NULL, "n=%d", n); }'
  expect_not_field "$c" later_arg "use trail_errorf()" \
    'void f(int n) { trail_error(NULL, "m", TRAIL_INT("a", 1), n); }'
  expect_not_field "$c" ctx_arg \
    "enter the context and use trail_debugf()" \
    'void f(trail_ctx *c, int n) { trail_ctx_debug(c, NULL, "m", n); }'
done

# Each public header alone, C99 and C11: a service built with -std=c99
# includes them as they are.
server_header() { # TRAIL_HEADER -> the server header it needs, or nothing
  case "$1" in
  trail/mhd.h) echo microhttpd.h ;;
  trail/civetweb.h) echo civetweb.h ;;
  trail/evhttp.h) echo event2/http.h ;;
  trail/fcgi.h) echo fcgiapp.h ;;
  trail/ulfius.h) echo ulfius.h ;;
  trail/curl.h) echo curl/curl.h ;;
  esac
}
headers=0
for path in "$src"/include/trail.h "$src"/include/trail/*.h; do
  h="${path#"$src"/include/}"
  need="$(server_header "$h")"
  if [[ -n "$need" ]] &&
    ! printf '#include <%s>\n' "$need" | "$cc" -E -x c - >/dev/null 2>&1; then
    echo "check_compile: $h not compiled alone: <$need> is not installed"
    continue
  fi
  printf '#include <%s>\nint trail_check_header;\n' "$h" >"$work/header.c"
  for c in "${compilers[@]}"; do
    for std in c99 c11; do
      "$c" -std="$std" -pedantic -Wall -Wextra -Werror -I"$src/include" \
        -c "$work/header.c" -o "$work/header.o" 2>"$work/header.err" || {
        cat "$work/header.err"
        echo "check_compile: $c -std=$std: $h does not compile alone"
        exit 1
      }
    done
  done
  headers=$((headers + 1))
done
# The logging calls with every field kind, as C99.
for c in "${compilers[@]}"; do
  "$c" -std=c99 -pedantic -Wall -Wextra -Werror -I"$src/include" \
    -c "$work/good_fields.c" -o "$work/good_fields99.o"
done
cat >"$work/align99.c" <<'C'
#include <stddef.h>
#include <trail/http.h>
struct probe { char c; trail_http_request r; };
size_t align_c99(void) { return offsetof(struct probe, r); }
C
cat >"$work/align11.c" <<'C'
#include <stdio.h>
#include <trail/http.h>
size_t align_c99(void);
int main(void) {
  size_t a11 = _Alignof(trail_http_request), a99 = align_c99();
  if (a11 == a99)
    return 0;
  printf("trail_http_request aligned %zu in C11, %zu in C99\n", a11, a99);
  return 1;
}
C
"$cc" -std=c99 -pedantic -Wall -Wextra -Werror -I"$src/include" \
  -c "$work/align99.c" -o "$work/align99.o"
"$cc" -std=c11 -Wall -Wextra -Werror -I"$src/include" \
  "$work/align11.c" "$work/align99.o" -o "$work/align"
"$work/align"
echo "check_compile: $headers public headers compile alone as C99 and C11"

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
echo "check_compile: format checks, field checks and TRAIL_MIN_LEVEL hold"
