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

# Apache Kafka for the *.kafka suites comes from Maven Central through the
# ctest fixtures kafka.start and kafka4.start (scripts/kafka.sh): without
# java or mvn they fail, and every suite that needs them with them.
for tool in java mvn; do
  command -v "$tool" >/dev/null ||
    echo "== WARNING: $tool is missing: the *.kafka suites will fail (scripts/deps.sh installs it)" >&2
done

status=0
build_tree() { # dir cmake-args...
  local dir=$1
  shift
  echo "== $dir: build"
  scripts/build.sh "$dir" "$@" && return 0
  echo "== $dir: BUILD FAILED" >&2
  status=1
  return 1
}
run_ctest() { # dir ctest-args...
  local dir=$1
  shift
  echo "== $dir: test $*"
  # Four at a time: the Kafka suites mostly wait on consumer groups.
  ctest --test-dir "$dir" --output-on-failure -j4 "$@" || status=1
}

build_tree build -DCMAKE_BUILD_TYPE=RelWithDebInfo && run_ctest build
# Under the sanitizers: every suite on the mock cluster but the
# crash-anywhere harness (label crash), which kills the daemon some twenty
# times and mostly waits for the group to notice, the Debian package
# (label package: dpkg once is enough) and the real Prometheus's alert test
# (label prometheus: it waits on Prometheus), the container image (label
# container: it holds a build of its own), and of the real-broker
# suites (label broker) those that reach the code the mock cannot: the
# in-process pipeline on Apache Kafka, and a group's members fencing,
# timing out and waiting for each other's transactions.  CI stays under 30
# minutes.
export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
if build_tree build-asan -DCMAKE_BUILD_TYPE=Debug -DSESSIOND_SANITIZE=ON; then
  run_ctest build-asan -LE 'crash|broker|package|prometheus|container'
  run_ctest build-asan -R '^(pipeline|recovery[.]group)[.]sqlite[.]kafka$'
fi

if [ $status -ne 0 ]; then
  echo "test.sh: FAILED (see the suites above)" >&2
else
  echo "test.sh: every suite passed"
fi
exit $status
