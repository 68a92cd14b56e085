# Copyright 2026 The videoseg-o3-verl authors. Licensed under the Apache License, Version 2.0.
"""DAVIS-style video segmentation metrics: region similarity J, boundary F-measure F and J&F (docs/method.md §11).

All mask functions take ``[T, H, W]`` (or a single ``[H, W]`` frame, treated as ``T = 1``) arrays of ANY dtype
and binarise them with ``mask > 0`` (so ``0/1``, ``0/255``, bool and logits-already-thresholded inputs all
work; NaN counts as background). Results are float64 per-frame arrays; :func:`jf_score` averages them.

Definitions (identical to the DAVIS toolkit as used by the ReVOS/Sa2VA evaluation scripts):

* ``J = |P ∩ G| / |P ∪ G|`` per frame, ``1`` when the union is empty.
* ``F``: 1-pixel boundary maps (:func:`seg2bmap`), tolerance ``r = ceil(bound_th * sqrt(H² + W²))`` pixels
  (``bound_th >= 1`` is an absolute integer radius), dilation by the disk ``{(y, x): y² + x² <= r²}``,
  ``precision = |B_P ∩ dil(B_G)| / |B_P|``, ``recall = |B_G ∩ dil(B_P)| / |B_G|``, with the special cases
  no-pred/GT-boundary → ``P=1, R=0``; pred/no-GT → ``P=0, R=1``; neither → ``P=R=1``; ``F = 2PR/(P+R)``
  (``0`` when ``P+R = 0``).

Implementation. All counts come from :mod:`videoseg_reward._packed_masks`: the masks are packed 8 pixels per
byte (8 horizontal bands of a frame share a byte; the prediction's and the ground truth's frames of a chunk lie in
one array), boundary maps are computed with byte-wise logic, and the disk dilation is a short plan of shifted ORs
of the packed boundary map (the disk as a Minkowski sum of point pairs plus a few single points: 12 ORs for
radius 8), chunk by chunk of frames; columns holding no pixel of either mask are cropped. Everything is exact
integer arithmetic, so the values equal the toolkit's to the last bit; the tests check this against the plain
per-frame reference :mod:`videoseg_reward._davis_reference`, and ``benchmarks/jf_bench.py`` against the official
library calls.
"""

from __future__ import annotations

import math
from typing import Any, NamedTuple

import numpy as np

from videoseg_reward._packed_masks import boundary_maps, frame_counts

DEFAULT_BOUND_TH = 0.008
"""DAVIS boundary tolerance as a fraction of the image diagonal."""

__all__ = [
    "DEFAULT_BOUND_TH",
    "JFScore",
    "binarize_masks",
    "bound_pix",
    "boundary_f_measure",
    "boundary_precision_recall",
    "disk",
    "interval_mask",
    "jf_per_frame",
    "jf_score",
    "pixel_accuracy",
    "region_similarity",
    "robustness",
    "seg2bmap",
    "temporal_iou",
    "temporal_iou_masks",
    "temporal_precision",
]


class JFScore(NamedTuple):
    """Mean J, F and J&F of one expression (means over all frames).

    Besides attribute access, integer indexing and tuple unpacking (``j, f, jf = score``), the string keys
    ``"J"``, ``"F"``, ``"JF"`` and ``"J&F"`` work: ``score["J&F"] == score.JF``.
    """

    J: float
    """Mean region similarity over frames, in [0, 1]."""
    F: float
    """Mean boundary F-measure over frames, in [0, 1]."""
    JF: float
    """``(J + F) / 2``."""

    def __getitem__(self, key: Any) -> Any:  # type: ignore[override]
        if isinstance(key, str):
            field = _JF_KEYS.get(key)
            if field is None:
                raise KeyError(f"JFScore has no key {key!r}; use one of {sorted(_JF_KEYS)} or an int index")
            return getattr(self, field)
        return tuple.__getitem__(self, key)

    def as_dict(self) -> dict[str, float]:
        """``{"J": ..., "F": ..., "J&F": ...}`` (the usual report keys)."""
        return {"J": self.J, "F": self.F, "J&F": self.JF}


_JF_KEYS = {"J": "J", "F": "F", "JF": "JF", "J&F": "JF"}


# ----------------------------------------------------------------------------------------------------------
# Input handling
# ----------------------------------------------------------------------------------------------------------


def binarize_masks(mask: Any, name: str = "mask") -> np.ndarray:
    """Convert ``[H, W]`` or ``[T, H, W]`` input of any dtype to a ``[T, H, W]`` bool array (``mask > 0``).

    Raises:
        ValueError: if the array is not 2-D/3-D or a spatial side is 0.
    """
    arr = np.asarray(mask)
    if arr.ndim == 2:
        arr = arr[None]
    if arr.ndim != 3:
        raise ValueError(f"{name}: expected a [H, W] or [T, H, W] mask array, got shape {arr.shape}")
    if arr.shape[1] == 0 or arr.shape[2] == 0:
        raise ValueError(f"{name}: spatial size must be at least 1x1, got shape {arr.shape}")
    if arr.dtype == np.bool_:
        return arr
    if arr.dtype.kind not in "biuf":
        raise ValueError(f"{name}: expected a numeric or bool array, got dtype {arr.dtype}")
    return arr > 0


def _pair(pred: Any, gt: Any) -> tuple[np.ndarray, np.ndarray]:
    p = binarize_masks(pred, "pred")
    g = binarize_masks(gt, "gt")
    if p.shape != g.shape:
        raise ValueError(f"pred and gt must have the same shape, got pred {p.shape} vs gt {g.shape} "
                         "(a [H, W] input counts as [1, H, W])")
    return p, g


def _frame_counts(mask: np.ndarray) -> np.ndarray:
    """Number of True pixels per frame: ``[T, H, W] bool -> [T] int64``."""
    # np.count_nonzero without `axis` takes numpy's fast path; with `axis` it sums an int copy.
    return np.array([np.count_nonzero(frame) for frame in mask], dtype=np.int64)


def bound_pix(height: int, width: int, bound_th: float = DEFAULT_BOUND_TH) -> int:
    """Boundary tolerance radius in pixels: ``ceil(bound_th * ||(H, W)||₂)`` if ``bound_th < 1`` else ``bound_th``.

    Example:
        >>> bound_pix(480, 854)  # ceil(0.008 * 979.65...) = ceil(7.837...)
        8
    """
    if not (isinstance(bound_th, (int, float, np.integer, np.floating)) and math.isfinite(bound_th)) \
            or bound_th <= 0:
        raise ValueError(f"bound_th must be a finite number > 0, got {bound_th!r}")
    if bound_th >= 1:
        if float(bound_th) != int(bound_th):
            raise ValueError(f"bound_th >= 1 is an absolute radius in pixels and must be integral, got {bound_th}")
        return int(bound_th)
    # Same arithmetic as the toolkit: np.linalg.norm of the frame shape (float64), then ceil.
    return int(np.ceil(bound_th * np.linalg.norm([height, width])))


def disk(radius: int) -> np.ndarray:
    """Disk structuring element ``[2r+1, 2r+1] bool``: all ``(y, x)`` with ``y² + x² <= r²`` (skimage definition).

    Example:
        >>> disk(1).astype(int).tolist()
        [[0, 1, 0], [1, 1, 1], [0, 1, 0]]
    """
    r = int(radius)
    if r < 0:
        raise ValueError(f"disk radius must be >= 0, got {radius}")
    yy, xx = np.mgrid[-r : r + 1, -r : r + 1]
    return (yy * yy + xx * xx) <= r * r


# ----------------------------------------------------------------------------------------------------------
# J
# ----------------------------------------------------------------------------------------------------------


def region_similarity(pred: Any, gt: Any) -> np.ndarray:
    """Per-frame region similarity (Jaccard) ``J = |P ∩ G| / |P ∪ G|``, ``1`` where the union is empty.

    Args:
        pred: ``[T, H, W]`` or ``[H, W]`` predicted masks, any dtype (binarised with ``> 0``).
        gt: same shape as ``pred``.

    Returns:
        ``[T]`` float64 in [0, 1].

    Example:
        >>> p = np.zeros((4, 4), bool); p[:2, :2] = True   # 4 pixels
        >>> g = np.zeros((4, 4), bool); g[:2, :] = True    # 8 pixels, contains p
        >>> region_similarity(p, g).tolist()
        [0.5]
    """
    p, g = _pair(pred, gt)
    counts = frame_counts(p, g, None)
    return _region_similarity(counts.inter, counts.union)


def _region_similarity(inter: np.ndarray, union: np.ndarray) -> np.ndarray:
    """``J`` from per-frame intersection and union counts (``1`` where the union is empty)."""
    out = np.ones(inter.shape, dtype=np.float64)
    nz = union > 0
    out[nz] = inter[nz] / union[nz]
    return out


# ----------------------------------------------------------------------------------------------------------
# F
# ----------------------------------------------------------------------------------------------------------


def seg2bmap(mask: Any) -> np.ndarray:
    """DAVIS 1-pixel boundary map: ``[T, H, W]`` (or ``[H, W]``) → ``[T, H, W] bool``.

    A pixel is on the boundary if it differs from its right, bottom or bottom-right neighbour, where pixels
    outside the image count as background — except that the LAST ROW only compares with the right neighbour,
    the LAST COLUMN only with the bottom neighbour, and the bottom-right pixel is never a boundary (the
    toolkit overwrites those after the generic XOR). A full mask therefore has no boundary at all.

    Example:
        >>> m = np.zeros((4, 4), bool); m[1:3, 1:3] = True
        >>> seg2bmap(m)[0].astype(int).tolist()
        [[1, 1, 1, 0], [1, 0, 1, 0], [1, 1, 1, 0], [0, 0, 0, 0]]
    """
    return boundary_maps(binarize_masks(mask))


def boundary_precision_recall(
    pred: Any, gt: Any, bound_th: float = DEFAULT_BOUND_TH
) -> tuple[np.ndarray, np.ndarray]:
    """Per-frame boundary precision and recall (with the DAVIS special cases for empty boundaries).

    Args:
        pred: ``[T, H, W]`` or ``[H, W]`` predicted masks, any dtype (``> 0``).
        gt: same shape as ``pred``.
        bound_th: tolerance, fraction of the diagonal if ``< 1`` else an integral radius in pixels.

    Returns:
        ``(precision [T] float64, recall [T] float64)``.
    """
    p, g = _pair(pred, gt)
    counts = frame_counts(p, g, disk(bound_pix(p.shape[1], p.shape[2], bound_th)))
    return _precision_recall(counts.n_pred, counts.n_gt, counts.match_pred, counts.match_gt)


def _precision_recall(
    n_p: np.ndarray, n_g: np.ndarray, match_p: np.ndarray, match_g: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Precision ``|B_P ∩ dil(B_G)| / |B_P|`` and recall ``|B_G ∩ dil(B_P)| / |B_G|`` from per-frame counts."""
    precision = np.empty(n_p.shape, dtype=np.float64)
    recall = np.empty(n_p.shape, dtype=np.float64)
    both = (n_p > 0) & (n_g > 0)
    precision[both] = match_p[both] / n_p[both]
    recall[both] = match_g[both] / n_g[both]
    only_gt = (n_p == 0) & (n_g > 0)
    precision[only_gt], recall[only_gt] = 1.0, 0.0
    only_pred = (n_p > 0) & (n_g == 0)
    precision[only_pred], recall[only_pred] = 0.0, 1.0
    neither = (n_p == 0) & (n_g == 0)
    precision[neither], recall[neither] = 1.0, 1.0
    return precision, recall


def _f_from_pr(precision: np.ndarray, recall: np.ndarray) -> np.ndarray:
    denom = precision + recall
    f = np.zeros_like(precision)
    nz = denom != 0
    f[nz] = 2 * precision[nz] * recall[nz] / denom[nz]
    return f


def boundary_f_measure(pred: Any, gt: Any, bound_th: float = DEFAULT_BOUND_TH) -> np.ndarray:
    """Per-frame DAVIS boundary F-measure.

    Args:
        pred: ``[T, H, W]`` or ``[H, W]`` predicted masks, any dtype (binarised with ``> 0``).
        gt: same shape as ``pred``.
        bound_th: tolerance, fraction of the image diagonal if ``< 1`` (default 0.008), else an integral radius
            in pixels.

    Returns:
        ``[T]`` float64 in [0, 1].

    Example:
        >>> m = np.zeros((1, 20, 20), bool); m[0, 5:15, 5:15] = True
        >>> boundary_f_measure(m, m).tolist(), boundary_f_measure(m, np.zeros_like(m)).tolist()
        ([1.0], [0.0])
    """
    return _f_from_pr(*boundary_precision_recall(pred, gt, bound_th))


def jf_per_frame(pred: Any, gt: Any, bound_th: float = DEFAULT_BOUND_TH) -> tuple[np.ndarray, np.ndarray]:
    """Per-frame ``(J [T], F [T])`` float64 arrays (inputs as in :func:`region_similarity`)."""
    p, g = _pair(pred, gt)
    counts = frame_counts(p, g, disk(bound_pix(p.shape[1], p.shape[2], bound_th)))
    precision, recall = _precision_recall(counts.n_pred, counts.n_gt, counts.match_pred, counts.match_gt)
    return _region_similarity(counts.inter, counts.union), _f_from_pr(precision, recall)


def jf_score(pred: Any, gt: Any, bound_th: float = DEFAULT_BOUND_TH) -> JFScore:
    """J, F and J&F of one expression: means over ALL frames, ``JF = (J + F) / 2``.

    Args:
        pred: ``[T, H, W]`` or ``[H, W]`` predicted masks, any dtype (binarised with ``> 0``), ``T >= 1``.
        gt: same shape as ``pred``.
        bound_th: boundary tolerance (see :func:`boundary_f_measure`).

    Returns:
        :class:`JFScore` of Python floats.

    Example:
        >>> g = np.zeros((2, 8, 8), bool); g[:, 2:6, 2:6] = True
        >>> s = jf_score(g, g)
        >>> (s.J, s["F"], s["J&F"])
        (1.0, 1.0, 1.0)
        >>> jf_score(np.zeros_like(g), g)["J&F"]   # nothing predicted: J = 0, F = 0
        0.0
    """
    j, f = jf_per_frame(pred, gt, bound_th)
    if j.size == 0:
        raise ValueError("jf_score needs at least one frame, got T = 0")
    j_mean = float(j.mean())
    f_mean = float(f.mean())
    return JFScore(J=j_mean, F=f_mean, JF=(j_mean + f_mean) / 2.0)


# ----------------------------------------------------------------------------------------------------------
# ReVOS extras: A (pixel accuracy) and R (robustness)
# ----------------------------------------------------------------------------------------------------------


def pixel_accuracy(pred: Any, gt: Any) -> np.ndarray:
    """ReVOS ``A``: per-frame fraction of pixels where the binarised prediction equals the GT, ``[T]`` float64.

    Example:
        >>> pixel_accuracy(np.array([[1, 0], [0, 0]]), np.array([[1, 1], [0, 0]])).tolist()
        [0.75]
    """
    p, g = _pair(pred, gt)
    hw = p.shape[1] * p.shape[2]
    return _frame_counts(p == g) / float(hw)


def robustness(pred: Any, gt: Any, foreground: Any, eps: float = 1e-6) -> np.ndarray:
    """ReVOS ``R``: per frame ``max(1 - |P ∩ ¬G| / (|foreground| + eps), 0)``, ``[T]`` float64 (the ReVOS script).

    ``foreground`` is the union of all annotated objects of the video in that frame (``mask_dict_foreground``).
    A frame with an empty foreground scores ``1`` if nothing is falsely predicted and ``0`` otherwise.

    Example:
        >>> fg = np.ones((2, 2)); gt = np.array([[1, 0], [0, 0]]); pred = np.array([[1, 1], [0, 0]])
        >>> robustness(pred, gt, fg, eps=0).tolist()   # 1 false-positive pixel / 4 foreground pixels
        [0.75]
    """
    p, g = _pair(pred, gt)
    fg = binarize_masks(foreground, "foreground")
    if fg.shape != p.shape:
        raise ValueError(f"foreground must have the shape of pred/gt {p.shape}, got {fg.shape}")
    neg = _frame_counts(p & ~g).astype(np.float64)
    pos = _frame_counts(fg).astype(np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        r = 1.0 - neg / (pos + eps)
    return np.where(np.isnan(r), 1.0, np.maximum(r, 0.0))


# ----------------------------------------------------------------------------------------------------------
# Temporal helpers
# ----------------------------------------------------------------------------------------------------------


def interval_mask(start: int, end: int, length: int, *, inclusive: bool = True) -> np.ndarray:
    """``[length] bool`` frame mask of ``[start, end]`` (``inclusive``) or ``[start, end)``, clipped to the video.

    Example:
        >>> interval_mask(1, 3, 5).astype(int).tolist(), interval_mask(1, 3, 5, inclusive=False).astype(int).tolist()
        ([0, 1, 1, 1, 0], [0, 1, 1, 0, 0])
    """
    if length < 0:
        raise ValueError(f"length must be >= 0, got {length}")
    m = np.zeros(int(length), dtype=bool)
    stop = int(end) + 1 if inclusive else int(end)
    lo, hi = max(int(start), 0), min(stop, int(length))
    if hi > lo:
        m[lo:hi] = True
    return m


def temporal_iou(pred_start: int, pred_end: int, gt_start: int, gt_end: int, inclusive: bool = True) -> float:
    """IoU of two frame intervals. ``inclusive=True``: ``[s, e]`` has ``e - s + 1`` frames; else ``[s, e)``.

    An interval whose end precedes its start (or equals it when end-exclusive) is empty; two empty intervals
    have IoU 1 (the same convention as ``J``).

    Example:
        >>> temporal_iou(0, 4, 2, 6)              # [0..4] vs [2..6]: 3 shared of 7
        0.42857142857142855
        >>> temporal_iou(0, 4, 2, 6, inclusive=False)  # [0,4) vs [2,6): 2 shared of 6
        0.3333333333333333
    """
    add = 1 if inclusive else 0
    len_p = max(int(pred_end) - int(pred_start) + add, 0)
    len_g = max(int(gt_end) - int(gt_start) + add, 0)
    inter = max(min(int(pred_end), int(gt_end)) - max(int(pred_start), int(gt_start)) + add, 0)
    if len_p == 0 or len_g == 0:
        inter = 0
    union = len_p + len_g - inter
    return 1.0 if union == 0 else inter / union


def _as_frame_vector(x: Any, name: str) -> np.ndarray:
    arr = np.asarray(x, dtype=np.float64)
    if arr.ndim != 1:
        raise ValueError(f"{name}: expected a 1-D per-frame sequence, got shape {arr.shape}")
    return arr > 0.5


def temporal_precision(pred_interval_mask: Any, existence: Any) -> float:
    """``|pred ∩ existence| / |pred|`` over frames (``> 0.5`` binarises both); an empty prediction gives 0.

    Example:
        >>> temporal_precision([0, 1, 1, 0], [0, 1, 0, 0])
        0.5
    """
    p = _as_frame_vector(pred_interval_mask, "pred_interval_mask")
    g = _as_frame_vector(existence, "existence")
    if p.shape != g.shape:
        raise ValueError(f"pred_interval_mask and existence differ in length: {p.shape[0]} vs {g.shape[0]}")
    n = int(p.sum())
    return 0.0 if n == 0 else int((p & g).sum()) / n


def temporal_iou_masks(pred_interval_mask: Any, existence: Any) -> float:
    """``|pred ∩ existence| / |pred ∪ existence|`` over frames (``> 0.5``); empty union gives 1.

    Example:
        >>> temporal_iou_masks([0, 1, 1, 0], [0, 1, 0, 1])
        0.3333333333333333
    """
    p = _as_frame_vector(pred_interval_mask, "pred_interval_mask")
    g = _as_frame_vector(existence, "existence")
    if p.shape != g.shape:
        raise ValueError(f"pred_interval_mask and existence differ in length: {p.shape[0]} vs {g.shape[0]}")
    union = int((p | g).sum())
    return 1.0 if union == 0 else int((p & g).sum()) / union
