# Copyright 2026 The videoseg-o3-verl authors. Licensed under the Apache License, Version 2.0.
"""The learning demo's report: curves from the trackers' rows, the before/after table, the same held-out samples
under SFT and RL side by side."""

import xml.etree.ElementTree as ET

import numpy as np
import pytest
from videoseg_reward.masks import encode_masks

from videoseg_o3_verl.data.parquet import convert_to_parquet, read_parquet_records
from videoseg_o3_verl.data.synthetic import generate_synthetic_dataset
from videoseg_o3_verl.demo.report import PLOTS, render_demo_report, same_samples, stage_plots
from videoseg_o3_verl.demo.summary import METRICS

SFT_ROWS = [{"step": s, "data": {"sft/ce": 3.0 / s, "sft/mask_loss": 1.0 / s, "sft/seg_iou": 0.1 * s}}
            for s in (1, 2, 3)]
RL_ROWS = [{"step": s, "data": {"videoseg/reward/strict_format_cot": 0.5, "videoseg/reward/lr_vtg_keyframe": 0.1 * s,
                                "videoseg/reward/total": 1.0 + s, "videoseg/avg_turns": 1.5,
                                "videoseg/select_rate": 0.5,
                                "videoseg/final_mask_iou": 0.2, "actor/pg_loss": -0.1, "actor/kl_loss": 0.01}}
           for s in (1, 2)] + [{"step": 2, "data": {"val-videoseg/synthetic/reward": 9.0}}]
EVAL = {p: {m: {"mean": v, "ci95": [v - 0.05, v + 0.05]} for m in METRICS}
        for p, v in (("fixed_guess", 0.25), ("sft", 0.625), ("rl", 0.75))}


def _polylines(svg: str) -> list[str]:
    root = ET.fromstring(svg)
    return [line.find("{http://www.w3.org/2000/svg}title").text
            for line in root.iter("{http://www.w3.org/2000/svg}polyline")]


def test_plots_draw_the_logged_metrics():
    sft = stage_plots(SFT_ROWS, PLOTS["sft"])
    assert [_polylines(svg) for svg in sft] == [["sft/ce", "sft/mask_loss"], ["sft/seg_iou"]]
    rl = stage_plots(RL_ROWS, PLOTS["rl"])
    assert _polylines(rl[0]) == ["videoseg/reward/total"]
    # every reward term, found by prefix (named without it); the total has its own plot
    assert _polylines(rl[1]) == ["strict_format_cot", "lr_vtg_keyframe"]
    assert _polylines(rl[2]) == ["videoseg/avg_turns"] and _polylines(rl[3]) == ["videoseg/select_rate"]
    assert _polylines(rl[4]) == ["videoseg/final_mask_iou"]  # final_keyframe_iou was not logged: no line
    assert _polylines(rl[5]) == ["actor/pg_loss", "actor/kl_loss"]
    assert all("no data" in svg for svg in stage_plots([], PLOTS["rl"]))


@pytest.fixture
def heldout(tmp_path):
    generate_synthetic_dataset(tmp_path / "syn", num_videos=1, seed=5, preset="grounding")
    convert_to_parquet("synthetic", tmp_path / "syn", tmp_path / "heldout.parquet")
    return read_parquet_records(str(tmp_path / "heldout.parquet"))


def _entry(record, keyframe: int, text: str) -> dict:
    masks = np.zeros((record.num_frames, record.height, record.width), dtype=bool)
    masks[keyframe] = record.decode_mask(keyframe)
    return {"video": record.video_id, "expression_id": record.expression_id,
            "result": {"prediction_masks": encode_masks(masks), "num_rounds": 1, "keyframe_index": keyframe,
                       "has_seg": True},
            "turns": [{"text": text, "kind": "answer", "vtg": {"start": 0, "end": 1, "keyframe": keyframe}}],
            "initial": {"low_res": list(range(record.num_frames)), "high_res": [0, 1]}}


def test_page_has_table_curves_and_side_by_side_trajectories(heldout):
    record = heldout[0]
    sft, rl = _entry(record, 0, "<think>sft turn</think>"), _entry(record, 3, "<think>rl turn</think>")
    rl["metrics"] = {"format_valid": 1.0, "keyframe_hit": 1.0, "tiou": 0.5, "jf": 72.25, "reward_total": 4.0}
    pairs = same_samples(heldout, [sft], [rl, _entry(heldout[1], 1, "other")], count=4)
    assert [p[0].name for p in pairs] == [record.name]  # only samples both policies evaluated
    page = render_demo_report({"rl": RL_ROWS, "sft": SFT_ROWS, "sft_head": SFT_ROWS}, EVAL, 300, "empty", pairs)
    assert "300 held-out samples" in page and "fixed guess (empty mask" in page
    assert "0.750 [0.700, 0.800]" in page and "0.250 [0.200, 0.300]" in page
    assert page.count("<svg") == len(PLOTS["sft"]) + len(PLOTS["sft_head"]) + len(PLOTS["rl"])
    assert page.index("RL: training curves") < page.index("SFT (cold start): training curves") \
        < page.index("Seg head on the frozen SFT policy")  # the mapping's order
    left, right = page.index("&lt;think&gt;sft turn"), page.index("&lt;think&gt;rl turn")
    assert page.count('<div class="pair">') == 1 and left < right  # SFT on the left, RL on the right
    assert right > page.index("keyframe hit 1, tIoU 0.500, J&amp;F 72.2, reward 4.000") > left
    assert page.count("data:image/png;base64,") > 2 * record.num_frames  # frames shown + mask overlays inlined
    assert "(keyframe)" in page


def test_same_samples_follows_record_order_and_count(heldout):
    sft = [_entry(r, 0, "s") for r in reversed(heldout)]
    rl = [_entry(r, 0, "r") for r in heldout]
    pairs = same_samples(heldout, sft, rl, count=2)
    assert [p[0].name for p in pairs] == [r.name for r in heldout[:2]]
    assert all(p[1]["expression_id"] == p[0].expression_id == p[2]["expression_id"] for p in pairs)
