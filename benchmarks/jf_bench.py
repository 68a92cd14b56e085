# Copyright 2026 The videoseg-o3-verl authors. Licensed under the Apache License, Version 2.0.
"""Time `videoseg_reward.metrics.jf_score` against the plain per-frame DAVIS reference and check they agree.

Masks are smooth random blobs (thresholded, upsampled low-frequency noise), not white noise. Two cases:

* ``close``: the prediction is the GT field plus a weaker independent field, thresholded at the same level —
  a plausible, imperfect segmentation whose boundary mostly runs near the GT boundary (the usual case);
* ``independent``: prediction and GT are unrelated blob masks (worst case for the fast path: few boundary
  pixels are matched early).

Usage::

    nice .venv/bin/python benchmarks/jf_bench.py --frames 16 --height 480 --width 854 --repeats 3
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from scipy import ndimage
from videoseg_reward._davis_reference import ref_jf
from videoseg_reward.metrics import jf_per_frame, jf_score


def smooth_field(rng: np.random.Generator, frames: int, height: int, width: int, cell: int = 16) -> np.ndarray:
    """``[T, H, W]`` float64 low-frequency noise: Gaussian noise on a coarse grid, blurred, upsampled bilinearly."""
    out = np.empty((frames, height, width))
    for t in range(frames):
        coarse = ndimage.gaussian_filter(rng.normal(size=(height // cell + 2, width // cell + 2)), sigma=1.5)
        out[t] = ndimage.zoom(coarse, cell, order=1)[:height, :width]
    return out


def make_pair(rng: np.random.Generator, case: str, frames: int, height: int, width: int):
    """``(pred, gt)`` ``[T, H, W]`` bool blob masks for ``case`` in ``{"close", "independent"}``."""
    gt_field = smooth_field(rng, frames, height, width)
    other = smooth_field(rng, frames, height, width)
    pred_field = gt_field + 0.35 * other if case == "close" else other
    thr_gt = np.quantile(gt_field, 0.7)  # ~30 % foreground
    thr_pred = np.quantile(pred_field, 0.7)
    return pred_field > thr_pred, gt_field > thr_gt


def best_time(fn, repeats: int) -> float:
    """Minimum wall time of ``repeats`` calls of ``fn``."""
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=16, help="frames per video")
    parser.add_argument("--height", type=int, default=480)
    parser.add_argument("--width", type=int, default=854)
    parser.add_argument("--repeats", type=int, default=3, help="timing repeats (the minimum is reported)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--cases", nargs="+", default=["close", "independent"], choices=["close", "independent"])
    args = parser.parse_args()

    rng = np.random.default_rng(args.seed)
    print(f"J&F benchmark: {args.frames} frames of {args.height}x{args.width}, best of {args.repeats}")
    for case in args.cases:
        pred, gt = make_pair(rng, case, args.frames, args.height, args.width)

        # Correctness first: per-frame J and F must agree with the reference.
        j_fast, f_fast = jf_per_frame(pred, gt)
        j_ref, f_ref = ref_jf(pred, gt)
        err = max(np.abs(j_fast - np.asarray(j_ref)).max(), np.abs(f_fast - np.asarray(f_ref)).max())
        assert err <= 1e-9, f"{case}: fast and reference J/F differ by {err}"
        score = jf_score(pred, gt)

        t_fast = best_time(lambda p=pred, g=gt: jf_score(p, g), args.repeats)
        t_ref = best_time(lambda p=pred, g=gt: ref_jf(p, g), args.repeats)
        print(f"[{case:>11}] J={score.J:.4f} F={score.F:.4f} J&F={score.JF:.4f}  max|diff|={err:.1e}  "
              f"fast {1e3 * t_fast / args.frames:7.2f} ms/frame  reference {1e3 * t_ref / args.frames:7.2f} "
              f"ms/frame  speed-up {t_ref / t_fast:5.1f}x")


if __name__ == "__main__":
    main()
