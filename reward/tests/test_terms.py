# Copyright 2026 The videoseg-o3-verl authors. Licensed under the Apache License, Version 2.0.
"""Table-driven tests of the seven VideoSEG-O3 reward terms (docs/method.md §5), in both parity modes, and the
registry."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
from videoseg_reward import terms as T
from videoseg_reward.terms import (
    PAPER_TERMS,
    REWARD_TERM_REGISTRY,
    RewardSpec,
    TrajectoryRewardInputs,
    get_term_fn,
    lr_keyframe_vs_mask_dense,
    lr_maskiou_dense,
    lr_progressive_keyframe_dense,
    lr_vtg_iou_dense,
    lr_vtg_keyframe,
    parse_last_vtg,
    register_term,
    step_format_cot,
    strict_format_cot,
)

STEPS = "Step 1: when. Step 2: where. Step 3: what. Action: answer."
GOOD_VTG = '{"start": 2, "end": 5, "keyframe": 3}'


def turn(tag="answer", vtg=GOOD_VTG, think=STEPS, seg="[SEG]"):
    """One assistant turn in the trained format, with the template's end-of-turn suffix."""
    return f"<think>{think}</think>\n<{tag}><VTG>{vtg}</VTG>, <RefSeg>{seg}</RefSeg></{tag}><|im_end|>\n"


def answer(vtg):
    """A minimal last turn carrying only the VTG the grounding terms read."""
    return f"<answer><VTG>{vtg}</VTG></answer>"


# The text terms (strict_format_cot … lr_vtg_keyframe) use float32 torch arithmetic for the precision: inter /
# (|pred| + 1e-6).
def f32_precision(inter, n_pred):
    return float(np.float32(inter) / (np.float32(n_pred) + np.float32(1e-6)))


# --------------------------------------------------------------------------------------------------------
# strict_format_cot
# --------------------------------------------------------------------------------------------------------

STRICT_CASES = [
    # (turns, expected parity=True, expected parity=False)
    ([turn()], 1.0, 1.0),  # one valid answer turn
    ([turn("select"), turn("answer")], 1.0, 1.0),  # select then answer
    ([turn("select"), turn("select"), turn("answer")], 1.0, 1.0),
    ([turn("answer"), turn("answer")], 1.0, -1.0),  # order not enforced in the authors' code
    ([turn("answer"), turn("select")], 1.0, -1.0),  # answer-first trajectory still +1 with parity
    ([turn("select")], 1.0, -1.0),  # ends with a select (e.g. turn budget exhausted)
    ([turn(vtg=GOOD_VTG.replace('"', "'"))], -1.0, -1.0),  # single quotes are not JSON
    ([turn(vtg='{"start": 2, "end": 5}')], -1.0, -1.0),  # missing keyframe key
    ([turn(vtg='{"start": 2, "end": 5, "keyframe": 3, "extra": 1}')], 1.0, 1.0),  # extra keys are fine
    ([turn(vtg='{"start": 2.5, "end": "x", "keyframe": null}')], 1.0, 1.0),  # only the keys are checked
    ([turn(vtg="[2, 5, 3]")], -1.0, -1.0),  # JSON but not a dict
    ([turn(vtg='{"start": 2,\n "end": 5,\n "keyframe": 3}')], 1.0, 1.0),  # newlines inside VTG (DOTALL)
    ([turn(seg="")], -1.0, -1.0),  # RefSeg without [SEG]
    ([turn(seg="[seg]")], -1.0, -1.0),  # [SEG] is case-sensitive
    (["<think>x</think><answer><VTG>" + GOOD_VTG + "</VTG></answer>"], -1.0, -1.0),  # no RefSeg at all
    (["<answer><VTG>" + GOOD_VTG + "</VTG>, <RefSeg>[SEG]</RefSeg></answer>"], -1.0, -1.0),  # no think
    ([turn().replace("</think>\n", "</think> so: ")], -1.0, -1.0),  # only whitespace allowed after </think>
    (["preamble " + turn() + " trailing text"], 1.0, 1.0),  # not anchored
    ([turn().replace("think>", "THINK>")], -1.0, -1.0),  # strict regex is case-sensitive
    ([turn("select"), turn(seg="")], -1.0, -1.0),  # one bad turn spoils the trajectory
    # First match counts: a valid select block followed by a broken answer block in the same turn.
    ([turn("select") + "<think>y</think><answer>broken</answer>"], 1.0, -1.0),
    ([], 0.0, -1.0),  # no turns: 0.0 in the authors' code
]


@pytest.mark.parametrize("turns, expected_parity, expected_fixed", STRICT_CASES)
def test_strict_format_cot_table(turns, expected_parity, expected_fixed):
    assert strict_format_cot(turns) == expected_parity
    assert strict_format_cot(turns, parity=False) == expected_fixed


@pytest.mark.parametrize("bad", ["a single string", [turn(), 3], None])
def test_strict_format_cot_rejects_non_list_of_str(bad):
    with pytest.raises(TypeError, match="strict_format_cot"):
        strict_format_cot(bad)


# --------------------------------------------------------------------------------------------------------
# step_format_cot
# --------------------------------------------------------------------------------------------------------

STEP_CASES = [
    ([turn()], 1.0),  # all four keywords
    (["<think>STEP 1 and ACTION</think>"], 0.5),  # keywords are case-insensitive: 2 of 4
    (["<THINK>Step 1</Think>"], 0.25),  # tags are case-insensitive too
    (["no think block, Step 1 Step 2 Step 3 Action"], 0.0),  # keywords outside <think> do not count
    (["<think>nothing</think> Step 1 Step 2"], 0.0),
    (["<think>Step 1</think><think>Step 2 Step 3 Action</think>"], 0.25),  # only the first think block
    ([turn(), "<think>Step 2</think>"], 0.625),  # mean over turns: (1 + 0.25) / 2
    (["<think>step 10 only</think>"], 0.25),  # substring match: "step 10" contains "step 1"
    (["<think>Step1 Step2</think>"], 0.0),  # no space -> no match
    ([], 0.0),  # no turns
]


@pytest.mark.parametrize("turns, expected", STEP_CASES)
def test_step_format_cot_table(turns, expected):
    assert step_format_cot(turns) == expected


# --------------------------------------------------------------------------------------------------------
# Parsing shared by lr_vtg_iou_dense / lr_vtg_keyframe
# --------------------------------------------------------------------------------------------------------

PARSE_CASES = [
    # (text, L, parity=True result, parity=False result)
    (answer("{'start': 2, 'end': 5, 'keyframe': 3}"), 8, (2, 5, 3), (2, 5, 3)),  # single quotes: literal_eval
    (answer('{"start": -4, "end": 99, "keyframe": 99}'), 8, (0, 8, 7), (0, 7, 7)),  # clamp [0,L] vs [0,L-1]
    (answer('{"start": 2.9, "end": 5, "keyframe": 3}'), 8, (2, 5, 3), None),  # int() truncates / rejected
    (answer('{"start": 2.0, "end": 5, "keyframe": 3}'), 8, (2, 5, 3), (2, 5, 3)),  # integral float accepted
    (answer('{"start": "2", "end": 5, "keyframe": 3}'), 8, (2, 5, 3), None),  # numeric string
    (answer('{"start": True, "end": 5, "keyframe": 3}'), 8, (1, 5, 3), None),  # bool is an int subclass
    (answer('{"end": 5}'), 8, (0, 5, 0), None),  # missing keys default to 0 with parity
    (answer('{"start": None, "end": 5, "keyframe": 3}'), 8, None, None),  # int(None) fails
    (answer('{"start": 1e999, "end": 5, "keyframe": 3}'), 8, None, None),  # inf -> OverflowError
    (answer('{"start": NaN, "end": 5, "keyframe": 3}'), 8, None, None),  # JSON NaN is not a literal
    (answer("[2, 5, 3]"), 8, None, None),  # not a dict
    (answer("{'start': 2, 'end': 5,"), 8, None, None),  # syntax error
    (answer("{[1]: 2}"), 8, None, None),  # unhashable key -> TypeError inside literal_eval
    ("<answer>" + GOOD_VTG + "</answer>", 8, None, None),  # no <VTG>
    ("<select><VTG>" + GOOD_VTG + "</VTG>", 8, None, None),  # unclosed select
    ("<select><VTG>" + GOOD_VTG + "</VTG></answer>", 8, None, None),  # mismatched closing tag
    # Several matches: the LAST one counts.
    ("<select><VTG>{'start': 0, 'end': 1, 'keyframe': 0}</VTG></select> then "
     + answer("{'start': 4, 'end': 6, 'keyframe': 5}"), 8, (4, 6, 5), (4, 6, 5)),
    # The lazy first `.*?` may skip a VTG-less select and start matching at the answer.
    ("<select>no vtg</select><answer><VTG>{'start': 3, 'end': 4, 'keyframe': 3}</VTG></answer>", 8,
     (3, 4, 3), (3, 4, 3)),
]


@pytest.mark.parametrize("text, length, expected_parity, expected_fixed", PARSE_CASES)
def test_parse_last_vtg_table(text, length, expected_parity, expected_fixed):
    assert parse_last_vtg(text, length) == expected_parity
    assert parse_last_vtg(text, length, parity=False) == expected_fixed


# --------------------------------------------------------------------------------------------------------
# lr_vtg_iou_dense
# --------------------------------------------------------------------------------------------------------

EX = [0, 0, 1, 1, 1, 1, 0, 0]  # object visible in frames 2..5, L = 8

VTG_IOU_CASES = [
    # (turns, existence, expected parity=True, expected parity=False)
    # [2, 6) = frames 2..5: precision 4/4 (minus 1e-6); inclusive [2..6]: IoU 4/5.
    ([answer("{'start': 2, 'end': 6, 'keyframe': 3}")], EX, 0.5 * f32_precision(4, 4), 0.4),
    # [2, 5) = 2..4 inside GT: precision 1; inclusive [2..5] = GT exactly: IoU 1.
    ([answer("{'start': 2, 'end': 5, 'keyframe': 3}")], EX, 0.5 * f32_precision(3, 3), 0.5),
    # precision-as-IoU: a 1-frame interval inside GT is "perfect"; true IoU of [3..4] is 2/4 -> 0.25.
    ([answer("{'start': 3, 'end': 4, 'keyframe': 3}")], EX, 0.5 * f32_precision(1, 1), 0.25),
    # [1, 5) = 1..4: precision 3/4; [1..5]: IoU 4/5.
    ([answer("{'start': 1, 'end': 5, 'keyframe': 3}")], EX, 0.5 * f32_precision(3, 4), 0.4),
    # [0, 4) = 0..3: precision exactly 2/4, but 2/(4 + 1e-6) < 0.5 -> FAIL; [0..4]: IoU 3/6 = 0.5 -> 0.25.
    ([answer("{'start': 0, 'end': 4, 'keyframe': 3}")], EX, -0.5, 0.25),
    # s == e: empty with end-exclusive (fail); one frame [4..4] inclusive, inside a 1-frame GT -> IoU 1.
    ([answer("{'start': 4, 'end': 4, 'keyframe': 4}")], [0, 0, 0, 0, 1, 0, 0, 0], -0.5, 0.5),
    ([answer("{'start': 5, 'end': 2, 'keyframe': 3}")], EX, -0.5, -0.5),  # reversed interval
    # Clamped to [0, 8) = all 8 frames: 4/8 -> FAIL (eps); strict clamp [0..7]: IoU 4/8 = 0.5 -> 0.25.
    ([answer("{'start': -5, 'end': 100, 'keyframe': 3}")], EX, -0.5, 0.25),
    # All-zero existence: "no valid GT" -> iou = 1 in both modes.
    ([answer("{'start': 1, 'end': 3, 'keyframe': 2}")], [0] * 8, 0.5, 0.5),
    # Missing start: parity start = 0 -> [0, 6): 4/6; strict parser fails.
    ([answer("{'end': 6, 'keyframe': 3}")], EX, 0.5 * f32_precision(4, 6), -0.5),
    # Missing end: parity end = 0 <= start -> fail.
    ([answer("{'start': 2, 'keyframe': 3}")], EX, -0.5, -0.5),
    # Only the LAST turn is read.
    ([answer("{'start': 2, 'end': 5, 'keyframe': 3}"), "<answer>garbage</answer>"], EX, -0.5, -0.5),
    (["garbage", answer("{'start': 2, 'end': 5, 'keyframe': 3}")], EX, 0.5 * f32_precision(3, 3), 0.5),
    ([], EX, -0.5, -0.5),  # no turns
    (["<answer><VTG>not a dict</VTG></answer>"], EX, -0.5, -0.5),  # parse failure
]


@pytest.mark.parametrize("turns, existence, expected_parity, expected_fixed", VTG_IOU_CASES)
def test_lr_vtg_iou_dense_table(turns, existence, expected_parity, expected_fixed):
    assert lr_vtg_iou_dense(turns, existence) == pytest.approx(expected_parity, abs=1e-12)
    assert lr_vtg_iou_dense(turns, existence, parity=False) == pytest.approx(expected_fixed, abs=1e-12)


@pytest.mark.parametrize(
    "n_pred, expected",
    [
        # Exactly half of the predicted frames in GT. In float32, |pred| + 1e-6 rounds up for |pred| = 16
        # (ulp 1.9e-6) so precision < 0.5 -> fail, but rounds back to 32.0 for |pred| = 32 (ulp 3.8e-6), so
        # precision is exactly 0.5 -> pass with 0.5 * 0.5. A float64 re-implementation would fail both.
        (16, -0.5),
        (32, 0.25),
    ],
)
def test_lr_vtg_iou_dense_reproduces_float32_epsilon(n_pred, expected):
    length = 64
    existence = [1] * (n_pred // 2) + [0] * (length - n_pred // 2)
    turns = [answer(f"{{'start': 0, 'end': {n_pred}, 'keyframe': 0}}")]
    assert lr_vtg_iou_dense(turns, existence) == expected


def test_lr_vtg_iou_dense_accepts_numpy_existence_and_rejects_bad():
    turns = [answer("{'start': 2, 'end': 5, 'keyframe': 3}")]
    assert lr_vtg_iou_dense(turns, np.array(EX, dtype=np.int64), parity=False) == 0.5
    with pytest.raises(ValueError, match="non-empty 1-D"):
        lr_vtg_iou_dense(turns, [])
    with pytest.raises(ValueError, match="non-finite"):
        lr_vtg_iou_dense(turns, [0, float("nan"), 1])


# --------------------------------------------------------------------------------------------------------
# lr_vtg_keyframe
# --------------------------------------------------------------------------------------------------------

EX_K = [1, 0, 1, 1, 0]  # L = 5

KEYFRAME_CASES = [
    ("{'start': 1, 'end': 3, 'keyframe': 2}", 1.0, 1.0),  # frame 2 has the object
    ("{'start': 1, 'end': 3, 'keyframe': 1}", -1.0, -1.0),  # frame 1 does not
    ("{'start': 1, 'end': 3, 'keyframe': 99}", -1.0, -1.0),  # clamped to 4, empty
    ("{'start': 1, 'end': 3, 'keyframe': -3}", 1.0, 1.0),  # clamped to 0, present
    ("{'start': 1, 'end': 3}", 1.0, -1.0),  # missing keyframe: frame 0 with parity, failure otherwise
    ("{'start': 1, 'end': 3, 'keyframe': 2.7}", 1.0, -1.0),  # truncated to 2 / rejected
    ("{'start': 1, 'end': 3, 'keyframe': '3'}", 1.0, -1.0),  # numeric string
    ("{'start': 9, 'end': 1, 'keyframe': 2}", 1.0, 1.0),  # interval validity is not checked
    ("not a dict", -1.0, -1.0),
]


@pytest.mark.parametrize("vtg, expected_parity, expected_fixed", KEYFRAME_CASES)
def test_lr_vtg_keyframe_table(vtg, expected_parity, expected_fixed):
    turns = [answer(vtg)]
    assert lr_vtg_keyframe(turns, EX_K) == expected_parity
    assert lr_vtg_keyframe(turns, EX_K, parity=False) == expected_fixed


def test_lr_vtg_keyframe_uses_last_turn_and_handles_no_turns():
    good = answer("{'start': 1, 'end': 3, 'keyframe': 2}")
    bad = answer("{'start': 1, 'end': 3, 'keyframe': 1}")
    assert lr_vtg_keyframe([bad, good], EX_K) == 1.0
    assert lr_vtg_keyframe([good, bad], EX_K) == -1.0
    assert lr_vtg_keyframe([], EX_K) == -1.0


# --------------------------------------------------------------------------------------------------------
# lr_maskiou_dense
# --------------------------------------------------------------------------------------------------------

MASKIOU_CASES = [
    ([[0.9] * 5], 1.5),  # g(0.9) = min(3 * 0.5, 1.5) = 1.5
    ([[1.0] * 5], 1.5),  # saturates: min(1.8, 1.5)
    ([[0.1] * 5, [0.5] * 5], 0.3),  # only the LAST turn: g(0.5) = 3 * 0.1
    ([[0.9] * 5, [0.1] * 5], -1.0),  # last turn bad even though the first was good
    ([[0.2, 0.4, 0.41]], (-1.0 + 0.0 + 0.03) / 3),  # g(0.2) = -1 (<= 0.2), g(0.4) = 0, g(0.41) = 0.03
    ([[0.5], []], -1.0),  # empty last list
    ([], 0.0),  # no turns at all (authors' code)
    ([[float("nan"), 0.9]], (-1.0 + 1.5) / 2),  # NaN compares False -> -1
    ([[0.9] * 5, 0.7], 0.9),  # a bare number as the last entry: g(0.7) = 0.9
    ([None], -1.0),  # None -> 0.0 -> -1
    ([np.array([0.9, 0.9])], 1.5),  # numpy arrays work as lists
]


@pytest.mark.parametrize("per_round, expected", MASKIOU_CASES)
def test_lr_maskiou_dense_table(per_round, expected):
    assert lr_maskiou_dense(per_round) == pytest.approx(expected, abs=1e-12)


def test_lr_maskiou_dense_rejects_non_numbers():
    with pytest.raises(TypeError, match="lr_maskiou_dense"):
        lr_maskiou_dense([["high"]])


# --------------------------------------------------------------------------------------------------------
# lr_keyframe_vs_mask_dense
# --------------------------------------------------------------------------------------------------------

M5 = [0.5] * 5

KF_VS_MASK_CASES = [
    # (per_round_maskious, per_round_keyframe_ious, expected parity=True, expected parity=False)
    ([M5], [0.9], 0.0, 0.0),  # single turn -> 0
    ([M5, M5], [0.3, 0.9], 0.5, 1.5),  # δ = 0.4: if/if overwrites min((0.4-0.1)*5, 2) = 1.5 with 0.5
    ([[0.1] * 5, [0.1] * 5], [0.0, 0.9], 0.5, 2.0),  # δ = 0.8: elif gives min(3.5, 2.0) = 2.0
    ([M5, M5], [0.0, 0.65], 0.5, 0.5),  # δ = 0.15: in (0.1, 0.2] -> 0.5 both
    ([M5, M5], [0.0, 0.6], 0.0, 0.0),  # δ = 0.6 - 0.5 = 0.0999... in binary floating point -> not > 0.1
    ([M5, M5], [0.0, 0.5], 0.0, 0.0),  # δ = 0
    ([M5, M5], [0.0, 0.4], -1.0, -1.0),  # δ = -0.1
    ([M5, M5], [0.9, 0.9], 0.5, 1.5),  # only the LAST turn's K and M matter
    ([M5, []], [0.0, 0.3], 0.5, 1.0),  # empty last mask list counts as 0.0: δ = 0.3 -> 0.5 / min(0.2 * 5, 2)
    ([M5, M5], [0.0, float("nan")], -1.0, -1.0),  # NaN δ falls through to -1
    ([M5, M5], [0.3], 0.0, 0.0),  # fewer than 2 keyframe rounds -> 0
    ([M5, M5], [[0.2], [0.8, 1.0]], 0.5, 1.5),  # list values are averaged: K = 0.9
]


@pytest.mark.parametrize("maskious, kf_ious, expected_parity, expected_fixed", KF_VS_MASK_CASES)
def test_lr_keyframe_vs_mask_dense_table(maskious, kf_ious, expected_parity, expected_fixed):
    assert lr_keyframe_vs_mask_dense(maskious, kf_ious) == pytest.approx(expected_parity, abs=1e-12)
    assert lr_keyframe_vs_mask_dense(maskious, kf_ious, parity=False) == pytest.approx(expected_fixed, abs=1e-12)


# --------------------------------------------------------------------------------------------------------
# lr_progressive_keyframe_dense
# --------------------------------------------------------------------------------------------------------

PROGRESSIVE_CASES = [
    ([0.5], 0.0, 0.0),  # single turn
    ([0.2, 0.5], 0.5, 2.0),  # δ = 0.3: if/if -> 0.5; elif -> min(2.5, 2.0)
    ([0.2, 0.32], 0.5, 0.7),  # δ = 0.12: min((0.12 - 0.05) * 10, 2) = 0.7
    ([0.2, 0.28], 0.5, 0.5),  # δ = 0.08 in (0.05, 0.1]
    ([0.5, 0.3, 0.52], 0.0, 0.0),  # best earlier = 0.5, δ = 0.02
    ([0.0, 0.8, 0.5], -1.0, -1.0),  # best earlier = 0.8, δ = -0.3
    # K_0 is measured on the fixed middle frame L // 2; if the object is absent there K_0 = 0, so any decent
    # later keyframe looks like progress: δ = 0.4 - 0.
    ([0.0, 0.4], 0.5, 2.0),
    ([None, 0.3], 0.5, 2.0),  # None -> 0.0
    ([0.3, float("nan")], -1.0, -1.0),  # NaN δ -> -1
    ([[0.1, 0.3], [0.6]], 0.5, 2.0),  # list values averaged: K_0 = 0.2, δ = 0.4
]


@pytest.mark.parametrize("kf_ious, expected_parity, expected_fixed", PROGRESSIVE_CASES)
def test_lr_progressive_keyframe_dense_table(kf_ious, expected_parity, expected_fixed):
    assert lr_progressive_keyframe_dense(kf_ious) == pytest.approx(expected_parity, abs=1e-12)
    assert lr_progressive_keyframe_dense(kf_ious, parity=False) == pytest.approx(expected_fixed, abs=1e-12)


# --------------------------------------------------------------------------------------------------------
# Registry, TrajectoryRewardInputs, RewardSpec
# --------------------------------------------------------------------------------------------------------


@pytest.fixture
def clean_registry():
    saved = dict(REWARD_TERM_REGISTRY)
    yield REWARD_TERM_REGISTRY
    REWARD_TERM_REGISTRY.clear()
    REWARD_TERM_REGISTRY.update(saved)


def _inputs(parity=True, jf=None):
    # Two turns: select then answer. VTG of the last turn [1, 5] vs GT frames 2..5.
    return TrajectoryRewardInputs(
        turns=[turn("select", '{"start": 0, "end": 7, "keyframe": 4}'),
               turn("answer", '{"start": 1, "end": 5, "keyframe": 3}')],
        mask_existence=EX,
        per_round_maskious=[[0.3] * 5, [0.7] * 5],
        per_round_keyframe_ious=[0.0, 0.95],
        jf=jf,
        parity=parity,
    )


def test_registry_holds_paper_terms_and_jf():
    assert set(PAPER_TERMS) | {"jf"} <= set(REWARD_TERM_REGISTRY)
    assert len(PAPER_TERMS) == 7


def test_register_term_same_function_is_idempotent_different_function_raises(clean_registry):
    def fn(x):
        return 1.0

    assert register_term("my_term")(fn) is fn
    assert register_term("my_term")(fn) is fn  # same object again: fine
    with pytest.raises(ValueError, match="already registered"):
        register_term("my_term")(lambda x: 2.0)
    with pytest.raises(ValueError, match="already registered"):
        register_term("strict_format_cot")(fn)


def test_get_term_fn_unknown_lists_known_names():
    with pytest.raises(ValueError, match="lr_vtg_iou_dense"):
        get_term_fn("no_such_term")


@pytest.mark.parametrize("parity", [True, False])
def test_adapters_match_direct_calls(parity):
    x = _inputs(parity=parity, jf=0.42)
    direct = {
        "strict_format_cot": strict_format_cot(x.turns, parity=parity),
        "step_format_cot": step_format_cot(x.turns),
        "lr_vtg_iou_dense": lr_vtg_iou_dense(x.turns, x.mask_existence, parity=parity),
        "lr_vtg_keyframe": lr_vtg_keyframe(x.turns, x.mask_existence, parity=parity),
        "lr_maskiou_dense": lr_maskiou_dense(x.per_round_maskious),
        "lr_keyframe_vs_mask_dense": lr_keyframe_vs_mask_dense(x.per_round_maskious, x.per_round_keyframe_ious,
                                                               parity=parity),
        "lr_progressive_keyframe_dense": lr_progressive_keyframe_dense(x.per_round_keyframe_ious, parity=parity),
        "jf": 0.42,
    }
    for name, value in direct.items():
        assert get_term_fn(name)(x) == value, name


def test_parity_flag_changes_the_dense_terms_through_the_spec():
    # K_last - mean(M_last) = 0.95 - 0.7 = 0.25 and K_last - K_0 = 0.95: parity gives 0.5 for both,
    # the fixed versions min((0.25 - 0.1) * 5, 2) = 0.75 and min((0.95 - 0.05) * 10, 2) = 2.0.
    spec = RewardSpec(terms=("lr_keyframe_vs_mask_dense", "lr_progressive_keyframe_dense"))
    assert spec.compute(_inputs(parity=True))[1] == {"lr_keyframe_vs_mask_dense": 0.5,
                                                      "lr_progressive_keyframe_dense": 0.5}
    total, per_term = spec.compute(_inputs(parity=False))
    assert per_term["lr_keyframe_vs_mask_dense"] == pytest.approx(0.75)
    assert per_term["lr_progressive_keyframe_dense"] == 2.0
    assert total == pytest.approx(2.75)


def test_paper_spec_total_hand_computed():
    # strict +1 (both turns valid), step 1.0, vtg_iou: [1, 5) has 3 of 4 frames in GT -> 0.5 * 3/(4+1e-6),
    # keyframe 3 in GT -> +1, maskiou g(0.7) = 0.9, kf_vs_mask 0.5, progressive 0.5.
    spec = RewardSpec.paper()
    assert spec.terms == PAPER_TERMS and spec.weights == (1.0,) * 7
    total, per_term = spec.compute(_inputs())
    expected = {
        "strict_format_cot": 1.0,
        "step_format_cot": 1.0,
        "lr_vtg_iou_dense": 0.5 * f32_precision(3, 4),
        "lr_vtg_keyframe": 1.0,
        "lr_maskiou_dense": 0.9,
        "lr_keyframe_vs_mask_dense": 0.5,
        "lr_progressive_keyframe_dense": 0.5,
    }
    assert per_term == pytest.approx(expected, abs=1e-12)
    assert total == pytest.approx(sum(expected.values()), abs=1e-12)


def test_weighted_spec_with_jf():
    spec = RewardSpec(terms=("step_format_cot", "jf"), weights=(2.0, 0.5))
    total, per_term = spec.compute(_inputs(jf=0.6))
    assert per_term == {"step_format_cot": 1.0, "jf": 0.6}  # unweighted values
    assert total == pytest.approx(2.0 * 1.0 + 0.5 * 0.6)


@pytest.mark.parametrize("jf, match", [(None, "got None"), (float("nan"), "finite")])
def test_jf_term_requires_a_finite_value(jf, match):
    with pytest.raises(ValueError, match=match):
        RewardSpec(terms=("jf",)).compute(_inputs(jf=jf))


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        ({"terms": ("strict_format_cot", "nope")}, ValueError, "unknown term"),
        ({"terms": ("strict_format_cot",), "weights": (1.0, 2.0)}, ValueError, "2 weights for 1 terms"),
        ({"terms": ("jf", "jf")}, ValueError, "duplicate"),
        ({"terms": ()}, ValueError, "at least one"),
        ({"terms": "jf"}, TypeError, "string"),
        ({"terms": ("jf",), "weights": (float("inf"),)}, ValueError, "finite"),
    ],
)
def test_reward_spec_validation(kwargs, error, match):
    with pytest.raises(error, match=match):
        RewardSpec(**kwargs)


def test_reward_spec_and_inputs_are_frozen():
    spec = RewardSpec(terms=["jf"], weights=[2])  # lists are normalised to tuples of floats
    assert spec.terms == ("jf",) and spec.weights == (2.0,)
    with pytest.raises(dataclasses.FrozenInstanceError):
        spec.terms = ("step_format_cot",)  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        _inputs().parity = False  # type: ignore[misc]


def test_module_exports_exist():
    for name in T.__all__:
        assert hasattr(T, name), name
    assert math.isclose(f32_precision(3, 4), 0.7499998, rel_tol=1e-6)
