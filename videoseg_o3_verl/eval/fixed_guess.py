# Copyright 2026 The videoseg-o3-verl authors. Licensed under the Apache License, Version 2.0.
"""The fixed-guess baseline: a policy that never looks at the video, scored by the same code as a model.

Its one turn is a well-formed `<answer>` (so it is format-valid and gets the step keywords): the middle keyframe
`L // 2`, the whole video `[0, L - 1]` and a `[SEG]` whose mask is a constant guess, either empty or the full
frame. That constant mask goes wherever a [SEG] mask goes: the keyframe and spatial-frame masks of the reward's
per-turn IoUs (as constant logits through the same IoU code) and the final masks of the J&F (the same mask on every
frame: SAM2 propagation of a constant guess is not needed, there is nothing to track).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from PIL import Image

from videoseg_o3_verl.env import EnvConfig
from videoseg_o3_verl.env.prompts import SEG_TOKEN
from videoseg_o3_verl.eval.policy import Generation

FIXED_GUESS_MASKS = ("empty", "full")
"""The constant masks of the fixed-guess variants."""

GUESS_THINK = "<think>Step 1: any object. Step 2: all frames. Step 3: whole video. Action: answer.</think>"
"""The reasoning of the fixed guess (the four step keywords of the format reward)."""


def guess_text(num_frames: int) -> str:
    """The fixed guess's answer turn for a video of `num_frames` frames.

    Example:
        >>> guess_text(8)[len(GUESS_THINK):]
        '<answer><VTG>{"start": 0, "end": 7, "keyframe": 4}</VTG>, <RefSeg>[SEG]</RefSeg></answer>'
    """
    vtg = json.dumps({"start": 0, "end": num_frames - 1, "keyframe": num_frames // 2})
    return f"{GUESS_THINK}<answer><VTG>{vtg}</VTG>, <RefSeg>{SEG_TOKEN}</RefSeg></answer>"


class FixedGuessPolicy:
    """Answers :func:`guess_text` of one video (build one per video); no hidden states."""

    def __init__(self, num_frames: int) -> None:
        self.text = guess_text(num_frames)

    def generate(self, messages: list[dict[str, Any]], images: list[Image.Image], max_new_tokens: int) -> Generation:
        return Generation(text=self.text, prompt_ids=[], token_ids=[], images=list(images), messages=list(messages))

    def seg_hidden(self, generation: Generation) -> torch.Tensor | None:
        return None


@dataclass
class FixedGuessModels:
    """What evaluating a fixed-guess variant needs (in place of `EvalModels`)."""

    mask: str
    """"empty" or "full" (:data:`FIXED_GUESS_MASKS`)."""
    env: EnvConfig
    """Protocol constants (the first turn is rendered as for a model)."""
    reward_parity: bool = True
    """Parity of the format and reward terms (`videoseg_o3.rewards.parity` of the training recipe)."""

    def __post_init__(self) -> None:
        if self.mask not in FIXED_GUESS_MASKS:
            raise ValueError(f"[eval] fixed_guess must be one of {FIXED_GUESS_MASKS}, got {self.mask!r}")

    @property
    def logit(self) -> float:
        """The constant mask logit: > 0 (full frame) or < 0 (empty)."""
        return 1.0 if self.mask == "full" else -1.0

    def masks(self, num_frames: int, size: tuple[int, int]) -> np.ndarray:
        """[L, H, W] the constant mask on every frame."""
        return np.full((num_frames, *size), self.mask == "full", dtype=bool)
