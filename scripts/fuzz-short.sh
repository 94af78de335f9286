#!/usr/bin/env bash
# Runs every Go fuzz target in the module for a short time each
# (FUZZTIME, default 20s). Seeds already run as part of `go test ./...`;
# this explores beyond them. Usage: scripts/fuzz-short.sh [FUZZTIME]
set -euo pipefail
cd "$(dirname "$0")/.."
fuzztime="${1:-${FUZZTIME:-20s}}"
found=0
for pkg in $(go list ./...); do
  for target in $(go test -list '^Fuzz' "$pkg" | grep '^Fuzz' || true); do
    found=1
    echo "fuzz $pkg $target ($fuzztime)"
    go test -run '^$' -fuzz "^${target}\$" -fuzztime "$fuzztime" "$pkg"
  done
done
[ "$found" = 1 ] || echo "no fuzz targets"
