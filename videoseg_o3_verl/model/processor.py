# Copyright 2026 The videoseg-o3-verl authors. Licensed under the Apache License, Version 2.0.
"""What the policy's image processor is told, in one place: its pixel bounds and the vision placeholder tokens.

The pixel bounds decide how many vision tokens every frame costs and which ``pixel_values`` the model sees. They
must be the same wherever the processor runs: when the agent loop expands the prompt's image pads, when the rollout
server (vLLM or the HF backend) encodes the images, and when verl recomputes ``pixel_values`` for the actor and
reference forward. verl threads one ``mm_processor_kwargs`` dict through all three; :func:`pixel_bounds_kwargs`
builds that dict from ``videoseg_o3.processor`` and the agent loop hands it to every consumer.
"""

from __future__ import annotations

from typing import Any

VISION_PLACEHOLDER_TOKENS = ("<|image_pad|>", "<|video_pad|>", "<|vision_start|>", "<|vision_end|>", "<|vision_pad|>")
"""Tokens the policy must never sample: a generated image pad breaks verl's mrope position ids (verl counts every
pad in prompt + response as a vision token when it builds the position ids)."""


def pixel_bounds_kwargs(processor: Any, min_pixels: int | None, max_pixels: int | None) -> dict[str, int]:
    """The ``mm_processor_kwargs`` that bound every image's area to ``[min_pixels, max_pixels]``.

    transformers' Qwen-VL image processors only honour call-time bounds when both are given, so a bound left at
    ``None`` is filled from the processor's own ``size`` (``shortest_edge`` / ``longest_edge``). Both ``None``
    gives ``{}``: the checkpoint's defaults apply.

    Args:
        processor: the policy's HF processor (with an ``image_processor``) or an image processor.
        min_pixels: lower area bound (``videoseg_o3.processor.min_pixels``), or None.
        max_pixels: upper area bound (``videoseg_o3.processor.max_pixels``), or None.

    Raises:
        ValueError: a bound below 1, ``min_pixels > max_pixels``, or a bound set for a processor without images.

    Example:
        >>> class _Images:
        ...     size = {"shortest_edge": 65536, "longest_edge": 16777216}
        >>> class _Processor:
        ...     image_processor = _Images()
        >>> pixel_bounds_kwargs(_Processor(), 3136, 200704)
        {'min_pixels': 3136, 'max_pixels': 200704}
        >>> pixel_bounds_kwargs(_Processor(), None, 200704)     # the minimum stays the checkpoint's
        {'min_pixels': 65536, 'max_pixels': 200704}
        >>> pixel_bounds_kwargs(_Processor(), None, None)
        {}
    """
    if min_pixels is None and max_pixels is None:
        return {}
    for key, value in (("min_pixels", min_pixels), ("max_pixels", max_pixels)):
        if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
            raise ValueError(f"videoseg_o3.processor.{key} must be an int >= 1 or null, got {value!r}")
    images = getattr(processor, "image_processor", processor)
    size = getattr(images, "size", None)
    size = dict(size) if size is not None else {}
    low = min_pixels if min_pixels is not None else size.get("shortest_edge", getattr(images, "min_pixels", None))
    high = max_pixels if max_pixels is not None else size.get("longest_edge", getattr(images, "max_pixels", None))
    if low is None or high is None:
        raise ValueError(f"videoseg_o3.processor: {type(images).__name__} has no pixel bounds to complete "
                         f"min_pixels={min_pixels} / max_pixels={max_pixels}; set both")
    if int(low) > int(high):
        raise ValueError(f"videoseg_o3.processor: min_pixels ({low}) must be <= max_pixels ({high})")
    return {"min_pixels": int(low), "max_pixels": int(high)}
