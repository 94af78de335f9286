#!/usr/bin/env bash
# Runs the whole test suite (the README's test command) RUNS times in a row
# (default 5) beside LOAD CPU-bound processes (default 2: as many as this
# project's CI machines have cores), and stops at the first failing run.
# It is how the team checks that tests decide by events, not by how fast the
# machine is (issue 20). Extra arguments go to go test, e.g.
#   scripts/stress-suite.sh 5 -skip 'TestSomething'
# Set SIGNIN_TEST_DATABASE_URL and SIGNIN_REQUIRE_{POSTGRES,BROWSER,NODE}=1
# as .ci/run does, so that nothing skips.
set -euo pipefail
cd "$(dirname "$0")/.."
runs="${1:-5}"; shift || true
load="${LOAD:-2}"
hogs=()
cleanup() { for pid in "${hogs[@]}"; do kill "$pid" 2>/dev/null || true; done; }
trap cleanup EXIT
for _ in $(seq "$load"); do
  # A busy loop in the shell: a CPU-bound process with no dependency.
  ( while :; do :; done ) &
  hogs+=("$!")
done
for i in $(seq "$runs"); do
  start=$(date +%s)
  echo "== run $i of $runs (beside $load CPU-bound processes; load average $(cut -d' ' -f1 /proc/loadavg))"
  if ! go test -race -count=1 "$@" ./...; then
    echo "== run $i FAILED after $(( $(date +%s) - start )) s"
    exit 1
  fi
  echo "== run $i passed in $(( $(date +%s) - start )) s"
done
echo "== $runs runs passed"
