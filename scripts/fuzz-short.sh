#!/usr/bin/env bash
# Runs every Go fuzz target in the module for a short time each
# (FUZZTIME, default 20s). Seeds already run as part of `go test ./...`;
# this explores beyond them. Usage: scripts/fuzz-short.sh [FUZZTIME]
# FUZZ_GOFLAGS adds flags to each fuzzing go test (CI: -json).
set -euo pipefail
cd "$(dirname "$0")/.."
fuzztime="${1:-${FUZZTIME:-20s}}"
found=0
for pkg in $(go list ./...); do
  for target in $(go test -list '^Fuzz' "$pkg" | grep '^Fuzz' || true); do
    found=1
    echo "fuzz $pkg $target ($fuzztime)"
    go test ${FUZZ_GOFLAGS:-} -run '^$' -fuzz "^${target}\$" -fuzztime "$fuzztime" "$pkg"
  done
done
[ "$found" = 1 ] || echo "no fuzz targets"
