#!/usr/bin/env python3
"""Instructions per request of trail's HTTP adapters (docs/performance.md).

    http_count.py --bin DIR [--servers mhd,civetweb,evhttp,fcgi,ulfius]
                  [--duration 5] [--connections 4] [--log-dir DIR]
                  [--markdown FILE] [--keep DIR]

The requests/s of bench/http_run.py move by 20% from run to run on a
shared machine, more than what an adapter change saves. This counts
instead: each server (bench/http_SERVER.c, FastCGI behind a real nginx) in
the three modes of http_run.py runs under valgrind's callgrind with its
instrumentation off; after the check of one response and a second of load,
it is turned on (callgrind_control -i on) for --duration seconds of
"wrk -t1 -cC", then off, and the server stopped. The instructions executed
in user space by every thread of the server, the async writer included,
divided by the requests wrk completed, are the same from run to run to
about 1%. --keep DIR keeps callgrind's files (DIR/SERVER.MODE.PID), for
callgrind_annotate to say where the instructions go. They leave out the kernel (the writer's writev(2), the socket
calls): the part that trail's and the servers' own code decides.
"""

import argparse
import datetime
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import time

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import http_run  # noqa: E402  (the servers, nginx, wrk: started as there)

SUMMARY = re.compile(r"^(?:summary|totals):\s+(\d+)", re.M)


def control(pid, state):
    """Turns the instrumentation of the callgrind'ed server on or off."""
    p = subprocess.run(["callgrind_control", "-i", state, str(pid)],
                       stdin=subprocess.DEVNULL, capture_output=True,
                       text=True, check=False)
    if p.returncode != 0:
        raise RuntimeError("callgrind_control -i %s %d: %s" %
                           (state, pid, p.stdout + p.stderr))


def instructions(out_dir):
    """The instructions of the run: callgrind writes one file per process
    at its exit, a summary line in each."""
    total = 0
    for name in os.listdir(out_dir):
        with open(os.path.join(out_dir, name)) as f:
            # "summary:" can say 0 where instrumentation started off:
            # "totals:" then has the count
            total += max((int(n) for n in SUMMARY.findall(f.read())),
                         default=0)
    if total == 0:
        raise RuntimeError("callgrind wrote no summary in %s" % out_dir)
    return total


def count_once(server, mode, args, scratch):
    path = os.path.join(args.bin, "http_" + server)
    log_path = os.path.join(args.log_dir, "trail-http-count.%d.%s.log" %
                            (os.getpid(), mode.replace("+", "-")))
    out_dir = tempfile.mkdtemp(prefix="callgrind.", dir=scratch)
    wrap = ["valgrind", "--tool=callgrind", "--instr-atstart=no",
            "--callgrind-out-file=%s/callgrind.out.%%p" % out_dir]
    port = http_run.free_port()
    srv = ng = None
    ng_dir = None
    try:
        srv = http_run.start_server(path, mode, port, log_path, wrap)
        http_port = port
        if server == "fcgi":
            ng, http_port, ng_dir = http_run.start_nginx(args.nginx, port,
                                                         scratch)
        http_run.check_response(http_port, mode)
        http_run.wrk(http_port, 1, args.connections)
        control(srv.pid, "on")
        res = http_run.wrk(http_port, args.duration, args.connections)
        control(srv.pid, "off")
        http_run.stop(ng, "nginx")
        http_run.stop(srv, path)
        if srv.returncode != 0:
            raise RuntimeError("%s %s exited with %d" %
                               (path, mode, srv.returncode))
        res["instructions"] = instructions(out_dir)
        res["per_request"] = res["instructions"] / max(res["requests"], 1)
        if args.keep:
            for name in os.listdir(out_dir):
                shutil.move(os.path.join(out_dir, name), os.path.join(
                    args.keep, "%s.%s.%s" % (server, mode.replace("+", "-"),
                                             name.rsplit(".", 1)[-1])))
        return res
    finally:
        http_run.stop(ng, "nginx")
        http_run.stop(srv, path)
        if ng_dir:
            shutil.rmtree(ng_dir, ignore_errors=True)
        shutil.rmtree(out_dir, ignore_errors=True)
        if os.path.exists(log_path):
            os.remove(log_path)


def table(results, args):
    head = ("**HTTP: user-space instructions per request, GET %s, wrk -t1 "
            "-c%d -d%ds, each server under callgrind.** trail: the adapter "
            "around the same handler; + line: the handler also logs one "
            "line per request." % (http_run.ROUTE, args.connections,
                                   args.duration))
    rows = ["| server | plain | trail | trail adds | + line | the line adds "
            "| requests counted plain / trail / + line |",
            "| --- | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for server, r in results.items():
        name = http_run.NAMES[server]
        if "error" in r:
            rows.append("| %s | %s |  |  |  |  |  |" % (name, r["error"]))
            continue
        p, t, l = (r[m]["per_request"] for m in http_run.MODES)
        rows.append("| %s | %s | %s | %s (%.0f%%) | %s | %s | %s |" % (
            name, "{:,.0f}".format(p), "{:,.0f}".format(t),
            "{:+,.0f}".format(t - p), (t - p) / p * 100, "{:,.0f}".format(l),
            "{:+,.0f}".format(l - t),
            " / ".join("{:,}".format(r[m]["requests"])
                       for m in http_run.MODES)))
    return head + "\n\n" + "\n".join(rows) + "\n"


def main():
    ap = argparse.ArgumentParser(
        description="Instructions per request of trail's HTTP adapters.")
    ap.add_argument("--bin", required=True, help="directory of the servers")
    ap.add_argument("--servers", default=",".join(http_run.SERVERS))
    ap.add_argument("--duration", type=int, default=5,
                    help="seconds of load counted per mode")
    ap.add_argument("--connections", type=int, default=4)
    shm = "/dev/shm"
    ap.add_argument("--log-dir", default=shm if os.access(shm, os.W_OK)
                    else tempfile.gettempdir())
    ap.add_argument("--markdown", help="also write the table here")
    ap.add_argument("--keep", help="keep callgrind's files in this directory")
    args = ap.parse_args()
    if args.keep:
        os.makedirs(args.keep, exist_ok=True)
    if args.duration < 1 or args.connections < 1:
        ap.error("--duration >= 1, --connections >= 1")
    for tool in ("wrk", "valgrind", "callgrind_control"):
        if shutil.which(tool) is None:
            http_run.log("http_count.py: %s is not installed" % tool)
            return 2
    servers = []
    for s in [s.strip() for s in args.servers.split(",") if s.strip()]:
        if s not in http_run.SERVERS:
            ap.error("unknown server %s" % s)
        if not os.access(os.path.join(args.bin, "http_" + s), os.X_OK):
            http_run.log("http_count.py: http_%s is not built, left out" % s)
        elif s == "fcgi" and http_run.nginx_binary() is None:
            http_run.log("http_count.py: nginx not found, fcgi left out")
        else:
            servers.append(s)
    if not servers:
        return 2
    args.nginx = http_run.nginx_binary()
    http_run.START_BOUND_S = 120  # valgrind starts slowly
    started = time.time()
    results = {}
    with tempfile.TemporaryDirectory(prefix="trail-http-count.") as scratch:
        for s in servers:
            try:
                results[s] = {}
                for m in http_run.MODES:
                    r = count_once(s, m, args, scratch)
                    http_run.log("  %-8s %-10s %7d requests %9.0f "
                                 "instructions/request" %
                                 (s, m, r["requests"], r["per_request"]))
                    results[s][m] = r
            except (RuntimeError, OSError) as e:
                http_run.log("http_count.py: %s: %s" % (s, e))
                results[s] = {"error": str(e).splitlines()[0][:120]}
    text = table(results, args)
    when = datetime.datetime.now(datetime.timezone.utc)
    print()
    print(text)
    print("%s, %s; %s; %.0f s" % (when.strftime("%Y-%m-%d %H:%M UTC"),
                                  platform.machine(), platform.release(),
                                  time.time() - started))
    if args.markdown:
        with open(args.markdown, "w") as f:
            f.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
