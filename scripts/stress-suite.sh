#!/usr/bin/env bash
# Runs the test suite several times in a row with CPU-burning processes beside it, as on a shared, noisy
# CI machine, and stops at the first run that is not green. Builds once first (the tests run from dist).
#
#   scripts/stress-suite.sh [substring ...]     (substrings select test files, as with run-tests.mjs)
#
# RUNS (default 3) runs, each beside BURNERS (default 2) busy processes: `node -e 'for(;;){}'`, or
# stress-ng's CPU stressors with BURNER=stress-ng (installed from Debian when missing and run as root).
# Each run's full output goes to .test-tmp/stress/run-N.log; the summary prints each closing line and
# how long the run took.
set -euo pipefail

runs="${RUNS:-3}"
burners="${BURNERS:-2}"
burner="${BURNER:-node}"
cd "$(dirname "$0")/.."
logs=.test-tmp/stress
mkdir -p "$logs"

echo "building once: npx tsc -b"
npx tsc -b

pids=()
stop_burners() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
}
trap stop_burners EXIT

case "$burner" in
  node)
    for _ in $(seq "$burners"); do
      node -e 'for (;;) {}' &
      pids+=("$!")
    done
    ;;
  stress-ng)
    if ! command -v stress-ng >/dev/null; then
      if [ "$(id -u)" -ne 0 ]; then
        echo "stress-ng is not installed; install it (apt-get install -y stress-ng) or use BURNER=node" >&2
        exit 2
      fi
      apt-get update -qq && apt-get install -y -qq stress-ng >/dev/null
    fi
    stress-ng --cpu "$burners" --quiet &
    pids+=("$!")
    ;;
  *)
    echo "BURNER is node or stress-ng, not $burner" >&2
    exit 2
    ;;
esac
echo "$burners CPU burner(s) ($burner) beside the tests, on $(nproc) CPU(s); $runs run(s)"

for run in $(seq "$runs"); do
  log="$logs/run-$run.log"
  started=$(date +%s)
  status=0
  node scripts/run-tests.mjs "$@" >"$log" 2>&1 || status=$?
  took=$(($(date +%s) - started))
  echo "run $run: $(tail -n 1 "$log") in ${took} s (exit $status, log $log)"
  if [ "$status" -ne 0 ]; then
    grep -E '^# |✖' "$log" | tail -n 40 >&2 || true
    exit "$status"
  fi
done
echo "all $runs run(s) green beside $burners CPU burner(s)"
