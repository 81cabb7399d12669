#!/usr/bin/env bash
# Runs every test suite: once on an optimised build, once under
# AddressSanitizer + UndefinedBehaviorSanitizer.  Exits non-zero if any fails.
set -euo pipefail
# The MongoDB driver keeps counters in /dev/shm/mongoc-<pid>; the crash tests
# SIGKILL sessiond, leaving them behind, and a later process given the same
# pid warns on stderr, which the CLI tests check is empty.  The driver reads
# this before main() runs, so it is set here.
export MONGOC_DISABLE_SHM=1
cd "$(dirname "$0")/.."

scripts/deps.sh

# The MongoDB store's suites run against jongodb (SPEC §4).  Point
# SESSIOND_TEST_MONGO_URI at a real replica set to run them there instead.
if [ -z "${SESSIOND_TEST_MONGO_URI:-}" ]; then
  SESSIOND_TEST_MONGO_URI=$(scripts/jongodb.sh start .cache/jongodb)
  trap 'scripts/jongodb.sh stop .cache/jongodb' EXIT
  # tests that need a server of their own (to cut its connections) start one
  export SESSIOND_TEST_JONGODB=$PWD/.cache/jongodb/package/bin/jongodb
fi
export SESSIOND_TEST_MONGO_URI
echo "== MongoDB for tests: $SESSIOND_TEST_MONGO_URI"

status=0
run_suites() { # build-dir ctest-args -- cmake-args
  local dir=$1 ctest_args=()
  shift
  while [ "$1" != -- ]; do ctest_args+=("$1"); shift; done
  shift
  echo "== $dir: build"
  if ! scripts/build.sh "$dir" "$@"; then
    echo "== $dir: BUILD FAILED" >&2
    status=1
    return
  fi
  echo "== $dir: test"
  # Two at a time: the Kafka suites mostly wait on consumer groups.
  ctest --test-dir "$dir" --output-on-failure -j2 "${ctest_args[@]}" || status=1
}

run_suites build -- -DCMAKE_BUILD_TYPE=RelWithDebInfo
# The crash-anywhere harness (label crash) kills the daemon some twenty
# times per store and mostly waits for the group to notice: it runs on the
# optimised build only, to keep CI under 20 minutes.
ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
  run_suites build-asan -LE crash -- -DCMAKE_BUILD_TYPE=Debug -DSESSIOND_SANITIZE=ON

if [ $status -ne 0 ]; then
  echo "test.sh: FAILED (see the suites above)" >&2
else
  echo "test.sh: every suite passed"
fi
exit $status
