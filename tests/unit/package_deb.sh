#!/usr/bin/env bash
# The Debian package as an operator meets it: `cpack -G DEB` from the build
# tree, `dpkg -i`, the installed daemon run as the sessiond user, the unit
# checked and left alone, an edited environment file kept by a reinstall,
# and `dpkg --purge` taking away what it should and nothing else.
# usage: package_deb.sh BUILD_DIR
# Needs root (dpkg); it refuses to run where a sessiond package is already
# installed rather than replace it.
set -uo pipefail
build=$1
source "$(dirname "$0")/../support/check.sh"
die() { echo "package_deb: $*" >&2; exit 1; }

[ "$(id -u)" -eq 0 ] || die "dpkg -i needs root: run it as root (CI does)"
if dpkg-query -W -f='${Status}' sessiond 2>/dev/null | grep -q 'ok installed'; then
  die "a sessiond package is installed on this machine; this test would replace and purge it"
fi
[ -e /var/lib/sessiond ] && die "/var/lib/sessiond exists (another sessiond's state?); this test would remove it"
out=$(mktemp -d)
cleanup() {
  dpkg-query -W sessiond >/dev/null 2>&1 && dpkg --purge sessiond >/dev/null 2>&1
  rm -rf "$out" /var/lib/sessiond
}
trap cleanup EXIT

cpack --config "$build/CPackConfig.cmake" -G DEB -B "$out" >"$out/cpack.log" 2>&1 ||
  { cat "$out/cpack.log"; die "cpack -G DEB failed (log above)"; }
deb=$(ls "$out"/sessiond_*.deb 2>/dev/null | head -1)
[ -n "$deb" ] || die "cpack made no sessiond_*.deb in $out"
echo "built $(basename "$deb")"

depends=$(dpkg-deb -f "$deb" Depends)
for lib in librdkafka1 libmongoc-1.0-0 libjansson4 libsqlite3-0 libmicrohttpd12 libssl3 adduser; do
  check "Depends names $lib (dpkg-shlibdeps)" 1 "$(grep -c "\b$lib\b" <<<"$depends")"
done

dpkg -i "$deb" >"$out/dpkg.log" 2>&1; rc=$?
check "dpkg -i: exit 0" 0 "$rc"
[ $rc -eq 0 ] || cat "$out/dpkg.log"
version=$(dpkg-deb -f "$deb" Version)
check "installed sessiond --version" "sessiond ${version%-*}" "$(/usr/bin/sessiond --version)"
check "the sessiond system user exists" 1 "$(getent passwd sessiond | grep -c '^sessiond:')"
check "/var/lib/sessiond is the user's, 0750" "sessiond:sessiond 750" \
  "$(stat -c '%U:%G %a' /var/lib/sessiond)"
check "/etc/sessiond/sessiond.env holds secrets: root:sessiond 0640" "root:sessiond 640" \
  "$(stat -c '%U:%G %a' /etc/sessiond/sessiond.env)"
check "the man page is found" /usr/share/man/man1/sessiond.1 "$(man -w sessiond 2>&1)"

unit=/usr/lib/systemd/system/sessiond.service
said=$(systemd-analyze verify "$unit" 2>&1); rc=$?
check "systemd-analyze verify of the installed unit" "0:" "$rc:$said"
check "the unit is not enabled" "" "$(ls /etc/systemd/system/*.wants/sessiond.service 2>/dev/null)"

demo=$(cd /var/lib/sessiond && runuser -u sessiond -- /usr/bin/sessiond demo --tasks 2000 2>&1); rc=$?
check "sessiond demo as the sessiond user: exit 0" 0 "$rc"
check "the demo's verdict" 1 "$(grep -c 'verdict: the store matches the reference model' <<<"$demo")"
[ $rc -eq 0 ] || echo "$demo" | tail -20

# An operator's settings survive a reinstall (the file is made once).
echo "SESSIOND_BROKERS=kafka-1.example:9093" >>/etc/sessiond/sessiond.env
dpkg -i "$deb" >"$out/dpkg2.log" 2>&1
check "a reinstall keeps the edited environment file" 1 \
  "$(grep -c '^SESSIOND_BROKERS=kafka-1.example:9093$' /etc/sessiond/sessiond.env)"

touch /var/lib/sessiond/sessions.db
dpkg --purge sessiond >"$out/purge.log" 2>&1; rc=$?
check "dpkg --purge: exit 0" 0 "$rc"
check "purged: the binary" "" "$(ls /usr/bin/sessiond 2>/dev/null)"
check "purged: /etc/sessiond (its secrets)" "" "$(ls -d /etc/sessiond 2>/dev/null)"
check "kept: /var/lib/sessiond, which may hold the store" 1 \
  "$([ -e /var/lib/sessiond/sessions.db ] && echo 1)"
finish package_deb
