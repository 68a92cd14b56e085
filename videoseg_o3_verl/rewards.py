# Copyright 2026 The videoseg-o3-verl authors. Licensed under the Apache License, Version 2.0.
"""From the actor's [SEG] mask logits to the paper's reward inputs (spec §3.2, §4) and the summed reward.

Each turn ``t`` of a trajectory decodes, for every ``[SEG]`` it generated, low-resolution mask logits on
(a) the high-resolution "spatial" frames of the first user turn (``Trajectory.spatial_frames``, 5 in training)
and (b) the turn's pending keyframe (``TurnRecord.seg_keyframe``: ``L // 2`` in turn 0, then the keyframe
selected in the previous turn). This module turns those logits into exactly what the authors' reward functions
receive (spec §4 "Inputs"):

* ``per_round_maskious[t]``: per spatial frame, IoU of the turn's video mask vs ground truth; prediction =
  bilinear upsampling of the logits to the original ``H x W`` (``align_corners=False``) then ``> 0``;
  ``IoU = inter / (union + 1e-6)``; a frame where both masks are empty (union < 1) gets **1.0**; several
  ``[SEG]`` in a turn → mean over objects per frame; a turn without ``[SEG]`` → ``[0.0] * T``.
* ``per_round_keyframe_ious[t]``: IoU of the LAST ``[SEG]``'s keyframe mask vs the keyframe's ground truth,
  same prediction rule, ``inter / (union + 1e-6)`` with **no** both-empty exception (both empty → 0.0);
  a turn without ``[SEG]`` → 0.0.

Dimension letters: ``T`` spatial frames, ``h, w`` mask-logit size (SAM2: image_size / 4), ``H, W`` original
frame size. Pure torch/numpy; no verl, no SAM2.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from videoseg_reward.terms import RewardSpec, TrajectoryRewardInputs

from .data.records import RVOSRecord
from .trajectory import Trajectory

__all__ = [
    "IOU_EPS",
    "RewardBreakdown",
    "frame_ious",
    "keyframe_iou",
    "logits_to_masks",
    "reward_inputs",
    "score_trajectory",
    "video_mask_ious",
]

IOU_EPS = 1e-6
"""Added to the union in every mask IoU (spec §4)."""


# ----------------------------------------------------------------------------------------------------------
# Checks and the shared prediction rule
# ----------------------------------------------------------------------------------------------------------


def _as_logits(x: Any, name: str, ndim: int) -> torch.Tensor:
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor of mask logits, got {type(x).__name__}")
    if not x.is_floating_point():
        raise TypeError(f"{name} must hold floating-point logits, got dtype {x.dtype}")
    if x.ndim != ndim:
        shape = "[T, h, w]" if ndim == 3 else "[h, w]"
        raise ValueError(f"{name} must have shape {shape}, got {tuple(x.shape)}")
    if x.shape[-1] == 0 or x.shape[-2] == 0:
        raise ValueError(f"{name} has an empty spatial size {tuple(x.shape)}")
    return x.detach()


def _as_gt(x: Any, name: str, ndim: int) -> torch.Tensor:
    """Ground truth as a bool tensor (``> 0.5`` for numeric input, as the authors binarise it)."""
    if isinstance(x, np.ndarray):
        x = torch.from_numpy(np.ascontiguousarray(x))
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{name} must be a numpy array or torch.Tensor, got {type(x).__name__}")
    if x.ndim != ndim:
        shape = "[T, H, W]" if ndim == 3 else "[H, W]"
        raise ValueError(f"{name} must have shape {shape}, got {tuple(x.shape)}")
    return x if x.dtype == torch.bool else x.float() > 0.5


def logits_to_masks(logits: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Binary masks at the original resolution: bilinear upsampling (``align_corners=False``), then ``> 0``.

    Args:
        logits: [N, h, w] float mask logits.
        size: ``(H, W)`` target size.

    Returns:
        [N, H, W] bool.

    Example:
        >>> logits_to_masks(torch.tensor([[[1.0, -1.0], [-1.0, -1.0]]]), (4, 4))[0].int().tolist()
        [[1, 1, 0, 0], [1, 1, 0, 0], [0, 0, 0, 0], [0, 0, 0, 0]]
    """
    logits = logits.float()
    if tuple(logits.shape[-2:]) != tuple(size):
        logits = F.interpolate(logits[:, None], size=tuple(int(s) for s in size), mode="bilinear",
                               align_corners=False)[:, 0]
    return logits > 0


def _inter_union(pred: torch.Tensor, gt: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-mask intersection and union counts of [N, H, W] bool masks, as float64 [N]."""
    inter = (pred & gt).flatten(1).sum(1).double()
    union = (pred | gt).flatten(1).sum(1).double()
    return inter, union


# ----------------------------------------------------------------------------------------------------------
# Per-turn IoUs
# ----------------------------------------------------------------------------------------------------------


def frame_ious(pred_logits: torch.Tensor, gt_masks: Any) -> list[float]:
    """Per-frame IoUs of ONE object's video mask (spec §4 ``per_round_maskious``, one object).

    Prediction = bilinear upsampling of the logits to ``(H, W)`` then ``> 0``; IoU = ``inter / (union + 1e-6)``;
    a frame with ``union < 1`` (both masks empty) gets 1.0.

    Args:
        pred_logits: [T, h, w] float, low-res logits of one [SEG] decoded on T frames.
        gt_masks: [T, H, W] bool (numpy or torch; numeric input is binarised ``> 0.5``).

    Returns:
        T floats in [0, 1].

    Example:
        >>> gt = torch.zeros(2, 4, 4, dtype=torch.bool); gt[0, :2, :2] = True   # frame 1 empty
        >>> logits = torch.tensor([[[1.0, -1.0], [-1.0, -1.0]], [[-1.0, -1.0], [-1.0, -1.0]]])
        >>> [round(v, 6) for v in frame_ious(logits, gt)]   # 4/(4+1e-6), then both empty -> 1
        [1.0, 1.0]
    """
    logits = _as_logits(pred_logits, "frame_ious: pred_logits", 3)
    gt = _as_gt(gt_masks, "frame_ious: gt_masks", 3)
    if logits.shape[0] != gt.shape[0]:
        raise ValueError(f"frame_ious: pred_logits has {logits.shape[0]} frames but gt_masks has {gt.shape[0]}")
    if logits.shape[0] == 0:
        return []
    pred = logits_to_masks(logits, tuple(gt.shape[-2:]))
    inter, union = _inter_union(pred, gt.to(pred.device))
    return [1.0 if u < 1 else float(i / (u + IOU_EPS)) for i, u in zip(inter.tolist(), union.tolist())]


def video_mask_ious(turn_logits: Sequence[torch.Tensor], gt_masks: Any) -> list[float]:
    """One turn's ``per_round_maskious`` entry: per frame, the mean over the turn's [SEG] objects of
    :func:`frame_ious`; a turn without [SEG] gives ``[0.0] * T``.

    Args:
        turn_logits: one [T, h, w] float tensor per [SEG] of the turn (possibly empty).
        gt_masks: [T, H, W] bool.

    Returns:
        T floats.

    Example:
        >>> gt = torch.zeros(1, 4, 4, dtype=torch.bool); gt[0, :2, :2] = True
        >>> hit = torch.tensor([[[1.0, -1.0], [-1.0, -1.0]]]); miss = -hit.abs()
        >>> [round(v, 6) for v in video_mask_ious([hit, miss], gt)], video_mask_ious([], gt)   # (1 + 0) / 2
        ([0.5], [0.0])
    """
    if isinstance(turn_logits, torch.Tensor) or not isinstance(turn_logits, Sequence):
        raise TypeError(f"video_mask_ious: turn_logits must be a list with one [T, h, w] tensor per [SEG], "
                        f"got {type(turn_logits).__name__}")
    gt = _as_gt(gt_masks, "video_mask_ious: gt_masks", 3)
    if not turn_logits:
        return [0.0] * int(gt.shape[0])
    per_object = [frame_ious(logits, gt) for logits in turn_logits]
    return [sum(vals) / len(vals) for vals in zip(*per_object)]


def keyframe_iou(turn_keyframe_logits: Sequence[torch.Tensor], gt_mask: Any) -> float:
    """One turn's ``per_round_keyframe_ious`` entry: IoU of the LAST [SEG]'s keyframe mask.

    IoU = ``inter / (union + 1e-6)``: both masks empty gives **0.0** (unlike :func:`frame_ious`); a turn
    without [SEG] gives 0.0.

    Args:
        turn_keyframe_logits: one [h, w] float tensor per [SEG] of the turn (possibly empty).
        gt_mask: [H, W] bool ground truth of the turn's keyframe.

    Example:
        >>> gt = torch.zeros(4, 4, dtype=torch.bool)
        >>> keyframe_iou([-torch.ones(2, 2)], gt)     # both empty -> 0, not 1
        0.0
        >>> gt[:2, :2] = True
        >>> round(keyframe_iou([torch.tensor([[1.0, -1.0], [-1.0, -1.0]]), -torch.ones(2, 2)], gt), 6)  # last wins
        0.0
    """
    if isinstance(turn_keyframe_logits, torch.Tensor) or not isinstance(turn_keyframe_logits, Sequence):
        raise TypeError(f"keyframe_iou: turn_keyframe_logits must be a list with one [h, w] tensor per [SEG], "
                        f"got {type(turn_keyframe_logits).__name__}")
    gt = _as_gt(gt_mask, "keyframe_iou: gt_mask", 2)
    for i, logits in enumerate(turn_keyframe_logits):
        _as_logits(logits, f"keyframe_iou: turn_keyframe_logits[{i}]", 2)
    if not turn_keyframe_logits:
        return 0.0
    pred = logits_to_masks(turn_keyframe_logits[-1].detach()[None], tuple(gt.shape))
    inter, union = _inter_union(pred, gt[None].to(pred.device))
    return float(inter[0] / (union[0] + IOU_EPS))


# ----------------------------------------------------------------------------------------------------------
# A whole trajectory
# ----------------------------------------------------------------------------------------------------------


def reward_inputs(trajectory: Trajectory, record: RVOSRecord, video_logits: Sequence[Sequence[torch.Tensor]],
                  keyframe_logits: Sequence[Sequence[torch.Tensor]], parity: bool = True,
                  jf: float | None = None) -> TrajectoryRewardInputs:
    """Build the reward inputs of one trajectory from its per-turn [SEG] mask logits (spec §4).

    Args:
        trajectory: the agent loop's per-turn metadata; ``turns[t].text`` are the assistant turns,
            ``spatial_frames`` the frames of the video masks, ``turns[t].seg_keyframe`` the keyframe of turn t.
        record: the sample with its ground truth (masks decoded with ``record.decode_mask``).
        video_logits: ``video_logits[t]`` = one [T, h, w] tensor per [SEG] of turn t, decoded on
            ``trajectory.spatial_frames`` (T = ``len(spatial_frames)``).
        keyframe_logits: ``keyframe_logits[t]`` = one [h, w] tensor per [SEG] of turn t, decoded on
            ``trajectory.turns[t].seg_keyframe``.
        parity: reproduce the authors' reward quirks (see ``videoseg_reward.terms``).
        jf: J&F of the propagated final mask, only for a spec that uses the ``jf`` term.

    Returns:
        The :class:`TrajectoryRewardInputs` of the trajectory.

    Raises:
        ValueError: the record has no ground truth, frame counts disagree, or the number of logits of a turn
            differs from the number of [SEG] tokens the agent loop recorded for it.
    """
    if not isinstance(record, RVOSRecord):
        raise TypeError(f"reward_inputs: record must be an RVOSRecord, got {type(record).__name__}")
    if not isinstance(trajectory, Trajectory):
        raise TypeError(f"reward_inputs: trajectory must be a Trajectory, got {type(trajectory).__name__}")
    if not record.has_ground_truth:
        raise ValueError(f"reward_inputs: record {record.name} has no ground-truth masks (submission-only split); "
                         "rewards need masks, train on a split with ground truth")
    if trajectory.num_frames != record.num_frames:
        raise ValueError(f"reward_inputs: record {record.name} has {record.num_frames} frames but the trajectory "
                         f"was rolled out on {trajectory.num_frames}")
    n = len(trajectory.turns)
    if len(video_logits) != n or len(keyframe_logits) != n:
        raise ValueError(f"reward_inputs: record {record.name}: {n} turns but {len(video_logits)} video_logits "
                         f"and {len(keyframe_logits)} keyframe_logits entries; give one list per turn")
    for turn, vid, key in zip(trajectory.turns, video_logits, keyframe_logits):
        n_seg = len(turn.seg_positions)
        if len(vid) != n_seg or len(key) != n_seg:
            raise ValueError(f"reward_inputs: record {record.name}, turn {turn.index}: {n_seg} [SEG] token(s) "
                             f"recorded but {len(vid)} video and {len(key)} keyframe mask logits given")

    spatial_gt = record.decode_masks(list(trajectory.spatial_frames))
    keyframe_gt: dict[int, np.ndarray] = {}
    maskious, keyframe_ious_ = [], []
    for turn, vid, key in zip(trajectory.turns, video_logits, keyframe_logits):
        for i, logits in enumerate(vid):
            if logits.ndim != 3 or logits.shape[0] != len(trajectory.spatial_frames):
                raise ValueError(f"reward_inputs: record {record.name}, turn {turn.index}, [SEG] {i}: video logits "
                                 f"must be [T={len(trajectory.spatial_frames)}, h, w], got {tuple(logits.shape)}")
        maskious.append(video_mask_ious(list(vid), spatial_gt))
        k = int(turn.seg_keyframe)
        if k not in keyframe_gt:
            keyframe_gt[k] = record.decode_mask(k)
        keyframe_ious_.append(keyframe_iou(list(key), keyframe_gt[k]))
    return TrajectoryRewardInputs(turns=[turn.text for turn in trajectory.turns],
                                  mask_existence=list(record.mask_existence), per_round_maskious=maskious,
                                  per_round_keyframe_ious=keyframe_ious_, jf=jf, parity=parity)


def score_trajectory(spec: RewardSpec, inputs: TrajectoryRewardInputs) -> tuple[float, dict[str, float]]:
    """``(total, per_term)`` of one trajectory under ``spec`` (``per_term`` holds unweighted term values)."""
    if not isinstance(spec, RewardSpec):
        raise TypeError(f"score_trajectory: spec must be a RewardSpec, got {type(spec).__name__}")
    return spec.compute(inputs)


@dataclass(frozen=True)
class RewardBreakdown:
    """The reward of one trajectory with its inputs, for logging and the report."""

    total: float
    """Weighted sum of the spec's terms."""
    per_term: dict[str, float]
    """Unweighted value of each term, in the spec's order."""
    inputs: TrajectoryRewardInputs
    """What the terms were computed from."""

    @classmethod
    def compute(cls, spec: RewardSpec, inputs: TrajectoryRewardInputs) -> RewardBreakdown:
        """Score ``inputs`` under ``spec``."""
        total, per_term = score_trajectory(spec, inputs)
        return cls(total=total, per_term=per_term, inputs=inputs)
