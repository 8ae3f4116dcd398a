#!/usr/bin/env bash
# Set everything up (idempotent; see tools/setup_env.sh) and run the test suite on CPU.
#   bash tools/run_tests.sh [pytest args]
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
bash tools/setup_env.sh
VENV="${MMFISHNET_VENV:-$ROOT/.venv}"
exec "$VENV/bin/python" -m pytest tests -q -p no:cacheprovider --durations=15 "$@"
