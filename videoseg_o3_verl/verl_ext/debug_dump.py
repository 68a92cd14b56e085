# Copyright 2026 The videoseg-o3-verl authors. Licensed under the Apache License, Version 2.0.
"""JSON-lines dumps for reports and tests: the engine's per-pass records and the trainer's scored trajectories."""

from __future__ import annotations

import json
import os
from pathlib import Path

import torch

from ..backends.cpu.scripted import SCRIPTED_FIELD

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


def turn_mask_lists(turn_key_masks: torch.Tensor, turn_has_mask: torch.Tensor, num_turns: int) -> list:
    """One item per turn of a trajectory: its 0/1 keyframe mask preview as a flat list, or None without a [SEG].

    ``turn_key_masks`` is the engine's flat ``[max_turns·S·S]`` preview logits, ``turn_has_mask`` its
    ``[max_turns]`` flags; turns beyond ``max_turns`` get None.

    Example:
        >>> turn_mask_lists(torch.tensor([0.5, -1.0, 0.0, 0.0]), torch.tensor([1.0, 0.0]), 3)
        [[1, 0], None, None]
    """
    has = [bool(flag) for flag in turn_has_mask.flatten().tolist()]
    masks = (turn_key_masks.float() > 0).to(torch.uint8).reshape(len(has), -1)
    return [masks[t].tolist() if t < len(has) and has[t] else None for t in range(num_turns)]


def append_samples(directory: str, step: int, scored, extra_infos, extra_fields, key_masks, turn_key_masks,
                   turn_has_masks, data_sources) -> None:
    """Append the first scored trajectories of a step to ``<directory>/samples.jsonl`` (read by the HTML report)."""
    path = Path(directory) / "samples.jsonl"
    path.parent.mkdir(parents=True, exist_ok=True)
    rows = zip(scored, extra_infos, extra_fields, key_masks, turn_key_masks, turn_has_masks, data_sources)
    with path.open("a") as handle:
        for sample, info, fields, mask, turn_masks, has_mask, source in list(rows)[:SAMPLES_PER_STEP]:
            if sample is None:
                continue
            handle.write(json.dumps({
                "step": int(step), "data_source": str(source), "record": info.get("videoseg"),
                "trajectory": sample.trajectory_payload, "terms": sample.per_term, "total": sample.total,
                "scripted": bool((fields or {}).get(SCRIPTED_FIELD)),
                "per_round_maskious": sample.inputs.per_round_maskious,
                "per_round_keyframe_ious": sample.inputs.per_round_keyframe_ious,
                "final_key_mask": (mask.float() > 0).to(torch.uint8).tolist(),
                "turn_key_masks": turn_mask_lists(turn_masks, has_mask, len(sample.trajectory_payload["turns"])),
            }) + "\n")
