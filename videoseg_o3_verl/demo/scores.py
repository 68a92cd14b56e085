# Copyright 2026 The videoseg-o3-verl authors. Licensed under the Apache License, Version 2.0.
"""The demo's per-policy metrics, read from the ``metrics.json`` of each ``videoseg-o3 eval`` run (per-episode means
with their 95 % bootstrap intervals, computed by the eval), and the choice of the fixed-guess variant."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

EVAL_TO_SUMMARY = {"format_valid": "format_valid", "keyframe_hit": "keyframe_hit", "tiou": "tiou", "jf": "J&F",
                   "reward_total": "reward_total"}
"""Per-episode metric of ``videoseg-o3 eval`` → its name in ``summary.json`` (:data:`.summary.METRICS`)."""


def run_metrics(eval_dir: str | Path) -> dict[str, dict[str, Any]]:
    """``{metric: {"mean", "ci95"}}`` (summary names) of one finished eval run; the error names the run's folder."""
    path = Path(eval_dir) / "metrics.json"
    if not path.is_file():
        raise FileNotFoundError(f"[demo] {path} does not exist: the eval run did not finish")
    episodes = json.loads(path.read_text(encoding="utf-8")).get("episodes") or {}
    missing = [name for name in EVAL_TO_SUMMARY if name not in episodes]
    if missing:
        raise ValueError(f"[demo] {path}: no per-episode metrics {missing} (no scored episode?)")
    return {EVAL_TO_SUMMARY[name]: {"mean": episodes[name]["mean"], "ci95": list(episodes[name]["ci95"])}
            for name in EVAL_TO_SUMMARY}


def best_fixed_guess(variants: Mapping[str, Mapping[str, Any]]) -> str:
    """The fixed-guess variant reported as the baseline: the highest mean ``reward_total`` (the eval's rule)."""
    from ..eval.compare import best_variant

    return best_variant(variants)


def policy_metrics(eval_root: str | Path, policies: tuple[str, ...]) -> tuple[dict[str, dict[str, Any]], str]:
    """``{policy: M}`` for ``fixed_guess`` (its best variant, whose mask is returned too) and ``policies``, from
    ``<eval_root>/<run>/metrics.json`` (runs: ``fixed_guess_<mask>`` and the policies)."""
    from ..eval.fixed_guess import FIXED_GUESS_MASKS

    root = Path(eval_root)
    variants = {mask: run_metrics(root / f"fixed_guess_{mask}") for mask in FIXED_GUESS_MASKS}
    chosen = best_fixed_guess(variants)
    return {"fixed_guess": variants[chosen], **{p: run_metrics(root / p) for p in policies}}, chosen
