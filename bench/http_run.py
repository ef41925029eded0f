#!/usr/bin/env python3
"""The cost per request of trail's HTTP adapters (docs/performance.md).

    http_run.py --bin DIR [--servers mhd,civetweb,evhttp,fcgi,ulfius]
                [--runs 3] [--duration 5] [--warmup 1] [--connections 16]
                [--log-dir DIR] [--markdown FILE] [--json FILE]

DIR holds the servers http_SERVER (bench/http_SERVER.c), each taking
"--plain|--trail [--handler-line] --port N [--log PATH]". scripts/bench
--http builds them and calls this.

Three modes per server: plain (the server and the handler alone), trail
(trail's adapter around the same handler: the goal's figure) and
trail+line (the handler also logs one line per request). They run
interleaved, the order rotated each round: every run starts a fresh server
on a free loopback port
(and, for FastCGI, a fresh nginx in front of it with a generated
configuration), checks one response, puts --warmup seconds of load on it
that are not counted, then measures "wrk -t1 -cC -dDs --latency": the
requests/s and the 99th percentile latency wrk prints. The server and nginx
are then stopped by their pids (SIGTERM). In the trail modes the log file,
one per run, must hold at least one line per measured request (the access
line; two with the handler's), and is deleted after the run.
"""

import argparse
import datetime
import http.client
import json
import os
import platform
import re
import select
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time

sys.dont_write_bytecode = True  # no __pycache__ in the source tree

SERVERS = ("mhd", "civetweb", "evhttp", "fcgi", "ulfius")
NAMES = {"mhd": "libmicrohttpd", "civetweb": "civetweb",
         "evhttp": "libevent evhttp", "fcgi": "FastCGI (libfcgi) behind nginx",
         "ulfius": "ulfius"}
# What each server does in both modes (bench/http_SERVER.c).
MODELS = {"mhd": "1 internal polling thread, epoll",
          "civetweb": "32 worker threads, tcp_nodelay",
          "evhttp": "1 event loop",
          "fcgi": "8 worker threads; nginx: 1 worker, a new FastCGI "
                  "connection per request",
          "ulfius": "MHD's internal polling thread, epoll"}
MODES = ("plain", "trail", "trail+line")
# The server's arguments and the least log lines per request, by mode.
MODE_ARGS = {"plain": ["--plain"], "trail": ["--trail"],
             "trail+line": ["--trail", "--handler-line"]}
MODE_LINES = {"plain": 0, "trail": 1, "trail+line": 2}
ROUTE = "/api/orders/42"
BODY = b'{"id":42,"status":"shipped","items":3,"total":59.9}'
SYNC = False  # --sync: trail's default writer instead of the async one
START_BOUND_S = 20  # a bound on a broken start, not a timing assumption

UNITS = {"us": 1e-3, "ms": 1.0, "s": 1e3}
LATENCY = re.compile(r"^\s*99(?:\.0+)?%\s+([\d.]+)(us|ms|s)\s*$", re.M)
RPS = re.compile(r"^Requests/sec:\s+([\d.]+)", re.M)
TOTAL = re.compile(r"^\s*(\d+) requests in ", re.M)
NON2XX = re.compile(r"Non-2xx or 3xx responses:\s+(\d+)")
SOCKERR = re.compile(r"Socket errors: connect (\d+), read (\d+), "
                     r"write (\d+), timeout (\d+)")


def log(msg):
    print(msg, file=sys.stderr, flush=True)


def free_port():
    """A loopback port free right now: bind port 0, read it, release."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def stop(proc, what):
    """SIGTERM to the process we started, by its pid; SIGKILL after 10 s."""
    if proc is None or proc.poll() is not None:
        return
    os.kill(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        log("http_run.py: %s (pid %d) ignored SIGTERM; killed" %
            (what, proc.pid))
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()


def start_server(path, mode, port, log_path, wrap=()):
    """Starts the server (under the command wrap, if any: valgrind for
    bench/http_count.py) and waits for its "ready" line."""
    argv = list(wrap) + [path] + MODE_ARGS[mode] + ["--port", str(port)]
    if MODE_LINES[mode]:
        argv += ["--log", log_path] + (["--sync"] if SYNC else [])
    env = {k: v for k, v in os.environ.items() if not k.startswith("TRAIL_")}
    proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL,
                            stdout=subprocess.PIPE, env=env, bufsize=0)
    deadline = time.monotonic() + START_BOUND_S
    line = b""
    while not line.endswith(b"\n"):
        left = deadline - time.monotonic()
        if left <= 0 or not select.select([proc.stdout], [], [], left)[0]:
            stop(proc, path)
            raise RuntimeError("%s %s did not start" % (path, mode))
        c = proc.stdout.read(1)
        if not c:
            proc.wait()
            raise RuntimeError("%s %s exited with %d" %
                               (path, mode, proc.returncode))
        line += c
    if line.strip() != b"ready":
        stop(proc, path)
        raise RuntimeError("%s said %r" % (path, line))
    return proc


def nginx_binary():
    for d in os.environ.get("PATH", "").split(":") + ["/usr/sbin",
                                                      "/usr/local/sbin"]:
        p = os.path.join(d, "nginx")
        if d and os.access(p, os.X_OK):
            return p
    return None


def start_nginx(bin_path, fastcgi_port, scratch):
    """nginx in the foreground (no daemon, no master), 1 worker, on a free
    loopback port, passing / to the FastCGI port: the configuration of
    tests/nginx_harness.h. Returns (process, port, directory)."""
    d = tempfile.mkdtemp(prefix="nginx.", dir=scratch)
    port = free_port()
    params = "/etc/nginx/fastcgi_params"
    if os.access(params, os.R_OK):
        location = "      include %s;\n" % params
    else:  # what the adapter reads, for an nginx without the stock file
        location = "".join("      fastcgi_param %s $%s;\n" % (k, v) for k, v in (
            ("REQUEST_METHOD", "request_method"),
            ("REQUEST_URI", "request_uri"), ("QUERY_STRING", "query_string"),
            ("CONTENT_TYPE", "content_type"),
            ("CONTENT_LENGTH", "content_length"),
            ("REMOTE_ADDR", "remote_addr")))
    location += "      fastcgi_pass 127.0.0.1:%d;" % fastcgi_port
    conf = os.path.join(d, "nginx.conf")
    with open(conf, "w") as f:
        f.write(
            "daemon off;\nmaster_process off;\nworker_processes 1;\n"
            "pid {d}/nginx.pid;\nerror_log {d}/error.log notice;\n"
            "events {{ worker_connections 1024; }}\n"
            "http {{\n  access_log off;\n"
            "  client_body_temp_path {d}/body;\n"
            "  fastcgi_temp_path {d}/fastcgi;\n  proxy_temp_path {d}/proxy;\n"
            "  uwsgi_temp_path {d}/uwsgi;\n  scgi_temp_path {d}/scgi;\n"
            "  server {{\n    listen 127.0.0.1:{p};\n"
            "    location / {{\n{loc}\n    }}\n  }}\n}}\n".format(
                d=d, p=port, loc=location))
    proc = subprocess.Popen([bin_path, "-p", d, "-e",
                             os.path.join(d, "error.log"), "-c", conf],
                            stdin=subprocess.DEVNULL,
                            stdout=subprocess.DEVNULL)
    deadline = time.monotonic() + START_BOUND_S
    while True:  # listening once it answers a connection
        if proc.poll() is not None:
            raise RuntimeError("nginx exited with %d: %s" %
                               (proc.returncode, read_text(d, "error.log")))
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return proc, port, d
        except OSError:
            if time.monotonic() > deadline:
                stop(proc, "nginx")
                raise RuntimeError("nginx did not start")
            time.sleep(0.02)


def read_text(d, name):
    try:
        with open(os.path.join(d, name)) as f:
            return f.read()
    except OSError:
        return ""


def check_response(port, mode):
    """One GET: 200, the body, X-Request-ID only with trail."""
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    c.request("GET", ROUTE)
    r = c.getresponse()
    body = r.read()
    rid = r.getheader("X-Request-ID")
    c.close()
    if r.status != 200 or body != BODY:
        raise RuntimeError("GET %s: %d %r" % (ROUTE, r.status, body))
    if (rid is not None) != (mode != "plain"):
        raise RuntimeError("X-Request-ID %r in mode %s" % (rid, mode))


def wrk(port, seconds, connections):
    argv = ["wrk", "-t1", "-c%d" % connections, "-d%ds" % seconds,
            "--latency", "http://127.0.0.1:%d%s" % (port, ROUTE)]
    p = subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True,
                       text=True, check=False)
    out = p.stdout
    rps, p99, total = RPS.search(out), LATENCY.search(out), TOTAL.search(out)
    if p.returncode != 0 or not (rps and p99 and total):
        raise RuntimeError("wrk failed (%d): %s%s" % (p.returncode, out,
                                                      p.stderr))
    bad = int(NON2XX.search(out).group(1)) if NON2XX.search(out) else 0
    se = SOCKERR.search(out)
    errors = sum(int(x) for x in se.groups()) if se else 0
    return {"rps": float(rps.group(1)),
            "p99_ms": float(p99.group(1)) * UNITS[p99.group(2)],
            "requests": int(total.group(1)), "non2xx": bad,
            "socket_errors": errors}


def cpu_seconds(pid):
    """User + system CPU time of the process, all its threads, so far."""
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def count_lines(path):
    n = 0
    with open(path, "rb") as f:
        while True:
            b = f.read(1 << 20)
            if not b:
                return n
            n += b.count(b"\n")


def run_once(server, mode, args, scratch, rnd):
    path = os.path.join(args.bin, "http_" + server)
    log_path = os.path.join(args.log_dir, "trail-http-bench.%d.%s.%s.%d.log"
                            % (os.getpid(), server, mode.replace("+", "-"),
                               rnd))
    port = free_port()
    srv = ng = None
    ng_dir = None
    try:
        srv = start_server(path, mode, port, log_path)
        http_port = port
        if server == "fcgi":
            ng, http_port, ng_dir = start_nginx(args.nginx, port, scratch)
        check_response(http_port, mode)
        if args.warmup > 0:
            wrk(http_port, args.warmup, args.connections)
        cpu0 = cpu_seconds(srv.pid)
        res = wrk(http_port, args.duration, args.connections)
        res["cpu_us"] = (cpu_seconds(srv.pid) - cpu0) * 1e6 / max(
            res["requests"], 1)
        stop(ng, "nginx")
        stop(srv, path)
        if srv.returncode != 0:
            raise RuntimeError("%s %s exited with %d" %
                               (path, mode, srv.returncode))
        if MODE_LINES[mode]:
            res["log_lines"] = count_lines(log_path)
            if res["log_lines"] < MODE_LINES[mode] * res["requests"]:
                raise RuntimeError("%s: %d lines for %d requests" %
                                   (log_path, res["log_lines"],
                                    res["requests"]))
        return res
    finally:
        stop(ng, "nginx")
        stop(srv, path)
        if ng_dir:
            shutil.rmtree(ng_dir, ignore_errors=True)
        if os.path.exists(log_path):
            os.remove(log_path)


def summarize(runs):
    rps = [r["rps"] for r in runs]
    return {"rps": statistics.median(rps), "rps_min": min(rps),
            "rps_max": max(rps),
            "p99_ms": statistics.median(r["p99_ms"] for r in runs),
            "cpu_us": statistics.median(r["cpu_us"] for r in runs),
            "non2xx": sum(r["non2xx"] for r in runs),
            "socket_errors": sum(r["socket_errors"] for r in runs)}


def fmt_rps(s):
    return "{:,.0f} [{:,.0f} - {:,.0f}]".format(s["rps"], s["rps_min"],
                                                 s["rps_max"])


def fmt_ms(ms):
    return "%.0f us" % (ms * 1e3) if ms < 1 else "%.2f ms" % ms


def cost_pct(plain, other):
    return (plain["rps"] - other["rps"]) / plain["rps"] * 100.0


def errors_note(r):
    """Non-2xx responses and socket errors of every mode, if any."""
    bad = [r[m]["non2xx"] for m in MODES]
    sock = [r[m]["socket_errors"] for m in MODES]
    if not any(bad) and not any(sock):
        return ""
    return " (errors: %s non-2xx, %s socket)" % (
        "/".join(map(str, bad)), "/".join(map(str, sock)))


def table(results, args):
    head = ("**HTTP: GET %s, wrk -t1 -c%d -d%ds --latency, median of %d "
            "runs per mode (interleaved, %d s warm-up each).** trail: the "
            "adapter around the same handler; + line: the handler also logs "
            "one line per request." %
            (ROUTE, args.connections, args.duration, args.runs, args.warmup))
    rows = ["| server | plain req/s median [min - max] | trail req/s median "
            "[min - max] | trail cost % | + line req/s | + line cost % | "
            "p99 plain / trail / + line | server CPU/request plain / trail / "
            "+ line | goal (trail <= 5%) |",
            "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |"]
    for server, r in results.items():
        if "error" in r:
            rows.append("| %s | %s |  |  |  |  |  |  |  |" % (NAMES[server],
                                                          r["error"]))
            continue
        p, t, l = (r[m] for m in MODES)
        r["cost_pct"] = cost_pct(p, t)
        r["line_cost_pct"] = cost_pct(p, l)
        rows.append("| %s | %s | %s | %.1f%% | %s | %.1f%% | %s | "
                    "%.1f / %.1f / %.1f us | %s%s |" % (
                        NAMES[server], fmt_rps(p), fmt_rps(t), r["cost_pct"],
                        fmt_rps(l), r["line_cost_pct"],
                        " / ".join(fmt_ms(x["p99_ms"]) for x in (p, t, l)),
                        p["cpu_us"], t["cpu_us"], l["cpu_us"],
                        "**yes**" if r["cost_pct"] <= 5.0 else "no",
                        errors_note(r)))
    return head + "\n\n" + "\n".join(rows) + "\n"


def main():
    ap = argparse.ArgumentParser(
        description="The cost per request of trail's HTTP adapters.")
    ap.add_argument("--bin", required=True, help="directory of the servers")
    ap.add_argument("--servers", default=",".join(SERVERS))
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--duration", type=int, default=5,
                    help="seconds of each measured run")
    ap.add_argument("--warmup", type=int, default=1,
                    help="seconds of load before each run, not counted")
    ap.add_argument("--connections", type=int, default=16)
    shm = "/dev/shm"
    ap.add_argument("--log-dir", default=shm if os.access(shm, os.W_OK)
                    else tempfile.gettempdir(),
                    help="where trail's log files go (default /dev/shm, "
                         "a tmpfs)")
    ap.add_argument("--sync", action="store_true",
                    help="trail mode with trail's default (sync) writer")
    ap.add_argument("--markdown", help="also write the table here")
    ap.add_argument("--json", help="also write every run's figures here")
    args = ap.parse_args()
    if args.runs < 1 or args.duration < 1 or args.warmup < 0:
        ap.error("--runs >= 1, --duration >= 1, --warmup >= 0")
    if shutil.which("wrk") is None:
        log("http_run.py: wrk is not installed (Debian package wrk)")
        return 2
    servers = []
    for s in [s.strip() for s in args.servers.split(",") if s.strip()]:
        if s not in SERVERS:
            ap.error("unknown server %s (known: %s)" % (s, ", ".join(SERVERS)))
        if not os.access(os.path.join(args.bin, "http_" + s), os.X_OK):
            log("http_run.py: http_%s is not built, left out" % s)
        elif s == "fcgi" and nginx_binary() is None:
            log("http_run.py: nginx not found, fcgi left out")
        else:
            servers.append(s)
    if not servers:
        log("http_run.py: no server to run")
        return 2
    args.nginx = nginx_binary()
    global SYNC
    SYNC = args.sync
    started = time.time()
    results = {}
    with tempfile.TemporaryDirectory(prefix="trail-http-bench.") as scratch:
        for s in servers:
            log("server %s: %s" % (s, MODELS[s]))
            runs = {m: [] for m in MODES}
            try:
                for rnd in range(args.runs):
                    k = rnd % len(MODES)
                    order = MODES[k:] + MODES[:k]
                    for m in order:
                        r = run_once(s, m, args, scratch, rnd)
                        log("  round %d %-10s %10.0f req/s  p99 %-9s "
                            "%5.1f us CPU/request" %
                            (rnd + 1, m, r["rps"], fmt_ms(r["p99_ms"]),
                             r["cpu_us"]))
                        runs[m].append(r)
                results[s] = {m: summarize(runs[m]) for m in MODES}
                results[s]["runs"] = runs
            except (RuntimeError, OSError) as e:
                log("http_run.py: %s: %s" % (s, e))
                results[s] = {"error": str(e).splitlines()[0][:120]}
    text = table(results, args)
    when = datetime.datetime.now(datetime.timezone.utc)
    info = "%s, %s, %d CPUs; %s; %.0f s" % (
        when.strftime("%Y-%m-%d %H:%M UTC"), platform.machine(),
        os.cpu_count() or 0, platform.release(), time.time() - started)
    print()
    print(text)
    print(info)
    for s in servers:
        print("  %s: %s" % (NAMES[s], MODELS[s]))
    if args.markdown:
        with open(args.markdown, "w") as f:
            f.write(text + "\n" + info + "\n")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"when": info, "results": results}, f, indent=1)
    return 1 if any("error" in r for r in results.values()) else 0


if __name__ == "__main__":
    sys.exit(main())
