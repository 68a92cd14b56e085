# Copyright 2026 The videoseg-o3-verl authors. Licensed under the Apache License, Version 2.0.
"""The seg-head engine's switches for parity with the released training run, on hand-computed cases: log-prob
temperature, linear LR schedule, [SEG] cap kept out of the rewards, auxiliary-loss pooling."""

from __future__ import annotations

import math
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from omegaconf import OmegaConf
from tensordict import TensorDict
from verl.utils import tensordict_utils as tu
from verl.workers.engine.fsdp.transformer_impl import FSDPEngineWithLMHead, _scale_logits_by_temperature

from videoseg_o3_verl.config import load_videoseg_config
from videoseg_o3_verl.data.parquet import EXTRA_INFO_KEY
from videoseg_o3_verl.data.records import RVOSRecord
from videoseg_o3_verl.data.rle import encode_mask
from videoseg_o3_verl.trajectory import Trajectory, TurnRecord
from videoseg_o3_verl.verl_ext.engine import (
    OUT_FRAME_IOUS,
    OUT_KEY_IOUS,
    OUT_NSEG,
    OUT_TURN_HAS_MASK,
    OUT_TURN_KEY_MASKS,
    VideoSegO3FSDPEngine,
)
from videoseg_o3_verl.verl_ext.lr_schedule import OPTIMIZER_CONFIG_TARGET
from videoseg_o3_verl.verl_ext.rewarding import FRAME_SLOTS
from videoseg_o3_verl.verl_ext.seg_batch import SampleSegs, cap_segs, collect_samples, micro_batch_aux_loss


def _engine(forward_only: bool = False, **settings) -> VideoSegO3FSDPEngine:
    """The engine class without verl's model building: only the settings the tested methods read."""
    engine = object.__new__(VideoSegO3FSDPEngine)
    engine.videoseg = load_videoseg_config({"videoseg_o3": settings})
    engine.engine_config = SimpleNamespace(forward_only=forward_only)
    engine._warned_dropped = False
    return engine


# --------------------------------------------------------------------------------------- log-prob temperature


def _target_log_prob(engine, monkeypatch) -> float:
    """log p(token 0) of logits [2, 1, 0] at the temperature verl's forward reads from the engine's micro-batch."""
    seen = {}
    monkeypatch.setattr(FSDPEngineWithLMHead, "prepare_model_inputs",
                        lambda self, micro_batch: seen.setdefault("t", micro_batch["temperature"]))
    micro_batch = TensorDict({"input_ids": torch.zeros(1, 3)}, batch_size=[1])
    tu.assign_non_tensor_data(micro_batch, "temperature", 0.9)  # what verl's trainer puts there (rollout temp)
    engine.prepare_model_inputs(micro_batch)
    temperature = torch.tensor([float(seen["t"])])
    scaled = _scale_logits_by_temperature(torch.tensor([[2.0, 1.0, 0.0]]), temperature[:, None],
                                          is_unit_temperature=False)  # verl's own scaling
    return float(torch.log_softmax(scaled, dim=-1)[0, 0])


@pytest.mark.parametrize("forward_only", [False, True], ids=["actor", "reference"])
def test_logprob_temperature_one_gives_plain_log_softmax(monkeypatch, forward_only):
    # T = 1: 2 - log(e^2 + e^1 + e^0) = 2 - log(7.389056 + 2.718282 + 1) = 2 - 2.407606 = -0.407606
    engine = _engine(forward_only=forward_only, logprob_temperature=1.0)
    assert _target_log_prob(engine, monkeypatch) == pytest.approx(-0.40761, abs=1e-5)


def test_logprob_temperature_null_keeps_verl_rollout_temperature(monkeypatch):
    # T = 0.9: 2.222222 - log(e^2.222222 + e^1.111111 + 1) = 2.222222 - log(9.227814 + 3.037732 + 1)
    #        = 2.222222 - 2.585175 = -0.362953
    assert _target_log_prob(_engine(), monkeypatch) == pytest.approx(-0.36295, abs=1e-5)


def test_logprob_temperature_must_be_positive():
    with pytest.raises(ValueError, match="videoseg_o3.logprob_temperature must be > 0"):
        load_videoseg_config({"videoseg_o3": {"logprob_temperature": 0.0}}).validate()


# ------------------------------------------------------------------------------------------ linear LR schedule


def _optim_config(**overrides):
    from verl.utils.config import omega_conf_to_dataclass

    cfg = {"_target_": OPTIMIZER_CONFIG_TARGET, "lr": 3e-6, "lr_scheduler_type": "linear", "total_training_steps": 10,
           "lr_warmup_steps_ratio": 0.0, "min_lr_ratio": 0.0, **overrides}
    return omega_conf_to_dataclass(OmegaConf.create(cfg))  # as verl's worker builds actor.optim


def _lrs(optim_config, steps: int) -> list[float]:
    """The lr of each optimizer step from the engine's scheduler (verl steps the scheduler after each update)."""
    engine = _engine()
    engine.optimizer_config, engine.rank = optim_config, 0
    param = torch.nn.Parameter(torch.zeros(1))
    optimizer = torch.optim.AdamW([param], lr=optim_config.lr)
    scheduler = engine._build_lr_scheduler(optimizer)
    out = []
    for _ in range(steps):
        out.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        scheduler.step()
    return out


def test_linear_lr_schedule_without_warmup_hand_computed():
    # T = 10, no warm-up: lr_k = 3e-6 * (10 - k) / 10 -> k = 0: 3e-6, k = T/2 = 5: 1.5e-6, k = T-1 = 9: 3e-7
    lrs = _lrs(_optim_config(), 10)
    assert [lrs[0], lrs[5], lrs[9]] == pytest.approx([3e-6, 1.5e-6, 3e-7], rel=1e-9)
    assert all(a > b for a, b in zip(lrs, lrs[1:]))


def test_linear_lr_schedule_with_warmup_hand_computed():
    # warm-up ratio 0.2 of T = 10 -> W = 2: k = 0: 0, k = 1: 1/2 peak; then (10 - k) / (10 - 2): k = 5: 5/8, k = 9: 1/8
    lrs = _lrs(_optim_config(lr_warmup_steps_ratio=0.2), 10)
    assert [lrs[0], lrs[1], lrs[2], lrs[5], lrs[9]] == pytest.approx([0.0, 1.5e-6, 3e-6, 3e-6 * 5 / 8, 3e-6 / 8])


def test_other_lr_schedules_stay_verls():
    # cosine over T = 10 with no warm-up: 0.5 * (1 + cos(pi * 5 / 10)) = 0.5 of the peak at step 5
    lrs = _lrs(_optim_config(lr_scheduler_type="cosine"), 10)
    assert [lrs[0], lrs[5]] == pytest.approx([3e-6, 1.5e-6])


def test_linear_lr_needs_the_plugin_optimizer_config():
    from verl.utils.config import omega_conf_to_dataclass

    from videoseg_o3_verl.config import _lr_scheduler_problems

    plain = {"_target_": "verl.workers.config.FSDPOptimizerConfig", "lr": 1e-6, "lr_scheduler_type": "linear"}
    from hydra.errors import InstantiationException

    with pytest.raises(InstantiationException, match="AssertionError"):  # verl asserts constant/cosine: hence the
        omega_conf_to_dataclass(OmegaConf.create(plain))                  # plugin's config class
    (problem,) = _lr_scheduler_problems(OmegaConf.create(plain))
    assert "actor_rollout_ref.actor.optim._target_=" + OPTIMIZER_CONFIG_TARGET in problem
    assert _lr_scheduler_problems(OmegaConf.create({**plain, "_target_": OPTIMIZER_CONFIG_TARGET})) == []
    with pytest.raises(InstantiationException, match="lr_scheduler_type.*'step'"):
        _optim_config(lr_scheduler_type="step")


# -------------------------------------------------------------------------------- [SEG] cap and the rewards

# A 2-frame video of 4x4 frames whose target is the top-left 2x2 block in both frames.
GT = np.zeros((4, 4), dtype=bool)
GT[:2, :2] = True
HIT = torch.where(torch.from_numpy(GT), 5.0, -5.0)  # logits whose mask is exactly the GT -> IoU 1
MISS = torch.full((4, 4), -5.0)  # empty mask -> IoU 0 against the non-empty GT
SEG_ID = 99


def _record(height: int = 4, width: int = 4, masks=(GT, GT)) -> RVOSRecord:
    return RVOSRecord(dataset="handmade", video_id="v", video_path="/nonexistent/v", frame_ids=(), num_frames=2,
                      expression="the square", expression_id="0", object_ids=(1,), mask_existence=(1, 1),
                      masks_rle=tuple(encode_mask(m) for m in masks), type_id=None, height=height, width=width)


def _trajectory(seg_positions: list[list[int]], keyframes: list[int]) -> Trajectory:
    turns = [TurnRecord(index=t, span=(0, 1), text="", kind="answer" if t == len(seg_positions) - 1 else "select",
                        seg_keyframe=k, seg_positions=p) for t, (p, k) in enumerate(zip(seg_positions, keyframes))]
    return Trajectory(num_frames=2, initial_low_res=[0, 1], spatial_frames=[0, 1], turns=turns, stop_reason="answer")


def _two_one_one_sample():
    """One sample, prompt of 3 tokens, response [SEG]s at 2, 4 (turn 0), 7 (turn 1), 10 (turn 2)."""
    trajectory = _trajectory([[2, 4], [7], [10]], keyframes=[1, 0, 1])
    ids = torch.zeros(3 + 12, dtype=torch.long)
    ids[[3 + 2, 3 + 4, 3 + 7, 3 + 10]] = SEG_ID
    info = {EXTRA_INFO_KEY: _record().to_json()}
    return collect_samples([ids], [3], [info], [trajectory.to_extra_fields()], SEG_ID)


def test_seg_cap_keeps_first_three_for_the_gradient_only():
    (every,) = _two_one_one_sample()
    assert every.positions == [5, 7, 10, 13] and every.turns == [0, 0, 1, 2]
    (trained,), rows = cap_segs([every], 3)
    assert trained.positions == [5, 7, 10] and rows == [0, 1, 2]
    assert _engine()._dropped([every], [trained]) == 1


def test_every_turn_reward_iou_comes_from_its_own_segs_whatever_the_cap():
    # [SEG]s: turn 0 = (HIT, MISS), turn 1 = HIT, turn 2 = HIT (the 4th [SEG], beyond the cap of 3).
    # video IoUs per frame = mean over the turn's [SEG]s: turn 0 (1 + 0) / 2 = 0.5, turns 1 and 2: 1.0;
    # keyframe IoU = the turn's LAST [SEG]: turn 0 MISS -> 0.0, turns 1 and 2 HIT -> 1.0.
    # (Scoring the capped [SEG]s instead would give turn 2 no [SEG]: IoUs 0.)
    (every,) = _two_one_one_sample()
    trained, _ = cap_segs([every], 3)
    key = torch.stack([HIT, MISS, HIT, HIT])
    video = [torch.stack([m, m]) for m in (HIT, MISS, HIT, HIT)]
    out = _engine()._old_pass_outputs([every], trained, 1, key, video, torch.zeros(3, 32 * 32), torch.zeros(3),
                                      SimpleNamespace(embedding=torch.zeros(4, 256)), "cpu")
    frames = out[OUT_FRAME_IOUS].unbind()[0].reshape(3, FRAME_SLOTS)[:, :2]
    # (IoU = inter / (union + 1e-6))
    assert frames.flatten().tolist() == pytest.approx([0.5, 0.5, 1.0, 1.0, 1.0, 1.0], abs=1e-6)
    assert out[OUT_KEY_IOUS].unbind()[0].tolist() == pytest.approx([0.0, 1.0, 1.0], abs=1e-6)
    assert out[OUT_NSEG].unbind()[0].tolist() == [3.0]  # calibration rows: the trained [SEG]s
    # the report's per-turn keyframe previews (64 × 64) also come from each turn's LAST [SEG], cap or not:
    # turn 0 = MISS (constant -5, and bilinear resizing keeps a constant), turns 1 and 2 = HIT (some pixels on)
    assert out[OUT_TURN_HAS_MASK].unbind()[0].tolist() == [1.0, 1.0, 1.0]
    turn_masks = out[OUT_TURN_KEY_MASKS].unbind()[0].reshape(3, 64 * 64)
    assert turn_masks[0].tolist() == [-5.0] * (64 * 64)
    assert [bool((m > 0).any()) for m in turn_masks] == [False, True, True]


# ------------------------------------------------------------------------------------------ aux-loss pooling

A = math.log(2) + 1 / 3  # aux_seg_loss of zero logits on 1x2 GT [1, 0]: BCE log 2 + Dice 1 - (2*0.5+1)/(1+1+1)
B = math.log(2) + 0.25  # ... on GT [1, 1]: BCE log 2 + Dice 1 - (2*1+1)/(1+2+1)
ON_OFF = np.array([[True, False]])
ON_ON = np.array([[True, True]])
RIGHT = torch.tensor([[20.0, -20.0]])  # confident and correct on [1, 0]: loss ~ 0


def _pooling_case():
    """Sample 0 (GT [1, 0]): [SEG]s in turns 0, 0, 1; keyframe logits zeros, RIGHT (last of turn 0), zeros.
    Sample 1 (GT [1, 1]): one [SEG] in turn 0, zeros. Video logits are zeros on one spatial frame."""
    s0 = SampleSegs(index=0, record=_record(1, 2, (ON_OFF, ON_OFF)), trajectory=_trajectory([[1, 2], [5]], [0, 1]),
                    positions=[1, 2, 5], turns=[0, 0, 1], keyframes=[0, 0, 1])
    s1 = SampleSegs(index=1, record=_record(1, 2, (ON_ON, ON_ON)), trajectory=_trajectory([[3]], [0]),
                    positions=[3], turns=[0], keyframes=[0])
    for s in (s0, s1):
        s.trajectory.spatial_frames = [0]
    zero = torch.zeros(1, 2)
    key = torch.stack([zero, RIGHT, zero, zero]).requires_grad_()
    video = [torch.zeros(1, 1, 2) for _ in range(4)]
    return [s0, s1], key, video


def test_aux_pooling_per_sample_hand_computed():
    # sample 0: video mean over its 3 [SEG]s = A; keyframe mean over all 3 = (A + 0 + A) / 3 -> 5A/3
    # sample 1: video B + keyframe B = 2B. Row sum 5A/3 + 2B; logged value = its mean over the 2 samples.
    samples, key, video = _pooling_case()
    row_sum, value = micro_batch_aux_loss(samples, key, video, "per_sample", num_rows=3)
    assert float(row_sum.detach()) == pytest.approx(5 * A / 3 + 2 * B, abs=1e-6)
    assert float(value) == pytest.approx((5 * A / 3 + 2 * B) / 2, abs=1e-6)


def test_aux_pooling_released_hand_computed():
    # L_vid = mean over the 4 [SEG]s = (3A + B) / 4; L_kf = mean over (trajectory, turn) pairs of the turn's LAST
    # [SEG]: sample 0 turn 0 -> RIGHT (0), turn 1 -> A, sample 1 turn 0 -> B: (A + B) / 3.
    # Row sum = value x 3 rows (the micro-batch's weight in verl's sequence-mean normalisation).
    samples, key, video = _pooling_case()
    row_sum, value = micro_batch_aux_loss(samples, key, video, "released", num_rows=3)
    expected = (3 * A + B) / 4 + (A + B) / 3
    assert float(value) == pytest.approx(expected, abs=1e-6)
    assert float(row_sum.detach()) == pytest.approx(3 * expected, abs=1e-6)
    row_sum.backward()
    assert key.grad[0].abs().sum() == 0  # the first [SEG] of turn 0 is not its turn's last: no keyframe term
    assert key.grad[2].abs().sum() > 0


def test_aux_pooling_rejects_unknown_mode():
    samples, key, video = _pooling_case()
    with pytest.raises(ValueError, match="videoseg_o3.aux_loss.pooling"):
        micro_batch_aux_loss(samples, key, video, "mean", num_rows=2)
    with pytest.raises(ValueError, match="videoseg_o3.aux_loss.pooling must be one of"):
        load_videoseg_config({"videoseg_o3": {"aux_loss": {"pooling": "mean"}}}).validate()
