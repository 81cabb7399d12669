#!/usr/bin/env bash
# `sessiond bench` runs every measurement and reports each one, for SQLite
# and (with SESSIOND_TEST_MONGO_URI) for MongoDB.  No figure is asserted
# beyond being there and positive: timings belong to the bench itself.
# usage: cli_bench.sh SESSIOND sqlite|mongodb
set -uo pipefail
bin=$1 kind=$2
source "$(dirname "$0")/../support/check.sh"
if [ "$kind" = mongodb ]; then
  [ -n "${SESSIOND_TEST_MONGO_URI:-}" ] || { echo "SESSIOND_TEST_MONGO_URI is not set; skipping"; exit 77; }
  # jongodb's updates slow down with the collection's size (SPEC §4): a small run.
  out=$("$bin" bench --events 1200 --json --store "$SESSIOND_TEST_MONGO_URI" 2>/dev/null); rc=$?
else
  out=$("$bin" bench --events 6000 --json 2>/dev/null); rc=$?
fi
check "bench: exit 0" 0 "$rc"
check "bench: every figure, positive" ok "$(/usr/bin/python3 -c '
import json, sys
d = json.loads(sys.argv[1]); kind = sys.argv[2]
keys = ["core_events_per_s", "store_events_per_s", "pipeline_events_per_s", "batch_p50_ms",
        "batch_p99_ms", "pipeline_over_store", "peak_rss_mib", "broker_peak_rss_mib"]
if kind == "mongodb": keys += ["round_trips_per_1000", "documents_written_per_1000"]
bad = [k for k in keys if not d.get(k, 0) > 0]
print("ok" if not bad and d["store"] == kind else "missing or zero: %s" % bad)' "$out" "$kind")"
"$bin" bench --store sqlite:/tmp/x.db 2>/dev/null; rc=$?
check "bench --store sqlite:…: usage error" 2 "$rc"
finish "cli_bench_$kind"
