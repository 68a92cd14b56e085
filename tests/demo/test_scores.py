# Copyright 2026 The videoseg-o3-verl authors. Licensed under the Apache License, Version 2.0.
"""The demo's per-policy metrics come from each eval run's metrics.json; the fixed guess is its best variant."""

import json

import pytest

from videoseg_o3_verl.demo.scores import policy_metrics, run_metrics
from videoseg_o3_verl.demo.summary import METRICS, make_summary

EVAL_NAMES = ("format_valid", "keyframe_hit", "tiou", "jf", "reward_total")


def _run(root, name, reward, jf=40.0):
    episodes = {m: {"mean": 0.5, "ci95": [0.25, 0.75]} for m in EVAL_NAMES}
    episodes["jf"] = {"mean": jf, "ci95": [jf - 5, jf + 5]}
    episodes["reward_total"] = {"mean": reward, "ci95": [reward - 0.5, reward + 0.5]}
    (root / name).mkdir(parents=True)
    (root / name / "metrics.json").write_text(json.dumps({"table": {}, "episodes": {**episodes, "num_episodes": 9}}))


def test_metrics_per_policy_and_the_best_fixed_guess(tmp_path):
    _run(tmp_path, "fixed_guess_empty", 1.5, jf=10.0)
    _run(tmp_path, "fixed_guess_full", 2.0, jf=20.0)  # higher reward_total: the reported baseline
    _run(tmp_path, "sft", 3.0)
    _run(tmp_path, "rl", 3.5, jf=60.0)
    evaluation, chosen = policy_metrics(tmp_path, ("sft", "rl"))
    assert chosen == "full" and list(evaluation) == ["fixed_guess", "sft", "rl"]
    assert evaluation["fixed_guess"]["reward_total"]["mean"] == 2.0
    assert evaluation["rl"]["J&F"] == {"mean": 60.0, "ci95": [55.0, 65.0]}  # the eval's jf, named as in summary.json
    assert all(set(m) == set(METRICS) for m in evaluation.values())
    make_summary(9, 1.0, evaluation, {})  # valid summary input


def test_a_missing_or_unscored_run_is_named(tmp_path):
    with pytest.raises(FileNotFoundError, match="sft/metrics.json does not exist"):
        run_metrics(tmp_path / "sft")
    (tmp_path / "rl").mkdir()
    (tmp_path / "rl" / "metrics.json").write_text(json.dumps({"episodes": {}}))
    with pytest.raises(ValueError, match="rl/metrics.json: no per-episode metrics"):
        run_metrics(tmp_path / "rl")
