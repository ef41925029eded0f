#!/usr/bin/env python3
"""Checks that the documentation says what the code does.

usage: scripts/check_docs.py [--build-dir DIR] [--cc CC] [--cxx CXX]
                             [--only code,names,env,index] [-v]

Four checks, each naming the file, the line and what is wrong:

  code   Every ```c and ```cpp (or ```c++) block of README.md, docs/*.md and
         docs/deploy/*.md compiles: C with -std=c11, C++ with -std=c++17,
         both with -Wall -Wextra -Werror and the include directories of
         include/ and of the server libraries (pkg-config) an adapter header
         the block uses needs. The HTML comment on the line before the fence
         says what the block is (docs/README.md, "Code blocks"):
           (none)                       a whole translation unit; linked
                                        against the build's libraries when
                                        it has main()
           <!-- fragment -->            statements: compiled inside a
                                        function, after the headers, with
                                        the usual variables (lg, ctx, ...)
           <!-- fragment: file scope --> declarations or functions: compiled
                                        after the headers
           <!-- fragment; given: DECLS --> either kind, after the C
                                        declarations DECLS (what the
                                        surrounding text takes as known)
           <!-- synopsis -->            a copy of the header's declarations:
                                        compiled after the headers, so a
                                        prototype must match the header's;
                                        each #define must name a macro the
                                        headers define, with the same
                                        parameters (and the same value, for
                                        a constant); each struct, union and
                                        enum must have the header's members
                                        (offsets and size) or enumerators
                                        (values). An empty body ("private
                                        members") only needs the type.
           <!-- not compiled: REASON --> a call form with placeholders
  names  Every public function, macro, type and enumerator of include/trail.h
         and include/trail/*.h is named on the page a user reads for that
         header (HEADER_PAGES below). Not counted as public: names that begin
         with TRAIL__ or trail__ (internal), include guards (the #ifndef X /
         #define X that opens a header) and TRAIL_API (the export attribute).
  env    Every TRAIL_* environment variable that lib/ and adapters/ read
         (getenv() calls, and the string literals of lib/config.c's table of
         variables) has a section (a heading) in docs/configuration.md, and
         every variable that page names in a heading or in a NAME=value
         example is read by the code.
  index  docs/README.md links every page of docs/ and docs/deploy/, and the
         "Documentation" section of README.md does too; every link of both
         leads to a file that exists.

The build directory (default build/) provides the libraries a whole program
is linked against; without them, programs are compiled but not linked.
Exits 1 when any check fails, 2 on a usage error.
"""

import argparse
import concurrent.futures
import glob
import os
import re
import shlex
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# The page a user reads for each installed header. A header that is not
# listed here is looked for on docs/NAME.md or docs/middleware-NAME.md.
HEADER_PAGES = {
    "include/trail.h": ["docs/api.md"],
    "include/trail/http.h": ["docs/middleware.md"],
    "include/trail/journald.h": ["docs/journald.md"],
}

# Adapter headers: the pkg-config modules (or plain flags) a block that
# includes one needs, and the build's library to link a program with.
ADAPTERS = {
    "mhd": (["libmicrohttpd"], []),
    "civetweb": ([], ["-lcivetweb"]),
    "evhttp": (["libevent"], []),
    "curl": (["libcurl"], []),
    "fcgi": (["fcgi"], []),
    "ulfius": (["libulfius"], []),
    "journald": (["libsystemd"], []),
}

C_FLAGS = ["-std=c11", "-Wall", "-Wextra", "-Werror"]
CXX_FLAGS = ["-std=c++17", "-Wall", "-Wextra", "-Werror"]
FRAGMENT_FLAGS = ["-Wno-unused"]

# What every fragment sees before its own lines.
PRELUDE_HEADERS = """\
#define _GNU_SOURCE
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <jansson.h>
#include <trail.h>
"""

# The variables a statement fragment may use without declaring them. The
# fragment runs in a nested block, so one that declares its own shadows
# these.
PRELUDE_VARIABLES = """\
  trail_logger *lg = trail_logger_get("app"), *logger = lg, *http = lg;
  trail_logger *db = trail_logger_get("db");
  trail_ctx ctx, request;
  trail_config_error err;
  const char *path = "/var/log/app.log", *message = "message";
  const char *tenant = "acme", *traceparent = NULL, *tracestate = NULL;
  size_t traceparent_len = 0, tracestate_len = 0;
  int fd = 1, rc = 0;
  char buf[4096];
  (void)ctx; (void)err; (void)buf;
"""

MARKER_RE = re.compile(r"^\s*<!--\s*(.*?)\s*-->\s*$")
FENCE_RE = re.compile(r"^(\s*)(`{3,})\s*([A-Za-z0-9_+-]*)\s*$")
IDENT_RE = re.compile(r"[A-Za-z_]\w*")


class Problems:
    def __init__(self):
        self.items = []

    def add(self, where, what):
        self.items.append(f"{where}: {what}")


def read(path):
    with open(os.path.join(ROOT, path), encoding="utf-8") as f:
        return f.read()


def doc_pages():
    pages = ["README.md"]
    pages += sorted(
        os.path.relpath(p, ROOT) for p in glob.glob(os.path.join(ROOT, "docs", "*.md"))
    )
    pages += sorted(
        os.path.relpath(p, ROOT)
        for p in glob.glob(os.path.join(ROOT, "docs", "deploy", "*.md"))
    )
    return pages


def strip_comments(text):
    """C comments and string contents out, newlines kept."""

    def repl(m):
        s = m.group(0)
        if s.startswith("/"):
            return re.sub(r"[^\n]", " ", s)
        return s

    return re.sub(
        r'/\*.*?\*/|//[^\n]*|"(?:\\.|[^"\\\n])*"|\'(?:\\.|[^\'\\\n])*\'',
        repl,
        text,
        flags=re.S,
    )


# ---- the code blocks ------------------------------------------------------


class Block:
    def __init__(self, page, line, lang, marker, text):
        self.page = page
        self.line = line  # the first line of the block's text, 1-based
        self.lang = lang
        self.marker = marker
        self.text = text

    @property
    def where(self):
        return f"{self.page}:{self.line - 1}"


def code_blocks(page, problems):
    lines = read(page).split("\n")
    blocks = []
    i = 0
    while i < len(lines):
        m = FENCE_RE.match(lines[i])
        if not m:
            i += 1
            continue
        ticks, lang = m.group(2), m.group(3).lower()
        j = i + 1
        while j < len(lines):
            c = FENCE_RE.match(lines[j])
            if c and c.group(3) == "" and len(c.group(2)) >= len(ticks):
                break
            j += 1
        if j == len(lines):
            problems.add(f"{page}:{i + 1}", "code block never closed")
        marker = None
        k = i - 1
        while k >= 0 and lines[k].strip() == "":
            k -= 1
        if k >= 0:
            mm = MARKER_RE.match(lines[k])
            if mm:
                marker = mm.group(1)
        if lang in ("c", "cpp", "c++"):
            indent = len(m.group(1))
            body = [ln[indent:] if ln[:indent].strip() == "" else ln for ln in lines[i + 1 : j]]
            blocks.append(Block(page, i + 2, "c" if lang == "c" else "c++", marker, "\n".join(body)))
        i = j + 1
    return blocks


def pkg_config(modules, what):
    if not modules:
        return []
    try:
        out = subprocess.run(
            ["pkg-config", what] + modules, capture_output=True, text=True, check=True
        ).stdout
    except (OSError, subprocess.CalledProcessError):
        return []
    return shlex.split(out)


def adapters_used(text):
    used = []
    for name in ADAPTERS:
        if re.search(rf"#\s*include\s*<trail/{name}\.h>|\btrail_{name}(_|\b)|\bTRAIL_{name.upper()}_", text):
            used.append(name)
    return used


def adapter_includes(text):
    inc = []
    if re.search(r"\btrail_http_|\bTRAIL_HTTP_", text):
        inc.append("#include <trail/http.h>")
    for name in adapters_used(text):
        if name == "evhttp":
            inc += ["#include <event2/event.h>", "#include <event2/http.h>", "#include <event2/buffer.h>"]
        inc.append(f"#include <trail/{name}.h>")
    return "\n".join(inc) + "\n"


def line_directive(block, offset=0):
    return f'#line {block.line + offset} "{block.page}"\n'


def synopsis_source(block, header_defs, problems):
    """The synopsis block as C that checks it against the headers."""
    text = strip_comments(block.text)
    out_lines = text.split("\n")
    checks = []
    # #define lines, with their continuations.
    i = 0
    while i < len(out_lines):
        m = re.match(r"\s*#\s*define\s+(\w+)(\([^)]*\))?(.*)$", out_lines[i])
        if not m:
            i += 1
            continue
        start = i
        full = out_lines[i]
        while full.endswith("\\") and i + 1 < len(out_lines):
            out_lines[i] = ""
            i += 1
            full = full[:-1] + " " + out_lines[i]
        out_lines[i] = ""
        out_lines[start] = ""
        m = re.match(r"\s*#\s*define\s+(\w+)(\([^)]*\))?(.*)$", full)
        name, params, value = m.group(1), m.group(2), " ".join(m.group(3).split())
        where = f"{block.page}:{block.line + start}"
        hdr = header_defs.get(name)
        if hdr is None:
            problems.add(where, f"#define {name}: no header defines {name}")
            continue
        hparams, hvalue = hdr
        norm = lambda p: None if p is None else re.sub(r"\s+", "", p)
        if norm(params) is not None and norm(hparams) is not None:
            if len(norm(params).strip("()").split(",")) != len(norm(hparams).strip("()").split(",")):
                problems.add(where, f"#define {name}{params}: the header has {name}{hparams}")
        elif (params is None) != (hparams is None):
            problems.add(where, f"#define {name}: function-like in one of the page and the header only")
        elif params is None and value and re.sub(r"\s+", "", value) != re.sub(r"\s+", "", hvalue):
            problems.add(where, f"#define {name} {value}: the header says {hvalue}")
        i += 1
    text = "\n".join(out_lines)

    # struct, union and enum definitions with a body.
    def type_def(m):
        kind, tag = m.group(1), m.group(2)
        start = m.start()
        depth, k = 0, m.end() - 1
        while k < len(text):
            if text[k] == "{":
                depth += 1
            elif text[k] == "}":
                depth -= 1
                if depth == 0:
                    break
            k += 1
        body = text[m.end() : k]
        lineno = block.line + text.count("\n", 0, start)
        return kind, tag, body, start, k, lineno

    pieces = []
    pos = 0
    new_text = ""
    for m in re.finditer(r"\b(struct|union|enum)\s+(\w+)\s*\{", text):
        if m.start() < pos:
            continue
        kind, tag, body, start, end, lineno = type_def(m)
        pieces.append((kind, tag, body, lineno))
        renamed = f"{kind} {tag}__doc {{" + body + "}"
        if not body.strip():
            renamed = f"{kind} {tag}" + re.sub(r"[^\n]", " ", "{" + body + "}")
            checks.append(
                f'#line {lineno} "{block.page}"\n'
                f'_Static_assert(sizeof({kind} {tag}) > 0, "{tag}: no complete type of that name in the headers");\n'
            )
        new_text += text[pos:start] + renamed.replace("\n", "\n")
        pos = end + 1
    new_text += text[pos:]
    text = new_text
    # A typedef of a renamed type names the renamed one.
    for kind, tag, body, lineno in pieces:
        if not body.strip():
            continue
        text = re.sub(rf"(\}}\s*){tag}(\s*;)", rf"\1{tag}__doc\2", text)
        if kind == "enum":
            doc_names = [e.split("=")[0].strip() for e in body.split(",") if e.strip()]
            for e in doc_names:
                text = re.sub(rf"\b{e}\b(?!__doc)", f"{e}__doc", text)
                checks.append(
                    f'#line {lineno} "{block.page}"\n'
                    f'_Static_assert((long long){e}__doc == (long long){e}, "{tag}: {e} has another value in the header");\n'
                )
            hdr_names = header_defs.get(("enum", tag))
            if hdr_names is not None and set(hdr_names) != set(doc_names):
                missing = sorted(set(hdr_names) - set(doc_names))
                extra = sorted(set(doc_names) - set(hdr_names))
                problems.add(
                    f"{block.page}:{lineno}",
                    f"enum {tag}: not the header's enumerators"
                    + (f"; missing {', '.join(missing)}" if missing else "")
                    + (f"; not in the header {', '.join(extra)}" if extra else ""),
                )
        else:
            doc_members = members(body)
            hdr_members = header_defs.get((kind, tag))
            if hdr_members is not None and hdr_members != doc_members:
                problems.add(
                    f"{block.page}:{lineno}",
                    f"{kind} {tag}: members {', '.join(doc_members)}; the header has {', '.join(hdr_members)}",
                )
            checks.append(
                f'#line {lineno} "{block.page}"\n'
                f'_Static_assert(sizeof({kind} {tag}__doc) == sizeof({kind} {tag}), "{tag}: not the size of the header\'s");\n'
            )
            for mem in doc_members:
                checks.append(
                    f'_Static_assert(offsetof({kind} {tag}__doc, {mem}) == offsetof({kind} {tag}, {mem}), "{tag}.{mem}: not where the header has it");\n'
                )
    return line_directive(block) + text + "\n" + "".join(checks)


def members(body):
    """The top-level member names of a struct or union body."""
    flat = ""
    depth = 0
    for ch in body:
        if ch == "{":
            depth += 1
        elif ch == "}":
            depth -= 1
        elif depth == 0:
            flat += ch
    names = []
    for decl in flat.split(";"):
        decl = decl.strip()
        if not decl:
            continue
        fp = re.search(r"\(\s*\*\s*(\w+)\s*\)", decl)
        if fp:
            names.append(fp.group(1))
            continue
        decl = re.sub(r"\[[^\]]*\]|:\s*\d+", "", decl)
        for part in decl.split(","):
            ids = IDENT_RE.findall(part)
            if ids:
                names.append(ids[-1])
    return names


def header_definitions():
    """Macros (name -> (params, value)), and the members and enumerators of
    the headers' structs, unions and enums."""
    defs = {}
    for h in installed_headers():
        text = strip_comments(read(h)).replace("\\\n", " ")
        for m in re.finditer(r"^\s*#\s*define\s+(\w+)(\([^)]*\))?(.*)$", text, re.M):
            defs.setdefault(m.group(1), (m.group(2), " ".join(m.group(3).split())))
        for m in re.finditer(r"\b(struct|union|enum)\s+(\w+)\s*\{", text):
            depth, k = 0, m.end() - 1
            while k < len(text):
                depth += {"{": 1, "}": -1}.get(text[k], 0)
                if depth == 0:
                    break
                k += 1
            body = text[m.end() : k]
            if m.group(1) == "enum":
                defs[("enum", m.group(2))] = [
                    e.split("=")[0].strip() for e in body.split(",") if e.strip()
                ]
            else:
                defs[(m.group(1), m.group(2))] = members(body)
    return defs


def block_source(block, header_defs, problems):
    """(source, extra flags, whether to link) for one block, or None."""
    kind = block.marker or ""
    text = block.text
    cxx = block.lang == "c++"
    includes = PRELUDE_HEADERS + adapter_includes(text)
    if cxx:
        includes = includes.replace("#define _GNU_SOURCE\n", "")
    if kind.startswith("not compiled"):
        if not kind[len("not compiled") :].strip(" :"):
            problems.add(block.where, "'not compiled' without a reason")
        return None
    given = ""
    g = re.match(r"(fragment(?:: file scope)?)\s*;\s*given:\s*(.*)$", kind)
    if g:
        kind, given = g.group(1), g.group(2) + "\n"
    if kind == "fragment":
        src = (
            includes
            + "#include <stddef.h>\nvoid doc_fragment(void);\nvoid doc_fragment(void) {\n"
            + PRELUDE_VARIABLES
            + given
            + "  {\n"
            + line_directive(block)
            + text
            + "\n  }\n}\n"
        )
        return src, FRAGMENT_FLAGS + ["-fsyntax-only"], False
    if kind == "fragment: file scope":
        src = includes + given + line_directive(block) + text + "\n"
        return src, FRAGMENT_FLAGS + ["-fsyntax-only"], False
    if kind == "synopsis":
        src = includes + "#include <stddef.h>\n" + synopsis_source(block, header_defs, problems)
        return src, ["-Wno-unused", "-fsyntax-only"], False
    if kind:
        problems.add(block.where, f"unknown marker <!-- {kind} --> (fragment, fragment: file scope, synopsis, not compiled: REASON)")
        return None
    has_main = re.search(r"\bint\s+main\s*\(", text) is not None
    return line_directive(block) + text + "\n", [], has_main


def build_libs(build_dir, text):
    """The link flags of a whole program, or None without the libraries."""
    libs = []
    for name in adapters_used(text):
        lib = os.path.join(build_dir, "adapters", name, f"libtrail-{name}.so")
        if not os.path.exists(lib):
            return None
        libs.append(lib)
        mods, flags = ADAPTERS[name]
        libs += pkg_config(mods, "--libs") + flags
    core = os.path.join(build_dir, "libtrail.so")
    if not os.path.exists(core):
        return None
    return libs + [core] + pkg_config(["jansson", "uuid"], "--libs") + ["-lpthread", "-lm"]


def compile_block(block, src, flags, link, args, tmp, index):
    cxx = block.lang == "c++"
    compiler = args.cxx if cxx else args.cc
    ext = ".cc" if cxx else ".c"
    path = os.path.join(tmp, f"block{index}{ext}")
    with open(path, "w", encoding="utf-8") as f:
        f.write(src)
    mods = ["jansson"]
    for name in adapters_used(block.text):
        mods += ADAPTERS[name][0]
    cmd = (
        shlex.split(compiler)
        + (CXX_FLAGS if cxx else C_FLAGS)
        + ["-I", os.path.join(ROOT, "include")]
        + pkg_config(mods, "--cflags")
        + flags
    )
    note = ""
    if link:
        libs = build_libs(args.build_dir, block.text)
        if libs is None:
            cmd += ["-c", path, "-o", os.path.join(tmp, f"block{index}.o")]
            note = " (not linked: no libraries in the build directory)"
        else:
            cmd += [path, "-o", os.path.join(tmp, f"block{index}")] + libs
    elif "-fsyntax-only" not in flags:
        cmd += ["-c", path, "-o", os.path.join(tmp, f"block{index}.o")]
    else:
        cmd += [path]
    r = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT)
    output = (r.stdout + r.stderr).strip().replace(path, f"<block {block.where}>")
    return r.returncode, output, note


def check_code(args, problems):
    header_defs = header_definitions()
    jobs = []
    for page in doc_pages():
        for block in code_blocks(page, problems):
            made = block_source(block, header_defs, problems)
            if made is not None:
                jobs.append((block, made))
    counts = {}
    with tempfile.TemporaryDirectory(prefix="trail-docs-") as tmp:
        with concurrent.futures.ThreadPoolExecutor(max_workers=2) as pool:
            futures = [
                pool.submit(compile_block, b, src, flags, link, args, tmp, i)
                for i, (b, (src, flags, link)) in enumerate(jobs)
            ]
            for (block, (src, flags, link)), fut in zip(jobs, futures):
                rc, output, note = fut.result()
                kind = (block.marker or ("program" if link else "translation unit")).split(";")[0]
                counts[kind] = counts.get(kind, 0) + 1
                if args.verbose:
                    print(f"{block.where}: {block.lang} {kind}{note}: {'ok' if rc == 0 else 'FAILED'}")
                if rc != 0:
                    problems.add(
                        block.where,
                        f"the {block.lang} block ({kind}) does not compile:\n"
                        + "\n".join("    " + ln for ln in output.split("\n")),
                    )
    print("code: " + ", ".join(f"{n} {k}" for k, n in sorted(counts.items())))


# ---- the public names -----------------------------------------------------


def installed_headers():
    hs = ["include/trail.h"]
    hs += sorted(
        os.path.relpath(p, ROOT) for p in glob.glob(os.path.join(ROOT, "include", "trail", "*.h"))
    )
    return hs


def public_names(header):
    """(name, line) of each public name a header declares."""
    text = strip_comments(read(header))
    found = {}

    def add(name, pos):
        if name.startswith(("trail__", "TRAIL__")) or name == "TRAIL_API":
            return
        found.setdefault(name, text.count("\n", 0, pos) + 1)

    guard = re.search(r"^\s*#\s*ifndef\s+(\w+)\s*\n\s*#\s*define\s+(\w+)\s*$", text, re.M)
    guard_name = guard.group(1) if guard and guard.group(1) == guard.group(2) else None
    for m in re.finditer(r"^\s*#\s*define\s+(\w+)", text, re.M):
        if m.group(1) != guard_name:
            add(m.group(1), m.start(1))
    # Declarations and definitions outside the preprocessor lines.
    code = re.sub(
        r"^[ \t]*#(?:[^\n]*\\\n)*[^\n]*$",
        lambda m: re.sub(r"[^\n]", " ", m.group(0)),
        text,
        flags=re.M,
    )
    # extern "C" { ... } for C++ is no scope of its own here.
    code = re.sub(r'\bextern\s+"C"\s*\{', lambda m: " " * len(m.group(0)), code)
    for m in re.finditer(r"\b(struct|union|enum)\s+(\w+)\s*\{", code):
        add(m.group(2), m.start(2))
        if m.group(1) == "enum":
            end = code.index("}", m.end())
            for e in re.finditer(r"(?:^|,)\s*(\w+)", code[m.end() : end]):
                add(e.group(1), m.end() + e.start(1))
    # Top-level statements: typedefs and function declarations.
    depth = 0
    stmt_start = 0
    for i, ch in enumerate(code):
        if ch == "{":
            depth += 1
        elif ch == "}" and depth == 0:
            stmt_start = i + 1  # the end of extern "C"
        elif ch == "}":
            depth -= 1
            if depth == 0 and re.match(r"\s*(;|\w)", code[i + 1 :]) is None:
                stmt_start = i + 1
        elif ch == ";" and depth == 0:
            stmt = code[stmt_start:i]
            flat = re.sub(r"\{[^{}]*\}", " ", stmt)
            while re.search(r"\{[^{}]*\}", flat):
                flat = re.sub(r"\{[^{}]*\}", " ", flat)
            s = flat.strip()
            if s.startswith("typedef"):
                fp = re.search(r"\(\s*\*\s*(\w+)\s*\)", s)
                name = fp.group(1) if fp else IDENT_RE.findall(s)[-1]
                add(name, stmt_start + stmt.rfind(name))
            elif "(" in s and not s.startswith("extern \"C\""):
                fn = re.search(r"(\w+)\s*\(", s)
                if fn:
                    add(fn.group(1), stmt_start + stmt.find(fn.group(1)))
            elif s.startswith(("TRAIL_API", "extern")):
                ids = IDENT_RE.findall(s)
                if ids:
                    add(ids[-1], stmt_start + stmt.rfind(ids[-1]))
            stmt_start = i + 1
    # Inline function definitions.
    for m in re.finditer(r"static\s+inline\s+[^;{()]*?\b(\w+)\s*\(", code):
        add(m.group(1), m.start(1))
    return sorted(found.items(), key=lambda kv: kv[1])


def pages_for(header):
    if header in HEADER_PAGES:
        return HEADER_PAGES[header]
    base = os.path.splitext(os.path.basename(header))[0]
    for cand in (f"docs/{base}.md", f"docs/middleware-{base}.md"):
        if os.path.exists(os.path.join(ROOT, cand)):
            return [cand]
    return []


def check_names(problems):
    total = 0
    for header in installed_headers():
        pages = pages_for(header)
        if not pages:
            problems.add(header, "no page documents this header (HEADER_PAGES in scripts/check_docs.py)")
            continue
        text = "\n".join(read(p) for p in pages)
        for name, line in public_names(header):
            total += 1
            if not re.search(rf"(?<![\w]){re.escape(name)}(?![\w])", text):
                problems.add(f"{header}:{line}", f"{name} is not documented in {' or '.join(pages)}")
    print(f"names: {total} public names of {len(installed_headers())} headers")


# ---- the environment variables --------------------------------------------


def variables_read():
    """name -> where, for each TRAIL_* variable lib/ and adapters/ read."""
    found = {}
    files = sorted(glob.glob(os.path.join(ROOT, "lib", "*.c")))
    files += sorted(glob.glob(os.path.join(ROOT, "adapters", "**", "*.c"), recursive=True))
    for path in files:
        rel = os.path.relpath(path, ROOT)
        raw = read(rel)
        # Comments out, strings kept.
        text = re.sub(r"/\*.*?\*/|//[^\n]*", lambda m: re.sub(r"[^\n]", " ", m.group(0)), raw, flags=re.S)
        macros = dict(re.findall(r'^\s*#\s*define\s+(\w+)\s+"(TRAIL_[A-Z0-9_]+)"', text, re.M))
        for m in re.finditer(r"\bgetenv\s*\(\s*(\"(TRAIL_[A-Z0-9_]+)\"|\w+)", text):
            name = m.group(2) or macros.get(m.group(1))
            if name:
                found.setdefault(name, f"{rel}:{text.count(chr(10), 0, m.start()) + 1}")
        if rel == "lib/config.c":
            # The table of variables, however it is laid out: every string
            # literal that is a whole variable name (a prefix, which ends
            # with '_', is not one).
            for m in re.finditer(r'"(TRAIL_[A-Z0-9][A-Z0-9_]*[A-Z0-9])"', text):
                found.setdefault(m.group(1), f"{rel}:{text.count(chr(10), 0, m.start()) + 1}")
    return found


def check_env(problems):
    page = "docs/configuration.md"
    read_vars = variables_read()
    lines = read(page).split("\n")
    headed = {}
    named = {}
    for n, ln in enumerate(lines, 1):
        h = re.match(r"^#+\s+`?(TRAIL_[A-Z0-9_]+)`?\s*$", ln)
        if h:
            headed.setdefault(h.group(1), n)
        for m in re.finditer(r"(?<![\w-])(TRAIL_[A-Z0-9_]+)=", ln):
            if not ln[: m.start()].endswith("-D"):
                named.setdefault(m.group(1), n)
    for name, where in sorted(read_vars.items()):
        if name not in headed:
            problems.add(where, f"{name} is read here but has no section in {page}")
    for name, n in sorted(list(headed.items()) + list(named.items())):
        if name not in read_vars:
            problems.add(f"{page}:{n}", f"{name} is documented but the library does not read it")
    print(f"env: {len(read_vars)} variables read, {len(headed)} sections")


# ---- the indexes ----------------------------------------------------------


def links(page, text, first_line=1):
    out = []
    base = os.path.dirname(page)
    for n, ln in enumerate(text.split("\n"), first_line):
        for m in re.finditer(r"\]\(([^)\s#]+)(#[^)\s]*)?\)", ln):
            target = m.group(1)
            if re.match(r"\w+:", target):
                continue
            out.append((os.path.normpath(os.path.join(base, target)), n))
    return out


def check_index(problems):
    pages = [p for p in doc_pages() if p.startswith("docs/") and p != "docs/README.md"]
    readme = read("README.md")
    sec = re.search(r"^## Documentation\s*$(.*?)(?=^## |\Z)", readme, re.M | re.S)
    indexes = [("docs/README.md", links("docs/README.md", read("docs/README.md")))]
    if sec is None:
        problems.add("README.md", "no '## Documentation' section")
    else:
        first = readme.count("\n", 0, sec.start(1)) + 1
        indexes.append(("README.md", links("README.md", sec.group(1), first)))
    for index, found in indexes:
        for target, n in found:
            if not os.path.exists(os.path.join(ROOT, target)):
                problems.add(f"{index}:{n}", f"link to {target}, which does not exist")
        targets = {t for t, _ in found}
        for p in pages:
            if p not in targets:
                problems.add(index, f"{p} is not linked from the index")
    print(f"index: {len(pages)} pages, {len(indexes)} indexes")


def main():
    ap = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        epilog="\n\n".join(__doc__.split("\n\n")[1:]),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    ap.add_argument("--build-dir", default="build", help="the build with libtrail (default: build)")
    ap.add_argument("--cc", default=os.environ.get("CC", "cc"), help="C compiler (default: $CC or cc)")
    ap.add_argument("--cxx", default=os.environ.get("CXX", "g++"), help="C++ compiler (default: $CXX or g++)")
    ap.add_argument("--only", default="code,names,env,index", help="comma-separated checks to run")
    ap.add_argument("-v", "--verbose", action="store_true", help="print each block's result")
    args = ap.parse_args()
    args.build_dir = os.path.join(ROOT, args.build_dir) if not os.path.isabs(args.build_dir) else args.build_dir
    checks = {"code": lambda p: check_code(args, p), "names": check_names, "env": check_env, "index": check_index}
    wanted = [c for c in args.only.split(",") if c]
    for c in wanted:
        if c not in checks:
            ap.error(f"unknown check '{c}' (code, names, env, index)")
    problems = Problems()
    for c in wanted:
        checks[c](problems)
    if problems.items:
        print()
        for p in problems.items:
            print(p)
        print(f"\ncheck_docs: {len(problems.items)} problem(s)")
        return 1
    print("check_docs: all passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
