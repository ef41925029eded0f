#!/usr/bin/env python3
"""Checks one output file of the benchmark workload (docs/performance.md).

    check_output.py PATH N [--threads T] [--dropped X] [--contract-order]

The file must hold exactly N - X lines (X: what a lossy program said on
stderr that it dropped), each one JSON object on one line with exactly the
13 keys of the workload and their values, a timestamp in RFC 3339 UTC with
3 to 9 decimals and "Z", and duration_ms taking its 100 values. A lossless
file must hold each duration_ms value exactly as often as the T threads
logged it. --contract-order also requires trail's key order.

Only the standard library: the machine's python3 is enough. Exit status 0
when the file passes, 1 when it does not; one line of findings on stdout.
"""

import argparse
import collections
import json
import re
import sys

CONTRACT_ORDER = (
    "timestamp", "level", "logger", "message", "service", "request_id",
    "user_id", "trace_id", "span_id", "method", "path", "status",
    "duration_ms",
)

FIXED = {
    "level": "info",
    "logger": "orders",
    "message": "request completed",
    "service": "orders-api",
    "request_id": "3f2b8c1e-6a4d-4f7e-9b1a-0c5d2e7f8a91",
    "user_id": "user-4711",
    "trace_id": "4bf92f3577b34da6a3ce929d0e0e4736",
    "span_id": "00f067aa0ba902b7",
    "method": "GET",
    "path": "/api/orders/42",
}

TIMESTAMP = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3,9}Z$")
DURATION_TEXT = re.compile(rb'"duration_ms":([^,}]*)')


def duration(i):
    """duration_ms of a thread's i-th event, computed as the programs do."""
    return 12.5 + (i % 100) / 100.0


def expected_durations(n, threads):
    per = n // threads
    counts = collections.Counter()
    full, rest = divmod(per, 100)
    for k in range(100):
        counts[duration(k)] = (full + (1 if k < rest else 0)) * threads
    return +counts


def is_shortest(text):
    """True when text is the shortest decimal that reads back to its value."""
    r = repr(float(text))
    return text == r or (r.endswith(".0") and text == r[:-2])


class Problems:
    """Collects findings, keeping the first few examples of each kind."""

    def __init__(self):
        self.counts = collections.Counter()
        self.first = {}

    def add(self, kind, lineno, detail=""):
        self.counts[kind] += 1
        where = "line %d" % lineno if lineno else "the file"
        self.first.setdefault(kind, where + detail)

    def __bool__(self):
        return bool(self.counts)

    def summary(self):
        return "; ".join("%s: %d (first: %s)" % (k, n, self.first[k])
                         for k, n in sorted(self.counts.items()))


def pairs_hook(pairs):
    keys = [k for k, _ in pairs]
    obj = dict(pairs)
    if len(obj) != len(keys):
        obj["\0duplicate"] = True
    obj["\0order"] = keys
    return obj


def check_file(path, n, threads=1, dropped=0, contract_order=False):
    """Returns (ok, one-line report, dict of facts)."""
    problems = Problems()
    seen = collections.Counter()
    non_shortest = 0
    lines = 0
    with open(path, "rb") as f:
        data = f.read()
    if data and not data.endswith(b"\n"):
        problems.add("no final newline", data.count(b"\n") + 1)
    body = data[:-1] if data.endswith(b"\n") else data
    records = body.split(b"\n") if body else []
    allowed = set(FIXED) | {"timestamp", "status", "duration_ms"}
    for lineno, raw in enumerate(records, 1):
        lines += 1
        try:
            obj = json.loads(raw, object_pairs_hook=pairs_hook)
        except (ValueError, UnicodeDecodeError) as e:
            problems.add("not JSON", lineno, ": %s" % e)
            continue
        if not isinstance(obj, dict):
            problems.add("not an object", lineno)
            continue
        order = obj.pop("\0order")
        if obj.pop("\0duplicate", False):
            problems.add("duplicate key", lineno)
        if set(obj) != allowed:
            missing = sorted(allowed - set(obj))
            extra = sorted(set(obj) - allowed)
            problems.add("wrong keys", lineno,
                         ": missing %s, extra %s" % (missing, extra))
            continue
        if contract_order and tuple(order) != CONTRACT_ORDER:
            problems.add("key order", lineno, ": %s" % ",".join(order))
        for key, want in FIXED.items():
            if obj[key] != want:
                problems.add("wrong " + key, lineno, ": %r" % (obj[key],))
        ts = obj["timestamp"]
        if not isinstance(ts, str) or not TIMESTAMP.match(ts):
            problems.add("bad timestamp", lineno, ": %r" % (ts,))
        status = obj["status"]
        if type(status) is not int or status != 200:
            problems.add("wrong status", lineno, ": %r" % (status,))
        d = obj["duration_ms"]
        if type(d) not in (int, float):
            problems.add("duration_ms not a number", lineno, ": %r" % (d,))
            continue
        seen[float(d)] += 1
        m = DURATION_TEXT.search(raw)
        if m and not is_shortest(m.group(1).decode("ascii", "replace")):
            non_shortest += 1

    want_lines = n - dropped
    if lines != want_lines:
        problems.add("line count", lines,
                     ": %d lines, want %d" % (lines, want_lines))
    expected = expected_durations(n, threads)
    unexpected = set(seen) - set(expected)
    if unexpected:
        problems.add("unexpected duration_ms", 0,
                     ": %s" % sorted(unexpected)[:3])
    if dropped == 0:
        if seen != expected and not unexpected:
            problems.add("duration_ms counts", 0,
                         ": some events lost or repeated")
    elif lines >= 100 and len(seen) < 100:
        problems.add("duration_ms values", 0,
                     ": %d distinct, want 100" % len(seen))
    if contract_order and non_shortest:
        problems.add("duration_ms not shortest", 0, ": %d lines" % non_shortest)

    facts = {"lines": lines, "distinct_durations": len(seen),
             "non_shortest_doubles": non_shortest}
    if problems:
        return False, "FAILED: " + problems.summary(), facts
    report = "ok: %d lines" % lines
    if dropped:
        report += " (%d of %d dropped, as the program reported)" % (dropped, n)
    if non_shortest:
        report += "; duration_ms not the shortest text in %d lines" % non_shortest
    return True, report, facts


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("path")
    ap.add_argument("n", type=int, help="events logged in total")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--dropped", type=int, default=0,
                    help="events the program reported as dropped")
    ap.add_argument("--contract-order", action="store_true",
                    help="require trail's key order and shortest doubles")
    args = ap.parse_args()
    ok, report, _ = check_file(args.path, args.n, args.threads, args.dropped,
                               args.contract_order)
    print("%s: %s" % (args.path, report))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
