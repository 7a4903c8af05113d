#!/usr/bin/env bash
# Puts a real Debian kernel (vmlinuz-*) into DIR for the bzImage header test: the versioned
# package behind linux-image-cloud-amd64 is fetched with `apt-get download` and only its
# /boot/vmlinuz-* is unpacked; nothing is installed. Offline or without apt it does nothing and
# the test skips with a message.
# usage: fetch-debian-kernel.sh DIR
set -uo pipefail
dir=$1
mkdir -p "$dir"
if compgen -G "$dir/vmlinuz-*" >/dev/null; then exit 0; fi
if ! command -v apt-get >/dev/null || ! command -v dpkg-deb >/dev/null; then
  echo "fetch-debian-kernel: no apt-get/dpkg-deb; the Debian kernel test will skip"
  exit 0
fi
pkg=$(apt-cache depends linux-image-cloud-amd64 2>/dev/null | awk '/Depends: linux-image-[0-9]/ {print $2; exit}')
if [[ -z "$pkg" ]]; then
  echo "fetch-debian-kernel: apt knows no linux-image-cloud-amd64 (apt-get update?); the test will skip"
  exit 0
fi
cd "$dir" || exit 0
if ! timeout 240 apt-get download -q "$pkg" >/dev/null 2>&1; then
  echo "fetch-debian-kernel: could not download $pkg; the Debian kernel test will skip"
  exit 0
fi
deb=$(compgen -G "${pkg}_*.deb" | head -n1)
dpkg-deb --fsys-tarfile "$deb" | tar -x --wildcards './boot/vmlinuz-*'
mv boot/vmlinuz-* . && rm -rf boot "$deb"
ls vmlinuz-*
