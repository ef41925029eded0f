#!/usr/bin/env bash
# The command line of every example program (examples/cli.h): what a user
# types first has to work.
#
# - -h and --help: exit status 0, a usage text on stdout that starts with
#   "usage:" and names each of the program's options, nothing on stderr,
#   and no server started (the program returns by itself, in time).
# - wrong arguments (an unknown option, an argument where none is taken,
#   --port without a value, not a number, out of range): exit status 2,
#   nothing on stdout, one line on stderr that names the program and ends
#   with "try <program> --help".
#
# ctest: check_cli BUILD_DIR SOURCE_DIR, with TRAIL_TEST_EXAMPLES_DIR in the
# environment. An example that was not built is skipped; none built: 77.
set -uo pipefail

build="$(cd "${1:?usage: check_cli.sh BUILD_DIR [SOURCE_DIR]}" && pwd)"
dir="${TRAIL_TEST_EXAMPLES_DIR:-$build/examples}"
work="$build/check_cli"
rm -rf "$work"
mkdir -p "$work"

# Each example and the options its usage must name.
declare -A options=(
  [demo]="--long --help"
  [orders_mhd]="--port --mode --help"
  [orders_civetweb]="--port --help"
  [orders_evhttp]="--port --help"
  [gateway]="--port --downstream --help"
  [orders_ulfius]="--port --mode --help"
  [orders_fcgi]="--port --threads --help"
)
# The wrong command lines every example must refuse, one a line. demo
# takes no --port: it refuses these as an unknown option.
bad_args=(
  "--bogus"
  "-x"
  "stray"
  "--port"
  "--port="
  "--port abc"
  "--port 8080x"
  "--port -1"
  "--port 70000"
  "--port 65536"
  "--port 99999999999999999999"
)
declare -A extra_bad=(
  [demo]="--long=yes"
  [orders_mhd]="--mode|--mode fast"
  [gateway]="--downstream|--downstream ftp://example.org"
  [orders_ulfius]="--mode|--mode=|--mode fast"
  [orders_fcgi]="--threads|--threads=|--threads 0|--threads 257|--threads -4|--threads 8x|--threads 99999999999999999999"
)

failed=0
checked=0
fail() {
  echo "check_cli: $1"
  failed=1
}

# run NAME ARGS...: runs the example, bounded in time (a server that
# started instead of answering would otherwise never return); sets
# $status, and leaves stdout and stderr in $work/out and $work/err.
run() {
  local name="$1"
  shift
  status=0
  timeout 10 "$dir/$name" "$@" >"$work/out" 2>"$work/err" </dev/null ||
    status=$?
}

for name in demo orders_mhd orders_civetweb orders_evhttp orders_ulfius \
  orders_fcgi gateway; do
  if [[ ! -x "$dir/$name" ]]; then
    echo "check_cli: $name was not built, skipped"
    continue
  fi
  checked=$((checked + 1))
  before=$failed

  for help in --help -h; do
    run "$name" "$help"
    if [[ $status -ne 0 ]]; then
      fail "$name $help: exit status $status, want 0"
    fi
    if ! head -n1 "$work/out" | grep -q '^usage: '; then
      fail "$name $help: stdout does not start with 'usage: '"
    fi
    if [[ -s "$work/err" ]]; then
      fail "$name $help: wrote on stderr: $(head -n1 "$work/err")"
    fi
    if grep -q '^{' "$work/out"; then
      fail "$name $help: logged (it started instead of answering)"
    fi
    for opt in ${options[$name]}; do
      if ! grep -q -- "$opt\\b" "$work/out"; then
        fail "$name $help: the usage does not name $opt"
      fi
    done
  done
  # --help answers at once: what comes after it is not looked at.
  run "$name" --help --bogus
  [[ $status -eq 0 ]] || fail "$name --help --bogus: exit status $status"

  cases=("${bad_args[@]}")
  if [[ -n "${extra_bad[$name]:-}" ]]; then
    IFS='|' read -r -a more <<<"${extra_bad[$name]}"
    cases+=("${more[@]}")
  fi
  for args in "${cases[@]}"; do
    # shellcheck disable=SC2086 # split on purpose: one case, its words
    run "$name" $args
    what="$name $args"
    if [[ $status -ne 2 ]]; then
      fail "$what: exit status $status, want 2"
    fi
    if [[ -s "$work/out" ]]; then
      fail "$what: wrote on stdout: $(head -n1 "$work/out")"
    fi
    if [[ "$(wc -l <"$work/err")" -ne 1 ]]; then
      fail "$what: want one line on stderr, got: $(cat "$work/err")"
    elif ! grep -q "^$name: .*; try $name --help\$" "$work/err"; then
      fail "$what: stderr does not name the program and --help: $(cat "$work/err")"
    fi
  done

  if [[ $failed -eq $before ]]; then
    echo "check_cli: $name: --help and -h answer, ${#cases[@]} wrong command lines refused"
  fi
done

if [[ $checked -eq 0 ]]; then
  echo "check_cli: no example was built"
  exit 77
fi
exit "$failed"
