#!/usr/bin/env bash
# Installs what is missing, builds, and shows sessiond at work.  Until
# `sessiond demo` lands, it validates the shipped example events.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/deps.sh
scripts/build.sh build -DCMAKE_BUILD_TYPE=RelWithDebInfo

echo "== valid examples"
build/sessiond validate schemas/examples/valid/*.json
echo
echo "== invalid examples: one precise reason each"
status=0
build/sessiond validate schemas/examples/invalid/*.json || status=$?
[ "$status" -eq 1 ] # every one of them reported, nothing unreadable
