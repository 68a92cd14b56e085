# Copyright 2026 The videoseg-o3-verl authors. Licensed under the Apache License, Version 2.0.
"""The files of an evaluation run, built from the journal entries (see `videoseg_o3_verl.eval.runner`)."""

from __future__ import annotations

import json
import logging
import zipfile
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image
from videoseg_reward.masks import decode_rle_list

from videoseg_o3_verl.data.records import RVOSRecord
from videoseg_o3_verl.eval.bootstrap import N_BOOT, aggregate
from videoseg_o3_verl.eval.episode_metrics import EPISODE_METRICS

logger = logging.getLogger(__name__)

SUBMISSION_ZIP = "submission.zip"
"""The zipped `Annotations/` folder of `--submit`."""


def results_json(entries: Sequence[dict[str, Any]]) -> dict[str, dict[str, dict[str, Any]]]:
    """`{video: {expression_id: result}}` in entry order."""
    results: dict[str, dict[str, dict[str, Any]]] = {}
    for entry in entries:
        results.setdefault(entry["video"], {})[entry["expression_id"]] = entry["result"]
    return results


def dataset_table(dataset: str, rows: list[dict[str, Any]]) -> dict[str, Any]:
    """The benchmark's table in percent (`videoseg_reward.benchmarks.score`, parity with the official scripts);
    empty without scored rows (submission-only splits); plain J, F, J&F means for a dataset it does not know."""
    from videoseg_reward.benchmarks import canonical_benchmark, score

    if not rows:
        return {}
    try:
        canonical_benchmark(dataset)
    except ValueError:
        logger.warning("no official table for dataset %r: reporting mean J, F, J&F over expressions", dataset)
        dataset = "mevis"
    return score(dataset, rows, parity=True)


def episode_table(entries: Sequence[dict[str, Any]], *, n_boot: int = N_BOOT, seed: int = 0) -> dict[str, Any]:
    """`{metric: {"mean", "ci95": [lo, hi]}}` of the per-episode metrics (`EPISODE_METRICS`) over the entries that
    have them, plus `"num_episodes"`; `{}` without any (no ground truth)."""
    rows = [e["metrics"] for e in entries if e.get("metrics") is not None]
    if not rows:
        return {}
    return {**aggregate(rows, EPISODE_METRICS, n_boot=n_boot, seed=seed), "num_episodes": len(rows)}


def metrics_json(dataset: str, records: Sequence[RVOSRecord], entries: Sequence[dict[str, Any]], *,
                 n_boot: int = N_BOOT) -> dict[str, Any]:
    """Table plus counts: expressions, scored, errors (with messages), without [SEG], rounds histogram; the
    per-episode metrics with bootstrap intervals (`episodes`)."""
    rows = [e["score"] for e in entries if e.get("score") is not None]
    errors = [e["result"]["error"] for e in entries if "error" in e["result"]]
    done = [e["result"] for e in entries if "error" not in e["result"]]
    return {
        "dataset": dataset,
        "table": dataset_table(dataset, rows),
        "num_expressions": len(records),
        "num_evaluated": len(entries),
        "num_scored": len(rows),
        "num_errors": len(errors),
        "errors": errors,
        "num_without_seg": sum(1 for r in done if not r.get("has_seg", True)),
        "rounds": {str(k): v for k, v in sorted(Counter(r["num_rounds"] for r in done).items())},
        "episodes": episode_table(entries, n_boot=n_boot),
    }


def conversation_lines(records: Sequence[RVOSRecord], entries: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per expression: the query, the first turn's frames, every turn (text, action, frames shown next)."""
    by_key = {(r.video_id, r.expression_id): r for r in records}
    lines = []
    for entry in entries:
        record = by_key[(entry["video"], entry["expression_id"])]
        result = entry["result"]
        lines.append({"video": entry["video"], "expression_id": entry["expression_id"],
                      "expression": record.expression, "initial_frames": entry.get("initial"),
                      "turns": entry.get("turns", []), "keyframe_index": result.get("keyframe_index"),
                      "error": result.get("error")})
    return lines


def write_submission(out: Path, records: Sequence[RVOSRecord], entries: Sequence[dict[str, Any]]) -> Path:
    """`Annotations/<video>/<expression>/<frame>.png` (0/255 grey) for every expression, zipped.

    Error rows get all-zero masks (a missing file would fail the server's check) and a warning.
    """
    by_key = {(e["video"], e["expression_id"]): e for e in entries}
    root = out / "Annotations"
    archive = out / SUBMISSION_ZIP
    with zipfile.ZipFile(archive, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for record in records:
            entry = by_key.get((record.video_id, record.expression_id))
            result = entry["result"] if entry else {"error": "not evaluated"}
            names = list(record.frame_ids) or [f"{i:05d}" for i in range(record.num_frames)]
            if "error" in result:
                logger.warning("submission: %s has no prediction (%s); writing empty masks", record.name,
                               result["error"])
                masks = np.zeros((record.num_frames, record.height, record.width), dtype=bool)
            else:
                masks = decode_rle_list(result["prediction_masks"], name=f"{record.name} prediction_masks")
            folder = root / record.video_id / record.expression_id
            folder.mkdir(parents=True, exist_ok=True)
            for name, mask in zip(names, masks, strict=True):
                path = folder / f"{name}.png"
                Image.fromarray(mask.astype(np.uint8) * 255, mode="L").save(path)
                zf.write(path, path.relative_to(out).as_posix())
    return archive


def write_outputs(out: Path, records: Sequence[RVOSRecord], entries: Sequence[dict[str, Any]], *, dataset: str,
                  submit: bool = False, report_videos: int = 4, n_boot: int = N_BOOT) -> dict[str, Any]:
    """Write results.json, metrics.json, conversations.jsonl, report.html (and the submission); return metrics."""
    from videoseg_o3_verl.eval.report import write_eval_report

    (out / "results.json").write_text(json.dumps(results_json(entries)))
    metrics = metrics_json(dataset, records, entries, n_boot=n_boot)
    (out / "metrics.json").write_text(json.dumps(metrics, indent=2))
    with (out / "conversations.jsonl").open("w", encoding="utf-8") as f:
        for line in conversation_lines(records, entries):
            f.write(json.dumps(line) + "\n")
    write_eval_report(out / "report.html", records, entries, metrics, max_videos=report_videos)
    if submit:
        write_submission(out, records, entries)
    return metrics
