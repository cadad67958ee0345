#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""tests/helpers/obs.py: checks of evpipe's observability files, for tests/observability.bats
and `make compose-check`.

  obs.py lint DASHBOARD METRICS_MD
      the dashboard: valid JSON, unique panel ids, a data source on every panel and target,
      only known variables, every metric it queries listed in METRICS_MD
  obs.py doc METRICS_MD ROOT
      METRICS_MD against the code: every name registered in ROOT/tools and ROOT/lib is listed
      (outside the planned section), every listed name is registered, no planned name is
  obs.py live --prometheus URL --job JOB --tools LIST [--pending TITLE]... [--alerts FILE]
               [--wait SECONDS] DASHBOARD METRICS_MD
      against a Prometheus scraping tools that run with --job JOB: every panel's queries
      return data, except the --pending panels (those over planned metrics), which must
      return none; the dashboard's variables list JOB and LIST; every series of JOB is listed
      in METRICS_MD with its tool, labels and type, and every listed metric of LIST's tools is
      there; the rules of --alerts are loaded and healthy. Retries for up to --wait seconds
      (scrapes take time), then reports what still fails.

Exit status 0 when every check passed, 1 otherwise (each failure on stderr), 2 usage error.
Standard library only.
"""
import argparse
import glob
import json
import os
import re
import sys
import time
import urllib.error
import urllib.parse
import urllib.request

HIST_SUFFIXES = ("_bucket", "_sum", "_count")
TYPES = ("counter", "gauge", "histogram")
# Labels every series has, or Prometheus adds: not listed per metric in metrics.md.
COMMON_LABELS = {"__name__", "job", "tool", "instance"}
GRAFANA_VARIABLES = {"__rate_interval", "__interval", "__range"}
METRIC_RE = re.compile(r"\bevpipe_[a-zA-Z0-9_]+")
VARIABLE_RE = re.compile(r"\$\{?([A-Za-z_][A-Za-z0-9_]*)")


class Doc:
    """The metric tables of docs/metrics.md: name -> type, labels, tools, planned."""

    def __init__(self, path, tools):
        self.path = path
        self.metrics = {}
        self.errors = []
        planned = False
        with open(path, encoding="utf-8") as f:
            for n, line in enumerate(f, 1):
                if line.startswith("## "):
                    planned = line[3:].strip().lower().startswith("planned")
                    continue
                m = re.match(r"\|\s*`(evpipe_[^`]*)`\s*\|", line)
                if not m:
                    continue
                where = f"{path}:{n}"
                cells = [c.strip() for c in line.strip().strip("|").split("|")]
                if len(cells) != 6:
                    self.errors.append(f"{where}: {len(cells)} cells, want 6 "
                                       "(metric, type, labels, tools, meaning, Flink)")
                    continue
                name, typ, labels, tool_cell, _, _ = cells
                name = m.group(1)
                if not re.fullmatch(r"evpipe_[a-z0-9_]+", name):
                    self.errors.append(f"{where}: '{name}' is not a metric name of the scheme")
                if name in self.metrics:
                    self.errors.append(f"{where}: {name} is listed twice")
                if typ not in TYPES:
                    self.errors.append(f"{where}: {name}: type '{typ}' is not one of {TYPES}")
                if (typ == "counter") != name.endswith("_total"):
                    self.errors.append(f"{where}: {name}: counters end in _total, "
                                       "gauges and histograms do not")
                # "kin (`-P`)": the tool registers it in that mode only (not required live)
                cells_t = [t.strip() for t in tool_cell.split(",") if t.strip()]
                only_in_mode = {re.sub(r" \(`[^`]*`\)$", "", t) for t in cells_t if t.endswith("`)")}
                listed = {re.sub(r" \(`[^`]*`\)$", "", t) for t in cells_t}
                unknown = listed - tools
                if unknown or not listed:
                    self.errors.append(f"{where}: {name}: tools '{tool_cell}' "
                                       f"(known: {', '.join(sorted(tools))})")
                self.metrics[name] = {
                    "type": typ,
                    "labels": set(re.findall(r"`([a-z_][a-z0-9_]*)`", labels)),
                    "tools": listed,
                    "only_in_mode": only_in_mode,
                    "planned": planned,
                }
        if not any(not v["planned"] for v in self.metrics.values()):
            self.errors.append(f"{path}: no metric found (rows start with | `evpipe_...` |)")

    def base(self, name):
        """The listed metric a series or expression name belongs to, or None."""
        if name in self.metrics:
            return name
        for suffix in HIST_SUFFIXES:
            b = name[: -len(suffix)]
            if name.endswith(suffix) and self.metrics.get(b, {}).get("type") == "histogram":
                return b
        return None

    def planned(self, name):
        b = self.base(name)
        return b is not None and self.metrics[b]["planned"]


def known_tools(root):
    # a tool is tools/NAME.c; tools/NAME_PART.c are parts of one (kin_consume.c of kin)
    tools = {os.path.basename(p)[:-2] for p in glob.glob(os.path.join(root, "tools", "*.c"))
             if "_" not in os.path.basename(p)}
    tools |= {os.path.basename(os.path.dirname(p))
              for p in glob.glob(os.path.join(root, "tools", "*", ""))}
    return tools


def code_metrics(root):
    """Metric names registered in the code: string literals "evpipe_..." in tools/ and lib/."""
    names = {}
    files = (glob.glob(os.path.join(root, "tools", "*.c"))
             + glob.glob(os.path.join(root, "tools", "*", "*.c"))
             + glob.glob(os.path.join(root, "lib", "*.c")))
    for path in sorted(files):
        with open(path, encoding="utf-8", errors="replace") as f:
            for name in re.findall(r'"(evpipe_[a-z0-9_]+)"', f.read()):
                names.setdefault(name, os.path.relpath(path, root))
    return names


def all_panels(dash):
    out = []
    for p in dash.get("panels", []):
        out.append(p)
        out.extend(p.get("panels", []))
    return out


def panel_exprs(panel):
    return [(t.get("refId", "?"), t.get("expr", "")) for t in panel.get("targets", [])]


def lint(dash_path, doc):
    errors = list(doc.errors)
    try:
        with open(dash_path, encoding="utf-8") as f:
            dash = json.load(f)
    except (OSError, ValueError) as e:
        return [f"{dash_path}: not valid JSON: {e}"]
    for key in ("uid", "title", "panels", "templating", "schemaVersion"):
        if not dash.get(key):
            errors.append(f"{dash_path}: no '{key}'")
    variables = {v.get("name") for v in dash.get("templating", {}).get("list", [])}
    for want in ("datasource", "job", "tool"):
        if want not in variables:
            errors.append(f"{dash_path}: no '{want}' variable")
    for v in dash.get("templating", {}).get("list", []):
        q = v.get("query")
        q = q.get("query", "") if isinstance(q, dict) else str(q or "")
        if v.get("type") == "query":
            if not v.get("datasource"):
                errors.append(f"{dash_path}: variable '{v.get('name')}' has no data source")
            for name in METRIC_RE.findall(q):
                if doc.base(name) is None:
                    errors.append(f"{dash_path}: variable '{v.get('name')}' queries {name}, "
                                  f"which {doc.path} does not list")
    seen = {}
    for p in all_panels(dash):
        pid, title = p.get("id"), p.get("title", "")
        what = f"{dash_path}: panel {pid} '{title}'"
        if not isinstance(pid, int):
            errors.append(f"{what}: id is not an integer")
        elif pid in seen:
            errors.append(f"{what}: id {pid} already used by '{seen[pid]}'")
        else:
            seen[pid] = title
        if not title:
            errors.append(f"{what}: no title")
        ds = p.get("datasource")
        if not ds or (isinstance(ds, dict) and not ds.get("uid")):
            errors.append(f"{what}: no data source")
        g = p.get("gridPos", {})
        if not all(isinstance(g.get(k), int) for k in "hwxy") or g["x"] + g["w"] > 24:
            errors.append(f"{what}: gridPos {g} is not within 24 columns")
        if p.get("type") == "row":
            continue
        if not p.get("targets"):
            errors.append(f"{what}: no queries")
        refs = [r for r, _ in panel_exprs(p)]
        if len(set(refs)) != len(refs):
            errors.append(f"{what}: refIds {refs} are not unique")
        kinds = set()
        for t in p.get("targets", []):
            ref, expr = t.get("refId", "?"), t.get("expr", "")
            if not expr.strip():
                errors.append(f"{what} {ref}: empty expression")
            tds = t.get("datasource")
            if not tds or (isinstance(tds, dict) and not tds.get("uid")):
                errors.append(f"{what} {ref}: no data source")
            for var in VARIABLE_RE.findall(expr):
                if var not in variables and var not in GRAFANA_VARIABLES:
                    errors.append(f"{what} {ref}: unknown variable ${var}")
            names = METRIC_RE.findall(expr)
            if not names:
                errors.append(f"{what} {ref}: queries no evpipe_ metric")
            for name in names:
                if doc.base(name) is None:
                    errors.append(f"{what} {ref}: {name} is not in {doc.path}")
                else:
                    kinds.add(doc.planned(name))
        if len(kinds) > 1:
            errors.append(f"{what}: mixes planned and available metrics (keep them apart, so "
                          "that a panel is either pending or not)")
    # every metric of the job is on the dashboard (the generator's are not: it is a test tool)
    shown = {doc.base(n) for p in all_panels(dash) for t in p.get("targets", [])
             for n in METRIC_RE.findall(t.get("expr", ""))}
    for name, m in sorted(doc.metrics.items()):
        if not m["planned"] and m["tools"] - {"evgen"} and name not in shown:
            errors.append(f"{dash_path}: {name} ({doc.path}) is on no panel")
    return errors


def check_doc(doc, root):
    errors = list(doc.errors)
    code = code_metrics(root)
    for name, where in sorted(code.items()):
        b = doc.base(name)
        if b is None:
            errors.append(f"{where}: {name} is not in {doc.path}")
        elif doc.metrics[b]["planned"]:
            errors.append(f"{where}: {name} is registered but listed as planned in {doc.path}: "
                          "move it to the metrics available (and its panels out of the test's "
                          "pending list)")
    for name, m in sorted(doc.metrics.items()):
        if not m["planned"] and name not in code:
            errors.append(f"{doc.path}: {name} is registered nowhere in tools/ or lib/")
    return errors


class Prometheus:
    def __init__(self, url):
        self.url = url.rstrip("/")

    def get(self, path, params):
        q = urllib.parse.urlencode(params, doseq=True)
        try:
            with urllib.request.urlopen(f"{self.url}{path}?{q}", timeout=10) as r:
                body = json.load(r)
        except urllib.error.HTTPError as e:
            raise RuntimeError(f"{path} {params}: {e}: {e.read().decode(errors='replace')}")
        if body.get("status") != "success":
            raise RuntimeError(f"{path} {params}: {body}")
        return body["data"]

    def query(self, expr):
        return self.get("/api/v1/query", {"query": expr})["result"]


def substitute(expr, job, rate_interval):
    """expr as Grafana would send it with the variables job=JOB, tool=All."""
    # a regex-escaped value inside a PromQL string: the backslashes doubled
    job = re.sub(r"([.+*?()|\[\]{}^$\\])", r"\\\\\1", job)
    expr = expr.replace("$__rate_interval", rate_interval)
    expr = re.sub(r"\$\{?job\}?", lambda _: job, expr)
    return re.sub(r"\$\{?tool\}?", ".*", expr)


def live_errors(args, prom, dash, doc, tools):
    errors, notes = [], []
    titles = {p.get("title") for p in all_panels(dash)}
    for t in args.pending:
        if t not in titles:
            errors.append(f"pending panel '{t}' is not in the dashboard")
    for p in all_panels(dash):
        if p.get("type") == "row":
            continue
        title = p.get("title")
        uses_planned = any(doc.planned(n) for _, e in panel_exprs(p) for n in METRIC_RE.findall(e))
        pending = title in args.pending
        if uses_planned and not pending:
            errors.append(f"panel '{title}' queries planned metrics but is not in the pending list")
        if pending and not uses_planned:
            errors.append(f"panel '{title}' is in the pending list but its metrics are available: "
                          "remove it from the list")
        for ref, expr in panel_exprs(p):
            q = substitute(expr, args.job, args.rate_interval)
            n = len(prom.query(q))
            if pending and n:
                errors.append(f"panel '{title}' {ref}: pending the checkpoint issue, yet {n} "
                              f"series answer: {q} (remove it from the pending list)")
            elif not pending and not n:
                errors.append(f"panel '{title}' {ref}: no data for {q}")
            else:
                notes.append(f"panel {p.get('id')} '{title}' {ref}: {n} series"
                             + (" (pending: none, as expected)" if pending else ""))

    jobs = prom.get("/api/v1/label/job/values", {"match[]": "evpipe_records_in_total"})
    if args.job not in jobs:
        errors.append(f"variable job: label_values(evpipe_records_in_total, job) lacks "
                      f"'{args.job}' (is honor_labels on?): {jobs}")
    got = set(prom.get("/api/v1/label/tool/values",
                       {"match[]": f'evpipe_records_in_total{{job="{args.job}"}}'}))
    if not tools <= got:
        errors.append(f"variable tool: lacks {sorted(tools - got)} for job {args.job}")

    series = prom.get("/api/v1/series", {"match[]": f'{{job="{args.job}",__name__=~"evpipe_.+"}}',
                                         "start": f"{time.time() - 600:.3f}"})
    seen = set()
    for s in series:
        name, tool = s["__name__"], s.get("tool", "")
        b = doc.base(name)
        what = f"{name}{{tool=\"{tool}\"}}"
        if b is None:
            errors.append(f"{re.sub('_(bucket|sum|count)$', '', name)}{{tool=\"{tool}\"}}: "
                          f"exposed but not in {doc.path}")
            continue
        m = doc.metrics[b]
        if m["planned"]:
            errors.append(f"{what}: exposed but listed as planned in {doc.path}")
        if tool not in m["tools"]:
            errors.append(f"{what}: {doc.path} does not list {tool} among its tools")
        labels = set(s) - COMMON_LABELS - ({"le"} if m["type"] == "histogram" else set())
        if labels != m["labels"]:
            errors.append(f"{what}: labels {sorted(labels)}, {doc.path} says {sorted(m['labels'])}")
        seen.add((b, tool))
    for name, m in sorted(doc.metrics.items()):
        if m["planned"]:
            continue
        for tool in sorted((m["tools"] - m["only_in_mode"]) & tools):
            if (name, tool) not in seen:
                errors.append(f"{name}: {doc.path} lists it for {tool}, which does not expose it")
    meta = prom.get("/api/v1/metadata", {})
    for name, m in sorted(doc.metrics.items()):
        types = {e.get("type") for e in meta.get(name, [])}
        if types and types != {m["type"]}:
            errors.append(f"{name}: type {sorted(types)} when scraped, {doc.path} says {m['type']}")

    if args.alerts:
        with open(args.alerts, encoding="utf-8") as f:
            want = set(re.findall(r"^\s*-\s*alert:\s*(\S+)", f.read(), re.M))
        path = os.path.realpath(args.alerts)
        loaded = {}
        for g in prom.get("/api/v1/rules", {})["groups"]:
            if os.path.realpath(g.get("file", "")) == path:
                for r in g["rules"]:
                    loaded[r["name"]] = r.get("health")
        if set(loaded) != want:
            errors.append(f"rules of {args.alerts}: loaded {sorted(loaded)}, the file has "
                          f"{sorted(want)} (tests/services/up loads it; POST /-/reload)")
        for name, health in sorted(loaded.items()):
            if health == "err":
                errors.append(f"rule {name}: evaluation fails")
    return list(dict.fromkeys(errors)), notes


def live(args, doc):
    with open(args.dashboard, encoding="utf-8") as f:
        dash = json.load(f)
    tools = {t for t in args.tools.split(",") if t}
    prom = Prometheus(args.prometheus)
    deadline = time.monotonic() + args.wait
    while True:
        try:
            errors, notes = live_errors(args, prom, dash, doc, tools)
        except (OSError, RuntimeError, ValueError) as e:
            errors, notes = [f"{args.prometheus}: {e}"], []
        if not errors or time.monotonic() >= deadline:
            break
        time.sleep(1)
    for n in notes:
        print(n)
    return errors


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("lint")
    p.add_argument("dashboard")
    p.add_argument("doc")
    p = sub.add_parser("doc")
    p.add_argument("doc")
    p.add_argument("root")
    p = sub.add_parser("live")
    p.add_argument("--prometheus", required=True)
    p.add_argument("--job", required=True)
    p.add_argument("--tools", required=True)
    p.add_argument("--pending", action="append", default=[])
    p.add_argument("--alerts")
    p.add_argument("--rate-interval", default="30s")
    p.add_argument("--wait", type=float, default=0)
    p.add_argument("dashboard")
    p.add_argument("doc")
    args = ap.parse_args()

    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    doc = Doc(args.doc, known_tools(root))
    if args.cmd == "lint":
        errors = lint(args.dashboard, doc)
    elif args.cmd == "doc":
        errors = check_doc(doc, args.root)
    else:
        errors = live(args, doc)
    for e in errors:
        print(f"obs: {e}", file=sys.stderr)
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
