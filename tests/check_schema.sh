#!/usr/bin/env bash
# Validates real lines against docs/log-line.schema.json (JSON Schema 2020-12)
# and checks what a schema cannot say: the key order of the contract and that
# no key repeats. The lines come from the demo service, run with every level,
# the caller key on, and a small maximum line so that cut lines are covered.
#
# ctest: check_schema BUILD_DIR SOURCE_DIR. Needs Debian's python3 with
# python3-jsonschema (scripts/test installs both).
set -euo pipefail

build="$(cd "${1:?usage: check_schema.sh BUILD_DIR SOURCE_DIR}" && pwd)"
src="$(cd "${2:?usage: check_schema.sh BUILD_DIR SOURCE_DIR}" && pwd)"
demo="$build/examples/demo"
[[ -x "$demo" ]] || { echo "check_schema: demo not built"; exit 77; }

# Debian's interpreter, where python3-jsonschema lives, whatever else is on
# the PATH.
py=/usr/bin/python3
if ! "$py" -c 'import jsonschema' 2>/dev/null; then
  echo "check_schema: python3-jsonschema is not installed"
  exit 1
fi

while read -r var; do unset "$var"; done < <(compgen -e | grep '^TRAIL_' || true)
work="$build/check_schema"
rm -rf "$work"
mkdir -p "$work"
TRAIL_LEVEL=trace TRAIL_CALLER=1 "$demo" >"$work/lines"
TRAIL_LEVEL=trace "$demo" >>"$work/lines"
TRAIL_ASYNC=1 "$demo" >>"$work/lines"
# A long user agent forces a cut at 2048 bytes.
TRAIL_MAX_LINE=2048 "$demo" --long >>"$work/lines"

"$py" - "$src/docs/log-line.schema.json" "$work/lines" <<'PY'
import json, sys, jsonschema

schema = json.load(open(sys.argv[1]))
jsonschema.Draft202012Validator.check_schema(schema)
validator = jsonschema.Draft202012Validator(schema)
order = ["timestamp", "level", "logger", "message", "service", "request_id",
         "user_id", "trace_id", "span_id", "caller"]

def pairs(kv):
    keys = [k for k, _ in kv]
    if len(keys) != len(set(keys)):
        raise ValueError("duplicate key in %r" % keys)
    return kv

n = truncated = 0
for raw in open(sys.argv[2], "rb"):
    n += 1
    assert raw.endswith(b"\n") and raw.count(b"\n") == 1, raw
    kv = json.loads(raw, object_pairs_hook=pairs)
    keys = [k for k, _ in kv]
    line = dict(kv)
    validator.validate(line)
    contract = [k for k in keys if k in order]
    assert contract == [k for k in order if k in keys], keys
    assert keys[:len(contract)] == contract, keys
    if "truncated" in keys:
        assert keys[-1] == "truncated", keys
        truncated += 1
assert n > 40, n
assert truncated >= 1, "no cut line was produced"
print("check_schema: %d lines valid, %d cut" % (n, truncated))
PY
