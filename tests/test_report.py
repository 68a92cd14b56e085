# Copyright 2026 The videoseg-o3-verl authors. Licensed under the Apache License, Version 2.0.
"""The HTML report (self-contained, escaped, every term and image present), the mask overlay colours and the
fixed-width console table."""

from __future__ import annotations

import base64
import io
import re

import numpy as np
import pytest
from PIL import Image

from videoseg_o3_verl.data.records import RVOSRecord
from videoseg_o3_verl.report import (
    ReportSample,
    ReportTurn,
    StepMetrics,
    format_metrics_table,
    frames_shown,
    overlay,
    render_report,
    turn_mask_previews,
    write_report,
)
from videoseg_o3_verl.trajectory import Trajectory, TurnRecord

TERMS = {"strict_format_cot": 1.0, "step_format_cot": 0.8333333, "lr_vtg_iou_dense": 0.4999999,
         "lr_vtg_keyframe": -1.0, "lr_maskiou_dense": 0.86, "lr_keyframe_vs_mask_dense": 0.5,
         "lr_progressive_keyframe_dense": -0.25}
SELECT = ('<think>Step 1: <b>bold</b> & "quotes"</think><select><VTG>{"start": 4, "end": 15, "keyframe": 9}</VTG>, '
          "<RefSeg>[SEG]</RefSeg></select><|im_end|>")
ANSWER = ('<think>Step 1. Action: answer</think><answer><VTG>{"start": 2, "end": 20, "keyframe": 11}</VTG>, '
          "<RefSeg>[SEG]</RefSeg></answer><|im_end|>")


def _record() -> RVOSRecord:
    return RVOSRecord(dataset="synthetic", video_id="vid<1>", video_path="/nonexistent", frame_ids=(), num_frames=24,
                      expression="the <red> square & friends", expression_id="3", object_ids=(1,),
                      mask_existence=(), masks_rle=(), type_id=None, height=8, width=8)


def _sample() -> ReportSample:
    traj = Trajectory(num_frames=24, initial_low_res=[0, 12, 23], spatial_frames=[0, 23], stop_reason="answer", turns=[
        TurnRecord(index=0, span=(0, 30), text=SELECT, kind="select", vtg={"start": 4, "end": 15, "keyframe": 9},
                   seg_keyframe=12, seg_positions=[25], observation_low_res=[4, 15], observation_keyframe=9),
        TurnRecord(index=1, span=(50, 80), text=ANSWER, kind="answer", vtg={"start": 2, "end": 20, "keyframe": 11},
                   seg_keyframe=9, seg_positions=[75])])
    frame = Image.new("RGB", (8, 8), (40, 40, 40))
    pred = np.zeros((8, 8), bool)
    pred[:4, :4] = True
    gt = np.zeros((8, 8), bool)
    gt[2:6, 2:6] = True
    turns = [ReportTurn(frames=[frame] * 5, frame_indices=frames_shown(traj, 0), keyframe_image=frame,
                        pred_mask=pred, gt_mask=gt),
             ReportTurn(frames=[frame] * 3, frame_indices=frames_shown(traj, 1), keyframe_image=None)]
    return ReportSample(record=_record(), trajectory=traj, turns=turns, reward_terms=TERMS, reward_total=1.4433332,
                        step=7)


def test_report_html_has_terms_escaped_text_and_images(tmp_path):
    rows = [StepMetrics(6, {"reward/mean": 1.25, "kl": 0.001}), StepMetrics(7, {"reward/mean": 1.5})]
    path = write_report(tmp_path / "sub" / "report.html", [_sample()], rows, title="Demo <run>")
    text = path.read_text(encoding="utf-8")
    # every reward term name with its value at 4 decimals, and the total
    for name, value in TERMS.items():
        assert re.search(rf"<td class=\"name\">{name}</td><td>{value:.4f}</td>", text), name
    assert "1.4433" in text
    # model text is escaped: no raw <think>/<select> tags or injected <b>, while the escaped form is shown
    for raw in ("<think>", "<select>", "<answer>", "<b>bold</b>", "<red>", "<run>"):
        assert raw not in text
    assert "&lt;think&gt;Step 1: &lt;b&gt;bold&lt;/b&gt; &amp; &quot;quotes&quot;&lt;/think&gt;" in text
    assert "the &lt;red&gt; square &amp; friends" in text and "synthetic/vid&lt;1&gt;/3" in text
    # images: 5 + 3 thumbnails + 1 overlay (turn 1 has no keyframe image); all inlined, valid PNGs
    srcs = re.findall(r'<img src="([^"]+)"', text)
    assert len(srcs) == 5 + 3 + 1
    assert all(s.startswith("data:image/png;base64,") for s in srcs)
    for s in srcs:
        Image.open(io.BytesIO(base64.b64decode(s.split(",", 1)[1]))).verify()
    assert not re.search(r"(src|href)=\"(?!data:)", text)  # no external assets
    # frame-index captions: turn 0 shows low-res [0, 12, 23] + high-res [0, 23]; turn 1 the select's [4, 15] + 9
    assert re.findall(r"<figcaption>(\d+)</figcaption>", text) == ["0", "12", "23", "0", "23", "4", "15", "9"]
    # metrics table: union of keys, missing value shown as "-"
    assert "<th>step</th><th>reward/mean</th><th>kl</th>" in text
    assert "<tr><td>7</td><td>1.5000</td><td>-</td></tr>" in text
    # overlay IoU: pred 4x4 at (0,0) vs GT 4x4 at (2,2): inter 2x2 = 4, union 16 + 16 - 4 = 28
    assert f"IoU {4 / (28 + 1e-6):.4f}" in text


def test_report_rejects_turn_count_mismatch():
    sample = _sample()
    sample.turns = sample.turns[:1]
    with pytest.raises(ValueError, match=r"synthetic/vid<1>/3: 1 ReportTurn\(s\) for a trajectory of 2"):
        render_report([sample], [])


def test_overlay_colours_on_handmade_4x4():
    img = Image.fromarray(np.full((4, 4, 3), 100, np.uint8))
    pred = np.zeros((4, 4), bool)
    pred[0, :2] = True      # (0,0), (0,1) predicted
    gt = np.zeros((4, 4), bool)
    gt[0, 1:3] = True       # (0,1), (0,2) ground truth → (0,1) is the overlap
    out = np.asarray(overlay(img, pred, gt, alpha=0.4))
    # blended channel = 0.6·100 + 0.4·255 = 162; unblended = 0.6·100 + 0.4·0 = 60; untouched = 100
    assert out[0, 0].tolist() == [162, 60, 60]     # red: prediction only
    assert out[0, 1].tolist() == [162, 162, 60]    # yellow: both
    assert out[0, 2].tolist() == [60, 162, 60]     # green: ground truth only
    assert (out[1:] == 100).all() and out[0, 3].tolist() == [100, 100, 100]
    # alpha 1 gives the pure colours; a None prediction shows the ground truth only
    pure = np.asarray(overlay(img, pred, gt, alpha=1.0))
    assert pure[0, :3].tolist() == [[255, 0, 0], [255, 255, 0], [0, 255, 0]]
    assert np.asarray(overlay(img, None, gt, alpha=1.0))[0, :3].tolist() == [[100, 100, 100], [0, 255, 0], [0, 255, 0]]


def test_overlay_rejects_mask_of_wrong_size():
    with pytest.raises(ValueError, match=r"pred_mask has shape \(2, 2\) but the image is \(4, 4\)"):
        overlay(Image.new("RGB", (4, 4)), np.zeros((2, 2), bool), None)


def test_format_metrics_table_aligns_columns():
    rows = [StepMetrics(1, {"reward": 2.5, "kl": 0.00123}), {"step": 12, "reward": -10.0, "response_length": 512}]
    table = format_metrics_table(rows, ["reward", "kl", "response_length"], width=8)
    lines = table.splitlines()
    # header, rule, 2 rows; widths: step 8, reward 8, kl 8, response_length 15 (its name) + 3 separators of 2
    assert len(lines) == 4 and {len(line) for line in lines} == {8 + 8 + 8 + 15 + 3 * 2}
    assert lines[0] == "    step    reward        kl  response_length"
    assert lines[1] == "--------  --------  --------  ---------------"
    assert lines[2] == "       1    2.5000    0.0012                -"
    assert lines[3] == "      12  -10.0000         -              512"
    # a row printed alone (header=False) lines up with the header printed earlier
    alone = format_metrics_table(rows[1:], ["reward", "kl", "response_length"], width=8, header=False)
    assert alone == lines[3]


def _captions(text: str) -> list[str]:
    return re.findall(r'<figure class="overlay">.*?<figcaption>(.*?)</figcaption>', text)


def test_each_turn_shows_its_own_mask():
    sample = _sample()
    frame = sample.turns[0].keyframe_image
    own = np.zeros((8, 8), bool)
    own[2:6, 2:6] = True  # turn 1's own prediction equals its ground truth: IoU 1
    sample.turns[1] = ReportTurn(frames=[frame] * 3, frame_indices=[4, 15, 9], keyframe_image=frame, pred_mask=own,
                                 gt_mask=own.copy())
    captions = _captions(render_report([sample], []))
    # turn 0: pred 4x4 at (0,0) vs GT 4x4 at (2,2) → 4 / 28; turn 1: 16 / 16
    assert [c.split("; ")[-1] for c in captions] == [f"IoU {4 / (28 + 1e-6):.4f}", f"IoU {16 / (16 + 1e-6):.4f}"]


def test_turn_mask_previews_per_turn_and_legacy_dump():
    traj = _sample().trajectory
    zero, one = [0] * 4, [1, 1, 1, 0]
    masks = turn_mask_previews({"turn_key_masks": [one, None], "final_key_mask": zero}, traj)
    assert masks[0].tolist() == [[True, True], [True, False]] and masks[1] is None  # per-turn data wins
    with pytest.raises(ValueError, match="1 turn masks for a trajectory of 2"):
        turn_mask_previews({"turn_key_masks": [one]}, traj)
    # legacy dump: the final mask belongs to the last turn WITH a [SEG], here turn 0 (turn 1 wrote none)
    traj.turns[1].seg_positions = []
    masks = turn_mask_previews({"final_key_mask": one}, traj)
    assert masks[0].tolist() == [[True, True], [True, False]] and masks[1] is None
    with pytest.raises(ValueError, match="not a square"):
        turn_mask_previews({"final_key_mask": [1, 0, 1]}, traj)


def test_missing_mask_caption_says_why():
    sample = _sample()
    frame = sample.turns[0].keyframe_image
    sample.turns[0].pred_mask = None  # turn 0 wrote a [SEG] but no mask was recorded for it
    sample.turns[1] = ReportTurn(frames=[frame] * 3, frame_indices=[4, 15, 9], keyframe_image=frame)
    sample.trajectory.turns[1].seg_positions = []
    captions = _captions(render_report([sample], []))
    assert captions[0].endswith("[SEG] mask not recorded") and captions[1].endswith("no [SEG] in this turn")


def test_scripted_trajectories_are_marked_and_metrics_scroll():
    sampled, scripted = _sample(), _sample()
    scripted.scripted = True
    text = render_report([sampled, scripted], [StepMetrics(1, {f"metric/{k}": 1.0 for k in range(40)})])
    sections = re.findall(r'<section class="([^"]+)"><h2>(.*?)</h2>', text)
    assert [(css, "scripted</span>" in h2) for css, h2 in sections] == [("sample", False), ("sample scripted", True)]
    assert re.search(r'<div class="table-scroll"><table class="metrics">', text)
    assert re.search(r"div\.table-scroll \{ overflow-x: auto", text)


def test_demo_marks_trajectories_the_trainer_flagged_scripted():
    from videoseg_o3_verl.demo import is_scripted

    assert is_scripted({"scripted": True})
    assert not is_scripted({"scripted": False})
    assert not is_scripted({})  # a dump without the flag (older runs): not claimed scripted
