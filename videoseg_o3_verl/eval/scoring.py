# Copyright 2026 The videoseg-o3-verl authors. Licensed under the Apache License, Version 2.0.
"""One expression's score row for `videoseg_reward.benchmarks.score`, from its predicted masks and its record.

The per-expression metrics are `videoseg_reward.benchmarks.expression_metrics`; this module gathers what each
benchmark needs from the record (ReVOS foreground masks, expression / question types) and from the episode
(frames shown, final keyframe, rounds).
"""

from __future__ import annotations

import functools
import json
from typing import Any

import numpy as np
from videoseg_reward.benchmarks import canonical_benchmark, expression_metrics
from videoseg_reward.masks import decode_rle

from videoseg_o3_verl.data.records import RVOSRecord


@functools.lru_cache(maxsize=1)
def _foreground_file(path: str) -> dict[str, Any]:
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def revos_foreground(record: RVOSRecord) -> np.ndarray:
    """[L, H, W] union of the video's annotated objects (`mask_dict_foreground.json`, referenced by the record)."""
    ref = record.extra.get("foreground")
    if not isinstance(ref, dict) or "file" not in ref:
        raise ValueError(f"{record.name}: ReVOS R needs the video's foreground masks; convert with "
                         "mask_dict_foreground.json in the dataset root")
    entry = _foreground_file(ref["file"]).get(ref["key"])
    if entry is None:
        raise ValueError(f"{record.name}: video {ref['key']!r} is not in {ref['file']}")
    rles = entry["masks_rle"] if isinstance(entry, dict) else entry
    empty = np.zeros((record.height, record.width), dtype=bool)
    return np.stack([empty if r is None else decode_rle(r).astype(bool) for r in rles])


def expression_type(record: RVOSRecord) -> Any:
    """The type a benchmark groups by: `type_id`, else `extra["type"]` (Long-RVOS) or `extra["question_type"]`."""
    if record.type_id is not None:
        return record.type_id
    return record.extra.get("type", record.extra.get("question_type"))


def expression_row(dataset: str, record: RVOSRecord, masks: np.ndarray, *, shown_frames: list[int],
                   keyframe: int, num_rounds: int) -> dict[str, Any]:
    """The score row of one expression (fractions in [0, 1]); needs the record's ground truth.

    Args:
        dataset: benchmark name (`canonical_benchmark`); an unknown name scores plain J and F.
        record: the expression (ground truth, type, foreground reference).
        masks: [L, H, W] predicted masks.
        shown_frames: every frame index the policy was shown (Long-RVOS `J_sample`).
        keyframe: the final keyframe (Long-RVOS `J_keyframe`).
        num_rounds: assistant turns of the episode.
    """
    gt = record.decode_masks()
    try:
        name = canonical_benchmark(dataset)
    except ValueError:
        name = None
    kwargs: dict[str, Any] = {}
    if name == "revos":
        kwargs["foreground"] = revos_foreground(record)
    if name == "longrvos":
        kwargs.update(sample_indices=sorted(set(shown_frames)), keyframe_indices=[keyframe])
    metrics = expression_metrics(name or "mevis", masks, gt, **kwargs)
    return {"video": record.video_id, "expression_id": record.expression_id, **metrics,
            "type_id": expression_type(record), "num_rounds": num_rounds, "num_frames": record.num_frames}
