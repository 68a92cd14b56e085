# Copyright 2026 The videoseg-o3-verl authors. Licensed under the Apache License, Version 2.0.
"""Where an evaluation's J&F is won and lost, frame by frame (synthetic data, where each expression is one object).

Every frame of every evaluated expression falls in one of three groups: the target is visible; the target is absent
and so is every other object of the video ("blank"); the target is absent but another object is visible ("distractor").
The empty-mask guess is right on every absent frame, so a policy beats it on J&F only by keeping the distractor
frames empty while segmenting the visible ones. Printed: per group the number of frames, the share predicted empty
and, on visible frames, the mean IoU (empty prediction -> 0) and, over the visible frames with a non-empty prediction
that covers some object, how often the object it covers most is the named one (``named``; a head blind to the query
scores 1 / the number of objects there, 1/3 on the ``grounding_shared`` preset).

Usage::

    .venv/bin/python benchmarks/mask_breakdown.py demo_output/eval/rl demo_output/data/heldout/train.parquet
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np


def evaluated(predictions: Path, parquet: Path) -> Iterator[tuple[dict, Any, list]]:
    """``(row, record, others)`` per line of ``predictions`` (``predictions.jsonl`` of `videoseg-o3 eval`): the
    prediction row, its ground-truth record in ``parquet`` and the records of the video's other expressions."""
    from videoseg_o3_verl.data.parquet import read_parquet_records

    records = read_parquet_records(parquet)
    by_key = {(r.video_id, str(r.expression_id)): r for r in records}
    by_video = defaultdict(list)
    for record in records:
        by_video[record.video_id].append(record)
    for line in predictions.read_text().splitlines():
        row = json.loads(line)
        record = by_key[(row["video"], str(row["expression_id"]))]
        yield row, record, [o for o in by_video[record.video_id] if o is not record]


def breakdown(predictions: Path, parquet: Path) -> dict[str, dict[str, float]]:
    """``{group: {"frames", "empty", ["iou", "named"]}}`` over the expressions in ``predictions``
    (``predictions.jsonl`` of `videoseg-o3 eval`)."""
    from videoseg_reward.metrics import region_similarity

    from videoseg_o3_verl.data.rle import decode_rle

    empty, ious, named = defaultdict(list), [], []
    for row, record, others in evaluated(predictions, parquet):
        for t, rle in enumerate(row["result"]["prediction_masks"]):
            pred, gt = decode_rle(rle).astype(bool), record.decode_mask(t) > 0
            if gt.any():
                empty["visible"].append(not pred.any())
                ious.append(float(region_similarity(pred, gt)[0]))
                on_target = int((pred & gt).sum())
                covered = [int((pred & (o.decode_mask(t) > 0)).sum()) for o in others]
                if pred.any() and max([on_target, *covered]) > 0:
                    named.append(on_target > max(covered, default=0))
            else:
                distractor = any(o.mask_existence[t] for o in others)
                empty["distractor" if distractor else "blank"].append(not pred.any())
    out = {group: {"frames": len(v), "empty": float(np.mean(v))} for group, v in empty.items()}
    visible = out.setdefault("visible", {"frames": 0, "empty": 0.0})
    visible["iou"] = float(np.mean(ious)) if ious else 0.0
    visible["named"] = float(np.mean(named)) if named else 0.0
    return out


def query_blind_jf(predictions: Path, parquet: Path) -> float:
    """J&F (percent) of a reference policy blind to the query that segments every object of the video exactly
    (its masks: the union of all the video's ground-truth masks), over the expressions in ``predictions``: what a
    policy that finds the objects but not the named one would score."""
    from videoseg_reward.metrics import jf_score

    scores = []
    for _, record, others in evaluated(predictions, parquet):
        frames = range(len(record.mask_existence))
        every = np.stack([np.any([r.decode_mask(t) > 0 for r in (record, *others)], axis=0) for t in frames])
        gt = np.stack([record.decode_mask(t) > 0 for t in frames])
        scores.append(jf_score(every, gt)["J&F"])
    return 100.0 * float(np.mean(scores))


def breakdown_lines(result: dict[str, dict[str, float]]) -> list[str]:
    """One printed line per group of :func:`breakdown`'s result, visible / blank / distractor, groups absent skipped."""
    return [f"{group:10s} " + " ".join(f"{k} {v:.3f}" if isinstance(v, float) else f"{k} {v}"
                                       for k, v in result[group].items())
            for group in ("visible", "blank", "distractor") if group in result]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("eval_dir", type=Path, help="output directory of `videoseg-o3 eval` (has predictions.jsonl)")
    parser.add_argument("data", type=Path, help="the evaluated parquet (ground truth)")
    args = parser.parse_args(argv)
    predictions = args.eval_dir / "predictions.jsonl"
    print("\n".join(breakdown_lines(breakdown(predictions, args.data))))
    print(f"query-blind reference (every object segmented exactly): J&F {query_blind_jf(predictions, args.data):.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
