#!/usr/bin/env bash
# `sessiond sessions` against each store: shapes, exit codes, --now; eight
# of them opening a new SQLite file at once.
# usage: cli_sessions.sh SESSIOND STORE_LOAD
set -uo pipefail
bin=$1
load=$2
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
source "$(dirname "$0")/../support/check.sh"

field() { # JSON on stdin, a Python expression over `d`
  /usr/bin/python3 -c 'import json,sys; d=json.load(sys.stdin); print(eval(sys.argv[1]))' "$1"
}

cat > "$tmp/events.jsonl" <<'JSON'
{"event_id":"c1","event_type":"task.created","task_id":"t1","task_type":"scenario_generation","short_id":"s1","user_id":"u1","metadata":{"lang":"fr"},"occurred_at":"2026-03-01T10:00:00Z"}
{"event_id":"c2","event_type":"task.created","task_id":"t2","task_type":"image_analysis","short_id":"s1","occurred_at":"2026-03-01T11:00:00Z"}
{"event_id":"x1","event_type":"task.completed","task_id":"t1","task_type":"scenario_generation","occurred_at":"2026-03-01T12:00:00Z"}
{"event_id":"c3","event_type":"task.created","task_id":"t3","task_type":"video_generation","short_id":"s2","occurred_at":"2026-03-01T10:00:00Z"}
{"event_id":"x3","event_type":"task.failed","task_id":"t3","task_type":"video_generation","occurred_at":"2026-03-01T10:30:00Z"}
JSON

run_for() { # store URI, label
  local uri=$1 label=$2 out rc
  "$load" "$uri" "sdcli_$$" "$tmp/events.jsonl" 2026-03-01T13:00:00Z || { failed=$((failed + 1)); return; }
  export SESSIOND_DATABASE="sdcli_$$"

  out=$("$bin" sessions --store "$uri" --short-id s1 --now 2026-03-02T00:00:00Z); rc=$?
  check "$label: short_id found" 0 "$rc"
  check "$label: total_sessions" 2 "$(field 'd["total_sessions"]' <<<"$out")"
  check "$label: sessions by task_id" "['t1', 't2']" "$(field '[s["task_id"] for s in d["sessions"]]' <<<"$out")"
  check "$label: status" completed "$(field 'd["sessions"][0]["status"]' <<<"$out")"
  check "$label: updated_at" 2026-03-01T12:00:00.000Z "$(field 'd["sessions"][0]["updated_at"]' <<<"$out")"
  check "$label: metadata" "{'lang': 'fr'}" "$(field 'd["sessions"][0]["metadata"]' <<<"$out")"
  check "$label: timestamp" 2026-03-02T00:00:00.000Z "$(field 'd["timestamp"]' <<<"$out")"

  out=$("$bin" sessions --store "$uri" --task-id t2 --now 2026-03-02T00:00:00Z); rc=$?
  check "$label: task found" 0 "$rc"
  check "$label: task session" "image_analysis active None" \
    "$(field 'd["session"]["task_type"]+" "+d["session"]["status"]+" "+str(d["session"]["user_id"])' <<<"$out")"

  out=$("$bin" sessions --store "$uri" --task-id t3 --now 2026-03-02T00:00:00Z); rc=$?
  check "$label: removed task: exit 1" 1 "$rc"
  check "$label: removed task: JSON error" "session not found t3" \
    "$(field 'd["error"]+" "+d["detail"]' <<<"$out")"

  out=$("$bin" sessions --store "$uri" --short-id s1 --now 2026-03-08T11:30:00Z); rc=$?
  check "$label: after the TTL only t1 (changed later) is left" "['t1']" \
    "$(field '[s["task_id"] for s in d["sessions"]]' <<<"$out")"
  unset SESSIOND_DATABASE
}

run_for "sqlite:$tmp/cli.db" sqlite
if [ -n "${SESSIOND_TEST_MONGO_URI:-}" ]; then
    # jongodb lacks endSessions (SPEC §4); the driver's warning is noise here
  run_for "$SESSIOND_TEST_MONGO_URI" mongodb 2> >(grep -v endSessions >&2)
fi

"$bin" sessions --store "sqlite:$tmp/cli.db" >/dev/null 2>&1; rc=$?
check "neither --short-id nor --task-id" 2 "$rc"
"$bin" sessions --short-id x >/dev/null 2>&1; rc=$?
check "no store" 2 "$rc"
SESSIOND_STORE="sqlite:$tmp/cli.db" "$bin" sessions --short-id s1 --now 2026-03-02T00:00:00Z >/dev/null; rc=$?
check "store from SESSIOND_STORE" 0 "$rc"
"$bin" sessions --store "sqlite:$tmp/cli.db" --session-ttl 7x --short-id s1 2>"$tmp/err"; rc=$?
check "bad --session-ttl: exit 2" 2 "$rc"
check "bad --session-ttl: says so" 1 "$(grep -c 'session-ttl: "7x" is not a positive duration' "$tmp/err")"
"$bin" sessions --store "mongodb://127.0.0.1:1/?serverSelectionTimeoutMS=200" --short-id s1 2>"$tmp/err"; rc=$?
check "unreachable MongoDB: exit 3" 3 "$rc"
check "unreachable MongoDB: names the host" 1 "$(grep -c '127.0.0.1:1' "$tmp/err")"

# Eight `sessiond sessions` started at the same instant on a file none of
# them has seen: each opens it (a new file turned to WAL mode under the
# others' feet) and finds nothing, and none fails to open it.
for round in 1 2 3; do
  rm -f "$tmp/together.db"*
  pids=()
  for i in 1 2 3 4 5 6 7 8; do
    "$bin" sessions --store "sqlite:$tmp/together.db" --task-id "t$i" >/dev/null 2>"$tmp/together-$i.err" &
    pids+=($!)
  done
  opened=0
  for i in 1 2 3 4 5 6 7 8; do
    wait "${pids[$((i - 1))]}"
    [ $? -eq 1 ] && [ ! -s "$tmp/together-$i.err" ] && opened=$((opened + 1))
  done
  check "round $round: eight at once on a new file all open it" 8 "$opened"
  [ "$opened" -eq 8 ] || cat "$tmp"/together-*.err >&2
done

finish cli_sessions
