#!/usr/bin/env bash
# `sessiond validate` as a user calls it: exit codes, line numbers, prefixes.
# usage: cli_validate.sh SESSIOND EXAMPLES_DIR
set -uo pipefail
bin=$1
examples=$2
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
source "$(dirname "$0")/../support/check.sh"

good='{"event_id":"e1","event_type":"scenario.saved","short_id":"s1","occurred_at":"2026-03-01T12:00:00Z"}'
printf '%s\n\n   \n{"event_id":""}\n%s\r\n[1]\n' "$good" "$good" > "$tmp/mixed.jsonl"

out=$("$bin" validate "$tmp/mixed.jsonl" 2>"$tmp/err"); rc=$?
check "exit status with invalid lines" 1 "$rc"
check "one line per invalid event, blank lines counted" \
  $'line 4: event_id: must not be empty\nline 6: not an object (got array)' "$out"
check "summary on stderr" "sessiond validate: 4 events, 2 invalid" "$(cat "$tmp/err")"

out=$(printf '%s\n' "$good" | "$bin" validate - 2>/dev/null); rc=$?
check "stdin, all valid: exit" 0 "$rc"
check "stdin, all valid: silent" "" "$out"

printf '%s\n' "$good" > "$tmp/ok.jsonl"
out=$("$bin" validate "$tmp/ok.jsonl" "$tmp/mixed.jsonl" 2>/dev/null); rc=$?
check "several files: exit" 1 "$rc"
check "several files: prefixed" "$tmp/mixed.jsonl: line 4: event_id: must not be empty" \
  "$(head -1 <<<"$out")"

"$bin" validate "$tmp/nope.jsonl" >/dev/null 2>&1; rc=$?
check "unreadable file" 2 "$rc"
"$bin" validate >/dev/null 2>&1; rc=$?
check "no arguments" 2 "$rc"
"$bin" validate --help >/dev/null; rc=$?
check "--help" 0 "$rc"
"$bin" frobnicate >/dev/null 2>&1; rc=$?
check "unknown command" 2 "$rc"

"$bin" validate "$examples"/valid/*.json >/dev/null 2>&1; rc=$?
check "shipped valid examples" 0 "$rc"
n_invalid=$(ls "$examples"/invalid/*.json | wc -l)
out=$("$bin" validate "$examples"/invalid/*.json 2>/dev/null); rc=$?
check "shipped invalid examples: exit" 1 "$rc"
check "shipped invalid examples: one reason each" "$n_invalid" "$(wc -l <<<"$out")"

finish cli_validate
