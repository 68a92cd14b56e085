# Copyright 2026 The videoseg-o3-verl authors. Licensed under the Apache License, Version 2.0.
"""Tests of the action grammar: `parse_action` (train and eval parsers) and `should_continue`."""

import pytest

from videoseg_o3_verl.env import REASON_END_BEFORE_START, REASON_NO_ACTION, Action, parse_action, should_continue

L = 30  # frames of the video in every case unless stated otherwise
THINK = "<think>Step 1 ... Step 2 ... Step 3 ... Action: look closer.</think>"


def sel(vtg: str, seg: str = "[SEG]") -> str:
    return f"<select><VTG>{vtg}</VTG>, <RefSeg>{seg}</RefSeg></select>"


def ans(vtg: str) -> str:
    return f"<answer><VTG>{vtg}</VTG>, <RefSeg>[SEG]</RefSeg></answer>"


S, A, X = "select", "answer", "invalid"

# (text, mode, expected (kind, start, end, keyframe), reason substring or None)
CASES = [
    # canonical select
    (THINK + sel('{"start": 2, "end": 10, "keyframe": 5}'), "train", (S, 2, 10, 5), None),
    # text before and after the select block is ignored
    ("blah " + THINK + sel('{"start": 2, "end": 10, "keyframe": 5}') + " trailing", "train", (S, 2, 10, 5), None),
    # newlines inside the JSON and between tags (DOTALL)
    ('<select>\n<VTG>\n{"start": 3,\n "end": 4,\n "keyframe": 4}\n</VTG>,\n<RefSeg>[SEG]</RefSeg>\n</select>',
     "train", (S, 3, 4, 4), None),
    # single quotes are not JSON
    (sel("{'start': 2, 'end': 10, 'keyframe': 5}"), "train", (X, None, None, None), "not valid JSON"),
    # malformed JSON
    (sel('{"start": 2, "end": }'), "train", (X, None, None, None), "not valid JSON"),
    # missing key -> invalid, the reason names the key
    (sel('{"start": 2, "end": 10}'), "train", (X, None, None, None), "keyframe"),
    # a JSON list is not an object
    (sel("[2, 10, 5]"), "train", (X, None, None, None), "object"),
    # clamping: start=max(0,-3)=0, end=min(29,400)=29, keyframe=clip(99)=29
    (sel('{"start": -3, "end": 400, "keyframe": 99}'), "train", (S, 0, 29, 29), None),
    # keyframe below 0 is clipped to 0
    (sel('{"start": 0, "end": 5, "keyframe": -7}'), "train", (S, 0, 5, 0), None),
    # keyframe outside [start, end] is allowed (only clamped to the video)
    (sel('{"start": 2, "end": 5, "keyframe": 20}'), "train", (S, 2, 5, 20), None),
    # end < start before clamping
    (sel('{"start": 10, "end": 5, "keyframe": 7}'), "train", (X, 10, 5, 7), REASON_END_BEFORE_START),
    # end >= start before, end < start after clamping: start 40 stays, end -> 29
    (sel('{"start": 40, "end": 50, "keyframe": 45}'), "train", (X, 40, 29, 29), REASON_END_BEFORE_START),
    # both negative: start -> 0, end stays -1
    (sel('{"start": -5, "end": -1, "keyframe": 0}'), "train", (X, 0, -1, 0), REASON_END_BEFORE_START),
    # start == end is a valid one-frame interval
    (sel('{"start": 29, "end": 29, "keyframe": 29}'), "train", (S, 29, 29, 29), None),
    # int() conversion as in the released parsers: 3.9 -> 3, "12" -> 12, true -> 1
    (sel('{"start": 3.9, "end": "12", "keyframe": true}'), "train", (S, 3, 12, 1), None),
    # values int() rejects: null, non-integer strings, NaN
    (sel('{"start": null, "end": 5, "keyframe": 1}'), "train", (X, None, None, None), "'start'"),
    (sel('{"start": 1, "end": "5.0", "keyframe": 1}'), "train", (X, None, None, None), "'end'"),
    (sel('{"start": 1, "end": 5, "keyframe": NaN}'), "train", (X, None, None, None), "'keyframe'"),
    # extra keys are ignored
    (sel('{"start": 1, "end": 5, "keyframe": 2, "note": "x"}'), "train", (S, 1, 5, 2), None),
    # [SEG] absent: parse_action does not care (the format reward does)
    (sel('{"start": 1, "end": 5, "keyframe": 2}', seg=""), "train", (S, 1, 5, 2), None),
    # multiple selects: the first one wins
    (sel('{"start": 1, "end": 5, "keyframe": 2}') + sel('{"start": 7, "end": 9, "keyframe": 8}'), "train",
     (S, 1, 5, 2), None),
    # select and answer: the select wins
    (ans('{"start": 7, "end": 9, "keyframe": 8}') + sel('{"start": 1, "end": 5, "keyframe": 2}'), "train",
     (S, 1, 5, 2), None),
    # answer only: fields from its VTG, clamped like a select
    (THINK + ans('{"start": -1, "end": 50, "keyframe": 12}'), "train", (A, 0, 29, 12), None),
    # answer without VTG or with broken JSON: still an answer, fields None
    ("<answer><RefSeg>[SEG]</RefSeg></answer>", "train", (A, None, None, None), None),
    (ans("{'start': 1}"), "train", (A, None, None, None), None),
    # answer with a partial VTG: each convertible field is kept
    (ans('{"keyframe": 4}'), "train", (A, None, None, 4), None),
    # nothing at all
    (THINK + " I give up.", "train", (X, None, None, None), REASON_NO_ACTION),
    ("", "train", (X, None, None, None), REASON_NO_ACTION),
    # unclosed select: no match, no answer
    ('<select><VTG>{"start": 1, "end": 5, "keyframe": 2}</VTG>', "train", (X, None, None, None), REASON_NO_ACTION),
    # the system prompt's form <select>{json}</select> has no <VTG>: the train parser does not accept it ...
    ('<select>{"start": 1, "end": 5, "keyframe": 2}</select>', "train", (X, None, None, None), REASON_NO_ACTION),
    # ... but the eval parser falls back to the raw select body
    ('<select>{"start": 1, "end": 5, "keyframe": 2}</select>', "eval", (S, 1, 5, 2), None),
    ('<select>\n  {"start": 1,\n "end": 5, "keyframe": 2}\n</select>', "eval", (S, 1, 5, 2), None),
    # eval with the full VTG form and surrounding text inside the select
    ("x" + sel('{"start": -2, "end": 99, "keyframe": 3}') + "y", "eval", (S, 0, 29, 3), None),
    # train regex quirk: `<select>.*?<VTG>` may run past the first </select> into a later select's VTG;
    # the eval parser only reads the first select body ("look") and fails on it.
    ("<select>look</select> then " + sel('{"start": 6, "end": 8, "keyframe": 7}'), "train", (S, 6, 8, 7), None),
    ("<select>look</select> then " + sel('{"start": 6, "end": 8, "keyframe": 7}'), "eval",
     (X, None, None, None), "not valid JSON"),
    # eval: end < start after clamping, multiple selects, answer only, nothing
    (sel('{"start": 20, "end": 10, "keyframe": 15}'), "eval", (X, 20, 10, 15), REASON_END_BEFORE_START),
    (sel('{"start": 1, "end": 2, "keyframe": 1}') + sel('{"start": 3, "end": 4, "keyframe": 3}'), "eval",
     (S, 1, 2, 1), None),
    (ans('{"start": 3, "end": 9, "keyframe": 5}'), "eval", (A, 3, 9, 5), None),
    ("no tags", "eval", (X, None, None, None), REASON_NO_ACTION),
    # eval: missing key is invalid as well (released eval parser: int(None) fails)
    (sel('{"start": 1, "end": 2}'), "eval", (X, None, None, None), "keyframe"),
]


@pytest.mark.parametrize("text, mode, expected, reason", CASES)
def test_parse_action_table(text, mode, expected, reason):
    action = parse_action(text, L, mode=mode)
    assert (action.kind, action.start, action.end, action.keyframe) == expected
    if reason is None:
        assert action.reason is None
    else:
        assert reason in action.reason
    for value in (action.start, action.end, action.keyframe):
        assert value is None or type(value) is int


# Released RL rollout parser: d = json.loads(vtg); int(d.get(key, 0)) per key, clamped; any exception ends the episode.
PARITY_CASES = [
    # the case: no keyframe -> keyframe 0, the select goes on
    (sel('{"start": 3, "end": 9}'), (S, 3, 9, 0)),
    # no start -> 0; no end -> 0 (so only start 0 survives end >= start); nothing -> (0, 0, 0)
    (sel('{"end": 9, "keyframe": 4}'), (S, 0, 9, 4)),
    (sel('{"start": 0, "keyframe": 4}'), (S, 0, 0, 4)),
    (sel("{}"), (S, 0, 0, 0)),
    # a missing end with start 3 -> end 0 < start 3: no continue (invalid), clamped values kept
    (sel('{"start": 3, "keyframe": 4}'), (X, 3, 0, 4)),
    # given values are clamped as usual; the missing keyframe is 0
    (sel('{"start": -2, "end": 99}'), (S, 0, L - 1, 0)),
    # still failing there: null (int(None) raises), a list (no .get), bad JSON, single quotes
    (sel('{"start": 3, "end": 9, "keyframe": null}'), (X, None, None, None)),
    (sel("[3, 9, 4]"), (X, None, None, None)),
    (sel('{"start": 3, "end": 9,'), (X, None, None, None)),
    (sel("{'start': 3, 'end': 9}"), (X, None, None, None)),
    # complete selects and answers parse as without parity
    (sel('{"start": 2, "end": 10, "keyframe": 5}'), (S, 2, 10, 5)),
    (ans('{"start": 2, "end": 10}'), (A, 2, 10, None)),
]


@pytest.mark.parametrize("text, expected", PARITY_CASES)
def test_parse_action_parity_defaults_missing_vtg_keys_to_zero(text, expected):
    action = parse_action(text, L, mode="train", parity=True)
    assert (action.kind, action.start, action.end, action.keyframe) == expected


def test_parse_action_parity_is_off_by_default_and_checked():
    text = sel('{"start": 3, "end": 9}')
    action = parse_action(text, L)
    assert action.kind == X and "missing key(s) ['keyframe']" in action.reason
    # the released inference parser (eval) calls int(d.get("keyframe")) -> int(None) fails: invalid with parity too
    assert parse_action(text, L, mode="eval", parity=True).kind == X
    with pytest.raises(TypeError, match="parity must be a bool"):
        parse_action(text, L, parity="yes")


def test_parse_action_reasons_are_exact_strings():
    assert parse_action("nothing", L).reason == "no <select> or <answer>"
    assert parse_action(sel('{"start": 9, "end": 3, "keyframe": 3}'), L).reason == "end < start after clamping"


def test_parse_action_raw_vtg_is_the_parsed_text():
    vtg = '{"start": 2, "end": 10, "keyframe": 5}'
    assert parse_action(sel(vtg), L).raw_vtg == vtg
    assert parse_action(f"<select> {vtg} </select>", L, mode="eval").raw_vtg == f" {vtg} "  # raw body, eval
    assert parse_action(sel("{bad"), L).raw_vtg == "{bad"
    assert parse_action("nothing", L).raw_vtg is None


def test_parse_action_single_frame_video_clamps_everything_to_zero():
    # L = 1: end = min(0, 5) = 0, keyframe = clip(3, 0, 0) = 0
    a = parse_action(sel('{"start": 0, "end": 5, "keyframe": 3}'), 1)
    assert (a.kind, a.start, a.end, a.keyframe) == ("select", 0, 0, 0)


def test_parse_action_is_frozen_and_validates_input():
    a = parse_action(sel('{"start": 0, "end": 5, "keyframe": 3}'), L)
    with pytest.raises(AttributeError):
        a.start = 1
    with pytest.raises(ValueError, match="num_frames"):
        parse_action("x", 0)
    with pytest.raises(ValueError, match="'test'"):
        parse_action("x", L, mode="test")
    with pytest.raises(TypeError, match="text"):
        parse_action(None, L)


@pytest.mark.parametrize(
    "kind, turn_index, max_turns, expected",
    [
        ("select", 0, 3, True),
        ("select", 1, 3, True),
        ("select", 2, 3, False),  # a select in the last allowed turn ends the episode (scored like an answer)
        ("select", 0, 1, False),
        ("answer", 0, 3, False),
        ("invalid", 0, 3, False),
    ],
)
def test_should_continue(kind, turn_index, max_turns, expected):
    action = Action(kind=kind, start=0, end=1, keyframe=0) if kind == "select" else Action(kind=kind)
    assert should_continue(action, turn_index, max_turns) is expected
