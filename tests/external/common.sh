# shellcheck shell=bash disable=SC2154
# Helpers of tests/check_install.sh and tests/check_package.sh, which source
# this file after setting: me (their name, for messages), work (a scratch
# directory of their own) and ext (this directory).

step() { echo "--- $*"; }
fail() {
  echo "$me: FAILED: $*"
  exit 1
}
# Runs a command quietly; its output is shown only when it fails.
quiet() {
  local log="$work/last.log"
  if ! "$@" >"$log" 2>&1; then
    cat "$log"
    fail "$*"
  fi
}

# run_prog LABEL KIND PROGRAM [ENV-ARGS...]: runs PROGRAM under
# `env ENV-ARGS...` (VAR=value, -u VAR), stdout to a file, stderr shown if
# it fails, and checks what it wrote as the output of KIND's program
# (check_lines.py: app, json, adapters).
run_prog() {
  local label="$1" kind="$2" prog="$3"
  shift 3
  local status=0
  env "$@" "$prog" >"$work/$label.out" 2>"$work/$label.err" || status=$?
  if [[ $status -ne 0 ]]; then
    cat "$work/$label.out" "$work/$label.err"
    fail "$label exited with status $status"
  fi
  sed "s/^/$label: /" "$work/$label.out"
  python3 "$ext/check_lines.py" "$kind" "$work/$label.out" ||
    fail "$label: not the expected lines"
}

# no_libtrail LABEL PROGRAM: PROGRAM needs no libtrail*.so, neither by its
# own NEEDED entries nor through another library (ldd).
no_libtrail() {
  local label="$1" prog="$2" out
  # Kept, then searched: with pipefail, `readelf | grep -q` fails when grep
  # exits first and readelf gets SIGPIPE.
  out="$(readelf -d "$prog")"
  if grep -q 'NEEDED.*libtrail' <<<"$out"; then
    grep NEEDED <<<"$out"
    fail "$label needs a libtrail shared library"
  fi
  out="$(ldd "$prog")"
  if grep libtrail <<<"$out"; then
    fail "$label loads a libtrail shared library (ldd)"
  fi
}
