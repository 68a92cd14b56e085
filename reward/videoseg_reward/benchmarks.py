# Copyright 2026 The videoseg-o3-verl authors. Licensed under the Apache License, Version 2.0.
"""Benchmark tables as the official evaluation scripts compute them (ReVOS, MeViS valid_u, Ref-DAVIS17, Ref-SAV,
ReasonVOS, Long-RVOS, GroundMoRe).

Two steps, each with one function per rule:

* per expression, from masks: :func:`expression_metrics` (``J``, ``F`` and what the benchmark adds: ``A``/``R`` for
  ReVOS, ``A`` for Ref-SAV, ``J_sample``/``J_keyframe`` for Long-RVOS), with the ground-truth helpers
  :func:`ref_davis_anno_ids`, :func:`long_rvos_gt`, :func:`groundmore_action_window` and :func:`groundmore_gt`;
* per dataset, from rows: :func:`score` ``(dataset, rows, parity=True) -> dict`` of percentages.

A row is a mapping with ``video``, ``expression_id``, ``J`` and ``F`` in ``[0, 1]`` and, where the benchmark needs
them: ``type_id`` (ReVOS 0 referring / 1 reasoning; Ref-SAV 0 long / 1 short; Long-RVOS and GroundMoRe: the
expression or question type), ``A``, ``R``, ``J_sample``, ``J_keyframe``, ``keyframe_empty``, ``keyframe_total``,
``num_rounds`` and ``num_frames``.

``parity=True`` reproduces the scripts to the digit: ReVOS and Ref-SAV round every expression's J, F, A, R to
2 decimals in percent (NumPy rounding) before averaging; MeViS, Ref-DAVIS17, ReasonVOS and Long-RVOS round the
final percentages to 2 decimals; Long-RVOS skips the video the script ignores. ``parity=False`` gives the plain
means of the unrounded values over every row. GroundMoRe's script does not round either way.

Every result has ``J``, ``F``, ``J&F`` (the headline numbers) and ``count``; ``subsets`` (ReVOS, Ref-SAV),
``by_type`` and ``by_round`` (Long-RVOS, GroundMoRe) and the benchmark's extra metrics are added where it has them.
"""

from __future__ import annotations

import os
import re
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np

from videoseg_reward.aggregate import groundmore_frame_indices
from videoseg_reward.metrics import binarize_masks, jf_per_frame, pixel_accuracy, region_similarity, robustness

__all__ = [
    "BENCHMARKS",
    "LONG_RVOS_IGNORED_VIDEOS",
    "canonical_benchmark",
    "expression_metrics",
    "groundmore_action_window",
    "groundmore_gt",
    "groundmore_palette_mask",
    "long_rvos_gt",
    "ref_davis_anno_ids",
    "score",
]

BENCHMARKS = ("revos", "mevis", "refdavis", "refsav", "reasonvos", "longrvos", "groundmore", "synthetic")
"""Benchmark names :func:`score` takes (the data converters' names; ``mevis`` is the locally scored valid_u)."""

_ALIASES = {"mevisvalidu": "mevis", "refdavis17": "refdavis", "davis17": "refdavis", "davis": "refdavis"}

LONG_RVOS_IGNORED_VIDEOS = ("71fb69bbcd",)
"""Videos the official Long-RVOS script skips (``parity=True``)."""

GROUNDMORE_FPS = 6
"""Frame rate of the GroundMoRe frames (the action window is converted from timestamps with it)."""


def canonical_benchmark(dataset: str) -> str:
    """``"ReVOS"``, ``"ref_davis17"``, ``"MeViS-valid_u"``, ... -> a name of :data:`BENCHMARKS`."""
    key = re.sub(r"[^a-z0-9]", "", str(dataset).lower())
    key = _ALIASES.get(key, key)
    if key not in BENCHMARKS:
        raise ValueError(f"unknown benchmark {dataset!r}; expected one of {list(BENCHMARKS)}")
    return key


# ---------------------------------------------------------------------------------------------------------------
# Per expression
# ---------------------------------------------------------------------------------------------------------------


def expression_metrics(dataset: str, pred: Any, gt: Any, *, foreground: Any = None,
                       sample_indices: Sequence[int] | None = None,
                       keyframe_indices: Sequence[int] | None = None, parity: bool = True) -> dict[str, float]:
    """One expression's row metrics (fractions) from its masks, as the benchmark's script computes them.

    Args:
        dataset: a benchmark name (:func:`canonical_benchmark`).
        pred: ``[L, H, W]`` predicted masks on every frame (GroundMoRe: every frame; it samples 20 itself).
        gt: ``[L, H, W]`` ground truth on the same frames: the union of the expression's objects, or (ReVOS,
            Ref-SAV) the per-pixel count of its objects, which is what those scripts build by adding the object
            masks in ``uint8``; GroundMoRe: :func:`groundmore_gt`, Long-RVOS: :func:`long_rvos_gt`.
        foreground: ReVOS only, ``[L, H, W]`` union of all annotated objects of the video (for ``R``).
        sample_indices: Long-RVOS only, the frames the model was shown (``J_sample``).
        keyframe_indices: Long-RVOS only, the keyframe(s) of the answer (``J_keyframe`` and the empty-GT count).
        parity: with a count map where objects overlap, score ``A`` and ``R`` as the ReVOS/Ref-SAV scripts do: a
            pixel covered by two objects never matches the prediction (``A``), and a predicted pixel there counts
            ``(1 - count) mod 256`` times as a false positive (``R``, uint8 arithmetic). Else the union is used.

    Returns:
        ``{"J", "F"}`` plus ``A``, ``R`` (ReVOS), ``A`` (Ref-SAV), ``J_sample``, ``J_keyframe``, ``keyframe_empty``,
        ``keyframe_total`` (Long-RVOS).
    """
    name = canonical_benchmark(dataset)
    p, g = binarize_masks(pred, "pred"), binarize_masks(gt, "gt")
    counts = np.asarray(gt)
    overlapping = parity and counts.dtype.kind in "iu" and name in ("revos", "refsav") and bool((counts > 1).any())
    if name == "groundmore":
        idx = groundmore_frame_indices(p.shape[0])
        j, f = jf_per_frame(p[idx], g[idx])
        return {"J": float(np.nanmean(j)), "F": float(np.nanmean(f))}
    j, f = jf_per_frame(p, g)
    out = {"J": float(j.mean()), "F": float(f.mean())}
    if name in ("revos", "refsav"):
        accuracy = _script_accuracy(p, counts) if overlapping else pixel_accuracy(p, g)
        out["A"] = float(accuracy.mean())
    if name == "revos":
        if foreground is None:
            raise ValueError("ReVOS R needs the video's foreground masks (foreground=...)")
        robust = _script_robustness(p, counts, foreground) if overlapping else robustness(p, g, foreground)
        out["R"] = float(robust.mean())
    if name == "longrvos":
        out.update(_long_rvos_frame_metrics(p, g, sample_indices, keyframe_indices))
    return out


def _script_accuracy(p: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """Per-frame ``mean(count == pred)`` (ReVOS/Ref-SAV scripts on an object-count map)."""
    return (counts.reshape(p.shape) == p).mean(axis=(1, 2))


def _script_robustness(p: np.ndarray, counts: np.ndarray, foreground: Any) -> np.ndarray:
    """Per-frame ``max(1 - sum(pred * ((1 - count) mod 256)) / (|foreground| + 1e-6), 0)`` (ReVOS script, uint8)."""
    weight = (1 - counts.reshape(p.shape).astype(np.int64)) % 256
    neg = (weight * p).sum(axis=(1, 2)).astype(np.float64)
    pos = binarize_masks(foreground, "foreground").reshape(p.shape).sum(axis=(1, 2)).astype(np.float64)
    return np.maximum(1.0 - neg / (pos + 1e-6), 0.0)


def _long_rvos_frame_metrics(p: np.ndarray, g: np.ndarray, sample_indices: Sequence[int] | None,
                             keyframe_indices: Sequence[int] | None) -> dict[str, float]:
    """J on the shown frames and on the keyframes (indices past the video are dropped; none -> 0, as the script),
    and how many of the keyframes have an empty ground truth."""
    def valid(indices: Sequence[int] | None) -> np.ndarray:
        arr = np.asarray(list(indices or ()), dtype=int)
        return arr[arr < p.shape[0]]

    shown, keys = valid(sample_indices), valid(keyframe_indices)
    return {
        "J_sample": float(region_similarity(p[shown], g[shown]).mean()) if len(shown) else 0.0,
        "J_keyframe": float(region_similarity(p[keys], g[keys]).mean()) if len(keys) else 0.0,
        "keyframe_empty": int(sum(not g[k].any() for k in keys)),
        "keyframe_total": len(keys),
    }


def ref_davis_anno_ids(videos: Mapping[str, Mapping[str, Any]]) -> dict[tuple[str, str], int]:
    """Ref-DAVIS17 ground-truth ids as the official mask dict numbers them: a running counter over the sorted
    video names, then each video's sorted expression ids (string order: ``"10"`` before ``"2"``).

    ``videos`` is ``meta_expressions.json``'s ``"videos"`` mapping.
    """
    ids, counter = {}, 0
    for video in sorted(videos):
        for exp_id in sorted(videos[video]["expressions"]):
            ids[(video, exp_id)] = counter
            counter += 1
    return ids


def long_rvos_gt(annotation_root: str | os.PathLike, video: str, frames: Sequence[str], object_ids: Iterable[Any],
                 size: tuple[int, int]) -> np.ndarray:
    """Long-RVOS ground truth ``[L, H, W]`` bool: the union over ``object_ids`` of
    ``<root>/Annotations/<video>/<object id>/<frame>.png > 0``; a missing PNG is an empty mask."""
    from PIL import Image

    height, width = size
    out = np.zeros((len(frames), height, width), bool)
    for oid in object_ids:
        folder = os.path.join(annotation_root, "Annotations", video, str(oid))
        for t, frame in enumerate(frames):
            path = os.path.join(folder, f"{frame}.png")
            if not os.path.exists(path):
                continue
            with Image.open(path) as im:
                mask = np.asarray(im) > 0
            if mask.shape[:2] != (height, width):
                raise ValueError(f"Long-RVOS mask {path}: size {list(mask.shape[:2])} != frame size {[height, width]}")
            out[t] |= mask if mask.ndim == 2 else mask.any(axis=-1)
    return out


def _seconds(timestamp: str) -> int:
    parts = [int(p) for p in str(timestamp).split(":")]
    if not 1 <= len(parts) <= 3:
        raise ValueError(f"GroundMoRe timestamp {timestamp!r}: expected [[hh:]mm:]ss")
    parts = [0] * (3 - len(parts)) + parts
    return parts[0] * 3600 + parts[1] * 60 + parts[2]


def groundmore_action_window(video_id: str, action_start: str, action_end: str) -> tuple[int, int]:
    """GroundMoRe frame window ``[start, end]`` (inclusive) of a question's action.

    The clip's start time is the ``mmss`` group at ``video_id[-9:]`` (``..._0130_0200`` -> 01:30); the window is
    ``(action_start - clip_start) * 6`` to ``(action_end - clip_start) * 6 - 1`` at 6 frames per second.

    Example:
        >>> groundmore_action_window("vid_0130_0200", "01:32", "01:35")   # (2 * 6, 5 * 6 - 1)
        (12, 29)
    """
    clip = str(video_id)[-9:].split("_")[0]
    if len(clip) != 4 or not clip.isdigit():
        raise ValueError(f"GroundMoRe video id {video_id!r}: expected it to end with _mmss_mmss")
    start = _seconds(f"{clip[:2]}:{clip[2:]}")
    return ((_seconds(action_start) - start) * GROUNDMORE_FPS, (_seconds(action_end) - start) * GROUNDMORE_FPS - 1)


def groundmore_palette_mask(mask_dir: str | os.PathLike, frame_index: int) -> np.ndarray | None:
    """A GroundMoRe palette mask (``frame_000012.png``, else ``0000012.png``) as its ``P``-mode index array;
    ``None`` when neither file exists."""
    from PIL import Image

    for name in (f"frame_{int(frame_index):06d}.png", f"{int(frame_index):07d}.png"):
        path = os.path.join(mask_dir, name)
        if os.path.exists(path):
            with Image.open(path) as im:
                return np.asarray(im.convert("P"))
    return None


def groundmore_gt(palette_masks: Mapping[int, Any], object_id: int, window: tuple[int, int], num_frames: int,
                  size: tuple[int, int]) -> np.ndarray:
    """GroundMoRe ground truth ``[L, H, W]`` bool on the frames the script samples
    (:func:`~videoseg_reward.aggregate.groundmore_frame_indices`); other frames are left empty (never scored).

    A sampled frame inside the action ``window`` is ``palette == object_id`` when ``palette_masks`` has it (a
    missing mask file is empty); outside the window it is empty.
    """
    out = np.zeros((num_frames, *size), bool)
    start, end = window
    for t in groundmore_frame_indices(num_frames):
        if start <= t <= end and int(t) in palette_masks:
            palette = np.asarray(palette_masks[int(t)])
            if palette.shape != tuple(size):
                raise ValueError(f"GroundMoRe mask of frame {t}: size {list(palette.shape)} != {list(size)}")
            out[t] = palette == int(object_id)
    return out


# ---------------------------------------------------------------------------------------------------------------
# Per dataset
# ---------------------------------------------------------------------------------------------------------------


def score(dataset: str, rows: Iterable[Mapping[str, Any]], parity: bool = True) -> dict[str, Any]:
    """The benchmark's table from per-expression rows (module docstring), in percentages.

    Raises:
        ValueError: unknown benchmark, no rows, a row missing a field the benchmark needs (named with the row's
            video and expression), or a value outside ``[0, 1]``.
    """
    name = canonical_benchmark(dataset)
    rows = list(rows)
    if not rows:
        raise ValueError(f"{name}: no expression rows to score")
    needed = {"revos": ("A", "R", "type_id"), "refsav": ("A", "type_id"),
              "longrvos": ("J_sample", "J_keyframe", "keyframe_empty", "keyframe_total", "num_rounds",
                           "num_frames", "type_id"),
              "groundmore": ("type_id", "num_rounds")}.get(name, ())
    for i, row in enumerate(rows):
        _check_row(row, i, ("J", "F") + needed)
    if name == "revos":
        return _two_subsets(rows, ("referring", "reasoning"), ("J", "F", "A", "R"), parity)
    if name == "refsav":
        return _two_subsets(rows, ("long", "short"), ("J", "F", "A"), parity)
    if name == "longrvos":
        return _long_rvos(rows, parity)
    if name == "groundmore":
        return _groundmore(rows)
    return _final_rounded_jf(rows, parity)


def _check_row(row: Mapping[str, Any], index: int, fields: Sequence[str]) -> None:
    where = f"row #{index} ({row.get('video', '?')}/{row.get('expression_id', '?')})" \
        if isinstance(row, Mapping) else f"row #{index}"
    if not isinstance(row, Mapping):
        raise ValueError(f"{where}: expected a mapping, got {type(row).__name__}")
    missing = [f for f in fields if f not in row]
    if missing:
        raise ValueError(f"{where}: missing field(s) {missing}")
    for key in ("J", "F", "A", "R", "J_sample", "J_keyframe"):
        if key in fields:
            value = row[key]
            if not isinstance(value, (int, float, np.integer, np.floating)) or not 0.0 <= float(value) <= 1.0:
                raise ValueError(f"{where}: {key} must be a number in [0, 1], got {value!r}")


def _percent(values: Sequence[float], round_each: bool) -> np.ndarray:
    """Per-expression percentages; ``round_each``: ``round(100 * x, 2)`` on NumPy floats, as the scripts do."""
    pct = 100.0 * np.asarray(values, dtype=np.float64)
    return np.round(pct, 2) if round_each else pct


def _final(value: float, parity: bool) -> float:
    """The scripts' final ``round(100 * float(mean), 2)`` (Python rounding) under parity; else ``100 * mean``."""
    return round(100 * float(value), 2) if parity else 100 * float(value)


def _two_subsets(rows: list[Mapping[str, Any]], names: tuple[str, str], metrics: tuple[str, ...],
                 parity: bool) -> dict[str, Any]:
    """ReVOS / Ref-SAV: subset means (type 0, type 1) of the (rounded) per-expression percentages; overall = the
    mean of the two subset means; ``J&F = (J + F) / 2`` of each."""
    out: dict[str, Any] = {"subsets": {}}
    for type_id, subset in enumerate(names):
        group = [r for r in rows if int(r["type_id"]) == type_id]
        if not group:
            raise ValueError(f"no {subset} expressions (type_id {type_id}); the overall score needs both subsets")
        means = {m: float(_percent([r[m] for r in group], parity).mean()) for m in metrics}
        means["J&F"] = (means["J"] + means["F"]) / 2
        out["subsets"][subset] = {**means, "count": len(group)}
    a, b = (out["subsets"][s] for s in names)
    out.update({m: (a[m] + b[m]) / 2 for m in (*metrics, "J&F")})
    out["count"] = a["count"] + b["count"]
    other = len(rows) - out["count"]
    if other:
        out["other_types"] = other  # e.g. ReVOS type 2: scored by no table
    return out


def _final_rounded_jf(rows: list[Mapping[str, Any]], parity: bool) -> dict[str, Any]:
    """MeViS valid_u, Ref-DAVIS17, ReasonVOS: means over expressions, rounded at the end."""
    j = float(np.mean([float(r["J"]) for r in rows]))
    f = float(np.mean([float(r["F"]) for r in rows]))
    return {"J": _final(j, parity), "F": _final(f, parity), "J&F": _final((j + f) / 2, parity), "count": len(rows)}


def _long_rvos(rows: list[Mapping[str, Any]], parity: bool) -> dict[str, Any]:
    """Long-RVOS: global J, F, J&F, J on the shown frames and on the keyframe, the empty-keyframe ratio; tables per
    number of rounds and per expression type."""
    if parity:
        rows = [r for r in rows if str(r["video"]) not in LONG_RVOS_IGNORED_VIDEOS]
        if not rows:
            raise ValueError("longrvos: every row belongs to an ignored video")

    def mean(group: list[Mapping[str, Any]], key: str) -> float:
        return float(np.mean([float(r[key]) for r in group]))

    empty = sum(int(r["keyframe_empty"]) for r in rows)
    total = sum(int(r["keyframe_total"]) for r in rows)
    ratio = 100.0 * empty / total if total else 0.0
    j, f = mean(rows, "J"), mean(rows, "F")
    out: dict[str, Any] = {
        "J": _final(j, parity), "F": _final(f, parity), "J&F": _final((j + f) / 2, parity),
        "J_sample": _final(mean(rows, "J_sample"), parity), "J_keyframe": _final(mean(rows, "J_keyframe"), parity),
        "keyframe_gt_empty_ratio": round(ratio, 2) if parity else ratio, "count": len(rows),
        "by_round": {}, "by_type": {},
    }
    for rounds, group in sorted(_group(rows, "num_rounds").items()):
        vid_len = float(np.mean([float(r["num_frames"]) for r in group]))
        out["by_round"][rounds] = {"count": len(group), "J": _final(mean(group, "J"), parity),
                                   "J_sample": _final(mean(group, "J_sample"), parity),
                                   "J_keyframe": _final(mean(group, "J_keyframe"), parity),
                                   "avg_num_frames": round(vid_len, 1) if parity else vid_len}
    for kind, group in sorted(_group(rows, "type_id").items(), key=lambda kv: str(kv[0])):
        gj, gf = mean(group, "J"), mean(group, "F")
        out["by_type"][kind] = {"count": len(group), "J&F": _final((gj + gf) / 2, parity), "J": _final(gj, parity),
                                "F": _final(gf, parity), "J_sample": _final(mean(group, "J_sample"), parity)}
    return out


def _groundmore(rows: list[Mapping[str, Any]]) -> dict[str, Any]:
    """GroundMoRe: plain means over expressions, globally, per question type and per number of rounds (the script
    does not round; ``parity`` changes nothing)."""
    def table(group: list[Mapping[str, Any]]) -> dict[str, Any]:
        j = float(np.mean([float(r["J"]) for r in group]))
        f = float(np.mean([float(r["F"]) for r in group]))
        return {"J": 100 * j, "F": 100 * f, "J&F": 100 * (j + f) / 2, "count": len(group)}

    out = table(rows)
    out["by_type"] = {str(k): table(g) for k, g in sorted(_group(rows, "type_id").items(), key=lambda kv: str(kv[0]))}
    out["by_round"] = {k: table(g) for k, g in sorted(_group(rows, "num_rounds").items())}
    return out


def _group(rows: list[Mapping[str, Any]], key: str) -> dict[Any, list[Mapping[str, Any]]]:
    groups: dict[Any, list[Mapping[str, Any]]] = defaultdict(list)
    for row in rows:
        value = row[key]
        groups[int(value) if isinstance(value, (bool, int, np.integer)) else value].append(row)
    return dict(groups)
