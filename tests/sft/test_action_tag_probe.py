# Copyright 2026 The videoseg-o3-verl authors. Licensed under the Apache License, Version 2.0.
"""benchmarks/action_tag_probe.py: the teacher-forced probability of each turn's closing tag."""

from __future__ import annotations

import math

import pytest
import torch

from tests.benchmark_module import load_benchmark


@pytest.fixture(scope="module")
def action_tag_probe():
    return load_benchmark("action_tag_probe")


def test_closing_tags_hand_case(action_tag_probe):
    # vocab: 0 text, 1 "></", 2 "answer", 3 "select". Turn 1 closes with select, turn 2 with answer; a "></" in an
    # untrained (user) part is skipped. Row t of the log-probs scores token t + 1.
    ids = [0, 1, 3, 0, 1, 2, 0, 1, 2]
    mask = [0, 1, 1, 0, 1, 1, 0, 0, 0]
    log_probs = torch.full((9, 4), -9.0)
    log_probs[1, 3] = math.log(0.25)  # p(select) after the first "></"
    log_probs[4, 2] = math.log(0.8)   # p(answer) after the second
    log_probs[7, 2] = math.log(0.5)   # untrained: not counted
    found = action_tag_probe.closing_tag_probabilities(ids, log_probs, mask, closing_prefix_id=1,
                                                       action_ids={"answer": 2, "select": 3})
    assert [(turn, action) for turn, action, _ in found] == [(1, "select"), (2, "answer")]
    assert [p for _, _, p in found] == pytest.approx([0.25, 0.8])


def test_probe_reads_every_turn_of_the_cold_start_trajectories(action_tag_probe, tiny_qwen25_path, tmp_path):
    import pandas as pd

    from videoseg_o3_verl.data.parquet import convert_to_parquet
    from videoseg_o3_verl.data.synthetic import generate_synthetic_dataset
    from videoseg_o3_verl.data.vts_cot import build_vts_cot

    generate_synthetic_dataset(tmp_path / "syn", seed=1, num_videos=2, num_frames=8, height=56, width=56)
    convert_to_parquet("synthetic", tmp_path / "syn", tmp_path / "rl.parquet")
    build_vts_cot(tmp_path / "rl.parquet", tmp_path / "sft.parquet", seed=0, limit=4)
    turns = [[m["content"] for m in messages if m["role"] == "assistant"]
             for messages in pd.read_parquet(tmp_path / "sft.parquet")["messages"]]
    expected = {}
    for trajectory in turns:
        for turn, text in enumerate(trajectory, start=1):
            key = (turn, "select" if text.endswith("</select>") else "answer")
            expected[key] = expected.get(key, 0) + 1
    groups = action_tag_probe.probe(tiny_qwen25_path, str(tmp_path / "sft.parquet"), limit=4)
    assert {key: len(ps) for key, ps in groups.items()} == expected
    assert all(0.0 < p < 1.0 for ps in groups.values() for p in ps)
