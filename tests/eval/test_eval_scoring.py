# Copyright 2026 The videoseg-o3-verl authors. Licensed under the Apache License, Version 2.0.
"""Per-expression score rows: what each benchmark gets from the record and the episode (hand-computed)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from videoseg_o3_verl.data.records import RVOSRecord
from videoseg_o3_verl.data.rle import encode_mask
from videoseg_o3_verl.eval.scoring import expression_row

GT = np.zeros((3, 4, 4), bool)
GT[:2, :2, :2] = True  # frames 0 and 1: the 2x2 top-left block; frame 2: absent
PRED = np.zeros((3, 4, 4), bool)
PRED[0, :2, :2] = True  # frame 0 exact, frame 1 missed
PRED[2, 3, 3] = True  # frame 2: one false-positive pixel


def record(extra=None, type_id=None) -> RVOSRecord:
    return RVOSRecord(dataset="x", video_id="v", video_path="/nowhere", frame_ids=("a", "b", "c"), num_frames=3,
                      expression="it", expression_id="0", object_ids=(1,), mask_existence=(1, 1, 0),
                      masks_rle=(encode_mask(GT[0]), encode_mask(GT[1]), None), type_id=type_id, height=4, width=4,
                      extra=extra or {})


def test_plain_row_j_and_identity_fields():
    row = expression_row("mevis", record(type_id=1), PRED, shown_frames=[0], keyframe=0, num_rounds=2)
    # J per frame: 1 (exact), 0 (missed), 0 (1 false pixel vs empty GT) -> 1/3
    assert row["J"] == pytest.approx(1 / 3)
    assert (row["video"], row["expression_id"], row["type_id"], row["num_rounds"], row["num_frames"]) == (
        "v", "0", 1, 2, 3)


def test_revos_row_reads_the_foreground_file(tmp_path):
    fg = tmp_path / "mask_dict_foreground.json"
    full = encode_mask(np.ones((4, 4), bool))
    fg.write_text(json.dumps({"v": {"masks_rle": [full, full, full]}}))
    row = expression_row("revos", record(extra={"foreground": {"file": str(fg), "key": "v"}}, type_id=0), PRED,
                         shown_frames=[0], keyframe=0, num_rounds=1)
    # A per frame: 16/16, 12/16 (4 missed), 15/16 -> mean 0.895833; R: 1, 1, 1 - 1/16 -> mean 0.979167
    assert row["A"] == pytest.approx((1 + 0.75 + 0.9375) / 3)
    assert row["R"] == pytest.approx((1 + 1 + 0.9375) / 3)
    with pytest.raises(ValueError, match="v/0.*mask_dict_foreground"):
        expression_row("revos", record(type_id=0), PRED, shown_frames=[0], keyframe=0, num_rounds=1)


def test_long_rvos_row_uses_shown_frames_keyframe_and_the_text_type():
    row = expression_row("longrvos", record(extra={"type": "dynamic"}), PRED, shown_frames=[0, 0, 1], keyframe=0,
                         num_rounds=1)
    # shown frames {0, 1}: J 1 and 0 -> 0.5; keyframe 0: J 1, its ground truth is not empty
    assert row["J_sample"] == pytest.approx(0.5) and row["J_keyframe"] == pytest.approx(1.0)
    assert row["keyframe_empty"] == 0 and row["type_id"] == "dynamic"
