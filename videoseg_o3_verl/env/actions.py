# Copyright 2026 The videoseg-o3-verl authors. Licensed under the Apache License, Version 2.0.
"""Action grammar of the environment: parse one assistant turn into select / answer / invalid (docs/method.md §3.2,
§3.4).

Two parsers, as in the released code:

- train (RL rollout, docs/method.md §3.3 step 4): the first match of `<select>.*?<VTG>(.*?)</VTG>.*?</select>` (DOTALL);
- eval (inference, docs/method.md §3.4): the first `<select>(.*?)</select>`, then `<VTG>(.*?)</VTG>` inside it if
present,
  else the raw select body.

The captured text is parsed with `json.loads` (strict JSON: single quotes fail) and must be an object with the
keys "start", "end" and "keyframe". Each value is converted with Python's `int()`, as both released parsers do:
JSON ints pass, floats truncate toward zero (3.9 → 3, -0.5 → 0), numeric strings convert ("7" → 7), booleans
give 0/1; null, lists, objects, non-integer strings ("7.0", "abc"), NaN and Infinity make the action invalid.
A missing key also makes it invalid (the format reward requires all three keys, docs/method.md §5) unless
`parity=True` in train mode: the released RL rollout reads each key with `dict.get(key, 0)`, so a missing key
becomes 0 and the select goes on (everything else, including a null value or a non-object JSON, still fails there
too); the released inference parser fails on a missing key, so eval mode is the same either way. Values are then
clamped to the video:
`start = max(0, s)`, `end = min(L-1, e)`, `keyframe = clip(k, 0, L-1)`; `end < start` after clamping is invalid.
The keyframe need not lie inside [start, end].

Whether a valid select actually continues the episode also depends on the turn (`should_continue`).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Literal

from videoseg_o3_verl.env.config import MODES
from videoseg_o3_verl.env.frames import check_int

SELECT_VTG_PATTERN = re.compile(r"<select>.*?<VTG>(.*?)</VTG>.*?</select>", re.DOTALL)
"""Training rollout parser (docs/method.md §3.3 step 4)."""

SELECT_PATTERN = re.compile(r"<select>(.*?)</select>", re.DOTALL)
"""Evaluation parser, outer part (docs/method.md §3.4)."""

VTG_PATTERN = re.compile(r"<VTG>(.*?)</VTG>", re.DOTALL)
"""VTG JSON inside a select (eval) or an answer."""

ANSWER_PATTERN = re.compile(r"<answer>(.*?)</answer>", re.DOTALL)
"""Final answer block."""

VTG_KEYS = ("start", "end", "keyframe")
"""Keys of the VTG JSON object, in the order they are reported."""

REASON_NO_ACTION = "no <select> or <answer>"
"""`Action.reason` when the turn has neither a parsable select block nor an answer."""

REASON_END_BEFORE_START = "end < start after clamping"
"""`Action.reason` when the clamped interval is empty."""


@dataclass(frozen=True)
class Action:
    """One parsed assistant turn."""

    kind: Literal["select", "answer", "invalid"]
    """"select" (tool call, may continue), "answer" (stop) or "invalid" (stop; malformed output)."""

    start: int | None = None
    """Clamped first frame of the interval; None when not parsed."""

    end: int | None = None
    """Clamped last frame of the interval (inclusive for observations); None when not parsed."""

    keyframe: int | None = None
    """Clamped keyframe index; None when not parsed."""

    reason: str | None = None
    """Why the action is invalid; None for select and answer."""

    raw_vtg: str | None = None
    """The text that was given to `json.loads` (VTG content or, in eval mode, the raw select body); None if none."""


class _VTGError(ValueError):
    pass


def _to_int(key: str, value: object) -> int:
    # Same conversion as the released parsers: Python int() on the JSON value.
    if isinstance(value, bool | int | float | str):
        try:
            return int(value)
        except (ValueError, OverflowError):
            pass
    raise _VTGError(f"VTG value of {key!r} is not convertible to int: {json.dumps(value)}")


def _load_vtg(raw: str) -> dict:
    try:
        data = json.loads(raw)
    except json.JSONDecodeError as err:
        raise _VTGError(f"VTG is not valid JSON ({err.msg} at char {err.pos}): {raw!r}") from None
    if not isinstance(data, dict):
        raise _VTGError(f"VTG JSON must be an object with keys {list(VTG_KEYS)}, got {type(data).__name__}: {raw!r}")
    return data


def _parse_interval(raw: str, num_frames: int, mode: str, parity: bool) -> tuple[int, int, int]:
    """Parse + convert + clamp a select's VTG text; raise _VTGError describing the problem."""
    data = _load_vtg(raw)
    missing = [k for k in VTG_KEYS if k not in data]
    if missing and not (parity and mode == "train"):
        raise _VTGError(f"VTG JSON missing key(s) {missing}: {raw!r}")
    data = {**dict.fromkeys(missing, 0), **data}
    s, e, k = (_to_int(key, data[key]) for key in VTG_KEYS)
    return max(0, s), min(num_frames - 1, e), max(0, min(num_frames - 1, k))


def _parse_answer(body: str, num_frames: int) -> Action:
    """Answer action; each VTG field is filled (clamped as for a select) when present and convertible."""
    vtg = VTG_PATTERN.search(body)
    if vtg is None:
        return Action(kind="answer")
    raw = vtg.group(1)
    try:
        data = _load_vtg(raw)
    except _VTGError:
        return Action(kind="answer", raw_vtg=raw)
    values = {}
    for key in VTG_KEYS:
        try:
            values[key] = _to_int(key, data[key]) if key in data else None
        except _VTGError:
            values[key] = None
    s, e, k = values["start"], values["end"], values["keyframe"]
    return Action(
        kind="answer",
        start=None if s is None else max(0, s),
        end=None if e is None else min(num_frames - 1, e),
        keyframe=None if k is None else max(0, min(num_frames - 1, k)),
        raw_vtg=raw,
    )


def parse_action(text: str, num_frames: int, mode: str = "train", parity: bool = False) -> Action:
    """Parse one assistant turn of a video with `num_frames` frames.

    Order: a select (train: the VTG regex; eval: the first `<select>` block) wins over an answer; the first
    select in the text is used; an answer is used only when no select matched. `[SEG]`, `<think>` and the
    turn index are not checked here (rewards and `should_continue` handle them).

    Args:
        text: decoded assistant turn (special tokens kept).
        num_frames: L, number of frames of the video (>= 1).
        mode: "train" (RL rollout parser) or "eval" (inference parser).
        parity: in train mode a `<select>` VTG key that is missing counts as 0, as in the released RL rollout
            (`videoseg_o3.env.parser_parity`); False makes such a select invalid, as the released inference parser
            does in either case. Answers are unaffected.

    Returns:
        `Action`: select with clamped start/end/keyframe; answer (fields from its `<VTG>` when parsable, else
        None); or invalid with a `reason`. An empty clamped interval gives kind "invalid" with reason
        "end < start after clamping" and the clamped values kept in start/end/keyframe.

    Example:
        >>> a = parse_action('<think>..</think><select><VTG>{"start": -3, "end": 40, "keyframe": 50}</VTG>, '
        ...                  '<RefSeg>[SEG]</RefSeg></select>', num_frames=30)
        >>> a.kind, a.start, a.end, a.keyframe
        ('select', 0, 29, 29)
        >>> parse_action("<select><VTG>{'start': 1, 'end': 2, 'keyframe': 1}</VTG></select>", 30).kind
        'invalid'
        >>> parse_action('<select>{"start": 1, "end": 2, "keyframe": 1}</select>', 30, mode="eval").kind
        'select'
        >>> parse_action("I am not sure.", 30).reason
        'no <select> or <answer>'
        >>> sel = '<select><VTG>{"start": 3, "end": 9}</VTG></select>'
        >>> parse_action(sel, 30).kind, parse_action(sel, 30, parity=True).keyframe
        ('invalid', 0)
    """
    if not isinstance(text, str):
        raise TypeError(f"text must be a str, got {type(text).__name__}")
    num_frames = check_int("num_frames", num_frames, 1)
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
    if not isinstance(parity, bool):
        raise TypeError(f"parity must be a bool, got {parity!r}")

    raw = None
    if mode == "train":
        match = SELECT_VTG_PATTERN.search(text)
        if match is not None:
            raw = match.group(1)
    else:
        match = SELECT_PATTERN.search(text)
        if match is not None:
            body = match.group(1)
            vtg = VTG_PATTERN.search(body)
            raw = vtg.group(1) if vtg is not None else body

    if raw is not None:
        try:
            start, end, keyframe = _parse_interval(raw, num_frames, mode, parity)
        except _VTGError as err:
            return Action(kind="invalid", reason=f"bad <select>: {err}", raw_vtg=raw)
        if end < start:
            return Action(
                kind="invalid", start=start, end=end, keyframe=keyframe, reason=REASON_END_BEFORE_START, raw_vtg=raw
            )
        return Action(kind="select", start=start, end=end, keyframe=keyframe, raw_vtg=raw)

    answer = ANSWER_PATTERN.search(text)
    if answer is not None:
        return _parse_answer(answer.group(1), num_frames)
    return Action(kind="invalid", reason=REASON_NO_ACTION)


def should_continue(action: Action, turn_index: int, max_turns: int) -> bool:
    """Whether the episode gets another turn: a valid select that is not in the last allowed turn (docs/method.md §3.3).

    Args:
        action: the parsed turn.
        turn_index: 0-based index of the turn that produced `action`.
        max_turns: most assistant turns per episode (3).

    Example:
        >>> sel = Action(kind="select", start=0, end=4, keyframe=2)
        >>> should_continue(sel, 0, 3), should_continue(sel, 1, 3), should_continue(sel, 2, 3)
        (True, True, False)
    """
    turn_index = check_int("turn_index", turn_index, 0)
    max_turns = check_int("max_turns", max_turns, 1)
    return action.kind == "select" and turn_index < max_turns - 1
