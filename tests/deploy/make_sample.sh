#!/usr/bin/env bash
# Makes the sample of trail lines that docs/loki.md shows its queries on, and
# that tests/check_deploy.sh recomputes the documented outputs from. It was
# run once and its result committed as tests/deploy/sample.log; it is not part
# of the test suite (durations and generated ids differ from run to run, so
# the committed sample is the fixed one).
#
#   tests/deploy/make_sample.sh BUILD_DIR OUT_DIR
#
# BUILD_DIR must hold the example services (cmake --build BUILD_DIR --target
# example_orders_mhd example_gateway). Three services run, each writing its
# own file in OUT_DIR, as Promtail would tail them:
#
#   gateway.log        the gateway example in front of orders-api
#   orders-api.log     the orders example (libmicrohttpd), TRAIL_SERVICE=orders-api
#   orders-canary.log  a second orders instance under a burst, with async
#                      writing in drop mode, a tiny queue, a stalled reader and
#                      flood control, so that it writes the drop report
#                      ("dropped") and the sampling report ("suppressed")
#
# and OUT_DIR/sample.log is the three merged in timestamp order. The requests
# are fixed: the first carries the X-Request-ID and traceparent of the line
# contract's example (docs/log-format.md), so its ids are known in advance.
set -euo pipefail

build="$(cd "${1:?usage: make_sample.sh BUILD_DIR OUT_DIR}" && pwd)"
mkdir -p "${2:?usage: make_sample.sh BUILD_DIR OUT_DIR}"
out="$(cd "$2" && pwd)"
ex="$build/examples"
py=/usr/bin/python3
for prog in orders_mhd gateway; do
  [[ -x "$ex/$prog" ]] || { echo "make_sample: $ex/$prog was not built" >&2; exit 1; }
done
command -v curl >/dev/null || { echo "make_sample: curl is needed" >&2; exit 1; }

rm -f "$out/gateway.log" "$out/orders-api.log" "$out/orders-canary.log" \
  "$out/sample.log" "$out/release"
pids=()
reader=
cleanup() {
  local p
  for p in "${pids[@]}" $reader; do kill "$p" 2>/dev/null || true; done
}
trap cleanup EXIT

# The port a service's "listening" line names.
listening_port() {
  local i port
  for i in $(seq 200); do
    port=$(sed -n 's/.*"message":"listening".*"port":\([0-9]*\).*/\1/p' "$1" | head -n 1)
    [[ -n "$port" ]] && { echo "$port"; return 0; }
    sleep 0.05
  done
  echo "make_sample: no listening line in $1" >&2
  return 1
}

unset TRAIL_LEVEL TRAIL_OUTPUT TRAIL_ASYNC TRAIL_ASYNC_OVERFLOW TRAIL_ASYNC_QUEUE \
  TRAIL_CALLER TRAIL_MAX_LINE TRAIL_REDACT TRAIL_SAMPLING TRAIL_FORMAT

TRAIL_SERVICE=orders-api "$ex/orders_mhd" --port 0 >"$out/orders-api.log" &
pids+=($!)
oport=$(listening_port "$out/orders-api.log")
TRAIL_SERVICE=gateway "$ex/gateway" --port 0 --downstream "http://127.0.0.1:$oport" \
  >"$out/gateway.log" &
pids+=($!)
gport=$(listening_port "$out/gateway.log")
gw="http://127.0.0.1:$gport"
orders="http://127.0.0.1:$oport"

call() { curl -s -o /dev/null --max-time 10 "$@"; }
json=(-H 'Content-Type: application/json')

# 1. The contract's request, through the gateway: one request, one trace,
#    two services.
call -A curl/7.88.1 \
  -H 'X-Request-ID: 3f2b8c1e-6a4d-4f7e-9b1a-0c5d2e7f8a91' \
  -H 'traceparent: 00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01' \
  -H 'X-User-ID: user-4711' "$gw/api/orders/42"
# 2. An order created, straight at orders-api.
call -A orders-web/2.3 -H 'X-User-ID: user-4711' "${json[@]}" \
  --data '{"quantity":2,"sku":"A-991"}' "$orders/api/orders"
# 3. Not found, and 4. a database timeout (503), for user-0815 via the gateway.
call -A curl/7.88.1 -H 'X-User-ID: user-0815' "$gw/api/orders/999"
call -A curl/7.88.1 -H 'X-User-ID: user-0815' "$gw/api/orders/7"
# 5. A body that is not JSON, straight at orders-api.
call -A orders-web/2.3 -H 'X-User-ID: user-0815' "${json[@]}" \
  --data '{"quantity": ' "$orders/api/orders"
# 6. Latencies to measure: waits of 5 to 600 ms (600 is over the examples'
#    slow_ms of 500, so both access lines of that request are warn).
for ms in 5 20 40 80 120 250 600; do
  call -A curl/7.88.1 -H 'X-User-ID: user-4711' "$gw/api/orders/$((100 + ms))?sleep_ms=$ms"
done
# 7. Another 503, straight at orders-api, without a user.
call -A curl/7.88.1 "$orders/api/orders/7"

# The canary: its standard output is a pipe of one page that nobody reads
# until the burst is over, so the async queue (9 KiB, lines of at most 2 KiB)
# fills and events are dropped; flood control lets 20 events a second of each
# logger and message through, then every 5th.
cport=$("$py" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
rm -f "$out/canary.fifo"
mkfifo "$out/canary.fifo"
"$py" -c '
import fcntl, os, sys, time
fd = os.open(sys.argv[3], os.O_RDONLY)
fcntl.fcntl(fd, getattr(fcntl, "F_SETPIPE_SZ", 1031), 4096)
while not os.path.exists(sys.argv[2]):
    time.sleep(0.01)
with open(sys.argv[1], "wb") as f:
    while True:
        b = os.read(fd, 65536)
        if not b:
            break
        f.write(b)
        f.flush()
' "$out/orders-canary.log" "$out/release" "$out/canary.fifo" &
reader=$!
TRAIL_SERVICE=orders-canary TRAIL_ASYNC=1 TRAIL_ASYNC_OVERFLOW=drop \
  TRAIL_ASYNC_QUEUE=9k TRAIL_MAX_LINE=2048 TRAIL_SAMPLING=20,5 \
  "$ex/orders_mhd" --port "$cport" >"$out/canary.fifo" &
pids+=($!)
canary="http://127.0.0.1:$cport"
for i in $(seq 200); do
  call "$canary/healthz" && break
  sleep 0.05
done
# Phase 1, the reader stalled: a burst the queue cannot hold, so events are
# dropped; the drop report follows once the reader reads again.
burst=()
for i in $(seq 1 30); do
  call -A loadgen/1.0 "$canary/api/orders/$((1000 + i))" &
  burst+=($!)
done
for p in "${burst[@]}"; do wait "$p" || true; done
touch "$out/release"
sleep 0.3
# Phase 2, the reader reading: a burst over flood control's 20 a second, so
# events are held back and reported as suppressed.
burst=()
for i in $(seq 1 60); do
  call -A loadgen/1.0 "$canary/api/orders/$((1100 + i))" &
  burst+=($!)
done
for p in "${burst[@]}"; do wait "$p" || true; done
sleep 0.3

# Stop all three (SIGTERM: each writes its stopping lines; the canary's
# shutdown writes what flood control still held and drains its queue).
for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
pids=()
wait "$reader" || true
rm -f "$out/release" "$out/canary.fifo"

# Merge in timestamp order (stable: a file's own order is kept on ties).
"$py" - "$out/sample.log" "$out/gateway.log" "$out/orders-api.log" "$out/orders-canary.log" <<'EOF'
import json, sys
rows = []
for n, path in enumerate(sys.argv[2:]):
    with open(path, encoding="utf-8") as f:
        for i, line in enumerate(f):
            rows.append((json.loads(line)["timestamp"], n, i, line))
rows.sort()
with open(sys.argv[1], "w", encoding="utf-8") as f:
    f.writelines(r[3] for r in rows)
EOF
wc -l "$out"/*.log
