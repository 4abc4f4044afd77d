#!/usr/bin/env sh
# `make test` on a bare Debian 12, as a newcomer's machine would run it: debootstrap a
# minimal bookworm into a folder under /tmp (never in the repository), copy the committed
# tree into it, install only make and python3 by hand, and let the project's own Makefile
# and scripts install everything else (python3-venv, the venv with kubectl and schemathesis,
# chromium, prometheus, postgresql). The tests then run in a network namespace of their
# own, loopback only: no PostgreSQL answers on 127.0.0.1:5432 there, so make test must
# start its own, and nothing is fetched while the tests run.
#
# Usage (as root): scripts/check-bare-debian.sh [PYTEST ARGS...]
#   no arguments: the whole suite; e.g. `tests/deploy tests/integration/test_visit_flow.py`
#   for a subset. BB_CHROOT: the folder (default /tmp/bb-bare-debian, reused if present).
set -eu
root="${BB_CHROOT:-/tmp/bb-bare-debian}"
repo="$(cd "$(dirname "$0")/.." && pwd)"
case "$root" in "$repo"*) echo "the chroot must be outside the repository" >&2; exit 1 ;; esac
[ "$(id -u)" = "0" ] || { echo "debootstrap and chroot need root" >&2; exit 1; }
command -v debootstrap >/dev/null || apt-get install -y -qq debootstrap >/dev/null

fresh=""
if [ ! -x "$root/usr/bin/apt-get" ]; then
    debootstrap --variant=minbase bookworm "$root" http://deb.debian.org/debian
    fresh=yes
fi
# Package scripts start no daemons inside the chroot (the usual policy-rc.d for chroots).
printf '#!/bin/sh\nexit 101\n' >"$root/usr/sbin/policy-rc.d"
chmod 755 "$root/usr/sbin/policy-rc.d"
cp /etc/resolv.conf "$root/etc/resolv.conf"
# A network that inspects TLS has a CA of its own: the host's bundle, handed to pip and
# Python (BB_CHROOT_CA=none for a plain network).
ca="${BB_CHROOT_CA:-/etc/ssl/certs/ca-certificates.crt}"
tls=""
if [ "$ca" != none ] && [ -f "$ca" ]; then
    mkdir -p "$root/etc/ssl/host"
    cp "$ca" "$root/etc/ssl/host/ca.crt"
    tls="PIP_CERT=/etc/ssl/host/ca.crt SSL_CERT_FILE=/etc/ssl/host/ca.crt"
fi

mounted=""
mount_in() {  # type-or-bind source target
    mkdir -p "$root$3"
    if [ "$1" = bind ]; then mount --bind "$2" "$root$3"; else mount -t "$1" "$2" "$root$3"; fi
    mounted="$root$3 $mounted"
}
cleanup() { for m in $mounted; do umount -l "$m" 2>/dev/null || true; done; }
trap cleanup EXIT
trap 'exit 130' INT TERM
mount_in proc proc /proc
mount_in sysfs sys /sys
mount_in bind /dev /dev
mount_in devpts devpts /dev/pts
mount_in tmpfs tmpfs /dev/shm
mount_in tmpfs tmpfs /tmp

rm -rf "$root/src"
mkdir -p "$root/src"
git -C "$repo" archive HEAD | tar -x -C "$root/src"

in_chroot() {
    # shellcheck disable=SC2086
    chroot "$root" /usr/bin/env -i HOME=/root LANG=C.UTF-8 TERM=dumb $tls \
        PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin "$@"
}
# What a newcomer installs by hand (README): make and python3. The rest is the project's.
in_chroot sh -c 'apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq make python3 >/dev/null'
if [ -n "$fresh" ]; then
    for tool in kubectl promtool initdb psql chromium; do
        in_chroot sh -c "! command -v $tool >/dev/null" || { echo "$tool preinstalled" >&2; exit 1; }
    done
else
    echo "reusing $root: the packages of an earlier run are still installed"
fi
# With the network: the venv (python3-venv first) and the Debian packages of the tests.
in_chroot sh -c 'cd /src && make lint && ./scripts/install-test-packages.sh'
# Without it: make test, whose package step now finds nothing missing.
unshare --net sh -c "ip link set lo up && chroot '$root' /usr/bin/env -i HOME=/root \
    LANG=C.UTF-8 TERM=dumb $tls PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    sh -c 'cd /src && make test PYTEST_ARGS=\"$*\"'"
