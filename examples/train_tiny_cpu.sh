#!/usr/bin/env bash
# Copyright 2026 The videoseg-o3-verl authors. Licensed under the Apache License, Version 2.0.
# The demo's pipeline spelled out with the CLI verbs: synthetic data -> parquet -> tiny models -> VideoSEG-O3 RL.
# Usage: bash examples/train_tiny_cpu.sh [OUT_DIR] [extra hydra overrides...]   (run after scripts/setup_venv.sh)
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
OUT="${1:-outputs/tiny_cpu}"; shift || true
source "$ROOT/scripts/cpu_env.sh"
BIN="$ROOT/.venv/bin"

# 1. data: the synthetic RVOS set in the ReVOS layout, converted to verl parquet by the real converter
"$BIN/videoseg-o3" synthetic --root "$OUT/data" --num-videos 6 --splits train,valid --parquet-dir "$OUT"

# 2. models: tiny random Qwen2.5-VL + SAM2 (cached in ~/.cache/videoseg_o3)
MODEL=$("$BIN/videoseg-o3" build-tiny | awk '/^qwen_vl:/ {print $2}')
SAM2=$("$BIN/videoseg-o3" build-tiny | awk '/^sam2:/ {print $2}')

# 3. check the resolved config, then train (add e.g. videoseg_o3.calibration.enabled=false for the ablation)
ARGS=(--config-name tiny_cpu "actor_rollout_ref.model.path=$MODEL" "videoseg_o3.sam2.checkpoint=$SAM2"
      "data.train_files=$OUT/train.parquet" "data.val_files=$OUT/valid.parquet"
      "trainer.default_local_dir=$OUT/checkpoints" "$@")
"$BIN/videoseg-o3" train "${ARGS[@]}" --cfg job | grep -E "model_type|trainer_mode|checkpoint:" | head -5
"$BIN/videoseg-o3" train "${ARGS[@]}"
