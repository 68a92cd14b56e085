# Copyright 2026 The videoseg-o3-verl authors. Licensed under the Apache License, Version 2.0.
"""Pure loss maths of SEG-aware logit calibration and the auxiliary segmentation loss (docs/method.md §6.2, §6.4).

Dimension letters used in the shapes below:
    N: decoded masks ([SEG] tokens, one mask each); h, w: low-res mask-logit size (SAM2: image_size / 4);
    H, W: ground-truth mask size (original frame resolution); T: spatial frames.

Everything here is plain torch: no verl, no Ray, no SAM2. The seg-head engine calls these functions (through
``verl_ext/seg_batch.py``); adding a mask log-prob to a [SEG] token's log-prob happens in the engine.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F

__all__ = ["aux_seg_loss", "mask_log_prob", "released_aux_loss"]


def _check_float(name: str, x: torch.Tensor) -> None:
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(x).__name__}")
    if not x.is_floating_point():
        raise TypeError(f"{name} must be a floating-point tensor, got dtype {x.dtype}")


def mask_log_prob(current_logits: torch.Tensor, rollout_logits: torch.Tensor, grid: int = 32,
                  threshold: float = 0.5) -> torch.Tensor:
    """Per-mask Bernoulli log-likelihood of the rollout's own binarised mask under the current logits (docs/method.md
    §6.2).

    ``z = bilinear(current, grid x grid)``, ``y = 1[bilinear(rollout, grid x grid) > threshold]`` and the value is
    ``mean_p [y_p log sigma(z_p) + (1 - y_p) log(1 - sigma(z_p))] = -mean_p BCEWithLogits(z_p, y_p)``. The threshold
    is applied to LOGITS, as in the released code (0.5 on logits is p > 0.62, not p > 0.5). Bilinear resizing uses
    ``align_corners=False``. Computed in float32.

    Args:
        current_logits: [N, h, w] float, mask logits of the CURRENT training forward (with grad).
        rollout_logits: [N, h', w'] float, mask logits produced at rollout time; detached here (no grad).
        grid: side of the comparison grid (32 in the paper).
        threshold: binarisation threshold on the rollout logits.

    Returns:
        [N] float32, each value <= 0 (0 only for a perfectly confident agreement). N = 0 gives an empty tensor.

    Example:
        >>> z = torch.zeros(1, 4, 4)           # sigma(0) = 0.5 at every pixel
        >>> r = torch.full((1, 8, 8), 3.0)     # rollout says "foreground" everywhere
        >>> round(mask_log_prob(z, r, grid=2).item(), 4)   # log(0.5)
        -0.6931
    """
    _check_float("current_logits", current_logits)
    _check_float("rollout_logits", rollout_logits)
    if current_logits.dim() != 3 or rollout_logits.dim() != 3:
        raise ValueError(f"mask_log_prob expects current_logits [N, h, w] and rollout_logits [N, h', w'], got "
                         f"{tuple(current_logits.shape)} and {tuple(rollout_logits.shape)}")
    if current_logits.shape[0] != rollout_logits.shape[0]:
        raise ValueError(f"mask_log_prob: {current_logits.shape[0]} current masks but {rollout_logits.shape[0]} "
                         "rollout masks; they must pair one to one")
    if grid < 1:
        raise ValueError(f"mask_log_prob: grid must be >= 1, got {grid}")
    if current_logits.shape[0] == 0:
        # keep the (empty) graph so callers can always concatenate/backward
        return current_logits.float().flatten(1).sum(1)
    size = (grid, grid)
    z = F.interpolate(current_logits.float()[:, None], size=size, mode="bilinear", align_corners=False)  # [N,1,g,g]
    with torch.no_grad():
        r = F.interpolate(rollout_logits.detach().float()[:, None], size=size, mode="bilinear", align_corners=False)
        y = (r > threshold).float()  # [N, 1, g, g]
    return -F.binary_cross_entropy_with_logits(z, y, reduction="none").mean(dim=(1, 2, 3))


def aux_seg_loss(pred_logits: torch.Tensor, gt_masks: torch.Tensor) -> torch.Tensor:
    """Supervised BCE + Dice mask loss, averaged over masks (docs/method.md §6.4).

    The logits are upsampled bilinearly (``align_corners=False``) to the GT size. Per mask:
    ``mean_p BCEWithLogits(z_p, g_p) + 1 - (2 sum sigma(z) g + 1) / (sum sigma(z) + sum g + 1)``; the result is the
    mean over the N masks. Empty GT masks are valid targets. Computed in float32.

    Args:
        pred_logits: [N, h, w] float mask logits (with grad).
        gt_masks: [N, H, W] bool or 0/1 numbers.

    Returns:
        scalar float32. N = 0 gives ``pred_logits.sum() * 0`` (a zero that keeps the graph).

    Example:
        >>> z = torch.zeros(1, 1, 2)               # sigma = 0.5 at both pixels
        >>> g = torch.tensor([[[True, False]]])
        >>> round(aux_seg_loss(z, g).item(), 4)   # BCE log 2 + Dice 1 - (2*0.5 + 1) / (1 + 1 + 1)
        1.0265
    """
    _check_float("pred_logits", pred_logits)
    if not isinstance(gt_masks, torch.Tensor):
        raise TypeError(f"gt_masks must be a torch.Tensor, got {type(gt_masks).__name__}")
    if pred_logits.dim() != 3 or gt_masks.dim() != 3:
        raise ValueError(f"aux_seg_loss expects pred_logits [N, h, w] and gt_masks [N, H, W], got "
                         f"{tuple(pred_logits.shape)} and {tuple(gt_masks.shape)}")
    if pred_logits.shape[0] != gt_masks.shape[0]:
        raise ValueError(f"aux_seg_loss: {pred_logits.shape[0]} predicted masks but {gt_masks.shape[0]} GT masks")
    if pred_logits.shape[0] == 0:
        return pred_logits.sum() * 0
    g = gt_masks.to(device=pred_logits.device, dtype=torch.float32)
    if gt_masks.dtype != torch.bool and not bool(((g == 0) | (g == 1)).all()):
        raise ValueError("aux_seg_loss: gt_masks must be boolean or contain only 0 and 1")
    z = pred_logits.float()
    if z.shape[-2:] != g.shape[-2:]:
        z = F.interpolate(z[:, None], size=tuple(g.shape[-2:]), mode="bilinear", align_corners=False)[:, 0]
    bce = F.binary_cross_entropy_with_logits(z, g, reduction="none").flatten(1).mean(1)  # [N]
    prob = z.sigmoid().flatten(1)
    gf = g.flatten(1)
    dice = 1 - (2 * (prob * gf).sum(1) + 1) / (prob.sum(1) + gf.sum(1) + 1)  # [N]
    return (bce + dice).mean()


def released_aux_loss(video_logits: Sequence[torch.Tensor], video_gts: Sequence[torch.Tensor],
                      key_logits: Sequence[torch.Tensor], key_gts: Sequence[torch.Tensor]) -> torch.Tensor:
    """The released code's auxiliary loss of a micro-batch, pooled over all its masks (docs/method.md §6.4):
    ``L_vid + L_kf`` with ``L_vid`` the mean over every [SEG]'s video mask of :func:`aux_seg_loss` (itself a mean
    over the spatial frames) and ``L_kf`` the mean over (trajectory, turn) pairs of :func:`aux_seg_loss` of the
    turn's keyframe mask. A term without masks is 0 (no masks at all is an error).

    Args:
        video_logits: one [T, h, w] per [SEG]; video_gts: the matching [T, H, W] ground truths.
        key_logits: one [h, w] per (trajectory, turn) (the turn's last [SEG]); key_gts: the matching [H, W].

    Returns:
        scalar float32 (a zero that keeps the graph when there is nothing to score).

    Example:
        >>> z, g = torch.zeros(1, 1, 2), torch.tensor([[[True, False]]])   # aux_seg_loss = log 2 + 1/3
        >>> round(released_aux_loss([z], [g], [z[0]], [g[0]]).item(), 4)  # video + keyframe term
        2.053
    """
    if len(video_logits) != len(video_gts) or len(key_logits) != len(key_gts):
        raise ValueError(f"released_aux_loss: {len(video_logits)} video masks for {len(video_gts)} ground truths, "
                         f"{len(key_logits)} keyframe masks for {len(key_gts)} ground truths")
    terms = []
    if video_logits:
        terms.append(torch.stack([aux_seg_loss(z, g) for z, g in zip(video_logits, video_gts)]).mean())
    if key_logits:
        terms.append(torch.stack([aux_seg_loss(z[None], g[None]) for z, g in zip(key_logits, key_gts)]).mean())
    if not terms:
        raise ValueError("released_aux_loss: no masks to score")
    return sum(terms[1:], terms[0])
