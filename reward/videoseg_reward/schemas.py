# Copyright 2026 The videoseg-o3-verl authors. Licensed under the Apache License, Version 2.0.
"""Typed records shared by the scorer, the Ray actor, the HTTP app and the client, and their JSON forms.

No pydantic: the core (:mod:`videoseg_reward.scorer`) must work without the ``serve`` extra. JSON parsing
raises ``ValueError`` with the offending field named; the app turns that into HTTP 422.

JSON forms (what ``POST /segment`` and ``POST /score`` take, see ``reward/README.md``)::

    prompts: {"type": "embedding", "embeddings": [[256 floats], ...]}
           | {"type": "box", "boxes": [[x0, y0, x1, y1], ...]}              # pixels of the keyframe
           | {"type": "points", "points": [[[x, y], ...], ...], "labels": [[1, 0, ...], ...]}
           | {"type": "mask", "masks": [RLE, ...]}                           # keyframe-size RLEs
    video:   {"path": "...", "frame_ids": ["00000", ...] | null}
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from videoseg_reward.frames import MAX_VIDEO_FRAMES, check_path_text
from videoseg_reward.masks import decode_rle, decode_rle_list, encode_mask, encode_masks

MODES = ("image", "propagate", "propagate_language")
"""``image``: every frame decoded independently with the same prompt (docs/method.md §1, training-time);
``propagate``: SAM2 memory propagation forward and backward from the keyframe (docs/method.md §3.4, inference-time);
``propagate_language``: the released inference protocol (:mod:`videoseg_reward.propagation`): embedding prompts,
SAM2 over every frame of the video, the embedding injected on every frame."""

PROMPT_KINDS = ("embedding", "box", "points", "mask")
"""Prompt types accepted by :class:`Prompts`."""

EMBED_DIM = 256
"""Width of a projected ``[SEG]`` embedding (SAM2 prompt dimension)."""


@dataclass(frozen=True, eq=False)  # array fields: compare the arrays explicitly
class Prompts:
    """Per-object prompts on the keyframe; exactly the arrays of ``kind`` are set (use the constructors)."""

    kind: str
    """One of :data:`PROMPT_KINDS`."""
    embeddings: np.ndarray | None = None
    """``[n, 256]`` float32 projected ``[SEG]`` embeddings (``kind == "embedding"``)."""
    boxes: np.ndarray | None = None
    """``[n, 4]`` float32 ``x0, y0, x1, y1`` boxes in keyframe pixels (``kind == "box"``)."""
    points: np.ndarray | None = None
    """``[n, P, 2]`` float32 ``x, y`` point coordinates in keyframe pixels (``kind == "points"``)."""
    labels: np.ndarray | None = None
    """``[n, P]`` int32 point labels: 1 positive, 0 negative, -1 padding (``kind == "points"``)."""
    masks: np.ndarray | None = None
    """``[n, H, W]`` bool keyframe masks at the original frame size (``kind == "mask"``)."""

    @property
    def num_objects(self) -> int:
        """Number of objects ``n``."""
        arr = {"embedding": self.embeddings, "box": self.boxes, "points": self.points, "mask": self.masks}[self.kind]
        return int(arr.shape[0])

    def select(self, index: int) -> Prompts:
        """The prompts of object ``index`` only (``n = 1``)."""
        fields = ("embeddings", "boxes", "points", "labels", "masks")
        return Prompts(self.kind, **{f: getattr(self, f)[index:index + 1] for f in fields
                                     if getattr(self, f) is not None})

    @classmethod
    def from_embeddings(cls, embeddings: Any) -> Prompts:
        """``[n, 256]`` (or ``[256]`` for one object) projected ``[SEG]`` embeddings."""
        arr = _float_array(embeddings, "embeddings")
        arr = arr[None] if arr.ndim == 1 else arr
        if arr.ndim != 2 or arr.shape[1] != EMBED_DIM:
            raise ValueError(f"embeddings: expected shape [n, {EMBED_DIM}], got {list(arr.shape)}")
        return cls("embedding", embeddings=_non_empty(arr, "embeddings"))

    @classmethod
    def from_boxes(cls, boxes: Any) -> Prompts:
        """``[n, 4]`` (or ``[4]``) xyxy pixel boxes; ``x1 >= x0`` and ``y1 >= y0`` required."""
        arr = _float_array(boxes, "boxes")
        arr = arr[None] if arr.ndim == 1 else arr
        if arr.ndim != 2 or arr.shape[1] != 4:
            raise ValueError(f"boxes: expected shape [n, 4] (x0, y0, x1, y1), got {list(arr.shape)}")
        if np.any(arr[:, 2] < arr[:, 0]) or np.any(arr[:, 3] < arr[:, 1]):
            raise ValueError("boxes: every box needs x1 >= x0 and y1 >= y0")
        return cls("box", boxes=_non_empty(arr, "boxes"))

    @classmethod
    def from_points(cls, points: Any, labels: Any) -> Prompts:
        """``points [n, P, 2]`` pixel ``x, y`` with ``labels [n, P]`` in {1, 0, -1}."""
        pts = _float_array(points, "points")
        lab = np.asarray(labels)
        if pts.ndim != 3 or pts.shape[2] != 2:
            raise ValueError(f"points: expected shape [n, P, 2], got {list(pts.shape)}")
        if lab.shape != pts.shape[:2]:
            raise ValueError(f"labels: expected shape {list(pts.shape[:2])} to match points, got {list(lab.shape)}")
        if lab.dtype.kind not in "iu" or not np.isin(lab, (-1, 0, 1)).all():
            raise ValueError("labels: expected integers in {1 (positive), 0 (negative), -1 (padding)}")
        if pts.shape[1] == 0 or not (lab != -1).any(axis=1).all():
            raise ValueError("points: every object needs at least one non-padding point")
        return cls("points", points=_non_empty(pts, "points"), labels=lab.astype(np.int32))

    @classmethod
    def from_masks(cls, masks: Any) -> Prompts:
        """``[n, H, W]`` (or ``[H, W]``) keyframe masks (binarised with ``> 0``)."""
        arr = np.asarray(masks)
        arr = arr[None] if arr.ndim == 2 else arr
        if arr.ndim != 3 or arr.dtype.kind not in "biuf":
            raise ValueError(f"masks: expected a numeric [n, H, W] array, got shape {list(arr.shape)} "
                             f"dtype {arr.dtype}")
        return cls("mask", masks=_non_empty(arr > 0, "masks"))


def _float_array(x: Any, name: str) -> np.ndarray:
    try:
        arr = np.asarray(x, dtype=np.float32)
    except (TypeError, ValueError) as err:
        raise ValueError(f"{name}: expected a numeric array, got {type(x).__name__} ({err})") from err
    if not np.isfinite(arr).all():
        raise ValueError(f"{name}: contains NaN or infinite values")
    return arr


def _non_empty(arr: np.ndarray, name: str) -> np.ndarray:
    if arr.shape[0] == 0:
        raise ValueError(f"{name}: at least one object is required")
    return arr


def as_prompts(prompts: Any) -> Prompts:
    """Accept a :class:`Prompts` or a dict ``{"embeddings": ...} | {"boxes": ...} | {"points", "labels"} |
    {"masks": ...}`` (array values, optional ``"type"``)."""
    if isinstance(prompts, Prompts):
        return prompts
    if not isinstance(prompts, dict):
        raise TypeError(f"prompts: expected Prompts or a dict, got {type(prompts).__name__}")
    keys = set(prompts) - {"type"}
    if keys == {"embeddings"}:
        return Prompts.from_embeddings(prompts["embeddings"])
    if keys == {"boxes"}:
        return Prompts.from_boxes(prompts["boxes"])
    if keys == {"points", "labels"}:
        return Prompts.from_points(prompts["points"], prompts["labels"])
    if keys == {"masks"}:
        return Prompts.from_masks(prompts["masks"])
    raise ValueError(f"prompts: expected exactly one of embeddings | boxes | points+labels | masks, got keys "
                     f"{sorted(map(str, prompts))}")


@dataclass(frozen=True)
class VideoRef:
    """A video on disk: a frames folder (optionally with explicit frame ids) or a video file."""

    path: str
    """Folder of images or video file (checked against the service's allowed roots)."""
    frame_ids: tuple[str, ...] | None = None
    """Frame file stems in temporal order (dataset ``frames`` list); ``None`` = sorted folder listing."""


VideoInput = str | os.PathLike | VideoRef | np.ndarray
"""What ``video`` arguments accept: a path, a :class:`VideoRef`, or ``[T, H, W, 3]`` uint8 frames."""


@dataclass(frozen=True, eq=False)  # array fields: compare the arrays explicitly
class SegmentRequest:
    """One ``segment`` (``gt_masks is None``) or ``score`` call, as sent to the Ray actor."""

    video: Any
    """A :data:`VideoInput`."""
    prompts: Prompts
    """Per-object keyframe prompts."""
    mode: str
    """One of :data:`MODES`."""
    keyframe: int
    """Conditioning frame (absolute index in the video)."""
    frame_indices: tuple[int, ...] | None = None
    """Frames to return (absolute indices); ``None`` = all frames."""
    inject_per_frame: bool = False
    """Propagate mode with embedding prompts: add the embedding as a sparse prompt on every frame."""
    gt_masks: Any = None
    """For ``score``: ``[T, H, W]`` / ``[n, T, H, W]`` arrays or per-frame RLE lists; ``None`` for ``segment``."""
    gt_keyframe: Any = None
    """For ``score``: optional GT of the keyframe (``[H, W]`` or RLE) when it is not among ``frame_indices``."""
    request_id: str = field(default_factory=lambda: uuid.uuid4().hex)
    """Idempotency key: the actor never computes the same id twice."""

    @property
    def is_score(self) -> bool:
        """True for a ``score`` request."""
        return self.gt_masks is not None


@dataclass(frozen=True, eq=False)  # array fields: compare the arrays explicitly
class SegmentResult:
    """Masks of one ``segment`` call at the original frame size."""

    masks: np.ndarray
    """``[n, T, H, W]`` bool masks on ``frame_indices`` (in that order)."""
    keyframe_masks: np.ndarray
    """``[n, H, W]`` bool masks on the keyframe (always computed, even if not in ``frame_indices``)."""
    frame_indices: tuple[int, ...]
    """Absolute frame indices of ``masks``' T axis."""
    keyframe: int
    """Conditioning frame."""
    mode: str
    """Decoding mode used."""
    model_version: int
    """Decoder-weights version that produced the masks."""

    def to_json(self) -> dict[str, Any]:
        """JSON-ready dict with RLE masks (``masks[o][t]``, ``keyframe_masks[o]``)."""
        return {"frame_indices": list(self.frame_indices), "keyframe": self.keyframe, "mode": self.mode,
                "model_version": self.model_version, "masks": [encode_masks(m) for m in self.masks],
                "keyframe_masks": [encode_mask(m) for m in self.keyframe_masks]}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> SegmentResult:
        """Inverse of :meth:`to_json`."""
        masks = np.stack([decode_rle_list(obj, name=f"masks[{i}]") for i, obj in enumerate(data["masks"])])
        kf = np.stack([decode_rle(r, name=f"keyframe_masks[{i}]") for i, r in enumerate(data["keyframe_masks"])])
        return cls(masks=masks, keyframe_masks=kf, frame_indices=tuple(data["frame_indices"]),
                   keyframe=int(data["keyframe"]), mode=data["mode"], model_version=int(data["model_version"]))


# ---------------------------------------------------------------------------------------------------------------
# JSON <-> records
# ---------------------------------------------------------------------------------------------------------------


def prompts_to_json(prompts: Prompts) -> dict[str, Any]:
    """JSON form of :class:`Prompts` (masks as RLE)."""
    if prompts.kind == "embedding":
        return {"type": "embedding", "embeddings": prompts.embeddings.tolist()}
    if prompts.kind == "box":
        return {"type": "box", "boxes": prompts.boxes.tolist()}
    if prompts.kind == "points":
        return {"type": "points", "points": prompts.points.tolist(), "labels": prompts.labels.tolist()}
    return {"type": "mask", "masks": [encode_mask(m) for m in prompts.masks]}


def prompts_from_json(data: Any, max_objects: int | None = None,
                      frame_size: tuple[int, int] | None = None) -> Prompts:
    """Parse the JSON form of prompts (see the module docstring); ``ValueError`` names the bad field.

    ``max_objects`` rejects longer prompt lists, and ``frame_size`` (the video's ``(H, W)``) mask RLEs of any
    other size, before anything is decoded (untrusted input).
    """
    if not isinstance(data, dict):
        raise ValueError(f"prompts: expected an object, got {type(data).__name__}")
    kind = data.get("type")
    required = {"embedding": ("embeddings",), "box": ("boxes",), "points": ("points", "labels"), "mask": ("masks",)}
    if kind not in required:
        raise ValueError(f"prompts.type: expected one of {list(PROMPT_KINDS)}, got {kind!r}")
    missing = [k for k in required[kind] if k not in data]
    if missing:
        raise ValueError(f"prompts: type {kind!r} needs field(s) {missing}")
    first_field = data[required[kind][0]]
    if max_objects is not None and isinstance(first_field, list) and len(first_field) > max_objects:
        raise ValueError(f"{len(first_field)} prompts in one request; the limit is {max_objects}")
    if kind == "embedding":
        return Prompts.from_embeddings(_nested_list(data["embeddings"], "prompts.embeddings"))
    if kind == "box":
        return Prompts.from_boxes(_nested_list(data["boxes"], "prompts.boxes"))
    if kind == "points":
        labels = _nested_list(data["labels"], "prompts.labels")
        if np.asarray(labels).dtype.kind not in "iu":
            raise ValueError("prompts.labels: expected integers in {1, 0, -1}")
        return Prompts.from_points(_nested_list(data["points"], "prompts.points"), labels)
    masks = data["masks"]
    if not isinstance(masks, list) or not masks:
        raise ValueError("prompts.masks: expected a non-empty list of RLE dicts")
    if frame_size is not None:
        return Prompts.from_masks(np.stack([decode_rle(m, frame_size, f"prompts.masks[{i}]")
                                            for i, m in enumerate(masks)]))
    first = decode_rle(masks[0], name="prompts.masks[0]")
    return Prompts.from_masks(np.stack([first] + [decode_rle(m, first.shape, f"prompts.masks[{i}]")
                                                  for i, m in enumerate(masks[1:], 1)]))


def _nested_list(value: Any, name: str) -> Any:
    if not isinstance(value, list):
        raise ValueError(f"{name}: expected a (nested) list of numbers, got {type(value).__name__}")
    try:
        arr = np.asarray(value)
    except ValueError as err:
        raise ValueError(f"{name}: ragged nested list ({err})") from err
    if arr.dtype.kind not in "biuf" or arr.dtype.kind == "b":
        raise ValueError(f"{name}: expected numbers, got elements of dtype {arr.dtype}")
    return arr


def video_from_json(data: Any, max_frames: int = MAX_VIDEO_FRAMES) -> VideoRef:
    """Parse ``{"path": str, "frame_ids": [str] | null}`` (a bare string is accepted as the path).

    The path must be a sane string (:func:`~videoseg_reward.frames.check_path_text`) and ``frame_ids`` at most
    ``max_frames`` long (checked before the ids are looked at).
    """
    if isinstance(data, str):
        data = {"path": data}
    if not isinstance(data, dict) or not isinstance(data.get("path"), str) or not data["path"]:
        raise ValueError("video: expected {'path': str, 'frame_ids': [str] | null}")
    check_path_text(data["path"])
    frame_ids = data.get("frame_ids")
    if isinstance(frame_ids, list) and len(frame_ids) > max_frames:
        raise ValueError(f"video.frame_ids: {len(frame_ids)} frames; the limit is {max_frames}")
    if frame_ids is not None and (not isinstance(frame_ids, list) or not all(isinstance(f, str) for f in frame_ids)):
        raise ValueError("video.frame_ids: expected a list of strings or null")
    bad = [f for f in frame_ids or () if not f or len(f) > 255 or "/" in f or "\\" in f or "\0" in f
           or f in (".", "..") or not f.isprintable()]
    if bad:
        raise ValueError(f"video.frame_ids: {bad[:3]} are not plain file names")
    unknown = set(data) - {"path", "frame_ids"}
    if unknown:
        raise ValueError(f"video: unknown field(s) {sorted(unknown)}")
    return VideoRef(path=data["path"], frame_ids=tuple(frame_ids) if frame_ids is not None else None)


def _int_list(value: Any, name: str) -> tuple[int, ...]:
    if not isinstance(value, list) or not all(isinstance(v, int) and not isinstance(v, bool) for v in value):
        raise ValueError(f"{name}: expected a list of integers, got {value!r:.80}")
    return tuple(value)


def request_from_json(data: Any, *, score: bool, max_objects: int | None = None, max_frames: int | None = None,
                      max_video_frames: int = MAX_VIDEO_FRAMES,
                      probe: Callable[[VideoRef], tuple[int, int, int]] | None = None) -> SegmentRequest:
    """Parse a ``/segment`` (``score=False``) or ``/score`` body into a :class:`SegmentRequest`.

    GT (``score=True``): ``gt_masks`` is a per-frame RLE list (``None`` entries = empty) shared by all
    objects, or a list of such lists (one per object); ``gt_keyframe`` an optional RLE. GT RLEs are decoded
    later, by the scorer, against the video's frame size. ``max_objects``: see :func:`prompts_from_json`.

    Untrusted input: ``max_frames`` bounds ``frame_indices`` and ``max_video_frames`` ``video.frame_ids``;
    ``probe(video) -> (num_frames, H, W)`` (headers only) is called before any prompt is decoded, so mask
    prompts of another size are refused without allocating them.
    """
    if not isinstance(data, dict):
        raise ValueError(f"request body: expected a JSON object, got {type(data).__name__}")
    allowed = {"video", "prompts", "mode", "keyframe", "frame_indices", "inject_per_frame", "request_id"}
    allowed |= {"gt_masks", "gt_keyframe"} if score else set()
    unknown = set(data) - allowed
    if unknown:
        raise ValueError(f"request body: unknown field(s) {sorted(unknown)}; allowed: {sorted(allowed)}")
    for key in ("video", "prompts", "mode", "keyframe") + (("gt_masks",) if score else ()):
        if key not in data:
            raise ValueError(f"request body: missing field {key!r}")
    mode = data["mode"]
    if mode not in MODES:
        raise ValueError(f"mode: expected one of {list(MODES)}, got {mode!r}")
    keyframe = data["keyframe"]
    if not isinstance(keyframe, int) or isinstance(keyframe, bool):
        raise ValueError(f"keyframe: expected an integer, got {keyframe!r}")
    frame_indices = data.get("frame_indices")
    if max_frames is not None and isinstance(frame_indices, list) and len(frame_indices) > max_frames:
        raise ValueError(f"frame_indices: {len(frame_indices)} frames; the limit is {max_frames}")
    inject = data.get("inject_per_frame", False)
    if not isinstance(inject, bool):
        raise ValueError(f"inject_per_frame: expected a boolean, got {inject!r}")
    kwargs: dict[str, Any] = {}
    if score:
        gt = data["gt_masks"]
        if not isinstance(gt, list) or not gt:
            raise ValueError("gt_masks: expected a non-empty per-frame RLE list (or one list per object)")
        kwargs["gt_masks"] = gt
        kwargs["gt_keyframe"] = data.get("gt_keyframe")
    if data.get("request_id") is not None:
        if not isinstance(data["request_id"], str) or not 0 < len(data["request_id"]) <= 128:
            raise ValueError("request_id: expected a string of 1-128 characters")
        kwargs["request_id"] = data["request_id"]
    video = video_from_json(data["video"], max_video_frames)
    frame_size = probe(video)[1:] if probe is not None else None
    return SegmentRequest(video=video, prompts=prompts_from_json(data["prompts"], max_objects, frame_size),
                          mode=mode, keyframe=keyframe,
                          frame_indices=_int_list(frame_indices, "frame_indices") if frame_indices is not None
                          else None, inject_per_frame=inject, **kwargs)


def request_to_json(request: SegmentRequest) -> dict[str, Any]:
    """JSON body for ``/segment`` or ``/score`` (the video must be a path or :class:`VideoRef`)."""
    video = request.video
    if isinstance(video, (str, os.PathLike)):
        video = VideoRef(path=os.fspath(video))
    if not isinstance(video, VideoRef):
        raise TypeError("the HTTP API takes videos by path only (a str, PathLike or VideoRef), not in-memory arrays")
    body: dict[str, Any] = {"video": {"path": video.path, "frame_ids": list(video.frame_ids) if video.frame_ids
                                      is not None else None},
                            "prompts": prompts_to_json(request.prompts), "mode": request.mode,
                            "keyframe": int(request.keyframe), "inject_per_frame": bool(request.inject_per_frame),
                            "request_id": request.request_id}
    if request.frame_indices is not None:
        body["frame_indices"] = [int(i) for i in request.frame_indices]
    if request.is_score:
        body["gt_masks"] = gt_to_json(request.gt_masks)
        if request.gt_keyframe is not None:
            gk = request.gt_keyframe
            if isinstance(gk, (dict, list)):
                body["gt_keyframe"] = gk
            else:
                arr = np.asarray(gk)
                body["gt_keyframe"] = encode_masks(arr) if arr.ndim == 3 else encode_mask(arr)
    return body


def gt_to_json(gt: Any) -> list:
    """GT masks as RLE lists: ``[T, H, W]`` -> ``[RLE]*T``; ``[n, T, H, W]`` -> ``[[RLE]*T]*n``; lists pass."""
    if isinstance(gt, list):
        return gt
    arr = np.asarray(gt)
    if arr.ndim == 3:
        return encode_masks(arr)
    if arr.ndim == 4:
        return [encode_masks(m) for m in arr]
    raise ValueError(f"gt_masks: expected [T, H, W] or [n, T, H, W], got shape {list(arr.shape)}")


def check_frame_indices(frame_indices: Sequence[int] | None, num_frames: int) -> tuple[int, ...]:
    """Validate explicit frame indices (unique, in ``[0, num_frames)``); ``None`` means all frames."""
    if frame_indices is None:
        return tuple(range(num_frames))
    idx = tuple(int(i) for i in frame_indices)
    if not idx:
        raise ValueError("frame_indices: at least one frame is required")
    if len(set(idx)) != len(idx):
        raise ValueError(f"frame_indices: duplicates are not allowed, got {list(idx)[:20]}")
    bad = [i for i in idx if not 0 <= i < num_frames]
    if bad:
        raise ValueError(f"frame_indices: {bad[:10]} out of range for a video with {num_frames} frames")
    return idx
