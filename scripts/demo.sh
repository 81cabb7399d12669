#!/usr/bin/env bash
# Installs what is missing, builds, and runs `sessiond demo`: an embedded
# broker, a SQLite store in a temporary directory, a generated workload,
# a summary and the result checked against the reference model.
# Arguments go to `sessiond demo` (--tasks N, --seed S, --store URI).
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/deps.sh
scripts/build.sh build -DCMAKE_BUILD_TYPE=RelWithDebInfo
exec build/sessiond demo "$@"
