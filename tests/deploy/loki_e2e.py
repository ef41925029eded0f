#!/usr/bin/env python3
"""The deploy kit against a real Loki and Promtail (tests/check_loki.sh runs it).

    loki_e2e.py BUILD_DIR SOURCE_DIR LOKI PROMTAIL

1. Starts Loki with the quick start's configuration of docs/deploy/README.md
   (filesystem storage, schema v13 on tsdb) moved to 127.0.0.1, free ports and
   a temporary directory, the ruler reading docs/deploy/loki-alerts.yaml from
   a local directory; and Promtail with docs/deploy/promtail-file.yaml,
   changed only in the values that docs/deploy/README.md ("What to change")
   tells a user to change, each marked `# <-` in the file.
2. Runs the example services (gateway in front of orders-api, and an
   orders-canary writing asynchronously into a stalled pipe with flood
   control, so that it reports dropped and suppressed events) under a fixed
   mix of requests, and stops them.
3. Reads the lines the services wrote and checks, against Loki's answers:
   every line arrived once, at its own "timestamp", with the labels service,
   level and Loki's service_name, and with the four ids and Loki's
   detected_level as structured metadata; every LogQL query of docs/loki.md
   and docs/deploy/README.md, every dashboard target (its variables filled in
   twice: the defaults, and a service and the ids of a request) and every
   alert expression gives what tests/deploy/check_deploy.py's evaluator
   computes from the lines; an unwrap of a key some lines lack skips them,
   one of a text fails; the ruler loaded the rules unchanged and its alerts
   are the ones the lines call for; Promtail saved its positions at the end
   of every file.
4. Beside them, a second Loki that does not allow structured metadata, fed by
   a second Promtail whose positions file is in a directory that does not
   exist: that Loki stores exactly the lines without ids (the partial arrival
   docs/deploy/README.md warns of), and that Promtail logs that it cannot
   write its positions and does not create the directory.
"""
import ctypes
import fcntl
import json
import math
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from datetime import datetime, timezone

import yaml

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import check_deploy as cd  # noqa: E402

FAILURES = []
CHECKS = [0]
ARRIVAL_DEADLINE = 60.0
READY_DEADLINE = 30.0

# The ids of the line contract's example (docs/log-format.md), which the
# cookbook's queries use: the first request carries them.
CONTRACT_REQUEST_ID = "3f2b8c1e-6a4d-4f7e-9b1a-0c5d2e7f8a91"
CONTRACT_TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
CONTRACT_TRACEPARENT = "00-%s-00f067aa0ba902b7-01" % CONTRACT_TRACE_ID


def fail(msg):
    FAILURES.append(msg)
    print("check_loki: FAILED: " + msg, flush=True)


def check(ok, msg):
    CHECKS[0] += 1
    if not ok:
        fail(msg)
    return ok


def note(msg):
    print("check_loki: " + msg, flush=True)


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def ts_ns(text):
    """trail's RFC 3339 UTC timestamp as Unix nanoseconds, exactly."""
    m = re.fullmatch(r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d{1,9}))?Z", text)
    if not m:
        raise ValueError("not an RFC 3339 UTC time: %r" % text)
    sec = int(datetime.strptime(m.group(1), "%Y-%m-%dT%H:%M:%S")
              .replace(tzinfo=timezone.utc).timestamp())
    frac = (m.group(2) or "").ljust(9, "0")
    return sec * 10**9 + int(frac)


def wait_for(what, cond, deadline):
    """Polls cond() until it returns a true value or the deadline passes."""
    end = time.monotonic() + deadline
    while True:
        r = cond()
        if r:
            return r
        if time.monotonic() > end:
            raise RuntimeError("timed out after %.0f s waiting for %s" % (deadline, what))
        time.sleep(0.1)


# --------------------------------------------------------------------------
# HTTP

def http(method, url, body=None, headers=None, timeout=30):
    req = urllib.request.Request(url, data=body, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()
    except (urllib.error.URLError, ConnectionError, socket.timeout):
        return None, b""


def get_ok(url):
    status, _ = http("GET", url, timeout=2)
    return status == 200


def ready(proc, url, log_path):
    """For wait_for: the process answers 200 on url; an error if it exited."""
    if proc.poll() is not None:
        with open(log_path, encoding="utf-8", errors="replace") as f:
            raise RuntimeError("%s exited with %s:\n%s"
                               % (proc.args[0], proc.returncode, f.read()[-2000:]))
    return get_ok(url)


class Loki:
    def __init__(self, port):
        self.base = "http://127.0.0.1:%d" % port

    def api(self, path, params, headers=None):
        url = self.base + path + "?" + urllib.parse.urlencode(params)
        status, body = http("GET", url, headers=headers)
        if status != 200:
            return status, body.decode("utf-8", "replace")
        return status, json.loads(body)

    def instant(self, query, t_ns):
        return self.api("/loki/api/v1/query", {"query": query, "time": str(t_ns)})

    def matrix(self, query, start_ns, end_ns, step_s):
        return self.api("/loki/api/v1/query_range",
                        {"query": query, "start": str(start_ns), "end": str(end_ns),
                         "step": str(step_s)})

    def logs(self, query, start_ns, end_ns, categorize=False):
        headers = {"X-Loki-Response-Encoding-Flags": "categorize-labels"} if categorize else None
        return self.api("/loki/api/v1/query_range",
                        {"query": query, "start": str(start_ns), "end": str(end_ns),
                         "limit": "5000", "direction": "forward"}, headers)


# --------------------------------------------------------------------------
# Processes

def die_with_parent():
    """In the child, before exec: SIGKILL when this test's process dies, even
    by a SIGKILL that leaves no time to stop it (prctl PR_SET_PDEATHSIG)."""
    ctypes.CDLL(None).prctl(1, signal.SIGKILL)


class Procs:
    def __init__(self):
        self.procs = []

    def start(self, name, argv, **kw):
        p = subprocess.Popen(argv, preexec_fn=die_with_parent, **kw)
        self.procs.append((name, p))
        return p

    def stop(self, p, grace=20.0):
        """SIGTERM, then SIGKILL when it has not exited by the deadline."""
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
            try:
                p.wait(grace)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
        return p.returncode

    def stop_all(self):
        for _, p in reversed(self.procs):
            if p.poll() is None:
                p.kill()
                p.wait()


# --------------------------------------------------------------------------
# The configurations

def documented_changes(src):
    """The values docs/deploy/README.md tells a user to change in
    promtail-file.yaml: [(dotted path, what)] from its "What to change" table."""
    with open(os.path.join(src, "docs/deploy/README.md"), encoding="utf-8") as f:
        text = f.read()
    sec = cd.section(text, "What to change")
    out = []
    if sec is None:
        fail("docs/deploy/README.md has no 'What to change' section")
        return out
    for line in sec.splitlines():
        m = re.match(r"^\|\s*`([a-z_.\[\]0-9]+)`\s*\|", line)
        if m:
            out.append(m.group(1))
    if not out:
        fail("docs/deploy/README.md: the 'What to change' table lists no value")
    return out


def yaml_path_get(doc, path):
    for part in re.findall(r"[^.\[\]]+|\[\d+\]", path):
        doc = doc[int(part[1:-1])] if part.startswith("[") else doc[part]
    return doc


def yaml_path_set(doc, path, value):
    parts = re.findall(r"[^.\[\]]+|\[\d+\]", path)
    for part in parts[:-1]:
        doc = doc[int(part[1:-1])] if part.startswith("[") else doc[part]
    last = parts[-1]
    if last.startswith("["):
        doc[int(last[1:-1])] = value
    else:
        doc[last] = value


def yaml_diff(a, b, path=""):
    """The dotted paths where two parsed YAML documents differ."""
    if isinstance(a, dict) and isinstance(b, dict):
        out = []
        for k in sorted(set(a) | set(b), key=str):
            p = "%s.%s" % (path, k) if path else str(k)
            if k not in a or k not in b:
                out.append(p)
            else:
                out += yaml_diff(a[k], b[k], p)
        return out
    if isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
        out = []
        for i, (x, y) in enumerate(zip(a, b)):
            out += yaml_diff(x, y, "%s[%d]" % (path, i))
        return out
    return [] if a == b else [path]


def promtail_config(src, values):
    """promtail-file.yaml with the marked values replaced, and nothing else:
    the text of each line marked `# <-` gets its new value; the result must
    parse to the shipped document with exactly the documented paths changed."""
    path = os.path.join(src, "docs/deploy/promtail-file.yaml")
    with open(path, encoding="utf-8") as f:
        text = f.read()
    shipped = yaml.safe_load(text)
    documented = documented_changes(src)
    check(sorted(documented) == sorted(values),
          "README.md's 'What to change' lists %s; the test changes %s"
          % (sorted(documented), sorted(values)))
    leaves = {p: p.split(".")[-1] for p in values}
    marked = []
    lines = text.splitlines(keepends=True)
    for i, line in enumerate(lines):
        if "# <-" not in line or line.lstrip().startswith("#"):
            continue
        m = re.match(r"^(\s*(?:- )?)([A-Za-z_]+):\s*(\S+)(\s*#.*)$", line.rstrip("\n"))
        if not m:
            fail("promtail-file.yaml: a marked line is not `key: value  # <- ...`: %r" % line)
            continue
        key = m.group(2)
        marked.append(key)
        hits = [p for p, leaf in leaves.items() if leaf == key]
        if len(hits) != 1:
            fail("promtail-file.yaml: marked key %r is not one documented value" % key)
            continue
        lines[i] = "%s%s: %s%s\n" % (m.group(1), key, json.dumps(values[hits[0]]), m.group(4))
    check(sorted(marked) == sorted(leaves.values()),
          "promtail-file.yaml marks %s; the documented values are %s"
          % (sorted(marked), sorted(leaves.values())))
    changed = "".join(lines)
    doc = yaml.safe_load(changed)
    diff = yaml_diff(shipped, doc)
    check(sorted(diff) == sorted(values),
          "the changed promtail-file.yaml differs from the shipped one at %s, not at %s"
          % (diff, sorted(values)))
    for p, v in values.items():
        check(yaml_path_get(doc, p) == v, "promtail config: %s is %r, not %r"
              % (p, yaml_path_get(doc, p), v))
    return changed


def documented_loki_config(src):
    """The minimal Loki configuration of docs/deploy/README.md's quick start."""
    with open(os.path.join(src, "docs/deploy/README.md"), encoding="utf-8") as f:
        sec = cd.section(f.read(), "Quick start on one machine") or ""
    m = re.search(r"^([ \t]*)```yaml[ \t]*\n(.*?)^\1```", sec, re.M | re.S)
    if not m:
        raise RuntimeError("docs/deploy/README.md: no Loki configuration in the quick start")
    return yaml.safe_load(textwrap.dedent(m.group(2)))


def merge(base, over):
    out = dict(base)
    for k, v in over.items():
        out[k] = merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


def loki_config(src, tmp, http_port, grpc_port, rules_dir):
    """The quick start's configuration, on loopback, free ports and tmp, with
    the ruler reading rules_dir."""
    data = os.path.join(tmp, "data")
    doc = documented_loki_config(src)
    schema = doc.get("schema_config", {}).get("configs", [{}])[-1]
    check(doc.get("auth_enabled") is False and schema.get("schema") == "v13"
          and schema.get("store") == "tsdb"
          and doc.get("limits_config", {}).get("allow_structured_metadata") is True,
          "the quick start's Loki configuration should have auth_enabled: false, schema v13 "
          "on tsdb and allow_structured_metadata: true: %s" % doc)
    return merge(doc, {
        "server": {"http_listen_address": "127.0.0.1", "http_listen_port": http_port,
                   "grpc_listen_address": "127.0.0.1", "grpc_listen_port": grpc_port,
                   "log_level": "warn"},
        "common": {"instance_addr": "127.0.0.1", "path_prefix": data,
                   "storage": {"filesystem": {
                       "chunks_directory": os.path.join(data, "chunks"),
                       "rules_directory": os.path.join(data, "rules")}}},
        # Ready as soon as it runs, queriers straight to the frontend: a
        # one-process Loki otherwise waits 15 s and 10 s before answering.
        "ingester": {"lifecycler": {"min_ready_duration": "0s"}},
        "frontend_worker": {"frontend_address": "127.0.0.1:%d" % grpc_port},
        "ruler": {"storage": {"type": "local", "local": {"directory": rules_dir}},
                  "rule_path": os.path.join(data, "ruler-scratch"),
                  "enable_api": True, "evaluation_interval": "1s", "poll_interval": "1s"},
        "analytics": {"reporting_enabled": False},
    })


# --------------------------------------------------------------------------
# The services and their traffic

def listening_port(path, proc):
    def look():
        if proc.poll() is not None:
            raise RuntimeError("%s exited with %s" % (path, proc.returncode))
        try:
            with open(path, encoding="utf-8") as f:
                for line in f:
                    d = json.loads(line)
                    if d.get("message") == "listening":
                        return d["port"]
        except (OSError, ValueError):
            pass
        return None
    return wait_for("the listening line of " + path, look, READY_DEADLINE)


def call(url, method="GET", headers=None, body=None):
    status, _ = http(method, url, body=body, headers=headers, timeout=15)
    return status


def traffic(gw, orders):
    """The fixed mix of docs/loki.md's sample (tests/deploy/make_sample.sh);
    returns [(what, status, expected status)]."""
    j = {"Content-Type": "application/json"}
    res = []

    def c(what, want, url, method="GET", headers=None, body=None):
        res.append((what, call(url, method, headers, body), want))

    c("the contract's request", 200, gw + "/api/orders/42",
      headers={"User-Agent": "curl/7.88.1", "X-Request-ID": CONTRACT_REQUEST_ID,
               "traceparent": CONTRACT_TRACEPARENT, "X-User-ID": "user-4711"})
    c("an order created", 201, orders + "/api/orders", "POST",
      dict(j, **{"User-Agent": "orders-web/2.3", "X-User-ID": "user-4711"}),
      b'{"quantity":2,"sku":"A-991"}')
    c("a missing order", 404, gw + "/api/orders/999",
      headers={"User-Agent": "curl/7.88.1", "X-User-ID": "user-0815"})
    c("a database timeout", 503, gw + "/api/orders/7",
      headers={"User-Agent": "curl/7.88.1", "X-User-ID": "user-0815"})
    c("a body that is not JSON", 400, orders + "/api/orders", "POST",
      dict(j, **{"User-Agent": "orders-web/2.3", "X-User-ID": "user-0815"}), b'{"quantity": ')
    for ms in (5, 20, 40, 80, 120, 250, 600):
        c("a wait of %d ms" % ms, 200, "%s/api/orders/%d?sleep_ms=%d" % (gw, 100 + ms, ms),
          headers={"User-Agent": "curl/7.88.1", "X-User-ID": "user-4711"})
    c("a 503 without a user", 503, orders + "/api/orders/7",
      headers={"User-Agent": "curl/7.88.1"})
    return res


def burst(base, first, n):
    threads = [threading.Thread(target=call, args=("%s/api/orders/%d" % (base, first + i),),
                                kwargs={"headers": {"User-Agent": "loadgen/1.0"}})
               for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()


class StalledReader(threading.Thread):
    """Reads a pipe into a file, but only once released: until then the
    writer meets a full pipe (one page) and its async queue fills."""

    def __init__(self, fd, path):
        super().__init__(daemon=True)
        self.fd, self.path = fd, path
        self.release = threading.Event()

    def run(self):
        self.release.wait()
        with open(self.path, "ab") as f:
            while True:
                b = os.read(self.fd, 65536)
                if not b:
                    break
                f.write(b)
                f.flush()
        os.close(self.fd)


def run_services(procs, ex, logs):
    env = {k: v for k, v in os.environ.items() if not k.startswith("TRAIL_")}
    files = {}

    def start(name, argv, extra=None, out=None):
        path = os.path.join(logs, name + ".log")
        files[name] = path
        e = dict(env, TRAIL_SERVICE=name, **(extra or {}))
        if out is None:
            with open(path, "wb") as f:
                return procs.start(name, argv, stdout=f, env=e)
        return procs.start(name, argv, stdout=out, env=e)

    orders = start("orders-api", [os.path.join(ex, "orders_mhd"), "--port", "0"])
    oport = listening_port(files["orders-api"], orders)
    gateway = start("gateway", [os.path.join(ex, "gateway"), "--port", "0",
                                "--downstream", "http://127.0.0.1:%d" % oport])
    gport = listening_port(files["gateway"], gateway)

    # The canary: drop mode, a 9 KiB queue, lines of at most 2 KiB, flood
    # control at 20 events a second per logger and message, then every 5th.
    r, w = os.pipe()
    fcntl.fcntl(r, getattr(fcntl, "F_SETPIPE_SZ", 1031), 4096)
    reader = StalledReader(r, os.path.join(logs, "orders-canary.log"))
    open(reader.path, "wb").close()
    reader.start()
    cport = free_port()
    canary = start("orders-canary", [os.path.join(ex, "orders_mhd"), "--port", str(cport)],
                   {"TRAIL_ASYNC": "1", "TRAIL_ASYNC_OVERFLOW": "drop",
                    "TRAIL_ASYNC_QUEUE": "9k", "TRAIL_MAX_LINE": "2048",
                    "TRAIL_SAMPLING": "20,5"}, out=w)
    os.close(w)
    cbase = "http://127.0.0.1:%d" % cport
    def canary_up():
        if canary.poll() is not None:
            raise RuntimeError("orders-canary exited with %s" % canary.returncode)
        return call(cbase + "/healthz") == 200
    wait_for("the canary's /healthz", canary_up, READY_DEADLINE)
    return {"orders": orders, "gateway": gateway, "canary": canary, "reader": reader,
            "gw": "http://127.0.0.1:%d" % gport, "orders_url": "http://127.0.0.1:%d" % oport,
            "canary_url": cbase, "files": files}


def drive(procs, s):
    for what, status, want in traffic(s["gw"], s["orders_url"]):
        check(status == want, "%s: status %s, expected %s" % (what, status, want))
    # Phase 1, the reader stalled: more than the queue holds, so events are
    # dropped; the drop report follows once the reader reads again.
    burst(s["canary_url"], 1000, 30)
    s["reader"].release.set()

    def dropped_report():
        with open(s["reader"].path, encoding="utf-8") as f:
            return any('"message":"log events dropped' in l for l in f)
    wait_for("the canary's drop report", dropped_report, ARRIVAL_DEADLINE)
    # Phase 2: a burst over flood control's 20 a second.
    burst(s["canary_url"], 1100, 60)
    # SIGTERM: each writes its stopping lines; the canary's shutdown writes
    # what flood control still held and drains its queue.
    for name in ("gateway", "orders", "canary"):
        rc = procs.stop(s[name])
        check(rc == 0, "%s exited with %s" % (name, rc))
    s["reader"].join(READY_DEADLINE)


# --------------------------------------------------------------------------
# Comparing Loki's answers with the lines

def make_entries(files):
    """check_deploy's Entry for each line: the labels and structured metadata
    Loki should hold for it, with what Loki 3 adds by itself (service_name,
    detected_level)."""
    entries = []
    for path in files:
        with open(path, encoding="utf-8") as f:
            for n, line in enumerate(f, 1):
                if not line.strip():
                    continue
                try:
                    e = cd.Entry(line, cd.STREAM_LABELS, cd.CONTEXT_KEYS)
                except ValueError as err:
                    fail("%s:%d: not a JSON line (%s)" % (path, n, err))
                    continue
                e.ns = ts_ns(e.ts)
                entries.append(e)
    entries.sort(key=lambda e: (e.ns, e.raw))
    return entries


def loki_entries(resp):
    """[(ns, line, stream labels, structured metadata)] of a categorized answer."""
    out = []
    for r in resp["data"]["result"]:
        for v in r["values"]:
            meta = v[2] if len(v) > 2 else {}
            out.append((int(v[0]), v[1], dict(r["stream"]), meta.get("structuredMetadata", {})))
    out.sort(key=lambda x: (x[0], x[1]))
    return out


def check_arrival(loki, entries, start, end):
    want = len(entries)

    def arrived():
        st, resp = loki.logs('{service=~".+"}', start, end, categorize=True)
        if st is not None and 400 <= st < 500:
            raise RuntimeError("Loki refused the query: %s %s" % (st, resp))
        if st != 200:
            return None
        got = loki_entries(resp)
        return got if len(got) >= want else None
    try:
        got = wait_for("%d lines in Loki" % want, arrived, ARRIVAL_DEADLINE)
    except RuntimeError as e:
        st, resp = loki.logs('{service=~".+"}', start, end, categorize=True)
        n = len(loki_entries(resp)) if st == 200 else "%s %s" % (st, resp)
        fail("%s (Loki has %s)" % (e, n))
        return False
    check(len(got) == want, "Loki holds %d lines, the services wrote %d" % (len(got), want))
    by_line = {}
    for g in got:
        by_line.setdefault((g[0], g[1]), []).append(g)
    for e in entries:
        hits = by_line.get((e.ns, e.raw), [])
        if not check(len(hits) == 1, "line at %s arrived %d times (at its own timestamp): %s"
                     % (e.ts, len(hits), e.raw[:160])):
            continue
        _, _, stream, sm = hits[0]
        check(stream == e.stream, "line at %s: labels %s, expected %s" % (e.ts, stream, e.stream))
        check(sm == e.sm, "line at %s: structured metadata %s, expected %s" % (e.ts, sm, e.sm))
    return True


def metric_result(resp):
    """{labels tuple: float} of an instant query's vector."""
    data = resp["data"]
    if data["resultType"] == "scalar":
        return float(data["result"][1])
    return {tuple(sorted(r["metric"].items())): float(r["value"][1]) for r in data["result"]}


def same_value(a, b):
    if math.isnan(a) or math.isnan(b):
        return math.isnan(a) and math.isnan(b)
    return a == b or abs(a - b) <= 1e-9 * max(abs(a), abs(b))


def fmt_vec(v):
    if isinstance(v, float):
        return cd.go_float(v)
    return "\n".join("      {%s} %s" % (", ".join('%s="%s"' % kv for kv in k), cd.go_float(x))
                     for k, x in sorted(v.items())) or "      (empty)"


def compare_query(loki, entries, where, query, start, end, t_eval, need_result=False):
    """Loki's answer to one query against the evaluator's on the lines."""
    is_log = query.lstrip().startswith("{")
    try:
        if is_log:
            want = sorted((e.ns, e.raw) for e, _ in cd.select(entries, cd.LQParser(query).parse()[1]))
        else:
            want = cd.eval_expr(entries, query)
    except cd.LogQLError as e:
        fail("%s: the evaluator cannot compute it (%s):\n    %s" % (where, e, query))
        return
    if is_log:
        st, resp = loki.logs(query, start, end)
        if not check(st == 200, "%s: Loki answered %s: %s\n    %s" % (where, st, resp, query)):
            return
        got = sorted((int(v[0]), v[1]) for r in resp["data"]["result"] for v in r["values"])
        check(got == want, "%s: Loki returns %d lines, the lines call for %d:\n    %s"
              % (where, len(got), len(want), query))
        if need_result:
            check(bool(want), "%s: returns nothing on the lines:\n    %s" % (where, query))
        return
    st, resp = loki.instant(query, t_eval)
    if not check(st == 200, "%s: Loki answered %s: %s\n    %s" % (where, st, resp, query)):
        return
    got = metric_result(resp)
    if isinstance(want, float) or isinstance(got, float):
        ok = isinstance(want, float) and isinstance(got, float) and same_value(got, want)
    else:
        ok = set(got) == set(want) and all(same_value(got[k], want[k]) for k in want)
    check(ok, "%s: Loki and the lines differ:\n    %s\n    Loki:\n%s\n    lines:\n%s"
          % (where, query, fmt_vec(got), fmt_vec(want)))
    if need_result:
        check(bool(want), "%s: returns nothing on the lines:\n    %s" % (where, query))


def dashboard_fillings(variables):
    """The dashboard's variables twice: as it opens (All, .*, 500), and with a
    choice of services and the ids of the contract's request."""
    def with_values(values):
        out = {}
        for name, v in variables.items():
            v = dict(v)
            if name in values:
                v = {"type": "custom", "current": {"value": values[name]}}
            out[name] = v
        return out
    return [("defaults", variables),
            ("service gateway|orders-canary and the contract's ids",
             with_values({"service": "gateway|orders-canary", "request_id": CONTRACT_REQUEST_ID,
                          "trace_id": CONTRACT_TRACE_ID, "slow_ms": "100"}))]


RANGE_STEP_S = 2
GRAFANA_INTERVALS = ((r"\$\{?__rate_interval\}?", "1m"), (r"\$\{?__interval\}?", "2s"))


def check_dashboard_ranges(loki, src, entries):
    """The dashboard's range targets as Grafana runs them: a range query, one
    point every RANGE_STEP_S, each over the lines of (t - range, t], with
    $__interval the step and $__rate_interval Grafana's 1m floor."""
    with open(os.path.join(src, "docs/deploy/grafana-dashboard.json"), encoding="utf-8") as f:
        dash = json.load(f)
    variables = {v["name"]: v for v in dash["templating"]["list"]}
    step = RANGE_STEP_S * 10**9
    # Loki evaluates a range query at the multiples of its step; start and
    # end are such multiples here, so the points are the ones computed.
    rstart = (entries[0].ns // step - 1) * step
    rend = (entries[-1].ns // step + 2) * step
    n = 0
    for filling, vs in dashboard_fillings(variables):
        for title, target in cd.dashboard_targets(dash):
            if target.get("queryType") != "range" or target["expr"].lstrip().startswith("{"):
                continue
            expr = target["expr"]
            for pattern, value in GRAFANA_INTERVALS:
                expr = re.sub(pattern, value, expr)
            q = cd.interpolate(expr, vs)
            rng = {cd.duration_seconds(d) for d in re.findall(r"\[(\w+)\]", q)}
            if not check(len(rng) == 1, "dashboard %r: one range expected: %s" % (title, q)):
                continue
            rng_ns = int(rng.pop() * 10**9)
            want = {}
            t, k = rstart, 0
            while t <= rend:
                window = [e for e in entries if t - rng_ns < e.ns <= t]
                for labels, v in cd.eval_expr(window, q).items():
                    want[(labels, k)] = v
                t, k = t + step, k + 1
            st, resp = loki.matrix(q, rstart, rend, RANGE_STEP_S)
            where = "dashboard %r as a range query (%s)" % (title, filling)
            if not check(st == 200, "%s: Loki answered %s: %s\n    %s" % (where, st, resp, q)):
                continue
            got = {}
            for r in resp["data"]["result"]:
                labels = tuple(sorted(r["metric"].items()))
                for ts, v in r["values"]:
                    got[(labels, round((float(ts) * 1e9 - rstart) / step))] = float(v)
            diff = sorted(set(got) ^ set(want)) + sorted(
                key for key in set(got) & set(want) if not same_value(got[key], want[key]))
            check(not diff and want, "%s: %d points of Loki's and %d of the lines' differ "
                  "(of %d and %d), first %s:\n    %s"
                  % (where, len(diff), len(diff), len(got), len(want), diff[:3], q))
            n += 1
    note("%d dashboard range targets compared step by step" % n)


def check_ruler(loki, src, entries, t_arrived):
    with open(os.path.join(src, "docs/deploy/loki-alerts.yaml"), encoding="utf-8") as f:
        shipped = yaml.safe_load(f)
    st, body = http("GET", loki.base + "/loki/api/v1/rules")
    if not check(st == 200, "the ruler API answered %s: %s" % (st, body[:200])):
        return
    loaded = yaml.safe_load(body)
    check(loaded == {"trail-alerts.yaml": shipped["groups"]},
          "the ruler's rules differ from loki-alerts.yaml:\n%s" % body.decode())

    # The ruler's own evaluation, once it ran after every line had arrived.
    def evaluated():
        st, body = http("GET", loki.base + "/prometheus/api/v1/rules")
        if st != 200:
            return None
        groups = json.loads(body)["data"]["groups"]
        rules = [r for g in groups for r in g["rules"]]
        if rules and all(ts_ns(re.sub(r"(\.\d{1,9})\d*Z$", r"\1Z", r["lastEvaluation"]))
                         > t_arrived for r in rules):
            return rules
        return None
    try:
        rules = wait_for("an evaluation of the rules", evaluated, ARRIVAL_DEADLINE)
    except RuntimeError as e:
        fail(str(e))
        return
    defs = {r["alert"]: r for g in shipped["groups"] for r in g["rules"]}
    check(sorted(r["name"] for r in rules) == sorted(defs),
          "the ruler evaluates %s, loki-alerts.yaml has %s"
          % (sorted(r["name"] for r in rules), sorted(defs)))
    for r in rules:
        d = defs.get(r["name"])
        if d is None:
            continue
        check(r["health"] == "ok" and not r["lastError"],
              "rule %s: health %s, error %r" % (r["name"], r["health"], r["lastError"]))
        want = cd.eval_expr(entries, d["expr"])
        state = "inactive" if not want else ("pending" if d.get("for") else "firing")
        got = {tuple(sorted((k, v) for k, v in a["labels"].items()
                            if k not in ("alertname",) and k not in d.get("labels", {}))):
               float(a["value"]) for a in r["alerts"]}
        check(r["state"] == state, "rule %s: state %s, the lines call for %s"
              % (r["name"], r["state"], state))
        check(set(got) == set(want) and all(same_value(got[k], want[k]) for k in want),
              "rule %s: alerts\n%s\n    the lines call for\n%s"
              % (r["name"], fmt_vec(got), fmt_vec(want)))
        for a in r["alerts"]:
            check(a["state"] == state, "rule %s: an alert is %s, not %s"
                  % (r["name"], a["state"], state))
        note("ruler: %s %s, %d alerts (%s)" % (r["name"], r["state"], len(r["alerts"]), ", ".join(
            "%s %s" % (dict(k).get("service"), cd.go_float(v)) for k, v in sorted(got.items()))))


def check_queries(loki, src, entries, start, end):
    t_eval = entries[-1].ns + 10**9
    # docs/loki.md and docs/deploy/README.md.
    for rel in ("docs/loki.md", "docs/deploy/README.md"):
        with open(os.path.join(src, rel), encoding="utf-8") as f:
            text = f.read()
        for q in cd.doc_queries(text):
            # Each returns something, but a query of Kubernetes metadata:
            # the example services' lines are read from files.
            k8s = re.search(r"\b(?:namespace|pod|container)\s*=", q)
            compare_query(loki, entries, rel, q, start, end, t_eval, need_result=not k8s)
    # Every dashboard target, with its variables filled in, and the
    # templates the docs give for Grafana (a panel's and the data source's
    # Loki 2 forms).
    variables, exprs = cd.check_dashboard(src)
    with open(os.path.join(src, "docs/deploy/README.md"), encoding="utf-8") as f:
        readme = cd.FENCE.sub("", f.read())
    templates = [m.group(1) for m in cd.INLINE.finditer(readme)
                 if m.group(1).startswith("{") and "$" in m.group(1)]
    check(len(templates) >= 2, "docs/deploy/README.md: no Loki 2 forms of the panel and "
          "the data source's link found (%s)" % templates)
    for filling, vs in dashboard_fillings(variables):
        for title, expr in exprs:
            q = cd.interpolate(expr, vs)
            compare_query(loki, entries, "dashboard %r (%s)" % (title, filling), q,
                          start, end, t_eval, need_result=True)
        for expr in templates:
            q = re.sub(r"\$?\$\{__trace\.traceId\}", CONTRACT_TRACE_ID, expr)
            q = cd.interpolate(q, vs)
            compare_query(loki, entries, "docs/deploy/README.md (%s)" % filling, q,
                          start, end, t_eval, need_result=True)
    # The data source's link from a trace back to its lines.
    for where, q in cd.check_grafana_yaml(src):
        compare_query(loki, entries, where, q, start, end, t_eval, need_result=True)
    # Every alert expression, at the end of the lines (its [5m] covers them).
    with open(os.path.join(src, "docs/deploy/loki-alerts.yaml"), encoding="utf-8") as f:
        alerts = yaml.safe_load(f)
    for g in alerts["groups"]:
        for r in g["rules"]:
            compare_query(loki, entries, "alert %s" % r["alert"], r["expr"].strip(),
                          start, end, t_eval, need_result=True)

    # unwrap: a key that most lines lack skips them (no error, no sample); a
    # value that is not a number fails the query.
    dropped = {}
    for e in entries:
        if "dropped" in e.obj:
            dropped[e.stream["service"]] = dropped.get(e.stream["service"], 0) + float(e.obj["dropped"])
    q = 'sum by (service) (sum_over_time({service=~".+"} | json dropped | unwrap dropped [1h]))'
    st, resp = loki.instant(q, t_eval)
    if check(st == 200, "an unwrap of a key most lines lack: Loki answered %s: %s" % (st, resp)):
        got = {dict(k)["service"]: v for k, v in metric_result(resp).items()}
        check(got == dropped and dropped, "unwrap of a missing key: Loki %s, the lines' dropped %s"
              % (got, dropped))
    q = 'sum by (service) (sum_over_time({service=~".+"} | json message | unwrap message [1h]))'
    st, resp = loki.instant(q, t_eval)
    check(st == 400 and "SampleExtractionErr" in str(resp),
          "an unwrap of a text should fail with SampleExtractionErr: %s %s" % (st, str(resp)[:200]))
    # Without sum by, a series per label set: service_name, detected_level
    # and the ids are labels of a metric query's series.
    q = 'count_over_time({service="orders-api", level="error"}[1h])'
    st, resp = loki.instant(q, t_eval)
    if check(st == 200, "%s: %s %s" % (q, st, resp)):
        keys = set(k for s in metric_result(resp) for k, _ in s)
        check({"service", "level", "service_name", "detected_level", "request_id", "trace_id",
               "span_id"} <= keys, "%s: series labels %s" % (q, sorted(keys)))


def check_positions(path, files):
    with open(path, encoding="utf-8") as f:
        pos = (yaml.safe_load(f) or {}).get("positions", {})
    for p in files:
        check(str(pos.get(p)) == str(os.path.getsize(p)),
              "positions file: %s at %s, the file has %d bytes" % (p, pos.get(p), os.path.getsize(p)))


def start_loki(procs, loki_bin, src, tmp, name, allow_sm, rules=None):
    """A Loki in tmp/name; rules, a directory for its ruler."""
    d = os.path.join(tmp, name)
    os.makedirs(d)
    port, grpc = free_port(), free_port()
    cfg = loki_config(src, d, port, grpc, rules or os.path.join(d, "no-rules"))
    cfg["limits_config"]["allow_structured_metadata"] = allow_sm
    if rules is None:
        del cfg["ruler"]
    with open(os.path.join(d, "loki.yaml"), "w", encoding="utf-8") as f:
        yaml.safe_dump(cfg, f)
    log = os.path.join(d, "loki.log")
    with open(log, "wb") as out:
        p = procs.start(name, [loki_bin, "-config.file=" + os.path.join(d, "loki.yaml")],
                        stdout=out, stderr=subprocess.STDOUT)
    loki = Loki(port)
    loki.proc, loki.log = p, log
    return loki


def start_promtail(procs, promtail_bin, src, tmp, name, loki, positions, logs):
    """Promtail in tmp/name with the shipped file, the documented values changed."""
    d = os.path.join(tmp, name)
    os.makedirs(d)
    port = free_port()
    cfg = promtail_config(src, {
        "server.http_listen_port": port,
        "positions.filename": positions,
        "clients[0].url": "%s/loki/api/v1/push" % loki.base,
        "scrape_configs[0].static_configs[0].labels.__path__": os.path.join(logs, "*.log"),
    })
    with open(os.path.join(d, "promtail.yaml"), "w", encoding="utf-8") as f:
        f.write(cfg)
    log = os.path.join(d, "promtail.log")
    with open(log, "wb") as out:
        p = procs.start(name, [promtail_bin, "-config.file=" + os.path.join(d, "promtail.yaml")],
                        stdout=out, stderr=subprocess.STDOUT)
    p.ready_url, p.log = "http://127.0.0.1:%d/ready" % port, log
    return p


def read_text(path):
    with open(path, encoding="utf-8", errors="replace") as f:
        return f.read()


def check_refusing_loki(loki, promtail, entries, start, end, positions):
    """A Loki that does not allow structured metadata stores the lines without
    ids and refuses the others; Promtail with its positions file in a
    directory that does not exist runs, says so, and saves nothing."""
    want = sorted((e.ns, e.raw) for e in entries if not set(cd.CONTEXT_KEYS) & set(e.obj))
    refused = sum(1 for e in entries if set(cd.CONTEXT_KEYS) & set(e.obj))
    msg = "includes structured metadata, but this feature is disallowed"

    def settled():
        # Every line was pushed once Promtail logged a refusal and the
        # lines without ids are all there.
        if msg not in read_text(promtail.log):
            return None
        st, resp = loki.logs('{service=~".+"}', start, end)
        if st != 200:
            return None
        got = sorted((int(v[0]), v[1]) for r in resp["data"]["result"] for v in r["values"])
        return got if len(got) >= len(want) else None
    try:
        got = wait_for("the lines without ids in the Loki refusing structured metadata",
                       settled, ARRIVAL_DEADLINE)
    except RuntimeError as e:
        fail(str(e))
        return
    check(got == want, "a Loki refusing structured metadata holds %d lines; the %d lines "
          "without ids were expected, exactly" % (len(got), len(want)))
    check(bool(want) and refused > 0, "the lines should have some without ids and some with")
    note("a Loki refusing structured metadata stored the %d lines without ids and refused "
         "the %d with" % (len(want), refused))
    try:
        wait_for("Promtail's error about the positions file", lambda: (
            "error writing positions file" in read_text(promtail.log)), ARRIVAL_DEADLINE)
    except RuntimeError as e:
        fail(str(e))
    check(not os.path.exists(os.path.dirname(positions)),
          "Promtail created the positions file's directory %s" % os.path.dirname(positions))


def main():
    build, src, loki_bin, promtail_bin = sys.argv[1:5]
    ex = os.path.join(build, "examples")
    tmp = tempfile.mkdtemp(prefix="trail-loki-")
    procs = Procs()
    began = time.monotonic()
    logs_to_show = []

    def on_signal(signum, frame):
        raise SystemExit("check_loki: signal %d" % signum)
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    try:
        logs = os.path.join(tmp, "logs")
        rules = os.path.join(tmp, "rules")
        os.makedirs(logs)
        # With auth_enabled false the tenant is "fake": the ruler reads
        # RULES/fake/*.yaml.
        os.makedirs(os.path.join(rules, "fake"))
        shutil.copyfile(os.path.join(src, "docs/deploy/loki-alerts.yaml"),
                        os.path.join(rules, "fake", "trail-alerts.yaml"))
        # The Loki under test, and one that does not allow structured metadata.
        loki = start_loki(procs, loki_bin, src, tmp, "loki", True, rules)
        refusing = start_loki(procs, loki_bin, src, tmp, "loki-refusing", False)
        logs_to_show += [loki.log, refusing.log]
        for lk in (loki, refusing):
            wait_for("Loki's /ready", lambda: ready(lk.proc, lk.base + "/ready", lk.log),
                     READY_DEADLINE)
        note("Loki ready after %.1f s" % (time.monotonic() - began))

        services = run_services(procs, ex, logs)

        # Promtail with the shipped file. The positions file's directory must
        # exist: Promtail does not create it (the second one shows it).
        os.makedirs(os.path.join(tmp, "positions"))
        positions = os.path.join(tmp, "positions", "positions.yaml")
        missing = os.path.join(tmp, "no-such-directory", "positions.yaml")
        pp = start_promtail(procs, promtail_bin, src, tmp, "promtail", loki, positions, logs)
        pr = start_promtail(procs, promtail_bin, src, tmp, "promtail-refused", refusing,
                            missing, logs)
        logs_to_show += [pp.log, pr.log]
        for p in (pp, pr):
            wait_for("Promtail's /ready (it tails the files)",
                     lambda: ready(p, p.ready_url, p.log), READY_DEADLINE)
        note("Promtail tailing after %.1f s" % (time.monotonic() - began))

        drive(procs, services)
        files = sorted(services["files"].values())
        entries = make_entries(files)
        note("the services wrote %d lines (%s)" % (len(entries), ", ".join(
            "%s %d" % (s, sum(1 for e in entries if e.stream["service"] == s))
            for s in sorted({e.stream["service"] for e in entries}))))
        start = entries[0].ns - 10**9
        end = entries[-1].ns + 10**9
        if check_arrival(loki, entries, start, end):
            t_arrived = time.time_ns()
            note("all lines in Loki after %.1f s" % (time.monotonic() - began))
            n = CHECKS[0]
            check_queries(loki, src, entries, start, end)
            note("%d checks of queries" % (CHECKS[0] - n))
            n = CHECKS[0]
            check_dashboard_ranges(loki, src, entries)
            check_ruler(loki, src, entries, t_arrived)
            note("%d checks of ranges and the ruler" % (CHECKS[0] - n))
        check_refusing_loki(refusing, pr, entries, start, end, missing)
        for p in (pp, pr):
            rc = procs.stop(p)
            check(rc == 0, "promtail exited with %s" % rc)
        check_positions(positions, files)
        for lk in (loki, refusing):
            procs.stop(lk.proc, grace=5.0)
    except RuntimeError as e:
        fail(str(e))
    finally:
        procs.stop_all()
        if FAILURES:
            for p in logs_to_show:
                if os.path.exists(p):
                    print("--- %s (end)\n%s" % (os.path.relpath(p, tmp), read_text(p)[-3000:]))
        shutil.rmtree(tmp, ignore_errors=True)
    took = time.monotonic() - began
    if FAILURES:
        print("check_loki: %d of %d checks failed (%.0f s)" % (len(FAILURES), CHECKS[0], took))
        return 1
    print("check_loki: %d checks against Loki and Promtail passed (%.0f s)" % (CHECKS[0], took))
    return 0


if __name__ == "__main__":
    sys.exit(main())
