#!/usr/bin/env bash
# The compose quickstart (README, "Compose") without a container engine:
# the topics kafka-init creates, created by Kafka's own kafka-topics tool on
# the Apache Kafka broker of the ctest fixture; `sessiond run` with the
# environment compose/docker-compose.yml gives it, its hosts pointed at that
# broker and at jongodb (standing in for MongoDB 7); then the README's
# commands: publish, tail, sessions.
# usage: cli_compose.sh SESSIOND COMPOSE_FILE
set -uo pipefail
bin=$1
compose=$2
kafka_sh=${SESSIOND_TEST_KAFKA_SH:?names scripts/kafka.sh}
kafka_dir=${SESSIOND_TEST_KAFKA_DIR:?names the broker the ctest fixture kafka.start started}
if [ -z "${SESSIOND_TEST_MONGO_URI:-}" ]; then
  echo "cli_compose: SESSIOND_TEST_MONGO_URI is not set; skipping"
  exit 77
fi
bootstrap=$(cat "$kafka_dir/bootstrap") || exit 1
tmp=$(mktemp -d)
pids=()
trap 'kill -9 "${pids[@]}" 2>/dev/null; rm -rf "$tmp"' EXIT
source "$(dirname "$0")/../support/check.sh"

# What the compose file says: sessiond's environment and kafka-init's topics.
/usr/bin/python3 - "$compose" "$tmp" <<'PY'
import re, sys, yaml
services = yaml.safe_load(open(sys.argv[1]))["services"]
with open(sys.argv[2] + "/env", "w") as f:
    for k, v in services["sessiond"]["environment"].items():
        f.write(f"{k}={v}\n")
init = "\n".join(services["kafka-init"]["command"])
topics = re.search(r"for t in ([^;]+);", init).group(1).split()
with open(sys.argv[2] + "/topics", "w") as f:
    f.write("\n".join(topics) + "\n")
PY
check "compose: sessiond's environment read" 1 "$(grep -c '^SESSIOND_BROKERS=kafka:9092$' "$tmp/env")"
check "compose: kafka-init's topics read" 3 "$(grep -c ':[0-9]*$' "$tmp/topics")"

while read -r t; do
  "$kafka_sh" topics "$kafka_dir" --create --if-not-exists --topic "${t%:*}" --partitions "${t##*:}" \
    --replication-factor 1 >/dev/null || exit 1
done <"$tmp/topics"

# The compose hosts are this machine's broker and jongodb; the database is
# this run's own, and HTTP any free port.
database="compose_$$"
mapfile -t env < <(sed -e "s|^SESSIOND_BROKERS=.*|SESSIOND_BROKERS=$bootstrap|" \
  -e "s|^SESSIOND_STORE=.*|SESSIOND_STORE=$SESSIOND_TEST_MONGO_URI|" \
  -e "s|^SESSIOND_DATABASE=.*|SESSIOND_DATABASE=$database|" \
  -e "s|^SESSIOND_HTTP_ADDR=.*|SESSIOND_HTTP_ADDR=127.0.0.1:0|" "$tmp/env")
env "${env[@]}" "$bin" run >"$tmp/run.log" 2>&1 &
pids+=($!)
for _ in $(seq 300); do
  grep -q 'partitions assigned' "$tmp/run.log" && break
  sleep 0.1
done
check "run: with compose's environment, in the group" 1 "$(grep -c 'partitions assigned' "$tmp/run.log")"

# The README's commands, as it gives them (the host's broker for localhost:9094).
now=$(date -u +%Y-%m-%dT%H:%M:%SZ)
cat > "$tmp/events.jsonl" <<EOF
{"event_id":"e1","event_type":"task.created","task_id":"t1","task_type":"scenario_generation","short_id":"s1","user_id":"u1","occurred_at":"$now"}
{"event_id":"e2","event_type":"task.created","task_id":"t2","task_type":"image_analysis","short_id":"s1","user_id":"u1","occurred_at":"$now"}
{"event_id":"e3","event_type":"task.completed","task_id":"t2","task_type":"image_analysis","occurred_at":"$now"}
EOF
"$bin" publish --brokers "$bootstrap" "$tmp/events.jsonl" 2>"$tmp/pub.err"
check "publish: three events" "sessiond publish: 3 events published to task-events" "$(cat "$tmp/pub.err")"
changes=$("$bin" tail --brokers "$bootstrap" --from earliest --count 3 --idle 20s)
check "tail: t1 created; t2 created, removed" \
  "t1 session.created|t2 session.created|t2 session.removed" \
  "$(/usr/bin/python3 -c 'import json,sys; print("|".join(sorted(c["session"]["task_id"]+" "+c["change_type"] for c in map(json.loads, sys.stdin))))' <<<"$changes")"
sessions=$(env "${env[@]}" "$bin" sessions --short-id s1)
check "sessions --short-id s1: t1, active" "t1 active" \
  "$(/usr/bin/python3 -c 'import json,sys; d=json.load(sys.stdin); print(" ".join(s["task_id"]+" "+s["status"] for s in d["sessions"]))' <<<"$sessions")"

kill -TERM "${pids[0]}"
wait "${pids[0]}"
check "run: SIGTERM, exit 0" 0 "$?"
while read -r t; do
  "$kafka_sh" topics "$kafka_dir" --delete --topic "${t%:*}" >/dev/null
done <"$tmp/topics"
finish cli_compose
