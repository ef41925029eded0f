#!/usr/bin/env python3
"""Checks the deploy configs of docs/deploy/ and the LogQL cookbook docs/loki.md.

    check_deploy.py SOURCE_DIR            check everything below, exit 1 on a failure
    check_deploy.py SOURCE_DIR --update   rewrite the ```output blocks of docs/loki.md
                                          from tests/deploy/sample.log (review the diff)

What it checks (tests/check_deploy.sh runs it, then the LogQL grammar check):

1. The YAML files parse (Promtail configs, the Grafana data source and dashboard
   provider), the Alloy files parse (a parser for the subset of Alloy's syntax
   that configs use: blocks, attributes, strings, numbers, lists, objects,
   references, calls and operators), the dashboard is JSON.
2. Their pipelines do what docs/deploy/README.md says: Kubernetes pipelines
   start with the cri stage; the json stage reads only keys trail writes; the
   timestamp comes from "timestamp" as RFC3339Nano, skipping on failure; the
   only labels an entry can leave with are service and level; request_id,
   user_id, trace_id and span_id become structured metadata.
3. Every field a query, a panel or a config uses is one trail writes: the key
   list is read from docs/log-format.md (the reserved keys and the lines trail
   writes itself), docs/middleware.md (the access line), docs/middleware-curl.md
   (the outgoing line), docs/async.md (the drop report) and lib/log.c (the
   sampling report); logger and message values used in filters are ones those
   documents name.
4. Each ```logql block of docs/loki.md is followed by an ```output block, and
   the output is what the query gives on tests/deploy/sample.log, recomputed by
   a small LogQL evaluator that implements the forms the cookbook and the
   dashboard use (stream selectors, line filters, `| json` with and without a
   field list, label filters, unwrap, count/sum/rate/quantile over time, sum,
   topk, and the binary operators of alert expressions), with Loki's
   semantics: structured metadata and parsed labels, `_extracted` on a clash
   with a stream label, an unwrap skipping a line without its key, Loki 3's
   own service_name label and detected_level metadata, Prometheus' quantile.
   tests/deploy/loki_e2e.py checks the evaluator against a real Loki. Metric
   queries are evaluated as instant queries at the end of the sample, whose
   range covers it. Every dashboard expression must return something on the
   sample.
"""
import json
import math
import os
import re
import sys
from decimal import Decimal

try:
    import yaml
except ImportError:  # tests/check_deploy.sh reports it
    yaml = None

FAILURES = []


def fail(msg):
    FAILURES.append(msg)
    print("check_deploy: FAILED: " + msg)


# --------------------------------------------------------------------------
# The keys trail writes, read from its documents.

STREAM_LABELS = {"service", "level"}
CONTEXT_KEYS = {"request_id", "user_id", "trace_id", "span_id"}
K8S_METADATA = {"namespace", "pod", "container"}


def section(text, heading):
    """The text of a markdown section, from its heading to the next one of the same level."""
    m = re.search(r"^(#+) " + re.escape(heading) + r"\s*$", text, re.M)
    if not m:
        return None
    level = len(m.group(1))
    rest = text[m.end():]
    n = re.search(r"^#{1,%d} " % level, rest, re.M)
    return rest[: n.start()] if n else rest


def first_column_keys(table_text):
    keys = set()
    for line in table_text.splitlines():
        if line.startswith("|") and not re.match(r"^\|\s*-", line):
            cells = line.split("|")
            if len(cells) > 2:
                keys.update(re.findall(r"`([a-z_][a-z0-9_]*)`", cells[1]))
    return keys


def trail_vocabulary(src):
    """(keys, loggers, messages) that trail writes, from its docs and sources."""
    def read(rel):
        with open(os.path.join(src, rel), encoding="utf-8") as f:
            return f.read()

    keys, loggers, messages = set(), set(), set()
    fmt = read("docs/log-format.md")
    order = section(fmt, "Key order")
    if order is None:
        fail("docs/log-format.md has no 'Key order' section")
    else:
        for line in order.splitlines():
            m = re.match(r"^\|\s*\d+\s*\|\s*`([a-z_]+)`", line)
            if m:
                keys.add(m.group(1))
    reserved = re.search(r"These eleven keys are reserved: (.*?)\. Only", fmt, re.S)
    if reserved:
        keys.update(re.findall(r"`([a-z_]+)`", reserved.group(1)))

    own = section(fmt, "Lines trail writes itself")
    if own is not None:
        for line in own.splitlines():
            if line.startswith('{"timestamp"'):
                d = json.loads(line)
                keys.update(d)
                messages.add(d["message"])

    mw = read("docs/middleware.md")
    access = section(mw, "The access line")
    if access is None:
        fail("docs/middleware.md has no 'The access line' section")
    else:
        keys |= first_column_keys(access)
        keys.update(re.findall(r'"([a-z_]+)":true', access))
        m = re.search(r"from logger `([^`]+)`[^,]*,\s*message `([^`]+)`", access, re.S)
        if m:
            loggers.add(m.group(1))
            messages.add(m.group(2))

    curl = read("docs/middleware-curl.md")
    out = section(curl, "The outgoing line")
    if out is None:
        fail("docs/middleware-curl.md has no 'The outgoing line' section")
    else:
        keys |= first_column_keys(out)
        for line in out.splitlines():
            if line.startswith('{"timestamp"'):
                d = json.loads(line)
                loggers.add(d["logger"])
                messages.add(d["message"])

    asy = read("docs/async.md")
    m = re.search(r'logger\s+`"(\w+)"`, level `warn`, message `([^`]+)`.*?one field, `"(\w+)"`', asy, re.S)
    if m:
        loggers.add(m.group(1))
        messages.add(m.group(2))
        keys.add(m.group(3))
    else:
        fail("docs/async.md: the drop report's logger, message and field were not found")

    logc = read("lib/log.c")
    m = re.search(r'trail__sample_report\(.*?TRAIL_UINT\("(\w+)".*?"([^"]+)"', logc, re.S)
    if m:
        keys.add(m.group(1))
        messages.add(m.group(2))
    else:
        fail("lib/log.c: the sampling report's field and message were not found")

    # The extraction must have found at least what the line contract promises.
    must = {"timestamp", "level", "logger", "message", "service", "request_id", "user_id",
            "trace_id", "span_id", "method", "path", "status", "duration_ms", "bytes",
            "remote_addr", "user_agent", "parent_span_id", "dropped", "suppressed"}
    if not must <= keys:
        fail("reading trail's keys from its documents missed %s" % sorted(must - keys))
    if not {"http", "trail"} <= loggers or "request completed" not in messages:
        fail("reading trail's loggers and messages from its documents failed: %s %s"
             % (sorted(loggers), sorted(messages)))
    return keys, loggers, messages


# --------------------------------------------------------------------------
# A parser for the subset of Alloy's configuration syntax that configs use.

class AlloyError(Exception):
    pass


ALLOY_TOKEN = re.compile(r"""
    (?P<ws>[ \t\r]+)
  | (?P<nl>\n)
  | (?P<comment>//[^\n]*|/\*.*?\*/)
  | (?P<string>"(?:[^"\\\n]|\\.)*")
  | (?P<raw>`[^`]*`)
  | (?P<number>\d+(?:\.\d+)?(?:[eE][+-]?\d+)?)
  | (?P<ident>[A-Za-z_][A-Za-z0-9_]*)
  | (?P<op>==|!=|<=|>=|&&|\|\||[-+*/%^<>!=.,\[\]{}()])
""", re.S | re.X)


def alloy_tokens(text):
    toks, pos, line = [], 0, 1
    while pos < len(text):
        m = ALLOY_TOKEN.match(text, pos)
        if not m:
            raise AlloyError("line %d: unexpected character %r" % (line, text[pos]))
        kind, val = m.lastgroup, m.group()
        if kind == "nl":
            toks.append(("nl", "\n", line))
        elif kind == "comment":
            if "\n" in val:
                toks.append(("nl", "\n", line))
        elif kind != "ws":
            toks.append((kind, val, line))
        line += val.count("\n")
        pos = m.end()
    toks.append(("eof", "", line))
    return toks


class AlloyParser:
    """Blocks are (name, label, body); a body is a list of ('attr', name, value) and
    ('block', name, label, body). Values: str, float, bool, None, list, dict, or
    ('expr', text) for references, calls and operations."""

    def __init__(self, text):
        self.toks = alloy_tokens(text)
        self.i = 0

    def peek(self, skip_nl=False):
        j = self.i
        while skip_nl and self.toks[j][0] == "nl":
            j += 1
        return self.toks[j]

    def next(self, skip_nl=False):
        while skip_nl and self.toks[self.i][0] == "nl":
            self.i += 1
        t = self.toks[self.i]
        self.i += 1
        return t

    def expect(self, val, skip_nl=False):
        t = self.next(skip_nl)
        if t[1] != val:
            raise AlloyError("line %d: expected %r, found %r" % (t[2], val, t[1]))
        return t

    def parse(self):
        body = self.body(top=True)
        return body

    def body(self, top=False):
        items = []
        while True:
            t = self.peek(skip_nl=True)
            if t[0] == "eof":
                if not top:
                    raise AlloyError("line %d: missing '}'" % t[2])
                self.next(skip_nl=True)
                return items
            if t[1] == "}" and not top:
                self.next(skip_nl=True)
                return items
            items.append(self.statement())
            end = self.peek()
            if end[0] not in ("nl", "eof") and end[1] != "}":
                raise AlloyError("line %d: a statement must end the line (found %r)" % (end[2], end[1]))

    def statement(self):
        t = self.next(skip_nl=True)
        if t[0] != "ident":
            raise AlloyError("line %d: expected a name, found %r" % (t[2], t[1]))
        name = [t[1]]
        while self.peek()[1] == ".":
            self.next()
            n = self.next()
            if n[0] != "ident":
                raise AlloyError("line %d: expected a name after '.'" % n[2])
            name.append(n[1])
        nt = self.peek()
        if nt[1] == "=":
            if len(name) != 1:
                raise AlloyError("line %d: an attribute name has no '.'" % nt[2])
            self.next()
            return ("attr", name[0], self.expr())
        label = None
        if nt[0] == "string":
            label = json.loads(self.next()[1])
        self.expect("{")
        return ("block", ".".join(name), label, self.body())

    BINOPS = {"==", "!=", "<", "<=", ">", ">=", "&&", "||", "+", "-", "*", "/", "%", "^"}

    def expr(self):
        start = self.i
        value = self.unary()
        if self.peek()[1] in self.BINOPS:
            while self.peek()[1] in self.BINOPS:
                self.next()
                self.unary()
            return ("expr", self.text(start))
        return value

    def unary(self):
        if self.peek()[1] in ("!", "-"):
            start = self.i
            self.next()
            self.unary()
            return ("expr", self.text(start))
        return self.postfix()

    def text(self, start):
        return " ".join(t[1] for t in self.toks[start:self.i] if t[0] != "nl")

    def postfix(self):
        start = self.i
        value = self.primary()
        changed = False
        while self.peek()[1] in (".", "[", "("):
            changed = True
            op = self.next()[1]
            if op == ".":
                if self.next()[0] != "ident":
                    raise AlloyError("line %d: expected a name after '.'" % self.toks[self.i - 1][2])
            elif op == "[":
                self.expr()
                self.expect("]", skip_nl=True)
            else:
                if self.peek(skip_nl=True)[1] != ")":
                    while True:
                        self.expr_nl()
                        if self.peek(skip_nl=True)[1] == ",":
                            self.next(skip_nl=True)
                            if self.peek(skip_nl=True)[1] == ")":
                                break
                            continue
                        break
                self.expect(")", skip_nl=True)
        if changed or isinstance(value, tuple):
            return ("expr", self.text(start))
        return value

    def expr_nl(self):
        while self.peek()[0] == "nl":
            self.next()
        return self.expr()

    def primary(self):
        t = self.next()
        if t[0] == "string":
            try:
                return json.loads(t[1])
            except ValueError:
                raise AlloyError("line %d: bad string %s" % (t[2], t[1]))
        if t[0] == "raw":
            return t[1][1:-1]
        if t[0] == "number":
            return float(t[1])
        if t[0] == "ident":
            if t[1] in ("true", "false"):
                return t[1] == "true"
            if t[1] == "null":
                return None
            return ("expr", t[1])
        if t[1] == "(":
            v = self.expr_nl()
            self.expect(")", skip_nl=True)
            return v
        if t[1] == "[":
            items = []
            while self.peek(skip_nl=True)[1] != "]":
                items.append(self.expr_nl())
                if self.peek(skip_nl=True)[1] == ",":
                    self.next(skip_nl=True)
                elif self.peek(skip_nl=True)[1] != "]":
                    n = self.peek(skip_nl=True)
                    raise AlloyError("line %d: expected ',' or ']' in a list" % n[2])
            self.next(skip_nl=True)
            return items
        if t[1] == "{":
            obj = {}
            while self.peek(skip_nl=True)[1] != "}":
                k = self.next(skip_nl=True)
                if k[0] == "ident":
                    key = k[1]
                elif k[0] == "string":
                    key = json.loads(k[1])
                else:
                    raise AlloyError("line %d: bad object key %r" % (k[2], k[1]))
                self.expect("=", skip_nl=True)
                obj[key] = self.expr_nl()
                if self.peek(skip_nl=True)[1] == ",":
                    self.next(skip_nl=True)
                elif self.peek(skip_nl=True)[1] != "}":
                    n = self.peek(skip_nl=True)
                    raise AlloyError("line %d: expected ',' or '}' in an object (found %r)" % (n[2], n[1]))
            self.next(skip_nl=True)
            return obj
        raise AlloyError("line %d: unexpected %r" % (t[2], t[1]))


def alloy_blocks(body, name):
    return [b for b in body if b[0] == "block" and b[1] == name]


def alloy_attr(body, name, default=None):
    for b in body:
        if b[0] == "attr" and b[1] == name:
            return b[2]
    return default


# --------------------------------------------------------------------------
# The configs.

def check_pipeline(where, stages, source_labels, kubernetes, keys):
    """stages: [(name, config)] in order, in Promtail's vocabulary. source_labels:
    the labels an entry has before the pipeline (target labels and filename)."""
    names = [n for n, _ in stages]
    if kubernetes and (not names or names[0] != "cri"):
        fail("%s: a Kubernetes pipeline must start with the cri stage (has %s)" % (where, names))
    if not kubernetes and "cri" in names:
        fail("%s: a plain file has no CRI prefix; no cri stage" % where)
    for need in ("json", "timestamp", "labels", "structured_metadata", "labeldrop"):
        if need not in names:
            fail("%s: no %s stage" % (where, need))
            return
    order = [names.index(n) for n in ("json", "timestamp", "labels", "structured_metadata")]
    if order != sorted(order):
        fail("%s: stages out of order: %s" % (where, names))
    extracted = set()
    for name, cfg in stages:
        if name == "json":
            exprs = cfg.get("expressions") or {}
            for k, v in exprs.items():
                key = v or k
                if key not in keys:
                    fail("%s: the json stage reads %r, which trail does not write" % (where, key))
                extracted.add(k)
        if name == "timestamp":
            if cfg.get("source") != "timestamp" or cfg.get("format") != "RFC3339Nano":
                fail("%s: the timestamp must come from 'timestamp' as RFC3339Nano: %s" % (where, cfg))
            if cfg.get("action_on_failure") != "skip":
                fail("%s: the timestamp stage must skip on failure (fudge gives the "
                     "predecessor's time)" % where)
            if "timestamp" not in extracted:
                fail("%s: the timestamp stage runs before 'timestamp' is extracted" % where)
        if name == "drop" and "older_than" in cfg:
            if cfg["older_than"] not in ("168h", "7d"):
                fail("%s: older_than should be Loki's reject_old_samples_max_age, 168h" % where)
    labels = set(source_labels)
    if kubernetes:
        labels.add("stream")  # the cri stage adds it
    sm = set()
    for name, cfg in stages:
        if name == "labels":
            for k, v in cfg.items():
                src = v or k
                if k not in STREAM_LABELS:
                    fail("%s: label %r: only service and level are labels" % (where, k))
                if src not in extracted:
                    fail("%s: label %r comes from %r, which no stage extracts" % (where, k, src))
                labels.add(k)
        elif name == "structured_metadata":
            for k, v in cfg.items():
                src = v or k
                if src in labels:
                    # Alloy's stage reads a key from the extracted map and from
                    # a label of the same name: still a label, it goes twice.
                    fail("%s: structured metadata %r is still a label when the stage runs; "
                         "drop the label before it" % (where, src))
                if src not in extracted and src not in source_labels:
                    fail("%s: structured metadata %r comes from %r, which is neither "
                         "extracted nor a target label" % (where, k, src))
                if k not in CONTEXT_KEYS and k not in K8S_METADATA:
                    fail("%s: structured metadata %r is not a context key" % (where, k))
                sm.add(k)
        elif name == "labeldrop":
            labels -= set(cfg)
    if not CONTEXT_KEYS <= sm:
        fail("%s: structured metadata misses %s" % (where, sorted(CONTEXT_KEYS - sm)))
    if labels - STREAM_LABELS:
        fail("%s: entries leave with labels %s; only service and level may be labels"
             % (where, sorted(labels - STREAM_LABELS)))
    if "service" not in labels:
        fail("%s: no service label" % where)
    return sm


def promtail_stages(pipeline):
    out = []
    for st in pipeline:
        if not isinstance(st, dict) or len(st) != 1:
            fail("promtail stage is not a one-key mapping: %r" % (st,))
            continue
        (name, cfg), = st.items()
        out.append((name, cfg if cfg is not None else {}))
    return out


def check_promtail(path, kubernetes, keys):
    with open(path, encoding="utf-8") as f:
        doc = yaml.safe_load(f)
    where = os.path.basename(path)
    for c in doc.get("clients", []):
        if not str(c.get("url", "")).endswith("/loki/api/v1/push"):
            fail("%s: client url %r is not Loki's push endpoint" % (where, c.get("url")))
    if not doc.get("positions", {}).get("filename"):
        fail("%s: no positions file" % where)
    sms = []
    for sc in doc.get("scrape_configs", []):
        w = "%s job %s" % (where, sc.get("job_name"))
        source = {"filename"}
        if kubernetes:
            if not sc.get("kubernetes_sd_configs"):
                fail("%s: no kubernetes_sd_configs" % w)
            for r in sc.get("relabel_configs", []):
                t = r.get("target_label")
                if r.get("action", "replace") == "replace" and t and not t.startswith("__"):
                    source.add(t)
            paths = [r.get("replacement", "") for r in sc.get("relabel_configs", [])
                     if r.get("target_label") == "__path__"]
            if not any(p.startswith("/var/log/pods/") for p in paths):
                fail("%s: __path__ is not made from /var/log/pods/" % w)
        else:
            for s in sc.get("static_configs", []):
                lbls = s.get("labels", {})
                if "__path__" not in lbls:
                    fail("%s: a static config without __path__" % w)
                source |= {k for k in lbls if not k.startswith("__")}
        sms.append(check_pipeline(w, promtail_stages(sc.get("pipeline_stages", [])),
                                  source, kubernetes, keys))
    if not sms:
        fail("%s: no scrape config" % where)
    return sms


ALLOY_STAGE_NAMES = {"stage.cri": "cri", "stage.json": "json", "stage.timestamp": "timestamp",
                     "stage.labels": "labels", "stage.structured_metadata": "structured_metadata",
                     "stage.label_drop": "labeldrop", "stage.drop": "drop"}


def check_alloy(path, kubernetes, keys):
    where = os.path.basename(path)
    with open(path, encoding="utf-8") as f:
        try:
            body = AlloyParser(f.read()).parse()
        except AlloyError as e:
            fail("%s: %s" % (where, e))
            return []
    components = {(b[1], b[2]) for b in body if b[0] == "block"}
    need = {"loki.source.file", "loki.process", "loki.write", "local.file_match"}
    if kubernetes:
        need |= {"discovery.kubernetes", "discovery.relabel"}
    have = {c[0] for c in components}
    if not need <= have:
        fail("%s: missing components %s" % (where, sorted(need - have)))
    # Every reference to a component names one that exists.
    text = open(path, encoding="utf-8").read()
    code = re.sub(r'//[^\n]*|"(?:[^"\\\n]|\\.)*"', "", text)
    for ref in re.findall(r"\b((?:loki|local|discovery)\.[a-z_.]+?)\.([a-z0-9_]+)\.(receiver|targets|output)\b", code):
        if (ref[0], ref[1]) not in components:
            fail("%s: reference to %s.%s, which is not defined" % (where, ref[0], ref[1]))
    for b in alloy_blocks(body, "loki.write"):
        for ep in alloy_blocks(b[3], "endpoint"):
            url = alloy_attr(ep[3], "url")
            if not (isinstance(url, str) and url.endswith("/loki/api/v1/push")):
                fail("%s: loki.write url %r is not Loki's push endpoint" % (where, url))
    source = {"filename"}
    for b in alloy_blocks(body, "local.file_match"):
        pt = alloy_attr(b[3], "path_targets")
        if isinstance(pt, list):
            for t in pt:
                if not isinstance(t, dict) or "__path__" not in t:
                    fail("%s: a path target without __path__" % where)
                else:
                    source |= {k for k in t if not k.startswith("__")}
    for b in alloy_blocks(body, "discovery.relabel"):
        paths = []
        for r in alloy_blocks(b[3], "rule"):
            t = alloy_attr(r[3], "target_label")
            if alloy_attr(r[3], "action", "replace") == "replace" and t and not t.startswith("__"):
                source.add(t)
            if t == "__path__":
                paths.append(alloy_attr(r[3], "replacement", ""))
        if kubernetes and not any(isinstance(p, str) and p.startswith("/var/log/pods/") for p in paths):
            fail("%s: __path__ is not made from /var/log/pods/" % where)
    sms = []
    for b in alloy_blocks(body, "loki.process"):
        stages = []
        for item in b[3]:
            if item[0] != "block":
                continue
            name = ALLOY_STAGE_NAMES.get(item[1])
            if name is None:
                if item[1].startswith("stage."):
                    stages.append((item[1][6:], {}))
                continue
            attrs = {a[1]: a[2] for a in item[3] if a[0] == "attr"}
            if name in ("json",):
                cfg = {"expressions": attrs.get("expressions", {})}
            elif name in ("labels", "structured_metadata"):
                cfg = attrs.get("values", {})
            elif name == "labeldrop":
                cfg = attrs.get("values", [])
            else:
                cfg = attrs
            stages.append((name, cfg))
        sms.append(check_pipeline("%s loki.process %s" % (where, b[2]), stages, source,
                                  kubernetes, keys))
    if not sms:
        fail("%s: no loki.process" % where)
    return sms


def check_grafana_yaml(src):
    d = os.path.join(src, "docs/deploy")
    with open(os.path.join(d, "loki-datasource.yaml"), encoding="utf-8") as f:
        ds = yaml.safe_load(f)
    loki = [x for x in ds.get("datasources", []) if x.get("type") == "loki"]
    tempo = [x for x in ds.get("datasources", []) if x.get("type") == "tempo"]
    queries = []
    if len(loki) != 1:
        fail("loki-datasource.yaml: expected one Loki data source")
    else:
        fields = loki[0].get("jsonData", {}).get("derivedFields", [])
        tids = [f for f in fields if f.get("name") == "trace_id"]
        if not tids:
            fail("loki-datasource.yaml: no derived field trace_id")
        for f in tids:
            uid = f.get("datasourceUid")
            if not tempo or uid != tempo[0].get("uid"):
                fail("loki-datasource.yaml: the trace_id link does not point at the Tempo data source")
            rx = f.get("matcherRegex", "")
            line = '{"timestamp":"2026-11-27T06:22:38.123456Z","level":"info","logger":"http","message":"m","service":"s","trace_id":"4bf92f3577b34da6a3ce929d0e0e4736","span_id":"00f067aa0ba902b7"}'
            m = re.search(rx, line)
            if not m or m.group(1) != "4bf92f3577b34da6a3ce929d0e0e4736":
                fail("loki-datasource.yaml: matcherRegex %r does not take trace_id from a line" % rx)
            if "$${__value.raw}" not in f.get("url", ""):
                fail("loki-datasource.yaml: the link's query should be $${__value.raw} "
                     "($$ keeps provisioning from expanding it)")
    for t in tempo:
        q = t.get("jsonData", {}).get("tracesToLogsV2", {}).get("query")
        if q:
            queries.append(("loki-datasource.yaml tracesToLogsV2",
                            q.replace("$$", "$").replace("${__trace.traceId}",
                                                         "4bf92f3577b34da6a3ce929d0e0e4736")))
    with open(os.path.join(d, "dashboard-provider.yaml"), encoding="utf-8") as f:
        prov = yaml.safe_load(f)
    ps = prov.get("providers", [])
    if not ps or ps[0].get("type") != "file" or not ps[0].get("options", {}).get("path"):
        fail("dashboard-provider.yaml: expected a file provider with options.path")
    return queries


def dashboard_targets(dash):
    """[(panel title, target)] for every query target (a dict with an expr)."""
    out = []

    def walk(x, title):
        if isinstance(x, dict):
            t = x.get("title", title)
            if isinstance(x.get("expr"), str):
                out.append((t, x))
            for k, v in x.items():
                if k != "expr":
                    walk(v, t)
        elif isinstance(x, list):
            for v in x:
                walk(v, title)
    walk(dash.get("panels", []), "")
    return out


def dashboard_exprs(dash):
    return [(t, x["expr"]) for t, x in dashboard_targets(dash)]


def check_dashboard(src):
    path = os.path.join(src, "docs/deploy/grafana-dashboard.json")
    with open(path, encoding="utf-8") as f:
        try:
            dash = json.load(f)
        except ValueError as e:
            fail("grafana-dashboard.json: %s" % e)
            return {}, []
    if not dash.get("uid") or not dash.get("title"):
        fail("grafana-dashboard.json: no uid or title")
    if dash.get("id") not in (None,):
        fail("grafana-dashboard.json: id must be null to import or provision it")
    if not any(i.get("type") == "datasource" and i.get("pluginId") == "loki"
               for i in dash.get("__inputs", [])):
        fail("grafana-dashboard.json: no __inputs entry for a Loki data source")
    variables = {v.get("name"): v for v in dash.get("templating", {}).get("list", [])}
    for need in ("service", "request_id", "trace_id"):
        if need not in variables:
            fail("grafana-dashboard.json: no template variable %s" % need)
    exprs = dashboard_exprs(dash)
    if not exprs:
        fail("grafana-dashboard.json: no panel has a LogQL expr")
    for p in dash.get("panels", []):
        if p.get("type") == "row":
            continue
        ds = p.get("datasource", {})
        if ds.get("type") != "loki" or ds.get("uid") != "${datasource}":
            fail("grafana-dashboard.json: panel %r does not use the datasource variable" % p.get("title"))
        if "gridPos" not in p:
            fail("grafana-dashboard.json: panel %r has no gridPos" % p.get("title"))
    titles = " ".join(p.get("title", "").lower() for p in dash.get("panels", []))
    for word in ("level", "error", "request", "latency", "5xx", "slow"):
        if word not in titles:
            fail("grafana-dashboard.json: no panel about %r" % word)
    logs = [p for p in dash.get("panels", []) if p.get("type") == "logs"
            and any("$request_id" in t.get("expr", "") and "$trace_id" in t.get("expr", "")
                    for t in p.get("targets", []))]
    if not logs:
        fail("grafana-dashboard.json: no logs panel filtered by $request_id and $trace_id")
    return variables, exprs


def interpolate(expr, variables):
    """A dashboard expression with Grafana's variables replaced as for a query."""
    expr = re.sub(r"\$\{?__(?:interval|rate_interval|range|auto)\}?", "1h", expr)
    for name, v in variables.items():
        cur = v.get("current", {}).get("value")
        if v.get("type") == "query":
            cur = v.get("allValue") or ".+"
        if isinstance(cur, list):
            cur = cur[0]
        if cur is None:
            cur = v.get("query", "")
        expr = re.sub(r"\$\{%s(?::\w+)?\}|\$%s\b" % (name, name), lambda m: str(cur), expr)
    return expr


# --------------------------------------------------------------------------
# A LogQL evaluator for the forms used here.

class LogQLError(Exception):
    pass


LQ_TOKEN = re.compile(r"""
    (?P<ws>\s+)
  | (?P<string>"(?:[^"\\]|\\.)*"|`[^`]*`)
  | (?P<duration>\d+(?:ms|s|m|h|d|w|y)(?:\d+(?:ms|s|m|h))*(?![\w.]))
  | (?P<number>\d+(?:\.\d+)?(?:[eE][+-]?\d+)?)
  | (?P<ident>[A-Za-z_][A-Za-z0-9_]*)
  | (?P<op>\|=|\|~|!=|!~|=~|==|>=|<=|[{}()\[\],|=<>])
""", re.X)


def lq_tokens(text):
    toks, pos = [], 0
    while pos < len(text):
        m = LQ_TOKEN.match(text, pos)
        if not m:
            raise LogQLError("unexpected %r at %d" % (text[pos], pos))
        if m.lastgroup != "ws":
            toks.append((m.lastgroup, m.group()))
        pos = m.end()
    toks.append(("eof", ""))
    return toks


def lq_string(tok):
    if tok.startswith("`"):
        return tok[1:-1]
    return json.loads(tok)


RANGE_OPS = {"count_over_time", "rate", "sum_over_time", "avg_over_time", "max_over_time",
             "min_over_time", "quantile_over_time", "bytes_over_time"}
VECTOR_OPS = {"sum", "avg", "min", "max", "count", "topk", "bottomk"}


class LQParser:
    def __init__(self, text):
        self.toks = lq_tokens(text)
        self.i = 0

    def peek(self, k=0):
        return self.toks[self.i + k]

    def next(self):
        t = self.toks[self.i]
        self.i += 1
        return t

    def expect(self, val):
        t = self.next()
        if t[1] != val:
            raise LogQLError("expected %r, found %r" % (val, t[1]))
        return t

    def parse(self):
        if self.peek()[1] == "{":
            q = ("log", self.logexpr())
        else:
            q = self.metric()
        if self.peek()[0] != "eof":
            raise LogQLError("trailing %r" % self.peek()[1])
        return q

    def grouping(self):
        if self.peek()[1] in ("by", "without"):
            kind = self.next()[1]
            self.expect("(")
            names = []
            while self.peek()[1] != ")":
                names.append(self.next()[1])
                if self.peek()[1] == ",":
                    self.next()
            self.expect(")")
            return (kind, names)
        return None

    def metric(self):
        t = self.next()
        if t[1] == "(":
            m = self.metric()
            self.expect(")")
            return m
        op = t[1]
        if op in VECTOR_OPS:
            g = self.grouping()
            self.expect("(")
            param = None
            if op in ("topk", "bottomk"):
                param = float(self.next()[1])
                self.expect(",")
            inner = self.metric()
            self.expect(")")
            g = g or self.grouping()
            return ("vector", op, param, g, inner)
        if op in RANGE_OPS:
            self.expect("(")
            param = None
            if op == "quantile_over_time":
                param = float(self.next()[1])
                self.expect(",")
            log = self.logexpr()
            self.expect("[")
            d = self.next()
            if d[0] != "duration":
                raise LogQLError("expected a range, found %r" % d[1])
            self.expect("]")
            self.expect(")")
            g = self.grouping()
            return ("range", op, param, g, log, duration_seconds(d[1]))
        raise LogQLError("unknown function %r" % op)

    def logexpr(self):
        self.expect("{")
        matchers = []
        while self.peek()[1] != "}":
            name = self.next()[1]
            op = self.next()[1]
            if op not in ("=", "!=", "=~", "!~"):
                raise LogQLError("bad matcher operator %r" % op)
            val = lq_string(self.next()[1])
            matchers.append((name, op, val))
            if self.peek()[1] == ",":
                self.next()
        self.expect("}")
        stages = []
        while True:
            t = self.peek()
            if t[1] in ("|=", "!=", "|~", "!~"):
                self.next()
                stages.append(("line", t[1], lq_string(self.next()[1])))
            elif t[1] == "|":
                self.next()
                w = self.peek()
                if w[1] == "json":
                    self.next()
                    fields = []
                    while self.peek()[0] == "ident" and self.peek(1)[1] not in (
                            "=", "=~", "!=", "!~", ">", ">=", "<", "<=", "=="):
                        fields.append(self.next()[1])
                        if self.peek()[1] != ",":
                            break
                        self.next()
                    if self.peek()[0] == "ident":
                        raise LogQLError("| json name=\"expression\" is not supported here")
                    stages.append(("json", fields))
                elif w[1] == "unwrap":
                    self.next()
                    stages.append(("unwrap", self.next()[1]))
                else:
                    stages.append(("filter", self.labelfilter()))
            else:
                return (matchers, stages)

    def labelfilter(self):
        left = self.labelcmp()
        while self.peek()[1] in ("and", "or", ","):
            op = self.next()[1]
            right = self.labelcmp()
            left = ("or" if op == "or" else "and", left, right)
        return left

    def labelcmp(self):
        name = self.next()
        if name[0] != "ident":
            raise LogQLError("expected a label name, found %r" % name[1])
        op = self.next()[1]
        v = self.next()
        if v[0] == "string":
            return ("cmp", name[1], op, lq_string(v[1]))
        if v[0] == "number":
            return ("num", name[1], op, float(v[1]))
        raise LogQLError("expected a value after %s %s" % (name[1], op))


def duration_seconds(d):
    total = 0.0
    for n, u in re.findall(r"(\d+)(ms|s|m|h|d|w|y)", d):
        total += int(n) * {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400,
                           "w": 604800, "y": 31536000}[u]
    return total


class Num(str):
    """A JSON number, kept as the text the line has (what Loki's | json gives)."""


def load_line(line):
    return json.loads(line, parse_int=Num, parse_float=Num,
                      parse_constant=lambda c: (_ for _ in ()).throw(ValueError(c)))


def scalar_text(v):
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, str):
        return str(v)
    return None


def sanitize(k):
    return re.sub(r"[^A-Za-z0-9_]", "_", k)


def json_all(obj, prefix, out):
    for k, v in obj.items():
        key = prefix + sanitize(k) if prefix else sanitize(k)
        if isinstance(v, dict):
            json_all(v, key + "_", out)
        elif isinstance(v, (list, type(None))):
            continue
        else:
            out.append((key, scalar_text(v)))


# What Loki 3 adds to every line by itself: the label service_name, copied
# from the label service (discover_service_name), and the structured metadata
# detected_level, copied from the label level (discover_log_levels).
LOKI3_LABELS = {"service_name": "service"}
LOKI3_METADATA = {"detected_level": "level"}


class Entry:
    def __init__(self, line, stream_labels, sm_keys):
        self.raw = line.rstrip("\n")
        self.obj = load_line(self.raw)
        self.ts = self.obj["timestamp"]
        self.stream = {k: str(self.obj[k]) for k in stream_labels if k in self.obj}
        self.sm = {k: str(self.obj[k]) for k in sm_keys if k in self.obj}
        for name, source in LOKI3_LABELS.items():
            if source in self.stream:
                self.stream[name] = self.stream[source]
        for name, source in LOKI3_METADATA.items():
            if source in self.stream:
                self.sm[name] = self.stream[source]


def run_pipeline(entry, stages):
    """Returns (labels, parsed, error, unwrapped) or None when the line is filtered out."""
    parsed = {}
    err = None
    value = None

    def get(name):
        """The label's value, or None when the line has no such label."""
        if name == "__error__":
            return err or ""
        if name in parsed:
            return parsed[name]
        if name in entry.sm:
            return entry.sm[name]
        return entry.stream.get(name)

    def test(f):
        nonlocal err
        kind = f[0]
        if kind in ("and", "or"):
            a, b = test(f[1]), test(f[2])
            return (a and b) if kind == "and" else (a or b)
        _, name, op, val = f
        if kind == "cmp":
            v = get(name) or ""
            if op in ("=", "=="):
                return v == val
            if op == "!=":
                return v != val
            if op == "=~":
                return re.fullmatch(val, v, re.S) is not None
            if op == "!~":
                return re.fullmatch(val, v, re.S) is None
            raise LogQLError("operator %s" % op)
        # Loki: a missing label fails the filter; one that is not a number
        # passes it, with __error__ set (which fails a metric query later).
        v = get(name)
        if v is None:
            return False
        try:
            x = float(v)
        except ValueError:
            err = err or "LabelFilterErr"
            return True
        return {"==": x == val, "=": x == val, "!=": x != val, ">": x > val, ">=": x >= val,
                "<": x < val, "<=": x <= val}[op]

    for st in stages:
        if st[0] == "line":
            _, op, s = st
            hit = (s in entry.raw) if op in ("|=", "!=") else re.search(s, entry.raw) is not None
            if hit != (op in ("|=", "|~")):
                return None
        elif st[0] == "json":
            if st[1]:
                for name in st[1]:
                    if name not in entry.obj:
                        # Loki sets a missing key to "", unless the line has
                        # the name already (structured metadata).
                        if name not in entry.sm:
                            parsed[name + "_extracted" if name in entry.stream else name] = ""
                        continue
                    v = entry.obj.get(name)
                    if isinstance(v, (dict, list)):
                        text = json.dumps(v, separators=(",", ":"), ensure_ascii=False)
                    elif v is None:
                        text = ""
                    else:
                        text = scalar_text(v)
                    key = name + "_extracted" if name in entry.stream else name
                    parsed[key] = text
            else:
                flat = []
                json_all(entry.obj, "", flat)
                for k, v in flat:
                    key = k + "_extracted" if k in entry.stream else k
                    parsed[key] = v
        elif st[0] == "unwrap":
            # Loki: a line whose key is missing, empty or null gives no
            # sample (it is skipped, not an error); only a value that is not
            # a number sets __error__.
            text = get(st[1])
            if text is None or text == "":
                return None
            try:
                value = float(text)
            except ValueError:
                err = err or "SampleExtractionErr"
            parsed.pop(st[1], None)
        elif st[0] == "filter":
            if not test(st[1]):
                return None
    labels = dict(entry.stream)
    labels.update(entry.sm)
    labels.update(parsed)
    if err:
        labels["__error__"] = err
    for st in stages:
        if st[0] == "unwrap":
            labels.pop(st[1], None)
    return labels, value, err


def select(entries, q):
    matchers, stages = q
    for e in entries:
        ok = True
        for name, op, val in matchers:
            v = e.stream.get(name, "")
            if op == "=":
                ok = v == val
            elif op == "!=":
                ok = v != val
            elif op == "=~":
                ok = re.fullmatch(val, v) is not None
            else:
                ok = re.fullmatch(val, v) is None
            if not ok:
                break
        if not ok:
            continue
        r = run_pipeline(e, stages)
        if r is not None:
            yield e, r


def loki_quantile(q, values):
    if not values:
        return math.nan
    values = sorted(values)
    n = float(len(values))
    rank = q * (n - 1)
    lower = max(0.0, math.floor(rank))
    upper = min(n - 1, lower + 1)
    weight = rank - math.floor(rank)
    return values[int(lower)] * (1 - weight) + values[int(upper)] * weight


def key_of(labels, grouping):
    if grouping is None:
        return tuple(sorted(labels.items()))
    kind, names = grouping
    if kind == "by":
        return tuple(sorted((k, v) for k, v in labels.items() if k in names and v != ""))
    return tuple(sorted((k, v) for k, v in labels.items() if k not in names))


def eval_metric(entries, m):
    if m[0] == "range":
        _, op, param, grouping, log, secs = m
        unwrap = any(s[0] == "unwrap" for s in log[1])
        series = {}
        for e, (labels, value, err) in select(entries, log):
            if err:
                raise LogQLError("the pipeline leaves %s on a line: %s" % (err, e.raw[:120]))
            if op in ("count_over_time", "bytes_over_time") or (op == "rate" and not unwrap):
                v = float(len(e.raw)) if op == "bytes_over_time" else 1.0
            else:
                if not unwrap:
                    raise LogQLError("%s needs unwrap" % op)
                v = value
            series.setdefault(key_of(labels, grouping), []).append(v)
        out = {}
        for k, vs in series.items():
            if op == "quantile_over_time":
                out[k] = loki_quantile(param, vs)
            elif op in ("count_over_time", "sum_over_time", "bytes_over_time"):
                s = 0.0
                for v in vs:
                    s += v
                out[k] = s
            elif op == "rate":
                s = 0.0
                for v in vs:
                    s += v
                out[k] = s / secs
            elif op == "avg_over_time":
                out[k] = sum(vs) / len(vs)
            elif op == "max_over_time":
                out[k] = max(vs)
            elif op == "min_over_time":
                out[k] = min(vs)
        return out
    if m[0] == "vector":
        _, op, param, grouping, inner = m
        vec = eval_metric(entries, inner)
        if op in ("topk", "bottomk"):
            items = sorted(vec.items(), key=lambda kv: (-kv[1] if op == "topk" else kv[1], kv[0]))
            return dict(items[: int(param)])
        groups = {}
        for k, v in sorted(vec.items()):
            groups.setdefault(key_of(dict(k), grouping or ("by", [])), []).append(v)
        out = {}
        for k, vs in groups.items():
            if op == "sum":
                s = 0.0
                for v in vs:
                    s += v
                out[k] = s
            elif op == "count":
                out[k] = float(len(vs))
            elif op == "avg":
                out[k] = sum(vs) / len(vs)
            elif op == "max":
                out[k] = max(vs)
            elif op == "min":
                out[k] = min(vs)
        return out
    raise LogQLError("not a metric query")


def go_float(v):
    """strconv.FormatFloat(v, 'f', -1, 64): what Loki's API writes for a sample."""
    if math.isnan(v):
        return "NaN"
    if math.isinf(v):
        return "+Inf" if v > 0 else "-Inf"
    r = repr(v)
    if "e" in r or "E" in r:
        r = format(Decimal(r), "f")
    if r.endswith(".0"):
        r = r[:-2]
    return r


COMPARISONS = ("==", "!=", ">=", "<=", ">", "<")
BINARY_LEVELS = (COMPARISONS, ("+", "-"), ("*", "/", "%"))


def split_binary(text):
    """(left, op, right) at the last top-level binary operator of the lowest
    precedence, outside brackets and strings; None when there is none (a log
    query, whose pipeline's operators are at the top level, has none)."""
    if text.lstrip().startswith("{"):
        return None
    depth, i, found = 0, 0, {}
    while i < len(text):
        c = text[i]
        if c in "\"`":
            end = c
            i += 1
            while i < len(text) and text[i] != end:
                i += 2 if (end == '"' and text[i] == "\\") else 1
        elif c in "({[":
            depth += 1
        elif c in ")}]":
            depth -= 1
        elif depth == 0 and c in "=!<>+-*/%":
            op = text[i:i + 2] if text[i:i + 2] in COMPARISONS else c
            if op in ("=", "!"):
                raise LogQLError("bad operator at %d: %s" % (i, text))
            for level, ops in enumerate(BINARY_LEVELS):
                if op in ops:
                    found[level] = (i, op)
            i += len(op)
            continue
        i += 1
    for level in range(len(BINARY_LEVELS)):
        if level in found:
            i, op = found[level]
            return text[:i].strip(), op, text[i + len(op):].strip()
    return None


def apply_binary(op, a, b):
    if op in COMPARISONS:
        return {"==": a == b, "!=": a != b, ">=": a >= b, "<=": a <= b, ">": a > b,
                "<": a < b}[op]
    if op == "/":
        return a / b if b != 0 else (math.nan if a == 0 else math.copysign(math.inf, a))
    if op == "%":
        return math.fmod(a, b) if b != 0 else math.nan
    return {"+": a + b, "-": a - b, "*": a * b}[op]


def eval_expr(entries, text):
    """A metric expression with binary operators (an alert rule's): a vector,
    {labels tuple: value}, or a float for a scalar. Vector with vector matches
    identical label sets; a comparison filters, keeping the left value."""
    text = text.strip()
    parts = split_binary(text)
    if parts is None:
        if re.fullmatch(r"[0-9.]+(?:[eE][+-]?[0-9]+)?", text):
            return float(text)
        if text.startswith("(") and text.endswith(")"):
            inner = text[1:-1]
            try:
                return eval_expr(entries, inner)
            except LogQLError:
                pass
        return eval_metric(entries, LQParser(text).parse())
    left, op, right = parts
    a, b = eval_expr(entries, left), eval_expr(entries, right)
    if isinstance(a, float) and isinstance(b, float):
        return float(apply_binary(op, a, b))
    out = {}
    if isinstance(b, float) or isinstance(a, float):
        vec, scalar = (a, b) if isinstance(b, float) else (b, a)
        for k, v in vec.items():
            x, y = (v, scalar) if isinstance(b, float) else (scalar, v)
            r = apply_binary(op, x, y)
            if op in COMPARISONS:
                if r:
                    out[k] = v
            else:
                out[k] = r
        return out
    for k, v in a.items():
        if k in b:
            r = apply_binary(op, v, b[k])
            if op in COMPARISONS:
                if r:
                    out[k] = v
            else:
                out[k] = r
    return out


def evaluate(entries, text):
    if split_binary(text) is not None:
        vec = eval_expr(entries, text)
        return ["{%s} %s" % (", ".join('%s="%s"' % kv for kv in sorted(k)), go_float(v))
                for k, v in sorted(vec.items())]
    q = LQParser(text).parse()
    if q[0] == "log":
        return [e.raw for e, _ in select(entries, q[1])]
    vec = eval_metric(entries, q)
    if q[0] == "vector" and q[1] in ("topk", "bottomk"):
        ordered = list(vec.items())
    else:
        ordered = sorted(vec.items())
    out = []
    for k, v in ordered:
        labels = ", ".join('%s="%s"' % (n, val) for n, val in sorted(k))
        out.append("{%s} %s" % (labels, go_float(v)))
    return out


# --------------------------------------------------------------------------
# Fields a LogQL expression uses.

def strip_strings(expr):
    return re.sub(r'"(?:[^"\\]|\\.)*"|`[^`]*`', '""', expr)


def fields_used(expr):
    """(selector labels, json fields, filtered labels, unwrapped, grouping labels, json-all)."""
    bare = strip_strings(expr)
    selector = set()
    for sel in re.findall(r"\{([^}]*)\}", bare):
        selector.update(re.findall(r"([A-Za-z_]\w*)\s*(?:=~|!~|!=|=)", sel))
    json_fields, json_all_used = set(), False
    for m in re.finditer(r"\|\s*json\b((?:\s*[A-Za-z_]\w*\s*,?)*)", bare):
        names = re.findall(r"[A-Za-z_]\w*", m.group(1))
        names = [n for n in names if n not in ("unwrap", "and", "or", "json")]
        if names:
            json_fields.update(names)
        else:
            json_all_used = True
    unwrap = set(re.findall(r"\bunwrap\s+([A-Za-z_]\w*)", bare))
    grouping = set()
    for m in re.finditer(r"\b(?:by|without)\s*\(([^)]*)\)", bare):
        grouping.update(re.findall(r"[A-Za-z_]\w*", m.group(1)))
    filters = set()
    for seg in re.split(r"(?<![|!])\|(?![=~])", re.sub(r"\{[^}]*\}", "", bare))[1:]:
        seg = seg.strip()
        if re.match(r"(json|unwrap|line_format|label_format|logfmt|pattern|regexp)\b", seg):
            continue
        filters.update(re.findall(r"\b([A-Za-z_]\w*)\s*(?:=~|!~|!=|==|>=|<=|=|>|<)", seg))
    return selector, json_fields, filters, unwrap, grouping, json_all_used


def value_filters(expr, name):
    return re.findall(r'\b%s\s*(?:=|==|!=)\s*"([^"]*)"' % name, expr)


def check_expr_fields(where, expr, keys, loggers, messages, sm_keys):
    selector, json_fields, filters, unwrap, grouping, json_all_used = fields_used(expr)
    ok = True

    def bad(msg):
        nonlocal ok
        ok = False
        fail("%s: %s\n    %s" % (where, msg, expr))

    if selector - STREAM_LABELS:
        bad("selects on %s, which are not labels (only service and level are)"
            % sorted(selector - STREAM_LABELS))
    if json_fields - keys:
        bad("| json reads %s, which trail does not write" % sorted(json_fields - keys))
    for name in filters | unwrap | grouping:
        if name == "__error__" or name in STREAM_LABELS:
            continue
        if name in json_fields:
            continue
        if name in sm_keys:
            continue
        if json_all_used and name in keys:
            continue
        bad("uses %r, which is neither a label, structured metadata, nor a field its "
            "| json extracts from trail's keys" % name)
    for v in value_filters(expr, "logger"):
        if v not in loggers and not v.startswith("$"):
            bad("filters on logger %r, which trail's documents do not name" % v)
    for v in value_filters(expr, "message"):
        if v not in messages:
            bad("filters on message %r, which trail's documents do not name" % v)
    for s in re.findall(r'\|=\s*"([^"]*)"', expr):
        if not (any(s in m for m in messages) or re.fullmatch(r"[A-Za-z0-9._:-]+", s)
                or s.startswith("$")):
            bad("line filter %r matches no message trail writes" % s)
    return ok


# --------------------------------------------------------------------------
# The cookbook.

FENCE = re.compile(r"^```(\w*)[ \t]*\n(.*?)^```[ \t]*$", re.M | re.S)


def cookbook_blocks(text):
    """[(query, output or None, output span)] for each ```logql block."""
    blocks = [(m.group(1), m.group(2), m.span(2)) for m in FENCE.finditer(text)]
    out = []
    for i, (lang, body, _) in enumerate(blocks):
        if lang != "logql":
            continue
        nxt = blocks[i + 1] if i + 1 < len(blocks) else None
        if nxt and nxt[0] == "output":
            out.append((body.strip(), nxt[1], nxt[2]))
        else:
            out.append((body.strip(), None, None))
    return out


INLINE = re.compile(r"(?<!`)`([^`\n]+)`(?!`)")


def is_query(text):
    """True when text is a whole LogQL query the evaluator's parser takes."""
    text = text.strip()
    if "{" not in text or not (text.startswith("{") or re.match(r"[a-z_]+\s*(?:by|without|\()", text)):
        return False
    if "$" in text:  # a Grafana template, not a query
        return False
    try:
        if split_binary(text) is None:
            LQParser(text).parse()
        else:
            eval_expr([], text)
    except (LogQLError, ValueError, IndexError):
        return False
    return True


def doc_queries(text):
    """Every LogQL query of a markdown page, in order, once each: the ```logql
    blocks, the lines of unlabelled blocks and the inline code spans that are
    whole queries (`{service="orders-api"}`, the Loki 2 forms)."""
    out = []
    for m in FENCE.finditer(text):
        lang, body = m.group(1), m.group(2)
        if lang == "logql":
            out.append(body.strip())
        elif lang == "":
            out += [l.strip() for l in body.splitlines() if is_query(l)]
    prose = FENCE.sub("", text)
    out += [m.group(1).strip() for m in INLINE.finditer(prose) if is_query(m.group(1))]
    seen, uniq = set(), []
    for q in out:
        if q not in seen:
            seen.add(q)
            uniq.append(q)
    return uniq


def main():
    src = sys.argv[1]
    update = "--update" in sys.argv[2:]
    if yaml is None:
        print("check_deploy: the python3 module yaml is missing (Debian: python3-yaml)")
        return 1
    keys, loggers, messages = trail_vocabulary(src)
    d = os.path.join(src, "docs/deploy")
    sms = []
    for name, k8s in (("promtail-file.yaml", False), ("promtail-kubernetes.yaml", True)):
        try:
            sms += check_promtail(os.path.join(d, name), k8s, keys)
        except yaml.YAMLError as e:
            fail("%s: %s" % (name, e))
    for name, k8s in (("alloy-file.alloy", False), ("alloy-kubernetes.alloy", True)):
        sms += check_alloy(os.path.join(d, name), k8s, keys)
    sm_keys = set.intersection(*[s for s in sms if s]) if sms and all(sms) else CONTEXT_KEYS
    try:
        ds_queries = check_grafana_yaml(src)
    except yaml.YAMLError as e:
        fail("Grafana provisioning YAML: %s" % e)
        ds_queries = []
    variables, dash_exprs = check_dashboard(src)

    with open(os.path.join(src, "tests/deploy/sample.log"), encoding="utf-8") as f:
        entries = [Entry(l, STREAM_LABELS, CONTEXT_KEYS) for l in f if l.strip()]
    entries.sort(key=lambda e: e.ts)

    # The dashboard: fields, and each expression returns something on the sample.
    for title, expr in dash_exprs:
        check_expr_fields("dashboard panel %r" % title, expr, keys, loggers, messages, sm_keys)
        q = interpolate(expr, variables)
        try:
            if not evaluate(entries, q):
                fail("dashboard panel %r: returns nothing on the sample: %s" % (title, q))
        except LogQLError as e:
            fail("dashboard panel %r: %s: %s" % (title, e, q))
    for where, expr in ds_queries:
        check_expr_fields(where, expr, keys, loggers, messages, sm_keys)
        try:
            if not evaluate(entries, expr):
                fail("%s: returns nothing on the sample" % where)
        except LogQLError as e:
            fail("%s: %s" % (where, e))

    # The cookbook.
    path = os.path.join(src, "docs/loki.md")
    with open(path, encoding="utf-8") as f:
        text = f.read()
    blocks = cookbook_blocks(text)
    if len(blocks) < 8:
        fail("docs/loki.md: only %d logql blocks" % len(blocks))
    edits = []
    for query, output, span in blocks:
        check_expr_fields("docs/loki.md", query, keys, loggers, messages, sm_keys)
        try:
            got = evaluate(entries, query)
        except LogQLError as e:
            fail("docs/loki.md: %s\n    %s" % (e, query))
            continue
        if not got:
            fail("docs/loki.md: returns nothing on the sample:\n    %s" % query)
        want = "\n".join(got) + "\n"
        if output is None:
            fail("docs/loki.md: no ```output block after\n    %s" % query)
        elif output != want:
            if update:
                edits.append((span, want))
            else:
                fail("docs/loki.md: the documented output differs from the sample's for\n    %s\n"
                     "--- documented\n%s--- computed\n%s" % (query, output, want))
    if update and edits:
        for (a, b), want in sorted(edits, reverse=True):
            text = text[:a] + want + text[b:]
        with open(path, "w", encoding="utf-8") as f:
            f.write(text)
        print("check_deploy: rewrote %d output blocks of docs/loki.md" % len(edits))

    n = len(blocks) + len(dash_exprs) + len(ds_queries)
    if FAILURES:
        print("check_deploy: %d failures" % len(FAILURES))
        return 1
    print("check_deploy: configs, dashboard and %d LogQL expressions agree with trail's "
          "lines (%d cookbook outputs recomputed)" % (n, len(blocks)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
