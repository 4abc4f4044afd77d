#!/usr/bin/env sh
# Debian packages the tests need (none of them is downloaded at test run time).
# Installed only when missing, and only where apt-get can be used.
set -eu
# With arguments, those packages only (the Makefile asks for python3-venv before the venv).
packages="$*"
[ -n "$packages" ] || packages="$(grep -v '^#' "$(dirname "$0")/test-packages.txt")"
missing=""
for pkg in $packages; do
    dpkg -s "$pkg" >/dev/null 2>&1 || missing="$missing $pkg"
done
[ -z "$missing" ] && exit 0
if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null; then
    echo "installing Debian packages:$missing"
    apt-get update -qq >/dev/null
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $missing >/dev/null
elif command -v sudo >/dev/null; then
    sudo apt-get update -qq >/dev/null
    sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $missing >/dev/null
else
    echo "please install these Debian packages:$missing" >&2
    exit 1
fi
