# Copyright 2026 The videoseg-o3-verl authors. Licensed under the Apache License, Version 2.0.
"""Which frames the environment shows: first-turn sampling (docs/method.md §3.1, §3.4) and `<select>` sampling
(docs/method.md §3.3)."""

from __future__ import annotations

import operator

import numpy as np

from videoseg_o3_verl.env.config import MODES


def check_int(name: str, value: object, minimum: int) -> int:
    """Return `value` as a Python int (numpy integers accepted) or raise TypeError/ValueError naming `name`."""
    if isinstance(value, bool | np.bool_):
        raise TypeError(f"{name} must be an int, got bool {value!r}")
    try:
        value = operator.index(value)
    except TypeError:
        raise TypeError(f"{name} must be an int, got {value!r} ({type(value).__name__})") from None
    if value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value}")
    return value


def initial_frame_indices(num_frames: int, count: int, mode: str = "train") -> list[int]:
    """Frame indices shown in the first user turn (low-res or high-res set).

    train (RL dataset, docs/method.md §3.1): `linspace(0, L-1, count, dtype=int)` if L > count + 1, else all frames.
    eval (docs/method.md §3.4): `linspace(0, L-1, count, dtype=int)` if L > count, else all frames.
    For L == count + 1 the two modes differ: train shows all L frames, eval shows `count` frames.

    Args:
        num_frames: L, number of frames in the video (>= 1).
        count: number of frames to sample (10/5 train, 20/8 eval).
        mode: "train" or "eval".

    Returns:
        Sorted Python ints in [0, L-1].

    Example:
        >>> initial_frame_indices(100, 5)
        [0, 24, 49, 74, 99]
        >>> initial_frame_indices(6, 5), initial_frame_indices(6, 5, mode="eval")
        ([0, 1, 2, 3, 4, 5], [0, 1, 2, 3, 5])
    """
    num_frames = check_int("num_frames", num_frames, 1)
    count = check_int("count", count, 1)
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
    threshold = count + 1 if mode == "train" else count
    if num_frames > threshold:
        return [int(i) for i in np.linspace(0, num_frames - 1, count, dtype=int)]
    return list(range(num_frames))


def sample_interval_frames(start: int, end: int, max_frames: int = 5) -> list[int]:
    """Low-resolution frames returned for a `<select>` of the INCLUSIVE interval [start, end] (docs/method.md §3.3
    step 5).

    All of start..end if end - start + 1 <= max_frames, else `linspace(start, end, max_frames, dtype=int)`.

    Args:
        start: first frame (>= 0).
        end: last frame, inclusive (>= start).
        max_frames: most frames to return (>= 1).

    Returns:
        Sorted Python ints in [start, end].

    Example:
        >>> sample_interval_frames(0, 99)
        [0, 24, 49, 74, 99]
        >>> sample_interval_frames(3, 7), sample_interval_frames(4, 4)
        ([3, 4, 5, 6, 7], [4])
    """
    start = check_int("start", start, 0)
    end = check_int("end", end, 0)
    if end < start:
        raise ValueError(f"end ({end}) must be >= start ({start}); the interval is inclusive")
    max_frames = check_int("max_frames", max_frames, 1)
    if end - start + 1 <= max_frames:
        return list(range(start, end + 1))
    return [int(i) for i in np.linspace(start, end, max_frames, dtype=int)]
