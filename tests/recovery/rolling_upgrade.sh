#!/usr/bin/env bash
# A rolling upgrade from sessiond 0.1 on Apache Kafka: 0.1 is built from
# the commit before expiries went through the log (git history, cached in
# the build tree).  A 0.1 member applies a workload into a SQLite file;
# then a 0.1 and a 0.2 member share the group and the file: the 0.2 member
# rewrites the file in place while the 0.1 member runs, and, its clock past
# every session's TTL, publishes expiry events; the 0.1 member (whose clock
# has not got there, so that its own sweeps expire nothing) dead-letters
# those that land on its partitions.  The 0.1 member stops; the 0.2 member,
# restarted an hour later, publishes again what is still live.  Nothing is
# lost: every session expires, none stays visible.
# usage: rolling_upgrade.sh SESSIOND SOURCE_DIR CACHE_DIR
set -uo pipefail
bin=$1 src=$2 cache=$3
old_commit=313bf20 # 0.1: the last commit whose sweeper expired sessions itself
kafka_sh=${SESSIOND_TEST_KAFKA_SH:?names scripts/kafka.sh}
kafka_dir=${SESSIOND_TEST_KAFKA_DIR:?names the broker the ctest fixture kafka.start started}
bootstrap=$(cat "$kafka_dir/bootstrap") || exit 1
tmp=$(mktemp -d)
pids=()
prefix="up$$."
in=${prefix}task-events out=${prefix}session-changes dlq=${prefix}task-events.dlq
trap 'kill -9 "${pids[@]}" 2>/dev/null; rm -rf "$tmp"
      for t in "$in" "$out" "$dlq"; do "$kafka_sh" topics "$kafka_dir" --delete --topic "$t"; done' EXIT
source "$(dirname "$0")/../support/check.sh"

old=$cache/build/sessiond
if [ ! -x "$old" ]; then
  rm -rf "$cache" && mkdir -p "$cache/src" || exit 1
  git -C "$src" archive "$old_commit" | tar -x -C "$cache/src" ||
    { echo "rolling_upgrade: cannot read $old_commit from the git history of $src"; exit 1; }
  { cmake -S "$cache/src" -B "$cache/build" -DCMAKE_BUILD_TYPE=RelWithDebInfo &&
    cmake --build "$cache/build" --target sessiond -j2; } >"$tmp/build.log" 2>&1 ||
    { tail -30 "$tmp/build.log"; echo "rolling_upgrade: cannot build sessiond $old_commit"; exit 1; }
fi
check "the 0.1 binary is 0.1" "sessiond 0.1.0" "$("$old" --version 2>&1 | head -1)"

for t in "$in:4" "$out:4" "$dlq:1"; do
  "$kafka_sh" topics "$kafka_dir" --create --topic "${t%:*}" --partitions "${t##*:}" >/dev/null || exit 1
done
t0=2026-03-01T12:00:00Z later=2026-03-09T12:00:00Z resend=2026-03-09T14:00:00Z
tasks=60
/usr/bin/python3 - "$tmp/events.jsonl" "$tasks" <<'PY'
import json, sys
with open(sys.argv[1], "w") as f:
    for i in range(int(sys.argv[2])):
        f.write(json.dumps({"event_id": "c%d" % i, "event_type": "task.created", "task_id": "t%d" % i,
                            "task_type": "scenario_generation", "short_id": "s%d" % (i % 7),
                            "occurred_at": "2026-03-01T11:00:00Z"}) + "\n")
PY

member() { # binary clock log [args]: a member of the group, in the background
  local b=$1 now=$2 log=$3
  shift 3
  SESSIOND_NOW=$now "$b" run --brokers "$bootstrap" --input-topics "$in" --output-topic "$out" \
    --dlq-topic "$dlq" --group "${prefix}sessiond" --store "sqlite:$tmp/s.db" --batch-ms 20ms \
    -X session.timeout.ms=6000 -X heartbeat.interval.ms=500 --http-addr off "$@" >"$log" 2>&1 &
  pids+=($!)
  member_pid=$!
  for _ in $(seq 300); do
    grep -q 'partitions assigned' "$log" && return
    sleep 0.1
  done
  echo "rolling_upgrade: no partitions for $b within 30 s:"; cat "$log"
}
stop() { # pid log
  kill -TERM "$1"
  wait "$1"
  check "$2 stopped cleanly" 0 "$?"
}
changes() { # the output topic's changes: "task_id change_type version" lines
  "$bin" tail --brokers "$bootstrap" --topic "$out" --from earliest --idle 5s |
    /usr/bin/python3 -c 'import json,sys
for l in sys.stdin: c=json.loads(l); print(c["session"]["task_id"], c["change_type"], c["version"])'
}
latest_expired() { # tasks whose latest change is session.expired
  changes | sort -k1,1 -k3,3n | awk '{last[$1]=$2} END {n=0; for (t in last) n += last[t]=="session.expired"; print n}'
}

# 0.1 applies the workload at t0.
member "$old" "$t0" "$tmp/old1.log"
"$bin" publish --brokers "$bootstrap" --topic "$in" "$tmp/events.jsonl" 2>/dev/null
for _ in $(seq 60); do [ "$(changes | grep -c session.created)" -ge "$tasks" ] && break; sleep 1; done
check "0.1 created every session" "$tasks" "$(changes | grep -c session.created)"
stop "$member_pid" "0.1 at t0"

# A 0.1 and a 0.2 member together, the 0.2 member eight days on.
member "$old" "$t0" "$tmp/old2.log" --sweep-interval 1s
old_pid=$member_pid
member "$bin" "$later" "$tmp/new1.log" --sweep-interval 1s
new_pid=$member_pid
check "0.2 rewrote the file the 0.1 member uses" 1 "$(grep -c 'rewriting the sqlite file into its current layout.*layout=2' "$tmp/new1.log")"
sleep 8
stop "$old_pid" "0.1 beside 0.2"
check "0.1 went on after the rewrite" 0 "$(grep -c 'level=error' "$tmp/old2.log")"
dead=$("$bin" tail --brokers "$bootstrap" --topic "$dlq" --from earliest --idle 3s | grep -c session.expiry_due)
check "the 0.1 member dead-lettered the expiry events of its partitions" 1 "$((dead > 0))"
stop "$new_pid" "0.2 beside 0.1"

# An hour later the 0.2 member alone publishes again what is still live.
member "$bin" "$resend" "$tmp/new2.log" --sweep-interval 1s
for _ in $(seq 60); do [ "$(latest_expired)" -ge "$tasks" ] && break; sleep 1; done
check "every session expired" "$tasks" "$(latest_expired)"
stop "$member_pid" "0.2 alone"
visible=$(SESSIOND_NOW=$resend "$bin" sessions --store "sqlite:$tmp/s.db" --short-id s1 2>/dev/null)
check "none visible" 1 "$([ "$(grep -c '"task_id"' <<<"$visible")" -eq 0 ] && echo 1)"
finish rolling_upgrade
