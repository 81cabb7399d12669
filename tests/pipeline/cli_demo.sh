#!/usr/bin/env bash
# `sessiond demo` as a new user runs it: a small workload, a summary, the
# reference model's verdict and a clean temporary directory afterwards.
# usage: cli_demo.sh SESSIOND
set -uo pipefail
bin=$1
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
source "$(dirname "$0")/../support/check.sh"

before=$(ls -d /tmp/sessiond-demo-* 2>/dev/null | wc -l)
"$bin" demo --tasks 1500 --seed 7 >"$tmp/out" 2>"$tmp/err"; rc=$?
check "demo: exit 0" 0 "$rc"
check "demo: matches the reference model" 1 "$(grep -c '^verdict: the store matches the reference model' "$tmp/out")"
check "demo: summary lines" 6 "$(grep -cE '^  (events in|dead-lettered|sessions created|sessions removed|sessions expired|changes out) ' "$tmp/out")"
check "demo: some sessions expired the day after" 1 "$(awk '/sessions expired/ {print ($3 > 0)}' "$tmp/out")"
check "demo: live sessions by type" 1 "$(grep -c 'live sessions by type' "$tmp/out")"
check "demo: nothing on stderr" "" "$(cat "$tmp/err")"
check "demo: its temporary store is gone" "$before" "$(ls -d /tmp/sessiond-demo-* 2>/dev/null | wc -l)"

"$bin" demo --store "sqlite:$tmp/demo.db" --tasks 300 >/dev/null 2>&1; rc=$?
check "demo --store: exit 0" 0 "$rc"
"$bin" demo --store "sqlite:$tmp/demo.db" --tasks 300 >/dev/null 2>"$tmp/err"; rc=$?
check "demo into a store with sessions: refused" 1 "$rc"
check "demo into a store with sessions: says why" 1 "$(grep -c 'needs an empty store' "$tmp/err")"
"$bin" demo --tasks 0 2>"$tmp/err"; rc=$?
check "demo --tasks 0: usage" "2 1" "$rc $(grep -c 'at least 1' "$tmp/err")"

finish cli_demo
