# Copyright 2026 The videoseg-o3-verl authors. Licensed under the Apache License, Version 2.0.
"""Per-episode metrics of `videoseg-o3 eval`, the same code for every policy (pure functions).

- `format_valid`: 1 when the strict format reward (`videoseg_reward.terms.strict_format_cot`, with the training
  recipe's `videoseg_o3.rewards.parity`) of the episode's turns is +1, else 0;
- `keyframe_hit`: 1 when the keyframe of the final turn's VTG (its answer, or the select that used the last turn)
  is a frame where the target is visible (`mask_existence`; `lr_vtg_keyframe` with the strict parser);
- `tiou`: temporal IoU of the final turn's inclusive interval `[start, end]` with the frames where the target is
  visible (`videoseg_reward.metrics.temporal_iou_masks`);
- `jf`: J&F of the masks propagated over the whole video, in percent;
- `reward_total`: the paper's reward (`RewardSpec.paper()`), fed like in training (see
  `videoseg_o3_verl.verl_ext.rewarding.reward_inputs`); `reward_terms` holds each term.

A final turn without a parsable VTG (strict parser: all of start/end/keyframe present, integral) scores 0 on
`keyframe_hit` and `tiou`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from videoseg_reward.metrics import interval_mask, temporal_iou_masks
from videoseg_reward.terms import RewardSpec, TrajectoryRewardInputs, lr_vtg_keyframe, parse_last_vtg, strict_format_cot

EPISODE_METRICS = ("format_valid", "keyframe_hit", "tiou", "jf", "reward_total")
"""The per-episode metrics, in report order."""


def jf_percent(score_row: dict[str, Any] | None) -> float:
    """J&F in percent of an expression's score row (`(J + F) / 2 * 100`); 0 without a row.

    Example:
        >>> jf_percent({"J": 0.5, "F": 0.25}), jf_percent(None)
        (37.5, 0.0)
    """
    if score_row is None:
        return 0.0
    return 100.0 * (float(score_row["J"]) + float(score_row["F"])) / 2.0


def final_tiou(turns: Sequence[str], mask_existence: Sequence[float]) -> float:
    """Temporal IoU of the final turn's `[start, end]` (strict parse, clamped to the video) with the visible frames;
    0 when the final turn has no parsable VTG.

    Example:
        >>> ans = '<answer><VTG>{"start": 1, "end": 3, "keyframe": 2}</VTG></answer>'
        >>> final_tiou([ans], [0, 0, 1, 1, 1, 0])      # [1..3] vs [2..4]: 2 shared of 4
        0.5
    """
    existence = np.asarray(mask_existence, dtype=np.float64)
    parsed = parse_last_vtg(turns[-1], len(existence), parity=False) if turns else None
    if parsed is None:
        return 0.0
    start, end, _ = parsed
    return float(temporal_iou_masks(interval_mask(start, end, len(existence)), existence))


def episode_metrics(inputs: TrajectoryRewardInputs, jf: float, spec: RewardSpec | None = None) -> dict[str, Any]:
    """The metrics of one episode (module docstring) from the reward terms' inputs and its J&F in percent.

    Args:
        inputs: the episode's turns, existence and per-turn IoUs; `inputs.parity` is the format/reward parity.
        jf: J&F of the final masks, percent.
        spec: the reward; default `RewardSpec.paper()`.
    """
    total, per_term = (spec or RewardSpec.paper()).compute(inputs)
    turns = list(inputs.turns)
    return {
        "format_valid": float(strict_format_cot(turns, parity=inputs.parity) == 1.0),
        "keyframe_hit": float(bool(turns) and lr_vtg_keyframe(turns, inputs.mask_existence, parity=False) == 1.0),
        "tiou": final_tiou(turns, inputs.mask_existence),
        "jf": float(jf),
        "reward_total": float(total),
        "reward_terms": per_term,
    }
