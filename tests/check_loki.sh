#!/usr/bin/env bash
# The deploy kit against a real Loki and Promtail: tests/deploy/loki_e2e.py
# starts Loki (the quick start's configuration of docs/deploy/README.md on
# 127.0.0.1 and free ports: filesystem storage, schema v13; the ruler with
# docs/deploy/loki-alerts.yaml) and Promtail with
# docs/deploy/promtail-file.yaml changed only where docs/deploy/README.md says
# to; runs the example services under a fixed mix of requests; and compares
# every line's arrival (time, labels, structured metadata), every query of
# docs/loki.md and docs/deploy/README.md, every dashboard target and every
# alert expression with what the services' own lines call for, and the
# ruler's alerts with the same. A second Loki, refusing structured metadata,
# and a second Promtail, its positions file in a directory that does not
# exist, check what docs/deploy/README.md says of both.
#
# ctest: check_loki BUILD_DIR SOURCE_DIR. Finds the binaries in TRAIL_LOKI and
# TRAIL_PROMTAIL, or as loki and promtail on PATH; skipped (77), with the
# reason, without them or without the example services (example_orders_mhd,
# example_gateway). Needs python3 with the yaml module (Debian: python3-yaml).
set -euo pipefail

build="$(cd "${1:?usage: check_loki.sh BUILD_DIR SOURCE_DIR}" && pwd)"
src="$(cd "${2:?usage: check_loki.sh BUILD_DIR SOURCE_DIR}" && pwd)"

skip() {
  echo "check_loki: skipped: $*"
  exit 77
}

find_tool() { # find_tool NAME VARIABLE
  local given="${!2:-}"
  if [[ -n "$given" ]]; then
    [[ -x "$given" ]] || { echo "check_loki: $2=$given is not an executable" >&2; exit 1; }
    echo "$given"
  else
    command -v "$1" || true
  fi
}
loki="$(find_tool loki TRAIL_LOKI)"
promtail="$(find_tool promtail TRAIL_PROMTAIL)"
[[ -n "$loki" ]] || skip "no loki on PATH and TRAIL_LOKI is not set"
[[ -n "$promtail" ]] || skip "no promtail on PATH and TRAIL_PROMTAIL is not set"
for prog in orders_mhd gateway; do
  [[ -x "$build/examples/$prog" ]] ||
    skip "the example $prog was not built (-DTRAIL_BUILD_EXAMPLES=ON, target example_$prog)"
done

py=/usr/bin/python3
[[ -x "$py" ]] || py="$(command -v python3 || true)"
[[ -n "$py" ]] || { echo "check_loki: python3 is not installed" >&2; exit 1; }
"$py" -c 'import yaml' 2>/dev/null ||
  { echo "check_loki: $py has no yaml module: install Debian's python3-yaml" >&2; exit 1; }

echo "check_loki: $("$loki" -version 2>&1 | head -n 1); $("$promtail" -version 2>&1 | head -n 1)"
exec "$py" "$src/tests/deploy/loki_e2e.py" "$build" "$src" "$loki" "$promtail"
