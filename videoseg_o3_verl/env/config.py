# Copyright 2026 The videoseg-o3-verl authors. Licensed under the Apache License, Version 2.0.
"""Constants of the video-crop environment with the training (docs/method.md §3.1, §3.3) and eval (docs/method.md
§3.4) presets."""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass
from typing import Any, Literal

MODES = ("train", "eval")
"""Environment variants: the RL rollout protocol and the benchmark inference protocol."""

INITIAL_RESIZE_RULES = ("smart", "limit")
"""How first-turn frames are resized: Qwen `smart_resize` (snapped) or the area-limit rescale (unsnapped)."""

INDEX_STYLES = ("int", "numpy")
"""How frame-index lists are printed in prompts: Python ints or the NumPy >= 2 repr of a list of np.int64."""

OBSERVATION_QUERIES = ("expression", "sentence")
"""What a `<select>` observation quotes as the text query: the bare expression or the first-turn query sentence."""

FETCH_IMAGE_FACTOR = 28
"""Side multiple of `qwen_vl_utils.fetch_image` at its default `image_patch_size=14` (14 x 2 merge)."""

FETCH_IMAGE_MIN_PIXELS = 4 * 28 * 28
"""Default lower area bound of `qwen_vl_utils.fetch_image` (4 tokens of 28 x 28)."""

FETCH_IMAGE_MAX_PIXELS = 16384 * 28 * 28
"""Default upper area bound of `qwen_vl_utils.fetch_image` (16,384 tokens of 28 x 28)."""


@dataclass(frozen=True)
class EnvConfig:
    """All numbers of the environment. Use `EnvConfig.train()` / `EnvConfig.eval()` (optionally with overrides)."""

    mode: Literal["train", "eval"] = "train"
    """Which protocol: "train" (RL rollout, docs/method.md §3.3) or "eval" (inference, docs/method.md §3.4)."""

    num_low_res: int = 10
    """Low-resolution ("temporal") frames in the first user turn: 10 train / 20 eval."""

    num_high_res: int = 5
    """High-resolution ("spatial") frames in the first user turn: 5 train / 8 eval."""

    low_res_min_pixels: int = 4 * 28 * 28
    """Lower area bound of every low-resolution frame (3,136 px)."""

    low_res_max_pixels: int = 32 * 28 * 28
    """Upper area bound of every low-resolution frame (25,088 px)."""

    high_res_min_pixels: int = 4 * 28 * 28
    """Lower area bound of the first-turn high-resolution frames (3,136 px)."""

    high_res_max_pixels: int = 128 * 28 * 28
    """Upper area bound of the first-turn high-resolution frames: 100,352 train / 200,704 eval."""

    keyframe_min_pixels: int = 4 * 28 * 28
    """Lower area bound of the keyframe returned by a `<select>` (3,136 px)."""

    keyframe_max_pixels: int = 256 * 28 * 28
    """Upper area bound of the keyframe returned by a `<select>`: 200,704 train / 401,408 eval."""

    max_frames_per_round: int = 5
    """Most low-resolution frames returned by one `<select>` (sampled from the inclusive interval)."""

    max_turns: int = 3
    """Most assistant turns per episode, the final answer included."""

    max_new_tokens: int = 512
    """Generation budget per assistant turn: 512 train / 1024 eval."""

    patch_factor: int = 28
    """Side multiple used by `smart_resize` for first-turn frames. Unless `videoseg_o3.env.patch_factor` is set, the
    agent loop takes the processor's patch x merge (32 for Qwen3-VL, 28 for Qwen2.5-VL); the released data code
    snaps with 28 for every model, which the paper recipes set."""

    min_side: int = 28
    """Smallest side produced by the area-limit rescale of `<select>` frames."""

    initial_resize: Literal["smart", "limit"] = "smart"
    """First-turn resize rule: "smart" = `smart_resize` + PIL resize (RL dataset, docs/method.md §3.1); "limit" = the
    area-limit rescale that the released eval dataset applies to its initial frames."""

    parser_parity: bool = False
    """Parse `<select>` as the released RL rollout does (`parse_action(..., parity=True)`): a VTG key that is
    missing defaults to 0 and the episode goes on (train protocol; the released inference parser, like False, makes
    such a turn invalid and ends the episode; the format reward asks for all three keys)."""

    index_style: Literal["int", "numpy"] = "int"
    """Frame-index lists in the first turn and in observations: "int" prints "[0, 11]"; "numpy" prints
    "[np.int64(0), np.int64(11)]", what the released eval's `str(list(ndarray))` gives under NumPy >= 2."""

    observation_query: Literal["expression", "sentence"] = "expression"
    """The text quoted by `The text query is '...'` after a `<select>`: the bare expression (RL rollout) or the
    whole first-turn query sentence `The query is "...". Show me ... This video has N frames.` (released eval)."""

    fetch_image_snap: bool = False
    """After the environment's resize, snap every shown image as `qwen_vl_utils.fetch_image` does (released eval,
    which calls `process_vision_info` on all messages): `smart_resize` with factor 28 and 4..16,384 tokens, BICUBIC."""

    frame_labels: bool = False
    """Write "Frame k: " before every low-resolution image (first turn and `<select>` observations). Not in the
    released protocol, which shows the images back to back and lists their indices afterwards; for tiny random
    policies (the learning demo), which otherwise have to count image blocks to name a frame."""

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise ValueError(f"[EnvConfig] mode must be one of {MODES}, got {self.mode!r}")
        if self.initial_resize not in INITIAL_RESIZE_RULES:
            raise ValueError(
                f"[EnvConfig] initial_resize must be one of {INITIAL_RESIZE_RULES}, got {self.initial_resize!r}"
            )
        for name, allowed in (("index_style", INDEX_STYLES), ("observation_query", OBSERVATION_QUERIES)):
            if getattr(self, name) not in allowed:
                raise ValueError(f"[EnvConfig] {name} must be one of {allowed}, got {getattr(self, name)!r}")
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if f.name in _NON_INT_FIELDS:
                continue
            if f.type in (bool, "bool"):
                if not isinstance(value, bool):
                    raise TypeError(f"[EnvConfig] {f.name} must be a bool, got {value!r} ({type(value).__name__})")
                continue
            if isinstance(value, bool) or not isinstance(value, int):
                raise TypeError(f"[EnvConfig] {f.name} must be an int, got {value!r} ({type(value).__name__})")
            if value < 1:
                raise ValueError(f"[EnvConfig] {f.name} must be >= 1, got {value}")
        for prefix in ("low_res", "high_res", "keyframe"):
            lo, hi = getattr(self, f"{prefix}_min_pixels"), getattr(self, f"{prefix}_max_pixels")
            if lo > hi:
                raise ValueError(f"[EnvConfig] {prefix}_min_pixels ({lo}) must be <= {prefix}_max_pixels ({hi})")

    @classmethod
    def train(cls, **overrides) -> EnvConfig:
        """Preset of the RL rollout (docs/method.md §3.1, §3.3): 10 + 5 initial frames, keyframe ≤ 200,704 px, 512
        tokens."""
        values = dict(
            mode="train",
            num_low_res=10,
            num_high_res=5,
            high_res_max_pixels=128 * 28 * 28,
            keyframe_max_pixels=256 * 28 * 28,
            max_new_tokens=512,
        )
        values.update(overrides)
        return cls(**values)

    @classmethod
    def eval(cls, released_inputs: bool = True, **overrides) -> EnvConfig:
        """Preset of benchmark inference (docs/method.md §3.4): 20 + 8 initial frames, keyframe ≤ 401,408 px, 1024
        tokens.

        With `released_inputs` (the default) the model sees exactly what the released eval fed it
        (`RELEASED_EVAL_INPUTS`: NumPy index reprs, the query sentence in observations, area-limit rescale of the
        initial frames, then `fetch_image` snapping); `released_inputs=False` gives the clean form (plain ints,
        the bare expression, `smart_resize` of the initial frames, no extra snapping).
        """
        values = dict(
            **(RELEASED_EVAL_INPUTS if released_inputs else {}),
            mode="eval",
            num_low_res=20,
            num_high_res=8,
            high_res_max_pixels=256 * 28 * 28,
            keyframe_max_pixels=512 * 28 * 28,
            max_new_tokens=1024,
        )
        values.update(overrides)
        return cls(**values)

    @staticmethod
    def turn0_keyframe(num_frames: int) -> int:
        """Keyframe whose mask is decoded for the turn-0 [SEG] in training: the middle frame `L // 2` (docs/method.md
        §3.3).

        Example:
            >>> EnvConfig.turn0_keyframe(7), EnvConfig.turn0_keyframe(8), EnvConfig.turn0_keyframe(1)
            (3, 4, 0)
        """
        if isinstance(num_frames, bool) or not isinstance(num_frames, int):
            raise TypeError(f"num_frames must be an int, got {num_frames!r}")
        if num_frames < 1:
            raise ValueError(f"num_frames must be >= 1, got {num_frames}")
        return num_frames // 2


_NON_INT_FIELDS = ("mode", "initial_resize", "index_style", "observation_query")

RELEASED_EVAL_INPUTS = dict(
    initial_resize="limit", index_style="numpy", observation_query="sentence", fetch_image_snap=True
)
"""The `EnvConfig` fields that reproduce the released eval's model inputs (the `EnvConfig.eval()` default)."""


def load_env_overrides(path: str | os.PathLike) -> dict[str, Any]:
    """`EnvConfig` overrides from a YAML mapping (e.g. ``recipes/demo_env.yaml``, the block a recipe puts under
    ``videoseg_o3.env``), so that data building, training and evaluation share one file.

    Raises:
        ValueError: the file is not a mapping, or names a key that is not an `EnvConfig` field.
    """
    import yaml

    with open(path, encoding="utf-8") as f:
        values = yaml.safe_load(f) or {}
    name = os.path.basename(os.fspath(path))
    if not isinstance(values, dict):
        raise ValueError(f"{name} must hold a mapping of EnvConfig fields, got {type(values).__name__}")
    unknown = sorted(set(values) - {f.name for f in dataclasses.fields(EnvConfig)})
    if unknown:
        raise ValueError(f"{name}: unknown EnvConfig field(s) {unknown}")
    return dict(values)
