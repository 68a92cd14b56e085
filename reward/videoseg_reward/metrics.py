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

Bounding boxes. Nothing outside the union of both masks can add to ``J`` or hold a boundary pixel except a one-pixel
margin above and left of it, so each frame is cropped to that union's bounding box grown by one pixel
(:func:`_union_boxes`) before any full-resolution work; small objects cost in proportion to their box, not the frame.

Fast path for F. A boundary pixel ``p`` of one map lies in the disk dilation of the other map ``B`` iff some
pixel ``q`` of ``B`` has ``|p - q|² <= r²``. Instead of dilating two full-resolution images per frame, the
boundary pixels of all frames are collected as sorted integer keys and, for each row offset ``dy`` in
``[-r, r]``, one ``searchsorted`` tells whether a pixel of ``B`` lies within the horizontal half-width
``isqrt(r² - dy²)`` (see :func:`_count_within`). Everything is integer arithmetic, so the counts equal those of
the dilation-based definition exactly; the tests check this against the plain per-frame reference
:mod:`videoseg_reward._davis_reference`.
"""

from __future__ import annotations

import math
from typing import Any, NamedTuple

import numpy as np

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
    return _region_similarity(p, g)


def _region_similarity(p: np.ndarray, g: np.ndarray, boxes: list[_Box | None] | None = None) -> np.ndarray:
    """Per-frame J counted inside each frame's union bounding box (nothing outside it is foreground)."""
    if boxes is None:
        boxes = _union_boxes(p, g)
    out = np.ones(p.shape[0], dtype=np.float64)
    for t, box in enumerate(boxes):
        if box is None:  # empty union: J = 1
            continue
        pc, gc = p[t, box.y0 : box.y1, box.x0 : box.x1], g[t, box.y0 : box.y1, box.x0 : box.x1]
        out[t] = np.count_nonzero(pc & gc) / np.count_nonzero(pc | gc)
    return out


class _Box(NamedTuple):
    """Crop ``[y0, y1) x [x0, x1)`` of one frame: the union bounding box of both masks grown by one pixel on each
    side (clipped to the image). Every boundary pixel of either mask lies inside it (see :func:`_union_boxes`)."""

    y0: int
    y1: int
    x0: int
    x1: int


def _union_boxes(p: np.ndarray, g: np.ndarray) -> list[_Box | None]:
    """Per frame, the one-pixel-grown bounding box of ``p | g`` (``None`` where both masks are empty).

    Found from the row projections of the whole stack and the column projections of the occupied rows (``any``
    along one axis), which is cheaper than any full-frame binary operation. The one-pixel margin matters only
    above and left of the box: a background pixel there is a boundary pixel when its bottom/right neighbour is
    foreground. The margin row below (column right of) the box is all background with background neighbours, so
    the toolkit's last-row (last-column) override, which :func:`_seg2bmap` applies to the crop's last row
    (column), gives ``False`` there as the full-frame map does; when the crop reaches the image's last row
    (column), the override is the toolkit's own.
    """
    _, h, w = p.shape
    rows = p.any(axis=2)
    rows |= g.any(axis=2)
    boxes: list[_Box | None] = []
    for t, row in enumerate(rows):
        ys = np.flatnonzero(row)
        if ys.size == 0:
            boxes.append(None)
            continue
        band = slice(int(ys[0]), int(ys[-1]) + 1)  # the column projection only needs the occupied rows
        col = p[t, band].any(axis=0)
        col |= g[t, band].any(axis=0)
        xs = np.flatnonzero(col)
        boxes.append(_Box(max(int(ys[0]) - 1, 0), min(int(ys[-1]) + 2, h), max(int(xs[0]) - 1, 0),
                          min(int(xs[-1]) + 2, w)))
    return boxes


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
    return _seg2bmap(binarize_masks(mask))


def _seg2bmap(seg: np.ndarray) -> np.ndarray:
    """Batched boundary map of a ``[T, H, W]`` bool array (the toolkit's rules, computed on views).

    Interior pixel ``(y, x)`` (``y < H-1``, ``x < W-1``): ``c != right or c != down or c != down-right``.
    Last row: ``c != right``; last column: ``c != down``; bottom-right corner: False.
    """
    b = np.empty_like(seg)
    c = seg[:, :-1, :-1]
    inner = b[:, :-1, :-1]
    np.not_equal(c, seg[:, :-1, 1:], out=inner)
    inner |= c != seg[:, 1:, :-1]
    inner |= c != seg[:, 1:, 1:]
    np.not_equal(seg[:, -1, :-1], seg[:, -1, 1:], out=b[:, -1, :-1])
    np.not_equal(seg[:, :-1, -1], seg[:, 1:, -1], out=b[:, :-1, -1])
    b[:, -1, -1] = False
    return b


class _Points(NamedTuple):
    """Boundary pixels of all frames, sorted by ``(t, y, x)``; every field is ``[N] int64``."""

    t: np.ndarray
    y: np.ndarray
    x: np.ndarray
    key: np.ndarray
    """``(t * (H + r) + y) * (W + r + 1) + x``: row-major index in a frame stack padded by ``r`` empty rows
    below each frame and ``r + 1`` empty columns right of each row."""


def _boundary_points(mask: np.ndarray, boxes: list[_Box | None], radius: int) -> _Points:
    """Boundary pixels of every frame of ``mask`` ``[T, H, W]``, computed by :func:`_seg2bmap` on the crops."""
    _, h, w = mask.shape
    ts, ys, xs = [], [], []
    for t, box in enumerate(boxes):
        if box is None:
            continue
        bmap = _seg2bmap(mask[t, box.y0 : box.y1, box.x0 : box.x1][None])[0]
        y, x = np.divmod(np.flatnonzero(bmap), box.x1 - box.x0)  # row-major, so (y, x) comes out sorted
        ts.append(np.full(len(y), t, dtype=np.int64))
        ys.append(y + box.y0)
        xs.append(x + box.x0)
    if not ts:
        empty = np.zeros(0, dtype=np.int64)
        return _Points(empty, empty, empty, empty)
    t, y, x = np.concatenate(ts), np.concatenate(ys), np.concatenate(xs)
    key = (t * (h + radius) + y) * (w + radius + 1) + x
    return _Points(t, y, x, key)


def _count_within(src: _Points, dst: _Points, radius: int, shape: tuple[int, int, int]) -> np.ndarray:
    """Per frame, how many ``src`` points have a ``dst`` point of the same frame within Euclidean ``radius``.

    Equals ``|B_src ∩ dilate(B_dst, disk(radius))|`` per frame, computed exactly with integer arithmetic:

    1. ``|q - p|² <= r²`` iff for ``dy = q_y - p_y`` in ``[-r, r]``: ``|q_x - p_x| <= w(dy) = isqrt(r² - dy²)``.
    2. In the padded key layout the dst points of row ``p_y + dy`` with ``|q_x - p_x| <= w`` are exactly the dst
       keys in ``[key_p + dy·Wp - w, key_p + dy·Wp + w]``: ``p_x - w >= -r`` only reaches the previous row's
       ``r + 1`` empty padding columns, ``p_x + w <= W - 1 + r`` stays inside the row, and rows ``p_y + dy``
       outside ``[0, H)`` are the ``r`` empty padding rows of this or the previous frame. One ``searchsorted``
       per ``dy`` answers "is there a key in that range".
    3. Pre-filter (exact, only skips work): with blocks of ``r + 1`` pixels, a dst point within ``r`` lies in
       one of the 3x3 blocks around the src point's block, so src points with no dst point there are unmatched.
    """
    n_frames, h, w = shape
    if len(src.key) == 0 or len(dst.key) == 0:
        return np.zeros(n_frames, dtype=np.int64)
    blk = radius + 1
    occ = np.zeros((n_frames, -(-h // blk) + 2, -(-w // blk) + 2), dtype=bool)
    occ[dst.t, dst.y // blk + 1, dst.x // blk + 1] = True
    rows = occ.copy()
    rows[:, 1:] |= occ[:, :-1]
    rows[:, :-1] |= occ[:, 1:]
    near = rows.copy()
    near[:, :, 1:] |= rows[:, :, :-1]
    near[:, :, :-1] |= rows[:, :, 1:]
    cand = near[src.t, src.y // blk + 1, src.x // blk + 1]

    keys, frames = src.key[cand], src.t[cand]
    n_candidates = np.bincount(frames, minlength=n_frames)
    row_stride = w + radius + 1
    n_dst = len(dst.key)
    for dy in sorted(range(-radius, radius + 1), key=abs):  # small |dy| first: most matches leave early
        half = math.isqrt(radius * radius - dy * dy)
        lo = keys + (dy * row_stride - half)
        idx = np.searchsorted(dst.key, lo)
        np.minimum(idx, n_dst - 1, out=idx)
        gap = dst.key[idx] - lo  # < 0 only when every dst key is < lo
        unmatched = (gap < 0) | (gap > 2 * half)
        keys, frames = keys[unmatched], frames[unmatched]
        if len(keys) == 0:
            break
    return (n_candidates - np.bincount(frames, minlength=n_frames)).astype(np.int64)


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
    return _boundary_pr(p, g, bound_pix(p.shape[1], p.shape[2], bound_th))


def _boundary_pr(
    p: np.ndarray, g: np.ndarray, radius: int, boxes: list[_Box | None] | None = None
) -> tuple[np.ndarray, np.ndarray]:
    n_frames = p.shape[0]
    if boxes is None:
        boxes = _union_boxes(p, g)
    pts_p = _boundary_points(p, boxes, radius)
    pts_g = _boundary_points(g, boxes, radius)
    n_p = np.bincount(pts_p.t, minlength=n_frames)
    n_g = np.bincount(pts_g.t, minlength=n_frames)
    match_p = _count_within(pts_p, pts_g, radius, p.shape)  # |B_P ∩ dil(B_G)|
    match_g = _count_within(pts_g, pts_p, radius, p.shape)  # |B_G ∩ dil(B_P)|

    precision = np.empty(n_frames, dtype=np.float64)
    recall = np.empty(n_frames, dtype=np.float64)
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
    p, g = _pair(pred, gt)
    precision, recall = _boundary_pr(p, g, bound_pix(p.shape[1], p.shape[2], bound_th))
    return _f_from_pr(precision, recall)


def jf_per_frame(pred: Any, gt: Any, bound_th: float = DEFAULT_BOUND_TH) -> tuple[np.ndarray, np.ndarray]:
    """Per-frame ``(J [T], F [T])`` float64 arrays (inputs as in :func:`region_similarity`)."""
    p, g = _pair(pred, gt)
    boxes = _union_boxes(p, g)
    j = _region_similarity(p, g, boxes)
    precision, recall = _boundary_pr(p, g, bound_pix(p.shape[1], p.shape[2], bound_th), boxes)
    return j, _f_from_pr(precision, recall)


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
