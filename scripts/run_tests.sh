#!/usr/bin/env bash
# Set up the venvs (if needed) and run the default test suite (CPU; includes the e2e verl trainer tests): the main
# suite in .venv (all but `-m long`, the learning demo's acceptance run), then the vLLM tier (`-m vllm`: verl's vLLM rollout
# on CPU) in .venv-vllm.
# Extra arguments go to pytest in .venv, e.g. `bash scripts/run_tests.sh -m "not e2e"`;
# `bash scripts/run_tests.sh --vllm [pytest args]` runs them in .venv-vllm instead (default `-m vllm`).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
source "$ROOT/scripts/cpu_env.sh"
cd "$ROOT"
if [ "${1:-}" = "--vllm" ]; then
  shift
  [ $# -gt 0 ] || set -- -m vllm
  bash "$ROOT/scripts/setup_vllm_venv.sh"
  exec "$ROOT/.venv-vllm/bin/python" -m pytest -q "$@"
fi
bash "$ROOT/scripts/setup_venv.sh"
if [ $# -gt 0 ]; then
  exec "$ROOT/.venv/bin/python" -m pytest -q "$@"
fi
status=0
"$ROOT/.venv/bin/python" -m pytest -q -m "not vllm and not long" || status=$?
bash "$ROOT/scripts/setup_vllm_venv.sh"
"$ROOT/.venv-vllm/bin/python" -m pytest -q -m vllm || status=$?
exit "$status"
