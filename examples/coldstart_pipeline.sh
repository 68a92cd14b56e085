#!/usr/bin/env bash
# Copyright 2026 The videoseg-o3-verl authors. Licensed under the Apache License, Version 2.0.
# The whole VideoSEG-O3 path with the CLI verbs: data -> VTS-CoT -> cold-start SFT -> RL from the SFT checkpoint.
# CPU (tiny models, synthetic data; minutes):   bash examples/coldstart_pipeline.sh [OUT_DIR]
# GPU (Qwen3-VL-2B, real data):                  GPU=1 STAGE1=/ckpt/stage1-hf SAM2=/ckpt/sam2.pt \
#                                                DATA=/data bash examples/coldstart_pipeline.sh out/2b
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
OUT="${1:-outputs/coldstart}"
BIN="${BIN:-$ROOT/.venv/bin}"
mkdir -p "$OUT"

if [[ "${GPU:-0}" == "1" ]]; then
  # 1. RL data: the authors' RL JSON (ReVOS/MeViS) -> verl parquet; VTS-CoT: the released JSON -> SFT parquet
  "$BIN/videoseg-o3" data --dataset revos --root "$DATA/revos" --out "$OUT/revos_rl.parquet" --val-fraction 0.02
  "$BIN/videoseg-o3" data --dataset mevis --root "$DATA/mevis" --out "$OUT/mevis_rl.parquet"
  "$BIN/videoseg-o3" vts-cot --released "$DATA/VTG-CoT/revos.json" --mask-file "$DATA/revos/mask_dict.json" \
      --frames-dir "$DATA/revos" --dataset-name revos --model "$STAGE1" --out "$OUT/revos_sft.parquet"
  #    (or build trajectories from ground truth: videoseg-o3 vts-cot --data $OUT/revos_rl.parquet --model $STAGE1 ...)
  # 2. cold-start SFT on 8 GPUs (verl's SPMD SFT trainer); released data repeated 2x
  torchrun --nproc-per-node 8 -m videoseg_o3_verl.sft.trainer --config-name coldstart_qwen3vl_2b \
      "model.path=$STAGE1" "videoseg_o3.sam2.checkpoint=$SAM2" \
      "data.train_files=[$OUT/revos_sft.parquet,$OUT/revos_sft.parquet]" "trainer.default_local_dir=$OUT/sft"
  CKPT="$OUT/sft/global_step_$(cat "$OUT/sft/latest_checkpointed_iteration.txt")"
  # 3. RL from the cold start (see recipes/launch/README.md for several nodes)
  "$BIN/videoseg-o3" train --config-name qwen3vl_2b "actor_rollout_ref.model.path=$CKPT/hf_policy" \
      "videoseg_o3.seg_head.path=$CKPT/seg_head" "videoseg_o3.sam2.checkpoint=$SAM2" \
      "data.train_files=[$OUT/revos_rl.parquet,$OUT/mevis_rl.parquet]" "data.val_files=$OUT/revos_rl_val.parquet"
  exit 0
fi

source "$ROOT/scripts/cpu_env.sh"
# 1. data: synthetic RVOS videos -> RL parquet (train + held-out valid) -> VTS-CoT SFT parquet
"$BIN/videoseg-o3" synthetic --root "$OUT/data" --num-videos 24 --num-frames 16 --height 64 --width 80 \
    --splits train,valid --parquet-dir "$OUT"
"$BIN/videoseg-o3" vts-cot --data "$OUT/train.parquet" --out "$OUT/sft.parquet" --seed 0
# 2. tiny models and a short cold-start SFT (CE + [SEG] mask loss) through verl's SFT trainer
MODEL=$("$BIN/videoseg-o3" build-tiny | awk '/^qwen_vl:/ {print $2}')
SAM2=$("$BIN/videoseg-o3" build-tiny | awk '/^sam2:/ {print $2}')
STEPS="${STEPS:-900}"   # ~20 min on 2 cores; the tiny policy writes valid turns after ~600 steps (none at 240)
"$BIN/videoseg-o3" sft --config-name coldstart_tiny_cpu "model.path=$MODEL" "videoseg_o3.sam2.checkpoint=$SAM2" \
    "data.train_files=$OUT/sft.parquet" "trainer.default_local_dir=$OUT/sft" "trainer.total_training_steps=$STEPS" \
    data.micro_batch_size_per_gpu=4 videoseg_o3_sft.supervise_spatial=false
CKPT="$OUT/sft/global_step_$STEPS"
# 3. are the policy's own first turns well-formed on held-out prompts?
"$BIN/python" -m videoseg_o3_verl.sft.probe --model "$CKPT/hf_policy" --data "$OUT/valid.parquet" --limit 20
# 4. RL from the cold start
"$BIN/videoseg-o3" train --config-name tiny_cpu "actor_rollout_ref.model.path=$CKPT/hf_policy" \
    "videoseg_o3.seg_head.path=$CKPT/seg_head" "videoseg_o3.sam2.checkpoint=$SAM2" \
    "data.train_files=$OUT/train.parquet" "data.val_files=$OUT/valid.parquet" "trainer.default_local_dir=$OUT/rl"
