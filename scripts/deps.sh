#!/usr/bin/env bash
# Installs the Debian packages sessiond builds, tests and runs with, when
# they are missing.  Safe to run again: it installs nothing that is there.
set -euo pipefail

packages=(
  build-essential cmake pkg-config       # toolchain
  libjansson-dev                         # JSON parsing and writing
  libssl-dev                             # SHA-256 for deterministic change ids
  check                                  # unit test framework
  python3-jsonschema                     # JSON Schema oracle for the validator
  librdkafka-dev kcat                    # Kafka client, mock cluster; manual Kafka work
  libmongoc-dev libbson-dev              # MongoDB store
  libsqlite3-dev                         # embedded SQLite store
  libmicrohttpd-dev                      # HTTP health, metrics and API
  python3-mockupdb                       # MongoDB wire-protocol fault injection
  docker-compose python3-yaml            # validates and reads compose/docker-compose.yml (no engine needed)
  openjdk-17-jre-headless maven          # Apache Kafka from Maven Central for the real-broker suites
  curl                                   # HTTP tests
  systemd                                # systemd-analyze checks the shipped unit (install.tree)
  prometheus                             # promtool and Prometheus test the monitoring kit's alerts (monitoring.*)
  podman runc debootstrap iptables       # container.image: podman builds and runs the image (runc where crun refuses hybrid cgroups) on a Debian 12 base debootstrap makes
  libsystemd-dev                         # optional: run tells systemd it is ready (Type=notify)
  dpkg-dev man-db                        # the .deb (dpkg-shlibdeps) and its man page checks (package.deb, install.tree)
)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q '^install ok installed$' ||
    missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

echo "deps: installing ${missing[*]}" >&2
sudo=()
[ "$(id -u)" -eq 0 ] || sudo=(sudo)
export DEBIAN_FRONTEND=noninteractive
"${sudo[@]}" apt-get update -qq
"${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
