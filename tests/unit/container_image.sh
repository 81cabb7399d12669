#!/usr/bin/env bash
# The container image, built and run on this machine with no registry:
# scripts/image.sh build (a debootstrapped Debian 12 base, cached in
# .cache/image/, then compose/Dockerfile with podman), and the image runs:
# --version as the build's sessiond says it, `sessiond demo` (embedded
# broker, SQLite) as the unprivileged sessiond user, into a volume at its
# state directory too; `sessiond run` as a service (env twins, that volume,
# HTTP on a published port, SIGTERM); no build tools in it; the schemas
# and the licence where the install rules put them.  Leaves no container
# or volume behind.  Needs root, podman, debootstrap, runc where crun
# cannot run containers (scripts/image.sh says which) and curl.
# usage: container_image.sh [SESSIOND]   (the version to expect: what
#        SESSIOND --version prints, else CMakeLists.txt's)
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
image_sh=$repo/scripts/image.sh
image=${SESSIOND_IMAGE_TAG:-localhost/sessiond:local}
tmp=$(mktemp -d)
name=sessiond-test-$$
volume=sessiond-test-$$
cleanup() {
  podman ps -a --format '{{.Names}}' 2>/dev/null | grep "^$name" | xargs -r podman rm -f >/dev/null 2>&1
  podman volume rm -f "$volume" >/dev/null 2>&1
  rm -rf "$tmp"
}
trap cleanup EXIT
source "$here/../support/check.sh"

die() {
  echo "container_image: FAILED: $*" >&2
  exit 1
}
[ "$(id -u)" -eq 0 ] || die "needs root (debootstrap; podman as root)"
for t in podman debootstrap curl; do
  command -v "$t" >/dev/null 2>&1 || die "$t is missing (scripts/deps.sh installs it)"
done

if [ -n "${1:-}" ]; then
  want=$("$1" --version)
else
  want="sessiond $(sed -n 's/^project(sessiond VERSION \([0-9.]*\).*/\1/p' "$repo/CMakeLists.txt")"
fi

start=$SECONDS
"$image_sh" build 2>"$tmp/build"; rc=$?
check "image.sh build: exit 0" 0 "$rc"
if [ "$rc" -ne 0 ]; then
  cat "$tmp/build"
  finish container_image
  exit 1
fi
cat "$tmp/build"
echo "container_image: built in $((SECONDS - start)) s"

run() { # NAME-SUFFIX PODMAN-RUN-OPTIONS... -- SESSIOND-ARGS...: podman run --rm,
  local n=$1 # without a network (the embedded broker is on loopback)
  shift
  "$image_sh" run --name "$name-$n" --network none "$@"
}

# How the image is set up (podman's view of its config).
config=$(podman image inspect --format \
  '{{.Config.User}}|{{.Config.WorkingDir}}|{{json .Config.Entrypoint}}|{{json .Config.Cmd}}|{{range $p, $_ := .Config.ExposedPorts}}{{$p}} {{end}}|{{range $v, $_ := .Config.Volumes}}{{$v}} {{end}}' \
  "$image")
check "image config: user, workdir, entrypoint, cmd, port, volume" \
  'sessiond|/var/lib/sessiond|["sessiond"]|["run"]|8080/tcp |/var/lib/sessiond ' "$config"

check "--version: the build's" "$want" "$(run version -- --version 2>&1)"

run demo -- demo --tasks 1500 --seed 7 >"$tmp/out" 2>"$tmp/err"; rc=$?
check "demo: exit 0" 0 "$rc"
check "demo: matches the reference model" 1 "$(grep -c '^verdict: the store matches the reference model' "$tmp/out")"
check "demo: summary lines" 6 "$(grep -cE '^  (events in|dead-lettered|sessions created|sessions removed|sessions expired|changes out) ' "$tmp/out")"
check "demo: some sessions expired the day after" 1 "$(awk '/sessions expired/ {print ($3 > 0)}' "$tmp/out")"
check "demo: nothing on stderr" "" "$(cat "$tmp/err")"
[ "$rc" -eq 0 ] || { echo "--- demo's output:"; cat "$tmp/out" "$tmp/err"; }

# The state directory as a volume: a SQLite store the sessiond user writes.
run volume -v "$volume:/var/lib/sessiond" -- demo --tasks 300 \
  --store sqlite:/var/lib/sessiond/sessions.db >"$tmp/out" 2>&1; rc=$?
check "demo into a volume at /var/lib/sessiond: exit 0" 0 "$rc"
[ "$rc" -eq 0 ] || cat "$tmp/out"
check "the store is in the volume, the sessiond user's" "sessiond sessiond" \
  "$(run volume-ls -v "$volume:/var/lib/sessiond" --entrypoint stat -- -c '%U %G' /var/lib/sessiond/sessions.db 2>&1)"

check "runs as sessiond, not root" "sessiond not root" \
  "$(run whoami --entrypoint sh -- -c 'echo "$(id -un) $([ "$(id -u)" -ne 0 ] && echo not) root"' 2>&1)"
check "no build tools" "" \
  "$(run tools --entrypoint sh -- -c 'for t in cc gcc make cmake pkg-config; do command -v $t; done; ls /usr/include 2>/dev/null' 2>&1)"
check "installed: schemas, examples, licence" "ok" \
  "$(run files --entrypoint sh -- -c 'test -s /usr/share/sessiond/schemas/task-event.v1.json &&
      test -s /usr/share/sessiond/schemas/session-change.v1.json &&
      test -d /usr/share/sessiond/schemas/examples/valid && test -s /usr/share/doc/sessiond/LICENSE && echo ok' 2>&1)"
check "the installed examples validate" 0 \
  "$(run validate --entrypoint sh -- -c 'sessiond validate /usr/share/sessiond/schemas/examples/valid/*.json' >/dev/null 2>&1; echo $?)"

# `sessiond run` as a service: settings from env twins, its store in the
# volume (the demo's sessions), HTTP on the published port 8080; SIGTERM
# (podman stop) stops it cleanly.
"$image_sh" run --name "$name-service" --rm=false -d -p 127.0.0.1::8080 \
  -e SESSIOND_BROKERS=embedded -e SESSIOND_STORE=sqlite:/var/lib/sessiond/sessions.db \
  -v "$volume:/var/lib/sessiond" -- >/dev/null 2>"$tmp/err"; rc=$?
check "run -d: started" 0 "$rc"
[ "$rc" -eq 0 ] || cat "$tmp/err"
addr=$(podman port "$name-service" 8080 2>/dev/null)
ready=
[ "$rc" -eq 0 ] && [ -n "$addr" ] && for _ in $(seq 1 60); do
  ready=$(curl -s -o /dev/null -w '%{http_code}' "http://$addr/readyz")
  [ "$ready" = 200 ] && break
  sleep 1
done
check "run: /readyz on the published port" 200 "$ready"
check "run: /metrics names the version" "sessiond_build_info{version=\"${want#sessiond }\"} 1" \
  "$(curl -s "http://$addr/metrics" | grep '^sessiond_build_info')"
podman stop -t 30 "$name-service" >/dev/null 2>&1
check "run: SIGTERM, exit 0" 0 "$(podman wait "$name-service" 2>&1)"
[ "$ready" = 200 ] || podman logs "$name-service" 2>&1 | tail -n 20
podman rm -f "$name-service" >/dev/null 2>&1

check "no container left behind" "" "$(podman ps -a --format '{{.Names}}' | grep "^$name")"
finish container_image
