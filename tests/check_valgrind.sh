#!/usr/bin/env bash
# valgrind memcheck of the example services serving real requests: the
# orders services and the gateway start under valgrind, answer requests
# (through the gateway too, so libcurl's path is covered), stop on
# SIGTERM, and must end with status 0, no memory error and no leak.
# The simulated demo runs under it as well.
#
# ctest: check_valgrind BUILD_DIR SOURCE_DIR. Skipped (77) in sanitizer
# builds (their runtimes and valgrind exclude each other) and when valgrind
# or curl is missing.
set -euo pipefail

build="$(cd "${1:?usage: check_valgrind.sh BUILD_DIR SOURCE_DIR}" && pwd)"
[[ -z "${TRAIL_SANITIZE:-}" ]] || { echo "check_valgrind: sanitizer build, skipped"; exit 77; }
command -v valgrind >/dev/null || { echo "check_valgrind: no valgrind"; exit 77; }
command -v curl >/dev/null || { echo "check_valgrind: no curl"; exit 77; }
while read -r var; do unset "$var"; done < <(compgen -e | grep '^TRAIL_' || true)

work="$build/check_valgrind"
rm -rf "$work"
mkdir -p "$work"
vg=(valgrind --quiet --error-exitcode=99 --leak-check=full
  --show-leak-kinds=definite,indirect,possible --errors-for-leak-kinds=definite,indirect,possible
  --track-fds=no)
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill -KILL "$pid" 2>/dev/null || true; done
}
trap cleanup EXIT

failed=0
start() { # name, args...: starts it under valgrind, sets $port
  local name="$1"
  shift
  "${vg[@]}" --log-file="$work/$name.vg" "$build/examples/$name" --port 0 "$@" \
    >"$work/$name.out" 2>"$work/$name.err" &
  pids+=("$!")
  port=""
  for _ in $(seq 1 600); do
    port="$(grep -m1 '"message":"listening"' "$work/$name.out" 2>/dev/null |
      sed -n 's/.*"port":\([0-9]*\).*/\1/p' || true)"
    [[ -n "$port" ]] && return 0
    sleep 0.1
  done
  echo "check_valgrind: $name did not start"
  cat "$work/$name.err" "$work/$name.vg"
  exit 1
}

get() { curl -s -o /dev/null -w '%{http_code}' --max-time 30 "$@" || true; }

"${vg[@]}" --log-file="$work/demo.vg" "$build/examples/demo" >"$work/demo.out" || {
  echo "check_valgrind: demo failed under valgrind"
  cat "$work/demo.vg"
  failed=1
}

servers=()
for s in orders_evhttp orders_mhd orders_civetweb orders_ulfius; do
  [[ -x "$build/examples/$s" ]] && servers+=("$s")
done
[[ ${#servers[@]} -gt 0 ]] || { echo "check_valgrind: no example service built"; exit 77; }

for s in "${servers[@]}"; do
  pids=()
  start "$s"
  sport="$port"
  gwpid=""
  if [[ -x "$build/examples/gateway" ]]; then
    start gateway --downstream "http://127.0.0.1:$sport"
    gport="$port"
    gwpid="${pids[-1]}"
  fi
  codes=""
  codes+="$(get -H 'traceparent: 00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01' \
    "http://127.0.0.1:$sport/api/orders/42") "
  codes+="$(get -d '{"sku":"A-1","quantity":1}' -H 'Content-Type: application/json' \
    "http://127.0.0.1:$sport/api/orders") "
  codes+="$(get -d '{"quantity":' "http://127.0.0.1:$sport/api/orders") "
  codes+="$(get "http://127.0.0.1:$sport/api/orders/999") "
  codes+="$(get "http://127.0.0.1:$sport/metrics") "
  if [[ -n "$gwpid" ]]; then
    codes+="$(get -H 'X-Request-ID: vg-1' "http://127.0.0.1:$gport/api/orders/7") "
    codes+="$(get "http://127.0.0.1:$gport/healthz") "
  fi
  echo "check_valgrind: $s answered: $codes"
  for pid in "${pids[@]}"; do kill -TERM "$pid"; done
  for i in "${!pids[@]}"; do
    name="$s"
    [[ -n "$gwpid" && "${pids[$i]}" == "$gwpid" ]] && name=gateway
    if ! wait "${pids[$i]}"; then
      echo "check_valgrind: $name (with $s) failed under valgrind:"
      cat "$work/$name.vg" "$work/$name.err"
      failed=1
    fi
  done
  case "$codes" in
    "200 201 400 404 200 "*) ;;
    *) echo "check_valgrind: unexpected answers from $s: $codes"; failed=1 ;;
  esac
done
pids=()
[[ $failed -eq 0 ]] && echo "check_valgrind: ${servers[*]} and the gateway clean under memcheck"
exit $failed
