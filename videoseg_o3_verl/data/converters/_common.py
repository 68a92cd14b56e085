# Copyright 2026 The videoseg-o3-verl authors. Licensed under the Apache License, Version 2.0.
"""Helpers shared by the converters: JSON loading, key access and frame/mask checks with error messages that name
the annotation FILE, the RECORD (video id / expression id / list index) and what is wrong.

Dimension letters: `T` frames of a video, `H`, `W` frame size in pixels.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from itertools import islice
from typing import Any

import numpy as np
from PIL import Image

from videoseg_o3_verl.data.records import RVOSRecord
from videoseg_o3_verl.data.rle import RLE, encode_mask, merge_rles, normalize_rle_with_area

ProgressLike = Callable[..., Iterable[Any]]
"""`progress(iterable, total=..., desc=...)` wrapper over a converter's video loop, e.g. `tqdm.tqdm`."""


def where(file: str, video: Any = None, expression: Any = None, index: Any = None) -> str:
    """Error prefix `"<file>: video 'v', expression 'e'"` (parts that are None are left out)."""
    parts = []
    if index is not None:
        parts.append(f"entry [{index}]")
    if video is not None:
        parts.append(f"video {video!r}")
    if expression is not None:
        parts.append(f"expression {expression!r}")
    return f"{file}: " + ", ".join(parts) if parts else str(file)


def load_json(path: str, what: str) -> Any:
    """Load a JSON annotation file.

    Raises:
        FileNotFoundError: the file does not exist (message says which file it should be).
        ValueError: the file is not valid JSON (message gives line and column).
    """
    if not os.path.isfile(path):
        raise FileNotFoundError(f"{what} not found: {path}")
    with open(path, encoding="utf-8") as f:
        try:
            return json.load(f)
        except json.JSONDecodeError as err:
            raise ValueError(f"{path}: not valid JSON ({err.msg} at line {err.lineno}, column {err.colno})") from err


def get_key(obj: Any, key: str, ctx: str, types: type | tuple[type, ...] | None = None) -> Any:
    """`obj[key]` with errors naming the context, the missing key and the expected type."""
    if not isinstance(obj, Mapping):
        raise ValueError(f"{ctx}: expected a JSON object with key {key!r}, got {type(obj).__name__}")
    if key not in obj:
        raise ValueError(f"{ctx}: missing key {key!r} (keys present: {sorted(obj)[:12]})")
    value = obj[key]
    if types is not None and not isinstance(value, types):
        names = types.__name__ if isinstance(types, type) else "/".join(t.__name__ for t in types)
        raise ValueError(f"{ctx}: key {key!r} must be {names}, got {type(value).__name__} {value!r:.60}")
    return value


def as_id_list(value: Any, ctx: str, key: str) -> list[int | str]:
    """An id or list of ids (int or str) as a non-empty list."""
    items = value if isinstance(value, list | tuple) else [value]
    if not items:
        raise ValueError(f"{ctx}: {key!r} is an empty list (need at least one id)")
    for item in items:
        if isinstance(item, bool) or not isinstance(item, int | str):
            raise ValueError(f"{ctx}: {key!r} entries must be int or str ids, got {item!r}")
    return list(items)


def as_frame_list(value: Any, ctx: str) -> list[str]:
    """The `frames` list of a video: non-empty list of non-empty str stems."""
    if not isinstance(value, list) or not value:
        raise ValueError(f"{ctx}: 'frames' must be a non-empty list of frame names, got {value!r:.60}")
    for f in value:
        if not isinstance(f, str) or not f:
            raise ValueError(f"{ctx}: 'frames' entries must be non-empty str, got {f!r}")
    return list(value)


def check_frame_files(frames_dir: str, frame_ids: Sequence[str], ext: str, ctx: str) -> None:
    """Raise FileNotFoundError naming the first missing `<frames_dir>/<frame_id><ext>`."""
    if not os.path.isdir(frames_dir):
        raise FileNotFoundError(f"{ctx}: frames folder {frames_dir} does not exist")
    present = set(os.listdir(frames_dir))
    missing = [f for f in frame_ids if f + ext not in present]
    if missing:
        raise FileNotFoundError(
            f"{ctx}: frame file {os.path.join(frames_dir, missing[0] + ext)} is missing "
            f"({len(missing)} of {len(frame_ids)} frames missing)"
        )


def image_hw(path: str, ctx: str) -> tuple[int, int]:
    """(H, W) of an image file, reading only its header."""
    if not os.path.isfile(path):
        raise FileNotFoundError(f"{ctx}: image {path} does not exist")
    with Image.open(path) as img:
        w, h = img.size
    return int(h), int(w)


def read_label_png(path: str, ctx: str) -> np.ndarray:
    """Read an annotation PNG as a [H, W] integer label map (palette index or grey value).

    Raises:
        ValueError: the PNG is an RGB(A) colour image (convert it to a palette/grey PNG first).
    """
    with Image.open(path) as img:
        if img.mode not in ("P", "L", "1", "I", "I;16"):
            raise ValueError(f"{ctx}: annotation {path} has image mode {img.mode!r}; expected a palette ('P') or "
                             f"grey ('L') PNG whose pixel values are object ids")
        return np.asarray(img).astype(np.int64)


def existence_of(masks: Sequence[RLE | None]) -> tuple[int, ...]:
    """Per frame 1 where the mask is not None."""
    return tuple(0 if m is None else 1 for m in masks)


def encode_or_none(mask: np.ndarray) -> RLE | None:
    """RLE of a [H, W] bool mask, or None when it has no foreground pixel."""
    return encode_mask(mask) if mask.any() else None


class MaskDict:
    """A `mask_dict.json` ({anno_id: [RLE | None per frame]}) with each entry checked once on first use."""

    def __init__(self, path: str) -> None:
        self.path = path
        data = load_json(path, "mask dict")
        if not isinstance(data, dict):
            raise ValueError(f"{path}: expected a JSON object {{anno_id: [RLE or null per frame]}}, "
                             f"got {type(data).__name__}")
        self._raw: dict[str, Any] = data
        self._checked: dict[str, list[RLE | None]] = {}

    def get(self, anno_id: int | str, num_frames: int, ctx: str) -> list[RLE | None]:
        """Normalised per-frame RLEs of `anno_id` (empty masks become None)."""
        key = str(anno_id)
        if key not in self._checked:
            if key not in self._raw:
                raise ValueError(f"{ctx}: anno_id {anno_id!r} not found in {self.path}")
            entry = self._raw[key]
            if not isinstance(entry, list):
                raise ValueError(f"{ctx}: {self.path}[{key!r}] must be a list of RLE/null per frame, "
                                 f"got {type(entry).__name__}")
            checked: list[RLE | None] = []
            for t, rle in enumerate(entry):
                if rle is None:
                    checked.append(None)
                    continue
                try:
                    norm, area = normalize_rle_with_area(rle)
                    checked.append(norm if area > 0 else None)
                except (TypeError, ValueError) as err:
                    raise ValueError(f"{ctx}: bad RLE in {self.path}[{key!r}][{t}]: {err}") from err
            self._checked[key] = checked
        masks = self._checked[key]
        if len(masks) != num_frames:
            raise ValueError(f"{ctx}: {self.path}[{key!r}] has {len(masks)} masks but the video has "
                             f"{num_frames} frames")
        return masks


def merge_objects(per_object: Sequence[Sequence[RLE | None]], ctx: str) -> tuple[RLE | None, ...]:
    """OR the per-frame masks of several objects: [O][T] → [T] (None where absent in all).

    Inputs are normalised RLEs or None (from `MaskDict.get` / `encode_or_none`), so one object passes through.
    """
    if len(per_object) == 1:
        return tuple(per_object[0])
    num_frames = len(per_object[0])
    out = []
    for t in range(num_frames):
        try:
            out.append(merge_rles([obj[t] for obj in per_object]))
        except ValueError as err:
            raise ValueError(f"{ctx}: frame {t}: cannot merge object masks: {err}") from err
    return tuple(out)


def hw_of(masks: Sequence[RLE | None]) -> tuple[int, int] | None:
    """(H, W) of the first non-None RLE, or None."""
    for m in masks:
        if m is not None:
            return int(m["size"][0]), int(m["size"][1])
    return None


def build_record(ctx: str, **fields: Any) -> RVOSRecord:
    """`RVOSRecord(**fields)`, re-raising validation errors with the annotation-file context."""
    try:
        return RVOSRecord(**fields)
    except (TypeError, ValueError) as err:
        raise ValueError(f"{ctx}: {err}") from err


def folder_record(ctx: str, *, frames_dir: str, frames: Sequence[str], hw: tuple[int, int],
                  **fields: Any) -> RVOSRecord:
    """:func:`build_record` for a video stored as a folder of frames: fills the path, frame ids, frame count and
    ``(height, width)`` from ``hw``."""
    return build_record(ctx, video_path=frames_dir, frame_ids=frames, num_frames=len(frames), height=hw[0],
                        width=hw[1], **fields)


def take(records: Iterable[RVOSRecord], limit: int | None) -> list[RVOSRecord]:
    """The first `limit` records (all when None)."""
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit <= 0):
        raise ValueError(f"limit must be a positive int or None, got {limit!r}")
    return list(records if limit is None else islice(records, limit))


def iterate(progress: ProgressLike | None, items: Sequence[Any], desc: str) -> Iterable[Any]:
    """`items`, wrapped by `progress(items, total=len(items), desc=desc)` when a wrapper is given."""
    return items if progress is None else progress(items, total=len(items), desc=desc)


def videos_of(meta: Any, file: str) -> dict[str, Any]:
    """The `{"videos": {vid: {...}}}` mapping of a meta-expressions file."""
    videos = get_key(meta, "videos", file, dict)
    return videos
