# Copyright 2026 The videoseg-o3-verl authors. Licensed under the Apache License, Version 2.0.
"""User-message content the environment shows: the first turn (docs/method.md §3.1, §3.4) and `<select>` observations
(§3.3).

Pure given a frame loader: `video` is anything with `__len__` and `get_frames(indices) -> list[PIL.Image]`
(e.g. `videoseg_o3_verl.video.VideoSource`). Content items use the Qwen/verl chat format
`{"type": "image", "image": PIL.Image}` and `{"type": "text", "text": str}`. Index lists are rendered from
Python ints ("[0, 11, 22]"), or as the released eval printed them under NumPy >= 2 with
`config.index_style == "numpy"` ("[np.int64(0), np.int64(11)]").
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

from PIL import Image

from videoseg_o3_verl.env.actions import Action
from videoseg_o3_verl.env.config import (
    FETCH_IMAGE_FACTOR,
    FETCH_IMAGE_MAX_PIXELS,
    FETCH_IMAGE_MIN_PIXELS,
    EnvConfig,
)
from videoseg_o3_verl.env.frames import initial_frame_indices, sample_interval_frames
from videoseg_o3_verl.env.prompts import (
    INITIAL_HIGH_RES_TEXT,
    INITIAL_LOW_RES_TEXT,
    OBS_CONTINUE_TEXT,
    OBS_KEYFRAME_TEXT,
    OBS_LOW_RES_TEXT,
    SEG_COT_SYS,
    SEG_COT_TEMPORAL_TEMPLATE,
    SEG_COT_TEMPORAL_TEMPLATE_EVAL,
)
from videoseg_o3_verl.video.resize import resize_for_llm, resize_to_limit


class FrameLoader(Protocol):
    """What the renderers need from a video."""

    def __len__(self) -> int: ...

    def get_frames(self, indices: list[int]) -> list[Image.Image]: ...


@dataclass(frozen=True)
class ShownFrames:
    """Which frames one user message showed, in content order, and at which size."""

    low_res_indices: list[int] = field(default_factory=list)
    """Indices of the low-resolution frames (first-turn temporal frames or the select interval samples)."""

    high_res_indices: list[int] = field(default_factory=list)
    """Indices of the high-resolution frames (first-turn spatial frames, or `[keyframe]` for a select)."""

    low_res_sizes: list[tuple[int, int]] = field(default_factory=list)
    """(width, height) of each low-resolution image as shown."""

    high_res_sizes: list[tuple[int, int]] = field(default_factory=list)
    """(width, height) of each high-resolution image as shown."""

    keyframe: int | None = None
    """The selected keyframe for a select observation; None for the first turn."""


def render_indices(indices: list[int], style: str = "int") -> str:
    """An index list as the prompt prints it.

    Example:
        >>> render_indices([0, 11]), render_indices([0, 11], "numpy")
        ('[0, 11]', '[np.int64(0), np.int64(11)]')
    """
    if style == "numpy":  # str(list(ndarray of int64)) under NumPy >= 2
        return "[" + ", ".join(f"np.int64({int(i)})" for i in indices) + "]"
    return str([int(i) for i in indices])


def query_sentence(question: str, num_frames: int, config: EnvConfig) -> str:
    """The query text of the first user turn (train or eval template)."""
    template = SEG_COT_TEMPORAL_TEMPLATE if config.mode == "train" else SEG_COT_TEMPORAL_TEMPLATE_EVAL
    return template.format(question=question, total_frames=num_frames)


def _snap(img: Image.Image, config: EnvConfig) -> Image.Image:
    """`qwen_vl_utils.fetch_image`'s resize when `config.fetch_image_snap`, else the image unchanged."""
    if not config.fetch_image_snap:
        return img
    return resize_for_llm(img, FETCH_IMAGE_FACTOR, FETCH_IMAGE_MIN_PIXELS, FETCH_IMAGE_MAX_PIXELS)


def _load(video: FrameLoader, indices: list[int]) -> dict[int, Image.Image]:
    """Decode every needed frame in one batched call; {index: image}."""
    unique = sorted(set(indices))
    frames = video.get_frames(unique)
    if len(frames) != len(unique):
        raise ValueError(f"get_frames returned {len(frames)} images for {len(unique)} indices {unique}")
    return dict(zip(unique, frames, strict=True))


def _image(img: Image.Image) -> dict[str, Any]:
    return {"type": "image", "image": img}


def _text(text: str) -> dict[str, Any]:
    return {"type": "text", "text": text}


def _check_question(question: object) -> str:
    if not isinstance(question, str):
        raise TypeError(f"question must be a str, got {type(question).__name__}")
    return question


def _low_res_images(indices: list[int], images: list[Image.Image], config: EnvConfig) -> list[dict[str, Any]]:
    """The low-resolution images, each preceded by "Frame k: " when `config.frame_labels` is on."""
    if not config.frame_labels:
        return [_image(img) for img in images]
    return [item for i, img in zip(indices, images, strict=True) for item in (_text(f"Frame {int(i)}: "), _image(img))]


def initial_user_content(
    video: FrameLoader, question: str, config: EnvConfig
) -> tuple[list[dict[str, Any]], ShownFrames]:
    """Content of the first user message (docs/method.md §3.1 train, §2.3 eval).

    Order: [image] * n_low, INITIAL_LOW_RES_TEXT, [image] * n_high, INITIAL_HIGH_RES_TEXT, query text
    (SEG_COT_TEMPORAL_TEMPLATE in train, SEG_COT_TEMPORAL_TEMPLATE_EVAL in eval). Frame choice follows
    `initial_frame_indices(L, count, config.mode)`. With `config.initial_resize == "smart"` frames are resized
    by `resize_for_llm` (sides multiple of `config.patch_factor`); with "limit" by `resize_to_limit`; then, with
    `config.fetch_image_snap`, snapped as `qwen_vl_utils.fetch_image` does (what the released eval fed the model).

    Args:
        video: frame loader with L = len(video) >= 1 frames.
        question: the referring / reasoning expression.
        config: environment constants (mode, counts, pixel budgets).

    Returns:
        (content, shown): the message content list and the frames it shows.
    """
    question = _check_question(question)
    num_frames = len(video)
    low = initial_frame_indices(num_frames, config.num_low_res, config.mode)
    high = initial_frame_indices(num_frames, config.num_high_res, config.mode)
    frames = _load(video, low + high)

    def resize(img: Image.Image, min_pixels: int, max_pixels: int) -> Image.Image:
        if config.initial_resize == "smart":
            return _snap(resize_for_llm(img, config.patch_factor, min_pixels, max_pixels), config)
        return _snap(resize_to_limit(img, min_pixels, max_pixels, config.min_side), config)

    low_images = [resize(frames[i], config.low_res_min_pixels, config.low_res_max_pixels) for i in low]
    high_images = [resize(frames[i], config.high_res_min_pixels, config.high_res_max_pixels) for i in high]
    style = config.index_style
    content = (
        _low_res_images(low, low_images, config)
        + [_text(INITIAL_LOW_RES_TEXT.format(n=len(low), indices=render_indices(low, style)))]
        + [_image(img) for img in high_images]
        + [_text(INITIAL_HIGH_RES_TEXT.format(n=len(high), indices=render_indices(high, style)))]
        + [_text(query_sentence(question, num_frames, config))]
    )
    shown = ShownFrames(
        low_res_indices=list(low),
        high_res_indices=list(high),
        low_res_sizes=[img.size for img in low_images],
        high_res_sizes=[img.size for img in high_images],
    )
    return content, shown


def select_observation_content(
    video: FrameLoader, action: Action, question: str, config: EnvConfig
) -> tuple[list[dict[str, Any]], ShownFrames]:
    """Content of the user message answering a `<select>` (docs/method.md §3.3 step 5; same layout in eval, §2.3).

    Order: [image] * n (frames `sample_interval_frames(start, end, config.max_frames_per_round)`, each
    `resize_to_limit`-ed to [low_res_min_pixels, low_res_max_pixels]), OBS_LOW_RES_TEXT, [image] keyframe
    (`resize_to_limit` to [keyframe_min_pixels, keyframe_max_pixels]), OBS_KEYFRAME_TEXT, OBS_CONTINUE_TEXT
    (quoting the expression, or the first-turn query sentence with `config.observation_query == "sentence"`).
    With `config.fetch_image_snap` every image is then snapped as `qwen_vl_utils.fetch_image` does.

    Args:
        video: frame loader with L = len(video) frames.
        action: a "select" action whose (clamped) start/end/keyframe lie in [0, L-1] with start <= end.
        question: the referring / reasoning expression.
        config: environment constants.

    Returns:
        (content, shown) with `shown.keyframe == action.keyframe` and `shown.high_res_indices == [keyframe]`.

    Raises:
        ValueError: the action is not a select, or its indices do not fit this video.
    """
    question = _check_question(question)
    if not isinstance(action, Action) or action.kind != "select":
        raise ValueError(f"select_observation_content needs an Action of kind 'select', got {action!r}")
    num_frames = len(video)
    start, end, keyframe = action.start, action.end, action.keyframe
    if any(not isinstance(v, int) for v in (start, end, keyframe)) or not (
        0 <= start <= end < num_frames and 0 <= keyframe < num_frames
    ):
        raise ValueError(
            f"select action start={start} end={end} keyframe={keyframe} does not fit a video of {num_frames} "
            "frames (expected 0 <= start <= end <= L-1 and 0 <= keyframe <= L-1; parse with this L)"
        )
    temporal = sample_interval_frames(start, end, config.max_frames_per_round)
    frames = _load(video, temporal + [keyframe])
    low_images = [
        _snap(resize_to_limit(frames[i], config.low_res_min_pixels, config.low_res_max_pixels, config.min_side),
              config)
        for i in temporal
    ]
    key_image = _snap(resize_to_limit(
        frames[keyframe], config.keyframe_min_pixels, config.keyframe_max_pixels, config.min_side
    ), config)
    quoted = question if config.observation_query == "expression" else query_sentence(question, num_frames, config)
    content = (
        _low_res_images(temporal, low_images, config)
        + [_text(OBS_LOW_RES_TEXT.format(n=len(temporal), indices=render_indices(temporal, config.index_style)))]
        + [_image(key_image)]
        + [_text(OBS_KEYFRAME_TEXT.format(keyframe=int(keyframe)))]
        + [_text(OBS_CONTINUE_TEXT.format(question=quoted))]
    )
    shown = ShownFrames(
        low_res_indices=list(temporal),
        high_res_indices=[int(keyframe)],
        low_res_sizes=[img.size for img in low_images],
        high_res_sizes=[key_image.size],
        keyframe=int(keyframe),
    )
    return content, shown


def system_message() -> dict[str, Any]:
    """The system message `{"role": "system", "content": SEG_COT_SYS}` (docs/method.md §3.1)."""
    return {"role": "system", "content": SEG_COT_SYS}


def initial_messages(video: FrameLoader, question: str, config: EnvConfig) -> list[dict[str, Any]]:
    """`[system_message(), {"role": "user", "content": initial_user_content(...)[0]}]`."""
    content, _ = initial_user_content(video, question, config)
    return [system_message(), {"role": "user", "content": content}]
