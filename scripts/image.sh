#!/usr/bin/env bash
# The container image of compose/Dockerfile, built with podman on this
# machine with no container registry: its Debian 12 base is made here with
# debootstrap from the apt mirror the machine uses.
#
#   scripts/image.sh base      the bases: debootstrap --variant=minbase
#                              bookworm into a tarball, and one made slim as
#                              Debian's -slim (once; cached in .cache/image/),
#                              imported into podman as localhost/debian:bookworm
#                              and localhost/debian:bookworm-slim
#   scripts/image.sh build     the bases, then compose/Dockerfile (context:
#                              the repository) built FROM them (BASE and
#                              RUNTIME_BASE), tagged localhost/sessiond:local
#                              (its build stage: localhost/sessiond:local-build,
#                              kept as the next build's cache)
#   scripts/image.sh run [PODMAN-RUN-OPTION...] [-- SESSIOND-ARG...]
#                              runs that image (--rm) with the options this
#                              machine needs (below), e.g.
#                              scripts/image.sh run -- demo --tasks 2000
#   scripts/image.sh test [SESSIOND]
#                              build, then check the image runs:
#                              tests/unit/container_image.sh, against the
#                              version SESSIOND (a built binary) prints, else
#                              CMakeLists.txt's
#   scripts/image.sh clean     removes these images, the build's layers and
#                              .cache/image
#
# Needs root (debootstrap; podman as root), podman and debootstrap, and the
# apt mirror (the build's apt-get reaches it from inside the build).
#
# The mirror is the host's own apt source for bookworm (and for
# bookworm-security, when it has one), read from /etc/apt/sources.list and
# /etc/apt/sources.list.d; SESSIOND_IMAGE_MIRROR and
# SESSIOND_IMAGE_SECURITY_MIRROR ("none": without) override them.  The base
# lists the same sources (bookworm, bookworm-updates, bookworm-security: as
# Debian's debian:bookworm), so the Dockerfile's apt-get install reaches
# the same mirror as the host.  A new mirror makes a new base.
#
# Two things of some machines (this one's among them) that podman's
# defaults trip over, and what is done instead, for builds and runs alike:
#   - hybrid cgroups (v1, with a cgroup2 at /sys/fs/cgroup/unified that has
#     a controller): crun refuses to start any container ("cgroups in
#     hybrid mode not supported, drop all controllers from cgroupv2"), runc
#     does not: --runtime runc (Debian's runc package);
#   - no CAP_SYS_RESOURCE (a hard RLIMIT_NOFILE podman cannot raise to its
#     default 1048576): the runtime's setrlimit fails with EPERM ("setrlimit
#     `RLIMIT_NOFILE`: Operation not permitted"): --ulimit nofile= and nproc=
#     at the limits podman itself runs with.
# SESSIOND_IMAGE_RUNTIME (crun, runc…) overrides the runtime chosen;
# SESSIOND_IMAGE_NETWORK (e.g. host) is the build's network (default:
# podman's).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD

suite=bookworm
variant=minbase
cache=$root/.cache/image
base=localhost/debian:$suite
base_slim=localhost/debian:$suite-slim
image=${SESSIOND_IMAGE_TAG:-localhost/sessiond:local}
label=org.sessiond.base.sha256

die() {
  echo "image.sh: $*" >&2
  exit 1
}
say() { echo "== image: $*" >&2; }

usage() {
  sed -n '2,/^set -euo/p' "$0" | sed '$d' | sed 's/^# \{0,1\}//' >&2
  exit 2
}

need() { # TOOL PACKAGE
  command -v "$1" >/dev/null 2>&1 ||
    die "$1 is missing: install Debian's $2 (apt-get install $2)"
}

# The URI of the host's apt source (deb, enabled) for SUITE, if it has one:
# one-line sources.list files and deb822 .sources files alike.
host_source() { # SUITE
  local suite=$1 f
  {
    for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
      [ -f "$f" ] || continue
      sed -e 's/#.*//' -e 's/\[[^]]*\]//' "$f" |
        awk -v s="$suite" '$1 == "deb" && $3 == s { print $2 }'
    done
    for f in /etc/apt/sources.list.d/*.sources; do
      [ -f "$f" ] || continue
      awk -v s="$suite" '
        function flush(   n, i, a, u) {
          if (types ~ /(^| )deb( |$)/ && tolower(enabled) != "no") {
            n = split(suites, a, " ")
            for (i = 1; i <= n; i++)
              if (a[i] == s) { split(uris, u, " "); print u[1]; break }
          }
          types = uris = suites = ""; enabled = "yes"
        }
        BEGIN { enabled = "yes" }
        /^[ \t]*#/ { next }
        /^[ \t]*$/ { flush(); next }
        /^[A-Za-z-]+:/ {
          key = tolower(substr($0, 1, index($0, ":") - 1))
          val = substr($0, index($0, ":") + 1); gsub(/^[ \t]+|[ \t]+$/, "", val)
          if (key == "types") types = val
          else if (key == "uris") uris = val
          else if (key == "suites") suites = val
          else if (key == "enabled") enabled = val
        }
        END { flush() }' "$f"
    done
  } | head -n1
}

mirror() {
  local m=${SESSIOND_IMAGE_MIRROR:-$(host_source "$suite")}
  [ -n "$m" ] || die "no apt source for $suite in /etc/apt/sources.list{,.d}: set SESSIOND_IMAGE_MIRROR (e.g. http://deb.debian.org/debian)"
  echo "${m%/}"
}

security_mirror() {
  local m=${SESSIOND_IMAGE_SECURITY_MIRROR:-$(host_source "$suite-security")}
  [ "$m" = none ] && m=
  echo "${m%/}"
}

# The options podman needs on this machine: global ones (before the
# subcommand) in podman_global, those of build and run in podman_limits.
podman_global=()
podman_limits=()
engine_options() {
  local runtime=${SESSIOND_IMAGE_RUNTIME:-}
  if [ -z "$runtime" ] && [ "$(stat -fc %T /sys/fs/cgroup 2>/dev/null)" = tmpfs ] &&
     [ "$(stat -fc %T /sys/fs/cgroup/unified 2>/dev/null)" = cgroup2fs ] &&
     [ -n "$(cat /sys/fs/cgroup/unified/cgroup.controllers 2>/dev/null)" ]; then
    runtime=runc
    command -v runc >/dev/null 2>&1 ||
      die "this machine's cgroups are hybrid with a cgroup2 controller ($(cat /sys/fs/cgroup/unified/cgroup.controllers)): crun refuses to start containers there (\"cgroups in hybrid mode not supported\"); install Debian's runc (apt-get install runc), which podman then uses"
  fi
  [ -z "$runtime" ] || podman_global=(--runtime "$runtime")
  # podman raises its own RLIMIT_NOFILE to 1048576 and sets RLIMIT_NPROC to
  # 32768, and asks the runtime for the same in the container: without
  # CAP_SYS_RESOURCE the first cannot be raised, and only the limits it
  # runs with can be asked for.
  if ! (ulimit -Hn 1048576) 2>/dev/null; then
    local nofile nproc
    nofile=$(ulimit -Hn)
    nproc=$(ulimit -Hu)
    if [ "$nproc" = unlimited ] || [ "$nproc" -gt 32768 ]; then nproc=32768; fi
    podman_limits=(--ulimit "nofile=$nofile:$nofile" --ulimit "nproc=$nproc:$nproc")
  fi
}

podman_() { podman "${podman_global[@]}" "$@"; }

preflight() {
  [ "$(id -u)" -eq 0 ] || die "run it as root (debootstrap, and podman as root; rootless podman is not set up here)"
  need podman podman
  podman info >/dev/null 2>&1 || die "podman does not work here: $(podman info 2>&1 | tail -n 3)"
  engine_options
}

# The base tarballs, made once per mirror (.cache/image/*.meta says which):
# debian-bookworm.tar, the minbase system, and debian-bookworm-slim.tar,
# the same made slim as Debian's debian:bookworm-slim (no documentation but
# the copyright files, no man pages, no translations; dpkg told to install
# none later).
make_base_tarballs() {
  local m s meta want rootfs include=()
  m=$(mirror)
  s=$(security_mirror)
  meta=$cache/debian-$suite.meta
  want="suite=$suite variant=$variant mirror=$m security=${s:-none}"
  if [ -s "$cache/debian-$suite.tar.sha256" ] && [ -s "$cache/debian-$suite-slim.tar.sha256" ] &&
     [ "$(cat "$meta" 2>/dev/null)" = "$want" ]; then
    say "base: cached in $cache ($want)"
    return
  fi
  need debootstrap debootstrap
  rootfs=$cache/rootfs
  rm -rf "$rootfs" "$meta" "$cache"/debian-"$suite"*.tar*
  case $m in https:*) include=(--include=ca-certificates) ;; esac
  say "base: debootstrap --variant=$variant $suite from $m (about half a minute)"
  if ! debootstrap --variant="$variant" "${include[@]}" "$suite" "$rootfs" "$m" \
       >"$cache/debootstrap.log" 2>&1; then
    tail -n 20 "$cache/debootstrap.log" >&2
    die "debootstrap failed (whole log: $cache/debootstrap.log; its own: $rootfs/debootstrap/debootstrap.log)"
  fi
  # The same sources as the host, in Debian's debian:bookworm layout.
  rm -f "$rootfs/etc/apt/sources.list"
  {
    printf 'Types: deb\nURIs: %s\nSuites: %s %s-updates\nComponents: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n' \
      "$m" "$suite" "$suite"
    [ -z "$s" ] ||
      printf '\nTypes: deb\nURIs: %s\nSuites: %s-security\nComponents: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n' \
        "$s" "$suite"
  } >"$rootfs/etc/apt/sources.list.d/debian.sources"
  # What an image has no use for, or the engine provides (hostname, DNS).
  rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/cache/apt/*.bin \
         "$rootfs"/var/lib/apt/lists/* "$rootfs"/var/log/* "$rootfs/debootstrap"
  rm -f "$rootfs/etc/hostname" "$rootfs/etc/resolv.conf"
  pack "$rootfs" "$cache/debian-$suite.tar"
  cat >"$rootfs/etc/dpkg/dpkg.cfg.d/slim" <<'EOF_SLIM'
# As Debian's -slim images: no documentation but the copyright files, no
# man pages, no translations (scripts/image.sh).
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/man/*
path-exclude /usr/share/groff/*
path-exclude /usr/share/info/*
path-exclude /usr/share/lintian/*
path-exclude /usr/share/linda/*
path-exclude /usr/share/locale/*
EOF_SLIM
  find "$rootfs/usr/share/doc" -xdev ! -type d ! -name copyright -delete
  find "$rootfs/usr/share/doc" -xdev -mindepth 1 -type d -empty -delete
  rm -rf "$rootfs"/usr/share/{man,groff,info,lintian,linda,locale}/*
  pack "$rootfs" "$cache/debian-$suite-slim.tar"
  rm -rf "$rootfs"
  echo "$want" >"$meta"
}

pack() { # ROOTFS TARBALL: the tarball and its sha256 beside it
  tar --numeric-owner --xattrs -C "$1" -cf "$2.tmp" .
  sha256sum "$2.tmp" | cut -d' ' -f1 >"$2.sha256"
  mv "$2.tmp" "$2"
  say "base: $2 ($(du -h "$2" | cut -f1))"
}

# A tarball in podman, imported again only when it changed (a new import is
# a new image id, which would void the build's layer cache).
import_base() { # TARBALL TAG
  local sha have old
  sha=$(cat "$1.sha256")
  have=$(podman image inspect --format "{{index .Labels \"$label\"}}" "$2" 2>/dev/null || true)
  old=$(podman image inspect --format '{{.Id}}' "$2" 2>/dev/null || true)
  if [ "$have" = "$sha" ]; then
    say "base: $2 is the cached $(basename "$1")"
    return
  fi
  say "base: podman import $1 as $2"
  podman import --quiet \
    --change "LABEL $label=$sha" \
    --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --change 'CMD ["bash"]' \
    "$1" "$2" >/dev/null || die "podman import of $1 failed"
  # The one imported before, now untagged, goes (unless an image uses it).
  [ -z "$old" ] || podman rmi "$old" >/dev/null 2>&1 || true
}

cmd_base() {
  preflight
  # one at a time: a second waits, then finds the first's base
  mkdir -p "$cache"
  exec 9>"$cache/lock"
  flock 9
  make_base_tarballs
  import_base "$cache/debian-$suite.tar" "$base"
  import_base "$cache/debian-$suite-slim.tar" "$base_slim"
}

cmd_build() {
  cmd_base
  local network=()
  [ -z "${SESSIOND_IMAGE_NETWORK:-}" ] || network=(--network "$SESSIOND_IMAGE_NETWORK")
  say "build: compose/Dockerfile FROM $base and $base_slim as $image"
  local start=$SECONDS target
  : >"$cache/build.log"
  # The build stage tagged too ($image-build), so that its layers are the
  # next build's cache and those of earlier builds can be pruned.
  for target in build ''; do
    if ! podman_ build --pull=never --layers "${podman_limits[@]}" "${network[@]}" \
         --build-arg "BASE=$base" --build-arg "RUNTIME_BASE=$base_slim" \
         ${target:+--target "$target"} -t "$image${target:+-$target}" \
         -f compose/Dockerfile . >>"$cache/build.log" 2>&1; then
      tail -n 30 "$cache/build.log" >&2
      die "podman build failed (whole log: $cache/build.log)"
    fi
  done
  # what earlier builds left that no tag uses now (every layer built on
  # the bases carries their label)
  podman image prune --force --filter "label=$label" >/dev/null 2>&1 || true
  say "build: $image in $((SECONDS - start)) s ($(podman image inspect --format '{{.Size}}' "$image" |
        awk '{ printf "%.0f MB", $1 / 1e6 }'); log: $cache/build.log)"
}

cmd_run() {
  preflight
  local opts=() args=()
  while [ $# -gt 0 ] && [ "$1" != -- ]; do opts+=("$1"); shift; done
  [ $# -eq 0 ] || { shift; args=("$@"); }
  podman image exists "$image" || die "no image $image: scripts/image.sh build first"
  exec podman "${podman_global[@]}" run --rm "${podman_limits[@]}" "${opts[@]}" "$image" "${args[@]}"
}

cmd_clean() {
  podman rmi --force "$image" "$image-build" "$base" "$base_slim" >/dev/null 2>&1 || true
  # the build's layers that nothing tagged uses now (they carry the label
  # of the base they were built on)
  podman image prune --force --filter "label=$label" >/dev/null 2>&1 || true
  rm -rf "$cache"
  say "clean: $image, $base, $base_slim and $cache removed"
}

case ${1:-} in
  base) cmd_base ;;
  build) cmd_build ;;
  run) shift; cmd_run "$@" ;;
  test) shift; exec tests/unit/container_image.sh "$@" ;;
  clean) cmd_clean ;;
  *) usage ;;
esac
