# Copyright 2026 The videoseg-o3-verl authors. Licensed under the Apache License, Version 2.0.
"""Data-parallel evaluation on a Ray actor pool gives the same rows as the in-process worker (1 CPU actor)."""

from __future__ import annotations

import json

import pytest

from videoseg_o3_verl.eval.runner import JOURNAL, EvalConfig, run_eval

pytestmark = pytest.mark.ray


@pytest.fixture()
def ray_session():
    ray = pytest.importorskip("ray")
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield ray
    ray.shutdown()


def test_ray_pool_matches_in_process(ray_session, tiny_paths, synthetic_parquet, tmp_path):
    model, sam2 = tiny_paths
    common = dict(model=model, sam2=sam2, data=synthetic_parquet, limit=1, device="cpu")
    run_eval(EvalConfig(output_dir=str(tmp_path / "ray"), num_workers=1, **common))
    run_eval(EvalConfig(output_dir=str(tmp_path / "local"), num_workers=0, **common))
    ray_rows = [json.loads(x) for x in (tmp_path / "ray" / JOURNAL).read_text().splitlines()]
    local_rows = [json.loads(x) for x in (tmp_path / "local" / JOURNAL).read_text().splitlines()]
    for row in ray_rows + local_rows:
        row["result"].pop("seconds")
    assert len(ray_rows) == 1 and ray_rows == local_rows
    assert ray_session.is_initialized()  # the runner used the session it found
