# Copyright 2026 The videoseg-o3-verl authors. Licensed under the Apache License, Version 2.0.
"""``demo_output/summary.json``: the before/after numbers of the learning demo, and their console table.

Schema (checked on write and on read)::

    {"n_eval": int, "wall_s": float,
     "eval": {"fixed_guess": M, "sft": M, "rl": M},
     "stages": {"<stage>": wall seconds, ...}}

where ``M = {metric: {"mean": float, "ci95": [lo, hi]}}`` for every metric of :data:`METRICS` (95 % bootstrap
interval, ``lo <= mean <= hi``).
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

POLICIES = ("fixed_guess", "sft", "rl")
"""Evaluated policies, in table order: the best trivial guess, the cold-start checkpoint, the RL checkpoint."""

METRICS = ("format_valid", "keyframe_hit", "tiou", "J&F", "reward_total")
"""Per-policy metrics: strict-format fraction, keyframe on a visible frame, temporal IoU, J&F (percent), reward."""

SUMMARY_FILE = "summary.json"
"""File name of the summary in the demo's output folder."""


def _check_number(value: Any, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ValueError(f"summary: {where} must be a finite number, got {value!r}")
    return float(value)


def check_policy_metrics(metrics: Mapping[str, Any], policy: str) -> dict[str, dict[str, Any]]:
    """Validate one policy's ``M`` (every metric, ``mean`` inside ``ci95``); returns it as plain floats."""
    if not isinstance(metrics, Mapping):
        raise ValueError(f"summary: eval.{policy} must be a mapping of metrics, got {type(metrics).__name__}")
    missing = [m for m in METRICS if m not in metrics]
    extra = sorted(set(metrics) - set(METRICS))
    if missing or extra:
        raise ValueError(f"summary: eval.{policy} has metrics {sorted(metrics)}; missing {missing}, unknown {extra}")
    out = {}
    for name in METRICS:
        entry = metrics[name]
        where = f"eval.{policy}.{name}"
        if not isinstance(entry, Mapping) or set(entry) != {"mean", "ci95"}:
            raise ValueError(f"summary: {where} must be {{'mean': x, 'ci95': [lo, hi]}}, got {entry!r}")
        mean = _check_number(entry["mean"], f"{where}.mean")
        interval = entry["ci95"]
        if not isinstance(interval, list | tuple) or len(interval) != 2:
            raise ValueError(f"summary: {where}.ci95 must be [lo, hi], got {interval!r}")
        lo, hi = (_check_number(v, f"{where}.ci95") for v in interval)
        if not lo <= mean <= hi:
            raise ValueError(f"summary: {where}: mean {mean} is outside its interval [{lo}, {hi}]")
        out[name] = {"mean": mean, "ci95": [lo, hi]}
    return out


def make_summary(n_eval: int, wall_s: float, evaluation: Mapping[str, Mapping[str, Any]],
                 stages: Mapping[str, float]) -> dict[str, Any]:
    """The validated summary (module docstring); raises ``ValueError`` naming the first bad key."""
    if isinstance(n_eval, bool) or not isinstance(n_eval, int) or n_eval < 1:
        raise ValueError(f"summary: n_eval must be a positive integer, got {n_eval!r}")
    if not isinstance(evaluation, Mapping) or sorted(evaluation) != sorted(POLICIES):
        got = sorted(evaluation) if isinstance(evaluation, Mapping) else evaluation
        raise ValueError(f"summary: eval must have exactly the policies {list(POLICIES)}, got {got}")
    if not isinstance(stages, Mapping):
        raise ValueError(f"summary: stages must be a mapping of stage name to wall seconds, got {stages!r}")
    return {"n_eval": n_eval, "wall_s": _check_number(wall_s, "wall_s"),
            "eval": {p: check_policy_metrics(evaluation[p], p) for p in POLICIES},
            "stages": {str(k): _check_number(v, f"stages.{k}") for k, v in stages.items()}}


def write_summary(path: str | Path, n_eval: int, wall_s: float, evaluation: Mapping[str, Mapping[str, Any]],
                  stages: Mapping[str, float]) -> Path:
    """Validate and write ``summary.json``; returns its path."""
    summary = make_summary(n_eval, wall_s, evaluation, stages)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    return path


def read_summary(path: str | Path) -> dict[str, Any]:
    """Read and validate a ``summary.json``."""
    raw = json.loads(Path(path).read_text(encoding="utf-8"))
    if not isinstance(raw, dict):
        raise ValueError(f"summary: {path} does not hold a JSON object")
    missing = [k for k in ("n_eval", "wall_s", "eval", "stages") if k not in raw]
    if missing:
        raise ValueError(f"summary: {path} lacks {missing}")
    return make_summary(raw["n_eval"], raw["wall_s"], raw["eval"], raw["stages"])


def format_cell(entry: Mapping[str, Any], precision: int) -> str:
    """``mean [lo, hi]`` with ``precision`` decimals.

    Example:
        >>> format_cell({"mean": 0.5, "ci95": [0.41, 0.6]}, 2)
        '0.50 [0.41, 0.60]'
    """
    lo, hi = entry["ci95"]
    return f"{entry['mean']:.{precision}f} [{lo:.{precision}f}, {hi:.{precision}f}]"


def summary_table(evaluation: Mapping[str, Mapping[str, Any]]) -> list[str]:
    """The before/after table for the console: one row per policy, ``mean [lo, hi]`` per metric (J&F with one
    decimal, the others with two)."""
    header = ["policy", *METRICS]
    rows = [[p, *(format_cell(evaluation[p][m], 1 if m == "J&F" else 2) for m in METRICS)] for p in POLICIES]
    widths = [max(len(r[j]) for r in [header, *rows]) for j in range(len(header))]
    return ["  ".join(c.ljust(w) if j == 0 else c.rjust(w) for j, (c, w) in enumerate(zip(r, widths)))
            for r in [header, *rows]]
