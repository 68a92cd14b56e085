# Copyright 2026 The videoseg-o3-verl authors. Licensed under the Apache License, Version 2.0.
"""Cold-start mask loss: ``bce_weight·BCE + dice_weight·Dice``, on uncertainty-sampled points or full masks.

The point-sampled variant is the released cold-start loss (PointRend-style sampling as in Mask2Former/Sa2VA):
``oversample_ratio·P`` random points are scored by uncertainty ``-|logit|``, the ``importance_sample_ratio·P``
most uncertain are kept plus uniformly random ones up to ``P``; logits and ground truth are read at those points
with bilinear ``grid_sample``. Dimension letters: N masks, h × w logits, H × W ground truth, P points.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def point_sample(values: torch.Tensor, coords: torch.Tensor) -> torch.Tensor:
    """Bilinear values at normalised points.

    Args:
        values: [N, h, w] float.
        coords: [N, P, 2] (x, y) in [0, 1]² (0 = left/top edge of the image, 1 = right/bottom edge).

    Returns:
        [N, P] float.
    """
    grid = 2.0 * coords[:, :, None, :] - 1.0  # [N, P, 1, 2]
    return F.grid_sample(values[:, None].float(), grid, mode="bilinear", align_corners=False)[:, 0, :, 0]


def uncertain_points(logits: torch.Tensor, num_points: int, oversample_ratio: float = 3.0,
                     importance_sample_ratio: float = 0.75, generator: torch.Generator | None = None) -> torch.Tensor:
    """[N, P, 2] points: the most uncertain of ``oversample_ratio·P`` random candidates, plus random ones."""
    n = logits.shape[0]
    candidates = torch.rand(n, int(num_points * oversample_ratio), 2, generator=generator, device=logits.device)
    with torch.no_grad():
        uncertainty = -point_sample(logits.detach(), candidates).abs()
    k = int(importance_sample_ratio * num_points)
    picked = uncertainty.topk(k, dim=1).indices
    coords = torch.gather(candidates, 1, picked[..., None].expand(-1, -1, 2))
    if num_points - k > 0:
        extra = torch.rand(n, num_points - k, 2, generator=generator, device=logits.device)
        coords = torch.cat([coords, extra], dim=1)
    return coords


def dice_loss(probs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """[N] ``1 - (2 Σ p·g + 1) / (Σ p + Σ g + 1)`` over the last dimension (flattened per mask)."""
    p, g = probs.flatten(1), targets.flatten(1)
    return 1 - (2 * (p * g).sum(1) + 1) / (p.sum(1) + g.sum(1) + 1)


def sft_mask_loss(logits: torch.Tensor, gt: torch.Tensor, *, bce_weight: float = 2.0, dice_weight: float = 0.5,
                  mode: str = "points", num_points: int = 12544, oversample_ratio: float = 3.0,
                  importance_sample_ratio: float = 0.75,
                  generator: torch.Generator | None = None,
                  points: torch.Tensor | None = None) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """The cold-start mask loss of N masks, averaged over masks.

    Args:
        logits: [N, h, w] float mask logits (with grad).
        gt: [N, H, W] bool or 0/1 ground truth.
        mode: "points" (released) or "full" (logits upsampled bilinearly to H × W, every pixel).
        points: [N, P, 2] fixed points for "points" mode (default: :func:`uncertain_points`). As in the released
            loss, ``grid_sample`` pads with zeros, so points within half a pixel of the border blend with 0.

    Returns:
        (loss, parts) with ``loss = bce_weight·bce + dice_weight·dice`` and parts ``{"bce", "dice"}`` (detached).

    Example:
        >>> z = torch.zeros(1, 1, 2); g = torch.tensor([[[True, False]]])
        >>> loss, parts = sft_mask_loss(z, g, mode="full")   # BCE log 2, Dice 1 - (2·0.5 + 1)/(1 + 1 + 1)
        >>> round(parts["bce"].item(), 4), round(parts["dice"].item(), 4), round(loss.item(), 4)
        (0.6931, 0.3333, 1.553)
    """
    if logits.dim() != 3 or gt.dim() != 3 or logits.shape[0] != gt.shape[0]:
        raise ValueError(f"sft_mask_loss expects logits [N, h, w] and gt [N, H, W], got {tuple(logits.shape)} and "
                         f"{tuple(gt.shape)}")
    if logits.shape[0] == 0:
        zero = logits.sum() * 0
        return zero, {"bce": zero.detach(), "dice": zero.detach()}
    z = logits.float()
    g = gt.to(device=z.device, dtype=torch.float32)
    if mode == "points":
        coords = points if points is not None else uncertain_points(z, num_points, oversample_ratio,
                                                                    importance_sample_ratio, generator)
        z, g = point_sample(z, coords), point_sample(g, coords)
    elif mode == "full":
        if z.shape[-2:] != g.shape[-2:]:
            z = F.interpolate(z[:, None], size=tuple(g.shape[-2:]), mode="bilinear", align_corners=False)[:, 0]
        z, g = z.flatten(1), g.flatten(1)
    else:
        raise ValueError(f"mode must be 'points' or 'full', got {mode!r}")
    bce = F.binary_cross_entropy_with_logits(z, g, reduction="none").mean(1).mean()
    dice = dice_loss(z.sigmoid(), g).mean()
    return bce_weight * bce + dice_weight * dice, {"bce": bce.detach(), "dice": dice.detach()}
