# Copyright 2026 The videoseg-o3-verl authors. Licensed under the Apache License, Version 2.0.
"""From the actor's per-turn IoUs and the trajectory texts to the paper's reward (docs/method.md §5), per sample.

The seg-head engine writes, per sample, ``videoseg_frame_ious`` (``max_turns × FRAME_SLOTS`` per-frame IoUs of each
turn's video mask on the spatial frames, −1 padded) and ``videoseg_keyframe_ious`` (``max_turns``, −1 padded);
this module turns them into :class:`videoseg_reward.terms.TrajectoryRewardInputs` and applies the configured
:class:`~videoseg_reward.terms.RewardSpec`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch
from videoseg_reward.terms import RewardSpec, TrajectoryRewardInputs

from ..data.parquet import record_from_extra_info
from ..trajectory import EXTRA_FIELDS_KEY, Trajectory

if TYPE_CHECKING:
    from ..config import VideoSegO3Config
    from ..data.records import RVOSRecord
    from ..env import EnvConfig

FRAME_SLOTS = 9
"""Per-turn slots of ``videoseg_frame_ious``: the most spatial frames a turn can have (``num_high_res`` + 1 in
training, where a video of ``num_high_res + 1`` frames shows them all; checked by :func:`frame_slot_problems`)."""


def frame_slot_problems(env: EnvConfig) -> list[str]:
    """Start-up check that every turn's spatial-frame IoUs fit the ``FRAME_SLOTS`` of the reward packing (more
    would silently overwrite the next turn's slots).

    Example:
        >>> from videoseg_o3_verl.env import EnvConfig
        >>> frame_slot_problems(EnvConfig.train(num_high_res=8)), len(frame_slot_problems(EnvConfig.train(
        ...     num_high_res=9)))
        ([], 1)
    """
    most = env.num_high_res + (1 if env.mode == "train" else 0)
    if most <= FRAME_SLOTS:
        return []
    return [f"videoseg_o3.env.num_high_res={env.num_high_res} gives up to {most} spatial frames per turn but the "
            f"reward packing holds {FRAME_SLOTS} per turn (rewarding.FRAME_SLOTS); use num_high_res <= "
            f"{FRAME_SLOTS - (1 if env.mode == 'train' else 0)}"]


@dataclass
class SampleRewards:
    """The reward of one trajectory."""

    total: float
    per_term: dict[str, float]
    inputs: TrajectoryRewardInputs
    num_turns: int
    num_selects: int
    trajectory_payload: dict


def reward_spec_from(settings: VideoSegO3Config) -> RewardSpec:
    """The configured terms and weights (the ``jf`` term is added when enabled)."""
    terms = list(settings.rewards.terms)
    weights = list(settings.rewards.weights) if settings.rewards.weights is not None else [1.0] * len(terms)
    if settings.rewards.jf.enabled and "jf" not in terms:
        terms.append("jf")
        weights.append(settings.rewards.jf.weight)
    return RewardSpec(terms=tuple(terms), weights=tuple(weights))


def round_ious(trajectory: Trajectory, frame_ious: torch.Tensor, key_ious: torch.Tensor
               ) -> tuple[list[list[float]], list[float]]:
    """Unpack the engine's padded per-turn IoUs into the released code's
    ``per_round_maskious``/``per_round_keyframe_ious``.

    ``frame_ious`` holds ``FRAME_SLOTS`` values per turn (the first ``len(spatial_frames)`` are the turn's per-frame
    IoUs), ``key_ious`` one value per turn; −1 marks padding and is read as 0. Turns beyond ``key_ious`` are left out.
    """
    num_frames = len(trajectory.spatial_frames)
    if num_frames > FRAME_SLOTS:
        raise ValueError(f"round_ious: the trajectory has {num_frames} spatial frames but the reward packing holds "
                         f"{FRAME_SLOTS} per turn; lower videoseg_o3.env.num_high_res")
    flat = frame_ious.flatten().tolist()
    keys = key_ious.flatten().tolist()
    mask_ious, keyframe_ious = [], []
    for t in range(min(len(trajectory.turns), len(keys))):
        mask_ious.append([max(v, 0.0) for v in flat[t * FRAME_SLOTS: t * FRAME_SLOTS + num_frames]])
        keyframe_ious.append(max(keys[t], 0.0))
    return mask_ious, keyframe_ious


def reward_inputs(turn_texts: list[str], record: RVOSRecord, mask_ious: list[list[float]], keyframe_ious: list[float],
                  parity: bool = True, jf: float | None = None) -> TrajectoryRewardInputs:
    """The reward terms' inputs of one trajectory: its turns, the record's per-frame existence and the per-turn IoUs
    (``per_round_maskious``, ``per_round_keyframe_ious``); shared by training and ``videoseg-o3 eval``."""
    return TrajectoryRewardInputs(turns=list(turn_texts), mask_existence=list(record.mask_existence),
                                  per_round_maskious=mask_ious, per_round_keyframe_ious=keyframe_ious, jf=jf,
                                  parity=parity)


def unscored_reason(extra_fields: dict, extra_info: dict) -> str | None:
    """Why :func:`score_sample` cannot score a row (it then gets reward 0), or ``None`` when it can."""
    if not isinstance(extra_fields, dict) or EXTRA_FIELDS_KEY not in extra_fields:
        return "not a videoseg_o3 trajectory (no trajectory in extra_fields)"
    if not isinstance(extra_info, dict):
        return "no extra_info with the record"
    record = record_from_extra_info(extra_info)
    if not record.mask_existence:
        return f"record {record.name} has no ground truth (submission-only split?)"
    return None


def score_sample(spec: RewardSpec, extra_fields: dict, extra_info: dict, frame_ious: torch.Tensor,
                 key_ious: torch.Tensor, parity: bool = True, jf: float | None = None) -> SampleRewards | None:
    """Reward of one sample, or ``None`` when it cannot be scored (see :func:`unscored_reason`)."""
    if unscored_reason(extra_fields, extra_info) is not None:
        return None
    trajectory = Trajectory.from_extra_fields(extra_fields)
    record = record_from_extra_info(extra_info)
    mask_ious, keyframe_ious = round_ious(trajectory, frame_ious, key_ious)
    inputs = reward_inputs([turn.text for turn in trajectory.turns], record, mask_ious, keyframe_ious, parity, jf)
    total, per_term = spec.compute(inputs)
    return SampleRewards(total=float(total), per_term={k: float(v) for k, v in per_term.items()}, inputs=inputs,
                         num_turns=len(trajectory.turns),
                         num_selects=sum(1 for turn in trajectory.turns if turn.kind == "select"),
                         trajectory_payload=extra_fields[EXTRA_FIELDS_KEY])


def score_batch(spec: RewardSpec, extra_fields: list, extra_infos: list, frame_ious: list[torch.Tensor],
                key_ious: list[torch.Tensor], parity: bool = True, jfs: list[float | None] | None = None
                ) -> list[SampleRewards | None]:
    """:func:`score_sample` over a batch."""
    jfs = jfs or [None] * len(extra_fields)
    return [score_sample(spec, f, i, fi, ki, parity, jf)
            for f, i, fi, ki, jf in zip(extra_fields, extra_infos, frame_ious, key_ious, jfs)]
