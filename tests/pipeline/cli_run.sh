#!/usr/bin/env bash
# `sessiond run` as an operator runs it, with publish, tail, kcat for raw
# invalid messages, and real signals: on its embedded broker (mock), or on
# Apache Kafka (kafka: the ctest fixture's, in SESSIOND_TEST_KAFKA_DIR, with
# topics of this run's own that Kafka's kafka-topics tool creates).
# usage: cli_run.sh SESSIOND [mock|kafka]
set -uo pipefail
bin=$1
broker=${2:-mock}
tmp=$(mktemp -d)
pids=()
source "$(dirname "$0")/../support/check.sh"

if [ "$broker" = kafka ]; then
  kafka_sh=${SESSIOND_TEST_KAFKA_SH:?names scripts/kafka.sh}
  kafka_dir=${SESSIOND_TEST_KAFKA_DIR:?names the broker the ctest fixture kafka.start started}
  bootstrap=$(cat "$kafka_dir/bootstrap") || exit 1
  prefix="cli$$."
  in=${prefix}task-events out=${prefix}session-changes dlq=${prefix}task-events.dlq
  for t in "$in:4" "$out:4" "$dlq:1"; do
    "$kafka_sh" topics "$kafka_dir" --create --topic "${t%:*}" --partitions "${t##*:}" >/dev/null || exit 1
  done
  brokers=(--brokers "$bootstrap" --input-topics "$in" --output-topic "$out" --dlq-topic "$dlq"
           --group "${prefix}sessiond")
  trap 'kill -9 "${pids[@]}" 2>/dev/null; rm -rf "$tmp"
        for t in "$in" "$out" "$dlq"; do "$kafka_sh" topics "$kafka_dir" --delete --topic "$t"; done' EXIT
else
  in=task-events out=session-changes dlq=task-events.dlq
  brokers=(--brokers embedded)
  trap 'kill -9 "${pids[@]}" 2>/dev/null; rm -rf "$tmp"' EXIT
fi

# systemd's Type=notify: a listener on a datagram socket, as systemd's,
# records what run says there (a build without libsystemd says nothing).
notify_capable=$(ldd "$bin" | grep -c libsystemd)
/usr/bin/python3 -c '
import socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(sys.argv[1])
with open(sys.argv[2], "ab", buffering=0) as log:
    while True:
        log.write(s.recv(4096) + b"\n--\n")
' "$tmp/notify.sock" "$tmp/notify.log" &
pids+=($!)
for _ in $(seq 50); do [ -S "$tmp/notify.sock" ] && break; sleep 0.1; done

start_run() { # log file
  NOTIFY_SOCKET=$tmp/notify.sock SESSIOND_HTTP_TOKEN=s3cret "$bin" run "${brokers[@]}" --store "sqlite:$tmp/run.db" \
    --batch-ms 20ms --http-addr 127.0.0.1:0 >"$1" 2>&1 &
  pids+=($!)
  run_pid=$!
  for _ in $(seq 150); do
    grep -q 'partitions assigned' "$1" && break
    sleep 0.1
  done
  [ "$broker" = kafka ] || bootstrap=$(grep -o 'bootstrap=[^ ]*' "$1" | head -1 | cut -d= -f2)
  http=$(grep -o 'msg=listening addr=[^ ]*' "$1" | head -1 | cut -d= -f3)
}

# http METHOD PATH [curl args]: prints "STATUS BODY"
http() {
  local method=$1 path=$2
  shift 2
  curl -s -o "$tmp/body" -w '%{http_code}' -X "$method" "$@" "http://$http$path"
  printf ' %s' "$(cat "$tmp/body")"
}

# Events dated now, so their sessions are visible.
/usr/bin/python3 - "$tmp/events.jsonl" <<'PY'
import datetime, json, sys
now = datetime.datetime.now(datetime.timezone.utc)
def at(minutes): return (now - datetime.timedelta(minutes=minutes)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
events = [
  {"event_id": "c1", "event_type": "task.created", "task_id": "t1", "task_type": "scenario_generation", "short_id": "s1", "occurred_at": at(30)},
  {"event_id": "c2", "event_type": "task.created", "task_id": "t2", "task_type": "image_analysis", "short_id": "s1", "occurred_at": at(29)},
  {"event_id": "x1", "event_type": "task.completed", "task_id": "t1", "task_type": "scenario_generation", "occurred_at": at(20)},
  {"event_id": "x2", "event_type": "task.failed", "task_id": "t2", "task_type": "image_analysis", "occurred_at": at(19)},
]
with open(sys.argv[1], "w") as f:
    for e in events: f.write(json.dumps(e) + "\n")
PY

start_run "$tmp/run.log"
if [ "$broker" = mock ]; then
  check "run: embedded broker says it keeps nothing on disk" 1 "$(grep -c 'keeps nothing on disk' "$tmp/run.log")"
  check "run: bootstrap address logged" 1 "$([ -n "$bootstrap" ] && echo 1)"
fi

"$bin" publish --brokers "$bootstrap" --topic "$in" "$tmp/events.jsonl" 2>"$tmp/pub.err"; rc=$?
check "publish: exit 0" 0 "$rc"
check "publish: summary" "sessiond publish: 4 events published to $in" "$(cat "$tmp/pub.err")"

changes=$("$bin" tail --brokers "$bootstrap" --topic "$out" --from earliest --count 4 --idle 15s)
check "tail: four changes" 4 "$(grep -c . <<<"$changes")"
check "tail: t1 created, completed; t2 created, removed" \
  "t1 session.created|t1 session.status_changed|t2 session.created|t2 session.removed" \
  "$(/usr/bin/python3 -c 'import json,sys; print("|".join(sorted(c["session"]["task_id"]+" "+c["change_type"] for c in map(json.loads, sys.stdin))))' <<<"$changes")"

# Input that cannot be read: exit 2 naming the file and the error, nothing sent.
said=$("$bin" publish --brokers "$bootstrap" --topic "$in" "$tmp" 2>&1); rc=$?
check "publish a directory: exit 2" 2 "$rc"
check "publish a directory: names it and the error" \
  "sessiond publish: cannot read $tmp: Is a directory (nothing published)" "$said"
said=$("$bin" publish --brokers "$bootstrap" --topic "$in" "$tmp/none.jsonl" 2>&1); rc=$?
check "publish a missing file: exit 2" 2 "$rc"
check "publish a missing file: names it" \
  "sessiond publish: cannot open $tmp/none.jsonl: No such file or directory" "$said"

printf '{"event_id":"bad1","event_type":"task.created"\n' > "$tmp/bad.jsonl"
"$bin" publish --brokers "$bootstrap" --topic "$in" "$tmp/bad.jsonl" 2>"$tmp/bad.err"; rc=$?
check "publish invalid: exit 1" 1 "$rc"
check "publish invalid: names the line" 1 "$(grep -c 'line 1: not JSON' "$tmp/bad.err")"
said=$("$bin" publish --brokers "$bootstrap" --topic "$in" --skip-invalid "$tmp/bad.jsonl" 2>&1); rc=$?
check "publish --skip-invalid: names the line, sends the rest (none), exit 0" \
  "0 $tmp/bad.jsonl: line 1: not JSON: '}' expected near end of file (line 1, column 46)|sessiond publish: 0 events published to $in, 1 invalid skipped" \
  "$rc $(paste -sd'|' <<<"$said")"

# A producer that does not validate: the event goes to the dead-letter topic.
kcat -P -b "$bootstrap" -t "$in" -k t9 "$tmp/bad.jsonl" 2>/dev/null
dead=$("$bin" tail --brokers "$bootstrap" --topic "$dlq" --from earliest --count 1 --idle 15s)
check "dead letter: the message as sent" '{"event_id":"bad1","event_type":"task.created"' "$dead"
headers=$(kcat -C -b "$bootstrap" -t "$dlq" -o beginning -c 1 -e -f '%h' 2>/dev/null)
check "dead letter: error and source headers" 1 \
  "$(grep -Fc "source_topic=$in,source_partition=" <<<"$(grep 'error=not JSON.*,source_offset=[0-9]*' <<<"$headers")")"

sessions=$("$bin" sessions --store "sqlite:$tmp/run.db" --short-id s1)
check "sessions: t1 completed remains" "t1 completed" \
  "$(/usr/bin/python3 -c 'import json,sys; d=json.load(sys.stdin); print(" ".join(s["task_id"]+" "+s["status"] for s in d["sessions"]))' <<<"$sessions")"

if [ "$notify_capable" -gt 0 ]; then
  check "systemd notify: READY=1 once in the group" 1 "$(grep -c '^READY=1$' "$tmp/notify.log")"
  check "systemd notify: its status" 1 \
    "$(grep -c '^STATUS=in the group, [0-9]* partitions assigned$' "$tmp/notify.log")"
else
  echo "NOTE: $bin was built without libsystemd: Type=notify not checked"
fi

# HTTP, against the running daemon
check "http: listening on the port it picked" 1 "$([ -n "$http" ] && echo 1)"
check "healthz" '200 {"status":"ok"}' "$(http GET /healthz)"
check "readyz: partitions assigned, store answers" '200 {"status":"ready"}' "$(http GET /readyz)"
# Consumer lag comes with librdkafka's statistics, every 5 s.
for _ in $(seq 150); do
  metrics=$(curl -s -D "$tmp/headers" "http://$http/metrics")
  grep -q '^sessiond_consumer_lag{' <<<"$metrics" && break
  sleep 0.1
done
metric() { grep -F "$1 " <<<"$metrics" | awk '{print $NF}'; }
check "metrics: Prometheus text 0.0.4" 1 "$(grep -c 'Content-Type: text/plain; version=0.0.4' "$tmp/headers")"
check "metrics: events by topic and type" "2 1 1 1" "$(for t in task.created task.completed task.failed invalid; do
  metric "sessiond_events_consumed_total{topic=\"$in\",event_type=\"$t\"}"; done | xargs)"
check "metrics: applied by result, ignored by reason" "4 0 0 0" "$(metric 'sessiond_events_applied_total{result="changed"}') $(metric 'sessiond_events_applied_total{result="unchanged"}') $(metric 'sessiond_events_applied_total{result="ignored",reason="no_short_id"}') $(metric 'sessiond_events_applied_total{result="ignored",reason="scraping"}')"
check "metrics: dead-lettered by reason" 1 "$(metric 'sessiond_events_dead_lettered_total{reason="payload"}')"
check "metrics: changes by type" "2 1 1 0" "$(for t in created status_changed removed expired; do
  metric "sessiond_changes_produced_total{change_type=\"session.$t\"}"; done | xargs)"
check "metrics: batch apply histogram, +Inf bucket = count" 1 "$(
  [ "$(metric 'sessiond_batch_apply_duration_seconds_bucket{le="+Inf"}')" = "$(metric sessiond_batch_apply_duration_seconds_count)" ] &&
  [ "$(metric sessiond_batch_apply_duration_seconds_count)" -ge 1 ] && echo 1)"
check "metrics: store errors by class" "0 0 0" "$(for c in transient event fatal; do
  metric "sessiond_store_errors_total{class=\"$c\"}"; done | xargs)"
check "metrics: consumer lag per partition" 1 "$(grep -Fc "sessiond_consumer_lag{topic=\"$in\",partition=" <<<"$(grep '} 0$' <<<"$metrics")" | awk '{print ($1 > 0)}')"
check "metrics: live sessions by task type" 1 "$(metric 'sessiond_live_sessions{task_type="scenario_generation"}')"
check "metrics: build info and start time" 2 "$(grep -c '^sessiond_build_info{version="[0-9.]*"} 1$\|^sessiond_process_start_time_seconds [0-9]' <<<"$metrics")"
check "API by short_id" "200 s1 1 t1" "$(http GET /api/v1/sessions/s1 | /usr/bin/python3 -c '
import json,sys; code, body = sys.stdin.read().split(" ", 1); d = json.loads(body)
print(code, d["short_id"], d["total_sessions"], d["sessions"][0]["task_id"], "timestamp" in d and "")' | sed 's/ $//')"
check "API by task_id" "200 t1 completed" "$(http GET /api/v1/sessions/task/t1 | /usr/bin/python3 -c '
import json,sys; code, body = sys.stdin.read().split(" ", 1); d = json.loads(body)
print(code, d["session"]["task_id"], d["session"]["status"])')"
check "API: absent task is 404 with a JSON error" "404 session not found" \
  "$(http GET /api/v1/sessions/task/nope | /usr/bin/python3 -c '
import json,sys; code, body = sys.stdin.read().split(" ", 1); print(code, json.loads(body)["error"])')"
check "unknown path: 404 JSON" "404 not found" "$(http GET /api/v2/x | /usr/bin/python3 -c '
import json,sys; code, body = sys.stdin.read().split(" ", 1); print(code, json.loads(body)["error"])')"
check "wrong method: 405" 405 "$(http POST /healthz | cut -d' ' -f1)"
check "wrong method on the API: 405" 405 "$(http PUT /api/v1/sessions/task/t1 | cut -d' ' -f1)"
check "DELETE without a token: 401" 401 "$(http DELETE /api/v1/sessions/task/t1 | cut -d' ' -f1)"
check "DELETE with a wrong token: 401" 401 \
  "$(http DELETE /api/v1/sessions/task/t1 -H 'Authorization: Bearer nope' | cut -d' ' -f1)"
deleted=$(http DELETE /api/v1/sessions/task/t1 -H 'Authorization: Bearer s3cret')
check "DELETE: 202 with the event id" "202 t1 36" "$(/usr/bin/python3 -c '
import json,sys; code, body = sys.stdin.read().split(" ", 1); d = json.loads(body)
print(code, d["task_id"], len(d["event_id"]))' <<<"$deleted")"
for _ in $(seq 100); do
  [ "$(http GET /api/v1/sessions/task/t1 | cut -d' ' -f1)" = 404 ] && break
  sleep 0.1
done
check "DELETE: the session is gone" 404 "$(http GET /api/v1/sessions/task/t1 | cut -d' ' -f1)"
removed=$("$bin" tail --brokers "$bootstrap" --topic "$out" --from earliest --count 5 --idle 15s | grep '"reason":"manual"')
check "DELETE: session.removed, reason manual" 1 "$(grep -c '"task_id":"t1"' <<<"$removed")"

# Odd ids round-trip through the API (each sent percent-encoded): GET by
# task and by short_id, DELETE, then gone.  A path that does not decode
# to UTF-8 is a 400 with the JSON error body.
/usr/bin/python3 - "$tmp/odd.jsonl" <<'PY'
import datetime, json, sys
now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
ids = ["a/b", "a?b", "a#b", "100%", "%2F", "with space", "plus+sign", "ünïcødé-日本", "x" * 128]
with open(sys.argv[1], "w") as f:
    for i, odd in enumerate(ids):
        f.write(json.dumps({"event_id": "odd-%d" % i, "event_type": "task.created", "task_id": odd,
                            "task_type": "scenario_generation", "short_id": odd,
                            "occurred_at": now}, ensure_ascii=False) + "\n")
PY
"$bin" publish --brokers "$bootstrap" --topic "$in" "$tmp/odd.jsonl" 2>/dev/null
odd=$(/usr/bin/python3 - "$http" "$tmp/odd.jsonl" <<'PY'
import json, sys, time, urllib.error, urllib.parse, urllib.request
base, path = "http://" + sys.argv[1], sys.argv[2]
def call(method, url, token=None):
    req = urllib.request.Request(base + url, method=method)
    if token: req.add_header("Authorization", "Bearer " + token)
    try:
        with urllib.request.urlopen(req, timeout=10) as r: return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e: return e.code, json.loads(e.read())
out = []
for line in open(path, encoding="utf-8"):
    odd = json.loads(line)["task_id"]
    q = urllib.parse.quote(odd, safe="")
    for _ in range(100):
        code, body = call("GET", "/api/v1/sessions/task/" + q)
        if code == 200: break
        time.sleep(0.1)
    got = [code == 200 and body["session"]["task_id"] == odd]
    code, body = call("GET", "/api/v1/sessions/" + q)
    got.append(code == 200 and body["sessions"][0]["task_id"] == odd)
    code, body = call("DELETE", "/api/v1/sessions/task/" + q, "s3cret")
    got.append(code == 202 and body["task_id"] == odd)
    for _ in range(100):
        code, body = call("GET", "/api/v1/sessions/task/" + q)
        if code == 404: break
        time.sleep(0.1)
    got.append(code == 404)
    if not all(got): out.append("%r %s" % (odd, got))
for bad in ["/api/v1/sessions/task/%ff%fe", "/api/v1/sessions/%C0%AF", "/api/v1/sessions/task/%zz"]:
    code, body = call("GET", bad)
    if (code, body.get("error")) != (400, "invalid path"): out.append("%s %s %s" % (bad, code, body))
print("\n".join(out) or "all")
PY
)
check "API: odd ids round-trip (GET by task and short_id, DELETE); bad paths 400" all "$odd"

kill -TERM "$run_pid"
for _ in $(seq 100); do kill -0 "$run_pid" 2>/dev/null || break; sleep 0.1; done
wait "$run_pid"; rc=$?
check "SIGTERM: exit 0" 0 "$rc"
check "SIGTERM: left the group and stopped" 1 "$(grep -c 'msg=stopped' "$tmp/run.log")"

start_run "$tmp/run2.log"
# Two different signals: two of one kind may merge into one delivery.
kill -TERM "$run_pid"; kill -INT "$run_pid"
for _ in $(seq 50); do kill -0 "$run_pid" 2>/dev/null || break; sleep 0.1; done
wait "$run_pid"; rc=$?
check "second signal: exits at once (128 + signal)" 1 "$([ "$rc" -eq 130 ] || [ "$rc" -eq 143 ]; echo $((1 - $?)))"

if [ "$broker" = kafka ]; then
  # The broker's SASL listener (scripts/kafka.sh): the right password works,
  # a wrong one stops each command at start-up with exit 1 within the
  # bound, in one message naming mechanism and user, never the password.
  # SCRAM-SHA-512 on Kafka 3; on Kafka 4, where librdkafka 2.0.2's SCRAM
  # is refused whatever the password (its issue 4895, fixed in 2.6.1),
  # PLAIN, and that refusal is checked so a newer librdkafka shows here.
  read -r sasl_addr sasl_user sasl_pass <"$kafka_dir/sasl"
  mechanism=SCRAM-SHA-512
  if [ "${SESSIOND_KAFKA_VERSION%%.*}" -ge 4 ] 2>/dev/null; then
    said=$(SESSIOND_X_SASL_PASSWORD=$sasl_pass timeout 60 "$bin" tail --brokers "$sasl_addr" \
           -X security.protocol=SASL_PLAINTEXT -X sasl.mechanisms=SCRAM-SHA-512 \
           -X "sasl.username=$sasl_user" --topic "$out" --idle 1s 2>&1); rc=$?
    check "Kafka 4: librdkafka 2.0.2's SCRAM is refused even with the password" "1 1" \
      "$rc $(grep -c 'refused SASL authentication (mechanism SCRAM-SHA-512' <<<"$said")"
    mechanism=PLAIN
  fi
  sasl=(--brokers "$sasl_addr" -X security.protocol=SASL_PLAINTEXT -X "sasl.mechanisms=$mechanism"
        -X "sasl.username=$sasl_user")
  SESSIOND_X_SASL_PASSWORD=$sasl_pass "$bin" publish "${sasl[@]}" --topic "$in" "$tmp/events.jsonl" \
    2>"$tmp/sasl.err"; rc=$?
  check "SASL: publish with the password: exit 0" "0 sessiond publish: 4 events published to $in" \
    "$rc $(cat "$tmp/sasl.err")"
  got=$(SESSIOND_X_SASL_PASSWORD=$sasl_pass "$bin" tail "${sasl[@]}" --topic "$out" --from earliest \
        --count 1 --idle 15s | grep -c '"change_id"')
  check "SASL: tail with the password" 1 "$got"
  for cmd in run replay publish tail; do
    case $cmd in
      run) args=(--input-topics "$in" --output-topic "$out" --dlq-topic "$dlq" --group "${prefix}x"
                 --store "sqlite:$tmp/sasl.db" --http-addr off) ;;
      replay) args=(--input-topics "$in" --store "sqlite:$tmp/sasl.db" --from earliest) ;;
      publish) args=(--topic "$in" "$tmp/events.jsonl") ;;
      tail) args=(--topic "$out") ;;
    esac
    SECONDS=0
    said=$(SESSIOND_X_SASL_PASSWORD=not-the-password timeout 60 "$bin" "$cmd" "${sasl[@]}" \
           "${args[@]}" --startup-timeout 20s 2>&1); rc=$?
    check "SASL, wrong password: $cmd exits 1" 1 "$rc"
    check "SASL, wrong password: $cmd stops within --startup-timeout" 1 "$((SECONDS < 20))"
    check "SASL, wrong password: $cmd names mechanism and user" 1 \
      "$(grep -c "sessiond $cmd: Kafka at $sasl_addr refused SASL authentication (mechanism $mechanism, user $sasl_user)" <<<"$said")"
    check "SASL, wrong password: $cmd never shows it" 0 "$(grep -c not-the-password <<<"$said")"
  done

  # A topic that does not exist (the broker creates none): run stops at
  # start-up naming it.
  said=$(timeout 60 "$bin" run --brokers "$bootstrap" --input-topics "$in" --output-topic "${prefix}nowhere" \
         --dlq-topic "$dlq" --group "${prefix}x" --store "sqlite:$tmp/nowhere.db" --http-addr off 2>&1); rc=$?
  check "missing output topic: run exits 1" 1 "$rc"
  check "missing output topic: names it" 1 \
    "$(grep -c "sessiond run: topic ${prefix}nowhere does not exist at $bootstrap" <<<"$said")"

  # Once running, an output topic that goes away: not ready, saying why,
  # and a warning while the changes wait.
  start_run "$tmp/run3.log"
  "$kafka_sh" topics "$kafka_dir" --delete --topic "$out" >/dev/null
  head -3 "$tmp/odd.jsonl" | sed 's/"event_id": "/"event_id": "gone-/; s/"task_id": "/"task_id": "gone-/' \
    >"$tmp/gone.jsonl"
  "$bin" publish --brokers "$bootstrap" --topic "$in" "$tmp/gone.jsonl" 2>/dev/null
  ready=""
  for _ in $(seq 90); do
    ready=$(curl -s "http://$http/readyz")
    grep -q "cannot deliver changes" <<<"$ready" && break
    sleep 1
  done
  check "output topic gone: not ready, saying why" 1 \
    "$(grep -c "\"status\":\"not ready\",\"reason\":\"cannot deliver changes: .*$out" <<<"$ready")"
  check "output topic gone: a warning" 1 \
    "$(grep -c 'level=warn component=pipeline msg="cannot deliver changes"' "$tmp/run3.log" | awk '{print ($1 > 0)}')"
  kill -KILL "$run_pid"
  wait "$run_pid" 2>/dev/null
  "$kafka_sh" topics "$kafka_dir" --create --topic "$out" --partitions 4 >/dev/null
  finish cli_run.kafka
  exit
fi
"$bin" run --store "sqlite:$tmp/x.db" 2>"$tmp/err"; rc=$?
check "run without brokers: exit 2" 2 "$rc"
check "run without brokers: says how" 1 "$(grep -c 'use --brokers' "$tmp/err")"
SESSIOND_BATCH_MAX=abc "$bin" run --brokers embedded --store "sqlite:$tmp/x.db" 2>"$tmp/err"; rc=$?
check "bad env twin: exit 2" 2 "$rc"
check "bad env twin: names the variable" 1 "$(grep -c 'SESSIOND_BATCH_MAX wants a whole number' "$tmp/err")"
SESSIOND_BATCH_BYTES=0 "$bin" run --brokers embedded --store "sqlite:$tmp/x.db" 2>"$tmp/err"; rc=$?
check "--batch-bytes 0: exit 2, says the bound" "2 1" "$rc $(grep -c 'batch-bytes must be at least 1' "$tmp/err")"
"$bin" run --brokers embedded --store "sqlite:$tmp/x.db" --http-addr nowhere 2>"$tmp/err"; rc=$?
check "bad --http-addr: exit 1, says the form" "1 1" "$rc $(grep -c 'HOST:PORT' "$tmp/err")"

finish cli_run
