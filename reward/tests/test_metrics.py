# Copyright 2026 The videoseg-o3-verl authors. Licensed under the Apache License, Version 2.0.
"""Tests for videoseg_reward.metrics: hand-computed J/F cases and equality with the plain per-frame reference."""

from __future__ import annotations

import numpy as np
import pytest
import videoseg_reward._packed_masks as packed_module
from scipy import ndimage
from videoseg_reward._davis_reference import ref_disk, ref_jf, ref_seg2bmap, ref_seg2bmap_loops
from videoseg_reward.metrics import (
    JFScore,
    bound_pix,
    boundary_f_measure,
    boundary_precision_recall,
    disk,
    interval_mask,
    jf_per_frame,
    jf_score,
    pixel_accuracy,
    region_similarity,
    robustness,
    seg2bmap,
    temporal_iou,
    temporal_iou_masks,
    temporal_precision,
)


def _square(h, w, y0, y1, x0, x1):
    m = np.zeros((h, w), dtype=bool)
    m[y0:y1, x0:x1] = True
    return m


def _assert_matches_reference(pred, gt, bound_th=0.008):
    """Per-frame J and F equal the plain reference EXACTLY (same integer counts, same float formulas)."""
    j, f = jf_per_frame(pred, gt, bound_th)
    j_ref, f_ref = ref_jf(pred, gt, bound_th)
    np.testing.assert_array_equal(j, j_ref)
    np.testing.assert_array_equal(f, f_ref)
    np.testing.assert_array_equal(region_similarity(pred, gt), j_ref)  # the J-only path (no boundary work)
    np.testing.assert_array_equal(boundary_f_measure(pred, gt, bound_th), f_ref)


# --------------------------------------------------------------------------------------------------------
# Hand-computed cases
# --------------------------------------------------------------------------------------------------------


def test_jf_hand_computed_4x4_shifted_square():
    # GT = 2x2 square rows 1-2, cols 1-2; pred = same square shifted right by one (rows 1-2, cols 2-3).
    gt = _square(4, 4, 1, 3, 1, 3)
    pred = _square(4, 4, 1, 3, 2, 4)
    # J: intersection = column 2 of rows 1-2 = 2 px, union = 6 px -> 1/3.
    # bound_pix = ceil(0.008 * sqrt(4² + 4²)) = ceil(0.045) = 1 -> disk(1) is the 3x3 cross.
    # seg2bmap(GT) (pixel differs from right/down/down-right; last row/col only right/down; corner 0):
    #   1 1 1 0 / 1 0 1 0 / 1 1 1 0 / 0 0 0 0   -> 8 boundary pixels
    # seg2bmap(pred):
    #   0 1 1 1 / 0 1 0 0 / 0 1 1 1 / 0 0 0 0   -> 7 boundary pixels
    # dil(B_G) by the cross covers every pixel except (3,3) -> all 7 pred boundary px match: precision 1.
    # dil(B_P) covers every pixel except (3,0) -> all 8 GT boundary px match: recall 1 -> F = 1.
    np.testing.assert_array_equal(
        seg2bmap(gt)[0].astype(int), [[1, 1, 1, 0], [1, 0, 1, 0], [1, 1, 1, 0], [0, 0, 0, 0]])
    np.testing.assert_array_equal(
        seg2bmap(pred)[0].astype(int), [[0, 1, 1, 1], [0, 1, 0, 0], [0, 1, 1, 1], [0, 0, 0, 0]])
    score = jf_score(pred, gt)
    assert score.J == pytest.approx(1 / 3, abs=1e-12)
    assert score.F == pytest.approx(1.0, abs=1e-12)
    assert score["J&F"] == pytest.approx(2 / 3, abs=1e-12)
    _assert_matches_reference(pred, gt)


def test_jf_hand_computed_4x4_corner_pixel():
    # GT = same 2x2 square; pred = the single bottom-right pixel (3,3).
    gt = _square(4, 4, 1, 3, 1, 3)
    pred = _square(4, 4, 3, 4, 3, 4)
    # J: no overlap -> 0.
    # seg2bmap(pred): (2,2) (down-right differs), (2,3) (last column, below differs), (3,2) (last row, right
    # differs); (3,3) itself is the corner -> 0. So 3 boundary px, none at (3,3).
    # precision: dil(B_G) covers all but (3,3) -> 3/3 = 1.
    # dil(B_P) = {(2,2),(2,3),(3,2)} + 4-neighbours = {(1,2),(1,3),(2,1),(2,2),(2,3),(3,1),(3,2),(3,3)};
    # GT boundary px inside it: (1,2), (2,1), (2,2) -> recall 3/8.  F = 2·1·(3/8) / (1 + 3/8) = 6/11.
    np.testing.assert_array_equal(np.argwhere(seg2bmap(pred)[0]).tolist(), [[2, 2], [2, 3], [3, 2]])
    precision, recall = boundary_precision_recall(pred, gt)
    assert precision.tolist() == [1.0]
    assert recall.tolist() == [3 / 8]
    score = jf_score(pred, gt)
    assert score.J == 0.0
    assert score.F == pytest.approx(6 / 11, abs=1e-12)
    _assert_matches_reference(pred, gt)


@pytest.mark.parametrize(
    "offset, expected_f",
    [
        ((0, 3), 1.0),  # vertical lines 3 px apart, radius 3: |dx| = 3 <= r for both boundary columns
        ((0, 4), 0.5),  # 4 px apart: one of the two boundary columns of each line is 4 > r away -> P = R = 1/2
        ((2, 2), 1.0),  # single pixels, diagonal offset (2,2): farthest boundary pair d² = 8 <= 9
        ((2, 3), 0.5),  # offset (2,3): 2 of the 4 boundary px of each are at d² = 10 or 13 > 9 -> P = R = 1/2
    ],
)
def test_boundary_f_exact_radius_threshold(offset, expected_f):
    # bound_th = 3 -> radius 3 px, disk = {dy² + dx² <= 9}.
    dy, dx = offset
    if dy == 0:
        # Full-height vertical line at column 10 has boundary columns 9 and 10.
        gt = _square(20, 30, 0, 20, 10, 11)
        pred = _square(20, 30, 0, 20, 10 + dx, 11 + dx)
    else:
        # A single interior pixel (y, x) has the 2x2 boundary block {y-1, y} x {x-1, x}.
        gt = _square(20, 30, 10, 11, 10, 11)
        pred = _square(20, 30, 10 + dy, 11 + dy, 10 + dx, 11 + dx)
    f = boundary_f_measure(pred, gt, bound_th=3)
    assert f.tolist() == [pytest.approx(expected_f, abs=1e-12)]
    _assert_matches_reference(pred, gt, bound_th=3)


@pytest.mark.parametrize(
    "pred, gt, expected_j, expected_f",
    [
        # both empty: union 0 -> J = 1; no boundaries at all -> P = R = 1 -> F = 1
        (np.zeros((5, 6)), np.zeros((5, 6)), 1.0, 1.0),
        # no prediction, GT square: J = 0; P = 1, R = 0 -> F = 0
        (np.zeros((5, 6)), _square(5, 6, 1, 3, 1, 3), 0.0, 0.0),
        # prediction, empty GT: J = 0; P = 0, R = 1 -> F = 0
        (_square(5, 6, 1, 3, 1, 3), np.zeros((5, 6)), 0.0, 0.0),
        # full vs full: J = 1; a full mask has NO boundary pixels (last row/col rules) -> both empty -> F = 1
        (np.ones((5, 6)), np.ones((5, 6)), 1.0, 1.0),
        # full pred vs 2x2 GT: J = 4/30; pred boundary empty, GT boundary not -> P = 1, R = 0 -> F = 0
        (np.ones((5, 6)), _square(5, 6, 1, 3, 1, 3), 4 / 30, 0.0),
        # 1x1 images: the only pixel is the corner -> never a boundary -> F = 1 even though J = 0
        (np.ones((1, 1)), np.zeros((1, 1)), 0.0, 1.0),
        # GT is only the corner pixel (4,5): its boundary (3,4),(3,5),(4,4) is non-empty; pred empty -> F = 0
        (np.zeros((5, 6)), _square(5, 6, 4, 5, 5, 6), 0.0, 0.0),
    ],
)
def test_jf_special_cases(pred, gt, expected_j, expected_f):
    score = jf_score(pred, gt)
    assert score.J == pytest.approx(expected_j, abs=1e-12)
    assert score.F == pytest.approx(expected_f, abs=1e-12)
    _assert_matches_reference(pred, gt)


# --------------------------------------------------------------------------------------------------------
# Building blocks
# --------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "h, w, bound_th, expected",
    [
        (480, 854, 0.008, 8),  # 0.008 * 979.65 = 7.84 -> 8
        (720, 1280, 0.008, 12),  # 0.008 * 1468.6 = 11.75 -> 12
        (4, 4, 0.008, 1),  # 0.008 * 5.66 = 0.045 -> 1
        (100, 100, 0.05, 8),  # 0.05 * 141.42 = 7.07 -> 8
        (10, 10, 3, 3),  # >= 1: absolute radius
        (10, 10, 3.0, 3),
    ],
)
def test_bound_pix_values(h, w, bound_th, expected):
    assert bound_pix(h, w, bound_th) == expected


@pytest.mark.parametrize("bad", [0, -0.1, float("nan"), float("inf"), 2.5])
def test_bound_pix_rejects_bad_threshold(bad):
    with pytest.raises(ValueError, match="bound_th"):
        bound_pix(10, 10, bad)


@pytest.mark.parametrize("radius, expected_count", [(0, 1), (1, 5), (2, 13), (3, 29), (8, 197)])
def test_disk_matches_definition(radius, expected_count):
    # Counts of integer points with y² + x² <= r² (Gauss circle problem): 1, 5, 13, 29, ..., 197 for r = 8.
    d = disk(radius)
    assert d.shape == (2 * radius + 1, 2 * radius + 1)
    assert int(d.sum()) == expected_count
    np.testing.assert_array_equal(d, ref_disk(radius))


@pytest.mark.parametrize("shape", [(1, 1), (1, 7), (7, 1), (2, 2), (5, 9), (8, 3), (6, 6)])
def test_seg2bmap_matches_pixel_loop_definition(shape):
    rng = np.random.default_rng(sum(shape))
    masks = rng.random((12, *shape)) > 0.5
    got = seg2bmap(masks)
    for t in range(masks.shape[0]):
        np.testing.assert_array_equal(got[t], ref_seg2bmap_loops(masks[t]))
        np.testing.assert_array_equal(got[t], ref_seg2bmap(masks[t]))


def test_seg2bmap_full_mask_has_no_boundary_but_single_corner_pixel_does():
    # Full mask: every interior XOR is 0, last row/col compare only within the mask -> no boundary.
    assert not seg2bmap(np.ones((4, 5))).any()
    # Only the bottom-right pixel set: the corner itself is forced to 0 but its 3 neighbours are boundary.
    m = _square(4, 5, 3, 4, 4, 5)
    assert np.argwhere(seg2bmap(m)[0]).tolist() == [[2, 3], [2, 4], [3, 3]]


# --------------------------------------------------------------------------------------------------------
# Fast == reference on many masks
# --------------------------------------------------------------------------------------------------------


def _blobs(rng, t, h, w):
    """Smooth random shapes: blurred noise thresholded at a random level."""
    field = ndimage.gaussian_filter(rng.normal(size=(t, h, w)), sigma=(0, max(h, 2) / 6, max(w, 2) / 6))
    return field > rng.uniform(-0.3, 0.3) * field.std()


@pytest.mark.parametrize("shape", [(3, 1, 1), (3, 1, 9), (3, 9, 1), (4, 5, 9), (3, 17, 31), (2, 64, 48), (2, 31, 70)])
@pytest.mark.parametrize("bound_th", [0.008, 0.05, 0.2, 1, 4])
def test_jf_matches_reference_on_random_masks(shape, bound_th):
    rng = np.random.default_rng(hash((shape, bound_th)) % 2**32)
    t, h, w = shape
    cases = [
        (_blobs(rng, t, h, w), _blobs(rng, t, h, w)),  # smooth, independent
        (rng.random(shape) > 0.5, rng.random(shape) > 0.5),  # white noise: many tiny components
        (rng.random(shape) > 0.97, _blobs(rng, t, h, w)),  # sparse single pixels vs blobs
    ]
    close = _blobs(rng, t, h, w)
    cases.append((np.roll(close, 1, axis=2), close))  # nearly identical masks
    for pred, gt in cases:
        _assert_matches_reference(pred, gt, bound_th)


def test_jf_matches_reference_on_thin_lines_and_border_masks():
    h, w = 23, 37
    frames_p, frames_g = [], []
    for k in range(6):
        p = np.zeros((h, w), bool)
        g = np.zeros((h, w), bool)
        p[:, k] = True  # 1-px vertical line near the left border
        g[k + 1, :] = True  # 1-px horizontal line
        p[-1, :] = True  # touching the bottom border
        g[:, -1 - k] = True  # near the right border
        np.fill_diagonal(p[:, k:], True)  # diagonal 1-px line
        frames_p.append(p)
        frames_g.append(g)
    pred, gt = np.stack(frames_p), np.stack(frames_g)
    for bound_th in (0.008, 0.1, 2, 5):
        _assert_matches_reference(pred, gt, bound_th)
        _assert_matches_reference(gt, pred, bound_th)


def test_frames_do_not_match_across_the_batch():
    # Radius 3 on 10x10 frames. Frame 0: pred boundary near the BOTTOM (row 8), GT band at the top.
    # Frame 1: GT boundary at the TOP (row 0). Without per-frame isolation the rows 8 (frame 0) and 0 (frame 1)
    # would be 2 rows apart in a flat stack and match. Likewise frame 2/3 pair the last column with the first.
    h = w = 10
    pred = np.zeros((4, h, w), bool)
    gt = np.zeros((4, h, w), bool)
    pred[0, 9, :] = True  # boundary row 8
    gt[0, 0:2, :] = True  # boundary row 1 -> 7 rows from row 8: no match inside frame 0
    pred[1, 5:7, :] = True
    gt[1, 0, :] = True  # boundary row 0
    pred[2, :, 9] = True  # boundary column 8
    gt[2, :, 0:2] = True
    pred[3, :, 5:7] = True
    gt[3, :, 0] = True
    f_batched = boundary_f_measure(pred, gt, bound_th=3)
    f_single = [boundary_f_measure(pred[t], gt[t], bound_th=3)[0] for t in range(4)]
    np.testing.assert_array_equal(f_batched, f_single)
    _assert_matches_reference(pred, gt, bound_th=3)


# --------------------------------------------------------------------------------------------------------
# API: inputs, JFScore
# --------------------------------------------------------------------------------------------------------


def test_inputs_any_dtype_binarised_with_gt_zero():
    gt = _square(12, 14, 2, 9, 3, 10)
    pred_bool = _square(12, 14, 3, 10, 3, 11)
    ref = jf_score(pred_bool, gt)
    # 0/255 uint8, float with negative background, int64 — all binarised with > 0 to the same masks.
    for pred in (pred_bool.astype(np.uint8) * 255, np.where(pred_bool, 0.7, -3.0), pred_bool.astype(np.int64)):
        assert jf_score(pred, gt) == ref
    # NaN counts as background.
    assert jf_score(np.where(pred_bool, 1.0, np.nan), gt) == ref
    # 2-D input is one frame.
    assert region_similarity(pred_bool, gt).shape == (1,)


@pytest.mark.parametrize(
    "pred, gt, match",
    [
        (np.zeros((2, 4, 4)), np.zeros((3, 4, 4)), "same shape"),
        (np.zeros((4, 4)), np.zeros((4, 5)), "same shape"),
        (np.zeros(4), np.zeros(4), r"\[H, W\] or \[T, H, W\]"),
        (np.zeros((1, 2, 4, 4)), np.zeros((1, 2, 4, 4)), r"\[H, W\] or \[T, H, W\]"),
        (np.zeros((2, 0, 4)), np.zeros((2, 0, 4)), "at least 1x1"),
        (np.array([["a"]]), np.array([["a"]]), "numeric or bool"),
    ],
)
def test_invalid_inputs_raise_value_error(pred, gt, match):
    with pytest.raises(ValueError, match=match):
        jf_per_frame(pred, gt)


def test_jf_score_needs_a_frame():
    with pytest.raises(ValueError, match="T = 0"):
        jf_score(np.zeros((0, 4, 4)), np.zeros((0, 4, 4)))


def test_jfscore_access_styles():
    s = JFScore(J=0.25, F=0.75, JF=0.5)
    assert (s["J"], s["F"], s["JF"], s["J&F"]) == (0.25, 0.75, 0.5, 0.5)
    assert (s[0], s[1], s[2], s[-1]) == (0.25, 0.75, 0.5, 0.5)
    j, f, jf = s
    assert (j, f, jf) == (0.25, 0.75, 0.5)
    assert s[:2] == (0.25, 0.75)
    assert s.as_dict() == {"J": 0.25, "F": 0.75, "J&F": 0.5}
    with pytest.raises(KeyError, match="'Jmean'"):
        s["Jmean"]


def test_jf_score_is_mean_over_frames():
    # Frame 0 perfect (J = F = 1), frame 1 nothing predicted (J = F = 0) -> means 0.5, J&F 0.5.
    gt = np.stack([_square(8, 8, 2, 6, 2, 6)] * 2)
    pred = gt.copy()
    pred[1] = False
    s = jf_score(pred, gt)
    assert (s.J, s.F, s.JF) == (0.5, 0.5, 0.5)


# --------------------------------------------------------------------------------------------------------
# ReVOS A / R and temporal helpers
# --------------------------------------------------------------------------------------------------------


def test_pixel_accuracy_and_robustness_hand_values():
    gt = np.array([[[1, 0], [0, 0]], [[0, 0], [0, 0]], [[0, 0], [0, 0]], [[1, 1], [0, 0]]])
    pred = np.array([[[1, 1], [0, 0]], [[0, 0], [0, 0]], [[1, 1], [1, 0]], [[0, 0], [0, 0]]])
    fg = np.array([[[1, 1], [1, 1]], [[0, 0], [0, 0]], [[0, 0], [0, 0]], [[1, 1], [0, 0]]])
    # A: frame 0 differs in 1 of 4 px -> 0.75; frame 1 equal -> 1; frame 2 differs in 3 -> 0.25; frame 3 in 2.
    assert pixel_accuracy(pred, gt).tolist() == [0.75, 1.0, 0.25, 0.5]
    r = robustness(pred, gt, fg)
    # R = max(1 - |P & ~G| / (|fg| + 1e-6), 0) (the ReVOS script): frame 0: 1 - 1/4.000001 = 0.75000004...;
    # frame 1: empty foreground, prediction and GT: 1 - 0/1e-6 = 1; frame 2: 3 false px / 1e-6 -> clipped to 0;
    # frame 3: no false px -> 1.
    assert r[0] == 1 - 1 / 4.000001 and r[1] == 1.0 and r[2] == 0.0 and r[3] == 1.0
    assert robustness(pred, gt, fg, eps=0).tolist() == [0.75, 1.0, 0.0, 1.0]  # 0/0 -> 1 as well


def test_robustness_clips_at_zero():
    # 3 false-positive px against a 1-px foreground: 1 - 3 = -2 -> 0.
    gt = np.zeros((2, 2))
    fg = np.array([[1, 0], [0, 0]])
    pred = np.array([[1, 1], [1, 0]])
    assert robustness(pred, gt, fg).tolist() == [0.0]


@pytest.mark.parametrize(
    "args, inclusive, expected",
    [
        ((0, 4, 2, 6), True, 3 / 7),  # [0..4] ∩ [2..6] = {2,3,4}; union 7 frames
        ((0, 4, 2, 6), False, 2 / 6),  # [0,4) ∩ [2,6) = {2,3}; union {0..5}
        ((3, 3, 3, 3), True, 1.0),  # identical single frame
        ((3, 3, 3, 3), False, 1.0),  # both empty when end-exclusive -> convention 1
        ((0, 2, 5, 9), True, 0.0),  # disjoint
        ((5, 2, 0, 9), True, 0.0),  # reversed prediction is empty: 0 of 10
    ],
)
def test_temporal_iou_hand_values(args, inclusive, expected):
    assert temporal_iou(*args, inclusive=inclusive) == pytest.approx(expected, abs=1e-12)


def test_temporal_precision_and_iou_masks():
    pred = interval_mask(1, 4, 8, inclusive=False)  # frames 1, 2, 3
    assert pred.astype(int).tolist() == [0, 1, 1, 1, 0, 0, 0, 0]
    existence = [0, 0, 1, 1, 1, 1, 0, 0]
    assert temporal_precision(pred, existence) == pytest.approx(2 / 3)  # 2 of the 3 predicted frames
    assert temporal_iou_masks(pred, existence) == pytest.approx(2 / 5)  # {2,3} of {1..5}
    assert temporal_precision([0] * 8, existence) == 0.0  # empty prediction
    assert temporal_iou_masks([0] * 8, [0] * 8) == 1.0  # empty union
    assert interval_mask(-3, 20, 5).all()  # clipped to the video
    with pytest.raises(ValueError, match="differ in length"):
        temporal_precision([1, 0], [1, 0, 0])


def _small_object(h, w, y0, y1, x0, x1):
    m = np.zeros((h, w), bool)
    m[y0:y1, x0:x1] = True
    return m


# Each frame pair exercises one edge case of the column crop: small objects far from the border,
# objects touching each border and corner (the toolkit's last-row/last-column overrides apply inside the crop),
# all-ones frames (no boundary at all), empty frames and one-sided empty frames, single pixels in the corners.
_CROP_CASES = [
    (_small_object(40, 50, 10, 14, 20, 27), _small_object(40, 50, 11, 16, 18, 26)),  # interior, overlapping
    (_small_object(40, 50, 0, 5, 0, 6), _small_object(40, 50, 0, 3, 2, 9)),  # top-left corner
    (_small_object(40, 50, 35, 40, 44, 50), _small_object(40, 50, 37, 40, 40, 50)),  # bottom-right corner
    (_small_object(40, 50, 35, 40, 10, 20), _small_object(40, 50, 30, 38, 12, 18)),  # bottom border only
    (_small_object(40, 50, 10, 20, 45, 50), _small_object(40, 50, 12, 18, 40, 49)),  # right border only
    (_small_object(40, 50, 0, 40, 0, 50), _small_object(40, 50, 0, 40, 0, 50)),  # all ones vs all ones
    (_small_object(40, 50, 0, 40, 0, 50), _small_object(40, 50, 5, 9, 5, 9)),  # all ones vs small object
    (np.zeros((40, 50), bool), np.zeros((40, 50), bool)),  # both empty
    (np.zeros((40, 50), bool), _small_object(40, 50, 5, 9, 5, 9)),  # empty prediction
    (_small_object(40, 50, 20, 30, 3, 8), np.zeros((40, 50), bool)),  # empty GT
    (_small_object(40, 50, 39, 40, 49, 50), _small_object(40, 50, 0, 1, 0, 1)),  # single corner pixels
    (_small_object(40, 50, 2, 4, 3, 5), _small_object(40, 50, 30, 34, 40, 47)),  # far apart (no match)
]


@pytest.mark.parametrize("case", range(len(_CROP_CASES)))
def test_bounding_box_fast_path_is_exact_at_borders_and_empty_frames(case):
    pred, gt = (m[None] for m in _CROP_CASES[case])
    j, f = jf_per_frame(pred, gt)
    j_ref, f_ref = ref_jf(pred, gt, 0.008)
    np.testing.assert_array_equal(j, j_ref)
    np.testing.assert_array_equal(f, f_ref)
    # The same frames stacked into one video (each frame has its own box) give the same per-frame values.
    stack_p = np.stack([p for p, _ in _CROP_CASES])
    stack_g = np.stack([g for _, g in _CROP_CASES])
    j_all, f_all = jf_per_frame(stack_p, stack_g)
    assert j_all[case] == j[0] and f_all[case] == f[0]


def test_small_objects_anywhere_match_the_reference():
    # Random small objects at random positions (touching every border, cropped to a few columns) in frames of
    # random size, so every band/halo/crop combination of the packed layout is met.
    rng = np.random.default_rng(11)
    for _ in range(50):
        h, w = rng.integers(1, 30, size=2)
        p = np.zeros((1, h, w), bool)
        g = np.zeros((1, h, w), bool)
        for m in (p, g):
            y0, x0 = rng.integers(0, h), rng.integers(0, w)
            m[0, y0 : y0 + rng.integers(1, 8), x0 : x0 + rng.integers(1, 8)] = rng.random() < 0.9
        np.testing.assert_array_equal(seg2bmap(p)[0], ref_seg2bmap(p[0]))
        _assert_matches_reference(p, g)
        _assert_matches_reference(p, g, bound_th=int(rng.integers(1, 12)))


@pytest.mark.parametrize("shape", [(2, 7, 300), (2, 300, 7), (3, 8, 8), (2, 9, 17), (1, 2, 200), (2, 61, 3)])
def test_non_square_frames_and_band_edges(shape):
    # Heights below, at and just above a multiple of 8 (the packed layout cuts a frame into 8 bands of
    # ceil(H / 8) rows), very wide and very tall frames; radii larger than a band (halo rows from 2+ bands away).
    rng = np.random.default_rng(sum(shape))
    t, h, w = shape
    for bound_th in (0.008, 0.1, 3, 20):
        _assert_matches_reference(_blobs(rng, t, h, w), _blobs(rng, t, h, w), bound_th)
        _assert_matches_reference(rng.random(shape) > 0.6, rng.random(shape) > 0.4, bound_th)


def test_many_components_and_single_pixels():
    # Checkerboard-like noise: thousands of tiny components; isolated single pixels at random places.
    rng = np.random.default_rng(5)
    noise = rng.random((3, 48, 64)) > 0.5
    pixels = np.zeros((3, 48, 64), bool)
    pixels[:, rng.integers(0, 48, 30), rng.integers(0, 64, 30)] = True
    for bound_th in (0.008, 2, 6):
        _assert_matches_reference(noise, pixels, bound_th)
        _assert_matches_reference(pixels, np.roll(pixels, 2, axis=1), bound_th)


def test_chunking_does_not_change_results(monkeypatch):
    # Frames are processed in cache-sized chunks; one frame per chunk gives the same per-frame values as all
    # frames in one chunk (no frame leaks into its neighbour through halos or padding).
    rng = np.random.default_rng(3)
    pred, gt = _blobs(rng, 9, 40, 56), _blobs(rng, 9, 40, 56)
    pred[4] = False  # an empty frame between full chunks
    j_one, f_one = jf_per_frame(pred, gt)
    pair_bytes = packed_module._layout(2, 40, 56, 2).size  # bound_pix(40, 56) = 1: halo 2
    for chunk_bytes in (1, 4 * pair_bytes):  # 9 chunks of 1 frame; 2 chunks of 4 and 5 frames
        monkeypatch.setattr(packed_module, "_CHUNK_BYTES", chunk_bytes)
        j_each, f_each = jf_per_frame(pred, gt)
        np.testing.assert_array_equal(j_one, j_each)
        np.testing.assert_array_equal(f_one, f_each)
    _assert_matches_reference(pred, gt)


@pytest.mark.parametrize(("frames", "pairs_per_chunk", "ends"), [
    (16, 4, [4, 8, 12, 16]),   # 16 / 4 = 4 chunks of 4
    (16, 5, [5, 10, 16]),      # 16 / 5 = 3.2 -> 3 chunks (5, 5, 6), not 5, 5, 5, 1
    (17, 4, [4, 8, 12, 17]),   # 4.25 -> 4 chunks (4, 4, 4, 5)
    (3, 8, [3]),               # less than one chunk's worth: one chunk
    (3, 0.5, [1, 2, 3]),       # 6 chunks' worth of 3 frames: one frame each, no empty chunk
    (0, 4, []),
])
def test_chunk_ends_split_frames_evenly(frames, pairs_per_chunk, ends):
    assert packed_module.chunk_ends(frames, 1000, chunk_bytes=int(pairs_per_chunk * 1000)) == ends


@pytest.mark.parametrize("radius", [1, 2, 3, 8, 12, 17])
@pytest.mark.parametrize("kind", ["peel", "rows"])
def test_every_dilation_plan_shape_matches_the_reference(radius, kind, monkeypatch):
    # Both plan kinds at every radius (the engine picks the cheaper). The peel's shapes: r = 1 a union only (no
    # pair factor), r = 3 / 12 one point spread in place after the factors, r = 8 five spread points (into the
    # spare buffer), r = 17 a greedy peel that stops early (117 points spread). The row plan: runs of every width
    # grown in place, r = 1 with a width-0 row first. Blobs reach every border, sparse pixels test single-point
    # dilations.
    monkeypatch.setattr(packed_module, "dilation_plan",
                        packed_module.peel_plan if kind == "peel" else packed_module.row_plan)
    rng = np.random.default_rng(radius)
    shape = (3, 45, 70)
    _assert_matches_reference(_blobs(rng, *shape), _blobs(rng, *shape), bound_th=radius)
    _assert_matches_reference(rng.random(shape) > 0.995, _blobs(rng, *shape), bound_th=radius)


def test_reused_buffers_hold_no_stale_pixels():
    # Work buffers are kept between calls (per thread): a big, full call leaves them dirty, then a smaller
    # video, a narrow crop and the big one again must each equal the reference.
    rng = np.random.default_rng(7)
    big = (_blobs(rng, 6, 120, 160), _blobs(rng, 6, 120, 160))
    small = (_blobs(rng, 2, 30, 40), _blobs(rng, 2, 30, 40))
    narrow = (np.zeros((3, 60, 90), bool), np.zeros((3, 60, 90), bool))
    narrow[0][:, 20:40, 50:58] = narrow[1][:, 25:45, 52:60] = True
    for pred, gt in (big, small, narrow, big):
        _assert_matches_reference(pred, gt)


def test_concurrent_threads_get_their_own_buffers():
    # Two threads evaluating different shapes at once (each thread keeps its own work buffers).
    from concurrent.futures import ThreadPoolExecutor

    rng = np.random.default_rng(9)
    jobs = [(_blobs(rng, 4, 40 + 9 * k, 50 + 13 * k), _blobs(rng, 4, 40 + 9 * k, 50 + 13 * k)) for k in range(6)]
    with ThreadPoolExecutor(2) as pool:
        results = list(pool.map(lambda pg: jf_per_frame(*pg), jobs * 3))
    for (pred, gt), (j, f) in zip(jobs * 3, results):
        j_ref, f_ref = ref_jf(pred, gt, 0.008)
        np.testing.assert_array_equal(j, j_ref)
        np.testing.assert_array_equal(f, f_ref)


def test_dilation_plan_covers_the_disk_exactly():
    # Radius 8 (480x854 frames): the 197-pixel disk is R ⊕ {0, v_1} ⊕ ... ⊕ {0, v_8} with R the 5 points
    # (-8, 0), (-7, -1..1), (-6, 0) (no tips apart): 8 shifted ORs + 4 ORs to spread R = 12 operations.
    plan = packed_module.dilation_plan(disk(8))
    assert (len(plan.steps), plan.spread, plan.tips) == (8, ((-8, 0), (-7, -1), (-7, 0), (-7, 1), (-6, 0)), ())
    for r in range(0, 20):
        plan = packed_module.peel_plan(disk(r))
        expected = {(int(y) - r, int(x) - r) for y, x in zip(*np.nonzero(disk(r)))}
        assert plan.footprint() == expected, r
        # The same offsets rebuilt by hand from the plan's parts (Minkowski sums of pairs, then union).
        rebuilt = set(plan.spread)
        for dy, dx in plan.steps:
            rebuilt = rebuilt | {(y + dy, x + dx) for y, x in rebuilt}
        assert rebuilt | set(plan.tips) == expected, r


def test_dilation_plan_handles_any_centrally_symmetric_footprint():
    # A plus sign of arm 2 (its thin arms leave no pair factor) and a 3x5 rectangle, which is one point plus
    # pair factors only: columns {0, 2} ⊕ {0, 1} ⊕ {0, 1} = 0..4, rows {0, 1} ⊕ {0, 1} = 0..2 (5 shifted ORs).
    plus = np.zeros((5, 5), bool)
    plus[2, :] = plus[:, 2] = True
    rect = np.zeros((5, 5), bool)
    rect[1:4, :] = True
    for footprint in (plus, rect):
        expected = {(int(y) - 2, int(x) - 2) for y, x in zip(*np.nonzero(footprint))}
        assert packed_module.dilation_plan(footprint).footprint() == expected
        assert packed_module.peel_plan(footprint).footprint() == expected
    assert len(packed_module.peel_plan(rect).steps) == 5 and len(packed_module.peel_plan(rect).spread) == 1


def test_swar_popcount_matches_bitwise_count():
    # The NumPy < 2.0 fallback: bits set per uint64 word.
    words = np.random.default_rng(0).integers(0, 2**63, 1000, dtype=np.uint64) * np.uint64(2) + np.uint64(1)
    words[:3] = [0, 2**64 - 1, 2**63]
    expected = [bin(int(x)).count("1") for x in words]
    assert packed_module._swar_popcount(words).tolist() == expected


def test_row_plan_covers_the_disk_and_is_chosen_where_the_peel_stalls():
    # Radius 2 (skimage's disk(2) is the diamond): half-widths 0, 1, 2, 1, 0 for dy = -2..2; the runs grow
    # 1 -> 2 -> 3 (width 1) -> 5 (width 2) with the offsets 1, 1, 2: 3 ORs + 5 rows - 1 copy = 7 operations.
    plan = packed_module.row_plan(disk(2))
    assert plan == packed_module.RowPlan(((0, (-2, 2)), (1, (-1, 1)), (2, (0,))))
    assert (plan.growth(), plan.cost()) == ([1, 1, 2], 7)
    for r in range(0, 41):
        expected = {(int(y) - r, int(x) - r) for y, x in zip(*np.nonzero(disk(r)))}
        assert packed_module.row_plan(disk(r)).footprint() == expected, r
    # Radius 17 (frame diagonals of 2,001-2,125 px) and 30: the peel leaves 117 and 165 points, the rows cost less.
    assert packed_module.peel_plan(disk(17)).cost() == 133
    assert isinstance(packed_module.dilation_plan(disk(17)), packed_module.RowPlan)
    assert isinstance(packed_module.dilation_plan(disk(30)), packed_module.RowPlan)
    assert isinstance(packed_module.dilation_plan(disk(8)), packed_module.DilationPlan)
    ring = np.zeros((5, 5), bool)
    ring[0, :] = ring[4, :] = True  # rows 0 and 4 full, the middle rows empty: runs, but not row-convex around 0
    ring[2, 0] = ring[2, 4] = True  # row 2 is two points: not one run
    assert packed_module.row_plan(ring) is None
