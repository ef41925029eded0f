#!/usr/bin/env python3
"""Checks what a program of tests/external wrote to stdout.

    check_lines.py KIND FILE     KIND: app (app.c), json (json.c),
                                 features (features.c),
                                 adapters (adapters/adapters.c)

Each line must be one JSON object with the contract's keys in order; exit
status 1 with the reason when the output is not what KIND's program writes.
Used by tests/check_install.sh and tests/check_package.sh.
"""
import json
import re
import sys

HEAD = ["timestamp", "level", "logger", "message", "service"]
TIMESTAMP = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z")
HEX16 = re.compile(r"[0-9a-f]{16}")


def parse(path):
    with open(path, encoding="utf-8") as f:
        text = f.read()
    lines = text.splitlines()
    objs = []
    for line in lines:
        o = json.loads(line)
        assert isinstance(o, dict), line
        assert list(o)[: len(HEAD)] == HEAD, list(o)
        assert TIMESTAMP.fullmatch(o["timestamp"]), o
        assert isinstance(o["logger"], str), o
        objs.append(o)
    return objs


def check_app(objs):
    assert len(objs) == 1, f"{len(objs)} lines, not 1"
    o = objs[0]
    assert list(o) == HEAD + ["k", "n"], list(o)
    assert o["level"] == "info" and o["message"] == "hello", o
    assert o["service"] == "external-app", o
    assert o["k"] == "v" and o["n"] == 42 and type(o["n"]) is int, o


def check_json(objs):
    assert len(objs) == 1, f"{len(objs)} lines, not 1"
    o = objs[0]
    assert list(o) == HEAD + ["j"], list(o)
    assert o["level"] == "info" and o["message"] == "json", o
    assert o["service"] == "external-json", o
    assert o["j"] == {"a": 1, "b": [True, None]}, o


def check_features(objs):
    # The rotating file's lines reach standard output too, in order.
    rotated = [o for o in objs if o["logger"] == "rotated"]
    assert [o["i"] for o in rotated] == list(range(30)), rotated
    objs = [o for o in objs if o["logger"] != "rotated"]
    assert len(objs) == 3, f"{len(objs)} lines, not 3"
    warn, kept, err = objs
    assert warn["message"] == "order 7 failed" and warn["level"] == "warn", warn
    assert list(warn)[len(HEAD):] == ["version", "reason", "who", "error",
                                      "errno", "took_ms"], list(warn)
    assert warn["version"] == "1.4.2" and warn["who"] == "user-3", warn
    assert warn["error"] == "No such file or directory", warn
    assert warn["errno"] == 2 and isinstance(warn["took_ms"], float), warn
    assert warn["took_ms"] >= 0, warn
    assert kept["message"] == "kept, then written", kept
    assert kept["level"] == "debug" and kept["buffered"] is True, kept
    assert list(kept)[-1] == "buffered" and kept["step"] == 1, list(kept)
    assert err["message"] == "request failed" and "buffered" not in err, err
    assert kept["request_id"] == err["request_id"], objs
    assert kept["timestamp"] <= err["timestamp"], objs


def check_adapters(objs):
    assert len(objs) == 2, f"{len(objs)} lines, not 2"
    call, mine = objs
    assert call["service"] == mine["service"] == "external-adapters", objs
    # The outgoing call's line: its context, its span, the error it ended on.
    assert call["logger"] == "http.client" and call["level"] == "error", call
    assert call["message"] == "outgoing request completed", call
    assert HEX16.fullmatch(call["call_span_id"]), call
    assert isinstance(call.get("error"), str) and call["error"], call
    assert re.fullmatch(r"[0-9a-f]{32}", call.get("trace_id", "")), call
    assert mine["message"] == "adapters" and mine["level"] == "info", mine
    assert mine["civetweb"] == 0 and mine["hooked"] is True, mine
    assert isinstance(mine["mg_version"], str) and mine["mg_version"], mine
    assert mine["curl"] == 0 and mine["span_len"] == 16, mine


def main():
    kind, path = sys.argv[1], sys.argv[2]
    check = {"app": check_app, "json": check_json, "adapters": check_adapters,
             "features": check_features}
    try:
        check[kind](parse(path))
    except (AssertionError, ValueError, KeyError) as e:
        print(f"{path}: not the output of the {kind} program: {e}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
