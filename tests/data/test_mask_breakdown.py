# Copyright 2026 The videoseg-o3-verl authors. Licensed under the Apache License, Version 2.0.
"""`benchmarks/mask_breakdown.py` on a hand-made evaluation: frame groups, visible-frame IoU and the share of masks
that cover the named object most."""

from __future__ import annotations

import json

import pytest

from tests.benchmark_module import load_benchmark
from videoseg_o3_verl.data.parquet import convert_to_parquet, read_parquet_records
from videoseg_o3_verl.data.rle import encode_mask
from videoseg_o3_verl.data.synthetic import generate_synthetic_dataset


@pytest.fixture(scope="module")
def mask_breakdown():
    return load_benchmark("mask_breakdown")


def test_breakdown_counts_groups_iou_and_the_named_object(tmp_path, mask_breakdown):
    """One shared-window video, three expressions: the first predicted exactly, the second with another object's
    masks, the third empty. Visible frames 6 (2 per expression), 2 of them predicted empty, IoU (1 + 1 + 0 * 4) / 6;
    of the 4 masks on an object 2 cover the named one; the 18 other frames are blank and predicted empty."""
    generate_synthetic_dataset(tmp_path / "syn", num_videos=1, seed=3, preset="grounding_shared")
    convert_to_parquet("synthetic", tmp_path / "syn", tmp_path / "data.parquet")
    records = sorted(read_parquet_records(tmp_path / "data.parquet"), key=lambda r: str(r.expression_id))
    assert len(records) == 3
    frames = range(len(records[0].mask_existence))
    chosen = [records[0], records[2], None]  # what each expression's prediction shows
    lines = []
    for record, shown in zip(records, chosen, strict=True):
        masks = [encode_mask(shown.decode_mask(t) > 0 if shown is not None else record.decode_mask(t) < 0)
                 for t in frames]
        lines.append(json.dumps({"video": record.video_id, "expression_id": str(record.expression_id),
                                 "result": {"prediction_masks": masks}}))
    predictions = tmp_path / "predictions.jsonl"
    predictions.write_text("\n".join(lines) + "\n")
    result = mask_breakdown.breakdown(predictions, tmp_path / "data.parquet")
    assert result["visible"]["frames"] == 6 and result["blank"]["frames"] == 18 and "distractor" not in result
    assert result["visible"]["empty"] == pytest.approx(2 / 6)
    assert result["visible"]["iou"] == pytest.approx(2 / 6)
    assert result["visible"]["named"] == pytest.approx(0.5)
    assert result["blank"]["empty"] == 1.0
    assert mask_breakdown.breakdown_lines(result)[0].startswith("visible    frames 6 empty 0.333 iou 0.333 named 0.500")
    # the query-blind reference segments all three objects: below 100, above the empty mask's 75
    assert 75.0 < mask_breakdown.query_blind_jf(predictions, tmp_path / "data.parquet") < 100.0
