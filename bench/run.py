#!/usr/bin/env python3
"""Runs the benchmark workload of docs/performance.md and prints the table.

    run.py --bin DIR [--runs 5] [--warmup 1] [--events 1000000]
           [--scenarios A,B,C,D,S[,CA]] [--programs trail,floor,...]
           [--latency-calls 1000000] [--markdown FILE] [--json FILE]

DIR holds the programs, each named PEER_bench and taking the command line
"PEER_bench MODE N PATH [THREADS]", trail_latency and bench_measure.
scripts/bench builds them and calls this; run it by hand to repeat one
scenario.

Every run is one process, started and timed by bench_measure (measure.c):
wall time from fork to reaped exit, user and system CPU time and the peak
resident set size from wait4(2). The runs of one scenario are interleaved
round by round, so that a slow minute of the machine hits every program
alike. The first run of each program in a scenario is the warm-up: it is
not counted, and its output file (B, C, D, CA) is checked by
check_output.py. Each run writes its own file, deleted right after it.
"""

import argparse
import datetime
import json
import os
import platform
import re
import statistics
import subprocess
import sys
import tempfile
import time

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import check_output  # noqa: E402

PROGRAMS = ("trail", "floor", "zerolog", "zap", "spdlog", "jansson",
            "before")

# What each program's "sync" and "async" modes are (docs/performance.md).
MODE_NOTES = {
    "trail": {"sync": "one write(2) per line",
              "async": "TRAIL_ASYNC=1"},
    "floor": {"sync": "one write(2) per line",
              "async": "64 KiB buffer"},
    "zerolog": {"sync": "os.File, one write(2) per line",
                "async": "diode, lossy"},
    "zap": {"sync": "Lock(os.File), one write(2) per line",
            "async": "BufferedWriteSyncer"},
    "spdlog": {"sync": "basic_file_sink_mt (stdio-buffered)",
               "async": "async_logger, blocks when full"},
    "jansson": {"sync": "json_dumps + writev(2) per line",
                "async": "stdio"},
    # trail_bench of another revision, copied in as before_bench: a change
    # measured against what it replaces, in the same interleaved run.
    "before": {"sync": "trail of another revision",
               "async": "TRAIL_ASYNC=1"},
}

SCENARIOS = {
    "A": {"mode": "sync", "threads": 1, "file": False, "events": True,
          "what": "1 thread, /dev/null, sync"},
    "B": {"mode": "sync", "threads": 1, "file": True, "events": True,
          "what": "1 thread, regular file, sync"},
    "C": {"mode": "sync", "threads": 2, "file": True, "events": True,
          "what": "2 threads, one shared regular file, sync"},
    "D": {"mode": "async", "threads": 1, "file": True, "events": True,
          "what": "1 thread, regular file, async/buffered"},
    # Not part of the default run: C in the async modes, to show what the
    # async writers give two threads sharing one file.
    "CA": {"mode": "async", "threads": 2, "file": True, "events": True,
           "what": "2 threads, one shared regular file, async/buffered"},
    "S": {"mode": "sync", "threads": 1, "file": False, "events": False,
          "what": "0 events, 1 thread, /dev/null, sync: startup and "
                  "teardown"},
}

DROPPED = re.compile(r"dropped (\d+) of (\d+) events")


def clean_env():
    """The caller's environment without TRAIL_* (they change what trail
    writes, e.g. TRAIL_LEVEL=warn) and without Go runtime tuning."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("TRAIL_") and k not in ("GOGC", "GOMAXPROCS",
                                                        "GODEBUG")}
    return env


def run_once(measure, argv, env, scratch):
    """Runs argv once under bench_measure; returns wall ns, cpu ns, max RSS
    KiB, exit status, stderr and the number of bytes printed on stdout."""
    out_path = os.path.join(scratch, "stdout")
    err_path = os.path.join(scratch, "stderr")
    res_path = os.path.join(scratch, "result")
    with open(os.devnull, "rb") as devnull, open(out_path, "wb") as out, \
            open(err_path, "wb") as err:
        p = subprocess.run([measure, res_path] + argv, env=env, stdin=devnull,
                           stdout=out, stderr=err, check=False)
    with open(err_path, "rb") as f:
        stderr = f.read().decode("utf-8", "replace")
    if p.returncode != 0:
        raise RuntimeError("bench_measure failed: " + stderr.strip())
    with open(res_path) as f:
        wall, user, sys_, rss, status = (int(x) for x in f.read().split())
    return {
        "wall_ns": wall,
        "cpu_ns": user + sys_,
        "rss_kib": rss,
        "status": status,
        "stderr": stderr,
        "stdout_bytes": os.path.getsize(out_path),
    }


def fmt_int(x):
    return "{:,}".format(int(round(x)))


def fmt_mib(kib):
    return "%.1f MiB" % (kib / 1024.0)


def summarize(runs, n):
    wall = [r["wall_ns"] for r in runs]
    cpu = [r["cpu_ns"] for r in runs]
    div = n if n > 0 else 1
    dropped = [r.get("dropped", 0) for r in runs]
    return {
        "median": statistics.median(wall) / div,
        "min": min(wall) / div,
        "max": max(wall) / div,
        "cpu": statistics.median(cpu) / div,
        "rss_kib": max(r["rss_kib"] for r in runs),
        "dropped": statistics.median(dropped),
        "runs": len(runs),
    }


def run_scenario(sid, programs, bins, args, env, scratch, log):
    sc = SCENARIOS[sid]
    n = args.events if sc["events"] else 0
    results = {p: {"runs": [], "check": None, "error": None}
               for p in programs}
    total_rounds = args.warmup + args.runs
    for rnd in range(total_rounds):
        # Rotate the order each round: no program always runs first.
        k = rnd % len(programs)
        for prog in programs[k:] + programs[:k]:
            res = results[prog]
            if res["error"]:
                continue
            if sc["file"]:
                path = os.path.join(args.tmp, "trail-bench.%d.%s.%s.%d.log"
                                    % (os.getpid(), sid, prog, rnd))
            else:
                path = os.devnull
            argv = [bins[prog], sc["mode"], str(n), path]
            if sc["threads"] > 1:
                argv.append(str(sc["threads"]))
            try:
                r = run_once(bins["measure"], argv, env, scratch)
                m = DROPPED.search(r["stderr"])
                r["dropped"] = int(m.group(1)) if m else 0
                if r["status"] != 0:
                    res["error"] = "exit %d: %s" % (
                        r["status"], r["stderr"].strip()[-300:])
                    continue
                if r["stdout_bytes"]:
                    res["error"] = "printed %d bytes on stdout" % r[
                        "stdout_bytes"]
                    continue
                if rnd == 0 and sc["file"]:
                    ok, report, _ = check_output.check_file(
                        path, n, sc["threads"], r["dropped"],
                        contract_order=(prog in ("trail", "before")))
                    res["check"] = (ok, report)
                    log("  check %-8s %s %s" % (prog, sid, report))
                if rnd >= args.warmup:
                    del r["stderr"]
                    res["runs"].append(r)
            finally:
                if path != os.devnull:
                    try:
                        os.unlink(path)
                    except FileNotFoundError:
                        pass
        log("  scenario %s: round %d of %d done" % (sid, rnd + 1,
                                                      total_rounds))
    for prog in programs:
        res = results[prog]
        if res["runs"] and not res["error"]:
            res["summary"] = summarize(res["runs"], n)
    return results


# ---- the table -------------------------------------------------------------


def scenario_rows(sid, results, programs, n):
    """Rows of one scenario's table as lists of cells."""
    sc = SCENARIOS[sid]
    trail = results.get("trail", {}).get("summary")
    rows = []
    for prog in programs:
        res = results[prog]
        mode = MODE_NOTES[prog][sc["mode"]]
        if res["error"]:
            rows.append([prog, mode, "FAILED: " + res["error"], "", "", "",
                         ""])
            continue
        s = res["summary"]
        if n > 0:
            time_cell = "%s [%s - %s]" % (fmt_int(s["median"]),
                                          fmt_int(s["min"]), fmt_int(s["max"]))
            cpu_cell = fmt_int(s["cpu"])
        else:
            time_cell = "%.2f [%.2f - %.2f]" % (s["median"] / 1e6,
                                                s["min"] / 1e6, s["max"] / 1e6)
            cpu_cell = "%.2f" % (s["cpu"] / 1e6)
        ratio = "%.2f" % (s["median"] / trail["median"]) if trail else "-"
        check = "-"
        if res["check"] is not None:
            ok, report = res["check"]
            check = "ok" if ok else "FAILED"
            if ok and s["dropped"]:
                check = "ok, dropped %.0f%%" % (100.0 * s["dropped"] / n)
            elif ok and "not the shortest" in report:
                check = "ok (17-digit doubles)"
        rows.append([prog, mode, time_cell, cpu_cell, fmt_mib(s["rss_kib"]),
                     ratio, check])
    return rows


def headers(n):
    if n > 0:
        return ["program", "mode", "ns/event median [min - max]",
                "cpu ns/event", "max RSS", "x trail", "output check"]
    return ["program", "mode", "ms/run median [min - max]", "cpu ms/run",
            "max RSS", "x trail", "output check"]


def text_table(head, rows):
    widths = [max(len(str(r[i])) for r in [head] + rows)
              for i in range(len(head))]
    right = {2, 3, 4, 5}
    lines = []
    for r in [head] + rows:
        cells = [(str(c).rjust(w) if i in right else str(c).ljust(w))
                 for i, (c, w) in enumerate(zip(r, widths))]
        lines.append("  ".join(cells).rstrip())
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def md_table(head, rows):
    out = ["| " + " | ".join(head) + " |",
           "|" + "|".join(" ---: " if 2 <= i <= 5 and len(head) > 3
                          else " --- " for i in range(len(head))) + "|"]
    for r in rows:
        out.append("| " + " | ".join(str(c) for c in r) + " |")
    return "\n".join(out)


def scenario_title(sid, n, args):
    sc = SCENARIOS[sid]
    ev = "{:,} events".format(n)
    if not sc["events"]:
        return "Scenario %s: %s (median of %d runs after %d warm-up)" % (
            sid, sc["what"], args.runs, args.warmup)
    if sc["threads"] > 1:
        ev = "%d x {:,} events".format(n // sc["threads"]) % sc["threads"]
    return "Scenario %s: %s, %s (median of %d runs after %d warm-up)" % (
        sid, ev, sc["what"], args.runs, args.warmup)


# ---- latency ---------------------------------------------------------------


def run_latency(binary, calls, env):
    """Runs trail_latency; returns (its output, {mode: row dict})."""
    p = subprocess.run([binary, "-n", str(calls)], env=env,
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                       text=True, check=False)
    rows = {}
    for line in p.stdout.splitlines():
        f = line.split(None, 7)
        if len(f) >= 7 and not line.startswith("#") and f[1].isdigit():
            rows[f[0]] = {"p50": float(f[2]), "p99": float(f[3]),
                          "p999": float(f[4]), "max": float(f[5]),
                          "mean": float(f[6]),
                          "note": f[7] if len(f) > 7 else ""}
    return p.stdout, rows


# ---- targets ---------------------------------------------------------------


def targets(all_results, latency):
    """The performance targets of docs/performance.md: (what, value, met)."""
    out = []

    def med(sid, prog):
        s = all_results.get(sid, {}).get(prog, {}).get("summary")
        return s["median"] if s else None

    async_live = bool(latency) and "not running" not in latency.get(
        "async", {}).get("note", "not running")
    for sid in ("A", "B"):
        for peer, limit in (("floor", 1.10), ("zerolog", 0.6)):
            t, p = med(sid, "trail"), med(sid, peer)
            if t and p:
                out.append(("%s sync: trail <= %.2f x %s" % (sid, limit, peer),
                            "%.2f x" % (t / p), t / p <= limit))
    for peer, limit in (("floor", 1.0), ("spdlog", 0.1)):
        t, p = med("D", "trail"), med("D", peer)
        if t and p:
            out.append(("D async: trail <= %.2f x %s async" % (limit, peer),
                        "%.2f x" % (t / p), t / p <= limit))
    t_c, t_d = med("C", "trail"), med("D", "trail")
    if t_c and t_d:
        out.append(("C: trail <= 1.5 x trail's D", "%.2f x" % (t_c / t_d),
                    t_c / t_d <= 1.5))
    t_ca = med("CA", "trail")
    if t_ca and t_d:
        out.append(("(CA: trail async, 2 threads <= 1.5 x trail's D)",
                    "%.2f x" % (t_ca / t_d), t_ca / t_d <= 1.5))
    d = all_results.get("D", {}).get("trail", {}).get("summary")
    if d:
        out.append(("D: trail max RSS <= 8 MiB", fmt_mib(d["rss_kib"]),
                    d["rss_kib"] <= 8 * 1024))
    if latency:
        a = latency.get("async")
        if a:
            out.append(("async caller p50 <= 60 ns", "%.0f ns" % a["p50"],
                        a["p50"] <= 60))
            out.append(("async caller p99.9 <= 2 us", "%.0f ns" % a["p999"],
                        a["p999"] <= 2000))
        # Request-scoped buffering: a debug line kept for its request, which
        # then ends well, against the CPU time of a line written (both
        # threads' in async mode): under half.
        b = latency.get("buffered")
        for sid, what in (("A", "sync"), ("D", "async")):
            s = all_results.get(sid, {}).get("trail", {}).get("summary")
            t = s["cpu"] if s else None
            if b and t:
                out.append(("buffered, discarded line (mean) <= 0.5 x %s %s "
                            "line" % (sid, what),
                            "%.2f x (%.0f ns)" % (b["mean"] / t, b["mean"]),
                            b["mean"] / t <= 0.5))
    if not async_live:
        out = [(w, v + " (sync: no async writer)" if ("async" in w or
                                                       w.startswith("D") or
                                                       w.startswith("C"))
                else v, m) for w, v, m in out]
    return out


# ---- the machine -----------------------------------------------------------


def machine():
    info = {"nproc": os.cpu_count(), "kernel": platform.release(),
            "date": datetime.datetime.now(datetime.timezone.utc).strftime(
                "%Y-%m-%d %H:%M UTC")}
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    info["cpu"] = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    try:
        with open("/etc/os-release") as f:
            for line in f:
                if line.startswith("PRETTY_NAME="):
                    info["os"] = line.split("=", 1)[1].strip().strip('"')
    except OSError:
        pass
    try:
        with open("/proc/meminfo") as f:
            kb = int(f.readline().split()[1])
            info["memory"] = "%.0f GiB" % (kb / 1024 / 1024)
    except (OSError, ValueError, IndexError):
        pass
    versions = {}
    for pkg in ("gcc", "golang-go", "golang-go.uber-zap-dev",
                "golang-github-rs-zerolog-dev", "libspdlog-dev", "libfmt-dev",
                "libjansson-dev"):
        try:
            v = subprocess.run(["dpkg-query", "-W", "-f=${Version}", pkg],
                               stdout=subprocess.PIPE,
                               stderr=subprocess.DEVNULL, text=True,
                               check=False).stdout.strip()
        except OSError:
            v = ""
        if v:
            versions[pkg] = v
    info["packages"] = versions
    # Which trail was measured: the commit, and whether the library's
    # sources had changes not committed yet.
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    try:
        rev = subprocess.run(["git", "-C", root, "rev-parse", "--short",
                              "HEAD"], stdout=subprocess.PIPE,
                             stderr=subprocess.DEVNULL, text=True,
                             check=False).stdout.strip()
        dirty = subprocess.run(["git", "-C", root, "status", "--porcelain",
                                "--", "lib", "include"],
                               stdout=subprocess.PIPE,
                               stderr=subprocess.DEVNULL, text=True,
                               check=False).stdout.strip()
        if rev:
            info["trail"] = rev + (" with uncommitted changes in lib/ or "
                                   "include/" if dirty else "")
    except OSError:
        pass
    return info


def main():
    ap = argparse.ArgumentParser(
        description="Runs the benchmark workload and prints the table.")
    ap.add_argument("--bin", required=True, help="directory of the programs")
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--warmup", type=int, default=1)
    ap.add_argument("--events", type=int, default=1000000)
    ap.add_argument("--scenarios", default="A,B,C,D,S")
    ap.add_argument("--programs", default=",".join(PROGRAMS[:-1]),
                    help="default: every peer (before only when asked)")
    ap.add_argument("--tmp", default=tempfile.gettempdir(),
                    help="directory of the output files (default /tmp)")
    ap.add_argument("--latency-calls", type=int, default=1000000,
                    help="calls per latency mode; 0 skips the latency run")
    ap.add_argument("--markdown", help="also write the tables here")
    ap.add_argument("--json", help="also write every run's figures here")
    args = ap.parse_args()
    if args.runs < 1 or args.warmup < 0 or args.events < 1:
        ap.error("--runs >= 1, --warmup >= 0 and --events >= 1")
    scen = [s.strip().upper() for s in args.scenarios.split(",") if s.strip()]
    for s in scen:
        if s not in SCENARIOS:
            ap.error("unknown scenario %s" % s)
    if "C" in scen or "CA" in scen:
        args.events -= args.events % 2

    def log(msg):
        print(msg, file=sys.stderr, flush=True)

    programs, bins, missing = [], {}, []
    for p in [p.strip() for p in args.programs.split(",") if p.strip()]:
        if p not in PROGRAMS:
            ap.error("unknown program %s (known: %s)" % (p, ", ".join(
                PROGRAMS)))
        path = os.path.join(args.bin, p + "_bench")
        if os.access(path, os.X_OK):
            programs.append(p)
            bins[p] = path
        else:
            missing.append(p)
    if missing:
        log("run.py: not built, left out: %s" % ", ".join(missing))
    if not programs:
        log("run.py: no program to run")
        return 2

    bins["measure"] = os.path.join(args.bin, "bench_measure")
    if not os.access(bins["measure"], os.X_OK):
        log("run.py: %s is not built" % bins["measure"])
        return 2
    env = clean_env()
    info = machine()
    all_results = {}
    started = time.time()
    with tempfile.TemporaryDirectory(prefix="trail-bench.") as scratch:
        for sid in scen:
            log("scenario %s: %s" % (sid, SCENARIOS[sid]["what"]))
            all_results[sid] = run_scenario(sid, programs, bins, args, env,
                                            scratch, log)

    latency_text, latency = "", {}
    lat_bin = os.path.join(args.bin, "trail_latency")
    if args.latency_calls > 0 and os.access(lat_bin, os.X_OK):
        log("latency: trail_latency -n %d" % args.latency_calls)
        latency_text, latency = run_latency(lat_bin, args.latency_calls, env)

    # ---- print -------------------------------------------------------------
    md = []
    md.append("Machine: %s, %s cores, %s, Linux %s, %s. %s." % (
        info.get("cpu", "?"), info["nproc"], info.get("memory", "?"),
        info["kernel"], info.get("os", "?"), info["date"]))
    if info.get("trail"):
        md.append("trail: commit %s, CMake Release, shared library." %
                  info["trail"])
    if info["packages"]:
        md.append("Packages: " + ", ".join(
            "%s %s" % kv for kv in sorted(info["packages"].items())) + ".")
    print()
    print("\n".join(md))
    failed = False
    for sid in scen:
        n = args.events if SCENARIOS[sid]["events"] else 0
        rows = scenario_rows(sid, all_results[sid], programs, n)
        failed |= any(r[2].startswith("FAILED") or r[6] == "FAILED"
                      for r in rows)
        title = scenario_title(sid, n, args)
        print()
        print(title)
        print(text_table(headers(n), rows))
        md.append("")
        md.append("**%s**" % title)
        md.append("")
        md.append(md_table(headers(n), rows))
    if latency_text:
        print()
        print("Latency of one call, as the calling thread sees it:")
        print(latency_text.rstrip())
        md.append("")
        md.append("**Latency of one call** (`trail_latency -n %d`):" %
                  args.latency_calls)
        md.append("")
        md.append("```")
        md.append(latency_text.rstrip())
        md.append("```")
    tg = targets(all_results, latency)
    if tg:
        print()
        print("Targets:")
        head = ["target", "measured", "met"]
        trows = [[w, v, "yes" if m else "NO"] for w, v, m in tg]
        print(text_table(head, trows))
        md.append("")
        md.append("**Targets**")
        md.append("")
        md.append(md_table(head, trows))
    log("run.py: %.0f s in all" % (time.time() - started))

    if args.markdown:
        with open(args.markdown, "w") as f:
            f.write("\n".join(md) + "\n")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"machine": info, "args": vars(args),
                       "results": all_results, "latency": latency}, f,
                      indent=1, default=str)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
