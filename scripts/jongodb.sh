#!/usr/bin/env bash
# Starts jongodb, the MongoDB-compatible in-memory server the MongoDB store
# is tested against (SPEC §4), and prints its URI.
#   scripts/jongodb.sh start DIR    installs it into DIR if needed, starts it,
#                                   writes DIR/pid and prints the URI
#   scripts/jongodb.sh stop DIR
# The package is pinned and its binary checked against the sha256 its
# package.json declares.
set -euo pipefail
package="@jongodb/memory-server-bin-linux-x64-gnu"
version="0.1.6"
cmd=$1
dir=$2
mkdir -p "$dir"

install() {
  [ -x "$dir/package/bin/jongodb" ] && return 0
  command -v npm >/dev/null || { echo "jongodb: npm is needed to fetch $package" >&2; exit 1; }
  (cd "$dir" && npm pack --silent "$package@$version" >/dev/null 2>&1 &&
     tar xzf jongodb-memory-server-bin-linux-x64-gnu-$version.tgz)
  local want got
  want=$(/usr/bin/python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["jongodb"]["sha256"])' \
           "$dir/package/package.json")
  got=$(sha256sum "$dir/package/bin/jongodb" | cut -d' ' -f1)
  if [ "$want" != "$got" ]; then
    echo "jongodb: checksum mismatch (want $want, got $got)" >&2
    rm -rf "$dir/package"
    exit 1
  fi
  chmod +x "$dir/package/bin/jongodb"
}

case $cmd in
start)
  install
  port=$(/usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  "$dir/package/bin/jongodb" --host=127.0.0.1 --port="$port" \
    --topology-profile=singleNodeReplicaSet --replica-set-name=rs0 > "$dir/log" 2>&1 &
  echo $! > "$dir/pid"
  for _ in $(seq 100); do
    if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
      echo "mongodb://127.0.0.1:$port/?replicaSet=rs0"
      exit 0
    fi
    sleep 0.1
  done
  echo "jongodb: did not start; its log:" >&2
  cat "$dir/log" >&2
  exit 1
  ;;
stop)
  [ -f "$dir/pid" ] && kill "$(cat "$dir/pid")" 2>/dev/null || true
  rm -f "$dir/pid"
  ;;
*)
  echo "usage: scripts/jongodb.sh start|stop DIR" >&2
  exit 2
  ;;
esac
