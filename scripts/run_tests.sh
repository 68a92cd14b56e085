#!/usr/bin/env bash
# Set up .venv (if needed) and run the default test suite (CPU; includes the e2e verl trainer tests).
# Extra arguments go to pytest, e.g. `bash scripts/run_tests.sh -m "not e2e"`.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bash "$ROOT/scripts/setup_venv.sh"
source "$ROOT/scripts/cpu_env.sh"
cd "$ROOT"
exec "$ROOT/.venv/bin/python" -m pytest -q "$@"
