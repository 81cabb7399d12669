#!/usr/bin/env bash
# Every command's options, table-driven: each documented special value
# (a "0: never", "port 0", "off", a named mode) is accepted as a flag and
# as its environment twin, a bad value is refused naming the flag or the
# variable, and --help's columns line up.  A special value --help
# documents that the table lacks fails the test, so a new one gets a row.
# The values are only parsed here (--help after them stops the command);
# what they do is shown by the suites that run the commands.
# usage: cli_options.sh SESSIOND
set -uo pipefail
bin=$1
source "$(dirname "$0")/../support/check.sh"
export LC_ALL=C.UTF-8

# command option value ("-": a flag, given alone, and as 1 in the environment)
accepted=(
  "run sweep-interval 0" "run sweep-interval 0s" "run sweep-interval 0ms"
  "run stall-timeout 0" "run stall-timeout 0m" "run rejoin-after 0" "run rejoin-after 0h"
  "run http-addr off" "run http-addr 127.0.0.1:0" "run brokers embedded"
  "run delivery exactly-once" "run delivery at-least-once" "run write-concern 2"
  "run write-concern majority" "run session-ttl 36h" "run batch-ms 250ms"
  "run input-topics ^task-.*"
  "replay from earliest" "replay from 2026-03-01T00:00:00Z" "replay emit changes"
  "replay emit none" "replay reset -"
  "tail count 0" "tail idle 0" "tail idle 0s" "tail from earliest" "tail from latest"
  "bench ids uuid" "bench ids sequential" "bench json -" "bench brokers embedded"
  "bench keep -" "bench rates 1000,10000" "bench latency-time 10s" "bench partitions 6"
  "publish skip-invalid -" "sessions now 2026-03-01T00:00:00Z" "demo seed 0"
)
# command option value what-the-error-names
refused=(
  "run sweep-interval -1 sweep-interval" "run sweep-interval 1x sweep-interval"
  "run stall-timeout never stall-timeout" "run batch-max -5 batch-max"
  "run batch-ms 0 batch-ms" "tail idle soon idle" "tail count many count"
  "demo tasks 1e3 tasks" "bench latency-time 1x latency-time" "bench partitions six partitions"
)

env_name() { local o=${1//-/_}; echo "SESSIOND_${o^^}"; }

for row in "${accepted[@]}"; do
  read -r cmd opt value <<<"$row"
  if [[ $value == - ]]; then
    out=$("$bin" "$cmd" "--$opt" --help 2>&1 >/dev/null); rc=$?
    value=1
  else
    out=$("$bin" "$cmd" "--$opt" "$value" --help 2>&1 >/dev/null); rc=$?
  fi
  check "$cmd --$opt $value" "0:" "$rc:$out"
  var=$(env_name "$opt")
  out=$(env "$var=$value" "$bin" "$cmd" --help 2>&1 >/dev/null); rc=$?
  check "$cmd $var=$value" "0:" "$rc:$out"
done

for row in "${refused[@]}"; do
  read -r cmd opt value names <<<"$row"
  out=$("$bin" "$cmd" "--$opt" "$value" --help 2>&1 >/dev/null); rc=$?
  check "$cmd --$opt $value: exit" 2 "$rc"
  [[ $out == *"--$names"* ]] || check "$cmd --$opt $value: names the flag" "--$names" "$out"
  var=$(env_name "$opt")
  out=$(env "$var=$value" "$bin" "$cmd" --help 2>&1 >/dev/null); rc=$?
  check "$cmd $var=$value: exit" 2 "$rc"
  [[ $out == *"$var"* ]] || check "$cmd $var=$value: names the variable" "$var" "$out"
done

for cmd in run demo replay sessions publish tail bench; do
  help=$("$bin" "$cmd" --help); rc=$?
  check "$cmd --help" 0 "$rc"
  while IFS= read -r line; do
    [[ $line == "  -"* || $line == "                             ["* ]] || continue
    # the text starts in column 30 (after "  ", 26 characters and a space)
    [[ ${line:28:1} == " " && ${line:29:1} != " " ]] ||
      check "$cmd --help: aligned" "text at column 30" "$line"
    # a documented special value needs a row above
    if [[ $line =~ ^\ \ --([a-z-]+).*(0:|port\ 0|\;\ off\)) ]]; then
      opt=${BASH_REMATCH[1]}
      found=0
      for row in "${accepted[@]}"; do
        read -r c o v <<<"$row"
        [[ $c == "$cmd" && $o == "$opt" ]] && found=1
      done
      check "$cmd --$opt: its documented special value has a row" 1 "$found"
    fi
  done <<<"$help"
done
finish cli.options
