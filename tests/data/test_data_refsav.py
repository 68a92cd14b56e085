# Copyright 2026 The videoseg-o3-verl authors. Licensed under the Apache License, Version 2.0.
"""Ref-SAV converter on a tiny hand-made `ref_sav_eval` layout (4x5 px frames, hand-placed mask pixels)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from videoseg_o3_verl.data.converters import convert_dataset, list_converters
from videoseg_o3_verl.data.rle import decode_rle, encode_mask

H, W = 4, 5
FRAMES = ["00000", "00001", "00002"]


def _rle(*pixels):
    m = np.zeros((H, W), bool)
    for y, x in pixels:
        m[y, x] = True
    return encode_mask(m)


@pytest.fixture
def refsav_root(tmp_path: Path) -> Path:
    for vid in ("sav_001", "sav_002"):
        (tmp_path / "videos" / vid).mkdir(parents=True)
        for stem in FRAMES:
            Image.new("RGB", (W, H), (10, 20, 30)).save(tmp_path / "videos" / vid / f"{stem}.jpg")
    (tmp_path / "mask_dict.json").write_text(json.dumps({
        "0": [_rle((0, 0)), None, _rle((1, 1))],
        "1": [_rle((0, 1)), None, None],
        "2": [None, _rle((3, 4)), None],
    }))
    (tmp_path / "meta_expressions_valid.json").write_text(json.dumps({"videos": {
        "sav_001": {"frames": FRAMES, "height": H, "width": W, "expressions": {
            "0": {"exp": "the person on the left who walks to the door and then opens it slowly", "anno_id": [0, 1],
                  "type_id": 0},
            "1": {"exp": "a dog", "anno_id": [2], "type_id": 1}}},
        "sav_002": {"frames": FRAMES, "height": H, "width": W, "expressions": {
            "0": {"exp": "the cup", "anno_id": [2], "type_id": 1}}}}}))
    return tmp_path


def test_refsav_is_registered_and_merges_objects(refsav_root):
    assert "refsav" in list_converters()
    long, short, other = convert_dataset("refsav", str(refsav_root), "valid")
    assert (long.dataset, long.video_id, long.expression_id, long.type_id) == ("refsav", "sav_001", "0", 0)
    assert long.video_path == os.path.abspath(refsav_root / "videos" / "sav_001")
    # anno ids 0 and 1 are OR-merged: frame 0 has pixels (0, 0) and (0, 1); frame 1 empty; frame 2 (1, 1)
    assert long.mask_existence == (1, 0, 1) and long.object_ids == (0, 1)
    assert set(zip(*np.nonzero(decode_rle(long.masks_rle[0])), strict=True)) == {(0, 0), (0, 1)}
    assert long.masks_rle[1] is None
    assert (short.type_id, short.mask_existence, other.video_id) == (1, (0, 1, 0), "sav_002")


def test_refsav_without_masks_and_limit(refsav_root):
    recs = convert_dataset("refsav", str(refsav_root), "valid", with_masks=False, limit=2)
    assert len(recs) == 2 and not recs[0].has_ground_truth


def test_refsav_missing_frame_names_file_and_video(refsav_root):
    os.remove(refsav_root / "videos" / "sav_002" / "00001.jpg")
    with pytest.raises(FileNotFoundError) as info:
        convert_dataset("refsav", str(refsav_root), "valid")
    assert "sav_002" in str(info.value) and "00001.jpg" in str(info.value)
    with pytest.raises(FileNotFoundError, match="meta_expressions_test.json"):
        convert_dataset("refsav", str(refsav_root), "test")
