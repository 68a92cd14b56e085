# Copyright 2026 The videoseg-o3-verl authors. Licensed under the Apache License, Version 2.0.
"""Fixtures of the eval tests: tiny models, a small synthetic parquet, a policy that replies from a script."""

from __future__ import annotations

import pytest

from videoseg_o3_verl.eval.policy import HFPolicy

from .scripted import ScriptedPolicy


@pytest.fixture(scope="session")
def tiny_paths():
    from videoseg_o3_verl.model.tiny import tiny_qwen_vl, tiny_sam2

    return str(tiny_qwen_vl("qwen2_5_vl")), str(tiny_sam2())


@pytest.fixture(scope="session")
def eval_models(tiny_paths):
    from videoseg_o3_verl.eval.predict import load_models

    model, sam2 = tiny_paths
    return load_models(model, sam2, device="cpu")


@pytest.fixture(scope="session")
def synthetic_parquet(tmp_path_factory):
    from videoseg_o3_verl.data.synthetic_cli import main

    root = tmp_path_factory.mktemp("synthetic")
    main(["--root", str(root / "syn"), "--num-videos", "2", "--num-frames", "8", "--height", "64", "--width", "96",
          "--splits", "valid", "--parquet-dir", str(root / "pq")])
    return str(root / "pq" / "valid.parquet")


@pytest.fixture()
def scripted(eval_models):
    """`scripted(turns)` -> EvalModels whose policy replies with `turns` (restored after the test)."""
    original = eval_models.policy

    def make(turns):
        eval_models.policy = ScriptedPolicy(original if isinstance(original, HFPolicy) else original.hf, turns)
        return eval_models

    yield make
    eval_models.policy = original
