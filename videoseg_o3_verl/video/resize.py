# Copyright 2026 The videoseg-o3-verl authors. Licensed under the Apache License, Version 2.0.
"""Frame resizing for the LLM: Qwen-VL `smart_resize` and the environment's area-limit resize (docs/method.md §3.1,
§3.3).

Two different rules are used by VideoSEG-O3:

- the first user turn resizes frames with Qwen-VL's `smart_resize` (sides snapped to multiples of the patch
  factor, area within [min_pixels, max_pixels]) and a plain PIL resize (`resize_for_llm`);
- `<select>` observations resize with an area-ratio rescale that does NOT snap to the factor
  (`resize_to_limit`, the released `_resize_image_to_limit`); the processor re-snaps later.
"""

from __future__ import annotations

import math

from PIL import Image

MAX_ASPECT_RATIO = 200
"""Largest allowed long-side / short-side ratio of `smart_resize` (as in qwen_vl_utils)."""

DEFAULT_MIN_TOKENS = 4
"""Default `min_pixels` of `smart_resize` in units of factor² (qwen_vl_utils: 4 tokens)."""

DEFAULT_MAX_TOKENS = 16384
"""Default `max_pixels` of `smart_resize` in units of factor² (qwen_vl_utils: 16384 tokens)."""


def _round_by_factor(number: float, factor: int) -> int:
    # Python's round(): ties go to the even multiple, exactly as qwen_vl_utils does.
    return round(number / factor) * factor


def _floor_by_factor(number: float, factor: int) -> int:
    return math.floor(number / factor) * factor


def _ceil_by_factor(number: float, factor: int) -> int:
    return math.ceil(number / factor) * factor


def _check_positive_int(name: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int, got {value!r} ({type(value).__name__})")
    if value < 1:
        raise ValueError(f"{name} must be >= 1, got {value}")
    return value


def smart_resize(
    height: int,
    width: int,
    factor: int = 28,
    min_pixels: int | None = None,
    max_pixels: int | None = None,
) -> tuple[int, int]:
    """Target (height, width) of Qwen-VL's `smart_resize`.

    Rule (qwen_vl_utils): round both sides to the nearest multiple of `factor` (at least `factor`); if the
    area then exceeds `max_pixels`, scale the original sides by beta = sqrt(H*W / max_pixels) and FLOOR to
    the factor; if it is below `min_pixels`, scale by beta = sqrt(min_pixels / (H*W)) and CEIL to the factor.

    Args:
        height: original height in pixels (>= 1).
        width: original width in pixels (>= 1).
        factor: patch factor the sides are snapped to (28 for Qwen2.5-VL, 32 for Qwen3-VL).
        min_pixels: lower area bound; defaults to 4 * factor**2.
        max_pixels: upper area bound; defaults to 16384 * factor**2.

    Returns:
        (new_height, new_width), both multiples of `factor`.

    Raises:
        ValueError: if min_pixels > max_pixels or the aspect ratio exceeds 200.

    Example:
        >>> smart_resize(480, 854, factor=28, min_pixels=3136, max_pixels=25088)
        (112, 196)
        >>> smart_resize(48, 64, factor=28, min_pixels=3136, max_pixels=25088)
        (56, 56)
    """
    _check_positive_int("height", height)
    _check_positive_int("width", width)
    _check_positive_int("factor", factor)
    max_pixels = DEFAULT_MAX_TOKENS * factor**2 if max_pixels is None else max_pixels
    min_pixels = DEFAULT_MIN_TOKENS * factor**2 if min_pixels is None else min_pixels
    if max_pixels < min_pixels:
        raise ValueError(f"max_pixels ({max_pixels}) must be >= min_pixels ({min_pixels})")
    ratio = max(height, width) / min(height, width)
    if ratio > MAX_ASPECT_RATIO:
        raise ValueError(
            f"absolute aspect ratio must be <= {MAX_ASPECT_RATIO}, got {ratio} for height={height} width={width}"
        )
    h_bar = max(factor, _round_by_factor(height, factor))
    w_bar = max(factor, _round_by_factor(width, factor))
    if h_bar * w_bar > max_pixels:
        beta = math.sqrt((height * width) / max_pixels)
        h_bar = _floor_by_factor(height / beta, factor)
        w_bar = _floor_by_factor(width / beta, factor)
    elif h_bar * w_bar < min_pixels:
        beta = math.sqrt(min_pixels / (height * width))
        h_bar = _ceil_by_factor(height * beta, factor)
        w_bar = _ceil_by_factor(width * beta, factor)
    return h_bar, w_bar


def limit_size(width: int, height: int, min_pixels: int, max_pixels: int, min_side: int = 28) -> tuple[int, int]:
    """Target (width, height) of the area-limit rescale used by `<select>` observations (docs/method.md §3.3 step 5).

    If min_pixels <= W*H <= max_pixels the size is kept. Otherwise the target area is the violated bound,
    scale = sqrt(target / (W*H)), and each side becomes max(min_side, int(side * scale)) (int() truncates,
    so the result can be slightly below the target area; no snapping to a patch factor).

    Args:
        width: original width (>= 1).
        height: original height (>= 1).
        min_pixels: lower area bound.
        max_pixels: upper area bound (>= min_pixels).
        min_side: smallest allowed side after a rescale.

    Returns:
        (new_width, new_height).

    Example:
        >>> limit_size(854, 480, 3136, 25088)   # scale = sqrt(25088 / 409920) = 0.24739...
        (211, 118)
        >>> limit_size(100, 100, 3136, 25088)   # 10,000 px is inside the bounds
        (100, 100)
    """
    _check_positive_int("width", width)
    _check_positive_int("height", height)
    _check_positive_int("min_side", min_side)
    if max_pixels < min_pixels:
        raise ValueError(f"max_pixels ({max_pixels}) must be >= min_pixels ({min_pixels})")
    area = width * height
    if min_pixels <= area <= max_pixels:
        return width, height
    target = min_pixels if area < min_pixels else max_pixels
    scale = math.sqrt(target / area)
    return max(min_side, int(width * scale)), max(min_side, int(height * scale))


def resize_to_limit(image: Image.Image, min_pixels: int, max_pixels: int, min_side: int = 28) -> Image.Image:
    """Area-limit rescale of a frame (released `_resize_image_to_limit`), BILINEAR, no factor snapping.

    Args:
        image: PIL image.
        min_pixels: lower area bound.
        max_pixels: upper area bound.
        min_side: smallest allowed side after a rescale.

    Returns:
        The same image object when its area is already within bounds, else a resized copy of size
        `limit_size(W, H, min_pixels, max_pixels, min_side)`.
    """
    width, height = image.size
    new_size = limit_size(width, height, min_pixels, max_pixels, min_side)
    if new_size == (width, height):
        return image
    return image.resize(new_size, Image.Resampling.BILINEAR)


def resize_for_llm(image: Image.Image, factor: int, min_pixels: int, max_pixels: int) -> Image.Image:
    """Resize a frame to its `smart_resize` size with PIL's default (BICUBIC) filter, as the RL dataset does.

    Args:
        image: PIL image.
        factor: patch factor (28 or 32).
        min_pixels: lower area bound.
        max_pixels: upper area bound.

    Returns:
        A resized copy whose sides are multiples of `factor` and whose area is in [min_pixels, max_pixels]
        (up to the flooring/ceiling of `smart_resize`).
    """
    width, height = image.size
    new_height, new_width = smart_resize(height, width, factor=factor, min_pixels=min_pixels, max_pixels=max_pixels)
    return image.resize((new_width, new_height), Image.Resampling.BICUBIC)
