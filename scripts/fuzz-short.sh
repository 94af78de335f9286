#!/usr/bin/env bash
# Runs every Go fuzz target in the module for a short while each
# (FUZZTIME, default 50000x: fifty thousand inputs, 5 to 20 s each on a
# quiet machine). Seeds already run as part of `go test ./...`; this
# explores beyond them. Usage: scripts/fuzz-short.sh [FUZZTIME]
#
# The default is a count, not a duration: with a duration, Go 1.26's fuzzing
# coordinator can report its own deadline as a failure ("context deadline
# exceeded", no failing input written) when a loaded machine keeps a worker
# busy as the time runs out (golang/go#75804, fixed in Go 1.27). A count has
# no deadline to race. A duration (20s) still works where that is no issue.
# FUZZ_GOFLAGS adds flags to each fuzzing go test (CI: -json).
set -euo pipefail
cd "$(dirname "$0")/.."
fuzztime="${1:-${FUZZTIME:-50000x}}"
found=0
for pkg in $(go list ./...); do
  for target in $(go test -list '^Fuzz' "$pkg" | grep '^Fuzz' || true); do
    found=1
    echo "fuzz $pkg $target ($fuzztime)"
    go test ${FUZZ_GOFLAGS:-} -run '^$' -fuzz "^${target}\$" -fuzztime "$fuzztime" "$pkg"
  done
done
[ "$found" = 1 ] || echo "no fuzz targets"
