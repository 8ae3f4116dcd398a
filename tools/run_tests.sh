#!/usr/bin/env bash
# Set everything up (idempotent; see tools/setup_env.sh) and run the test suite on CPU.
#   bash tools/run_tests.sh [pytest args]
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
bash tools/setup_env.sh
VENV="${MMFISHNET_VENV:-$ROOT/.venv}"
PYTEST=("$VENV/bin/python" -m pytest tests -q -p no:cacheprovider --durations=15)
if [ $# -gt 0 ]; then  # a selection of your own: one process, as given
    exec "${PYTEST[@]}" "$@"
fi
# The whole suite in two parts (docs/development.md, "Tests"): first every test not marked serial on
# two processes (pytest-xdist; a test file at a time per process, so that a module's fixtures are made once),
# each with one thread (two processes of torch's default two threads would oversubscribe two cores); then
# the serial ones (tests/conftest.py: real timings) alone, with torch's default threads.
status=0
OMP_NUM_THREADS=1 "${PYTEST[@]}" -n 2 --dist loadfile -m 'not serial' || status=$?
"${PYTEST[@]}" -m serial || { code=$?; [ "$status" -ne 0 ] || status=$code; }
exit "$status"
