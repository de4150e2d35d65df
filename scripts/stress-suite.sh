#!/usr/bin/env bash
# Run the test suite N times in a row while a CPU burner keeps every core busy: proof that no test
# depends on an idle machine (no sleeps used to wait, no tight wall-clock bounds).
#   bash scripts/stress-suite.sh [N] [pytest args...]     N defaults to 3; the rest goes to pytest
# Runs the pytest part of scripts/test.sh (set the machine up with scripts/test.sh first), stops at the
# first failing run, prints each run's result and time and the total. The burners (one busy process
# per core, at normal priority) are killed on exit, however the script ends.
set -euo pipefail
cd "$(dirname "$0")/.."
runs=3
if [[ $# -gt 0 && $1 =~ ^[0-9]+$ ]]; then
    runs=$1
    shift
fi
[ -x .venv/bin/python ] || { echo "no .venv here: run 'bash scripts/test.sh' once first" >&2; exit 2; }

burners=()
stop_burners() {
    for pid in "${burners[@]}"; do kill "$pid" 2>/dev/null || true; done
    wait "${burners[@]}" 2>/dev/null || true
}
trap stop_burners EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
cores=$(nproc)
for _ in $(seq "$cores"); do
    bash -c 'while :; do :; done' &
    burners+=("$!")
done
echo "stress-suite: $cores CPU burners running (pids ${burners[*]}); $runs runs of: pytest $*"

passed=0
total_start=$SECONDS
for run in $(seq "$runs"); do
    start=$SECONDS
    status=0
    .venv/bin/python -m pytest "$@" || status=$?
    if [[ $status -eq 0 ]]; then
        passed=$((passed + 1))
        echo "stress-suite: run $run/$runs passed in $((SECONDS - start)) s"
    else
        echo "stress-suite: run $run/$runs FAILED (pytest exit $status) after $((SECONDS - start)) s"
        break
    fi
done
echo "stress-suite: $passed/$runs runs passed under load, $((SECONDS - total_start)) s in all"
[[ $passed -eq $runs ]]
