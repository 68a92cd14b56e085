# Copyright 2026 The videoseg-o3-verl authors. Licensed under the Apache License, Version 2.0.
"""The report's wiring: scripted trajectories (flag over turns, logged fraction) and each turn's own [SEG] mask
(engine preview, samples dump)."""

from __future__ import annotations

import torch

from videoseg_o3_verl.agent_loop import merge_server_fields
from videoseg_o3_verl.backends.cpu.scripted import SCRIPTED_FRACTION_METRIC, scripted_fraction
from videoseg_o3_verl.verl_ext.debug_dump import turn_mask_lists
from videoseg_o3_verl.verl_ext.seg_batch import SampleSegs, key_mask_preview, turn_key_previews


def _trajectory_fields(turns: list[dict]) -> dict:
    kept: dict = {}
    for fields in turns:
        kept = merge_server_fields(kept, fields)
    return kept


def test_any_scripted_turn_marks_the_trajectory_and_counts_once():
    sampled = {"global_steps": 1, "scripted": False}
    scripted = {"global_steps": 1, "scripted": True}
    batch = [_trajectory_fields([sampled, scripted]),           # turn 1 scripted → scripted
             _trajectory_fields([scripted, scripted, sampled]),  # two scripted turns → counted once
             _trajectory_fields([sampled, sampled]),
             _trajectory_fields([sampled])]
    assert [fields["scripted"] for fields in batch] == [True, True, False, False]
    # 2 scripted trajectories of 4 → 0.5 (turns are not counted: the first one has 3 turns, 2 scripted)
    assert scripted_fraction(batch) == 0.5
    assert SCRIPTED_FRACTION_METRIC == "rollout/scripted_fraction"


def test_merge_server_fields_keeps_first_tags_and_latest_max_global_steps():
    kept = merge_server_fields({}, {"global_steps": 3, "max_global_steps": 9})
    kept = merge_server_fields(kept, {"global_steps": 4, "max_global_steps": 10})
    kept = merge_server_fields(kept, None)  # a server without extra fields
    assert kept == {"global_steps": 3, "max_global_steps": 10}
    assert "scripted" not in kept  # never invented: a server that does not script says nothing


def test_turn_key_previews_take_each_turns_last_seg():
    # [SEG]s of turns 0, 0, 2, 3 with max_turns 3: turn 0 → its second [SEG], turn 1 → none, turn 2 → the third,
    # the [SEG] of turn 3 is beyond max_turns. 2×2 logits bilinearly resized to 2×2 (align_corners=False) are
    # unchanged, so each preview equals its [SEG]'s logits.
    logits = torch.tensor([[[9.0, 9.0], [9.0, 9.0]],
                           [[1.0, -1.0], [-1.0, 1.0]],
                           [[-2.0, 2.0], [2.0, -2.0]],
                           [[5.0, 5.0], [5.0, 5.0]]])
    sample = SampleSegs(index=0, record=None, trajectory=None, positions=[10, 20, 30, 40], turns=[0, 0, 2, 3])
    previews, has_mask = turn_key_previews(sample, logits, max_turns=3, size=2)
    assert has_mask.tolist() == [1.0, 0.0, 1.0]
    assert previews.tolist() == [[1.0, -1.0, -1.0, 1.0], [0.0, 0.0, 0.0, 0.0], [-2.0, 2.0, 2.0, -2.0]]
    # to the report's 0/1 lists: None where the turn had no [SEG]; a 2-turn trajectory gets 2 items
    flat = previews.flatten()
    assert turn_mask_lists(flat, has_mask, 3) == [[1, 0, 0, 1], None, [0, 1, 1, 0]]
    assert turn_mask_lists(flat, has_mask, 2) == [[1, 0, 0, 1], None]
    assert turn_mask_lists(flat, has_mask, 4) == [[1, 0, 0, 1], None, [0, 1, 1, 0], None]  # beyond max_turns


def test_key_mask_preview_is_bilinear_half_pixel():
    # 2×2 logits [[0, 4], [0, 4]] to 4×4. With align_corners=False output column j samples x = (j + 0.5)/2 - 0.5 =
    # -0.25, 0.25, 0.75, 1.25, clamped to 0, 0.25, 0.75, 1 → 0 + 4x = 0, 1, 3, 4 (rows are all equal)
    preview = key_mask_preview(torch.tensor([[0.0, 4.0], [0.0, 4.0]]), 4)
    assert preview.reshape(4, 4).tolist() == [[0.0, 1.0, 3.0, 4.0]] * 4
