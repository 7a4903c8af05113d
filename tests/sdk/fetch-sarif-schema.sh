#!/usr/bin/env bash
# Puts the SARIF 2.1.0 JSON schema (OASIS, as schemastore publishes it: sarif-2.1.0-rtm.5.json)
# into DIR and prints its path. The schema comes from the npm registry, inside the package
# @microsoft/jest-sarif@1.0.0-beta.0; the package and the schema are pinned by SHA-256.
# Exits 1 with a message when it cannot be fetched (offline), so the test can skip.
#
# usage: tests/sdk/fetch-sarif-schema.sh DIR
set -euo pipefail
dir=$1
schema=$dir/sarif-2.1.0-rtm.5.json
url=https://registry.npmjs.org/@microsoft/jest-sarif/-/jest-sarif-1.0.0-beta.0.tgz
package_sha256=748e2c3d1a842e7bb258416685c7ea3a0da40005b72267b2052c2856d48ad102
schema_sha256=2d99159ae54a3eea97f81781cff48780548657c35949f4b7f25e99a2ba4de4f8

if [[ -f $schema ]] && echo "$schema_sha256  $schema" | sha256sum -c --status; then
  echo "$schema"
  exit 0
fi
mkdir -p "$dir"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
if ! curl -fsSL --max-time 60 --max-filesize 1000000 -o "$tmp/package.tgz" "$url"; then
  echo "fetch-sarif-schema: cannot fetch $url" >&2
  exit 1
fi
if ! echo "$package_sha256  $tmp/package.tgz" | sha256sum -c --status; then
  echo "fetch-sarif-schema: $url: SHA-256 expected $package_sha256, found $(sha256sum <"$tmp/package.tgz" | cut -d' ' -f1)" >&2
  exit 1
fi
tar -xzf "$tmp/package.tgz" -C "$tmp" package/lib/schemas/sarif-2.1.0-rtm.5.json
if ! echo "$schema_sha256  $tmp/package/lib/schemas/sarif-2.1.0-rtm.5.json" | sha256sum -c --status; then
  echo "fetch-sarif-schema: the package's schema does not have SHA-256 $schema_sha256" >&2
  exit 1
fi
mv "$tmp/package/lib/schemas/sarif-2.1.0-rtm.5.json" "$schema"
echo "$schema"
