#!/usr/bin/env bash
# `sessiond bench` runs every measurement and reports each one, for SQLite
# and (with SESSIOND_TEST_MONGO_URI) for MongoDB.  No figure is asserted
# beyond being there and positive: timings belong to the bench itself.
# usage: cli_bench.sh SESSIOND sqlite|mongodb
set -uo pipefail
bin=$1 kind=$2
source "$(dirname "$0")/../support/check.sh"
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
if [ "$kind" = mongodb ]; then
  [ -n "${SESSIOND_TEST_MONGO_URI:-}" ] || { echo "SESSIOND_TEST_MONGO_URI is not set; skipping"; exit 77; }
  # jongodb's updates slow down with the collection's size (SPEC §4): a small run.
  out=$("$bin" bench --events 1200 --batch-max 300 --json --store "$SESSIOND_TEST_MONGO_URI" 2>/dev/null); rc=$?
else
  # on a file of the user's choosing, which the bench creates and deletes;
  # batches smaller than run's, so that the pipeline has several
  out=$("$bin" bench --events 6000 --batch-max 1000 --json --store "sqlite:$dir/bench.db" 2>/dev/null); rc=$?
  check "bench --store sqlite:PATH: the file is gone afterwards" "" "$(ls "$dir")"
fi
check "bench: exit 0" 0 "$rc"
check "bench: every figure, positive" ok "$(/usr/bin/python3 -c '
import json, sys
d = json.loads(sys.argv[1]); kind = sys.argv[2]
keys = ["core_events_per_s", "store_events_per_s", "pipeline_events_per_s", "batch_p50_ms",
        "batch_p99_ms", "pipeline_over_store", "peak_rss_mib", "broker_peak_rss_mib",
        "store_cpu_us_per_event"]
if kind == "mongodb":
    keys += ["round_trips_per_1000", "documents_written_per_1000", "bytes_sent_per_event",
             "bytes_received_per_event"]
else:
    keys += ["sqlite_sessions", "sqlite_file_bytes", "sqlite_mib_per_million_sessions"]
bad = [k for k in keys if not d.get(k, 0) > 0]
bad += ["store_events_per_s_at " + m for m in ("10%", "50%", "100%")
        if not d["store_events_per_s_at"].get(m, 0) > 0]
bad += ["pipeline_us_per_event " + m for m in ("store", "rest")
        if not d["pipeline_us_per_event"].get(m, 0) > 0]
bad += [] if "collect" in d["pipeline_us_per_event"] else ["pipeline_us_per_event collect"]
print("ok" if not bad and d["store"] == kind and d["ids"] == "uuid" and d["batch_max"] in (300, 1000)
      else "missing or zero: %s" % bad)' "$out" "$kind")"
if [ "$kind" = sqlite ]; then
  out=$("$bin" bench --events 3000 --ids sequential --json 2>/dev/null); rc=$?
  check "bench --ids sequential: exit 0" 0 "$rc"
  check "bench --ids sequential: says so" sequential \
    "$(/usr/bin/python3 -c 'import json, sys; print(json.loads(sys.argv[1])["ids"])' "$out")"
  touch "$dir/taken.db"
  "$bin" bench --store "sqlite:$dir/taken.db" 2>"$dir/err"; rc=$?
  check "bench --store sqlite:EXISTING: usage error" 2 "$rc"
  check "bench --store sqlite:EXISTING: the file is left alone" "$dir/taken.db" "$(ls "$dir"/taken.db)"
  check "bench --store sqlite:EXISTING: says why" 1 "$(grep -c 'does not exist yet' "$dir/err")"
  "$bin" bench --ids random 2>/dev/null; rc=$?
  check "bench --ids random: usage error" 2 "$rc"
  "$bin" bench --batch-max 0 2>/dev/null; rc=$?
  check "bench --batch-max 0: usage error" 2 "$rc"
fi
finish "cli_bench_$kind"
