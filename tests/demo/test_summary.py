# Copyright 2026 The videoseg-o3-verl authors. Licensed under the Apache License, Version 2.0.
"""summary.json: the schema the issue fixes, checked on write and read; the console table."""

import copy
import json

import pytest

from videoseg_o3_verl.demo.summary import METRICS, POLICIES, format_cell, read_summary, summary_table, write_summary


def _metrics(base: float) -> dict:
    return {m: {"mean": base, "ci95": [base - 0.1, base + 0.1]} for m in METRICS}


EVAL = {"fixed_guess": _metrics(0.2), "sft": _metrics(0.5), "rl": _metrics(0.6)}


def test_written_file_has_the_contract_schema(tmp_path):
    path = write_summary(tmp_path / "summary.json", 300, 512.5, EVAL, {"data": 10.0, "sft": 200})
    raw = json.loads(path.read_text())
    assert set(raw) == {"n_eval", "wall_s", "eval", "stages"}
    assert raw["n_eval"] == 300 and raw["wall_s"] == 512.5
    assert set(raw["eval"]) == {"fixed_guess", "sft", "rl"}
    for policy in raw["eval"].values():
        assert set(policy) == {"format_valid", "keyframe_hit", "tiou", "J&F", "reward_total"}
        for entry in policy.values():
            assert set(entry) == {"mean", "ci95"} and len(entry["ci95"]) == 2
    assert raw["eval"]["rl"]["J&F"] == {"mean": 0.6, "ci95": [0.5, 0.7]}
    assert raw["stages"] == {"data": 10.0, "sft": 200.0}
    assert read_summary(path) == raw


@pytest.mark.parametrize("mutate, message", [
    (lambda e: e.pop("rl"), "exactly the policies"),
    (lambda e: e["sft"].pop("J&F"), r"missing \['J&F'\]"),
    (lambda e: e["sft"].update(jf=e["sft"]["tiou"]), r"unknown \['jf'\]"),
    (lambda e: e["sft"]["tiou"].update(mean=0.9), "outside its interval"),
    (lambda e: e["rl"]["tiou"].update(ci95=[0.1]), r"ci95 must be \[lo, hi\]"),
    (lambda e: e["rl"]["tiou"].update(mean=float("nan")), "finite number"),
    (lambda e: e["rl"]["tiou"].pop("ci95"), "must be {'mean'"),
])
def test_bad_metrics_are_refused_naming_the_key(tmp_path, mutate, message):
    bad = copy.deepcopy(EVAL)
    mutate(bad)
    with pytest.raises(ValueError, match=message):
        write_summary(tmp_path / "s.json", 300, 1.0, bad, {})
    assert not (tmp_path / "s.json").exists()


def test_read_refuses_a_file_without_stages(tmp_path):
    path = tmp_path / "summary.json"
    path.write_text(json.dumps({"n_eval": 3, "wall_s": 1.0, "eval": EVAL}))
    with pytest.raises(ValueError, match=r"lacks \['stages'\]"):
        read_summary(path)
    with pytest.raises(ValueError, match="n_eval"):
        write_summary(path, 0, 1.0, EVAL, {})


def test_console_table_rows_and_cells():
    assert format_cell({"mean": 52.25, "ci95": [50.0, 54.5]}, 1) == "52.2 [50.0, 54.5]"
    lines = summary_table(EVAL)
    assert len(lines) == 1 + len(POLICIES)
    assert lines[0].split() == ["policy", *METRICS]
    assert lines[3].startswith("rl ") and "0.60 [0.50, 0.70]" in lines[3] and "0.6 [0.5, 0.7]" in lines[3]
    assert len({len(line) for line in lines}) == 1  # aligned columns
