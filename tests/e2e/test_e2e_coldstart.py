# Copyright 2026 The videoseg-o3-verl authors. Licensed under the Apache License, Version 2.0.
"""Cold start on CPU end to end: synthetic data → VTS-CoT → a few SFT steps through verl's SFT trainer (CE and mask
loss go down, the checkpoint has hf_policy/ and seg_head/) → two steps of a new head alone on that policy (the learning
demo's seg-head stage: the policy comes out bit-identical, the head moves) → one VideoSEG-O3 RL step from there."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from tests.e2e.runner import run_cli, tail
from videoseg_o3_verl.data.parquet import convert_to_parquet
from videoseg_o3_verl.data.synthetic import generate_synthetic_dataset
from videoseg_o3_verl.data.vts_cot import build_vts_cot

pytestmark = [pytest.mark.e2e, pytest.mark.ray]

SFT_STEPS = 6


def _series(rows: list[dict], key: str) -> list[float]:
    return [float(r["data"][key]) for r in sorted(rows, key=lambda r: r["step"]) if key in r["data"]]


def test_coldstart_sft_then_one_rl_step(tmp_path, tiny_qwen25_path, tiny_sam2_path):
    generate_synthetic_dataset(tmp_path / "syn", seed=0, num_videos=4, num_frames=12, height=56, width=72)
    convert_to_parquet("synthetic", tmp_path / "syn", tmp_path / "rl.parquet")
    build_vts_cot(tmp_path / "rl.parquet", tmp_path / "sft.parquet", seed=0)

    sft_dir = tmp_path / "sft_run"
    sft_dir.mkdir()
    proc, rows = run_cli(["sft", "--config-name", "coldstart_tiny_cpu", f"model.path={tiny_qwen25_path}",
                          f"videoseg_o3.sam2.checkpoint={tiny_sam2_path}",
                          f"data.train_files={tmp_path / 'sft.parquet'}",
                          f"trainer.default_local_dir={tmp_path / 'ckpt'}", f"trainer.total_training_steps={SFT_STEPS}",
                          "data.micro_batch_size_per_gpu=4",
                          "trainer.logger=[console,file]"], sft_dir)
    assert proc.returncode == 0, tail(proc)
    ce, mask = _series(rows, "sft/ce"), _series(rows, "sft/mask_loss")
    assert len(ce) == len(mask) == SFT_STEPS, tail(proc)
    assert np.mean(ce[-2:]) < np.mean(ce[:2]), ce
    # the median of the later steps: a late one-step spike (1.9 after 0.9, seen on a loaded machine) is not a trend
    assert np.median(mask[2:]) < np.mean(mask[:2]), mask
    assert all(0.0 <= v <= 1.0 for v in _series(rows, "sft/seg_iou"))
    ckpt = tmp_path / "ckpt" / f"global_step_{SFT_STEPS}"
    assert (ckpt / "hf_policy" / "model.safetensors").is_file() and (ckpt / "seg_head").is_dir()

    # the exported head is the trained one (the SAM2 decoder moved away from the tiny SAM2's weights)
    from safetensors.torch import load_file

    from videoseg_o3_verl.model.seg_head_io import load_seg_head

    head, _ = load_seg_head(str(ckpt / "seg_head"), sam2_checkpoint=tiny_sam2_path)
    sam2 = torch.load(tiny_sam2_path, map_location="cpu", weights_only=False)
    sam2 = sam2.get("model", sam2)
    moved = [k for k, v in head.mask_decoder.state_dict().items()
             if f"sam_mask_decoder.{k}" in sam2 and not torch.equal(v.float(), sam2[f"sam_mask_decoder.{k}"].float())]
    assert moved
    policy = load_file(str(ckpt / "hf_policy" / "model.safetensors"))
    assert not any(k.startswith("videoseg_seg_head") for k in policy)

    # the demo's seg-head stage: the same recipe on that policy, a new head, the policy left out of the trained groups
    from videoseg_o3_verl.config import TRAINABLE_GROUPS

    head_only = ",".join(group for group in TRAINABLE_GROUPS if group != "policy")
    head_run = tmp_path / "head_run"
    head_run.mkdir()
    proc, rows = run_cli(["sft", "--config-name", "coldstart_tiny_cpu", f"model.path={ckpt / 'hf_policy'}",
                          f"videoseg_o3.trainable_modules=[{head_only}]",
                          f"videoseg_o3.sam2.checkpoint={tiny_sam2_path}",
                          f"data.train_files={tmp_path / 'sft.parquet'}",
                          f"trainer.default_local_dir={tmp_path / 'head_ckpt'}", "trainer.total_training_steps=2",
                          "data.micro_batch_size_per_gpu=4", "trainer.logger=[console,file]"], head_run)
    assert proc.returncode == 0, tail(proc)
    assert len(_series(rows, "sft/mask_loss")) == 2, tail(proc)
    ckpt = tmp_path / "head_ckpt" / "global_step_2"
    frozen = load_file(str(ckpt / "hf_policy" / "model.safetensors"))
    assert frozen.keys() == policy.keys() and all(torch.equal(frozen[k], policy[k]) for k in policy)
    trained, _ = load_seg_head(str(ckpt / "seg_head"), sam2_checkpoint=tiny_sam2_path)
    assert any(f"sam_mask_decoder.{k}" in sam2 and not torch.equal(v.float(), sam2[f"sam_mask_decoder.{k}"].float())
               for k, v in trained.mask_decoder.state_dict().items())

    rl_dir = tmp_path / "rl_run"
    rl_dir.mkdir()
    proc, rows = run_cli(["train", "--config-name", "tiny_cpu", f"actor_rollout_ref.model.path={ckpt / 'hf_policy'}",
                          f"videoseg_o3.seg_head.path={ckpt / 'seg_head'}",
                          f"videoseg_o3.sam2.checkpoint={tiny_sam2_path}",
                          f"data.train_files={tmp_path / 'rl.parquet'}", f"data.val_files={tmp_path / 'rl.parquet'}",
                          "trainer.total_training_steps=1", f"trainer.default_local_dir={tmp_path / 'rl_ckpt'}",
                          "trainer.logger=[console,file]"], rl_dir)
    assert proc.returncode == 0, tail(proc)
    step = [r for r in rows if r["step"] == 1 and "actor/loss" in r["data"]]
    assert step and np.isfinite(step[0]["data"]["actor/loss"]), tail(proc)
