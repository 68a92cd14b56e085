# Copyright 2026 The videoseg-o3-verl authors. Licensed under the Apache License, Version 2.0.
"""Pure loss maths of SEG-aware logit calibration and the auxiliary segmentation loss (spec §5.2, §5.5).

Dimension letters used in the shapes below:
    N: decoded masks ([SEG] tokens, one mask each); h, w: low-res mask-logit size (SAM2: image_size / 4);
    H, W: ground-truth mask size (original frame resolution); B: sequences in a batch;
    T: token positions (already shifted, so position t holds log p(target_ids[t])).

Everything here is plain torch: no verl, no Ray, no SAM2. The engine, the trainer and the CPU path call these
same functions.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence

import torch
import torch.nn.functional as F

logger = logging.getLogger(__name__)
logger.setLevel(os.getenv("VIDEOSEG_O3_LOGGING_LEVEL", "WARNING"))

__all__ = ["aux_seg_loss", "inject_mask_log_probs", "mask_log_prob", "seg_target_positions"]

_ON_MISMATCH = ("raise", "skip")


def _check_float(name: str, x: torch.Tensor) -> None:
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(x).__name__}")
    if not x.is_floating_point():
        raise TypeError(f"{name} must be a floating-point tensor, got dtype {x.dtype}")


def mask_log_prob(current_logits: torch.Tensor, rollout_logits: torch.Tensor, grid: int = 32,
                  threshold: float = 0.5) -> torch.Tensor:
    """Per-mask Bernoulli log-likelihood of the rollout's own binarised mask under the current logits (spec §5.2).

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


def seg_target_positions(target_ids: torch.Tensor, seg_token_id: int) -> list[torch.Tensor]:
    """Positions whose TARGET token is ``[SEG]``, one long tensor per row (spec §5.2).

    Args:
        target_ids: [B, T] or [T] int, the ids each log-prob position predicts (``input_ids[:, 1:]``).
        seg_token_id: id of the ``[SEG]`` token.

    Returns:
        list of B (1 for a [T] input) 1-D long tensors of positions, increasing.

    Example:
        >>> seg_target_positions(torch.tensor([[5, 9, 7, 9], [1, 2, 3, 4]]), 9)
        [tensor([1, 3]), tensor([], dtype=torch.int64)]
    """
    if not isinstance(target_ids, torch.Tensor) or target_ids.is_floating_point() or target_ids.is_complex():
        raise TypeError(f"target_ids must be an integer torch.Tensor, got "
                        f"{getattr(target_ids, 'dtype', type(target_ids).__name__)}")
    if target_ids.dim() not in (1, 2):
        raise ValueError(f"target_ids must be [B, T] or [T], got shape {tuple(target_ids.shape)}")
    rows = target_ids[None] if target_ids.dim() == 1 else target_ids
    return [torch.nonzero(row == seg_token_id, as_tuple=False).flatten() for row in rows]


def _split_values(mask_log_probs: torch.Tensor | Sequence[torch.Tensor], batch: int, counts: list[int],
                  on_mismatch: str) -> list[torch.Tensor | None]:
    """Per-row value vectors (``None`` = skip that row)."""
    if isinstance(mask_log_probs, torch.Tensor):
        _check_float("mask_log_probs", mask_log_probs)
        if mask_log_probs.dim() != 1:
            raise ValueError(f"mask_log_probs as one tensor must be 1-D (consumed row-major), got shape "
                             f"{tuple(mask_log_probs.shape)}")
        total = sum(counts)
        if mask_log_probs.shape[0] != total:
            msg = (f"inject_mask_log_probs: {total} [SEG] target positions in the batch (per row {counts}) but "
                   f"{mask_log_probs.shape[0]} mask log-probs in the flat tensor")
            if on_mismatch == "raise":
                raise ValueError(msg)
            # a flat tensor cannot be attributed to rows once the total is off: every row is left unchanged
            logger.warning("%s; skipping the injection for every row", msg)
            return [None] * batch
        return list(torch.split(mask_log_probs, counts))
    if not isinstance(mask_log_probs, Sequence) or isinstance(mask_log_probs, str):
        raise TypeError(f"mask_log_probs must be a 1-D tensor or a list of B 1-D tensors, got "
                        f"{type(mask_log_probs).__name__}")
    if len(mask_log_probs) != batch:
        raise ValueError(f"mask_log_probs is a list of {len(mask_log_probs)} tensors but the batch has {batch} rows")
    out: list[torch.Tensor | None] = []
    for row, (vals, count) in enumerate(zip(mask_log_probs, counts, strict=True)):
        _check_float(f"mask_log_probs[{row}]", vals)
        if vals.dim() != 1:
            raise ValueError(f"mask_log_probs[{row}] must be 1-D, got shape {tuple(vals.shape)}")
        if vals.shape[0] != count:
            msg = (f"inject_mask_log_probs: row {row} has {count} [SEG] target positions but {vals.shape[0]} "
                   "mask log-probs")
            if on_mismatch == "raise":
                raise ValueError(msg)
            logger.warning("%s; leaving the row unchanged (released-code behaviour, spec §5.2)", msg)
            out.append(None)
            continue
        out.append(vals)
    return out


def inject_mask_log_probs(token_log_probs: torch.Tensor, target_ids: torch.Tensor, seg_token_id: int,
                          mask_log_probs: torch.Tensor | Sequence[torch.Tensor],
                          on_mismatch: str = "raise") -> torch.Tensor:
    """Add each [SEG]'s mask log-prob to the log-prob of the position that predicts that [SEG] (spec §5.2).

    ``out[b, pos_j] = token_log_probs[b, pos_j] + mask_log_probs_b[j]`` for the j-th position (in order) whose target
    token is ``seg_token_id``; every other position is copied. Out of place, so gradients flow into both
    ``token_log_probs`` and ``mask_log_probs``. The result is float32 even when ``token_log_probs`` is bf16/fp16
    (a mean log-likelihood near -0.1 added to a bf16 log-prob would lose most of its bits).

    Args:
        token_log_probs: [B, T] or [T] float; element t is log p(target_ids[t]).
        target_ids: same shape, int; the token each position predicts (the caller passes ``input_ids[:, 1:]``).
        seg_token_id: id of ``[SEG]``.
        mask_log_probs: for a [T] input, a 1-D tensor; for [B, T], a list of B 1-D tensors (one per row) or one flat
            1-D tensor consumed in row-major order.
        on_mismatch: what to do when a row's number of [SEG] targets differs from its number of values:
            ``"raise"`` (ValueError naming the row and both counts) or ``"skip"`` (leave that row unchanged and log
            a warning: the released code's behaviour). With a flat tensor only the total can be checked, so
            ``"skip"`` leaves every row unchanged.

    Returns:
        [B, T] or [T] float32 (the input's shape).

    Example:
        >>> lp = torch.tensor([-1.0, -2.0, -3.0])
        >>> inject_mask_log_probs(lp, torch.tensor([4, 7, 4]), 7, torch.tensor([-0.5]))
        tensor([-1.0000, -2.5000, -3.0000])
    """
    if on_mismatch not in _ON_MISMATCH:
        raise ValueError(f"on_mismatch must be one of {_ON_MISMATCH}, got {on_mismatch!r}")
    _check_float("token_log_probs", token_log_probs)
    if token_log_probs.dim() not in (1, 2):
        raise ValueError(f"token_log_probs must be [B, T] or [T], got shape {tuple(token_log_probs.shape)}")
    if target_ids.shape != token_log_probs.shape:
        raise ValueError(f"target_ids shape {tuple(target_ids.shape)} must equal token_log_probs shape "
                         f"{tuple(token_log_probs.shape)} (pass input_ids[:, 1:] for log-probs of logits[:, :-1])")
    squeeze = token_log_probs.dim() == 1
    if squeeze:
        if not isinstance(mask_log_probs, torch.Tensor):
            raise TypeError("for a [T] token_log_probs, mask_log_probs must be one 1-D tensor, got "
                            f"{type(mask_log_probs).__name__}")
        mask_log_probs = [mask_log_probs]
    lp = token_log_probs.float()
    lp2 = lp[None] if squeeze else lp  # [B, T]
    positions = seg_target_positions(target_ids, seg_token_id)
    counts = [int(p.numel()) for p in positions]
    values = _split_values(mask_log_probs, lp2.shape[0], counts, on_mismatch)

    rows, cols, vals = [], [], []
    for b, (pos, v) in enumerate(zip(positions, values, strict=True)):
        if v is None or pos.numel() == 0:
            continue
        rows.append(torch.full_like(pos, b))
        cols.append(pos)
        vals.append(v.to(device=lp2.device, dtype=torch.float32))
    if not rows:
        out = lp2.clone()
    else:
        index = (torch.cat(rows).to(lp2.device), torch.cat(cols).to(lp2.device))
        out = lp2.index_put(index, torch.cat(vals), accumulate=True)  # out of place: grads reach both inputs
    return out[0] if squeeze else out


def aux_seg_loss(pred_logits: torch.Tensor, gt_masks: torch.Tensor) -> torch.Tensor:
    """Supervised BCE + Dice mask loss, averaged over masks (spec §5.5).

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
