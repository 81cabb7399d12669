#!/usr/bin/env bash
# `sessiond bench --brokers` against the suites' Apache Kafka: every figure
# of the real-broker run is there and positive (none is asserted beyond
# that: timings belong to the bench itself), the run's topics are gone
# afterwards, or kept with --keep, and bad options are refused.
# usage: cli_bench_kafka.sh SESSIOND
set -uo pipefail
bin=$1
kafka_sh=${SESSIOND_TEST_KAFKA_SH:?names scripts/kafka.sh}
kafka_dir=${SESSIOND_TEST_KAFKA_DIR:?names the broker the ctest fixture kafka.start started}
bootstrap=$(cat "$kafka_dir/bootstrap") || exit 1
source "$(dirname "$0")/../support/check.sh"
topics() { "$kafka_sh" topics "$kafka_dir" --list 2>/dev/null | grep '^sdbench-' | sort; }
before=$(topics)

out=$("$bin" bench --brokers "$bootstrap" --events 6000 --batch-max 1000 --rates 500,2000 \
        --latency-time 2s --json 2>"$kafka_dir/bench.err"); rc=$?
check "bench --brokers: exit 0" 0 "$rc"
[ $rc -eq 0 ] || cat "$kafka_dir/bench.err"
check "bench --brokers: every figure, positive" ok "$(/usr/bin/python3 -c '
import json, sys
d = json.loads(sys.argv[1]); bad = []
for k in ["core_events_per_s", "read_limit_events_per_s", "store_events_per_s",
          "pipeline_over_store", "sqlite_sessions"]:
    if not d.get(k, 0) > 0: bad.append(k)
for mode in ("at_least_once", "exactly_once"):
    m = d.get(mode, {})
    for k in ("events_per_s", "batch_p50_ms", "batch_p99_ms", "cpu_us_per_event", "peak_rss_mib"):
        if not m.get(k, 0) > 0: bad.append(mode + " " + k)
    rates = d.get("latency", {}).get(mode, [])
    if [r.get("rate") for r in rates] != [500.0, 2000.0]: bad.append(mode + " latency rates")
    for r in rates:
        for k in ("p50_ms", "p99_ms", "p99_9_ms", "max_ms", "samples"):
            if not r.get(k, 0) > 0: bad.append("%s latency at %s %s" % (mode, r.get("rate"), k))
    if not d.get("highest_rate_kept_up", {}).get(mode, 0) > 0: bad.append(mode + " highest rate")
if d.get("partitions") != 6 or d.get("brokers") != sys.argv[2]: bad.append("partitions/brokers")
print("ok" if not bad else "missing or zero: %s" % bad)' "$out" "$bootstrap")"
check "bench --brokers: the run's topics are deleted" "$before" "$(topics)"

# --keep, and the table
"$bin" bench --brokers "$bootstrap" --events 2000 --batch-max 500 --rates 500 \
  --latency-time 1s --partitions 2 --keep >"$kafka_dir/bench.txt" 2>&1; rc=$?
check "bench --brokers --keep: exit 0" 0 "$rc"
for row in "read limit: a consumer" "pipeline at-least-once" "pipeline exactly-once" \
           "at-least-once at 500/s: p50 / p99 / p99.9 / max" "exactly-once: highest rate kept up with"; do
  check "the table has: $row" 1 "$(grep -c "$row" "$kafka_dir/bench.txt")"
done
kept=$(comm -13 <(echo "$before") <(topics))
check "bench --keep: its eight topics stay" 8 "$(grep -c . <<<"$kept")"
for t in $kept; do "$kafka_sh" topics "$kafka_dir" --delete --topic "$t" >/dev/null 2>&1; done

"$bin" bench --brokers "$bootstrap" --rates 0 2>/dev/null; rc=$?
check "bench --rates 0: usage error" 2 "$rc"
"$bin" bench --brokers "$bootstrap" --latency-time 10ms 2>/dev/null; rc=$?
check "bench --latency-time 10ms: usage error" 2 "$rc"
finish cli_bench_kafka
