#!/usr/bin/env bash
# A fuzzing campaign over the libFuzzer build (make fuzz FUZZ_SECONDS=N calls it): each target
# runs for SECONDS from its seeds with a per-input timeout and an RSS limit (so hangs and memory
# blow-ups are findings), the inputs it generated that add coverage are merged back into the
# target's in-tree corpus (seeds from the shared vectors never are, nor generated inputs over
# $FUZZ_MERGE_MAX_KB KiB, default 64), and a table of executions per target is printed and written
# to BUILD/fuzz-report.md. A crash, timeout or OOM leaves its input in BUILD/fuzz-artifacts/ and
# makes the script exit 1. With $FUZZ_CPU set, every fuzzer runs pinned to that CPU at the lowest
# priority, so a campaign on a shared machine takes one core. With $FUZZ_RUNS set, a target also
# stops once it has executed that many inputs (SECONDS stays the cap); the table gives the
# seconds a target actually ran. FUZZ_DETECT_LEAKS=0 turns off libFuzzer's per-input leak
# check, which OpenSSL's lazily filled caches set off at almost every input until libFuzzer
# gives it up by itself (docs/threat-model.md); the corpus replay in the test suite
# (ctest -L fuzz) still checks every kept input for leaks.
# usage: scripts/fuzz-campaign.sh BUILD_DIR SECONDS [TARGET...]
set -euo pipefail
build=$(cd "$1" && pwd)
seconds=$2
shift 2
wanted=("$@")
root="$(cd "$(dirname "$0")/.." && pwd)"
manifest="$build/fuzz-targets.txt"
vectors=${CLOISTER_VECTORS:-$root/../shared/vectors}
timeout=${FUZZ_TIMEOUT:-10}
rss_mb=${FUZZ_RSS_MB:-2048}
merge_max_kb=${FUZZ_MERGE_MAX_KB:-64}
runs=${FUZZ_RUNS:--1}
detect_leaks=${FUZZ_DETECT_LEAKS:-1}
run=()
[[ -n "${FUZZ_CPU:-}" ]] && run=(nice -n 19 taskset -c "$FUZZ_CPU")
[[ -f "$manifest" ]] || { echo "fuzz-campaign: $manifest missing (configure with -DCLOISTER_FUZZ=ON)" >&2; exit 2; }
[[ "$seconds" =~ ^[0-9]+$ && "$seconds" -gt 0 ]] || { echo "fuzz-campaign: SECONDS must be a positive integer, found '$seconds'" >&2; exit 2; }
[[ "$runs" =~ ^(-1|[0-9]+)$ ]] || { echo "fuzz-campaign: FUZZ_RUNS must be a positive integer, found '$runs'" >&2; exit 2; }
[[ "$detect_leaks" =~ ^[01]$ ]] || { echo "fuzz-campaign: FUZZ_DETECT_LEAKS must be 0 or 1, found '$detect_leaks'" >&2; exit 2; }

mkdir -p "$build/fuzz-work" "$build/fuzz-artifacts"
report="$build/fuzz-report.md"
{
  echo "| target | seconds | executions | exec/s | peak RSS MiB | in-tree corpus | result |"
  echo "|---|---:|---:|---:|---:|---:|---|"
} >"$report"
failed=0
while read -r name binary specs; do
  [[ -n "$name" ]] || continue
  # (Not `printf | grep -q`: under pipefail, grep leaving early makes printf's SIGPIPE a no-match.)
  if [[ ${#wanted[@]} -gt 0 && " ${wanted[*]} " != *" $name "* ]]; then continue; fi
  work="$build/fuzz-work/$name"
  rm -rf "$work/seeds"
  mkdir -p "$work/new" "$work/seeds"
  intree=""
  for spec in $specs; do
    if [[ "$spec" == vectors:* ]]; then
      [[ -d "$vectors" ]] || continue
      spec="$vectors/${spec#vectors:}"
    fi
    for match in $spec; do
      if [[ -d "$match" ]]; then
        [[ -z "$intree" && "$match" == "$root"/* ]] && intree=$match
        find "$match" -type f -exec cp -n -t "$work/seeds" {} +
      elif [[ -f "$match" ]]; then
        cp -n "$match" "$work/seeds/"
      fi
    done
  done
  log="$build/fuzz-work/$name.log"
  status=0
  started=$(date +%s)
  # libFuzzer writes what it generates into the first corpus directory only.
  "${run[@]}" "$binary" "$work/new" "$work/seeds" -max_total_time="$seconds" -runs="$runs" \
    -timeout="$timeout" -rss_limit_mb="$rss_mb" -detect_leaks="$detect_leaks" -print_final_stats=1 \
    -artifact_prefix="$build/fuzz-artifacts/$name-" >"$log" 2>&1 || status=$?
  ran=$(( $(date +%s) - started ))
  (( ran > 0 )) || ran=1
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
  rss=$(sed -n 's/^stat::peak_rss_mb: *//p' "$log" | tail -1)
  result=clean
  if [[ $status -ne 0 ]]; then
    result="FINDING (exit $status, see $log)"
    failed=1
  fi
  size="-"
  if [[ -n "$intree" ]]; then
    find "$work/new" -type f -size +"${merge_max_kb}k" -delete
    "${run[@]}" "$binary" -merge=1 -timeout="$timeout" -rss_limit_mb="$rss_mb" "$intree" "$work/new" \
      >>"$log" 2>&1 || true
    size=$(find "$intree" -type f | wc -l)
  fi
  rate=$(( ${execs:-0} / ran ))
  printf '| %s | %d | %s | %s | %s | %s | %s |\n' "$name" "$ran" "${execs:-?}" "$rate" \
    "${rss:-?}" "$size" "$result" | tee -a "$report"
done <"$manifest"
echo "fuzz-campaign: table written to $report"
exit $failed
