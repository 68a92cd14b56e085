# Copyright 2026 The videoseg-o3-verl authors. Licensed under the Apache License, Version 2.0.
"""The RVOS record: one (video, expression) pair with its ground truth, as every converter produces it.

A record is what the parquet row carries (as JSON, see `parquet.py`), what the agent loop opens frames from and
what the reward manager decodes ground-truth masks from. Frame index `t` is always the 0-based position in the
full frame list of the video (docs/method.md §2); all per-frame tuples have one entry per frame.

Ground truth may be absent (submission-only splits such as MeViS `valid` or Ref-YouTube-VOS `valid`): then
`mask_existence` and `masks_rle` are both empty and `has_ground_truth` is False.

Dimension letters: `T` number of frames, `H`, `W` frame height and width in pixels.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields
from typing import Any, NoReturn

import numpy as np

from videoseg_o3_verl.data.rle import RLE, decode_rle, rle_area

PAYLOAD_VERSION = 1
"""Version of the JSON payload written by `RVOSRecord.to_payload` (bump on incompatible changes)."""


@dataclass(frozen=True, eq=True)
class RVOSRecord:
    """One referring / reasoning expression on one video, with per-frame ground truth.

    Lists given to the constructor are stored as tuples; RLE `counts` given as bytes are stored as str.
    Records compare by value; they are not hashable (`extra` is a dict).
    """

    dataset: str
    """Dataset name, e.g. "mevis", "revos", "synthetic" (becomes the parquet `data_source`)."""

    video_id: str
    """Video identifier inside the dataset (folder name; may contain "/" as in ReVOS)."""

    video_path: str
    """Absolute path of the frames folder (frame files `<video_path>/<frame_id><ext>`) or of a video file."""

    frame_ids: tuple[str, ...]
    """Frame file stems in temporal order (no extension); empty when `video_path` is a video file."""

    num_frames: int
    """Number of frames T of the video (= len(frame_ids) for a frames folder)."""

    expression: str
    """The referring or reasoning expression (the query)."""

    expression_id: str
    """Expression identifier, unique within the video."""

    object_ids: tuple[int | str, ...]
    """Ids of the target object(s) as the dataset names them (obj_id, or anno_id where no obj_id exists)."""

    mask_existence: tuple[int, ...]
    """Per frame 1 if the target is visible else 0 (the temporal ground truth of the VTG rewards); empty when there
    is no ground truth. Converters derive it from the masks, except the authors' RL JSON, which carries its own
    flags and may disagree with the masks on a few frames (kept as released; the masks stay the IoU ground truth)."""

    masks_rle: tuple[RLE | None, ...]
    """Per frame the COCO RLE `{"size": [H, W], "counts": str}` of the target (objects OR-merged), or None when
    absent; empty when there is no ground truth."""

    type_id: int | None
    """Expression type where the dataset has one (ReVOS: 0 referring, 1 reasoning); None otherwise."""

    height: int
    """Frame height H in pixels."""

    width: int
    """Frame width W in pixels."""

    extra: dict[str, Any] = field(default_factory=dict)
    """Dataset-specific JSON-serialisable metadata (e.g. GroundMoRe action interval and question type,
    `frame_ext` when frames are not `.jpg`)."""

    def __post_init__(self) -> None:
        for name in ("frame_ids", "object_ids", "mask_existence", "masks_rle"):
            value = getattr(self, name)
            if isinstance(value, str | bytes) or not isinstance(value, Sequence | np.ndarray):
                self._fail(f"'{name}' must be a sequence, got {type(value).__name__}")
            object.__setattr__(self, name, tuple(value))
        self._check_scalars()
        self._check_frames()
        self._check_ground_truth()

    # ---------------------------------------------------------------- validation
    @property
    def name(self) -> str:
        """`dataset/video_id/expression_id`, used in error messages."""
        return f"{self.dataset}/{self.video_id}/{self.expression_id}"

    def _fail(self, msg: str) -> NoReturn:
        raise ValueError(f"RVOSRecord {getattr(self, 'dataset', '?')}/{getattr(self, 'video_id', '?')}/"
                         f"{getattr(self, 'expression_id', '?')}: {msg}")

    def _check_scalars(self) -> None:
        for name in ("dataset", "video_id", "video_path", "expression_id"):
            value = getattr(self, name)
            if not isinstance(value, str) or not value:
                self._fail(f"'{name}' must be a non-empty str, got {value!r}")
        if not isinstance(self.expression, str):
            self._fail(f"'expression' must be a str, got {type(self.expression).__name__}")
        for name in ("num_frames", "height", "width"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | np.integer) or value <= 0:
                self._fail(f"'{name}' must be a positive int, got {value!r}")
            object.__setattr__(self, name, int(value))
        if self.type_id is not None:
            if isinstance(self.type_id, bool) or not isinstance(self.type_id, int | np.integer) or self.type_id < 0:
                self._fail(f"'type_id' must be None or a non-negative int, got {self.type_id!r}")
            object.__setattr__(self, "type_id", int(self.type_id))
        if not isinstance(self.extra, dict) or not all(isinstance(k, str) for k in self.extra):
            self._fail(f"'extra' must be a dict with str keys, got {self.extra!r:.80}")
        try:
            json.dumps(self.extra)
        except (TypeError, ValueError) as err:
            self._fail(f"'extra' must be JSON-serialisable: {err}")
        if not self.object_ids:
            self._fail("'object_ids' is empty (a record needs at least one target object id)")
        for oid in self.object_ids:
            if isinstance(oid, bool) or not isinstance(oid, int | str | np.integer):
                self._fail(f"'object_ids' entries must be int or str, got {oid!r}")
        ids = tuple(int(o) if isinstance(o, np.integer) else o for o in self.object_ids)
        object.__setattr__(self, "object_ids", ids)

    def _check_frames(self) -> None:
        if self.frame_ids:
            if len(self.frame_ids) != self.num_frames:
                self._fail(f"'frame_ids' has {len(self.frame_ids)} entries but num_frames is {self.num_frames}")
            bad = [f for f in self.frame_ids if not isinstance(f, str) or not f]
            if bad:
                self._fail(f"'frame_ids' entries must be non-empty str, got {bad[0]!r}")

    def _check_ground_truth(self) -> None:
        n_exist, n_masks = len(self.mask_existence), len(self.masks_rle)
        if n_exist == 0 and n_masks == 0:
            return
        if n_exist != self.num_frames:
            self._fail(f"'mask_existence' has {n_exist} entries but num_frames is {self.num_frames}")
        if n_masks != self.num_frames:
            self._fail(f"'masks_rle' has {n_masks} entries but num_frames is {self.num_frames}")
        existence = []
        for t, v in enumerate(self.mask_existence):
            if isinstance(v, bool) or not isinstance(v, int | np.integer) or v not in (0, 1):
                self._fail(f"'mask_existence'[{t}] must be 0 or 1, got {v!r}")
            existence.append(int(v))
        object.__setattr__(self, "mask_existence", tuple(existence))
        masks: list[RLE | None] = []
        for t, rle in enumerate(self.masks_rle):
            if rle is None:
                masks.append(None)
                continue
            if not isinstance(rle, Mapping) or "size" not in rle or "counts" not in rle:
                self._fail(f"frame {t}: masks_rle entry must be a dict with 'size' and 'counts', got {rle!r:.80}")
            if not isinstance(rle["size"], Sequence) or len(rle["size"]) != 2:
                self._fail(f"frame {t}: RLE size must be [H, W], got {rle['size']!r}")
            size = [int(x) for x in rle["size"]]
            if size != [self.height, self.width]:
                self._fail(f"frame {t}: RLE size {size} differs from the record's [height, width] "
                           f"[{self.height}, {self.width}]")
            counts = rle["counts"]
            if isinstance(counts, bytes):
                counts = counts.decode("ascii")
            if not isinstance(counts, str):
                self._fail(f"frame {t}: RLE counts must be a compressed str, got {type(counts).__name__}")
            masks.append({"size": size, "counts": counts})
        object.__setattr__(self, "masks_rle", tuple(masks))

    def check_masks(self) -> None:
        """Fully decode-check every RLE (run lengths, non-empty foreground); slower than construction checks.

        Raises:
            ValueError: naming the record and frame of the first malformed or empty mask.
        """
        for t, rle in enumerate(self.masks_rle):
            if rle is None:
                continue
            try:
                area = rle_area(rle)
            except ValueError as err:
                self._fail(f"frame {t}: malformed RLE: {err}")
            if area == 0:
                self._fail(f"frame {t}: the RLE has no foreground pixel (use None for an empty frame)")

    # ---------------------------------------------------------------- access
    @property
    def has_ground_truth(self) -> bool:
        """True when per-frame masks are available (False for submission-only splits)."""
        return bool(self.masks_rle)

    def decode_mask(self, frame_index: int) -> np.ndarray:
        """Ground-truth mask of one frame.

        Args:
            frame_index: 0-based index into the full frame list (negative indices are rejected).

        Returns:
            mask: [H, W] bool, all False where the target is absent.
        """
        if not self.has_ground_truth:
            self._fail("has no ground-truth masks (submission-only split)")
        if isinstance(frame_index, bool) or not isinstance(frame_index, int | np.integer):
            self._fail(f"frame_index must be an int, got {frame_index!r}")
        if not 0 <= frame_index < self.num_frames:
            self._fail(f"frame_index {frame_index} out of range [0, {self.num_frames})")
        rle = self.masks_rle[int(frame_index)]
        if rle is None:
            return np.zeros((self.height, self.width), dtype=bool)
        return decode_rle(rle)

    def decode_masks(self, frame_indices: Sequence[int] | None = None) -> np.ndarray:
        """Ground-truth masks of several frames (all frames when `frame_indices` is None).

        Returns:
            masks: [len(frame_indices), H, W] bool.
        """
        indices = range(self.num_frames) if frame_indices is None else frame_indices
        if len(indices) == 0:
            return np.zeros((0, self.height, self.width), dtype=bool)
        return np.stack([self.decode_mask(int(t)) for t in indices])

    # ---------------------------------------------------------------- serialisation
    def to_payload(self) -> dict[str, Any]:
        """JSON-serialisable dict of every field (plus `"version"`); inverse of `from_payload`."""
        payload: dict[str, Any] = {"version": PAYLOAD_VERSION}
        for f in fields(self):
            value = getattr(self, f.name)
            payload[f.name] = list(value) if isinstance(value, tuple) else value
        # copies, so that editing the payload never edits the (frozen) record
        payload["masks_rle"] = [None if m is None else {"size": list(m["size"]), "counts": m["counts"]}
                                for m in self.masks_rle]
        payload["extra"] = json.loads(json.dumps(self.extra)) if self.extra else {}
        return payload

    def to_json(self) -> str:
        """The payload as a compact JSON string."""
        return json.dumps(self.to_payload(), separators=(",", ":"), ensure_ascii=False)

    @classmethod
    def from_payload(cls, payload: Mapping[str, Any]) -> RVOSRecord:
        """Rebuild a record from `to_payload()` output (validation runs again)."""
        if not isinstance(payload, Mapping):
            raise TypeError(f"RVOSRecord payload must be a dict, got {type(payload).__name__}")
        version = payload.get("version")
        if version != PAYLOAD_VERSION:
            raise ValueError(f"RVOSRecord payload version {version!r} is not supported (expected {PAYLOAD_VERSION})")
        names = [f.name for f in fields(cls)]
        missing = [n for n in names if n not in payload]
        if missing:
            where = f"{payload.get('dataset', '?')}/{payload.get('video_id', '?')}/{payload.get('expression_id', '?')}"
            raise ValueError(f"RVOSRecord payload {where}: missing key(s) {missing}")
        return cls(**{n: payload[n] for n in names})

    @classmethod
    def from_json(cls, text: str) -> RVOSRecord:
        """Inverse of `to_json`."""
        try:
            payload = json.loads(text)
        except json.JSONDecodeError as err:
            raise ValueError(f"RVOSRecord JSON payload is not valid JSON: {err}") from err
        return cls.from_payload(payload)

    def to_row(self, index: int) -> dict[str, Any]:
        """The verl parquet row of this record (schema in `videoseg_o3_verl.data.parquet`)."""
        from videoseg_o3_verl.data.parquet import record_to_row

        return record_to_row(self, index)

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> RVOSRecord:
        """Rebuild a record from a verl parquet row (or an RLHFDataset item) produced by `to_row`."""
        from videoseg_o3_verl.data.parquet import record_from_row

        return record_from_row(row)
