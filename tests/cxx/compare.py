"""Compares the JSON lines of the C++ build of tests/cxx/plain.c with those of
its C build, field by field and in order; only "timestamp" may differ.
Also checks that the last line ("done") counts the lines before it.

usage: compare.py C_LINES CXX_LINES"""
import json
import sys

IGNORED = ("timestamp",)


def load(path):
    with open(path, encoding="utf-8") as f:
        lines = [json.loads(line) for line in f]
    for line in lines:
        if not isinstance(line, dict):
            sys.exit(f"{path}: a line is not a JSON object")
    return lines


def pairs(obj):
    return [(k, v) for k, v in obj.items() if k not in IGNORED]


def main():
    c_lines, cxx_lines = load(sys.argv[1]), load(sys.argv[2])
    if not c_lines or len(c_lines) != len(cxx_lines):
        sys.exit(f"{len(c_lines)} C lines but {len(cxx_lines)} C++ lines")
    for i, (c, cxx) in enumerate(zip(c_lines, cxx_lines), 1):
        if pairs(c) != pairs(cxx):
            sys.exit(f"line {i} differs:\n  C:   {c}\n  C++: {cxx}")
        if "timestamp" not in cxx:
            sys.exit(f"line {i} of C++ has no timestamp")
    last = cxx_lines[-1]
    if last.get("message") != "done" or last.get("lines") != len(cxx_lines) - 1:
        sys.exit(f"the last line does not count {len(cxx_lines) - 1}: {last}")
    print(f"{len(cxx_lines)} lines equal")


main()
