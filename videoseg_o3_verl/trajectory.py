# Copyright 2026 The videoseg-o3-verl authors. Licensed under the Apache License, Version 2.0.
"""Per-trajectory metadata the agent loop records in ``AgentLoopOutput.extra_fields`` (key ``videoseg_trajectory``).

The engine (seg head on each turn's keyframe), the trainer (rewards) and the report read it back with
:func:`Trajectory.from_extra_fields`. Everything is plain JSON types so verl can store it in TransferQueue.
Positions are **response-relative** token indices (0 = first response token).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

EXTRA_FIELDS_KEY = "videoseg_trajectory"
"""Key of the trajectory dict inside ``extra_fields``."""


@dataclass
class TurnRecord:
    """One assistant turn."""

    index: int
    """Turn number, 0-based."""
    span: tuple[int, int]
    """Response-relative ``[start, end)`` of this turn's generated tokens (observation tokens excluded)."""
    text: str
    """Decoded assistant text (special tokens kept, so ``[SEG]`` is visible)."""
    kind: str
    """Parsed action: ``select``, ``answer`` or ``invalid``."""
    reason: str | None = None
    """Why the action is invalid (None otherwise)."""
    vtg: dict[str, int] | None = None
    """Clamped ``{"start", "end", "keyframe"}`` of the action when it parsed."""
    seg_keyframe: int = 0
    """Frame on which this turn's ``[SEG]`` mask is decoded: ``L // 2`` in turn 0, else the keyframe selected in
    the previous turn (docs/method.md §3.3 step 3)."""
    seg_positions: list[int] = field(default_factory=list)
    """Response-relative positions of the ``[SEG]`` tokens generated in this turn."""
    observation_low_res: list[int] = field(default_factory=list)
    """Low-resolution frame indices shown after this turn (empty when the episode ended here)."""
    observation_keyframe: int | None = None
    """High-resolution keyframe shown after this turn (None when the episode ended here)."""


@dataclass
class Trajectory:
    """A whole episode."""

    num_frames: int
    """Frames L of the video."""
    initial_low_res: list[int]
    """Low-resolution frame indices of the first user turn."""
    spatial_frames: list[int]
    """High-resolution frame indices of the first user turn: the frames on which each turn's video masks are
    decoded (docs/method.md §4)."""
    turns: list[TurnRecord] = field(default_factory=list)
    """Assistant turns in order."""
    stop_reason: str = ""
    """Why the episode ended: ``answer``, ``invalid``, ``max_turns``, ``response_budget`` or ``vision_token``."""
    mode: str = "train"
    """Environment protocol (``train``/``eval``)."""

    @property
    def seg_keyframes(self) -> list[int]:
        """Keyframe used for each turn's ``[SEG]`` (turn 0 = ``L // 2``)."""
        return [turn.seg_keyframe for turn in self.turns]

    @property
    def seg_positions(self) -> list[int]:
        """All response-relative ``[SEG]`` positions, in order."""
        return [pos for turn in self.turns for pos in turn.seg_positions]

    def to_extra_fields(self) -> dict[str, Any]:
        payload = asdict(self)
        for turn in payload["turns"]:
            turn["span"] = list(turn["span"])
        return {EXTRA_FIELDS_KEY: payload}

    @classmethod
    def from_extra_fields(cls, extra_fields: dict[str, Any]) -> Trajectory:
        if not isinstance(extra_fields, dict) or EXTRA_FIELDS_KEY not in extra_fields:
            keys = sorted(extra_fields) if isinstance(extra_fields, dict) else type(extra_fields).__name__
            raise ValueError(f"extra_fields has no {EXTRA_FIELDS_KEY!r} trajectory (keys: {keys}); was the sample "
                             "produced by the videoseg_o3 agent loop?")
        payload = dict(extra_fields[EXTRA_FIELDS_KEY])
        turns = [TurnRecord(**{**t, "span": tuple(t["span"])}) for t in payload.pop("turns")]
        return cls(turns=turns, **payload)
