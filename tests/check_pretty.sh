#!/usr/bin/env bash
# Golden-output tests of trail-pretty. Each case runs the program on an input
# of tests/pretty/ with fixed options and compares what it prints, byte for
# byte, with a tests/pretty/*.out file. Every output is also checked for raw
# control characters (outside the SGR colour sequences the program writes
# itself), whatever the golden file says. Further cases cover files given as
# arguments and merged in time order, other JSON loggers' lines, the
# service, local time, --fields, --hide, --where, --since and --until,
# hostile input, -f following a growing, rotated and truncated file, colour
# on a terminal (through util-linux's script(1), when it is there), lines
# longer than the maximum, memory that stays bounded on inputs larger than
# it, --help, --version and usage errors.
#
# ctest: check_pretty BUILD_DIR SOURCE_DIR. Skipped (77) when trail-pretty
# was not built. After a deliberate change to the output, run it with
# PRETTY_UPDATE=1 to rewrite the golden files, and review the diff.
set -euo pipefail

build="$(cd "${1:?usage: check_pretty.sh BUILD_DIR SOURCE_DIR}" && pwd)"
src="$(cd "${2:?usage: check_pretty.sh BUILD_DIR SOURCE_DIR}" && pwd)"
prog="$build/tools/trail-pretty"
data="$src/tests/pretty"
[[ -x "$prog" ]] || { echo "check_pretty: trail-pretty was not built"; exit 77; }
command -v perl >/dev/null || { echo "check_pretty: perl is needed"; exit 1; }

work="$build/check_pretty"
rm -rf "$work"
mkdir -p "$work"
# The outcome must not depend on the caller's terminal settings.
unset NO_COLOR
export TERM=xterm
update="${PRETTY_UPDATE:-0}"

failed=0
runs=0
declare -A used=()

fail() {
  echo "check_pretty: FAILED: $*"
  failed=1
}

# safe FILE: no raw C0 control but tab and newline, no DEL, no C1 control,
# no LINE/PARAGRAPH SEPARATOR and no bidi control, once the program's own
# SGR sequences are taken out.
safe() {
  perl -ne '
    chomp;
    s/\e\[[0-9;]*m//g;
    if (/[\x00-\x08\x0a-\x1f\x7f]|\xc2[\x80-\x9f]|\xd8\x9c|\xe2\x80[\x8e\x8f\xa8-\xae]|\xe2\x81[\xa6-\xa9]/) {
      print "line $.: raw control character\n";
      exit 1;
    }' "$1"
}

# expect NAME ACTUAL STATUS WANT_STATUS: compares ACTUAL with the golden
# file NAME.out (or writes it, with PRETTY_UPDATE=1) and the exit status.
expect() {
  local name="$1" actual="$2" status="$3" want="$4"
  local golden="$data/$name.out"
  used["$name.out"]=1
  if [[ "$update" == 1 ]]; then
    cp "$actual" "$golden"
  fi
  if [[ ! -f "$golden" ]]; then
    fail "$name: no golden file $name.out"
  elif ! cmp -s "$golden" "$actual"; then
    fail "$name: output differs from $name.out (- golden, + actual; cat -v)"
    diff -u "$golden" "$actual" | cat -v | head -40 || true
  fi
  if [[ "$status" != "$want" ]]; then
    fail "$name: exit status $status, expected $want"
  fi
  safe "$actual" || fail "$name: raw control character in the output"
}

# golden NAME INPUT [ARG...]: runs trail-pretty ARG... with INPUT (a file of
# tests/pretty/) on standard input; expects status 0, nothing on standard
# error, and the output NAME.out.
golden() {
  local name="$1" input="$2" status=0
  shift 2
  runs=$((runs + 1))
  local out="$work/$runs.$name.out" err="$work/$runs.$name.err"
  used["$input"]=1
  "$prog" "$@" <"$data/$input" >"$out" 2>"$err" || status=$?
  expect "$name" "$out" "$status" 0
  if [[ -s "$err" ]]; then
    fail "$name: unexpected standard error:"
    cat "$err"
  fi
}

# golden_files NAME STDIN ARG...: like golden, with STDIN (a file of
# tests/pretty/, or /dev/null) on standard input and each ARG that names a
# file of tests/pretty/ (ending in .in) given by its path.
golden_files() {
  local name="$1" input="$2" status=0 arg
  shift 2
  local args=()
  for arg in "$@"; do
    if [[ "$arg" == *.in ]]; then
      used["$arg"]=1
      args+=("$data/$arg")
    else
      args+=("$arg")
    fi
  done
  [[ "$input" != /dev/null ]] && used["$input"]=1 && input="$data/$input"
  runs=$((runs + 1))
  local out="$work/$runs.$name.out" err="$work/$runs.$name.err"
  "$prog" "${args[@]}" <"$input" >"$out" 2>"$err" || status=$?
  expect "$name" "$out" "$status" 0
  if [[ -s "$err" ]]; then
    fail "$name: unexpected standard error:"
    cat "$err"
  fi
}

# --- events, values, escapes, pass-through ----------------------------------

golden events events.in
golden events.full events.in --full
golden events.date events.in --date
golden passthrough passthrough.in
golden escapes escapes.in
golden escapes.color escapes.in --color=always

# --- colour -------------------------------------------------------------------

golden levels levels.in
golden levels.color levels.in --color=always
golden levels.color levels.in --colour
golden levels levels.in --color=never
# Not a terminal: auto means no colour.
golden levels levels.in --color=auto
NO_COLOR=1 golden levels levels.in
# An explicit --color=always beats NO_COLOR.
NO_COLOR=1 golden levels.color levels.in --color=always

# On a terminal, through script(1): colour by default, none with a non-empty
# NO_COLOR or TERM=dumb. The terminal turns "\n" into "\r\n"; the program
# never writes a raw CR, so every CR is the terminal's and is taken out.
tty_case() {
  local name="$1" status=0
  shift
  runs=$((runs + 1))
  local out="$work/$runs.tty.$name.out" cmd
  cmd="$(printf '%q ' "$prog" "$data/levels.in")"
  if [[ "${1:-}" == --* ]]; then
    cmd+="$1"
    shift
  fi
  env "$@" script -qec "$cmd" /dev/null </dev/null | tr -d '\r' >"$out" ||
    status=$?
  expect "$name" "$out" "$status" 0
}
if command -v script >/dev/null && script -qec true /dev/null </dev/null >/dev/null 2>&1; then
  tty_case levels.color -u NO_COLOR
  tty_case levels NO_COLOR=1
  tty_case levels.color NO_COLOR=
  tty_case levels TERM=dumb
  tty_case levels --color=never -u NO_COLOR
  tty_case levels.color --color=always NO_COLOR=1
else
  echo "check_pretty: script(1) cannot make a terminal here; terminal cases skipped"
fi

# --- filters ----------------------------------------------------------------

golden filters.level-warn filters.in --level warn
golden filters.level-error filters.in --level=ERROR
golden filters.request-prefix filters.in --request-id 3f2b8c1e
golden filters.request-short filters.in --request-id 3f2b
golden filters.request-full filters.in --request-id 3f2b8c1e-6a4d-4f7e-9b1a-0c5d2e7f8a91
golden filters.request-prefix filters.in --request-id 3F2B8C1E
golden filters.request-two filters.in --request-id 3f2b8c1e --request-id e963
golden filters.trace filters.in --trace-id 4bf92f35
golden filters.logger filters.in --logger db
golden filters.combined filters.in --logger db --logger http --level info

# --- --where, --since, --until -------------------------------------------------

golden filters.where-number filters.in --where status=404
golden filters.where-regex filters.in --where 'message~^request' --where 'status~^5'
# A key no event holds: only the line that is not an event is left.
golden filters.where-missing filters.in --where no_such_key=1
golden filters.where-level filters.in --where level=warn --logger http
golden events.where-scalars events.in --where ok=true --where none=null \
  --where ratio=0.1 --where max_u64=18446744073709551615 --where huge=1e400
golden events.where-json events.in \
  --where 'opts={"timeout_ms":250,"nested":{"a":[1.5,"b c"]}}' \
  --where 'opts.nested.a~"b c"' --where 'params=[42,"x y",null,true,false]'
golden events.where-empty events.in --where empty= --where 'nbsp~^a.b$' \
  --where 'unicode~^na.ve caf. .$'
golden times.window times.in --since 2026-11-27T06:22:02.5Z \
  --until 2026-11-27T08:22:04+02:00
# Relative times count back from now: these hold while the clock is after
# 2026-11-28 and before the year 2999.
golden times.since-1d times.in --since 1d
golden times.until-1h times.in --until 1h
golden times.empty-window times.in --since 2026-11-27T06:22:03Z \
  --until 2026-11-27T06:22:02Z

# --- --fields, --hide ----------------------------------------------------------

golden events.fields events.in --fields status,sql,path
golden events.fields-hide events.in --fields status,path,method --fields bytes \
  --hide path,request_id,user_id
golden events.hide-head events.in --hide timestamp,level,logger,message,trace_id
golden events.hide-full events.in --full --hide span_id,service,caller,id

# --- the service ---------------------------------------------------------------

golden services services.in
golden services.always services.in --service
golden services.always services.in --service=always
golden services.never services.in --service=never
golden services.never services.in --full --service=never --hide span_id
golden services.never services.in --hide service
golden services.full services.in --full
# Only one service passes the filter: it is never shown.
golden services.where services.in --where service=gateway
golden services.color services.in --color=always

# --- local time ----------------------------------------------------------------

TZ=UTC-5:30 golden events.local events.in --local
# The time zone of TZ changes nothing without --local.
TZ=UTC-5:30 golden events events.in
# A time zone with summer time (the rule of America/New_York, without the
# tz database): the same day in July and in November.
TZ=EST5EDT,M3.2.0,M11.1.0 golden local.dst local.in --local --date

# --- other JSON loggers ----------------------------------------------------------

golden foreign foreign.in
golden foreign.level-warn foreign.in --level warn
golden foreign.hide foreign.in --hide pid,hostname,caller,msg
golden foreign.where foreign.in --where 'message~^zap' --where 'level~^(info|error)$'
golden foreign.where-nested foreign.in --where err.type=Error
golden foreign.since foreign.in --since 2026-11-27T06:22:42Z --until 2026-11-27T06:22:46Z

# --- hostile input ---------------------------------------------------------------

golden hostile hostile.in
golden hostile.where hostile.in --where deep~1 --hide deep
TZ=UTC-14 golden hostile.local hostile.in --local --service --full --date

# --- several files, merged in time order -------------------------------------------

golden_files merge /dev/null merge.gateway.in merge.orders.in
golden_files merge.reversed /dev/null merge.orders.in merge.gateway.in
golden_files merge.three merge.pino.in merge.gateway.in - merge.orders.in
golden_files merge.where /dev/null --where trace_id~^4bf9 merge.gateway.in \
  merge.orders.in
golden_files merge.one /dev/null merge.gateway.in

# --- files as arguments -------------------------------------------------------

runs=$((runs + 1))
status=0
"$prog" "$data/levels.in" - "$data/filters.in" <"$data/events.in" \
  >"$work/files.out" 2>"$work/files.err" || status=$?
expect files "$work/files.out" "$status" 0
[[ -s "$work/files.err" ]] && fail "files: unexpected standard error"

# A missing file is reported, the others are still shown, the status is 1.
status=0
"$prog" "$data/levels.in" "$work/no-such-file" "$data/levels.in" \
  >"$work/missing.out" 2>"$work/missing.err" </dev/null || status=$?
expect files.missing "$work/missing.out" "$status" 1
grep -q "^trail-pretty: .*no-such-file: No such file or directory$" "$work/missing.err" ||
  fail "files.missing: no message naming the missing file"

# --- lines longer than the maximum ------------------------------------------

# 16 MiB is the longest line read whole: a longer one is cut and marked, one
# of exactly that length is not, and the line after either is read normally.
max=$((16 * 1024 * 1024))
{
  head -c $((max + 10)) /dev/zero | tr '\0' x
  printf '\n'
  head -c "$max" /dev/zero | tr '\0' y
  printf '\n'
  head -n 1 "$data/levels.in"
} >"$work/long.in"
{
  head -c "$max" /dev/zero | tr '\0' x
  printf ' [line cut at %d bytes]\n' "$max"
  head -c "$max" /dev/zero | tr '\0' y
  printf '\n'
  head -n 1 "$data/levels.out"
} >"$work/long.want"
status=0
"$prog" <"$work/long.in" >"$work/long.out" 2>"$work/long.err" || status=$?
if [[ $status -ne 0 ]] || ! cmp -s "$work/long.want" "$work/long.out"; then
  fail "long lines: status $status, output not as expected"
fi

# --- memory stays bounded ---------------------------------------------------------

# Two inputs of 40 MiB each, through pipes, merged under a 24 MiB limit of
# address space: neither is held whole. Skipped when the program cannot run
# under such a limit at all (a sanitizer reserves far more).
gen() {
  perl -e 'my ($svc, $n) = @ARGV;
    for my $i (0 .. $n - 1) {
      printf "{\"timestamp\":\"2026-11-27T06:%02d:%02d.%06dZ\",\"level\":\"info\",\"logger\":\"http\",\"message\":\"request completed\",\"service\":\"%s\",\"n\":%d,\"pad\":\"%s\"}\n",
        $i / 60000000 % 60, $i / 1000000 % 60, $i % 1000000, $svc, $i, "x" x 120;
    }' "$@"
}
limit_kb=$((24 * 1024))
if (ulimit -v "$limit_kb" && "$prog" </dev/null >/dev/null 2>&1) 2>/dev/null; then
  status=0
  (ulimit -v "$limit_kb" && exec "$prog" <(gen gateway 180000) <(gen orders 180000)) \
    >"$work/big.out" 2>"$work/big.err" || status=$?
  lines="$(wc -l <"$work/big.out")"
  # Merged: the same n from both services, one after the other.
  order="$(sed -n '3p;4p' "$work/big.out" | sed 's/.*\[\([a-z]*\)\].* n=\([0-9]*\).*/\1 \2/' | tr '\n' ' ')"
  if [[ $status -ne 0 || "$lines" -ne 360000 || "$order" != "gateway 1 orders 1 " ]]; then
    fail "bounded memory: status $status, $lines lines, lines 3-4: $order"
    head -c 300 "$work/big.err"
  fi
else
  echo "check_pretty: cannot run under a limit of address space; bounded memory case skipped"
fi

# --- -f -----------------------------------------------------------------------

# wait_lines FILE N: waits (at most 10 s) until FILE has N lines.
wait_lines() {
  local i
  for ((i = 0; i < 100; i++)); do
    [[ "$(wc -l <"$1")" -ge "$2" ]] && return 0
    sleep 0.1
  done
  return 1
}

log="$work/follow.log"
fout="$work/follow.out"
line() { sed -n "${1}p" "$data/levels.in"; }
line 1 >"$log"
"$prog" -f "$log" >"$fout" 2>"$work/follow.err" &
pid=$!
trap 'kill "$pid" 2>/dev/null || true' EXIT
follow_ok=1
wait_lines "$fout" 1 || follow_ok=0
line 2 >>"$log"
wait_lines "$fout" 2 || follow_ok=0
# A line written in two parts shows once, whole. The pause only gives the
# follower a chance to see the first part alone; the outcome must not
# depend on it.
third="$(line 3)"
printf '%s' "${third:0:60}" >>"$log"
sleep 0.3
printf '%s\n' "${third:60}" >>"$log"
wait_lines "$fout" 3 || follow_ok=0
# Rotation by rename: the old file is read to its end, then the new one.
mv "$log" "$log.1"
line 4 >>"$log.1"
line 5 >"$log"
wait_lines "$fout" 5 || follow_ok=0
# Truncation in place, then a write shorter than what was read before.
: >"$log"
printf 'after truncation\n' >>"$log"
wait_lines "$fout" 6 || follow_ok=0
kill "$pid"
wait "$pid" 2>/dev/null || true
trap - EXIT
[[ $follow_ok -eq 1 ]] || fail "follow: timed out waiting for lines"
expect follow "$fout" 0 0
[[ -s "$work/follow.err" ]] && fail "follow: unexpected standard error" && cat "$work/follow.err"

# -f with two files: what they hold at the start is merged in time order
# (the golden merge.out, then one more line), later lines shown as they come.
cp "$data/merge.gateway.in" "$work/gateway.log"
cp "$data/merge.orders.in" "$work/orders.log"
fout="$work/follow.merge.out"
"$prog" -f "$work/gateway.log" "$work/orders.log" >"$fout" 2>"$work/follow.merge.err" &
pid=$!
trap 'kill "$pid" 2>/dev/null || true' EXIT
follow_ok=1
wait_lines "$fout" 12 || follow_ok=0
printf '%s\n' '{"timestamp":"2026-11-27T06:22:37Z","level":"info","message":"written later, shown at once","service":"orders"}' \
  >>"$work/orders.log"
wait_lines "$fout" 13 || follow_ok=0
kill "$pid"
wait "$pid" 2>/dev/null || true
trap - EXIT
[[ $follow_ok -eq 1 ]] || fail "follow.merge: timed out waiting for lines"
expect follow.merge "$fout" 0 0
[[ -s "$work/follow.merge.err" ]] && fail "follow.merge: unexpected standard error" &&
  cat "$work/follow.merge.err"

# --- help, version, usage errors ---------------------------------------------

status=0
"$prog" --help >"$work/help.out" 2>"$work/help.err" || status=$?
if [[ $status -ne 0 ]] || ! head -n 1 "$work/help.out" | grep -q '^usage: trail-pretty ' ||
  [[ -s "$work/help.err" ]]; then
  fail "--help: status $status, or no usage on standard output"
fi
status=0
"$prog" -V >"$work/version.out" || status=$?
grep -qx 'trail-pretty [0-9][0-9.]*' "$work/version.out" || fail "-V: $(cat "$work/version.out")"

usage_error() {
  local status=0
  "$prog" "$@" >"$work/usage.out" 2>"$work/usage.err" </dev/null || status=$?
  if [[ $status -ne 2 ]] || [[ -s "$work/usage.out" ]] ||
    ! grep -q '^usage: trail-pretty ' "$work/usage.err"; then
    fail "'$*': status $status (expected 2 and usage on standard error)"
  fi
}
usage_error --bogus
usage_error -x
usage_error --level
usage_error --level loud
usage_error --color=sometimes
usage_error --request-id ""
usage_error -f
usage_error -f -
usage_error --where
usage_error --where a
usage_error --where =x
usage_error --where '~x'
usage_error --where 'a~('
usage_error --since yesterday
usage_error --since 10
usage_error --since -5m
usage_error --until 5x
usage_error --until 2026-11-27T06:22:38
usage_error --until 2026-11-27
usage_error --fields ""
usage_error --fields a,,b
usage_error --hide ,
usage_error --hide a,
usage_error --service=sometimes
usage_error --local=yes
usage_error --date=x

# usage_message PATTERN ARG...: the usage error's first line matches PATTERN.
usage_message() {
  local pattern="$1"
  shift
  usage_error "$@"
  head -n 1 "$work/usage.err" | grep -q -- "$pattern" ||
    fail "'$*': message '$(head -n 1 "$work/usage.err")' does not match '$pattern'"
}
usage_message "^trail-pretty: --where: .* in the regular expression of 'a~(\[z-a\]'$" \
  --where 'a~([z-a]'
usage_message "^trail-pretty: --where: not KEY=VALUE or KEY~REGEX: 'status'$" --where status
usage_message "^trail-pretty: --since: not an RFC 3339 time or a count of s, m, h or d: '1w'$" \
  --since 1w
usage_message "^trail-pretty: --fields: an empty key in 'a,,b'$" --fields a,,b
usage_message "^trail-pretty: --service: not one of auto, always, never: 'x'$" --service=x
usage_message "^trail-pretty: option takes no value: '--local=yes'$" --local=yes

# --- every input and golden file is used ------------------------------------

for f in "$data"/*.in "$data"/*.out; do
  base="$(basename "$f")"
  [[ -n "${used[$base]:-}" ]] || fail "tests/pretty/$base is not used by any case"
done

if [[ $failed -eq 0 ]]; then
  echo "check_pretty: $runs golden cases and the other checks passed"
fi
exit "$failed"
