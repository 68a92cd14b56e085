# Copyright 2026 The videoseg-o3-verl authors. Licensed under the Apache License, Version 2.0.
"""The keyframe that SAM2 propagation starts from at the end of an inference episode (pure function)."""

from __future__ import annotations

import json
from collections.abc import Sequence

from videoseg_o3_verl.env.actions import REASON_END_BEFORE_START, VTG_PATTERN, parse_action
from videoseg_o3_verl.env.frames import check_int


def _select_keyframe(text: str, num_frames: int) -> int | None:
    """Keyframe of the first `<select>` of a turn as the eval parser reads it; None when it does not parse.

    An empty interval (end < start after clamping) still sets the keyframe: the released loop assigns it before
    it checks the interval.
    """
    action = parse_action(text, num_frames, mode="eval")
    if action.kind == "select" or action.reason == REASON_END_BEFORE_START:
        return int(action.keyframe)
    return None


def _answer_keyframe(text: str, num_frames: int) -> int | None:
    """`keyframe` of the first `<VTG>` JSON in the text, clamped to [0, L-1]; None when absent or unparsable."""
    match = VTG_PATTERN.search(text)
    if match is None:
        return None
    try:
        data = json.loads(match.group(1))
        keyframe = int(data.get("keyframe"))
    except (ValueError, TypeError, AttributeError, OverflowError):
        return None
    return max(0, min(num_frames - 1, keyframe))


def final_keyframe(turn_texts: Sequence[str], num_frames: int, spatial_indices: Sequence[int]) -> int:
    """Keyframe of the final mask (the released inference's rule).

    1. the keyframe of the last `<select>` in the episode that parsed (its first `<select>` block, eval parser),
       even one with end < start or one in the final turn;
    2. else the `keyframe` of the first `<VTG>` JSON of the final turn, clamped to [0, L-1] (a select earlier
       in the episode makes the answer's keyframe irrelevant);
    3. else the middle element of the high-resolution ("spatial") indices, `spatial_indices[len // 2]`.

    Args:
        turn_texts: decoded assistant turns in order (may be empty).
        num_frames: L, frames in the video (>= 1).
        spatial_indices: the first turn's high-resolution frame indices (non-empty).

    Example:
        >>> sel = '<select><VTG>{"start": 2, "end": 9, "keyframe": 5}</VTG></select>'
        >>> ans = '<answer><VTG>{"start": 0, "end": 9, "keyframe": 7}</VTG></answer>'
        >>> final_keyframe([sel, ans], 10, [0, 3, 6, 9]), final_keyframe([ans], 10, [0, 3, 6, 9])
        (5, 7)
        >>> final_keyframe(["no idea"], 10, [0, 3, 6, 9])
        6
    """
    num_frames = check_int("num_frames", num_frames, 1)
    if len(spatial_indices) == 0:
        raise ValueError("final_keyframe: spatial_indices is empty")
    keyframe = None
    for text in turn_texts:
        selected = _select_keyframe(text, num_frames)
        if selected is not None:
            keyframe = selected
    if keyframe is not None:
        return keyframe
    if turn_texts:
        answered = _answer_keyframe(turn_texts[-1], num_frames)
        if answered is not None:
            return answered
    return int(spatial_indices[len(spatial_indices) // 2])
