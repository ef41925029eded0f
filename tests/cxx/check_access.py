"""Checks the lines of tests/cxx/civetweb.cpp: the handler's line and exactly
one access line, both carrying the request id the client sent.

usage: check_access.py LINES REQUEST_ID"""
import json
import sys

EXPECTED_ACCESS = {"level": "info", "logger": "http",
                   "message": "request completed", "method": "GET",
                   "path": "/hello", "status": 200, "bytes": 15,
                   "remote_addr": "127.0.0.1"}


def main():
    path, rid = sys.argv[1], sys.argv[2]
    with open(path, encoding="utf-8") as f:
        lines = [json.loads(line) for line in f]
    ours = [j for j in lines if j.get("request_id") == rid]
    access = [j for j in ours if j.get("message") == "request completed"]
    handled = [j for j in ours if j.get("message") == "handled"]
    if len(access) != 1 or len(handled) != 1:
        sys.exit(f"{len(access)} access lines, {len(handled)} handler lines "
                 f"with request_id {rid}: {lines}")
    for key, want in EXPECTED_ACCESS.items():
        if access[0].get(key) != want:
            sys.exit(f"access line {key}: {access[0].get(key)!r}, "
                     f"expected {want!r}")
    if handled[0].get("handler") != "lambda" or \
            handled[0].get("trace_id") != access[0].get("trace_id"):
        sys.exit(f"handler line: {handled[0]}")
    print("access line and handler line as expected")


main()
