#!/usr/bin/env bash
# Runs the benchmarks: every bench/<name>/run.sh, or only those named.
# usage: scripts/bench.sh BUILD_DIR [NAME...]
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
build=$(cd "$1" && pwd)
shift
names=("$@")
if [[ ${#names[@]} -eq 0 ]]; then
  for d in "$root"/bench/*/; do [[ -x "$d/run.sh" ]] && names+=("$(basename "$d")"); done
fi
for name in "${names[@]}"; do
  script="$root/bench/$name/run.sh"
  if [[ ! -x "$script" ]]; then
    echo "bench: no benchmark '$name' (bench/$name/run.sh)" >&2
    exit 2
  fi
  echo "=== bench: $name ==="
  "$script" "$build"
done
