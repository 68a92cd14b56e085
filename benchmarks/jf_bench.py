# Copyright 2026 The videoseg-o3-verl authors. Licensed under the Apache License, Version 2.0.
"""Time `videoseg_reward.metrics.jf_score` against the official DAVIS 2017 algorithm and check they agree exactly.

Per case it asserts that the per-frame J and F are bit-identical to the official ones and prints the speed-up
(goal: >= 20x on 480x854 frames). Both are timed alternately, best of ``--repeats``, so that a load change on a
shared machine hits both.

The baseline follows davis2017-evaluation (``davis2017/metrics.py``) step by step with the same library calls:
``db_eval_iou`` on the whole ``[T, H, W]`` stack, then per frame ``f_measure``: void-masked boundary maps by the
Martin ``seg2bmap`` shifts, the tolerance ``ceil(0.008 * ||(H, W)||)``, ``cv2.dilate`` with
``skimage.morphology.disk`` as the structuring element, products and ``np.sum`` counts. (Only ``np.bool``, gone
from NumPy, is spelled ``bool``.) Needs ``opencv-python-headless`` and ``scikit-image`` (``pip install
"./reward[bench]"``).

Masks are smooth random shapes (thresholded, upsampled low-frequency noise), not white noise. Three cases:

* ``close``: ~30 % of the frame covered by many blobs scattered over the WHOLE frame; the prediction is the GT
  field plus a weaker independent field, thresholded at the same level — an imperfect segmentation whose boundary
  mostly runs near the GT boundary. Long boundaries everywhere: the stress case for the fast path;
* ``independent``: prediction and GT are unrelated blob masks of that kind (few boundary pixels match early);
* ``object``: one moving object covering ~15 % of the frame, as referring-VOS targets do; the prediction wobbles
  the GT outline with independent noise and is shifted by a few pixels.

Usage::

    nice .venv/bin/python benchmarks/jf_bench.py --frames 16 --height 480 --width 854 --repeats 3
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from scipy import ndimage
from videoseg_reward.metrics import jf_per_frame, jf_score


def official_seg2bmap(seg: np.ndarray) -> np.ndarray:
    """Boundary map of one frame, as the official ``_seg2bmap`` (same shifts, XORs and edge overrides)."""
    seg = seg.astype(bool)
    seg[seg > 0] = 1
    assert np.atleast_3d(seg).shape[2] == 1
    east, south, south_east = np.zeros_like(seg), np.zeros_like(seg), np.zeros_like(seg)
    east[:, :-1] = seg[:, 1:]
    south[:-1, :] = seg[1:, :]
    south_east[:-1, :-1] = seg[1:, 1:]
    b = seg ^ east | seg ^ south | seg ^ south_east
    b[-1, :] = seg[-1, :] ^ east[-1, :]
    b[:, -1] = seg[:, -1] ^ south[:, -1]
    b[-1, -1] = 0
    return b


def official_f_measure(foreground: np.ndarray, gt: np.ndarray, bound_th: float = 0.008) -> float:
    """Boundary F of one frame, as the official ``f_measure`` (``cv2.dilate`` with skimage's ``disk``)."""
    import cv2
    from skimage.morphology import disk

    void = np.zeros_like(foreground).astype(bool)
    bound_pix = bound_th if bound_th >= 1 else np.ceil(bound_th * np.linalg.norm(foreground.shape))
    fg_boundary = official_seg2bmap(foreground * np.logical_not(void))
    gt_boundary = official_seg2bmap(gt * np.logical_not(void))
    fg_dil = cv2.dilate(fg_boundary.astype(np.uint8), disk(bound_pix).astype(np.uint8))
    gt_dil = cv2.dilate(gt_boundary.astype(np.uint8), disk(bound_pix).astype(np.uint8))
    gt_match = gt_boundary * fg_dil
    fg_match = fg_boundary * gt_dil
    n_fg, n_gt = np.sum(fg_boundary), np.sum(gt_boundary)
    if n_fg == 0 and n_gt > 0:
        precision, recall = 1, 0
    elif n_fg > 0 and n_gt == 0:
        precision, recall = 0, 1
    elif n_fg == 0 and n_gt == 0:
        precision, recall = 1, 1
    else:
        precision, recall = np.sum(fg_match) / float(n_fg), np.sum(gt_match) / float(n_gt)
    return 0 if precision + recall == 0 else 2 * precision * recall / (precision + recall)


def official_iou(annotation: np.ndarray, segmentation: np.ndarray) -> np.ndarray:
    """Per-frame J of a ``[T, H, W]`` stack, as the official ``db_eval_iou`` (no void pixels)."""
    annotation, segmentation = annotation.astype(bool), segmentation.astype(bool)
    void = np.zeros_like(segmentation)
    inters = np.sum((segmentation & annotation) & np.logical_not(void), axis=(-2, -1))
    union = np.sum((segmentation | annotation) & np.logical_not(void), axis=(-2, -1))
    j = inters / np.where(union == 0, 1, union)
    j[np.isclose(union, 0)] = 1
    return j


def official_jf(pred: np.ndarray, gt: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-frame ``(J, F)`` the way the official evaluation computes them for one object."""
    j = official_iou(gt, pred)
    f = np.array([official_f_measure(pred[t], gt[t]) for t in range(pred.shape[0])])
    return j, f


def smooth_field(rng: np.random.Generator, frames: int, height: int, width: int, cell: int = 16) -> np.ndarray:
    """``[T, H, W]`` float64 low-frequency noise: Gaussian noise on a coarse grid, blurred, upsampled bilinearly."""
    out = np.empty((frames, height, width))
    for t in range(frames):
        coarse = ndimage.gaussian_filter(rng.normal(size=(height // cell + 2, width // cell + 2)), sigma=1.5)
        out[t] = ndimage.zoom(coarse, cell, order=1)[:height, :width]
    return out


def object_masks(field: np.ndarray, centres: np.ndarray, radii: tuple[float, float]) -> np.ndarray:
    """``[T, H, W]`` bool: one ellipse per frame (centre ``centres[t]``, radii ``(ry, rx)``), its outline wobbled
    by the normalised smooth ``field``."""
    frames, height, width = field.shape
    yy, xx = np.mgrid[:height, :width]
    out = np.empty(field.shape, dtype=bool)
    for t, (cy, cx) in enumerate(centres):
        level = ((yy - cy) / radii[0]) ** 2 + ((xx - cx) / radii[1]) ** 2
        out[t] = level + 0.5 * field[t] / field[t].std() < 1.0
    return out


def make_pair(rng: np.random.Generator, case: str, frames: int, height: int, width: int):
    """``(pred, gt)`` ``[T, H, W]`` bool masks for ``case`` in :data:`CASES`."""
    gt_field = smooth_field(rng, frames, height, width)
    other = smooth_field(rng, frames, height, width)
    if case == "object":
        # One moving object covering ~15 % of the frame (typical of referring-VOS targets); the prediction is
        # the GT object's outline plus independent noise, shifted by a few pixels.
        phase = np.linspace(0.0, np.pi, frames)
        centres = np.stack([height * (0.45 + 0.15 * np.sin(phase)), width * (0.3 + 0.4 * phase / np.pi)], axis=1)
        radii = (0.22 * height, 0.2 * width)
        gt = object_masks(gt_field, centres, radii)
        pred = object_masks(gt_field + 0.35 * other, centres + [4.0, -6.0], radii)
        return pred, gt
    pred_field = gt_field + 0.35 * other if case == "close" else other
    thr_gt = np.quantile(gt_field, 0.7)  # ~30 % foreground
    thr_pred = np.quantile(pred_field, 0.7)
    return pred_field > thr_pred, gt_field > thr_gt


CASES = ("close", "independent", "object")


def best_times(fns, repeats: int) -> list[float]:
    """Minimum wall time of each function over ``repeats`` rounds; the functions alternate within a round."""
    best = [float("inf")] * len(fns)
    for _ in range(repeats):
        for i, fn in enumerate(fns):
            t0 = time.perf_counter()
            fn()
            best[i] = min(best[i], time.perf_counter() - t0)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=16, help="frames per video")
    parser.add_argument("--height", type=int, default=480)
    parser.add_argument("--width", type=int, default=854)
    parser.add_argument("--repeats", type=int, default=3, help="timing repeats (the minimum is reported)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--cases", nargs="+", default=list(CASES), choices=CASES)
    args = parser.parse_args()

    import cv2
    import skimage

    rng = np.random.default_rng(args.seed)
    print(f"J&F benchmark: {args.frames} frames of {args.height}x{args.width}, best of {args.repeats}; baseline = "
          f"official davis2017 algorithm (OpenCV {cv2.__version__}, {cv2.getNumThreads()} threads; scikit-image "
          f"{skimage.__version__})")
    for case in args.cases:
        pred, gt = make_pair(rng, case, args.frames, args.height, args.width)
        cover = 100.0 * (pred.mean() + gt.mean()) / 2

        # Correctness first: per-frame J and F must equal the official values.
        j_fast, f_fast = jf_per_frame(pred, gt)
        j_ref, f_ref = official_jf(pred, gt)
        err = max(np.abs(j_fast - j_ref).max(), np.abs(f_fast - f_ref).max())
        assert np.array_equal(j_fast, j_ref) and np.array_equal(f_fast, f_ref), f"{case}: J/F differ by up to {err}"
        score = jf_score(pred, gt)

        t_fast, t_ref = best_times([lambda p=pred, g=gt: jf_score(p, g), lambda p=pred, g=gt: official_jf(p, g)],
                                   args.repeats)
        print(f"[{case:>11}] fg {cover:4.1f} %  J={score.J:.4f} F={score.F:.4f} J&F={score.JF:.4f}  "
              f"max|diff|={err:.1e}  "
              f"fast {1e3 * t_fast / args.frames:7.2f} ms/frame  official {1e3 * t_ref / args.frames:7.2f} "
              f"ms/frame  speed-up {t_ref / t_fast:5.1f}x")


if __name__ == "__main__":
    main()
