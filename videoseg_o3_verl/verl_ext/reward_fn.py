# Copyright 2026 The videoseg-o3-verl authors. Licensed under the Apache License, Version 2.0.
"""Text-only VideoSEG-O3 reward for verl's reward loop (``reward.custom_reward_function``).

verl scores each trajectory as soon as it is rolled out, before any actor forward, so only the terms that need no
masks can be computed here: the two format terms and the two temporal-grounding terms (docs/method.md §5). The
VideoSEG-O3 trainer replaces this score with the full reward after the actor forward; validation (which runs no
actor forward) reports these text terms per dataset.
"""

from __future__ import annotations

from videoseg_reward.terms import lr_vtg_iou_dense, lr_vtg_keyframe, step_format_cot, strict_format_cot

from ..data.parquet import record_from_extra_info
from ..trajectory import EXTRA_FIELDS_KEY, Trajectory

TEXT_TERMS = ("strict_format_cot", "step_format_cot", "lr_vtg_iou_dense", "lr_vtg_keyframe")


def compute_score(data_source: str, solution_str: str, ground_truth, extra_info=None, parity: bool = True,
                  **kwargs) -> dict:
    """``{"score": sum of the text terms, <term>: value, "num_turns_agent": n}`` for one trajectory."""
    extra_info = extra_info or {}
    if EXTRA_FIELDS_KEY not in extra_info:
        raise ValueError(f"data source {data_source!r}: the sample has no VideoSEG-O3 trajectory (extra_info keys "
                         f"{sorted(extra_info)}); was it rolled out by the videoseg_o3 agent loop?")
    trajectory = Trajectory.from_extra_fields(extra_info)
    record = record_from_extra_info(extra_info)
    turns = [turn.text for turn in trajectory.turns]
    values = {"strict_format_cot": strict_format_cot(turns, parity=parity), "step_format_cot": step_format_cot(turns)}
    if record.mask_existence:
        values["lr_vtg_iou_dense"] = lr_vtg_iou_dense(turns, record.mask_existence, parity=parity)
        values["lr_vtg_keyframe"] = lr_vtg_keyframe(turns, record.mask_existence, parity=parity)
    return {"score": float(sum(values.values())), **values, "num_turns_agent": len(turns)}
