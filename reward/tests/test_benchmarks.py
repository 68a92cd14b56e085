# Copyright 2026 The videoseg-o3-verl authors. Licensed under the Apache License, Version 2.0.
"""Benchmark tables (`videoseg_reward.benchmarks`) on hand-computed cases; expected numbers are worked out in the
comments."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image
from videoseg_reward.benchmarks import (
    canonical_benchmark,
    expression_metrics,
    groundmore_action_window,
    groundmore_gt,
    groundmore_palette_mask,
    long_rvos_gt,
    ref_davis_anno_ids,
    score,
)


def _row(video, exp, j, f, **extra):
    return {"video": video, "expression_id": exp, "J": j, "F": f, **extra}


REVOS_ROWS = [
    _row("v1", "0", 0.123456, 0.5, A=0.9, R=1.0, type_id=0),
    _row("v1", "1", 0.11114, 0.3, A=0.8, R=0.5, type_id=0),
    _row("v2", "0", 0.5, 0.7, A=1.0, R=0.0, type_id=1),
]


def test_revos_rounds_each_expression_and_averages_the_subsets():
    out = score("ReVOS", REVOS_ROWS)
    # per expression, round(100 x, 2): J 12.3456 -> 12.35, 11.114 -> 11.11; referring J = (12.35 + 11.11) / 2
    ref, reas = out["subsets"]["referring"], out["subsets"]["reasoning"]
    assert ref["J"] == pytest.approx(11.73, abs=1e-12) and ref["F"] == pytest.approx(40.0)
    assert (ref["A"], ref["R"], ref["count"]) == (pytest.approx(85.0), pytest.approx(75.0), 2)
    assert ref["J&F"] == pytest.approx((11.73 + 40) / 2)                       # 25.865
    assert (reas["J"], reas["F"], reas["A"], reas["R"]) == (50.0, 70.0, 100.0, 0.0)
    # overall = mean of the two subset means, not of the three expressions ((12.35 + 11.11 + 50) / 3 = 24.49)
    assert out["J"] == pytest.approx((11.73 + 50) / 2)                         # 30.865
    assert out["F"] == pytest.approx(55.0) and out["A"] == pytest.approx(92.5) and out["R"] == pytest.approx(37.5)
    assert out["J&F"] == pytest.approx((25.865 + 60) / 2)                      # 42.9325
    assert out["count"] == 3
    # clean: no per-expression rounding: referring J = (12.3456 + 11.114) / 2 = 11.7298
    clean = score("revos", REVOS_ROWS, parity=False)
    assert clean["subsets"]["referring"]["J"] == pytest.approx(11.7298)
    assert clean["J"] == pytest.approx((11.7298 + 50) / 2)


def test_revos_rounding_uses_numpy_rounding_like_the_script():
    # the script rounds NumPy floats (np.round: scale, round half to even, unscale); 0.0012345 * 100 = 0.12345
    # is stored as 0.12344999..., so both give 0.12 -- and the mean of one value is that value
    rows = [_row("a", "0", 0.0012345, 0.0, A=0.0, R=0.0, type_id=0), _row("b", "0", 0.0, 0.0, A=0, R=0, type_id=1)]
    assert score("revos", rows)["subsets"]["referring"]["J"] == float(np.round(100 * np.float64(0.0012345), 2))


def test_revos_expression_metrics_with_empty_foreground_frame():
    gt = np.zeros((2, 4, 4), bool)
    gt[0, :2, :2] = True                                  # 4 px
    pred = np.zeros_like(gt)
    pred[0, :2, :3] = True                                # 6 px, 2 false positives
    fg = np.zeros_like(gt)
    fg[0, :, :2] = True                                   # 8 px; frame 1: foreground, prediction and GT all empty
    m = expression_metrics("revos", pred, gt, foreground=fg)
    # J: frame 0 4/6, frame 1 empty union -> 1 => (2/3 + 1) / 2; A: frame 0 14/16, frame 1 1 => 0.9375
    assert m["J"] == pytest.approx((4 / 6 + 1) / 2) and m["A"] == pytest.approx((14 / 16 + 1) / 2)
    # R: frame 0 1 - 2 / (8 + 1e-6); frame 1 1 - 0 / 1e-6 = 1 (not NaN)
    assert m["R"] == pytest.approx((1 - 2 / (8 + 1e-6) + 1) / 2, abs=1e-12)
    with pytest.raises(ValueError, match="foreground"):
        expression_metrics("revos", pred, gt)


def test_revos_overlapping_objects_score_as_the_script_counts_them():
    # two objects of one expression overlap on 2 px: the scripts add their masks in uint8 (count 2 there)
    counts = np.zeros((1, 2, 4), np.uint8)
    counts[0, 0, :2] = 1
    counts[0, 0, 2:] = 2                                  # the overlap
    pred = np.zeros((1, 2, 4), bool)
    pred[0, 0, :] = True                                  # predicts the union exactly
    pred[0, 1, 0] = True                                  # plus 1 false positive
    fg = np.ones((1, 2, 4), bool)                         # 8 foreground px
    m = expression_metrics("revos", pred, counts, foreground=fg)
    # A: count == pred fails on the 2 overlap px and the false positive -> 5/8
    # R: false positives weighted (1 - count) mod 256: 1 (the real one) + 255 * 2 (overlap) = 511 -> max(1 - 511/8, 0)
    assert m["A"] == 5 / 8 and m["R"] == 0.0
    clean = expression_metrics("revos", pred, counts, foreground=fg, parity=False)
    # union: A 7/8; R 1 - 1 / (8 + 1e-6)
    assert clean["A"] == 7 / 8 and clean["R"] == pytest.approx(1 - 1 / 8.000001, abs=1e-15)
    assert expression_metrics("revos", pred, counts > 0, foreground=fg) == clean  # a union is scored plainly
    # J and F only see the union either way
    assert (m["J"], m["F"]) == (clean["J"], clean["F"])


def test_ref_sav_long_short_subsets():
    rows = [_row("a", "0", 0.2, 0.4, A=0.9, type_id=0), _row("a", "1", 0.6, 0.8, A=0.7, type_id=1),
            _row("b", "0", 0.4, 0.2, A=0.5, type_id=1)]
    out = score("ref_sav", rows)
    # long: J 20, F 40, A 90; short: J (60 + 40) / 2 = 50, F (80 + 20) / 2 = 50, A 60; overall = subset means' mean
    assert out["subsets"]["long"]["J&F"] == pytest.approx(30.0) and out["subsets"]["short"]["A"] == pytest.approx(60)
    assert (out["J"], out["F"], out["A"], out["J&F"]) == (pytest.approx(35.0), pytest.approx(45.0),
                                                          pytest.approx(75.0), pytest.approx(40.0))
    assert "R" not in out


@pytest.mark.parametrize("name", ["mevis_valid_u", "Ref-DAVIS17", "reasonvos"])
def test_plain_benchmarks_round_the_final_means(name):
    rows = [_row("a", "0", 0.1, 0.5), _row("a", "1", 0.2, 0.6), _row("b", "0", 0.3337, 0.7)]
    out = score(name, rows)
    # J mean = 0.6337 / 3 = 0.211233.. -> 21.12; F 0.6 -> 60.0; J&F = 100 (0.211233 + 0.6) / 2 = 40.5617 -> 40.56
    assert out == {"J": 21.12, "F": 60.0, "J&F": 40.56, "count": 3}
    clean = score(name, rows, parity=False)
    assert clean["J"] == pytest.approx(21.123333333) and clean["J&F"] == pytest.approx(40.5616666667)


def test_ref_davis_anno_ids_number_sorted_videos_then_sorted_expression_ids():
    videos = {"b": {"expressions": {"1": {}, "0": {}}}, "a": {"expressions": {"2": {}, "10": {}, "1": {}}}}
    # "a" first; its ids sort as strings: "1" < "10" < "2"
    assert ref_davis_anno_ids(videos) == {("a", "1"): 0, ("a", "10"): 1, ("a", "2"): 2, ("b", "0"): 3, ("b", "1"): 4}


def test_long_rvos_tables():
    rows = [
        _row("v1", "0", 0.5, 0.7, J_sample=0.6, J_keyframe=1.0, keyframe_empty=0, keyframe_total=1, num_rounds=1,
             num_frames=100, type_id="static"),
        _row("v1", "1", 0.3, 0.1, J_sample=0.2, J_keyframe=0.0, keyframe_empty=1, keyframe_total=1, num_rounds=2,
             num_frames=100, type_id="dynamic"),
        _row("v2", "0", 0.1, 0.3, J_sample=0.4, J_keyframe=0.5, keyframe_empty=0, keyframe_total=1, num_rounds=2,
             num_frames=51, type_id="dynamic"),
        _row("71fb69bbcd", "0", 0.0, 0.0, J_sample=0.0, J_keyframe=0.0, keyframe_empty=1, keyframe_total=1,
             num_rounds=1, num_frames=10, type_id="static"),  # the video the script ignores
    ]
    out = score("Long-RVOS", rows)
    # J (0.5 + 0.3 + 0.1) / 3 = 30.0; F (0.7 + 0.1 + 0.3) / 3 = 36.67; J&F 33.33; J_sample 40.0; J_keyframe 50.0;
    # 1 empty keyframe GT out of 3 -> 33.33 %
    assert (out["J"], out["F"], out["J&F"], out["J_sample"], out["J_keyframe"]) == (30.0, 36.67, 33.33, 40.0, 50.0)
    assert out["keyframe_gt_empty_ratio"] == 33.33 and out["count"] == 3
    # rounds: 1 -> one expression; 2 -> J (0.3 + 0.1) / 2 = 20.0, J_keyframe 25.0, frames (100 + 51) / 2 = 75.5
    assert out["by_round"][1] == {"count": 1, "J": 50.0, "J_sample": 60.0, "J_keyframe": 100.0, "avg_num_frames": 100}
    assert out["by_round"][2] == {"count": 2, "J": 20.0, "J_sample": 30.0, "J_keyframe": 25.0, "avg_num_frames": 75.5}
    # types: dynamic J 20, F 20, J&F 20
    assert out["by_type"]["dynamic"] == {"count": 2, "J&F": 20.0, "J": 20.0, "F": 20.0, "J_sample": 30.0}
    # the clean form keeps the ignored video: J = 0.9 / 4 = 22.5
    assert score("longrvos", rows, parity=False)["J"] == pytest.approx(22.5)


def test_long_rvos_expression_metrics_and_gt(tmp_path):
    frames = ["00000", "00005", "00010"]
    for oid, frame, box in [(1, "00000", (0, 0, 2, 2)), (2, "00000", (2, 2, 4, 4)), (2, "00010", (0, 0, 4, 1))]:
        folder = tmp_path / "Annotations" / "vid" / str(oid)
        folder.mkdir(parents=True, exist_ok=True)
        mask = np.zeros((4, 4), np.uint8)
        mask[box[1]:box[3], box[0]:box[2]] = 255
        Image.fromarray(mask).save(folder / f"{frame}.png")
    gt = long_rvos_gt(tmp_path, "vid", frames, [1, 2], (4, 4))
    # union of both objects on frame 0 (8 px); frame 00005 has no PNG at all -> empty; frame 10: object 2 only
    assert gt[0].sum() == 8 and not gt[1].any() and gt[2].sum() == 4
    pred = np.zeros_like(gt)
    pred[0, :2, :2] = True                                # J frame 0 = 4 / 8
    pred[2] = gt[2]                                       # J frame 2 = 1; frame 1: both empty -> 1
    m = expression_metrics("longrvos", pred, gt, sample_indices=[0, 2, 7], keyframe_indices=[1])
    # J = (0.5 + 1 + 1) / 3; J_sample on frames 0, 2 (7 is past the video) = 0.75; keyframe 1: J 1, GT empty
    assert m["J"] == pytest.approx(2.5 / 3) and m["J_sample"] == pytest.approx(0.75)
    assert (m["J_keyframe"], m["keyframe_empty"], m["keyframe_total"]) == (1.0, 1, 1)
    assert expression_metrics("longrvos", pred, gt)["J_sample"] == 0.0   # no shown frames -> 0, as the script


def test_groundmore_window_sampling_and_palette(tmp_path):
    # clip starts at 01:30; action 01:32-01:35 -> frames (2 * 6, 5 * 6 - 1)
    assert groundmore_action_window("abc_0130_0200", "01:32", "01:35") == (12, 29)
    assert groundmore_action_window("abc_0130_0200", "1:31:00", "1:31:01")[0] == (5400 + 60 - 90) * 6
    # 5 frames: linspace(0, 4, 20).astype(int) samples frame 0 five times, 1 five, 2 five, 3 four, 4 once
    palette = np.zeros((5, 4, 4), np.uint8)
    palette[:, :2, :2] = 3                                # object id 3 on every frame
    palette[:, 2:, 2:] = 5                                # another object
    gt = groundmore_gt({t: palette[t] for t in range(5)}, 3, (1, 2), 5, (4, 4))
    assert [bool(g.any()) for g in gt] == [False, True, True, False, False]   # only inside the action window
    pred = np.zeros((5, 4, 4), bool)
    pred[1:4, :2, :2] = True                              # right on frames 1, 2; a false positive on frame 3
    m = expression_metrics("groundmore", pred, gt)
    # per sampled frame J: frames 0, 4 empty/empty = 1, frames 1, 2 = 1, frame 3 = 0 -> (5 + 5 + 5 + 0 + 1) / 20
    assert m["J"] == pytest.approx(0.8) and m["F"] == pytest.approx(0.8)
    # palette files: frame_000003.png, else 0000003.png; missing -> None
    image = Image.fromarray(palette[3], mode="P")
    image.putpalette([c for i in range(256) for c in (i, 255 - i, 7 * i % 256)])  # DAVIS-style palette PNG
    image.save(tmp_path / "0000003.png")
    np.testing.assert_array_equal(groundmore_palette_mask(tmp_path, 3), palette[3])
    assert groundmore_palette_mask(tmp_path, 4) is None


def test_groundmore_tables_are_unrounded_means():
    rows = [_row("a", "0", 0.2, 0.4, type_id="Causal", num_rounds=1),
            _row("a", "1", 0.4, 0.6, type_id="Causal", num_rounds=2),
            _row("b", "0", 0.9, 0.9, type_id="Sequential", num_rounds=2)]
    out = score("GroundMoRe", rows)
    # global J (0.2 + 0.4 + 0.9) / 3 = 50.0, F (0.4 + 0.6 + 0.9) / 3 = 63.33..; Causal J&F (30 + 50) / 2 = 40
    assert out["J"] == pytest.approx(50.0) and out["F"] == pytest.approx(190 / 3) and out["count"] == 3
    assert out["by_type"]["Causal"]["J&F"] == pytest.approx(40.0) and out["by_type"]["Sequential"]["count"] == 1
    assert out["by_round"][2]["J"] == pytest.approx(65.0) and out["by_round"][1]["F"] == pytest.approx(40.0)


def test_bad_rows_name_the_problem():
    with pytest.raises(ValueError, match="unknown benchmark"):
        score("kinetics", REVOS_ROWS)
    with pytest.raises(ValueError, match="no expression rows"):
        score("mevis", [])
    with pytest.raises(ValueError, match=r"row #0 \(v1/0\): missing field\(s\) \['R'\]"):
        score("revos", [{k: v for k, v in REVOS_ROWS[0].items() if k != "R"}])
    with pytest.raises(ValueError, match=r"J must be a number in \[0, 1\]"):
        score("mevis", [_row("a", "0", 55.0, 0.5)])
    with pytest.raises(ValueError, match="reasoning"):
        score("revos", REVOS_ROWS[:2])
    assert canonical_benchmark("MeViS-valid_u") == "mevis" and canonical_benchmark("Ref_DAVIS17") == "refdavis"
