# Copyright 2026 The videoseg-o3-verl authors. Licensed under the Apache License, Version 2.0.
"""The learning demo, shortened, end to end (`videoseg-o3 demo` in a subprocess): the cold start learns the format,
RL keeps its reward and both beat the fixed guess at grounding on held-out videos — the orderings of the issue with a
looser margin, read from the `summary.json` contract.

Over 10 minutes on 2 cores (real data, VTS-CoT, verl's SFT and PPO trainers, four evaluations), so it is marked
`long` and left out of the default run. Run it alone with `bash scripts/run_tests.sh -m long`.
"""

from __future__ import annotations

import pytest

from tests.e2e.runner import run_cli, tail
from videoseg_o3_verl.demo.config import DemoConfig
from videoseg_o3_verl.demo.pipeline import recipe_steps
from videoseg_o3_verl.demo.summary import read_summary

pytestmark = [pytest.mark.long, pytest.mark.slow, pytest.mark.e2e, pytest.mark.ray]

SHORT = {"--n-eval": 150, "--rl-steps": recipe_steps(DemoConfig.rl_recipe)}
"""The shortened run: half the held-out samples; the data, cold start and RL steps of the default (learning needs
them: at half the RL steps, RL from a cold start near the ceiling lost mask reward in two runs of three, at all 24
in none of two; docs/learning_demo.md, twelfth round)."""
MIN_SFT_FORMAT = 0.8
"""SFT format_valid at least this (the full demo aims at 0.9)."""
REWARD_MARGIN = 0.1
"""RL reward_total may fall this much below SFT's (the full demo aims above it)."""


def test_shortened_demo_learns_to_ground(tmp_path):
    out = tmp_path / "demo"
    args = [str(v) for kv in SHORT.items() for v in kv]
    proc, _ = run_cli(["demo", "--output-dir", str(out), *args], tmp_path, timeout=1800)
    assert proc.returncode == 0, tail(proc)
    assert proc.stdout.count("\n") + proc.stderr.count("\n") <= 100, tail(proc)
    summary = read_summary(out / "summary.json")  # the schema is checked on read
    assert summary["n_eval"] == SHORT["--n-eval"]
    assert set(summary["stages"]) == {"data", "vts-cot", "sft", "seg-head", "rl", "eval", "report"}
    fixed, sft, rl = (summary["eval"][p] for p in ("fixed_guess", "sft", "rl"))
    assert sft["format_valid"]["mean"] >= MIN_SFT_FORMAT, summary
    assert rl["reward_total"]["mean"] >= sft["reward_total"]["mean"] - REWARD_MARGIN, summary
    assert rl["keyframe_hit"]["mean"] > fixed["keyframe_hit"]["mean"], summary
    assert rl["J&F"]["mean"] > fixed["J&F"]["mean"], summary
    report = (out / "report.html").read_text()
    assert report.count("<svg") >= 5 and '<div class="pair">' in report
    for stage in summary["stages"]:
        if stage != "report":
            assert (out / "logs" / f"{stage}.log").stat().st_size > 0
