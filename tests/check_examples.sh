#!/usr/bin/env bash
# Runs the example programs that end by themselves (TRAIL_CHECKED_EXAMPLES in
# CMakeLists.txt) and checks what they print: exit status 0, at least one
# line, and every stdout line one JSON object that starts with the keys
# timestamp, level, logger, message, service, in that order.
#
# ctest: check_examples BUILD_DIR SOURCE_DIR, with TRAIL_TEST_EXAMPLES_DIR and
# TRAIL_CHECKED_EXAMPLES (':'-separated names) in the environment. Skipped
# (77) when none of the listed examples was built.
set -euo pipefail

build="$(cd "${1:?usage: check_examples.sh BUILD_DIR [SOURCE_DIR]}" && pwd)"
dir="${TRAIL_TEST_EXAMPLES_DIR:-$build/examples}"
IFS=: read -r -a names <<<"${TRAIL_CHECKED_EXAMPLES:-demo}"
# The examples run with trail's defaults, whatever the caller's environment.
while read -r var; do unset "$var"; done < <(compgen -e | grep '^TRAIL_' || true)

if command -v jq >/dev/null; then
  json_tool=jq
elif command -v python3 >/dev/null; then
  json_tool=python3
else
  echo "check_examples: neither jq nor python3 found to read the JSON lines"
  exit 1
fi

work="$build/check_examples"
rm -rf "$work"
mkdir -p "$work"

checked=0
failed=0
for name in "${names[@]}"; do
  prog="$dir/$name"
  if [[ ! -x "$prog" ]]; then
    echo "check_examples: $name was not built, skipped"
    continue
  fi
  checked=$((checked + 1))
  out="$work/$name.out"
  status=0
  timeout 60 "$prog" >"$out" 2>"$work/$name.err" </dev/null || status=$?
  lines="$(wc -l <"$out")"
  ok=1
  if [[ $status -ne 0 ]]; then
    echo "check_examples: $name exited with status $status"
    ok=0
  elif [[ "$lines" -eq 0 ]]; then
    echo "check_examples: $name printed nothing on stdout"
    ok=0
  elif [[ "$json_tool" == jq ]]; then
    # One JSON value per line (as many values as lines), each an object
    # whose first keys are those of the contract.
    values="$(jq -s 'length' "$out" 2>/dev/null || echo invalid)"
    if [[ "$values" != "$lines" ]] ||
      ! jq -e -s 'all(type == "object" and (keys_unsorted[0:5] ==
             ["timestamp", "level", "logger", "message", "service"]))' \
        "$out" >/dev/null; then
      ok=0
    fi
  else
    python3 - "$out" <<'EOF' || ok=0
import json, sys
with open(sys.argv[1], encoding="utf-8") as f:
    for n, line in enumerate(f, 1):
        o = json.loads(line)
        assert isinstance(o, dict), f"line {n}: not an object"
        assert list(o)[:5] == ["timestamp", "level", "logger", "message",
                               "service"], f"line {n}: keys {list(o)}"
EOF
  fi
  if [[ $ok -eq 1 ]]; then
    echo "check_examples: $name: $lines JSON lines, keys in order"
  else
    echo "--- $name stdout:"
    cat "$out"
    echo "--- $name stderr:"
    cat "$work/$name.err"
    echo "check_examples: $name FAILED"
    failed=1
  fi
done

if [[ $checked -eq 0 ]]; then
  echo "check_examples: no example to run"
  exit 77
fi
exit "$failed"
