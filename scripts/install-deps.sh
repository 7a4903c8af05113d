#!/usr/bin/env bash
# Installs the Debian 12 packages Cloister needs, from the lists in scripts/deps/<set>.txt
# (one package per line, '#' comments). Idempotent, and silent when everything is installed.
#
# usage: scripts/install-deps.sh SET...     e.g. build, fuzz, bench
set -euo pipefail
deps_dir="$(cd "$(dirname "$0")" && pwd)/deps"

want=()
for set in "${@:-build}"; do
  list="$deps_dir/$set.txt"
  if [[ ! -f "$list" ]]; then
    echo "install-deps: unknown package set '$set' (have: $(cd "$deps_dir" && ls | sed 's/\.txt$//' | tr '\n' ' '))" >&2
    exit 2
  fi
  while read -r pkg; do want+=("$pkg"); done < <(sed -e 's/#.*//' -e '/^[[:space:]]*$/d' "$list")
done

missing=()
for pkg in "${want[@]}"; do
  status=$(dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null || true)
  [[ "$status" == "install ok installed" ]] || missing+=("$pkg")
done
[[ ${#missing[@]} -eq 0 ]] && exit 0
mapfile -t missing < <(printf '%s\n' "${missing[@]}" | awk '!seen[$0]++')

SUDO=
if [[ $(id -u) -ne 0 ]]; then
  if command -v sudo >/dev/null 2>&1; then
    SUDO=sudo
  else
    echo "install-deps: missing packages: ${missing[*]}; as root run: apt-get install -y ${missing[*]}" >&2
    exit 1
  fi
fi

echo "install-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null \
  2> >(grep -v '^debconf: delaying package configuration' >&2)
