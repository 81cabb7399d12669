#!/usr/bin/env bash
# A real Prometheus (Debian's /usr/bin/prometheus) scraping a real
# `sessiond run` (embedded broker, MongoDB store on a jongodb of its own)
# with compose/prometheus/rules.yml: the store is taken away (jongodb
# killed) and SessiondNotReady must be firing in /api/v1/alerts within a
# bound; jongodb started again on the same port, and the alert must
# resolve.  On the way, every dashboard expression must evaluate in this
# Prometheus and every rule must evaluate without error on real series.
# Prints the timeline.
# usage: prometheus_alert.sh SESSIOND COMPOSE_DIR
set -euo pipefail
bin=${1:?usage: prometheus_alert.sh SESSIOND COMPOSE_DIR}
dir=${2:?usage: prometheus_alert.sh SESSIOND COMPOSE_DIR}
prometheus=${PROMETHEUS:-/usr/bin/prometheus}
if [ ! -x "$prometheus" ]; then
  echo "prometheus_alert: FAILED: $prometheus is missing: install Debian's prometheus package (scripts/deps.sh does)" >&2
  exit 1
fi
jongodb=${SESSIOND_TEST_JONGODB:-}
if [ -z "$jongodb" ]; then
  echo "prometheus_alert: needs a jongodb of its own (SESSIOND_TEST_JONGODB, which scripts/test.sh sets); skipping"
  exit 77
fi
export MONGOC_DISABLE_SHM=1 # see scripts/test.sh

tmp=$(mktemp -d)
jongodb_pid='' run_pid='' prom_pid=''
cleanup() {
  local pid
  for pid in $run_pid $prom_pid $jongodb_pid; do kill -TERM "$pid" 2>/dev/null || true; done
  for _ in $(seq 50); do
    local alive=0
    for pid in $run_pid $prom_pid $jongodb_pid; do kill -0 "$pid" 2>/dev/null && alive=1; done
    [ $alive -eq 0 ] && break
    sleep 0.1
  done
  for pid in $run_pid $prom_pid $jongodb_pid; do kill -KILL "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

start=$(date +%s.%N)
say() { printf '%7.1fs  %s\n' "$(awk -v a="$start" -v b="$(date +%s.%N)" 'BEGIN { print b - a }')" "$*"; }
fail() {
  say "FAILED: $*"
  for f in run.log prometheus.log jongodb.log; do
    [ -s "$tmp/$f" ] && { echo "--- last lines of $f"; tail -n 15 "$tmp/$f"; }
  done
  exit 1
}
free_port() { /usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
# wait_until SECONDS WHAT COMMAND...: runs COMMAND every 0.25 s until it succeeds.
wait_until() {
  local limit=$1 what=$2
  shift 2
  local deadline=$(($(date +%s) + limit))
  until "$@"; do
    [ "$(date +%s)" -lt "$deadline" ] || fail "$what: not within $limit s"
    sleep 0.25
  done
}
accepts() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

mongo_port=$(free_port)
start_jongodb() {
  "$jongodb" --host=127.0.0.1 --port="$mongo_port" --topology-profile=standalone >>"$tmp/jongodb.log" 2>&1 &
  jongodb_pid=$!
  wait_until 30 "jongodb accepting on $mongo_port" accepts "$mongo_port"
}

# --- sessiond ---------------------------------------------------------
start_jongodb
say "jongodb on 127.0.0.1:$mongo_port (pid $jongodb_pid)"
"$bin" run --brokers embedded --store "mongodb://127.0.0.1:$mongo_port/?serverSelectionTimeoutMS=2000" \
  --database "monitoring_$$" --batch-ms 20ms --http-addr 127.0.0.1:0 >"$tmp/run.log" 2>&1 &
run_pid=$!
in_group() {
  kill -0 "$run_pid" 2>/dev/null || fail "sessiond run exited"
  grep -q 'partitions assigned' "$tmp/run.log"
}
wait_until 30 "sessiond run in its group" in_group
http=$(grep -o 'msg=listening addr=[^ ]*' "$tmp/run.log" | head -1 | cut -d= -f3)
readyz() { curl -s -o /dev/null -w '%{http_code}' "http://$http/readyz" || true; }
ready() { [ "$(readyz)" = 200 ]; }
wait_until 30 "sessiond /readyz 200" ready
say "sessiond run ready, HTTP $http (pid $run_pid)"

# --- Prometheus -------------------------------------------------------
# The rules as shipped, but every `for:` shortened to 3s (a documented
# substitution on the `for:` lines only: the expressions are untouched),
# so that the test waits seconds, not minutes.
sed -E 's/^( +for: ).*$/\13s/' "$dir/prometheus/rules.yml" >"$tmp/rules.yml"
grep -q '^ *for: 3s$' "$tmp/rules.yml" || fail "no for: line substituted in rules.yml"
if diff <(grep -v '^ *for:' "$dir/prometheus/rules.yml") <(grep -v '^ *for:' "$tmp/rules.yml") >/dev/null; then
  say "rules.yml loaded with every for: at 3s ($(grep -c '^ *for:' "$tmp/rules.yml") rules had one)"
else
  fail "the for: substitution changed more than for: lines"
fi
prom_port=$(free_port)
cat >"$tmp/prometheus.yml" <<EOF
global:
  scrape_interval: 1s
  scrape_timeout: 1s
  evaluation_interval: 1s
rule_files:
  - $tmp/rules.yml
scrape_configs:
  - job_name: sessiond
    static_configs:
      - targets: ["$http"]
EOF
"$prometheus" --config.file="$tmp/prometheus.yml" --storage.tsdb.path="$tmp/data" \
  --web.listen-address="127.0.0.1:$prom_port" --log.level=warn >"$tmp/prometheus.log" 2>&1 &
prom_pid=$!
api="http://127.0.0.1:$prom_port"
prom_ready() {
  kill -0 "$prom_pid" 2>/dev/null || fail "prometheus exited"
  [ "$(curl -s -o /dev/null -w '%{http_code}' "$api/-/ready" || true)" = 200 ]
}
wait_until 30 "Prometheus ready on $prom_port" prom_ready
say "Prometheus on 127.0.0.1:$prom_port (pid $prom_pid)"

# query EXPR: the value of the first series, or "none"
query() {
  curl -s -G "$api/api/v1/query" --data-urlencode "query=$1" | /usr/bin/python3 -c '
import json, sys
try:
    r = json.load(sys.stdin)["data"]["result"]
    print(r[0]["value"][1] if r else "none")
except Exception:
    print("error")' || echo error
}
# alert_state NAME: inactive, pending or firing
alert_state() {
  curl -s "$api/api/v1/alerts" | /usr/bin/python3 -c '
import json, sys
try:
    alerts = [a["state"] for a in json.load(sys.stdin)["data"]["alerts"] if a["labels"]["alertname"] == sys.argv[1]]
    print(alerts[0] if alerts else "inactive")
except Exception:
    print("error")' "$1" || echo error
}
# Every rule evaluated (health ok), none with an error (a vector matching
# that fails on real series, say): 0; not evaluated yet: 1; errors: 2.
rules_healthy() {
  curl -s "$api/api/v1/rules" | /usr/bin/python3 -c '
import json, sys
try:
    rules = [r for g in json.load(sys.stdin)["data"]["groups"] for r in g["rules"]]
except Exception as e:
    print(f"no answer from /api/v1/rules: {e}"); sys.exit(1)
bad = ["%s: %s" % (r["name"], r.get("lastError")) for r in rules if r["health"] == "err"]
if bad:
    print("rules with errors: " + "; ".join(bad)); sys.exit(2)
sys.exit(0 if len(rules) == 10 and all(r["health"] == "ok" for r in rules) else 1)'
}
scraped_ready() { [ "$(query 'sessiond_ready{job="sessiond"}')" = 1 ]; }
wait_until 30 "sessiond_ready = 1 in Prometheus" scraped_ready
sleep 2 # two evaluations on these series
health() {
  local rc=0 out
  out=$(rules_healthy) || rc=$?
  [ $rc -eq 2 ] && fail "$out"
  return $rc
}
wait_until 15 "every rule evaluated" health
say "scraped: sessiond_ready 1, every rule evaluated without error"
[ "$(alert_state SessiondNotReady)" = inactive ] || fail "SessiondNotReady is $(alert_state SessiondNotReady) while sessiond is ready"

# Every dashboard expression, its variables given values, evaluates.
/usr/bin/python3 - "$dir/grafana/sessiond-dashboard.json" "$api" <<'PY' || fail "a dashboard expression does not evaluate"
import json, sys, urllib.parse, urllib.request
dash, api = json.load(open(sys.argv[1])), sys.argv[2]
exprs = []
def walk(panels):
    for p in panels:
        walk(p.get("panels", []))
        exprs.extend((p["title"], t["expr"]) for t in p.get("targets", []))
walk(dash["panels"])
bad = 0
for title, expr in exprs:
    q = expr.replace("$__rate_interval", "1m").replace("$instance", ".*")
    url = api + "/api/v1/query?" + urllib.parse.urlencode({"query": q})
    try:
        r = json.load(urllib.request.urlopen(url, timeout=10))
        ok = r["status"] == "success"
    except Exception as e:  # a 400 for a bad expression
        ok, r = False, getattr(e, "read", lambda: str(e).encode())().decode()
    if not ok:
        bad += 1
        print(f"  dashboard panel {title!r}: {q}\n    {r}")
print(f"{len(exprs) - bad} of {len(exprs)} dashboard expressions evaluate in Prometheus")
sys.exit(1 if bad else 0)
PY

# --- the store goes away ----------------------------------------------
kill -KILL "$jongodb_pid"
wait "$jongodb_pid" 2>/dev/null || true
jongodb_pid=''
say "jongodb killed: the store is gone"
last=''
watch_alert() { # WANT: prints each change of (readyz, sessiond_ready, alert); true once the alert is WANT
  local now
  now="readyz $(readyz), sessiond_ready $(query 'sessiond_ready{job="sessiond"}'), SessiondNotReady $(alert_state SessiondNotReady)"
  [ "$now" = "$last" ] || say "$now"
  last=$now
  [[ "$now" == *"SessiondNotReady $1" ]]
}
wait_until 60 "SessiondNotReady firing after the store went away" watch_alert firing
fired=$(date +%s)

# --- the store comes back, on the same port ---------------------------
start_jongodb
say "jongodb started again on 127.0.0.1:$mongo_port (pid $jongodb_pid)"
wait_until 60 "SessiondNotReady resolved after the store came back" watch_alert inactive
[ "$(readyz)" = 200 ] || fail "the alert resolved but /readyz says $(readyz)"
wait_until 15 "every rule evaluated after the outage" health
say "resolved: sessiond ready, every rule evaluated without error ($(($(date +%s) - fired)) s after firing)"
echo "prometheus_alert: passed"
