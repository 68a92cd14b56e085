# Copyright 2026 The videoseg-o3-verl authors. Licensed under the Apache License, Version 2.0.
"""Plain per-frame reference of the DAVIS J/F algorithm, for the unit tests only (``benchmarks/jf_bench.py`` times
against the official library calls instead, which need OpenCV and scikit-image).

Written for obviousness, not speed: one frame at a time, the boundary map built with explicit shifted copies,
the disk built from its definition, and the tolerance test done with an explicit binary dilation
(``scipy.ndimage.binary_dilation``, equivalent to ``cv2.dilate`` with a 0 border). The fast implementation in
:mod:`videoseg_reward.metrics` must agree with this module exactly.
"""

from __future__ import annotations

import math

import numpy as np
from scipy import ndimage


def ref_disk(radius: int) -> np.ndarray:
    """``[2r+1, 2r+1] bool`` disk, built with a double loop over all offsets."""
    r = int(radius)
    out = np.zeros((2 * r + 1, 2 * r + 1), dtype=bool)
    for dy in range(-r, r + 1):
        for dx in range(-r, r + 1):
            out[dy + r, dx + r] = dy * dy + dx * dx <= r * r
    return out


def ref_seg2bmap(seg: np.ndarray) -> np.ndarray:
    """Boundary map of one ``[H, W]`` frame, step by step as the DAVIS toolkit does it (no resizing)."""
    seg = np.asarray(seg) > 0
    h, w = seg.shape
    east = np.zeros((h, w), dtype=bool)
    south = np.zeros((h, w), dtype=bool)
    south_east = np.zeros((h, w), dtype=bool)
    east[:, : w - 1] = seg[:, 1:]
    south[: h - 1, :] = seg[1:, :]
    south_east[: h - 1, : w - 1] = seg[1:, 1:]
    b = np.logical_or(np.logical_or(seg != east, seg != south), seg != south_east)
    b[h - 1, :] = seg[h - 1, :] != east[h - 1, :]
    b[:, w - 1] = seg[:, w - 1] != south[:, w - 1]
    b[h - 1, w - 1] = False
    return b


def ref_seg2bmap_loops(seg: np.ndarray) -> np.ndarray:
    """Same boundary map, pixel by pixel (only for tiny test images)."""
    seg = np.asarray(seg) > 0
    h, w = seg.shape

    def at(y: int, x: int) -> bool:
        return bool(seg[y, x]) if (y < h and x < w) else False

    out = np.zeros((h, w), dtype=bool)
    for y in range(h):
        for x in range(w):
            v = bool(seg[y, x])
            if y == h - 1 and x == w - 1:
                out[y, x] = False
            elif x == w - 1:  # last column: only the pixel below
                out[y, x] = v != at(y + 1, x)
            elif y == h - 1:  # last row: only the pixel to the right
                out[y, x] = v != at(y, x + 1)
            else:
                out[y, x] = v != at(y, x + 1) or v != at(y + 1, x) or v != at(y + 1, x + 1)
    return out


def ref_bound_pix(h: int, w: int, bound_th: float) -> int:
    """``ceil(bound_th * sqrt(H² + W²))`` for ``bound_th < 1`` else ``bound_th``."""
    if bound_th >= 1:
        return int(bound_th)
    return int(math.ceil(bound_th * math.sqrt(h * h + w * w)))


def ref_j_frame(pred: np.ndarray, gt: np.ndarray) -> float:
    """Region similarity of one frame."""
    p, g = np.asarray(pred) > 0, np.asarray(gt) > 0
    union = int(np.logical_or(p, g).sum())
    if union == 0:
        return 1.0
    return int(np.logical_and(p, g).sum()) / union


def ref_f_frame(pred: np.ndarray, gt: np.ndarray, bound_th: float = 0.008) -> float:
    """Boundary F-measure of one frame."""
    p, g = np.asarray(pred) > 0, np.asarray(gt) > 0
    radius = ref_bound_pix(p.shape[0], p.shape[1], bound_th)
    bp, bg = ref_seg2bmap(p), ref_seg2bmap(g)
    fp = ref_disk(radius)
    p_dil = ndimage.binary_dilation(bp, structure=fp, border_value=0)
    g_dil = ndimage.binary_dilation(bg, structure=fp, border_value=0)
    n_p, n_g = int(bp.sum()), int(bg.sum())
    if n_p == 0 and n_g > 0:
        precision, recall = 1.0, 0.0
    elif n_p > 0 and n_g == 0:
        precision, recall = 0.0, 1.0
    elif n_p == 0 and n_g == 0:
        precision, recall = 1.0, 1.0
    else:
        precision = int(np.logical_and(bp, g_dil).sum()) / float(n_p)
        recall = int(np.logical_and(bg, p_dil).sum()) / float(n_g)
    if precision + recall == 0:
        return 0.0
    return 2 * precision * recall / (precision + recall)


def ref_jf(pred: np.ndarray, gt: np.ndarray, bound_th: float = 0.008) -> tuple[list[float], list[float]]:
    """Per-frame J and F lists of ``[T, H, W]`` (or ``[H, W]``) arrays, one frame at a time."""
    pred, gt = np.asarray(pred), np.asarray(gt)
    if pred.ndim == 2:
        pred, gt = pred[None], gt[None]
    js = [ref_j_frame(pred[t], gt[t]) for t in range(pred.shape[0])]
    fs = [ref_f_frame(pred[t], gt[t], bound_th) for t in range(pred.shape[0])]
    return js, fs
