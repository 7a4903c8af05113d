#!/usr/bin/env bash
# Installs the built tree into a temporary prefix, builds sdk/examples against the installed
# package (find_package(cloister)), and runs both examples on a real report.
set -euo pipefail
build=$1 source=$2 vectors=${CLOISTER_VECTORS:-$3}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cmake --install "$build" --prefix "$work/prefix" >/dev/null
test -f "$work/prefix/lib/cmake/cloister/cloisterConfig.cmake"
test -f "$work/prefix/include/cloister/cloister.h"
test -x "$work/prefix/bin/verify-report"
# A sanitized build installs sanitized static libraries: the examples must link the runtimes.
sanitize=()
if grep -q '^CLOISTER_SANITIZE:BOOL=ON' "$build/CMakeCache.txt"; then
  flags="-fsanitize=address,undefined"
  sanitize=(-DCMAKE_C_FLAGS="$flags" -DCMAKE_CXX_FLAGS="$flags" -DCMAKE_EXE_LINKER_FLAGS="$flags")
fi
cmake -S "$source/sdk/examples" -B "$work/example" -DCMAKE_PREFIX_PATH="$work/prefix" \
  "${sanitize[@]}" >/dev/null
cmake --build "$work/example" -j2 >/dev/null
if [[ ! -f "$vectors/snp/genoa_v5_vcek_report.oak.bin" ]]; then
  echo "shared vectors not found at $vectors: examples built but not run"
  exit 77
fi
export CLOISTER_AT=1761955200  # 2025-11-01, inside the certificates' validity
out=$("$work/example/verify_c" "$vectors/snp/genoa_v5_vcek_report.oak.bin" "$vectors/snp/genoa_vcek.oak.der")
grep -q '"verdict":"pass"' <<<"$out" || { echo "verify_c: $out"; exit 1; }
out=$("$work/example/verify_cpp" "$vectors/snp/genoa_v5_vcek_report.oak.bin" "$vectors/snp/genoa_vcek.oak.der")
grep -q '^verdict: PASS' <<<"$out" || { echo "verify_cpp: $out"; exit 1; }
# The debug report fails the default policy through the C ABI: exit status 1.
set +e
"$work/example/verify_c" "$vectors/snp/milan_v2_vcek_report.gosevguest.bin" "$vectors/snp/milan_vcek.gosevguest.der" >/dev/null
rc=$?
set -e
[[ $rc -eq 1 ]] || { echo "verify_c on the debug report: exit $rc, expected 1"; exit 1; }
echo "installed package: examples built and verified a Genoa report"
