#!/usr/bin/env bash
# `cmake --install` into a fresh prefix: the binary runs from there, and
# the schemas, their examples, the licence, the unit and the man page are
# where README says.
# usage: install_tree.sh BUILD_DIR
set -uo pipefail
build=$1
prefix=$(mktemp -d)
trap 'rm -rf "$prefix"' EXIT
source "$(dirname "$0")/../support/check.sh"
cmake --install "$build" --prefix "$prefix" >/dev/null; rc=$?
check "cmake --install: exit 0" 0 "$rc"
check "bin/sessiond runs" "sessiond $(sed -n 's/^project(sessiond VERSION \([0-9.]*\).*/\1/p' "$(dirname "$0")/../../CMakeLists.txt")" \
  "$("$prefix/bin/sessiond" --version)"
# Test hooks stay in the test build's sessiond-testhooks: the installed
# binary has no failpoint to read, and only sessiond is installed.
check "the installed sessiond has no failpoints" 0 "$(grep -c SESSIOND_FAILPOINT "$prefix/bin/sessiond")"
check "only sessiond is installed in bin/" "sessiond" "$(ls "$prefix/bin")"
check "the test build's sessiond-testhooks has them" 1 \
  "$(grep -q SESSIOND_FAILPOINT "$build/tests/sessiond-testhooks" && echo 1)"
for f in share/sessiond/schemas/task-event.v1.json share/sessiond/schemas/session-change.v1.json \
         share/sessiond/schemas/examples/valid/27-session-expiry-due.json \
         share/doc/sessiond/LICENSE share/doc/sessiond/README.md \
         share/doc/sessiond/docs/operations.md share/doc/sessiond/docs/guarantees.md; do
  check "installed: $f" 1 "$([ -s "$prefix/$f" ] && echo 1)"
done
# The unit names the paths of the prefix it was installed to.
unit=$prefix/lib/systemd/system/sessiond.service
check "installed: the systemd unit" 1 "$([ -s "$unit" ] && echo 1)"
check "installed: the example environment file" 1 \
  "$([ -s "$prefix/share/sessiond/examples/sessiond.env" ] && echo 1)"
check "the unit runs this prefix's binary" "ExecStart=$prefix/bin/sessiond run" \
  "$(grep '^ExecStart=' "$unit")"
check "the unit reads this prefix's environment file" \
  "EnvironmentFile=$prefix/etc/sessiond/sessiond.env" "$(grep '^EnvironmentFile=' "$unit")"
said=$(systemd-analyze verify "$unit" 2>&1); rc=$?
check "systemd-analyze verify" "0:" "$rc:$said"
exposure=$(systemd-analyze security --offline=true "$unit" 2>&1 |
           sed -n 's/.*Overall exposure level for sessiond.service: \([0-9.]*\).*/\1/p')
check "systemd-analyze security: exposure below 2 (OK)" 1 \
  "$(awk -v e="$exposure" 'BEGIN { print (e != "" && e < 2) }')"
# The man page: installed, rendered without a warning, and holding every
# command and, in that command's section, every option its --help lists.
page=$prefix/share/man/man1/sessiond.1
check "installed: the man page" 1 "$([ -s "$page" ] && echo 1)"
check "the man page renders without a warning" "" "$(groff -man -ww -z "$page" 2>&1)"
for cmd in $("$prefix/bin/sessiond" --help | sed -n 's/^  \([a-z]*\)  .*/\1/p'); do
  want=$("$prefix/bin/sessiond" "$cmd" --help | sed -n 's/^  \(-[-A-Za-z]*\).*/\1/p' | sort)
  have=$(awk -v cmd="$cmd" '/^\.S[HS] / { in_cmd = ($1 == ".SS" && $2 == cmd) }
           in_cmd && /^\.TP$/ { getline; sub(/^\.BI? "/, ""); sub(/[ "].*/, ""); gsub(/\\-/, "-"); print }' \
         "$page" | sort)
  check "man page: $cmd and its options" "$want" "$have"
done
check "the installed examples validate" 0 \
  "$("$prefix/bin/sessiond" validate "$prefix"/share/sessiond/schemas/examples/valid/*.json >/dev/null 2>&1; echo $?)"
finish install_tree
