# Copyright 2026 The videoseg-o3-verl authors. Licensed under the Apache License, Version 2.0.
"""Table of the final-keyframe rule: last select > answer VTG (clamped) > middle spatial index."""

import pytest

from videoseg_o3_verl.eval import final_keyframe


def sel(start, end, key):
    return (f'<think>Step 1 ...</think><select><VTG>{{"start": {start}, "end": {end}, "keyframe": {key}}}</VTG>, '
            "<RefSeg>[SEG]</RefSeg></select>")


def ans(body):
    return f"<think>..</think><answer><VTG>{body}</VTG>, <RefSeg>[SEG]</RefSeg></answer>"


SPATIAL = [0, 4, 8, 12, 16, 20, 24, 29]  # 8 high-res indices of a 30-frame video; [len // 2] = [4] = 16

CASES = [
    # (turn texts, L, expected, why)
    ([sel(2, 9, 5), ans('{"start": 0, "end": 9, "keyframe": 7}')], 30, 5, "a select wins over the answer"),
    ([sel(2, 9, 5), sel(10, 20, 12), ans('{"start": 0, "end": 9, "keyframe": 7}')], 30, 12, "the LAST select"),
    ([sel(2, 9, 5), sel(10, 20, 12), sel(1, 3, 2)], 30, 2, "a select in the final turn counts"),
    ([sel(2, 9, 5), sel(20, 10, 14)], 30, 14, "an invalid select (end < start) still sets the keyframe"),
    ([sel(50, 60, 70)], 30, 29, "end < start after clamping to L-1 = 29; keyframe clamped to 29"),
    ([sel(2, 9, 5), "<select>{'start': 1, 'end': 2, 'keyframe': 9}</select>"], 30, 5,
     "unparsable select JSON keeps the previous keyframe"),
    (['<select>{"start": 1, "end": 4, "keyframe": 3}</select>'], 30, 3, "eval parser: raw select body"),
    ([ans('{"start": 0, "end": 9, "keyframe": 7}')], 30, 7, "no select: the answer's VTG keyframe"),
    ([ans('{"start": 0, "end": 9, "keyframe": 99}')], 30, 29, "answer keyframe clamped to L-1"),
    ([ans('{"start": 0, "end": 9, "keyframe": -4}')], 30, 0, "answer keyframe clamped to 0"),
    ([ans('{"start": 0, "end": 9, "keyframe": 7.9}')], 30, 7, "int() truncates as in the released code"),
    ([ans('{"start": 0, "end": 9}')], 30, 16, "answer VTG without keyframe: middle spatial index"),
    ([ans("{'keyframe': 3}")], 30, 16, "answer VTG not JSON: middle spatial index"),
    (["I cannot tell."], 30, 16, "no select, no VTG: spatial_indices[8 // 2] = 16"),
    ([], 30, 16, "no turn at all"),
    ([ans('{"keyframe": 3}'), "I cannot tell."], 30, 16, "only the FINAL turn's VTG is read"),
]


@pytest.mark.parametrize(("turns", "num_frames", "expected", "why"), CASES, ids=[c[3] for c in CASES])
def test_final_keyframe_table(turns, num_frames, expected, why):
    assert final_keyframe(turns, num_frames, SPATIAL) == expected, why


def test_final_keyframe_spatial_middle_of_short_lists_and_bad_input():
    assert final_keyframe([], 3, [0, 1, 2]) == 1  # [3 // 2]
    assert final_keyframe([], 2, [0, 1]) == 1  # [2 // 2]
    assert final_keyframe([], 1, [0]) == 0
    with pytest.raises(ValueError, match="spatial_indices"):
        final_keyframe([], 3, [])
    with pytest.raises(ValueError, match="num_frames"):
        final_keyframe([], 0, [0])
