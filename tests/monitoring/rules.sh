#!/usr/bin/env bash
# The monitoring kit's Prometheus files, checked by promtool (Debian's
# prometheus package): rules.yml parses, its unit tests (rules_test.yml)
# pass, prometheus.yml is a valid configuration; and every alert has a
# severity label, a summary and a description, and at least one promtool
# case where it fires and one where it does not.
# usage: rules.sh COMPOSE_DIR
set -euo pipefail
dir=${1:?usage: rules.sh COMPOSE_DIR}
promtool=${PROMTOOL:-/usr/bin/promtool}
if [ ! -x "$promtool" ]; then
  echo "rules.sh: FAILED: $promtool is missing: install Debian's prometheus package (scripts/deps.sh does)" >&2
  exit 1
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

echo "== promtool check rules"
"$promtool" check rules "$dir/prometheus/rules.yml"
echo "== promtool test rules"
"$promtool" test rules "$dir/prometheus/rules_test.yml"

# prometheus.yml names the rules where compose mounts them; check it with
# the path pointed at this tree's file.
echo "== promtool check config (prometheus.yml, rule_files pointed at this tree)"
grep -q '^  - /etc/prometheus/rules.yml$' "$dir/prometheus/prometheus.yml" || {
  echo "rules.sh: FAILED: prometheus.yml does not load /etc/prometheus/rules.yml" >&2
  exit 1
}
sed "s|^  - /etc/prometheus/rules.yml$|  - $dir/prometheus/rules.yml|" "$dir/prometheus/prometheus.yml" >"$tmp/prometheus.yml"
"$promtool" check config "$tmp/prometheus.yml"

echo "== every alert: severity, summary, description; a firing and a silent case"
/usr/bin/python3 - "$dir/prometheus/rules.yml" "$dir/prometheus/rules_test.yml" <<'PY'
import sys, yaml
rules_doc = yaml.safe_load(open(sys.argv[1]))
tests_doc = yaml.safe_load(open(sys.argv[2]))
problems = []
groups = [g["name"] for g in rules_doc["groups"]]
if groups != ["sessiond"]:
    problems.append(f"rules.yml: one group named sessiond expected, not {groups}")
alerts = []
for g in rules_doc["groups"]:
    for r in g["rules"]:
        if "alert" not in r:
            problems.append(f"rules.yml: {r.get('record')}: a recording rule (only alerts expected)")
            continue
        name = r["alert"]
        alerts.append(name)
        if r.get("labels", {}).get("severity") not in ("critical", "warning"):
            problems.append(f"{name}: severity label critical or warning expected")
        for a in ("summary", "description"):
            if not r.get("annotations", {}).get(a, "").strip():
                problems.append(f"{name}: no {a} annotation")
firing, silent = set(), set()
for t in tests_doc["tests"]:
    for case in t.get("alert_rule_test", []):
        (firing if case.get("exp_alerts") else silent).add(case["alertname"])
for name in alerts:
    if name not in firing:
        problems.append(f"{name}: no rules_test.yml case where it fires")
    if name not in silent:
        problems.append(f"{name}: no rules_test.yml case where it does not fire")
for name in (firing | silent) - set(alerts):
    problems.append(f"rules_test.yml tests {name}, which rules.yml does not define")
if problems:
    print("rules.sh: FAILED:\n  " + "\n  ".join(problems))
    sys.exit(1)
print(f"  {len(alerts)} alerts, each with a firing and a silent case: {', '.join(alerts)}")
PY
echo "rules.sh: passed"
