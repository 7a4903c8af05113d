#!/usr/bin/env bash
# Runs a fuzz target over its seed corpus. A libFuzzer binary (make fuzz) gets a per-input
# timeout and an RSS limit, so a slow or memory-hungry input fails the test as a finding
# ($FUZZ_TIMEOUT seconds, default 10; $FUZZ_RSS_MB, default 2048); the replay driver of the
# other builds ignores those flags.
# usage: run-corpus.sh TARGET PATH...
#   PATH is a file or directory in the source tree, or vectors:RELATIVE (a file, directory or
#   glob inside the shared vectors), which is skipped with a note when the vectors are absent.
set -euo pipefail
target=$1
shift
vectors=${CLOISTER_VECTORS:-${CLOISTER_VECTORS_DEFAULT:-}}
inputs=()
for spec in "$@"; do
  if [[ "$spec" == vectors:* ]]; then
    rel=${spec#vectors:}
    if [[ -z "$vectors" || ! -d "$vectors" ]]; then
      echo "note: shared vectors not found; skipping seeds $rel" >&2
      continue
    fi
    spec="$vectors/$rel"
  fi
  shopt -s nullglob
  for match in $spec; do
    if [[ -d "$match" ]]; then
      while IFS= read -r -d '' f; do inputs+=("$f"); done < <(find "$match" -type f -print0 | sort -z)
    elif [[ -f "$match" ]]; then
      inputs+=("$match")
    fi
  done
  shopt -u nullglob
done
if [[ ${#inputs[@]} -eq 0 ]]; then
  echo "error: no seed inputs for $target" >&2
  exit 1
fi
echo "running $(basename "$target") over ${#inputs[@]} seed inputs"
exec "$target" -timeout="${FUZZ_TIMEOUT:-10}" -rss_limit_mb="${FUZZ_RSS_MB:-2048}" "${inputs[@]}"
