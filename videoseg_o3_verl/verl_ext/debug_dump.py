# Copyright 2026 The videoseg-o3-verl authors. Licensed under the Apache License, Version 2.0.
"""JSON-lines dumps for reports and tests: the engine's per-pass records and the trainer's scored trajectories."""

from __future__ import annotations

import json
import os
from pathlib import Path

import torch

SAMPLES_PER_STEP = 4
"""Scored trajectories dumped per training step (the first ones of the batch)."""


def append_engine_record(dump_dir: str, role: str, record: dict) -> None:
    """Append one JSON line to ``<dump_dir>/engine_<role>_<pid>.jsonl`` (``videoseg_o3.debug.dump_dir``, test-only)."""
    os.makedirs(dump_dir, exist_ok=True)
    with open(os.path.join(dump_dir, f"engine_{role}_{os.getpid()}.jsonl"), "a") as f:
        f.write(json.dumps(record) + "\n")


def metric_value(value) -> float | list:
    """A verl metric (aggregatable, list or number) as plain JSON numbers."""
    if hasattr(value, "aggregate"):
        return float(value.aggregate())
    if isinstance(value, list):
        return [metric_value(v) for v in value]
    return float(value)


def append_samples(directory: str, step: int, scored, extra_infos, key_masks, data_sources) -> None:
    """Append the first scored trajectories of a step to ``<directory>/samples.jsonl`` (read by the HTML report)."""
    path = Path(directory) / "samples.jsonl"
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as handle:
        for sample, info, mask, source in list(zip(scored, extra_infos, key_masks, data_sources))[:SAMPLES_PER_STEP]:
            if sample is None:
                continue
            handle.write(json.dumps({
                "step": int(step), "data_source": str(source), "record": info.get("videoseg"),
                "trajectory": sample.trajectory_payload, "terms": sample.per_term, "total": sample.total,
                "per_round_maskious": sample.inputs.per_round_maskious,
                "per_round_keyframe_ious": sample.inputs.per_round_keyframe_ious,
                "final_key_mask": (mask.float() > 0).to(torch.uint8).tolist(),
            }) + "\n")
