#!/usr/bin/python3
"""Every metric the monitoring kit uses is one sessiond exports.

Starts a real `sessiond run` (embedded broker, SQLite store in a temporary
directory), gives it traffic so that every family has samples (valid
events through `sessiond publish`, one invalid message through kcat for a
dead letter; the consumer lag appears once offsets are committed and
librdkafka's statistics come, every 5 s; live sessions once they are
counted), then reads the metric names referenced by

  - every alert expression of compose/prometheus/rules.yml, and
  - every target expression of compose/grafana/sessiond-dashboard.json
    (and its template variables' label_values() queries),

and fails naming each one that /metrics does not show as a sample name
(histograms are exported as NAME_bucket, NAME_sum and NAME_count, and must
be referenced that way).  `up` is Prometheus's own, per target.

usage: metric_names.py --sessiond BIN --rules FILE --dashboard FILE
"""
import argparse
import datetime
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request

import yaml

PROMETHEUS_OWN = {"up"}  # synthesised by Prometheus for every scrape target

# ---------------------------------------------------------------- PromQL
TOKEN = re.compile(r"""
    (?P<space>\s+)
  | (?P<string>"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|`[^`]*`)
  | (?P<var>\$\{[^}]*\}|\$[A-Za-z_][A-Za-z0-9_]*)
  | (?P<number>[0-9.][0-9A-Za-z_.]*)
  | (?P<ident>[A-Za-z_:][A-Za-z0-9_:]*)
  | (?P<punct>.)
""", re.X | re.S)
AGGREGATIONS = {"sum", "min", "max", "avg", "group", "stddev", "stdvar", "count",
                "count_values", "bottomk", "topk", "quantile", "limitk", "limit_ratio"}
LABEL_LISTS = {"by", "without", "on", "ignoring", "group_left", "group_right"}
KEYWORDS = {"and", "or", "unless", "bool", "offset", "atan2", "inf", "nan"}


def tokens(expr):
    out = []
    for m in TOKEN.finditer(expr):
        kind = m.lastgroup
        if kind != "space":
            out.append((kind, m.group()))
    return out


def metric_names(expr):
    """The metric names an expression selects (not functions, keywords,
    label names, label values or Grafana variables)."""
    toks = tokens(expr)
    names = set()
    i = 0
    depth = {"{": 0, "[": 0}

    def next_punct(j):
        return toks[j + 1][1] if j + 1 < len(toks) and toks[j + 1][0] == "punct" else None

    while i < len(toks):
        kind, text = toks[i]
        if kind == "punct" and text in "{[":  # label matchers, ranges: skip to the close
            close = "}" if text == "{" else "]"
            while i < len(toks) and toks[i][1] != close:
                i += 1
        elif kind == "ident":
            low = text.lower()
            if low in LABEL_LISTS:
                if next_punct(i) == "(":
                    while i < len(toks) and toks[i][1] != ")":
                        i += 1
            elif low in KEYWORDS:
                pass
            elif next_punct(i) == "(":
                pass  # a function or an aggregation called
            elif text in AGGREGATIONS and i + 1 < len(toks) and toks[i + 1][1].lower() in ("by", "without"):
                pass
            else:
                names.add(text)
        i += 1
    return names


def self_test():
    """The extractor on expressions of known answer, so that it cannot pass
    by finding nothing."""
    cases = {
        'sum by (job, instance) (rate(a_total{x="y",z=~"$instance"}[5m])) > 0 or b unless c offset 5m': {"a_total", "b", "c"},
        'histogram_quantile(0.99, sum by (le) (rate(h_bucket{instance=~"$instance"}[$__rate_interval])))': {"h_bucket"},
        'x == 0 and on (instance) group_left(foo) max without (bar) (y) > bool 1': {"x", "y"},
        'label_replace(q, "dst", "$1", "src", "(.*)") / ignoring(a) sum(r{s="}"})': {"q", "r"},
        'changes(p[30m:1m]) > 2 or topk(3, t) or count_values("v", u)': {"p", "t", "u"},
    }
    for expr, want in cases.items():
        got = metric_names(expr)
        if got != want:
            sys.exit(f"metric_names.py: the extractor is wrong on {expr!r}: got {sorted(got)}, want {sorted(want)}")


# ---------------------------------------------------------------- sources
def rule_references(path):
    refs = {}  # name -> [where]
    doc = yaml.safe_load(open(path))
    n = 0
    for group in doc["groups"]:
        for rule in group["rules"]:
            where = f"rules.yml: {rule.get('alert') or rule.get('record')}"
            names = metric_names(rule["expr"])
            if not names:
                sys.exit(f"metric_names.py: no metric found in {where}: {rule['expr']!r}")
            for name in names:
                refs.setdefault(name, []).append(where)
            n += 1
    return refs, n


def dashboard_references(path):
    refs = {}
    dash = json.load(open(path))
    n = 0

    def walk(panels):
        nonlocal n
        for p in panels:
            walk(p.get("panels", []))
            for t in p.get("targets", []):
                where = f"dashboard: panel {p.get('title')!r} target {t.get('refId')}"
                names = metric_names(t["expr"])
                if not names:
                    sys.exit(f"metric_names.py: no metric found in {where}: {t['expr']!r}")
                for name in names:
                    refs.setdefault(name, []).append(where)
                n += 1

    walk(dash["panels"])
    for var in dash.get("templating", {}).get("list", []):
        if var.get("type") != "query":
            continue
        q = var["query"]["query"] if isinstance(var["query"], dict) else var["query"]
        m = re.match(r"\s*label_values\(\s*(.*),\s*[A-Za-z_][A-Za-z0-9_]*\s*\)\s*$", q)
        if not m:
            sys.exit(f"metric_names.py: variable {var['name']}: only label_values(SELECTOR, LABEL) is understood, not {q!r}")
        for name in metric_names(m.group(1)):
            refs.setdefault(name, []).append(f"dashboard: variable {var['name']}")
    return refs, n


# ---------------------------------------------------------------- sessiond
def wait_for(what, predicate, timeout):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.2)
    raise TimeoutError(f"{what}: not within {timeout} s")


def scrape(addr):
    with urllib.request.urlopen(f"http://{addr}/metrics", timeout=5) as r:
        text = r.read().decode()
    return {re.split(r"[{ ]", line, 1)[0] for line in text.splitlines() if line and not line.startswith("#")}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--sessiond", required=True)
    ap.add_argument("--rules", required=True)
    ap.add_argument("--dashboard", required=True)
    args = ap.parse_args()

    self_test()
    rules, n_rules = rule_references(args.rules)
    dash, n_targets = dashboard_references(args.dashboard)
    refs = {}
    for source in (rules, dash):
        for name, where in source.items():
            refs.setdefault(name, []).extend(where)
    print(f"metric_names: {n_rules} alert expressions and {n_targets} dashboard targets reference "
          f"{len(refs)} metrics")

    kcat = shutil.which("kcat")
    if not kcat:
        sys.exit("metric_names.py: kcat is missing (scripts/deps.sh installs it): it sends the invalid message")

    tmp = tempfile.mkdtemp(prefix="sessiond-metrics-")
    log_path = os.path.join(tmp, "run.log")
    run = None
    try:
        with open(log_path, "w") as log:
            run = subprocess.Popen(
                [args.sessiond, "run", "--brokers", "embedded", "--store", f"sqlite:{tmp}/sessions.db",
                 "--batch-ms", "20ms", "--http-addr", "127.0.0.1:0"],
                stdout=log, stderr=subprocess.STDOUT)

        def logged(pattern):
            def find():
                if run.poll() is not None:
                    raise RuntimeError(f"sessiond run exited ({run.returncode}):\n" + open(log_path).read())
                m = re.search(pattern, open(log_path).read())
                return m and m.group(1)
            return find

        wait_for("sessiond run: in the group", logged(r"(partitions assigned)"), 30)
        bootstrap = logged(r"bootstrap=(\S+)")()
        addr = logged(r"msg=listening addr=(\S+)")()
        print(f"metric_names: sessiond run on {bootstrap}, HTTP {addr}")

        # Traffic: creates (two task types), a terminal event, an ignored
        # create (no short_id), and one message that is not JSON.
        now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        events = [
            {"event_id": "m1", "event_type": "task.created", "task_id": "t1",
             "task_type": "scenario_generation", "short_id": "s1", "occurred_at": now},
            {"event_id": "m2", "event_type": "task.created", "task_id": "t2",
             "task_type": "image_analysis", "short_id": "s1", "occurred_at": now},
            {"event_id": "m3", "event_type": "task.completed", "task_id": "t1",
             "task_type": "scenario_generation", "occurred_at": now},
            {"event_id": "m4", "event_type": "task.created", "task_id": "t3",
             "task_type": "image_analysis", "occurred_at": now},
        ]
        events_path = os.path.join(tmp, "events.jsonl")
        with open(events_path, "w") as f:
            for e in events:
                f.write(json.dumps(e) + "\n")
        subprocess.run([args.sessiond, "publish", "--brokers", bootstrap, events_path], check=True,
                       stderr=subprocess.DEVNULL, timeout=60)
        subprocess.run([kcat, "-P", "-b", bootstrap, "-t", "task-events", "-k", "bad"],
                       input=b"not json\n", check=True, timeout=60)
        # Until the changes are out (the store has the sessions when the
        # first scrape counts them).
        subprocess.run([args.sessiond, "tail", "--brokers", bootstrap, "--from", "earliest",
                        "--count", "3", "--idle", "20s"], check=True, stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL, timeout=60)

        wanted = set(refs) - PROMETHEUS_OWN
        exported = set()
        deadline = time.monotonic() + 40
        while time.monotonic() < deadline:
            exported = scrape(addr)
            if wanted <= exported:
                break
            time.sleep(1)
        missing = sorted(wanted - exported)
        print(f"metric_names: /metrics has {len(exported)} sample names")
        if missing:
            print("metric_names: FAILED: referenced but not exported by sessiond:")
            for name in missing:
                print(f"  {name}  ({'; '.join(sorted(set(refs[name])))})")
            print("exported:\n  " + "\n  ".join(sorted(exported)))
            return 1
        print(f"metric_names: all {len(wanted)} referenced sessiond metrics are exported"
              + (f" (and {', '.join(sorted(PROMETHEUS_OWN & set(refs)))} is Prometheus's own)"
                 if PROMETHEUS_OWN & set(refs) else ""))
        # SIGTERM: it leaves the group and exits 0 (under ASan, a leak would not)
        run.send_signal(signal.SIGTERM)
        rc = run.wait(timeout=30)
        if rc != 0:
            print(f"metric_names: FAILED: sessiond run exited {rc} on SIGTERM:\n" + open(log_path).read()[-3000:])
            return 1
        return 0
    finally:
        if run and run.poll() is None:
            run.send_signal(signal.SIGTERM)
            try:
                run.wait(timeout=20)
            except subprocess.TimeoutExpired:
                run.kill()
                run.wait()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    try:
        sys.exit(main())
    except (TimeoutError, RuntimeError, OSError, subprocess.SubprocessError) as e:
        sys.exit(f"metric_names.py: FAILED: {e}")
