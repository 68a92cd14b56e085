# Copyright 2026 The videoseg-o3-verl authors. Licensed under the Apache License, Version 2.0.
"""Several policies evaluated on the same records, each with `run_eval`, compared by the per-episode metrics.

The fixed-guess baseline is evaluated in each of its variants (`FIXED_GUESS_MASKS`: middle keyframe, whole video,
an empty or a full-frame mask); the variant with the highest mean `reward_total` is reported as `fixed_guess`, the
others are kept under `fixed_guess_variants`.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from videoseg_o3_verl.eval.bootstrap import N_BOOT, aggregate
from videoseg_o3_verl.eval.episode_metrics import EPISODE_METRICS
from videoseg_o3_verl.eval.fixed_guess import FIXED_GUESS_MASKS
from videoseg_o3_verl.eval.runner import JOURNAL, EvalConfig, read_journal, run_eval

FIXED_GUESS = "fixed_guess"
"""Name of the baseline in the comparison."""

SUMMARY = "summary.json"
"""The comparison written next to the policies' folders (:func:`evaluate_policies`' result without the rows)."""


@dataclass(frozen=True)
class PolicySpec:
    """A model policy to evaluate."""

    model: str
    """HF Qwen-VL folder with `[SEG]` in its tokenizer."""
    seg_head: str | None = None
    """Its seg head folder; default: found next to `model`."""


def episode_rows(out: Path) -> list[dict[str, Any]]:
    """Per-episode metric rows (`video`, `expression_id`, the metrics, `reward_terms`) of a finished run in `out`."""
    return [{"video": e["video"], "expression_id": e["expression_id"], **e["metrics"]}
            for e in read_journal(out / JOURNAL) if e.get("metrics") is not None]


def best_variant(tables: Mapping[str, Mapping[str, Any]]) -> str:
    """The variant with the highest mean `reward_total` (the first listed on a tie).

    Example:
        >>> best_variant({"empty": {"reward_total": {"mean": 0.5}}, "full": {"reward_total": {"mean": 0.7}}})
        'full'
    """
    return max(tables, key=lambda name: tables[name]["reward_total"]["mean"])


def evaluate_policies(policies: Mapping[str, PolicySpec | str], *, data: str, sam2: str, output_dir: str,
                      env_protocol: str = "train", env: Mapping[str, Any] | None = None, limit: int | None = None,
                      fixed_guess: bool = True, reward_parity: bool = True, n_boot: int = N_BOOT,
                      device: str = "cpu", resume: bool = False, report_videos: int = 4, progress: bool = True,
                      batch_size: int = 32) -> dict[str, Any]:
    """Evaluate each policy (and the fixed guess) on the same records; write each run's files and `summary.json`.

    Args:
        policies: name -> :class:`PolicySpec` (or a model folder); evaluated in this order after the fixed guess.
        data: parquet of the held-out records.
        sam2: SAM2 checkpoint of the propagation (and of the fixed guess's first turn, which needs no model).
        output_dir: `<output_dir>/<name>/` gets each policy's eval files, `<output_dir>/fixed_guess_<mask>/` each
            fixed-guess variant's, `<output_dir>/summary.json` the result without the rows.
        env_protocol, env: the environment (`EvalConfig.env_protocol`, `EvalConfig.env`; the demo: "train" with
            `load_env_overrides("recipes/demo_env.yaml")`).
        limit: only the first N records.
        fixed_guess: also evaluate the fixed-guess baseline.
        reward_parity: `videoseg_o3.rewards.parity` of the training recipe.
        n_boot: bootstrap resamples of the 95 % intervals.
        device: device of the models.
        resume: continue interrupted runs (`EvalConfig.resume`).
        report_videos: videos in each run's report.html.
        progress: show each run's progress bar.
        batch_size: expressions whose turns are generated together (`EvalConfig.batch_size`).

    Returns:
        `{"n_eval": episodes per policy, "eval": {name: M}, "fixed_guess_variant": mask of the reported baseline,
        "fixed_guess_variants": {mask: M}, "wall_s": {run: seconds}, "rows": {run: [per-episode rows]}}` with
        `M = {metric: {"mean", "ci95": [lo, hi]}}` for `EPISODE_METRICS`; runs are the policy names and
        `fixed_guess_<mask>`.
    """
    if FIXED_GUESS in policies:
        raise ValueError(f"evaluate_policies: {FIXED_GUESS!r} is the baseline's name; rename that policy")
    root = Path(output_dir)
    runs: dict[str, dict[str, Any]] = {}
    if fixed_guess:
        runs.update({f"{FIXED_GUESS}_{mask}": {"fixed_guess": mask} for mask in FIXED_GUESS_MASKS})
    for name, spec in policies.items():
        spec = spec if isinstance(spec, PolicySpec) else PolicySpec(model=str(spec))
        runs[name] = {"model": spec.model, "seg_head": spec.seg_head}
    tables, rows, wall = {}, {}, {}
    for name, fields in runs.items():
        config = EvalConfig(**{"model": "", **fields}, sam2=sam2, data=data, output_dir=str(root / name),
                            limit=limit, device=device, env_protocol=env_protocol, env=dict(env or {}),
                            reward_parity=reward_parity, n_boot=n_boot, resume=resume, report_videos=report_videos,
                            progress=progress, batch_size=batch_size)
        start = time.perf_counter()
        run_eval(config)
        wall[name] = time.perf_counter() - start
        rows[name] = episode_rows(root / name)
        if not rows[name]:
            raise ValueError(f"evaluate_policies: no scored episode in {root / name} (records without ground truth?)")
        tables[name] = aggregate(rows[name], EPISODE_METRICS, n_boot=n_boot)
    result: dict[str, Any] = {"n_eval": len(next(iter(rows.values()))) if rows else 0, "eval": {}}
    if fixed_guess:
        variants = {mask: tables[f"{FIXED_GUESS}_{mask}"] for mask in FIXED_GUESS_MASKS}
        chosen = best_variant(variants)
        result["eval"][FIXED_GUESS] = variants[chosen]
        result.update(fixed_guess_variant=chosen, fixed_guess_variants=variants)
    result["eval"].update({name: tables[name] for name in policies})
    result["wall_s"] = wall
    root.mkdir(parents=True, exist_ok=True)
    (root / SUMMARY).write_text(json.dumps(result, indent=2))
    return {**result, "rows": rows}
