# Copyright 2026 The videoseg-o3-verl authors. Licensed under the Apache License, Version 2.0.
"""From the seg head's mask logits to the per-turn IoUs the paper's rewards read (docs/method.md §4, §5).

Each turn ``t`` of a trajectory decodes, for every ``[SEG]`` it generated, low-resolution mask logits on
(a) the high-resolution "spatial" frames of the first user turn (``Trajectory.spatial_frames``, 5 in training)
and (b) the turn's pending keyframe (``TurnRecord.seg_keyframe``: ``L // 2`` in turn 0, then the keyframe
selected in the previous turn). The seg-head engine turns those logits into exactly what the authors' reward
functions receive (docs/method.md §5 "Inputs"), with this module:

* ``per_round_maskious[t]`` (:func:`video_mask_ious`): per spatial frame, IoU of the turn's video mask vs ground
  truth; prediction = bilinear upsampling of the logits to the original ``H x W`` (``align_corners=False``) then
  ``> 0``; several ``[SEG]`` in a turn → mean over objects per frame; a turn without ``[SEG]`` → ``[0.0] * T``.
* ``per_round_keyframe_ious[t]`` (:func:`keyframe_iou`): IoU of the LAST ``[SEG]``'s keyframe mask vs the
  keyframe's ground truth; a turn without ``[SEG]`` → 0.0.

The IoU conventions themselves (``inter / (union + 1e-6)``; both masks empty → 1 for the video masks, 0 for the
keyframe, as released) are :mod:`videoseg_reward.masks`'; this module only adds the prediction rule. The reward
itself is :mod:`videoseg_o3_verl.verl_ext.rewarding`.

Dimension letters: ``T`` spatial frames, ``h, w`` mask-logit size (SAM2: image_size / 4), ``H, W`` original
frame size. Pure torch/numpy; no verl, no SAM2.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from videoseg_reward import masks as reward_masks

__all__ = ["frame_ious", "keyframe_iou", "logits_to_masks", "video_mask_ious"]


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


# ----------------------------------------------------------------------------------------------------------
# Per-turn IoUs
# ----------------------------------------------------------------------------------------------------------


def frame_ious(pred_logits: torch.Tensor, gt_masks: Any) -> list[float]:
    """Per-frame IoUs of ONE object's video mask (docs/method.md §5 ``per_round_maskious``, one object).

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
    return reward_masks.frame_ious(pred.cpu().numpy(), gt.cpu().numpy()).tolist()


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
    pred = logits_to_masks(turn_keyframe_logits[-1].detach()[None], tuple(gt.shape))[0]
    return float(reward_masks.keyframe_iou(pred.cpu().numpy(), gt.cpu().numpy()))
